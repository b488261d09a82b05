//! `image`'s second build: the Host/Origin guard (`guard/`, Go's standard library only), built for
//! each platform with the Go toolchain image the fork's own Dockerfile builds with (so nothing new
//! is pulled), or, when the fork builds with none, with this machine's Go and copied into an empty
//! image; pushed into the image's repository under a tag named by its content, and rebuilt only
//! when that content changes.

use super::builds::{build_all, Builds};
use crate::oci::reference::ImageRef;
use crate::oci::registry::{missing_platforms, Registry, Remote};
use crate::programs::shell::Shell;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// Copies a binary built on this machine (`kmcp-guard` in the context) into an empty image.
const FROM_HOST: &str = "FROM scratch\nCOPY kmcp-guard /kmcp-guard\nUSER 65532:65532\nENTRYPOINT [\"/kmcp-guard\"]\n";

const SOURCES: [&str; 2] = ["go.mod", "main.go"];

fn source_dir() -> PathBuf {
    crate::common::workspace::root().join("guard")
}

/// The guard's Dockerfile for one platform: a static binary cross-compiled on the build machine,
/// Go's build cache kept in the same cache mount as the fork's own build of that platform.
fn dockerfile(go_image: &str, platform: &str) -> String {
    let id = platform.replace('/', "-");
    format!(
        "FROM --platform=$BUILDPLATFORM {go_image} AS build\nARG TARGETOS\nARG TARGETARCH\nWORKDIR /src\nCOPY go.mod main.go ./\nRUN --mount=type=cache,id=kmcp-go-build-{id},target=/kmcp-cache/go-build,sharing=locked export GOCACHE=/kmcp-cache/go-build GOFLAGS=-buildvcs=false GOTOOLCHAIN=local CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH; go build -trimpath -ldflags=\"-s -w\" -o /out/kmcp-guard .\n\nFROM scratch\nCOPY --from=build /out/kmcp-guard /kmcp-guard\nUSER 65532:65532\nENTRYPOINT [\"/kmcp-guard\"]\n"
    )
}

/// How the guard is built: in the fork's Go image, or with this machine's Go (its version).
enum Toolchain {
    Image(String),
    Host(String),
}

/// The tag that names this content: the sources, the toolchain and the Dockerfile.
fn tag(toolchain: &Toolchain) -> Result<String> {
    let mut h = Sha256::new();
    for name in SOURCES {
        let path = source_dir().join(name);
        h.update(std::fs::read(&path).with_context(|| format!("cannot read the guard's {}", path.display()))?);
        h.update([0]);
    }
    h.update(match toolchain {
        Toolchain::Image(go_image) => dockerfile(go_image, ""),
        Toolchain::Host(version) => format!("{FROM_HOST}{version}"),
    });
    Ok(format!("kmcp-guard-{}", &crate::programs::git::hex(&h.finalize())[..16]))
}

/// The guard for `platforms`, in `image`'s repository by digest (`None` under `--dry-run`).
pub(super) async fn build_and_push(
    sh: &Shell,
    registry: &Registry,
    image: &ImageRef,
    go_image: Option<&str>,
    platforms: &[String],
    gzip_level: Option<u8>,
) -> Result<Option<ImageRef>> {
    let toolchain = match go_image {
        Some(i) => Toolchain::Image(i.to_string()),
        None => Toolchain::Host(host_go(sh)?),
    };
    let tagged = image.with_tag(&tag(&toolchain)?);
    let what = format!("GET manifest {tagged} (the guard)");
    if let Some(Remote::Present { digest, platforms: found, .. }) =
        sh.remote(&what, || registry.inspect(&tagged)).await?
    {
        if missing_platforms(platforms, &found).is_empty() {
            println!("guard: up to date ({tagged})");
            return Ok(Some(image.with_digest(&digest)));
        }
    }
    let digests = match &toolchain {
        Toolchain::Image(go_image) => {
            println!("guard: building {tagged} with {go_image}");
            let dockerfiles: Vec<Option<String>> = platforms.iter().map(|p| Some(dockerfile(go_image, p))).collect();
            let dir = source_dir();
            let builds = Builds { fork: &dir, repository: image.name(), labels: &[], gzip_level };
            build_all(sh, &builds, platforms, &dockerfiles)?
        }
        Toolchain::Host(version) => {
            println!("guard: the fork's Dockerfile has no Go stage; building {tagged} with this machine's {version}");
            platforms.iter().map(|p| from_host(sh, image, p, gzip_level)).collect::<Result<_>>()?
        }
    };
    let mut entries = Vec::new();
    for (platform, digest) in platforms.iter().zip(digests) {
        let Some(digest) = digest else { return Ok(None) };
        let one = image.with_digest(&digest);
        let what = format!("GET the config and entrypoint binary of {one} (the guard, {platform})");
        if let Some(line) = sh.remote(&what, || registry.prove_built(&one, platform)).await? {
            println!("guard {line}");
        }
        let what = format!("GET manifest {one}");
        entries.extend(sh.remote(&what, || registry.entries_of(&one, platform)).await?.unwrap_or_default());
    }
    let tag = tagged.tag.clone().unwrap_or_default();
    let tags = [tag.as_str()];
    let what = format!("PUT an index of the guard as {tagged}");
    let json = serde_json::json!({});
    let Some(digest) = sh.remote(&what, || registry.push_index(image, entries, json, &tags)).await? else {
        return Ok(None);
    };
    Ok(Some(image.with_digest(&digest)))
}

/// This machine's Go, by version, when the fork's Dockerfile has none to build the guard with.
fn host_go(sh: &Shell) -> Result<String> {
    let how = "the fork's Dockerfile has no Go stage to build the Host/Origin guard in: install Go (https://go.dev/dl/) to build it here";
    crate::programs::shell::require_program("go", how)?;
    let out = sh.query(xshell::cmd!(sh.sh, "go env GOVERSION"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// One platform's guard: cross-compiled here, copied into an empty image, pushed by digest.
fn from_host(sh: &Shell, image: &ImageRef, platform: &str, gzip_level: Option<u8>) -> Result<Option<String>> {
    let context = tempfile::tempdir().context("cannot make a directory for the guard's build")?;
    let mut parts = platform.split('/');
    let (os, arch) = (parts.next().unwrap_or("linux"), parts.next().unwrap_or("amd64"));
    let out = context.path().join("kmcp-guard");
    {
        let _dir = sh.sh.push_dir(source_dir());
        let _env = [
            sh.sh.push_env("CGO_ENABLED", "0"),
            sh.sh.push_env("GOOS", os),
            sh.sh.push_env("GOARCH", arch),
            sh.sh.push_env("GOFLAGS", "-buildvcs=false"),
        ];
        let ldflags = "-s -w";
        sh.run(xshell::cmd!(sh.sh, "go build -trimpath -ldflags {ldflags} -o {out} ."))
            .context("cannot build the guard with this machine's Go (go build's output is above)")?;
    }
    let build = crate::programs::docker::Build {
        fork: context.path(),
        platform,
        repository: image.name(),
        labels: &[],
        dockerfile: Some(FROM_HOST),
        log: None,
        gzip_level,
    };
    crate::programs::docker::build_by_digest(sh, &build)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_guard_builds_for_the_platform_it_is_asked_for() {
        let d = super::dockerfile("golang:latest", "linux/arm64");
        assert!(d.starts_with("FROM --platform=$BUILDPLATFORM golang:latest AS build\n"));
        assert!(d.contains("id=kmcp-go-build-linux-arm64,"));
        assert!(d.contains("GOOS=$TARGETOS GOARCH=$TARGETARCH"));
        let image = super::tag(&super::Toolchain::Image("golang:latest".into())).unwrap();
        let host = super::tag(&super::Toolchain::Host("go1.26.8".into())).unwrap();
        assert!(image.starts_with("kmcp-guard-") && host.starts_with("kmcp-guard-") && image != host);
    }
}
