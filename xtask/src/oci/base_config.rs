//! A `FROM` image's run configuration for one platform (its `Env` and `User`), read from its
//! registry as Docker names it: what decides whether a stage is built from a Go toolchain image.

use crate::oci::binaries::RunConfig;
use crate::oci::dockerfile::{go_toolchain, BaseImage};
use crate::oci::reference::ImageRef;
use crate::oci::registry::{RawManifest, Registry};
use anyhow::{anyhow, Context, Result};
use serde::Deserialize;

#[derive(Deserialize, Default)]
struct Config {
    #[serde(default)]
    config: RunConfig,
}

/// A `FROM` reference as Docker reads it: Docker Hub when the first part names no host,
/// `library/` for its official images, `latest` when no tag or digest is given.
pub fn from_reference(text: &str) -> Result<ImageRef> {
    let (first, _) = text.split_once('/').unwrap_or(("", text));
    let hosted = first.contains('.') || first.contains(':') || first == "localhost";
    let mut full = match (hosted, text.contains('/')) {
        (true, _) => text.to_string(),
        (false, true) => format!("docker.io/{text}"),
        (false, false) => format!("docker.io/library/{text}"),
    };
    let last = full.rsplit('/').next().unwrap_or_default();
    if !last.contains(':') && !full.contains('@') {
        full.push_str(":latest");
    }
    ImageRef::parse(&full)
}

impl Registry {
    /// The run configuration of `image` for `platform` (from its index when it has one).
    pub async fn base_image(&self, image: &ImageRef, platform: &str) -> Result<BaseImage> {
        let top: RawManifest = self.manifest(image).await?;
        let one = match &top.manifests {
            Some(entries) => {
                let entry = entries
                    .iter()
                    .find(|e| e.platform.as_ref().and_then(|p| p.name()).as_deref() == Some(platform))
                    .or_else(|| entries.iter().find(|e| e.platform.as_ref().and_then(|p| p.name()).is_some()))
                    .ok_or_else(|| anyhow!("{image} lists no platform's image"))?;
                image.with_digest(&entry.digest)
            }
            None => image.clone(),
        };
        let manifest = if one == *image { top } else { self.manifest(&one).await? };
        let config = manifest.config.ok_or_else(|| anyhow!("the manifest of {one} has no config"))?;
        let blob = self.blob(&one, &config.digest).await?;
        let config: Config =
            serde_json::from_slice(&blob).with_context(|| format!("the config of {one} is not JSON"))?;
        let env = config.config.env.unwrap_or_default();
        Ok(BaseImage { go: go_toolchain(&env), user: config.config.user.unwrap_or_default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_references_read_as_docker_reads_them() {
        assert_eq!(from_reference("golang:latest").unwrap().to_string(), "docker.io/library/golang:latest");
        assert_eq!(from_reference("golang").unwrap().to_string(), "docker.io/library/golang:latest");
        assert_eq!(
            from_reference("registry.access.redhat.com/ubi9/ubi-minimal:latest").unwrap().to_string(),
            "registry.access.redhat.com/ubi9/ubi-minimal:latest"
        );
        assert_eq!(from_reference("127.0.0.1:5000/base/go:1.26").unwrap().registry, "127.0.0.1:5000");
        assert_eq!(from_reference("bitnami/golang").unwrap().to_string(), "docker.io/bitnami/golang:latest");
    }
}
