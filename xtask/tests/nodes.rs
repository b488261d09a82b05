//! A cluster of two nodes: a worker (`testcluster worker`) joins the shared cluster once the other
//! tests, which keep its single node, have ended; `up`, `verify`, `status` and `down` on it.

extern crate kmcp_test_support as support;

use serde_json::json;
use support::cluster::cluster;
use support::deploy::{Deploy, Helm};
use support::node::{Client, Worker};
use support::Output;

fn line<'a>(out: &'a Output, start: &str) -> &'a str {
    out.stdout
        .lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting {start:?} in:\n{}", out.stdout))
}

/// The nodes the deployment's running pods are on.
fn serving_nodes(d: &Deploy) -> Vec<String> {
    let pods = d.get(&format!("/api/v1/namespaces/{}/pods", d.ns)).expect("pods");
    let running = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null());
    running.filter_map(|p| p["spec"]["nodeName"].as_str().map(str::to_string)).collect()
}

fn until_served_only_by(d: &Deploy, node: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while serving_nodes(d) != [node.to_string()] {
        assert!(std::time::Instant::now() < deadline, "the server still runs on {:?}, not {node}", serving_nodes(d));
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

fn patch(path: &str, body: serde_json::Value) {
    support::block_on(async {
        let client = cluster().client().await;
        let request = http::Request::patch(path)
            .header("Content-Type", "application/merge-patch+json")
            .body(serde_json::to_vec(&body).unwrap())
            .unwrap();
        client.request_text(request).await.unwrap_or_else(|e| panic!("PATCH {path}: {e}"));
    })
}

fn cordon(node: &str, cordoned: bool) {
    patch(&format!("/api/v1/nodes/{node}"), json!({"spec": {"unschedulable": cordoned}}));
}

#[test]
#[ignore = "run by cargo xtask test on the shared cluster alone, before the other tests: it adds a node to it"]
fn second_node_up_puts_the_server_where_the_url_answers_and_verify_proves_it() {
    let worker = Worker::start();
    let first = cluster().node_ip.clone();
    let d = Deploy::new("nodes", Helm::V4);
    let at_worker = ["--node-ip", worker.ip.as_str()];

    // An address no node lists (a WireGuard address): refused, naming --node; with it, placed.
    let unknown = d.run("up", &["--node-ip", "10.213.0.77", "--dry-run"]);
    assert!(unknown.error_line().contains("pass --node NAME"), "{}", unknown.all());
    let named = d.run("up", &["--node-ip", "10.213.0.77", "--node", &worker.name, "--dry-run"]);
    assert!(line(named.assert_ok(), "placement: ").contains(&worker.name), "{}", named.stdout);

    let plan = d.run("up", &[&at_worker[..], &["--dry-run"]].concat());
    let placement = line(plan.assert_ok(), "placement: ");
    assert!(placement.contains(&worker.name), "{placement}");
    assert!(d.deployment().is_none(), "the dry run deployed");

    let up = d.run("up", &at_worker);
    let why =
        format!("the server runs on node {} (it answers at --node-ip {}, its InternalIP)", worker.name, worker.ip);
    assert!(up.assert_ok().stdout.contains(&why), "{}", up.stdout);
    assert!(up.stdout.contains(&format!("MCP URL: http://{}:", worker.ip)), "{}", up.stdout);
    until_served_only_by(&d, &worker.name);

    // Inside --allow-from the URL answers on the serving node only (externalTrafficPolicy Local).
    let port = d.node_port();
    let laptop = Client::new(&support::cluster::unique("wg"), "internal");
    assert_eq!(laptop.status_becomes(&format!("http://{}:{port}/healthz", worker.ip), "200"), "200");
    assert_eq!(laptop.status_becomes(&format!("http://{first}:{port}/healthz"), "000"), "000");

    let verify = d.run("verify", &at_worker);
    let serving = line(verify.assert_ok(), "PASS the URL's node runs the server");
    assert!(serving.contains(&format!("node {} (it lists {})", worker.name, worker.ip)), "{serving}");
    let outside = line(&verify, "PASS NodePort silent outside --allow-from");
    assert!(outside.contains(&format!("nor at the other nodes' {first}")), "{outside}");

    let again = d.run("up", &at_worker);
    assert!(again.assert_ok().stdout.contains("up to date: nothing changed"), "{}", again.stdout);

    let status = d.run("status", &at_worker);
    assert!(status.assert_ok().stdout.contains(&format!("Running on {}", worker.name)), "{}", status.stdout);

    // Someone unpins the server and it lands on the first node (the worker cordoned meanwhile):
    // the next `up` says why it moves it and puts it back.
    cordon(&worker.name, true);
    let deployment = format!("/apis/apps/v1/namespaces/{}/deployments/{}", d.ns, d.fullname());
    patch(&deployment, json!({"spec": {"template": {"spec": {"nodeSelector": null}}}}));
    until_served_only_by(&d, "kmcp-node");
    let refused = d.run("up", &at_worker);
    let error = refused.error_line();
    assert!(error.contains(&format!("node {} cannot run the server: it is cordoned", worker.name)), "{error}");
    cordon(&worker.name, false);
    let back = d.run("up", &at_worker);
    let moved = format!("may run on any node, but the URL answers only on node {}", worker.name);
    assert!(back.assert_ok().all().contains(&moved), "{}", back.all());
    until_served_only_by(&d, &worker.name);

    // Pinned to the worker, the URL now named on the first node: `up` says so and moves it there.
    let home = d.run("up", &[]);
    let moved =
        format!("is pinned to kubernetes.io/hostname={}, but the URL answers only on node kmcp-node", worker.name);
    assert!(home.assert_ok().all().contains(&moved), "{}", home.all());
    until_served_only_by(&d, "kmcp-node");

    d.run("down", &[]).assert_ok();
    assert!(d.deployment().is_none(), "down left the Deployment");
}
