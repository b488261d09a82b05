//! The `helm` CLI: release status, `upgrade --install`, `uninstall`, all aimed at the same
//! kubeconfig and context as the kube client.

use crate::cluster::Cluster;
use crate::shell::{require_program, Ended, Shell};
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

/// Finds helm and reads `helm version`: 3.x from 3.8 (OCI support) and 4.x are accepted.
pub fn preflight(sh: &Shell) -> Result<Helm> {
    let path = require_program("helm", "install Helm 3.8+ or Helm 4 (https://helm.sh/docs/intro/install/)")?;
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

#[derive(Debug, Deserialize)]
pub struct ChartMetadata {
    pub name: String,
    pub version: String,
}

/// The flags that aim helm at the kube client's cluster (none without a cluster: a dry-run plan).
pub fn target(cluster: Option<&Cluster>) -> Vec<String> {
    let Some(cluster) = cluster else { return Vec::new() };
    let mut args = vec!["--kubeconfig".to_string(), cluster.kubeconfig.display().to_string()];
    if let Some(c) = &cluster.context {
        args.extend(["--kube-context".to_string(), c.clone()]);
    }
    args
}

/// The release, or `None` when helm does not know it.
pub fn status(sh: &Shell, cluster: &Cluster, release: &str, namespace: &str) -> Result<Option<Release>> {
    let target = target(Some(cluster));
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

/// `helm upgrade --install` of a chart file or directory on this machine: helm never resolves a
/// moving tag. Ctrl-C is passed on to helm; the tool then waits for it and says what state the
/// release is in.
pub async fn upgrade_install(
    sh: &Shell,
    target: &[String],
    release: &str,
    chart: &Path,
    namespace: &str,
    values: &Path,
    extra: &[String],
) -> Result<()> {
    let ended = sh
        .run_to_end(cmd!(
            sh.sh,
            "helm upgrade --install {release} {chart} -n {namespace} -f {values} {extra...} {target...}"
        ))
        .await
        .with_context(|| format!("helm upgrade --install {release} failed (its output is above)"))?;
    if let Ended::Interrupted(status) = ended {
        let state = status_of(sh, target, release, namespace).unwrap_or_else(|e| format!("unknown ({e:#})"));
        bail!("interrupted: helm ended ({status}); release {release} in {namespace} is {state}");
    }
    Ok(())
}

/// The release's status word (deployed, failed, pending-upgrade, ...), or "not installed".
pub fn status_of(sh: &Shell, target: &[String], release: &str, namespace: &str) -> Result<String> {
    let out = sh.query(cmd!(sh.sh, "helm status {release} --namespace {namespace} --output json {target...}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("not found") {
            return Ok("not installed".into());
        }
        bail!("helm status {release} failed: {}", stderr.lines().next().unwrap_or("no output"));
    }
    let release: Release =
        serde_json::from_slice(&out.stdout).context("helm status printed something that is not JSON")?;
    Ok(release.info.status)
}

/// A release left `pending-*` by a helm that did not finish (and no lock holder, since we hold
/// the lock): rolled back to its last revision, or uninstalled when it never got one.
pub fn recover(sh: &Shell, target: &[String], release: &str, namespace: &str) -> Result<Option<String>> {
    let state = status_of(sh, target, release, namespace)?;
    let how = match state.as_str() {
        "pending-install" => {
            sh.run(cmd!(sh.sh, "helm uninstall {release} --namespace {namespace} --wait {target...}"))
                .with_context(|| format!("cannot recover release {release} from {state}"))?;
            "uninstalled it, to install it again"
        }
        "pending-upgrade" | "pending-rollback" => {
            sh.run(cmd!(sh.sh, "helm rollback {release} --namespace {namespace} --wait {target...}"))
                .with_context(|| format!("cannot recover release {release} from {state}"))?;
            "rolled it back to its last revision, to upgrade it again"
        }
        _ => return Ok(None),
    };
    Ok(Some(format!("release {release} was left {state} by a helm run that did not finish: {how}")))
}

pub fn uninstall(sh: &Shell, cluster: &Cluster, release: &str, namespace: &str) -> Result<()> {
    let target = target(Some(cluster));
    sh.run(cmd!(sh.sh, "helm uninstall {release} --namespace {namespace} --wait {target...}"))
        .with_context(|| format!("helm uninstall {release} failed (its output is above)"))
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
