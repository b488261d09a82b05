//! `cargo xtask test` on Linux: install and build what the tests need on a fresh machine (registry,
//! server binary, helm 3 and 4, the local cluster and its node), start the cluster, then run the tests.

use super::run_binaries::{
    built_binaries, cargo, deploy_slots, report, run_alone, run_on_the_shared_cluster_alone, start, without_cluster,
    EarlyBuild,
};
use super::Args;
use super::{act, fetch};
use crate::common::workspace;
use crate::local::environment::{self, Environment, Layout, Parts};
use crate::local::helm;
use crate::local::host_state::HostState;
use crate::programs::shell::Shell;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use xshell::cmd;

pub(super) fn run(sh: &Shell, args: Args) -> Result<()> {
    let root = workspace::root();
    let early = match args.bench || !args.cargo_args.is_empty() {
        true => None,
        false => Some(EarlyBuild::start(sh, &root)?),
    };
    // A given cluster (KMCP_TEST_KUBECONFIG) replaces the local one, which must leave the host's
    // network, iptables, mounts and cgroups exactly as it found them.
    let local = std::env::var_os("KMCP_TEST_KUBECONFIG").is_none();
    let deps = root.join("target/test-deps");
    std::fs::create_dir_all(&deps).with_context(|| format!("cannot make {}", deps.display()))?;
    let fetching = fetch::start(&deps);
    let parts = environment::build(sh, &root, local)?;
    let guard = ensure_guard_binary(sh, &root, &deps)?;
    let fetched = fetch::finish(fetching)?;
    {
        let _dir = sh.sh.push_dir(&root);
        let actionlint = &fetched.actionlint;
        sh.run(cmd!(sh.sh, "{actionlint}")).context("the GitHub workflows fail actionlint (its findings are above)")?;
    }
    let helm3 = helm::build_helm3(sh, &root)?;
    let act = act::build(sh, &root)?;
    let _env = [
        sh.sh.push_env("KMCP_BUILDX", &parts.tools.buildx),
        sh.sh.push_env("MCP_SERVER_BIN_AMD64", &fetched.server_amd64),
        sh.sh.push_env("MCP_SERVER_BIN_ARM64", &fetched.server_arm64),
        sh.sh.push_env("MCP_SERVER_BIN_OLDEST", &fetched.server_oldest),
        sh.sh.push_env("KMCP_GUARD_BIN", &guard),
        sh.sh.push_env("KMCP_INSPECTOR", &fetched.inspector),
        sh.sh.push_env("KMCP_HELM3", &helm3),
        sh.sh.push_env("KMCP_HELM4", &parts.tools.helm4),
        sh.sh.push_env("KMCP_ACT", &act),
    ];
    let before = if local { Some(HostState::read(sh)?) } else { None };
    let result = with_environment(sh, &root, &parts, &args, early);
    match before {
        Some(before) => before.compare(&HostState::read(sh)?, "the test cluster", &root.join("target"), result),
        None => result,
    }
}

/// Starts the tests' environment (the registry, BuildKit and, unless a given cluster is used, the
/// local cluster), runs the tests or the benchmarks on it; then, with the shared cluster stopped,
/// the tests that start a local environment of their own (`cargo xtask dev`'s), one at a time.
fn with_environment(sh: &Shell, root: &Path, parts: &Parts, args: &Args, early: Option<EarlyBuild>) -> Result<()> {
    let mut env = Environment::start(parts, &Layout::tests(&root.join("target")))?;
    let _registry_env = sh.sh.push_env("KMCP_TEST_REGISTRY", &env.registry.host);
    let _buildkit_env = sh.sh.push_env("KMCP_BUILDKIT", format!("unix://{}", env.buildkit.socket.display()));
    // The cluster tests mostly wait on rollouts: run more of them at once than there are cores.
    let _threads = std::env::var_os("RUST_TEST_THREADS").is_none().then(|| sh.sh.push_env("RUST_TEST_THREADS", "6"));
    let _slots = sh.sh.push_env("KMCP_TEST_SLOTS", deploy_slots(&root.join("target/test-slots"))?);
    let cluster_env = env.cluster_dir().zip(parts.cluster.as_ref()).map(|(dir, c)| {
        [sh.sh.push_env("KMCP_TESTCLUSTER", dir), sh.sh.push_env("KMCP_TESTCLUSTER_BIN", &c.testcluster)]
    });
    let extra = &args.cargo_args;
    if args.bench {
        return sh.run(cargo(sh, "bench --locked -p xtask --bench wall_times", extra)).context("the benchmarks failed");
    }
    if !extra.is_empty() {
        return sh.run(cargo(sh, "test --workspace --locked --no-fail-fast", extra)).context("the tests failed");
    }
    let binaries = built_binaries(sh, early)?;
    let (free, on_cluster): (Vec<_>, Vec<_>) = binaries.iter().partition(|b| without_cluster(b));
    let since = std::time::Instant::now();
    let mut started = start(sh, &free, since)?;
    let second_node = match cluster_env {
        Some(_) => run_on_the_shared_cluster_alone(sh, &binaries),
        None => {
            println!("skipped: the tests with a second node (a given cluster: no worker of ours can join it)");
            Ok(())
        }
    };
    if let Err(e) = second_node {
        let _ = report(started);
        return Err(e);
    }
    started.extend(start(sh, &on_cluster, since)?);
    report(started)?;
    drop(cluster_env);
    match env.stop_cluster() {
        true => run_alone(sh, &binaries),
        false => Ok(()),
    }
}

/// The Host/Origin guard (`guard/`) for this machine, built with its Go as `image` builds it in
/// the fork's Go image: the test deployments run it in front of the server.
fn ensure_guard_binary(sh: &Shell, root: &Path, dir: &Path) -> Result<PathBuf> {
    let src = root.join("guard");
    let bin = dir.join(format!("kmcp-guard-{}", crate::local::go_build::source_key(&src)?));
    if bin.is_file() {
        return Ok(bin);
    }
    crate::local::go_build::require_go()?;
    let _env = crate::local::go_build::go_env(sh, root);
    let _cgo = sh.sh.push_env("CGO_ENABLED", "0");
    let _dir = sh.sh.push_dir(&src);
    let ldflags = "-s -w";
    sh.run(cmd!(sh.sh, "go build -trimpath -ldflags {ldflags} -o {bin} ."))
        .context("cannot build the guard (go build's output is above)")?;
    Ok(bin)
}
