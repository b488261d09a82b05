//! A real OCI registry (Debian's `docker-registry`) on 127.0.0.1, and a helper that pushes a real
//! multi-platform index to it the way `docker buildx build --push` does (with an attestation entry).

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use reqwest::header::HeaderValue;
use serde_json::json;
use sha2::{Digest, Sha256};
use xtask::local::registry::{Contents, RunningRegistry};

/// A registry of the test's own, stopped when the test lets go of it: `local/registry.rs`'s, the
/// one `dev` and the test run start.
pub struct Registry {
    pub host: String,
    _running: RunningRegistry,
    _dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Registry {
    /// Starts a registry; with `basic_auth` it requires that user and password (htpasswd, bcrypt).
    pub fn start(basic_auth: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let htpasswd = basic_auth.map(|(user, password)| {
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, format!("{user}:{}\n", bcrypt::hash(password, 4).unwrap())).unwrap();
            file
        });
        let running = RunningRegistry::start(&dir.path().join("registry"), Contents::Fresh, htpasswd.as_deref())
            .expect("docker-registry: run the tests with `cargo xtask test`");
        Registry { host: running.host.clone(), _running: running, _dir: dir }
    }
}

pub fn sha(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

fn client(host: &str) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::new(ClientConfig { protocol: ClientProtocol::HttpsExcept(vec![host.to_string()]), ..Default::default() })
}

fn auth(basic: Option<(&str, &str)>) -> RegistryAuth {
    basic.map_or(RegistryAuth::Anonymous, |(u, p)| RegistryAuth::Basic(u.into(), p.into()))
}

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Pushes one platform's image (config, layer, manifest by digest); returns the manifest and digest.
async fn push_image(client: &Client, base: &Reference, platform: &str) -> (Vec<u8>, String) {
    let repository = base.repository().to_string();
    let mut parts = platform.split('/');
    let (os, arch) = (parts.next().unwrap(), parts.next().unwrap());
    let variant = parts.next();
    let config = serde_json::to_vec(
        &json!({"architecture": arch, "os": os, "variant": variant, "rootfs": {"type": "layers", "diff_ids": []}}),
    )
    .unwrap();
    let layer = format!("layer for {platform} of {repository}").into_bytes();
    push_manifest(client, base, &config, &layer).await
}

async fn connect(host: &str, repository: &str, tag: &str, basic: Option<(&str, &str)>) -> (Client, Reference) {
    let client = client(host);
    let base = Reference::with_tag(host.into(), repository.into(), tag.into());
    client.auth(&base, &auth(basic), RegistryOperation::Push).await.unwrap();
    (client, base)
}

async fn push_annotated_index(
    client: &Client,
    host: &str,
    repository: &str,
    tags: &[String],
    entries: Vec<serde_json::Value>,
    annotations: serde_json::Value,
) -> String {
    let mut index =
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries});
    if annotations.as_object().is_some_and(|a| !a.is_empty()) {
        index["annotations"] = annotations;
    }
    let index = serde_json::to_vec(&index).unwrap();
    for tag in tags {
        let r = Reference::with_tag(host.into(), repository.into(), tag.clone());
        client
            .push_manifest_raw(&r, index.clone(), HeaderValue::from_static("application/vnd.oci.image.index.v1+json"))
            .await
            .unwrap();
    }
    sha(&index)
}

/// The digest a tag points at in the registry, if it exists.
pub fn tag_digest(host: &str, repository: &str, tag: &str, basic: Option<(&str, &str)>) -> Option<String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let r = Reference::with_tag(host.into(), repository.into(), tag.into());
        client(host).fetch_manifest_digest(&r, &auth(basic)).await.ok()
    })
}

/// How the image starts the server: upstream's ENTRYPOINT and CMD now, or before fe662c54.
#[derive(Clone, Copy, Debug)]
pub enum Entrypoint {
    /// ENTRYPOINT ["/app/kubernetes-mcp-server"], CMD ["--port", "8080"]
    Current,
    /// ENTRYPOINT ["/app/kubernetes-mcp-server", "--port", "8080"], no CMD: the seed's incident
    OldPort8080,
}

async fn push_server_platform(client: &Client, base: &Reference, arch: &str, entry: Entrypoint) -> (Vec<u8>, String) {
    let (entrypoint, cmd) = match entry {
        Entrypoint::Current => (json!(["/app/kubernetes-mcp-server"]), json!(["--port", "8080"])),
        Entrypoint::OldPort8080 => (json!(["/app/kubernetes-mcp-server", "--port", "8080"]), json!(null)),
    };
    let (layer, diff_id) = super::server::layer(arch);
    let config = serde_json::to_vec(&json!({
        "architecture": arch, "os": "linux",
        "config": {"Entrypoint": entrypoint, "Cmd": cmd, "User": "65532:65532", "WorkingDir": "/app",
                   "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   // Each repository's image is its own content: the node's content store keeps
                   // what it pulled by digest, so shared digests would hide a repository's loss.
                   "Labels": {"kmcp.test/repository": base.repository()}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    push_manifest(client, base, &config, &layer).await
}

/// Pushes a config and one layer, then the image manifest naming them, by digest; the manifest
/// and its digest.
pub(crate) async fn push_manifest(client: &Client, base: &Reference, config: &[u8], layer: &[u8]) -> (Vec<u8>, String) {
    for blob in [config, layer] {
        client.push_blob(base, blob.to_vec(), &sha(blob)).await.unwrap();
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(layer), "size": layer.len()}],
    }))
    .unwrap();
    let digest = sha(&manifest);
    let by_digest = Reference::with_digest(base.registry().into(), base.repository().into(), digest.clone());
    client.push_manifest_raw(&by_digest, manifest.clone(), HeaderValue::from_static(MANIFEST)).await.unwrap();
    (manifest, digest)
}

/// Pushes the real server image as `docker buildx build --push` would: an index with the given
/// platforms (each with its architecture's real binary) and an attestation entry, under every tag.
pub fn push_server_index(
    host: &str,
    repository: &str,
    tags: &[String],
    platforms: &[String],
    entry: Entrypoint,
    basic: Option<(&str, &str)>,
) -> String {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (client, base) = connect(host, repository, &tags[0], basic).await;
        let mut entries = Vec::new();
        for platform in platforms {
            let arch = platform.split('/').nth(1).unwrap();
            let (manifest, digest) = push_server_platform(&client, &base, arch, entry).await;
            entries.push(json!({"mediaType": MANIFEST, "digest": digest, "size": manifest.len(),
                                "platform": {"os": "linux", "architecture": arch}}));
        }
        let (manifest, digest) = push_image(&client, &base, "unknown/unknown").await;
        entries.push(json!({"mediaType": MANIFEST, "digest": digest, "size": manifest.len(),
            "platform": {"os": "unknown", "architecture": "unknown"},
            "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}));
        let guard = super::server::push_guard(&client, &base).await;
        let annotations = json!({"kmcp-xtask.guard": format!("{host}/{repository}@{guard}")});
        push_annotated_index(&client, host, repository, tags, entries, annotations).await
    })
}

/// The image config of `arch`'s entry in the index at `tag` (anonymous pull).
pub fn config_of(host: &str, repository: &str, tag: &str, arch: &str) -> serde_json::Value {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = client(host);
        let accept = ["application/vnd.oci.image.index.v1+json", MANIFEST];
        let base = Reference::with_tag(host.into(), repository.into(), tag.into());
        let (index, _) = client.pull_manifest_raw(&base, &RegistryAuth::Anonymous, &accept).await.unwrap();
        let index: serde_json::Value = serde_json::from_slice(&index).unwrap();
        let entry = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["platform"]["architecture"] == arch)
            .unwrap_or_else(|| panic!("no {arch} in {index}"));
        let one = Reference::with_digest(host.into(), repository.into(), entry["digest"].as_str().unwrap().into());
        let (manifest, _) = client.pull_manifest_raw(&one, &RegistryAuth::Anonymous, &accept).await.unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        let mut config = Vec::new();
        client.pull_blob(&one, manifest["config"]["digest"].as_str().unwrap(), &mut config).await.unwrap();
        serde_json::from_slice(&config).unwrap()
    })
}

/// The repositories a registry holds.
pub fn catalog(host: &str) -> Vec<String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let body: serde_json::Value =
            reqwest::get(format!("http://{host}/v2/_catalog")).await.unwrap().json().await.unwrap();
        serde_json::from_value(body["repositories"].clone()).unwrap_or_default()
    })
}
