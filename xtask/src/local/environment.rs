//! A whole local environment, as `cargo xtask dev` and `cargo xtask test` start it: its parts built
//! (or found cached), then the registry, BuildKit and the cluster started, their state where the
//! layout says, and the record that says it runs; stopped in the reverse order when dropped.

use super::buildkit::{self, RunningBuildkit};
use super::cluster::{build_cluster, ClusterParts, RunningCluster};
use super::pidfile::{Claim, Pidfile};
use super::registry::{Contents, RunningRegistry};
use crate::programs::shell::Shell;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// What an environment runs, built from Go and cached under `target/`.
pub(crate) struct Parts {
    /// None when a given cluster replaces the local one (the tests' `KMCP_TEST_KUBECONFIG`).
    pub cluster: Option<ClusterParts>,
    pub tools: buildkit::Tools,
}

pub(crate) fn build(sh: &Shell, root: &Path, with_cluster: bool) -> Result<Parts> {
    super::packages::ensure(sh)?;
    let cluster = if with_cluster { Some(build_cluster(sh, root)?) } else { None };
    Ok(Parts { cluster, tools: buildkit::build(sh, root)? })
}

/// Where an environment keeps its parts' state and whose it is.
pub(crate) struct Layout {
    pub registry: PathBuf,
    pub contents: Contents,
    pub buildkit: PathBuf,
    /// The cgroup under which BuildKit runs its build steps.
    pub buildkit_cgroup: &'static str,
    pub cluster: PathBuf,
    /// Who takes the claim (`dev`, `test`): the record names it to whoever finds it taken.
    pub owner: &'static str,
}

impl Layout {
    /// `cargo xtask dev`'s: all under `dir`, the registry's contents kept from the last run (an
    /// unchanged fork's image is there already).
    pub(crate) fn dev(dir: &Path) -> Layout {
        Layout {
            registry: dir.join("registry"),
            contents: Contents::Kept,
            buildkit: dir.join("buildkit"),
            buildkit_cgroup: "kmcp-dev-buildkit",
            cluster: dir.join("cluster"),
            owner: "dev",
        }
    }

    /// `cargo xtask test`'s: under `target/`, the registry emptied first.
    pub(crate) fn tests(target: &Path) -> Layout {
        Layout {
            registry: target.join("kmcp-registry"),
            contents: Contents::Fresh,
            buildkit: target.join("kmcp-buildkit"),
            buildkit_cgroup: "kmcp-buildkit",
            cluster: target.join("kmcp-testcluster"),
            owner: "test",
        }
    }
}

/// The running environment. Fields drop in order: the cluster first (it deletes its pods, stops
/// its node and removes what it made on the host), then BuildKit, the registry, the claim.
pub(crate) struct Environment {
    cluster: Option<RunningCluster>,
    pub buildkit: RunningBuildkit,
    pub registry: RunningRegistry,
    claim: Option<Claim>,
}

impl Environment {
    /// Starts the parts as `layout` says; with a cluster, refused while another environment runs
    /// (its network namespaces have fixed names).
    pub(crate) fn start(parts: &Parts, layout: &Layout) -> Result<Environment> {
        let mut claim = parts.cluster.as_ref().map(|_| Claim::take(layout.owner)).transpose()?;
        let registry = RunningRegistry::start(&layout.registry, layout.contents, None)?;
        let buildkit = RunningBuildkit::start(&parts.tools.buildkitd, &layout.buildkit, layout.buildkit_cgroup)?;
        let cluster =
            parts.cluster.as_ref().map(|c| RunningCluster::start(c, &layout.cluster, &registry.host)).transpose()?;
        if let (Some(claim), Some(cluster)) = (claim.as_mut(), cluster.as_ref()) {
            claim.fill(&registry.host, &buildkit.socket, &cluster.dir)?;
        }
        Ok(Environment { cluster, buildkit, registry, claim })
    }

    /// The local cluster's directory, if one runs.
    pub(crate) fn cluster_dir(&self) -> Option<&Path> {
        self.cluster.as_ref().map(|c| c.dir.as_path())
    }

    /// Stops the cluster and lets go of the claim (another environment may start), keeping the
    /// registry and BuildKit; whether a cluster ran.
    pub(crate) fn stop_cluster(&mut self) -> bool {
        let ran = self.cluster.take().is_some();
        self.claim.take();
        ran
    }

    /// The record of a started cluster (`dev` reads where its parts are from it).
    pub(crate) fn record(&self) -> Option<&Pidfile> {
        self.claim.as_ref().map(Claim::record)
    }
}
