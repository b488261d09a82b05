//! The door's network checks, as someone on the network would find it: the NetworkPolicy and the
//! Service's externalTrafficPolicy in place, the NodePort silent to an address of this machine
//! outside `--allow-from` (when such an address can reach the node at all), and kube-proxy's
//! NodePort addresses.

use crate::cluster::allow_from::{policy_name, AllowFrom, Cidr};
use crate::cluster::client::{Cluster, ClusterArgs};
use crate::oci::chart;
use crate::server::check::{check, skip, Check};
use anyhow::{anyhow, bail, Result};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::Api;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) async fn check_door(
    url: &str,
    cluster: &Cluster,
    args: &ClusterArgs,
    expected: Option<&AllowFrom>,
    local_environment: bool,
    checks: &mut Vec<Check>,
) {
    let name = "NetworkPolicy admits only --allow-from";
    let live = policy(cluster, args).await;
    let allowed = match (live, expected) {
        (Ok(live), Some(e)) if !live.0.iter().all(|c| e.0.contains(c)) => {
            check(checks, name, Err(anyhow!("it admits {live}, beyond --allow-from {e}: run up again")));
            e.clone()
        }
        (Ok(live), _) => {
            check(checks, name, Ok(live.to_string()));
            live
        }
        (Err(err), Some(e)) => {
            check(checks, name, Err(err));
            e.clone()
        }
        (Err(err), None) => {
            check(checks, name, Err(err));
            let detail =
                "could not check: no NetworkPolicy says which networks are allowed; pass --allow-from".to_string();
            skip(checks, "NodePort silent outside --allow-from", detail);
            return;
        }
    };
    check(checks, "Service keeps the client's address", traffic_policy(cluster, args).await);
    match target(url) {
        Some(node) => outside(cluster, node, &allowed, checks).await,
        None => {
            check(
                checks,
                "NodePort silent outside --allow-from",
                Err(anyhow!("cannot read an IP and port from {url}")),
            );
        }
    }
    if local_environment {
        return; // `dev`'s own cluster: its kube-proxy is set up as k0s's, and not the user's to change
    }
    if let Some(warning) = node_port_addresses(cluster).await {
        eprintln!("warning: {warning}");
    }
}

/// Who the live NetworkPolicy admits, in words (for `status`).
pub(crate) async fn admitted(cluster: &Cluster, args: &ClusterArgs) -> String {
    match policy(cluster, args).await {
        Ok(a) => format!("only from {a} (networkpolicy/{})", policy_name(&args.release)),
        Err(e) => crate::common::error_text::one_line(&e),
    }
}

async fn policy(cluster: &Cluster, args: &ClusterArgs) -> Result<AllowFrom> {
    let name = policy_name(&args.release);
    let api: Api<NetworkPolicy> = Api::namespaced(cluster.client.clone(), &args.namespace);
    let Some(p) = api.get_opt(&name).await? else {
        bail!("MISSING: networkpolicy/{name} is gone: every address that reaches the node may connect; run up again");
    };
    let rules = p.spec.and_then(|s| s.ingress).unwrap_or_default();
    let mut cidrs = Vec::new();
    for rule in &rules {
        let peers = rule.from.clone().unwrap_or_default();
        if peers.is_empty() {
            bail!("OPEN: a rule of networkpolicy/{name} admits every source");
        }
        for peer in peers {
            let block = peer
                .ip_block
                .ok_or_else(|| anyhow!("networkpolicy/{name} admits pods or namespaces, not only networks"))?;
            cidrs.push(crate::cluster::allow_from::parse(&block.cidr)?.0[0]);
        }
    }
    if cidrs.is_empty() {
        bail!("networkpolicy/{name} has no rule: it admits nobody");
    }
    if cidrs.iter().any(Cidr::is_everything) {
        eprintln!("warning: networkpolicy/{name} admits every address (0.0.0.0/0)");
    }
    Ok(AllowFrom(cidrs))
}

async fn traffic_policy(cluster: &Cluster, args: &ClusterArgs) -> Result<String> {
    let name = chart::fullname(&args.release);
    let api: Api<Service> = Api::namespaced(cluster.client.clone(), &args.namespace);
    let service = api.get_opt(&name).await?.ok_or_else(|| anyhow!("service/{name} does not exist"))?;
    match service.spec.and_then(|s| s.external_traffic_policy).as_deref() {
        Some("Local") => Ok("externalTrafficPolicy Local".into()),
        other => bail!("externalTrafficPolicy {}: kube-proxy hands the pod the node's address, so the NetworkPolicy cannot tell a laptop from the internet; run up again", other.unwrap_or("Cluster")),
    }
}

pub(crate) fn target(url: &str) -> Option<SocketAddr> {
    let rest = url.split("://").nth(1)?;
    let host_port = rest.split('/').next()?;
    host_port.parse::<SocketAddr>().ok()
}

/// kubelet's port, open on every node (the API server reaches kubelet there).
const KUBELET_PORT: u16 = 10250;

/// How long a NodePort that answers outside `--allow-from` is given to fall silent: the node's
/// NetworkPolicy enforcer (kube-router) guards a new pod only once it has synced after the pod
/// started. One that still answers after this is open.
const SETTLE: Duration = Duration::from_secs(10);

/// From each address of this machine outside `allowed` that reaches the node (a TCP connection
/// to the API server's port on the node's address, or to kubelet's on a worker), the NodePort
/// must not answer.
async fn outside(cluster: &Cluster, node: SocketAddr, allowed: &AllowFrom, checks: &mut Vec<Check>) {
    let name = "NodePort silent outside --allow-from";
    let locals = local_addresses();
    if locals.contains(&node.ip()) || node.ip().is_loopback() {
        let detail = format!("could not check: this machine holds {} itself, and traffic between the node's own addresses is always admitted; run verify from another machine", node.ip());
        skip(checks, name, detail);
        return;
    }
    let api_port =
        cluster.server.rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse::<u16>().ok()).unwrap_or(6443);
    let candidates: Vec<IpAddr> = locals
        .into_iter()
        .filter(|a| !a.is_loopback() && a.is_ipv4() == node.is_ipv4() && !allowed.0.iter().any(|c| c.contains(*a)))
        .collect();
    for source in &candidates {
        let reaches = |port| connect(*source, SocketAddr::new(node.ip(), port));
        if reaches(api_port).await.is_err() && reaches(KUBELET_PORT).await.is_err() {
            continue;
        }
        let start = std::time::Instant::now();
        let (open, answered_for) = loop {
            let probed_at = start.elapsed();
            if !answers(*source, node).await {
                break (false, probed_at);
            }
            if start.elapsed() >= SETTLE {
                break (true, start.elapsed());
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let result = match outside_result(*source, open, answered_for.as_secs()) {
            Ok(detail) => other_nodes_silent(cluster, *source, node).await.map(|more| format!("{detail}{more}")),
            Err(e) => Err(e),
        };
        check(checks, name, result);
        return;
    }
    let why = match candidates.is_empty() {
        true => "this machine has no address outside --allow-from".to_string(),
        false => {
            format!("none of this machine's addresses outside --allow-from ({}) reaches the node", list(&candidates))
        }
    };
    skip(checks, name, format!("could not check: {why}"));
}

/// On a cluster of several nodes, every other node's addresses (on the same nodePort) must be
/// silent to `source` too.
async fn other_nodes_silent(cluster: &Cluster, source: IpAddr, url: SocketAddr) -> Result<String> {
    let nodes = Api::<Node>::all(cluster.client.clone()).list(&Default::default()).await?.items;
    let others: Vec<SocketAddr> = nodes
        .iter()
        .flat_map(crate::cluster::placement::addresses)
        .map(|(_, a)| a)
        .filter(|a| *a != url.ip() && a.is_ipv4() == url.is_ipv4())
        .map(|a| SocketAddr::new(a, url.port()))
        .collect();
    for other in &others {
        if answers(source, *other).await {
            bail!("ANSWERED at {other} (another node's address) from {source}, which is outside --allow-from: the NodePort is open to it there");
        }
    }
    let addrs: Vec<IpAddr> = others.iter().map(SocketAddr::ip).collect();
    Ok(if addrs.is_empty() { String::new() } else { format!("; nor at the other nodes' {}", list(&addrs)) })
}

fn list(addrs: &[IpAddr]) -> String {
    addrs.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", ")
}

/// The outside probe's verdict: `answered_for` is how long the NodePort answered before the probe
/// that found it silent (0: the first probe found it silent, however long that probe waited), or
/// in all when it is still `open`.
fn outside_result(source: IpAddr, open: bool, answered_for: u64) -> Result<String> {
    match (open, answered_for) {
        (true, secs) => Err(anyhow!(
            "ANSWERED from {source}, which is outside --allow-from, for {secs} s: the NodePort is open to it"
        )),
        (false, 0) => Ok(format!("no answer from {source} (outside --allow-from), which reaches the node")),
        (false, secs) => Ok(format!(
            "no answer from {source} (outside --allow-from), which reaches the node, after it answered for {secs} s: the node's policy enforcer had not yet caught up with the new pod"
        )),
    }
}

async fn connect(source: IpAddr, to: SocketAddr) -> Result<tokio::net::TcpStream> {
    let socket = if to.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.bind(SocketAddr::new(source, 0))?;
    Ok(tokio::time::timeout(Duration::from_secs(3), socket.connect(to)).await??)
}

/// Whether an HTTP request to `/healthz` from `source` gets any answer.
async fn answers(source: IpAddr, node: SocketAddr) -> bool {
    let attempt = async {
        let mut stream = connect(source, node).await?;
        stream.write_all(format!("GET /healthz HTTP/1.0\r\nHost: {node}\r\n\r\n").as_bytes()).await?;
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf)).await??;
        anyhow::Ok(n > 0)
    };
    attempt.await.unwrap_or(false)
}

/// This machine's IPv4 addresses.
fn local_addresses() -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> =
        crate::common::interfaces::addresses().into_iter().map(|a| a.ip).filter(IpAddr::is_ipv4).collect();
    out.sort();
    out.dedup();
    out
}

/// A warning when the cluster's kube-proxy serves NodePorts on every node address (its
/// configuration in kube-system, where readable).
async fn node_port_addresses(cluster: &Cluster) -> Option<String> {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "kube-system");
    let cm = api.get_opt("kube-proxy").await.ok()??;
    let config = cm.data?.into_iter().find(|(k, _)| k.starts_with("config"))?.1;
    let value: serde_norway::Value = serde_norway::from_str(&config).ok()?;
    let set = value.get("nodePortAddresses").and_then(|v| v.as_sequence()).is_some_and(|s| !s.is_empty());
    (!set).then(|| {
        "the cluster's kube-proxy serves NodePorts on every node address (nodePortAddresses is unset in kube-system/kube-proxy): only the NetworkPolicy keeps other networks out; on the cluster side set nodePortAddresses to the WireGuard network (k0s: spec.network.kubeProxy.nodePortAddresses)".to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::outside_result;

    #[test]
    fn a_nodeport_silent_from_the_first_probe_is_not_said_to_have_answered() {
        let source = "198.51.100.7".parse().unwrap();
        let line = outside_result(source, false, 0).unwrap();
        assert!(!line.contains("answered for"), "{line}");
        let line = outside_result(source, false, 2).unwrap();
        assert!(line.contains("after it answered for 2 s"), "{line}");
        let err = outside_result(source, true, 10).unwrap_err().to_string();
        assert!(err.starts_with("ANSWERED from 198.51.100.7") && err.contains("for 10 s"), "{err}");
    }
}
