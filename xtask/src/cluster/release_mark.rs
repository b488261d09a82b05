//! The mark `up` gives the helm release itself: labels on helm's release records (helm's
//! `--labels`), so that a release is the instance's by its own marks, with or without the record.

use crate::cluster::client::Cluster;
use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};

const NAMESPACE_LABEL: &str = "kmcp-xtask/namespace";
const RELEASE_LABEL: &str = "kmcp-xtask/release";

/// The flag `helm upgrade --install` gets.
pub fn labels_flag(namespace: &str, release: &str) -> [String; 2] {
    ["--labels".into(), format!("{NAMESPACE_LABEL}={namespace},{RELEASE_LABEL}={release}")]
}

/// The newest record of helm's release `release` in `namespace` (helm's Secret storage) carries
/// the instance's mark.
pub async fn marked(cluster: &Cluster, namespace: &str, release: &str) -> Result<bool> {
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), namespace);
    let records = secrets
        .list(&ListParams::default().labels(&format!("owner=helm,name={release}")))
        .await
        .with_context(|| format!("cannot read helm's records of release {release}"))?;
    let version =
        |s: &Secret| s.metadata.labels.as_ref().and_then(|l| l.get("version")?.parse::<u64>().ok()).unwrap_or_default();
    let newest = records.items.iter().max_by_key(|s| version(s));
    let labels = newest.and_then(|s| s.metadata.labels.clone()).unwrap_or_default();
    Ok(labels.get(NAMESPACE_LABEL).map(String::as_str) == Some(namespace)
        && labels.get(RELEASE_LABEL).map(String::as_str) == Some(release))
}
