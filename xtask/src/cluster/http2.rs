//! The kube client over one connection: the same TLS, authentication and base URI as kube's own
//! client, with HTTP/2 offered (ALPN), so reads issued at once share one connection instead of each
//! opening (and shaking hands on) its own. An API server that answers only HTTP/1.1 still works.

use anyhow::{anyhow, bail, Result};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::retry::RetryPolicy;
use kube::client::ConfigExt;
use tower::retry::RetryLayer;
use tower::timeout::TimeoutLayer;
use tower::{BoxError, ServiceBuilder};

/// A client for `config`: connect timeout as configured, each request given the configured read
/// timeout to answer in full, and kube's retries of a busy server (429, 503, 504) as kube has them.
pub fn client(config: &kube::Config) -> Result<kube::Client> {
    if let Some(proxy) = &config.proxy_url {
        bail!("the kubeconfig names proxy-url {proxy}: this tool connects to the API server directly; reach the cluster without the proxy (over WireGuard) or remove proxy-url");
    }
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
        .option_layer(config.default_retry.then(|| RetryLayer::new(RetryPolicy::server_retry())))
        .option_layer(config.auth_layer().map_err(|e| anyhow!("{e}"))?)
        .layer(config.extra_headers_layer().map_err(|e| anyhow!("{e}"))?)
        .option_layer(config.read_timeout.map(TimeoutLayer::new))
        .map_err(BoxError::from)
        .service(pool);
    Ok(kube::Client::new(service, config.default_namespace.clone()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_proxy_is_refused_in_one_line() {
        let mut config = kube::Config::new("https://10.8.0.1:6443".parse().unwrap());
        config.proxy_url = Some("http://proxy.example:3128".parse().unwrap());
        let err = super::client(&config).err().expect("refused").to_string();
        assert!(err.starts_with("the kubeconfig names proxy-url http://proxy.example:3128/"), "{err}");
    }
}
