//! The `docker` CLI: login without the token on a command line, and `buildx build --push`.

use crate::programs::shell::{require_program, Shell};
use anyhow::{bail, Context, Result};
use xshell::cmd;

pub struct Build<'a> {
    pub fork: &'a std::path::Path,
    pub platforms: &'a [String],
    pub tags: Vec<String>,
    pub labels: Vec<String>,
}

pub fn preflight(sh: &Shell) -> Result<()> {
    require_program("docker", "install Docker with the buildx plugin")?;
    let Some(out) = sh.probe(cmd!(sh.sh, "docker buildx version"))? else { return Ok(()) };
    if !out.status.success() {
        bail!("`docker buildx` is not available: install the Docker buildx plugin (`docker buildx version` failed)");
    }
    Ok(())
}

/// `docker login` with the token on stdin.
pub fn login(sh: &Shell, registry: &str, user: &str, token: &str) -> Result<()> {
    let login = cmd!(sh.sh, "docker login {registry} --username {user} --password-stdin").stdin(token);
    sh.run(login).map_err(|_| {
        anyhow::anyhow!("docker login to {registry} as {user} failed: check GHCR_TOKEN (or GITHUB_TOKEN) and GHCR_USER")
    })
}

pub fn build_and_push(sh: &Shell, build: &Build<'_>) -> Result<()> {
    let platforms = build.platforms.join(",");
    let mut args = vec!["buildx".to_string(), "build".into(), "--platform".into(), platforms];
    for t in &build.tags {
        args.extend(["--tag".to_string(), t.clone()]);
    }
    for l in &build.labels {
        args.extend(["--label".to_string(), l.clone()]);
    }
    args.push("--push".into());
    args.push(build.fork.display().to_string());
    sh.run(cmd!(sh.sh, "docker {args...}")).context("docker buildx build failed (its output is above)")
}
