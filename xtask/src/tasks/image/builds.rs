//! Each platform's build, pushed by digest: one after the other when there is one (its output on
//! the terminal) or under `--dry-run`, else side by side (a cross-compiling builder stage keeps
//! one core busy while the other links or compresses), each one's output in a log whose last
//! line the heartbeat shows and whose end is printed when it fails.

use crate::programs::docker::{self, Build};
use crate::programs::shell::Shell;
use anyhow::{Context, Result};
use std::path::Path;

pub(super) struct Builds<'a> {
    pub fork: &'a Path,
    pub repository: String,
    pub labels: &'a [String],
    pub gzip_level: Option<u8>,
}

/// The pushed digest of each platform's image, in the order given (`None` under `--dry-run`).
pub(super) fn build_all(
    sh: &Shell,
    builds: &Builds<'_>,
    platforms: &[String],
    dockerfiles: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    if platforms.len() < 2 || sh.is_dry_run() {
        return platforms.iter().zip(dockerfiles).map(|(p, d)| one(sh, builds, p, d.as_deref(), None)).collect();
    }
    let logs = tempfile::tempdir().context("cannot make a directory for the builds' logs")?;
    println!(
        "building {} side by side; each build's output goes to a log, its last line shown every 20 s",
        platforms.join(", ")
    );
    let results: Vec<Result<Option<String>>> = std::thread::scope(|s| {
        let running: Vec<_> = platforms
            .iter()
            .zip(dockerfiles)
            .map(|(p, d)| {
                let log = logs.path().join(format!("{}.log", p.replace('/', "-")));
                s.spawn(move || one(&Shell::new(false)?, builds, p, d.as_deref(), Some(&log)))
            })
            .collect();
        running
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a build thread panicked"))))
            .collect()
    });
    results.into_iter().collect()
}

fn one(
    sh: &Shell,
    builds: &Builds<'_>,
    platform: &str,
    dockerfile: Option<&str>,
    log: Option<&Path>,
) -> Result<Option<String>> {
    let build = Build {
        fork: builds.fork,
        platform,
        repository: builds.repository.clone(),
        labels: builds.labels,
        dockerfile,
        log,
        gzip_level: builds.gzip_level,
    };
    docker::build_by_digest(sh, &build)
}
