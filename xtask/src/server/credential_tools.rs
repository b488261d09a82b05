//! The server's tools that hand out a credential, disabled by default (`disabled_tools` in its
//! config) unless `up --enable-tool NAME` asks for one.

/// The tools that hand out a credential, each with what it returns: disabled in the server's
/// config (`disabled_tools`) unless `up --enable-tool NAME` asks for one. Read from the server's
/// tools at v0.0.66 (toolsets config, core, helm); the list of what was checked is in
/// docs/security.md.
pub const CREDENTIAL_TOOLS: [(&str, &str); 1] =
    [("configuration_view", "the server's kubeconfig, with the ServiceAccount's bearer token")];

/// The names of [`CREDENTIAL_TOOLS`].
pub fn names() -> impl Iterator<Item = &'static str> {
    CREDENTIAL_TOOLS.iter().map(|(t, _)| *t)
}

/// `--enable-tool`: a tool of [`CREDENTIAL_TOOLS`] (every other tool is on by its toolset).
pub fn credential_tool(name: &str) -> anyhow::Result<String> {
    let name = name.trim();
    if names().any(|t| t == name) {
        return Ok(name.to_string());
    }
    let known: Vec<&str> = names().collect();
    anyhow::bail!(
        "--enable-tool {name}: only a tool disabled by default can be enabled ({}); other tools come with their --toolsets",
        known.join(", ")
    )
}

/// The credential tools left disabled when `enabled` were asked for by name.
pub fn disabled_tools(enabled: &[String]) -> Vec<String> {
    names().filter(|t| !enabled.iter().any(|e| e == t)).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_tools_are_off_unless_named() {
        assert_eq!(disabled_tools(&[]), ["configuration_view"]);
        assert!(disabled_tools(&["configuration_view".into()]).is_empty());
        assert_eq!(credential_tool("configuration_view").unwrap(), "configuration_view");
        let refused = credential_tool("pods_list").unwrap_err().to_string();
        assert!(refused.starts_with("--enable-tool pods_list: only a tool disabled by default"), "{refused}");
        use crate::server::mode::ServerMode;
        let toml = "port = \"8080\"\ndisabled_tools = [\"configuration_view\"]\n";
        let live = ServerMode::live(&[], toml);
        assert_eq!(live.disabled_tools, ["configuration_view"]);
        assert!(live.credential_tools_on().is_empty());
        assert!(live.describe().contains("configuration_view disabled"), "{}", live.describe());
        let open = ServerMode::live(&[], "port = \"8080\"\n");
        assert!(open.describe().contains("configuration_view ENABLED"), "{}", open.describe());
    }
}
