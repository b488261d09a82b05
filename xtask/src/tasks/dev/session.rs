//! A `dev` session, top to bottom: the inputs checked; the environment attached to (when one runs)
//! or started; a round (`image`, `up --verify`) and the URL printed; then, for the `dev` that
//! started the environment, running until a signal (a round on every change with `--watch`); the
//! environment stopped and the host compared with what was found. `--down` stops another `dev`.

use super::deploy::{round, tag_of, Target};
use super::{prerequisites, Args};
use crate::common::error_text::one_line;
use crate::common::workspace;
use crate::local::buildkit;
use crate::local::environment::{self, Environment, Layout};
use crate::local::host_state::HostState;
use crate::local::pidfile::{start_time, Pidfile};
use crate::programs::shell::{Ended, Shell};
use crate::programs::signals;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::Duration;

pub(super) async fn run(sh: &Shell, args: Args) -> Result<()> {
    if args.down {
        return stop_the_running_dev().await;
    }
    let fork = std::path::absolute(args.fork.as_deref().context("no fork checkout given: pass --fork PATH")?)?;
    let root = workspace::root();
    // Absolute: the record names the cluster's directory to a `dev` started anywhere.
    let dir = std::path::absolute(args.dir.clone().unwrap_or_else(|| root.join("target/kmcp-dev")))?;
    let running = Pidfile::running();
    prerequisites::check(sh, &fork, running.is_none())?;
    signals::watch();
    let Some(record) = running else {
        let before = HostState::read(sh)?;
        let result = with_own_environment(sh, &args, &fork, &root, &dir).await;
        return before.compare(&HostState::read(sh)?, "the local environment", &dir, result);
    };
    println!(
        "dev: attaching to the local environment that `cargo xtask {}` started (pid {})",
        record.owner, record.pid
    );
    let tools = buildkit::build(sh, &root)?;
    let target = target_for(sh, &record, &tools, &dir)?;
    if deploy(sh, &target, &args, &fork).await? && args.watch {
        watch(sh, &target, &args, &fork).await;
    }
    println!("dev: the deployment stays in that environment until it stops");
    Ok(())
}

async fn with_own_environment(sh: &Shell, args: &Args, fork: &Path, root: &Path, dir: &Path) -> Result<()> {
    let parts = environment::build(sh, root, true)?;
    interrupted("the environment started")?;
    let env = Environment::start(&parts, &Layout::dev(dir))?;
    interrupted("the deployment")?;
    let record = env.record().context("the environment started without its cluster")?;
    let target = target_for(sh, record, &parts.tools, dir)?;
    if !deploy(sh, &target, args, fork).await? {
        bail!("interrupted by {} before the deployment was ready", signal_name());
    }
    println!("dev: running; Ctrl-C (or SIGTERM, or `cargo xtask dev --down`) stops the local environment and leaves the host as found");
    watch(sh, &target, args, fork).await;
    println!("dev: {}: stopping the local environment", signal_name());
    drop(env);
    Ok(())
}

/// A round (whose `up` prints the URL and the client configuration); false when a signal ended it.
async fn deploy(sh: &Shell, target: &Target, args: &Args, fork: &Path) -> Result<bool> {
    Ok(!matches!(round(sh, target, args, fork).await?, Ended::Interrupted(_)))
}

/// Until a signal; with `--watch`, a round whenever the fork's tag changes (a failed round is
/// reported and the watch goes on).
async fn watch(sh: &Shell, target: &Target, args: &Args, fork: &Path) {
    let mut last = tag_of(fork).ok();
    if args.watch {
        println!("dev: watching {} for new commits and changes", fork.display());
    }
    while signals::pending().is_none() {
        tokio::select! {
            _ = signals::next() => return,
            _ = tokio::time::sleep(Duration::from_secs(2)), if args.watch => {
                let now = tag_of(fork).ok();
                if now == last || now.is_none() {
                    continue;
                }
                println!("dev: the fork is now {}: rebuilding and redeploying", now.as_deref().unwrap_or_default());
                last = now;
                match deploy(sh, target, args, fork).await {
                    Ok(true) => println!("dev: redeployed; watching"),
                    Ok(false) => return,
                    Err(e) => println!("dev: the round failed: {}; watching for the next change", one_line(&e)),
                }
            }
        }
    }
}

fn target_for(sh: &Shell, record: &Pidfile, tools: &buildkit::Tools, dir: &Path) -> Result<Target> {
    let (kubeconfig, node_ip) = record.cluster_access()?;
    Ok(Target {
        exe: std::env::current_exe().context("cannot find this program")?,
        docker_config: {
            let config = dir.join("docker");
            buildkit::buildx_config(sh, &config, &tools.buildx, Some(("kmcp-dev", &record.buildkit)))?;
            config
        },
        helm_dir: tools.helm4.parent().map(Path::to_path_buf).unwrap_or_default(),
        registry: record.registry.clone(),
        kubeconfig,
        node_ip,
    })
}

/// An error when a signal came while the last step blocked (it is noted once the runtime runs).
fn interrupted(before: &str) -> Result<()> {
    match signals::pending() {
        Some(s) => bail!("interrupted by {} before {before}", signals::name(s)),
        None => Ok(()),
    }
}

fn signal_name() -> &'static str {
    signals::pending().map_or("a signal", signals::name)
}

/// `dev --down`: SIGTERM to the `dev` that started the running environment, then waits until it
/// has stopped it and ended.
async fn stop_the_running_dev() -> Result<()> {
    let Some(record) = Pidfile::running() else {
        println!("no local environment runs on this machine: nothing to stop");
        return Ok(());
    };
    if record.owner != "dev" {
        bail!(
            "the local environment was started by `cargo xtask {}` (pid {}), not by `dev`: it stops when that ends",
            record.owner,
            record.pid
        );
    }
    let pid = record.pid;
    if !crate::programs::signals::send(i32::try_from(pid)?, libc::SIGTERM) {
        bail!(
            "cannot signal `cargo xtask dev` (pid {pid}): it ended, or runs as another user (run `dev --down` as root)"
        );
    }
    println!("asked `cargo xtask dev` (pid {pid}) to stop; waiting while it stops the local environment");
    while start_time(record.pid) == Some(record.started) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("stopped: the local environment is gone (its `dev` says whether the host is as it was found)");
    Ok(())
}
