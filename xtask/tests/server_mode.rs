//! The deployment's server mode, proved against the real server in its pod over the NodePort: by
//! default read-only (no tool without `readOnlyHint: true`) and stateless (GET /mcp is 405, so no
//! 409 can arise); with `--stateful --allow-write-tools` the write tools appear and the 409 is
//! reproduced. Changing the mode rolls the deployment; keeping it changes nothing.

#[macro_use]
extern crate kmcp_test_support as support;

use support::deploy::{Deploy, Helm};
use xtask::server::mcp::Session;

const WRITE_TOOLS: [&str; 6] =
    ["pods_delete", "pods_exec", "pods_run", "resources_create_or_update", "resources_delete", "resources_scale"];

fn default_deployment_is_read_only_and_cannot_409(helm: Helm) {
    let d = Deploy::new("safe", helm);
    d.run("up", &[]).assert_ok();
    let args = d.container_args();
    assert!(args.contains(&"--read-only".to_string()) && args.contains(&"--stateless".to_string()), "{args:?}");
    let url = d.url();
    support::block_on(async {
        let mut session = Session::initialize(&url).await.unwrap();
        assert_eq!(session.server_name, "kubernetes-mcp-server");
        assert_eq!(session.initialized().await.unwrap(), 202);
        let tools = session.list_tools().await.unwrap();
        assert!(tools.len() >= 5, "{tools:?}");
        let writable: Vec<_> = tools.iter().filter(|t| !t.read_only).map(|t| t.name.as_str()).collect();
        assert!(writable.is_empty(), "tools without readOnlyHint: {writable:?}");
        for _ in 0..2 {
            let (status, stream) = session.open_stream().await.unwrap();
            assert_eq!(status, 405, "stateless: no standalone SSE stream, so no 409");
            assert!(stream.is_none());
        }
    });
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn opted_out_deployment_shows_write_tools_and_reproduces_the_409(helm: Helm) {
    let d = Deploy::new("unsafe", helm);
    let out = d.run("up", &["--stateful", "--allow-write-tools"]);
    out.assert_ok();
    assert!(out.stderr.contains("warning: --allow-write-tools"), "{}", out.stderr);
    assert!(
        out.stderr.contains("warning: --stateful") && out.stderr.contains("PersistentKeepalive = 25"),
        "{}",
        out.stderr
    );
    let args = d.container_args();
    assert!(!args.contains(&"--read-only".to_string()) && !args.contains(&"--stateless".to_string()), "{args:?}");
    let url = d.url();
    support::block_on(async {
        let mut session = Session::initialize(&url).await.unwrap();
        assert!(session.session_id.is_some(), "stateful mode hands out a session");
        assert_eq!(session.initialized().await.unwrap(), 202);
        let tools = session.list_tools().await.unwrap();
        let writable: Vec<_> = tools.iter().filter(|t| !t.read_only).map(|t| t.name.as_str()).collect();
        for w in WRITE_TOOLS {
            assert!(writable.contains(&w), "{w} missing from {writable:?}");
        }
        let (first, held) = session.open_stream().await.unwrap();
        assert_eq!(first, 200);
        let (second, _) = session.open_stream().await.unwrap();
        assert_eq!(second, 409, "a second stream while the first is open: the seed's 409 Conflict");
        drop(held);
    });
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn changing_the_mode_is_a_change_and_keeping_it_is_not(helm: Helm) {
    let d = Deploy::new("mode", helm);
    d.run("up", &[]).assert_ok();
    let generation = || d.deployment().unwrap()["metadata"]["generation"].as_i64().unwrap();
    let mut last = generation();
    for (flags, changes) in [
        (vec!["--stateful"], true),
        (vec!["--stateful"], false),
        (vec!["--stateful", "--allow-write-tools"], true),
        (vec![], true),
        (vec![], false),
        (vec!["--toolsets", "core,helm"], true),
        (vec!["--toolsets", "core,helm"], false),
    ] {
        let out = d.run("up", &flags);
        out.assert_ok();
        assert_eq!(!out.stdout.contains("up to date: nothing changed"), changes, "{flags:?}: {}", out.stdout);
        let now = generation();
        assert_eq!(now != last, changes, "{flags:?}: generation {last} -> {now}");
        last = now;
        let args = d.container_args();
        let has = |a: &str| args.iter().any(|x| x == a);
        assert_eq!(has("--stateless"), !flags.contains(&"--stateful"), "{flags:?}");
        assert_eq!(has("--read-only"), !flags.contains(&"--allow-write-tools"), "{flags:?}");
        assert_eq!(has("core,helm"), flags.contains(&"core,helm"), "{flags:?}");
    }
    let out = d.run("status", &[]);
    assert!(out.assert_ok().stdout.contains("mode:     read-only, stateless, toolsets core,helm"), "{}", out.stdout);
    d.run("down", &["--delete-namespace"]).assert_ok();
}

/// `verify`'s client against the oldest server it is tried with (npm's newest at or before the
/// v0.0.55 content, run here on loopback): it asks for 2025-11-25 and takes the 2025-06-18 the
/// server has; the handshake, tool listing and stream probe work the same.
#[test]
fn the_client_speaks_to_a_server_of_the_v0_0_55_content() {
    let binary = std::env::var("MCP_SERVER_BIN_OLDEST").expect("MCP_SERVER_BIN_OLDEST: run with `cargo xtask test`");
    let port = support::registry::free_port();
    let kubeconfig = support::cluster::cluster().kubeconfig.clone();
    // Its own HOME: the server keeps a discovery cache under ~/.kube.
    let home = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(binary)
        .args(["--port", &port.to_string(), "--read-only", "--kubeconfig"])
        .arg(kubeconfig)
        .env("HOME", home.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut server = support::KillOnDrop(child);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!("the server ended ({status}) without listening on {port}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    support::block_on(async {
        let mut session = Session::initialize(&format!("http://127.0.0.1:{port}/mcp")).await.unwrap();
        assert_eq!(session.protocol_version, "2025-06-18");
        assert_eq!(session.server_version, format!("v{}", xtask::tasks::selftest::SERVER_VERSION_OLDEST));
        assert_eq!(session.initialized().await.unwrap(), 202);
        let tools = session.list_tools().await.unwrap();
        assert!(tools.iter().any(|t| t.name == "pods_list") && tools.iter().all(|t| t.read_only), "{tools:?}");
    });
}

one_helm!(
    default_deployment_is_read_only_and_cannot_409: V3,
    opted_out_deployment_shows_write_tools_and_reproduces_the_409: V4,
    changing_the_mode_is_a_change_and_keeping_it_is_not: V3,
);
