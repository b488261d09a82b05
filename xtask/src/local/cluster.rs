//! The local cluster, set up as k0s sets up a single node (`testcluster/`: the control plane, and
//! a real node with kubelet, containerd, runc, the CNI plugins, kube-proxy, CoreDNS and
//! kube-router), built from Go and cached under `target/`, started in network namespaces of its
//! own and stopped with everything it made on the host.

use super::go_build::{go_env, require_go, source_key};
use crate::programs::shell::{start_background, Shell};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use xshell::cmd;

/// kube-router, whose NetworkPolicy firewall (k0s's default network provider) enforces policies
/// on the test node.
pub(crate) const KUBE_ROUTER: &str = "v2.1.0";

/// What the local cluster runs, each built from Go and cached under `target/`.
pub(crate) struct ClusterParts {
    /// The control plane and the node's kubelet, kube-proxy and kube-scheduler (`testcluster/`).
    pub(crate) testcluster: PathBuf,
    pub(crate) pause: PathBuf,
    pub(crate) coredns: PathBuf,
    pub(crate) kube_router: PathBuf,
}

/// The cluster's programs: `testcluster/` (with its `pause`) and `testcluster/coredns/` are each
/// rebuilt only when their sources or `go.sum` change; kube-router is built once per version.
pub(crate) fn build_cluster(sh: &Shell, root: &Path) -> Result<ClusterParts> {
    let src = root.join("testcluster");
    let dir = root.join(format!("target/testcluster/{}", source_key(&src)?));
    let (testcluster, pause) = (dir.join("testcluster"), dir.join("pause"));
    if !testcluster.is_file() || !pause.is_file() {
        require_go()?;
        eprintln!("building the cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, pause) from testcluster/");
        let _env = go_env(sh, root);
        let _dir = sh.sh.push_dir(&src);
        let ldflags = format!("-s -w -X k8s.io/component-base/version.gitVersion={KUBERNETES}");
        sh.run(cmd!(sh.sh, "go build -trimpath -ldflags {ldflags} -o {testcluster} ."))
            .context("cannot build the cluster from testcluster/ (go build's output is above)")?;
        let _static = sh.sh.push_env("CGO_ENABLED", "0");
        sh.run(cmd!(sh.sh, "go build -trimpath -ldflags=-s -o {pause} ./pause"))
            .context("cannot build the pause program")?;
    }
    let dns_src = src.join("coredns");
    let coredns = root.join(format!("target/testcluster/coredns-{}/coredns", source_key(&dns_src)?));
    if !coredns.is_file() {
        require_go()?;
        eprintln!("building CoreDNS with the cluster's plugins from testcluster/coredns/");
        let _env = go_env(sh, root);
        let _static = sh.sh.push_env("CGO_ENABLED", "0");
        let _dir = sh.sh.push_dir(&dns_src);
        sh.run(cmd!(sh.sh, "go build -trimpath -ldflags=-s -o {coredns} ."))
            .context("cannot build CoreDNS (its output is above)")?;
    }
    let tools = root.join(format!("target/tools/kube-router-{KUBE_ROUTER}"));
    let kube_router = tools.join("kube-router");
    if !kube_router.is_file() {
        require_go()?;
        eprintln!("building kube-router {KUBE_ROUTER} (its NetworkPolicy firewall) with go install");
        let _env = go_env(sh, root);
        let _bin = sh.sh.push_env("GOBIN", &tools);
        let _static = sh.sh.push_env("CGO_ENABLED", "0");
        let package = format!("github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@{KUBE_ROUTER}");
        super::go_cache::dropping_added(sh, root, "", || {
            sh.run(cmd!(sh.sh, "go install -trimpath -ldflags=-s {package}"))
                .context("cannot build kube-router (its output is above)")
        })?;
    }
    Ok(ClusterParts { testcluster, pause, coredns, kube_router })
}

/// The Kubernetes release the cluster is built from (`testcluster/go.mod` requires it).
const KUBERNETES: &str = "v1.34.4";

/// The running cluster; stopped (pods, node, network namespaces and all) when dropped.
pub(crate) struct RunningCluster {
    child: Child,
    pub dir: PathBuf,
}

impl RunningCluster {
    /// Starts the cluster in `dir`, its node pulling from `registry`, and waits until it is ready.
    pub fn start(parts: &ClusterParts, dir: &Path, registry: &str) -> Result<RunningCluster> {
        std::fs::create_dir_all(dir)?;
        let log = std::fs::File::create(dir.with_extension("log"))?;
        let ready = dir.join("ready.json");
        let _ = std::fs::remove_file(&ready);
        eprintln!("starting the cluster (log: {})", dir.with_extension("log").display());
        let mut command = Command::new(&parts.testcluster);
        command.args(["run", "-dir"]).arg(dir).args(["-registry", registry, "-pause"]).arg(&parts.pause);
        command.arg("-coredns").arg(&parts.coredns).arg("-kube-router").arg(&parts.kube_router);
        // The control plane, one process for every test at once, spent a third of its CPU in Go's
        // collector: a larger heap between collections (no behaviour changes).
        command.env("GOGC", "400").stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        let child = start_background(command)?;
        let mut running = RunningCluster { child, dir: dir.to_path_buf() };
        let start = Instant::now();
        while !ready.is_file() {
            if let Some(status) = running.child.try_wait()? {
                bail!("the cluster exited ({status}) before it was ready: see {}", dir.with_extension("log").display());
            }
            if start.elapsed() > Duration::from_secs(180) {
                bail!("the cluster was not ready after 180 s: see {}", dir.with_extension("log").display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("cluster and node ready in {:.1} s", start.elapsed().as_secs_f64());
        Ok(running)
    }
}

impl Drop for RunningCluster {
    /// SIGTERM lets the cluster delete its pods, stop its node and remove what it made on the host.
    fn drop(&mut self) {
        crate::programs::signals::stop(&mut self.child, Duration::from_secs(90));
    }
}
