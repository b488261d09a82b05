//! Talking to the deployed server as an agent would: `tools/call` over streamable HTTP, and the
//! same through MCP Inspector's CLI (npm `@modelcontextprotocol/inspector --cli`).

use serde_json::{json, Value};

/// Calls `tool` with `arguments`; the JSON-RPC result (`content`, `isError`).
pub async fn call_tool(url: &str, tool: &str, arguments: Value) -> Value {
    let session = xtask::server::mcp::Session::initialize(url).await.unwrap();
    let client = reqwest::Client::new();
    let mut request = client
        .post(url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .header("Mcp-Protocol-Version", xtask::server::mcp::PROTOCOL_VERSION);
    if let Some(id) = &session.session_id {
        request = request.header("Mcp-Session-Id", id);
    }
    let body =
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": arguments}});
    let text = request.json(&body).send().await.unwrap().text().await.unwrap();
    let message = text.lines().rev().find_map(|l| l.strip_prefix("data:")).map(str::trim).unwrap_or(text.trim());
    let v: Value = serde_json::from_str(message).unwrap_or_else(|_| panic!("not JSON-RPC: {text}"));
    v["result"].clone()
}

/// The text of a tool result.
pub fn text(result: &Value) -> String {
    result["content"].as_array().into_iter().flatten().filter_map(|c| c["text"].as_str()).collect::<Vec<_>>().join("\n")
}

/// Runs MCP Inspector's CLI against `url` with `args` (e.g. `--method tools/list`); its JSON output.
pub fn inspector(url: &str, args: &[&str]) -> Value {
    let bin = std::env::var_os("KMCP_INSPECTOR").expect("KMCP_INSPECTOR: run the tests with `cargo xtask test`");
    let out = std::process::Command::new(bin).args(["--cli", url, "--transport", "http"]).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let first_json = stdout
        .find('{')
        .unwrap_or_else(|| panic!("inspector printed no JSON: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    let mut stream = serde_json::Deserializer::from_str(&stdout[first_json..]).into_iter::<Value>();
    stream.next().unwrap().unwrap()
}
