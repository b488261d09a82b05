//! Why a rollout is not complete: the pods of its current revision, their events, logs and
//! states, read into one sentence of what is wrong and what to do.

use crate::cluster::client::Cluster;
use anyhow::Result;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, ListParams};

pub struct Diagnosis {
    /// One sentence: what is wrong and what to do.
    pub summary: String,
    pub details: Vec<String>,
    /// The rollout cannot succeed by waiting (crash loop, image pull failure).
    pub fatal: bool,
}

pub async fn diagnose(cluster: &Cluster, namespace: &str, d: &Deployment) -> Result<Diagnosis> {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    let selector = d
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.as_ref())
        .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","))
        .unwrap_or_default();
    let mut list = pods.list(&ListParams::default().labels(&selector)).await?;
    // Only the pods of the Deployment's current revision: an old one still failing is on its way out.
    if let Some(hash) = crate::cluster::pod_trouble::current_template_hash(cluster, namespace, d, &selector).await? {
        list.items.retain(|p| p.metadata.labels.as_ref().and_then(|l| l.get("pod-template-hash")) == Some(&hash));
    }
    let nodes = match list.items.iter().any(crate::cluster::pod_trouble::unschedulable) {
        true => Api::<Node>::all(cluster.client.clone())
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default(),
        false => Vec::new(),
    };
    let mut details = Vec::new();
    let mut summary = None;
    let mut fatal = false;
    for pod in &list.items {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        // The server is the chart's first container; the guard, when there, runs beside it.
        let server = pod.spec.as_ref().and_then(|s| s.containers.first()).map(|c| c.name.clone());
        let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.clone()).unwrap_or_default();
        let restarts: i32 = statuses.iter().map(|c| c.restart_count).sum();
        let waiting: Vec<(String, String)> = statuses
            .iter()
            .filter_map(|c| c.state.as_ref()?.waiting.as_ref())
            .map(|w| (w.reason.clone().unwrap_or_default(), w.message.clone().unwrap_or_default()))
            .collect();
        let image =
            statuses.iter().find(|c| Some(&c.name) == server.as_ref()).map(|c| c.image.clone()).unwrap_or_default();
        details.push(format!(
            "pod {pod_name}: {} restarts{}",
            restarts,
            waiting.iter().map(|(r, _)| format!(", {r}")).collect::<String>()
        ));

        let events: Api<Event> = Api::namespaced(cluster.client.clone(), namespace);
        let events = events.list(&ListParams::default().fields(&format!("involvedObject.name={pod_name}"))).await?;
        let probe_failures: Vec<String> = events
            .items
            .iter()
            .filter(|e| e.reason.as_deref() == Some("Unhealthy"))
            .filter_map(|e| e.message.clone())
            .collect();
        for m in probe_failures.iter().take(3) {
            details.push(format!("event: {m}"));
        }
        let logs = crate::cluster::pod_trouble::pod_logs(&pods, &pod_name, server, restarts > 0).await;
        for l in logs.lines().rev().take(10).collect::<Vec<_>>().into_iter().rev() {
            details.push(format!("log: {l}"));
        }

        if let Some(flag) = logs.lines().find_map(unknown_flag) {
            fatal = true;
            summary.get_or_insert(format!(
                "the server in {image} does not know the flag {flag}: update the fork to a current upstream release, or deploy without it (--stateful drops --stateless, --allow-write-tools drops --read-only)"
            ));
        }
        let refused_port = probe_failures.iter().find_map(|m| refused_port(m));
        let listen_port = logs.lines().rev().find_map(listen_port);
        if let (Some(probe), Some(listen)) = (refused_port, listen_port) {
            if probe != listen {
                fatal = restarts > 0 || fatal;
                summary.get_or_insert(format!(
                    "the probes get connection refused on port {probe} while the server logs that it listens on port {listen}: the image ignores the configured port; deploy with --port {listen} (the port the image listens on), or make the fork honour --port"
                ));
            }
        }
        if let Some(t) = crate::cluster::pod_trouble::trouble(pod, &nodes) {
            fatal = true;
            summary.get_or_insert(t);
        }
        for (reason, message) in &waiting {
            match reason.as_str() {
                "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" => {
                    let lower = message.to_lowercase();
                    let refused = ["401", "403", "unauthorized", "authorization failed", "no basic auth", "forbidden"];
                    let refused = refused.iter().any(|w| lower.contains(w));
                    let with_secret =
                        pod.spec.as_ref().is_some_and(|s| s.image_pull_secrets.iter().flatten().next().is_some());
                    // The kubelet pulls without a pull secret it has not read yet: a Secret made
                    // just before the pod can miss the first pull, so only a second refusal counts.
                    if refused && with_secret && failed_pulls(&events.items) < 2 {
                        continue;
                    }
                    fatal = true;
                    let hint = match (refused, with_secret) {
                        (true, false) => "the registry wants credentials the node does not have: run up with --pull-secret (a pull secret made from your registry credentials), or make the package public",
                        (true, true) => "the registry refuses the pull secret's credentials: log in again with a token that may read the package (docker login), then run up with --pull-secret",
                        _ => "check the image exists and the node may pull it: make the GHCR package public or run up with --pull-secret",
                    };
                    summary.get_or_insert(format!(
                        "pod {pod_name} cannot pull image {image} ({reason}: {message}); {hint}"
                    ));
                }
                "CrashLoopBackOff" => {
                    fatal = true;
                    summary.get_or_insert(format!(
                        "pod {pod_name} is crash-looping ({restarts} restarts); its last log lines are above"
                    ));
                }
                _ => {}
            }
        }
        if summary.is_none() && !probe_failures.is_empty() {
            summary = Some(format!("pod {pod_name} fails its probes: {}", probe_failures[0]));
        }
    }
    let summary = summary.unwrap_or_else(|| {
        if let Some(failure) = list.items.is_empty().then(|| crate::cluster::pod_trouble::replica_failure(d)).flatten()
        {
            failure
        } else if list.items.is_empty() {
            "no pod was created: check the ReplicaSet's events (kubectl describe deployment)".to_string()
        } else {
            "the pods are not ready yet; wait longer with --timeout".to_string()
        }
    });
    Ok(Diagnosis { summary, details, fatal })
}

/// How many times the kubelet failed to pull the pod's image, by its events.
fn failed_pulls(events: &[Event]) -> i32 {
    events
        .iter()
        .filter(|e| e.reason.as_deref() == Some("Failed"))
        .filter(|e| e.message.as_deref().is_some_and(|m| m.starts_with("Failed to pull image")))
        .map(|e| e.count.unwrap_or(1).max(1))
        .sum()
}

/// The port in a probe failure like `dial tcp 10.244.0.5:8686: connect: connection refused`.
fn refused_port(message: &str) -> Option<u16> {
    if !message.contains("connection refused") {
        return None;
    }
    let before = message.split("connection refused").next()?;
    let dial = before.rsplit("dial tcp ").next()?;
    dial.split(':').rev().find_map(|part| part.trim().parse().ok())
}

/// The flag in the CLI's `Error: unknown flag: --stateless` line.
fn unknown_flag(line: &str) -> Option<String> {
    let flag = line.split("unknown flag: ").nth(1)?.split_whitespace().next()?;
    Some(flag.to_string())
}

/// The port in the server's `"HTTP server starting" server.addr=":8080"` log line.
fn listen_port(line: &str) -> Option<u16> {
    if !line.contains("HTTP server starting") {
        return None;
    }
    let addr = line.split("server.addr=").nth(1)?.trim_start_matches('"');
    let addr = addr.split(['"', ' ']).next()?;
    addr.rsplit(':').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ports_from_probe_events_and_logs() {
        let m = r#"Readiness probe failed: Get "http://10.244.0.5:8686/healthz": dial tcp 10.244.0.5:8686: connect: connection refused"#;
        assert_eq!(refused_port(m), Some(8686));
        assert_eq!(refused_port("Readiness probe failed: HTTP probe failed with statuscode: 500"), None);
        let l = r#"I1125 01:02:03.000000       1 http.go:60] "HTTP server starting" server.addr=":8080" endpoints="/mcp, /healthz""#;
        assert_eq!(listen_port(l), Some(8080));
        assert_eq!(listen_port(r#""HTTP server starting" server.addr="127.0.0.1:18081""#), Some(18081));
        assert_eq!(listen_port("something else :9000"), None);
        assert_eq!(unknown_flag("Error: unknown flag: --stateless").as_deref(), Some("--stateless"));
        assert_eq!(unknown_flag("all good"), None);
    }
}
