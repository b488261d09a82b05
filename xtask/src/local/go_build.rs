//! How the local parts are built with Go: its environment (caches under `target/go`), the check
//! that Go is there, and a key for a module's sources that names their cached build.

use crate::programs::shell::{require_program, Shell};
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Go's caches (and its GOPATH) live under `target/` so that a cached `target/` keeps warm runs
/// short and nothing is written to the user's home. Nothing is compiled with DWARF and every
/// binary is linked without symbol tables (`-s -w`): a cold run compiles a tenth faster, links
/// faster, and Go's build cache is a fifth smaller.
pub(crate) fn go_env<'a>(sh: &'a Shell, root: &Path) -> Vec<xshell::PushEnv<'a>> {
    let go = super::go_cache::dir(root);
    vec![
        sh.sh.push_env("GOCACHE", go.join("cache")),
        sh.sh.push_env("GOMODCACHE", go.join("mod")),
        // `go install PKG@VERSION` keeps the checksum database's latest tree under GOPATH.
        sh.sh.push_env("GOPATH", go.join("path")),
        sh.sh.push_env("GOFLAGS", "-modcacherw -buildvcs=false -gcflags=all=-dwarf=false"),
        sh.sh.push_env("GOTOOLCHAIN", "local"),
    ]
}

/// The Go the local parts build with (BuildKit v0.34.2 asks for 1.26.8): `dev` checks it, the
/// tests need it.
pub(crate) const GO_AT_LEAST: (u32, u32, u32) = (1, 26, 8);

pub(crate) fn require_go() -> Result<()> {
    let (a, b, c) = GO_AT_LEAST;
    let how = format!(
        "install Go {a}.{b}.{c} or newer (https://go.dev/dl/); the tests build the control plane and helm with it"
    );
    require_program("go", &how).map(drop)
}

/// A key for a Go module's sources: its `.go` files, `go.mod` and `go.sum`, without the modules
/// nested in it.
pub(crate) fn source_key(src: &Path) -> Result<String> {
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
