//! A deployment environment on the real cluster: the shared test registry (with the server image
//! and the test chart), a namespace and release of the test's own, an admin user of its own (for
//! the audit log), and the real helm of the major the test asks for.

use super::cluster::{cluster, unique, AuditEvent};
use super::registry::{push_server_index, Entrypoint};
use super::{Output, Xtask};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The repository of the shared server image: one per test process, since `cargo xtask test` runs
/// the test binaries at once against one registry.
pub fn repo() -> String {
    format!("alice/kubernetes-mcp-server-{}", std::process::id())
}

fn chart_repo() -> String {
    format!("charts-{}", std::process::id())
}
/// The test chart's version, from its `Chart.yaml` (the one place it is written).
pub fn chart_version() -> String {
    let meta = std::fs::read_to_string(chart_dir().join("Chart.yaml")).unwrap();
    let version = meta.lines().find_map(|l| l.strip_prefix("version: ")).expect("Chart.yaml names a version");
    version.trim().to_string()
}

/// The test registry `cargo xtask test` started.
pub fn registry() -> String {
    std::env::var("KMCP_TEST_REGISTRY").expect("KMCP_TEST_REGISTRY: run the tests with `cargo xtask test`")
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Helm {
    V3,
    V4,
}

pub const HELMS: [Helm; 2] = [Helm::V3, Helm::V4];

impl Helm {
    pub fn binary(self) -> PathBuf {
        let var = match self {
            Helm::V3 => "KMCP_HELM3",
            Helm::V4 => "KMCP_HELM4",
        };
        PathBuf::from(std::env::var_os(var).unwrap_or_else(|| panic!("{var}: run the tests with `cargo xtask test`")))
    }
}

/// The test chart, packaged and pushed once per test process: its `oci://` reference and the
/// digest of its manifest.
pub fn chart() -> (String, String) {
    static PUSHED: OnceLock<(String, String)> = OnceLock::new();
    PUSHED.get_or_init(|| push_chart(&chart_dir(), &chart_repo())).clone()
}

pub fn chart_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/chart"))
}

/// Packages `dir` (the server's version as its appVersion) and pushes it to
/// `<registry>/<repo>/kubernetes-mcp-server` under its version; its
/// `oci://` reference and manifest digest (as `helm push` reports it).
pub fn push_chart(dir: &Path, repo: &str) -> (String, String) {
    let out = tempfile::tempdir().unwrap();
    let helm = Helm::V3.binary();
    let app_version = format!("v{}", xtask::tasks::selftest::SERVER_VERSION);
    let status = std::process::Command::new(&helm)
        .args(["package", "--app-version", &app_version, "--destination"])
        .arg(out.path())
        .arg(dir)
        .env("HOME", out.path())
        .output()
        .unwrap();
    assert!(status.status.success(), "helm package: {}", String::from_utf8_lossy(&status.stderr));
    let meta = std::fs::read_to_string(dir.join("Chart.yaml")).unwrap();
    let version = meta.lines().find_map(|l| l.strip_prefix("version: ")).unwrap().trim();
    let tgz = out.path().join(format!("kubernetes-mcp-server-{version}.tgz"));
    let target = format!("oci://{}/{repo}", registry());
    let status = std::process::Command::new(&helm)
        .arg("push")
        .arg(&tgz)
        .arg(&target)
        .arg("--plain-http")
        .env("HOME", out.path())
        .output()
        .unwrap();
    assert!(status.status.success(), "helm push: {}", String::from_utf8_lossy(&status.stderr));
    let said = format!("{}{}", String::from_utf8_lossy(&status.stdout), String::from_utf8_lossy(&status.stderr));
    let digest = said
        .lines()
        .find_map(|l| l.trim().strip_prefix("Digest: "))
        .unwrap_or_else(|| panic!("helm push named no digest: {said}"))
        .to_string();
    (format!("{target}/kubernetes-mcp-server"), digest)
}

/// The real server image under `dev-latest` in `repo`, pushed once per test process per repo.
pub fn server_image(repo: &str, entry: Entrypoint) -> (String, String) {
    let platforms = ["linux/amd64".to_string(), "linux/arm64".to_string()];
    let digest = push_server_index(&registry(), repo, &["dev-latest".into()], &platforms, entry, None);
    (format!("{}/{repo}:dev-latest", registry()), digest)
}

/// A nodePort of the band Kubernetes hands out last (the lowest 86 of 30000-32767), one per
/// `slot` and helm: a test that keeps its port across `down` and `up` must not lose it to another
/// test's Service in between.
pub fn reserved_node_port(slot: u16, helm: Helm) -> String {
    (30000 + 2 * slot + u16::from(helm == Helm::V4)).to_string()
}

/// The tests' `up --timeout`: a rollout that is only slow (a loaded machine) is not what a test
/// checks; one that cannot succeed fails on its diagnosis, long before this.
pub(crate) const ROLLOUT_TIMEOUT: &str = "10m";

pub struct Deploy {
    pub ns: String,
    pub release: String,
    pub user: String,
    pub helm: Helm,
    pub image: String,
    pub digest: String,
    pub chart: String,
    pub chart_digest: String,
    pub kubeconfig: PathBuf,
    helm_dir: tempfile::TempDir,
}

impl Deploy {
    /// A fresh namespace, release and admin user for this test, deploying with `helm`.
    pub fn new(name: &str, helm: Helm) -> Deploy {
        super::slots::take();
        let ns = unique(name);
        let helm_dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(helm.binary(), helm_dir.path().join("helm")).unwrap();
        let user = format!("test-{ns}");
        let kubeconfig = cluster().admin_as(&user, helm_dir.path());
        let (chart, chart_digest) = chart();
        static IMAGE: OnceLock<(String, String)> = OnceLock::new();
        let (image, digest) = IMAGE.get_or_init(|| server_image(&repo(), Entrypoint::Current)).clone();
        Deploy {
            release: "kubernetes-mcp-server".into(),
            ns,
            user,
            helm,
            image,
            digest,
            chart,
            chart_digest,
            kubeconfig,
            helm_dir,
        }
    }

    /// Where this test's xtask runs keep pulled charts.
    pub fn cache_dir(&self) -> PathBuf {
        self.helm_dir.path().join("cache/kmcp-xtask/charts")
    }

    /// The xtask with this test's helm first on PATH and a chart cache of this test's own that
    /// lasts across runs (each run gets a fresh HOME).
    pub fn xtask(&self) -> Xtask {
        Xtask::new(Some(self.helm_dir.path())).env("XDG_CACHE_HOME", self.helm_dir.path().join("cache"))
    }

    /// `task` aimed at this test's namespace, release and cluster; `up` also gets the test image,
    /// chart and node address unless `extra` names them.
    pub fn run(&self, task: &str, extra: &[&str]) -> Output {
        self.xtask().run(self.args(task, extra))
    }

    /// The same, in the background.
    pub fn spawn(&self, task: &str, extra: &[&str]) -> super::Running {
        self.xtask().spawn(self.args(task, extra))
    }

    pub fn args(&self, task: &str, extra: &[&str]) -> Vec<String> {
        self.args_without(task, &[], extra)
    }

    /// The same, leaving out the defaults `omit` names (to test what the xtask does without them).
    pub fn args_without(&self, task: &str, omit: &[&str], extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec![task.into(), "--kubeconfig".into(), self.kubeconfig.display().to_string()];
        args.extend(["--namespace".into(), self.ns.clone(), "--release".into(), self.release.clone()]);
        if task == "up" {
            for (flag, value) in [
                ("--image", self.image.clone()),
                ("--chart", self.chart.clone()),
                ("--chart-version", chart_version()),
                ("--chart-digest", self.chart_digest.clone()),
                ("--node-ip", cluster().node_ip.clone()),
                ("--allow-from", cluster().allow_from.clone()),
                ("--timeout", ROLLOUT_TIMEOUT.to_string()),
            ] {
                if !extra.contains(&flag) && !omit.contains(&flag) {
                    args.extend([flag.to_string(), value]);
                }
            }
        }
        if task == "verify" && !extra.contains(&"--url") && !extra.contains(&"--node-ip") {
            args.extend(["--node-ip".to_string(), cluster().node_ip.clone()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// The audit events of this test's user since `from` events (None on a given cluster).
    pub fn audit(&self) -> Option<Vec<AuditEvent>> {
        cluster().audit(&self.user)
    }

    /// The chart's fullname rule, written out independently of the xtask's.
    pub fn fullname(&self) -> String {
        let name = if self.release.contains("kubernetes-mcp-server") {
            self.release.clone()
        } else {
            format!("{}-kubernetes-mcp-server", self.release)
        };
        name[..name.len().min(63)].trim_end_matches('-').to_string()
    }
}

/// Reading the live objects of a deployment, for assertions.
impl Deploy {
    /// The object at an API path (`/api/v1/...`), as JSON; None when it does not exist.
    pub fn get(&self, path: &str) -> Option<serde_json::Value> {
        super::block_on(async {
            let client = cluster().client().await;
            let request = ::http::Request::get(path).body(Vec::new()).unwrap();
            match client.request::<serde_json::Value>(request).await {
                Ok(v) => Some(v),
                Err(kube::Error::Api(s)) if s.code == 404 => None,
                Err(e) => panic!("GET {path}: {e}"),
            }
        })
    }

    pub fn service(&self) -> Option<serde_json::Value> {
        self.get(&format!("/api/v1/namespaces/{}/services/{}", self.ns, self.fullname()))
    }

    pub fn deployment(&self) -> Option<serde_json::Value> {
        self.get(&format!("/apis/apps/v1/namespaces/{}/deployments/{}", self.ns, self.fullname()))
    }

    pub fn state(&self) -> Option<serde_json::Value> {
        self.get(&format!("/api/v1/namespaces/{}/configmaps/{}-xtask-state", self.ns, self.release))
    }

    pub fn node_port(&self) -> i64 {
        self.service().expect("service")["spec"]["ports"][0]["nodePort"].as_i64().unwrap()
    }

    pub fn url(&self) -> String {
        format!("http://{}:{}/mcp", cluster().node_ip, self.node_port())
    }

    /// The container's args as the Deployment gives them.
    pub fn container_args(&self) -> Vec<String> {
        let d = self.deployment().expect("deployment");
        d["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    }

    /// Sends a raw request with a JSON body (a test playing a user or an operator by hand).
    pub fn send(&self, method: &str, path: &str, content_type: &str, body: serde_json::Value) -> serde_json::Value {
        super::block_on(async {
            let client = cluster().client().await;
            let request = ::http::Request::builder()
                .method(method)
                .uri(path)
                .header("Content-Type", content_type)
                .body(serde_json::to_vec(&body).unwrap())
                .unwrap();
            client.request::<serde_json::Value>(request).await.unwrap_or_else(|e| panic!("{method} {path}: {e}"))
        })
    }
}
