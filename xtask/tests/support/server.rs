//! Where the real `kubernetes-mcp-server` binaries are (npm, prepared by `cargo xtask test`), and
//! the image layer that carries one.

use std::path::PathBuf;
use std::process::Command;

/// The binary for this machine's architecture.
pub fn binary() -> PathBuf {
    binary_for(match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    })
}

/// The binary for `arch` (amd64, arm64), prepared by `cargo xtask test`.
pub(crate) fn binary_for(arch: &str) -> PathBuf {
    let var = format!("MCP_SERVER_BIN_{}", arch.to_uppercase());
    let path = std::env::var_os(&var).map(PathBuf::from).unwrap_or_else(|| {
        let version = if arch == "arm64" {
            xtask::tasks::selftest::SERVER_VERSION_ARM64
        } else {
            xtask::tasks::selftest::SERVER_VERSION
        };
        super::workspace().join(format!("target/test-deps/kubernetes-mcp-server-linux-{arch}-{version}"))
    });
    assert!(path.is_file(), "{} is missing: run the tests with `cargo xtask test`, which fetches it", path.display());
    path
}

/// The server image's layer for one architecture: the real binary at `/app/kubernetes-mcp-server`
/// (npm, prepared by `cargo xtask test`), as a gzipped tar built once and kept in `target/`; with
/// its diff_id (the sha256 of the uncompressed tar).
pub fn layer(arch: &str) -> (Vec<u8>, String) {
    layer_of(&binary_for(arch), "app/kubernetes-mcp-server")
}

/// The guard (`guard/`, built by `cargo xtask test`) for this machine.
pub fn guard_binary() -> PathBuf {
    let path = PathBuf::from(
        std::env::var_os("KMCP_GUARD_BIN").expect("KMCP_GUARD_BIN: run the tests with `cargo xtask test`"),
    );
    assert!(path.is_file(), "{} is missing: run the tests with `cargo xtask test`, which builds it", path.display());
    path
}

/// A layer holding `bin` at `at` (a path under a directory, without the leading `/`), built once
/// and kept beside `bin`; with its diff_id.
pub(crate) fn layer_of(bin: &std::path::Path, at: &str) -> (Vec<u8>, String) {
    let deps = bin.parent().unwrap().to_path_buf();
    let layer = deps.join(format!("layer-{}.tar.gz", bin.file_name().unwrap().to_string_lossy()));
    let diff_id = layer.with_extension("diffid");
    let top = at.split('/').next().unwrap();
    if !diff_id.is_file() {
        let stage = tempfile::tempdir_in(&deps).unwrap();
        std::fs::create_dir_all(stage.path().join(at).parent().unwrap()).unwrap();
        std::fs::copy(bin, stage.path().join(at)).unwrap();
        let tar = stage.path().join("layer.tar");
        let run = |cmd: &mut Command| assert!(cmd.status().unwrap().success(), "{cmd:?} failed");
        run(Command::new("tar")
            .args(["--owner=0", "--group=0", "--mtime=2026-01-01", "-cf"])
            .arg(&tar)
            .arg("-C")
            .arg(stage.path())
            .arg(top));
        let id = super::registry::sha(&std::fs::read(&tar).unwrap());
        run(Command::new("gzip").args(["-n", "-1"]).arg(&tar));
        std::fs::rename(stage.path().join("layer.tar.gz"), &layer).unwrap();
        // Renamed into place, never written there: every test binary starts at once, and another
        // one that found a diffid file half written read an empty diff_id (seen in a cold run).
        std::fs::write(stage.path().join("diffid"), id).unwrap();
        std::fs::rename(stage.path().join("diffid"), &diff_id).unwrap();
    }
    (std::fs::read(layer).unwrap(), std::fs::read_to_string(diff_id).unwrap())
}

/// The guard for this machine's architecture, as `cargo xtask image` pushes it beside the server
/// (by digest, a manifest of one platform): its digest.
pub(crate) async fn push_guard(client: &oci_client::Client, base: &oci_client::Reference) -> String {
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    };
    let (layer, diff_id) = layer_of(&guard_binary(), "kmcp-guard");
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"Entrypoint": ["/kmcp-guard"], "User": "65532:65532"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    super::registry::push_manifest(client, base, &config, &layer).await.1
}
