//! The kube client over one connection: the same TLS, authentication and base URI as kube's own
//! client, with HTTP/2 offered (ALPN), so reads issued at once share one connection instead of each
//! opening (and shaking hands on) its own. An API server that answers only HTTP/1.1 still works.

use anyhow::{anyhow, Result};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt;
use std::time::Duration;
use tower::ServiceBuilder;

/// A client for `config`: connect timeout as configured, and each request given the configured
/// read timeout to answer in full.
pub fn client(config: &kube::Config) -> Result<kube::Client> {
    let tls = config.rustls_client_config().map_err(|e| anyhow!("{e}"))?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(config.connect_timeout);
    // Several small HTTP/2 frames in a row: Nagle would hold them for the peer's delayed ACK (40 ms).
    http.set_nodelay(true);
    let mut https = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http();
    if let Some(name) = &config.tls_server_name {
        let name = name.clone().try_into().map_err(|e| anyhow!("tls-server-name {name}: {e}"))?;
        https = https.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name));
    }
    let connector = https.enable_all_versions().wrap_connector(http);
    let pool = hyper_util::client::legacy::Builder::new(TokioExecutor::new()).build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer().map_err(|e| anyhow!("{e}"))?)
        .layer(config.extra_headers_layer().map_err(|e| anyhow!("{e}"))?)
        .timeout(config.read_timeout.unwrap_or(Duration::from_secs(295)))
        .service(pool);
    Ok(kube::Client::new(service, config.default_namespace.clone()))
}
