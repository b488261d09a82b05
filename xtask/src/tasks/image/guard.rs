//! `image`'s second build: the Host/Origin guard (`guard/`, Go's standard library only), built for
//! each platform with the Go toolchain image the fork's own Dockerfile builds with (so nothing new
//! is pulled) and pushed into the image's repository under a tag named by its content; rebuilt
//! only when that content changes.

use super::builds::{build_all, Builds};
use crate::oci::reference::ImageRef;
use crate::oci::registry::{missing_platforms, Registry, Remote};
use crate::programs::shell::Shell;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// The Go image used when the fork's Dockerfile has no stage built from one.
const FALLBACK_GO_IMAGE: &str = "docker.io/library/golang:1";

const SOURCES: [&str; 2] = ["go.mod", "main.go"];

fn source_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../guard"))
}

/// The guard's Dockerfile for one platform: a static binary cross-compiled on the build machine,
/// Go's build cache kept in the same cache mount as the fork's own build of that platform.
fn dockerfile(go_image: &str, platform: &str) -> String {
    let id = platform.replace('/', "-");
    format!(
        "FROM --platform=$BUILDPLATFORM {go_image} AS build\nARG TARGETOS\nARG TARGETARCH\nWORKDIR /src\nCOPY go.mod main.go ./\nRUN --mount=type=cache,id=kmcp-go-build-{id},target=/kmcp-cache/go-build,sharing=locked export GOCACHE=/kmcp-cache/go-build GOFLAGS=-buildvcs=false GOTOOLCHAIN=local CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH; go build -trimpath -ldflags=\"-s -w\" -o /out/kmcp-guard .\n\nFROM scratch\nCOPY --from=build /out/kmcp-guard /kmcp-guard\nUSER 65532:65532\nENTRYPOINT [\"/kmcp-guard\"]\n"
    )
}

/// The tag that names this content: the sources, the Go image and the Dockerfile.
fn tag(go_image: &str) -> Result<String> {
    let mut h = Sha256::new();
    for name in SOURCES {
        let path = source_dir().join(name);
        h.update(std::fs::read(&path).with_context(|| format!("cannot read the guard's {}", path.display()))?);
        h.update([0]);
    }
    h.update(dockerfile(go_image, "").as_bytes());
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
    let go_image = go_image.unwrap_or_else(|| {
        println!("guard: the fork's Dockerfile has no Go stage; building with {FALLBACK_GO_IMAGE}");
        FALLBACK_GO_IMAGE
    });
    let tagged = image.with_tag(&tag(go_image)?);
    let what = format!("GET manifest {tagged} (the guard)");
    if let Some(Remote::Present { digest, platforms: found, .. }) =
        sh.remote(&what, || registry.inspect(&tagged)).await?
    {
        if missing_platforms(platforms, &found).is_empty() {
            println!("guard: up to date ({tagged})");
            return Ok(Some(image.with_digest(&digest)));
        }
    }
    println!("guard: building {tagged} with {go_image}");
    let dockerfiles: Vec<Option<String>> = platforms.iter().map(|p| Some(dockerfile(go_image, p))).collect();
    let dir = source_dir();
    let builds = Builds { fork: &dir, repository: image.name(), labels: &[], gzip_level };
    let digests = build_all(sh, &builds, platforms, &dockerfiles)?;
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_guard_builds_for_the_platform_it_is_asked_for() {
        let d = super::dockerfile("golang:latest", "linux/arm64");
        assert!(d.starts_with("FROM --platform=$BUILDPLATFORM golang:latest AS build\n"));
        assert!(d.contains("id=kmcp-go-build-linux-arm64,"));
        assert!(d.contains("GOOS=$TARGETOS GOARCH=$TARGETARCH"));
        assert!(super::tag("golang:latest").unwrap().starts_with("kmcp-guard-"));
    }
}
