//! Shared by every integration test: the real cluster and registry `cargo xtask test` started, the
//! test chart, BuildKit and buildx with forks laid out like upstream's, temp git repositories, and
//! a runner for the real xtask binary.

pub mod act;
pub(crate) mod act_standins;
pub mod buildkit;
pub mod cluster;
pub mod deploy;
pub mod helms;
pub mod http;
pub mod mcp_client;
pub mod node;
pub mod registry;
pub mod server;
pub(crate) mod slots;

use std::path::Path;
use std::process::Command;

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
    #[track_caller]
    pub fn assert_ok(&self) -> &Output {
        assert_eq!(self.code, 0, "xtask failed:\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }
    /// The error line of a failed run.
    #[track_caller]
    pub fn error_line(&self) -> String {
        assert_ne!(self.code, 0, "expected failure:\n{}", self.all());
        let line = self
            .stderr
            .lines()
            .rev()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("no error line in:\n{}", self.stderr));
        line.to_string()
    }
}

/// The workspace's root (this crate is `xtask/tests/support`).
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(3).unwrap()
}

/// The xtask binary cargo built beside the running test binary (`target/<profile>/xtask`; the
/// test binary is in `deps/` below it).
fn xtask_binary() -> std::path::PathBuf {
    let test = std::env::current_exe().unwrap();
    test.parent().and_then(Path::parent).unwrap().join("xtask")
}

/// The real xtask binary in a clean environment: HOME is a temp dir, PATH holds `path` first.
pub struct Xtask {
    cmd: Command,
    _home: tempfile::TempDir,
}

impl Xtask {
    pub fn new(path_first: Option<&Path>) -> Xtask {
        let home = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(xtask_binary());
        cmd.env_clear().env("HOME", home.path());
        let system = "/usr/local/bin:/usr/bin:/bin";
        let path = match path_first {
            Some(p) => format!("{}:{system}", p.display()),
            None => system.to_string(),
        };
        cmd.env("PATH", path);
        Xtask { cmd, _home: home }
    }

    /// Only `dir` on PATH: for "program missing" cases.
    pub fn only_path(mut self, dir: &Path) -> Xtask {
        self.cmd.env("PATH", dir);
        self
    }

    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Xtask {
        self.cmd.env(k, v);
        self
    }

    /// Starts the xtask without waiting: stdout and stderr are piped (see `finish`).
    pub fn spawn<I, S>(mut self, args: I) -> Running
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        use std::process::Stdio;
        let child = self.cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        Running { child, _home: self._home }
    }

    pub fn run<I, S>(mut self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let out = self.cmd.args(args).output().unwrap();
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// An xtask run in the background.
pub struct Running {
    pub child: std::process::Child,
    _home: tempfile::TempDir,
}

impl Running {
    pub fn finish(self) -> Output {
        let out = self.child.wait_with_output().unwrap();
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Commits every file of `repo`'s work tree, signed now; returns the commit's id.
pub fn commit_all(repo: &git2::Repository, message: &str) -> String {
    commit_all_as(repo, message, &git2::Signature::now("Test", "test@example.com").unwrap())
}

/// Commits every file as `sig` (a fixed time gives the same tree the same commit).
pub(crate) fn commit_all_as(repo: &git2::Repository, message: &str, sig: &git2::Signature) -> String {
    let mut index = repo.index().unwrap();
    index.add_all(["*"], git2::IndexAddOption::DEFAULT, None).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let parents: Vec<git2::Commit> = repo.head().ok().and_then(|h| h.peel_to_commit().ok()).into_iter().collect();
    let parent_refs: Vec<&git2::Commit> = parents.iter().collect();
    repo.commit(Some("HEAD"), sig, sig, message, &tree, &parent_refs).unwrap().to_string()
}

/// Runs async test code (the MCP client) on a fresh current-thread runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// A child process (registry, server) that is killed when the test lets go of it.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP relay on 127.0.0.1 in front of another address that a test can freeze: from then on it
/// passes no byte either way and answers no new connection, as an API server that stopped
/// answering.
pub struct Relay {
    pub port: u16,
    frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    pub fn start(target: String) -> Relay {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let f = frozen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if f.load(Ordering::SeqCst) {
                    std::mem::forget(client);
                    continue;
                }
                let Ok(upstream) = std::net::TcpStream::connect(&target) else { continue };
                for (mut from, mut to) in
                    [(client.try_clone().unwrap(), upstream.try_clone().unwrap()), (upstream, client)]
                {
                    let f = f.clone();
                    std::thread::spawn(move || {
                        use std::io::{Read, Write};
                        let mut buf = [0u8; 16384];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            while f.load(Ordering::SeqCst) {
                                std::thread::sleep(std::time::Duration::from_secs(1));
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    });
                }
            }
        });
        Relay { port, frozen }
    }

    pub fn freeze(&self) {
        self.frozen.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}
