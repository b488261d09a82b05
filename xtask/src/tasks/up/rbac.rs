//! `up`, planning the namespace, RBAC and the other owned objects: what to create, update, adopt
//! or delete, and what to refuse.

use crate::cluster::client::Cluster;
use crate::cluster::manifests::{
    drifted_fields, instance, is_subset, needed, owner, rbac_objects, Object, Owner, INSTANCE_ANNOTATION,
};
use crate::plan::data::{Action, Step, Write};
use anyhow::{bail, Result};

/// Reads the live RBAC objects and decides, before any change, what to create or update; refuses
/// to take over an object this instance did not create (unless `adopt`). A namespace that existed
/// before is used as it is: never applied, never adopted, never deleted. Also says whether the
/// namespace is terminating (its objects then count as gone).
pub(super) async fn plan_rbac(
    cluster: Option<&Cluster>,
    ns: &str,
    release: &str,
    toolsets: Option<&str>,
    (wanted, unwanted): (Vec<Object>, Vec<Object>),
    (adopt, adopt_from): (bool, Option<&str>),
) -> Result<(Vec<Step>, bool)> {
    let adopt = adopt || adopt_from.is_some();
    let mut objects = rbac_objects(ns, release)?;
    let first_unwanted = objects.len() + wanted.len();
    objects.extend(wanted);
    objects.extend(unwanted);
    let mut live = match cluster {
        Some(c) => {
            let unlabelled: Vec<bool> =
                objects.iter().enumerate().map(|(i, o)| i < first_unwanted && needed(o, toolsets)).collect();
            c.get_all(&objects, &unlabelled).await?
        }
        None => vec![None; objects.len()],
    };
    let me = instance(ns, release);
    let terminating = objects.iter().zip(&live).any(|(o, l)| {
        o.kind() == "Namespace" && l.as_ref().is_some_and(|l| !l["metadata"]["deletionTimestamp"].is_null())
    });
    if terminating {
        for (o, l) in objects.iter().zip(live.iter_mut()) {
            if o.kind() == "Namespace" || o.namespace().is_some() {
                *l = None;
            }
        }
    }
    let mut steps = Vec::new();
    for (i, (mut object, live)) in objects.into_iter().zip(live).enumerate() {
        if i >= first_unwanted || !needed(&object, toolsets) {
            if live.as_ref().is_some_and(|l| matches!(owner(l, &me), Owner::Us)) {
                let (plural, namespaced) = object.plural()?;
                let write = Write::new("delete", plural, object.namespace().filter(|_| namespaced), object.name());
                let reason = match i >= first_unwanted {
                    true => "no --pull-secret: no credential is kept in the cluster".to_string(),
                    false => "the server runs no helm toolset: it needs no Secrets".to_string(),
                };
                steps.push(Step::new(
                    Action::Delete { object: object.id(), manifest: object.value },
                    reason,
                    vec![write],
                ));
            }
            continue;
        }
        // An aggregationRule makes the controller fill the rules from every ClusterRole it selects.
        let aggregated = object.kind() == "ClusterRole"
            && live.as_ref().is_some_and(|l| l.get("aggregationRule").is_some_and(|a| !a.is_null()));
        let (change, reason) = match &live {
            None => ("create", "it is not in the cluster".to_string()),
            Some(l) => match owner(l, &me) {
                Owner::Us if is_subset(&object.value, l) && !aggregated => continue,
                Owner::Us => {
                    let source = if object.kind() == "NetworkPolicy" { "--allow-from" } else { "deploy/rbac.yaml" };
                    let mut fields = drifted_fields(&object.value, l);
                    if aggregated {
                        fields.insert(0, "aggregationRule (added: it is removed)".to_string());
                        object.value["aggregationRule"] = serde_json::Value::Null;
                    }
                    ("update", format!("{} drifted from {source}", fields.join(", ")))
                }
                _ if object.kind() == "Namespace" => continue,
                Owner::Other(other) if adopt_from == Some(other.as_str()) => {
                    ("adopt", format!("--adopt-from {other}: it was that deployment's, whose `down` now leaves it"))
                }
                Owner::Nobody if adopt => ("adopt", format!("--adopt: it has no {INSTANCE_ANNOTATION} mark of {me}")),
                Owner::Nobody => bail!(
                    "{} already exists and was not created by `cargo xtask up` (it has no {INSTANCE_ANNOTATION} mark): up does not take it over; remove or rename it, or pass --adopt to make it this deployment's",
                    object.id()
                ),
                Owner::Other(other) => bail!(
                    "{} belongs to the deployment {other}, not {me}: up does not take it over (--adopt takes only objects without a mark); deploy with another --namespace/--release, or pass --adopt-from {other} to take it from that deployment",
                    object.id()
                ),
            },
        };
        let (plural, namespaced) = object.plural()?;
        let write = Write::new("patch", plural, object.namespace().filter(|_| namespaced), object.name());
        let writes = match aggregated {
            true => vec![write.clone(), write],
            false => vec![write],
        };
        let action = match object.kind() {
            "Secret" => Action::ApplyHidden { change, object: object.id(), manifest: object.value },
            _ => Action::Apply { change, object: object.id(), manifest: object.value },
        };
        steps.push(Step::new(action, reason, writes));
    }
    Ok((steps, terminating))
}
