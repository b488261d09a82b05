//! The door's Secret checks, as an attacker who reaches the URL would try them: the server must
//! refuse a Secret, and its ServiceAccount must not read Secrets, unless a Helm toolset was asked
//! for (then a warning says what can be read).

use crate::cluster::client::{Cluster, ClusterArgs};
use crate::cluster::manifests::SERVICE_ACCOUNT;
use crate::server::check::{check, Check, Mode};
use crate::server::mcp::Session;
use anyhow::{bail, Result};
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use kube::api::{Api, PostParams};
use serde_json::{json, Value};

/// A Secret's name no deployment uses: the answer tells refused from read.
const PROBE: &str = "kmcp-xtask-verify-probe";

/// `tools/call resources_get` of a Secret, which must be refused without a Helm toolset.
pub(crate) async fn check_secret_tool(url: &str, namespace: &str, mode: &Mode, checks: &mut Vec<Check>) {
    if mode.helm_toolset {
        return;
    }
    let result = async {
        let mut session = Session::initialize(url).await?;
        session.initialized().await?;
        let args = json!({"apiVersion": "v1", "kind": "Secret", "namespace": namespace, "name": PROBE});
        refused(&session.call_tool("resources_get", args).await?)
    };
    check(checks, "MCP resources_get of a Secret is refused", result.await);
}

/// Whether the tool's answer is a refusal, by the server's own access control or by RBAC.
fn refused(result: &Value) -> Result<String> {
    let text: String = result["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["text"].as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let first = text.lines().next().unwrap_or_default().trim().to_string();
    let lower = text.to_lowercase();
    if result["isError"] != true {
        bail!("ANSWERED: the server returned the Secret's data: whoever reaches the URL reads Secrets");
    }
    if lower.contains("forbidden") {
        return Ok(format!("refused by RBAC ({first})"));
    }
    if lower.contains("not allowed") || lower.contains("denied") || lower.contains("not permitted") {
        return Ok(format!("refused by the server ({first})"));
    }
    if lower.contains("not found") {
        bail!("READ: the server asked the API for the Secret and the API let it ({first}): whoever reaches the URL reads Secrets");
    }
    bail!("could not tell whether the Secret was refused: {first}")
}

/// SubjectAccessReviews of reading Secrets in all namespaces: denied unless a Helm toolset is on.
pub(crate) async fn check_secret_access(cluster: &Cluster, args: &ClusterArgs, helm: bool, checks: &mut Vec<Check>) {
    let user = format!("system:serviceaccount:{}:{SERVICE_ACCOUNT}", args.namespace);
    let reviews: Api<SubjectAccessReview> = Api::all(cluster.client.clone());
    if helm {
        eprintln!("warning: the helm toolset is on: the ServiceAccount, and so whoever reaches the URL, can read every Secret in the cluster (tokens included)");
    }
    for verb in ["get", "list"] {
        let review = crate::server::check::access_review(&user, verb, "", "secrets", None);
        let allowed =
            reviews.create(&PostParams::default(), &review).await.map(|r| r.status.is_some_and(|s| s.allowed));
        let (name, result) = match (helm, allowed) {
            (_, Err(e)) => (format!("{verb} secrets"), Err(anyhow::anyhow!("SubjectAccessReview failed: {}", crate::cluster::client::root_cause(&e)))),
            (true, Ok(true)) => (format!("may {verb} secrets (all namespaces)"), Ok("allowed: the helm toolset reads Helm's release Secrets".to_string())),
            (true, Ok(false)) => (format!("may {verb} secrets (all namespaces)"), Err(anyhow::anyhow!("denied, but the helm toolset needs it: run up with the same --toolsets again"))),
            (false, Ok(false)) => (format!("may not {verb} secrets (all namespaces)"), Ok("denied".to_string())),
            (false, Ok(true)) => (format!("may not {verb} secrets (all namespaces)"), Err(anyhow::anyhow!("ALLOWED although no Helm toolset needs it: every Secret in the cluster is readable through the server; find the binding that grants it (kubectl get clusterrolebindings,rolebindings -A -o wide)"))),
        };
        check(checks, &name, result);
    }
}
