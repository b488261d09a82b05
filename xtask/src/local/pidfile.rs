//! The pidfile of the one local environment running on this machine (`/run/kmcp-local.json`): who
//! started it (`dev` or `test`), its process (pid and start time, so a reused pid is not taken for
//! it), and where its registry, BuildKit and cluster are. Another `dev` attaches through it; a
//! second start is refused through it. The cluster's network namespace names are fixed, so there
//! is one at a time.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const PATH: &str = "/run/kmcp-local.json";

#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct Pidfile {
    /// `dev` or `test`: the command that started it.
    pub owner: String,
    pub pid: u32,
    /// The process's start time (clock ticks after boot, `/proc/<pid>/stat`).
    pub started: u64,
    /// `127.0.0.1:PORT`, which the node pulls from.
    pub registry: String,
    /// `unix:///.../buildkitd.sock`
    pub buildkit: String,
    /// The cluster's directory (its `ready.json` names the kubeconfig and the node's address).
    pub cluster: PathBuf,
}

impl Pidfile {
    /// The environment that runs now, if one does (a record whose process has gone is ignored).
    pub(crate) fn running() -> Option<Pidfile> {
        read().flatten()
    }

    /// The admin kubeconfig and the node's address, from the cluster's `ready.json`.
    pub(crate) fn cluster_access(&self) -> Result<(PathBuf, std::net::IpAddr)> {
        let path = self.cluster.join("ready.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let ready: serde_json::Value = serde_json::from_str(&text)?;
        let field =
            |k: &str| ready[k].as_str().map(str::to_string).with_context(|| format!("{k} in {}", path.display()));
        let node_ip =
            field("nodeIP")?.parse().with_context(|| format!("nodeIP in {} is not an address", path.display()))?;
        Ok((PathBuf::from(field("kubeconfig")?), node_ip))
    }
}

/// This process's hold on the record: taken before anything starts, filled in once everything
/// runs, removed when dropped (only if it is still this process's).
pub(crate) struct Claim {
    record: Pidfile,
}

impl Claim {
    /// Refuses when an environment runs already; else records this process as its owner.
    pub(crate) fn take(owner: &str) -> Result<Claim> {
        match read() {
            Some(Some(r)) => bail!(
                "a local environment already runs on this machine (started by `cargo xtask {}`, pid {}): stop it first ({})",
                r.owner,
                r.pid,
                match r.owner.as_str() {
                    "dev" => "Ctrl-C in its terminal, or `cargo xtask dev --down`",
                    _ => "it stops when its tests end",
                }
            ),
            // A record whose process has gone.
            Some(None) => drop(std::fs::remove_file(PATH)),
            None => {}
        }
        let pid = std::process::id();
        let started = start_time(pid).context("cannot read this process's start time")?;
        let record = Pidfile {
            owner: owner.into(),
            pid,
            started,
            registry: String::new(),
            buildkit: String::new(),
            cluster: PathBuf::new(),
        };
        // Made whole, and only if absent (a hard link fails on an existing name): of two starts at
        // once, one makes it and the other is refused. (Two that both found a gone process's
        // record may both remove it first.)
        let tmp = written_aside(&record)?;
        let linked = std::fs::hard_link(&tmp, PATH);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                bail!("another local environment is starting on this machine right now: wait for it, or stop it")
            }
            other => other.with_context(|| format!("cannot write {PATH}"))?,
        }
        Ok(Claim { record })
    }

    pub(crate) fn record(&self) -> &Pidfile {
        &self.record
    }

    /// Records where the environment's parts are.
    pub(crate) fn fill(&mut self, registry: &str, buildkit: &Path, cluster: &Path) -> Result<()> {
        self.record.registry = registry.into();
        self.record.buildkit = format!("unix://{}", buildkit.display());
        self.record.cluster = cluster.into();
        write(&self.record)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if Pidfile::running().is_some_and(|r| r.pid == self.record.pid) {
            let _ = std::fs::remove_file(PATH);
        }
    }
}

/// The record on this machine: none; `Some(None)` when its process has gone (or it cannot be
/// read as a record); `Some(Some(..))` when its process runs.
fn read() -> Option<Option<Pidfile>> {
    let text = std::fs::read_to_string(PATH).ok()?;
    let record = serde_json::from_str::<Pidfile>(&text).ok();
    Some(record.filter(|r| start_time(r.pid) == Some(r.started)))
}

/// Replaces the record whole (readers never see it half written).
fn write(record: &Pidfile) -> Result<()> {
    let tmp = written_aside(record)?;
    std::fs::rename(&tmp, PATH).with_context(|| format!("cannot write {PATH}"))
}

/// The record written to a file of this process's beside its place.
fn written_aside(record: &Pidfile) -> Result<String> {
    let tmp = format!("{PATH}.{}", std::process::id());
    std::fs::write(&tmp, serde_json::to_vec_pretty(record)?).with_context(|| format!("cannot write {tmp}"))?;
    Ok(tmp)
}

/// A process's start time in clock ticks after boot (field 22 of `/proc/<pid>/stat`).
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}
