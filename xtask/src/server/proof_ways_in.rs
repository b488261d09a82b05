//! The chart's other ways in, which `up` turns off: no Ingress, no HTTPRoute and no Service but
//! the release's one NodePort Service lead to the server (by the release's instance label, or by
//! naming its Service as a backend).

use crate::cluster::client::{Cluster, ClusterArgs};
use crate::oci::chart;
use crate::server::check::{check, Check};
use anyhow::Result;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};

pub(crate) async fn check_ways_in(cluster: &Cluster, args: &ClusterArgs, checks: &mut Vec<Check>) {
    check(checks, "no Ingress, HTTPRoute or other Service", ways_in(cluster, args).await);
}

async fn ways_in(cluster: &Cluster, args: &ClusterArgs) -> Result<String> {
    let (ns, release) = (&args.namespace, &args.release);
    let service = chart::fullname(release);
    let mine = ListParams::default().labels(&format!("app.kubernetes.io/instance={release}"));
    let mut found = Vec::new();
    let services: Api<Service> = Api::namespaced(cluster.client.clone(), ns);
    for s in services.list(&mine).await?.items {
        let name = s.metadata.name.unwrap_or_default();
        if name != service {
            found.push(format!("service/{name}"));
        }
    }
    let ingresses: Api<Ingress> = Api::namespaced(cluster.client.clone(), ns);
    for i in ingresses.list(&ListParams::default()).await?.items {
        let labelled = i.metadata.labels.as_ref().and_then(|l| l.get("app.kubernetes.io/instance")) == Some(release);
        if labelled || serde_json::to_string(&i.spec).unwrap_or_default().contains(&format!("\"{service}\"")) {
            found.push(format!("ingress/{}", i.metadata.name.unwrap_or_default()));
        }
    }
    let route = ApiResource {
        group: "gateway.networking.k8s.io".into(),
        version: "v1".into(),
        api_version: "gateway.networking.k8s.io/v1".into(),
        kind: "HTTPRoute".into(),
        plural: "httproutes".into(),
    };
    let routes: Api<DynamicObject> = Api::namespaced_with(cluster.client.clone(), ns, &route);
    let gateway_api = match routes.list(&ListParams::default()).await {
        Ok(list) => {
            for r in list.items {
                if r.data["spec"].to_string().contains(&format!("\"{service}\"")) {
                    found.push(format!("httproute/{}", r.metadata.name.unwrap_or_default()));
                }
            }
            "no HTTPRoute names it"
        }
        Err(kube::Error::Api(e)) if e.code == 404 => "no Gateway API in the cluster",
        Err(e) => return Err(e.into()),
    };
    if !found.is_empty() {
        anyhow::bail!(
            "another way in leads to the server, past the NodePort's NetworkPolicy: {}; delete it, or check who made it",
            found.join(", ")
        );
    }
    Ok(format!("only service/{service}; no Ingress, {gateway_api}"))
}
