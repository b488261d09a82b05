//! The real cluster the tests deploy to: the local control plane that `cargo xtask test` started
//! (`KMCP_TESTCLUSTER`, its directory), or any cluster given by `KMCP_TEST_KUBECONFIG`. Tests share
//! it, each in namespaces and releases of its own; the audit log (local cluster only) counts a
//! task's requests by the user it ran as.

use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Where the audit log ended when each test user was made: none of its events come before.
static AUDIT_FROM: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);

pub struct TestCluster {
    pub kubeconfig: PathBuf,
    /// The node address NodePorts answer on.
    pub node_ip: String,
    /// The network the tests' `up` admits (`--allow-from`): the local node's internal network
    /// (the host's address is in it), else `KMCP_TEST_ALLOW_FROM` or every address.
    pub allow_from: String,
    pub(crate) audit_log: Option<PathBuf>,
    dir: Option<PathBuf>,
}

pub fn cluster() -> &'static TestCluster {
    static CLUSTER: OnceLock<TestCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        if let Some(kc) = std::env::var_os("KMCP_TEST_KUBECONFIG") {
            let kubeconfig = PathBuf::from(kc);
            let node_ip =
                std::env::var("KMCP_TEST_NODE_IP").unwrap_or_else(|_| super::block_on(first_internal_ip(&kubeconfig)));
            let allow_from = std::env::var("KMCP_TEST_ALLOW_FROM").unwrap_or_else(|_| "0.0.0.0/0".into());
            return TestCluster { kubeconfig, node_ip, allow_from, audit_log: None, dir: None };
        }
        let dir =
            PathBuf::from(std::env::var_os("KMCP_TESTCLUSTER").expect(
                "no cluster: run the tests with `cargo xtask test` (it starts one), or set KMCP_TEST_KUBECONFIG",
            ));
        let ready: Value = serde_json::from_slice(&std::fs::read(dir.join("ready.json")).unwrap()).unwrap();
        let node_ip = ready["nodeIP"].as_str().unwrap().to_string();
        TestCluster {
            kubeconfig: PathBuf::from(ready["kubeconfig"].as_str().unwrap()),
            // The node's network, as `dev` admits it (a /24, a /64 for IPv6).
            allow_from: {
                let ip: std::net::IpAddr = node_ip.parse().unwrap();
                ipnet::IpNet::new(ip, if ip.is_ipv4() { 24 } else { 64 }).unwrap().trunc().to_string()
            },
            node_ip,
            audit_log: Some(PathBuf::from(ready["auditLog"].as_str().unwrap())),
            dir: Some(dir),
        }
    })
}

async fn first_internal_ip(kubeconfig: &Path) -> String {
    let client = client_for(kubeconfig).await;
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client);
    let list = nodes.list(&Default::default()).await.unwrap();
    list.items[0]
        .status
        .as_ref()
        .unwrap()
        .addresses
        .as_ref()
        .unwrap()
        .iter()
        .find(|a| a.type_ == "InternalIP")
        .unwrap()
        .address
        .clone()
}

pub(crate) async fn client_for(kubeconfig: &Path) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    kube::Client::try_from(config).unwrap()
}

impl TestCluster {
    pub async fn client(&self) -> kube::Client {
        client_for(&self.kubeconfig).await
    }

    /// A kubeconfig for a cluster admin of this test's own, so that the audit log tells its
    /// requests apart (on a given cluster: the given kubeconfig).
    pub(crate) fn admin_as(&self, user: &str, dir: &Path) -> PathBuf {
        self.user_as(user, "system:masters", dir)
    }

    /// A kubeconfig for `user` in `groups` (comma separated; empty: only what every
    /// authenticated user may, such as reading `/version`).
    pub fn user_as(&self, user: &str, groups: &str, dir: &Path) -> PathBuf {
        let Some(cluster_dir) = &self.dir else { return self.kubeconfig.clone() };
        let out = dir.join(format!("{user}.kubeconfig"));
        let bin = std::env::var_os("KMCP_TESTCLUSTER_BIN").expect("KMCP_TESTCLUSTER_BIN is set by cargo xtask test");
        let ok = std::process::Command::new(bin)
            .args(["kubeconfig", "-group", groups, "-user", user, "-dir"])
            .arg(cluster_dir)
            .arg("-out")
            .arg(&out)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot mint a kubeconfig for {user}");
        if let Some(log) = &self.audit_log {
            let end = std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
            AUDIT_FROM.lock().unwrap().get_or_insert_with(HashMap::new).insert(user.into(), end);
        }
        out
    }

    /// The audit events of `user` (None on a given cluster: no audit log to read).
    pub fn audit(&self, user: &str) -> Option<Vec<AuditEvent>> {
        let from = AUDIT_FROM.lock().unwrap().as_ref().and_then(|m| m.get(user).copied()).unwrap_or(0);
        let mut file = std::fs::File::open(self.audit_log.as_ref()?).unwrap();
        file.seek(SeekFrom::Start(from)).unwrap();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        // Only this user's lines are parsed: the log holds every test's requests.
        let mark = format!("\"username\":\"{user}\"");
        Some(
            text.lines()
                .filter(|l| l.contains(&mark))
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|e| e["user"]["username"] == user && e["stage"] == "ResponseComplete")
                .map(|e| AuditEvent {
                    verb: e["verb"].as_str().unwrap_or_default().to_string(),
                    resource: e["objectRef"]["resource"].as_str().unwrap_or_default().to_string(),
                    subresource: e["objectRef"]["subresource"].as_str().unwrap_or_default().to_string(),
                    namespace: e["objectRef"]["namespace"].as_str().unwrap_or_default().to_string(),
                    name: e["objectRef"]["name"].as_str().unwrap_or_default().to_string(),
                    user_agent: e["userAgent"].as_str().unwrap_or_default().to_string(),
                    code: e["responseStatus"]["code"].as_i64().unwrap_or_default(),
                })
                .collect(),
        )
    }
}

#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub verb: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub(crate) user_agent: String,
    pub code: i64,
}

impl AuditEvent {
    pub fn is_write(&self) -> bool {
        matches!(self.verb.as_str(), "create" | "update" | "patch" | "delete" | "deletecollection")
    }
    pub fn by_helm(&self) -> bool {
        self.user_agent.starts_with("helm") || self.user_agent.contains("Helm")
    }
}

/// A name unique to this test run and test: `<prefix>-<n>`, a valid DNS-1123 label.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}-{}-{n}", std::process::id() % 100000)
}

/// True when the tests run against a given cluster (`KMCP_TEST_KUBECONFIG`), where `test` cannot
/// do what it proves (`why`): it then says `skipped: TEST: WHY` on stdout past the harness's
/// capture, and `cargo xtask test` counts it as skipped in its summary, never as passed.
pub fn skipped_on_a_given_cluster(test: &str, why: &str) -> bool {
    if std::env::var_os("KMCP_TEST_KUBECONFIG").is_none() {
        return false;
    }
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "skipped: {test}: {why} (KMCP_TEST_KUBECONFIG names a given cluster)");
    true
}
