//! How the server runs: its flags (through the chart's `extraArgs`) and its config file's settings,
//! as asked and as read back from a live Deployment.

use serde::Serialize;

/// The toolsets the server knows (`--toolsets`, v0.0.66); it runs `core` and `config` by default.
pub const TOOLSETS: [&str; 8] = ["config", "core", "helm", "kcp", "kiali", "kubevirt", "netobserv", "tekton"];

/// A `--toolsets` list whose every entry is a toolset the server knows (an unknown one would make
/// the server exit at start, in a crash loop).
pub fn toolsets(list: &str) -> anyhow::Result<String> {
    for t in list.split(',').map(str::trim) {
        if !TOOLSETS.contains(&t) {
            anyhow::bail!("unknown toolset '{t}': the server knows {}", TOOLSETS.join(", "));
        }
    }
    Ok(list.to_string())
}

/// How the server runs in the pod: the flags passed through the chart's `extraArgs`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerMode {
    pub port: u16,
    pub log_level: u8,
    pub read_only: bool,
    pub stateless: bool,
    pub toolsets: Option<String>,
    /// Tools the server's config turns off (`disabled_tools`): the credential tools not enabled.
    pub disabled_tools: Vec<String>,
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
            disabled_tools: self.disabled_tools.clone(),
        }
    }

    /// Whether the server runs the `helm` toolset, the only one that needs to read Secrets.
    pub fn helm_toolset(&self) -> bool {
        crate::common::flags::runs_toolset(self.toolsets.as_deref(), "helm")
    }

    /// The mode the server runs with, from its container args and the chart's config.toml: the
    /// config file is read first, then each flag given overrides it (the server's precedence).
    pub fn live(args: &[String], toml: &str) -> ServerMode {
        let file = parse_toml(toml);
        let value = |flag: &str| crate::server::cli_args::value(args, flag);
        let from_file = |key: &str| file.get(key).is_some_and(|v| v == "true");
        let flag_bool = |flag: &str, key: &str| crate::server::cli_args::boolean(args, flag).unwrap_or(from_file(key));
        ServerMode {
            port: value("--port").or(file.get("port").cloned()).and_then(|p| p.parse().ok()).unwrap_or(8080),
            log_level: value("--log-level")
                .or(file.get("log_level").cloned())
                .and_then(|l| l.parse().ok())
                .unwrap_or(0),
            read_only: flag_bool("--read-only", "read_only"),
            stateless: flag_bool("--stateless", "stateless"),
            toolsets: value("--toolsets").or(file.get("toolsets").cloned()),
            disabled_tools: file
                .get("disabled_tools")
                .map(|l| l.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect())
                .unwrap_or_default(),
        }
    }

    /// The credential tools this mode offers (not in `disabled_tools`).
    pub fn credential_tools_on(&self) -> Vec<&'static str> {
        crate::server::credential_tools::names().filter(|t| !self.disabled_tools.iter().any(|d| d == t)).collect()
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
        for on in live.credential_tools_on() {
            if !self.credential_tools_on().contains(&on) {
                parts.push(format!("it offers {on} (not in the config's disabled_tools)"));
            }
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    pub fn describe(&self) -> String {
        let credentials = match self.credential_tools_on().as_slice() {
            [] => format!("{} disabled (no tool hands out a credential)", self.disabled_tools.join(", ")),
            on => format!("{} ENABLED (hands the ServiceAccount's token to whoever reaches the URL)", on.join(", ")),
        };
        let secrets = if self.helm_toolset() {
            "Secrets readable (helm toolset: every Secret in the cluster, tokens included)"
        } else {
            "Secrets denied"
        };
        format!(
            "{}, {}, toolsets {}, {credentials}, {secrets}",
            if self.read_only { "read-only" } else { "write tools enabled" },
            if self.stateless { "stateless" } else { "stateful (SSE sessions)" },
            self.toolsets.as_deref().unwrap_or("default (core,config)")
        )
    }
}

#[cfg(test)]
impl ServerMode {
    /// The mode `up` asks for when given no mode flags.
    pub(crate) fn example() -> ServerMode {
        ServerMode {
            port: 8080,
            log_level: 2,
            read_only: true,
            stateless: true,
            toolsets: None,
            disabled_tools: crate::server::credential_tools::disabled_tools(&[]),
        }
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
    /// Tools the server does not offer, by name (the credential tools not asked for).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub disabled_tools: Vec<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toolsets_are_ones_the_server_knows() {
        assert_eq!(toolsets("core, helm").unwrap(), "core, helm");
        assert!(toolsets("bogus")
            .unwrap_err()
            .to_string()
            .starts_with("unknown toolset 'bogus': the server knows config, core"));
        assert!(toolsets("core,,config").is_err());
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
                toolsets: Some("core,helm".into()),
                disabled_tools: Vec::new(),
            }
        );
        let flags =
            ServerMode::live(&["--port".into(), "9090".into(), "--config".into(), "f".into()], "port = \"8080\"\n");
        assert_eq!(flags.port, 9090);
        assert!(!flags.read_only && !flags.stateless);
        let asked = ServerMode {
            port: 9090,
            log_level: 2,
            read_only: true,
            stateless: true,
            toolsets: None,
            disabled_tools: crate::server::credential_tools::disabled_tools(&[]),
        };
        let why = asked.difference(&flags).unwrap();
        assert!(why.contains("not read-only") && why.contains("not stateless"), "{why}");
        assert!(why.contains("it offers configuration_view"), "{why}");
        assert_eq!(asked.difference(&ServerMode { log_level: 0, ..asked.clone() }), None);
    }

    #[test]
    fn mode_round_trips_through_args() {
        for m in [
            ServerMode { disabled_tools: Vec::new(), ..ServerMode::example() },
            ServerMode {
                read_only: false,
                stateless: false,
                toolsets: Some("core,helm".into()),
                log_level: 5,
                port: 9000,
                disabled_tools: Vec::new(),
            },
        ] {
            assert_eq!(ServerMode::live(&m.args(), ""), m);
        }
    }
}
