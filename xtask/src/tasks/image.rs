//! `cargo xtask image`: build the fork for several platforms, tag `dev-<sha>` and `dev-latest`,
//! push, and read the index back. A no-op when the registry already has the tag with every platform.

use crate::common::flags::{self, Platforms};
use crate::oci::docker_config::{self, Credentials};
use crate::oci::reference::{is_loopback_registry, ImageRef};
use crate::oci::registry::{missing_platforms, Registry, Remote};
use crate::programs::docker::{self, Build};
use crate::programs::git::{self, Checkout};
use crate::programs::shell::Shell;
use anyhow::{bail, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The fork's git checkout (holds its Dockerfile)
    #[arg(long, env = "MCP_FORK_DIR", value_name = "PATH")]
    pub(crate) fork: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) image: NameArgs,
    /// Platforms to build, comma separated
    #[arg(long, value_name = "LIST", default_value = "linux/amd64,linux/arm64", value_parser = flags::platforms)]
    pub(crate) platform: Platforms,
    /// Build a tree with uncommitted changes (the tag then carries a hash of them)
    #[arg(long)]
    pub(crate) allow_dirty: bool,
    /// Rebuild and push even if the tag already exists
    #[arg(long)]
    pub(crate) force: bool,
    /// Print every command and registry call, run none
    #[arg(long)]
    pub dry_run: bool,
}

/// Where the image lives: `<registry>/<owner>/<name>`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct NameArgs {
    /// Registry host
    #[arg(long, value_name = "HOST[:PORT]", default_value = "ghcr.io")]
    pub(crate) registry: String,
    /// Image owner [default: GITHUB_REPOSITORY_OWNER, else the owner of the fork's origin remote]
    #[arg(long, value_name = "NAME")]
    pub(crate) owner: Option<String>,
    /// Image name
    #[arg(long, value_name = "NAME", default_value = "kubernetes-mcp-server")]
    pub(crate) name: String,
}

impl NameArgs {
    pub(crate) fn resolve(&self, origin_url: Option<&str>) -> Result<ImageRef> {
        ImageRef::owned(&self.registry, self.owner.as_deref(), &self.name, origin_url)
    }
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
    if let Some(Remote::Present { digest, platforms: found }) = found {
        let missing = missing_platforms(&platforms, &found);
        if missing.is_empty() {
            let proven = prove(sh, &registry, &image.with_digest(&digest)).await?;
            println!("up to date: {tagged} already has {} ({digest})", found.join(", "));
            proven.iter().for_each(|l| println!("{l}"));
            println!("{}", image.with_digest(&digest));
            return Ok(());
        }
        eprintln!("{tagged} exists but lacks {}: rebuilding", missing.join(", "));
    }

    let loopback = is_loopback_registry(&image.registry).then_some(image.registry.as_str());
    docker::preflight(sh, &platforms, loopback)?;
    if let Some(c) = credentials.as_ref().filter(|c| c.from_env) {
        docker::login(sh, &image.registry, &c.user, &c.token)?;
    }
    let mut labels = Vec::new();
    match origin.as_deref().and_then(git::https_url) {
        Some(url) => labels.push(format!("org.opencontainers.image.source={url}")),
        None => eprintln!("warning: the fork has no origin remote, so the image carries no source label"),
    }
    labels.push(format!("org.opencontainers.image.revision={sha}"));
    labels.push(format!("org.opencontainers.image.created={}", rfc3339_now()));
    let build = Build {
        fork: &fork,
        platforms: &platforms,
        tags: vec![tagged.to_string(), image.with_tag("dev-latest").to_string()],
        labels,
    };
    docker::build_and_push(sh, &build)?;

    let check = format!("GET manifest {tagged} and check it holds {}", platforms.join(","));
    let Some(pushed) = sh.remote(&check, || registry.inspect(&tagged)).await? else { return Ok(()) };
    let Remote::Present { digest, platforms: found } = pushed else {
        bail!("the push reported success but {tagged} is not in the registry");
    };
    let missing = missing_platforms(&platforms, &found);
    if !missing.is_empty() {
        bail!(
            "pushed {tagged} but its index lacks {}: check the buildx builder supports every platform",
            missing.join(", ")
        );
    }
    let proven = prove(sh, &registry, &image.with_digest(&digest)).await?;
    println!("pushed {tagged} with {}", found.join(", "));
    proven.iter().for_each(|l| println!("{l}"));
    println!("{}", image.with_digest(&digest));
    Ok(())
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

/// The current UTC time as RFC 3339, e.g. `2026-11-25T01:48:27Z`.
fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_shape() {
        let t = rfc3339_now();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z') && &t[10..11] == "T", "{t}");
    }
}
