//! A whole local environment, as `cargo xtask dev` starts it: its parts built (or found cached),
//! then the registry, BuildKit and the cluster started, their state under one directory, and the
//! record that says it runs; stopped in the reverse order when dropped.

use super::buildkit::{self, RunningBuildkit};
use super::cluster::{build_cluster, ClusterParts, RunningCluster};
use super::pidfile::{Claim, Pidfile};
use super::registry::{Contents, RunningRegistry};
use crate::programs::shell::Shell;
use anyhow::Result;
use std::path::Path;

/// What an environment runs, built from Go and cached under `target/` (as the tests cache them).
pub(crate) struct Parts {
    pub cluster: ClusterParts,
    pub tools: buildkit::Tools,
}

pub(crate) fn build(sh: &Shell, root: &Path) -> Result<Parts> {
    super::packages::ensure(sh)?;
    Ok(Parts { cluster: build_cluster(sh, root)?, tools: buildkit::build(sh, root)? })
}

/// The running environment. Fields drop in order: the cluster first (it deletes its pods, stops
/// its node and removes what it made on the host), then BuildKit, the registry, the record.
pub(crate) struct Environment {
    _cluster: RunningCluster,
    _buildkit: RunningBuildkit,
    _registry: RunningRegistry,
    claim: Claim,
}

/// The cgroup under which the environment's BuildKit runs its build steps.
const BUILDKIT_CGROUP: &str = "kmcp-dev-buildkit";

impl Environment {
    /// Starts the environment with its state in `dir` (the registry's contents are kept from the
    /// last run, so an unchanged fork's image is there already); refused while another runs.
    pub(crate) fn start(parts: &Parts, dir: &Path, owner: &str) -> Result<Environment> {
        let mut claim = Claim::take(owner)?;
        let registry = RunningRegistry::start(&dir.join("registry"), Contents::Kept)?;
        let buildkit = RunningBuildkit::start(&parts.tools.buildkitd, &dir.join("buildkit"), BUILDKIT_CGROUP)?;
        let cluster = RunningCluster::start(&parts.cluster, &dir.join("cluster"), &registry.host)?;
        claim.fill(&registry.host, &buildkit.socket, &cluster.dir)?;
        Ok(Environment { _cluster: cluster, _buildkit: buildkit, _registry: registry, claim })
    }

    pub(crate) fn record(&self) -> &Pidfile {
        self.claim.record()
    }
}
