//! The one place that runs external programs: every command is echoed before it runs; under
//! `--dry-run` a command that changes something is echoed and skipped.

use crate::programs::signals;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use xshell::Cmd;

/// Runs commands, or, under `--dry-run`, names those that would change something. Built once in
/// `main`.
pub struct Shell {
    pub(crate) sh: xshell::Shell,
    dry_run: bool,
}

impl Shell {
    pub fn new(dry_run: bool) -> Result<Shell> {
        Ok(Shell { sh: xshell::Shell::new().context("cannot set up the command shell")?, dry_run })
    }

    /// Whether this run only says what it would do.
    pub(crate) fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// What a plan needs but cannot get (an unreachable cluster, an unresolved chart): an error
    /// for a real run; a dry run notes it and plans without it.
    pub(crate) fn unless_dry_run<T>(&self, result: Result<T>, notes: &mut Vec<String>) -> Result<Option<T>> {
        match result {
            Ok(v) => Ok(Some(v)),
            Err(e) if self.dry_run => {
                notes.push(crate::common::error_text::one_line(&e));
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
        if self.dry_run {
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

    /// Runs a command that changes something and must not be cut off: SIGINT, SIGTERM or SIGHUP
    /// is passed on to it (it runs in a process group of its own) and the tool waits for it to end;
    /// it dies with the tool if the tool is killed outright. `Interrupted` when that happened;
    /// skipped under `--dry-run`.
    pub(crate) async fn run_to_end(&self, cmd: Cmd<'_>) -> Result<Ended> {
        if self.echo(&cmd) {
            return Ok(Ended::Done);
        }
        let shown = cmd.to_string();
        let mut command: std::process::Command = scrub(cmd).into();
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        signals::die_with_parent(&mut command);
        let mut child =
            tokio::process::Command::from(command).spawn().with_context(|| format!("cannot run {shown}"))?;
        let mut interrupted = false;
        let status = loop {
            tokio::select! {
                status = child.wait() => break status?,
                signal = signals::next() => {
                    interrupted = true;
                    eprintln!("interrupted by {}: passing it on to `{shown}` and waiting for it to end", signals::name(signal));
                    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                        signals::send(-pid, signal);
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

    /// Runs a command that changes something with `stdin` written to it and its output into
    /// `log` (for builds that run side by side); skipped under `--dry-run`.
    pub(crate) fn run_logged(&self, cmd: Cmd<'_>, stdin: &str, log: &std::path::Path) -> Result<()> {
        if self.echo(&cmd) {
            return Ok(());
        }
        let shown = cmd.to_string();
        let out = std::fs::File::create(log).with_context(|| format!("cannot write {}", log.display()))?;
        let mut command: std::process::Command = scrub(cmd).into();
        command.stdin(std::process::Stdio::piped()).stdout(out.try_clone()?).stderr(out);
        let mut child = command.spawn().with_context(|| format!("cannot run {shown}"))?;
        if let Some(mut input) = child.stdin.take() {
            std::io::Write::write_all(&mut input, stdin.as_bytes())?;
        }
        let status = child.wait()?;
        if !status.success() {
            bail!("command exited with {status}: {shown}");
        }
        Ok(())
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
        if self.dry_run {
            println!("would run: {cmd}");
        } else {
            eprintln!("$ {cmd}");
        }
        self.dry_run
    }
}

/// How a command given to `run_to_end` ended.
#[derive(Debug)]
pub(crate) enum Ended {
    Done,
    /// A signal came while it ran; it was passed on and the command ended with this status.
    Interrupted(std::process::ExitStatus),
}

/// The registry tokens this tool reads: no child process gets them in its environment (docker
/// login gets the token on stdin).
pub(crate) const SECRET_VARS: [&str; 3] = ["GHCR_TOKEN", "GITHUB_TOKEN", "GH_TOKEN"];

fn scrub(cmd: Cmd<'_>) -> Cmd<'_> {
    SECRET_VARS.iter().fold(cmd, |c, v| c.env_remove(v))
}

/// Starts a long-running part (a registry, BuildKit, the cluster), echoed like every command: in a
/// process group of its own, so a Ctrl-C reaches only this tool, which stops it in order; and
/// dying with the tool if the tool is killed outright. (Its users, in `local`, are Linux-only.)
#[cfg(target_os = "linux")]
pub(crate) fn start_background(mut command: std::process::Command) -> Result<std::process::Child> {
    let shown = format!("{command:?}").replace('"', "");
    eprintln!("$ {shown}");
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    signals::die_with_parent(&mut command);
    command.spawn().with_context(|| format!("cannot start {shown}"))
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
