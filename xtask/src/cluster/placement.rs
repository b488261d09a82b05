//! Which node the server runs on when the cluster has several: the one that answers at
//! `--node-ip` (the Service's `externalTrafficPolicy: Local` NodePort answers only where a pod
//! runs), or the one `--node` names. On a cluster of one node nothing is pinned.

use crate::cluster::client::Cluster;
use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use std::net::IpAddr;

/// The label the server's nodeSelector matches.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// The node the server is pinned to, and why that one.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub node: String,
    /// Its `kubernetes.io/hostname` label (the node's name when it has none).
    pub hostname: String,
    pub why: String,
}

impl Placement {
    pub fn describe(&self) -> String {
        format!("the server runs on node {} ({})", self.node, self.why)
    }

    /// Why helm must run when the live Deployment is pinned (its `kubernetes.io/hostname`
    /// selector, if any) elsewhere or nowhere; None when it is pinned here.
    pub fn moves(&self, pinned: Option<&str>) -> Option<String> {
        let now = match pinned {
            Some(h) if h == self.hostname => return None,
            Some(h) => format!("is pinned to {HOSTNAME_LABEL}={h}"),
            None => "may run on any node".to_string(),
        };
        let (node, why) = (&self.node, &self.why);
        Some(format!("the server {now}, but the URL answers only on node {node} ({why}): helm moves it there"))
    }
}

/// Reads the nodes and chooses (see `choose`); refuses, before any change, a node the server
/// cannot run on.
pub async fn decide(cluster: &Cluster, node_ip: Option<IpAddr>, named: Option<&str>) -> Result<Option<Placement>> {
    let nodes = Api::<Node>::all(cluster.client.clone()).list(&Default::default()).await;
    let nodes = nodes.context("cannot list the nodes, to place the server on the one the URL names")?;
    choose(&nodes.items, node_ip, named)
}

/// None on a cluster of one node (a `--node` there must still name it). With several: the node
/// `--node` names, else the one listing `--node-ip` among its addresses, else (no `--node-ip`) the
/// first with an InternalIP, whose address the URL then holds; cordoned, tainted or not Ready is
/// refused with its reason.
pub fn choose(nodes: &[Node], node_ip: Option<IpAddr>, named: Option<&str>) -> Result<Option<Placement>> {
    let names: Vec<&str> = nodes.iter().filter_map(|n| n.metadata.name.as_deref()).collect();
    let (node, why) = match (named, node_ip) {
        (Some(want), _) => {
            let found = nodes.iter().find(|n| n.metadata.name.as_deref() == Some(want));
            let found = found.with_context(|| format!("--node {want}: no such node (the nodes: {})", names.join(", ")))?;
            (found, format!("--node {want}"))
        }
        _ if nodes.len() < 2 => return Ok(None),
        (None, Some(ip)) => match nodes.iter().find_map(|n| addresses(n).into_iter().find(|(_, a)| *a == ip).map(|(k, _)| (n, k))) {
            Some((n, kind)) => (n, format!("it answers at --node-ip {ip}, its {kind}")),
            None => bail!(
                "no node lists --node-ip {ip} among its addresses (k0s registers a node by its primary address, not its WireGuard one): pass --node NAME, the node that answers at {ip} (the nodes: {})",
                names.join(", ")
            ),
        },
        (None, None) => {
            let first = nodes.iter().find_map(|n| addresses(n).into_iter().find(|(k, _)| k == "InternalIP").map(|a| (n, a)));
            let (n, (_, ip)) = first.context("no node reports an InternalIP: pass --node-ip (the node's WireGuard address)")?;
            (n, format!("its InternalIP {ip} is the URL's (no --node-ip)"))
        }
    };
    if nodes.len() < 2 {
        return Ok(None);
    }
    let name = node.metadata.name.clone().unwrap_or_default();
    if let Some(unfit) = unfit(node) {
        bail!("node {name} cannot run the server: {unfit}; fix it, or name another node with --node-ip or --node");
    }
    let labels = node.metadata.labels.as_ref();
    let hostname = labels.and_then(|l| l.get(HOSTNAME_LABEL)).cloned().unwrap_or_else(|| name.clone());
    Ok(Some(Placement { node: name, hostname, why }))
}

/// The node's addresses, each with its type (InternalIP, ExternalIP).
pub(crate) fn addresses(node: &Node) -> Vec<(String, IpAddr)> {
    let list = node.status.as_ref().and_then(|s| s.addresses.as_ref());
    list.into_iter().flatten().filter_map(|a| a.address.parse().ok().map(|ip| (a.type_.clone(), ip))).collect()
}

/// Why the server's pod would not run there: cordoned, a taint it does not tolerate (it has no
/// tolerations), or not Ready.
fn unfit(node: &Node) -> Option<String> {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        return Some(format!("it is cordoned (kubectl uncordon {name})"));
    }
    let taints = node.spec.as_ref().and_then(|s| s.taints.as_ref()).into_iter().flatten();
    if let Some(t) = taints.into_iter().find(|t| t.effect == "NoSchedule" || t.effect == "NoExecute") {
        let value = t.value.as_deref().map(|v| format!("={v}")).unwrap_or_default();
        return Some(format!(
            "it has the taint {}{value}:{}, which the server's pod does not tolerate (kubectl taint nodes {name} {}:{}-)",
            t.key, t.effect, t.key, t.effect
        ));
    }
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_ref()).into_iter().flatten();
    let ready = conditions.into_iter().find(|c| c.type_ == "Ready");
    match ready {
        Some(c) if c.status == "True" => None,
        Some(c) => Some(format!(
            "it is not Ready ({}: {})",
            c.reason.as_deref().unwrap_or("no reason"),
            c.message.as_deref().unwrap_or("no message")
        )),
        None => Some("it reports no Ready condition".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeAddress, NodeCondition, NodeSpec, NodeStatus, Taint};

    fn node(name: &str, ip: &str) -> Node {
        Node {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                labels: Some([(HOSTNAME_LABEL.to_string(), format!("{name}.host"))].into()),
                ..Default::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                addresses: Some(vec![NodeAddress { type_: "InternalIP".into(), address: ip.into() }]),
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn one_node_pins_nothing() {
        let one = [node("a", "10.0.0.1")];
        assert_eq!(choose(&one, ip("10.8.0.1"), None).unwrap(), None);
        assert_eq!(choose(&one, None, Some("a")).unwrap(), None);
        let err = choose(&one, None, Some("b")).unwrap_err().to_string();
        assert!(err.contains("--node b: no such node (the nodes: a)"), "{err}");
    }

    #[test]
    fn several_nodes_pin_the_one_at_the_url() {
        let nodes = [node("a", "10.0.0.1"), node("b", "10.0.0.2")];
        let p = choose(&nodes, ip("10.0.0.2"), None).unwrap().unwrap();
        assert_eq!((p.node.as_str(), p.hostname.as_str()), ("b", "b.host"));
        assert!(p.why.contains("--node-ip 10.0.0.2, its InternalIP"), "{}", p.why);
        let p = choose(&nodes, ip("10.8.0.1"), Some("a")).unwrap().unwrap();
        assert_eq!((p.node.as_str(), p.why.as_str()), ("a", "--node a"));
        let p = choose(&nodes, None, None).unwrap().unwrap();
        assert_eq!(p.node, "a", "no --node-ip: the node whose InternalIP the URL holds");
        assert_eq!(p.moves(Some("a.host")), None, "pinned here already");
        let moved = p.moves(None).unwrap();
        assert!(moved.starts_with("the server may run on any node, but the URL answers only on node a ("), "{moved}");
        let moved = p.moves(Some("b.host")).unwrap();
        assert!(moved.starts_with("the server is pinned to kubernetes.io/hostname=b.host, but"), "{moved}");
        let err = choose(&nodes, ip("10.8.0.1"), None).unwrap_err().to_string();
        assert!(err.contains("no node lists --node-ip 10.8.0.1") && err.contains("pass --node NAME"), "{err}");
        assert!(err.contains("(the nodes: a, b)"), "{err}");
    }

    #[test]
    fn a_node_that_cannot_run_the_server_is_refused_with_its_reason() {
        let mut cordoned = node("b", "10.0.0.2");
        cordoned.spec.as_mut().unwrap().unschedulable = Some(true);
        let err = choose(&[node("a", "10.0.0.1"), cordoned], ip("10.0.0.2"), None).unwrap_err().to_string();
        assert!(err.contains("node b cannot run the server: it is cordoned (kubectl uncordon b)"), "{err}");

        let mut tainted = node("b", "10.0.0.2");
        let taint = |effect: &str| Taint {
            key: "k".into(),
            value: Some("v".into()),
            effect: effect.into(),
            ..Default::default()
        };
        tainted.spec.as_mut().unwrap().taints = Some(vec![taint("PreferNoSchedule"), taint("NoExecute")]);
        let err = choose(&[node("a", "10.0.0.1"), tainted], ip("10.0.0.2"), None).unwrap_err().to_string();
        assert!(
            err.contains("it has the taint k=v:NoExecute") && err.contains("kubectl taint nodes b k:NoExecute-"),
            "{err}"
        );

        let mut down = node("b", "10.0.0.2");
        let ready = &mut down.status.as_mut().unwrap().conditions.as_mut().unwrap()[0];
        (ready.status, ready.reason) = ("Unknown".into(), Some("NodeStatusUnknown".into()));
        ready.message = Some("Kubelet stopped posting node status.".into());
        let err = choose(&[node("a", "10.0.0.1"), down], ip("10.0.0.2"), None).unwrap_err().to_string();
        assert!(err.contains("it is not Ready (NodeStatusUnknown: Kubelet stopped posting node status.)"), "{err}");
    }
}
