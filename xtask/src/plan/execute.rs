//! Carries a plan out, step by step, printing each step as it starts and what it changed: the only
//! code that changes the cluster for `up` and `down`.

use crate::cluster::client::{root_cause, Cluster, FIELD_MANAGER};
use crate::cluster::manifests::Object;
use crate::cluster::state_configmap::{self, State};
use crate::oci::reference::ImageRef;
use crate::plan::data::{Action, Plan, Step};
use crate::programs::shell::Shell;
use crate::programs::signals;
use crate::server::deployed::{self, Live};
use crate::{cluster::address, cluster::lock, cluster::pods_gone, cluster::rollout, oci::chart, programs::helm};
use anyhow::{anyhow, bail, Context, Result};
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, Patch, PatchParams};
use std::time::{Duration, Instant};

/// How a plan ended.
pub enum Outcome {
    Done(Box<Done>),
    /// The lock was held by another run, which may have changed what is to be done: plan again.
    Replan,
}

/// What carrying a plan out changed, and what it saw on the way.
#[derive(Default)]
pub struct Done {
    /// One line per change, in the past tense.
    pub changes: Vec<String>,
    /// The objects as they rolled out, when the plan waited for a rollout.
    pub live: Option<Live>,
    /// The nodePort the plan set, if it set one.
    pub node_port: Option<i32>,
}

struct Run<'a> {
    sh: &'a Shell,
    cluster: &'a Cluster,
    helm: Option<&'a helm::Helm>,
    plan: &'a Plan,
    lock: Option<(lock::Held, bool)>,
    done: Done,
}

pub async fn execute(sh: &Shell, cluster: Option<&Cluster>, helm: Option<&helm::Helm>, plan: &Plan) -> Result<Outcome> {
    let cluster = cluster.context("no reachable cluster to carry the plan out on")?;
    signals::watch();
    let mut run = Run { sh, cluster, helm, plan, lock: None, done: Done::default() };
    let result = run.all().await;
    // Kept only when the plan went through and the namespace takes the lease along.
    if let Some((held, keep)) = run.lock.take() {
        if !(keep && matches!(result, Ok(true))) {
            held.release().await;
        }
    }
    Ok(if result? { Outcome::Done(Box::new(run.done)) } else { Outcome::Replan })
}

impl Run<'_> {
    /// Every step in order; `false` when the plan must be made again.
    async fn all(&mut self) -> Result<bool> {
        let total = self.plan.steps.len();
        for (i, step) in self.plan.steps.iter().enumerate() {
            if let Some(signal) = signals::pending() {
                bail!(
                    "interrupted by {}: stopped before step {}/{total} ({}), which did not run",
                    signals::name(signal),
                    i + 1,
                    step.describe()
                );
            }
            eprintln!("step {}/{total}: {}: {}", i + 1, step.describe(), step.reason);
            if !self.one(step).await? {
                eprintln!("another run held the lock and may have changed the cluster: planning again");
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn changed(&mut self, what: String) {
        eprintln!("{what}");
        self.done.changes.push(what);
    }

    async fn one(&mut self, step: &Step) -> Result<bool> {
        let (ns, release) = (self.plan.namespace.as_str(), self.plan.release.as_str());
        let target = crate::cluster::client::helm_target(Some(self.cluster));
        match &step.action {
            Action::WaitNamespaceGone { namespace, timeout_secs } => tokio::select! {
                gone = wait_until_gone(self.cluster, namespace, Duration::from_secs(*timeout_secs)) => gone?,
                signal = signals::next() => bail!(
                    "interrupted by {} while waiting for namespace/{namespace} to be deleted (it goes on in the cluster)",
                    signals::name(signal)
                ),
            },
            Action::Apply { change, object, manifest } | Action::ApplyHidden { change, object, manifest } => {
                self.cluster.apply(&Object { value: manifest.clone() }).await?;
                let done = match *change {
                    "create" => "created",
                    "adopt" => "adopted",
                    _ => "updated",
                };
                self.changed(format!("{done} {object}"));
            }
            Action::Lock { wait_secs, no_wait, keep, replan, .. } => {
                let task = format!("cargo xtask {}", self.plan.task);
                let held = tokio::select! {
                    held = lock::acquire(self.cluster, ns, release, &task, *no_wait, Duration::from_secs(*wait_secs)) => held?,
                    signal = signals::next() => bail!("interrupted by {} while waiting for the lock of {release}", signals::name(signal)),
                };
                let waited = held.waited || *replan;
                self.lock = Some((held, *keep));
                return Ok(!waited);
            }
            Action::RecordOwner { .. } => {
                state_configmap::write(self.cluster, ns, release, &State { owned: true, ..State::default() }).await?
            }
            Action::PullChart { chart, from, path } => {
                chart::pull(self.sh, &ImageRef::parse(from)?, chart, path).await?;
                eprintln!("pulled chart {chart} into {}", path.display());
            }
            Action::RecoverRelease { status, command } => {
                helm::run(self.sh, command).await?;
                self.changed(format!("release {release} was left {status}: ran {}", command[1]));
            }
            Action::Helm { command, values } => {
                let (dir, path) = private_values(values)?;
                let ran = helm::run_upgrade(self.sh, command, &path, &target, release, ns).await;
                drop(dir);
                ran?;
                if let Some(h) = self.helm {
                    eprintln!("ran helm {} ({})", h.version, h.path.display());
                }
                self.changed(format!("helm release {release} upgraded"));
            }
            Action::WaitRollout { deployment, timeout_secs, mode, chart } => {
                tokio::select! {
                    waited = rollout::wait(self.cluster, ns, deployment, Duration::from_secs(*timeout_secs)) => waited?,
                    signal = signals::next() => bail!(
                        "interrupted by {} while waiting for deployment/{deployment}: helm has deployed release {release}; its rollout goes on in the cluster (`cargo xtask status` shows it)",
                        signals::name(signal)
                    ),
                }
                let live = deployed::read(self.cluster, ns, deployment).await?;
                live.check_mode(mode, chart)?;
                self.done.live = Some(live);
            }
            Action::SetNodePort { service, port } => {
                set_node_port(self.cluster, ns, service, *port).await?;
                self.done.node_port = Some(*port);
                self.changed(format!("nodePort set to {port}"));
            }
            Action::SetTrafficPolicy { service } => {
                let services: Api<Service> = Api::namespaced(self.cluster.client.clone(), ns);
                let patch = serde_json::json!({"spec": {"externalTrafficPolicy": "Local"}});
                let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
                services
                    .patch(service, &params, &Patch::Merge(&patch))
                    .await
                    .with_context(|| format!("cannot set service {ns}/{service}'s externalTrafficPolicy"))?;
                self.changed(format!("service/{service} externalTrafficPolicy Local"));
            }
            Action::RecordState { node_port, deployed_sha256, chart_digest, deployment, .. } => {
                let live = match self.done.live.take() {
                    Some(l) => l,
                    None => deployed::read(self.cluster, ns, deployment).await?,
                };
                let allocated = match (self.done.node_port, &live.service) {
                    (Some(p), _) => p,
                    (None, Some(s)) => address::current_node_port(s)?,
                    (None, None) => bail!("service {ns}/{deployment} does not exist after helm ran"),
                };
                let next = State {
                    owned: true,
                    node_port: Some(allocated),
                    deployed_sha256: Some(deployed_sha256.clone()),
                    chart_digest: Some(chart_digest.clone()),
                    rendered: Some(live.fingerprint()),
                    foreign: false,
                };
                state_configmap::write(self.cluster, ns, release, &next).await?;
                self.done.live = Some(live);
                if *node_port != Some(allocated) {
                    self.changed(format!("nodePort {allocated} recorded"));
                }
            }
            Action::Uninstall { command } => {
                helm::run(self.sh, command).await?;
                self.changed(format!("helm release {release}"));
            }
            Action::Delete { object, manifest } => {
                self.cluster.delete(&Object { value: manifest.clone() }).await?;
                self.changed(object.clone());
            }
            Action::ForgetDeployment { node_port, .. } => {
                state_configmap::keep_port_only(self.cluster, ns, release).await?;
                let kept = node_port.map(|p| format!(", nodePort {p} kept for the next `up`")).unwrap_or_default();
                self.changed(format!("the deployment record{kept}"));
            }
            Action::ForgetState { config_map } => {
                state_configmap::forget(self.cluster, ns, release).await?;
                self.changed(format!("configmap/{config_map}"));
            }
            Action::WaitPodsGone { selector, timeout_secs } => tokio::select! {
                gone = pods_gone::wait(self.cluster, &self.plan.namespace, selector, Duration::from_secs(*timeout_secs)) => gone?,
                signal = signals::next() => bail!(
                    "interrupted by {} while waiting for the pods {selector} to go (they go on terminating)",
                    signals::name(signal)
                ),
            },
            Action::DeleteNamespace { namespace, timeout_secs, .. } => {
                let namespaces: Api<Namespace> = Api::all(self.cluster.client.clone());
                namespaces.delete(namespace, &Default::default()).await?;
                wait_until_gone(self.cluster, namespace, Duration::from_secs(*timeout_secs)).await?;
                self.changed(format!("namespace/{namespace}"));
            }
        }
        Ok(true)
    }
}

/// A file holding `values` in a private temp directory (0700, the file 0600, a fresh name),
/// removed with the directory when it is dropped, whatever happened.
fn private_values(values: &str) -> Result<(tempfile::TempDir, std::path::PathBuf)> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = tempfile::Builder::new()
        .prefix("kmcp-xtask-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .context("cannot make a private temp directory")?;
    let path = dir.path().join("values.yaml");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .context("cannot write the values file")?;
    file.write_all(values.as_bytes()).context("cannot write the values file")?;
    Ok((dir, path))
}

/// Waits until the namespace is gone (a delete in progress: its finalizers run).
async fn wait_until_gone(cluster: &Cluster, ns: &str, timeout: Duration) -> Result<()> {
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    let start = Instant::now();
    while namespaces.get_opt(ns).await.with_context(|| format!("cannot read namespace/{ns}"))?.is_some() {
        if start.elapsed() >= timeout {
            bail!("namespace {ns} is still terminating after {}s: look for finalizers (kubectl get namespace {ns} -o yaml)", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

async fn set_node_port(cluster: &Cluster, ns: &str, name: &str, port: i32) -> Result<()> {
    let services: Api<Service> = Api::namespaced(cluster.client.clone(), ns);
    let service = services
        .get_opt(name)
        .await
        .with_context(|| format!("cannot read service {ns}/{name}"))?
        .ok_or_else(|| anyhow!("service {ns}/{name} does not exist after helm ran"))?;
    let mut ports = service.spec.and_then(|s| s.ports).unwrap_or_default();
    if let Some(first) = ports.first_mut() {
        first.node_port = Some(port);
    }
    let patch = serde_json::json!({"spec": {"ports": ports}});
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    match services.patch(name, &params, &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 422 => {
            bail!("nodePort {port} is not available ({}): pick another with --node-port, or forget the recorded one with `cargo xtask down`", s.message)
        }
        Err(e) => Err(anyhow!("cannot set the nodePort of service {name}: {}", root_cause(&e))),
    }
}
