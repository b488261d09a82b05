//! Debian's packages the tests run, installed with apt-get when one is missing.

use crate::programs::shell::{find_program, Shell};
use anyhow::{Context, Result};
use std::path::Path;
use xshell::cmd;

/// Debian's packages the tests run: a real registry, the node's runtime (containerd, runc, the
/// CNI plugins) with the tools kube-proxy and kube-router call (iptables, ipset, conntrack), and
/// the static busybox the `image` tests' base images carry (runc serves BuildKit too), and jq, which
/// e2e.yml runs (the workflow tests run it with act).
const PACKAGES: [(&str, &str); 9] = [
    ("docker-registry", "docker-registry"),
    ("containerd", "containerd"),
    ("runc", "runc"),
    ("/usr/lib/cni/bridge", "containernetworking-plugins"),
    ("iptables", "iptables"),
    ("ipset", "ipset"),
    ("conntrack", "conntrack"),
    ("busybox", "busybox-static"),
    ("jq", "jq"),
];

/// The packages whose program is not here.
pub(crate) fn missing() -> Vec<&'static str> {
    PACKAGES
        .iter()
        .filter(
            |(program, _)| {
                if program.starts_with('/') {
                    !Path::new(program).exists()
                } else {
                    find_program(program).is_none()
                }
            },
        )
        .map(|(_, package)| *package)
        .collect()
}

pub(crate) fn ensure(sh: &Shell) -> Result<()> {
    let missing = missing();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing Debian's {} (the local registry and the node's runtime)", missing.join(", "));
    let _env = sh.sh.push_env("DEBIAN_FRONTEND", "noninteractive");
    let apt = |args: &[&str]| {
        let cmd = if is_root() { cmd!(sh.sh, "apt-get {args...}") } else { cmd!(sh.sh, "sudo -E apt-get {args...}") };
        sh.run(cmd)
    };
    apt(&["update", "-qq"])?;
    let install = [&["install", "-y", "-qq", "--no-install-recommends"][..], &missing].concat();
    apt(&install)
        .with_context(|| format!("cannot install {}: run `apt-get install` of them as root", missing.join(" ")))?;
    Ok(())
}

pub(crate) fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}
