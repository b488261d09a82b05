//! `up`, planning's first part: what the cluster holds now (nothing is changed while it is read).

use super::desired::Desired;
use super::inputs::{Args, Inputs};
use super::rbac::plan_rbac;
use crate::cluster::allow_from;
use crate::cluster::client::Cluster;
use crate::cluster::lock::{self, LeaseState};
use crate::cluster::pull_secret;
use crate::cluster::state::{self, State};
use crate::oci::chart;
use crate::plan::data::Step;
use crate::programs::helm;
use crate::programs::shell::Shell;
use crate::server::deployed::{self, Live};
use anyhow::Result;

/// What planning reads from the cluster (nothing is changed while it is worked out).
pub(super) struct Seen {
    /// The namespace and RBAC objects to apply.
    pub(super) rbac: Vec<Step>,
    /// The namespace is being deleted: what it holds counts as gone.
    pub(super) terminating: bool,
    pub(super) recorded: State,
    pub(super) live: Option<Live>,
    /// The chart-set fields changed by hand since the last rollout.
    pub(super) drifted: Vec<String>,
    pub(super) lease: LeaseState,
}

/// Works out what `up` will change: the namespace, then under the lock the RBAC objects, helm, the
/// rollout, the nodePort and the record.
pub(super) struct Planner<'a> {
    pub(super) sh: &'a Shell,
    pub(super) cluster: Option<&'a Cluster>,
    pub(super) args: &'a Args,
    pub(super) input: &'a Inputs,
    pub(super) desired: &'a Desired,
    pub(super) helm: Option<&'a helm::Helm>,
}

impl Planner<'_> {
    pub(super) fn names(&self) -> (&str, &str, String) {
        let (ns, release) = (self.args.cluster.namespace.as_str(), self.args.cluster.release.as_str());
        (ns, release, chart::fullname(release))
    }

    pub(super) async fn read(&self) -> Result<Seen> {
        let (ns, release, name) = self.names();
        let toolsets = self.input.mode.toolsets.as_deref();
        let mut wanted = vec![allow_from::policy(ns, release, &self.input.allow_from, self.input.mode.port)];
        let mut unwanted = Vec::new();
        let registry = &self.input.image.registry;
        match &self.desired.pull_credentials {
            Some(c) => wanted.push(pull_secret::secret(ns, release, registry, Some(c))),
            None => unwanted.push(pull_secret::secret(ns, release, registry, None)),
        }
        let objects = (wanted, unwanted);
        let (rbac, terminating) = plan_rbac(self.cluster, ns, release, toolsets, objects, self.args.adopt).await?;
        let Some(c) = self.cluster.filter(|_| !terminating) else {
            let (recorded, live, drifted, lease) = (State::default(), None, Vec::new(), LeaseState::Absent);
            return Ok(Seen { rbac, terminating, recorded, live, drifted, lease });
        };
        let recorded = state::read(c, ns, release).await?;
        let live = deployed::read(c, ns, &name).await?;
        let drifted = match &recorded.rendered {
            Some(r) if live.deployment.is_some() => deployed::drift(r, &live.fingerprint()),
            _ => Vec::new(),
        };
        let lease = lock::inspect(c, ns, release).await?;
        Ok(Seen { rbac, terminating, recorded, live: Some(live), drifted, lease })
    }

    pub(super) fn deployment<'s>(&self, seen: &'s Seen) -> Option<&'s k8s_openapi::api::apps::v1::Deployment> {
        seen.live.as_ref().and_then(|l| l.deployment.as_ref())
    }
}
