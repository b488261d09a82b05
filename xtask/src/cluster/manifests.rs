//! The namespace and RBAC objects from `deploy/rbac.yaml`: what `up` applies and `down` deletes.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;

pub const RBAC_YAML: &str = include_str!(concat!(env!("OUT_DIR"), "/rbac.yaml"));
/// The ServiceAccount `deploy/rbac.yaml` creates and the chart runs the server as.
pub const SERVICE_ACCOUNT: &str = "kubernetes-mcp-server";
/// The namespace written in `deploy/rbac.yaml`; `--namespace` replaces it.
const DEFAULT_NAMESPACE: &str = "mcp-system";

#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub value: Value,
}

impl Object {
    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }
    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }
    pub fn namespace(&self) -> Option<&str> {
        self.value["metadata"]["namespace"].as_str()
    }
    pub fn api_version(&self) -> &str {
        self.value["apiVersion"].as_str().unwrap_or_default()
    }
    /// `kind/name` as kubectl prints it.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind().to_lowercase(), self.name())
    }
    /// The REST collection path of this kind, and whether it is namespaced.
    pub fn plural(&self) -> Result<(&'static str, bool)> {
        Ok(match self.kind() {
            "Namespace" => ("namespaces", false),
            "ServiceAccount" => ("serviceaccounts", true),
            "ClusterRole" => ("clusterroles", false),
            "ClusterRoleBinding" => ("clusterrolebindings", false),
            "ConfigMap" => ("configmaps", true),
            "NetworkPolicy" => ("networkpolicies", true),
            "Secret" => ("secrets", true),
            other => bail!("deploy/rbac.yaml holds a {other}, which the xtask does not know how to apply"),
        })
    }
}

/// Every object `up` creates carries this annotation: the instance (`<namespace>/<release>`) that
/// owns it. `up` takes over nothing without it (unless `--adopt`), `down` deletes nothing without it.
pub const INSTANCE_ANNOTATION: &str = "kmcp-xtask/instance";

pub fn instance(namespace: &str, release: &str) -> String {
    format!("{namespace}/{release}")
}

/// The metadata of an object `up` makes in `namespace` for `release`: its name, the managed-by
/// label and the instance mark.
pub fn owned_metadata(name: &str, namespace: &str, release: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/managed-by": "kmcp-xtask"},
        "annotations": {INSTANCE_ANNOTATION: instance(namespace, release)},
    })
}

/// Whose a live object is.
#[derive(Debug, PartialEq)]
pub enum Owner {
    Us,
    Nobody,
    Other(String),
}

pub fn owner(live: &Value, instance: &str) -> Owner {
    match live["metadata"]["annotations"][INSTANCE_ANNOTATION].as_str() {
        Some(i) if i == instance => Owner::Us,
        Some(i) => Owner::Other(i.to_string()),
        None => Owner::Nobody,
    }
}

/// The objects of `deploy/rbac.yaml`, moved to `namespace` and marked as `release`'s there.
pub fn rbac_objects(namespace: &str, release: &str) -> Result<Vec<Object>> {
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(RBAC_YAML) {
        let mut value = Value::deserialize(doc).context("deploy/rbac.yaml is not valid YAML")?;
        if value.is_null() {
            continue;
        }
        retarget(&mut value, namespace);
        value["metadata"]["annotations"][INSTANCE_ANNOTATION] = instance(namespace, release).into();
        let object = Object { value };
        object.plural()?;
        out.push(object);
    }
    Ok(out)
}

/// Whether `object` belongs in a deployment running `toolsets` (None: the server's default,
/// core and config): objects marked `kmcp-xtask/only-with-toolset: T` only with toolset T.
pub fn needed(object: &Object, toolsets: Option<&str>) -> bool {
    match object.value["metadata"]["annotations"]["kmcp-xtask/only-with-toolset"].as_str() {
        Some(wanted) => crate::common::flags::runs_toolset(toolsets, wanted),
        None => true,
    }
}

/// The name a cluster-scoped object of `deploy/rbac.yaml` gets for the deployment in `namespace`:
/// one per instance, so that deployments in two namespaces never share or delete each other's RBAC.
pub fn cluster_scoped_name(name: &str, namespace: &str) -> String {
    format!("kmcp:{namespace}:{name}")
}

fn retarget(value: &mut Value, namespace: &str) {
    let kind = value["kind"].as_str().unwrap_or_default().to_string();
    let meta = &mut value["metadata"];
    if kind == "Namespace" {
        meta["name"] = namespace.into();
    } else if meta.get("namespace").is_some() {
        meta["namespace"] = namespace.into();
    } else if let Some(name) = meta["name"].as_str() {
        meta["name"] = cluster_scoped_name(name, namespace).into();
    }
    if kind == "ClusterRoleBinding" && value["roleRef"]["name"] != "view" {
        if let Some(role) = value["roleRef"]["name"].as_str() {
            value["roleRef"]["name"] = cluster_scoped_name(role, namespace).into();
        }
    }
    if let Some(subjects) = value.get_mut("subjects").and_then(Value::as_array_mut) {
        for s in subjects {
            if s.get("namespace").and_then(Value::as_str) == Some(DEFAULT_NAMESPACE) {
                s["namespace"] = namespace.into();
            }
        }
    }
}

/// True when every field of `desired` is present with the same value in `live` (arrays must have
/// the same length, element by element): applying `desired` would change nothing.
pub fn is_subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d.iter().all(|(k, v)| l.get(k).is_some_and(|lv| is_subset(v, lv))),
        (Value::Array(d), Value::Array(l)) => d.len() == l.len() && d.iter().zip(l).all(|(a, b)| is_subset(a, b)),
        (d, l) => d == l,
    }
}

/// The fields of `desired` that `live` does not match, `metadata` by its keys: `rules`,
/// `metadata.labels`.
pub fn drifted_fields(desired: &Value, live: &Value) -> Vec<String> {
    let Value::Object(fields) = desired else { return Vec::new() };
    let mut out = Vec::new();
    for (key, want) in fields {
        match (key.as_str(), want) {
            ("metadata", Value::Object(meta)) => out.extend(
                meta.iter()
                    .filter(|(k, v)| !live["metadata"].get(k.as_str()).is_some_and(|l| is_subset(v, l)))
                    .map(|(k, _)| format!("metadata.{k}")),
            ),
            _ if !live.get(key).is_some_and(|l| is_subset(want, l)) => out.push(key.clone()),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn drifted_fields_are_named() {
        let desired = json!({"kind": "ClusterRole", "metadata": {"name": "a", "labels": {"x": "1"}}, "rules": [1]});
        let live = json!({"kind": "ClusterRole", "metadata": {"name": "a", "uid": "u"}, "rules": [2]});
        assert_eq!(drifted_fields(&desired, &live), ["metadata.labels", "rules"]);
        assert!(drifted_fields(&desired, &desired).is_empty());
    }

    #[test]
    fn rbac_holds_the_objects_the_design_names() {
        let objects = rbac_objects("mcp-system", "kubernetes-mcp-server").unwrap();
        let ids: Vec<String> = objects.iter().map(Object::id).collect();
        assert_eq!(
            ids,
            [
                "namespace/mcp-system",
                "serviceaccount/kubernetes-mcp-server",
                "clusterrolebinding/kmcp:mcp-system:kubernetes-mcp-server-view",
                "clusterrole/kmcp:mcp-system:kubernetes-mcp-server-nodes-read",
                "clusterrolebinding/kmcp:mcp-system:kubernetes-mcp-server-nodes-read",
                "clusterrole/kmcp:mcp-system:helm-readonly",
                "clusterrolebinding/kmcp:mcp-system:kubernetes-mcp-server-helm-readonly",
            ]
        );
        for o in &objects {
            assert_eq!(
                o.value["metadata"]["labels"]["app.kubernetes.io/managed-by"],
                "kmcp-xtask",
                "{} lacks the label up lists by",
                o.id()
            );
        }
        for o in &objects {
            assert_eq!(owner(&o.value, "mcp-system/kubernetes-mcp-server"), Owner::Us, "{}", o.id());
            assert_eq!(
                owner(&o.value, "b/kubernetes-mcp-server"),
                Owner::Other("mcp-system/kubernetes-mcp-server".into())
            );
        }
        assert_eq!(owner(&json!({"metadata": {}}), "a/b"), Owner::Nobody);
        let view = &objects[2].value;
        assert_eq!(view["roleRef"]["name"], "view");
        for o in &objects {
            for rule in o.value["rules"].as_array().into_iter().flatten() {
                for verb in rule["verbs"].as_array().unwrap() {
                    assert!(["get", "list", "watch"].contains(&verb.as_str().unwrap()), "write verb in {}", o.id());
                }
            }
        }
    }

    #[test]
    fn namespace_flag_moves_everything() {
        let objects = rbac_objects("other", "kubernetes-mcp-server").unwrap();
        assert_eq!(objects[0].name(), "other");
        assert_eq!(objects[1].namespace(), Some("other"));
        assert_eq!(objects[2].value["subjects"][0]["namespace"], "other");
        assert_eq!(objects[4].value["roleRef"]["name"], "kmcp:other:kubernetes-mcp-server-nodes-read");
        assert_eq!(objects[2].value["roleRef"]["name"], "view", "the built-in role keeps its name");
        assert!(!serde_json::to_string(&objects.iter().map(|o| &o.value).collect::<Vec<_>>())
            .unwrap()
            .contains("mcp-system"));
    }

    #[test]
    fn subset_comparison() {
        let live = json!({"metadata": {"name": "a", "resourceVersion": "3"}, "rules": [{"verbs": ["get"], "x": 1}]});
        assert!(is_subset(&json!({"metadata": {"name": "a"}, "rules": [{"verbs": ["get"]}]}), &live));
        assert!(!is_subset(&json!({"rules": [{"verbs": ["get", "list"]}]}), &live));
        assert!(!is_subset(&json!({"metadata": {"labels": {"a": "b"}}}), &live));
    }
}
