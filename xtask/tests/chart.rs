//! The chart and the image on the real control plane with the real helm 3 and helm 4: the chart
//! pinned by content (OCI digest or a local directory), chart contents that lose the server's mode
//! or its `extraArgs`, the ingress, a long release name, and rollouts that fail for the image (a
//! pull failure, a port the image ignores), each named.

#[macro_use]
extern crate kmcp_test_support as support;

use serde_json::Value;
use support::deploy::{push_chart, registry, server_image, Deploy, Helm};
use support::registry::Entrypoint;

fn port_mismatch_rollout_is_diagnosed(helm: Helm) {
    // The seed's incident, for real: an image whose ENTRYPOINT says --port 8080, a chart content
    // without extraArgs, and --port 8686: the probes hit 8686 while the server listens on 8080.
    let mut d = Deploy::new("mismatch", helm);
    let repo = format!("alice/old-{}", d.ns);
    d.image = server_image(&repo, Entrypoint::OldPort8080).0;
    (d.chart, d.chart_digest) = chart_variant("old", Variant::NoExtraArgs);
    let out = d.run("up", &["--port", "8686"]);
    let err = out.error_line();
    assert!(
        err.contains(
            "the probes get connection refused on port 8686 while the server logs that it listens on port 8080"
        ),
        "{err}\n{}",
        out.stderr
    );
    assert!(err.contains("--port 8080"), "{err}");
    assert!(out.stderr.contains("log: ") && out.stderr.contains("HTTP server starting"), "{}", out.stderr);
    assert!(
        d.state().is_none_or(|s| s["data"].get("deployedSha256").is_none()),
        "a failed rollout is not recorded as deployed"
    );
    d.run("down", &["--delete-namespace"]).assert_ok();
}

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    /// Content before v0.0.59: `extraArgs` ignored.
    NoExtraArgs,
    /// No extraArgs and a config.toml that keeps only the port: the mode is lost entirely.
    NoMode,
    /// The same interface, another content (a description changed): the tag "moves".
    Republished,
}

/// Another content of the test chart, pushed under the same version to `<registry>/charts-<repo>`,
/// once per process (helm package stamps times: two pushes would move the tag).
fn chart_variant(repo: &str, variant: Variant) -> (String, String) {
    type Pushed = std::sync::Mutex<std::collections::HashMap<String, (String, String)>>;
    static PUSHED: std::sync::OnceLock<Pushed> = std::sync::OnceLock::new();
    let mut pushed = PUSHED.get_or_init(Default::default).lock().unwrap();
    pushed.entry(repo.to_string()).or_insert_with(|| push_variant(repo, variant)).clone()
}

fn push_variant(repo: &str, variant: Variant) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    support::copy_dir(&support::deploy::chart_dir(), dir.path());
    let edit = |file: &str, f: &dyn Fn(String) -> String| {
        let path = dir.path().join(file);
        std::fs::write(&path, f(std::fs::read_to_string(&path).unwrap())).unwrap();
    };
    if variant != Variant::Republished {
        edit("templates/deployment.yaml", &|text| {
            let (head, rest) = text.split_once("            # kmcp:extraArgs\n").unwrap();
            let (_, tail) = rest.split_once("            # kmcp:end\n").unwrap();
            format!("{head}{tail}")
        });
    }
    if variant == Variant::NoMode {
        edit("templates/configmap.yaml", &|text| {
            let (head, _) = text.split_once("  config.toml: |").unwrap();
            format!("{head}  config.toml: |\n    port = \"{{{{ .Values.service.port }}}}\"\n")
        });
    }
    if variant == Variant::Republished {
        edit("Chart.yaml", &|text| {
            text.replace("description: Test stand-in", "description: Republished test stand-in")
        });
    }
    push_chart(dir.path(), &format!("charts-{repo}-{}", std::process::id()))
}

fn image_pull_failure_names_the_image(helm: Helm) {
    let mut d = Deploy::new("pull", helm);
    let repo = format!("alice/gone-{}", d.ns);
    let (image, index) = server_image(&repo, Entrypoint::Current);
    // The index resolves, but this platform's image is gone from the registry: the node cannot pull.
    let manifest = reqwest_blocking_get_index(&repo, &index);
    delete_manifest(&repo, &manifest);
    d.image = image;
    let out = d.run("up", &[]);
    let err = out.error_line();
    assert!(err.contains(&format!("{}/{repo}@{index}", registry())) && err.contains("public"), "{err}");
    assert!(err.contains("ErrImagePull") || err.contains("ImagePullBackOff"), "{err}");
    // The registry says `manifest unknown` (404); containerd passes it on as `not found`.
    assert!(
        err.contains("manifest unknown") || err.contains("404") || err.contains("not found"),
        "the registry's own words: {err}"
    );
    d.run("down", &["--delete-namespace"]).assert_ok();
}

/// The digest of this machine's platform image in an index.
fn reqwest_blocking_get_index(repo: &str, index: &str) -> String {
    let text = curl(&[
        "-s",
        "-H",
        "Accept: application/vnd.oci.image.index.v1+json",
        &format!("http://{}/v2/{repo}/manifests/{index}", registry()),
    ]);
    let v: Value = serde_json::from_str(&text).unwrap();
    let arch = if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" };
    v["manifests"].as_array().unwrap().iter().find(|m| m["platform"]["architecture"] == arch).unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn delete_manifest(repo: &str, digest: &str) {
    let code = curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "DELETE",
        &format!("http://{}/v2/{repo}/manifests/{digest}", registry()),
    ]);
    assert_eq!(code, "202", "registry refused to delete {digest}");
}

fn curl(args: &[&str]) -> String {
    let out = std::process::Command::new("curl").args(args).output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

fn the_chart_ingress_fails_without_a_host(helm: Helm) {
    // What the real chart does with its defaults: the ingress is on and needs a host. `up` turns it off.
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(helm.binary())
        .arg("template")
        .arg("r")
        .arg(support::deploy::chart_dir())
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Ingress hostname must be specified"));
}

fn the_chart_is_pinned_by_content(helm: Helm) {
    let mut d = Deploy::new("chartpin", helm);
    let repo = format!("pin-{}", d.ns);
    let (chart, first) = chart_variant(&repo, Variant::Republished);
    d.chart = chart;
    d.chart_digest = first.clone();
    let out = d.run("up", &[]);
    out.assert_ok();
    assert!(out.stderr.contains("pulled chart"), "first up pulls the chart: {}", out.stderr);
    assert!(
        out.stdout.contains(&format!("chart {}:{}@{first}", d.chart, support::deploy::chart_version())),
        "{}",
        out.stdout
    );
    let out = d.run("up", &[]);
    assert!(out.assert_ok().stdout.contains("up to date: nothing changed"), "{}", out.stdout);
    assert!(!out.stderr.contains("pulled chart"), "the second up uses the cached chart: {}", out.stderr);
    let out = d.run("status", &[]);
    assert!(out.assert_ok().stdout.contains(&format!("chart:    {first}")), "{}", out.stdout);

    // Upstream re-publishes 0.1.0: the tag moves. Refused, before any change, naming both digests.
    let (_, moved) = push_chart(&support::deploy::chart_dir(), &format!("charts-{repo}-{}", std::process::id()));
    assert_ne!(moved, first);
    let rv = d.deployment().unwrap()["metadata"]["resourceVersion"].clone();
    let out = d.run("up", &["--port", "9090"]);
    let err = out.error_line();
    assert!(err.contains(&moved) && err.contains(&first) && err.contains(&format!("--chart-digest {moved}")), "{err}");
    assert_eq!(d.deployment().unwrap()["metadata"]["resourceVersion"], rv, "nothing changed");
    // Accepted the documented way: a new chart content is a change.
    let out = d.run("up", &["--chart-digest", &moved]);
    out.assert_ok();
    assert!(out.stdout.contains("deployed") && out.stdout.contains(&moved), "{}", out.stdout);

    // No pin at all is refused too, naming the digest to review.
    let err = d.xtask().run(d.args_without("up", &["--chart-digest"], &["--node-ip", "10.8.0.1"])).error_line();
    assert!(err.contains("is not pinned by digest") && err.contains(&moved), "{err}");
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn content_without_extra_args_still_runs_read_only_and_stateless(helm: Helm) {
    let mut d = Deploy::new("noextra", helm);
    (d.chart, d.chart_digest) = chart_variant("noextra", Variant::NoExtraArgs);
    let out = d.run("up", &[]);
    out.assert_ok();
    assert_eq!(
        d.container_args(),
        ["--config", "/etc/kubernetes-mcp-server/config.toml"],
        "this content ignores extraArgs"
    );
    assert!(out.stdout.contains("mode: read-only, stateless"), "{}", out.stdout);
    let url = d.url();
    support::block_on(async {
        let mut session = xtask::server::mcp::Session::initialize(&url).await.unwrap();
        let tools = session.list_tools().await.unwrap();
        assert!(!tools.is_empty() && tools.iter().all(|t| t.read_only), "{tools:?}");
        let (status, _) = session.open_stream().await.unwrap();
        assert_eq!(status, 405, "stateless from the config file alone");
    });
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn a_chart_that_loses_the_mode_fails_up(helm: Helm) {
    let mut d = Deploy::new("nomode", helm);
    (d.chart, d.chart_digest) = chart_variant("nomode", Variant::NoMode);
    let out = d.run("up", &[]);
    let err = out.error_line();
    assert!(
        err.contains("does not run in the mode asked for")
            && err.contains("not read-only")
            && err.contains("ignores extraArgs"),
        "{err}"
    );
    assert_eq!(out.stderr.lines().filter(|l| l.starts_with("error")).count(), 1);
    assert!(d.state().is_none_or(|s| s["data"].get("deployedSha256").is_none()), "not recorded as deployed");
    d.run("down", &["--delete-namespace"]).assert_ok();
}

fn a_long_release_name_works_end_to_end(helm: Helm) {
    let mut d = Deploy::new("longname", helm);
    d.release = format!("r{}", "e".repeat(49));
    assert_eq!(d.release.len(), 50);
    let out = d.run("up", &[]);
    out.assert_ok();
    assert_eq!(d.fullname().len(), 63);
    assert!(d.deployment().is_some(), "the chart's truncated fullname");
    d.run("verify", &[]).assert_ok();
    d.run("down", &["--delete-namespace"]).assert_ok();
    let err = d
        .xtask()
        .run([
            "up",
            "--kubeconfig",
            d.kubeconfig.to_str().unwrap(),
            "--release",
            "a/b",
            "--image",
            &d.image,
            "--allow-from",
            "10.8.0.0/24",
        ])
        .error_line();
    assert!(err.starts_with("error: invalid --release 'a/b'"), "{err}");
    let err = d
        .xtask()
        .run(["down", "--kubeconfig", d.kubeconfig.to_str().unwrap(), "--namespace", "kube-system/configmaps"])
        .error_line();
    assert!(err.starts_with("error: invalid --namespace 'kube-system/configmaps'"), "{err}");
}

fn a_local_chart_directory_is_deployed_by_content(helm: Helm) {
    let d = Deploy::new("localchart", helm);
    let dir = support::deploy::chart_dir();
    let args = d.args_without("up", &["--chart-version", "--chart-digest"], &["--chart", dir.to_str().unwrap()]);
    let out = d.xtask().run(&args);
    out.assert_ok();
    assert!(out.stdout.contains(&format!("chart {}", dir.display())), "{}", out.stdout);
    assert!(d.xtask().run(&args).assert_ok().stdout.contains("up to date: nothing changed"));
    d.run("down", &["--delete-namespace"]).assert_ok();
}

both_helms!(
    the_chart_ingress_fails_without_a_host,
    the_chart_is_pinned_by_content,
    a_long_release_name_works_end_to_end,
    a_local_chart_directory_is_deployed_by_content,
);

one_helm!(
    port_mismatch_rollout_is_diagnosed: V3,
    image_pull_failure_names_the_image: V4,
    content_without_extra_args_still_runs_read_only_and_stateless: V4,
    a_chart_that_loses_the_mode_fails_up: V3,
);
