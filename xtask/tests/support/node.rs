//! The test node's extras (local cluster only): clients in network namespaces of their own on the
//! node's internal ("WireGuard") or public network, commands run inside them, conntrack read in
//! the node's namespace, more loopback registries relayed into the node, and the node's taints.

use super::cluster::cluster;
use super::KillOnDrop;
use k8s_openapi::api::core::v1 as Node;
use serde_json::{json, Value};
use std::process::{Command, Stdio};

fn testcluster() -> (String, String) {
    let bin = std::env::var("KMCP_TESTCLUSTER_BIN").expect("KMCP_TESTCLUSTER_BIN is set by cargo xtask test");
    let dir = std::env::var("KMCP_TESTCLUSTER").expect("KMCP_TESTCLUSTER is set by cargo xtask test");
    (bin, dir)
}

/// A client machine on one of the node's networks; its namespace goes when it is dropped.
pub struct Client {
    pub name: String,
    pub netns: String,
    pub address: String,
    /// The HOME of what it runs: MCP Inspector keeps its settings there.
    home: tempfile::TempDir,
}

impl Client {
    /// `network` is "internal" (the node's InternalIP network, the laptop's WireGuard network in
    /// the tests) or "public" (the node's second address, a host on the internet).
    pub fn new(name: &str, network: &str) -> Client {
        let (bin, dir) = testcluster();
        let out = Command::new(bin)
            .args(["client", "add", "-dir", &dir, "-name", name, "-network", network])
            .output()
            .unwrap();
        assert!(out.status.success(), "client add: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let mut words = text.split_whitespace();
        let netns = words.next().unwrap().to_string();
        let address = words.next().unwrap().to_string();
        Client { name: name.into(), netns, address, home: tempfile::tempdir().unwrap() }
    }

    /// Runs a program inside the client's namespace; its exit code and stdout.
    pub fn run(&self, program: &str, args: &[&str]) -> (i32, String) {
        let out = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.netns))
            .arg("--")
            .arg(program)
            .args(args)
            .env("HOME", self.home.path())
            .stderr(Stdio::null())
            .output()
            .unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The HTTP status of GET `url` from this client ("000" when nothing answered in 3 s).
    pub fn http_status(&self, url: &str) -> String {
        self.run("curl", &["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3", url]).1
    }

    /// Polls GET `url` until its status is `want` (kube-proxy and the firewall take a moment to
    /// follow a change); the last status seen.
    pub fn status_becomes(&self, url: &str, want: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
        loop {
            let got = self.http_status(url);
            if got == want || std::time::Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }

    /// MCP Inspector's CLI run from this client against `url`: its exit code and output.
    pub fn inspector(&self, url: &str, args: &[&str]) -> (i32, String) {
        let bin = std::env::var("KMCP_INSPECTOR").expect("KMCP_INSPECTOR: run the tests with `cargo xtask test`");
        let mut all = vec!["--cli", url, "--transport", "http"];
        all.extend(args);
        self.run(&bin, &all)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let (bin, dir) = testcluster();
        let _ = Command::new(bin).args(["client", "del", "-dir", &dir, "-name", &self.name]).status();
    }
}

/// The node's connection tracking entries for TCP to `port` (`conntrack -L` in its namespace):
/// each entry's original source and the destination of its reply, which is the address the pod
/// saw as its client.
pub fn connections_to(port: i64) -> Vec<(String, String)> {
    let out = conntrack("-L", port).stderr(Stdio::null()).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let srcs: Vec<&str> = l.split_whitespace().filter_map(|w| w.strip_prefix("src=")).collect();
            let dsts: Vec<&str> = l.split_whitespace().filter_map(|w| w.strip_prefix("dst=")).collect();
            Some((srcs.first()?.to_string(), dsts.get(1)?.to_string()))
        })
        .collect()
}

/// Forgets the node's connection-tracking entries to `port` (in the node's namespace), so that the
/// next read shows only connections made after.
pub fn forget_connections(port: i64) {
    let _ = conntrack("-D", port).stdout(Stdio::null()).stderr(Stdio::null()).status();
}

/// `conntrack ACTION` for TCP to `port`, in the node's network namespace.
fn conntrack(action: &str, port: i64) -> Command {
    let netns = ready()["netns"].as_str().unwrap().to_string();
    let mut command = Command::new("nsenter");
    command.arg(format!("--net=/run/netns/{netns}"));
    command.args(["--", "conntrack", action, "-p", "tcp", "--dport", &port.to_string()]);
    command
}

/// What the cluster wrote in its `ready.json`.
fn ready() -> Value {
    ready_at(&std::path::Path::new(&testcluster().1).join("ready.json"))
}

/// A `ready.json` the cluster or a worker wrote.
fn ready_at(path: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The node's second ("public") address.
pub fn public_ip() -> String {
    ready()["publicIP"].as_str().unwrap().to_string()
}

/// Relays another loopback registry into the node while it lives.
pub fn relay(registry: &str) -> KillOnDrop {
    let (bin, dir) = testcluster();
    let mut child =
        Command::new(bin).args(["relay", "-dir", &dir, "-registry", registry]).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    assert!(line.starts_with("relaying"), "relay did not start: {line}");
    KillOnDrop(child)
}

/// A NoSchedule taint `kmcp.dev/test-taint=<value>` on the node while it lives. Pods tolerate it
/// unless their namespace was made by `untolerating_namespace`.
pub struct Taint(String);

impl Taint {
    pub fn new(value: &str) -> Taint {
        let taint = Node::Taint {
            key: "kmcp.dev/test-taint".into(),
            value: Some(value.into()),
            effect: "NoSchedule".into(),
            time_added: None,
        };
        edit_taints(|taints| taints.push(taint.clone()));
        Taint(value.into())
    }
}

impl Drop for Taint {
    fn drop(&mut self) {
        let value = self.0.clone();
        edit_taints(|taints| taints.retain(|t| t.value.as_deref() != Some(value.as_str())));
    }
}

/// Reads the node, edits its taints and writes it back with its resourceVersion, again on a conflict.
fn edit_taints(edit: impl Fn(&mut Vec<Node::Taint>)) {
    super::block_on(async {
        let client = cluster().client().await;
        let nodes: kube::Api<Node::Node> = kube::Api::all(client);
        let name = nodes.list(&Default::default()).await.unwrap().items[0].metadata.name.clone().unwrap();
        for _ in 0..20 {
            let mut node = nodes.get(&name).await.unwrap();
            let spec = node.spec.get_or_insert_with(Default::default);
            let mut taints = spec.taints.clone().unwrap_or_default();
            edit(&mut taints);
            spec.taints = Some(taints);
            match nodes.replace(&name, &Default::default(), &node).await {
                Ok(_) => return,
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => panic!("cannot update the node's taints: {e}"),
            }
        }
        panic!("the node's taints kept changing under the test");
    })
}

/// Makes namespace `ns` whose pods get none of the cluster's default tolerations (so they meet
/// the test taint).
pub fn untolerating_namespace(ns: &str) {
    super::block_on(async {
        let client = cluster().client().await;
        let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
        let object = serde_json::from_value(json!({"metadata": {"name": ns,
            "annotations": {"scheduler.alpha.kubernetes.io/defaultTolerations": "[]"}}}))
        .unwrap();
        namespaces.create(&Default::default(), &object).await.unwrap();
    })
}

/// A second node, a worker joined to the shared cluster (`testcluster worker`), while it lives:
/// its name and internal address from its `ready.json`. Dropped, it is cordoned, its pods deleted, and
/// it leaves the cluster; what it made on the host goes with it.
pub struct Worker {
    child: std::process::Child,
    pub name: String,
    pub ip: String,
    bridges: String,
}

/// The first node's two bridges and their link addresses. The host reaches the API through one:
/// if a worker's link joining or leaving changed its address, the host would send to the old one
/// until its neighbour entry expired.
fn bridge_addresses() -> String {
    let out = Command::new("ip").args(["-n", "kmcp-node", "-br", "link", "show", "type", "bridge"]).output().unwrap();
    let all = String::from_utf8_lossy(&out.stdout).into_owned();
    let ours = all.lines().filter(|l| l.starts_with("br-internal") || l.starts_with("br-public"));
    // Name and address; not the state: the public bridge has a carrier only while a worker is on it.
    ours.map(|l| l.split_whitespace().step_by(2).take(2).collect::<Vec<_>>().join(" ")).collect::<Vec<_>>().join("\n")
}

impl Worker {
    pub fn start() -> Worker {
        let (bin, dir) = testcluster();
        let bridges = bridge_addresses();
        assert_eq!(bridges.lines().count(), 2, "the first node's bridges: {bridges:?}");
        let ready = std::path::Path::new(&dir).join("kmcp-node-2/ready.json");
        let _ = std::fs::remove_file(&ready);
        let mut child =
            Command::new(bin).args(["worker", "-dir", &dir, "-n", "2"]).stdout(Stdio::null()).spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
        while !ready.is_file() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the worker ended ({status}) before it was Ready: see {dir}/kmcp-node-2/*.log");
            }
            assert!(std::time::Instant::now() < deadline, "the worker was not Ready after 300 s");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let ready = ready_at(&ready);
        let field = |k: &str| ready[k].as_str().unwrap().to_string();
        let worker = Worker { child, name: field("nodeName"), ip: field("nodeIP"), bridges };
        assert_eq!(bridge_addresses(), worker.bridges, "a worker joining changed the first node's bridges");
        worker
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // SIGTERM: it moves its pods off and leaves the cluster before it ends.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        // The tests that run next must find one node.
        let gone = super::block_on(async {
            let nodes: kube::Api<Node::Node> = kube::Api::all(cluster().client().await);
            for _ in 0..300 {
                if let Ok(None) = nodes.get_opt(&self.name).await {
                    return true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            false
        });
        if std::thread::panicking() {
            return;
        }
        assert!(gone, "node {} is still in the cluster after its worker ended", self.name);
        assert_eq!(bridge_addresses(), self.bridges, "a worker leaving changed the first node's bridges");
    }
}
