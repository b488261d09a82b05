//! The Host/Origin guard (`guard/`) in front of the real server binary, on loopback: what it lets
//! through arrives whole (SSE answers under load included: a guard that cut one short would break
//! a client at random), and what a rebound page sends is refused.

use super::support::registry::free_port;
use super::support::server::{binary, guard_binary};
use super::support::KillOnDrop;
use std::process::{Command, Stdio};

fn listening(port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn the_guard_passes_whole_answers_for_its_address_and_refuses_others() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\nusers: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n").unwrap();
    let (server_port, guard_port) = (free_port(), free_port());
    let spawn = |cmd: &mut Command| KillOnDrop(cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    let _server = spawn(Command::new(binary()).env("KUBECONFIG", &kubeconfig).env("HOME", dir.path()).args([
        "--port",
        &server_port.to_string(),
        "--stateless",
        "--read-only",
    ]));
    let _guard = spawn(Command::new(guard_binary()).args([
        format!("--listen=127.0.0.1:{guard_port}"),
        format!("--upstream=127.0.0.1:{server_port}"),
        "--allow-host=10.44.0.1,node.wg".into(),
    ]));
    listening(server_port);
    listening(guard_port);
    let url = format!("http://127.0.0.1:{guard_port}/mcp");
    let list = serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}});
    let post = |client: &reqwest::Client, host: &str, origin: Option<&str>| {
        let mut req = client
            .post(&url)
            .header("Host", host)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-06-18")
            .json(&list);
        if let Some(o) = origin {
            req = req.header("Origin", o);
        }
        req.send()
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    super::support::block_on(async {
        let client = reqwest::Client::new();
        let mut answers = Vec::new();
        for round in 0..25 {
            let batch = (0..8).map(|i| {
                let host = if (round + i) % 2 == 0 { "10.44.0.1:31000" } else { "NODE.wg:31000" };
                async { post(&client, host, None).await.unwrap().text().await }
            });
            answers.extend(futures::future::join_all(batch).await);
        }
        let whole = answers.iter().filter(|a| {
            a.as_ref().is_ok_and(|t| {
                t.lines().filter_map(|l| l.strip_prefix("data: ")).any(|d| {
                    serde_json::from_str::<serde_json::Value>(d).is_ok_and(|v| v["result"]["tools"].is_array())
                })
            })
        });
        assert_eq!(whole.count(), 200, "every answer through the guard arrives whole");
        let ok = post(&client, "10.44.0.1:31000", Some("http://10.44.0.1:31000")).await.unwrap();
        assert_eq!(ok.status(), 200, "its own Origin passes");
        for (host, origin) in [
            ("rebind.example:31000", None),
            ("rebind.example", Some("http://rebind.example")),
            ("10.44.0.1:31000", Some("http://rebind.example")),
            ("10.44.0.1:31000", Some("null")),
        ] {
            let refused = post(&client, host, origin).await.unwrap();
            assert_eq!(refused.status(), 403, "Host {host}, Origin {origin:?}");
            assert!(refused.text().await.unwrap().starts_with("kmcp-guard: "));
        }
    });
}
