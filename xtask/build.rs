//! The commit the tool is built from, for `cargo xtask --version` (`unknown` outside a git
//! checkout), and the workspace's `deploy/` files the tool carries, copied where it includes them.
//!
//! Every path given to cargo is relative to this package: cargo keeps such paths relative, so a
//! copy of the workspace elsewhere with its files' times kept (act's job directories, in the
//! workflow tests) finds the build made before still fresh instead of compiling the crate again.

use std::path::Path;
use std::process::Command;

/// The files under `deploy/` that the tool includes (`include_str!` from `OUT_DIR`).
const DEPLOY_FILES: [&str; 3] = ["values.yaml", "chart.yaml", "rbac.yaml"];

fn main() {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    for name in DEPLOY_FILES {
        let from = Path::new("../deploy").join(name);
        println!("cargo:rerun-if-changed={}", from.display());
        std::fs::copy(&from, Path::new(&out).join(name)).expect("deploy/ is beside xtask/");
    }
    let git = Path::new("../.git");
    println!("cargo:rerun-if-changed={}", git.join("HEAD").display());
    if let Ok(head) = std::fs::read_to_string(git.join("HEAD")) {
        // Only files that exist: a missing one makes cargo run this script on every build.
        let branch = head.trim().strip_prefix("ref: ").map(|b| git.join(b));
        for file in branch.into_iter().chain([git.join("packed-refs")]).filter(|f| f.exists()) {
            println!("cargo:rerun-if-changed={}", file.display());
        }
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=KMCP_COMMIT={commit}");
}
