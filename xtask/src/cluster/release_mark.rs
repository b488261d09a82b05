//! The mark `up` gives the helm release itself: labels on helm's release records (helm's
//! `--labels`), so that a release is the instance's by its own marks, with or without the record.

use crate::cluster::client::Cluster;
use anyhow::Result;

const NAMESPACE_LABEL: &str = "kmcp-xtask/namespace";
const RELEASE_LABEL: &str = "kmcp-xtask/release";

/// The flag `helm upgrade --install` gets.
pub fn labels_flag(namespace: &str, release: &str) -> [String; 2] {
    ["--labels".into(), format!("{NAMESPACE_LABEL}={namespace},{RELEASE_LABEL}={release}")]
}

/// The newest record of helm's release `release` in `namespace` (helm's Secret storage) carries
/// the instance's mark.
pub async fn marked(cluster: &Cluster, namespace: &str, release: &str) -> Result<bool> {
    let newest = crate::cluster::helm_history::newest(cluster, namespace, release).await?;
    let labels = newest.and_then(|s| s.metadata.labels).unwrap_or_default();
    Ok(labels.get(NAMESPACE_LABEL).map(String::as_str) == Some(namespace)
        && labels.get(RELEASE_LABEL).map(String::as_str) == Some(release))
}
