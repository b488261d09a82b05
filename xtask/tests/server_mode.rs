//! The deployment's server mode, proved against the real server binary: by default read-only
//! (no tool without `readOnlyHint: true`) and stateless (GET /mcp is 405, so no 409 can arise);
//! with `--stateful --allow-write-tools` the write tools appear and the 409 is reproduced.
//! The server runs with exactly the arguments the chart gives the container after `up`.

mod support;

use support::env::{Env, DEPLOYMENT};
use support::registry::free_port;
use support::server::RealServer;
use xtask::mcp::Session;

const WRITE_TOOLS: [&str; 6] =
    ["pods_delete", "pods_exec", "pods_run", "resources_create_or_update", "resources_delete", "resources_scale"];

/// `up` with `flags` against the fake cluster; the container's args and its rendered config.toml.
fn deployed(env: &Env, flags: &[&str]) -> (Vec<String>, String) {
    env.run("up", flags).assert_ok();
    env.container()
}

#[test]
fn default_deployment_is_read_only_and_cannot_409() {
    let env = Env::new();
    let port = free_port();
    let (args, config) = deployed(&env, &["--port", &port.to_string()]);
    assert!(args.contains(&"--read-only".to_string()) && args.contains(&"--stateless".to_string()), "{args:?}");
    let server = RealServer::start(&args, &config, port);
    support::block_on(async {
        let mut session = Session::initialize(&server.url()).await.unwrap();
        assert_eq!(session.server_name, "kubernetes-mcp-server");
        assert_eq!(session.initialized().await.unwrap(), 202);
        let tools = session.list_tools().await.unwrap();
        assert!(tools.len() >= 5, "{tools:?}");
        let writable: Vec<_> = tools.iter().filter(|t| !t.read_only).map(|t| t.name.as_str()).collect();
        assert!(writable.is_empty(), "tools without readOnlyHint: {writable:?}");
        assert!(!tools.iter().any(|t| WRITE_TOOLS.contains(&t.name.as_str())));

        for _ in 0..2 {
            let (status, stream) = session.open_stream().await.unwrap();
            assert_eq!(status, 405, "stateless: no standalone SSE stream, so no 409");
            assert!(stream.is_none());
        }
    });
}

#[test]
fn opted_out_deployment_shows_write_tools_and_reproduces_the_409() {
    let env = Env::new();
    let port = free_port();
    let out = env.run("up", &["--port", &port.to_string(), "--stateful", "--allow-write-tools"]);
    out.assert_ok();
    assert!(out.stderr.contains("warning: --allow-write-tools"), "{}", out.stderr);
    assert!(
        out.stderr.contains("warning: --stateful") && out.stderr.contains("PersistentKeepalive = 25"),
        "{}",
        out.stderr
    );
    let (args, config) = deployed(&env, &["--port", &port.to_string(), "--stateful", "--allow-write-tools"]);
    assert!(!args.contains(&"--read-only".to_string()) && !args.contains(&"--stateless".to_string()), "{args:?}");
    let server = RealServer::start(&args, &config, port);
    support::block_on(async {
        let mut session = Session::initialize(&server.url()).await.unwrap();
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
}

#[test]
fn changing_the_mode_is_a_change_and_keeping_it_is_not() {
    let env = Env::new();
    env.run("up", &[]).assert_ok();
    for (flags, helm_runs) in [
        (vec!["--stateful"], 2),
        (vec!["--stateful"], 2),
        (vec!["--stateful", "--allow-write-tools"], 3),
        (vec![], 4),
        (vec![], 4),
        (vec!["--toolsets", "core,helm"], 5),
        (vec!["--toolsets", "core,helm"], 5),
    ] {
        let out = env.run("up", &flags);
        out.assert_ok();
        assert_eq!(env.helm_calls("upgrade"), helm_runs, "{flags:?}");
        let args = env.kube.get(DEPLOYMENT).unwrap()["spec"]["template"]["spec"]["containers"][0]["args"].clone();
        let has = |a: &str| args.as_array().unwrap().iter().any(|x| x == a);
        assert_eq!(has("--stateless"), !flags.contains(&"--stateful"), "{flags:?}");
        assert_eq!(has("--read-only"), !flags.contains(&"--allow-write-tools"), "{flags:?}");
        assert_eq!(has("core,helm"), flags.contains(&"core,helm"), "{flags:?}");
    }
    let out = env.run("status", &[]);
    assert!(out.assert_ok().stdout.contains("mode:     read-only, stateless, toolsets core,helm"), "{}", out.stdout);
}
