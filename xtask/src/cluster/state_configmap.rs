//! What `up` records in the cluster: the nodePort (so the laptop's URL survives re-deploys), a
//! sha256 of chart digest and values (so an unchanged `up` skips helm) and the chart digest. One
//! ConfigMap.

use crate::cluster::client::{Cluster, FIELD_MANAGER};
use crate::cluster::manifests::{instance, INSTANCE_ANNOTATION};
use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams};

const NODE_PORT: &str = "nodePort";
const DEPLOYED: &str = "deployedSha256";
const CHART: &str = "chartDigest";
const RENDERED: &str = "rendered";

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct State {
    pub node_port: Option<i32>,
    pub deployed_sha256: Option<String>,
    /// The digest of the chart content deployed (OCI manifest, or a local chart's content).
    pub chart_digest: Option<String>,
    /// The record exists and is this instance's: `up` deployed the release.
    pub owned: bool,
    /// The fields the chart set, as they were live after the last rollout: drift is told from them.
    pub rendered: Option<std::collections::BTreeMap<String, String>>,
    /// A ConfigMap of the record's name is there without this instance's mark: not the record.
    pub foreign: bool,
}

pub fn name(release: &str) -> String {
    format!("{release}-xtask-state")
}

fn api(cluster: &Cluster, namespace: &str) -> Api<ConfigMap> {
    Api::namespaced(cluster.client.clone(), namespace)
}

pub async fn read(cluster: &Cluster, namespace: &str, release: &str) -> Result<State> {
    let Some(cm) = api(cluster, namespace).get_opt(&name(release)).await.context("cannot read the recorded state")?
    else {
        return Ok(State::default());
    };
    let me = instance(namespace, release);
    let owned = cm.metadata.annotations.as_ref().and_then(|a| a.get(INSTANCE_ANNOTATION)) == Some(&me);
    if !owned {
        return Ok(State { foreign: true, ..State::default() });
    }
    let data = cm.data.unwrap_or_default();
    Ok(State {
        node_port: data.get(NODE_PORT).and_then(|p| p.parse().ok()),
        deployed_sha256: data.get(DEPLOYED).cloned(),
        chart_digest: data.get(CHART).cloned(),
        owned,
        rendered: data.get(RENDERED).and_then(|r| serde_json::from_str(r).ok()),
        foreign: false,
    })
}

pub async fn write(cluster: &Cluster, namespace: &str, release: &str, state: &State) -> Result<()> {
    let mut data = serde_json::Map::new();
    if let Some(p) = state.node_port {
        data.insert(NODE_PORT.into(), p.to_string().into());
    }
    if let Some(h) = &state.deployed_sha256 {
        data.insert(DEPLOYED.into(), h.clone().into());
    }
    if let Some(d) = &state.chart_digest {
        data.insert(CHART.into(), d.clone().into());
    }
    if let Some(r) = &state.rendered {
        data.insert(RENDERED.into(), serde_json::to_string(r)?.into());
    }
    let cm = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name(release), "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": FIELD_MANAGER},
            "annotations": {INSTANCE_ANNOTATION: instance(namespace, release)},
        },
        "data": data,
    });
    api(cluster, namespace)
        .patch(&name(release), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&cm))
        .await
        .context("cannot record the state")?;
    Ok(())
}

/// Forgets the deployment's sha256 and keeps the nodePort (for `down --keep-port`).
pub async fn keep_port_only(cluster: &Cluster, namespace: &str, release: &str) -> Result<()> {
    let patch = serde_json::json!({"data": {DEPLOYED: null, CHART: null, RENDERED: null}});
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    api(cluster, namespace)
        .patch(&name(release), &params, &Patch::Merge(&patch))
        .await
        .context("cannot update the recorded state")?;
    Ok(())
}

/// Forgets everything. `false` when there was no record.
pub async fn forget(cluster: &Cluster, namespace: &str, release: &str) -> Result<bool> {
    match api(cluster, namespace).delete(&name(release), &DeleteParams::default()).await {
        Ok(_) => Ok(true),
        Err(e) if crate::cluster::client::is_not_found(&e) => Ok(false),
        Err(e) => Err(e).context("cannot delete the recorded state"),
    }
}
