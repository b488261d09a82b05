//! Wall time of no-op runs of the real xtask binary: `image` when the tag is already pushed
//! (against the real local registry). Run through `bench/run`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};
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

fn main() {
    image_noop();
}
