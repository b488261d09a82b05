//! Talking to the deployed server as an agent would: `tools/call` through the official MCP SDK
//! (`rmcp`), and the same through MCP Inspector's CLI (npm `@modelcontextprotocol/inspector --cli`):
//! two clients nobody here wrote.

use serde_json::Value;

/// Calls `tool` with `arguments` as an agent would, through the official MCP SDK (`rmcp`):
/// `initialize` at the newest protocol that has it (2025-11-25), `notifications/initialized`,
/// `tools/call`. The tool's result (`content`, `isError`) as JSON.
pub async fn call_tool(url: &str, tool: &str, arguments: Value) -> Value {
    use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, ProtocolVersion};
    use rmcp::transport::{streamable_http_client::StreamableHttpClientTransportConfig, StreamableHttpClientTransport};
    use rmcp::ServiceExt;
    xtask::common::tls::init();
    let config = ClientConfig::new(ClientCapabilities::default(), Implementation::new("kmcp-xtask-tests", "0"))
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE);
    let transport = StreamableHttpClientTransport::with_client(
        reqwest::Client::new(),
        StreamableHttpClientTransportConfig::with_uri(url),
    );
    let client = config.serve(transport).await.unwrap_or_else(|e| panic!("MCP initialize at {url}: {e}"));
    let negotiated = client.peer_info().map(|i| i.protocol_version.to_string()).unwrap_or_default();
    assert_eq!(negotiated, "2025-11-25", "the protocol the server and the SDK agree on");
    let arguments = arguments.as_object().cloned().unwrap_or_default();
    let result = client
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(arguments))
        .await
        .unwrap_or_else(|e| panic!("tools/call {tool}: {e}"));
    let _ = client.cancel().await;
    serde_json::to_value(result).unwrap()
}

/// The text of a tool result.
pub fn text(result: &Value) -> String {
    result["content"].as_array().into_iter().flatten().filter_map(|c| c["text"].as_str()).collect::<Vec<_>>().join("\n")
}

/// Runs MCP Inspector's CLI against `url` with `args` (e.g. `--method tools/list`); its JSON output.
pub fn inspector(url: &str, args: &[&str]) -> Value {
    let bin = std::env::var_os("KMCP_INSPECTOR").expect("KMCP_INSPECTOR: run the tests with `cargo xtask test`");
    // Its own HOME: Inspector keeps its settings there.
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin)
        .args(["--cli", url, "--transport", "http"])
        .args(args)
        .env("HOME", home.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let first_json = stdout
        .find('{')
        .unwrap_or_else(|| panic!("inspector printed no JSON: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    let mut stream = serde_json::Deserializer::from_str(&stdout[first_json..]).into_iter::<Value>();
    stream.next().unwrap().unwrap()
}
