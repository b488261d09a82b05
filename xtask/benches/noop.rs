//! Wall time of no-op runs of the real xtask binary: `image` when the tag is already pushed
//! (against the real local registry), and `up` when nothing changed (against the FAKE Kubernetes
//! API server and FAKE helm, with the image resolved through the real registry), with the number
//! of API requests a no-op `up` makes. Run through `bench/run`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};
use support::fake_cli::FakeCli;
use support::fake_kube::FakeKube;
use support::registry::{push_index, Registry};
use support::{fork_repo, Xtask};

const RUNS: usize = 20;

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

fn up_noop() {
    let registry = Registry::start(None);
    let platforms = ["linux/amd64".to_string(), "linux/arm64".to_string()];
    push_index(&registry.host, "alice/kubernetes-mcp-server", &["dev-latest".into()], &platforms, None);
    let kube = Arc::new(FakeKube::start());
    let k = kube.clone();
    let cli = FakeCli::start(&["helm"], move |c| k.helm(c));
    let image = format!("{}/alice/kubernetes-mcp-server:dev-latest", registry.host);
    let kubeconfig = kube.kubeconfig_path().display().to_string();
    let args = ["up", "--kubeconfig", &kubeconfig, "--image", &image, "--node-ip", "10.8.0.1"];
    let run = || Xtask::new(Some(cli.bin.path())).env("FAKE_CLI_URL", &cli.url).run(args);
    run().assert_ok();
    let mut requests = Vec::new();
    let times = (0..RUNS)
        .map(|_| {
            kube.clear_requests();
            let start = Instant::now();
            let out = run();
            let took = start.elapsed();
            out.assert_ok();
            assert!(out.stdout.contains("up to date: nothing changed"));
            requests = kube.requests();
            took
        })
        .collect();
    report("up no-op (nothing changed)", times);
    let helm_runs = cli.calls("helm").len();
    println!(
        "up no-op: {} Kubernetes API requests per run ({}); helm ran {helm_runs} time(s) in all, for the first up only",
        requests.len(),
        summarize(&requests)
    );
}

fn summarize(requests: &[String]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for r in requests {
        *counts.entry(r.split(' ').next().unwrap_or_default()).or_insert(0) += 1;
    }
    counts.iter().map(|(m, n)| format!("{n} {m}")).collect::<Vec<_>>().join(", ")
}

fn main() {
    image_noop();
    up_noop();
}
