//! Which node serves the URL: with `externalTrafficPolicy: Local` a NodePort answers only on a
//! node that runs a server pod, so on a cluster of several nodes the URL's node must run one.

use crate::cluster::client::{Cluster, ClusterArgs};
use crate::cluster::placement::addresses;
use crate::server::check::{check, Check};
use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use std::collections::BTreeSet;
use std::net::IpAddr;

const NAME: &str = "the URL's node runs the server";

pub(crate) async fn check_serving_node(cluster: &Cluster, args: &ClusterArgs, url_ip: IpAddr, checks: &mut Vec<Check>) {
    let found = async {
        let nodes = Api::<Node>::all(cluster.client.clone()).list(&ListParams::default()).await;
        let nodes = nodes.context("cannot list the nodes")?.items;
        let selector = format!("app.kubernetes.io/instance={}", args.release);
        let pods = Api::<Pod>::namespaced(cluster.client.clone(), &args.namespace);
        let pods =
            pods.list(&ListParams::default().labels(&selector)).await.context("cannot list the server's pods")?;
        let serving: BTreeSet<String> = pods.items.iter().filter(|p| running(p)).filter_map(node_of).collect();
        anyhow::Ok((nodes, serving))
    };
    let result = match found.await {
        Ok((nodes, serving)) => verdict(&nodes, &serving, url_ip),
        Err(e) => Err(e),
    };
    check(checks, NAME, result);
}

/// The verdict from the nodes and the nodes running a server pod.
fn verdict(nodes: &[Node], serving: &BTreeSet<String>, url_ip: IpAddr) -> Result<String> {
    let on = serving.iter().cloned().collect::<Vec<_>>().join(", ");
    if serving.is_empty() {
        bail!("no server pod is running on any node: run up again (status shows the pods)");
    }
    let lists_url = |n: &&Node| addresses(n).iter().any(|(_, a)| *a == url_ip);
    let at_url = nodes.iter().find(lists_url).and_then(|n| n.metadata.name.clone());
    match at_url {
        Some(node) if serving.contains(&node) => Ok(format!("node {node} (it lists {url_ip}) runs the server")),
        Some(node) => bail!(
            "node {node}, which answers at {url_ip}, runs no server pod (they run on {on}): with externalTrafficPolicy Local its NodePort is dead; run up again, which pins the server to the node at --node-ip"
        ),
        None if nodes.len() < 2 => Ok(format!("node {on}, the cluster's only node, runs the server")),
        None => Ok(format!(
            "node {on} runs the server; no node lists {url_ip} (a WireGuard address?), so the answers above are what shows it is that node"
        )),
    }
}

fn running(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

fn node_of(pod: &Pod) -> Option<String> {
    pod.spec.as_ref().and_then(|s| s.node_name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeAddress, NodeStatus};

    fn node(name: &str, ip: &str) -> Node {
        Node {
            metadata: kube::api::ObjectMeta { name: Some(name.into()), ..Default::default() },
            status: Some(NodeStatus {
                addresses: Some(vec![NodeAddress { type_: "InternalIP".into(), address: ip.into() }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_urls_node_must_serve() {
        let nodes = [node("a", "10.0.0.1"), node("b", "10.0.0.2")];
        let on = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(verdict(&nodes, &on(&["b"]), ip("10.0.0.2")).unwrap().contains("node b (it lists 10.0.0.2)"));
        let err = verdict(&nodes, &on(&["a"]), ip("10.0.0.2")).unwrap_err().to_string();
        assert!(err.contains("node b, which answers at 10.0.0.2, runs no server pod (they run on a)"), "{err}");
        assert!(verdict(&nodes, &on(&[]), ip("10.0.0.2")).is_err());
        assert!(verdict(&nodes, &on(&["a"]), ip("10.8.0.1")).unwrap().contains("no node lists 10.8.0.1"));
        assert!(verdict(&nodes[..1], &on(&["a"]), ip("10.8.0.1")).unwrap().contains("the cluster's only node"));
    }
}
