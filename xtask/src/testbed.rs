//! What `cargo xtask test` builds from Go and runs for the tests: the local control plane with its
//! node agent (`testcluster/`), and the real helm 3 and helm 4 CLIs, each cached under `target/`.

use crate::shell::{require_program, Shell};
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use xshell::cmd;

/// The helm releases the tests deploy with: the newest 3.x that matches the control plane's
/// client-go line, and the newest 4.x.
pub const HELM3: &str = "v3.19.5";
pub const HELM4: &str = "v4.3.1";

/// Go's caches live under `target/` so that a cached `target/` keeps warm runs short.
fn go_env<'a>(sh: &'a Shell, root: &Path) -> Vec<xshell::PushEnv<'a>> {
    let go = root.join("target/go");
    vec![
        sh.sh.push_env("GOCACHE", go.join("cache")),
        sh.sh.push_env("GOMODCACHE", go.join("mod")),
        sh.sh.push_env("GOFLAGS", "-modcacherw -buildvcs=false"),
        sh.sh.push_env("GOTOOLCHAIN", "local"),
    ]
}

fn require_go() -> Result<()> {
    require_program(
        "go",
        "install Go 1.24 or newer (https://go.dev/dl/); the tests build the control plane and helm with it",
    )
    .map(drop)
}

/// The control plane binary, rebuilt only when `testcluster/`'s sources or `go.sum` change.
pub(crate) fn build_cluster(sh: &Shell, root: &Path) -> Result<PathBuf> {
    let src = root.join("testcluster");
    let mut hash = Sha256::new();
    let mut files: Vec<PathBuf> = Vec::new();
    collect_sources(&src, &mut files)?;
    files.sort();
    for f in &files {
        hash.update(f.strip_prefix(&src).unwrap_or(f).to_string_lossy().as_bytes());
        hash.update(std::fs::read(f)?);
    }
    let key = crate::git::hex(&hash.finalize())[..16].to_string();
    let bin = root.join(format!("target/testcluster/{key}/testcluster"));
    if bin.is_file() {
        return Ok(bin);
    }
    require_go()?;
    eprintln!(
        "building the control plane (etcd, kube-apiserver, kube-controller-manager, node agent) from testcluster/"
    );
    let _env = go_env(sh, root);
    let _dir = sh.sh.push_dir(&src);
    sh.run(cmd!(sh.sh, "go build -trimpath -o {bin} ."))
        .context("cannot build the control plane from testcluster/ (go build's output is above)")?;
    Ok(bin)
}

fn collect_sources(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_sources(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "go") || path.ends_with("go.mod") || path.ends_with("go.sum") {
            out.push(path);
        }
    }
    Ok(())
}

/// `helm` of one release, built with `go install` from helm.sh/helm/v3 or v4.
pub(crate) fn build_helm(sh: &Shell, root: &Path, version: &str) -> Result<PathBuf> {
    let major = version.trim_start_matches('v').split('.').next().unwrap_or_default();
    let dir = root.join(format!("target/tools/helm-{version}"));
    let bin = dir.join("helm");
    if bin.is_file() {
        return Ok(bin);
    }
    require_go()?;
    eprintln!("building helm {version} from helm.sh/helm/v{major}");
    let _env = go_env(sh, root);
    let _bin = sh.sh.push_env("GOBIN", &dir);
    let ldflags = format!("-X helm.sh/helm/v{major}/internal/version.version={version}");
    let package = format!("helm.sh/helm/v{major}/cmd/helm@{version}");
    sh.run(cmd!(sh.sh, "go install -trimpath -ldflags {ldflags} {package}"))
        .with_context(|| format!("cannot build helm {version} with go install (its output is above)"))?;
    Ok(bin)
}

/// The running control plane; stopped (pods, network namespaces and all) when dropped.
pub(crate) struct RunningCluster {
    child: Child,
    pub dir: PathBuf,
}

impl RunningCluster {
    /// Starts the control plane in `dir` and waits until its node is Ready.
    pub fn start(bin: &Path, dir: &Path) -> Result<RunningCluster> {
        std::fs::create_dir_all(dir)?;
        let log = std::fs::File::create(dir.with_extension("log"))?;
        let ready = dir.join("ready.json");
        let _ = std::fs::remove_file(&ready);
        eprintln!("$ {} run -dir {}   (log: {})", bin.display(), dir.display(), dir.with_extension("log").display());
        let child = Command::new(bin)
            .args(["run", "-dir"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start the control plane")?;
        let mut running = RunningCluster { child, dir: dir.to_path_buf() };
        let start = Instant::now();
        while !ready.is_file() {
            if let Some(status) = running.child.try_wait()? {
                bail!(
                    "the control plane exited ({status}) before it was ready: see {}",
                    dir.with_extension("log").display()
                );
            }
            if start.elapsed() > Duration::from_secs(180) {
                bail!("the control plane was not ready after 180 s: see {}", dir.with_extension("log").display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("control plane ready in {:.1} s", start.elapsed().as_secs_f64());
        Ok(running)
    }
}

impl Drop for RunningCluster {
    fn drop(&mut self) {
        sigterm(self.child.id());
        let deadline = Instant::now() + Duration::from_secs(30);
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

/// SIGTERM lets the control plane stop its pods and remove its network namespaces.
fn sigterm(pid: u32) {
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
}

/// A registry on 127.0.0.1 shared by the test run (Debian's `docker-registry`): it holds the test
/// chart and the server images the node agent pulls.
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
