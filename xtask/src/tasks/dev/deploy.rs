//! One round of `dev`: the fork's image built for this machine's platform and pushed to the
//! environment's registry by `image`, then deployed by `up --verify`, each run as this same
//! program (the code paths users run), whose `up` prints the URL and the client configuration.

use super::Args;
use crate::programs::git::Checkout;
use crate::programs::shell::{Ended, Shell};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use xshell::cmd;

/// Where a round builds and deploys.
pub(super) struct Target {
    pub exe: PathBuf,
    pub docker_config: PathBuf,
    /// helm 4, as the local parts carry it: `up` finds it on PATH.
    pub helm_dir: PathBuf,
    pub registry: String,
    pub kubeconfig: PathBuf,
    pub node_ip: std::net::IpAddr,
}

/// The image owner in the local registry.
const OWNER: &str = "local";

/// The tag `image` gives the fork as it is now (with a hash of its uncommitted changes, if any).
pub(super) fn tag_of(fork: &Path) -> Result<String> {
    Ok(Checkout::open(fork)?.image_tag(true)?.0)
}

/// `image`, then `up --verify`; `Interrupted` when a signal came while one ran.
pub(super) async fn round(sh: &Shell, target: &Target, args: &Args, fork: &Path) -> Result<Ended> {
    let tag = tag_of(fork)?;
    let path = format!("{}:{}", target.helm_dir.display(), std::env::var("PATH").unwrap_or_default());
    let _env = [sh.sh.push_env("DOCKER_CONFIG", &target.docker_config), sh.sh.push_env("PATH", path)];
    let (exe, registry, platform) = (&target.exe, &target.registry, crate::common::platform::this_machine());
    let image = cmd!(
        sh.sh,
        "{exe} image --fork {fork} --registry {registry} --owner {OWNER} --platform {platform} --allow-dirty --gzip-level 1"
    );
    if let ended @ Ended::Interrupted(_) = sh.run_to_end(image).await? {
        return Ok(ended);
    }
    let reference = format!("{registry}/{OWNER}/kubernetes-mcp-server:{tag}");
    let (kubeconfig, node_ip, namespace, release) =
        (&target.kubeconfig, &target.node_ip, &args.namespace, &args.release);
    let allow_from = network_of(*node_ip)?;
    let node_ip = node_ip.to_string();
    let mut extra: Vec<&str> = args.chart.iter().flat_map(|c| ["--chart", c.as_str()]).collect();
    if let Some(client) = args.client.client {
        extra.extend(["--client", client.flag_value()]);
    }
    let up = cmd!(
        sh.sh,
        "{exe} up --kubeconfig {kubeconfig} --namespace {namespace} --release {release} --image {reference} --node-ip {node_ip} --allow-from {allow_from} --verify --local-environment {extra...}"
    );
    sh.run_to_end(up).await
}

/// The node's internal network (a /24, or a /64 for IPv6), which this machine is on: the one
/// admitted.
fn network_of(node_ip: std::net::IpAddr) -> Result<String> {
    let prefix = if node_ip.is_ipv4() { 24 } else { 64 };
    let network = crate::cluster::allow_from::Cidr::network_of(node_ip, prefix);
    Ok(network.with_context(|| format!("no network around {node_ip}"))?.to_string())
}
