//! What `dev` needs of the machine, checked before anything is built, started or changed: a line
//! for each that is missing, then one error.

use crate::programs::git::Checkout;
use crate::programs::shell::{find_program, Shell};
use anyhow::{bail, Result};
use std::path::Path;
use xshell::cmd;

/// The Go that builds the local parts (BuildKit v0.34.2 asks for it).
use crate::local::go_build::GO_AT_LEAST;

/// `starting`: no environment runs, so this `dev` starts one (and builds what is not cached).
pub(super) fn check(sh: &Shell, fork: &Path, starting: bool) -> Result<()> {
    let mut missing = Vec::new();
    if !crate::local::packages::is_root() {
        missing.push("root: run it as root (`sudo -E cargo xtask dev ...`): the local cluster's node makes network namespaces, mounts and cgroups".to_string());
    }
    if let Some(m) = go_missing(sh) {
        missing.push(m);
    }
    if find_program("docker").is_none() {
        missing.push("the docker CLI: install it (Debian's docker.io or docker-ce-cli; no daemon is needed)".into());
    }
    let packages = crate::local::packages::missing();
    if starting && find_program("apt-get").is_none() && !packages.is_empty() {
        missing.push(format!("Debian's {}: install them (this machine has no apt-get to do it)", packages.join(", ")));
    }
    match Checkout::open(fork) {
        Err(e) => missing.push(format!("the fork: {}", crate::common::error_text::one_line(&e))),
        Ok(_) if !fork.join("Dockerfile").is_file() => {
            missing.push(format!("the fork's Dockerfile: {} has none", fork.display()))
        }
        Ok(_) => {}
    }
    if starting {
        if let Some(left) = kubepods() {
            missing.push(format!("a machine without a kubelet: one runs here ({left} exists), and the local node would share its cgroups"));
        }
    }
    for m in &missing {
        eprintln!("missing: {m}");
    }
    if !missing.is_empty() {
        bail!("cargo xtask dev cannot start: {} of its prerequisites are missing (above)", missing.len());
    }
    Ok(())
}

fn go_missing(sh: &Shell) -> Option<String> {
    let want = format!(
        "Go {}.{}.{} or newer (https://go.dev/dl/): the local parts are built with it",
        GO_AT_LEAST.0, GO_AT_LEAST.1, GO_AT_LEAST.2
    );
    if find_program("go").is_none() {
        return Some(want);
    }
    let out = sh.query(cmd!(sh.sh, "go env GOVERSION")).ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.trim().trim_start_matches("go");
    let mut parts = version.split(|c: char| !c.is_ascii_digit()).map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next()?, parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (found < GO_AT_LEAST).then(|| format!("{want} (this machine has {})", text.trim()))
}

/// A pods' cgroup that a kubelet made, when no local environment's node runs.
fn kubepods() -> Option<String> {
    let dirs = std::fs::read_dir("/sys/fs/cgroup").ok()?;
    let mut candidates: Vec<_> = dirs.flatten().map(|d| d.path().join("kubepods")).collect();
    candidates.push(Path::new("/sys/fs/cgroup/kubepods").to_path_buf());
    candidates.into_iter().find(|p| p.is_dir()).map(|p| p.display().to_string())
}
