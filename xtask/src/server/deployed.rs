//! What is deployed, read back from the live objects the chart rendered (Deployment, Service,
//! ConfigMap): the mode the server really runs with (container args over config.toml), and a
//! fingerprint of the fields the chart sets, to tell drift from a no-op.

use crate::cluster::client::Cluster;
use crate::server::mode::ServerMode;
use anyhow::{Context, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::Api;
use std::collections::BTreeMap;

/// The release's objects as they are now (one GET each).
pub struct Live {
    pub deployment: Option<Deployment>,
    pub service: Option<Service>,
    pub config: Option<ConfigMap>,
}

pub async fn read(cluster: &Cluster, ns: &str, name: &str) -> Result<Live> {
    let (deployment, service, config) =
        tokio::try_join!(get(cluster, ns, name), get(cluster, ns, name), get(cluster, ns, name))?;
    Ok(Live { deployment, service, config })
}

/// The release's object of kind `K`, if it is there.
async fn get<K>(cluster: &Cluster, ns: &str, name: &str) -> Result<Option<K>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let kind = K::kind(&()).to_lowercase();
    Api::<K>::namespaced(cluster.client.clone(), ns)
        .get_opt(name)
        .await
        .with_context(|| format!("cannot read {kind}/{name}"))
}

impl Live {
    pub fn args(&self) -> Vec<String> {
        self.container().and_then(|c| c.args).unwrap_or_default()
    }

    fn container(&self) -> Option<k8s_openapi::api::core::v1::Container> {
        self.deployment.as_ref()?.spec.as_ref()?.template.spec.as_ref()?.containers.first().cloned()
    }

    /// Whether the pod runs a container of this name beside the server.
    pub fn has_container(&self, name: &str) -> bool {
        let spec = self.deployment.as_ref().and_then(|d| d.spec.as_ref()?.template.spec.as_ref());
        spec.is_some_and(|s| s.containers.iter().any(|c| c.name == name))
    }

    pub fn config_toml(&self) -> String {
        self.config.as_ref().and_then(|c| c.data.as_ref()?.get("config.toml").cloned()).unwrap_or_default()
    }

    /// The mode the server runs with: the config file first, every flag given over it.
    pub fn mode(&self) -> ServerMode {
        ServerMode::live(&self.args(), &self.config_toml())
    }

    /// Fails, in one line, when the server does not run in the mode asked for.
    pub fn check_mode(&self, want: &ServerMode, chart: &str) -> Result<()> {
        let Some(why) = want.difference(&self.mode()) else { return Ok(()) };
        anyhow::bail!(
            "deployed, but the server does not run in the mode asked for ({}): {why}; the chart {chart} {}",
            want.describe(),
            if self.lacks_extra_args() {
                "ignores extraArgs (content before v0.0.59) and its config.toml lacks the setting"
            } else {
                "renders a config and args that disagree with it"
            }
        )
    }

    /// True when the container gets no more than the chart's own `--config FILE`.
    pub fn lacks_extra_args(&self) -> bool {
        self.args().iter().all(|a| a == "--config" || !a.starts_with("--"))
    }

    /// The fields the chart sets that decide how the server runs and is reached (the nodePort is
    /// `up`'s own and checked apart).
    pub fn fingerprint(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Some(c) = self.container() {
            out.insert("deployment image".into(), json(&c.image));
            out.insert("deployment args".into(), json(&c.args));
            out.insert("deployment command".into(), json(&c.command));
            out.insert("deployment ports".into(), json(&c.ports));
            out.insert("deployment probes".into(), json(&(&c.liveness_probe, &c.readiness_probe)));
            out.insert("deployment env".into(), json(&c.env));
        }
        if let Some(spec) = self.deployment.as_ref().and_then(|d| d.spec.as_ref()) {
            out.insert("deployment replicas".into(), json(&spec.replicas));
            out.insert(
                "deployment serviceAccountName".into(),
                json(&spec.template.spec.as_ref().and_then(|s| s.service_account_name.clone())),
            );
            out.insert(
                "deployment nodeSelector".into(),
                json(&spec.template.spec.as_ref().and_then(|s| s.node_selector.clone())),
            );
        }
        if let Some(spec) = self.service.as_ref().and_then(|s| s.spec.as_ref()) {
            out.insert("service type".into(), json(&spec.type_));
            let ports: Vec<_> =
                spec.ports.iter().flatten().map(|p| (p.port, p.target_port.clone(), p.name.clone())).collect();
            out.insert("service ports".into(), json(&ports));
            out.insert("service selector".into(), json(&spec.selector));
        }
        out.insert("configmap config.toml".into(), json(&self.config_toml()));
        out
    }
}

/// The fields of `recorded` that differ in `live`, by name.
pub fn drift(recorded: &BTreeMap<String, String>, live: &BTreeMap<String, String>) -> Vec<String> {
    recorded.iter().filter(|(k, v)| live.get(*k) != Some(v)).map(|(k, _)| k.clone()).collect()
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
