//! `cargo xtask test`: what it takes and the versions of the parts it prepares; the preparing and
//! the run itself (`prepare`) need Linux (network and mount namespaces, cgroups).

#[cfg(target_os = "linux")]
mod act;
#[cfg(target_os = "linux")]
mod fetch;
#[cfg(target_os = "linux")]
mod prepare;
#[cfg(target_os = "linux")]
mod run_binaries;

use crate::programs::shell::Shell;
use anyhow::Result;

/// The real server binary the tests run (npm package of the same version).
pub const SERVER_VERSION: &str = "0.0.67";
/// The arm64 binary the test images carry (npm has no 0.0.67 for linux-arm64); never run here.
pub const SERVER_VERSION_ARM64: &str = "0.0.66";
/// The oldest server `verify`'s client is tried against: npm's newest at or before the v0.0.55
/// content (it has no 0.0.55), which answers `initialize` with protocol 2025-06-18.
pub const SERVER_VERSION_OLDEST: &str = "0.0.54";
/// The test binaries that never reach a cluster: they run beside the tests with a second node,
/// whose rollouts leave the cores idle, without the variables that lead the tests to a cluster.
pub(crate) const WITHOUT_CLUSTER: [&str; 7] = ["docs", "help", "image", "tidy", "workflows", "workspace", "xtask"];
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Prepare the same parts, then run the benchmarks (`cargo bench`) instead of the tests
    #[arg(long)]
    pub(crate) bench: bool,
    /// Extra arguments for `cargo test` (e.g. a test name filter)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) cargo_args: Vec<String>,
}

/// Prepares the parts, starts the cluster and runs the tests (or the benchmarks).
pub fn run(sh: &Shell, args: Args) -> Result<()> {
    #[cfg(target_os = "linux")]
    return prepare::run(sh, args);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (sh, args);
        anyhow::bail!("cargo xtask test needs Linux (the test node lives in network and mount namespaces of its own): run it on a Linux machine")
    }
}
