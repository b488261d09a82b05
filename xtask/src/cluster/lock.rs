//! One run at a time per instance: a `coordination.k8s.io/v1` Lease in the namespace, held for the
//! whole run by `up` and `down`, renewed while they run, and expiring on its own after a crash.

use crate::cluster::client::{Cluster, FIELD_MANAGER};
use crate::cluster::manifests::{instance, INSTANCE_ANNOTATION};
use anyhow::{bail, Context, Result};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use std::time::Duration;

/// A lease nobody renewed for this long is free.
const DURATION_SECS: i32 = 30;
const RENEW_EVERY: Duration = Duration::from_secs(10);

pub fn name(release: &str) -> String {
    format!("{release}-xtask-lock")
}

/// Who we are: host, process and task, so that a waiting run can say who holds the lock.
fn identity(task: &str) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{task} on {host} (pid {})", std::process::id())
}

pub struct Held {
    api: Api<Lease>,
    name: String,
    renewer: tokio::task::JoinHandle<()>,
    /// Another run held the lock first: what it did may change the plan.
    pub waited: bool,
}

/// The instance's lease as planning sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseState {
    Absent,
    /// There, but nobody holds it (let go, or expired).
    Free,
    Held {
        holder: String,
        since: String,
    },
}

/// Takes the instance's lock, waiting (with a message) while another run holds it, or failing at
/// once with `no_wait`; gives up after `timeout`.
pub async fn acquire(
    cluster: &Cluster,
    ns: &str,
    release: &str,
    task: &str,
    no_wait: bool,
    timeout: Duration,
) -> Result<Held> {
    let api: Api<Lease> = Api::namespaced(cluster.client.clone(), ns);
    let name = name(release);
    let me = identity(task);
    let start = std::time::Instant::now();
    let mut said = false;
    loop {
        let now = MicroTime(jiff_now());
        let lease = api.get_opt(&name).await.with_context(|| format!("cannot read lease/{name}"))?;
        let attempt = match &lease {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        labels: Some([("app.kubernetes.io/managed-by".to_string(), FIELD_MANAGER.to_string())].into()),
                        annotations: Some([(INSTANCE_ANNOTATION.to_string(), instance(ns, release))].into()),
                        ..Default::default()
                    },
                    spec: Some(spec(&me, now.clone(), now.clone())),
                };
                api.create(&PostParams::default(), &lease).await.map(drop)
            }
            Some(l) if !marked(l, ns, release) => return Err(foreign(ns, release)),
            Some(l) if is_free(l) => {
                let mut l = l.clone();
                l.spec = Some(spec(&me, now.clone(), now.clone()));
                api.replace(&name, &PostParams::default(), &l).await.map(drop)
            }
            Some(l) => {
                let (holder, since) = holder(l);
                if no_wait {
                    bail!("{ns}/{release} is locked by {holder} since {since}: another `up` or `down` is running; wait for it, or run again without --no-wait");
                }
                if start.elapsed() >= timeout {
                    bail!(
                        "{ns}/{release} is still locked by {holder} (since {since}) after {}s: try again later",
                        timeout.as_secs()
                    );
                }
                if !said {
                    eprintln!("waiting for the lock on {ns}/{release}: held by {holder} since {since}");
                    said = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        match attempt {
            Ok(()) => break,
            // Someone else got there first (409 on create or a stale resourceVersion): look again.
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot take lease/{name}")),
        }
    }
    let renewer = tokio::spawn(renew(api.clone(), name.clone(), me));
    Ok(Held { api, name, renewer, waited: said })
}

/// Who holds the lock now, if anyone (one read).
pub async fn inspect(cluster: &Cluster, ns: &str, release: &str) -> Result<LeaseState> {
    let api: Api<Lease> = Api::namespaced(cluster.client.clone(), ns);
    Ok(match api.get_opt(&name(release)).await.context("cannot read the lock")? {
        None => LeaseState::Absent,
        Some(l) if !marked(&l, ns, release) => return Err(foreign(ns, release)),
        Some(l) if is_free(&l) => LeaseState::Free,
        Some(l) => {
            let (holder, since) = holder(&l);
            LeaseState::Held { holder, since }
        }
    })
}

/// The lease carries this instance's mark: its name alone proves nothing.
fn marked(lease: &Lease, ns: &str, release: &str) -> bool {
    lease.metadata.annotations.as_ref().and_then(|a| a.get(INSTANCE_ANNOTATION)) == Some(&instance(ns, release))
}

fn foreign(ns: &str, release: &str) -> anyhow::Error {
    let name = name(release);
    anyhow::anyhow!(
        "lease/{name} in {ns} exists without the {INSTANCE_ANNOTATION} mark of {}: `cargo xtask up` and `down` do not take it over; if nothing of yours uses it, remove it (kubectl delete lease -n {ns} {name})",
        instance(ns, release)
    )
}

fn spec(holder: &str, acquired: MicroTime, renewed: MicroTime) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(holder.to_string()),
        lease_duration_seconds: Some(DURATION_SECS),
        acquire_time: Some(acquired),
        renew_time: Some(renewed),
        ..Default::default()
    }
}

fn is_free(lease: &Lease) -> bool {
    let Some(spec) = &lease.spec else { return true };
    if spec.holder_identity.as_deref().unwrap_or_default().is_empty() {
        return true;
    }
    let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()).map(|t| t.0);
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(DURATION_SECS));
    match renewed {
        Some(t) => jiff_now().duration_since(t).as_secs() > duration,
        None => true,
    }
}

fn holder(lease: &Lease) -> (String, String) {
    let spec = lease.spec.clone().unwrap_or_default();
    (
        spec.holder_identity.unwrap_or_else(|| "?".into()),
        spec.acquire_time.map(|t| t.0.to_string()).unwrap_or_else(|| "?".into()),
    )
}

async fn renew(api: Api<Lease>, name: String, me: String) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        if let Ok(Some(mut l)) = api.get_opt(&name).await {
            if l.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) != Some(me.as_str()) {
                return;
            }
            if let Some(s) = l.spec.as_mut() {
                s.renew_time = Some(MicroTime(jiff_now()));
            }
            let _ = api.replace(&name, &PostParams::default(), &l).await;
        }
    }
}

fn jiff_now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}

impl Held {
    /// Lets go: the next run need not wait for the lease to expire.
    /// Bounded: an API that stopped answering must not hold the run up (the lease then expires).
    pub async fn release(self) {
        self.renewer.abort();
        let params = DeleteParams::default();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.api.delete(&self.name, &params)).await;
    }
}
