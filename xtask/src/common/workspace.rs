//! Where the workspace this xtask serves is: its `guard/` and `testcluster/` sources, its `target/`.

use std::path::{Path, PathBuf};

/// The workspace of the `cargo run` that started this process (cargo names the package's directory
/// in `CARGO_MANIFEST_DIR`), else the one it was built in. A build is reused from another copy of
/// the same workspace when the sources' times match (act's jobs, each in a new directory): the
/// directory it was built in may be gone by then.
pub(crate) fn root() -> PathBuf {
    let running = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let package = running
        .filter(|dir| dir.file_name().is_some_and(|n| n == "xtask") && dir.join("Cargo.toml").is_file())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    package.parent().map(Path::to_path_buf).expect("xtask lives in the workspace")
}
