//! `cargo xtask image` against a real registry on 127.0.0.1, with a fake `docker` on PATH.

mod support;

use support::fake_cli::{FakeCli, FakeDocker};
use support::registry::{push_index, push_single, tag_digest, Registry};
use support::{fork_repo, Xtask};

const ORIGIN: &str = "git@github.com:Alice/kubernetes-mcp-server.git";
const REPO: &str = "alice/kubernetes-mcp-server";
const BOTH: [&str; 2] = ["linux/amd64", "linux/arm64"];

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn docker(without_buildx: bool) -> FakeCli {
    let fake = FakeDocker::new(without_buildx);
    FakeCli::start(&["docker"], move |c| fake.handle(c))
}

fn xtask(cli: &FakeCli) -> Xtask {
    Xtask::new(Some(cli.bin.path())).env("FAKE_CLI_URL", &cli.url)
}

fn image_args(fork: &std::path::Path, registry: &Registry) -> Vec<String> {
    strings(&["image", "--fork", fork.to_str().unwrap(), "--registry", &registry.host])
}

#[test]
fn absent_tag_is_built_pushed_and_read_back() {
    let registry = Registry::start(None);
    let (fork, sha) = fork_repo(Some(ORIGIN));
    let cli = docker(false);
    let out = xtask(&cli).run(image_args(fork.path(), &registry));
    out.assert_ok();

    let tag = format!("dev-{}", &sha[..7]);
    let builds: Vec<_> = cli.calls("docker").into_iter().filter(|c| c.starts_with(&["buildx", "build"])).collect();
    assert_eq!(builds.len(), 1, "{:?}", cli.calls("docker"));
    let b = &builds[0];
    assert_eq!(b.flag("--platform"), Some("linux/amd64,linux/arm64"));
    let image = format!("{}/{REPO}", registry.host);
    assert_eq!(b.flags("--tag"), [format!("{image}:{tag}"), format!("{image}:dev-latest")]);
    let labels = b.flags("--label");
    assert!(
        labels.contains(&"org.opencontainers.image.source=https://github.com/Alice/kubernetes-mcp-server"),
        "{labels:?}"
    );
    assert!(labels.contains(&format!("org.opencontainers.image.revision={sha}").as_str()), "{labels:?}");
    assert!(
        labels.iter().any(|l| l.starts_with("org.opencontainers.image.created=20") && l.ends_with('Z')),
        "{labels:?}"
    );
    assert!(b.args.contains(&"--push".to_string()));
    assert_eq!(b.args.last().map(String::as_str), fork.path().to_str());

    let digest = tag_digest(&registry.host, REPO, &tag, None).expect("tag pushed");
    assert_eq!(tag_digest(&registry.host, REPO, "dev-latest", None).as_ref(), Some(&digest));
    assert!(out.stdout.lines().any(|l| l == format!("{image}@{digest}")), "{}", out.stdout);
}

#[test]
fn present_tag_with_every_platform_is_a_no_op() {
    let registry = Registry::start(None);
    let (fork, sha) = fork_repo(Some(ORIGIN));
    let digest = push_index(&registry.host, REPO, &[format!("dev-{}", &sha[..7])], &strings(&BOTH), None);
    let cli = docker(false);
    let out = xtask(&cli).run(image_args(fork.path(), &registry));
    out.assert_ok();
    assert!(cli.calls("docker").is_empty(), "no docker call expected: {:?}", cli.calls("docker"));
    assert!(out.stdout.contains("up to date"), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("{}/{REPO}@{digest}", registry.host)), "{}", out.stdout);
}

#[test]
fn present_tag_missing_a_platform_is_rebuilt() {
    let registry = Registry::start(None);
    let (fork, sha) = fork_repo(Some(ORIGIN));
    let tag = format!("dev-{}", &sha[..7]);
    // Only amd64 plus buildx's unknown/unknown attestation entry, which is not a platform.
    let old = push_index(&registry.host, REPO, std::slice::from_ref(&tag), &strings(&["linux/amd64"]), None);
    let cli = docker(false);
    let out = xtask(&cli).run(image_args(fork.path(), &registry));
    out.assert_ok();
    assert!(out.stderr.contains("lacks linux/arm64"), "{}", out.stderr);
    assert_eq!(cli.calls("docker").iter().filter(|c| c.starts_with(&["buildx", "build"])).count(), 1);
    let new = tag_digest(&registry.host, REPO, &tag, None).unwrap();
    assert_ne!(old, new);

    // Asking only for what the old index had is a no-op.
    push_index(&registry.host, REPO, std::slice::from_ref(&tag), &strings(&["linux/amd64"]), None);
    cli.clear();
    let mut args = image_args(fork.path(), &registry);
    args.extend(strings(&["--platform", "linux/amd64"]));
    xtask(&cli).run(args).assert_ok();
    assert!(cli.calls("docker").is_empty(), "amd64 only: {:?}", cli.calls("docker"));
}

#[test]
fn force_rebuilds_an_existing_tag() {
    let registry = Registry::start(None);
    let (fork, sha) = fork_repo(Some(ORIGIN));
    push_index(&registry.host, REPO, &[format!("dev-{}", &sha[..7])], &strings(&BOTH), None);
    let cli = docker(false);
    let mut args = image_args(fork.path(), &registry);
    args.push("--force".into());
    xtask(&cli).run(args).assert_ok();
    assert_eq!(cli.calls("docker").iter().filter(|c| c.starts_with(&["buildx", "build"])).count(), 1);
}

#[test]
fn basic_auth_registry_with_right_and_wrong_token() {
    let token = "s3cr3t-t0ken-value-42";
    let registry = Registry::start(Some(("alice", token)));
    let (fork, sha) = fork_repo(Some(ORIGIN));
    let cli = docker(false);

    let out = xtask(&cli).env("GHCR_TOKEN", token).run(image_args(fork.path(), &registry));
    out.assert_ok();
    let logins: Vec<_> = cli.calls("docker").into_iter().filter(|c| c.starts_with(&["login"])).collect();
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0].args, strings(&["login", &registry.host, "--username", "alice", "--password-stdin"]));
    assert_eq!(logins[0].stdin, token);
    for call in cli.calls("docker") {
        assert!(!call.args.iter().any(|a| a.contains(token)), "token on a command line: {:?}", call.args);
    }
    assert!(!out.all().contains(token), "token in output:\n{}", out.all());
    let tag = format!("dev-{}", &sha[..7]);
    assert!(tag_digest(&registry.host, REPO, &tag, Some(("alice", token))).is_some());

    // Second run: up to date, through the authenticated registry.
    cli.clear();
    let out = xtask(&cli).env("GITHUB_TOKEN", token).run(image_args(fork.path(), &registry));
    out.assert_ok();
    assert!(out.stdout.contains("up to date"), "{}", out.stdout);

    let wrong = "wrong-token-123456";
    cli.clear();
    let out = xtask(&cli).env("GHCR_TOKEN", wrong).run(image_args(fork.path(), &registry));
    let err = out.error_line();
    assert!(err.contains("refused the credentials") && err.contains("GHCR_TOKEN"), "{err}");
    assert!(!out.all().contains(wrong), "token in output:\n{}", out.all());
    assert!(cli.calls("docker").is_empty(), "{:?}", cli.calls("docker"));

    let out = xtask(&cli).run(image_args(fork.path(), &registry));
    let err = out.error_line();
    assert!(err.contains("requires credentials") && err.contains("GHCR_TOKEN"), "{err}");
}

#[test]
fn token_never_appears_in_output_even_in_dry_run_and_errors() {
    let token = "ghp_ThisIsASecretToken0123456789";
    let registry = Registry::start(None);
    let (fork, _) = fork_repo(Some(ORIGIN));
    let cli = docker(false);
    let mut args = image_args(fork.path(), &registry);
    args.push("--dry-run".into());
    let out = xtask(&cli).env("GHCR_TOKEN", token).env("GHCR_USER", "bob").run(args);
    out.assert_ok();
    assert!(out.stdout.contains("would run: docker login"), "{}", out.stdout);
    assert!(!out.all().contains(token), "{}", out.all());
    // A failing build with the token set.
    let cli = docker(true);
    let out = xtask(&cli).env("GHCR_TOKEN", token).run(image_args(fork.path(), &registry));
    out.error_line();
    assert!(!out.all().contains(token), "{}", out.all());
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let registry = Registry::start(None);
    let (fork, sha) = fork_repo(Some(ORIGIN));
    let cli = docker(false);
    let mut args = image_args(fork.path(), &registry);
    args.push("--dry-run".into());
    let out = xtask(&cli).run(args);
    out.assert_ok();
    let tag = format!("dev-{}", &sha[..7]);
    assert!(
        out.stdout.contains(&format!("would ask registry: GET manifest {}/{REPO}:{tag}", registry.host)),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("would run: docker buildx build --platform linux/amd64,linux/arm64"), "{}", out.stdout);
    assert!(cli.calls("docker").is_empty());
    assert!(tag_digest(&registry.host, REPO, &tag, None).is_none());
}

#[test]
fn dirty_tree_is_refused_unless_allowed() {
    let registry = Registry::start(None);
    let (fork, sha) = fork_repo(Some(ORIGIN));
    std::fs::write(fork.path().join("main.go"), "package main // changed\n").unwrap();
    let cli = docker(false);
    let out = xtask(&cli).run(image_args(fork.path(), &registry));
    assert!(out.error_line().contains("uncommitted changes"), "{}", out.stderr);
    assert!(cli.calls("docker").is_empty());

    let mut args = image_args(fork.path(), &registry);
    args.push("--allow-dirty".into());
    xtask(&cli).run(args).assert_ok();
    let build = cli.calls("docker").into_iter().find(|c| c.starts_with(&["buildx", "build"])).unwrap();
    let tag = build.flags("--tag")[0].rsplit_once(':').unwrap().1.to_string();
    let prefix = format!("dev-{}-dirty-", &sha[..7]);
    assert!(tag.starts_with(&prefix) && tag.len() == prefix.len() + 8, "{tag}");
}

#[test]
fn clear_errors_before_anything_is_built() {
    let registry = Registry::start(None);
    let (fork, _) = fork_repo(Some(ORIGIN));
    let cli = docker(false);
    let run = |args: Vec<String>| xtask(&cli).run(args).error_line();
    let with = |extra: &[&str]| {
        let mut a = image_args(fork.path(), &registry);
        a.extend(strings(extra));
        a
    };

    let missing = fork.path().join("nope");
    assert!(run(strings(&["image", "--fork", missing.to_str().unwrap()])).contains("does not exist"));
    let plain = tempfile::tempdir().unwrap();
    assert!(run(strings(&["image", "--fork", plain.path().to_str().unwrap()])).contains("is not a git repository"));
    assert!(run(strings(&["image"])).contains("pass --fork PATH or set MCP_FORK_DIR"));
    let (no_dockerfile, _) = fork_repo(Some(ORIGIN));
    std::fs::remove_file(no_dockerfile.path().join("Dockerfile")).unwrap();
    support::commit_all(&git2::Repository::open(no_dockerfile.path()).unwrap(), "no dockerfile");
    assert!(run(strings(&["image", "--fork", no_dockerfile.path().to_str().unwrap()])).contains("no Dockerfile"));
    assert!(run(with(&["--platform", "linux/amd64,linux/sparc"])).contains("invalid platform 'linux/sparc'"));
    assert!(run(with(&["--owner", "al ice"])).contains("invalid owner"));
    assert!(run(with(&["--name", "bad..name"])).contains("invalid image name"));
    assert!(run(strings(&["image", "--fork", fork.path().to_str().unwrap(), "--registry", "bad host"]))
        .contains("invalid registry"));
    let closed = support::registry::free_port();
    let err =
        run(strings(&["image", "--fork", fork.path().to_str().unwrap(), "--registry", &format!("127.0.0.1:{closed}")]));
    assert!(err.contains("cannot reach registry"), "{err}");
    let (no_origin, _) = fork_repo(None);
    assert!(run(strings(&["image", "--fork", no_origin.path().to_str().unwrap(), "--registry", &registry.host]))
        .contains("pass --owner"));
    assert!(cli.calls("docker").is_empty(), "{:?}", cli.calls("docker"));

    // docker missing, buildx missing.
    let empty = tempfile::tempdir().unwrap();
    let out = Xtask::new(None).only_path(empty.path()).run(image_args(fork.path(), &registry));
    assert!(out.error_line().contains("`docker` not found on PATH"), "{}", out.stderr);
    let no_buildx = docker(true);
    let out = xtask(&no_buildx).run(image_args(fork.path(), &registry));
    assert!(out.error_line().contains("docker buildx` is not available"), "{}", out.stderr);
    assert!(!no_buildx.calls("docker").iter().any(|c| c.starts_with(&["buildx", "build"])));
}

#[test]
fn owner_comes_from_flag_then_env_then_origin() {
    let registry = Registry::start(None);
    let (fork, sha) = fork_repo(Some("https://github.com/Carol/kmcp"));
    let cli = docker(false);
    let tag = format!("dev-{}", &sha[..7]);
    let dry = |x: Xtask, extra: &[&str]| {
        let mut a = image_args(fork.path(), &registry);
        a.push("--dry-run".into());
        a.extend(strings(extra));
        x.run(a).assert_ok().stdout.clone()
    };
    assert!(dry(xtask(&cli), &[]).contains(&format!("/carol/kubernetes-mcp-server:{tag}")));
    assert!(dry(xtask(&cli).env("GITHUB_REPOSITORY_OWNER", "Dave"), &[])
        .contains(&format!("/dave/kubernetes-mcp-server:{tag}")));
    assert!(dry(xtask(&cli).env("GITHUB_REPOSITORY_OWNER", "Dave"), &["--owner", "erin", "--name", "other"])
        .contains(&format!("/erin/other:{tag}")));
    assert!(dry(xtask(&cli).env("MCP_FORK_DIR", "/nonexistent"), &[]).contains("carol"), "flag wins over MCP_FORK_DIR");
    let out = xtask(&cli).env("MCP_FORK_DIR", fork.path()).run(["image", "--registry", &registry.host, "--dry-run"]);
    assert!(out.assert_ok().stdout.contains(&format!("/carol/kubernetes-mcp-server:{tag}")));
}

#[test]
fn a_single_platform_image_counts_as_its_config_platform() {
    let registry = Registry::start(None);
    let (fork, sha) = fork_repo(Some(ORIGIN));
    let tag = format!("dev-{}", &sha[..7]);
    let digest = push_single(&registry.host, REPO, &tag, "linux/amd64");
    let cli = docker(false);
    let mut args = image_args(fork.path(), &registry);
    args.extend(strings(&["--platform", "linux/amd64"]));
    let out = xtask(&cli).run(args);
    assert!(out.assert_ok().stdout.contains(&format!("already has linux/amd64 ({digest})")), "{}", out.stdout);
    assert!(cli.calls("docker").is_empty());
    let out = xtask(&cli).run(image_args(fork.path(), &registry));
    assert!(out.assert_ok().stderr.contains("lacks linux/arm64"), "{}", out.stderr);
    assert_eq!(cli.calls("docker").iter().filter(|c| c.starts_with(&["buildx", "build"])).count(), 1);
}
