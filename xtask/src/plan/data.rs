//! What `up` or `down` will change, as plain data: each step with its reason and the API writes it
//! makes. `--dry-run` prints a plan (as text, or as JSON with `--json`; `main` decides); otherwise
//! `execute` carries out the same value.

use crate::cluster::lock::{self, LeaseState};
use crate::server::mode::ServerMode;
use serde::Serialize;
use serde_json::Value;
use std::path::PathBuf;

/// The flags of the tasks that change something.
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct DryRun {
    /// Print the plan (what would change, and why); change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: print the plan as JSON, the same data as the text
    #[arg(long, requires = "dry_run")]
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub(crate) task: &'static str,
    pub(crate) namespace: String,
    pub(crate) release: String,
    /// One line: what the plan does, or why there is nothing to do.
    pub(crate) summary: String,
    /// What planning could not find out (a dry run goes on without it) or leaves alone.
    pub(crate) notes: Vec<String>,
    /// On a cluster of several nodes, the node `up` runs the server on, and why that one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) placement: Option<String>,
    pub(crate) steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Step {
    #[serde(flatten)]
    pub(crate) action: Action,
    /// Why the step is needed.
    pub(crate) reason: String,
    /// The Kubernetes API writes the step makes (helm's own writes are helm's: see its command).
    pub(crate) writes: Vec<Write>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub(crate) enum Action {
    /// Wait until a namespace being deleted is gone, so that it can be created afresh.
    WaitNamespaceGone {
        namespace: String,
        timeout_secs: u64,
    },
    /// Server-side apply (field manager `kmcp-xtask`) of an object of `deploy/rbac.yaml`;
    /// `change` is create, update or adopt.
    Apply {
        change: &'static str,
        object: String,
        manifest: Value,
    },
    /// The same for an object whose content is a credential: the plan names it, never shows it.
    ApplyHidden {
        change: &'static str,
        object: String,
        #[serde(skip)]
        manifest: Value,
    },
    /// Hold the instance's Lease while the rest is carried out, waiting up to `wait_secs` for
    /// another holder; let go at the end unless `keep` (the namespace takes it along).
    Lock {
        lease: String,
        wait_secs: u64,
        no_wait: bool,
        keep: bool,
        /// Another run held the lock when the plan was made: whatever it did since, the rest is
        /// planned again once the lock is ours (even if it was let go before we asked).
        replan: bool,
    },
    /// Record, before helm runs, that this deployment installs the release.
    RecordOwner {
        config_map: String,
    },
    /// Pull the chart by digest (checked) into the cache.
    PullChart {
        chart: String,
        from: String,
        path: PathBuf,
    },
    /// Put a release that an unfinished helm left `pending-*` back in order.
    RecoverRelease {
        status: String,
        command: Vec<String>,
    },
    /// `helm upgrade --install` with `values` in a private file (see `helm::VALUES_FILE`).
    Helm {
        command: Vec<String>,
        values: String,
    },
    /// Wait for the rollout, then check the server runs in `mode`.
    WaitRollout {
        deployment: String,
        timeout_secs: u64,
        mode: ServerMode,
        chart: String,
    },
    SetNodePort {
        service: String,
        port: i32,
    },
    /// `externalTrafficPolicy: Local` on the Service, so the pod sees the client's address.
    SetTrafficPolicy {
        service: String,
    },
    /// Record the nodePort (`None`: the one Kubernetes allocated), the deploy hash, the chart
    /// digest and the rolled-out objects' fingerprint.
    RecordState {
        config_map: String,
        deployment: String,
        node_port: Option<i32>,
        deployed_sha256: String,
        chart_digest: String,
    },
    Uninstall {
        command: Vec<String>,
    },
    Delete {
        object: String,
        manifest: Value,
    },
    /// Forget the deployment in the record; keep its nodePort for the next `up`.
    ForgetDeployment {
        config_map: String,
        node_port: Option<i32>,
    },
    ForgetState {
        config_map: String,
    },
    /// Wait until the pods of the uninstalled release are gone (not merely terminating).
    WaitPodsGone {
        selector: String,
        timeout_secs: u64,
    },
    /// Delete the namespace, with what it holds, and wait until it is gone.
    DeleteNamespace {
        namespace: String,
        with: Vec<String>,
        timeout_secs: u64,
    },
}

/// One API write: as the API server's audit log names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Write {
    pub(crate) verb: &'static str,
    pub(crate) resource: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) namespace: Option<String>,
    pub(crate) name: String,
    /// Made zero or more times (a lease renewal), not exactly once.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) repeated: bool,
}

impl Write {
    pub(crate) fn new(verb: &'static str, resource: &'static str, namespace: Option<&str>, name: &str) -> Write {
        Write { verb, resource, namespace: namespace.map(str::to_string), name: name.to_string(), repeated: false }
    }
}

impl Step {
    pub(crate) fn new(action: Action, reason: String, writes: Vec<Write>) -> Step {
        Step { action, reason, writes }
    }

    /// What the step does, in a line: `create namespace/x`, `run: helm upgrade ...`.
    pub(crate) fn describe(&self) -> String {
        match &self.action {
            Action::WaitNamespaceGone { namespace, timeout_secs } => {
                format!("wait up to {timeout_secs}s until namespace/{namespace} is gone")
            }
            Action::Apply { change, object, .. } => {
                format!(
                    "{change} {object} (server-side apply, field manager {})",
                    crate::cluster::client::FIELD_MANAGER
                )
            }
            Action::ApplyHidden { change, object, .. } => {
                format!("{change} {object} (server-side apply, content hidden)")
            }
            Action::Lock { lease, .. } => format!("take the lock lease/{lease} while the plan is carried out"),
            Action::RecordOwner { config_map } => {
                format!("record in configmap/{config_map} that this deployment installs the release")
            }
            Action::PullChart { chart, path, .. } => format!("pull chart {chart} into {}", path.display()),
            Action::RecoverRelease { command, .. } | Action::Uninstall { command } => {
                format!("run: {}", command.join(" "))
            }
            Action::Helm { command, .. } => format!("run: {}", command.join(" ")),
            Action::WaitRollout { deployment, timeout_secs, mode, .. } => format!(
                "wait up to {timeout_secs}s for deployment/{deployment} to roll out, then check it runs {}",
                mode.describe()
            ),
            Action::SetNodePort { service, port } => format!("set service/{service}'s nodePort to {port}"),
            Action::SetTrafficPolicy { service } => format!("set service/{service}'s externalTrafficPolicy to Local"),
            Action::RecordState { config_map, node_port, chart_digest, .. } => format!(
                "record nodePort {}, the deploy hash and chart {chart_digest} in configmap/{config_map}",
                node_port.map_or("(the one Kubernetes allocates)".to_string(), |p| p.to_string())
            ),
            Action::Delete { object, .. } => format!("delete {object}"),
            Action::ForgetDeployment { config_map, node_port } => format!(
                "forget the deployment in configmap/{config_map}, keeping nodePort {}",
                node_port.map_or("(none recorded)".to_string(), |p| p.to_string())
            ),
            Action::ForgetState { config_map } => format!("delete configmap/{config_map} (the recorded nodePort)"),
            Action::WaitPodsGone { selector, timeout_secs } => {
                format!("wait up to {timeout_secs}s until the pods {selector} are gone")
            }
            Action::DeleteNamespace { namespace, timeout_secs, .. } => {
                format!("delete namespace/{namespace} and wait up to {timeout_secs}s until it is gone")
            }
        }
    }

    /// More lines a person reviewing the plan needs: the manifest, the values, what goes along.
    fn details(&self) -> Vec<String> {
        match &self.action {
            Action::Apply { manifest, .. } => {
                serde_norway::to_string(manifest).unwrap_or_default().lines().map(|l| format!("    {l}")).collect()
            }
            Action::Helm { values, .. } => {
                std::iter::once(format!("    values ({}):", crate::programs::helm::VALUES_FILE))
                    .chain(values.lines().map(|l| format!("        {l}")))
                    .collect()
            }
            Action::DeleteNamespace { with, .. } => {
                with.iter().map(|f| format!("  would delete with it: {f}")).collect()
            }
            _ => Vec::new(),
        }
    }
}

impl Plan {
    /// The plan as a person reads it: one `would ...` line per step, its reason, its details.
    pub fn text(&self) -> String {
        let mut out =
            vec![format!("plan for {} of release {} in {}: {}", self.task, self.release, self.namespace, self.summary)];
        out.extend(self.notes.iter().map(|n| format!("note: {n}")));
        out.extend(self.placement.iter().map(|p| format!("placement: {p}")));
        if self.steps.is_empty() {
            out.push(format!("nothing to do: {}", self.summary));
        }
        for step in &self.steps {
            out.push(format!("would {}", step.describe()));
            out.push(format!("    because {}", step.reason));
            out.extend(step.details());
        }
        out.join("\n")
    }
}

/// The plan's step that takes the lock: the lease's create (or update, when a free one is there),
/// its renewals, and its delete at the end, unless `keep` (the namespace takes it along).
pub(crate) fn lock_step(
    ns: &str,
    release: &str,
    lease: &LeaseState,
    wait_secs: u64,
    no_wait: bool,
    keep: bool,
) -> Step {
    let name = lock::name(release);
    let write = |verb, repeated| Write { repeated, ..Write::new(verb, "leases", Some(ns), &name) };
    let alone = "one `up` or `down` at a time per instance".to_string();
    let (mut writes, reason) = match lease {
        LeaseState::Absent => (vec![write("create", false)], alone),
        LeaseState::Free => (vec![write("update", false)], alone),
        LeaseState::Held { holder, since } => (
            vec![write("create", true), write("update", true)],
            format!("held by {holder} since {since}: wait for it, then plan again"),
        ),
    };
    writes.push(write("update", true));
    if !keep {
        writes.push(write("delete", false));
    }
    let replan = matches!(lease, LeaseState::Held { .. });
    Step { action: Action::Lock { lease: name.clone(), wait_secs, no_wait, keep, replan }, reason, writes }
}
