//! How `cargo xtask test` builds and runs the test binaries: built in the background while the
//! parts are prepared; those that never reach a cluster started first, beside the tests with a
//! second node; then the rest, all at once on the shared cluster; then, the shared cluster
//! stopped, the tests that start a local environment of their own, one at a time.

use crate::common::workspace;
use crate::programs::shell::Shell;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use xshell::cmd;

/// The test binaries' build, started first: it runs beside the Go builds, whose module downloads
/// and single-threaded links leave a core idle on a cold machine.
pub(super) struct EarlyBuild {
    child: std::process::Child,
    json: PathBuf,
}

impl EarlyBuild {
    pub(super) fn start(sh: &Shell, root: &Path) -> Result<EarlyBuild> {
        let json = root.join("target/test-build.json");
        std::fs::create_dir_all(root.join("target"))?;
        let stdout = std::fs::File::create(&json)?;
        let cmd = cargo(sh, "test --workspace --locked --no-run --message-format=json", &[]);
        eprintln!("$ {cmd}   (in the background, while the rest is prepared)");
        let mut command: std::process::Command = cmd.into();
        let child = command
            .stdout(stdout)
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("cannot start building the tests")?;
        Ok(EarlyBuild { child, json })
    }

    /// Whether it built, and cargo's JSON messages.
    fn finish(mut self) -> Result<(bool, Vec<u8>)> {
        let built = self.child.wait()?.success();
        Ok((built, std::fs::read(&self.json)?))
    }
}

/// How many tests deploy to the shared cluster at once (tests/support/slots.rs): eight per core,
/// or `KMCP_TEST_DEPLOYS`. Beyond that the node and control plane only share the same cores among
/// more rollouts, each then slower than its timeout.
pub(super) fn deploy_slots(dir: &Path) -> Result<PathBuf> {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let count = match std::env::var("KMCP_TEST_DEPLOYS") {
        Ok(n) => n.parse::<usize>().ok().filter(|n| *n > 0).context("KMCP_TEST_DEPLOYS must be a positive number")?,
        Err(_) => 8 * cores,
    };
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
    for n in 0..count {
        std::fs::File::create(dir.join(format!("slot-{n}")))?;
    }
    Ok(dir.to_path_buf())
}

/// `cargo` with `words` and `extra`, without the variables `cargo run` gave this process: an inner
/// cargo that sees `CARGO_MANIFEST_DIR` rebuilds ring's build script, and with it the TLS crates
/// and everything above them, here and again in the next `cargo xtask`.
pub(super) fn cargo<'a>(sh: &'a Shell, words: &str, extra: &[String]) -> xshell::Cmd<'a> {
    let program = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let words: Vec<&str> = words.split_whitespace().collect();
    let mut command = cmd!(sh.sh, "{program} {words...} {extra...}");
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let set_by_run =
            ["CARGO_MANIFEST_", "CARGO_PKG_", "CARGO_CRATE_NAME", "CARGO_BIN_NAME", "CARGO_PRIMARY_PACKAGE"];
        if set_by_run.iter().any(|p| key.starts_with(p)) {
            command = command.env_remove(key.as_ref());
        }
    }
    command
}

/// Every test binary, built (the early build waited for, or built now).
pub(super) fn built_binaries(sh: &Shell, early: Option<EarlyBuild>) -> Result<Vec<PathBuf>> {
    let (built, messages) = match early {
        Some(b) => b.finish()?,
        None => {
            let out = sh.query(cargo(sh, "test --workspace --locked --no-run --message-format=json", &[]))?;
            (out.status.success(), out.stdout)
        }
    };
    if !built {
        sh.run(cargo(sh, "test --workspace --locked --no-run", &[])).context("the tests do not build")?;
    }
    let binaries: Vec<PathBuf> = String::from_utf8_lossy(&messages)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["profile"]["test"] == true)
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .collect();
    Ok(binaries)
}

/// A test binary started by `start`: its name, output and when it ended.
pub(super) type Started = std::thread::JoinHandle<(String, std::io::Result<std::process::Output>, u64)>;

/// Whether a test binary (`target/debug/deps/<name>-<hash>`) is one that never reaches a cluster
/// (`super::WITHOUT_CLUSTER`).
pub(super) fn without_cluster(binary: &Path) -> bool {
    let name = binary.file_name().unwrap_or_default().to_string_lossy();
    let stem = name.rsplit_once('-').map_or(name.as_ref(), |(stem, _)| stem);
    super::WITHOUT_CLUSTER.contains(&stem)
}

/// Starts test binaries at once: the cluster tests wait on rollouts far more than they compute,
/// so the run takes as long as the longest binary, not the sum. `since` is when the first began.
pub(super) fn start(sh: &Shell, binaries: &[&PathBuf], since: std::time::Instant) -> Result<Vec<Started>> {
    binaries
        .iter()
        .map(|b| {
            eprintln!("$ {}", b.display());
            // Through xshell, so that the environment pushed above goes with it.
            let _dir = sh.sh.push_dir(workspace::root().join("xtask"));
            let mut command: std::process::Command = cmd!(sh.sh, "{b}").into();
            if without_cluster(b) {
                // So that a test of theirs that reaches for a cluster fails, rather than racing the second node.
                for var in ["KMCP_TESTCLUSTER", "KMCP_TESTCLUSTER_BIN", "KMCP_TEST_KUBECONFIG"] {
                    command.env_remove(var);
                }
            }
            let child = command
                .env("RUST_BACKTRACE", "1")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .with_context(|| format!("cannot run {}", b.display()))?;
            let name = b.file_name().unwrap_or_default().to_string_lossy().to_string();
            Ok(std::thread::spawn(move || (name, child.wait_with_output(), since.elapsed().as_secs())))
        })
        .collect()
}

/// Waits for the started binaries, printing each one's output whole when it has ended, and says
/// how many passed and which tests were skipped.
pub(super) fn report(started: Vec<Started>) -> Result<()> {
    let count = started.len();
    let mut failed = Vec::new();
    let mut skipped = Vec::new();
    for child in started {
        let (name, out, secs) = child.join().map_err(|_| anyhow::anyhow!("a test binary's waiter panicked"))?;
        let out = out?;
        println!("---- {name} (ended after {secs} s)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        print!("{stdout}");
        skipped.extend(stdout.lines().filter_map(|l| l.strip_prefix("skipped: ")).map(str::to_string));
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            failed.push(name);
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("the tests failed in {}", failed.join(", "));
    }
    for s in &skipped {
        println!("skipped: {s}");
    }
    let not_run = if skipped.is_empty() {
        String::new()
    } else {
        format!("; {} tests skipped (above), not passed", skipped.len())
    };
    println!("all {count} test binaries passed{not_run}");
    Ok(())
}

/// The tests that need the shared cluster to themselves (`#[ignore]`d, named `second_node_...`:
/// they add a node to it, which the other tests must not see), one at a time, before the others:
/// on the fresh cluster they take half the time they take after them.
pub(super) fn run_on_the_shared_cluster_alone(sh: &Shell, binaries: &[PathBuf]) -> Result<()> {
    run_ignored(sh, binaries, "second_node_", "the tests with a second node")
}

/// The tests that start a local environment of their own (`#[ignore]`d, named `alone_...`): the
/// cluster's network namespaces have fixed names, so they run once the shared one has stopped,
/// one at a time.
pub(super) fn run_alone(sh: &Shell, binaries: &[PathBuf]) -> Result<()> {
    run_ignored(sh, binaries, "alone_", "the tests alone")
}

/// The ignored tests named `prefix...` of every binary, one at a time.
fn run_ignored(sh: &Shell, binaries: &[PathBuf], prefix: &str, what: &str) -> Result<()> {
    let start = std::time::Instant::now();
    for b in binaries.iter().filter(|b| has_ignored(sh, b, prefix)) {
        let _dir = sh.sh.push_dir(workspace::root().join("xtask"));
        sh.run(cmd!(sh.sh, "{b} --ignored {prefix} --test-threads 1"))
            .with_context(|| format!("{what} failed in {}", b.display()))?;
    }
    println!("---- {what} ended after {} s", start.elapsed().as_secs());
    Ok(())
}

/// Whether a test binary lists ignored tests named `prefix...`.
fn has_ignored(sh: &Shell, binary: &Path, prefix: &str) -> bool {
    let out = sh.query(cmd!(sh.sh, "{binary} --list --ignored {prefix}"));
    out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.contains(prefix) && l.ends_with(": test")))
}

#[cfg(test)]
mod tests {
    use super::without_cluster;
    use std::path::Path;

    #[test]
    fn binaries_without_a_cluster_are_known_by_name() {
        assert!(without_cluster(Path::new("target/debug/deps/image-4522fa31424c70d4")));
        assert!(without_cluster(Path::new("target/debug/deps/xtask-41be61c395a32f41")));
        assert!(!without_cluster(Path::new("target/debug/deps/chart-99a69b0251b46275")));
        assert!(!without_cluster(Path::new("target/debug/deps/image_tool-99a69b0251b46275")));
    }
}
