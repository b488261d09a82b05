//! The `helm` CLI: release status, `upgrade --install`, `uninstall`, all aimed at the same
//! kubeconfig and context as the kube client.

use crate::programs::shell::{require_program, Ended, Shell};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::Path;
use xshell::cmd;

/// The helm on PATH: its path and version.
#[derive(Debug, Clone)]
pub struct Helm {
    pub path: std::path::PathBuf,
    pub version: String,
}

/// Where helm is on PATH (no program is run).
pub fn find() -> Result<std::path::PathBuf> {
    require_program("helm", "install Helm 3.8+ or Helm 4 (https://helm.sh/docs/intro/install/)")
}

/// Finds helm and reads `helm version`: 3.x from 3.8 (OCI support) and 4.x are accepted.
pub fn preflight(sh: &Shell) -> Result<Helm> {
    let path = find()?;
    let template = "{{.Version}}";
    let out = sh.query(cmd!(sh.sh, "helm version --template {template}"))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || !supported(&version) {
        bail!(
            "helm at {} is {}: `up` needs Helm 3.8 or newer (OCI charts) or Helm 4",
            path.display(),
            if version.is_empty() { "not answering `helm version`".to_string() } else { format!("version {version}") }
        );
    }
    Ok(Helm { path, version })
}

fn supported(version: &str) -> bool {
    let mut parts = version.trim_start_matches('v').split(['.', '-', '+']).map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(3), Some(minor)) => minor >= 8,
        (Some(4), Some(_)) => true,
        _ => false,
    }
}

#[derive(Debug, Deserialize)]
pub struct Release {
    pub version: u32,
    pub info: ReleaseInfo,
    #[serde(default)]
    pub chart: Option<ReleaseChart>,
}

#[derive(Debug, Deserialize)]
pub struct ReleaseInfo {
    pub status: String,
}

#[derive(Debug, Deserialize)]
pub struct ReleaseChart {
    pub metadata: ChartMetadata,
}

/// A local chart as helm reads it: anything helm would not install is refused here, before any
/// change.
pub fn show_chart(sh: &Shell, chart: &Path) -> Result<ChartMetadata> {
    let out = sh.query(cmd!(sh.sh, "helm show chart {chart}"))?;
    let shown = chart.display();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let why = stderr.lines().next().unwrap_or("no answer").trim_start_matches("Error: ");
        bail!("--chart {shown} is not a helm chart: helm says: {why}");
    }
    serde_norway::from_slice(&out.stdout).with_context(|| format!("--chart {shown}: helm shows no chart metadata"))
}

#[derive(Debug, Deserialize)]
pub struct ChartMetadata {
    pub name: String,
    pub version: String,
}

/// The release as `helm status` prints it, or `None` when helm does not know it.
pub fn status(sh: &Shell, target: &[String], release: &str, namespace: &str) -> Result<Option<Release>> {
    let out = sh.query(cmd!(sh.sh, "helm status {release} --namespace {namespace} --output json {target...}"))?;
    if out.status.success() {
        let release: Release =
            serde_json::from_slice(&out.stdout).context("helm status printed something that is not JSON")?;
        return Ok(Some(release));
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("not found") {
        return Ok(None);
    }
    bail!("helm status {release} failed: {}", stderr.lines().next().unwrap_or("no output"))
}

/// What `helm status` says of the release in a message: its word, or "not installed".
fn status_word(sh: &Shell, target: &[String], release: &str, namespace: &str) -> Result<String> {
    Ok(status(sh, target, release, namespace)?.map_or_else(|| "not installed".to_string(), |r| r.info.status))
}

/// Stands in a planned helm command for the values file: `execute` writes the values into a
/// private temp directory and puts the file's path in its place.
pub const VALUES_FILE: &str = "<values.yaml in a private temp dir>";

/// `helm upgrade --install` of a chart file or directory on this machine (helm never resolves a
/// moving tag), the values in `VALUES_FILE`.
pub fn upgrade_install(
    target: &[String],
    release: &str,
    chart: &Path,
    namespace: &str,
    extra: &[String],
) -> Vec<String> {
    let mut command: Vec<String> = ["helm", "upgrade", "--install", release].map(String::from).into();
    command.push(chart.display().to_string());
    command.extend(["-n", namespace, "-f", VALUES_FILE].map(String::from));
    command.extend(extra.iter().cloned());
    command.extend(target.iter().cloned());
    command
}

/// Runs a planned `helm upgrade --install` of `release` with `values` as its values file. Ctrl-C
/// is passed on to helm; the tool then waits for it and says what state the release is in.
pub async fn run_upgrade(
    sh: &Shell,
    command: &[String],
    values: &Path,
    target: &[String],
    release: &str,
    namespace: &str,
) -> Result<()> {
    let command: Vec<String> =
        command.iter().map(|a| if a == VALUES_FILE { values.display().to_string() } else { a.clone() }).collect();
    if let Ended::Interrupted(status) = run_to_end(sh, &command).await? {
        let state = status_word(sh, target, release, namespace).unwrap_or_else(|e| format!("unknown ({e:#})"));
        bail!("interrupted: helm ended ({status}); release {release} in {namespace} is {state}");
    }
    Ok(())
}

/// Runs a planned helm command that changes something (uninstall, rollback).
pub async fn run(sh: &Shell, command: &[String]) -> Result<()> {
    if let Ended::Interrupted(status) = run_to_end(sh, command).await? {
        bail!("interrupted: `{}` ended ({status})", command.join(" "));
    }
    Ok(())
}

/// Awaited, not blocking: the lock's renewals go on while helm runs (an uninstall `--wait` can
/// outlast the lease), and Ctrl-C is passed on to helm.
async fn run_to_end(sh: &Shell, command: &[String]) -> Result<Ended> {
    let args = &command[1..];
    sh.run_to_end(cmd!(sh.sh, "helm {args...}"))
        .await
        .with_context(|| format!("`{}` failed (its output is above)", command.join(" ")))
}

/// For a release left `pending-*` by a helm that did not finish (its lock holder gone): the
/// command that puts it back in order (rollback to the last revision, or uninstall when it never
/// got one), and what that does.
pub fn recovery(state: &str, target: &[String], release: &str, namespace: &str) -> Option<(Vec<String>, &'static str)> {
    let (verb, how) = match state {
        "pending-install" => ("uninstall", "uninstall it, to install it again"),
        "pending-upgrade" | "pending-rollback" => {
            ("rollback", "roll it back to its last revision, to upgrade it again")
        }
        _ => return None,
    };
    Some((with_target(["helm", verb, release, "--namespace", namespace, "--wait"], target), how))
}

pub fn uninstall(target: &[String], release: &str, namespace: &str) -> Vec<String> {
    with_target(["helm", "uninstall", release, "--namespace", namespace, "--wait"], target)
}

fn with_target<const N: usize>(words: [&str; N], target: &[String]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).chain(target.iter().cloned()).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions() {
        for ok in ["v3.8.0", "v3.19.2", "v4.0.0", "v4.2.0", "v3.22.0+g1234"] {
            assert!(super::supported(ok), "{ok}");
        }
        for bad in ["v3.7.2", "v2.17.0", "v5.0.0", "", "garbage"] {
            assert!(!super::supported(bad), "{bad}");
        }
    }
}
