//! The chart's values as typed Rust, merged over `deploy/values.yaml`, and the server's flags.

use crate::reference::ImageRef;
use anyhow::{Context, Result};
use serde::Serialize;
use serde_norway::Value;

pub const BASE_VALUES: &str = include_str!("../../deploy/values.yaml");

/// How the server runs in the pod: the flags passed through the chart's `extraArgs`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerMode {
    pub port: u16,
    pub log_level: u8,
    pub read_only: bool,
    pub stateless: bool,
    pub toolsets: Option<String>,
}

impl ServerMode {
    /// The server's command-line flags (after the chart's own `--config FILE`).
    pub fn args(&self) -> Vec<String> {
        let mut args =
            vec!["--port".to_string(), self.port.to_string(), "--log-level".into(), self.log_level.to_string()];
        if self.read_only {
            args.push("--read-only".into());
        }
        if self.stateless {
            args.push("--stateless".into());
        }
        if let Some(t) = &self.toolsets {
            args.extend(["--toolsets".to_string(), t.clone()]);
        }
        args
    }

    /// The chart's `config:` map, rendered into the TOML the server reads and reloads on SIGHUP.
    pub fn config(&self) -> Config {
        Config {
            port: self.port.to_string(),
            log_level: self.log_level,
            read_only: self.read_only,
            stateless: self.stateless,
            toolsets: self.toolsets.as_ref().map(|t| t.split(',').map(|s| s.trim().to_string()).collect()),
            denied_resources: if self.helm_toolset() { Vec::new() } else { vec![Gvk::SECRET] },
        }
    }

    /// Whether the server runs the `helm` toolset, the only one that needs to read Secrets.
    pub fn helm_toolset(&self) -> bool {
        crate::flags::runs_toolset(self.toolsets.as_deref(), "helm")
    }

    /// The mode the server runs with, from its container args and the chart's config.toml: the
    /// config file is read first, then each flag given overrides it (the server's precedence).
    pub fn live(args: &[String], toml: &str) -> ServerMode {
        let file = parse_toml(toml);
        let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
        let flag_bool = |flag: &str| args.iter().any(|a| a == flag || a == &format!("{flag}=true"));
        ServerMode {
            port: value("--port").or(file.get("port").cloned()).and_then(|p| p.parse().ok()).unwrap_or(8080),
            log_level: value("--log-level")
                .or(file.get("log_level").cloned())
                .and_then(|l| l.parse().ok())
                .unwrap_or(0),
            read_only: flag_bool("--read-only") || file.get("read_only").is_some_and(|v| v == "true"),
            stateless: flag_bool("--stateless") || file.get("stateless").is_some_and(|v| v == "true"),
            toolsets: value("--toolsets").or(file.get("toolsets").cloned()),
        }
    }

    /// What differs between the asked mode and the live one, in words; None when they agree.
    pub fn difference(&self, live: &ServerMode) -> Option<String> {
        let mut parts = Vec::new();
        if self.read_only && !live.read_only {
            parts.push(
                "it is not read-only (neither --read-only in its args nor read_only = true in its config.toml)"
                    .to_string(),
            );
        }
        if !self.read_only && live.read_only {
            parts.push("it is read-only, not with write tools".to_string());
        }
        if self.stateless != live.stateless {
            parts.push(if self.stateless { "it is not stateless".to_string() } else { "it is stateless".to_string() });
        }
        if self.port != live.port {
            parts.push(format!("it listens on port {}, not {}", live.port, self.port));
        }
        if self.toolsets.is_some() && self.toolsets != live.toolsets {
            parts.push(format!("its toolsets are {}", live.toolsets.as_deref().unwrap_or("the default")));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    pub fn describe(&self) -> String {
        format!(
            "{}, {}, toolsets {}",
            if self.read_only { "read-only" } else { "write tools enabled" },
            if self.stateless { "stateless" } else { "stateful (SSE sessions)" },
            self.toolsets.as_deref().unwrap_or("default (core,config)")
        )
    }
}

/// The server settings under the chart's `config:` (TOML keys). `log_level` is not in the values
/// file: helm reads numbers from YAML as floats and its `toToml` writes `2.0`, which the server
/// rejects; it goes to helm as `--set config.log_level=N` (an integer), see `Values::set_args`.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Config {
    pub port: String,
    #[serde(skip)]
    pub log_level: u8,
    pub read_only: bool,
    pub stateless: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toolsets: Option<Vec<String>>,
    /// Kinds the server's own API client refuses for every tool (v1 Secret unless a Helm toolset
    /// needs it), so a broader role bound by hand does not open them either.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub denied_resources: Vec<Gvk>,
}

/// A `{group, version, kind}` entry of the server's `denied_resources`.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Gvk {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
}

impl Gvk {
    pub const SECRET: Gvk = Gvk { group: "", version: "v1", kind: "Secret" };
}

/// The top-level `key = value` lines of a TOML file helm rendered: strings unquoted, arrays
/// joined with commas.
fn parse_toml(text: &str) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            break;
        }
        let Some((k, v)) = line.split_once('=') else { continue };
        let v = v.trim();
        let v = if let Some(inner) = v.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            inner.split(',').map(|s| s.trim().trim_matches('"')).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(",")
        } else {
            v.trim_matches('"').to_string()
        };
        out.insert(k.trim().to_string(), v);
    }
    out
}

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
    /// `image` must carry a digest: deploys are pinned by digest.
    pub fn new(image: &ImageRef, service_account: &str, mode: &ServerMode) -> Values {
        let version = image.digest.clone().or_else(|| image.tag.clone()).unwrap_or_else(|| "latest".into());
        Values {
            image: Image { registry: image.registry.clone(), repository: image.repository.clone(), version },
            service: Service { kind: "NodePort".into(), port: mode.port },
            service_account: ServiceAccount { create: false, name: service_account.into() },
            rbac: Rbac { create: false },
            ingress: Ingress { enabled: false },
            extra_args: mode.args(),
            config: mode.config(),
            image_pull_secrets: Vec::new(),
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
        ServerMode { port: 8080, log_level: 2, read_only: true, stateless: true, toolsets: None }
    }

    #[test]
    fn values_pin_digest_and_keep_ports_equal() {
        let d = format!("sha256:{}", "b".repeat(64));
        let image = ImageRef::parse(&format!("ghcr.io/alice/kubernetes-mcp-server@{d}")).unwrap();
        let yaml = Values::new(&image, "kubernetes-mcp-server", &ServerMode { port: 8686, ..mode() }).render().unwrap();
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
    }

    #[test]
    fn the_live_mode_takes_flags_over_the_config_file() {
        let toml =
            "log_level = 2\nport = \"8080\"\nread_only = true\nstateless = true\ntoolsets = [\"core\", \"helm\"]\n";
        let config_only = ServerMode::live(&["--config".into(), "/etc/x.toml".into()], toml);
        assert_eq!(
            config_only,
            ServerMode {
                port: 8080,
                log_level: 2,
                read_only: true,
                stateless: true,
                toolsets: Some("core,helm".into())
            }
        );
        let flags =
            ServerMode::live(&["--port".into(), "9090".into(), "--config".into(), "f".into()], "port = \"8080\"\n");
        assert_eq!(flags.port, 9090);
        assert!(!flags.read_only && !flags.stateless);
        let asked = ServerMode { port: 9090, log_level: 2, read_only: true, stateless: true, toolsets: None };
        let why = asked.difference(&flags).unwrap();
        assert!(why.contains("not read-only") && why.contains("not stateless"), "{why}");
        assert_eq!(asked.difference(&ServerMode { log_level: 0, ..asked.clone() }), None);
    }

    #[test]
    fn mode_round_trips_through_args() {
        for m in [
            mode(),
            ServerMode {
                read_only: false,
                stateless: false,
                toolsets: Some("core,helm".into()),
                log_level: 5,
                port: 9000,
            },
        ] {
            assert_eq!(ServerMode::live(&m.args(), ""), m);
        }
    }
}
