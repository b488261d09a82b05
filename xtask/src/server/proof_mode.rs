//! The server's tools against the mode its deployment was meant to run in: the mode `up` recorded
//! (the args and config.toml live after its last rollout), else the live Deployment's.

use crate::cluster::client::{Cluster, ClusterArgs};
use crate::cluster::state_configmap;
use crate::server::check::{check, Check, Mode};
use crate::server::mode::ServerMode;

/// Fails when the server offers write tools while its deployment was meant to be read-only.
pub async fn check_meant_mode(cluster: &Cluster, args: &ClusterArgs, mode: &Mode, checks: &mut Vec<Check>) {
    let Some((meant, from)) = meant(cluster, args).await else { return };
    let result = match (meant.read_only, mode.write_tools.is_empty()) {
        (true, false) => Err(anyhow::anyhow!(
            "the deployment is meant to be read-only ({from}) but the server offers write tools: {}; run `cargo xtask up` to put its args back",
            mode.write_tools.join(", ")
        )),
        (true, true) => Ok(format!("read-only, as {from} says")),
        (false, _) => Ok(format!("write tools enabled, as {from} says")),
    };
    check(checks, "server mode as deployed", result);
}

async fn meant(cluster: &Cluster, args: &ClusterArgs) -> Option<(ServerMode, &'static str)> {
    let recorded = state_configmap::read(cluster, &args.namespace, &args.release).await.ok()?.rendered;
    if let Some(r) = recorded {
        let container_args: Vec<String> =
            serde_json::from_str::<Option<Vec<String>>>(r.get("deployment args")?).ok()?.unwrap_or_default();
        let toml: String =
            serde_json::from_str::<Option<String>>(r.get("configmap config.toml")?).ok()?.unwrap_or_default();
        return Some((ServerMode::live(&container_args, &toml), "the mode `up` recorded"));
    }
    let name = crate::oci::chart::fullname(&args.release);
    let live = crate::server::deployed::read(cluster, &args.namespace, &name).await.ok()?;
    Some((live.mode(), "its Deployment"))
}
