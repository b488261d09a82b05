//! Who may connect when `--allow-from` is not given: the network of the interface that holds
//! `--node-ip`, or a refusal before anything is contacted.

use super::*;

/// Who may connect, when `--allow-from` is not given: the network of the local interface that holds
/// `--node-ip`, printed; otherwise a refusal before anything is contacted.
#[test]
fn allow_from_defaults_to_the_network_of_the_node_ip_or_is_asked_for() {
    let d = Deploy::new("allowdefault", Helm::V4);
    // The host's end of the node's link holds 10.213.0.254/24 while the local cluster runs.
    if std::env::var_os("KMCP_TEST_KUBECONFIG").is_none() {
        let args = d.args_without("up", &["--allow-from", "--node-ip"], &["--node-ip", "10.213.0.254", "--dry-run"]);
        let out = d.xtask().run(&args);
        out.assert_ok();
        assert!(
            out.stderr.contains("allowing connections from 10.213.0.0/24 only (the network of kmcp0"),
            "{}",
            out.stderr
        );
        assert!(out.stdout.contains("networkpolicy/kubernetes-mcp-server-allow-from"), "{}", out.stdout);
    }
    let audit = d.audit().map(|a| a.len());
    let args = d.args_without("up", &["--allow-from", "--node-ip"], &["--node-ip", "10.9.9.9"]);
    let err = d.xtask().run(&args).error_line();
    assert!(
        err.contains("--node-ip 10.9.9.9 is not an address of this machine") && err.contains("--allow-from"),
        "{err}"
    );
    let args = d.args_without("up", &["--allow-from", "--node-ip"], &[]);
    assert!(d.xtask().run(&args).error_line().contains("no --allow-from and no --node-ip"));
    let err = d.run("up", &["--allow-from", "10.8.0.0/33"]).error_line();
    assert!(err.contains("invalid network '10.8.0.0/33'"), "{err}");
    if let (Some(n), Some(after)) = (audit, d.audit()) {
        assert!(after[n..].is_empty(), "refused input reached the API server: {:?}", &after[n..]);
    }
    let out = d.run("up", &["--allow-from", "0.0.0.0/0", "--dry-run"]);
    assert!(out.assert_ok().stderr.contains("warning: --allow-from 0.0.0.0/0: every address"), "{}", out.stderr);
}
