//! A small MCP client over streamable HTTP: `initialize`, `notifications/initialized`,
//! `tools/list`, the standalone SSE stream (`GET`), and the health endpoint. Kept by hand rather
//! than the official SDK (`rmcp`, which the tests use as an agent's client): `verify`'s checks are
//! about the HTTP exchange itself (the 202 for `notifications/initialized`, whether the server
//! issues an `Mcp-Session-Id`, GET's 405 or 409 that tells stateless from stateful), which `rmcp`
//! handles inside its transport and does not show.

use anyhow::{anyhow, bail, Context, Result};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use serde_json::{json, Value};
use std::time::Duration;

/// The newest protocol with `initialize`; a server that lacks it answers with the one it has.
pub(crate) const PROTOCOL_VERSION: &str = "2025-11-25";

pub struct Session {
    http: reqwest::Client,
    pub(crate) url: String,
    pub session_id: Option<String>,
    pub protocol_version: String,
    pub server_name: String,
    pub server_version: String,
    next_id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    pub name: String,
    /// `annotations.readOnlyHint == true`
    pub read_only: bool,
}

fn client() -> Result<reqwest::Client> {
    client_with(Duration::from_secs(10), Duration::from_secs(30))
}

fn client_with(connect: Duration, total: Duration) -> Result<reqwest::Client> {
    crate::common::tls::init();
    reqwest::Client::builder().connect_timeout(connect).timeout(total).build().context("cannot build the HTTP client")
}

/// `initialize`'s parameters: the newest protocol, no capabilities, this tool as the client.
fn initialize_params() -> Value {
    json!({"protocolVersion": PROTOCOL_VERSION, "capabilities": {}, "clientInfo": {"name": "kmcp-xtask", "version": env!("CARGO_PKG_VERSION")}})
}

/// The JSON-RPC message with `id` in a response body that is JSON or an SSE stream of messages.
fn find_reply(content_type: &str, body: &str, id: u64) -> Result<Value> {
    let messages: Vec<Value> = if content_type.starts_with("text/event-stream") {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str(d.trim()).ok())
            .collect()
    } else {
        vec![serde_json::from_str(body).map_err(|e| anyhow!("the server's reply is not JSON: {e}"))?]
    };
    let reply =
        messages.into_iter().find(|m| m["id"] == json!(id)).ok_or_else(|| anyhow!("no reply to request {id}"))?;
    if let Some(err) = reply.get("error") {
        bail!("the server answered request {id} with an error: {err}");
    }
    Ok(reply["result"].clone())
}

impl Session {
    /// `initialize`: negotiates the protocol version and learns the server's name and version.
    pub async fn initialize(url: &str) -> Result<Session> {
        let mut s = Session {
            http: client()?,
            url: url.to_string(),
            session_id: None,
            protocol_version: PROTOCOL_VERSION.into(),
            server_name: String::new(),
            server_version: String::new(),
            next_id: 1,
        };
        let result = s.request("initialize", initialize_params()).await?;
        s.protocol_version = result["protocolVersion"].as_str().unwrap_or_default().to_string();
        if s.protocol_version.is_empty() {
            bail!("initialize: the server negotiated no protocol version");
        }
        s.server_name = result["serverInfo"]["name"].as_str().unwrap_or_default().to_string();
        s.server_version = result["serverInfo"]["version"].as_str().unwrap_or_default().to_string();
        Ok(s)
    }

    fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(ACCEPT, HeaderValue::from_static("application/json, text/event-stream"));
        if let Ok(v) = HeaderValue::from_str(&self.protocol_version) {
            h.insert("Mcp-Protocol-Version", v);
        }
        if let Some(id) = self.session_id.as_deref().and_then(|i| HeaderValue::from_str(i).ok()) {
            h.insert("Mcp-Session-Id", id);
        }
        h
    }

    async fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let resp =
            self.http.post(&self.url).headers(self.headers()).json(&body).send().await.map_err(|e| {
                anyhow!("{method}: cannot reach {}: {}", self.url, crate::cluster::client::root_cause(&e))
            })?;
        let status = resp.status();
        if let Some(sid) = resp.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()) {
            self.session_id = Some(sid.to_string());
        }
        let content_type =
            resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{method}: HTTP {status}: {}", text.lines().next().unwrap_or_default());
        }
        find_reply(&content_type, &text, id).with_context(|| format!("{method} at {}", self.url))
    }

    /// `notifications/initialized`; returns the HTTP status (202 expected).
    pub async fn initialized(&self) -> Result<u16> {
        let body = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let resp = self.http.post(&self.url).headers(self.headers()).json(&body).send().await?;
        Ok(resp.status().as_u16())
    }

    pub async fn list_tools(&mut self) -> Result<Vec<Tool>> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let result = self.request("tools/list", params).await?;
            for t in result["tools"].as_array().cloned().unwrap_or_default() {
                tools.push(Tool {
                    name: t["name"].as_str().unwrap_or_default().to_string(),
                    read_only: t["annotations"]["readOnlyHint"].as_bool() == Some(true),
                });
            }
            match result["nextCursor"].as_str() {
                Some(c) if !c.is_empty() => cursor = Some(c.to_string()),
                _ => return Ok(tools),
            }
        }
    }

    /// `tools/call`: the tool's result (`isError` and `content`), or the protocol error.
    pub async fn call_tool(&mut self, name: &str, arguments: Value) -> Result<Value> {
        self.request("tools/call", json!({"name": name, "arguments": arguments})).await
    }

    /// Opens the standalone SSE stream (`GET`). Returns the status and, on 200, the open response:
    /// the stream stays open while it is held.
    pub async fn open_stream(&self) -> Result<(u16, Option<reqwest::Response>)> {
        let mut headers = self.headers();
        headers.remove(CONTENT_TYPE);
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        // Not `self.http`: its total timeout would cut a stream the caller holds open.
        let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build()?;
        let resp = http.get(&self.url).headers(headers).send().await?;
        let status = resp.status().as_u16();
        Ok((status, (status == 200).then_some(resp)))
    }
}

/// `initialize` sent with the given `Host` and `Origin` headers, as a page the browser loaded from
/// another name would send it: the HTTP status the server answers.
pub(crate) async fn initialize_as(url: &str, host: &str, origin: &str) -> Result<u16> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": initialize_params()});
    let resp = client()?
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json, text/event-stream")
        .header(reqwest::header::HOST, host)
        .header(reqwest::header::ORIGIN, origin)
        .json(&body)
        .send()
        .await
        .map_err(|e| anyhow!("cannot reach {url}: {}", crate::cluster::client::root_cause(&e)))?;
    Ok(resp.status().as_u16())
}

/// `GET <base>/healthz`: the HTTP status. A connection refused or unanswered is tried again for up
/// to 20 s: kube-proxy programs a new NodePort, and moves it to a new pod (with
/// `externalTrafficPolicy: Local`, dropping packets until it has), a moment after the pod is ready.
pub(crate) async fn health(mcp_url: &str) -> Result<u16> {
    let base = mcp_url.trim_end_matches('/').trim_end_matches("/mcp");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let client = client_with(Duration::from_secs(2), Duration::from_secs(10))?;
    let mut said = false;
    loop {
        match client.get(format!("{base}/healthz")).send().await {
            Ok(resp) => return Ok(resp.status().as_u16()),
            Err(e) => {
                let cause = crate::cluster::client::root_cause(&e);
                let not_yet = e.is_connect() || e.is_timeout() || cause.contains("Connection refused");
                if !not_yet || std::time::Instant::now() >= deadline {
                    bail!("cannot reach {base}/healthz: {cause}");
                }
                if !said {
                    eprintln!("{base} does not answer yet ({cause}); waiting up to 20 s for kube-proxy to program the NodePort");
                    said = true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_from_json_and_sse() {
        let sse = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"ok\":true}}\n\n";
        assert_eq!(find_reply("text/event-stream", sse, 1).unwrap(), json!({"ok": true}));
        assert!(find_reply("text/event-stream", sse, 2).is_err());
        let err = r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"nope"}}"#;
        assert!(find_reply("application/json", err, 3).unwrap_err().to_string().contains("nope"));
    }
}
