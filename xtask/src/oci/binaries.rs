//! Each platform of an image proven to carry a binary for that platform: the config's os,
//! architecture and variant against the index entry, and the ELF header of the entrypoint binary,
//! read from the topmost layer that holds it (streamed, and dropped once the header is read).

use crate::common::platform::{elf_machine, machine_name};
use crate::oci::layer_scan::{clean, scan, Found};
use crate::oci::reference::ImageRef;
use crate::oci::registry::{to_reference, RawDescriptor, RawManifest, RawPlatform, Registry, ACCEPTED};
use anyhow::{anyhow, bail, Context, Result};
use futures::StreamExt;
use serde::Deserialize;

#[derive(Deserialize)]
struct Config {
    #[serde(flatten)]
    platform: RawPlatform,
    #[serde(default)]
    config: RunConfig,
}

/// An image config's run settings (its `config`), as the proofs and the base-image reads need them.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(super) struct RunConfig {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    working_dir: Option<String>,
    pub(super) env: Option<Vec<String>>,
    pub(super) user: Option<String>,
}

/// How many symbolic links are followed from the entrypoint to its binary.
const MAX_LINKS: usize = 8;

impl Registry {
    /// For every platform of `image` (an index, or one manifest), a line saying what its
    /// entrypoint binary is; an error, in one line, when a platform's binary is for another one.
    pub async fn prove_platforms(&self, image: &ImageRef) -> Result<Vec<String>> {
        let top = self.manifest(image).await?;
        let Some(entries) = top.manifests else { return Ok(vec![self.prove(image, None, top).await?]) };
        let mut lines = Vec::new();
        for entry in entries {
            let Some(platform) = entry.platform.as_ref().and_then(RawPlatform::name) else {
                continue; // buildx attestation manifests
            };
            let one = image.with_digest(&entry.digest);
            let manifest = self.manifest(&one).await?;
            lines.push(self.prove(&one, Some(platform), manifest).await?);
        }
        Ok(lines)
    }

    /// The one platform of an image pushed by digest for `wanted` proven, as `prove_platforms`
    /// proves each; an error when the builder made another platform than the one asked for.
    pub async fn prove_built(&self, image: &ImageRef, wanted: &str) -> Result<String> {
        let wanted = crate::common::platform::normalize(wanted);
        let lines = self.prove_platforms(image).await?;
        match lines.as_slice() {
            [line] if line.starts_with(&format!("{wanted}: ")) => Ok(line.clone()),
            _ => bail!("{wanted}: the build for it made {}, not one image for {wanted}", lines.join("; ")),
        }
    }

    pub(super) async fn manifest(&self, image: &ImageRef) -> Result<RawManifest> {
        let (bytes, _) = self
            .client
            .pull_manifest_raw(&to_reference(image), &self.auth, ACCEPTED)
            .await
            .map_err(|e| self.explain(e, image))?;
        serde_json::from_slice(&bytes).with_context(|| format!("the manifest of {image} is not one this tool reads"))
    }

    async fn prove(&self, image: &ImageRef, listed: Option<String>, manifest: RawManifest) -> Result<String> {
        let config = manifest.config.ok_or_else(|| anyhow!("the manifest of {image} has no config"))?;
        let blob = self.blob(image, &config.digest).await?;
        let config: Config =
            serde_json::from_slice(&blob).with_context(|| format!("the image config of {image} has no platform"))?;
        let Some(platform) = config.platform.name() else {
            bail!("the image config of {image} names no platform (os or architecture unknown)");
        };
        if let Some(listed) = listed.filter(|l| *l != platform) {
            bail!(
                "{listed}: the index lists {listed} but its image config says {platform}: the builder mislabelled it"
            );
        }
        let run = &config.config;
        let Some(program) = run.entrypoint.iter().chain(&run.cmd).flatten().next() else {
            bail!("{platform}: the image has neither ENTRYPOINT nor CMD, so no binary to check");
        };
        for mut path in candidates(program, run) {
            for _ in 0..MAX_LINKS {
                match self.find(image, manifest.layers.as_deref().unwrap_or_default(), &path).await? {
                    Some(Found::Link(target)) => path = target,
                    Some(Found::Header(header)) => return judge(&platform, program, &header),
                    _ => break,
                }
            }
        }
        bail!("{platform}: the entrypoint {program} is not in the image (no layer holds it)")
    }

    /// The first bytes of `path` in the topmost layer that has it (or the link it is).
    async fn find(&self, image: &ImageRef, layers: &[RawDescriptor], path: &str) -> Result<Option<Found>> {
        for layer in layers.iter().rev() {
            let stream = self
                .client
                .pull_blob_stream(&to_reference(image), layer.digest.as_str())
                .await
                .map_err(|e| self.explain(e, image))?;
            let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(8);
            let (media, want) = (layer.media_type.clone(), path.to_string());
            let reader = tokio::task::spawn_blocking(move || scan(rx, &media, &want));
            let mut chunks = stream.stream;
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.with_context(|| format!("reading layer {} of {image}", layer.digest))?;
                if tx.send(chunk).await.is_err() {
                    break; // the scan has what it wanted
                }
            }
            drop(tx);
            let found = reader.await.map_err(|e| anyhow!("the layer scan failed: {e}"))??;
            match found {
                Some(Found::Deleted) => return Ok(None),
                Some(f) => return Ok(Some(f)),
                None => continue,
            }
        }
        Ok(None)
    }

    pub(super) async fn blob(&self, image: &ImageRef, digest: &str) -> Result<Vec<u8>> {
        let mut blob = Vec::new();
        self.client.pull_blob(&to_reference(image), digest, &mut blob).await.map_err(|e| self.explain(e, image))?;
        Ok(blob)
    }
}

/// Where the entrypoint may be, as paths from the image's root without the leading `/`: itself,
/// relative to the working directory, or (a bare name) in each directory of the image's `PATH`.
fn candidates(program: &str, run: &RunConfig) -> Vec<String> {
    let path = run.env.iter().flatten().find_map(|e| e.strip_prefix("PATH="));
    let dirs = path.unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let joined: Vec<String> = match (program.starts_with('/'), program.contains('/')) {
        (true, _) => vec![program.to_string()],
        (false, true) => vec![format!("{}/{program}", run.working_dir.as_deref().unwrap_or("/"))],
        (false, false) => dirs.split(':').map(|d| format!("{d}/{program}")).collect(),
    };
    joined.iter().map(|p| clean(p)).collect()
}

/// Whether an ELF header's machine and class fit `platform`.
fn judge(platform: &str, program: &str, header: &[u8]) -> Result<String> {
    if header.len() < 20 || &header[..4] != b"\x7fELF" {
        let what = if header.starts_with(b"#!") { "a script" } else { "not an ELF binary" };
        return Ok(format!("{platform}: {program} is {what}; its platform cannot be read from it"));
    }
    let machine = match header[5] {
        2 => u16::from_be_bytes([header[18], header[19]]),
        _ => u16::from_le_bytes([header[18], header[19]]),
    };
    let arch = platform.split('/').nth(1).unwrap_or_default();
    let Some((want, class)) = elf_machine(arch) else {
        return Ok(format!("{platform}: {program} is a {} binary", machine_name(machine)));
    };
    if machine != want || header[4] != class {
        bail!(
            "{platform}: {program} is a {} binary, not {}: the Dockerfile's build does not follow the target platform (a GOARCH set by hand, or an ARG TARGETARCH or TARGETOS with a default that no --build-arg overrides; `cargo xtask image` passes them per platform)",
            machine_name(machine),
            machine_name(want)
        );
    }
    Ok(format!("{platform}: {program} is a {} binary", machine_name(machine)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(class: u8, machine: u16) -> Vec<u8> {
        let mut h = b"\x7fELF".to_vec();
        h.extend([class, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0]);
        h.extend(machine.to_le_bytes());
        h
    }

    #[test]
    fn judges_the_machine_against_the_platform() {
        assert!(judge("linux/amd64", "/app/x", &header(2, 62)).unwrap().contains("x86-64"));
        assert!(judge("linux/arm64", "/app/x", &header(2, 183)).is_ok());
        let wrong = judge("linux/arm64", "/app/x", &header(2, 62)).unwrap_err().to_string();
        assert!(wrong.starts_with("linux/arm64: /app/x is a x86-64 (amd64) binary, not AArch64"), "{wrong}");
        assert!(wrong.contains("ARG TARGETARCH") && !wrong.contains('\n'), "{wrong}");
        assert!(judge("linux/arm/v7", "/app/x", &header(2, 40)).is_err(), "a 64-bit class is not arm");
        assert!(judge("linux/amd64", "/app/x", b"#!/bin/sh\necho hi\n").unwrap().contains("a script"));
    }

    #[test]
    fn entrypoints_resolve_as_exec_does() {
        let run = |dir: Option<&str>, path: Option<&str>| RunConfig {
            working_dir: dir.map(String::from),
            env: path.map(|p| vec![format!("PATH={p}")]),
            ..Default::default()
        };
        assert_eq!(candidates("/app/kubernetes-mcp-server", &run(None, None)), ["app/kubernetes-mcp-server"]);
        assert_eq!(candidates("./server", &run(Some("/app"), None)), ["app/server"]);
        assert_eq!(candidates("server", &run(Some("/app"), Some("/opt/bin:/bin"))), ["opt/bin/server", "bin/server"]);
    }
}
