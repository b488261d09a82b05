//! The real BuildKit daemon and buildx plugin `cargo xtask test` built and started: a Docker config
//! per test holding the plugin and a `remote` builder on that daemon, the base images the test
//! forks build FROM (made here from this machine's Go and Debian's static busybox, pushed to the
//! shared test registry), and forks laid out like upstream's.

use super::deploy::registry;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// A `DOCKER_CONFIG` of the test's own, for the real `docker` CLI (no daemon: none is needed).
pub struct Buildx {
    pub config: tempfile::TempDir,
}

impl Default for Buildx {
    fn default() -> Buildx {
        Buildx::new()
    }
}

impl Buildx {
    /// The buildx plugin and a `remote` builder on the shared BuildKit, in use.
    pub fn new() -> Buildx {
        let endpoint = std::env::var("KMCP_BUILDKIT").expect("KMCP_BUILDKIT: run the tests with `cargo xtask test`");
        Buildx::made(Some(("kmcp", &endpoint)))
    }

    /// The plugin, no builder: buildx falls back to its `default` builder, which needs a Docker daemon.
    pub fn plugin_only() -> Buildx {
        Buildx::made(None)
    }

    /// As `dev` makes its Docker config (`local/buildkit.rs`).
    fn made(builder: Option<(&str, &str)>) -> Buildx {
        let b = Buildx::without_plugin();
        let plugin = std::env::var("KMCP_BUILDX").expect("KMCP_BUILDX: run the tests with `cargo xtask test`");
        let sh = xtask::programs::shell::Shell::new(false).unwrap();
        xtask::local::buildkit::buildx_config(&sh, b.path(), Path::new(&plugin), builder).unwrap();
        b
    }

    pub fn without_plugin() -> Buildx {
        Buildx { config: tempfile::tempdir().unwrap() }
    }

    pub fn path(&self) -> &Path {
        self.config.path()
    }

    /// `docker login HOST --password-stdin` with the real CLI, which logs in client-side.
    pub fn login(&self, host: &str, user: &str, token: &str) {
        self.docker(&["login", host, "--username", user, "--password-stdin"], Some(token));
    }

    /// Runs the real `docker` CLI with this config; panics when it fails.
    pub fn docker(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut child = Command::new("docker")
            .args(args)
            .env("DOCKER_CONFIG", self.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the docker CLI");
        if let Some(s) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "docker {args:?} failed:\n{text}");
        text
    }
}

/// The Go toolchain image (`FROM --platform=$BUILDPLATFORM`) and the final stage's base (both
/// platforms), pushed to the shared registry once per test process.
pub(crate) struct BaseImages {
    pub go: String,
    pub base: String,
}

pub(crate) fn base_images() -> &'static BaseImages {
    static IMAGES: OnceLock<BaseImages> = OnceLock::new();
    IMAGES.get_or_init(|| {
        // One test process at a time: two pushes of the same blob at once make the registry
        // answer "provided digest did not match uploaded content". After the first, the blobs
        // are there and the others' pushes skip them.
        let lock_path = std::env::temp_dir().join(format!("kmcp-base-images-{}.lock", registry().replace(':', "_")));
        let lock = std::fs::File::create(lock_path).unwrap();
        // SAFETY: flock on a file this process holds open; released when `lock` is dropped.
        assert_eq!(unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) }, 0);
        let b = Buildx::new();
        let ctx = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(ctx.path().join("bin")).unwrap();
        std::fs::create_dir_all(ctx.path().join("tmp")).unwrap();
        std::fs::copy("/bin/busybox", ctx.path().join("bin/busybox")).expect("Debian's busybox-static");
        std::os::unix::fs::symlink("busybox", ctx.path().join("bin/sh")).unwrap();
        // Upstream's builder stage runs `make`: this machine's, with the libraries it loads.
        for file in std::iter::once("/usr/bin/make".to_string()).chain(libraries_of("/usr/bin/make")) {
            let to = ctx.path().join(file.trim_start_matches('/'));
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&file, &to).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
        let go = |what: &str| {
            let out = Command::new("go").args(["env", what]).output().expect("go");
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        let (goroot, version) = (go("GOROOT"), go("GOVERSION"));
        let images = BaseImages {
            go: format!("{}/kmcp-test/go:{version}", registry()),
            base: format!("{}/kmcp-test/base:1", registry()),
        };
        std::fs::write(
            ctx.path().join("go.Dockerfile"),
            "FROM scratch\nCOPY --from=tools / /\nCOPY . /usr/local/go\nENV PATH=/usr/local/go/bin:/bin:/usr/bin HOME=/tmp GOCACHE=/tmp/go-cache GOPATH=/tmp/go GOTOOLCHAIN=local GOPROXY=off CGO_ENABLED=0\n",
        )
        .unwrap();
        // Only what `go build` needs of GOROOT (a third of it): no tests, docs or cmd sources.
        std::fs::write(ctx.path().join("go.Dockerfile.dockerignore"), GOROOT_UNNEEDED).unwrap();
        std::fs::write(ctx.path().join("base.Dockerfile"), "FROM scratch\nCOPY tmp /tmp\n").unwrap();
        let dir = ctx.path().to_str().unwrap();
        let tools_context = format!("tools={}", ctx.path().display());
        // Timestamps pinned, so that each run pushes the same digests and the forks' build steps
        // stay in BuildKit's cache from one run to the next.
        let push = |image: &str| format!("type=image,name={image},push=true,rewrite-timestamp=true");
        let (go_out, base_out) = (push(&images.go), push(&images.base));
        let (go_file, base_file) = (format!("{dir}/go.Dockerfile"), format!("{dir}/base.Dockerfile"));
        let reproducible = ["--build-arg", "SOURCE_DATE_EPOCH=0", "--provenance=false"];
        let go_build = ["buildx", "build", "--platform", "linux/amd64", "--build-context", &tools_context];
        b.docker(&[&go_build[..], &reproducible, &["-f", &go_file, "--output", &go_out, &goroot]].concat(), None);
        let base_build = ["buildx", "build", "--platform", "linux/amd64,linux/arm64"];
        b.docker(&[&base_build[..], &reproducible, &["-f", &base_file, "--output", &base_out, dir]].concat(), None);
        drop(lock);
        images
    })
}

/// The shared libraries `ldd` says `binary` loads, by absolute path.
fn libraries_of(binary: &str) -> Vec<String> {
    let out = Command::new("ldd").arg(binary).output().expect("ldd");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.split_whitespace().filter(|w| w.starts_with('/')).map(String::from).collect()
}

const GOROOT_UNNEEDED: &str = "test\napi\ndoc\nmisc\nlib\nsrc/cmd\n**/testdata\n**/*_test.go\npkg/tool/*/cover\npkg/tool/*/fix\npkg/tool/*/vet\npkg/tool/*/preprofile\npkg/tool/*/cgo\n";

/// The kinds of fork the tests build.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Fork {
    /// Upstream's current shape, byte for byte but for the images in `FROM`: a cross-compiling
    /// builder stage with `ARG TARGETOS=linux` / `ARG TARGETARCH=amd64` and `make build-multiarch`.
    Upstream,
    /// The builder stage with plain `ARG TARGETOS` / `ARG TARGETARCH` (and `go build` itself).
    PlainArg,
    /// A builder stage that sets `GOARCH=amd64` by hand: every platform gets an x86-64 binary.
    HardcodedArch,
    /// Upstream's shape, whose image also carries the real server for `$TARGETARCH`, which the
    /// entrypoint (the fork's own program) runs: an image for the test cluster.
    Deployable,
}

/// Upstream's Dockerfile (`containers/kubernetes-mcp-server`, main, 2026-08), its `FROM` images
/// replaced by the tests' own.
const UPSTREAM_DOCKERFILE: &str = "FROM --platform=$BUILDPLATFORM {go} AS builder

ARG TARGETOS=linux
ARG TARGETARCH=amd64

WORKDIR /app

COPY go.mod go.sum ./
RUN go mod download

COPY ./ ./

RUN make build-multiarch TARGETOS=${TARGETOS} TARGETARCH=${TARGETARCH}

FROM {base}
LABEL io.modelcontextprotocol.server.name=\"io.github.containers/kubernetes-mcp-server\"
WORKDIR /app
COPY --from=builder /app/kubernetes-mcp-server /app/kubernetes-mcp-server
{server}USER 65532:65532
ENTRYPOINT [\"/app/kubernetes-mcp-server\"]
CMD [\"--port\", \"8080\"]
EXPOSE 8080
";

/// The builder stage of the forks that run `go build` themselves.
const OWN_BUILDER: &str = "FROM --platform=$BUILDPLATFORM {go} AS builder\nARG TARGETOS\nARG TARGETARCH\nWORKDIR /app\nCOPY go.mod ./\nCOPY cmd cmd\nRUN GOOS={os} GOARCH={arch} go build -trimpath -ldflags=\"-s -w\" -o /app/kubernetes-mcp-server ./cmd/kubernetes-mcp-server\n\nFROM {base}\nWORKDIR /app\nCOPY --from=builder /app/kubernetes-mcp-server /app/kubernetes-mcp-server\nUSER 65532:65532\nENTRYPOINT [\"/app/kubernetes-mcp-server\"]\nCMD [\"--port\", \"8080\"]\nEXPOSE 8080\n";

/// `build-multiarch` as upstream's Makefile has it, with the flags a fork without git needs.
const MAKEFILE: &str = "BINARY_NAME = kubernetes-mcp-server\nLD_FLAGS = -s -w\nCOMMON_BUILD_ARGS = -ldflags \"$(LD_FLAGS)\"\n\n.PHONY: build-multiarch\nbuild-multiarch: ## Build the project for a specific OS/ARCH (used by container multi-arch builds)\n\tCGO_ENABLED=0 GOOS=$(TARGETOS) GOARCH=$(TARGETARCH) go build $(COMMON_BUILD_ARGS) -o $(BINARY_NAME) ./cmd/kubernetes-mcp-server\n";

fn dockerfile(kind: Fork) -> String {
    let images = base_images();
    let (go, base) = (images.go.as_str(), images.base.as_str());
    let own = |os: &str, arch: &str| {
        OWN_BUILDER.replace("{go}", go).replace("{base}", base).replace("{os}", os).replace("{arch}", arch)
    };
    let server = match kind {
        Fork::Deployable => "ARG TARGETARCH\nCOPY --chmod=755 server/kubernetes-mcp-server-${TARGETARCH} /app/server\n",
        _ => "",
    };
    match kind {
        Fork::Upstream | Fork::Deployable => {
            UPSTREAM_DOCKERFILE.replace("{go}", go).replace("{base}", base).replace("{server}", server)
        }
        Fork::PlainArg => own("$TARGETOS", "$TARGETARCH"),
        Fork::HardcodedArch => own("linux", "amd64"),
    }
}

/// A git repository laid out like upstream's fork, committed; with its commit.
pub fn fork(kind: Fork, origin: Option<&str>) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init(dir.path()).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap()
    };
    write("Dockerfile", &dockerfile(kind));
    write("Makefile", MAKEFILE);
    write("go.mod", "module example.com/fork\n\ngo 1.24\n");
    write("go.sum", "");
    write("cmd/kubernetes-mcp-server/main.go", LAUNCHER);
    write("README.md", "A fork laid out like kubernetes-mcp-server's, made by a test.\n");
    write(".gitignore", "server/\n");
    // Upstream's own line; `.git` and the Dockerfile (it names this run's registry port) left out
    // of `COPY ./ ./`, so that the build steps stay in BuildKit's cache across forks and runs.
    write(".dockerignore", "_output/\n.git\nDockerfile\n");
    super::copy_dir(&super::deploy::chart_dir(), &dir.path().join("charts/kubernetes-mcp-server"));
    if kind == Fork::Deployable {
        std::fs::create_dir_all(dir.path().join("server")).unwrap();
        for arch in ["amd64", "arm64"] {
            let to = dir.path().join(format!("server/kubernetes-mcp-server-{arch}"));
            let from = super::server::binary_for(arch);
            if std::fs::hard_link(&from, &to).is_err() {
                std::fs::copy(&from, &to).unwrap();
            }
        }
    }
    let sha = super::commit_all(&repo, "initial");
    if let Some(url) = origin {
        repo.remote("origin", url).unwrap();
    }
    (dir, sha)
}

/// The fork's own program: it runs the real server when the image carries one.
const LAUNCHER: &str = r#"package main

import (
	"os"
	"syscall"
)

func main() {
	const server = "/app/server"
	if _, err := os.Stat(server); err == nil {
		err = syscall.Exec(server, append([]string{server}, os.Args[1:]...), os.Environ())
		println(err.Error())
		os.Exit(1)
	}
	println("a fork's own program, standing where kubernetes-mcp-server stands")
}
"#;
