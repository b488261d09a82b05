//! `up`, planning's second part: from what was read, the steps for helm, the rollout, the
//! Service and the record, each with its reason.

use super::read::{Planner, Seen};
use crate::cluster::address::current_node_port;
use crate::cluster::placement::HOSTNAME_LABEL;
use crate::cluster::state_configmap;
use crate::plan::data::{Action, Step, Write};
use crate::{cluster::rollout, programs::helm};
use anyhow::Result;

impl Planner<'_> {
    /// Why helm must run, if it must.
    pub(super) fn why_helm(&self, seen: &Seen) -> Option<String> {
        let drifted = &seen.drifted;
        if self.deployment(seen).is_none() {
            Some("the release is not deployed".to_string())
        } else if let Some(moved) = self.moved(seen) {
            Some(moved)
        } else if seen.recorded.deployed_sha256.as_deref() != Some(self.desired.hash.as_str()) {
            Some("the image, chart or values changed".to_string())
        } else if !drifted.is_empty() {
            Some(format!("the live objects drifted from the release: {} changed by hand", drifted.join(", ")))
        } else {
            None
        }
    }

    /// On a cluster of several nodes, a server pinned to another node than the one at the URL, or
    /// to none (deployed before it was pinned, or on one node that has since had others join).
    fn moved(&self, seen: &Seen) -> Option<String> {
        let placement = self.desired.placement.as_ref()?;
        let spec = self.deployment(seen)?.spec.as_ref()?.template.spec.as_ref();
        let pinned = spec.and_then(|s| s.node_selector.as_ref()).and_then(|s| s.get(HOSTNAME_LABEL));
        placement.moves(pinned.map(String::as_str))
    }

    pub(super) fn record_writes(&self) -> Vec<Write> {
        let (ns, release, _) = self.names();
        vec![Write::new("patch", "configmaps", Some(ns), &state_configmap::name(release))]
    }

    /// The ownership record, the chart pull, a recovery of a release left pending, and helm itself.
    pub(super) async fn helm_steps(&self, seen: &Seen, why: &str) -> Result<Vec<Step>> {
        let (ns, release, _) = self.names();
        let (desired, mut steps) = (self.desired, Vec::new());
        if !seen.recorded.owned {
            steps.push(Step::new(
                Action::RecordOwner { config_map: state_configmap::name(release) },
                "so that `down` knows the release is this deployment's, even if this run does not get to the end"
                    .into(),
                self.record_writes(),
            ));
        }
        if let Some(from) = &desired.chart.pull_from {
            let (chart, path) = (desired.chart.display.clone(), desired.chart.path.clone());
            let action = Action::PullChart { chart, from: from.to_string(), path };
            steps.push(Step::new(action, "the chart is not in the cache".into(), vec![]));
        }
        let target = crate::cluster::client::helm_target(self.cluster);
        let helm = self.helm.get().and_then(Option::as_ref);
        if let (Some(_), Some(cluster), Some(_)) = (helm, self.cluster, &seen.live) {
            let status = crate::cluster::helm_history::status_of(self.sh, cluster, ns, release).await?;
            if let Some((command, how)) = helm::recovery(&status, &target, release, ns) {
                steps.push(Step::new(
                    Action::RecoverRelease { status: status.clone(), command },
                    format!("release {release} was left {status} by a helm run that did not finish: {how}"),
                    vec![],
                ));
            }
        }
        let mut extra = desired.set.clone();
        extra.extend(crate::cluster::release_mark::labels_flag(ns, release));
        let v4 = helm.is_some_and(|h| h.version.starts_with("v4"));
        if v4 && !seen.drifted.is_empty() {
            extra.push("--force-conflicts".into());
        }
        let command = helm::upgrade_install(&target, release, &desired.chart.path, ns, &extra);
        steps.push(Step::new(Action::Helm { command, values: desired.values.clone() }, why.into(), vec![]));
        Ok(steps)
    }

    pub(super) fn rollout_step(&self, seen: &Seen, helm_runs: bool) -> Option<Step> {
        if !helm_runs && self.deployment(seen).is_some_and(rollout::is_complete) {
            return None;
        }
        let action = Action::WaitRollout {
            deployment: self.names().2,
            timeout_secs: self.args.timeout.as_secs(),
            mode: self.input.mode.clone(),
            chart: self.desired.chart.display.clone(),
        };
        let why = if helm_runs { "helm changes the release" } else { "the last rollout has not completed" };
        Some(Step::new(action, why.into(), vec![]))
    }

    /// The nodePort put back on the recorded one (or `--node-port`), and the record written.
    pub(super) fn node_port_steps(&self, seen: &Seen, helm_runs: bool) -> Result<Vec<Step>> {
        let (ns, release, name) = self.names();
        let (input, mut steps) = (self.input, Vec::new());
        let service = seen.live.as_ref().and_then(|l| l.service.as_ref());
        // A Service whose type was changed by hand has no nodePort until helm puts its type back.
        let current = service.and_then(|s| current_node_port(s).ok());
        let wanted = input.node_port.or(seen.recorded.node_port);
        let port = i32::from(input.mode.port);
        let port_moves = helm_runs && service.is_some_and(|s| service_port(s) != Some(port));
        let origin = if input.node_port.is_some() { "--node-port" } else { "recorded" };
        let set_port = match (wanted.or(current.filter(|_| port_moves)), current) {
            (Some(w), Some(c)) if w != c => Some((w, format!("the Service's nodePort is {c}, not the {origin} {w}"))),
            (Some(w), None) => Some((w, format!("the {origin} nodePort {w}: set once helm has created the Service"))),
            (Some(w), Some(_)) if port_moves => Some((
                w,
                format!(
                    "--port {port} gives the Service a new port entry, which Kubernetes gives a new nodePort: keep {w}"
                ),
            )),
            _ => None,
        };
        let final_port = set_port.as_ref().map(|(p, _)| *p).or(current);
        if let Some((port, why)) = set_port {
            let writes = vec![Write::new("patch", "services", Some(ns), &name)];
            steps.push(Step::new(Action::SetNodePort { service: name.clone(), port }, why, writes));
        }
        let policy = service.and_then(|s| s.spec.as_ref()?.external_traffic_policy.clone());
        if policy.as_deref() != Some("Local") {
            let why = match policy {
                Some(p) => format!("it is {p}: kube-proxy would hand the pod the node's address, not the client's, and the NetworkPolicy could not tell a laptop from the internet"),
                None => "set once helm has created the Service: the pod then sees the client's address, which the NetworkPolicy checks".to_string(),
            };
            let writes = vec![Write::new("patch", "services", Some(ns), &name)];
            steps.push(Step::new(Action::SetTrafficPolicy { service: name.clone() }, why, writes));
        }
        if helm_runs || (final_port.is_some() && seen.recorded.node_port != final_port) {
            let action = Action::RecordState {
                config_map: state_configmap::name(release),
                deployment: name,
                node_port: final_port,
                deployed_sha256: self.desired.hash.clone(),
                chart_digest: self.desired.chart.digest.clone(),
            };
            let why = "the next `up` keeps the nodePort and tells a no-op and drift from it";
            steps.push(Step::new(action, why.into(), self.record_writes()));
        }
        Ok(steps)
    }
}

pub(super) fn service_port(service: &k8s_openapi::api::core::v1::Service) -> Option<i32> {
    service.spec.as_ref()?.ports.as_ref()?.first().map(|p| p.port)
}
