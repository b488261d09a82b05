//! `up`, `down` and `status` against the FAKE Kubernetes API server and the FAKE `helm`, with
//! images resolved through a real registry on 127.0.0.1.

mod support;

use serde_json::Value;
use support::env::*;
use support::fake_kube::Rollout;
use support::registry::push_index;
use support::Xtask;

fn rbac_docs() -> Vec<Value> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/rbac.yaml")).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn key_of(doc: &Value) -> String {
    let name = doc["metadata"]["name"].as_str().unwrap();
    match doc["kind"].as_str().unwrap() {
        "Namespace" => format!("/api/v1/namespaces/{name}"),
        "ServiceAccount" => {
            format!("/api/v1/namespaces/{}/serviceaccounts/{name}", doc["metadata"]["namespace"].as_str().unwrap())
        }
        "ClusterRole" => format!("/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"),
        "ClusterRoleBinding" => format!("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{name}"),
        k => panic!("unexpected kind {k}"),
    }
}

fn contains(live: &Value, want: &Value) -> bool {
    match (want, live) {
        (Value::Object(w), Value::Object(l)) => w.iter().all(|(k, v)| l.get(k).is_some_and(|lv| contains(lv, v))),
        (w, l) => w == l,
    }
}

#[test]
fn up_deploys_and_a_second_up_changes_nothing() {
    let env = Env::new();
    let out = env.run("up", &[]);
    out.assert_ok();

    // RBAC equals deploy/rbac.yaml, applied with our field manager.
    for doc in rbac_docs() {
        let live = env.kube.get(&key_of(&doc)).unwrap_or_else(|| panic!("{} not applied", key_of(&doc)));
        assert!(contains(&live, &doc), "{} differs from deploy/rbac.yaml: {live}", key_of(&doc));
        assert_eq!(live["metadata"]["managedFields"][0]["manager"], "kmcp-xtask");
        assert_eq!(live["metadata"]["managedFields"][0]["operation"], "Apply");
    }
    // helm got the pinned chart and values pinned by digest.
    let upgrades: Vec<_> =
        env.cli.calls("helm").into_iter().filter(|c| c.starts_with(&["upgrade", "--install"])).collect();
    assert_eq!(upgrades.len(), 1);
    let u = &upgrades[0];
    assert_eq!(&u.args[2..4], ["kubernetes-mcp-server", "oci://ghcr.io/containers/charts/kubernetes-mcp-server"]);
    assert_eq!(u.flag("--version"), Some("0.1.0"));
    assert_eq!(u.flag("-n"), Some(NS));
    let values: Value = serde_norway::from_str(u.files.values().next().unwrap()).unwrap();
    assert_eq!(values["image"]["version"], env.digest.as_str());
    assert_eq!(values["rbac"]["create"], false);
    assert_eq!(values["ingress"]["enabled"], false);
    assert_eq!(values["serviceAccount"]["create"], false);
    assert_eq!(values["serviceAccount"]["name"], "kubernetes-mcp-server");

    let d = env.kube.get(DEPLOYMENT).unwrap();
    let container = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], format!("{}/{REPO}@{}", env.registry.host, env.digest));
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    let args: Vec<&str> = container["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert!(args.windows(2).any(|w| w == ["--port", "8080"]), "{args:?}");
    assert_eq!(d["spec"]["template"]["spec"]["serviceAccountName"], "kubernetes-mcp-server");
    assert!(
        env.kube.get("/apis/rbac.authorization.k8s.io/v1/namespaces/mcp-system/roles/kubernetes-mcp-server").is_none(),
        "the chart's write Role must not be created"
    );

    let port = env.node_port();
    assert!((30000..=32767).contains(&port));
    assert_eq!(env.kube.get(SERVICE).unwrap()["spec"]["type"], "NodePort");
    assert_eq!(env.kube.get(STATE).unwrap()["data"]["nodePort"], port.to_string());
    assert!(out.stdout.lines().any(|l| l == format!("MCP URL: http://10.8.0.1:{port}/mcp")), "{}", out.stdout);
    let config_start = out.stdout.find("MCP client configuration:\n").unwrap() + "MCP client configuration:\n".len();
    let config: Value = serde_json::from_str(&out.stdout[config_start..]).unwrap();
    assert_eq!(config["mcpServers"]["kubernetes"]["url"], format!("http://10.8.0.1:{port}/mcp"));

    // Again: nothing changes, helm is not called, and it says so.
    let before = env.kube.snapshot();
    env.cli.clear();
    env.kube.clear_requests();
    let out = env.run("up", &[]);
    out.assert_ok();
    assert!(env.cli.calls("helm").is_empty(), "{:?}", env.cli.calls("helm"));
    assert!(out.stdout.contains("up to date: nothing changed"), "{}", out.stdout);
    assert_eq!(env.kube.snapshot(), before, "a no-op up changed the cluster");
    assert!(out.stdout.contains(&format!("MCP URL: http://10.8.0.1:{port}/mcp")));
    assert!(!env
        .kube
        .requests()
        .iter()
        .any(|r| r.starts_with("PATCH") || r.starts_with("POST") || r.starts_with("PUT") || r.starts_with("DELETE")));
}

#[test]
fn a_new_push_rolls_forward() {
    let env = Env::new();
    env.run("up", &[]).assert_ok();
    let generation = env.kube.get(DEPLOYMENT).unwrap()["metadata"]["generation"].as_i64().unwrap();
    let new = push_index(&env.registry.host, REPO, &["dev-latest".into()], &["linux/amd64".into()], None);
    assert_ne!(new, env.digest);
    let out = env.run("up", &[]);
    out.assert_ok();
    assert_eq!(env.helm_calls("upgrade"), 2);
    let d = env.kube.get(DEPLOYMENT).unwrap();
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], format!("{}/{REPO}@{new}", env.registry.host));
    assert_eq!(d["metadata"]["generation"].as_i64().unwrap(), generation + 1);
    assert!(out.stdout.contains("deployed"), "{}", out.stdout);
}

#[test]
fn down_removes_exactly_what_up_applied_and_twice_is_fine() {
    let env = Env::new();
    let empty = env.kube.keys();
    // down on an empty cluster
    let out = env.run("down", &[]);
    out.assert_ok();
    assert!(out.stdout.contains("nothing to do"), "{}", out.stdout);

    env.run("up", &[]).assert_ok();
    let out = env.run("down", &[]);
    out.assert_ok();
    assert_eq!(env.helm_calls("uninstall"), 1);
    let mut expected = empty.clone();
    expected.push("/api/v1/namespaces/mcp-system".into());
    expected.sort();
    assert_eq!(env.kube.keys(), expected, "down must leave only the namespace behind");

    let out = env.run("down", &[]);
    out.assert_ok();
    assert!(out.stdout.contains("nothing to do"), "{}", out.stdout);
    assert_eq!(env.helm_calls("uninstall"), 1);

    let out = env.run("down", &["--delete-namespace"]);
    out.assert_ok();
    assert_eq!(env.kube.keys(), empty);
    assert!(env.run("down", &["--delete-namespace"]).assert_ok().stdout.contains("nothing to do"));
}

#[test]
fn keep_port_survives_down_and_plain_down_forgets_it() {
    let env = Env::new();
    env.run("up", &[]).assert_ok();
    let port = env.node_port();
    env.run("down", &["--keep-port"]).assert_ok();
    assert!(env.kube.get(SERVICE).is_none());
    assert_eq!(env.kube.get(STATE).unwrap()["data"]["nodePort"], port.to_string());
    assert!(env.kube.get(STATE).unwrap()["data"].get("deployedSha256").is_none());
    env.kube.clear_requests();
    let out = env.run("up", &[]);
    out.assert_ok();
    assert_eq!(env.node_port(), port, "the recorded port is restored");
    assert!(env.kube.requests().iter().any(|r| r == &format!("PATCH {SERVICE}")));
    assert!(out.stdout.contains(&format!(":{port}/mcp")));

    env.run("down", &[]).assert_ok();
    assert!(env.kube.get(STATE).is_none(), "plain down forgets the port");
    env.kube.clear_requests();
    env.run("up", &[]).assert_ok();
    assert!(
        !env.kube.requests().iter().any(|r| r == &format!("PATCH {SERVICE}")),
        "a fresh port is Kubernetes' choice"
    );
    assert_eq!(env.kube.get(STATE).unwrap()["data"]["nodePort"], env.node_port().to_string());
}

#[test]
fn node_port_flag_pins_and_is_checked_before_any_change() {
    let env = Env::new();
    let out = env.run("up", &["--node-port", "8080"]);
    assert!(
        out.error_line().contains("--node-port 8080 is outside the cluster's NodePort range 30000-32767"),
        "{}",
        out.stderr
    );
    assert!(env.kube.requests().is_empty(), "{:?}", env.kube.requests());
    assert!(env.cli.calls("helm").is_empty());
    let out = env.run("up", &["--node-port", "31000", "--nodeport-range", "20000-30000"]);
    assert!(out.error_line().contains("outside the cluster's NodePort range 20000-30000"));

    env.run("up", &["--node-port", "31000"]).assert_ok();
    assert_eq!(env.node_port(), 31000);
    env.run("up", &[]).assert_ok();
    assert_eq!(env.node_port(), 31000, "the pinned port is recorded");
}

#[test]
fn bad_input_gives_one_clear_line() {
    let env = Env::new();
    let err = env.run("up", &["--node-ip", "10.8.0"]).error_line();
    assert!(err.contains("invalid node IP '10.8.0'"), "{err}");
    let err = env
        .xtask()
        .run(["up", "--kubeconfig", env.kube.kubeconfig_path().to_str().unwrap(), "--image", "nope"])
        .error_line();
    assert!(err.contains("invalid image reference 'nope'"), "{err}");
    let err = env.run("up", &["--timeout", "soon"]).error_line();
    assert!(err.contains("invalid duration 'soon'"), "{err}");
    assert!(env.kube.requests().is_empty());

    // Missing kubeconfig: no flag, no KUBECONFIG, an empty HOME.
    let err = env.xtask().run(["up", "--image", &env.image()]).error_line();
    assert!(err.contains("no kubeconfig found") && err.contains("--kubeconfig"), "{err}");
    let err = env.xtask().run(["down", "--kubeconfig", "/nonexistent/kubeconfig"]).error_line();
    assert!(err.contains("kubeconfig /nonexistent/kubeconfig (from --kubeconfig) does not exist"), "{err}");
    let err = env.xtask().env("KUBECONFIG", "/nonexistent/kc").run(["status"]).error_line();
    assert!(err.contains("(from KUBECONFIG) does not exist"), "{err}");

    // Unreachable API server: the URL is named.
    let port = support::registry::free_port();
    let dead = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        dead.path(),
        std::fs::read_to_string(env.kube.kubeconfig_path())
            .unwrap()
            .replace(&env.kube.url(), &format!("http://127.0.0.1:{port}")),
    )
    .unwrap();
    for task in ["up", "down", "status"] {
        let out = env.xtask().run(
            [task, "--kubeconfig", dead.path().to_str().unwrap(), "--image", &env.image()]
                .iter()
                .take(if task == "up" { 5 } else { 3 }),
        );
        let err = out.error_line();
        assert!(err.contains(&format!("cannot reach the Kubernetes API at http://127.0.0.1:{port}")), "{task}: {err}");
        assert_eq!(out.stderr.lines().filter(|l| l.starts_with("error")).count(), 1);
    }
    assert!(env.cli.calls("helm").is_empty());

    // helm missing.
    let empty = tempfile::tempdir().unwrap();
    let out = Xtask::new(None).only_path(empty.path()).run([
        "up",
        "--kubeconfig",
        env.kube.kubeconfig_path().to_str().unwrap(),
        "--image",
        &env.image(),
        "--node-ip",
        "10.8.0.1",
    ]);
    assert!(out.error_line().contains("`helm` not found on PATH"), "{}", out.stderr);
    assert!(env.kube.get("/api/v1/namespaces/mcp-system").is_none(), "nothing half-done");
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let env = Env::new();
    let before = env.kube.snapshot();
    let out = env.run("up", &["--dry-run"]);
    out.assert_ok();
    assert_eq!(env.kube.snapshot(), before);
    assert!(env.cli.calls("helm").is_empty());
    for id in [
        "namespace/mcp-system",
        "serviceaccount/kubernetes-mcp-server",
        "clusterrolebinding/kubernetes-mcp-server-view",
        "clusterrole/helm-readonly",
    ] {
        assert!(out.stdout.contains(&format!("would create {id}")), "{id}:\n{}", out.stdout);
    }
    assert!(out.stdout.contains("would run: helm upgrade --install kubernetes-mcp-server oci://ghcr.io/containers/charts/kubernetes-mcp-server --version 0.1.0 -n mcp-system -f "), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("version: {}", env.digest)), "{}", out.stdout);
    assert!(!env.kube.requests().iter().any(|r| !r.starts_with("GET")), "{:?}", env.kube.requests());

    env.run("up", &[]).assert_ok();
    let before = env.kube.snapshot();
    let out = env.run("down", &["--dry-run", "--delete-namespace"]);
    out.assert_ok();
    assert_eq!(env.kube.snapshot(), before);
    assert!(out.stdout.contains("would run: helm uninstall kubernetes-mcp-server"), "{}", out.stdout);
    assert!(out.stdout.contains("would delete namespace/mcp-system"), "{}", out.stdout);

    // Without any cluster, the plan for an empty cluster.
    let out = env.xtask().run(["up", "--dry-run", "--image", &env.image()]);
    out.assert_ok();
    assert!(out.stdout.contains("showing the plan for an empty cluster"), "{}", out.stdout);
    assert!(out.stdout.contains("would create namespace/mcp-system"));
    assert!(out.stdout.contains("would run: helm upgrade --install"));
}

#[test]
fn port_mismatch_rollout_is_diagnosed() {
    let env = Env::new();
    env.kube.set_rollout(Rollout::Stuck);
    env.kube.add_pod(NS, "kubernetes-mcp-server-7d9f-abcde", "img", "CrashLoopBackOff", 4,
        "I1125 01:00:00.000000       1 http.go:60] \"HTTP server starting\" server.addr=\":8080\" endpoints=\"/mcp, /healthz, /stats, /metrics\"\n");
    env.kube.add_event(NS, "kubernetes-mcp-server-7d9f-abcde", "Unhealthy",
        "Readiness probe failed: Get \"http://10.244.0.12:8686/healthz\": dial tcp 10.244.0.12:8686: connect: connection refused");
    let out = env.run("up", &["--port", "8686"]);
    let err = out.error_line();
    assert!(
        err.contains(
            "the probes get connection refused on port 8686 while the server logs that it listens on port 8080"
        ),
        "{err}"
    );
    assert!(err.contains("--port 8080"), "{err}");
    assert!(out.stderr.contains("log: I1125"), "{}", out.stderr);
    assert!(
        env.kube.get(STATE).is_none_or(|s| s["data"].get("deployedSha256").is_none()),
        "a failed rollout is not recorded as deployed"
    );
}

#[test]
fn image_pull_failure_names_the_image() {
    let env = Env::new();
    env.kube.set_rollout(Rollout::Stuck);
    let image = format!("{}/{REPO}@{}", env.registry.host, env.digest);
    env.kube.add_pod(NS, "kubernetes-mcp-server-1", &image, "ImagePullBackOff", 0, "");
    let err = env.run("up", &[]).error_line();
    assert!(err.contains(&format!("cannot pull image {image}")) && err.contains("public"), "{err}");
}

#[test]
fn stuck_rollout_times_out_with_progress() {
    let env = Env::new();
    env.kube.set_rollout(Rollout::Stuck);
    let out = env.run("up", &["--timeout", "2s"]);
    assert!(out.error_line().contains("rollout of deployment/kubernetes-mcp-server timed out"), "{}", out.stderr);
    assert!(
        out.stderr.contains("waiting for deployment/kubernetes-mcp-server: 1/1 updated, 0/1 available"),
        "{}",
        out.stderr
    );
}

#[test]
fn node_ip_defaults_to_internal_ip_with_a_warning() {
    let env = Env::new();
    let out =
        env.xtask().run(["up", "--kubeconfig", env.kube.kubeconfig_path().to_str().unwrap(), "--image", &env.image()]);
    out.assert_ok();
    assert!(out.stderr.contains("InternalIP 192.168.50.10") && out.stderr.contains("WireGuard"), "{}", out.stderr);
    assert!(out.stdout.contains(&format!("MCP URL: http://192.168.50.10:{}/mcp", env.node_port())));
    let out = env.xtask().env("MCP_NODE_IP", "10.9.9.9").run([
        "up",
        "--kubeconfig",
        env.kube.kubeconfig_path().to_str().unwrap(),
        "--image",
        &env.image(),
    ]);
    assert!(out.assert_ok().stdout.contains("MCP URL: http://10.9.9.9:"));
}

#[test]
fn namespace_and_release_flags_move_everything() {
    let env = Env::new();
    env.run("up", &["--namespace", "triage", "--release", "mcp"]).assert_ok();
    assert!(env.kube.get("/api/v1/namespaces/triage/serviceaccounts/kubernetes-mcp-server").is_some());
    assert!(env.kube.get("/apis/apps/v1/namespaces/triage/deployments/mcp-kubernetes-mcp-server").is_some());
    let crb =
        env.kube.get("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/kubernetes-mcp-server-view").unwrap();
    assert_eq!(crb["subjects"][0]["namespace"], "triage");
    assert!(env.kube.get("/api/v1/namespaces/mcp-system").is_none());
    env.run("down", &["--namespace", "triage", "--release", "mcp", "--delete-namespace"]).assert_ok();
    assert!(env.kube.get("/api/v1/namespaces/triage").is_none());
}

#[test]
fn status_shows_one_screen() {
    let env = Env::new();
    let out = env.run("status", &[]);
    assert!(out.assert_ok().stdout.contains("is not installed"), "{}", out.stdout);
    env.run("up", &[]).assert_ok();
    let out = env.run("status", &["--node-ip", "10.8.0.1"]);
    out.assert_ok();
    let port = env.node_port();
    assert!(out.stdout.contains("revision 1 (deployed"), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("image:    {}/{REPO}@{}", env.registry.host, env.digest)), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("nodePort: {port} (recorded)")), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("MCP URL:  http://10.8.0.1:{port}/mcp")), "{}", out.stdout);
    assert!(out.stdout.contains("mode:     read-only, stateless"), "{}", out.stdout);
}

#[test]
fn drifted_rbac_is_put_back_and_a_no_op_reads_little() {
    let env = Env::new();
    env.run("up", &[]).assert_ok();
    let key = "/apis/rbac.authorization.k8s.io/v1/clusterroles/helm-readonly";
    let mut role = env.kube.get(key).unwrap();
    role["rules"][0]["verbs"] = serde_json::json!(["get", "list", "watch", "delete"]);
    env.kube.put(key, role);
    let sa = "/api/v1/namespaces/mcp-system/serviceaccounts/kubernetes-mcp-server";
    let mut account = env.kube.get(sa).unwrap();
    account["metadata"]["labels"] = serde_json::json!({});
    env.kube.put(sa, account);

    env.cli.clear();
    let out = env.run("up", &[]);
    out.assert_ok();
    let changed = out.stdout.lines().find(|l| l.starts_with("changed: ")).unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(
        changed.contains("updated clusterrole/helm-readonly")
            && changed.contains("updated serviceaccount/kubernetes-mcp-server"),
        "{changed}"
    );
    assert_eq!(env.kube.get(key).unwrap()["rules"][0]["verbs"], serde_json::json!(["get", "list", "watch"]));
    assert_eq!(env.kube.get(sa).unwrap()["metadata"]["labels"]["app.kubernetes.io/managed-by"], "kmcp-xtask");
    assert!(env.cli.calls("helm").is_empty(), "RBAC drift needs no helm run");

    env.kube.clear_requests();
    let out = env.run("up", &[]);
    assert!(out.assert_ok().stdout.contains("up to date: nothing changed"));
    let requests = env.kube.requests();
    assert!(requests.len() <= 8 && requests.iter().all(|r| r.starts_with("GET ")), "{requests:?}");
}

#[test]
fn an_old_fork_without_the_safe_flags_is_diagnosed() {
    let env = Env::new();
    env.kube.set_rollout(Rollout::Stuck);
    env.kube.add_pod(
        NS,
        "kubernetes-mcp-server-old",
        "img",
        "CrashLoopBackOff",
        2,
        "Error: unknown flag: --stateless\nUsage:\n  kubernetes-mcp-server [flags]\n",
    );
    let err = env.run("up", &[]).error_line();
    assert!(err.contains("does not know the flag --stateless") && err.contains("--stateful"), "{err}");
}

#[test]
fn the_registry_token_never_appears_in_up_output() {
    let env = Env::new();
    let token = "ghp_UpTokenThatMustStaySecret42";
    let (kubeconfig, image) = (env.kube.kubeconfig_path().display().to_string(), env.image());
    for flags in [vec!["--dry-run"], vec![]] {
        let mut args = vec!["up", "--kubeconfig", &kubeconfig, "--image", &image, "--node-ip", "10.8.0.1"];
        args.extend(flags);
        let out = env.xtask().env("GHCR_TOKEN", token).run(&args);
        out.assert_ok();
        assert!(!out.all().contains(token), "{}", out.all());
    }
    for call in env.cli.calls("helm") {
        assert!(!call.args.iter().any(|a| a.contains(token)) && !call.files.values().any(|f| f.contains(token)));
    }
}
