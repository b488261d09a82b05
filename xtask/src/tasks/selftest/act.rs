//! nektos/act, the community runner for GitHub Actions, with which the tests run the workflows on
//! this host: built once per version with `go install` and cached under `target/`.

use crate::programs::shell::Shell;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use xshell::cmd;

pub const ACT: &str = "v0.2.89";

pub(crate) fn build(sh: &Shell, root: &Path) -> Result<PathBuf> {
    let dir = root.join(format!("target/tools/act-{ACT}"));
    let act = dir.join("act");
    if act.is_file() {
        return Ok(act);
    }
    crate::local::go_build::require_go()?;
    eprintln!("building act {ACT} (it runs the GitHub workflows in the tests) with go install");
    let _env = crate::local::go_build::go_env(sh, root);
    let _bin = sh.sh.push_env("GOBIN", &dir);
    let _static = sh.sh.push_env("CGO_ENABLED", "0");
    let ldflags = format!("-s -w -X main.version={}", ACT.trim_start_matches('v'));
    let package = format!("github.com/nektos/act@{ACT}");
    crate::local::go_cache::dropping_added(sh, root, "", || {
        sh.run(cmd!(sh.sh, "go install -trimpath -ldflags {ldflags} {package}"))
            .context("cannot build act (go install's output is above)")
    })?;
    Ok(act)
}
