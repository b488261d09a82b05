//! The one place that runs external programs and the one that knows about `--dry-run`: every
//! command is echoed before it runs; under `--dry-run` a command that changes something is echoed
//! and skipped, and a plan is printed instead of carried out.

use crate::plan::Plan;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use xshell::Cmd;

/// The flags of the tasks that change something.
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct DryRun {
    /// Print the plan (what would change, and why); change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: print the plan as JSON, the same data as the text
    #[arg(long, requires = "dry_run")]
    pub json: bool,
}

/// Runs commands and carries plans out, or, under `--dry-run`, prints them: the one place that
/// knows about dry runs. Built once in `main`.
pub struct Shell {
    pub(crate) sh: xshell::Shell,
    flags: DryRun,
}

impl Shell {
    pub fn new(flags: DryRun) -> Result<Shell> {
        Ok(Shell { sh: xshell::Shell::new().context("cannot set up the command shell")?, flags })
    }

    /// Under `--dry-run` prints the plan (text or JSON) and returns `None`; otherwise carries it
    /// out with `execute`.
    pub(crate) async fn carry_out<T, F: std::future::Future<Output = Result<T>>>(
        &self,
        plan: &Plan,
        execute: impl FnOnce() -> F,
    ) -> Result<Option<T>> {
        if !self.flags.dry_run {
            return execute().await.map(Some);
        }
        if self.flags.json {
            println!("{}", serde_json::to_string_pretty(plan)?);
        } else {
            println!("{}", plan.text());
        }
        Ok(None)
    }

    /// What a plan needs but cannot get (an unreachable cluster, an unresolved chart): an error
    /// for a real run; a dry run notes it and plans without it.
    pub(crate) fn unless_dry_run<T>(&self, result: Result<T>, notes: &mut Vec<String>) -> Result<Option<T>> {
        match result {
            Ok(v) => Ok(Some(v)),
            Err(e) if self.flags.dry_run => {
                notes.push(format!("{e:#}"));
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// A call to a remote party (a registry) that a dry run names and skips.
    pub(crate) async fn remote<T, F: std::future::Future<Output = Result<T>>>(
        &self,
        what: &str,
        call: impl FnOnce() -> F,
    ) -> Result<Option<T>> {
        if self.flags.dry_run {
            println!("would ask registry: {what}");
            return Ok(None);
        }
        call().await.map(Some)
    }

    /// Runs a command that changes something; skipped under `--dry-run`.
    pub(crate) fn run(&self, cmd: Cmd<'_>) -> Result<()> {
        if self.echo(&cmd) {
            return Ok(());
        }
        scrub(cmd).quiet().run().map_err(Into::into)
    }

    /// Runs a command that changes something and must not be cut off: Ctrl-C is passed on to it
    /// (it runs in a process group of its own) and the tool waits for it to end. `Interrupted`
    /// when that happened; skipped under `--dry-run`.
    pub(crate) async fn run_to_end(&self, cmd: Cmd<'_>) -> Result<Ended> {
        if self.echo(&cmd) {
            return Ok(Ended::Done);
        }
        let shown = cmd.to_string();
        let mut command: std::process::Command = scrub(cmd).into();
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child =
            tokio::process::Command::from(command).spawn().with_context(|| format!("cannot run {shown}"))?;
        let mut interrupted = false;
        let status = loop {
            tokio::select! {
                status = child.wait() => break status?,
                _ = tokio::signal::ctrl_c(), if !interrupted => {
                    interrupted = true;
                    eprintln!("interrupted: passing Ctrl-C on to `{shown}` and waiting for it to end");
                    if let Some(pid) = child.id() {
                        let pid = pid.to_string();
                        let _ = self.query(xshell::cmd!(self.sh, "kill -INT {pid}"));
                    }
                }
            }
        };
        if interrupted {
            return Ok(Ended::Interrupted(status));
        }
        if !status.success() {
            bail!("command exited with {status}: {shown}");
        }
        Ok(Ended::Done)
    }

    /// A read-only command that a dry run names and skips (it may call out or be slow).
    pub(crate) fn probe(&self, cmd: Cmd<'_>) -> Result<Option<std::process::Output>> {
        if self.echo(&cmd) {
            return Ok(None);
        }
        Ok(Some(scrub(cmd).quiet().ignore_status().output()?))
    }

    /// Runs a read-only query: it runs under `--dry-run` too.
    pub(crate) fn query(&self, cmd: Cmd<'_>) -> Result<std::process::Output> {
        eprintln!("$ {cmd}");
        Ok(scrub(cmd).quiet().ignore_status().output()?)
    }

    fn echo(&self, cmd: &Cmd<'_>) -> bool {
        if self.flags.dry_run {
            println!("would run: {cmd}");
        } else {
            eprintln!("$ {cmd}");
        }
        self.flags.dry_run
    }
}

/// How a command given to `run_to_end` ended.
#[derive(Debug)]
pub(crate) enum Ended {
    Done,
    /// Ctrl-C came while it ran; it was passed on and the command ended with this status.
    Interrupted(std::process::ExitStatus),
}

/// The registry tokens this tool reads: no child process gets them in its environment (docker
/// login gets the token on stdin).
pub(crate) const SECRET_VARS: [&str; 3] = ["GHCR_TOKEN", "GITHUB_TOKEN", "GH_TOKEN"];

fn scrub(cmd: Cmd<'_>) -> Cmd<'_> {
    SECRET_VARS.iter().fold(cmd, |c, v| c.env_remove(v))
}

/// Where `program` is on PATH, if anywhere.
pub(crate) fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| is_executable(p))
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

pub(crate) fn require_program(program: &str, hint: &str) -> Result<PathBuf> {
    match find_program(program) {
        Some(p) => Ok(p),
        None => bail!("`{program}` not found on PATH: {hint}"),
    }
}
