//! helm's records of a release, read where helm keeps them: one Secret per revision, labelled
//! `owner=helm`, `name`, `version` and `status`. The newest revision's status and chart without
//! starting `helm status` (a storage other than Secrets, `HELM_DRIVER`, still asks helm).

use crate::cluster::client::{helm_target, Cluster};
use crate::programs::{helm, shell::Shell};
use anyhow::{Context, Result};
use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use std::io::Read;

/// The record of the release's newest revision.
pub async fn newest(cluster: &Cluster, namespace: &str, release: &str) -> Result<Option<Secret>> {
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), namespace);
    let records = secrets
        .list(&ListParams::default().labels(&format!("owner=helm,name={release}")))
        .await
        .with_context(|| format!("cannot read helm's records of release {release}"))?;
    Ok(records.items.into_iter().max_by_key(|s| label(s, "version").parse::<u32>().unwrap_or_default()))
}

/// The release as helm's newest record of it (a Secret, helm's default storage) says, read by the
/// API without running helm; with another storage driver, as `helm status` says. `None` when
/// helm does not know it.
pub async fn status(sh: &Shell, cluster: &Cluster, namespace: &str, release: &str) -> Result<Option<helm::Release>> {
    if !in_secrets() {
        return helm::status(sh, &helm_target(Some(cluster)), release, namespace);
    }
    let Some(record) = newest(cluster, namespace, release).await? else { return Ok(None) };
    Ok(Some(helm::Release {
        version: label(&record, "version").parse().context("helm's release record has no version")?,
        info: helm::ReleaseInfo { status: label(&record, "status") },
        chart: chart(&record),
    }))
}

/// The word of `status` (deployed, failed, pending-upgrade, ...), or "not installed".
pub async fn status_of(sh: &Shell, cluster: &Cluster, namespace: &str, release: &str) -> Result<String> {
    Ok(status(sh, cluster, namespace, release).await?.map_or_else(|| "not installed".to_string(), |r| r.info.status))
}

/// helm's default storage, and the one the release's mark is read from.
fn in_secrets() -> bool {
    matches!(std::env::var("HELM_DRIVER").unwrap_or_default().as_str(), "" | "secret" | "secrets")
}

fn label(record: &Secret, key: &str) -> String {
    record.metadata.labels.as_ref().and_then(|l| l.get(key).cloned()).unwrap_or_default()
}

/// The chart of the record's release: its `release` entry is base64 of the release's JSON,
/// gzipped by every helm since 2.
fn chart(record: &Secret) -> Option<helm::ReleaseChart> {
    let text = &record.data.as_ref()?.get("release")?.0;
    let packed = base64::engine::general_purpose::STANDARD.decode(text).ok()?;
    let mut json = Vec::new();
    match packed.starts_with(&[0x1f, 0x8b]) {
        true => flate2::read::GzDecoder::new(packed.as_slice()).read_to_end(&mut json).ok()?,
        false => {
            json = packed;
            0
        }
    };
    #[derive(serde::Deserialize)]
    struct Release {
        chart: helm::ReleaseChart,
    }
    serde_json::from_slice::<Release>(&json).ok().map(|r| r.chart)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::io::Write;

    fn record(release_json: &str, gzip: bool) -> Secret {
        let packed = match gzip {
            true => {
                let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                z.write_all(release_json.as_bytes()).unwrap();
                z.finish().unwrap()
            }
            false => release_json.as_bytes().to_vec(),
        };
        let text = base64::engine::general_purpose::STANDARD.encode(packed);
        Secret { data: Some([("release".to_string(), ByteString(text.into_bytes()))].into()), ..Default::default() }
    }

    #[test]
    fn reads_the_chart_of_a_record_gzipped_or_not() {
        let json = r#"{"name":"r","chart":{"metadata":{"name":"kubernetes-mcp-server","version":"0.1.0"}}}"#;
        for gzip in [true, false] {
            let chart = chart(&record(json, gzip)).expect("a chart");
            assert_eq!(
                (chart.metadata.name.as_str(), chart.metadata.version.as_str()),
                ("kubernetes-mcp-server", "0.1.0")
            );
        }
        assert!(chart(&record("not json", true)).is_none());
        assert!(chart(&Secret::default()).is_none());
    }
}
