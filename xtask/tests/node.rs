//! What the real node lets the tests see (local cluster only: the node's networks and taints are
//! the test command's): NodePorts on every node address and the source the pod sees, a taint that
//! keeps the pod Pending, a memory limit too small, a registry that wants credentials for pulls,
//! and the chart's read-only root filesystem in force while the server serves.

#[macro_use]
extern crate kmcp_test_support as support;

use std::time::{Duration, Instant};
use support::cluster::cluster;
use support::deploy::{Deploy, Helm, HELMS};
use support::node::{connections_to, forget_connections, public_ip, relay, untolerating_namespace, Client, Taint};
use support::registry::{push_server_index, Entrypoint, Registry};

fn node_ports_answer_on_every_address_and_only_a_local_policy_keeps_the_client(helm: Helm) {
    if support::cluster::skipped_on_a_given_cluster(
        "node_ports_answer_on_every_address_and_only_a_local_policy_keeps_the_client",
        "it reaches the node's every address from network namespaces next to it",
    ) {
        return;
    }
    let d = Deploy::new("everyaddr", helm);
    // The guard passes requests to the public address too: the node answers there by design here.
    let everywhere = ["--allow-from", "0.0.0.0/0", "--host", &public_ip()];
    d.run("up", &everywhere).assert_ok();
    let port = d.node_port();
    let (internal, public) =
        (format!("http://{}:{port}/healthz", cluster().node_ip), format!("http://{}:{port}/healthz", public_ip()));
    // kube-proxy as k0s runs it (nodePortAddresses unset): the NodePort answers on every address;
    // with up's externalTrafficPolicy Local the pod sees each client's own address.
    let laptop = Client::new(&format!("{}-l", d.ns), "internal");
    let internet = Client::new(&format!("{}-i", d.ns), "public");
    assert_eq!(laptop.status_becomes(&internal, "200"), "200");
    assert_eq!(internet.status_becomes(&public, "200"), "200");
    // `up` sets Local right after helm made the Service (the chart's is Cluster): a connection made
    // before kube-proxy followed may still have been masqueraded, so each client connects afresh.
    for (client, url) in [(&laptop, &internal), (&internet, &public)] {
        let deadline = Instant::now() + Duration::from_secs(300);
        let saw = loop {
            forget_connections(port);
            client.http_status(url);
            let saw = pod_saw(port, client);
            if saw == client.address || Instant::now() > deadline {
                break saw;
            }
            std::thread::sleep(Duration::from_secs(1));
        };
        assert_eq!(saw, client.address, "externalTrafficPolicy Local keeps the client's address");
    }
    // Changed by hand to Cluster: kube-proxy hands the pod the node's address instead.
    let service = format!("/api/v1/namespaces/{}/services/{}", d.ns, d.fullname());
    d.send(
        "PATCH",
        &service,
        "application/merge-patch+json",
        serde_json::json!({"spec": {"externalTrafficPolicy": "Cluster"}}),
    );
    let other = Client::new(&format!("{}-o", d.ns), "public");
    let deadline = Instant::now() + Duration::from_secs(300);
    let masqueraded = || connections_to(port).iter().any(|(src, saw)| src == &other.address && saw != &other.address);
    while !masqueraded() && Instant::now() < deadline {
        other.http_status(&public);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(masqueraded(), "with Cluster the pod sees the node, not the client: {:?}", connections_to(port));
    // up puts Local back.
    let out = d.run("up", &everywhere);
    out.assert_ok();
    assert!(out.stderr.contains("externalTrafficPolicy to Local"), "{}", out.stderr);
    assert_eq!(d.service().unwrap()["spec"]["externalTrafficPolicy"], "Local");
    d.run("down", &["--delete-namespace"]).assert_ok();
}

/// The addresses the pod saw for the client's connections to `port` (each one's, so none may differ).
fn pod_saw(port: i64, client: &Client) -> String {
    let seen = connections_to(port);
    let saw: Vec<&String> = seen.iter().filter(|(src, _)| src == &client.address).map(|(_, saw)| saw).collect();
    assert!(!saw.is_empty(), "no connection from {} in {seen:?}", client.address);
    assert!(saw.iter().all(|s| *s == saw[0]), "the pod saw different addresses: {seen:?}");
    saw[0].clone()
}

/// One test for both helms, one after the other: the node takes one taint of a key at a time.
#[test]
fn a_taint_keeps_the_pod_pending_and_up_names_it() {
    for helm in HELMS {
        a_taint_with(helm);
    }
}

fn a_taint_with(helm: Helm) {
    if support::cluster::skipped_on_a_given_cluster("a_taint_with", "it taints the local node") {
        return;
    }
    let d = Deploy::new("taint", helm);
    untolerating_namespace(&d.ns);
    let taint = Taint::new(&d.ns);
    let out = d.run("up", &["--timeout", "10m"]);
    let err = out.error_line();
    assert!(
        err.contains("cannot be scheduled") && err.contains(&format!("kmcp.dev/test-taint={}:NoSchedule", d.ns)),
        "{err}"
    );
    // Shown by what happened, not by a clock: it stopped on the pod's Unschedulable condition;
    // had it waited for its 10m --timeout, the error would say it timed out.
    assert!(!err.contains("timed out"), "up waited for --timeout instead of naming the taint: {err}");
    drop(taint);
    d.run("up", &[]).assert_ok();
    d.run("down", &[]).assert_ok();
    d.send("DELETE", &format!("/api/v1/namespaces/{}", d.ns), "application/json", serde_json::json!({}));
}

fn a_memory_limit_far_too_small_is_named_oomkilled(helm: Helm) {
    let d = Deploy::new("oom", helm);
    let chart = tempfile::tempdir().unwrap();
    support::copy_dir(&support::deploy::chart_dir(), chart.path());
    // up's values set 128Mi; this chart renders a limit of its own, as a user's chart edit would.
    let template = chart.path().join("templates/deployment.yaml");
    let text = std::fs::read_to_string(&template).unwrap().replace(
        "{{- $resources := deepCopy .Values.resources }}",
        "{{- $resources := deepCopy .Values.resources }}{{- $_ := set $resources.limits \"memory\" \"8Mi\" }}{{- $_ := set $resources.requests \"memory\" \"8Mi\" }}",
    );
    std::fs::write(&template, text).unwrap();
    let dir = chart.path().to_str().unwrap();
    let args = d.args_without("up", &["--chart-version", "--chart-digest"], &["--chart", dir]);
    let out = d.xtask().run(&args);
    let err = out.error_line();
    // The runtime reports OOMKilled, or on cgroup v1 sometimes only the SIGKILL the OOM killer sent.
    let named = err.contains("OOMKilled") || err.contains("out-of-memory killer");
    assert!(named && err.contains("8Mi"), "{err}\n{}", out.stderr);
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn a_registry_that_wants_credentials_refuses_a_pod_without_them(helm: Helm) {
    if support::cluster::skipped_on_a_given_cluster(
        "a_registry_that_wants_credentials_refuses_a_pod_without_them",
        "it starts a registry the local node reaches",
    ) {
        return;
    }
    let d = Deploy::new("pullauth", helm);
    let registry = Registry::start(Some(("puller", "s3cret-pull")));
    let _relay = relay(&registry.host);
    let platforms = ["linux/amd64".to_string(), "linux/arm64".to_string()];
    let repo = "alice/kubernetes-mcp-server";
    push_server_index(
        &registry.host,
        repo,
        &["dev-latest".into()],
        &platforms,
        Entrypoint::Current,
        Some(("puller", "s3cret-pull")),
    );
    // up resolves the tag with the Docker config's credentials; the node has none.
    let config = tempfile::tempdir().unwrap();
    let auth = base64_basic("puller:s3cret-pull");
    std::fs::write(
        config.path().join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, registry.host),
    )
    .unwrap();
    let image = format!("{}/{repo}:dev-latest", registry.host);
    let out = d.xtask().env("DOCKER_CONFIG", config.path()).run(d.args("up", &["--image", &image]));
    let err = out.error_line();
    assert!(err.contains("cannot pull image") && err.contains(&registry.host), "{err}\n{}", out.stderr);
    assert!(err.contains("--pull-secret"), "the way out: {err}");
    assert!(!out.all().contains("s3cret-pull"), "{}", out.all());

    // With --pull-secret: a dockerconfigjson Secret from the same credentials, its content never shown.
    let with = |extra: &[&str]| {
        let mut all = vec!["--image", image.as_str()];
        all.extend(extra);
        d.xtask().env("DOCKER_CONFIG", config.path()).run(d.args("up", &all))
    };
    let plan = with(&["--pull-secret", "--dry-run", "--json"]);
    assert!(plan.assert_ok().stdout.contains("applyHidden"), "{}", plan.stdout);
    let out = with(&["--pull-secret"]);
    out.assert_ok();
    for shown in [&plan, &out] {
        assert!(
            !shown.all().contains("s3cret-pull") && !shown.all().contains(&base64_basic("puller:s3cret-pull")),
            "{}",
            shown.all()
        );
    }
    let secret_path = format!("/api/v1/namespaces/{}/secrets/{}-pull", d.ns, d.release);
    let secret = d.get(&secret_path).expect("the pull secret");
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    assert_eq!(
        d.deployment().unwrap()["spec"]["template"]["spec"]["imagePullSecrets"][0]["name"],
        format!("{}-pull", d.release)
    );
    // Without the flag again: nothing with a credential stays in the cluster.
    let out = with(&[]);
    assert!(out.all().contains("no credential is kept in the cluster"), "{}", out.all());
    assert!(d.get(&secret_path).is_none(), "the pull secret stayed");
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn base64_basic(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn the_read_only_root_filesystem_is_in_force_while_the_server_serves(helm: Helm) {
    if support::cluster::skipped_on_a_given_cluster(
        "the_read_only_root_filesystem_is_in_force_while_the_server_serves",
        "it looks into the local node's containers",
    ) {
        return;
    }
    let d = Deploy::new("readonly", helm);
    d.run("up", &[]).assert_ok();
    d.run("verify", &[]).assert_ok();
    let pods = d.get(&format!("/api/v1/namespaces/{}/pods", d.ns)).unwrap();
    let uid = pods["items"][0]["metadata"]["uid"].as_str().unwrap().to_string();
    let pid = server_process(&uid).expect("the server's process on the node");
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let options = |mount_point: &str| {
        mountinfo
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f.len() > 5 && f[4] == mount_point)
            .map(|f| f[5].to_string())
            .next_back()
            .unwrap_or_else(|| panic!("no {mount_point} mount in\n{mountinfo}"))
    };
    assert!(options("/").split(',').any(|o| o == "ro"), "root is {}", options("/"));
    assert!(options("/tmp").split(',').any(|o| o == "rw"), "/tmp is {}", options("/tmp"));
    d.run("down", &["--delete-namespace"]).assert_ok();
}

/// The server's process in the pod with this uid, found by its command line and its cgroup.
fn server_process(pod_uid: &str) -> Option<u32> {
    let uid = pod_uid.replace('-', "_");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).ok()?;
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        (cmdline.starts_with("/app/kubernetes-mcp-server") && (cgroup.contains(pod_uid) || cgroup.contains(&uid)))
            .then_some(pid)
    })
}

one_helm!(
    node_ports_answer_on_every_address_and_only_a_local_policy_keeps_the_client: V4,
    a_memory_limit_far_too_small_is_named_oomkilled: V3,
    a_registry_that_wants_credentials_refuses_a_pod_without_them: V4,
    the_read_only_root_filesystem_is_in_force_while_the_server_serves: V3,
);
