//! The OCI registry, through oci-client: does a tag exist, with which platforms, at which digest.

use crate::oci::docker_config::Credentials;
use crate::oci::reference::ImageRef;
use anyhow::{anyhow, bail, Result};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Deserialize;
use sha2::Digest;

#[derive(Debug, PartialEq, Eq)]
pub enum Remote {
    Absent,
    /// `chart`, `guard`: the chart and the guard `image` pushed with it, as the index's
    /// annotations name them.
    Present {
        digest: String,
        platforms: Vec<String>,
        chart: Option<String>,
        guard: Option<String>,
    },
}

pub struct Registry {
    pub(super) client: Client,
    pub(super) auth: RegistryAuth,
    /// Where the credentials sent came from, if any were: the environment (true) or the Docker config.
    credentials_from_env: Option<bool>,
}

#[derive(Deserialize)]
pub(super) struct RawManifest {
    #[serde(default)]
    pub(super) manifests: Option<Vec<RawEntry>>,
    #[serde(default)]
    pub(super) config: Option<RawDescriptor>,
    #[serde(default)]
    pub(super) layers: Option<Vec<RawDescriptor>>,
    #[serde(default)]
    pub(super) annotations: std::collections::BTreeMap<String, String>,
}

/// The image index's annotation naming the chart `image` pushed with it, by tag and digest.
pub const CHART_ANNOTATION: &str = "kmcp-xtask.chart";
pub const GUARD_ANNOTATION: &str = "kmcp-xtask.guard";

/// The media type of a helm chart's content layer in an OCI chart.
const CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

#[derive(Deserialize)]
pub(super) struct RawEntry {
    #[serde(default)]
    pub(super) digest: String,
    pub(super) platform: Option<RawPlatform>,
}

#[derive(Deserialize)]
pub(super) struct RawPlatform {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RawDescriptor {
    pub(super) digest: String,
    #[serde(default, rename = "mediaType")]
    pub(super) media_type: String,
}

impl RawPlatform {
    /// `os/arch[/variant]` in containerd's normal form; None for buildx's attestation entries.
    pub(super) fn name(&self) -> Option<String> {
        if self.os == "unknown" || self.architecture == "unknown" {
            return None; // buildx attestation manifests
        }
        let variant = self.variant.as_deref().unwrap_or_default();
        Some(crate::common::platform::normalize(&format!("{}/{}/{variant}", self.os, self.architecture)))
    }
}

pub(super) const ACCEPTED: &[&str] =
    &[OCI_IMAGE_INDEX_MEDIA_TYPE, IMAGE_MANIFEST_LIST_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE];

impl Registry {
    pub fn new(registry: &str, credentials: Option<&Credentials>) -> Registry {
        let protocol = if crate::oci::reference::is_loopback_registry(registry) {
            ClientProtocol::HttpsExcept(vec![registry.to_string()])
        } else {
            ClientProtocol::Https
        };
        let config = ClientConfig {
            protocol,
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(30)),
            ..Default::default()
        };
        let auth = match credentials {
            Some(c) => RegistryAuth::Basic(c.user.clone(), c.token.clone()),
            None => RegistryAuth::Anonymous,
        };
        Registry { client: Client::new(config), auth, credentials_from_env: credentials.map(|c| c.from_env) }
    }

    /// `new`, run on a thread of its own: reading the system's root certificates takes a while,
    /// and the caller has other work meanwhile.
    pub async fn open(registry: &str, credentials: Option<Credentials>) -> Result<Registry> {
        let registry = registry.to_string();
        tokio::task::spawn_blocking(move || Registry::new(&registry, credentials.as_ref()))
            .await
            .map_err(|e| anyhow!("cannot set up the registry client: {e}"))
    }

    /// What the registry holds at `image` (a tag or a digest reference).
    pub async fn inspect(&self, image: &ImageRef) -> Result<Remote> {
        let reference = to_reference(image);
        let (bytes, digest) = match self.client.pull_manifest_raw(&reference, &self.auth, ACCEPTED).await {
            Ok(found) => found,
            Err(e) if is_not_found(&e) => return Ok(Remote::Absent),
            Err(e) => return Err(self.explain(e, image)),
        };
        let manifest: RawManifest = serde_json::from_slice(&bytes)
            .map_err(|e| anyhow!("registry {} sent a manifest for {image} that is not JSON: {e}", image.registry))?;
        let chart = manifest.annotations.get(CHART_ANNOTATION).cloned();
        let guard = manifest.annotations.get(GUARD_ANNOTATION).cloned();
        let mut platforms: Vec<String> = match (manifest.manifests, manifest.config) {
            (Some(entries), _) => entries.iter().filter_map(|e| e.platform.as_ref()?.name()).collect(),
            (None, Some(config)) => {
                let mut blob = Vec::new();
                self.client
                    .pull_blob(&reference, config.digest.as_str(), &mut blob)
                    .await
                    .map_err(|e| self.explain(e, image))?;
                let platform: RawPlatform = serde_json::from_slice(&blob)
                    .map_err(|e| anyhow!("the image config of {image} has no platform: {e}"))?;
                platform.name().into_iter().collect()
            }
            (None, None) => {
                bail!("registry {} sent a manifest for {image} with neither platforms nor config", image.registry)
            }
        };
        platforms.sort();
        platforms.dedup();
        Ok(Remote::Present { digest, platforms, chart, guard })
    }

    /// The digest a tag points at, for deploys pinned by digest.
    pub async fn resolve_digest(&self, image: &ImageRef) -> Result<String> {
        match self.digest_of(image).await? {
            Some(d) => Ok(d),
            None => {
                bail!("image {image} is not in the registry: push it first with `cargo xtask image`, or pass --image")
            }
        }
    }

    /// The digest of the manifest `image` names (by tag, or by a digest the registry must hold);
    /// `None` when the registry has no such manifest.
    pub async fn digest_of(&self, image: &ImageRef) -> Result<Option<String>> {
        match self.client.fetch_manifest_digest(&to_reference(image), &self.auth).await {
            Ok(d) => Ok(Some(image.digest.clone().unwrap_or(d))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.explain(e, image)),
        }
    }

    /// A helm chart by manifest digest: the chart layer's bytes, both digests checked.
    pub async fn pull_chart(&self, chart: &ImageRef) -> Result<Vec<u8>> {
        let want = chart.digest.clone().ok_or_else(|| anyhow!("a chart is pulled by digest"))?;
        let reference = to_reference(chart);
        let (bytes, _) = self
            .client
            .pull_manifest_raw(&reference, &self.auth, &["application/vnd.oci.image.manifest.v1+json"])
            .await
            .map_err(|e| self.explain(e, chart))?;
        let got = format!("sha256:{}", crate::programs::git::hex(&sha2::Sha256::digest(&bytes)));
        if got != want {
            bail!("registry {} sent a manifest with digest {got} for {want}", chart.registry);
        }
        let manifest: RawManifest =
            serde_json::from_slice(&bytes).map_err(|e| anyhow!("the manifest of {chart} is not JSON: {e}"))?;
        let layer = manifest
            .layers
            .unwrap_or_default()
            .into_iter()
            .find(|l| l.media_type == CHART_LAYER)
            .ok_or_else(|| anyhow!("{chart} is not a helm chart (no {CHART_LAYER} layer)"))?;
        let mut blob = Vec::new();
        self.client
            .pull_blob(&reference, layer.digest.as_str(), &mut blob)
            .await
            .map_err(|e| self.explain(e, chart))?;
        let got = format!("sha256:{}", crate::programs::git::hex(&sha2::Sha256::digest(&blob)));
        if got != layer.digest {
            bail!("the chart layer of {chart} has digest {got}, not {}", layer.digest);
        }
        Ok(blob)
    }

    pub(super) fn explain(&self, e: OciDistributionError, image: &ImageRef) -> anyhow::Error {
        let host = &image.registry;
        if let Some(code) = denied_status(&e) {
            let repository = &image.repository;
            // The advice names where the credentials came from, or where they would come from.
            return match (self.credentials_from_env, host.as_str()) {
                (Some(true), _) => anyhow!("registry {host} refused the credentials (HTTP {code}) for {repository}: set GHCR_TOKEN (or GITHUB_TOKEN) to a token with access to the package, and GHCR_USER to its user"),
                (Some(false), _) => anyhow!("registry {host} refused the credentials of the Docker config (HTTP {code}) for {repository}: log in again with `docker login {host}` as a user with access to it"),
                (None, "ghcr.io") => anyhow!("registry {host} requires credentials (HTTP {code}) for {repository}: set GHCR_TOKEN (or GITHUB_TOKEN) and GHCR_USER, or log in with `docker login ghcr.io`"),
                (None, _) => anyhow!("registry {host} requires credentials (HTTP {code}) for {repository}: log in with `docker login {host}`"),
            };
        }
        if let OciDistributionError::RequestError(r) = &e {
            if r.is_connect() || r.is_timeout() || r.is_request() {
                return anyhow!("cannot reach registry {host}: check the address, that it is running, and the network");
            }
        }
        anyhow!("registry {host} failed for {image}: {e}")
    }
}

pub(super) fn to_reference(image: &ImageRef) -> Reference {
    match (&image.digest, &image.tag) {
        (Some(d), _) => Reference::with_digest(image.registry.clone(), image.repository.clone(), d.clone()),
        (None, t) => Reference::with_tag(
            image.registry.clone(),
            image.repository.clone(),
            t.clone().unwrap_or_else(|| "latest".into()),
        ),
    }
}

fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|x| {
            matches!(x.code, OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound)
        }),
        OciDistributionError::ServerError { code, .. } => *code == 404,
        _ => false,
    }
}

fn denied_status(e: &OciDistributionError) -> Option<u16> {
    match e {
        OciDistributionError::UnauthorizedError { .. } | OciDistributionError::AuthenticationFailure(_) => Some(401),
        OciDistributionError::ServerError { code: c @ (401 | 403), .. } => Some(*c),
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().find_map(|x| match x.code {
            OciErrorCode::Unauthorized => Some(401),
            OciErrorCode::Denied => Some(403),
            _ => None,
        }),
        _ => None,
    }
}

/// Every requested platform that `found` lacks, compared as containerd compares them.
pub fn missing_platforms(requested: &[String], found: &[String]) -> Vec<String> {
    use crate::common::platform::normalize;
    let found: Vec<String> = found.iter().map(|p| normalize(p)).collect();
    requested.iter().filter(|p| !found.contains(&normalize(p))).cloned().collect()
}
