//! Node addresses, nodePorts and the URL a laptop reaches: what `up`, `status` and `verify` share.

use crate::cluster::client::Cluster;
use anyhow::{anyhow, bail, Result};
use k8s_openapi::api::core::v1::{Node, Service};
use kube::api::Api;
use std::net::IpAddr;

/// `--node-ip`, for `up`, `status` and `verify`.
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct NodeArgs {
    /// The node address the laptop reaches (its WireGuard IP), in the URL; without it, --allow-from
    /// is needed (up), the URL uses the node's InternalIP with a warning (up, verify), and for
    /// status the URL is shown with <node-ip>
    #[arg(long, env = "MCP_NODE_IP", value_name = "IP", value_parser = crate::common::flags::node_ip)]
    pub node_ip: Option<IpAddr>,
}

/// The deployment's URL, the one place it is made: `--node-ip` (without it, the first node's
/// InternalIP, with a warning) and the Service's nodePort.
pub async fn deployment_url(cluster: Option<&Cluster>, node_ip: Option<IpAddr>, node_port: i32) -> Result<String> {
    let ip = match (node_ip, cluster) {
        (Some(ip), _) => ip,
        (None, Some(cluster)) => internal_ip(cluster).await?,
        (None, None) => bail!("no --node-ip and no cluster to read the node's address from: pass --node-ip"),
    };
    Ok(url(&ip, node_port))
}

fn url(node_ip: &IpAddr, node_port: i32) -> String {
    match node_ip {
        IpAddr::V6(ip) => format!("http://[{ip}]:{node_port}/mcp"),
        IpAddr::V4(ip) => format!("http://{ip}:{node_port}/mcp"),
    }
}

pub fn current_node_port(service: &Service) -> Result<i32> {
    let spec = service.spec.as_ref();
    let kind = spec.and_then(|s| s.type_.as_deref()).unwrap_or("ClusterIP");
    spec.and_then(|s| s.ports.as_ref()).and_then(|p| p.first()).and_then(|p| p.node_port).ok_or_else(|| {
        anyhow!("the Service is {kind}, not NodePort, so it has no nodePort: run `cargo xtask up` to put it back")
    })
}

/// The first node's InternalIP, with a warning: the WireGuard address is usually another one.
async fn internal_ip(cluster: &Cluster) -> Result<IpAddr> {
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let list = nodes.list(&Default::default()).await?;
    for node in &list.items {
        let addresses = node.status.as_ref().and_then(|s| s.addresses.clone()).unwrap_or_default();
        if let Some(a) = addresses.iter().find(|a| a.type_ == "InternalIP") {
            let ip = crate::common::flags::node_ip(&a.address)?;
            eprintln!(
                "warning: using node {}'s InternalIP {ip}; the address the laptop reaches over WireGuard is usually another one: pass --node-ip or set MCP_NODE_IP",
                node.metadata.name.as_deref().unwrap_or("?")
            );
            return Ok(ip);
        }
    }
    bail!("no node reports an InternalIP: pass --node-ip (the node's WireGuard address)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(url(&"10.8.0.1".parse().unwrap(), 31234), "http://10.8.0.1:31234/mcp");
        assert_eq!(url(&"fd00::1".parse().unwrap(), 31234), "http://[fd00::1]:31234/mcp");
    }
}
