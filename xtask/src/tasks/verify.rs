//! `cargo xtask verify`: prove a deployment: the URL worked out from the cluster (or `--url`), the
//! checks run, the report printed.

use crate::cluster::client::{Cluster, ClusterArgs};
use crate::server::proof;
use crate::{cluster::address, oci::chart};
use anyhow::{bail, Result};
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
    /// The MCP endpoint [default: http://<node-ip>:<nodePort>/mcp, worked out from the cluster]
    #[arg(long, value_name = "URL")]
    pub(crate) url: Option<String>,
    #[command(flatten)]
    pub(crate) node: crate::cluster::address::NodeArgs,
    /// The networks that should be the only ones admitted [default: the live NetworkPolicy's]
    #[arg(long, env = "MCP_ALLOW_FROM", value_name = "CIDR[,CIDR...]", value_parser = crate::cluster::allow_from::parse)]
    pub(crate) allow_from: Option<crate::cluster::allow_from::AllowFrom>,
    /// Print the report as JSON
    #[arg(long)]
    pub(crate) json: bool,
}

pub async fn run(args: Args) -> Result<()> {
    args.cluster.check()?;
    let node_ip = args.node.node_ip;
    let cluster = Cluster::reach(&args.cluster).await;
    let url = match (&args.url, &cluster) {
        (Some(u), _) => u.clone(),
        (None, Ok(c)) => default_url(c, &args.cluster, node_ip).await?,
        (None, Err(e)) => bail!("{}; or pass --url", crate::common::error_text::one_line(e)),
    };
    let cluster = cluster.as_ref().map_err(crate::common::error_text::one_line);
    let report = proof::verify(&url, cluster, &args.cluster, args.allow_from.as_ref(), false).await;
    proof::print(&report, args.json);
    if !report.passed {
        bail!(
            "verify: {} of {} checks failed",
            report.checks.iter().filter(|c| !c.passed).count(),
            report.checks.len()
        );
    }
    Ok(())
}

async fn default_url(cluster: &Cluster, args: &ClusterArgs, node_ip: Option<std::net::IpAddr>) -> Result<String> {
    let name = chart::fullname(&args.release);
    let services: Api<Service> = Api::namespaced(cluster.client.clone(), &args.namespace);
    let Some(service) = services.get_opt(&name).await? else {
        bail!("service {}/{name} does not exist: run `cargo xtask up` first, or pass --url", args.namespace);
    };
    address::deployment_url(Some(cluster), node_ip, address::current_node_port(&service)?).await
}
