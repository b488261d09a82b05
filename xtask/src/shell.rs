//! The one place that runs external programs. Every command is echoed before it runs; with
//! `--dry-run` commands that change something are echoed and skipped.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use xshell::Cmd;

pub struct Shell {
    pub sh: xshell::Shell,
    pub dry_run: bool,
}

impl Shell {
    pub fn new(dry_run: bool) -> Result<Shell> {
        Ok(Shell { sh: xshell::Shell::new().context("cannot set up the command shell")?, dry_run })
    }

    /// Runs a command that changes something; skipped under `--dry-run`.
    pub fn run(&self, cmd: Cmd<'_>) -> Result<()> {
        if self.echo(&cmd) {
            return Ok(());
        }
        cmd.quiet().run().map_err(Into::into)
    }

    /// Runs a read-only query: it runs under `--dry-run` too.
    pub fn query(&self, cmd: Cmd<'_>) -> Result<std::process::Output> {
        eprintln!("$ {cmd}");
        Ok(cmd.quiet().ignore_status().output()?)
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

/// Where `program` is on PATH, if anywhere.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| is_executable(p))
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

pub fn require_program(program: &str, hint: &str) -> Result<PathBuf> {
    match find_program(program) {
        Some(p) => Ok(p),
        None => bail!("`{program}` not found on PATH: {hint}"),
    }
}
