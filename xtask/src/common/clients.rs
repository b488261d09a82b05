//! What each MCP client needs to reach the server, in its own format: Claude Code's command,
//! VS Code's `.vscode/mcp.json` (top-level `servers`), Cursor's `mcp.json` (top-level
//! `mcpServers`) and MCP Inspector (transport Streamable HTTP). `--client NAME` prints one in
//! full; without it, one line each.

use serde_json::json;

/// The server's name in every client's configuration.
const NAME: &str = "kubernetes";

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    Claude,
    Vscode,
    Cursor,
    Inspector,
}

/// `--client` (up, dev, status).
#[derive(clap::Args, Debug, Clone, Copy)]
pub(crate) struct ClientArgs {
    /// Print the setup of this MCP client in full [default: a line for each]
    #[arg(long, value_name = "claude|vscode|cursor|inspector", value_enum)]
    pub(crate) client: Option<Client>,
}

impl Client {
    /// The name `--client` takes.
    pub(crate) fn flag_value(self) -> &'static str {
        match self {
            Client::Claude => "claude",
            Client::Vscode => "vscode",
            Client::Cursor => "cursor",
            Client::Inspector => "inspector",
        }
    }
}

const ALL: [Client; 4] = [Client::Claude, Client::Vscode, Client::Cursor, Client::Inspector];

impl Client {
    fn title(self) -> &'static str {
        match self {
            Client::Claude => "Claude Code",
            Client::Vscode => "VS Code (.vscode/mcp.json)",
            Client::Cursor => "Cursor (~/.cursor/mcp.json, or .cursor/mcp.json in a project)",
            Client::Inspector => "MCP Inspector",
        }
    }

    fn config(self, url: &str) -> Option<serde_json::Value> {
        match self {
            Client::Vscode => Some(json!({"servers": {NAME: {"type": "http", "url": url}}})),
            Client::Cursor => Some(json!({"mcpServers": {NAME: {"url": url}}})),
            Client::Claude | Client::Inspector => None,
        }
    }

    fn command(self, url: &str) -> Option<String> {
        match self {
            Client::Claude => Some(format!("claude mcp add --transport http {NAME} {url}")),
            Client::Inspector => {
                Some(format!("npx @modelcontextprotocol/inspector --cli {url} --transport http --method tools/list"))
            }
            Client::Vscode | Client::Cursor => None,
        }
    }
}

/// The lines to print after `MCP URL: ...`.
pub fn setup(url: &str, client: Option<Client>) -> String {
    match client {
        Some(c) => {
            let body = match (c.config(url), c.command(url)) {
                (Some(v), _) => serde_json::to_string_pretty(&v).unwrap_or_default(),
                (None, Some(cmd)) if c == Client::Inspector => {
                    format!("{cmd}\n(or its web UI: npx @modelcontextprotocol/inspector, transport Streamable HTTP, URL {url})")
                }
                (None, Some(cmd)) => cmd,
                (None, None) => String::new(),
            };
            format!("MCP client configuration for {}:\n{body}", c.title())
        }
        None => {
            let mut out =
                "MCP client configuration (one client in full: --client claude|vscode|cursor|inspector):".to_string();
            for c in ALL {
                let what = c.config(url).map(|v| v.to_string()).or_else(|| c.command(url)).unwrap_or_default();
                out.push_str(&format!("\n  {}: {what}", c.title()));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://10.8.0.1:31234/mcp";

    fn json_after(text: &str, title: &str) -> serde_json::Value {
        let line = text.lines().find(|l| l.trim_start().starts_with(title)).unwrap();
        serde_json::from_str(&line[line.find('{').unwrap()..]).unwrap()
    }

    #[test]
    fn flag_values_are_the_names_clap_takes() {
        for c in ALL {
            let clap_name = clap::ValueEnum::to_possible_value(&c).unwrap().get_name().to_string();
            assert_eq!(c.flag_value(), clap_name);
        }
    }

    #[test]
    fn each_client_gets_the_shape_it_reads() {
        let all = setup(URL, None);
        // VS Code reads `servers`, each with a type; an `mcpServers` key there is ignored.
        let vscode = json_after(&all, "VS Code");
        assert_eq!(vscode["servers"][NAME]["type"], "http");
        assert_eq!(vscode["servers"][NAME]["url"], URL);
        assert!(vscode.get("mcpServers").is_none());
        // Cursor reads `mcpServers`, a remote server by its `url`.
        assert_eq!(json_after(&all, "Cursor")["mcpServers"][NAME]["url"], URL);
        // Claude Code: `claude mcp add --transport http NAME URL`.
        let claude = all.lines().find(|l| l.trim_start().starts_with("Claude Code")).unwrap();
        let words: Vec<&str> = claude.split_whitespace().skip(2).collect();
        assert_eq!(words, ["claude", "mcp", "add", "--transport", "http", NAME, URL]);
        let inspector = all.lines().find(|l| l.contains("MCP Inspector")).unwrap();
        assert!(inspector.contains(&format!("--cli {URL} --transport http")), "{inspector}");

        let full: serde_json::Value =
            serde_json::from_str(setup(URL, Some(Client::Vscode)).split_once(":\n").unwrap().1).unwrap();
        assert_eq!(full, vscode);
        let cursor = setup(URL, Some(Client::Cursor));
        assert!(cursor.starts_with("MCP client configuration for Cursor"), "{cursor}");
        assert!(setup(URL, Some(Client::Inspector)).contains("transport Streamable HTTP"));
        assert_eq!(
            setup(URL, Some(Client::Claude)).lines().nth(1).unwrap(),
            format!("claude mcp add --transport http {NAME} {URL}")
        );
    }
}
