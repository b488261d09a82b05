//! Wall time of the real xtask binary on real parts: `image` when the tag is already pushed (the
//! real local registry), and `up` on the local control plane with the real helm 4 and the test
//! chart: its first deploy, then its no-op, with the API requests each made (from the API server's
//! audit log), and the plan of a change printed by `--dry-run --json`. Run through `bench/run`
//! (`cargo xtask test --bench`, which starts the cluster).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};
use support::deploy::{Deploy, Helm};
use support::registry::{push_index, Registry};
use support::{fork_repo, Xtask};

const RUNS: usize = 10;

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
    let (fork, sha) = fork_repo(Some("git@github.com:alice/kubernetes-mcp-server.git"));
    let platforms = ["linux/amd64".to_string(), "linux/arm64".to_string()];
    push_index(&registry.host, "alice/kubernetes-mcp-server", &[format!("dev-{}", &sha[..7])], &platforms, None);
    let empty = tempfile::tempdir().unwrap();
    let args = ["image", "--fork", fork.path().to_str().unwrap(), "--registry", &registry.host];
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
    report("image no-op (tag already pushed)", times);
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
    repeated(&d, "up no-op (nothing changed)", &[], "up to date: nothing changed");
    // The plan alone, for a change (a new --port): what `--dry-run --json` costs.
    let plan = ["--port", "9090", "--dry-run", "--json"];
    repeated(&d, "up --dry-run --json (a changed --port: helm, rollout, record)", &plan, "\"action\": \"helm\"");
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn main() {
    image_noop();
    up();
}
