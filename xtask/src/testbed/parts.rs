//! What `cargo xtask test` builds from Go and runs for the tests: the local cluster with its real
//! node (`testcluster/`, CoreDNS, kube-router), and the real helm 3 and helm 4 CLIs, each cached
//! under `target/`.

use crate::programs::shell::{require_program, Shell};
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use xshell::cmd;

/// The helm releases the tests deploy with: the newest 3.x that matches the control plane's
/// client-go line (built in its module), and the newest 4.x (built with BuildKit and buildx).
pub const HELM3: &str = "v3.19.5";
pub const HELM4: &str = "v4.3.1";

/// Go's caches live under `target/` so that a cached `target/` keeps warm runs short. Nothing is
/// compiled with DWARF and every binary is linked without symbol tables (`-s -w`): a cold run
/// compiles a tenth faster, links faster, and Go's build cache is a fifth smaller.
pub(super) fn go_env<'a>(sh: &'a Shell, root: &Path) -> Vec<xshell::PushEnv<'a>> {
    let go = super::go_cache::dir(root);
    vec![
        sh.sh.push_env("GOCACHE", go.join("cache")),
        sh.sh.push_env("GOMODCACHE", go.join("mod")),
        sh.sh.push_env("GOFLAGS", "-modcacherw -buildvcs=false -gcflags=all=-dwarf=false"),
        sh.sh.push_env("GOTOOLCHAIN", "local"),
    ]
}

pub(super) fn require_go() -> Result<()> {
    require_program(
        "go",
        "install Go 1.24 or newer (https://go.dev/dl/); the tests build the control plane and helm with it",
    )
    .map(drop)
}

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

/// A key for a Go module's sources: its `.go` files, `go.mod` and `go.sum`, without the modules
/// nested in it.
fn source_key(src: &Path) -> Result<String> {
    let mut files: Vec<PathBuf> = Vec::new();
    collect_sources(src, src, &mut files)?;
    files.sort();
    let mut hash = Sha256::new();
    for f in &files {
        hash.update(f.strip_prefix(src).unwrap_or(f).to_string_lossy().as_bytes());
        hash.update(std::fs::read(f)?);
    }
    Ok(crate::programs::git::hex(&hash.finalize())[..16].to_string())
}

fn collect_sources(module: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if dir != module && dir.join("go.mod").is_file() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_sources(module, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "go") || path.ends_with("go.mod") || path.ends_with("go.sum") {
            out.push(path);
        }
    }
    Ok(())
}

/// helm 3, built in `testcluster/` (its `tools.go` pins it), after the cluster when there is one:
/// the Kubernetes libraries they share are compiled by then. Rebuilt when the module changes.
pub(crate) fn build_helm3(sh: &Shell, root: &Path) -> Result<PathBuf> {
    let src = root.join("testcluster");
    let bin = root.join(format!("target/tools/helm-{HELM3}-{}/helm", source_key(&src)?));
    if bin.is_file() {
        return Ok(bin);
    }
    require_go()?;
    eprintln!("building helm {HELM3} from helm.sh/helm/v3 in testcluster/");
    let _env = go_env(sh, root);
    let _dir = sh.sh.push_dir(&src);
    let ldflags = format!("-s -w -X helm.sh/helm/v3/internal/version.version={HELM3}");
    sh.run(cmd!(sh.sh, "go build -trimpath -ldflags {ldflags} -o {bin} helm.sh/helm/v3/cmd/helm"))
        .with_context(|| format!("cannot build helm {HELM3} (go build's output is above)"))?;
    Ok(bin)
}

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
        let bin = &parts.testcluster;
        eprintln!(
            "$ {} run -dir {} ...   (log: {})",
            bin.display(),
            dir.display(),
            dir.with_extension("log").display()
        );
        let child = Command::new(bin)
            .args(["run", "-dir"])
            .arg(dir)
            .args(["-registry", registry, "-pause"])
            .arg(&parts.pause)
            .arg("-coredns")
            .arg(&parts.coredns)
            .arg("-kube-router")
            .arg(&parts.kube_router)
            // The control plane, one process for every test at once, spent a third of its CPU in
            // Go's collector: a larger heap between collections (test harness only, no behaviour).
            .env("GOGC", "400")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start the cluster")?;
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
    fn drop(&mut self) {
        sigterm(self.child.id());
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SIGTERM lets the cluster delete its pods, stop its node and remove what it made on the host.
fn sigterm(pid: u32) {
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
}

/// A registry on 127.0.0.1 shared by the test run (Debian's `docker-registry`): it holds the test
/// chart, the server images and the node's own images, which the node pulls through a relay.
pub(crate) struct RunningRegistry {
    child: Child,
    pub host: String,
}

impl RunningRegistry {
    pub fn start(dir: &Path) -> Result<RunningRegistry> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("data").display()
            ),
        )?;
        let log = std::fs::File::create(dir.join("registry.log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start docker-registry")?;
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed() > Duration::from_secs(20) {
                bail!("docker-registry did not listen on 127.0.0.1:{port} within 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(RunningRegistry { child, host: format!("127.0.0.1:{port}") })
    }
}

impl Drop for RunningRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
