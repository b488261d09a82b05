//! The `helm` CLI: release status, `upgrade --install`, `uninstall`, all aimed at the same
//! kubeconfig and context as the kube client.

use crate::cluster::Cluster;
use crate::shell::{require_program, Shell};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::Path;
use xshell::cmd;

pub fn preflight() -> Result<()> {
    require_program("helm", "install Helm 3 (https://helm.sh/docs/intro/install/)").map(drop)
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

pub fn upgrade_install(
    sh: &Shell,
    target: &[String],
    release: &str,
    chart: &str,
    version: &str,
    namespace: &str,
    values: &Path,
) -> Result<()> {
    let plain_http = plain_http(chart);
    sh.run(cmd!(
        sh.sh,
        "helm upgrade --install {release} {chart} --version {version} -n {namespace} -f {values} {target...} {plain_http...}"
    ))
    .with_context(|| format!("helm upgrade --install {release} failed (its output is above)"))
}

pub fn uninstall(sh: &Shell, cluster: &Cluster, release: &str, namespace: &str) -> Result<()> {
    let target = target(Some(cluster));
    sh.run(cmd!(sh.sh, "helm uninstall {release} --namespace {namespace} --wait {target...}"))
        .with_context(|| format!("helm uninstall {release} failed (its output is above)"))
}

/// Charts in a registry on this machine are fetched over plain HTTP, as images are.
fn plain_http(chart: &str) -> Option<&'static str> {
    let host = chart.strip_prefix("oci://")?.split('/').next()?;
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    matches!(name, "localhost" | "127.0.0.1" | "[::1]").then_some("--plain-http")
}
