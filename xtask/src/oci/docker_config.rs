//! Registry credentials: `GHCR_TOKEN`/`GITHUB_TOKEN` for ghcr.io, else the way Docker, helm and
//! skaffold find them: `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`), per host:
//! `credHelpers`, then `auths`, then `credsStore`, each helper being `docker-credential-<name> get`
//! with the host on stdin.

use crate::programs::shell::Shell;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use xshell::cmd;

/// Registry credentials from the environment. The token is never printed: `Debug` hides it.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub token: String,
    /// From `GHCR_TOKEN`/`GITHUB_TOKEN`, not from the Docker config.
    pub from_env: bool,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials {{ user: {:?}, token: <hidden> }}", self.user)
    }
}

impl Credentials {
    /// The credentials for pulling from `registry`: `GHCR_TOKEN`/`GITHUB_TOKEN` only for ghcr.io,
    /// never for another host; else what the user's Docker config holds for that host; else none
    /// (anonymous).
    pub fn for_registry(sh: &Shell, registry: &str) -> Result<Option<Credentials>> {
        if registry == "ghcr.io" {
            if let Some(c) = Credentials::from_env("") {
                return Ok(Some(c));
            }
        }
        credentials(sh, registry)
    }

    /// `GHCR_TOKEN`, else `GITHUB_TOKEN`; user `GHCR_USER`, else `GITHUB_ACTOR`, else `default_user`.
    pub fn from_env(default_user: &str) -> Option<Credentials> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let token = var("GHCR_TOKEN").or_else(|| var("GITHUB_TOKEN"))?;
        let user = var("GHCR_USER").or_else(|| var("GITHUB_ACTOR")).unwrap_or_else(|| default_user.to_string());
        Some(Credentials { user, token: token.trim().to_string(), from_env: true })
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Config {
    #[serde(default)]
    auths: HashMap<String, Auth>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct Auth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    Some(PathBuf::from(std::env::var_os("HOME")?).join(".docker/config.json"))
}

/// The credentials the user's Docker config holds for `host`, if any.
pub fn credentials(sh: &Shell, host: &str) -> Result<Option<Credentials>> {
    let Some(path) = config_path().filter(|p| p.is_file()) else { return Ok(None) };
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let config: Config =
        serde_json::from_str(&text).with_context(|| format!("{} is not valid Docker config JSON", path.display()))?;
    if let Some(helper) = config.cred_helpers.get(host) {
        return helper_get(sh, helper, host);
    }
    let keys = [host.to_string(), format!("https://{host}"), format!("http://{host}"), format!("https://{host}/v1/")];
    if let Some(auth) = keys.iter().find_map(|k| config.auths.get(k)) {
        if let Some(encoded) = &auth.auth {
            use base64::Engine;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|d| String::from_utf8(d).ok());
            if let Some((user, token)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
                return Ok(Some(Credentials { user: user.into(), token: token.into(), from_env: false }));
            }
            bail!("{}: the auth entry for {host} is not base64 of user:password", path.display());
        }
        if let (Some(user), Some(token)) = (&auth.username, &auth.password) {
            return Ok(Some(Credentials { user: user.clone(), token: token.clone(), from_env: false }));
        }
    }
    match &config.creds_store {
        Some(store) if !store.is_empty() => helper_get(sh, store, host),
        _ => Ok(None),
    }
}

fn helper_get(sh: &Shell, helper: &str, host: &str) -> Result<Option<Credentials>> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let program = format!("docker-credential-{helper}");
    let out = sh.query(cmd!(sh.sh, "{program} get").stdin(host))?;
    if !out.status.success() {
        // Helpers answer "credentials not found in native keychain" for unknown hosts.
        return Ok(None);
    }
    let answer: Answer = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{program} answered something that is not JSON"))?;
    Ok(Some(Credentials { user: answer.username, token: answer.secret, from_env: false }))
}
