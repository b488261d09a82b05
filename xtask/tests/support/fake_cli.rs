//! Fake CLIs on PATH (`docker`, `helm`): each is `fake-cli.py` under that name, which forwards its
//! arguments, stdin and values files to this test process; a handler here decides the outcome.

use super::http::{Request, Response, Server};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct Call {
    pub program: String,
    pub args: Vec<String>,
    pub stdin: String,
    pub files: HashMap<String, String>,
}

impl Call {
    /// The value after `flag`, e.g. `--platform`.
    pub fn flag(&self, flag: &str) -> Option<&str> {
        self.args.iter().position(|a| a == flag).and_then(|i| self.args.get(i + 1)).map(String::as_str)
    }

    pub fn flags(&self, flag: &str) -> Vec<&str> {
        self.args.windows(2).filter(|w| w[0] == flag).map(|w| w[1].as_str()).collect()
    }

    pub fn starts_with(&self, words: &[&str]) -> bool {
        self.args.len() >= words.len() && self.args.iter().zip(words).all(|(a, w)| a == w)
    }
}

pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl Outcome {
    pub fn ok(stdout: impl Into<String>) -> Outcome {
        Outcome { stdout: stdout.into(), stderr: String::new(), code: 0 }
    }
    pub fn fail(code: i32, stderr: impl Into<String>) -> Outcome {
        Outcome { stdout: String::new(), stderr: stderr.into(), code }
    }
}

pub struct FakeCli {
    _server: Server,
    pub url: String,
    pub bin: tempfile::TempDir,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl FakeCli {
    pub fn start(programs: &[&str], handler: impl Fn(&Call) -> Outcome + Send + Sync + 'static) -> FakeCli {
        let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
        let recorded = calls.clone();
        let server = Server::start(Arc::new(move |req: Request| {
            let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            let call = Call {
                program: v["program"].as_str().unwrap().to_string(),
                args: v["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect(),
                stdin: v["stdin"].as_str().unwrap_or_default().to_string(),
                files: serde_json::from_value(v["files"].clone()).unwrap_or_default(),
            };
            recorded.lock().unwrap().push(call.clone());
            let out = handler(&call);
            Response::json(200, &json!({"stdout": out.stdout, "stderr": out.stderr, "code": out.code}))
        }));
        let bin = tempfile::tempdir().unwrap();
        let python = which("python3").expect("python3 is needed for the fake CLIs");
        let script = include_str!("fake-cli.py").replacen("/usr/bin/env python3", &python.display().to_string(), 1);
        for p in programs {
            let path = bin.path().join(p);
            std::fs::write(&path, &script).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        FakeCli { url: format!("{}/cli", server.url()), _server: server, bin, calls }
    }

    pub fn calls(&self, program: &str) -> Vec<Call> {
        self.calls.lock().unwrap().iter().filter(|c| c.program == program).cloned().collect()
    }

    pub fn clear(&self) {
        self.calls.lock().unwrap().clear();
    }
}

pub fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(program)).find(|p| p.is_file())
}

/// The `docker` STAND-IN (no Docker daemon here): `buildx version`, `login --password-stdin`
/// (remembered per registry), and `buildx build --push`, which pushes a real index with the
/// requested platforms (each a real image layer holding that architecture's real server binary)
/// under every tag, using the remembered credentials.
pub struct FakeDocker {
    pub without_buildx: bool,
    logins: Mutex<HashMap<String, (String, String)>>,
}

impl FakeDocker {
    pub fn new(without_buildx: bool) -> Arc<FakeDocker> {
        Arc::new(FakeDocker { without_buildx, logins: Mutex::default() })
    }

    pub fn handle(&self, call: &Call) -> Outcome {
        if call.starts_with(&["buildx", "version"]) {
            return if self.without_buildx {
                Outcome::fail(1, "docker: 'buildx' is not a docker command.\n")
            } else {
                Outcome::ok("github.com/docker/buildx v0.29.1 fake\n")
            };
        }
        if call.starts_with(&["login"]) {
            if call.flag("--password").is_some() || !call.args.contains(&"--password-stdin".to_string()) {
                return Outcome::fail(1, "fake docker: the password must come on stdin\n");
            }
            let user = call.flag("--username").or(call.flag("-u")).unwrap_or_default().to_string();
            self.logins.lock().unwrap().insert(call.args[1].clone(), (user, call.stdin.trim().to_string()));
            return Outcome::ok("Login Succeeded\n");
        }
        if call.starts_with(&["buildx", "build"]) {
            if !call.args.contains(&"--push".to_string()) {
                return Outcome::fail(1, "fake docker: expected --push\n");
            }
            let platforms: Vec<String> =
                call.flag("--platform").unwrap_or("linux/amd64").split(',').map(String::from).collect();
            let tags = call.flags("--tag");
            let (host, rest) = tags[0].split_once('/').unwrap();
            let (repository, _) = rest.rsplit_once(':').unwrap();
            let tag_names: Vec<String> = tags.iter().map(|t| t.rsplit_once(':').unwrap().1.to_string()).collect();
            let login = self.logins.lock().unwrap().get(host).cloned();
            let basic = login.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
            let pushed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                super::registry::push_server_index(
                    host,
                    repository,
                    &tag_names,
                    &platforms,
                    super::registry::Entrypoint::Current,
                    basic,
                )
            }));
            return match pushed {
                Ok(digest) => Outcome::ok(format!("pushed {digest}\n")),
                Err(_) => Outcome::fail(1, "ERROR: failed to push: unauthorized\n"),
            };
        }
        Outcome::fail(1, format!("fake docker: unexpected arguments {:?}\n", call.args))
    }
}
