//! The real BuildKit daemon and buildx plugin the `image` tests build with, and helm 4, which
//! shares most of their libraries: built from Go at pinned versions in one module and cached under
//! `target/`; the daemon runs with its OCI worker on Debian's runc,
//! its state and socket under `target/`, in a mount namespace of its own.

use super::helm::HELM4;
use crate::programs::shell::{start_background, Shell};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use xshell::cmd;

pub(crate) const BUILDKIT: &str = "v0.34.2";
pub(crate) const BUILDX: &str = "v0.38.2";

/// What `testcluster/buildkitd/` builds (see its `tools.go`), all statically, with one `go build`.
pub(crate) struct Tools {
    pub buildkitd: PathBuf,
    pub buildx: PathBuf,
    pub helm4: PathBuf,
}

/// `buildkitd`, the buildx plugin and helm 4, built together in `testcluster/buildkitd/`.
pub(crate) fn build(sh: &Shell, root: &Path) -> Result<Tools> {
    let dir = root.join(format!("target/tools/buildkitd-{BUILDKIT}-buildx-{BUILDX}-helm-{HELM4}"));
    let tools = Tools { buildkitd: dir.join("buildkitd"), buildx: dir.join("buildx"), helm4: dir.join("helm") };
    if [&tools.buildkitd, &tools.buildx, &tools.helm4].iter().any(|p| !p.is_file()) {
        super::go_build::require_go()?;
        eprintln!(
            "building buildkitd {BUILDKIT}, the buildx plugin {BUILDX} and helm {HELM4} from testcluster/buildkitd/"
        );
        let _env = super::go_build::go_env(sh, root);
        let _static = sh.sh.push_env("CGO_ENABLED", "0");
        let _dir = sh.sh.push_dir(root.join("testcluster/buildkitd"));
        let tags = "osusergo netgo static_build";
        let ldflags = format!(
            "-s -w -X github.com/moby/buildkit/version.Version={BUILDKIT} -X github.com/docker/buildx/version.Version={BUILDX} -X helm.sh/helm/v4/internal/version.version={HELM4}"
        );
        let packages = [
            "github.com/moby/buildkit/cmd/buildkitd",
            "github.com/docker/buildx/cmd/buildx",
            "helm.sh/helm/v4/cmd/helm",
        ];
        let out = format!("{}/", dir.display());
        super::go_cache::dropping_added(sh, root, tags, || {
            sh.run(cmd!(sh.sh, "go build -trimpath -tags {tags} -ldflags {ldflags} -o {out} {packages...}"))
                .context("cannot build buildkitd, buildx and helm 4 (go build's output is above)")
        })?;
    }
    Ok(tools)
}

/// What BuildKit keeps: upstream's module and build caches for two platforms and their snapshots
/// took 5.7 GB; twice that leaves room for a second fork and the images of earlier rounds.
pub(crate) const KEEP: &str = "12GB";

/// Makes `config` a Docker config (`DOCKER_CONFIG`) holding the buildx plugin and, given
/// `(name, endpoint)`, a `remote` builder of that name on that BuildKit, in use; made anew each
/// time (the endpoint may be another by now). No Docker daemon is needed.
pub fn buildx_config(sh: &Shell, config: &Path, buildx: &Path, builder: Option<(&str, &str)>) -> Result<()> {
    let plugins = config.join("cli-plugins");
    std::fs::create_dir_all(&plugins).with_context(|| format!("cannot make {}", plugins.display()))?;
    let plugin = plugins.join("docker-buildx");
    let _ = std::fs::remove_file(&plugin);
    std::os::unix::fs::symlink(buildx, &plugin)?;
    let _ = std::fs::remove_dir_all(config.join("buildx"));
    if let Some((name, endpoint)) = builder {
        let _env = sh.sh.push_env("DOCKER_CONFIG", config);
        sh.run(cmd!(sh.sh, "docker buildx create --name {name} --driver remote {endpoint} --use"))
            .context("cannot make a buildx builder on the local BuildKit")?;
    }
    Ok(())
}

/// The running daemon; stopped, and the cgroups its builds left removed, when dropped.
pub(crate) struct RunningBuildkit {
    child: Child,
    pub(crate) socket: PathBuf,
    cgroup: &'static str,
}

impl RunningBuildkit {
    /// Starts `buildkitd` with its state in `dir`; its build steps use the host's network, where
    /// the test registries listen on 127.0.0.1. Its cache is kept under [`KEEP`], least recently
    /// used first, one policy for every record: BuildKit's default policies drop cache mounts
    /// unused for 48 h first, and Go's caches are what a rebuild needs most.
    /// Its build steps run in `<cgroup>/buildkit/<id>` (in every hierarchy): a name of its own for
    /// each user of it, so that one's cleanup never removes another's.
    pub fn start(buildkitd: &Path, dir: &Path, cgroup: &'static str) -> Result<RunningBuildkit> {
        std::fs::create_dir_all(dir)?;
        let socket = dir.join("buildkitd.sock");
        let _ = std::fs::remove_file(&socket);
        let config = dir.join("buildkitd.toml");
        std::fs::write(
            &config,
            format!(
                "root = {:?}\n[grpc]\naddress = [{:?}]\n[worker.oci]\nenabled = true\nbinary = \"runc\"\nnetworkMode = \"host\"\ndefaultCgroupParent = {cgroup:?}\ngc = true\n[[worker.oci.gcpolicy]]\nall = true\nmaxUsedSpace = \"{KEEP}\"\n[worker.containerd]\nenabled = false\n",
                dir.join("state").display().to_string(),
                format!("unix://{}", socket.display()),
            ),
        )?;
        let log = std::fs::File::create(dir.with_extension("log"))?;
        let mut command = Command::new("unshare");
        command.args(["--mount", "--propagation", "private", "--"]).arg(buildkitd).arg("--config").arg(&config);
        command.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        let child = start_background(command)?;
        let mut running = RunningBuildkit { child, socket, cgroup };
        let start = Instant::now();
        while std::os::unix::net::UnixStream::connect(&running.socket).is_err() {
            if let Some(status) = running.child.try_wait()? {
                bail!("buildkitd exited ({status}): see {}", dir.with_extension("log").display());
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("buildkitd did not listen within 30 s: see {}", dir.with_extension("log").display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(running)
    }
}

impl Drop for RunningBuildkit {
    fn drop(&mut self) {
        crate::programs::signals::stop(&mut self.child, Duration::from_secs(20));
        let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else { return };
        for h in hierarchies.flatten() {
            let parent = h.path().join(self.cgroup);
            for step in std::fs::read_dir(parent.join("buildkit")).into_iter().flatten().flatten() {
                let _ = std::fs::remove_dir(step.path());
            }
            let _ = std::fs::remove_dir(parent.join("buildkit"));
            let _ = std::fs::remove_dir(parent);
        }
    }
}
