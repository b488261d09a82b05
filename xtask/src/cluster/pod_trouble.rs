//! What keeps a pod from running that waiting cannot fix, read from its status as the scheduler and
//! kubelet report it: unschedulable, a container that cannot be created, killed for memory; and
//! which pods are the Deployment's current revision.

use crate::cluster::client::Cluster;
use anyhow::Result;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, Pod, PodCondition, Taint, Toleration};
use kube::api::{Api, ListParams, LogParams};

/// Whether the scheduler has given up on the pod for now.
pub(crate) fn unschedulable(pod: &Pod) -> bool {
    unscheduled(pod).is_some()
}

/// The pod's `PodScheduled=False, Unschedulable` condition, if it has one.
fn unscheduled(pod: &Pod) -> Option<&PodCondition> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
}

/// One sentence naming the trouble with Kubernetes' own message, if the pod has one; `nodes` name
/// the taints the pod does not tolerate (the scheduler's message does not).
pub(crate) fn trouble(pod: &Pod, nodes: &[Node]) -> Option<String> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let status = pod.status.as_ref()?;
    if let Some(c) = unscheduled(pod) {
        let tolerations = pod.spec.as_ref().and_then(|s| s.tolerations.clone()).unwrap_or_default();
        let untolerated: Vec<String> = nodes
            .iter()
            .flat_map(|n| {
                let node = n.metadata.name.clone().unwrap_or_default();
                let taints = n.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
                taints.into_iter().map(move |t| (node.clone(), t))
            })
            .filter(|(_, t)| t.effect != "PreferNoSchedule" && !tolerations.iter().any(|tol| tolerates(tol, t)))
            .map(|(node, t)| format!("{node} has taint {}={}:{}", t.key, t.value.unwrap_or_default(), t.effect))
            .collect();
        let taints = if untolerated.is_empty() { String::new() } else { format!(" ({})", untolerated.join(", ")) };
        return Some(format!(
            "pod {name} cannot be scheduled: {}{taints}; remove the taint, make room on the node, or give the pod a toleration",
            c.message.as_deref().unwrap_or("the scheduler gave no reason").trim()
        ));
    }
    for c in status.container_statuses.iter().flatten() {
        let ended: Vec<_> = [c.state.as_ref(), c.last_state.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|s| s.terminated.as_ref())
            .collect();
        let limit = pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.iter().find(|k| k.name == c.name))
            .and_then(|k| k.resources.as_ref()?.limits.as_ref()?.get("memory").map(|q| q.0.clone()));
        let name_of = &c.name;
        if ended.iter().any(|t| t.reason.as_deref() == Some("OOMKilled")) {
            let limit = limit.as_deref().unwrap_or("none");
            return Some(format!(
                "container {name_of} of pod {name} was killed for using more memory than its limit (OOMKilled, limit {limit}); raise the memory limit"
            ));
        }
        // On cgroup v1 the runtime can miss the OOM event and report a plain SIGKILL.
        if let (Some(limit), true) = (&limit, ended.iter().any(|t| t.exit_code == 137)) {
            return Some(format!(
                "container {name_of} of pod {name} was killed (exit code 137, SIGKILL): with a memory limit of {limit}, most likely by the out-of-memory killer; raise the memory limit"
            ));
        }
        let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
        if let Some(w) = waiting {
            let reason = w.reason.as_deref().unwrap_or_default();
            if matches!(reason, "CreateContainerConfigError" | "CreateContainerError" | "RunContainerError") {
                return Some(format!(
                    "container {} of pod {name} cannot be created ({reason}: {})",
                    c.name,
                    w.message.as_deref().unwrap_or_default().trim()
                ));
            }
        }
    }
    None
}

/// Kubernetes' toleration rule: same key (or an empty key with Exists), same value unless Exists,
/// same effect unless the toleration names none.
fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    let exists = t.operator.as_deref() == Some("Exists");
    let key = t.key.as_deref().unwrap_or_default();
    (key == taint.key || (key.is_empty() && exists))
        && (exists || t.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default())
        && t.effect.as_deref().is_none_or(|e| e.is_empty() || e == taint.effect)
}

/// The `pod-template-hash` of the ReplicaSet that holds the Deployment's current revision.
pub(crate) async fn current_template_hash(
    cluster: &Cluster,
    namespace: &str,
    d: &Deployment,
    selector: &str,
) -> Result<Option<String>> {
    let revision =
        |m: &kube::api::ObjectMeta| m.annotations.as_ref()?.get("deployment.kubernetes.io/revision").cloned();
    let observed = d.status.as_ref().and_then(|s| s.observed_generation);
    if observed < d.metadata.generation {
        // The controller has not made the new revision's ReplicaSet yet: no pod is current.
        return Ok(Some(String::new()));
    }
    let Some(wanted) = revision(&d.metadata) else { return Ok(None) };
    let sets: Api<ReplicaSet> = Api::namespaced(cluster.client.clone(), namespace);
    let list = sets.list(&ListParams::default().labels(selector)).await?;
    Ok(list
        .items
        .iter()
        .find(|rs| revision(&rs.metadata).as_deref() == Some(wanted.as_str()))
        .and_then(|rs| rs.metadata.labels.as_ref()?.get("pod-template-hash").cloned()))
}

/// The last log lines of the pod's `container` (of its previous run when it restarted and that
/// is there).
pub(crate) async fn pod_logs(pods: &Api<Pod>, name: &str, container: Option<String>, previous: bool) -> String {
    let params = LogParams { tail_lines: Some(20), previous, container: container.clone(), ..Default::default() };
    match pods.logs(name, &params).await {
        Ok(l) => l,
        Err(_) if previous => {
            let params = LogParams { tail_lines: Some(20), container, ..Default::default() };
            pods.logs(name, &params).await.unwrap_or_default()
        }
        Err(_) => String::new(),
    }
}

/// Why the Deployment's ReplicaSet could create no pod (its `ReplicaFailure` condition, e.g.
/// FailedCreate when a LimitRange or ResourceQuota forbids the pod), in one sentence.
pub fn replica_failure(d: &k8s_openapi::api::apps::v1::Deployment) -> Option<String> {
    let conditions = d.status.as_ref()?.conditions.as_ref()?;
    let c = conditions.iter().find(|c| c.type_ == "ReplicaFailure" && c.status == "True")?;
    Some(format!(
        "no pod could be created ({}: {}): fix what refuses it (a LimitRange, a ResourceQuota, an admission policy), then run up again",
        c.reason.as_deref().unwrap_or("ReplicaFailure"),
        c.message.as_deref().unwrap_or("no message")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(tolerations: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c"}], "tolerations": tolerations},
            "status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                       "message": "0/1 nodes are available: 1 node(s) had untolerated taint(s)."}]},
        }))
        .unwrap()
    }

    fn node() -> Node {
        serde_json::from_value(json!({"metadata": {"name": "n"}, "spec": {"taints": [
            {"key": "a", "value": "x", "effect": "NoSchedule"},
            {"key": "b", "effect": "PreferNoSchedule"},
        ]}}))
        .unwrap()
    }

    #[test]
    fn names_the_taints_the_pod_does_not_tolerate() {
        let said = trouble(&pod(json!([])), &[node()]).unwrap();
        assert!(said.contains("cannot be scheduled") && said.contains("n has taint a=x:NoSchedule"), "{said}");
        assert!(!said.contains("taint b"), "PreferNoSchedule keeps no pod out: {said}");
        let tolerated = trouble(&pod(json!([{"key": "a", "operator": "Exists"}])), &[node()]).unwrap();
        assert!(!tolerated.contains("has taint"), "{tolerated}");
        let other_value = trouble(&pod(json!([{"key": "a", "value": "y"}])), &[node()]).unwrap();
        assert!(other_value.contains("has taint a=x"), "{other_value}");
    }
}
