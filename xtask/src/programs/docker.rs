//! The `docker` CLI: the buildx builder checked before anything is sent, login without the token
//! on a command line, and `buildx build --push`.

use crate::programs::shell::{require_program, Shell};
use anyhow::{bail, Context, Result};
use xshell::cmd;

/// One platform's build, pushed by digest to `repository` (no tag).
pub struct Build<'a> {
    pub fork: &'a std::path::Path,
    pub platform: &'a str,
    pub repository: String,
    pub labels: &'a [String],
    /// The Dockerfile to build instead of the fork's own (given on stdin as `-f -`).
    pub dockerfile: Option<&'a str>,
    /// Where buildx's output goes when builds run side by side (else to the terminal).
    pub log: Option<&'a std::path::Path>,
    /// The gzip level of the pushed layers (BuildKit's default when None).
    pub gzip_level: Option<u8>,
}

/// What `docker buildx --debug inspect` says of the builder a build would use (the current one,
/// or `BUILDX_BUILDER`).
#[derive(Debug, Default, PartialEq)]
struct Builder {
    name: String,
    driver: String,
    options: String,
    status: String,
    error: Option<String>,
    multi_platform: Option<bool>,
}

fn parse(inspect: &str) -> Builder {
    let mut b = Builder::default();
    for line in inspect.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let value = value.trim().to_string();
        match key.trim() {
            "Name" if b.name.is_empty() => b.name = value,
            "Driver" if b.driver.is_empty() => b.driver = value,
            "Driver Options" => b.options = value,
            "Status" if b.status.is_empty() => b.status = value,
            "Error" if b.error.is_none() => b.error = Some(value),
            "Multi-platform build" => b.multi_platform = Some(value == "true"),
            _ => {}
        }
    }
    b
}

/// The builder can run this build: it answers, it can build several platforms when asked to, and
/// it can reach a registry on this machine's loopback. Platforms the builder lists are what it
/// runs natively, not what it can cross-compile: they refuse nothing.
pub fn preflight(sh: &Shell, platforms: &[String], loopback_registry: Option<&str>) -> Result<()> {
    if !sh.is_dry_run() {
        require_program("docker", "install Docker with the buildx plugin")?;
    }
    let Some(out) = sh.probe(cmd!(sh.sh, "docker buildx --debug inspect"))? else { return Ok(()) };
    if !out.status.success() {
        bail!("`docker buildx` is not available: install the Docker buildx plugin (`docker buildx inspect` failed)");
    }
    let b = parse(&String::from_utf8_lossy(&out.stdout));
    let name = &b.name;
    if let Some(e) = &b.error {
        bail!("the buildx builder {name} cannot be used ({e}): start Docker, or select a builder that runs with `docker buildx use NAME` (or BUILDX_BUILDER)");
    }
    let may_start = b.driver == "docker-container" && b.status == "inactive";
    if b.status != "running" && !may_start {
        bail!("the buildx builder {name} is {}: start it (`docker buildx inspect --bootstrap {name}`) or select another with `docker buildx use NAME`", b.status);
    }
    if platforms.len() > 1 && b.multi_platform == Some(false) {
        let why = match b.driver.as_str() {
            "docker" => {
                " uses the docker driver, which builds several platforms only with Docker's containerd image store"
            }
            _ => " cannot build several platforms",
        };
        bail!("the buildx builder {name}{why}: create one that can with `docker buildx create --use --driver docker-container` (or turn on the containerd image store)");
    }
    if let Some(registry) = loopback_registry.filter(|_| b.driver == "docker-container") {
        if !b.options.contains("network=\"host\"") {
            bail!("the buildx builder {name} (docker-container driver) pushes from its own network and cannot reach {registry}: create it with `docker buildx create --use --driver docker-container --driver-opt network=host`");
        }
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

/// `buildx build` of one platform, pushed by digest only: no tag moves. The platform's
/// arguments go in as `--build-arg`, so a Dockerfile whose `ARG TARGETARCH` has a default (as
/// upstream's has: podman fills it per platform, BuildKit does not) builds for that platform.
/// The pushed manifest's digest; `None` under `--dry-run`.
pub fn build_by_digest(sh: &Shell, build: &Build<'_>) -> Result<Option<String>> {
    let platform = build.platform;
    let mut parts = platform.split('/');
    let (os, arch, variant) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let dir = tempfile::tempdir().context("cannot make a temporary directory for buildx's metadata")?;
    let metadata = dir.path().join("metadata.json");
    let mut args: Vec<String> = ["buildx", "build", "--platform", platform].map(String::from).to_vec();
    for (name, value) in
        [("TARGETPLATFORM", platform), ("TARGETOS", os), ("TARGETARCH", arch), ("TARGETVARIANT", variant)]
    {
        args.extend(["--build-arg".into(), format!("{name}={value}")]);
    }
    for l in build.labels {
        args.extend(["--label".to_string(), l.clone()]);
    }
    let mut output = format!("type=image,name={},push-by-digest=true,name-canonical=true,push=true", build.repository);
    if let Some(level) = build.gzip_level {
        output.push_str(&format!(",compression=gzip,compression-level={level}"));
    }
    args.extend(["--output".into(), output, "--metadata-file".into(), metadata.display().to_string()]);
    if build.dockerfile.is_some() {
        args.extend(["-f".into(), "-".into()]);
    }
    args.push(build.fork.display().to_string());
    let command = cmd!(sh.sh, "docker {args...}");
    let stdin = build.dockerfile.unwrap_or_default();
    let what = format!("docker buildx build for {platform}");
    let ran = crate::programs::heartbeat::while_running(&what, build.log, || match build.log {
        Some(log) => sh.run_logged(command, stdin, log),
        None => sh.run(command.stdin(stdin)),
    });
    if let (Err(_), Some(log)) = (&ran, build.log) {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        eprintln!("{what}, the end of its output:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    }
    ran.with_context(|| format!("{what} failed (its output is above)"))?;
    if !metadata.exists() {
        return Ok(None); // a dry run
    }
    let text = std::fs::read_to_string(&metadata).context("buildx wrote no metadata file")?;
    let json: serde_json::Value = serde_json::from_str(&text).context("buildx's metadata file is not JSON")?;
    match json["containerimage.digest"].as_str() {
        Some(d) => Ok(Some(d.to_string())),
        None => bail!("buildx pushed {platform} but its metadata names no digest: {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_buildx_inspect_prints() {
        let remote = "Name:          kmcp\nDriver:        remote\nLast Activity: 2026-11-30 17:22:11 +0000 UTC\n\nNodes:\nName:             kmcp0\nEndpoint:         unix:///tmp/bk.sock\nStatus:           running\nFeatures:\n Multi-platform build:                                       true\n";
        let b = parse(remote);
        assert_eq!((b.name.as_str(), b.driver.as_str(), b.status.as_str()), ("kmcp", "remote", "running"));
        assert_eq!((b.error, b.multi_platform), (None, Some(true)));
        let broken =
            "Name:   default\nDriver: \nError:  failed to connect to the docker API at unix:///var/run/docker.sock\n";
        assert!(parse(broken).error.unwrap().starts_with("failed to connect"));
        let container = "Name: ci\nDriver: docker-container\n\nNodes:\nName: ci0\nEndpoint: unix:///var/run/docker.sock\nDriver Options: image=\"moby/buildkit\" network=\"host\"\nStatus: inactive\n";
        assert!(parse(container).options.contains("network=\"host\""));
    }
}
