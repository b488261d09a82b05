//! What a client can take, tried as an attacker who reaches the URL would: each tool that could
//! hand out a credential is called with the arguments that would make it, and its answer is
//! searched for a bearer token the API server accepts (a TokenReview with the admin kubeconfig:
//! the token the ServiceAccount really has, whichever the kubelet mounted last). No token is
//! ever printed.

use crate::cluster::client::Cluster;
use crate::cluster::manifests::SERVICE_ACCOUNT;
use crate::server::check::{check, Check, Mode};
use crate::server::credential_tools::CREDENTIAL_TOOLS;
use crate::server::mcp::Session;
use anyhow::{bail, Result};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::{Api, PostParams};
use serde_json::json;

pub(crate) async fn check_credential_tools(
    url: &str,
    cluster: Result<&Cluster, &String>,
    namespace: &str,
    mode: &Mode,
    checks: &mut Vec<Check>,
) {
    for (tool, returns) in CREDENTIAL_TOOLS {
        let name = format!("MCP {tool} hands out no credential");
        if !mode.credential_tools.iter().any(|t| t == tool) {
            check(checks, &name, Ok("not offered (disabled_tools in the server's config)".into()));
            continue;
        }
        let result = async {
            let mut answers = String::new();
            let mut session = Session::initialize(url).await?;
            session.initialized().await?;
            for minified in [false, true] {
                let answer = session.call_tool(tool, json!({"minified": minified})).await?;
                answers.push_str(&answer.to_string());
                answers.push('\n');
            }
            judge(&answers, cluster, namespace, returns).await
        };
        check(checks, &name, result.await.map_err(|e| e.context(format!("{tool} is offered"))));
    }
}

/// Fails when `answers` carry a bearer token; says whose when the API server accepts it.
async fn judge(answers: &str, cluster: Result<&Cluster, &String>, namespace: &str, returns: &str) -> Result<String> {
    let tokens = bearer_tokens(answers);
    if tokens.is_empty() {
        return Ok("offered, and its answers carry no bearer token".into());
    }
    let pod = format!("system:serviceaccount:{namespace}:{SERVICE_ACCOUNT}");
    let cluster = match cluster {
        Ok(c) => c,
        Err(e) => bail!("its answer carries a bearer token (whose, TokenReview could not tell: {e})"),
    };
    for token in &tokens {
        if let Some(user) = accepted_as(cluster, token).await? {
            if user == pod {
                bail!("ANSWERED with the ServiceAccount's own token ({returns}; the API server accepts it as {pod}): whoever reaches the URL can use the API server with the pod's rights; run up without --enable-tool");
            }
            bail!("ANSWERED with a token the API server accepts as {user}");
        }
    }
    bail!("its answer carries a bearer token (the API server does not accept it now, but it is a credential's shape)")
}

/// The user the API server authenticates `token` as, if any (a TokenReview).
async fn accepted_as(cluster: &Cluster, token: &str) -> Result<Option<String>> {
    let review = TokenReview {
        spec: TokenReviewSpec { token: Some(token.to_string()), ..Default::default() },
        ..Default::default()
    };
    let reviews: Api<TokenReview> = Api::all(cluster.client.clone());
    let answer = reviews
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| anyhow::anyhow!("TokenReview failed: {}", crate::cluster::client::root_cause(&e)))?;
    let status = answer.status.unwrap_or_default();
    Ok(if status.authenticated == Some(true) { status.user.and_then(|u| u.username) } else { None })
}

/// JWT-shaped strings (three base64url parts, the first a JSON header) and the values of
/// kubeconfig `token` fields.
fn bearer_tokens(text: &str) -> Vec<String> {
    let text = text.replace("\\n", "\n");
    let is_part = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut found = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("eyJ") {
        let candidate: String = rest[at..].chars().take_while(|c| is_part(*c) || *c == '.').collect();
        let parts: Vec<&str> = candidate.trim_end_matches('.').split('.').collect();
        if parts.len() == 3 && parts.iter().all(|p| p.len() >= 4) {
            found.push(parts.join("."));
        }
        rest = &rest[at + candidate.len().max(3)..];
    }
    for line in text.lines() {
        let Some(value) = line.trim().strip_prefix("token:") else { continue };
        let value = value.trim().trim_matches('"').trim_matches('\'');
        if !value.is_empty() && !found.iter().any(|f| f == value) && !value.starts_with("REDACTED") {
            found.push(value.to_string());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_in_a_kubeconfig_answer() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJlLWJ5dGVz";
        let answer =
            json!({"content": [{"type": "text", "text": format!("users:\n- name: u\n  user:\n    token: {jwt}\n")}]});
        assert_eq!(bearer_tokens(&answer.to_string()), [jwt]);
        assert_eq!(bearer_tokens("users:\n- user:\n    token: abc123\n"), ["abc123"]);
        assert!(bearer_tokens("users:\n- user:\n    tokenFile: /var/run/x\n    token: REDACTED\n").is_empty());
        assert!(bearer_tokens("clusters: eyJ is not a token, nor eyJa.b").is_empty());
    }
}
