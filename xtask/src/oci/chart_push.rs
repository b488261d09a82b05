//! The fork's own chart next to its image: packaged as `helm package` lays a chart out (one
//! folder, `.helmignore` honoured, `Chart.yaml` carrying the version it is pushed under), pushed
//! as an OCI Helm chart and read back by digest; and that chart as `up` finds it named by the image.

use crate::oci::chart::{check_digest, oci_parts, Source};
use crate::oci::reference::ImageRef;
use crate::oci::registry::{to_reference, Registry};
use anyhow::{anyhow, bail, Context, Result};
use oci_client::client::{Config, ImageLayer};
use std::path::{Path, PathBuf};

/// Where a fork keeps its chart.
pub const FORK_CHART_DIR: &str = "charts/kubernetes-mcp-server";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";
const LAYER_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// The chart version an image tag's chart is pushed under: `0.0.0-<tag>` (semver, so helm takes it).
pub fn version_for(tag: &str) -> String {
    format!("0.0.0-{tag}")
}

/// The chart an image's index names (`oci://REGISTRY/PATH/NAME:VERSION@sha256:...`), pinned by
/// that digest.
pub fn from_image(named: &str) -> Result<Source> {
    let bad = || {
        anyhow!("the image names its chart as '{named}', which is not oci://REGISTRY/PATH/NAME:VERSION@sha256:...: push it again with `cargo xtask image`")
    };
    let (rest, digest) = named.split_once('@').ok_or_else(bad)?;
    let (reference, version) = rest.rsplit_once(':').filter(|(r, _)| r.contains('/')).ok_or_else(bad)?;
    check_digest(digest).map_err(|_| bad())?;
    oci_parts(reference).map_err(|_| bad())?;
    let (reference, version, digest) = (reference.to_string(), version.to_string(), Some(digest.to_string()));
    Ok(Source::Oci { reference, version, digest, from_image: true })
}

/// A packaged chart: the `.tgz` helm reads and the config blob (its metadata as JSON).
pub struct Packaged {
    pub tgz: Vec<u8>,
    pub config: Vec<u8>,
}

/// The chart folder `dir` as a `.tgz` whose `Chart.yaml` says `version` and `app_version`; every
/// entry dated `mtime`, so the same commit packages the same bytes.
pub fn package(dir: &Path, version: &str, app_version: &str, mtime: u64) -> Result<Packaged> {
    let chart_yaml = std::fs::read_to_string(dir.join("Chart.yaml"))
        .with_context(|| format!("cannot read {}/Chart.yaml", dir.display()))?;
    let mut meta: serde_json::Value =
        serde_norway::from_str(&chart_yaml).with_context(|| format!("{}/Chart.yaml is not YAML", dir.display()))?;
    let Some(name) = meta["name"].as_str().map(str::to_string) else {
        bail!("{}/Chart.yaml has no name", dir.display());
    };
    meta["version"] = version.into();
    meta["appVersion"] = app_version.into();
    let rewritten = rewrite_versions(&chart_yaml, version, app_version);
    let ignored = ignore_patterns(dir);
    let mut files = Vec::new();
    walk(dir, dir, &ignored, &mut files)?;
    files.sort();
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for rel in
        std::iter::once(PathBuf::from("Chart.yaml")).chain(files.into_iter().filter(|f| f != Path::new("Chart.yaml")))
    {
        let data = match rel == Path::new("Chart.yaml") {
            true => rewritten.clone().into_bytes(),
            false => std::fs::read(dir.join(&rel)).with_context(|| format!("cannot read {}", rel.display()))?,
        };
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        tar.append_data(&mut header, Path::new(&name).join(&rel), data.as_slice())?;
    }
    let tgz = tar.into_inner()?.finish()?;
    Ok(Packaged { tgz, config: serde_json::to_vec(&meta)? })
}

/// `Chart.yaml` with its top-level `version:` and `appVersion:` lines replaced (added if absent).
fn rewrite_versions(text: &str, version: &str, app_version: &str) -> String {
    let (mut out, mut app_seen) = (String::new(), false);
    for line in text.lines() {
        if line.starts_with("version:") {
            out.push_str(&format!("version: {version}\n"));
        } else if line.starts_with("appVersion:") {
            app_seen = true;
            out.push_str(&format!("appVersion: \"{app_version}\"\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !app_seen {
        out.push_str(&format!("appVersion: \"{app_version}\"\n"));
    }
    out
}

/// `.helmignore`'s patterns, in the forms charts use: a name, `*suffix`, `dir/`.
fn ignore_patterns(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join(".helmignore")).unwrap_or_default();
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect()
}

fn ignored(name: &str, is_dir: bool, patterns: &[String]) -> bool {
    patterns.iter().any(|p| match (p.strip_suffix('/'), p.strip_prefix('*')) {
        (Some(d), _) => is_dir && name == d,
        (_, Some(suffix)) => name.ends_with(suffix),
        _ => name == p,
    })
}

fn walk(root: &Path, dir: &Path, patterns: &[String], out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy().to_string();
        if ignored(&name, path.is_dir(), patterns) {
            continue;
        }
        match path.is_dir() {
            true => walk(root, &path, patterns, out)?,
            false => out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf()),
        }
    }
    Ok(())
}

impl Registry {
    /// Pushes `chart` (a tagged reference) and reads it back by the digest its tag now has; the digest.
    pub async fn push_chart(&self, chart: &ImageRef, packaged: Packaged) -> Result<String> {
        let tgz = packaged.tgz.clone();
        let layer = ImageLayer::new(packaged.tgz, LAYER_MEDIA_TYPE.to_string(), None);
        let config = Config::new(packaged.config, CONFIG_MEDIA_TYPE.to_string(), None);
        self.client
            .push(&to_reference(chart), &[layer], config, &self.auth, None)
            .await
            .map_err(|e| self.explain(e, chart))?;
        let digest = self.resolve_digest(chart).await?;
        let back = self.pull_chart(&chart.with_digest(&digest)).await?;
        if back != tgz {
            bail!("chart {chart} read back by digest {digest} is not the chart pushed");
        }
        Ok(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_rewritten_and_ignores_follow_helmignore() {
        let text = "apiVersion: v2\nname: kubernetes-mcp-server\nversion: 0.1.0\nappVersion: \"latest\"\n";
        let out = rewrite_versions(text, "0.0.0-dev-abc1234", "dev-abc1234");
        assert_eq!(
            out,
            "apiVersion: v2\nname: kubernetes-mcp-server\nversion: 0.0.0-dev-abc1234\nappVersion: \"dev-abc1234\"\n"
        );
        let patterns: Vec<String> = [".git/", "*.swp", ".DS_Store", "*~"].map(String::from).to_vec();
        assert!(ignored(".git", true, &patterns) && !ignored(".git", false, &patterns));
        assert!(ignored("a.swp", false, &patterns) && ignored("values.yaml~", false, &patterns));
        assert!(!ignored("values.yaml", false, &patterns));
    }
}
