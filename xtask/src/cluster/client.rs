//! The Kubernetes API, through kube: finding the kubeconfig, reachability, and applying, reading
//! and deleting objects with server-side apply under one field manager.

use crate::cluster::manifests::Object;
use crate::cluster::{exec_deadline, http2};
use anyhow::{anyhow, bail, Context, Result};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Client;
use serde_json::Value;
use std::path::{Path, PathBuf};

pub const FIELD_MANAGER: &str = "kmcp-xtask";
/// Every object in `deploy/rbac.yaml` carries this label.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by=kmcp-xtask";
pub const K0S_ADMIN_KUBECONFIG: &str = "/var/lib/k0s/pki/admin.conf";

/// The cluster flags shared by `up`, `down`, `status` and `verify`.
#[derive(clap::Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Kubeconfig [default: $KUBECONFIG, then ~/.kube/config, then /var/lib/k0s/pki/admin.conf]
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context [default: the kubeconfig's current context]
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace of the deployment
    #[arg(long, value_name = "NAME", default_value = "mcp-system")]
    pub namespace: String,
    /// Helm release name
    #[arg(long, value_name = "NAME", default_value = "kubernetes-mcp-server")]
    pub release: String,
}

impl ClusterArgs {
    /// The namespace and release names as Kubernetes and helm check them: before any contact.
    pub fn check(&self) -> Result<()> {
        crate::oci::chart::check_name("--namespace", &self.namespace, 63)?;
        crate::oci::chart::check_name("--release", &self.release, 53)?;
        if !self.release.starts_with(|c: char| c.is_ascii_lowercase()) {
            bail!(
                "invalid --release '{}': the release names the Service, whose name must start with a lowercase letter (a DNS-1035 label), e.g. mcp-{}",
                self.release,
                self.release
            );
        }
        Ok(())
    }
}

/// The kubeconfig to use and where it came from: `--kubeconfig`, `KUBECONFIG`, `~/.kube/config`,
/// then k0s's admin kubeconfig.
/// How to get an admin kubeconfig, for the refusals that find none.
const GET_ADMIN: &str = "get an admin one on the k0s node with `mkdir -p ~/.kube && sudo k0s kubeconfig admin > ~/.kube/config` (from another machine, set its server: to the node's WireGuard address)";

pub fn find_kubeconfig(flag: Option<&Path>) -> Result<(PathBuf, &'static str)> {
    if let Some(p) = flag {
        if !p.is_file() {
            bail!(
                "kubeconfig {} (from --kubeconfig) does not exist: pass an admin kubeconfig's path, or {GET_ADMIN}",
                p.display()
            );
        }
        return Ok((p.to_path_buf(), "--kubeconfig"));
    }
    if let Some(env) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        let first = std::env::split_paths(&env).next().unwrap_or_default();
        if !first.is_file() {
            bail!("kubeconfig {} (from KUBECONFIG) does not exist: point KUBECONFIG at an admin kubeconfig, or {GET_ADMIN}", first.display());
        }
        return Ok((first, "KUBECONFIG"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        let p = Path::new(&home).join(".kube/config");
        if p.is_file() {
            return Ok((p, "~/.kube/config"));
        }
    }
    let k0s = PathBuf::from(K0S_ADMIN_KUBECONFIG);
    if k0s.is_file() {
        return Ok((k0s, "k0s admin kubeconfig"));
    }
    bail!("no kubeconfig found (looked at --kubeconfig, KUBECONFIG, ~/.kube/config and {K0S_ADMIN_KUBECONFIG}): pass --kubeconfig PATH, or {GET_ADMIN}")
}

pub struct Cluster {
    pub client: Client,
    pub server: String,
    pub kubeconfig: PathBuf,
    pub context: Option<String>,
}

impl Cluster {
    /// Loads the kubeconfig and builds a client; does not contact the cluster.
    pub async fn connect(args: &ClusterArgs) -> Result<Cluster> {
        let (path, source) = find_kubeconfig(args.kubeconfig.as_deref())?;
        eprintln!("using kubeconfig {} ({source})", path.display());
        let kubeconfig =
            Kubeconfig::read_from(&path).map_err(|e| anyhow!("cannot read kubeconfig {}: {e}", path.display()))?;
        let options = KubeConfigOptions { context: args.context.clone(), ..Default::default() };
        let plugin = exec_deadline::plugin(&kubeconfig, args.context.as_deref());
        let (shown, runtime) = (path.display().to_string(), tokio::runtime::Handle::current());
        // kube runs an exec plugin while it builds the config and the client: on a thread of its own.
        let (client, server) = exec_deadline::within(plugin, move || {
            let mut config = runtime
                .block_on(kube::Config::from_custom_kubeconfig(kubeconfig, &options))
                .map_err(|e| anyhow!("kubeconfig {shown} is not usable: {e}"))?;
            config.connect_timeout = Some(std::time::Duration::from_secs(10));
            config.read_timeout = Some(std::time::Duration::from_secs(60));
            let server = config.cluster_url.to_string().trim_end_matches('/').to_string();
            let client = http2::client(&config).map_err(|e| anyhow!("cannot build a client for {server}: {e:#}"))?;
            Ok((client, server))
        })
        .await?;
        Ok(Cluster { client, server, kubeconfig: path, context: args.context.clone() })
    }

    /// Connects and checks, in one request, that the API answers.
    pub async fn reach(args: &ClusterArgs) -> Result<Cluster> {
        let cluster = Cluster::connect(args).await?;
        cluster.check().await?;
        Ok(cluster)
    }

    /// One request: does the API answer, and accept our credentials?
    pub async fn check(&self) -> Result<()> {
        match self.client.apiserver_version().await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 401 || s.code == 403 => {
                bail!("the Kubernetes API at {} refused the kubeconfig's credentials (HTTP {}): use an admin kubeconfig", self.server, s.code)
            }
            Err(e) => bail!(
                "cannot reach the Kubernetes API at {}: {}: check the cluster is running and the kubeconfig points at it",
                self.server,
                root_cause(&e)
            ),
        }
    }

    fn api_for(&self, object: &Object) -> Result<Api<DynamicObject>> {
        let (group, version) = match object.api_version().split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", object.api_version()),
        };
        let (plural, namespaced) = object.plural()?;
        let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, object.kind()), plural);
        Ok(match (namespaced, object.namespace()) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &resource),
            _ => Api::all_with(self.client.clone(), &resource),
        })
    }

    pub async fn get(&self, object: &Object) -> Result<Option<Value>> {
        let found = self
            .api_for(object)?
            .get_opt(object.name())
            .await
            .with_context(|| format!("cannot read {}", object.id()))?;
        Ok(found.map(|o| serde_json::to_value(o).unwrap_or_default()))
    }

    /// The live state of each of `objects`: one LIST (by the `MANAGED_BY` label) for every kind
    /// that holds several of them, one GET for the others. An object missing from a LIST is looked
    /// for by name too when `unlabelled[i]` (someone else's object by that name, or ours that lost
    /// the label: applied again, which puts the label back).
    pub async fn get_all(&self, objects: &[Object], unlabelled: &[bool]) -> Result<Vec<Option<Value>>> {
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            let same =
                |g: &&mut Vec<usize>| objects[g[0]].kind() == o.kind() && objects[g[0]].namespace() == o.namespace();
            match groups.iter_mut().find(same) {
                Some(g) => g.push(i),
                None => groups.push(vec![i]),
            }
        }
        let reads = groups.iter().map(|g| self.get_group(objects, g, unlabelled));
        let found = futures::future::try_join_all(reads).await?;
        let mut live = vec![None; objects.len()];
        for (group, values) in groups.iter().zip(found) {
            for (&i, value) in group.iter().zip(values) {
                live[i] = value;
            }
        }
        Ok(live)
    }

    /// The objects of one kind in one namespace, all read at once: a GET for one alone, else one
    /// LIST, then a GET of each one missing from it that may be there without our label.
    async fn get_group(&self, objects: &[Object], group: &[usize], unlabelled: &[bool]) -> Result<Vec<Option<Value>>> {
        let first = &objects[group[0]];
        if group.len() == 1 {
            return Ok(vec![self.get(first).await?]);
        }
        let list = self
            .api_for(first)?
            .list(&ListParams::default().labels(MANAGED_BY))
            .await
            .with_context(|| format!("cannot list {}", first.plural().map(|p| p.0).unwrap_or_default()))?;
        let reads = group.iter().map(|&j| {
            let listed = list.items.iter().find(|o| o.metadata.name.as_deref() == Some(objects[j].name())).map(|o| {
                // The API server leaves apiVersion and kind out of a list's items.
                let mut v = serde_json::to_value(o).unwrap_or_default();
                v["apiVersion"] = objects[j].api_version().into();
                v["kind"] = objects[j].kind().into();
                v
            });
            async move {
                match listed {
                    Some(v) => Ok(Some(v)),
                    // Not among ours: is it there without our label (someone else's)?
                    None if unlabelled.get(j).copied().unwrap_or(true) => self.get(&objects[j]).await,
                    None => Ok(None),
                }
            }
        });
        futures::future::try_join_all(reads).await
    }

    /// A field set to null in `object` (a ClusterRole's `aggregationRule`) is first removed by a
    /// merge patch, whoever set it: server-side apply would leave another manager's field alone.
    pub async fn apply(&self, object: &Object) -> Result<()> {
        let api = self.api_for(object)?;
        let mut value = object.value.clone();
        if value.get("aggregationRule").is_some_and(|a| a.is_null()) {
            let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
            let remove = serde_json::json!({"aggregationRule": null});
            match api.patch(object.name(), &params, &Patch::Merge(&remove)).await {
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                done => drop(done.with_context(|| format!("cannot remove the aggregationRule of {}", object.id()))?),
            }
            value.as_object_mut().map(|m| m.remove("aggregationRule"));
        }
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch(object.name(), &params, &Patch::Apply(&value))
            .await
            .with_context(|| format!("cannot apply {}", object.id()))?;
        Ok(())
    }

    /// Deletes the object; `false` when it was not there.
    pub async fn delete(&self, object: &Object) -> Result<bool> {
        match self.api_for(object)?.delete(object.name(), &DeleteParams::default()).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(e).with_context(|| format!("cannot delete {}", object.id())),
        }
    }
}

pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// `kube::Error` for "not there" (404).
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// The flags that aim helm at the kube client's cluster (none without a cluster: a dry-run plan).
pub fn helm_target(cluster: Option<&Cluster>) -> Vec<String> {
    let Some(cluster) = cluster else { return Vec::new() };
    let mut args = vec!["--kubeconfig".to_string(), cluster.kubeconfig.display().to_string()];
    if let Some(c) = &cluster.context {
        args.extend(["--kube-context".to_string(), c.clone()]);
    }
    args
}
