//! The real act (nektos/act) that `cargo xtask test` built, running this repository's workflows on
//! this host (`-P ubuntu-latest=-self-hosted`) from a committed copy of the workspace. The
//! third-party actions, which cannot be downloaded here, are mapped (`--local-repository`) to
//! stand-ins written here, each doing only what the real one guarantees the later steps; `sudo`
//! (absent here, and the tests run as root) is a stand-in on PATH that runs its command, except the
//! README's test command, which it records in a marker instead of running the tests recursively.

use super::act_standins::{KEEP_SUMMARY, STANDINS, SUDO};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository act runs the workflows of, as GitHub would name it.
pub const REPOSITORY: &str = "kmcp-dev/kmcp-xtask";

pub struct Act {
    dir: tempfile::TempDir,
    pub repo: PathBuf,
    /// Where the `sudo` stand-in writes the command it did not run.
    pub marker: PathBuf,
    /// Every step summary the jobs wrote, in order.
    pub summary: PathBuf,
    /// The secret `GITHUB_TOKEN` act is given (through its environment, never its command line):
    /// it must never appear in what act prints.
    pub secret: String,
    env: Vec<(String, std::ffi::OsString)>,
}

/// One act run: its exit, its JSON log lines, and its output whole (to look for secrets in).
pub struct ActRun {
    pub ok: bool,
    pub lines: Vec<Value>,
    pub all: String,
}

impl ActRun {
    /// The steps whose main part act ran, with their result (`success`, `failure`); a step
    /// whose `if:` was false has none.
    pub fn steps(&self) -> Vec<(String, String)> {
        self.lines
            .iter()
            .filter(|l| l["stage"] == "Main")
            .filter_map(|l| Some((l["step"].as_str()?.to_string(), l["stepResult"].as_str()?.to_string())))
            .collect()
    }

    pub(crate) fn job_result(&self) -> Option<String> {
        self.lines.iter().rev().find_map(|l| l["jobResult"].as_str().map(str::to_string))
    }

    /// Everything the steps printed, in order.
    pub fn output(&self) -> String {
        let raw = self.lines.iter().filter(|l| l["raw_output"] == true);
        raw.filter_map(|l| l["msg"].as_str()).collect::<Vec<_>>().join("\n")
    }

    pub fn assert_succeeded(&self) -> &ActRun {
        let failed: Vec<_> = self.steps().into_iter().filter(|(_, r)| r == "failure").collect();
        assert!(
            self.ok && failed.is_empty() && self.job_result().as_deref() == Some("success"),
            "act: {failed:?}\n{}",
            self.all
        );
        self
    }
}

impl Default for Act {
    fn default() -> Act {
        Act::new()
    }
}

impl Act {
    pub fn new() -> Act {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        copy_workspace(&repo);
        let marker = dir.path().join("test-step-marker");
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        write_executable(&bin.join("sudo"), SUDO);
        let standins = dir.path().join("standins");
        for (name, action) in STANDINS {
            let at = standins.join(name.replace(['/', '@'], "_"));
            std::fs::create_dir_all(&at).unwrap();
            std::fs::write(at.join("action.yml"), action).unwrap();
        }
        let root = super::workspace();
        let path = std::env::join_paths(
            std::iter::once(bin.clone()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
        )
        .unwrap();
        let env = vec![
            ("PATH".into(), path),
            ("KMCP_ACT_MARKER".into(), marker.clone().into()),
            ("KMCP_ACT_REPOS".into(), dir.path().join("repos").into()),
            ("KMCP_ACT_ARTIFACTS".into(), dir.path().join("artifacts").into()),
            ("CARGO_TARGET_DIR".into(), act_target(root).into()),
            ("XDG_CONFIG_HOME".into(), dir.path().join("config").into()),
            ("XDG_CACHE_HOME".into(), dir.path().join("cache").into()),
            ("ACT_DISABLE_VERSION_CHECK".into(), "1".into()),
            // Every `run:` step's bash reads this first: it keeps the step summary the step wrote,
            // which act deletes with the job.
            ("BASH_ENV".into(), dir.path().join("keep-summary.sh").into()),
            ("KMCP_ACT_SUMMARY".into(), dir.path().join("summary.md").into()),
        ];
        std::fs::write(dir.path().join("keep-summary.sh"), KEEP_SUMMARY).unwrap();
        let summary = dir.path().join("summary.md");
        let secret = format!("ghs_act{}", super::cluster::unique("secret").replace('-', ""));
        let act = Act { dir, repo, marker, summary, secret, env };
        // The workflows' own checkout is the stand-in's too (`--no-skip-checkout`): act's own
        // copy would give every file the time of the copy.
        act.add_repository(REPOSITORY, &act.repo);
        act
    }

    /// Makes `from` the checkout of `name` (owner/repo) that the `actions/checkout` stand-in copies.
    pub fn add_repository(&self, name: &str, from: &Path) {
        let to = self.dir.path().join("repos").join(name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        let ok = Command::new("cp").arg("-al").arg(from).arg(&to).status().unwrap().success();
        assert!(ok, "cannot copy {}", from.display());
        // The branch the workflows name by default.
        let ok = Command::new("git").args(["update-ref", "refs/heads/main", "HEAD"]).current_dir(&to).status().unwrap();
        assert!(ok.success());
    }

    /// `act EVENT` for one workflow's job, on this host, with the stand-ins.
    pub fn run(
        &self,
        event: &str,
        workflow: &str,
        job: &str,
        extra: &[String],
        env: &[(&str, &str)],
        payload: &Value,
    ) -> ActRun {
        let event_file = self.dir.path().join(format!("event-{event}-{}.json", super::cluster::unique("e")));
        std::fs::write(&event_file, payload.to_string()).unwrap();
        let mut cmd = Command::new(std::env::var("KMCP_ACT").expect("KMCP_ACT: run the tests with `cargo xtask test`"));
        cmd.arg(event)
            .args(["-W", &format!(".github/workflows/{workflow}"), "-j", job])
            .arg("-C")
            .arg(&self.repo)
            .args([
                "-P",
                "ubuntu-latest=-self-hosted",
                "--action-offline-mode",
                "--no-cache-server",
                "--json",
                "--no-skip-checkout",
            ])
            .arg("--action-cache-path")
            .arg(self.dir.path().join("actions"))
            .arg("-e")
            .arg(&event_file)
            .args(["-s", "GITHUB_TOKEN"])
            .env("GITHUB_TOKEN", &self.secret);
        for (name, _) in STANDINS {
            let at = self.dir.path().join("standins").join(name.replace(['/', '@'], "_"));
            cmd.arg("--local-repository").arg(format!("{name}={}", at.display()));
        }
        cmd.args(extra);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            let set_by_cargo = [
                "CARGO_MANIFEST_",
                "CARGO_PKG_",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
            ];
            if set_by_cargo.iter().any(|p| key.starts_with(p)) {
                cmd.env_remove(key.as_ref());
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("act");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let lines = stdout.lines().chain(stderr.lines()).filter_map(|l| serde_json::from_str(l).ok()).collect();
        ActRun { ok: out.status.success(), lines, all: format!("{stdout}\n{stderr}") }
    }
}

/// The workspace's files as git sees them (tracked, and new ones not ignored), committed in a
/// repository of their own whose origin is GitHub's `REPOSITORY`.
fn copy_workspace(to: &Path) {
    let root = super::workspace();
    let out = Command::new("git")
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(out.status.success(), "git ls-files in {}", root.display());
    for name in out.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = Path::new(std::str::from_utf8(name).unwrap());
        let from = root.join(name);
        if !from.is_file() {
            continue;
        }
        let dest = to.join(name);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&from, &dest).unwrap();
        keep_time(&from, &dest);
    }
    let repo = git2::Repository::init(to).unwrap();
    let sig = git2::Signature::new("Test", "test@example.com", &git2::Time::new(0, 0)).unwrap();
    super::commit_all_as(&repo, "the workspace under test", &sig);
    repo.remote("origin", &format!("https://github.com/{REPOSITORY}.git")).unwrap();
    // What xtask's build script watches, as old as the workspace's own HEAD.
    for name in ["HEAD", "refs/heads/master", "refs/heads/main"] {
        if to.join(".git").join(name).exists() {
            keep_time(&root.join(".git/HEAD"), &to.join(".git").join(name));
        }
    }
}

/// Gives `to` the modification time of `from`. Cargo decides by these times whether a source
/// changed: with them kept (here, and by the checkout stand-in's `cp -a`), the jobs' cargo finds
/// the xtask it built in an earlier job or run still fresh instead of compiling it again.
fn keep_time(from: &Path, to: &Path) {
    let time = std::fs::metadata(from).and_then(|m| m.modified()).unwrap();
    std::fs::File::options().write(true).open(to).and_then(|f| f.set_modified(time)).unwrap();
}

fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The one target directory every job act runs builds in. Made the first time from the
/// dependencies the test run's own `cargo xtask` built in `target/debug` (same lock file, profile
/// and features, times kept): the jobs' `cargo xtask` then compiles the xtask crate alone, not
/// every dependency a second time. Copied, not linked: cargo must never write through to the
/// test run's own files.
fn act_target(root: &Path) -> PathBuf {
    static SEEDED: std::sync::Once = std::sync::Once::new();
    let target = root.join("target/act");
    SEEDED.call_once(|| {
        let (from, to) = (root.join("target/debug"), target.join("debug"));
        if to.exists() || !from.join("deps").is_dir() {
            return;
        }
        let tmp = target.join("debug.seeding");
        let _ = std::fs::remove_dir_all(&tmp);
        for sub in [".fingerprint", "build", "deps"] {
            std::fs::create_dir_all(tmp.join(sub)).unwrap();
            let entries: Vec<PathBuf> = std::fs::read_dir(from.join(sub))
                .unwrap()
                .flatten()
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    let ours = name.starts_with("xtask-") || name.starts_with("libxtask-");
                    !ours && (sub != "deps" || name.starts_with("lib"))
                })
                .map(|e| e.path())
                .collect();
            if entries.is_empty() {
                continue;
            }
            let ok = Command::new("cp").arg("-a").args(&entries).arg(tmp.join(sub)).status().unwrap().success();
            assert!(ok, "cannot copy {} to {}", from.join(sub).display(), tmp.display());
        }
        std::fs::rename(&tmp, &to).unwrap();
    });
    target
}
