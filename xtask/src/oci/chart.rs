//! The chart `up` deploys: the pin in `deploy/chart.yaml` (reference, version and the digest of the
//! chart's OCI manifest), the chart's naming rules, and the chart file helm gets: an OCI chart
//! pulled by digest, checked and kept in a local cache, or a local directory or `.tgz`.

use crate::oci::docker_config::Credentials;
use crate::oci::reference::ImageRef;
use crate::oci::registry::Registry;
use crate::programs::shell::Shell;
use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const CHART_PIN: &str = include_str!(concat!(env!("OUT_DIR"), "/chart.yaml"));
/// The chart's name: its fullname rule keys on it.
pub const CHART_NAME: &str = "kubernetes-mcp-server";

/// The chart's fullname: the release name when it contains the chart name, else
/// `<release>-kubernetes-mcp-server`; truncated to 63 characters with a trailing `-` trimmed.
pub fn fullname(release: &str) -> String {
    let name = if release.contains(CHART_NAME) { release.to_string() } else { format!("{release}-{CHART_NAME}") };
    name.chars().take(63).collect::<String>().trim_end_matches('-').to_string()
}

/// Where the chart comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// An OCI chart: `oci://REGISTRY/PATH/NAME`, a version tag, and the manifest digest it must
    /// have; `from_image` when the image's index named it (the fork's chart `image` pushed).
    Oci { reference: String, version: String, digest: Option<String>, from_image: bool },
    /// A chart directory or `.tgz` on this machine, pinned by its content.
    Local(PathBuf),
}

/// The chart to deploy: `--chart`/`--chart-version`/`--chart-digest` over `deploy/chart.yaml`.
pub fn source(chart: Option<&str>, version: Option<&str>, digest: Option<&str>) -> Result<Source> {
    #[derive(serde::Deserialize)]
    struct Pin {
        chart: String,
        version: String,
        #[serde(default)]
        digest: Option<String>,
    }
    let pin: Pin = serde_norway::from_str(CHART_PIN).context("deploy/chart.yaml is not valid")?;
    if let Some(d) = digest {
        check_digest(d).map_err(|why| anyhow!("invalid --chart-digest '{d}': {why}"))?;
    }
    let reference = match chart {
        Some(c) if c.starts_with("http://") || c.starts_with("https://") => {
            bail!("--chart {c} is a chart repository URL, which up does not use: pass an oci://REGISTRY/PATH/NAME reference, or a chart directory or .tgz on this machine")
        }
        Some(c) if !c.starts_with("oci://") => {
            if digest.is_some() || version.is_some() {
                bail!("--chart {c} is a local chart: it is pinned by its content, so drop --chart-version and --chart-digest");
            }
            let path = PathBuf::from(c);
            let chart_dir = path.is_dir() && path.join("Chart.yaml").is_file();
            let chart_file = path.is_file() && c.ends_with(".tgz");
            if !chart_dir && !chart_file {
                bail!("--chart {c} is neither oci://REGISTRY/PATH/NAME nor a chart directory or .tgz on this machine");
            }
            return Ok(Source::Local(path));
        }
        Some(c) => c.to_string(),
        None => pin.chart.clone(),
    };
    oci_parts(&reference)?;
    let version = version.map_or_else(|| pin.version.clone(), str::to_string);
    if version.is_empty() || version.contains(['/', '@', ' ']) {
        bail!("invalid --chart-version '{version}': pass the chart's version tag, e.g. 0.1.0");
    }
    let pinned = (reference == pin.chart && version == pin.version).then_some(pin.digest).flatten();
    let digest = digest.map(str::to_string).or(pinned.filter(|d| !d.is_empty()));
    Ok(Source::Oci { reference, version, digest, from_image: false })
}

/// Whether `deploy/chart.yaml` pins a digest: only then does it choose the chart over the one
/// `image` pushed with the image.
pub fn pin_has_digest() -> bool {
    CHART_PIN.lines().any(|l| l.strip_prefix("digest:").is_some_and(|d| !d.trim().trim_matches('"').is_empty()))
}

pub(super) fn check_digest(d: &str) -> Result<(), &'static str> {
    let hex = d.strip_prefix("sha256:").ok_or("expected sha256:<64 hex digits>")?;
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()) {
        return Err("expected sha256:<64 lowercase hex digits>");
    }
    Ok(())
}

/// `oci://HOST/PATH/NAME` as the registry and repository it names.
pub(super) fn oci_parts(reference: &str) -> Result<ImageRef> {
    let bad = |why: &str| {
        anyhow!("invalid chart reference '{reference}': {why} (expected oci://REGISTRY/PATH/NAME or a local chart)")
    };
    let rest = reference.strip_prefix("oci://").ok_or_else(|| bad("not oci://"))?;
    let (host, repository) = rest.split_once('/').ok_or_else(|| bad("no repository"))?;
    if host.is_empty() || repository.is_empty() || rest.contains(['@', ' ']) || repository.contains(':') {
        return Err(bad("malformed"));
    }
    let image = ImageRef::parse(&format!("{host}/{repository}:latest")).map_err(|_| bad("malformed"))?;
    Ok(ImageRef { tag: None, digest: None, ..image })
}

/// The chart as helm gets it: a file or directory on this machine, and its content digest.
#[derive(Debug, Clone)]
pub struct Chart {
    pub path: PathBuf,
    /// The OCI manifest digest, or `sha256:` of the local chart's content.
    pub digest: String,
    /// How to name it to a person: `oci://...:0.1.0@sha256:...` or the local path.
    pub display: String,
    /// Not in the cache yet: pulled from here (by digest) before helm runs.
    pub pull_from: Option<ImageRef>,
}

/// What the tag points at now, and whether that is the pin; refuses, in one line, a moved or
/// missing pin. Reads the registry only.
pub async fn resolve(sh: &Shell, source: &Source) -> Result<(String, ImageRef)> {
    let Source::Oci { reference, version, digest, from_image } = source else {
        unreachable!("local charts need no registry")
    };
    let repo = oci_parts(reference)?;
    let tagged = repo.with_tag(version);
    let registry = Registry::open(&repo.registry, Credentials::for_registry(sh, &repo.registry)?).await?;
    let found =
        registry.digest_of(&tagged).await.with_context(|| format!("cannot resolve chart {reference}:{version}"))?;
    let Some(current) = found else {
        bail!("chart {reference}:{version} is not in the registry: check --chart-version (or the version pinned in deploy/chart.yaml) and --chart")
    };
    match digest {
        Some(pinned) if *pinned == current => Ok((current, repo)),
        Some(pinned) if *from_image => bail!(
            "chart {reference}:{version} now points at {current}, not {pinned}, the digest the image was pushed with: the chart's tag moved after `cargo xtask image`; run `cargo xtask image` again (or deploy another chart with --chart)"
        ),
        Some(pinned) => bail!(
            "chart {reference}:{version} now points at {current}, not the pinned {pinned}: its content changed under the same version; review it, then accept it with --chart-digest {current} (or write that digest into deploy/chart.yaml)"
        ),
        None => bail!(
            "chart {reference}:{version} is not pinned by digest; it now points at {current}: review that content, then pass --chart-digest {current} (or write it into deploy/chart.yaml)"
        ),
    }
}

/// The chart file for `source`: in the cache when the digest is there, else where the pull will put
/// it (`pull_from` then names the registry copy). Reads the registry only.
pub async fn locate(sh: &Shell, source: &Source, cache: &Path) -> Result<Chart> {
    let Source::Oci { reference, version, .. } = source else {
        let Source::Local(path) = source else { unreachable!() };
        crate::programs::helm::show_chart(sh, path)?;
        let digest = content_digest(path)?;
        return Ok(Chart { path: path.clone(), display: path.display().to_string(), digest, pull_from: None });
    };
    let (digest, repo) = resolve(sh, source).await?;
    let display = format!("{reference}:{version}@{digest}");
    let path = cache.join(format!("{}.tgz", digest.trim_start_matches("sha256:")));
    let pull_from = (!path.is_file()).then(|| repo.with_digest(&digest));
    Ok(Chart { path, digest, display, pull_from })
}

/// Pulls the chart by digest (manifest and layer checked) into `path`, its place in the cache.
pub async fn pull(sh: &Shell, from: &ImageRef, display: &str, path: &Path) -> Result<()> {
    let registry = Registry::new(&from.registry, Credentials::for_registry(sh, &from.registry)?.as_ref());
    let bytes = registry.pull_chart(from).await.with_context(|| format!("cannot pull chart {display}"))?;
    let cache = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(cache).with_context(|| format!("cannot create the chart cache {}", cache.display()))?;
    let tmp = tempfile::NamedTempFile::new_in(cache)?;
    std::fs::write(tmp.path(), &bytes)?;
    tmp.persist(path).map_err(|e| anyhow!("cannot keep the chart in {}: {e}", cache.display()))?;
    Ok(())
}

/// A chart the dry run could not resolve: named by its reference and tag.
pub fn unresolved(source: &Source) -> Chart {
    let display = match source {
        Source::Oci { reference, version, .. } => format!("{reference}:{version}"),
        Source::Local(p) => p.display().to_string(),
    };
    Chart { path: PathBuf::from(&display), digest: "(unresolved)".into(), display, pull_from: None }
}

/// Where pulled charts are kept: `$XDG_CACHE_HOME/kmcp-xtask/charts`, else `~/.cache/...`.
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("kmcp-xtask/charts")
}

/// `sha256:` over a local chart: the file, or every file of the directory (path and content).
fn content_digest(path: &Path) -> Result<String> {
    let mut h = Sha256::new();
    if path.is_file() {
        h.update(std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?);
    } else {
        let mut files = Vec::new();
        walk(path, &mut files)?;
        files.sort();
        for f in files {
            h.update(f.strip_prefix(path).unwrap_or(&f).to_string_lossy().as_bytes());
            h.update([0]);
            h.update(std::fs::read(&f)?);
            h.update([0]);
        }
    }
    Ok(format!("sha256:{}", crate::programs::git::hex(&h.finalize())))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// A release or namespace name Kubernetes (and helm) would take: a DNS-1123 label, at most
/// `max` characters.
pub fn check_name(what: &str, name: &str, max: usize) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        bail!("invalid {what} '{name}': use at most {max} lowercase letters, digits and '-', starting and ending with a letter or digit");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fullname_follows_the_chart() {
        assert_eq!(fullname("kubernetes-mcp-server"), "kubernetes-mcp-server");
        assert_eq!(fullname("mcp"), "mcp-kubernetes-mcp-server");
        let long = "a".repeat(42);
        assert_eq!(fullname(&long), format!("{long}-kubernetes-mcp-serve"));
        assert_eq!(fullname(&long).len(), 63);
        let r = "b".repeat(41);
        assert_eq!(fullname(&r), format!("{r}-kubernetes-mcp-server"), "exactly 63: kept");
        // Truncation that ends on '-' trims it.
        let r = "c".repeat(47);
        assert_eq!(fullname(&r), format!("{r}-kubernetes-mcp"));
        let r = "d".repeat(51);
        assert_eq!(fullname(&r), format!("{r}-kubernetes"));
    }

    #[test]
    fn names_are_checked_as_kubernetes_does() {
        assert!(check_name("--release", "kubernetes-mcp-server", 53).is_ok());
        for bad in ["a/b", "A", "-a", "a-", "", "kube-system/configmaps", "a.b", &"x".repeat(54)] {
            let err = check_name("--release", bad, 53).unwrap_err().to_string();
            assert!(err.starts_with(&format!("invalid --release '{bad}'")), "{err}");
        }
    }

    #[test]
    fn sources() {
        match source(None, None, None).unwrap() {
            Source::Oci { reference, version, .. } => {
                assert_eq!(reference, "oci://ghcr.io/containers/charts/kubernetes-mcp-server");
                assert_eq!(version, "0.1.0");
            }
            other => panic!("{other:?}"),
        }
        let d = format!("sha256:{}", "a".repeat(64));
        let s = source(Some("oci://127.0.0.1:5000/charts/kubernetes-mcp-server"), Some("0.1.0"), Some(&d)).unwrap();
        assert_eq!(
            s,
            Source::Oci {
                reference: "oci://127.0.0.1:5000/charts/kubernetes-mcp-server".into(),
                version: "0.1.0".into(),
                digest: Some(d),
                from_image: false
            }
        );
        assert!(source(None, None, Some("sha256:xyz"))
            .unwrap_err()
            .to_string()
            .starts_with("invalid --chart-digest 'sha256:xyz'"));
        assert!(source(Some("oci://"), None, None).unwrap_err().to_string().starts_with("invalid chart reference"));
        assert!(source(Some("/nonexistent/chart"), None, None).unwrap_err().to_string().contains("neither"));
    }
}
