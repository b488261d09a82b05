//! The door, as an attacker who reaches the URL would try it: Secrets are readable through the
//! server only when a Helm toolset was asked for.

#[macro_use]
extern crate kmcp_test_support as support;

use serde_json::json;
use support::cluster::cluster;
use support::deploy::{Deploy, Helm};
use support::mcp_client::inspector;
use support::node::{connections_to, public_ip, Client};

#[path = "door/allow_from.rs"]
mod allow_from;

/// A Secret of another namespace, the kind of thing an attacker is after.
fn target_secret(d: &Deploy) -> (String, String) {
    let ns = format!("{}-target", d.ns);
    d.send("POST", "/api/v1/namespaces", "application/json", json!({"metadata": {"name": ns}}));
    let secret = json!({"metadata": {"name": "admin-token"}, "stringData": {"token": "the-crown-jewels"}});
    d.send("POST", &format!("/api/v1/namespaces/{ns}/secrets"), "application/json", secret);
    (ns, "admin-token".to_string())
}

fn get_secret(url: &str, ns: &str, name: &str) -> serde_json::Value {
    inspector(
        url,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "resources_get",
            "--tool-arg",
            "apiVersion=v1",
            "--tool-arg",
            "kind=Secret",
            "--tool-arg",
            &format!("namespace={ns}"),
            "--tool-arg",
            &format!("name={name}"),
        ],
    )
}

fn secrets_only_with_a_helm_toolset(helm: Helm) {
    let d = Deploy::new("door", helm);
    let (target_ns, secret) = target_secret(&d);
    let role = format!("/apis/rbac.authorization.k8s.io/v1/clusterroles/kmcp:{}:helm-readonly", d.ns);

    // Default toolsets: no helm-readonly role, the server refuses Secrets, SAR denies them.
    d.run("up", &[]).assert_ok();
    let url = d.url();
    assert!(d.get(&role).is_none(), "helm-readonly is applied without a Helm toolset");
    let answer = get_secret(&url, &target_ns, &secret);
    assert!(!answer.to_string().contains("the-crown-jewels"), "{answer}");
    assert_eq!(answer["isError"], true, "{answer}");
    let out = d.run("verify", &[]);
    out.assert_ok();
    assert!(out.stdout.contains("PASS may not list secrets (all namespaces)"), "{}", out.stdout);
    assert!(out.stdout.contains("PASS MCP resources_get of a Secret is refused"), "{}", out.stdout);

    // A broader role bound by hand: RBAC now allows, the server's own denied_resources still refuses,
    // and verify fails naming the grant.
    let grant = format!("{}-grant", d.ns);
    d.send(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "application/json",
        json!({
        "metadata": {"name": grant},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "kubernetes-mcp-server", "namespace": d.ns}]}),
    );
    let answer = get_secret(&url, &target_ns, &secret);
    assert!(!answer.to_string().contains("the-crown-jewels"), "denied_resources did not hold: {answer}");
    assert_eq!(answer["isError"], true, "{answer}");
    let out = d.run("verify", &[]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stdout.contains("FAIL may not list secrets (all namespaces)"), "{}", out.stdout);
    d.send(
        "DELETE",
        &format!("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{grant}"),
        "application/json",
        json!({}),
    );

    // With the helm toolset: the role, a warning, and helm_list works.
    let out = d.run("up", &["--toolsets", "core,config,helm"]);
    out.assert_ok();
    assert!(
        out.stderr.contains("warning: --toolsets includes helm") && out.stderr.contains("every Secret"),
        "{}",
        out.stderr
    );
    assert!(d.get(&role).is_some(), "helm-readonly is missing with the helm toolset");
    let listed =
        inspector(&url, &["--method", "tools/call", "--tool-name", "helm_list", "--tool-arg", "all_namespaces=true"]);
    assert_ne!(listed["isError"], true, "{listed}");
    let out = d.run("verify", &[]);
    out.assert_ok();
    assert!(
        out.stdout.contains("PASS may list secrets (all namespaces)")
            && out.stderr.contains("warning: the helm toolset is on"),
        "{}",
        out.all()
    );
    assert!(out.stdout.contains("toolsets: helm on"), "{}", out.stdout);

    // Back to the default: the role goes.
    let out = d.run("up", &[]);
    out.assert_ok();
    assert!(out.all().contains(&format!("delete clusterrole/kmcp:{}:helm-readonly", d.ns)), "{}", out.all());
    assert!(d.get(&role).is_none(), "helm-readonly stayed after the helm toolset went");
    d.run("verify", &[]).assert_ok();
    d.send("DELETE", &format!("/api/v1/namespaces/{target_ns}"), "application/json", json!({}));
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn only_the_allowed_network_reaches_the_server(helm: Helm) {
    if support::cluster::skipped_on_a_given_cluster(
        "only_the_allowed_network_reaches_the_server",
        "it reaches the NodePort from network namespaces next to the local node",
    ) {
        return;
    }
    let d = Deploy::new("allow", helm);
    let out = d.run("up", &[]);
    out.assert_ok();
    let port = d.node_port();
    let (node_ip, public) = (&cluster().node_ip, public_ip());
    let url = format!("http://{node_ip}:{port}/mcp");
    let laptop = Client::new(&format!("{}-l", d.ns), "internal");
    let internet = Client::new(&format!("{}-i", d.ns), "public");
    let closed = |why: &str| {
        for target in [format!("http://{node_ip}:{port}/healthz"), format!("http://{public}:{port}/healthz")] {
            assert_eq!(
                internet.status_becomes(&target, "000"),
                "000",
                "{why}: a host on the internet reached {target}"
            );
        }
        assert_eq!(
            laptop.status_becomes(&format!("http://{node_ip}:{port}/healthz"), "200"),
            "200",
            "{why}: the laptop"
        );
    };
    closed("after the first up");
    let (code, tools) = laptop.inspector(&url, &["--method", "tools/list"]);
    assert!(code == 0 && tools.contains("pods_list"), "the laptop's MCP handshake: {tools}");
    let seen = connections_to(port);
    assert!(
        seen.iter().any(|(src, saw)| src == &laptop.address && saw == &laptop.address),
        "the pod sees the laptop's own address: {seen:?}"
    );

    assert!(d.run("up", &[]).assert_ok().stdout.contains("up to date: nothing changed"));
    closed("after a second up");
    // helm upgrading the release leaves the Service's externalTrafficPolicy alone.
    let out = d.run("up", &["--log-level", "3"]);
    assert!(out.assert_ok().stderr.contains("run: helm upgrade"), "{}", out.stderr);
    assert_eq!(d.service().unwrap()["spec"]["externalTrafficPolicy"], "Local", "helm undid it");
    closed("after helm upgraded the release");

    // Opened by hand: the internet gets in (the policy is what held it), and up closes it again.
    // What answers it is the guard, which refuses a request addressed to the public address.
    let policy = format!("/apis/networking.k8s.io/v1/namespaces/{}/networkpolicies/{}-allow-from", d.ns, d.release);
    let open = json!({"spec": {"ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}});
    d.send("PATCH", &policy, "application/merge-patch+json", open);
    assert_eq!(
        internet.status_becomes(&format!("http://{public}:{port}/healthz"), "403"),
        "403",
        "the widened policy lets it in, to the guard"
    );
    let out = d.run("up", &["--log-level", "3"]);
    out.assert_ok();
    assert!(out.stderr.contains("drifted from --allow-from"), "{}", out.stderr);
    closed("after up put the policy back");
    d.run("down", &["--delete-namespace"]).assert_ok();
    assert!(d.get(&policy).is_none());
}

fn verify_proves_the_door(helm: Helm) {
    if support::cluster::skipped_on_a_given_cluster(
        "verify_proves_the_door",
        "it runs verify from network namespaces next to the local node",
    ) {
        return;
    }
    let d = Deploy::new("verifydoor", helm);
    d.run("up", &[]).assert_ok();
    let allow = cluster().allow_from.clone();
    let out = d.run("verify", &[]);
    out.assert_ok();
    for (pass, detail) in [
        ("PASS NetworkPolicy admits only --allow-from", allow.as_str()),
        ("PASS Service keeps the client's address", "externalTrafficPolicy Local"),
        ("PASS NodePort silent outside --allow-from", "no answer from"),
    ] {
        let line =
            out.stdout.lines().find(|l| l.starts_with(pass)).unwrap_or_else(|| panic!("{pass}:\n{}", out.stdout));
        assert!(line.contains(detail), "{line}");
    }
    assert!(out.stderr.contains("nodePortAddresses"), "the kube-proxy warning: {}", out.stderr);
    let status = d.run("status", &["--node-ip", &cluster().node_ip]);
    assert!(status.assert_ok().stdout.contains(&format!("allowed:  only from {allow}")), "{}", status.stdout);

    // The policy deleted by hand: the door is open, and verify says so.
    let policy = format!("/apis/networking.k8s.io/v1/namespaces/{}/networkpolicies/{}-allow-from", d.ns, d.release);
    d.send("DELETE", &policy, "application/json", json!({}));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let out = loop {
        let out = d.run("verify", &["--allow-from", &allow]);
        if out.stdout.contains("ANSWERED") || std::time::Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    };
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout.contains("FAIL NetworkPolicy admits only --allow-from") && out.stdout.contains("MISSING"),
        "{}",
        out.all()
    );
    assert!(
        out.stdout.contains("FAIL NodePort silent outside --allow-from") && out.stdout.contains("ANSWERED from"),
        "{}",
        out.all()
    );
    assert!(out.stderr.contains("verify: 2 of"), "{}", out.stderr);
    // Without a policy or --allow-from, the outside check cannot run: it says so, never PASS.
    let out = d.run("verify", &[]);
    assert!(
        out.stdout.contains("SKIP NodePort silent outside --allow-from") && out.stdout.contains("could not check"),
        "{}",
        out.stdout
    );
    // up puts the policy back; the firewall follows within seconds.
    d.run("up", &[]).assert_ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while d.run("verify", &[]).code != 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    d.run("verify", &[]).assert_ok();
    d.run("down", &["--delete-namespace"]).assert_ok();
}

/// The Service made ClusterIP by hand: `status` says so and what to do, `up` puts the type, the
/// recorded nodePort and `externalTrafficPolicy: Local` back.
fn a_service_made_cluster_ip_is_put_back(helm: Helm) {
    let d = Deploy::new("clusterip", helm);
    d.run("up", &["--node-port", &support::deploy::reserved_node_port(4, helm)]).assert_ok();
    let port = d.node_port();
    let path = format!("/api/v1/namespaces/{}/services/{}", d.ns, d.fullname());
    let patch = json!({"spec": {"type": "ClusterIP", "externalTrafficPolicy": null}});
    d.send("PATCH", &path, "application/merge-patch+json", patch);
    let err = d.run("status", &[]).error_line();
    assert!(err.contains("the Service is ClusterIP, not NodePort") && err.contains("cargo xtask up"), "{err}");
    let out = d.run("up", &[]);
    out.assert_ok();
    assert!(out.stderr.contains("service type"), "{}", out.stderr);
    let spec = d.service().unwrap()["spec"].clone();
    assert_eq!((spec["type"].as_str(), spec["externalTrafficPolicy"].as_str()), (Some("NodePort"), Some("Local")));
    assert_eq!(d.node_port(), port, "the recorded nodePort is back");
    assert!(d.run("up", &[]).assert_ok().stdout.contains("up to date: nothing changed"));
    d.run("down", &["--delete-namespace"]).assert_ok();
}

one_helm!(
    secrets_only_with_a_helm_toolset: V4,
    only_the_allowed_network_reaches_the_server: V3,
    verify_proves_the_door: V4,
    a_service_made_cluster_ip_is_put_back: V3,
);
