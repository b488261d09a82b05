//! `up --pull-secret`: a `kubernetes.io/dockerconfigjson` Secret `<release>-pull` made from the
//! credentials `up` already uses for the image's registry (GHCR_TOKEN for ghcr.io, else the Docker
//! config), owned and marked like every object `up` applies. Its content is never printed.

use crate::cluster::manifests::{owned_metadata, Object};
use crate::oci::docker_config::Credentials;
use base64::Engine;
use serde_json::json;

pub fn name(release: &str) -> String {
    format!("{release}-pull")
}

/// The Secret for `registry` with `credentials` (None: the object without content, to find or
/// delete it).
pub fn secret(namespace: &str, release: &str, registry: &str, credentials: Option<&Credentials>) -> Object {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut value = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": owned_metadata(&name(release), namespace, release),
    });
    if let Some(c) = credentials {
        let auth = b64(&format!("{}:{}", c.user, c.token));
        let config = json!({"auths": {registry: {"username": c.user, "password": c.token, "auth": auth}}});
        value["data"] = json!({".dockerconfigjson": b64(&config.to_string())});
    }
    Object { value }
}
