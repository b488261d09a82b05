//! `up`, `down` and `status` on the real control plane with the real helm 3 and helm 4, the test
//! chart from the test registry, and the real server running in its pod.

mod support;

use serde_json::{json, Value};
use support::cluster::cluster;
use support::deploy::{push_chart, registry, server_image, Deploy, Helm};
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
    d.run("up", &[]).assert_ok();
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

    let wanted = 30000 + (std::process::id() % 1300) as i64 + if helm == Helm::V3 { 0 } else { 1300 };
    let flag = wanted.to_string();
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

fn port_mismatch_rollout_is_diagnosed(helm: Helm) {
    // The seed's incident, for real: an image whose ENTRYPOINT says --port 8080, a chart content
    // without extraArgs, and --port 8686: the probes hit 8686 while the server listens on 8080.
    let mut d = Deploy::new("mismatch", helm);
    let repo = format!("alice/old-{}", d.ns);
    d.image = server_image(&repo, Entrypoint::OldPort8080).0;
    (d.chart, d.chart_digest) = chart_variant("old", Variant::NoExtraArgs);
    let out = d.run("up", &["--port", "8686"]);
    let err = out.error_line();
    assert!(
        err.contains(
            "the probes get connection refused on port 8686 while the server logs that it listens on port 8080"
        ),
        "{err}\n{}",
        out.stderr
    );
    assert!(err.contains("--port 8080"), "{err}");
    assert!(out.stderr.contains("log: ") && out.stderr.contains("HTTP server starting"), "{}", out.stderr);
    assert!(
        d.state().is_none_or(|s| s["data"].get("deployedSha256").is_none()),
        "a failed rollout is not recorded as deployed"
    );
    d.run("down", &["--delete-namespace"]).assert_ok();
}

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    /// Content before v0.0.59: `extraArgs` ignored.
    NoExtraArgs,
    /// No extraArgs and a config.toml that keeps only the port: the mode is lost entirely.
    NoMode,
    /// The same interface, another content (a description changed): the tag "moves".
    Republished,
}

/// Another content of the test chart, pushed under the same version to `<registry>/charts-<repo>`,
/// once per process (helm package stamps times: two pushes would move the tag).
fn chart_variant(repo: &str, variant: Variant) -> (String, String) {
    type Pushed = std::sync::Mutex<std::collections::HashMap<String, (String, String)>>;
    static PUSHED: std::sync::OnceLock<Pushed> = std::sync::OnceLock::new();
    let mut pushed = PUSHED.get_or_init(Default::default).lock().unwrap();
    pushed.entry(repo.to_string()).or_insert_with(|| push_variant(repo, variant)).clone()
}

fn push_variant(repo: &str, variant: Variant) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    support::copy_dir(&support::deploy::chart_dir(), dir.path());
    let edit = |file: &str, f: &dyn Fn(String) -> String| {
        let path = dir.path().join(file);
        std::fs::write(&path, f(std::fs::read_to_string(&path).unwrap())).unwrap();
    };
    if variant != Variant::Republished {
        edit("templates/deployment.yaml", &|text| {
            let (head, rest) = text.split_once("            # kmcp:extraArgs\n").unwrap();
            let (_, tail) = rest.split_once("            # kmcp:end\n").unwrap();
            format!("{head}{tail}")
        });
    }
    if variant == Variant::NoMode {
        edit("templates/configmap.yaml", &|text| {
            let (head, _) = text.split_once("  config.toml: |").unwrap();
            format!("{head}  config.toml: |\n    port = \"{{{{ .Values.service.port }}}}\"\n")
        });
    }
    if variant == Variant::Republished {
        edit("Chart.yaml", &|text| {
            text.replace("description: Test stand-in", "description: Republished test stand-in")
        });
    }
    push_chart(dir.path(), &format!("charts-{repo}-{}", std::process::id()))
}

fn image_pull_failure_names_the_image(helm: Helm) {
    let mut d = Deploy::new("pull", helm);
    let repo = format!("alice/gone-{}", d.ns);
    let (image, index) = server_image(&repo, Entrypoint::Current);
    // The index resolves, but this platform's image is gone from the registry: the node cannot pull.
    let manifest = reqwest_blocking_get_index(&repo, &index);
    delete_manifest(&repo, &manifest);
    d.image = image;
    let out = d.run("up", &["--timeout", "60s"]);
    let err = out.error_line();
    assert!(err.contains(&format!("{}/{repo}@{index}", registry())) && err.contains("public"), "{err}");
    assert!(err.contains("ErrImagePull") || err.contains("ImagePullBackOff"), "{err}");
    // The registry says `manifest unknown` (404); containerd passes it on as `not found`.
    assert!(
        err.contains("manifest unknown") || err.contains("404") || err.contains("not found"),
        "the registry's own words: {err}"
    );
    d.run("down", &["--delete-namespace"]).assert_ok();
}

/// The digest of this machine's platform image in an index.
fn reqwest_blocking_get_index(repo: &str, index: &str) -> String {
    let text = curl(&[
        "-s",
        "-H",
        "Accept: application/vnd.oci.image.index.v1+json",
        &format!("http://{}/v2/{repo}/manifests/{index}", registry()),
    ]);
    let v: Value = serde_json::from_str(&text).unwrap();
    let arch = if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" };
    v["manifests"].as_array().unwrap().iter().find(|m| m["platform"]["architecture"] == arch).unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn delete_manifest(repo: &str, digest: &str) {
    let code = curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "DELETE",
        &format!("http://{}/v2/{repo}/manifests/{digest}", registry()),
    ]);
    assert_eq!(code, "202", "registry refused to delete {digest}");
}

fn curl(args: &[&str]) -> String {
    let out = std::process::Command::new("curl").args(args).output().unwrap();
    String::from_utf8(out.stdout).unwrap()
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

fn the_chart_ingress_fails_without_a_host(helm: Helm) {
    // What the real chart does with its defaults: the ingress is on and needs a host. `up` turns it off.
    let out = std::process::Command::new(helm.binary())
        .arg("template")
        .arg("r")
        .arg(support::deploy::chart_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Ingress hostname must be specified"));
}

fn the_chart_is_pinned_by_content(helm: Helm) {
    let mut d = Deploy::new("chartpin", helm);
    let repo = format!("pin-{}", d.ns);
    let (chart, first) = chart_variant(&repo, Variant::Republished);
    d.chart = chart;
    d.chart_digest = first.clone();
    let out = d.run("up", &[]);
    out.assert_ok();
    assert!(out.stderr.contains("pulled chart"), "first up pulls the chart: {}", out.stderr);
    assert!(
        out.stdout.contains(&format!("chart {}:{}@{first}", d.chart, support::deploy::chart_version())),
        "{}",
        out.stdout
    );
    let out = d.run("up", &[]);
    assert!(out.assert_ok().stdout.contains("up to date: nothing changed"), "{}", out.stdout);
    assert!(!out.stderr.contains("pulled chart"), "the second up uses the cached chart: {}", out.stderr);
    let out = d.run("status", &[]);
    assert!(out.assert_ok().stdout.contains(&format!("chart:    {first}")), "{}", out.stdout);

    // Upstream re-publishes 0.1.0: the tag moves. Refused, before any change, naming both digests.
    let (_, moved) = push_chart(&support::deploy::chart_dir(), &format!("charts-{repo}-{}", std::process::id()));
    assert_ne!(moved, first);
    let rv = d.deployment().unwrap()["metadata"]["resourceVersion"].clone();
    let out = d.run("up", &["--port", "9090"]);
    let err = out.error_line();
    assert!(err.contains(&moved) && err.contains(&first) && err.contains(&format!("--chart-digest {moved}")), "{err}");
    assert_eq!(d.deployment().unwrap()["metadata"]["resourceVersion"], rv, "nothing changed");
    // Accepted the documented way: a new chart content is a change.
    let out = d.run("up", &["--chart-digest", &moved]);
    out.assert_ok();
    assert!(out.stdout.contains("deployed") && out.stdout.contains(&moved), "{}", out.stdout);

    // No pin at all is refused too, naming the digest to review.
    let err = d.xtask().run(d.args_without("up", &["--chart-digest"], &["--node-ip", "10.8.0.1"])).error_line();
    assert!(err.contains("is not pinned by digest") && err.contains(&moved), "{err}");
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn content_without_extra_args_still_runs_read_only_and_stateless(helm: Helm) {
    let mut d = Deploy::new("noextra", helm);
    (d.chart, d.chart_digest) = chart_variant("noextra", Variant::NoExtraArgs);
    let out = d.run("up", &[]);
    out.assert_ok();
    assert_eq!(
        d.container_args(),
        ["--config", "/etc/kubernetes-mcp-server/config.toml"],
        "this content ignores extraArgs"
    );
    assert!(out.stdout.contains("mode: read-only, stateless"), "{}", out.stdout);
    let url = d.url();
    support::block_on(async {
        let mut session = xtask::server::mcp::Session::initialize(&url).await.unwrap();
        let tools = session.list_tools().await.unwrap();
        assert!(!tools.is_empty() && tools.iter().all(|t| t.read_only), "{tools:?}");
        let (status, _) = session.open_stream().await.unwrap();
        assert_eq!(status, 405, "stateless from the config file alone");
    });
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn a_chart_that_loses_the_mode_fails_up(helm: Helm) {
    let mut d = Deploy::new("nomode", helm);
    (d.chart, d.chart_digest) = chart_variant("nomode", Variant::NoMode);
    let out = d.run("up", &[]);
    let err = out.error_line();
    assert!(
        err.contains("does not run in the mode asked for")
            && err.contains("not read-only")
            && err.contains("ignores extraArgs"),
        "{err}"
    );
    assert_eq!(out.stderr.lines().filter(|l| l.starts_with("error")).count(), 1);
    assert!(d.state().is_none_or(|s| s["data"].get("deployedSha256").is_none()), "not recorded as deployed");
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn a_long_release_name_works_end_to_end(helm: Helm) {
    let mut d = Deploy::new("longname", helm);
    d.release = format!("r{}", "e".repeat(49));
    assert_eq!(d.release.len(), 50);
    let out = d.run("up", &[]);
    out.assert_ok();
    assert_eq!(d.fullname().len(), 63);
    assert!(d.deployment().is_some(), "the chart's truncated fullname");
    d.run("verify", &[]).assert_ok();
    d.run("down", &["--delete-namespace"]).assert_ok();
    let err = d
        .xtask()
        .run([
            "up",
            "--kubeconfig",
            d.kubeconfig.to_str().unwrap(),
            "--release",
            "a/b",
            "--image",
            &d.image,
            "--allow-from",
            "10.8.0.0/24",
        ])
        .error_line();
    assert!(err.starts_with("error: invalid --release 'a/b'"), "{err}");
    let err = d
        .xtask()
        .run(["down", "--kubeconfig", d.kubeconfig.to_str().unwrap(), "--namespace", "kube-system/configmaps"])
        .error_line();
    assert!(err.starts_with("error: invalid --namespace 'kube-system/configmaps'"), "{err}");
}

fn a_local_chart_directory_is_deployed_by_content(helm: Helm) {
    let d = Deploy::new("localchart", helm);
    let dir = support::deploy::chart_dir();
    let args = d.args_without("up", &["--chart-version", "--chart-digest"], &["--chart", dir.to_str().unwrap()]);
    let out = d.xtask().run(&args);
    out.assert_ok();
    assert!(out.stdout.contains(&format!("chart {}", dir.display())), "{}", out.stdout);
    assert!(d.xtask().run(&args).assert_ok().stdout.contains("up to date: nothing changed"));
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
    up_waits_for_a_namespace_still_terminating,
    the_chart_is_pinned_by_content,
    content_without_extra_args_still_runs_read_only_and_stateless,
    a_chart_that_loses_the_mode_fails_up,
    a_long_release_name_works_end_to_end,
    a_local_chart_directory_is_deployed_by_content,
    bad_input_gives_one_clear_line_before_any_change,
    dry_run_prints_the_plan_and_changes_nothing,
    the_chart_ingress_fails_without_a_host,
    up_deploys_and_a_second_up_changes_nothing,
    a_new_push_rolls_forward,
    down_removes_what_up_applied_and_twice_is_fine,
    keep_port_survives_down_and_plain_down_forgets_it,
    node_port_flag_pins_and_is_checked_before_any_change,
    port_mismatch_rollout_is_diagnosed,
    image_pull_failure_names_the_image,
    node_ip_defaults_to_internal_ip_with_a_warning,
    another_release_name_moves_everything,
    two_namespaces_keep_their_own_rbac,
    status_shows_one_screen,
    drifted_rbac_is_put_back_without_helm,
    the_registry_token_never_appears_in_up_output,
);
