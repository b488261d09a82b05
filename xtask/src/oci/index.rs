//! An image index assembled from images pushed by digest, one per platform, and the tags moved
//! onto it only once it is complete.

use crate::oci::reference::ImageRef;
use crate::oci::registry::{to_reference, Registry, ACCEPTED};
use anyhow::{Context, Result};
use oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE;
use serde_json::{json, Value};
use sha2::Digest;

impl Registry {
    /// The index entries that stand for `image` (pushed by digest for one platform): its own
    /// entries when it is an index (the platform's manifest and buildx's attestation), else one
    /// entry for the manifest with the platform it was built for.
    pub async fn entries_of(&self, image: &ImageRef, platform: &str) -> Result<Vec<Value>> {
        let (manifest, digest, size) = self.manifest_json(image).await?;
        if let Some(entries) = manifest["manifests"].as_array() {
            return Ok(entries.clone());
        }
        let media_type = manifest["mediaType"].as_str().unwrap_or("application/vnd.oci.image.manifest.v1+json");
        let mut parts = platform.split('/');
        let (os, architecture) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        let mut platform = json!({"os": os, "architecture": architecture});
        if let Some(variant) = parts.next() {
            platform["variant"] = json!(variant);
        }
        Ok(vec![json!({"mediaType": media_type, "digest": digest, "size": size, "platform": platform})])
    }

    /// The annotations of the manifest (or index) `image` names.
    pub async fn annotations(&self, image: &ImageRef) -> Result<serde_json::Map<String, Value>> {
        let (manifest, _, _) = self.manifest_json(image).await?;
        Ok(manifest["annotations"].as_object().cloned().unwrap_or_default())
    }

    /// The manifest (or index) `image` names, as JSON, with its digest and size.
    async fn manifest_json(&self, image: &ImageRef) -> Result<(Value, String, usize)> {
        let (bytes, digest) = self
            .client
            .pull_manifest_raw(&to_reference(image), &self.auth, ACCEPTED)
            .await
            .map_err(|e| self.explain(e, image))?;
        let manifest =
            serde_json::from_slice(&bytes).with_context(|| format!("the manifest of {image} is not JSON"))?;
        Ok((manifest, digest, bytes.len()))
    }

    /// Pushes an OCI index of `entries` by its digest, then points each of `tags` at it; returns
    /// the index's digest.
    pub async fn push_index(
        &self,
        image: &ImageRef,
        entries: Vec<Value>,
        annotations: Value,
        tags: &[&str],
    ) -> Result<String> {
        let mut index = json!({"schemaVersion": 2, "mediaType": OCI_IMAGE_INDEX_MEDIA_TYPE, "manifests": entries});
        if annotations.as_object().is_some_and(|a| !a.is_empty()) {
            index["annotations"] = annotations;
        }
        let body = serde_json::to_vec(&index)?;
        let digest = format!("sha256:{}", crate::programs::git::hex(&sha2::Sha256::digest(&body)));
        let reference = to_reference(image);
        self.client.store_auth_if_needed(reference.resolve_registry(), &self.auth).await;
        let content_type = reqwest::header::HeaderValue::from_static(OCI_IMAGE_INDEX_MEDIA_TYPE);
        let targets = std::iter::once(image.with_digest(&digest)).chain(tags.iter().map(|t| image.with_tag(t)));
        for target in targets {
            self.client
                .push_manifest_raw(&to_reference(&target), body.clone(), content_type.clone())
                .await
                .map_err(|e| self.explain(e, &target))?;
        }
        Ok(digest)
    }
}
