//! Wall time of the real xtask binary on real parts: `image` when the tag is already pushed (the
//! real local registry), and `up` on the local control plane with the real helm 4 and the test
//! chart: its first deploy, then its no-op side by side with what a user would type instead (a
//! plain `helm upgrade --install` of the same unchanged release: same chart, same values), with the
//! ratio, the API requests each made (from the API server's audit log), and the plan of a change
//! printed by `--dry-run --json`. Run through `bench/run` (`cargo xtask test --bench`, which starts
//! the cluster).

extern crate kmcp_test_support as support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::buildkit::{fork, Buildx, Fork};
use support::deploy::{chart_version, Deploy, Helm};
use support::registry::Registry;
use support::Xtask;

const RUNS: usize = 10;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn report(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name}: median {:.1} ms, min {:.1} ms, max {:.1} ms over {} runs",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
        times.len()
    );
}

fn image_noop() {
    let registry = Registry::start(None);
    let (fork, _) = fork(Fork::Upstream, Some("git@github.com:alice/kubernetes-mcp-server.git"));
    let args = ["image", "--fork", fork.path().to_str().unwrap(), "--registry", &registry.host];
    let buildx = Buildx::new();
    Xtask::new(None).env("DOCKER_CONFIG", buildx.path()).run(args).assert_ok();
    let empty = tempfile::tempdir().unwrap();
    let times = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            // No docker on PATH: a no-op must not need it.
            let out = Xtask::new(None).only_path(empty.path()).run(args);
            let took = start.elapsed();
            out.assert_ok();
            assert!(out.stdout.contains("up to date"));
            took
        })
        .collect();
    report("image no-op (tag already pushed by real buildx, both platforms' binaries proven)", times);
}

fn summarize(events: &[support::cluster::AuditEvent]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for e in events {
        *counts.entry(if e.by_helm() { format!("{} (helm)", e.verb) } else { e.verb.clone() }).or_insert(0) += 1;
    }
    counts.iter().map(|(m, n)| format!("{n} {m}")).collect::<Vec<_>>().join(", ")
}

/// `up` with `extra`, RUNS times: its wall time, and the API requests of the last run.
fn repeated(d: &Deploy, name: &str, extra: &[&str], says: &str) {
    let mut per_run = Vec::new();
    let times = (0..RUNS)
        .map(|_| {
            let before = d.audit().map_or(0, |a| a.len());
            let start = Instant::now();
            let out = d.run("up", extra);
            let took = start.elapsed();
            assert!(out.assert_ok().stdout.contains(says), "{}", out.stdout);
            per_run = d.audit().map(|a| a[before..].to_vec()).unwrap_or_default();
            took
        })
        .collect();
    report(name, times);
    println!("{name}: {} API requests per run ({})", per_run.len(), summarize(&per_run));
}

/// `up`'s no-op and a plain `helm upgrade --install` of the same release (the chart by its OCI
/// reference and version, the values helm holds for it), taking turns, RUNS times each.
fn side_by_side(d: &Deploy) {
    let helm = d.helm.binary();
    let kubeconfig = d.kubeconfig.display().to_string();
    let values = tempfile::NamedTempFile::new().unwrap();
    let got = Command::new(&helm)
        .args(["get", "values", &d.release, "--namespace", &d.ns, "--output", "yaml", "--kubeconfig", &kubeconfig])
        .env("HOME", d.cache_dir())
        .output()
        .unwrap();
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    std::fs::write(values.path(), &got.stdout).unwrap();
    let plain = [
        "upgrade",
        "--install",
        &d.release,
        &d.chart,
        "--version",
        &chart_version(),
        "--namespace",
        &d.ns,
        "--values",
        values.path().to_str().unwrap(),
        // As up passes it: through --values, helm would read the number as a float.
        "--set",
        "config.log_level=2",
        "--plain-http",
        "--kubeconfig",
        &kubeconfig,
    ];
    let (mut ups, mut helms, mut per_run) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let before = d.audit().map_or(0, |a| a.len());
        let start = Instant::now();
        let out = d.run("up", &[]);
        ups.push(start.elapsed());
        assert!(out.assert_ok().stdout.contains("up to date: nothing changed"), "{}", out.stdout);
        per_run = d.audit().map(|a| a[before..].to_vec()).unwrap_or_default();
        let start = Instant::now();
        let out = Command::new(&helm).args(plain).env("HOME", d.cache_dir()).output().unwrap();
        helms.push(start.elapsed());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let (up, plain_helm) = (median(ups.clone()), median(helms.clone()));
    report("up no-op (nothing changed)", ups);
    println!("up no-op (nothing changed): {} API requests per run ({})", per_run.len(), summarize(&per_run));
    report("plain helm upgrade --install of the same unchanged release (helm 4)", helms);
    println!(
        "up no-op against plain helm: {:.1} ms / {:.1} ms = {:.2}",
        up.as_secs_f64() * 1000.0,
        plain_helm.as_secs_f64() * 1000.0,
        up.as_secs_f64() / plain_helm.as_secs_f64()
    );
}

fn up() {
    let d = Deploy::new("bench", Helm::V4);
    let start = Instant::now();
    d.run("up", &[]).assert_ok();
    let first = start.elapsed();
    let events = d.audit().unwrap_or_default();
    println!(
        "up first deploy (helm 4, rollout of the real server): {:.1} s, {} API requests ({})",
        first.as_secs_f64(),
        events.len(),
        summarize(&events)
    );
    side_by_side(&d);
    // The plan alone, for a change (a new --port): what `--dry-run --json` costs.
    let plan = ["--port", "9090", "--dry-run", "--json"];
    repeated(&d, "up --dry-run --json (a changed --port: helm, rollout, record)", &plan, "\"action\": \"helm\"");
    d.run("down", &["--delete-namespace"]).assert_ok();
}

/// The same `up` on a cluster of two nodes (a worker joined for it), the server placed on the
/// worker: the first deploy and the no-op, beside the lines above.
fn up_on_two_nodes() {
    let worker = support::node::Worker::start();
    let d = Deploy::new("bench2", Helm::V4);
    let at = ["--node-ip", worker.ip.as_str()];
    let start = Instant::now();
    let out = d.run("up", &at);
    let first = start.elapsed();
    assert!(out.assert_ok().stdout.contains(&format!("the server runs on node {}", worker.name)), "{}", out.stdout);
    let events = d.audit().unwrap_or_default();
    println!(
        "up first deploy on two nodes (helm 4, placed on {}): {:.1} s, {} API requests ({})",
        worker.name,
        first.as_secs_f64(),
        events.len(),
        summarize(&events)
    );
    repeated(&d, "up no-op on two nodes (nothing changed)", &at, "up to date: nothing changed");
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn main() {
    image_noop();
    up();
    up_on_two_nodes();
}
