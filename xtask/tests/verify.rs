//! `cargo xtask verify` and `up --verify` on the real control plane: the MCP checks reach the real
//! server in its pod over the NodePort, and the RBAC matrix is evaluated by the real authorizer.
//! An agent's view too: tools/call through our client and through MCP Inspector's CLI.

#[macro_use]
extern crate kmcp_test_support as support;

use serde_json::{json, Value};
use support::cluster::cluster;
use support::deploy::{Deploy, Helm};
use support::mcp_client::{call_tool, inspector, text};
use support::Output;

#[path = "verify/guard.rs"]
mod guard;
#[path = "verify/tools_and_reach.rs"]
mod tools_and_reach;

fn line<'a>(out: &'a Output, start: &str) -> &'a str {
    out.stdout
        .lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting {start:?} in:\n{}", out.stdout))
}

fn a_good_deployment_passes_every_check(helm: Helm) {
    let d = Deploy::new("verify", helm);
    let up = d.run("up", &[]);
    assert!(up.assert_ok().stdout.contains("Host/Origin guard: only requests to "), "{}", up.stdout);
    let url = d.url();
    let out = d.run("verify", &[]);
    out.assert_ok();
    assert!(out.stdout.contains(&format!("verifying {url}")), "{}", out.stdout);
    let server =
        format!("protocol 2025-11-25, server kubernetes-mcp-server v{}", xtask::tasks::selftest::SERVER_VERSION);
    assert!(line(&out, "PASS MCP initialize").contains(&server));
    assert!(line(&out, "PASS MCP notifications/initialized").contains("HTTP 202"));
    assert!(line(&out, "PASS MCP tools/list").contains(" tools"));
    line(&out, "PASS health endpoint /healthz");
    let serving = line(&out, "PASS the URL's node runs the server");
    assert!(serving.contains(&format!("(it lists {}) runs the server", cluster().node_ip)), "{serving}");
    for allowed in
        ["list pods (all namespaces)", "list events", "list deployments", "get nodes", "list nodes", "list configmaps"]
    {
        assert!(line(&out, &format!("PASS may {allowed}")).ends_with("allowed"), "{allowed}");
    }
    for denied in [
        "delete pods (all namespaces)",
        &format!("delete pods (in {})", d.ns),
        "create pods",
        "patch deployments",
        "create secrets",
        "get secrets (all namespaces)",
        "list secrets (all namespaces)",
        "create clusterrolebindings",
        "bind clusterroles",
        "escalate clusterroles",
    ] {
        assert!(line(&out, &format!("PASS may not {denied}")).ends_with("denied"), "{denied}");
    }
    line(&out, "PASS MCP resources_get of a Secret is refused");
    assert!(line(&out, "PASS MCP configuration_view hands out no credential").contains("not offered (disabled_tools"));
    assert!(line(&out, "PASS no Ingress, HTTPRoute or other Service").contains("only service/"), "{}", out.stdout);
    let rebinding = line(&out, "PASS foreign Host and Origin (DNS rebinding)");
    assert!(
        rebinding.ends_with("refused (HTTP 403; with the URL's own Host and Origin: http://rebind.example, HTTP 403)"),
        "{rebinding}"
    );
    assert!(line(&out, "PASS ServiceAccount may change nothing").contains("only reads"), "{}", out.stdout);
    assert!(line(&out, "PASS server mode as deployed").contains("read-only, as the mode `up` recorded says"));
    assert!(out.stdout.contains("toolsets: no helm toolset (Secrets denied)"), "{}", out.stdout);
    assert!(!out.stdout.contains("FAIL"), "{}", out.stdout);
    assert!(out.stdout.contains("mode: read-only, stateless"), "{}", out.stdout);

    let out = d.run("verify", &["--json"]);
    out.assert_ok();
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["passed"], true);
    assert_eq!(report["url"], url);
    assert_eq!(report["mode"]["readOnly"], true);
    assert_eq!(report["mode"]["stateless"], true);
    assert_eq!(report["mode"]["writeTools"], json!([]));

    let out = d.run("up", &["--verify"]);
    out.assert_ok();
    assert!(out.stdout.contains("up to date: nothing changed"));
    line(&out, "PASS MCP initialize");
    line(&out, "PASS may not delete pods");
    credentials_and_ways_in_fail_verify(&d);
    without_the_guard_rebinding_is_a_warning(&d);
    d.run("down", &["--delete-namespace"]).assert_ok();
}

/// `--no-guard`: the Service leads to the server itself, which answers a rebound page; verify
/// says so in a WARN line, and the next `up` puts the guard back.
fn without_the_guard_rebinding_is_a_warning(d: &Deploy) {
    let up = d.run("up", &["--no-guard"]);
    assert!(up.assert_ok().stderr.contains("warning: --no-guard"), "{}", up.stderr);
    assert!(up.stdout.contains("no Host/Origin guard (--no-guard)"), "{}", up.stdout);
    let out = d.run("verify", &[]);
    let rebinding = line(out.assert_ok(), "WARN foreign Host and Origin (DNS rebinding)");
    assert!(rebinding.contains("answered (HTTP 200") && rebinding.contains("docs/security.md"), "{rebinding}");
    assert!(d.run("up", &[]).assert_ok().stdout.contains("Host/Origin guard: only requests to "));
    line(d.run("verify", &[]).assert_ok(), "PASS foreign Host and Origin (DNS rebinding)");
}

/// configuration_view asked for by name: verify calls it, finds the token the API server accepts
/// as the pod's ServiceAccount, fails, and prints no token. An Ingress to the Service: another way
/// in, which fails verify too.
fn credentials_and_ways_in_fail_verify(d: &Deploy) {
    let up = d.run("up", &["--enable-tool", "configuration_view"]);
    assert!(up.assert_ok().stderr.contains("warning: --enable-tool configuration_view"), "{}", up.stderr);
    assert!(up.stdout.contains("configuration_view ENABLED"), "{}", up.stdout);
    let out = d.run("verify", &[]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let failed = line(&out, "FAIL MCP configuration_view hands out no credential");
    let pod = format!("accepts it as system:serviceaccount:{}:kubernetes-mcp-server", d.ns);
    assert!(failed.contains("the ServiceAccount's own token") && failed.contains(&pod), "{failed}");
    assert!(!out.all().contains("eyJ"), "no token printed: {}", out.all());
    assert!(d.run("up", &[]).assert_ok().stdout.contains("configuration_view disabled"));

    let ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "side-door"},
        "spec": {"defaultBackend": {"service": {"name": d.fullname(), "port": {"number": 8080}}}}});
    let path = format!("/apis/networking.k8s.io/v1/namespaces/{}/ingresses", d.ns);
    d.send("POST", &path, "application/json", ingress);
    let out = d.run("verify", &[]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(line(&out, "FAIL no Ingress, HTTPRoute or other Service").contains("ingress/side-door"), "{}", out.stdout);
    d.send("DELETE", &format!("{path}/side-door"), "application/json", json!({}));
    line(d.run("verify", &[]).assert_ok(), "PASS MCP configuration_view hands out no credential");
}

/// A pod of the test's own in another namespace: the object the agent's tools look at.
fn other_pod(d: &Deploy) -> (String, String) {
    let ns = format!("{}-other", d.ns);
    d.send(
        "POST",
        "/api/v1/namespaces",
        "application/json",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    );
    let name = "victim".to_string();
    d.send(
        "POST",
        &format!("/api/v1/namespaces/{ns}/pods"),
        "application/json",
        json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "127.0.0.1:1/none/absent:v1"}]}
        }),
    );
    (ns, name)
}

fn the_agent_reads_everywhere_and_cannot_write(helm: Helm) {
    let d = Deploy::new("agent", helm);
    let (other_ns, pod) = other_pod(&d);
    d.run("up", &["--allow-write-tools"]).assert_ok();
    let url = d.url();
    support::block_on(async {
        let listed = call_tool(&url, "pods_list", json!({})).await;
        assert_ne!(listed["isError"], true, "{listed}");
        let listed = text(&listed);
        assert!(
            listed.contains(&pod) && listed.contains(&other_ns),
            "the ServiceAccount reads every namespace: {listed}"
        );

        let deleted = call_tool(&url, "pods_delete", json!({"name": pod, "namespace": other_ns})).await;
        assert_eq!(deleted["isError"], true, "{deleted}");
        assert!(text(&deleted).contains("forbidden"), "the API server refuses: {deleted}");
    });
    let path = format!("/api/v1/namespaces/{other_ns}/pods/{pod}");
    assert!(d.get(&path).is_some(), "the pod still exists");

    // The same through a client nobody here wrote.
    let tools = inspector(&url, &["--method", "tools/list"]);
    let names: Vec<&str> = tools["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"pods_list") && names.contains(&"pods_delete"), "{names:?}");
    let listed = inspector(&url, &["--method", "tools/call", "--tool-name", "pods_list"]);
    assert!(listed.to_string().contains(&pod), "{listed}");
    let deleted = inspector(
        &url,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "pods_delete",
            "--tool-arg",
            &format!("name={pod}"),
            "--tool-arg",
            &format!("namespace={other_ns}"),
        ],
    );
    assert!(deleted.to_string().contains("forbidden"), "{deleted}");
    assert!(d.get(&path).is_some(), "the pod still exists");

    // Read-only again: the write tools are gone for Inspector too.
    d.run("up", &[]).assert_ok();
    let tools = inspector(&url, &["--method", "tools/list"]);
    assert!(!tools.to_string().contains("\"pods_delete\""), "{tools}");
    d.send("DELETE", &format!("/api/v1/namespaces/{other_ns}"), "application/json", json!({}));
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn a_write_grant_fails_verify(helm: Helm) {
    let d = Deploy::new("grant", helm);
    d.run("up", &[]).assert_ok();
    let ns = &d.ns;
    d.send("POST", &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles"), "application/json", json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "user-grant"}, "rules": [{"apiGroups": [""], "resources": ["pods", "secrets"], "verbs": ["get", "list", "create", "delete"]}]}));
    d.send("POST", &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"), "application/json", json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "user-grant"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "user-grant"}, "subjects": [{"kind": "ServiceAccount", "name": "kubernetes-mcp-server", "namespace": ns}]}));
    let out = d.run("verify", &[]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(line(&out, &format!("FAIL may not delete pods (in {ns})")).contains("ALLOWED"));
    assert!(line(&out, &format!("FAIL may not create secrets (in {ns})")).contains("ALLOWED"));
    line(&out, "PASS may not delete pods (all namespaces)");
    let rights = line(&out, "FAIL ServiceAccount may change nothing");
    assert!(
        rights.contains(&format!(
            "create,delete pods,secrets (via role/user-grant, bound by rolebinding/user-grant in {ns})"
        )),
        "{rights}"
    );
    assert!(out.error_line().contains("checks failed"), "{}", out.stderr);
    d.run("down", &["--delete-namespace", "--force"]).assert_ok();
}

/// A verb beyond reading added to a role the tool owns: none of the fixed SubjectAccessReviews
/// asks about it, the rights check finds it; `up` takes it out again.
fn rights_beyond_reading_fail_verify(helm: Helm) {
    let d = Deploy::new("rights", helm);
    d.run("up", &[]).assert_ok();
    let role = format!("kmcp:{}:kubernetes-mcp-server-nodes-read", d.ns);
    let rule = json!({"apiGroups": [""], "resources": ["nodes"], "verbs": ["delete"]});
    let path = format!("/apis/rbac.authorization.k8s.io/v1/clusterroles/{role}");
    d.send("PATCH", &path, "application/json-patch+json", json!([{"op": "add", "path": "/rules/-", "value": rule}]));
    let out = d.run("verify", &[]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let rights = line(&out, "FAIL ServiceAccount may change nothing");
    assert!(
        rights.contains(&format!("delete nodes (via clusterrole/{role}, bound by clusterrolebinding/{role})")),
        "{rights}"
    );
    assert!(out.error_line().contains("checks failed"), "{}", out.stderr);
    d.run("up", &[]).assert_ok();
    line(d.run("verify", &[]).assert_ok(), "PASS ServiceAccount may change nothing");

    // An aggregationRule on the same role: the controller fills its rules from another role.
    let label = format!("kmcp-test/aggregate-{}", d.ns);
    let evil = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": format!("evil-{}", d.ns), "labels": {label.clone(): "true"}},
        "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["delete"]}]});
    d.send("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", "application/json", evil);
    let aggregate = json!({"aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]}});
    d.send("PATCH", &path, "application/merge-patch+json", aggregate);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    while !d.get(&path).unwrap()["rules"].to_string().contains("delete") {
        assert!(std::time::Instant::now() < deadline, "the aggregation controller never filled the rules");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert_eq!(d.run("verify", &[]).code, 1, "aggregated rules that delete nodes");
    let out = d.run("up", &[]);
    assert!(out.assert_ok().stderr.contains("aggregationRule"), "{}", out.stderr);
    let role_now = d.get(&path).unwrap();
    assert!(role_now["aggregationRule"].is_null() && !role_now["rules"].to_string().contains("delete"), "{role_now}");
    line(d.run("verify", &[]).assert_ok(), "PASS ServiceAccount may change nothing");
    assert!(d.run("up", &[]).assert_ok().stdout.contains("up to date: nothing changed"));
    d.send(
        "DELETE",
        &format!("/apis/rbac.authorization.k8s.io/v1/clusterroles/evil-{}", d.ns),
        "application/json",
        json!({}),
    );
    d.run("down", &["--delete-namespace"]).assert_ok();
}

one_helm!(
    a_good_deployment_passes_every_check: V3,
    the_agent_reads_everywhere_and_cannot_write: V4,
    a_write_grant_fails_verify: V3,
    rights_beyond_reading_fail_verify: V4,
);
