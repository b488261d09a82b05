//! `image`'s Dockerfile: the fork's own, with Go's module and build caches mounted into the `RUN`
//! steps of stages built from a Go toolchain image (read from each base image's config), handed
//! to buildx on stdin; the fork's files are never changed. `--no-build-cache`: as it is.

use crate::oci::base_config::from_reference;
use crate::oci::docker_config;
use crate::oci::dockerfile::{self, Base, BaseImage};
use crate::oci::registry::Registry;
use crate::programs::shell::Shell;
use std::path::Path;

/// What `image` builds from the fork's Dockerfile: the file each platform's build is handed (None:
/// the fork's own, as it is), in the order of `platforms`, and the Go toolchain image its first Go
/// stage starts from (the guard is built with it).
pub(super) struct Prepared {
    pub dockerfiles: Vec<Option<String>>,
    pub go_image: Option<String>,
}

/// What was done to the Dockerfile, and why, printed once.
pub(super) async fn dockerfiles(
    sh: &Shell,
    fork: &Path,
    platforms: &[String],
    no_build_cache: bool,
) -> anyhow::Result<Prepared> {
    let text = std::fs::read_to_string(fork.join("Dockerfile"))?;
    let bases = read_bases(sh, &text).await;
    let go_image = first_go_image(&text, &bases);
    if no_build_cache {
        println!("Dockerfile: built as it is (--no-build-cache)");
        return Ok(Prepared { dockerfiles: vec![None; platforms.len()], go_image });
    }
    let dry_run = sh.is_dry_run();
    let dockerfiles =
        platforms.iter().enumerate().map(|(i, p)| for_platform(&text, &bases, p, i == 0, dry_run)).collect();
    Ok(Prepared { dockerfiles, go_image })
}

/// The Go toolchain image the fork's Dockerfile builds with (its first Go stage's base).
pub(super) async fn go_image(sh: &Shell, fork: &Path) -> anyhow::Result<Option<String>> {
    let text = std::fs::read_to_string(fork.join("Dockerfile"))?;
    Ok(first_go_image(&text, &read_bases(sh, &text).await))
}

fn first_go_image(text: &str, bases: &[Option<BaseImage>]) -> Option<String> {
    dockerfile::stages(text).into_iter().zip(bases).find_map(|(stage, base)| match stage.base {
        Base::Image(r) if base.as_ref().is_some_and(|b| b.go.is_some()) => Some(r),
        _ => None,
    })
}

/// What each stage's base image is, read once for all platforms (a Go toolchain's `Env` does
/// not differ by platform).
async fn read_bases(sh: &Shell, text: &str) -> Vec<Option<BaseImage>> {
    let platform = crate::common::platform::this_machine();
    let mut bases = Vec::new();
    for stage in dockerfile::stages(text) {
        let Base::Image(reference) = stage.base else {
            bases.push(None);
            continue;
        };
        let read = async {
            let image = from_reference(&reference)?;
            let credentials = docker_config::credentials(sh, &image.registry)?;
            let registry = Registry::open(&image.registry, credentials).await?;
            eprintln!("reading the config of {image} ({platform}): is it a Go toolchain image?");
            registry.base_image(&image, platform).await
        };
        match read.await {
            Ok(b) => bases.push(Some(b)),
            Err(e) => {
                eprintln!(
                    "note: {}",
                    crate::common::error_text::one_line(&e.context(format!("cannot read {reference}")))
                );
                bases.push(None);
            }
        }
    }
    bases
}

/// The Dockerfile for one platform's build, its notes printed once (for the first platform).
fn for_platform(text: &str, bases: &[Option<BaseImage>], platform: &str, first: bool, dry_run: bool) -> Option<String> {
    let t = dockerfile::with_go_caches(text, platform, bases);
    if first {
        for note in &t.notes {
            println!("Dockerfile: {note}");
        }
    }
    if t.mounted == 0 {
        if first {
            println!("Dockerfile: built as it is (no RUN step of a Go stage to give Go's caches)");
        }
        return None;
    }
    if first {
        println!("Dockerfile: handed to buildx on stdin (-f -) with Go's caches in {} RUN step(s); the fork's file is unchanged; --no-build-cache builds it as it is", t.mounted);
        if dry_run {
            println!("{}", t.text.lines().map(|l| format!("  | {l}")).collect::<Vec<_>>().join("\n"));
        }
    }
    Some(t.text)
}
