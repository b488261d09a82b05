//! `cargo xtask dev` on real parts, run as a user would. On the shared cluster (which the test
//! command started through the same `local` code, and recorded): `dev` attaches to it, builds a
//! fork laid out like upstream's with the real BuildKit, deploys it, the URL answers MCP through
//! the official SDK; a second `dev` with the fork unchanged changes nothing; a changed fork is
//! rebuilt and redeployed on the same URL; `dev --down` does not stop the tests' environment.
//! Alone, once the shared cluster has stopped (`alone_...`, run by `cargo xtask test`): `dev`
//! starts an environment of its own, and Ctrl-C stops it and leaves the host as found.

extern crate kmcp_test_support as support;

use std::io::BufRead;
use std::path::PathBuf;
use support::buildkit::{fork, Fork};
use support::cluster::{cluster, unique};
use support::mcp_client::{call_tool, text};
use support::{block_on, commit_all, Output, Xtask};

/// The directory of the `go` this test runs with: `dev` checks Go first.
fn go_dir() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).find(|d| d.join("go").is_file()).expect("go on PATH")
}

/// The xtask with root's PATH as `sudo` gives it (iptables and ip are in the sbin folders), Go first.
fn xtask() -> Xtask {
    let path = format!("{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", go_dir().display());
    Xtask::new(None).env("PATH", path)
}

fn url_of(out: &str) -> String {
    let line = out.lines().rev().find_map(|l| l.strip_prefix("MCP URL: "));
    line.unwrap_or_else(|| panic!("no URL in:\n{out}")).to_string()
}

/// Reads a running xtask's stdout up to and with the first line that starts with one of `marks`
/// (all of it, if it ends first).
fn read_until(lines: &mut impl Iterator<Item = std::io::Result<String>>, marks: &[&str]) -> String {
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if marks.iter().any(|m| line.starts_with(m)) {
            break;
        }
    }
    seen
}

/// A running xtask's stderr (every command, BuildKit's progress), read all along so that the pipe
/// never fills.
fn drain(mut stderr: std::process::ChildStderr) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    })
}

/// What the deployed server answers to an agent: `namespaces_list` through the official SDK.
fn namespaces_seen(url: &str) -> String {
    text(&block_on(call_tool(url, "namespaces_list", serde_json::json!({}))))
}

#[test]
fn dev_attaches_to_a_running_environment_deploys_and_redeploys_only_a_changed_fork() {
    let test = "dev_attaches_to_a_running_environment_deploys_and_redeploys_only_a_changed_fork";
    if support::cluster::skipped_on_a_given_cluster(test, "a given cluster has no local environment to attach to") {
        return;
    }
    let (fork, sha) = fork(Fork::Deployable, None);
    let state = tempfile::tempdir().unwrap();
    let ns = unique("dev");
    let dev_args = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["dev", "--fork", fork.path().to_str().unwrap(), "--dir", state.path().to_str().unwrap()];
        args.extend(["--namespace", &ns, "--release", "mcp-dev"]);
        args.extend(extra);
        args.into_iter().map(String::from).collect()
    };
    let dev = |extra: &[&str]| -> Output { xtask().run(dev_args(extra)) };

    let first = dev(&[]);
    first.assert_ok();
    assert!(
        first.stdout.contains("dev: attaching to the local environment that `cargo xtask test` started"),
        "{}",
        first.stdout
    );
    let tag = format!("dev-{}", &sha[..7]);
    assert!(first.stdout.contains(&format!("/local/kubernetes-mcp-server:{tag} with linux/")), "{}", first.stdout);
    let url = url_of(&first.stdout);
    assert!(url.starts_with(&format!("http://{}:3", cluster().node_ip)), "{url}");
    assert!(first.stdout.contains("  VS Code (.vscode/mcp.json): {\"servers\""), "the client setup: {}", first.stdout);
    assert_eq!(first.stdout.matches("MCP URL: ").count(), 1, "the URL once a round: {}", first.stdout);
    assert_eq!(first.stdout.matches("MCP client configuration").count(), 1, "{}", first.stdout);
    assert!(!first.all().contains("nodePortAddresses"), "no advice on dev's own kube-proxy: {}", first.all());
    assert!(first.stdout.contains("with Go's caches in 2 RUN step(s)"), "{}", first.stdout);
    assert!(namespaces_seen(&url).contains("kube-system"), "the deployed server answers an agent at {url}");

    let again = dev(&[]);
    again.assert_ok();
    assert!(again.stdout.contains(&format!(":{tag} already has linux/")), "no rebuild: {}", again.stdout);
    assert!(again.stdout.contains("up to date: nothing changed"), "no redeploy: {}", again.stdout);
    assert_eq!(url_of(&again.stdout), url);

    // `--watch`: a commit while it runs is rebuilt and redeployed; Ctrl-C ends the watch only.
    let mut watching = xtask().spawn(dev_args(&["--watch"]));
    let mut lines = std::io::BufReader::new(watching.child.stdout.take().unwrap()).lines();
    let stderr = drain(watching.child.stderr.take().unwrap());
    let mut seen = read_until(&mut lines, &["dev: watching "]);
    // A commit of a file the build context leaves out (`.dockerignore`: `_output/`): every build
    // step stays in BuildKit's cache, and the image is still new (its revision and time are the
    // commit's).
    std::fs::create_dir_all(fork.path().join("_output")).unwrap();
    std::fs::write(fork.path().join("_output/change"), "a change\n").unwrap();
    let changed = commit_all(&git2::Repository::open(fork.path()).unwrap(), "a change");
    seen.push_str(&read_until(&mut lines, &["dev: redeployed; watching", "dev: the round failed"]));
    let new_tag = format!("dev-{}", &changed[..7]);
    assert!(seen.contains(&format!("dev: the fork is now {new_tag}: rebuilding and redeploying")), "{seen}");
    assert!(seen.contains(&format!(":{new_tag} with linux/")), "rebuilt and pushed: {seen}");
    assert_eq!(url_of(&seen), url, "the same URL: only the image changed");
    assert!(namespaces_seen(&url).contains("kube-system"));
    // SAFETY: a signal to the child this test started.
    assert_eq!(unsafe { libc::kill(watching.child.id() as i32, libc::SIGINT) }, 0);
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let end = watching.finish();
    assert_eq!(end.code, 0, "{}\n{}", rest.join("\n"), stderr.join().unwrap());
    assert!(rest.iter().any(|l| l == "dev: the deployment stays in that environment until it stops"), "{rest:?}");

    let down = xtask().run(["dev", "--down"]);
    let line = down.error_line();
    assert!(line.contains("was started by `cargo xtask test`") && line.contains("not by `dev`"), "{line}");
    assert!(std::path::Path::new("/run/kmcp-local.json").is_file(), "the tests' environment still runs");

    let kubeconfig = cluster().kubeconfig.to_str().unwrap().to_string();
    let args = ["down", "--kubeconfig", &kubeconfig, "--namespace", &ns, "--release", "mcp-dev", "--delete-namespace"];
    let helm = support::deploy::Helm::V4.binary();
    Xtask::new(helm.parent()).run(args).assert_ok();
}

#[test]
#[ignore = "starts a local environment of its own: `cargo xtask test` runs it once the shared cluster has stopped"]
fn alone_dev_starts_its_own_environment_and_ctrl_c_leaves_the_host_as_found() {
    let (fork, _) = fork(Fork::Deployable, None);
    // Kept between runs, as a user's `target/kmcp-dev` is: the registry and BuildKit's cache.
    let state = concat!(env!("CARGO_TARGET_TMPDIR"), "/dev-alone");
    let args = ["dev", "--fork", fork.path().to_str().unwrap(), "--dir", state];
    let mut running = xtask().spawn(args);
    let stderr = drain(running.child.stderr.take().unwrap());
    let mut lines = std::io::BufReader::new(running.child.stdout.take().unwrap()).lines();
    let seen = read_until(&mut lines, &["dev: running;"]);
    if !seen.contains("dev: running;") {
        panic!("dev ended before it was ready:\n{seen}\n{}", stderr.join().unwrap());
    }
    let url = url_of(&seen);
    assert!(namespaces_seen(&url).contains("kube-system"), "the deployed server answers an agent at {url}");
    let record = std::fs::read_to_string("/run/kmcp-local.json").unwrap();
    assert!(record.contains("\"owner\": \"dev\""), "{record}");
    let stranger = Stranger::start();

    // SAFETY: a signal to the child this test started.
    assert_eq!(unsafe { libc::kill(running.child.id() as i32, libc::SIGINT) }, 0);
    let after: Vec<String> = lines.map(Result::unwrap).collect();
    let rest = running.finish();
    let after = format!("{}\n{}", after.join("\n"), stderr.join().unwrap());
    assert_eq!(rest.code, 0, "dev after Ctrl-C:\n{after}");
    assert!(after.contains("dev: SIGINT (Ctrl-C): stopping the local environment"), "{after}");
    assert!(after.contains("the host is as it was found"), "{after}");
    let theirs = "not this tool's (another program changed it meanwhile; left alone): + ";
    for change in [
        format!("cgroup: {}", stranger.cgroup.display()),
        format!("link: {}", stranger.link),
        format!("iptables: :{} -", stranger.chain),
    ] {
        assert!(after.contains(&format!("{theirs}{change}")), "{change}:\n{after}");
    }
    drop(stranger);
    assert!(!std::path::Path::new("/run/kmcp-local.json").exists(), "the record is gone");
    assert!(!std::path::Path::new("/run/netns/kmcp-node").exists(), "the node's namespace is gone");
}

#[test]
fn dev_checks_its_prerequisites_first_a_line_each_and_changes_nothing() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("env");
    let args = ["dev", "--fork", "/nonexistent/fork", "--dir", dir.to_str().unwrap()];
    let out = xtask().run(args);
    let line = out.error_line();
    assert!(line.contains("cannot start") && line.contains("prerequisites are missing (above)"), "{line}");
    let missing: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("missing: ")).collect();
    assert_eq!(missing.len(), 1, "{}", out.stderr);
    assert!(missing[0].starts_with("missing: the fork: "), "{}", missing[0]);
    let commands: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("$ ")).collect();
    assert_eq!(commands, ["$ go env GOVERSION"], "only Go's version was read");
    assert!(!dir.exists(), "nothing was made");
}

/// Another program on the machine changing the host while `dev` runs, as a Docker daemon starting
/// a container does: a cgroup, a veth pair and an iptables chain of its own. Removed when dropped.
struct Stranger {
    cgroup: std::path::PathBuf,
    link: String,
    chain: String,
}

impl Stranger {
    fn start() -> Stranger {
        let id = std::process::id();
        let s = Stranger {
            cgroup: std::path::PathBuf::from(format!("/sys/fs/cgroup/pids/stranger-{id}")),
            link: format!("strgr{id}"),
            chain: format!("STRANGER-{id}"),
        };
        std::fs::create_dir(&s.cgroup).unwrap();
        let run = |cmd: &str, args: &[&str]| {
            let out = std::process::Command::new(cmd).args(args).output().unwrap();
            assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        run("ip", &["link", "add", &s.link, "type", "veth", "peer", "name", &format!("strgp{id}")]);
        run("iptables", &["-N", &s.chain]);
        s
    }
}

impl Drop for Stranger {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.cgroup);
        let _ = std::process::Command::new("ip").args(["link", "del", &self.link]).status();
        let _ = std::process::Command::new("iptables").args(["-X", &self.chain]).status();
    }
}
