//! `cargo xtask dev`: the whole loop on one Linux machine, no GHCR and no k0s node needed. The
//! local environment (registry, BuildKit, the cluster with its node) is started, or attached to
//! when one runs; the fork's image is built for this machine's platform by `image` and deployed by
//! `up --verify`; the URL is printed. A `dev` that started the environment then runs until Ctrl-C,
//! SIGTERM or `dev --down`, which stop it and check the host is left as found.

#[cfg(target_os = "linux")]
mod deploy;
#[cfg(target_os = "linux")]
mod prerequisites;
#[cfg(target_os = "linux")]
mod session;

use crate::programs::shell::Shell;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The fork's git checkout (holds its Dockerfile); uncommitted changes are built too
    #[arg(long, env = "MCP_FORK_DIR", value_name = "PATH", required_unless_present = "down")]
    pub(crate) fork: Option<PathBuf>,
    /// Deploy this chart instead of the one `image` pushes beside the image (as `up --chart`)
    #[arg(long, value_name = "REF")]
    pub(crate) chart: Option<String>,
    /// Namespace of the deployment
    #[arg(long, value_name = "NAME", default_value = "mcp-system")]
    pub(crate) namespace: String,
    /// Helm release name
    #[arg(long, value_name = "NAME", default_value = "kubernetes-mcp-server")]
    pub(crate) release: String,
    /// Where a new local environment keeps its state [default: target/kmcp-dev in this workspace]
    #[arg(long, value_name = "PATH")]
    pub(crate) dir: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) client: crate::common::clients::ClientArgs,
    /// Rebuild and redeploy whenever the fork's commit or its uncommitted changes change
    #[arg(long)]
    pub(crate) watch: bool,
    /// Stop the `dev` that runs in another terminal (its environment goes; the host is left as found)
    #[arg(long, conflicts_with_all = ["fork", "chart", "watch", "dir"])]
    pub(crate) down: bool,
}

pub async fn run(sh: &Shell, args: Args) -> Result<()> {
    #[cfg(target_os = "linux")]
    return session::run(sh, args).await;
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (sh, args);
        anyhow::bail!("cargo xtask dev needs Linux (the local cluster's node lives in network and mount namespaces of its own): run it on a Linux machine, or use `image` and `up` with a k0s node")
    }
}
