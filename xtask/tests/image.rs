//! `cargo xtask image` with the real `docker` CLI, the real buildx plugin on a `remote` builder and
//! the real BuildKit daemon `cargo xtask test` started, pushing to real registries on 127.0.0.1;
//! forks laid out like upstream's (`support::buildkit`).

extern crate kmcp_test_support as support;

use support::buildkit::{fork, Buildx, Fork};
use support::http::{Response, Server};
use support::registry::{tag_digest, Registry};
use support::Xtask;

#[path = "image/build_cache.rs"]
mod build_cache;
#[path = "image/refusals.rs"]
mod refusals;

const ORIGIN: &str = "git@github.com:Alice/kubernetes-mcp-server.git";
const REPO: &str = "alice/kubernetes-mcp-server";

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn xtask(buildx: &Buildx) -> Xtask {
    Xtask::new(None).env("DOCKER_CONFIG", buildx.path())
}

fn image_args(fork: &std::path::Path, registry: &str, extra: &[&str]) -> Vec<String> {
    let mut a = strings(&["image", "--fork", fork.to_str().unwrap(), "--registry", registry]);
    a.extend(strings(extra));
    a
}

#[test]
fn upstream_shaped_fork_is_built_pushed_proven_and_then_a_no_op() {
    let registry = Registry::start(None);
    let (fork, sha) = fork(Fork::Upstream, Some(ORIGIN));
    let buildx = Buildx::new();
    let out = xtask(&buildx).run(image_args(fork.path(), &registry.host, &[]));
    out.assert_ok();
    let tag = format!("dev-{}", &sha[..7]);
    let image = format!("{}/{REPO}", registry.host);
    assert!(out.stdout.contains(&format!("pushed {image}:{tag} with linux/amd64, linux/arm64")), "{}", out.stdout);
    for line in [
        "linux/amd64: /app/kubernetes-mcp-server is a x86-64 (amd64) binary",
        "linux/arm64: /app/kubernetes-mcp-server is a AArch64 (arm64) binary",
    ] {
        assert!(out.stdout.contains(line), "{line}:\n{}", out.stdout);
    }
    let digest = tag_digest(&registry.host, REPO, &tag, None).expect("tag pushed");
    assert_eq!(tag_digest(&registry.host, REPO, "dev-latest", None).as_ref(), Some(&digest));
    assert!(out.stdout.lines().any(|l| l == format!("{image}@{digest}")), "{}", out.stdout);
    let config = support::registry::config_of(&registry.host, REPO, &tag, "arm64");
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["org.opencontainers.image.source"], "https://github.com/Alice/kubernetes-mcp-server");
    assert_eq!(labels["org.opencontainers.image.revision"], sha.as_str());
    assert!(labels["org.opencontainers.image.created"].as_str().is_some_and(|c| c.ends_with('Z')), "{labels}");

    let again = xtask(&buildx).run(image_args(fork.path(), &registry.host, &[]));
    again.assert_ok();
    assert!(again.stdout.contains(&format!("up to date: {image}:{tag} already has linux/amd64, linux/arm64")));
    assert!(again.stdout.contains("linux/arm64: /app/kubernetes-mcp-server is a AArch64"), "{}", again.stdout);
    assert!(!again.stderr.contains("buildx build"), "the no-op built: {}", again.stderr);
    assert_eq!(tag_digest(&registry.host, REPO, &tag, None), Some(digest));

    let forced = xtask(&buildx).run(image_args(fork.path(), &registry.host, &["--force"]));
    assert!(forced.assert_ok().stdout.contains("pushed "), "{}", forced.stdout);
}

#[test]
fn a_plain_arg_fork_still_builds_each_platform() {
    let registry = Registry::start(None);
    let (fork, _) = fork(Fork::PlainArg, Some(ORIGIN));
    let out = xtask(&Buildx::new()).run(image_args(fork.path(), &registry.host, &[]));
    assert!(out.assert_ok().stdout.contains("linux/arm64: /app/kubernetes-mcp-server is a AArch64"), "{}", out.stdout);
}

#[test]
fn a_failing_proof_moves_no_tag_and_names_the_platform() {
    let registry = Registry::start(None);
    let buildx = Buildx::new();
    // One platform is enough for a dev-latest to keep.
    let (good, _) = fork(Fork::Upstream, Some(ORIGIN));
    xtask(&buildx).run(image_args(good.path(), &registry.host, &["--platform", "linux/amd64"])).assert_ok();
    let latest = tag_digest(&registry.host, REPO, "dev-latest", None).expect("dev-latest pushed");
    let (bad, sha) = fork(Fork::HardcodedArch, Some(ORIGIN));
    for run in ["first", "second"] {
        let out = xtask(&buildx).run(image_args(bad.path(), &registry.host, &[]));
        let err = out.error_line();
        assert!(
            err.starts_with("error: linux/arm64: /app/kubernetes-mcp-server is a x86-64 (amd64) binary, not AArch64"),
            "{run}: {err}"
        );
        assert!(err.contains("GOARCH") && err.contains("no tag was moved"), "{run}: {err}");
        assert!(!out.stdout.contains("pushed") && !out.stdout.contains("up to date"), "{run}: {}", out.stdout);
        assert_eq!(tag_digest(&registry.host, REPO, "dev-latest", None).as_ref(), Some(&latest), "{run}");
        assert_eq!(tag_digest(&registry.host, REPO, &format!("dev-{}", &sha[..7]), None), None, "{run}");
    }
}

/// A fork whose Dockerfile builds with no Go image (it copies a binary built elsewhere): the guard
/// is built with this machine's Go, copied into an empty image, and proven like the server.
#[test]
fn a_fork_without_a_go_stage_gets_its_guard_from_this_machines_go() {
    let registry = Registry::start(None);
    let (fork, _) = fork(Fork::Upstream, Some(ORIGIN));
    std::fs::create_dir_all(fork.path().join("server")).unwrap();
    // Any program for linux/amd64 will do: the guard's binary is small (the server's is 78 MB).
    std::fs::copy(support::server::guard_binary(), fork.path().join("server/kubernetes-mcp-server")).unwrap();
    let dockerfile = "FROM scratch\nCOPY server/kubernetes-mcp-server /app/kubernetes-mcp-server\nENTRYPOINT [\"/app/kubernetes-mcp-server\"]\n";
    std::fs::write(fork.path().join("Dockerfile"), dockerfile).unwrap();
    let buildx = Buildx::new();
    let path = std::env::var_os("PATH").unwrap();
    let go = std::env::split_paths(&path).find(|d| d.join("go").is_file()).expect("go on PATH");
    let args = image_args(fork.path(), &registry.host, &["--platform", "linux/amd64", "--allow-dirty"]);
    let go_cache = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/go/cache");
    let with_go = Xtask::new(Some(&go)).env("DOCKER_CONFIG", buildx.path()).env("GOCACHE", go_cache);
    let out = with_go.run(args);
    assert!(
        out.assert_ok().stdout.contains("guard: the fork's Dockerfile has no Go stage; building"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("guard linux/amd64: /kmcp-guard is a x86-64 (amd64) binary"), "{}", out.stdout);
    assert!(
        out.stdout.lines().any(|l| l.starts_with(&format!("guard {}/{REPO}@sha256:", registry.host))),
        "{}",
        out.stdout
    );
}

#[test]
fn platforms_compare_as_containerd_compares_them() {
    let registry = Registry::start(None);
    let (fork, _) = fork(Fork::Upstream, Some(ORIGIN));
    let buildx = Buildx::new();
    let spelled = ["--platform", "linux/arm64/v8,linux/amd64/v1"];
    let out = xtask(&buildx).run(image_args(fork.path(), &registry.host, &spelled));
    assert!(
        out.assert_ok().stdout.contains("with linux/arm64, linux/amd64")
            || out.stdout.contains("with linux/amd64, linux/arm64")
    );
    let out =
        xtask(&buildx).run(image_args(fork.path(), &registry.host, &["--platform", "linux/arm64/v8,linux/amd64"]));
    assert!(out.assert_ok().stdout.contains("up to date"), "{}", out.stdout);
}

#[test]
fn a_tag_missing_a_platform_is_rebuilt_and_a_single_manifest_counts_as_its_platform() {
    let registry = Registry::start(None);
    let (fork, sha) = fork(Fork::Upstream, Some(ORIGIN));
    let buildx = Buildx::new();
    let amd64 = ["--platform", "linux/amd64"];
    // One platform without attestations, pushed under the tag by buildx itself: a bare manifest.
    let tag = format!("dev-{}", &sha[..7]);
    let output = format!("type=image,name={}/{REPO}:{tag},push=true", registry.host);
    let path = fork.path().to_str().unwrap();
    buildx.docker(
        &["buildx", "build", "--platform", "linux/amd64", "--provenance=false", "--output", &output, path],
        None,
    );
    let single = tag_digest(&registry.host, REPO, &tag, None).unwrap();
    let out = xtask(&buildx).run(image_args(fork.path(), &registry.host, &amd64));
    assert!(out.assert_ok().stdout.contains(&format!("already has linux/amd64 ({single})")), "{}", out.stdout);
    let out = xtask(&buildx).run(image_args(fork.path(), &registry.host, &[]));
    assert!(out.assert_ok().stderr.contains("lacks linux/arm64: rebuilding"), "{}", out.stderr);
    assert_ne!(tag_digest(&registry.host, REPO, &tag, None).unwrap(), single);
}

#[test]
fn after_docker_login_no_token_is_needed() {
    let token = "s3cr3t-t0ken-value-42";
    let registry = Registry::start(Some(("alice", token)));
    let (fork, sha) = fork(Fork::Upstream, Some(ORIGIN));
    let buildx = Buildx::new();
    let out = xtask(&buildx).run(image_args(fork.path(), &registry.host, &[]));
    let err = out.error_line();
    assert!(err.contains("requires credentials") && err.contains(&format!("docker login {}", registry.host)), "{err}");

    // `docker login` checks the password, so a stale one is written as a login once wrote it.
    use base64::Engine;
    let stale = base64::engine::general_purpose::STANDARD.encode("alice:an-old-password");
    let auths = serde_json::json!({"auths": {registry.host.clone(): {"auth": stale}}});
    std::fs::write(buildx.path().join("config.json"), auths.to_string()).unwrap();
    let out = xtask(&buildx).run(image_args(fork.path(), &registry.host, &[]));
    let err = out.error_line();
    assert!(err.contains("refused the credentials of the Docker config"), "{err}");

    buildx.login(&registry.host, "alice", token);
    let out = xtask(&buildx).run(image_args(fork.path(), &registry.host, &[]));
    out.assert_ok();
    assert!(!out.all().contains(token), "token in output:\n{}", out.all());
    let tag = format!("dev-{}", &sha[..7]);
    assert!(tag_digest(&registry.host, REPO, &tag, Some(("alice", token))).is_some());
    let out = xtask(&buildx).run(image_args(fork.path(), &registry.host, &[]));
    assert!(out.assert_ok().stdout.contains("up to date"), "{}", out.stdout);
}

#[test]
fn ghcr_tokens_never_reach_another_registry() {
    let token = "ghp_ThisIsASecretToken0123456789";
    // An auth-recording STAND-IN registry: it answers every request 401 and keeps what was sent.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let kept = seen.clone();
    let server = Server::start(std::sync::Arc::new(move |req: support::http::Request| {
        kept.lock().unwrap().push(format!("{} {} {:?}", req.method, req.path, req.headers));
        Response::json(
            401,
            &serde_json::json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}),
        )
        .with_header("WWW-Authenticate: Basic realm=\"stand-in\"")
    }));
    let host = format!("127.0.0.1:{}", server.port);
    let (fork, _) = fork(Fork::Upstream, Some(ORIGIN));
    let buildx = Buildx::new();
    let out =
        xtask(&buildx).env("GHCR_TOKEN", token).env("GITHUB_TOKEN", token).run(image_args(fork.path(), &host, &[]));
    let err = out.error_line();
    assert!(err.contains("requires credentials") && err.contains(&format!("docker login {host}")), "{err}");
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("alice:{token}"));
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty(), "the stand-in saw no request");
    for request in seen.iter() {
        assert!(!request.contains(token) && !request.contains(&encoded[..20]), "the token was sent: {request}");
    }
    let config = std::fs::read_to_string(buildx.path().join("config.json")).unwrap_or_default();
    assert!(!config.contains(&host), "docker login ran for {host}: {config}");
    assert!(!out.all().contains(token), "{}", out.all());

    // To ghcr.io it goes, by docker login on stdin (a dry run shows the command, never the token).
    let out = xtask(&buildx).env("GHCR_TOKEN", token).env("GHCR_USER", "bob").run(image_args(
        fork.path(),
        "ghcr.io",
        &["--dry-run"],
    ));
    assert!(out.assert_ok().stdout.contains("would run: docker login ghcr.io --username bob --password-stdin"));
    assert!(!out.all().contains(token), "{}", out.all());
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let registry = Registry::start(None);
    let (fork, sha) = fork(Fork::Upstream, Some(ORIGIN));
    let buildx = Buildx::new();
    let out = xtask(&buildx).run(image_args(fork.path(), &registry.host, &["--dry-run"]));
    out.assert_ok();
    let tag = format!("dev-{}", &sha[..7]);
    let stdout = &out.stdout;
    assert!(stdout.contains(&format!("would ask registry: GET manifest {}/{REPO}:{tag}", registry.host)), "{stdout}");
    assert!(stdout.contains("would run: docker buildx --debug inspect"), "{stdout}");
    for platform in ["linux/amd64", "linux/arm64"] {
        let build =
            format!("would run: docker buildx build --platform {platform} --build-arg TARGETPLATFORM={platform}");
        assert!(stdout.contains(&build), "{stdout}");
    }
    assert!(stdout.contains("would ask registry: PUT an index of linux/amd64, linux/arm64"), "{stdout}");
    assert!(tag_digest(&registry.host, REPO, &tag, None).is_none());
}

#[test]
fn dirty_tree_is_refused_unless_allowed() {
    let registry = Registry::start(None);
    let (fork, sha) = fork(Fork::Upstream, Some(ORIGIN));
    std::fs::write(fork.path().join("README.md"), "changed\n").unwrap();
    let buildx = Buildx::new();
    let out = xtask(&buildx).run(image_args(fork.path(), &registry.host, &[]));
    assert!(out.error_line().contains("uncommitted changes"), "{}", out.stderr);
    let out = xtask(&buildx).run(image_args(fork.path(), &registry.host, &["--allow-dirty"]));
    out.assert_ok();
    let prefix = format!("pushed {}/{REPO}:dev-{}-dirty-", registry.host, &sha[..7]);
    let line = out.stdout.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("{}", out.stdout));
    assert_eq!(line[prefix.len()..].split(' ').next().unwrap().len(), 8, "{line}");
}
