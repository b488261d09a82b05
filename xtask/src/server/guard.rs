//! The Host/Origin guard (`guard/`, built and pushed by `image`): a second container in the
//! server's pod that passes on only requests addressed to the deployment by the name the user
//! connects with. Its container as the chart's `extraContainers` renders it, and its port, which
//! the Service and the NetworkPolicy lead to instead of the server's.

use crate::oci::reference::ImageRef;
use serde_json::{json, Value};
use std::net::IpAddr;

/// The container's name, and the name of its port (the Service's `targetPort`).
pub const CONTAINER: &str = "kmcp-guard";
pub const PORT_NAME: &str = "guard";
/// The variable the pod's node address is handed to the guard in, when `--node-ip` is not given.
const NODE_ADDRESS_VAR: &str = "KMCP_NODE_ADDRESS";

/// What the guard is told: its image, the names it answers to, the server's port.
#[derive(Debug, Clone)]
pub struct Guard {
    pub image: ImageRef,
    /// `--node-ip`; without it, the address of the node the pod runs on (its InternalIP, which
    /// `up` then prints).
    pub node_ip: Option<IpAddr>,
    /// `--host`: the names the laptop reaches the node by.
    pub hosts: Vec<String>,
}

/// The guard's port beside the server's `port` in the same pod.
pub fn port(server_port: u16) -> u16 {
    if server_port == u16::MAX {
        server_port - 1
    } else {
        server_port + 1
    }
}

impl Guard {
    /// The names and addresses it passes requests for, as its `--allow-host` says them.
    pub fn allowed(&self) -> Vec<String> {
        let node = match self.node_ip {
            Some(ip) => ip.to_string(),
            None => format!("$({NODE_ADDRESS_VAR})"),
        };
        std::iter::once(node).chain(self.hosts.iter().cloned()).collect()
    }

    /// The container, as an `extraContainers` entry.
    pub fn container(&self, server_port: u16) -> Value {
        let port = port(server_port);
        let mut c = json!({
            "name": CONTAINER,
            "image": self.image.to_string(),
            "imagePullPolicy": "IfNotPresent",
            "args": [format!("--listen=:{port}"), format!("--upstream=127.0.0.1:{server_port}"),
                     format!("--allow-host={}", self.allowed().join(","))],
            "ports": [{"name": PORT_NAME, "containerPort": port, "protocol": "TCP"}],
            "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                "runAsNonRoot": true, "runAsUser": 65532, "capabilities": {"drop": ["ALL"]},
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                          "limits": {"cpu": "100m", "memory": "32Mi"}},
        });
        if self.node_ip.is_none() {
            c["env"] = json!([{"name": NODE_ADDRESS_VAR, "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}}]);
        }
        c
    }

    /// What the mode line says of it.
    pub fn describe(&self) -> String {
        let node = match self.node_ip {
            Some(ip) => ip.to_string(),
            None => "the node's address".into(),
        };
        let names = std::iter::once(node).chain(self.hosts.iter().cloned()).collect::<Vec<_>>().join(", ");
        format!("Host/Origin guard: only requests to {names} pass")
    }
}

/// `--host`: a DNS name (or address) the laptop reaches the node by.
pub fn host_name(text: &str) -> anyhow::Result<String> {
    let t = text.trim().to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if t.parse::<IpAddr>().is_ok() || (t.len() <= 253 && t.split('.').all(label_ok)) {
        return Ok(t);
    }
    anyhow::bail!(
        "invalid --host '{text}': give the DNS name (or address) the laptop connects with, without scheme or port"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_answers_on_its_own_port_for_the_printed_address() {
        let image = ImageRef::parse(&format!("ghcr.io/alice/kubernetes-mcp-server@sha256:{}", "c".repeat(64))).unwrap();
        let g = Guard { image, node_ip: Some("10.44.0.1".parse().unwrap()), hosts: vec!["node.wg".into()] };
        let c = g.container(8080);
        assert_eq!(c["args"][2], "--allow-host=10.44.0.1,node.wg");
        assert_eq!(c["args"][1], "--upstream=127.0.0.1:8080");
        assert_eq!(c["ports"][0]["containerPort"], 8081);
        assert!(c.get("env").is_none());
        let g = Guard { node_ip: None, hosts: vec![], ..g };
        assert_eq!(g.container(8080)["args"][2], "--allow-host=$(KMCP_NODE_ADDRESS)");
        assert_eq!(g.container(8080)["env"][0]["valueFrom"]["fieldRef"]["fieldPath"], "status.hostIP");
        assert_eq!(port(u16::MAX), u16::MAX - 1);
    }

    #[test]
    fn host_names_are_names() {
        assert_eq!(host_name("Node.WG").unwrap(), "node.wg");
        assert_eq!(host_name("fd00::1").unwrap(), "fd00::1");
        for bad in ["http://node", "node:8080", "", "a..b", "-x.y"] {
            assert!(host_name(bad).is_err(), "{bad}");
        }
    }
}
