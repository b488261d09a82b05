//! A kubeconfig without rights: every task's refusal is one line naming user, verb, resource and
//! place, and what to do. A kubeconfig whose exec plugin never answers (a login that waits for input, a network that is
//! gone): `status`, `up` and `up --dry-run` each end within the deadline, name the plugin, and leave
//! none of its processes behind. No cluster is contacted.

extern crate kmcp_test_support as support;

/// The marker in the plugin's own child (`sleep 6000.4242`): found in no other process's argv.
const MARK: &str = "6000.4242";

fn plugin_processes() -> Vec<String> {
    let procs = std::fs::read_dir("/proc").unwrap().flatten();
    let argv = procs.filter_map(|p| std::fs::read(p.path().join("cmdline")).ok());
    argv.map(|a| String::from_utf8_lossy(&a).replace('\0', " ")).filter(|a| a.contains(MARK)).collect()
}

#[test]
fn a_hanging_exec_plugin_meets_a_deadline_and_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("hang-plugin");
    std::fs::write(&plugin, format!("#!/bin/sh\nsleep {MARK} &\nwait\n")).unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\nusers:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      interactiveMode: Never\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n",
        plugin.display()
    );
    std::fs::write(&kubeconfig, text).unwrap();
    let kc = kubeconfig.to_str().unwrap();
    let up = [
        "up",
        "--kubeconfig",
        kc,
        "--image",
        "127.0.0.1:1/x:y",
        "--node-ip",
        "10.8.0.1",
        "--allow-from",
        "10.8.0.0/24",
    ];
    let mut dry = up.to_vec();
    dry.push("--dry-run");
    let runs: Vec<_> = [vec!["status", "--kubeconfig", kc], up.to_vec(), dry]
        .into_iter()
        .map(|args| (args.clone(), support::Xtask::new(None).spawn(args)))
        .collect();
    let says =
        format!("the kubeconfig's exec plugin `{}` gave no credentials within 20 s: stopped it", plugin.display());
    for (args, run) in runs {
        let out = run.finish();
        if args.contains(&"--dry-run") {
            // A dry run notes what it cannot reach and plans for an empty cluster.
            assert!(out.all().contains(&says), "{args:?}:\n{}", out.all());
        } else {
            assert_eq!(out.code, 1, "{args:?}:\n{}", out.all());
            assert!(out.error_line().contains(&says), "{args:?}:\n{}", out.stderr);
        }
    }
    let left = plugin_processes();
    assert!(left.is_empty(), "the plugin's processes are still running: {left:?}");
}

#[test]
fn a_kubeconfig_without_rights_gets_one_line_saying_what_to_do() {
    if support::cluster::skipped_on_a_given_cluster(
        "a_kubeconfig_without_rights_gets_one_line_saying_what_to_do",
        "it signs a user certificate with the local control plane's CA",
    ) {
        return;
    }
    let mut d = support::deploy::Deploy::new("norights", support::deploy::Helm::V3);
    let dir = tempfile::tempdir().unwrap();
    let user = format!("viewer-{}", d.ns);
    d.kubeconfig = support::cluster::cluster().user_as(&user, "", dir.path());
    for task in ["up", "down", "status", "verify"] {
        let out = d.run(task, &[]);
        assert_ne!(out.code, 0, "{task}: {}", out.all());
        let all = out.all();
        assert!(!all.contains("Status {") && !all.contains("Some("), "{task}: {all}");
        let err = out.error_line();
        let says = format!("error: the kubeconfig's user {user} may not ");
        assert!(err.starts_with(&says), "{task}: {err}");
        assert!(err.ends_with(": use an admin kubeconfig (on the k0s node: k0s kubeconfig admin)"), "{task}: {err}");
        assert!(err.contains(&format!(" in {}:", d.ns)) || err.contains(" cluster-wide:"), "{task}: {err}");
    }
}
