//! `verify` on the server's tools (write tools, offered by a read-only deployment or opted in),
//! missing read access, and a server it cannot reach.

use super::*;

/// `--read-only=false` added to the container's args by hand: the server reads it as pflag does
/// (the flag wins over `read_only = true` in its config), and so do `status` and `verify`.
fn write_tools_on_a_read_only_deployment_fail_verify(helm: Helm) {
    let d = Deploy::new("rofalse", helm);
    d.run("up", &[]).assert_ok();
    let mut args = d.container_args();
    args.push("--read-only=false".into());
    let path = format!("/apis/apps/v1/namespaces/{}/deployments/{}", d.ns, d.fullname());
    let patch = json!([{"op": "replace", "path": "/spec/template/spec/containers/0/args", "value": args}]);
    d.send("PATCH", &path, "application/json-patch+json", patch);
    let status = d.run("status", &[]);
    assert!(
        status.assert_ok().stdout.contains("mode:     write tools enabled"),
        "status reads the flag: {}",
        status.stdout
    );
    let url = d.url();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let writes = || {
        support::block_on(async {
            let Ok(mut s) = xtask::server::mcp::Session::initialize(&url).await else { return false };
            s.list_tools().await.is_ok_and(|t| t.iter().any(|t| t.name == "pods_delete"))
        })
    };
    // The new pod serves, and the old one is gone (kube-proxy sends no connection to its address).
    let pods = format!("/api/v1/namespaces/{}/pods", d.ns);
    let one_pod = || d.get(&pods).is_some_and(|l| l["items"].as_array().is_some_and(|i| i.len() == 1));
    while !writes() || !one_pod() {
        assert!(std::time::Instant::now() < deadline, "the server never offered write tools");
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
    let out = d.run("verify", &[]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let mode = line(&out, "FAIL server mode as deployed");
    assert!(mode.contains("meant to be read-only (the mode `up` recorded)") && mode.contains("pods_delete"), "{mode}");
    let out = d.run("up", &[]);
    assert!(out.assert_ok().stderr.contains("deployment args"), "{}", out.stderr);
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn missing_read_access_fails_verify(helm: Helm) {
    let d = Deploy::new("noread", helm);
    d.run("up", &[]).assert_ok();
    let binding =
        format!("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/kmcp:{}:kubernetes-mcp-server-view", d.ns);
    d.send("PATCH", &binding, "application/merge-patch+json", json!({"subjects": null}));
    let out = d.run("verify", &[]);
    assert_eq!(out.code, 1);
    assert!(line(&out, "FAIL may list pods (all namespaces)").contains("denied, but the triage agent needs it"));
    line(&out, "PASS may get nodes");
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn write_tools_are_named_when_the_operator_opted_in(helm: Helm) {
    let d = Deploy::new("optin", helm);
    d.run("up", &["--stateful", "--allow-write-tools"]).assert_ok();
    let out = d.run("verify", &[]);
    out.assert_ok();
    assert!(out.stdout.contains("mode: write tools enabled, stateful (SSE sessions)"), "{}", out.stdout);
    let tools = line(&out, "write-capable tools exposed (RBAC must deny them): ");
    for t in ["pods_delete", "pods_exec", "resources_delete"] {
        assert!(tools.contains(t), "{t}: {tools}");
    }
    assert!(line(&out, "PASS MCP tools/list").contains("with the server's Mcp-Session-Id"));
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn an_unreachable_server_fails_but_rbac_is_still_reported(helm: Helm) {
    let d = Deploy::new("unreach", helm);
    d.run("up", &[]).assert_ok();
    let closed = support::registry::free_port();
    let out = d.run("verify", &["--url", &format!("http://127.0.0.1:{closed}/mcp")]);
    assert_eq!(out.code, 1);
    assert!(line(&out, "FAIL MCP initialize").contains(&format!("cannot reach http://127.0.0.1:{closed}/mcp")));
    line(&out, "FAIL health endpoint /healthz");
    line(&out, "PASS may not delete pods (all namespaces)");

    // Without a cluster, the MCP checks still run against the real server.
    let out = d.xtask().run(["verify", "--url", &d.url(), "--kubeconfig", "/nonexistent/kubeconfig"]);
    assert_eq!(out.code, 1);
    line(&out, "PASS MCP initialize");
    line(&out, "PASS MCP tools/list");
    assert!(line(&out, "FAIL ServiceAccount permissions")
        .contains("kubeconfig /nonexistent/kubeconfig (from --kubeconfig) does not exist"));
    d.run("down", &["--delete-namespace"]).assert_ok();
}

one_helm!(
    write_tools_on_a_read_only_deployment_fail_verify: V3,
    missing_read_access_fails_verify: V4,
    write_tools_are_named_when_the_operator_opted_in: V3,
    an_unreachable_server_fails_but_rbac_is_still_reported: V4,
);
