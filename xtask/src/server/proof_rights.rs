//! Everything the ServiceAccount may change, read from the roles bound to it: every binding in the
//! cluster whose subjects name it, its user name or one of its groups, and every rule of the role
//! it binds that grants a verb beyond reading (`*` included), on any resource or URL.

use crate::cluster::client::Cluster;
use crate::server::check::{check, Check};
use anyhow::{Context, Result};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject};
use kube::api::{Api, ListParams};

/// The verbs that only read.
const READ: [&str; 3] = ["get", "list", "watch"];

/// Fails naming each rule that lets the ServiceAccount `namespace`/`name` do more than read.
pub async fn check_write_rights(cluster: &Cluster, namespace: &str, name: &str, checks: &mut Vec<Check>) {
    let result = match beyond_reading(cluster, namespace, name).await {
        Ok((found, _)) if !found.is_empty() => Err(anyhow::anyhow!(
            "it may {}: deploy/rbac.yaml asks for reading only; remove what grants it",
            found.join("; ")
        )),
        Ok((_, roles)) => Ok(format!("every rule of the {roles} roles bound to it only reads")),
        Err(e) => Err(e),
    };
    check(checks, "ServiceAccount may change nothing", result);
}

/// The rules beyond reading, each as `VERBS RESOURCES (via KIND/ROLE, bound by KIND/BINDING)`,
/// and how many bound roles were read.
async fn beyond_reading(cluster: &Cluster, namespace: &str, name: &str) -> Result<(Vec<String>, usize)> {
    let client = cluster.client.clone();
    let lp = ListParams::default();
    let (crbs, rbs, crs, rs) = tokio::try_join!(
        async { Api::<ClusterRoleBinding>::all(client.clone()).list(&lp).await },
        async { Api::<RoleBinding>::all(client.clone()).list(&lp).await },
        async { Api::<ClusterRole>::all(client.clone()).list(&lp).await },
        async { Api::<Role>::all(client.clone()).list(&lp).await },
    )
    .context("cannot read the cluster's roles and bindings to see what the ServiceAccount may do")?;
    let names_it = |subjects: &Option<Vec<Subject>>| subjects.iter().flatten().any(|s| is_it(s, namespace, name));
    let cluster_rule = |role: &str| crs.items.iter().find(|r| r.metadata.name.as_deref() == Some(role));
    let mut bound: Vec<(String, String, Vec<PolicyRule>)> = Vec::new();
    for b in crbs.items.iter().filter(|b| names_it(&b.subjects)) {
        let rules = cluster_rule(&b.role_ref.name).and_then(|r| r.rules.clone()).unwrap_or_default();
        let binding = format!("clusterrolebinding/{}", b.metadata.name.as_deref().unwrap_or_default());
        bound.push((format!("clusterrole/{}", b.role_ref.name), binding, rules));
    }
    for b in rbs.items.iter().filter(|b| names_it(&b.subjects)) {
        let ns = b.metadata.namespace.as_deref().unwrap_or_default();
        let rules = match b.role_ref.kind.as_str() {
            "ClusterRole" => cluster_rule(&b.role_ref.name).and_then(|r| r.rules.clone()),
            _ => rs
                .items
                .iter()
                .find(|r| {
                    r.metadata.namespace.as_deref() == Some(ns) && r.metadata.name.as_deref() == Some(&b.role_ref.name)
                })
                .and_then(|r| r.rules.clone()),
        };
        let role = format!("{}/{}", b.role_ref.kind.to_lowercase(), b.role_ref.name);
        let binding = format!("rolebinding/{} in {ns}", b.metadata.name.as_deref().unwrap_or_default());
        bound.push((role, binding, rules.unwrap_or_default()));
    }
    let found = bound
        .iter()
        .flat_map(|(role, binding, rules)| {
            rules.iter().filter_map(move |r| writes(r).map(|w| format!("{w} (via {role}, bound by {binding})")))
        })
        .collect();
    Ok((found, bound.len()))
}

/// The subject is this ServiceAccount, its user name, or a group every ServiceAccount of its
/// namespace (or every authenticated user) is in.
fn is_it(s: &Subject, namespace: &str, name: &str) -> bool {
    let user = format!("system:serviceaccount:{namespace}:{name}");
    match s.kind.as_str() {
        "ServiceAccount" => s.name == name && s.namespace.as_deref() == Some(namespace),
        "User" => s.name == user,
        "Group" => [
            "system:serviceaccounts".to_string(),
            format!("system:serviceaccounts:{namespace}"),
            "system:authenticated".to_string(),
        ]
        .contains(&s.name),
        _ => false,
    }
}

/// `VERBS RESOURCES` when the rule grants a verb beyond reading; the access reviews every
/// authenticated user may create (they change nothing) do not count.
fn writes(rule: &PolicyRule) -> Option<String> {
    let verbs: Vec<&str> = rule.verbs.iter().map(String::as_str).filter(|v| !READ.contains(v)).collect();
    if verbs.is_empty() {
        return None;
    }
    let resources = rule.resources.clone().unwrap_or_default();
    let reviews_only = !resources.is_empty()
        && resources.iter().all(|r| r.ends_with("reviews"))
        && verbs.iter().all(|v| *v == "create");
    if reviews_only {
        return None;
    }
    let mut on = resources;
    on.extend(rule.non_resource_urls.iter().flatten().cloned());
    Some(format!("{} {}", verbs.join(","), on.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verbs: &[&str], resources: &[&str]) -> PolicyRule {
        PolicyRule {
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            resources: Some(resources.iter().map(|r| r.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn rules_that_change_something_are_named() {
        assert_eq!(writes(&rule(&["get", "list", "watch"], &["nodes"])), None);
        assert_eq!(writes(&rule(&["get", "delete"], &["nodes"])).as_deref(), Some("delete nodes"));
        assert_eq!(writes(&rule(&["*"], &["*"])).as_deref(), Some("* *"));
        assert_eq!(writes(&rule(&["create"], &["selfsubjectaccessreviews", "selfsubjectrulesreviews"])), None);
        assert!(writes(&rule(&["create"], &["pods/exec"])).is_some());
        let group = |n: &str| Subject { kind: "Group".into(), name: n.into(), ..Default::default() };
        assert!(is_it(&group("system:serviceaccounts:mcp"), "mcp", "sa"));
        assert!(!is_it(&group("system:serviceaccounts:other"), "mcp", "sa"));
    }
}
