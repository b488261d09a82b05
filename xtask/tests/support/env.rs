//! A deployment environment for tests and benches: a real registry holding `dev-latest`, the
//! FAKE Kubernetes API server with one node, and the FAKE `helm` backed by it.

use super::fake_cli::FakeCli;
use super::fake_kube::FakeKube;
use super::registry::{push_index, Registry};
use super::{Output, Xtask};
use std::sync::Arc;

pub const REPO: &str = "alice/kubernetes-mcp-server";
pub const NS: &str = "mcp-system";
pub const SERVICE: &str = "/api/v1/namespaces/mcp-system/services/kubernetes-mcp-server";
pub const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/mcp-system/deployments/kubernetes-mcp-server";
pub const STATE: &str = "/api/v1/namespaces/mcp-system/configmaps/kubernetes-mcp-server-xtask-state";

pub struct Env {
    pub kube: Arc<FakeKube>,
    pub cli: FakeCli,
    pub registry: Registry,
    pub digest: String,
}

pub fn platforms() -> Vec<String> {
    vec!["linux/amd64".into(), "linux/arm64".into()]
}

impl Env {
    pub fn new() -> Env {
        let registry = Registry::start(None);
        let digest = push_index(&registry.host, REPO, &["dev-latest".into()], &platforms(), None);
        let kube = Arc::new(FakeKube::start());
        kube.add_node("k0s-node", "192.168.50.10");
        let k = kube.clone();
        let cli = FakeCli::start(&["helm"], move |c| k.helm(c));
        Env { kube, cli, registry, digest }
    }

    pub fn image(&self) -> String {
        format!("{}/{REPO}:dev-latest", self.registry.host)
    }

    pub fn xtask(&self) -> Xtask {
        Xtask::new(Some(self.cli.bin.path())).env("FAKE_CLI_URL", &self.cli.url)
    }

    pub fn run(&self, task: &str, extra: &[&str]) -> Output {
        let mut args = vec![task.to_string(), "--kubeconfig".into(), self.kube.kubeconfig_path().display().to_string()];
        if task == "up" {
            args.extend(["--image".into(), self.image()]);
            for (flag, default) in [("--node-ip", "10.8.0.1"), ("--timeout", "5s")] {
                if !extra.contains(&flag) {
                    args.extend([flag.to_string(), default.to_string()]);
                }
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        self.xtask().run(args)
    }

    pub fn node_port(&self) -> i64 {
        self.kube.get(SERVICE).expect("service")["spec"]["ports"][0]["nodePort"].as_i64().unwrap()
    }

    pub fn helm_calls(&self, verb: &str) -> usize {
        self.cli.calls("helm").iter().filter(|c| c.args.first().map(String::as_str) == Some(verb)).count()
    }

    /// What the chart gives the server container: its arguments and the rendered config.toml.
    pub fn container(&self) -> (Vec<String>, String) {
        let d = self.kube.get(DEPLOYMENT).expect("deployment");
        let args = d["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        let cm = self.kube.get("/api/v1/namespaces/mcp-system/configmaps/kubernetes-mcp-server").expect("configmap");
        (args, cm["data"]["config.toml"].as_str().unwrap().to_string())
    }
}
