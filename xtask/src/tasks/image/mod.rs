//! `cargo xtask image`: build the fork for each platform (its platform arguments set), push each by
//! digest and prove its binary, then assemble the index and tag it `dev-<sha>` and `dev-latest`.
//! A no-op when the registry already has the tag with every platform.

use crate::common::flags::{self, Platforms};
use crate::common::platform::normalize;
use crate::oci::chart::CHART_NAME;
use crate::oci::chart_push::{package, version_for, FORK_CHART_DIR};
use crate::oci::docker_config::{self, Credentials};
use crate::oci::reference::{is_loopback_registry, ImageNameArgs, ImageRef};
use crate::oci::registry::{missing_platforms, Registry, Remote, CHART_ANNOTATION, GUARD_ANNOTATION};
use crate::programs::docker;
use crate::programs::git::{self, Checkout};
use crate::programs::shell::Shell;
use anyhow::{bail, Context, Result};
use builds::{build_all, Builds};
use std::path::PathBuf;

mod build_cache;
mod builds;
mod guard;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The fork's git checkout (holds its Dockerfile)
    #[arg(long, env = "MCP_FORK_DIR", value_name = "PATH")]
    pub(crate) fork: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) image: ImageNameArgs,
    /// Platforms to build, comma separated
    #[arg(long, value_name = "LIST", default_value = "linux/amd64,linux/arm64", value_parser = flags::platforms)]
    pub(crate) platform: Platforms,
    /// Compress the pushed layers with gzip at this level, 1 (fastest) to 9 [default: BuildKit's];
    /// `dev` builds with 1: its registry is on this machine
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=9))]
    pub(crate) gzip_level: Option<u8>,
    /// Build a tree with uncommitted changes (the tag then carries a hash of them)
    #[arg(long)]
    pub(crate) allow_dirty: bool,
    /// Build the fork's Dockerfile exactly as it is, without Go's module and build caches mounted
    /// into its Go stages' RUN steps
    #[arg(long)]
    pub(crate) no_build_cache: bool,
    /// Rebuild and push even if the tag already exists
    #[arg(long)]
    pub(crate) force: bool,
    /// Print every command and registry call, run none (the base images' configs are read, to
    /// show the Dockerfile handed to buildx)
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(sh: &Shell, args: Args) -> Result<()> {
    let platforms = args.platform.0.clone();
    let Some(fork) = args.fork.clone() else {
        bail!("no fork checkout given: pass --fork PATH or set MCP_FORK_DIR");
    };
    let checkout = Checkout::open(&fork)?;
    if !fork.join("Dockerfile").is_file() {
        bail!("no Dockerfile in {}: the fork's checkout must hold its Dockerfile", fork.display());
    }
    let origin = checkout.origin_url();
    let image = args.image.resolve(origin.as_deref())?;
    let (tag, sha) = checkout.image_tag(args.allow_dirty)?;
    let owner = image.repository.split('/').next().unwrap_or_default().to_string();
    let credentials = credentials(sh, &image.registry, &owner)?;
    let registry = Registry::new(&image.registry, credentials.as_ref());
    let tagged = image.with_tag(&tag);

    let wanted = format!("GET manifest {tagged} (platforms {})", platforms.join(","));
    let found = if args.force { None } else { sh.remote(&wanted, || registry.inspect(&tagged)).await? };
    if let Some(Remote::Present { digest, platforms: found, chart, guard }) = found {
        let missing = missing_platforms(&platforms, &found);
        if missing.is_empty() {
            let proven = prove(sh, &registry, &image.with_digest(&digest)).await?;
            println!("up to date: {tagged} already has {} ({digest})", found.join(", "));
            proven.iter().for_each(|l| println!("{l}"));
            let (digest, guard) = match guard {
                Some(g) => (digest, Some(g)),
                None => {
                    println!(
                        "{tagged} names no Host/Origin guard (pushed by an older `cargo xtask image`): adding one"
                    );
                    let found = Found { digest, platforms: found, chart: chart.clone() };
                    ready_to_build(sh, &image, &found.platforms, credentials.as_ref())?;
                    add_guard(sh, &args, &registry, &fork, &image, &tag, found).await?
                }
            };
            if let Some(chart) = chart {
                println!("chart {chart}");
            }
            guard.into_iter().for_each(|g| println!("guard {g}"));
            println!("{}", image.with_digest(&digest));
            return Ok(());
        }
        eprintln!("{tagged} exists but lacks {}: rebuilding", missing.join(", "));
    }

    ready_to_build(sh, &image, &platforms, credentials.as_ref())?;
    let committed = checkout.head_time()?;
    let labels = labels(origin.as_deref(), &sha, committed)?;

    // Each platform built and pushed by digest, then proven; no tag moves until all are.
    let platforms: Vec<String> = platforms.iter().map(|p| normalize(p)).collect();
    let prepared = build_cache::dockerfiles(sh, &fork, &platforms, args.no_build_cache).await?;
    let builds = Builds { fork: &fork, repository: image.name(), labels: &labels, gzip_level: args.gzip_level };
    let digests = build_all(sh, &builds, &platforms, &prepared.dockerfiles)?;
    let mut entries = Vec::new();
    let mut proven = Vec::new();
    for (platform, digest) in platforms.iter().zip(digests) {
        let Some(digest) = digest else { continue };
        let one = image.with_digest(&digest);
        let what = format!("GET the config and entrypoint binary of {one} ({platform})");
        let line = sh.remote(&what, || registry.prove_built(&one, platform)).await;
        proven.push(line_or_untouched(line.map(Option::unwrap_or_default), &tagged)?);
        let what = format!("GET manifest {one}");
        entries.extend(sh.remote(&what, || registry.entries_of(&one, platform)).await?.unwrap_or_default());
    }
    let go_image = prepared.go_image.as_deref();
    let guard = guard::build_and_push(sh, &registry, &image, go_image, &platforms, args.gzip_level).await?;
    let chart = push_chart(sh, &registry, &fork, &image, &tag, committed).await?;
    let mut annotations = serde_json::json!({});
    if let Some(c) = &chart {
        annotations[CHART_ANNOTATION] = c.clone().into();
    }
    if let Some(g) = &guard {
        annotations[GUARD_ANNOTATION] = g.to_string().into();
    }
    let tags = [tag.as_str(), "dev-latest"];
    let what = format!("PUT an index of {} as {} and {}", platforms.join(", "), tagged, image.with_tag("dev-latest"));
    let pushed_index = sh.remote(&what, || registry.push_index(&image, entries, annotations, &tags)).await?;
    if pushed_index.is_none() {
        return Ok(());
    }

    let check = format!("GET manifest {tagged} and check it holds {}", platforms.join(","));
    let Some(pushed) = sh.remote(&check, || registry.inspect(&tagged)).await? else { return Ok(()) };
    let Remote::Present { digest, platforms: found, .. } = pushed else {
        bail!("the push reported success but {tagged} is not in the registry");
    };
    let missing = missing_platforms(&platforms, &found);
    if !missing.is_empty() {
        bail!(
            "pushed {tagged} but its index lacks {}: check the buildx builder supports every platform",
            missing.join(", ")
        );
    }
    println!("pushed {tagged} with {}", found.join(", "));
    proven.iter().for_each(|l| println!("{l}"));
    if let Some(chart) = chart {
        println!("chart {chart}");
    }
    if let Some(guard) = guard {
        println!("guard {guard}");
    }
    println!("{}", image.with_digest(&digest));
    Ok(())
}

/// The buildx builder checked, and the registry logged in to when the token came from the
/// environment.
fn ready_to_build(sh: &Shell, image: &ImageRef, platforms: &[String], credentials: Option<&Credentials>) -> Result<()> {
    let loopback = is_loopback_registry(&image.registry).then_some(image.registry.as_str());
    docker::preflight(sh, platforms, loopback)?;
    if let Some(c) = credentials.filter(|c| c.from_env) {
        docker::login(sh, &image.registry, &c.user, &c.token)?;
    }
    Ok(())
}

/// An index in the registry with every platform asked for.
struct Found {
    digest: String,
    platforms: Vec<String>,
    chart: Option<String>,
}

/// The guard built and pushed, and an index of the same platform images (and chart) that names it
/// pushed under the tag and `dev-latest`: the new index's digest and the guard.
async fn add_guard(
    sh: &Shell,
    args: &Args,
    registry: &Registry,
    fork: &std::path::Path,
    image: &ImageRef,
    tag: &str,
    found: Found,
) -> Result<(String, Option<String>)> {
    let go_image = build_cache::go_image(sh, fork).await?;
    let platforms = &found.platforms;
    let Some(guard) =
        guard::build_and_push(sh, registry, image, go_image.as_deref(), platforms, args.gzip_level).await?
    else {
        return Ok((found.digest, None));
    };
    let pinned = image.with_digest(&found.digest);
    let what = format!("GET manifest {pinned}");
    let entries = sh.remote(&what, || registry.entries_of(&pinned, &found.platforms[0])).await?.unwrap_or_default();
    let mut annotations = serde_json::json!({ GUARD_ANNOTATION: guard.to_string() });
    if let Some(c) = found.chart {
        annotations[CHART_ANNOTATION] = c.into();
    }
    let tags = [tag, "dev-latest"];
    let what = format!("PUT an index of the same images naming the guard as {} and dev-latest", image.with_tag(tag));
    let digest = sh.remote(&what, || registry.push_index(image, entries, annotations, &tags)).await?;
    Ok((digest.unwrap_or(found.digest), Some(guard.to_string())))
}

/// The fork's chart, when it has one, packaged for this tag and pushed next to the image as
/// `<registry>/<owner>/charts/kubernetes-mcp-server:0.0.0-<tag>`: `oci://...:version@digest`.
async fn push_chart(
    sh: &Shell,
    registry: &Registry,
    fork: &std::path::Path,
    image: &ImageRef,
    tag: &str,
    committed: i64,
) -> Result<Option<String>> {
    let dir = fork.join(FORK_CHART_DIR);
    if !dir.join("Chart.yaml").is_file() {
        eprintln!("note: the fork has no {FORK_CHART_DIR}: no chart is pushed with the image; `up` then needs --chart or a digest in deploy/chart.yaml");
        return Ok(None);
    }
    let owner = image.repository.split('/').next().unwrap_or_default();
    let chart = ImageRef::new(&image.registry, owner, &format!("charts/{CHART_NAME}"))?.with_tag(&version_for(tag));
    let packaged = package(&dir, &version_for(tag), tag, committed.max(0) as u64)?;
    let what = format!("PUT chart {chart} (the fork's {FORK_CHART_DIR}) and read it back");
    let Some(digest) = sh.remote(&what, || registry.push_chart(&chart, packaged)).await? else { return Ok(None) };
    Ok(Some(format!("oci://{chart}@{digest}")))
}

/// A platform's proof, or its failure with word that no tag was moved.
fn line_or_untouched(line: Result<String>, tagged: &ImageRef) -> Result<String> {
    line.map_err(|e| anyhow::anyhow!("{e:#} (no tag was moved: {tagged} and dev-latest are where they were)"))
}

/// The OCI labels: source (from the origin remote), revision, and created (the commit's time, so
/// that one commit builds one config).
fn labels(origin: Option<&str>, sha: &str, committed: i64) -> Result<Vec<String>> {
    let mut labels = Vec::new();
    match origin.and_then(git::https_url) {
        Some(url) => labels.push(format!("org.opencontainers.image.source={url}")),
        None => eprintln!("warning: the fork has no origin remote, so the image carries no source label"),
    }
    labels.push(format!("org.opencontainers.image.revision={sha}"));
    let created = jiff::Timestamp::from_second(committed).context("the commit's time is out of range")?;
    labels.push(format!("org.opencontainers.image.created={created}"));
    Ok(labels)
}

/// `GHCR_TOKEN`/`GITHUB_TOKEN` (user `GHCR_USER`, else the owner) for ghcr.io only; for every
/// registry, ghcr.io too when no token is set, what the Docker config holds.
fn credentials(sh: &Shell, registry: &str, owner: &str) -> Result<Option<Credentials>> {
    match Credentials::from_env(owner).filter(|_| registry == "ghcr.io") {
        Some(c) => Ok(Some(c)),
        None => docker_config::credentials(sh, registry),
    }
}

/// Every platform's entrypoint binary read from its layers: a line each, or the one-line error
/// naming the platform whose binary is for another.
async fn prove(sh: &Shell, registry: &Registry, image: &ImageRef) -> Result<Vec<String>> {
    let what = format!("GET each platform's config and entrypoint binary of {image}");
    Ok(sh.remote(&what, || registry.prove_platforms(image)).await?.unwrap_or_default())
}
