//! The host's own network (namespaces, links, addresses), iptables, mounts, kernel tunables and
//! cgroups (not systemd's units), read before the test cluster starts and again after it stopped:
//! the tests leave them as found.

use crate::programs::shell::Shell;
use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use xshell::cmd;

pub(crate) struct HostState(BTreeMap<&'static str, BTreeSet<String>>);

impl HostState {
    pub(crate) fn read(sh: &Shell) -> Result<HostState> {
        let out =
            |c: xshell::Cmd<'_>| -> Result<String> { Ok(String::from_utf8_lossy(&sh.query(c)?.stdout).into_owned()) };
        let mut parts = BTreeMap::new();
        parts.insert("network namespace", out(cmd!(sh.sh, "ip netns list"))?.lines().map(first_word).collect());
        parts.insert("link", out(cmd!(sh.sh, "ip -o link"))?.lines().filter_map(|l| field(l, 1)).collect());
        let addresses = out(cmd!(sh.sh, "ip -o addr"))?;
        parts.insert(
            "address",
            addresses.lines().filter_map(|l| Some(format!("{} {}", field(l, 1)?, field(l, 3)?))).collect(),
        );
        let mut rules = out(cmd!(sh.sh, "iptables-save"))?;
        rules.push_str(&out(cmd!(sh.sh, "ip6tables-save"))?);
        parts.insert("iptables", rules.lines().filter(|l| !l.starts_with('#')).map(without_counters).collect());
        let mounts = std::fs::read_to_string("/proc/mounts")?;
        parts.insert("mount", mounts.lines().map(str::to_string).collect());
        parts.insert("kernel tunable", TUNABLES.iter().filter_map(|t| tunable(t)).collect());
        let mut cgroups = BTreeSet::new();
        walk(Path::new("/sys/fs/cgroup"), 0, &mut cgroups);
        parts.insert("cgroup", cgroups);
        Ok(HostState(parts))
    }

    /// `result`, unless `after` differs: then the differences, a line each, and an error that
    /// `what` left the host changed (or `result`'s own error).
    pub(crate) fn compare(&self, after: &HostState, what: &str, result: Result<()>) -> Result<()> {
        let changes = self.changes(after);
        for c in &changes {
            eprintln!("{c}");
        }
        if !changes.is_empty() {
            result?;
            anyhow::bail!("{what} left the host changed ({} differences above)", changes.len());
        }
        println!("the host is as it was found (network namespaces, links, addresses, iptables, mounts, kernel tunables, cgroups)");
        result
    }

    /// What differs in `after`, a line each (`+` appeared, `-` went).
    fn changes(&self, after: &HostState) -> Vec<String> {
        let mut lines = Vec::new();
        for (kind, before) in &self.0 {
            let now = &after.0[kind];
            lines.extend(now.difference(before).map(|l| format!("+ {kind}: {l}")));
            lines.extend(before.difference(now).map(|l| format!("- {kind}: {l}")));
        }
        lines
    }
}

/// The host-wide kernel tunables kubelet and kube-proxy set (the node's teardown puts them back).
const TUNABLES: [&str; 10] = [
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/netfilter/nf_conntrack_max",
    "net/netfilter/nf_conntrack_tcp_timeout_established",
    "net/netfilter/nf_conntrack_tcp_timeout_close_wait",
    "net/bridge/bridge-nf-call-iptables",
];

fn tunable(name: &str) -> Option<String> {
    let value = std::fs::read_to_string(Path::new("/proc/sys").join(name)).ok()?;
    Some(format!("{name} = {}", value.trim()))
}

fn first_word(line: &str) -> String {
    line.split_whitespace().next().unwrap_or_default().to_string()
}

fn field(line: &str, n: usize) -> Option<String> {
    Some(line.split_whitespace().nth(n)?.trim_end_matches(':').split('@').next()?.to_string())
}

/// iptables-save's packet counters (`[12:345]`) change by themselves.
fn without_counters(line: &str) -> String {
    match line.rfind(" [") {
        Some(i) if line.ends_with(']') => line[..i].to_string(),
        _ => line.to_string(),
    }
}

/// A cgroup systemd keeps for one of its units (`system.slice`, `cron.service`, `session-3.scope`):
/// the machine's own services come and go there while the tests run, and the tests start no unit
/// (kubelet's cgroupfs driver, runc and BuildKit name theirs `kubepods...`, `pod<uid>`, ids).
fn is_systemd_unit(name: &str) -> bool {
    [".slice", ".scope", ".service", ".mount", ".socket", ".swap"].iter().any(|s| name.ends_with(s))
}

fn walk(dir: &Path, depth: usize, out: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        if is_systemd_unit(&e.file_name().to_string_lossy()) {
            continue;
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.insert(e.path().display().to_string());
            if depth < 8 {
                walk(&e.path(), depth + 1, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_systemd_unit;

    #[test]
    fn systemd_units_are_the_machines_and_the_tests_cgroups_are_not() {
        for unit in ["system.slice", "cron.service", "session-3.scope", "user-0.slice", "dev-hugepages.mount"] {
            assert!(is_systemd_unit(unit), "{unit}");
        }
        for ours in ["kubepods", "burstable", "pod0d1f7c2e-1111", "buildkit", "4b3f9a0c1d2e", "kmcp-node"] {
            assert!(!is_systemd_unit(ours), "{ours}");
        }
    }
}
