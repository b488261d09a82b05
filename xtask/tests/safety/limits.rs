//! A helm killed mid-upgrade, limits on input and time, a held lock, an API that stops answering.

use super::*;

fn a_helm_killed_mid_upgrade_is_recovered(helm: Helm) {
    let d = Deploy::new("killed", helm);
    d.run("up", &[]).assert_ok();
    // helm upgrade of the release, waiting on pods that cannot start, killed while it waits.
    let chart = std::fs::read_dir(d.cache_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "tgz"))
        .unwrap();
    let missing = format!("sha256:{}", "0".repeat(64));
    let mut child = std::process::Command::new(helm.binary())
        .args([
            "upgrade",
            &d.release,
            chart.to_str().unwrap(),
            "-n",
            &d.ns,
            "--reuse-values",
            "--set",
            &format!("image.version={missing}"),
            "--wait",
            "--timeout",
            "5m",
            "--kubeconfig",
            d.kubeconfig.to_str().unwrap(),
        ])
        .env("HOME", d.cache_dir())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once helm has recorded the upgrade as pending (a loaded machine takes a while).
    let status_now = || {
        std::process::Command::new(helm.binary())
            .args(["status", &d.release, "-n", &d.ns, "--kubeconfig", d.kubeconfig.to_str().unwrap()])
            .env("HOME", d.cache_dir())
            .output()
            .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    // ... and has changed the Deployment: helm is then waiting on pods that cannot start.
    let patched = || {
        d.deployment().is_some_and(|dep| {
            dep["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap_or_default().contains(&missing)
        })
    };
    while !(String::from_utf8_lossy(&status_now().stdout).contains("pending-upgrade") && patched())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let status = status_now();
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("pending-upgrade"),
        "{}\n--- stderr\n{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
    let out = d.run("up", &[]);
    out.assert_ok();
    assert!(out.stderr.contains("was left pending-upgrade") && out.stderr.contains("roll it back"), "{}", out.stderr);
    d.run("verify", &[]).assert_ok();
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn input_and_time_limits(helm: Helm) {
    let d = Deploy::new("limits", helm);
    for (flags, says) in [
        (vec!["--timeout", "5124095576030432h"], "at most 24h"),
        (vec!["--timeout", "25h"], "at most 24h"),
        (vec!["--node-ip", "0.0.0.0"], "unspecified or multicast"),
        (vec!["--node-ip", "::"], "unspecified or multicast"),
        (vec!["--node-ip", "239.1.1.1"], "unspecified or multicast"),
        (vec!["--chart-digest", "sha256:nothex"], "invalid --chart-digest"),
        (vec!["--port", "0"], "0 is not in 1..=65535"),
    ] {
        let out = d.run("up", &flags);
        // 2: a flag value clap refused; 1: a check of the task; never a panic (101).
        assert!(matches!(out.code, 1 | 2), "{flags:?}: no panic:\n{}", out.stderr);
        assert!(out.error_line().contains(says), "{flags:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"));
    }
    assert!(d.get(&ns_path(&d)).is_none(), "nothing was changed");
}

fn a_held_lock_makes_a_second_run_wait_or_fail(helm: Helm) {
    let d = Deploy::new("held", helm);
    d.run("up", &[]).assert_ok();
    // Another run of this instance holds the lock (renewed just now).
    let now = time_now();
    let mark = json!({"kmcp-xtask/instance": format!("{}/kubernetes-mcp-server", d.ns)});
    d.send("POST", &format!("/apis/coordination.k8s.io/v1/namespaces/{}/leases", d.ns), "application/json", json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "kubernetes-mcp-server-xtask-lock", "annotations": mark},
        "spec": {"holderIdentity": "cargo xtask up on laptop (pid 4242)", "leaseDurationSeconds": 30, "acquireTime": now, "renewTime": now}
    }));
    let err = d.run("up", &["--port", "9090", "--no-wait"]).error_line();
    assert!(err.contains("is locked by cargo xtask up on laptop (pid 4242) since 20"), "{err}");
    let out = d.run("up", &["--port", "9090", "--timeout", "3s"]);
    assert!(out.stderr.contains("waiting for the lock") && out.stderr.contains("pid 4242"), "{}", out.stderr);
    assert!(out.error_line().contains("still locked by cargo xtask up on laptop (pid 4242)"), "{}", out.stderr);
    assert_eq!(d.service().unwrap()["spec"]["ports"][0]["port"], 8080, "nothing changed");
    // A crashed holder's lease expires on its own: the next run takes it over.
    std::thread::sleep(std::time::Duration::from_secs(31));
    d.run("up", &["--port", "9090"]).assert_ok();
    assert_eq!(d.service().unwrap()["spec"]["ports"][0]["port"], 9090);
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn time_now() -> String {
    let out = std::process::Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%S.000000Z"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn an_api_that_stops_answering_during_the_rollout_is_a_deadline(helm: Helm) {
    let mut d = Deploy::new("frozen", helm);
    // The seed's port incident keeps the rollout waiting; the API goes quiet as soon as it starts.
    d.image =
        support::deploy::server_image(&format!("alice/frozen-{}", d.ns), support::registry::Entrypoint::OldPort8080).0;
    let text = std::fs::read_to_string(&d.kubeconfig).unwrap();
    let server = text.lines().find_map(|l| l.trim().strip_prefix("server: ")).unwrap().to_string();
    let relay = support::Relay::start(server.trim_start_matches("https://").to_string());
    let relayed = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(relayed.path(), text.replace(&server, &format!("https://127.0.0.1:{}", relay.port))).unwrap();
    let mut args = d.args("up", &["--port", "8686", "--timeout", "20s"]);
    let i = args.iter().position(|a| a == "--kubeconfig").unwrap();
    args[i + 1] = relayed.path().display().to_string();
    let mut running = d.xtask().spawn(&args);
    let mut stderr = std::io::BufReader::new(running.child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0, "up ended early:\n{seen}");
        seen.push_str(&line);
        if line.starts_with("waiting for deployment/") {
            break;
        }
    }
    relay.freeze();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let out = running.finish();
    assert_ne!(out.code, 0);
    let err =
        rest.lines().rev().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("{seen}{rest}")).to_string();
    assert!(
        err.contains("waiting for deployment/kubernetes-mcp-server rollout: the API server stopped answering"),
        "{err}"
    );
    // The deadline, not a clock, ended it: the error says --timeout gave up.
    assert!(err.contains("gave up after 20s (--timeout)"), "{err}");
    drop(relay);
    d.run("down", &["--delete-namespace"]).assert_ok();
}

both_helms!(a_held_lock_makes_a_second_run_wait_or_fail, a_helm_killed_mid_upgrade_is_recovered,);

one_helm!(
    an_api_that_stops_answering_during_the_rollout_is_a_deadline: V3,
    input_and_time_limits: V4,
);
