//! The local registry on 127.0.0.1 (Debian's `docker-registry`), for `dev` and the tests (which
//! also start registries of their own, some wanting a password).

use crate::programs::shell::start_background;
use anyhow::{bail, Result};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A registry on 127.0.0.1 (Debian's `docker-registry`): it holds the images and charts the
/// cluster deploys and the node's own images, which the node pulls through a relay.
pub struct RunningRegistry {
    child: Child,
    pub host: String,
}

/// What a start does with the registry's directory.
#[derive(Clone, Copy, PartialEq)]
pub enum Contents {
    /// Emptied first, on a port of its own (the tests).
    Fresh,
    /// Kept, on the port it had (`dev`: the images' indexes name their charts by `127.0.0.1:PORT`);
    /// emptied only when that port is taken by now.
    Kept,
}

impl RunningRegistry {
    /// Starts a registry keeping its state in `dir`; with `htpasswd` (a file of `user:bcrypt`
    /// lines) it answers only those users.
    pub fn start(dir: &Path, contents: Contents, htpasswd: Option<&Path>) -> Result<RunningRegistry> {
        let port = port_for(dir, contents)?;
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("port"), port.to_string())?;
        let config = dir.join("config.yml");
        let mut text = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("data").display()
        );
        if let Some(file) = htpasswd {
            text.push_str(&format!("auth:\n  htpasswd:\n    realm: kmcp\n    path: {}\n", file.display()));
        }
        std::fs::write(&config, text)?;
        let log = std::fs::File::create(dir.join("registry.log"))?;
        let mut command = Command::new("docker-registry");
        command.arg("serve").arg(&config).stdout(log.try_clone()?).stderr(log);
        let child = start_background(command)?;
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed() > Duration::from_secs(60) {
                bail!(
                    "docker-registry did not listen on 127.0.0.1:{port} within 60 s (its log: {})",
                    dir.join("registry.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(RunningRegistry { child, host: format!("127.0.0.1:{port}") })
    }
}

/// The kept port when it is free, else a new one (and the directory emptied).
fn port_for(dir: &Path, contents: Contents) -> Result<u16> {
    let kept = std::fs::read_to_string(dir.join("port")).ok().and_then(|p| p.trim().parse::<u16>().ok());
    if let Some(port) = kept.filter(|_| contents == Contents::Kept) {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Drop for RunningRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
