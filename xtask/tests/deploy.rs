//! `up`, `down` and `status` on the real control plane with the real helm 3 and helm 4, the test
//! chart from the test registry, and the real server running in its pod.

#[macro_use]
extern crate kmcp_test_support as support;

use serde_json::{json, Value};
use support::cluster::cluster;
use support::deploy::{registry, server_image, Deploy, Helm};
use support::registry::Entrypoint;

#[path = "deploy/checks.rs"]
mod checks;

fn rbac_names(ns: &str) -> Vec<(String, String)> {
    [
        ("clusterrolebindings", "kubernetes-mcp-server-view"),
        ("clusterroles", "kubernetes-mcp-server-nodes-read"),
        ("clusterrolebindings", "kubernetes-mcp-server-nodes-read"),
    ]
    .iter()
    .map(|(kind, name)| (kind.to_string(), format!("kmcp:{ns}:{name}")))
    .collect()
}

fn rbac_path(kind: &str, name: &str) -> String {
    format!("/apis/rbac.authorization.k8s.io/v1/{kind}/{name}")
}

fn up_deploys_and_a_second_up_changes_nothing(helm: Helm) {
    let d = Deploy::new("deploy", helm);
    let out = d.run("up", &[]);
    out.assert_ok();

    let sa = d.get(&format!("/api/v1/namespaces/{}/serviceaccounts/kubernetes-mcp-server", d.ns)).expect("sa");
    assert_eq!(sa["metadata"]["managedFields"][0]["manager"], "kmcp-xtask");
    for (kind, name) in rbac_names(&d.ns) {
        let live = d.get(&rbac_path(&kind, &name)).unwrap_or_else(|| panic!("{kind}/{name} not applied"));
        if kind == "clusterrolebindings" {
            assert_eq!(live["subjects"][0]["namespace"], d.ns.as_str());
        }
    }
    let dep = d.deployment().expect("deployment");
    let container = &dep["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], format!("{}/{}@{}", registry(), support::deploy::repo(), d.digest));
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    assert_eq!(dep["spec"]["template"]["spec"]["serviceAccountName"], "kubernetes-mcp-server");
    assert_eq!(dep["status"]["readyReplicas"], 1, "the real pod is ready: {}", dep["status"]);
    let args = d.container_args();
    assert!(args.windows(2).any(|w| w == ["--port", "8080"]), "{args:?}");
    // The chart renders no Role of its own, and the ingress is off.
    assert!(d.get(&format!("/apis/networking.k8s.io/v1/namespaces/{}/ingresses/{}", d.ns, d.fullname())).is_none());
    let roles = d.get(&format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{}/roles", d.ns)).unwrap();
    assert_eq!(roles["items"], json!([]));

    let port = d.node_port();
    assert!((30000..=32767).contains(&port));
    assert_eq!(d.service().unwrap()["spec"]["type"], "NodePort");
    assert_eq!(d.state().unwrap()["data"]["nodePort"], port.to_string());
    let url = format!("http://{}:{port}/mcp", cluster().node_ip);
    assert!(out.stdout.lines().any(|l| l == format!("MCP URL: {url}")), "{}", out.stdout);
    let vscode = out.stdout.lines().find(|l| l.starts_with("  VS Code (.vscode/mcp.json): ")).unwrap();
    let config: Value = serde_json::from_str(vscode.split_once(": ").unwrap().1).unwrap();
    assert_eq!(config["servers"]["kubernetes"]["url"], url);
    assert!(out.stdout.contains(&format!("  Claude Code: claude mcp add --transport http kubernetes {url}")));

    // Again: nothing changes (no write, no helm, same resourceVersions), and it says so.
    let versions = |d: &Deploy| {
        [d.deployment(), d.service(), d.state()].map(|o| o.unwrap()["metadata"]["resourceVersion"].clone())
    };
    let before = versions(&d);
    let audit_before = d.audit().map(|a| a.len());
    let out = d.run("up", &[]);
    out.assert_ok();
    assert!(out.stdout.contains("up to date: nothing changed"), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("MCP URL: {url}")));
    assert_eq!(versions(&d), before, "a no-op up changed an object");
    if let (Some(n), Some(after)) = (audit_before, d.audit()) {
        let noop = &after[n..];
        assert!(noop.iter().all(|e| !e.is_write() && !e.by_helm()), "{noop:?}");
    }
    // On a cluster of one node, naming it pins nothing: the same release, still a no-op; a node
    // that is not there is refused before any change.
    let nodes = d.get("/api/v1/nodes").unwrap();
    let node = nodes["items"][0]["metadata"]["name"].as_str().unwrap().to_string();
    let out = d.run("up", &["--node", &node]);
    assert!(out.assert_ok().stdout.contains("up to date: nothing changed"), "{}", out.stdout);
    assert!(!out.stdout.contains("the server runs on node"), "{}", out.stdout);
    assert_eq!(versions(&d), before, "--node on a one-node cluster changed an object");
    let err = d.run("up", &["--node", "no-such-node"]).error_line();
    assert!(err.contains(&format!("--node no-such-node: no such node (the nodes: {node})")), "{err}");
    assert_eq!(versions(&d), before);
}

fn a_new_push_rolls_forward(helm: Helm) {
    let mut d = Deploy::new("push", helm);
    let repo = format!("alice/push-{}", d.ns);
    let (image, first) = server_image(&repo, Entrypoint::Current);
    d.image = image;
    d.run("up", &[]).assert_ok();
    let generation = d.deployment().unwrap()["metadata"]["generation"].as_i64().unwrap();
    // A new push of dev-latest: the same binary, another entrypoint form, so another digest.
    let (_, second) = server_image(&repo, Entrypoint::OldPort8080);
    assert_ne!(first, second);
    let out = d.run("up", &[]);
    out.assert_ok();
    assert!(out.stdout.contains("deployed"), "{}", out.stdout);
    let dep = d.deployment().unwrap();
    assert_eq!(dep["spec"]["template"]["spec"]["containers"][0]["image"], format!("{}/{repo}@{second}", registry()));
    assert_eq!(dep["metadata"]["generation"].as_i64().unwrap(), generation + 1);
    assert_eq!(dep["status"]["updatedReplicas"], 1);
}

fn down_removes_what_up_applied_and_twice_is_fine(helm: Helm) {
    let d = Deploy::new("down", helm);
    let out = d.run("down", &[]);
    out.assert_ok();
    assert!(out.stdout.contains("nothing to do"), "{}", out.stdout);

    d.run("up", &[]).assert_ok();
    d.run("down", &[]).assert_ok();
    assert!(d.deployment().is_none() && d.service().is_none() && d.state().is_none());
    for (kind, name) in rbac_names(&d.ns) {
        assert!(d.get(&rbac_path(&kind, &name)).is_none(), "{kind}/{name} left behind");
    }
    assert!(d.get(&format!("/api/v1/namespaces/{}", d.ns)).is_some(), "the namespace stays without --delete-namespace");
    let out = d.run("down", &[]);
    assert!(out.assert_ok().stdout.contains("nothing to do"), "{}", out.stdout);

    // --delete-namespace waits for the real namespace finalization.
    d.run("down", &["--delete-namespace"]).assert_ok();
    assert!(d.get(&format!("/api/v1/namespaces/{}", d.ns)).is_none(), "namespace still there");
    assert!(d.run("down", &["--delete-namespace"]).assert_ok().stdout.contains("nothing to do"));
}

fn keep_port_survives_down_and_plain_down_forgets_it(helm: Helm) {
    let d = Deploy::new("keepport", helm);
    d.run("up", &["--node-port", &support::deploy::reserved_node_port(2, helm)]).assert_ok();
    let port = d.node_port();
    d.run("down", &["--keep-port"]).assert_ok();
    assert!(d.service().is_none());
    assert_eq!(d.state().unwrap()["data"]["nodePort"], port.to_string());
    assert!(d.state().unwrap()["data"].get("deployedSha256").is_none());
    let out = d.run("up", &[]);
    out.assert_ok();
    assert_eq!(d.node_port(), port, "the recorded port is restored");
    assert!(out.stdout.contains(&format!(":{port}/mcp")));
    d.run("down", &[]).assert_ok();
    assert!(d.state().is_none(), "plain down forgets the port");
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn node_port_flag_pins_and_is_checked_before_any_change(helm: Helm) {
    let d = Deploy::new("pin", helm);
    let out = d.run("up", &["--node-port", "8080"]);
    assert!(
        out.error_line().contains("--node-port 8080 is outside the cluster's NodePort range 30000-32767"),
        "{}",
        out.stderr
    );
    assert!(d.get(&format!("/api/v1/namespaces/{}", d.ns)).is_none(), "nothing was changed");
    let out = d.run("up", &["--node-port", "31000", "--nodeport-range", "20000-30000"]);
    assert!(out.error_line().contains("outside the cluster's NodePort range 20000-30000"));

    let flag = support::deploy::reserved_node_port(3, helm);
    let wanted: i64 = flag.parse().unwrap();
    d.run("up", &["--node-port", &flag]).assert_ok();
    assert_eq!(d.node_port(), wanted);
    d.run("up", &[]).assert_ok();
    assert_eq!(d.node_port(), wanted, "the pinned port is recorded");
    // A changed --port re-renders the Service with helm: still one port entry, still the pin.
    d.run("up", &["--port", "8686"]).assert_ok();
    let service = d.service().unwrap();
    assert_eq!(service["spec"]["ports"].as_array().unwrap().len(), 1, "{service}");
    assert_eq!(service["spec"]["ports"][0]["port"], 8686);
    assert_eq!(d.node_port(), wanted, "the pin survives helm upgrade");
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn node_ip_defaults_to_internal_ip_with_a_warning(helm: Helm) {
    let d = Deploy::new("nodeip", helm);
    let base = d.args_without("up", &["--node-ip"], &[]);
    let out = d.xtask().run(&base);
    out.assert_ok();
    let ip = &cluster().node_ip;
    assert!(out.stderr.contains(&format!("InternalIP {ip}")) && out.stderr.contains("WireGuard"), "{}", out.stderr);
    assert!(out.stdout.contains(&format!("MCP URL: http://{ip}:{}/mcp", d.node_port())));
    let out = d.xtask().env("MCP_NODE_IP", "10.9.9.9").run(&base);
    assert!(out.assert_ok().stdout.contains("MCP URL: http://10.9.9.9:"));
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn another_release_name_moves_everything(helm: Helm) {
    let mut d = Deploy::new("rel", helm);
    d.release = "mcp".into();
    d.run("up", &[]).assert_ok();
    assert_eq!(d.fullname(), "mcp-kubernetes-mcp-server");
    assert!(d.deployment().is_some());
    assert_eq!(d.state().unwrap()["data"]["nodePort"], d.node_port().to_string());
    d.run("down", &["--delete-namespace"]).assert_ok();
    assert!(d.get(&format!("/api/v1/namespaces/{}", d.ns)).is_none());
}

fn two_namespaces_keep_their_own_rbac(helm: Helm) {
    let a = Deploy::new("twin-a", helm);
    let b = Deploy::new("twin-b", helm);
    a.run("up", &[]).assert_ok();
    b.run("up", &[]).assert_ok();
    let view = |d: &Deploy, of: &Deploy| {
        d.get(&rbac_path("clusterrolebindings", &format!("kmcp:{}:kubernetes-mcp-server-view", of.ns)))
    };
    assert_eq!(view(&a, &a).unwrap()["subjects"][0]["namespace"], a.ns.as_str());
    assert_eq!(view(&b, &b).unwrap()["subjects"][0]["namespace"], b.ns.as_str());
    // Tearing b down leaves a's RBAC and deployment alone.
    b.run("down", &["--delete-namespace"]).assert_ok();
    assert!(view(&a, &a).is_some());
    a.run("verify", &[]).assert_ok();
    a.run("down", &["--delete-namespace"]).assert_ok();
}

both_helms!(
    up_deploys_and_a_second_up_changes_nothing,
    a_new_push_rolls_forward,
    down_removes_what_up_applied_and_twice_is_fine,
    another_release_name_moves_everything,
);

one_helm!(
    node_port_flag_pins_and_is_checked_before_any_change: V3,
    node_ip_defaults_to_internal_ip_with_a_warning: V4,
    two_namespaces_keep_their_own_rbac: V3,
    keep_port_survives_down_and_plain_down_forgets_it: V4,
);
