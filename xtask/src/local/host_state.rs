//! The host's own network (namespaces, links, addresses), iptables, mounts, kernel tunables and
//! cgroups (not systemd's units), read before the test cluster starts and again after it stopped:
//! the tests leave them as found. Only what the tool and its parts can change is compared (their
//! marks: the `kmcp` names, kubelet's `kubepods`, kube-proxy's and kube-router's `KUBE-` chains,
//! the test networks, the environment's own directory); what another program changes meanwhile (a
//! Docker daemon starting a container, a desktop session) is listed as its, and fails nothing.

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

    /// `result`, unless `after` differs in what the tool and its parts can change: then those
    /// differences, a line each, and an error that `what` left the host changed (or `result`'s own
    /// error). What other programs changed meanwhile is listed as theirs, and fails nothing.
    pub(crate) fn compare(&self, after: &HostState, what: &str, own_dir: &Path, result: Result<()>) -> Result<()> {
        let (own, others): (Vec<String>, Vec<String>) =
            self.changes(after).into_iter().partition(|c| is_own(c, own_dir));
        for c in &others {
            eprintln!("not this tool's (another program changed it meanwhile; left alone): {c}");
        }
        for c in &own {
            eprintln!("{c}");
        }
        if !own.is_empty() {
            result?;
            anyhow::bail!("{what} left the host changed ({} differences above)", own.len());
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

/// The test networks (`testcluster/node/netns.go`): the internal and public ones, pods, Services.
const OWN_NETWORKS: [&str; 4] = ["10.213.0.", "198.51.100.", "10.244.", "10.96."];

/// Whether a change (`+ kind: value`) is one the tool or its parts could have made.
fn is_own(change: &str, own_dir: &Path) -> bool {
    let Some((kind, value)) = change.get(2..).and_then(|c| c.split_once(": ")) else { return true };
    let marked = |v: &str| v.contains("kmcp") || v.contains("kubepods");
    match kind {
        "kernel tunable" => true,
        "network namespace" | "link" | "address" => value.starts_with("kmcp"),
        "iptables" => {
            marked(value)
                || value.contains("KUBE-")
                || value.contains("KMCP")
                || OWN_NETWORKS.iter().any(|n| value.contains(n))
        }
        "mount" => marked(value) || value.split_whitespace().nth(1).is_some_and(|m| Path::new(m).starts_with(own_dir)),
        "cgroup" => {
            let under = value.strip_prefix("/sys/fs/cgroup/").unwrap_or(value);
            under.split('/').take(2).any(|c| c == "kubepods" || c.starts_with("kmcp"))
        }
        _ => true,
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
    use super::{is_own, is_systemd_unit, HostState};
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    fn state(lines: &[(&'static str, &str)]) -> HostState {
        let mut parts: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
        for kind in ["network namespace", "link", "address", "iptables", "mount", "kernel tunable", "cgroup"] {
            parts.insert(kind, BTreeSet::new());
        }
        for (kind, value) in lines {
            parts.get_mut(kind).unwrap().insert(value.to_string());
        }
        HostState(parts)
    }

    /// A Docker daemon starting a container beside the tests (its cgroups, its veth, its chains and
    /// its overlay mount) is not the tool's; anything the tool's parts leave is.
    #[test]
    fn what_others_change_is_theirs_and_what_the_tool_leaves_fails() {
        let dir = Path::new("/home/alice/kmcp/target/dev");
        let before = state(&[]);
        let docker = state(&[
            ("cgroup", "/sys/fs/cgroup/memory/docker/4b3f9a0c1d2e"),
            ("link", "veth12ab34c"),
            ("iptables", ":DOCKER - [0:0]"),
            ("iptables", "-A DOCKER -d 172.17.0.2/32 -p tcp -j ACCEPT"),
            ("mount", "overlay /var/lib/docker/overlay2/abc/merged overlay rw 0 0"),
        ]);
        assert!(before.compare(&docker, "the local environment", dir, Ok(())).is_ok());
        for (kind, leftover) in [
            ("cgroup", "/sys/fs/cgroup/pids/kubepods/burstable/pod0d1f"),
            ("cgroup", "/sys/fs/cgroup/cpu/kmcp-dev-buildkit/buildkit"),
            ("network namespace", "kmcp-node"),
            ("link", "kmcp0"),
            ("iptables", "-A KUBE-SERVICES -d 10.96.0.10/32 -j KUBE-SVC-X"),
            ("iptables", "-A FORWARD -s 10.244.0.0/24 -j ACCEPT"),
            (
                "mount",
                "shm /home/alice/kmcp/target/dev/containerd/io.containerd.grpc.v1.cri/sandboxes/x/shm tmpfs rw 0 0",
            ),
            ("kernel tunable", "vm/overcommit_memory = 1"),
        ] {
            let after = state(&[(kind, leftover)]);
            let err = before.compare(&after, "the local environment", dir, Ok(())).unwrap_err();
            assert!(err.to_string().contains("left the host changed (1 differences"), "{kind} {leftover}");
            assert!(is_own(&format!("- {kind}: {leftover}"), dir), "a removed one too: {kind} {leftover}");
        }
    }

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
