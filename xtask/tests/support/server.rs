//! Where the real `kubernetes-mcp-server` binaries are (npm, prepared by `cargo xtask test`): the
//! test images carry them.

use std::path::PathBuf;

/// The binary for this machine's architecture.
pub fn binary() -> PathBuf {
    binary_for(match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    })
}

/// The binary for `arch` (amd64, arm64), prepared by `cargo xtask test`.
pub fn binary_for(arch: &str) -> PathBuf {
    let var = format!("MCP_SERVER_BIN_{}", arch.to_uppercase());
    let path = std::env::var_os(&var).map(PathBuf::from).unwrap_or_else(|| {
        let version = if arch == "arm64" {
            xtask::tasks::selftest::SERVER_VERSION_ARM64
        } else {
            xtask::tasks::selftest::SERVER_VERSION
        };
        PathBuf::from(format!(
            "{}/../target/test-deps/kubernetes-mcp-server-linux-{arch}-{version}",
            env!("CARGO_MANIFEST_DIR")
        ))
    });
    assert!(path.is_file(), "{} is missing: run the tests with `cargo xtask test`, which fetches it", path.display());
    path
}
