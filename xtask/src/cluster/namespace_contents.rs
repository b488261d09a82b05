//! What a namespace holds that is not this instance's: every namespaced object of every kind the
//! API serves (aggregated discovery), each counted as the instance's only by proof: its mark, the
//! annotations helm puts on what its release renders and the release's own storage (when the
//! release is the instance's), an owner that is the instance's, or what Kubernetes makes in every
//! namespace.

use crate::cluster::client::Cluster;
use crate::cluster::manifests::{instance, owner, Owner};
use anyhow::{Context, Result};
use futures::future::try_join_all;
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::{verbs, Discovery, Scope};
use serde_json::Value;
use std::collections::HashSet;

/// `kind/name` of each object in `ns` that is not the instance's, sorted; objects made for the
/// instance's (its pods, endpoints) count as the instance's, events as nobody's.
pub async fn foreign_objects(cluster: &Cluster, ns: &str, release: &str, release_ours: bool) -> Result<Vec<String>> {
    let discovery = Discovery::new(cluster.client.clone())
        .run_aggregated()
        .await
        .context("cannot discover the kinds the API serves")?;
    let kinds: Vec<_> = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .filter(|(_, caps)| caps.scope == Scope::Namespaced && caps.supports_operation(verbs::LIST))
        .collect();
    let lists = kinds.iter().map(|(resource, _)| async move {
        let api: Api<DynamicObject> = Api::namespaced_with(cluster.client.clone(), ns, resource);
        let list = api.list(&ListParams::default()).await.with_context(|| format!("cannot list {}", resource.plural));
        list.map(|l| l.items.into_iter().map(|o| (resource.kind.clone(), o)).collect::<Vec<_>>())
    });
    let mut objects: Vec<(String, Value)> = Vec::new();
    let mut seen = HashSet::new();
    for (kind, o) in try_join_all(lists).await?.into_iter().flatten() {
        // Events are the cluster's notes about objects, gone on their own within the hour (and
        // served twice, by two groups): nothing a user made, whatever they are about.
        if kind == "Event" {
            continue;
        }
        if seen.insert(o.metadata.uid.clone().unwrap_or_default()) {
            objects.push((kind, serde_json::to_value(&o)?));
        }
    }
    let mut found =
        Found { me: instance(ns, release), ns, release, release_ours, ours: HashSet::new(), names: HashSet::new() };
    // Owners come before what they own only by chance: look again until nothing new is ours.
    loop {
        let before = found.ours.len();
        for (kind, o) in &objects {
            let uid = o["metadata"]["uid"].as_str().unwrap_or_default().to_string();
            if !found.ours.contains(&uid) && found.is_ours(kind, o) {
                found.names.insert((kind.clone(), o["metadata"]["name"].as_str().unwrap_or_default().to_string()));
                found.ours.insert(uid);
            }
        }
        if found.ours.len() == before {
            break;
        }
    }
    let ours = found.ours;
    let uids: HashSet<&str> = objects.iter().filter_map(|(_, o)| o["metadata"]["uid"].as_str()).collect();
    // Being deleted, or left by an owner that is gone (the garbage collector takes it): going anyway.
    let going = |o: &Value| {
        let refs = o["metadata"]["ownerReferences"].as_array().cloned().unwrap_or_default();
        !o["metadata"]["deletionTimestamp"].is_null()
            || (!refs.is_empty() && refs.iter().all(|r| !uids.contains(r["uid"].as_str().unwrap_or_default())))
    };
    let mut foreign: Vec<String> = objects
        .iter()
        .filter(|(_, o)| !ours.contains(o["metadata"]["uid"].as_str().unwrap_or_default()) && !going(o))
        .map(|(kind, o)| format!("{}/{}", kind.to_lowercase(), o["metadata"]["name"].as_str().unwrap_or_default()))
        .collect();
    foreign.sort();
    Ok(foreign)
}

/// The instance, and what of the namespace has been found to be its so far (by uid, and by kind
/// and name).
struct Found<'a> {
    me: String,
    ns: &'a str,
    release: &'a str,
    /// The release is the instance's: what helm renders for it and stores of it is too.
    release_ours: bool,
    ours: HashSet<String>,
    names: HashSet<(String, String)>,
}

impl Found<'_> {
    fn is_ours(&self, kind: &str, o: &Value) -> bool {
        let Found { me, ns, release, release_ours, ours, names } = self;
        let (ns, release) = (*ns, *release);
        let meta = &o["metadata"];
        let name = meta["name"].as_str().unwrap_or_default();
        let annotation = |k: &str| meta["annotations"][k].as_str();
        let helm_rendered = annotation("meta.helm.sh/release-name") == Some(release)
            && annotation("meta.helm.sh/release-namespace") == Some(ns);
        let helm_storage = kind == "Secret"
            && o["type"] == "helm.sh/release.v1"
            && meta["labels"]["owner"] == "helm"
            && meta["labels"]["name"] == release;
        let owned_by_ours = meta["ownerReferences"]
            .as_array()
            .is_some_and(|refs| refs.iter().any(|r| ours.contains(r["uid"].as_str().unwrap_or_default())));
        let endpoints_of_ours = kind == "Endpoints" && names.contains(&("Service".to_string(), name.to_string()));
        let kubernetes_own =
            (kind == "ConfigMap" && name == "kube-root-ca.crt") || (kind == "ServiceAccount" && name == "default");
        owner(o, me) == Owner::Us
            || (*release_ours && (helm_rendered || helm_storage))
            || owned_by_ours
            || endpoints_of_ours
            || kubernetes_own
    }
}
