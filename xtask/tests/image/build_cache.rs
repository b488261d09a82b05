//! Go's caches mounted into the fork's Dockerfile: shown by the output (and the dry run), and the
//! image's program byte for byte the one the Dockerfile as it is builds, on every platform.

use super::*;

/// The file `path` of `image` for `platform`, as buildx exports the image's filesystem.
fn file_of(buildx: &Buildx, image: &str, platform: &str, path: &str) -> Vec<u8> {
    let out = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={}", out.path().display());
    let context = tempfile::tempdir().unwrap();
    let context = context.path().to_str().unwrap();
    let dockerfile = format!("FROM {image}\n");
    buildx
        .docker(&["buildx", "build", "--platform", platform, "-f", "-", "--output", &dest, context], Some(&dockerfile));
    std::fs::read(out.path().join(path.trim_start_matches('/'))).unwrap()
}

#[test]
fn the_go_caches_change_no_byte_of_the_program() {
    let registry = Registry::start(None);
    let (fork, sha) = fork(Fork::Upstream, Some(ORIGIN));
    let buildx = Buildx::new();
    let dry = xtask(&buildx).run(image_args(fork.path(), &registry.host, &["--dry-run"]));
    let shown = &dry.assert_ok().stdout;
    assert!(
        shown.contains("Dockerfile: stage builder: a Go toolchain image (its config sets GOPATH=/tmp/go)"),
        "{shown}"
    );
    assert!(shown.contains("RUN go mod download: Go's caches mounted"), "{shown}");
    assert!(shown.contains("Dockerfile: stage #1: "), "{shown}");
    assert!(shown.contains("not a Go toolchain image"), "{shown}");
    assert!(shown.contains("  | RUN --mount=type=cache,id=kmcp-go-mod,target=/kmcp-cache/go-mod,sharing=shared --mount=type=cache,id=kmcp-go-build-linux-amd64,target=/kmcp-cache/go-build,sharing=locked export GOMODCACHE=/kmcp-cache/go-mod GOCACHE=/kmcp-cache/go-build; make build-multiarch"), "{shown}");
    assert!(dry.stdout.contains(" -f - "), "{}", dry.stdout);

    let cached = xtask(&buildx).run(image_args(fork.path(), &registry.host, &[]));
    assert!(cached.assert_ok().stdout.contains("with Go's caches in 2 RUN step(s)"), "{}", cached.stdout);
    let plain_args = ["--no-build-cache", "--name", "plain"];
    let plain = xtask(&buildx).run(image_args(fork.path(), &registry.host, &plain_args));
    assert!(plain.assert_ok().stdout.contains("Dockerfile: built as it is (--no-build-cache)"), "{}", plain.stdout);
    let fork_builds =
        plain.stderr.lines().filter(|l| l.contains("buildx build") && l.ends_with(fork.path().to_str().unwrap()));
    assert!(fork_builds.clone().count() == 2 && fork_builds.clone().all(|l| !l.contains(" -f - ")), "{}", plain.stderr);
    let tag = format!("dev-{}", &sha[..7]);
    for (platform, machine) in [("linux/amd64", "x86-64 (amd64)"), ("linux/arm64", "AArch64 (arm64)")] {
        let proof = format!("{platform}: /app/kubernetes-mcp-server is a {machine} binary");
        assert!(cached.stdout.contains(&proof) && plain.stdout.contains(&proof), "{proof}");
        let with = file_of(&buildx, &format!("{}/{REPO}:{tag}", registry.host), platform, "/app/kubernetes-mcp-server");
        let without =
            file_of(&buildx, &format!("{}/alice/plain:{tag}", registry.host), platform, "/app/kubernetes-mcp-server");
        assert!(with.len() > 100_000 && with == without, "{platform}: the binaries differ");
    }
    assert!(git2::Repository::open(fork.path()).unwrap().statuses(None).unwrap().is_empty(), "the fork is unchanged");
}
