//! `up`, `down` and `status` on the real control plane with the real helm 3 and helm 4, the test
//! chart from the test registry, and the real server running in its pod.

mod support;

use serde_json::{json, Value};
use support::cluster::cluster;
use support::deploy::{registry, server_image, Deploy, Helm};
use support::registry::Entrypoint;

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
    let config_start = out.stdout.find("MCP client configuration:\n").unwrap() + "MCP client configuration:\n".len();
    let config: Value = serde_json::from_str(&out.stdout[config_start..]).unwrap();
    assert_eq!(config["mcpServers"]["kubernetes"]["url"], url);

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

fn status_shows_one_screen(helm: Helm) {
    let d = Deploy::new("status", helm);
    let out = d.run("status", &[]);
    assert!(out.assert_ok().stdout.contains("is not installed"), "{}", out.stdout);
    d.run("up", &[]).assert_ok();
    let out = d.run("status", &["--node-ip", "10.8.0.1"]);
    out.assert_ok();
    let port = d.node_port();
    assert!(out.stdout.contains("revision 1 (deployed"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("image:    {}/{}@{}", registry(), support::deploy::repo(), d.digest)),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(&format!("nodePort: {port} (recorded)")), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("MCP URL:  http://10.8.0.1:{port}/mcp")), "{}", out.stdout);
    assert!(out.stdout.contains("mode:     read-only, stateless"), "{}", out.stdout);
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn drifted_rbac_is_put_back_without_helm(helm: Helm) {
    let d = Deploy::new("drift", helm);
    d.run("up", &[]).assert_ok();
    let role = rbac_path("clusterroles", &format!("kmcp:{}:kubernetes-mcp-server-nodes-read", d.ns));
    d.send(
        "PATCH",
        &role,
        "application/merge-patch+json",
        json!({"rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch", "delete"]}]}),
    );
    let sa = format!("/api/v1/namespaces/{}/serviceaccounts/kubernetes-mcp-server", d.ns);
    d.send("PATCH", &sa, "application/merge-patch+json", json!({"metadata": {"labels": null}}));

    let audit_before = d.audit().map(|a| a.len());
    let out = d.run("up", &[]);
    out.assert_ok();
    let changed = out.stdout.lines().find(|l| l.starts_with("changed: ")).unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(
        changed.contains(&format!("updated clusterrole/kmcp:{}:kubernetes-mcp-server-nodes-read", d.ns)),
        "{changed}"
    );
    assert!(changed.contains("serviceaccount/kubernetes-mcp-server"), "{changed}");
    assert_eq!(d.get(&role).unwrap()["rules"][0]["verbs"], json!(["get", "list", "watch"]));
    assert_eq!(d.get(&sa).unwrap()["metadata"]["labels"]["app.kubernetes.io/managed-by"], "kmcp-xtask");
    if let (Some(n), Some(after)) = (audit_before, d.audit()) {
        assert!(after[n..].iter().all(|e| !e.by_helm()), "RBAC drift needs no helm run: {:?}", &after[n..]);
    }
    let audit_before = d.audit().map(|a| a.len());
    let out = d.run("up", &[]);
    assert!(out.assert_ok().stdout.contains("up to date: nothing changed"));
    if let (Some(n), Some(after)) = (audit_before, d.audit()) {
        let noop = &after[n..];
        assert!(noop.len() <= 12 && noop.iter().all(|e| !e.is_write()), "{} requests: {noop:?}", noop.len());
    }
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn the_registry_token_never_appears_in_up_output(helm: Helm) {
    let d = Deploy::new("token", helm);
    let token = "ghp_UpTokenThatMustStaySecret42";
    for flags in [vec!["--dry-run"], vec![]] {
        let args = d.args("up", &flags);
        let out = d.xtask().env("GHCR_TOKEN", token).run(&args);
        out.assert_ok();
        assert!(!out.all().contains(token), "{}", out.all());
    }
    let secrets = d.get(&format!("/api/v1/namespaces/{}/secrets", d.ns)).unwrap();
    assert!(!secrets.to_string().contains(token), "the token reached the cluster");
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn bad_input_gives_one_clear_line_before_any_change(helm: Helm) {
    let d = Deploy::new("badinput", helm);
    let err = d.run("up", &["--node-ip", "10.8.0"]).error_line();
    assert!(err.contains("invalid node IP '10.8.0'"), "{err}");
    let err = d.run("up", &["--image", "nope"]).error_line();
    assert!(err.contains("invalid image reference 'nope'"), "{err}");
    let err = d.run("up", &["--timeout", "soon"]).error_line();
    assert!(err.contains("invalid duration 'soon'"), "{err}");
    assert!(d.get(&format!("/api/v1/namespaces/{}", d.ns)).is_none(), "nothing was changed");

    // Missing kubeconfig: no flag, no KUBECONFIG, an empty HOME.
    let err = d.xtask().run(["up", "--image", &d.image, "--allow-from", "10.8.0.0/24"]).error_line();
    assert!(err.contains("no kubeconfig found") && err.contains("--kubeconfig"), "{err}");
    let err = d.xtask().run(["down", "--kubeconfig", "/nonexistent/kubeconfig"]).error_line();
    assert!(err.contains("kubeconfig /nonexistent/kubeconfig (from --kubeconfig) does not exist"), "{err}");
    let err = d.xtask().env("KUBECONFIG", "/nonexistent/kc").run(["status"]).error_line();
    assert!(err.contains("(from KUBECONFIG) does not exist"), "{err}");

    // An API server that does not answer: its URL is named, in one line.
    let port = support::registry::free_port();
    let dead = tempfile::NamedTempFile::new().unwrap();
    let text = std::fs::read_to_string(&d.kubeconfig).unwrap();
    let server = text.lines().find_map(|l| l.trim().strip_prefix("server: ")).unwrap().to_string();
    std::fs::write(dead.path(), text.replace(&server, &format!("https://127.0.0.1:{port}"))).unwrap();
    for task in ["up", "down", "status"] {
        let mut args = vec![task, "--kubeconfig", dead.path().to_str().unwrap()];
        if task == "up" {
            args.extend(["--image", &d.image, "--allow-from", "10.8.0.0/24"]);
        }
        let out = d.xtask().run(&args);
        let err = out.error_line();
        assert!(err.contains(&format!("cannot reach the Kubernetes API at https://127.0.0.1:{port}")), "{task}: {err}");
        assert_eq!(out.stderr.lines().filter(|l| l.starts_with("error")).count(), 1);
    }

    // helm missing.
    let empty = tempfile::tempdir().unwrap();
    let kc = d.kubeconfig.display().to_string();
    let out = support::Xtask::new(None).only_path(empty.path()).run([
        "up",
        "--kubeconfig",
        &kc,
        "--namespace",
        &d.ns,
        "--image",
        &d.image,
        "--node-ip",
        "10.8.0.1",
        "--allow-from",
        "10.8.0.0/24",
    ]);
    assert!(out.error_line().contains("`helm` not found on PATH"), "{}", out.stderr);
    assert!(d.get(&format!("/api/v1/namespaces/{}", d.ns)).is_none(), "nothing half-done");
}

fn dry_run_prints_the_plan_and_changes_nothing(helm: Helm) {
    let d = Deploy::new("dryrun", helm);
    let audit_before = d.audit().map(|a| a.len());
    let out = d.run("up", &["--dry-run"]);
    out.assert_ok();
    assert!(d.get(&format!("/api/v1/namespaces/{}", d.ns)).is_none(), "a dry run created the namespace");
    for id in [
        format!("namespace/{}", d.ns),
        "serviceaccount/kubernetes-mcp-server".into(),
        format!("clusterrolebinding/kmcp:{}:kubernetes-mcp-server-view", d.ns),
    ] {
        assert!(out.stdout.contains(&format!("would create {id}")), "{id}:\n{}", out.stdout);
    }
    let cached = format!("{}.tgz", d.chart_digest.trim_start_matches("sha256:"));
    let helm_line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("would run: helm upgrade --install kubernetes-mcp-server "))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(
        helm_line.contains(&cached) && helm_line.contains(&format!(" -n {} -f ", d.ns)),
        "helm gets the chart file pinned by digest: {helm_line}"
    );
    assert!(out.stdout.contains(&format!("version: {}", d.digest)), "{}", out.stdout);
    if let (Some(n), Some(after)) = (audit_before, d.audit()) {
        assert!(after[n..].iter().all(|e| !e.is_write()), "a dry run wrote: {:?}", &after[n..]);
    }

    d.run("up", &[]).assert_ok();
    let rv = d.deployment().unwrap()["metadata"]["resourceVersion"].clone();
    let out = d.run("down", &["--dry-run", "--delete-namespace"]);
    out.assert_ok();
    assert!(out.stdout.contains("would run: helm uninstall kubernetes-mcp-server"), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("would delete namespace/{}", d.ns)), "{}", out.stdout);
    assert_eq!(d.deployment().unwrap()["metadata"]["resourceVersion"], rv);

    // Without any cluster, the plan for an empty cluster.
    let out = d.xtask().run(["up", "--dry-run", "--image", &d.image, "--allow-from", "10.8.0.0/24"]);
    out.assert_ok();
    assert!(out.stdout.contains("showing the plan for an empty cluster"), "{}", out.stdout);
    assert!(out.stdout.contains("would create namespace/mcp-system"));
    assert!(out.stdout.contains("would run: helm upgrade --install"));
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn up_waits_for_a_namespace_still_terminating(helm: Helm) {
    let d = Deploy::new("terminating", helm);
    d.run("up", &[]).assert_ok();
    d.send("DELETE", &format!("/api/v1/namespaces/{}", d.ns), "application/json", json!({}));
    assert!(d.get(&format!("/api/v1/namespaces/{}", d.ns)).unwrap()["metadata"]["deletionTimestamp"].is_string());
    let out = d.run("up", &[]);
    out.assert_ok();
    assert!(out.stderr.contains("is terminating: wait until it is gone"), "{}", out.stderr);
    let ns = d.get(&format!("/api/v1/namespaces/{}", d.ns)).unwrap();
    assert!(ns["metadata"]["deletionTimestamp"].is_null(), "created afresh: {ns}");
    assert_eq!(d.deployment().unwrap()["status"]["readyReplicas"], 1);
    d.run("down", &["--delete-namespace"]).assert_ok();
}

both_helms!(
    up_deploys_and_a_second_up_changes_nothing,
    a_new_push_rolls_forward,
    down_removes_what_up_applied_and_twice_is_fine,
    another_release_name_moves_everything,
    the_registry_token_never_appears_in_up_output,
);

one_helm!(
    bad_input_gives_one_clear_line_before_any_change: V3,
    dry_run_prints_the_plan_and_changes_nothing: V4,
    node_port_flag_pins_and_is_checked_before_any_change: V3,
    node_ip_defaults_to_internal_ip_with_a_warning: V4,
    two_namespaces_keep_their_own_rbac: V3,
    status_shows_one_screen: V4,
    drifted_rbac_is_put_back_without_helm: V3,
    up_waits_for_a_namespace_still_terminating: V4,
    keep_port_survives_down_and_plain_down_forgets_it: V4,
);
