//! `cargo xtask verify` and `up --verify`: the MCP part against the real server binary on
//! 127.0.0.1, the RBAC part against the FAKE API server's SubjectAccessReview (RBAC evaluated over
//! the objects `up` applied).

mod support;

use serde_json::{json, Value};
use support::env::Env;
use support::server::RealServer;
use support::Output;

/// A free port inside the NodePort range, so the real server can listen on the nodePort itself.
fn free_node_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let start = 30000 + (std::process::id() % 2000) as u16;
    loop {
        let p = start + NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        assert!(p <= 32767, "no free port in the NodePort range");
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// `up` with the server's port equal to the nodePort, then the real server with the container's args.
fn deploy_and_serve(env: &Env, extra: &[&str]) -> (RealServer, u16) {
    let port = free_node_port();
    let p = port.to_string();
    let mut flags = vec!["--port", &p, "--node-port", &p, "--node-ip", "127.0.0.1"];
    flags.extend(extra);
    env.run("up", &flags).assert_ok();
    let (args, config) = env.container();
    (RealServer::start(&args, &config, port), port)
}

fn verify(env: &Env, extra: &[&str]) -> Output {
    let mut flags = vec!["--node-ip", "127.0.0.1"];
    flags.extend(extra);
    env.run("verify", &flags)
}

fn line<'a>(out: &'a Output, start: &str) -> &'a str {
    out.stdout
        .lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting {start:?} in:\n{}", out.stdout))
}

#[test]
fn a_good_deployment_passes_every_check() {
    let env = Env::new();
    let (_server, port) = deploy_and_serve(&env, &[]);
    let out = verify(&env, &[]);
    out.assert_ok();
    assert!(out.stdout.contains(&format!("verifying http://127.0.0.1:{port}/mcp")), "{}", out.stdout);
    assert!(line(&out, "PASS MCP initialize").contains("protocol 2025-06-18, server kubernetes-mcp-server v0.0.67"));
    assert!(line(&out, "PASS MCP notifications/initialized").contains("HTTP 202"));
    assert!(line(&out, "PASS MCP tools/list").contains(" tools"));
    line(&out, "PASS health endpoint /healthz");
    for allowed in [
        "list pods (all namespaces)",
        "list events",
        "list deployments",
        "get nodes",
        "list nodes",
        "get secrets",
        "list configmaps",
    ] {
        assert!(line(&out, &format!("PASS may {allowed}")).ends_with("allowed"), "{allowed}");
    }
    for denied in [
        "delete pods (all namespaces)",
        "delete pods (in mcp-system)",
        "create pods",
        "patch deployments",
        "create secrets",
        "create clusterrolebindings",
        "bind clusterroles",
        "escalate clusterroles",
    ] {
        assert!(line(&out, &format!("PASS may not {denied}")).ends_with("denied"), "{denied}");
    }
    assert!(!out.stdout.contains("FAIL"));
    assert!(out.stdout.contains("mode: read-only, stateless"), "{}", out.stdout);

    let out = verify(&env, &["--json"]);
    out.assert_ok();
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["passed"], true);
    assert_eq!(report["url"], format!("http://127.0.0.1:{port}/mcp"));
    assert_eq!(report["mode"]["readOnly"], true);
    assert_eq!(report["mode"]["stateless"], true);
    assert_eq!(report["mode"]["writeTools"], json!([]));
    assert!(report["checks"].as_array().unwrap().len() >= 20);

    // up --verify: the same checks after the (no-op) rollout.
    let p = port.to_string();
    let out = env.run("up", &["--port", &p, "--node-port", &p, "--node-ip", "127.0.0.1", "--verify"]);
    out.assert_ok();
    assert!(out.stdout.contains("up to date: nothing changed"));
    line(&out, "PASS MCP initialize");
    line(&out, "PASS may not delete pods");
}

#[test]
fn a_write_grant_fails_verify() {
    let env = Env::new();
    let (_server, _) = deploy_and_serve(&env, &[]);
    // What the chart's own Role (rbac.create=true) would grant.
    env.kube.put("/apis/rbac.authorization.k8s.io/v1/namespaces/mcp-system/roles/chart-role", json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "chart-role", "namespace": "mcp-system"}, "rules": [{"apiGroups": [""], "resources": ["pods", "secrets"], "verbs": ["get", "list", "create", "delete"]}]}));
    env.kube.put("/apis/rbac.authorization.k8s.io/v1/namespaces/mcp-system/rolebindings/chart-role", json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "chart-role", "namespace": "mcp-system"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "chart-role"}, "subjects": [{"kind": "ServiceAccount", "name": "kubernetes-mcp-server", "namespace": "mcp-system"}]}));
    let out = verify(&env, &[]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(line(&out, "FAIL may not delete pods (in mcp-system)").contains("ALLOWED"));
    assert!(line(&out, "FAIL may not create secrets (in mcp-system)").contains("ALLOWED"));
    line(&out, "PASS may not delete pods (all namespaces)");
    assert!(out.error_line().contains("checks failed"), "{}", out.stderr);
}

#[test]
fn missing_read_access_fails_verify() {
    let env = Env::new();
    let (_server, _) = deploy_and_serve(&env, &[]);
    env.kube.put("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/kubernetes-mcp-server-view", json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "kubernetes-mcp-server-view"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}, "subjects": []}));
    let out = verify(&env, &[]);
    assert_eq!(out.code, 1);
    assert!(line(&out, "FAIL may list pods (all namespaces)").contains("denied, but the triage agent needs it"));
    line(&out, "PASS may get nodes");
}

#[test]
fn write_tools_are_named_when_the_operator_opted_in() {
    let env = Env::new();
    let (_server, _) = deploy_and_serve(&env, &["--stateful", "--allow-write-tools"]);
    let out = verify(&env, &[]);
    out.assert_ok();
    assert!(out.stdout.contains("mode: write tools enabled, stateful (SSE sessions)"), "{}", out.stdout);
    let tools = line(&out, "write-capable tools exposed (RBAC must deny them): ");
    for t in ["pods_delete", "pods_exec", "resources_delete"] {
        assert!(tools.contains(t), "{t}: {tools}");
    }
    assert!(line(&out, "PASS MCP tools/list").contains("with the server's Mcp-Session-Id"));
}

#[test]
fn an_unreachable_server_fails_but_rbac_is_still_reported() {
    let env = Env::new();
    env.run("up", &[]).assert_ok();
    let closed = support::registry::free_port();
    let out = verify(&env, &["--url", &format!("http://127.0.0.1:{closed}/mcp")]);
    assert_eq!(out.code, 1);
    assert!(line(&out, "FAIL MCP initialize").contains(&format!("cannot reach http://127.0.0.1:{closed}/mcp")));
    line(&out, "FAIL health endpoint /healthz");
    line(&out, "PASS may not delete pods (all namespaces)");
}

#[test]
fn without_a_cluster_the_mcp_checks_still_run() {
    let env = Env::new();
    let (_server, port) = deploy_and_serve(&env, &[]);
    let out = env.xtask().run([
        "verify",
        "--url",
        &format!("http://127.0.0.1:{port}/mcp"),
        "--kubeconfig",
        "/nonexistent/kubeconfig",
    ]);
    assert_eq!(out.code, 1);
    line(&out, "PASS MCP initialize");
    line(&out, "PASS MCP tools/list");
    assert!(line(&out, "FAIL ServiceAccount permissions")
        .contains("kubeconfig /nonexistent/kubeconfig (from --kubeconfig) does not exist"));
}
