//! Waiting until a release's pods are gone from the cluster, not merely terminating: what `down`
//! leaves behind is then nothing.

use crate::cluster::client::Cluster;
use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use std::time::{Duration, Instant};

/// Waits until no pod in `ns` matches `selector`; past `timeout`, names those left.
pub async fn wait(cluster: &Cluster, ns: &str, selector: &str, timeout: Duration) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), ns);
    let params = ListParams::default().labels(selector);
    let start = Instant::now();
    loop {
        let left = pods.list(&params).await.with_context(|| format!("cannot list the pods {selector} in {ns}"))?;
        if left.items.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            let names: Vec<String> = left.items.iter().filter_map(|p| p.metadata.name.clone()).collect();
            bail!(
                "the pods {} in {ns} are still there after {}s: look at their finalizers and the node (kubectl describe pod -n {ns} {})",
                names.join(", "),
                timeout.as_secs(),
                names.first().cloned().unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
