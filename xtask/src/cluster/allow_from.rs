//! Who may reach the server: the networks of `--allow-from` (or, on the node, the network of the
//! interface that holds `--node-ip`), and the NetworkPolicy that admits only them to its port.

use crate::cluster::manifests::{owned_metadata, Object};
use crate::common::interfaces::Local;
use anyhow::{anyhow, bail, Result};
use ipnet::IpNet;
use serde_json::json;
use std::fmt;
use std::net::IpAddr;

/// A network, `ADDRESS/PREFIX`, held by its first address (an `ipnet` network, truncated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(IpNet);

impl Cidr {
    /// The network `addr/prefix` lies in; `None` for a prefix too long for the address.
    pub fn network_of(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        Some(Cidr(IpNet::new(addr, prefix).ok()?.trunc()))
    }

    /// Whether `ip` is in the network, an IPv4-mapped IPv6 address judged as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.0.contains(&ip)
    }

    pub fn is_everything(&self) -> bool {
        self.0.prefix_len() == 0
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// `--allow-from CIDR[,CIDR...]`, each normalised to its network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowFrom(pub Vec<Cidr>);

impl fmt::Display for AllowFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self.0.iter().map(Cidr::to_string).collect();
        f.write_str(&list.join(","))
    }
}

pub fn parse(text: &str) -> Result<AllowFrom> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || anyhow!("invalid network '{part}': write it as ADDRESS/PREFIX, e.g. --allow-from 10.8.0.0/24");
        let cidr = Cidr(part.parse::<IpNet>().map_err(|_| bad())?.trunc());
        if !out.contains(&cidr) {
            out.push(cidr);
        }
    }
    if out.is_empty() {
        bail!("--allow-from names no network: give at least one, e.g. --allow-from 10.8.0.0/24");
    }
    Ok(AllowFrom(out))
}

/// `--allow-from` as given, else the network of the local interface that holds `node_ip`
/// (printed); refuses when neither says who may connect.
pub fn resolve(given: Option<&AllowFrom>, node_ip: Option<IpAddr>) -> Result<AllowFrom> {
    if let Some(given) = given {
        if given.0.iter().any(Cidr::is_everything) {
            eprintln!("warning: --allow-from {given}: every address that reaches the node may use the server, which has no authentication");
        }
        return Ok(given.clone());
    }
    let ask = "say who may reach the server (it has no authentication): --allow-from CIDR, e.g. your WireGuard network --allow-from 10.8.0.0/24 (--allow-from 0.0.0.0/0 opens it to everyone)";
    let Some(ip) = node_ip else { bail!("no --allow-from and no --node-ip: {ask}") };
    let found = local_network(&crate::common::interfaces::addresses(), ip);
    let Some((interface, cidr)) = found else {
        bail!("--node-ip {ip} is not an address of this machine, so its network is unknown here: {ask}");
    };
    eprintln!("allowing connections from {cidr} only (the network of {interface}, which holds --node-ip {ip}); set --allow-from to change it");
    Ok(AllowFrom(vec![cidr]))
}

/// The interface and network of `ip` among this machine's addresses.
fn local_network(addresses: &[Local], ip: IpAddr) -> Option<(String, Cidr)> {
    let found = addresses.iter().find(|a| a.ip == ip)?;
    Some((found.interface.clone(), Cidr::network_of(found.ip, found.prefix)?))
}

/// The NetworkPolicy's name for a release.
pub fn policy_name(release: &str) -> String {
    format!("{release}-allow-from")
}

/// The NetworkPolicy that admits connections to the server's pods on `port` only from `allow`.
pub fn policy(namespace: &str, release: &str, allow: &AllowFrom, port: u16) -> Object {
    let from: Vec<_> = allow.0.iter().map(|c| json!({"ipBlock": {"cidr": c.to_string()}})).collect();
    Object {
        value: json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": owned_metadata(&policy_name(release), namespace, release),
            "spec": {
                "podSelector": {"matchLabels": {
                    "app.kubernetes.io/name": "kubernetes-mcp-server",
                    "app.kubernetes.io/instance": release,
                }},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": from, "ports": [{"protocol": "TCP", "port": port}]}],
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_normalised_and_checked() {
        let a = parse("10.8.0.7/24, 192.168.1.0/24,10.8.0.0/24").unwrap();
        assert_eq!(a.to_string(), "10.8.0.0/24,192.168.1.0/24");
        assert!(a.0[0].contains("10.8.0.200".parse().unwrap()));
        assert!(a.0[0].contains("::ffff:10.8.0.9".parse().unwrap()));
        assert!(!a.0[0].contains("10.8.1.1".parse().unwrap()));
        for bad in ["10.8.0.0", "10.8.0.0/33", "x/24", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("0.0.0.0/0").unwrap().0[0].is_everything());
    }

    #[test]
    fn the_network_of_a_local_address() {
        let local =
            |interface: &str, ip: &str, prefix| Local { interface: interface.into(), ip: ip.parse().unwrap(), prefix };
        let out = [local("lo", "127.0.0.1", 8), local("wg0", "10.8.0.1", 24)];
        let (iface, cidr) = local_network(&out, "10.8.0.1".parse().unwrap()).unwrap();
        assert_eq!((iface.as_str(), cidr.to_string().as_str()), ("wg0", "10.8.0.0/24"));
        assert!(local_network(&out, "10.9.0.1".parse().unwrap()).is_none());
    }
}
