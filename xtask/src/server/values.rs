//! The chart's values as typed Rust, merged over `deploy/values.yaml`.

use crate::oci::reference::ImageRef;
use crate::server::guard::{self, Guard};
use crate::server::mode::{Config, ServerMode};
use anyhow::{Context, Result};
use serde::Serialize;
use serde_norway::Value;

pub const BASE_VALUES: &str = include_str!(concat!(env!("OUT_DIR"), "/values.yaml"));

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Values {
    pub image: Image,
    pub service: Service,
    pub service_account: ServiceAccount,
    pub rbac: Rbac,
    pub ingress: Ingress,
    pub extra_args: Vec<String>,
    pub config: Config,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<Named>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_containers: Vec<serde_json::Value>,
    /// On a cluster of several nodes, the node that answers at the URL (cluster/placement.rs).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub node_selector: std::collections::BTreeMap<String, String>,
}

/// A reference by name (`imagePullSecrets` entries).
#[derive(Serialize)]
pub struct Named {
    pub name: String,
}

#[derive(Serialize)]
pub struct Image {
    pub registry: String,
    pub repository: String,
    /// A tag, or `sha256:...` (the chart then renders `registry/repository@sha256:...`).
    pub version: String,
}

#[derive(Serialize)]
pub struct Service {
    #[serde(rename = "type")]
    pub kind: String,
    pub port: u16,
    /// The container port the Service leads to: the guard's, or the server's own (`http`).
    #[serde(rename = "targetPort")]
    pub target_port: String,
}

#[derive(Serialize)]
pub struct ServiceAccount {
    pub create: bool,
    pub name: String,
}

#[derive(Serialize)]
pub struct Rbac {
    pub create: bool,
}

#[derive(Serialize)]
pub struct Ingress {
    pub enabled: bool,
}

impl Values {
    /// `image` must carry a digest: deploys are pinned by digest. With a guard, the Service leads
    /// to it, and it to the server.
    pub fn new(image: &ImageRef, service_account: &str, mode: &ServerMode, guard: Option<&Guard>) -> Values {
        let version = image.digest.clone().or_else(|| image.tag.clone()).unwrap_or_else(|| "latest".into());
        Values {
            image: Image { registry: image.registry.clone(), repository: image.repository.clone(), version },
            service: Service {
                kind: "NodePort".into(),
                port: mode.port,
                target_port: if guard.is_some() { guard::PORT_NAME } else { "http" }.into(),
            },
            service_account: ServiceAccount { create: false, name: service_account.into() },
            rbac: Rbac { create: false },
            ingress: Ingress { enabled: false },
            extra_args: mode.args(),
            config: mode.config(),
            image_pull_secrets: Vec::new(),
            extra_containers: guard.map(|g| g.container(mode.port)).into_iter().collect(),
            node_selector: Default::default(),
        }
    }

    /// What goes to helm as `--set` beside the values file: settings that must stay integers.
    pub fn set_args(&self) -> Vec<String> {
        vec!["--set".into(), format!("config.log_level={}", self.config.log_level)]
    }

    /// The full values file: these values merged over `deploy/values.yaml`.
    pub fn render(&self) -> Result<String> {
        let mut base: Value = serde_norway::from_str(BASE_VALUES).context("deploy/values.yaml is not valid YAML")?;
        merge(&mut base, serde_norway::to_value(self)?);
        Ok(serde_norway::to_string(&base)?)
    }
}

fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode() -> ServerMode {
        ServerMode::example()
    }

    #[test]
    fn values_pin_digest_and_keep_ports_equal() {
        let d = format!("sha256:{}", "b".repeat(64));
        let image = ImageRef::parse(&format!("ghcr.io/alice/kubernetes-mcp-server@{d}")).unwrap();
        let yaml =
            Values::new(&image, "kubernetes-mcp-server", &ServerMode { port: 8686, ..mode() }, None).render().unwrap();
        let v: Value = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(v["image"]["registry"], Value::from("ghcr.io"));
        assert_eq!(v["image"]["repository"], Value::from("alice/kubernetes-mcp-server"));
        assert_eq!(v["image"]["version"], Value::from(d.as_str()));
        assert_eq!(v["image"]["pullPolicy"], Value::from("IfNotPresent"), "base values survive the merge");
        assert_eq!(v["service"]["type"], Value::from("NodePort"));
        assert_eq!(v["service"]["port"], Value::from(8686));
        assert_eq!(v["service"]["targetPort"], Value::from("http"));
        assert_eq!(v["serviceAccount"]["create"], Value::from(false));
        assert_eq!(v["serviceAccount"]["name"], Value::from("kubernetes-mcp-server"));
        assert_eq!(v["rbac"]["create"], Value::from(false));
        assert_eq!(v["ingress"]["enabled"], Value::from(false));
        let args: Vec<String> = serde_norway::from_value(v["extraArgs"].clone()).unwrap();
        assert_eq!(args, ["--port", "8686", "--log-level", "2", "--read-only", "--stateless"]);
        assert_eq!(v["config"]["port"], Value::from("8686"));
        assert_eq!(v["config"]["read_only"], Value::from(true));
        assert_eq!(v["config"]["stateless"], Value::from(true));
        assert!(v["config"].get("log_level").is_none(), "an integer only through --set");
        assert!(v["config"].get("toolsets").is_none());
        assert_eq!(v["config"]["disabled_tools"], serde_norway::from_str::<Value>("[configuration_view]").unwrap());
        assert!(v.get("extraContainers").is_none());
    }

    #[test]
    fn with_the_guard_the_service_leads_to_it() {
        let image = ImageRef::parse(&format!("ghcr.io/alice/kubernetes-mcp-server@sha256:{}", "b".repeat(64))).unwrap();
        let g = Guard { image: image.clone(), node_ip: None, hosts: vec![] };
        let yaml = Values::new(&image, "sa", &mode(), Some(&g)).render().unwrap();
        let v: Value = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(v["service"]["targetPort"], Value::from("guard"));
        assert_eq!(v["extraContainers"][0]["name"], Value::from("kmcp-guard"));
    }
}
