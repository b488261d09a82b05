//! Image references: validation of registry, owner and name, and parsing `--image REF`.
//! Parsed here, not by oci-client's `Reference`: that compiles its reference regular expression
//! in every process, which took `up`'s no-op from 29 ms to 172 ms (measured with the bench).

use anyhow::{bail, Result};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    pub(crate) registry: String,
    /// `owner/name` (any number of path components)
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    /// `<registry>/<owner>/<name>`, the owner being `owner`, else `GITHUB_REPOSITORY_OWNER`, else
    /// the owner in the fork's origin URL.
    pub fn owned(registry: &str, owner: Option<&str>, name: &str, origin_url: Option<&str>) -> Result<ImageRef> {
        let owner = owner
            .map(str::to_string)
            .or_else(|| std::env::var("GITHUB_REPOSITORY_OWNER").ok().filter(|o| !o.is_empty()))
            .or_else(|| origin_url.and_then(crate::programs::git::owner_from_url));
        let Some(owner) = owner else {
            bail!("cannot tell the image owner: pass --owner NAME (or set GITHUB_REPOSITORY_OWNER, or give the fork an origin remote)");
        };
        ImageRef::new(registry, &owner, name)
    }

    pub fn new(registry: &str, owner: &str, name: &str) -> Result<ImageRef> {
        let registry = registry.trim();
        if !valid_registry(registry) {
            bail!("invalid registry '{registry}': expected HOST or HOST:PORT, e.g. ghcr.io or localhost:5000");
        }
        let owner = owner.to_lowercase();
        let name = name.to_lowercase();
        if !valid_path_component(&owner) {
            bail!("invalid owner '{owner}': use lower-case letters, digits and . _ - (e.g. --owner alice)");
        }
        if !name.split('/').all(valid_path_component) {
            bail!("invalid image name '{name}': use lower-case letters, digits and . _ - (e.g. --name kubernetes-mcp-server)");
        }
        Ok(ImageRef { registry: registry.to_string(), repository: format!("{owner}/{name}"), tag: None, digest: None })
    }

    /// Parses `HOST[:PORT]/PATH[:TAG][@sha256:HEX]`; the registry host is required.
    pub fn parse(text: &str) -> Result<ImageRef> {
        let bad = |why: &str| {
            anyhow::anyhow!("invalid image reference '{text}': {why} (expected REGISTRY/OWNER/NAME:TAG or REGISTRY/OWNER/NAME@sha256:DIGEST)")
        };
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                let hex = digest.strip_prefix("sha256:").ok_or_else(|| bad("the digest must start with sha256:"))?;
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
                    return Err(bad("the digest must be sha256: and 64 lower-case hex digits"));
                }
                (rest, Some(digest.to_string()))
            }
            None => (text, None),
        };
        let (registry, path) = rest.split_once('/').ok_or_else(|| bad("no registry host"))?;
        if !valid_registry(registry) || !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
            return Err(bad("no registry host"));
        }
        let (path, tag) = match path.rsplit_once(':') {
            Some((p, t)) => (p, Some(t.to_string())),
            None => (path, None),
        };
        if path.is_empty() || !path.split('/').all(valid_path_component) {
            return Err(bad("the repository must be lower-case letters, digits and . _ - separated by /"));
        }
        if let Some(t) = &tag {
            if !valid_tag(t) {
                return Err(bad("invalid tag"));
            }
        }
        if tag.is_none() && digest.is_none() {
            return Err(bad("no tag or digest"));
        }
        Ok(ImageRef { registry: registry.to_string(), repository: path.to_string(), tag, digest })
    }

    pub fn with_tag(&self, tag: &str) -> ImageRef {
        ImageRef { tag: Some(tag.to_string()), digest: None, ..self.clone() }
    }

    pub fn with_digest(&self, digest: &str) -> ImageRef {
        ImageRef { tag: None, digest: Some(digest.to_string()), ..self.clone() }
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

pub fn is_loopback_registry(registry: &str) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
    host == "localhost" || host == "127.0.0.1"
}

fn valid_registry(registry: &str) -> bool {
    let (host, port) = match registry.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (registry, None),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    port_ok
        && !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// OCI distribution grammar: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && (t.as_bytes()[0].is_ascii_alphanumeric() || t.starts_with('_'))
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// Where the image lives, `<registry>/<owner>/<name>`: `image` pushes there, `up` deploys from there.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct ImageNameArgs {
    /// Registry host
    #[arg(long, env = "MCP_REGISTRY", value_name = "HOST[:PORT]", default_value = "ghcr.io")]
    pub(crate) registry: String,
    /// Image owner [default: GITHUB_REPOSITORY_OWNER, else the owner of the fork's origin remote]
    #[arg(long, value_name = "NAME")]
    pub(crate) owner: Option<String>,
    /// Image name
    #[arg(long, value_name = "NAME", default_value = "kubernetes-mcp-server")]
    pub(crate) name: String,
}

impl ImageNameArgs {
    pub(crate) fn resolve(&self, origin_url: Option<&str>) -> Result<ImageRef> {
        ImageRef::owned(&self.registry, self.owner.as_deref(), &self.name, origin_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_lower_case_names() {
        let r = ImageRef::new("ghcr.io", "Alice", "Kubernetes-MCP-Server").unwrap();
        assert_eq!(r.with_tag("dev-abc1234").to_string(), "ghcr.io/alice/kubernetes-mcp-server:dev-abc1234");
        assert!(is_loopback_registry("localhost:5000") && is_loopback_registry("127.0.0.1:5000"));
        assert!(!is_loopback_registry("ghcr.io") && !is_loopback_registry("localhost.example.com"));
    }

    #[test]
    fn rejects_bad_parts() {
        assert!(ImageRef::new("ghcr io", "alice", "x").is_err());
        assert!(ImageRef::new("ghcr.io:port", "alice", "x").is_err());
        assert!(ImageRef::new("ghcr.io", "al ice", "x").is_err());
        assert!(ImageRef::new("ghcr.io", "alice", "x..y").is_err());
        assert!(ImageRef::new("ghcr.io", "-alice", "x").is_err());
        assert!(ImageRef::new("ghcr.io", "", "x").is_err());
    }

    #[test]
    fn parses_references() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("ghcr.io/alice/kmcp@{d}")).unwrap();
        assert_eq!((r.tag, r.digest.as_deref()), (None, Some(d.as_str())));
        let r = ImageRef::parse("localhost:5000/alice/kmcp:dev-latest").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("localhost:5000", "alice/kmcp", Some("dev-latest"))
        );
        for bad in [
            "kmcp:latest",
            "ghcr.io/alice/kmcp",
            "ghcr.io/Alice/kmcp:x",
            "ghcr.io/alice/kmcp@sha256:abc",
            "ghcr.io/alice/kmcp:",
            "not an image",
        ] {
            let err = ImageRef::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with(&format!("invalid image reference '{bad}'")), "{bad}: {err}");
        }
    }
}
