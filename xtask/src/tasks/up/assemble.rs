//! `up`, planning's last part: the steps in order (the namespace, then the lock and the rest) and
//! the plan's summary.

use super::read::{Planner, Seen};
use crate::cluster::lock::LeaseState;
use crate::plan::data::{Action, Plan, Step};
use crate::server::deployed::Live;
use anyhow::Result;

/// The plan and the live objects it was made from.
pub(super) struct Planned {
    pub(super) plan: Plan,
    pub(super) live: Option<Live>,
}

impl Planner<'_> {
    pub(super) async fn plan(&self, notes: &[String]) -> Result<Planned> {
        let mut notes = notes.to_vec();
        let mut seen = self.read().await?;
        let why_helm = self.why_helm(&seen);
        if why_helm.is_some() {
            self.helm(&mut notes)?;
        }
        let (namespace, mut work): (Vec<Step>, Vec<Step>) = std::mem::take(&mut seen.rbac)
            .into_iter()
            .partition(|s| matches!(&s.action, Action::Apply { object, .. } if object.starts_with("namespace/")));
        if let Some(why) = &why_helm {
            work.extend(self.helm_steps(&seen, why).await?);
        }
        // The Service's nodePort and traffic policy go in before the rollout: with the pod not yet
        // ready, the NodePort never serves through kube-proxy's address translation.
        let (service, record): (Vec<Step>, Vec<Step>) = self
            .node_port_steps(&seen, why_helm.is_some())?
            .into_iter()
            .partition(|s| matches!(s.action, Action::SetNodePort { .. } | Action::SetTrafficPolicy { .. }));
        work.extend(service);
        work.extend(self.rollout_step(&seen, why_helm.is_some()));
        work.extend(record);
        let moved = work.iter().find_map(|s| match &s.action {
            Action::SetNodePort { port, .. } => Some(*port),
            _ => None,
        });
        if let Some(port) = moved {
            self.check_node_port_free(port).await?;
        }
        Ok(self.assemble(seen, namespace, work, &notes))
    }

    /// The steps in order: a terminating namespace waited for, the namespace, then the lock and
    /// the rest (the lock also when another run holds it: its changes call for a new plan).
    pub(super) fn assemble(&self, seen: Seen, namespace: Vec<Step>, work: Vec<Step>, notes: &[String]) -> Planned {
        let (ns, release, _) = self.names();
        let mut notes = notes.to_vec();
        if self.cluster.is_none() {
            notes.push("no reachable cluster: showing the plan for an empty cluster".into());
        }
        let mut steps = Vec::new();
        if seen.terminating {
            steps.push(Step::new(
                Action::WaitNamespaceGone { namespace: ns.into(), timeout_secs: self.args.timeout.as_secs() },
                format!("namespace {ns} is terminating: wait until it is gone, then create it afresh"),
                vec![],
            ));
        }
        steps.extend(namespace);
        if !work.is_empty() || matches!(seen.lease, LeaseState::Held { .. }) {
            let wait = self.args.timeout.as_secs();
            steps.push(crate::plan::data::lock_step(ns, release, &seen.lease, wait, self.args.no_wait, false));
            steps.extend(work);
        }
        let (pinned, chart) = (&self.desired.pinned, &self.desired.chart);
        let summary = if steps.is_empty() {
            format!("release {release} is up to date ({pinned}, chart {})", chart.digest)
        } else {
            format!("deploy {pinned} as release {release} in {ns}, chart {}", chart.display)
        };
        let placement = self.desired.placement.as_ref().map(|p| p.describe());
        let (namespace, release) = (ns.into(), release.into());
        let plan = Plan { task: "up", namespace, release, summary, notes, placement, steps };
        Planned { plan, live: seen.live }
    }
}
