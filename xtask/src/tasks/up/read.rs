//! `up`, planning's first part: what the cluster holds now (nothing is changed while it is read).

use super::desired::Desired;
use super::inputs::{Args, Inputs};
use super::rbac::plan_rbac;
use crate::cluster::allow_from;
use crate::cluster::client::Cluster;
use crate::cluster::lock::{self, LeaseState};
use crate::cluster::pull_secret;
use crate::cluster::state_configmap::{self, State};
use crate::oci::chart;
use crate::plan::data::Step;
use crate::programs::helm;
use crate::programs::shell::Shell;
use crate::server::deployed::{self, Live};
use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams};

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

impl Seen {
    /// Nothing there: no cluster, or a namespace being deleted (what it holds counts as gone).
    fn gone() -> Seen {
        let (recorded, live, drifted, lease) = (State::default(), None, Vec::new(), LeaseState::Absent);
        Seen { rbac: Vec::new(), terminating: false, recorded, live, drifted, lease }
    }
}

/// Works out what `up` will change: the namespace, then under the lock the RBAC objects, helm, the
/// rollout, the nodePort and the record.
pub(super) struct Planner<'a> {
    pub(super) sh: &'a Shell,
    pub(super) cluster: Option<&'a Cluster>,
    pub(super) args: &'a Args,
    pub(super) input: &'a Inputs,
    pub(super) desired: &'a Desired,
    /// helm, once a plan needs it: its version is asked only then (a no-op runs no program).
    pub(super) helm: std::cell::OnceCell<Option<helm::Helm>>,
}

impl Planner<'_> {
    /// helm and its version (`helm version` runs the first time only); `None` when a dry run could
    /// not find it (noted).
    pub(super) fn helm(&self, notes: &mut Vec<String>) -> Result<Option<&helm::Helm>> {
        if self.helm.get().is_none() {
            let found = self.sh.unless_dry_run(helm::preflight(self.sh), notes)?;
            let _ = self.helm.set(found);
        }
        Ok(self.helm.get().and_then(Option::as_ref))
    }

    pub(super) fn names(&self) -> (&str, &str, String) {
        let (ns, release) = (self.args.cluster.namespace.as_str(), self.args.cluster.release.as_str());
        (ns, release, chart::fullname(release))
    }

    pub(super) async fn read(&self) -> Result<Seen> {
        let (ns, release, name) = self.names();
        let toolsets = self.input.mode.toolsets.as_deref();
        let mut wanted =
            vec![allow_from::policy(ns, release, &self.input.allow_from, self.desired.door_port(&self.input.mode))];
        let mut unwanted = Vec::new();
        let registry = &self.input.image.registry;
        match &self.desired.pull_credentials {
            Some(c) => wanted.push(pull_secret::secret(ns, release, registry, Some(c))),
            None => unwanted.push(pull_secret::secret(ns, release, registry, None)),
        }
        let objects = (wanted, unwanted);
        // Each read stands alone: all of them at once.
        let rbac_read =
            plan_rbac(self.cluster, ns, release, toolsets, objects, (self.args.adopt, self.args.adopt_from.as_deref()));
        let Some(c) = self.cluster else {
            let (rbac, terminating) = rbac_read.await?;
            return Ok(Seen { rbac, terminating, ..Seen::gone() });
        };
        let (rbac_found, recorded, live, lease) = tokio::try_join!(
            rbac_read,
            state_configmap::read(c, ns, release),
            deployed::read(c, ns, &name),
            lock::inspect(c, ns, release)
        )?;
        let (rbac, terminating) = rbac_found;
        if terminating {
            return Ok(Seen { rbac, terminating, ..Seen::gone() });
        }
        let release_marked = match live.deployment.is_some() && !recorded.owned {
            true => crate::cluster::release_mark::marked(c, ns, release).await?,
            false => false,
        };
        self.refuse_what_is_not_ours(&recorded, &live, release_marked)?;
        let drifted = match &recorded.rendered {
            Some(r) if live.deployment.is_some() => deployed::drift(r, &live.fingerprint()),
            _ => Vec::new(),
        };
        Ok(Seen { rbac, terminating, recorded, live: Some(live), drifted, lease })
    }

    /// A ConfigMap with the record's name but not its mark, or a release deployed with neither a
    /// record of this instance nor its mark (a plain `helm install`), is not this deployment's:
    /// refused unless `--adopt`.
    fn refuse_what_is_not_ours(&self, recorded: &State, live: &deployed::Live, release_marked: bool) -> Result<()> {
        let (ns, release, name) = self.names();
        let me = crate::cluster::manifests::instance(ns, release);
        let mark = crate::cluster::manifests::INSTANCE_ANNOTATION;
        if self.args.adopt || self.args.adopt_from.is_some() {
            return Ok(());
        }
        if recorded.foreign {
            anyhow::bail!(
                "configmap/{} in {ns} exists without the {mark} mark of {me}: up does not take it over as its record; remove or rename it, or pass --adopt to make it this deployment's",
                state_configmap::name(release)
            );
        }
        if live.deployment.is_some() && !recorded.owned && !release_marked {
            anyhow::bail!(
                "release {release} in {ns} was not installed by `cargo xtask up` (deployment/{name} is there, with no record of {me}): up does not take it over; pass --adopt to make it this deployment's (its values are replaced by up's), or use another --release or --namespace"
            );
        }
        Ok(())
    }

    /// Refuses a nodePort another Service already has (Kubernetes would refuse it only after helm
    /// ran, with the release exposed on a port of its choosing).
    pub(super) async fn check_node_port_free(&self, port: i32) -> Result<()> {
        let Some(c) = self.cluster else { return Ok(()) };
        let (ns, _, name) = self.names();
        let services = Api::<Service>::all(c.client.clone()).list(&ListParams::default()).await;
        let services = services.context("cannot list the Services to see which nodePorts are taken")?;
        let user = services.items.iter().find(|s| {
            let ours = s.metadata.namespace.as_deref() == Some(ns) && s.metadata.name.as_deref() == Some(&name);
            let ports = s.spec.as_ref().and_then(|s| s.ports.as_ref());
            !ours && ports.is_some_and(|p| p.iter().any(|p| p.node_port == Some(port)))
        });
        if let Some(s) = user {
            let (uns, uname) =
                (s.metadata.namespace.as_deref().unwrap_or(""), s.metadata.name.as_deref().unwrap_or(""));
            let flag = if self.input.node_port.is_some() { "--node-port" } else { "the recorded nodePort" };
            bail!("nodePort {port} ({flag}) is taken by service {uns}/{uname}: pick another --node-port, or leave it out and Kubernetes allocates one");
        }
        Ok(())
    }

    pub(super) fn deployment<'s>(&self, seen: &'s Seen) -> Option<&'s k8s_openapi::api::apps::v1::Deployment> {
        seen.live.as_ref().and_then(|l| l.deployment.as_ref())
    }
}
