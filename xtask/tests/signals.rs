//! A running `up` stopped from outside, on the real control plane with helm 3 and 4: SIGINT,
//! SIGTERM and SIGHUP are passed on to helm and waited for, the values file removed and the release
//! state named; a SIGKILL takes helm with it; a rollout wait ends at a signal, and a timeout says
//! why no pod was created.

#[macro_use]
extern crate kmcp_test_support as support;

use serde_json::json;
use std::time::Duration;
use support::deploy::{Deploy, Helm};

fn helm_running(ns: &str) -> bool {
    let out = std::process::Command::new("pgrep")
        .args(["-f", &format!("helm upgrade --install kubernetes-mcp-server .* -n {ns} ")])
        .output()
        .unwrap();
    out.status.success()
}

/// Polls until `done`, or fails as soon as the tool has ended first: what ends the wait is an
/// event, not a clock (the tool's own `--timeout` bounds it).
fn wait_for(what: &str, tool: &mut std::process::Child, mut done: impl FnMut() -> bool) {
    while !done() {
        if let Some(status) = tool.try_wait().unwrap() {
            panic!("the tool ended ({status}) before {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn kill(signal: &str, pid: u32) {
    std::process::Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status().unwrap();
}

/// SIGTERM with helm 3, SIGHUP with helm 4 (SIGINT is the rollout test's): each passed on to helm.
fn a_signal_waits_for_helm_and_says_where_the_release_is(helm: Helm) {
    let (signal, named) = match helm {
        Helm::V3 => ("TERM", "SIGTERM"),
        Helm::V4 => ("HUP", "SIGHUP"),
    };
    let d = Deploy::new("signal", helm);
    d.run("up", &[]).assert_ok();
    // The values file: never written under --dry-run, private while helm reads it, gone after.
    let tmp = tempfile::tempdir().unwrap();
    let listing = || std::fs::read_dir(tmp.path()).unwrap().flatten().map(|e| e.path()).collect::<Vec<_>>();
    d.xtask().env("TMPDIR", tmp.path()).run(d.args("up", &["--port", "9090", "--dry-run"])).assert_ok();
    assert!(listing().is_empty(), "a dry run wrote {:?}", listing());
    let mut running = d.xtask().env("TMPDIR", tmp.path()).spawn(d.args("up", &["--port", "9090"]));
    let pid = running.child.id();
    wait_for("helm ran", &mut running.child, || helm_running(&d.ns));
    use std::os::unix::fs::PermissionsExt;
    let dirs = listing();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert_eq!(dirs[0].metadata().unwrap().permissions().mode() & 0o777, 0o700, "{dirs:?}");
    let values = dirs[0].join("values.yaml");
    assert_eq!(values.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    kill(signal, pid);
    let out = running.finish();
    assert!(listing().is_empty(), "the values file outlived the interrupted run: {:?}", listing());
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains(&format!("interrupted by {named}: passing it on to `helm")), "{}", out.stderr);
    let err = out.error_line();
    let release = format!("release kubernetes-mcp-server in {} is", d.ns);
    assert!(err.contains("interrupted: helm ended") && err.contains(&release), "{err}");
    assert!(!helm_running(&d.ns), "helm outlived the xtask");
    // The lease was released: the next run does not wait for it.
    let out = d.run("up", &["--no-wait"]);
    out.assert_ok();
    d.run("down", &["--delete-namespace"]).assert_ok();
}

/// SIGKILL leaves no handler to run: helm still ends with the tool. The helm here runs ten minutes
/// before it upgrades anything, so only the parent-death signal can end it before the deadline:
/// helm outliving the tool fails the test, and the next run finds the release as it was.
fn a_killed_up_takes_helm_with_it(helm: Helm) {
    let d = Deploy::new("sigkill", helm);
    d.run("up", &[]).assert_ok();
    let slow = tempfile::tempdir().unwrap();
    let wrapper = slow.path().join("helm");
    // The sleep holds none of the tool's pipes (the test reads them to their end) and is killed after.
    let pidfile = slow.path().join("sleep.pid");
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = upgrade ]; then sleep 600 </dev/null >/dev/null 2>&1 & echo $! > {}; wait; fi\nexec {} \"$@\"\n",
        pidfile.display(),
        helm.binary().display()
    );
    std::fs::write(&wrapper, script).unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut running = support::Xtask::new(Some(slow.path())).spawn(d.args("up", &["--port", "9090"]));
    wait_for("helm ran", &mut running.child, || helm_running(&d.ns));
    kill("KILL", running.child.id());
    running.finish();
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while helm_running(&d.ns) {
        assert!(std::time::Instant::now() < deadline, "helm outlived the killed tool");
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Ok(pid) = std::fs::read_to_string(&pidfile) {
        kill("KILL", pid.trim().parse().unwrap());
    }
    let out = d.run("up", &["--port", "9090"]);
    out.assert_ok();
    assert!(out.stderr.contains("run: helm upgrade") && !out.stderr.contains("was left pending"), "{}", out.stderr);
    d.run("down", &["--delete-namespace"]).assert_ok();
}

/// A LimitRange that forbids the server's pod: the timeout names FailedCreate and the LimitRange's
/// words; a SIGINT during the wait ends it at once.
fn a_rollout_that_creates_no_pod_says_why_and_ends_at_a_signal(helm: Helm) {
    let d = Deploy::new("nopod", helm);
    d.run("up", &[]).assert_ok();
    let limits = json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "floor"},
        "spec": {"limits": [{"type": "Container", "min": {"cpu": "50m"}}]}});
    d.send("POST", &format!("/api/v1/namespaces/{}/limitranges", d.ns), "application/json", limits);
    let out = d.run("up", &["--port", "9090", "--timeout", "20s"]);
    let err = out.error_line();
    assert!(err.contains("timed out") && err.contains("FailedCreate") && err.contains("minimum cpu"), "{err}");

    let recorded = d.node_port();
    let mut running = d.xtask().spawn(d.args("up", &["--port", "9191", "--timeout", "10m"]));
    let deployment = d.fullname();
    // The new port entry's nodePort put back to the recorded one: the step before the rollout wait.
    wait_for("the new revision appeared", &mut running.child, || {
        !helm_running(&d.ns)
            && d.deployment().is_some_and(|x| x["spec"]["template"]["spec"]["containers"].to_string().contains("9191"))
            && d.node_port() == recorded
    });
    std::thread::sleep(Duration::from_secs(2));
    kill("INT", running.child.id());
    let out = running.finish();
    let err = out.error_line();
    assert!(
        err.contains(&format!("interrupted by SIGINT (Ctrl-C) while waiting for deployment/{deployment}")),
        "{err}"
    );
    let err = d.run("down", &["--delete-namespace"]).error_line();
    assert!(err.contains("limitrange/floor"), "the user's LimitRange is named: {err}");
    d.run("down", &["--delete-namespace", "--force"]).assert_ok();
}

both_helms!(
    a_signal_waits_for_helm_and_says_where_the_release_is,
    a_killed_up_takes_helm_with_it,
    a_rollout_that_creates_no_pod_says_why_and_ends_at_a_signal,
);
