//! `up`, the release as it should be: the chart and the image by digest, the values, their hash.

use super::inputs::Inputs;
use crate::cluster::manifests::SERVICE_ACCOUNT;
use crate::cluster::placement::{Placement, HOSTNAME_LABEL};
use crate::cluster::pull_secret;
use crate::oci::chart::{self, Chart};
use crate::oci::docker_config::Credentials;
use crate::oci::reference::ImageRef;
use crate::oci::registry::{Registry, CHART_ANNOTATION, GUARD_ANNOTATION};
use crate::programs::shell::Shell;
use crate::server::guard::{self, Guard};
use crate::server::values::Values;
use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

/// The release as it should be: the chart (by digest), the image (by digest), the values, and a
/// hash of them all. Reads the registries; a dry run goes on with what it cannot resolve.
pub(super) struct Desired {
    pub(super) chart: Chart,
    pub(super) pinned: ImageRef,
    pub(super) values: String,
    /// `--set` arguments beside the values file.
    pub(super) set: Vec<String>,
    pub(super) hash: String,
    /// With `--pull-secret`: the credentials the pull secret is made of.
    pub(super) pull_credentials: Option<Credentials>,
    /// The guard in front of the server (None with `--no-guard`).
    pub(super) guard: Option<Guard>,
    /// The node the server is pinned to, on a cluster of several (`pin_to`).
    pub(super) placement: Option<Placement>,
    typed: Values,
}

impl Desired {
    /// The pod's port that the Service and the NetworkPolicy lead to: the guard's, else the
    /// server's.
    pub(super) fn door_port(&self, mode: &crate::server::mode::ServerMode) -> u16 {
        match self.guard {
            Some(_) => guard::port(mode.port),
            None => mode.port,
        }
    }

    /// The desired release, and what a dry run could not resolve (its notes).
    pub(super) async fn work_out(sh: &Shell, input: &Inputs) -> Result<(Desired, Vec<String>)> {
        let cache = chart::cache_dir();
        let (located, pinned) = match input.chart_from_image {
            false => {
                let (located, pinned) =
                    tokio::join!(chart::locate(sh, &input.chart, &cache), pin_with_annotations(sh, &input.image));
                (located, pinned.map(|(image, _, guard)| (image, guard)))
            }
            true => match pin_with_annotations(sh, &input.image).await {
                Ok((image, named, guard)) => {
                    let source = match named {
                        Some(n) => crate::oci::chart_push::from_image(&n)?,
                        None => input.chart.clone(),
                    };
                    (chart::locate(sh, &source, &cache).await, Ok((image, guard)))
                }
                Err(e) => (Err(anyhow!("the chart comes with the image, which was not resolved")), Err(e)),
            },
        };
        let mut notes = Vec::new();
        let chart = sh.unless_dry_run(located, &mut notes)?.unwrap_or_else(|| chart::unresolved(&input.chart));
        let (pinned, guard_image) = match sh.unless_dry_run(pinned, &mut notes)? {
            Some((image, guard)) => (image, guard.map(|g| ImageRef::parse(&g)).transpose()?),
            None => (input.image.clone(), Some(input.image.with_tag("unresolved-guard"))),
        };
        let guard = match (input.guard, guard_image) {
            (false, _) => None,
            (true, Some(image)) => Some(Guard { image, node_ip: input.node_ip, hosts: input.hosts.clone() }),
            (true, None) => bail!("{pinned} names no Host/Origin guard (its index was not pushed by `cargo xtask image` of this version): build the image with `cargo xtask image`, or pass --no-guard to deploy the server without one"),
        };
        let pull_credentials = match input.pull_secret {
            false => None,
            true => {
                let registry = &input.image.registry;
                let found = Credentials::for_registry(sh, registry)?;
                Some(found.with_context(|| format!("--pull-secret: there are no credentials for {registry} to make it from: set GHCR_TOKEN (ghcr.io) or log in with `docker login {registry}`"))?)
            }
        };
        let mut typed = Values::new(&pinned, SERVICE_ACCOUNT, &input.mode, guard.as_ref());
        if input.pull_secret {
            typed.image_pull_secrets = vec![crate::server::values::Named { name: pull_secret::name(&input.release) }];
        }
        let (values, set, hash) = rendered(&typed, &chart)?;
        let placement = None;
        Ok((Desired { chart, pinned, values, set, hash, pull_credentials, guard, placement, typed }, notes))
    }

    /// Pins the server to a node (a nodeSelector on its hostname label): the values and their
    /// hash change with it. None (one node) leaves them as they are.
    pub(super) fn pin_to(&mut self, placement: Option<Placement>) -> Result<()> {
        let Some(p) = placement else { return Ok(()) };
        self.typed.node_selector = [(HOSTNAME_LABEL.to_string(), p.hostname.clone())].into();
        (self.values, self.set, self.hash) = rendered(&self.typed, &self.chart)?;
        self.placement = Some(p);
        Ok(())
    }
}

/// The image by digest, and the chart and the guard its index names (what `image` pushed with
/// it), if any.
async fn pin_with_annotations(sh: &Shell, image: &ImageRef) -> Result<(ImageRef, Option<String>, Option<String>)> {
    let registry = Registry::open(&image.registry, Credentials::for_registry(sh, &image.registry)?).await?;
    let digest = registry.resolve_digest(image).await?;
    let pinned = image.with_digest(&digest);
    let annotations = registry.annotations(&pinned).await?;
    let get = |key: &str| annotations.get(key).and_then(|v| v.as_str()).map(String::from);
    Ok((pinned, get(CHART_ANNOTATION), get(GUARD_ANNOTATION)))
}

/// The values file, the `--set` arguments beside it, and the hash of them with the chart.
fn rendered(typed: &Values, chart: &Chart) -> Result<(String, Vec<String>, String)> {
    let (values, set) = (typed.render()?, typed.set_args());
    let hash = deploy_hash(chart, &format!("{values}{}", set.join(" ")));
    Ok((values, set, hash))
}

pub(super) fn deploy_hash(chart: &Chart, values: &str) -> String {
    let mut h = Sha256::new();
    for part in [chart.digest.as_str(), values] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    crate::programs::git::hex(&h.finalize())
}
