//! Refusals before anything is built (bad input, builders that cannot build), and whose
//! registry namespace the image goes to.

use super::*;

#[test]
fn clear_errors_before_anything_is_built() {
    let registry = Registry::start(None);
    let (fork, _) = fork(Fork::Upstream, Some(ORIGIN));
    let buildx = Buildx::new();
    let run = |args: Vec<String>| xtask(&buildx).run(args).error_line();
    let path = fork.path().to_str().unwrap();
    let missing = fork.path().join("nope");
    assert!(run(strings(&["image", "--fork", missing.to_str().unwrap()])).contains("does not exist"));
    let plain = tempfile::tempdir().unwrap();
    assert!(run(strings(&["image", "--fork", plain.path().to_str().unwrap()])).contains("is not a git repository"));
    assert!(run(strings(&["image"])).contains("pass --fork PATH or set MCP_FORK_DIR"));
    let (no_dockerfile, _) = support::buildkit::fork(Fork::Upstream, Some(ORIGIN));
    std::fs::remove_file(no_dockerfile.path().join("Dockerfile")).unwrap();
    support::commit_all(&git2::Repository::open(no_dockerfile.path()).unwrap(), "no dockerfile");
    assert!(run(strings(&["image", "--fork", no_dockerfile.path().to_str().unwrap()])).contains("no Dockerfile"));
    let with = |extra: &[&str]| image_args(fork.path(), &registry.host, extra);
    assert!(run(with(&["--platform", "linux/amd64,linux/sparc"])).contains("invalid platform 'linux/sparc'"));
    assert!(run(with(&["--owner", "al ice"])).contains("invalid owner"));
    assert!(run(with(&["--name", "bad..name"])).contains("invalid image name"));
    assert!(run(strings(&["image", "--fork", path, "--registry", "bad host"])).contains("invalid registry"));
    let closed = support::registry::free_port();
    let err = run(strings(&["image", "--fork", path, "--registry", &format!("127.0.0.1:{closed}")]));
    assert!(err.contains("cannot reach registry"), "{err}");
    let (no_origin, _) = support::buildkit::fork(Fork::Upstream, None);
    assert!(run(image_args(no_origin.path(), &registry.host, &[])).contains("pass --owner"));

    let empty = tempfile::tempdir().unwrap();
    let out = Xtask::new(None).only_path(empty.path()).run(with(&[]));
    assert!(out.error_line().contains("`docker` not found on PATH"), "{}", out.stderr);
    let out = xtask(&Buildx::without_plugin()).run(with(&[]));
    assert!(out.error_line().contains("docker buildx` is not available"), "{}", out.stderr);
    // The real buildx with no builder of its own falls back to `default`, which needs a daemon.
    let err = xtask(&Buildx::plugin_only()).run(with(&[])).error_line();
    assert!(err.contains("the buildx builder default cannot be used") && err.contains("docker buildx use"), "{err}");
    assert!(support::registry::catalog(&registry.host).is_empty(), "something was pushed");
}

/// A `docker` STAND-IN for builders the real tools cannot be: this machine has no Docker daemon,
/// and buildx creates neither a `docker` nor a `docker-container` builder without one. It answers
/// `buildx --debug inspect` as buildx v0.38.2 does for such a builder, and fails anything else.
fn builder_stand_in(inspect: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "#!/bin/sh\nif [ \"$1 $2 $3\" = \"buildx --debug inspect\" ]; then cat <<'EOF'\n{inspect}\nEOF\nexit 0; fi\necho \"stand-in: $*\" >&2\nexit 1\n"
    );
    let path = dir.path().join("docker");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn builders_that_cannot_do_the_build_are_named_before_any_login() {
    let registry = Registry::start(None);
    let (fork, _) = fork(Fork::Upstream, Some(ORIGIN));
    let docker_driver = builder_stand_in("Name:   default\nDriver: docker\n\nNodes:\nName:     default\nEndpoint: default\nStatus:   running\nPlatforms: linux/amd64\nFeatures:\n Multi-platform build: false\n");
    let out = Xtask::new(Some(docker_driver.path())).run(image_args(fork.path(), &registry.host, &[]));
    let err = out.error_line();
    assert!(err.contains("uses the docker driver") && err.contains("containerd image store"), "{err}");
    let out = Xtask::new(Some(docker_driver.path())).run(image_args(
        fork.path(),
        &registry.host,
        &["--platform", "linux/amd64"],
    ));
    out.error_line();
    assert!(out.stderr.contains("stand-in: buildx build"), "one platform passes the check: {}", out.stderr);

    let container = builder_stand_in("Name:   ci\nDriver: docker-container\n\nNodes:\nName:           ci0\nEndpoint:       unix:///var/run/docker.sock\nDriver Options: image=\"moby/buildkit:buildx-stable-1\"\nStatus:         inactive\n");
    let err = Xtask::new(Some(container.path())).run(image_args(fork.path(), &registry.host, &[])).error_line();
    assert!(err.contains("docker-container driver") && err.contains("--driver-opt network=host"), "{err}");
}

#[test]
fn owner_comes_from_flag_then_env_then_origin() {
    let registry = Registry::start(None);
    let (fork, sha) = fork(Fork::Upstream, Some("https://github.com/Carol/kmcp"));
    let buildx = Buildx::new();
    let tag = format!("dev-{}", &sha[..7]);
    let dry = |x: Xtask, extra: &[&str]| {
        let mut a = image_args(fork.path(), &registry.host, &["--dry-run"]);
        a.extend(strings(extra));
        x.run(a).assert_ok().stdout.clone()
    };
    assert!(dry(xtask(&buildx), &[]).contains(&format!("/carol/kubernetes-mcp-server:{tag}")));
    assert!(dry(xtask(&buildx).env("GITHUB_REPOSITORY_OWNER", "Dave"), &[])
        .contains(&format!("/dave/kubernetes-mcp-server:{tag}")));
    assert!(dry(xtask(&buildx).env("GITHUB_REPOSITORY_OWNER", "Dave"), &["--owner", "erin", "--name", "other"])
        .contains(&format!("/erin/other:{tag}")));
    assert!(
        dry(xtask(&buildx).env("MCP_FORK_DIR", "/nonexistent"), &[]).contains("carol"),
        "flag wins over MCP_FORK_DIR"
    );
    let out = xtask(&buildx).env("MCP_FORK_DIR", fork.path()).run(["image", "--registry", &registry.host, "--dry-run"]);
    assert!(out.assert_ok().stdout.contains(&format!("/carol/kubernetes-mcp-server:{tag}")));
    let out =
        xtask(&buildx).env("MCP_FORK_DIR", fork.path()).env("MCP_REGISTRY", &registry.host).run(["image", "--dry-run"]);
    let pushed_to = format!("{}/carol/kubernetes-mcp-server:{tag}", registry.host);
    assert!(out.assert_ok().stdout.contains(&pushed_to), "MCP_REGISTRY chooses the registry: {}", out.stdout);
}
