//! The real `kubernetes-mcp-server` binary (npm `kubernetes-mcp-server-linux-amd64`, prepared by
//! `cargo xtask test`), run on 127.0.0.1 with the arguments a deployment gives its container.

use super::KillOnDrop;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct RealServer {
    child: KillOnDrop,
    pub port: u16,
    _dir: tempfile::TempDir,
}

pub fn binary() -> PathBuf {
    let path = std::env::var_os("MCP_SERVER_BIN").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/test-deps/kubernetes-mcp-server-0.0.67"))
    });
    assert!(path.is_file(), "{} is missing: run the tests with `cargo xtask test`, which fetches it", path.display());
    path
}

impl RealServer {
    /// Starts the server with the container's `args`; the chart's `--config FILE` is pointed at a
    /// copy of the rendered `config_toml`. Its kubeconfig points at nothing, as in a pod without a
    /// cluster: it still serves MCP.
    pub fn start(args: &[String], config_toml: &str, port: u16) -> RealServer {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, config_toml).unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\nclusters:\n- name: none\n  cluster:\n    server: http://127.0.0.1:1\ncontexts:\n- name: none\n  context: {cluster: none, user: none}\ncurrent-context: none\nusers:\n- name: none\n  user: {token: none}\n").unwrap();
        let mut args = args.to_vec();
        if let Some(i) = args.iter().position(|a| a == "--config") {
            args[i + 1] = config.display().to_string();
        }
        let child = Command::new(binary())
            .args(&args)
            .env_clear()
            .env("HOME", dir.path())
            .env("KUBECONFIG", &kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut server = RealServer { child: KillOnDrop(child), port, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.0.try_wait() {
                let mut err = String::new();
                server.child.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                panic!("the server exited ({status}) with {args:?}:\n{err}");
            }
            assert!(Instant::now() < deadline, "the server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }
}
