//! The whole life of a deployment on the real control plane, with helm 3 and helm 4: `image` (the
//! real buildx and BuildKit build a fork laid out like upstream's, carrying the real server), `up`
//! of that very image, `verify`, a no-op `up`, `down --keep-port`, `up` on the same URL, `down`,
//! `down`.

extern crate kmcp_test_support as support;

use support::buildkit::{fork, Buildx, Fork};
use support::cluster::cluster;
use support::deploy::{registry, Deploy, Helm};

fn url_of(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("MCP URL: "))
        .unwrap_or_else(|| panic!("no URL in:\n{stdout}"))
        .to_string()
}

fn cycle(helm: Helm) {
    let mut d = Deploy::new("cycle", helm);
    let buildx = Buildx::new();
    let (fork, sha) = fork(Fork::Deployable, Some("https://github.com/alice/kubernetes-mcp-server.git"));
    // An owner of the test's own: the fork's chart goes to <registry>/<owner>/charts/.
    let (name, owner) = ("kubernetes-mcp-server", d.ns.clone());
    let out = support::Xtask::new(None).env("DOCKER_CONFIG", buildx.path()).run([
        "image",
        "--fork",
        fork.path().to_str().unwrap(),
        "--registry",
        &registry(),
        "--owner",
        &owner,
    ]);
    out.assert_ok();
    let pushed = out.stdout.lines().last().unwrap().to_string();
    assert!(pushed.starts_with(&format!("{}/{owner}/{name}@sha256:", registry())), "{}", out.stdout);
    let chart_tag = format!("{}/{owner}/charts/kubernetes-mcp-server:0.0.0-dev-{}", registry(), &sha[..7]);
    let chart_line = format!("chart oci://{chart_tag}@sha256:");
    let chart = out.stdout.lines().find(|l| l.starts_with(&chart_line)).unwrap_or_else(|| panic!("{}", out.stdout));
    let chart_digest = chart.rsplit_once('@').unwrap().1.to_string();
    d.image = format!("{}/{owner}/{name}:dev-{}", registry(), &sha[..7]);

    // No chart flag: the chart is the fork's own, pushed by `image` beside the image.
    let no_chart = ["--chart", "--chart-version", "--chart-digest"];
    let up = |extra: &[&str]| d.xtask().run(d.args_without("up", &no_chart, extra));
    let port = support::deploy::reserved_node_port(0, helm);
    let out = up(&["--node-port", &port]);
    out.assert_ok();
    assert!(out.stdout.contains(&pushed), "up deploys the digest image printed: {}", out.stdout);
    assert!(out.stdout.contains(&chart_digest), "up deploys the chart image pushed: {}", out.stdout);
    let running = d.deployment().unwrap()["spec"]["template"]["spec"]["containers"][0]["image"].clone();
    assert_eq!(running, pushed.as_str(), "the image image made is the one that runs");
    let url = url_of(&out.stdout);
    assert!(url.starts_with(&format!("http://{}:3", cluster().node_ip)), "{url}");

    let out = d.run("verify", &["--url", &url]);
    out.assert_ok();
    assert!(out.stdout.contains("PASS"), "{}", out.stdout);
    assert!(!out.stdout.contains("FAIL"), "{}", out.stdout);

    let before = d.audit().map(|a| a.len());
    let out = up(&[]);
    out.assert_ok();
    assert!(out.stdout.contains("up to date: nothing changed"), "{}", out.stdout);
    assert_eq!(url_of(&out.stdout), url);
    if let (Some(before), Some(after)) = (before, d.audit()) {
        let noop = &after[before..];
        assert!(noop.iter().all(|e| !e.is_write()), "a no-op up wrote: {noop:?}");
        assert!(noop.iter().all(|e| !e.by_helm()), "a no-op up ran helm: {noop:?}");
        // Reads only: the API's version, the nodes (where the server belongs), the objects, the lock.
        assert!(noop.len() <= 13, "a no-op up made {} requests: {noop:?}", noop.len());
    }

    let out = d.run("down", &["--keep-port"]);
    assert!(out.assert_ok().stderr.contains("until the pods app.kubernetes.io/instance="), "{}", out.stderr);
    let pods = d.get(&format!("/api/v1/namespaces/{}/pods", d.ns)).unwrap();
    assert_eq!(pods["items"].as_array().map(Vec::len), Some(0), "down ends when its pods are gone: {pods}");
    let out = up(&[]);
    out.assert_ok();
    assert_eq!(url_of(&out.stdout), url, "down --keep-port then up serves on the same URL");
    d.run("verify", &["--url", &url]).assert_ok();

    // The chart's tag moved after `up` (other content pushed under it): refused, naming both.
    let moved = tempfile::tempdir().unwrap();
    support::copy_dir(&support::deploy::chart_dir(), moved.path());
    let meta = std::fs::read_to_string(moved.path().join("Chart.yaml")).unwrap();
    let meta = meta.replace("version: 0.1.0", &format!("version: 0.0.0-dev-{}", &sha[..7]));
    std::fs::write(moved.path().join("Chart.yaml"), meta.replace("Test stand-in", "Moved")).unwrap();
    let (_, new_digest) = support::deploy::push_chart(moved.path(), &format!("{owner}/charts"));
    let err = up(&[]).error_line();
    assert!(err.contains(&new_digest) && err.contains(&chart_digest) && err.contains("moved"), "{err}");

    d.run("down", &[]).assert_ok();
    let out = d.run("down", &[]);
    out.assert_ok();
    assert!(out.stdout.contains("nothing to do"), "{}", out.stdout);
    d.run("down", &["--delete-namespace"]).assert_ok();
}

#[test]
fn full_cycle_with_helm3() {
    cycle(Helm::V3);
}

#[test]
fn full_cycle_with_helm4() {
    cycle(Helm::V4);
}
