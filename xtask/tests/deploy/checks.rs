//! `status`, drift put back without helm, the registry token kept out of the output, input
//! refused before any change, dry runs, a namespace still terminating.

use super::*;

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
    // Each pod is named with the node it runs on.
    let pods = d.get(&format!("/api/v1/namespaces/{}/pods", d.ns)).unwrap();
    for pod in pods["items"].as_array().unwrap() {
        let (name, node) = (pod["metadata"]["name"].as_str().unwrap(), pod["spec"]["nodeName"].as_str().unwrap());
        assert!(out.stdout.contains(&format!("{name} Running on {node}, ")), "{}", out.stdout);
    }
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
        assert!(noop.len() <= 13 && noop.iter().all(|e| !e.is_write()), "{} requests: {noop:?}", noop.len());
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
    assert!(
        err.contains("looked at --kubeconfig, KUBECONFIG, ~/.kube/config and /var/lib/k0s/pki/admin.conf"),
        "{err}"
    );
    assert!(err.contains("sudo k0s kubeconfig admin > ~/.kube/config"), "how to get one: {err}");
    let err = d.xtask().run(["down", "--kubeconfig", "/nonexistent/kubeconfig"]).error_line();
    assert!(err.contains("kubeconfig /nonexistent/kubeconfig (from --kubeconfig) does not exist"), "{err}");
    assert!(err.contains("k0s kubeconfig admin"), "{err}");
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

both_helms!(the_registry_token_never_appears_in_up_output,);

one_helm!(
    bad_input_gives_one_clear_line_before_any_change: V3,
    dry_run_prints_the_plan_and_changes_nothing: V4,
    status_shows_one_screen: V4,
    drifted_rbac_is_put_back_without_helm: V3,
    up_waits_for_a_namespace_still_terminating: V4,
);
