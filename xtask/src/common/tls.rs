//! The process's one TLS crypto provider, ring (no aws-lc, no OpenSSL): what rustls needs before
//! the kube client, the registry client or the MCP client connects.

/// Installs ring as the process's provider (a second call changes nothing).
pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
