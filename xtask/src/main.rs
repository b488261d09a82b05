//! The `cargo xtask` command line: one subcommand per task, each handed to its module.

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use xtask::plan::data::{DryRun, Plan};
use xtask::programs::shell::Shell;
use xtask::tasks::{dev, down, image, selftest, status, up, verify};

/// Take a kubernetes-mcp-server fork from source to a running deployment on k0s, and back out.
#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    arg_required_else_help = true,
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("KMCP_COMMIT"), ")")
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build the fork's image for linux/amd64 and linux/arm64, tag dev-<sha> and dev-latest, push it
    Image(image::Args),
    /// Deploy the image into the cluster with the fork's chart (pushed by `image`), read-only, and print its NodePort URL
    Up(Box<up::Args>),
    /// Remove the release and everything `up` applied (the namespace only with --delete-namespace)
    Down(down::Args),
    /// Show the release, image, mode, pods, nodePort and URL
    Status(status::Args),
    /// Prove a deployment: MCP handshake over the NodePort, and read-but-not-write RBAC
    Verify(verify::Args),
    /// Try the fork on this machine (Linux, root): a local registry, BuildKit and cluster, the image built, deployed and verified
    Dev(dev::Args),
    /// Run the test suite on real parts (Linux, root): installs Debian's packages, npm and PyPI tools and builds the Go parts first (17-28 min on a fresh machine)
    Test(selftest::Args),
}

fn main() -> ExitCode {
    // `cargo run` gives a package with a build script its OUT_DIR; an inner cargo (the tests', act's)
    // that inherits it reruns ring's build script, and the TLS crates above it, every time.
    std::env::remove_var("OUT_DIR");
    let cli = Cli::parse();
    xtask::common::tls::init();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let flags = match &cli.task {
        Task::Up(args) => args.dry_run,
        Task::Down(args) => args.dry_run,
        Task::Image(args) => DryRun { dry_run: args.dry_run, json: false },
        Task::Status(args) => DryRun { dry_run: args.dry_run, json: false },
        Task::Verify(_) | Task::Dev(_) | Task::Test(_) => DryRun::default(),
    };
    let result = runtime.block_on(async {
        let sh = Shell::new(flags.dry_run)?;
        match cli.task {
            Task::Image(args) => image::run(&sh, args).await,
            Task::Up(args) => up::run(&sh, *args, |plan| carry_out(flags, plan)).await,
            Task::Down(args) => down::run(&sh, args, |plan| carry_out(flags, plan)).await,
            Task::Status(args) => status::run(&sh, args).await,
            Task::Verify(args) => verify::run(args).await,
            Task::Dev(args) => dev::run(&sh, args).await,
            Task::Test(args) => selftest::run(&sh, args),
        }
    });
    // A blocking task still running (a kubeconfig plugin that would not stop) does not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", xtask::common::error_text::one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The one decision between planning and changing: under `--dry-run` the plan is printed (as text,
/// or as JSON with `--json`) and not carried out.
fn carry_out(flags: DryRun, plan: &Plan) -> anyhow::Result<bool> {
    if !flags.dry_run {
        return Ok(true);
    }
    if flags.json {
        println!("{}", serde_json::to_string_pretty(plan)?);
    } else {
        println!("{}", plan.text());
    }
    Ok(false)
}
