//! The Docker config `dev` builds with (no Docker daemon): in `<dir>/docker`, the buildx plugin the
//! local parts carry and a `remote` builder on the environment's BuildKit, made anew each time
//! (the environment, and with it the endpoint, may be another).

use crate::programs::shell::Shell;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use xshell::cmd;

pub(super) fn docker_config(sh: &Shell, dir: &Path, buildx: &Path, endpoint: &str) -> Result<PathBuf> {
    let config = dir.join("docker");
    let plugins = config.join("cli-plugins");
    std::fs::create_dir_all(&plugins).with_context(|| format!("cannot make {}", plugins.display()))?;
    let plugin = plugins.join("docker-buildx");
    let _ = std::fs::remove_file(&plugin);
    std::os::unix::fs::symlink(buildx, &plugin)?;
    let _ = std::fs::remove_dir_all(config.join("buildx"));
    let _env = sh.sh.push_env("DOCKER_CONFIG", &config);
    sh.run(cmd!(sh.sh, "docker buildx create --name kmcp-dev --driver remote {endpoint} --use"))
        .context("cannot make a buildx builder on the local BuildKit")?;
    Ok(config)
}
