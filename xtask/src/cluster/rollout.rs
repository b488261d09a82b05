//! Waiting for the Deployment's rollout (generation-aware); why it failed is `diagnosis`'s.

use crate::cluster::client::Cluster;
use crate::cluster::diagnosis::diagnose;
use anyhow::{bail, Result};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use std::time::{Duration, Instant};

/// The Deployment is read every half second; why it is not complete (its pods, events and logs:
/// several reads, one a log through the kubelet) every two.
const DIAGNOSE_EVERY: Duration = Duration::from_secs(2);

/// Complete when the controller has seen the latest spec and every desired replica is updated and
/// available, with no old replica left.
pub fn is_complete(d: &Deployment) -> bool {
    let generation = d.metadata.generation.unwrap_or(0);
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(s) = &d.status else { return false };
    s.observed_generation.unwrap_or(0) >= generation
        && s.updated_replicas.unwrap_or(0) == desired
        && s.available_replicas.unwrap_or(0) == desired
        && s.replicas.unwrap_or(0) == desired
}

fn progress(d: &Deployment) -> String {
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let s = d.status.clone().unwrap_or_default();
    format!(
        "{}/{desired} updated, {}/{desired} available",
        s.updated_replicas.unwrap_or(0),
        s.available_replicas.unwrap_or(0)
    )
}

/// Waits for the rollout, `timeout` being a deadline for the whole wait: each API call gets only
/// the time that is left, and an API that fails or stops answering is retried with back-off until
/// then. Every error names this step.
pub async fn wait(cluster: &Cluster, namespace: &str, name: &str, timeout: Duration) -> Result<()> {
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), namespace);
    let deadline = Instant::now() + timeout;
    let step = format!("waiting for deployment/{name} rollout");
    let mut last = String::new();
    let mut backoff = Duration::from_millis(500);
    let mut trouble: Option<String> = None;
    let mut diagnosed: Option<Instant> = None;
    let (mut why, mut answered) = (String::from("the pods are not ready yet; wait longer with --timeout"), false);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            match &trouble {
                Some(t) => bail!(
                    "{step}: the API server stopped answering ({t}); gave up after {}s (--timeout)",
                    timeout.as_secs()
                ),
                None => bail!("rollout of deployment/{name} timed out after {}s: {why}", timeout.as_secs()),
            }
        }
        let due = diagnosed.is_none_or(|at| at.elapsed() >= DIAGNOSE_EVERY);
        let round = async {
            let d = deployments.get_opt(name).await?;
            let diagnosis = match &d {
                Some(d) if !is_complete(d) && due => Some(diagnose(cluster, namespace, d).await?),
                _ => None,
            };
            anyhow::Ok((d, diagnosis))
        };
        let (d, diagnosis) = match tokio::time::timeout(left, round).await {
            Ok(Ok(found)) => {
                (trouble, answered) = (None, true);
                backoff = Duration::from_millis(500);
                found
            }
            Ok(Err(e)) => {
                let cause = crate::common::error_text::one_line(&e);
                eprintln!("{step}: the API server did not answer ({cause}); retrying in {}s", backoff.as_secs_f32());
                trouble = Some(cause);
                tokio::time::sleep(backoff.min(deadline.saturating_duration_since(Instant::now()))).await;
                backoff = (backoff * 2).min(Duration::from_secs(8));
                continue;
            }
            // A round the deadline cut short blames the API only if it had time to answer.
            Err(_) => {
                if !answered || left >= Duration::from_secs(3) {
                    trouble.get_or_insert_with(|| "no answer".into());
                }
                continue;
            }
        };
        let Some(d) = d else {
            bail!("deployment {namespace}/{name} does not exist after helm ran: check the chart's output above");
        };
        if is_complete(&d) {
            eprintln!("rollout of deployment/{name} complete ({})", progress(&d));
            return Ok(());
        }
        let now = progress(&d);
        if now != last {
            eprintln!("waiting for deployment/{name}: {now}");
            last = now;
        }
        if let Some(diagnosis) = diagnosis {
            diagnosed = Some(Instant::now());
            why.clone_from(&diagnosis.summary);
            if diagnosis.fatal || Instant::now() >= deadline {
                for line in &diagnosis.details {
                    eprintln!("  {line}");
                }
                let why = if diagnosis.fatal { "failed" } else { "timed out" };
                bail!("rollout of deployment/{name} {why}: {}", diagnosis.summary);
            }
        }
        tokio::time::sleep(Duration::from_millis(500).min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus};

    fn deployment(generation: i64, observed: i64, updated: i32, available: i32, replicas: i32) -> Deployment {
        Deployment {
            metadata: kube::api::ObjectMeta { generation: Some(generation), ..Default::default() },
            spec: Some(DeploymentSpec { replicas: Some(1), ..Default::default() }),
            status: Some(DeploymentStatus {
                observed_generation: Some(observed),
                updated_replicas: Some(updated),
                available_replicas: Some(available),
                replicas: Some(replicas),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn completion_needs_the_latest_generation() {
        assert!(is_complete(&deployment(2, 2, 1, 1, 1)));
        assert!(!is_complete(&deployment(3, 2, 1, 1, 1)), "status is from an older spec");
        assert!(!is_complete(&deployment(2, 2, 0, 1, 1)), "old replica still serving");
        assert!(!is_complete(&deployment(2, 2, 1, 0, 1)), "not available");
        assert!(!is_complete(&deployment(2, 2, 1, 1, 2)), "old replica not gone");
        assert!(!is_complete(&Deployment::default()));
    }
}
