//! Safe with what is not its own, on the real control plane: a namespace or ClusterRole the user
//! had, credentials that stay with their registry, one run at a time, the live state rather than a
//! record, helm interrupted or killed, and input checked before any change.

#[macro_use]
extern crate kmcp_test_support as support;

use serde_json::json;
use std::sync::{Arc, Mutex};
use support::deploy::{Deploy, Helm};
use support::http::{Response, Server};

#[path = "safety/limits.rs"]
mod limits;

fn ns_path(d: &Deploy) -> String {
    format!("/api/v1/namespaces/{}", d.ns)
}

fn a_namespace_that_existed_survives_down(helm: Helm) {
    let d = Deploy::new("usersns", helm);
    d.send(
        "POST",
        "/api/v1/namespaces",
        "application/json",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": d.ns}}),
    );
    d.send(
        "POST",
        &format!("{}/secrets", ns_path(&d)),
        "application/json",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "users-own"}, "stringData": {"k": "v"}}),
    );
    d.run("up", &[]).assert_ok();

    let out = d.run("down", &["--delete-namespace", "--dry-run"]);
    assert!(
        out.error_line().contains("secret/users-own"),
        "the refusal lists what the namespace holds: {}",
        out.stderr
    );
    let out = d.run("down", &["--delete-namespace"]);
    let err = out.error_line();
    assert!(err.contains("existed before") && err.contains("secret/users-own"), "{err}");
    assert!(d.deployment().is_some(), "refused before any change");
    d.run("down", &[]).assert_ok();
    assert!(d.deployment().is_none());
    assert!(d.get(&ns_path(&d)).is_some(), "the user's namespace stays");
    assert!(d.get(&format!("{}/secrets/users-own", ns_path(&d))).is_some(), "the user's secret stays");
    d.send("DELETE", &ns_path(&d), "application/json", json!({}));
}

fn a_namespace_up_created_goes_only_without_foreign_objects(helm: Helm) {
    let d = Deploy::new("ownns", helm);
    d.run("up", &[]).assert_ok();
    d.send(
        "POST",
        &format!("{}/configmaps", ns_path(&d)),
        "application/json",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "added-later"}, "data": {"a": "b"}}),
    );
    let err = d.run("down", &["--delete-namespace"]).error_line();
    assert!(err.contains("configmap/added-later") && err.contains("--force"), "{err}");
    assert!(d.deployment().is_some(), "refused before any change");
    let out = d.run("down", &["--delete-namespace", "--force", "--dry-run"]);
    assert!(out.assert_ok().stdout.contains("would delete with it: configmap/added-later"), "{}", out.stdout);
    d.run("down", &["--delete-namespace", "--force"]).assert_ok();
    assert!(d.get(&ns_path(&d)).is_none());
    for protected in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let err = d
            .xtask()
            .run([
                "down",
                "--kubeconfig",
                d.kubeconfig.to_str().unwrap(),
                "--namespace",
                protected,
                "--delete-namespace",
            ])
            .error_line();
        assert!(err.contains(&format!("refuses namespace {protected}")), "{err}");
    }
}

fn a_users_cluster_role_is_not_taken_over(helm: Helm) {
    let d = Deploy::new("clash", helm);
    let name = format!("kmcp:{}:kubernetes-mcp-server-nodes-read", d.ns);
    let path = format!("/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}");
    d.send("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", "application/json", json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}]}));
    let before = d.get(&path).unwrap();
    let err = d.run("up", &[]).error_line();
    assert!(
        err.contains(&format!("clusterrole/{name} already exists and was not created by `cargo xtask up`"))
            && err.contains("--adopt"),
        "{err}"
    );
    assert_eq!(d.get(&path).unwrap(), before, "untouched");
    assert!(d.get(&ns_path(&d)).is_none(), "refused before any change");
    let out = d.run("down", &[]);
    out.assert_ok();
    assert_eq!(d.get(&path).unwrap(), before, "down leaves it alone too");
    // With --adopt it becomes this deployment's, and down then removes it.
    d.run("up", &["--adopt"]).assert_ok();
    assert_eq!(d.get(&path).unwrap()["rules"][0]["verbs"], json!(["get", "list", "watch"]));
    d.run("down", &["--delete-namespace"]).assert_ok();
    assert!(d.get(&path).is_none());
}

fn credentials_stay_with_their_registry(helm: Helm) {
    let d = Deploy::new("creds", helm);
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let log = seen.clone();
    // A registry that asks for Basic credentials, as the one that received `alice:<token>` did.
    let server = Server::start(Arc::new(move |r| {
        let auth = r.headers.get("authorization").cloned();
        log.lock().unwrap().push(auth.clone());
        if auth.is_none() {
            return Response::json(
                401,
                &json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}),
            )
            .with_header("WWW-Authenticate: Basic realm=\"test\"");
        }
        Response::json(404, &json!({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}))
    }));
    let image = format!("127.0.0.1:{}/alice/kubernetes-mcp-server:dev-latest", server.port);
    let args = d.args("up", &["--image", &image]);
    let out = d.xtask().env("GHCR_TOKEN", "ghp_secret_for_ghcr_only").env("GITHUB_TOKEN", "ghs_also_secret").run(&args);
    assert!(out.error_line().contains("requires credentials"), "{}", out.stderr);
    // The advice fits the registry: a login there, not a token that is never sent to it.
    let advice = format!("log in with `docker login 127.0.0.1:{}`", server.port);
    assert!(out.error_line().contains(&advice) && !out.error_line().contains("set GHCR_TOKEN"), "{}", out.stderr);
    let requests = seen.lock().unwrap().clone();
    assert!(!requests.is_empty(), "the registry was asked");
    assert!(requests.iter().all(Option::is_none), "a registry that is not ghcr.io got credentials: {requests:?}");

    // What the user's Docker config holds for that host is used, as docker and helm would.
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("config.json"),
        json!({"auths": {format!("127.0.0.1:{}", server.port): {"auth": "Ym9iOnMzY3JldA=="}}}).to_string(),
    )
    .unwrap();
    seen.lock().unwrap().clear();
    let out = d.xtask().env("DOCKER_CONFIG", config.path()).env("GHCR_TOKEN", "ghp_secret_for_ghcr_only").run(&args);
    assert!(out.error_line().contains("is not in the registry"), "{}", out.stderr);
    assert!(!out.all().contains("s3cret") && !out.all().contains("ghp_secret"), "{}", out.all());
    let requests = seen.lock().unwrap().clone();
    assert!(requests.iter().any(|a| a.as_deref() == Some("Basic Ym9iOnMzY3JldA==")), "{requests:?}");
}

fn concurrent_ups_end_in_a_truthful_state(helm: Helm) {
    let d = Deploy::new("race", helm);
    d.run("up", &[]).assert_ok();
    let a = d.spawn("up", &["--port", "9090"]);
    let b = d.spawn("up", &["--port", "8080", "--log-level", "3"]);
    let (a, b) = (a.finish(), b.finish());
    a.assert_ok();
    b.assert_ok();
    assert!(
        a.stderr.contains("waiting for the lock") || b.stderr.contains("waiting for the lock"),
        "one waited:\n{}\n{}",
        a.stderr,
        b.stderr
    );
    // Whatever ran last is what runs, and the record says exactly that: asking for it again is a
    // no-op, asking for the other is a change.
    let live_port = d.service().unwrap()["spec"]["ports"][0]["port"].as_i64().unwrap();
    let (same, other): (&[&str], &[&str]) = if live_port == 9090 {
        (&["--port", "9090"], &["--port", "8080", "--log-level", "3"])
    } else {
        (&["--port", "8080", "--log-level", "3"], &["--port", "9090"])
    };
    assert!(d.run("up", same).assert_ok().stdout.contains("up to date: nothing changed"));
    assert!(d.run("up", other).assert_ok().stdout.contains("deployed"));
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn up_racing_down_ends_consistent(helm: Helm) {
    let d = Deploy::new("updown", helm);
    d.run("up", &[]).assert_ok();
    let up = d.spawn("up", &["--port", "9090"]);
    let down = d.spawn("down", &[]);
    let (up, down) = (up.finish(), down.finish());
    down.assert_ok();
    if up.code == 0 && d.deployment().is_some() {
        // up went last: it is deployed, recorded, and serving.
        assert!(d.state().is_some());
        d.run("verify", &[]).assert_ok();
    } else {
        // down went last: nothing of the release is left, record included.
        let left = (d.deployment().is_some(), d.state().is_some());
        assert_eq!(left, (false, false), "half a deployment is left:\n--- up\n{}\n--- down\n{}", up.all(), down.all());
    }
    d.run("down", &["--delete-namespace"]).assert_ok();
}

/// A helm that runs longer than the lease: the real helm behind a wrapper that first sleeps 40 s
/// on `uninstall`. The lock is renewed meanwhile, so another run still finds it held.
fn the_lock_holds_while_helm_runs_longer_than_the_lease(helm: Helm) {
    let d = Deploy::new("holdlock", helm);
    d.run("up", &[]).assert_ok();
    let slow = tempfile::tempdir().unwrap();
    let wrapper = slow.path().join("helm");
    let script =
        format!("#!/bin/sh\nif [ \"$1\" = uninstall ]; then sleep 40; fi\nexec {} \"$@\"\n", helm.binary().display());
    std::fs::write(&wrapper, script).unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let down = support::Xtask::new(Some(slow.path())).spawn(d.args("down", &[]));
    std::thread::sleep(std::time::Duration::from_secs(35));
    let out = d.run("up", &["--no-wait"]);
    let down = down.finish();
    assert!(out.error_line().contains("is locked by cargo xtask down"), "35 s into down:\n{}", out.all());
    down.assert_ok();
    assert!(d.deployment().is_none() && d.state().is_none());
}

fn a_hand_edited_deployment_is_put_back(helm: Helm) {
    let d = Deploy::new("handedit", helm);
    d.run("up", &[]).assert_ok();
    let args: Vec<String> = d.container_args().into_iter().filter(|a| a != "--read-only").collect();
    let path = format!("/apis/apps/v1/namespaces/{}/deployments/{}", d.ns, d.fullname());
    d.send(
        "PATCH",
        &path,
        "application/json-patch+json",
        json!([{"op": "replace", "path": "/spec/template/spec/containers/0/args", "value": args}]),
    );
    let out = d.run("up", &[]);
    out.assert_ok();
    assert!(!out.stdout.contains("up to date"), "{}", out.stdout);
    assert!(out.stderr.contains("drifted") && out.stderr.contains("deployment args"), "{}", out.stderr);
    assert!(d.container_args().contains(&"--read-only".to_string()), "put back: {:?}", d.container_args());
    assert!(d.run("up", &[]).assert_ok().stdout.contains("up to date: nothing changed"));
    d.run("down", &["--delete-namespace"]).assert_ok();
}

both_helms!(
    credentials_stay_with_their_registry,
    concurrent_ups_end_in_a_truthful_state,
    up_racing_down_ends_consistent,
    the_lock_holds_while_helm_runs_longer_than_the_lease,
);

one_helm!(
    a_namespace_that_existed_survives_down: V4,
    a_namespace_up_created_goes_only_without_foreign_objects: V3,
    a_users_cluster_role_is_not_taken_over: V4,
    a_hand_edited_deployment_is_put_back: V3,
);
