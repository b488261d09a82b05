//! Go's caches under `target/go` kept to what later builds use: a pinned tool (helm, BuildKit,
//! buildx, kube-router) is built once per version, so the compiled packages and extracted module
//! sources its build adds are removed once its binary exists; the standard library it compiles
//! with and the module zips stay.

use crate::programs::shell::Shell;
use anyhow::{Context, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Where Go's build cache (`cache`) and module cache (`mod`) live.
pub(crate) fn dir(root: &Path) -> PathBuf {
    root.join("target/go")
}

/// Runs `build` with Go's caches (and Go's environment already set), then removes
/// what it added to them. The standard library, built with the same `tags` first, stays for the
/// next build: each would otherwise compile it again (about 20 s).
pub(crate) fn dropping_added<T>(sh: &Shell, root: &Path, tags: &str, build: impl FnOnce() -> Result<T>) -> Result<T> {
    let tags = match tags {
        "" => Vec::new(),
        tags => vec!["-tags", tags],
    };
    sh.run(xshell::cmd!(sh.sh, "go build -trimpath {tags...} std")).context("cannot build Go's standard library")?;
    let go = dir(root);
    let before = entries(&go);
    let built = build();
    for added in entries(&go).difference(&before) {
        let _ = match added.is_dir() {
            true => std::fs::remove_dir_all(added),
            false => std::fs::remove_file(added),
        };
    }
    built
}

/// The build cache's entries (`cache/<2 hex>/<id>-a|-d`) and the module cache's extracted modules
/// (`mod/<path>@<version>`, outside `mod/cache`).
fn entries(go: &Path) -> HashSet<PathBuf> {
    let mut paths = HashSet::new();
    for shard in children(&go.join("cache")).into_iter().filter(|p| p.is_dir()) {
        paths.extend(children(&shard));
    }
    modules(&go.join("mod/cache"), &go.join("mod"), &mut paths);
    paths
}

fn modules(downloads: &Path, dir: &Path, out: &mut HashSet<PathBuf>) {
    for path in children(dir) {
        if !path.is_dir() || path == downloads {
            continue;
        }
        match path.file_name().unwrap_or_default().to_string_lossy().contains('@') {
            true => drop(out.insert(path)),
            false => modules(downloads, &path, out),
        }
    }
}

fn children(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.flatten().map(|e| e.path()).collect()
}
