//! `cargo xtask down`: uninstall the release and delete what `up` created for this instance, and
//! nothing else. Safe on an empty cluster; the namespace goes only with `--delete-namespace`, only
//! when `up` created it, and not while it holds objects that are not the instance's (unless
//! `--force`).

use crate::cluster::{Cluster, ClusterArgs};
use crate::manifests::{instance, owner, rbac_objects, Owner};
use crate::shell::Shell;
use crate::{helm, lock, state};
use anyhow::{bail, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use std::time::{Duration, Instant};

/// Namespaces Kubernetes itself keeps: never deleted.
const PROTECTED: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Delete the namespace too (only one `up` created), and wait until it is gone
    #[arg(long, conflicts_with = "keep_port")]
    pub delete_namespace: bool,
    /// With --delete-namespace: delete it even though it holds objects that are not this deployment's
    #[arg(long, requires = "delete_namespace")]
    pub force: bool,
    /// Keep the recorded nodePort, so the next `up` serves on the same URL
    #[arg(long)]
    pub keep_port: bool,
    /// Fail at once, instead of waiting, when another `up` or `down` holds the lock
    #[arg(long)]
    pub no_wait: bool,
    /// Print what would be deleted; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(args: Args) -> Result<()> {
    args.cluster.check()?;
    let sh = Shell::new(args.dry_run)?;
    let (ns, release) = (&args.cluster.namespace, &args.cluster.release);
    if args.delete_namespace && PROTECTED.contains(&ns.as_str()) {
        bail!("--delete-namespace refuses namespace {ns}: Kubernetes keeps it; run without --delete-namespace");
    }
    let cluster = match Cluster::reach(&args.cluster).await {
        Ok(c) => c,
        Err(e) if args.dry_run => {
            println!("no reachable cluster ({e:#}): on an empty cluster `down` has nothing to do");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if !args.dry_run {
        helm::preflight(&sh)?;
    }
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    let Some(namespace) = namespaces.get_opt(ns).await? else {
        println!("nothing to do: namespace {ns} does not exist");
        return Ok(());
    };
    let me = instance(ns, release);
    let ours = owner(&serde_json::to_value(&namespace)?, &me) == Owner::Us;
    let foreign = if args.delete_namespace { foreign_objects(&cluster, ns, release).await? } else { Vec::new() };
    if args.delete_namespace {
        if !ours {
            let holds = if foreign.is_empty() { String::new() } else { format!(" and holds {}", foreign.join(", ")) };
            bail!("--delete-namespace refuses namespace {ns}: it existed before `cargo xtask up` ({me} did not create it){holds}; run without --delete-namespace (the release and its objects still go)");
        }
        if !foreign.is_empty() && !args.force {
            bail!(
                "--delete-namespace refuses namespace {ns}: it holds objects that are not this deployment's: {}; move them, or pass --force to delete them with it",
                foreign.join(", ")
            );
        }
    }
    let lock = if args.dry_run {
        None
    } else {
        Some(lock::acquire(&cluster, ns, release, "cargo xtask down", args.no_wait, Duration::from_secs(300)).await?)
    };
    let result = remove(&sh, &args, &cluster, &namespaces, ours, &foreign).await;
    if let Some(l) = lock {
        if !args.delete_namespace || result.is_err() {
            l.release().await;
        }
    }
    result
}

async fn remove(
    sh: &Shell,
    args: &Args,
    cluster: &Cluster,
    namespaces: &Api<Namespace>,
    ours: bool,
    foreign: &[String],
) -> Result<()> {
    let (ns, release) = (&args.cluster.namespace, &args.cluster.release);
    let me = instance(ns, release);
    let mut removed: Vec<String> = Vec::new();
    let verb = if args.dry_run { "would delete" } else { "deleted" };

    let recorded = state::read(cluster, ns, release).await?;
    let installed = helm::status(sh, cluster, release, ns)?.is_some();
    match (installed, recorded.owned) {
        (true, true) => {
            helm::uninstall(sh, cluster, release, ns)?;
            removed.push(format!("helm release {release}"));
        }
        (true, false) => {
            eprintln!("helm release {release} in {ns} was not installed by `cargo xtask up` (no record): left alone")
        }
        (false, _) => eprintln!("helm release {release} is not installed in {ns}"),
    }

    for object in rbac_objects(ns, release)?.iter().rev() {
        if object.kind() == "Namespace" {
            continue;
        }
        let Some(live) = cluster.get(object).await? else { continue };
        match owner(&live, &me) {
            Owner::Us => {
                if !args.dry_run {
                    cluster.delete(object).await?;
                }
                eprintln!("{verb} {}", object.id());
                removed.push(object.id());
            }
            Owner::Nobody => eprintln!("{} is not this deployment's (no mark): left alone", object.id()),
            Owner::Other(other) => eprintln!("{} belongs to {other}: left alone", object.id()),
        }
    }

    if args.keep_port {
        if recorded.deployed_sha256.is_some() {
            if !args.dry_run {
                state::keep_port_only(cluster, ns, release).await?;
            }
            removed.push("the deployment record (nodePort kept)".into());
        }
        if let Some(p) = recorded.node_port {
            eprintln!("keeping the recorded nodePort {p} for the next `up`");
        }
    } else if recorded.owned && (args.dry_run || state::forget(cluster, ns, release).await?) {
        eprintln!("{verb} configmap/{} (the recorded nodePort)", state::name(release));
        removed.push(format!("configmap/{}", state::name(release)));
    }

    if args.delete_namespace && ours {
        if args.dry_run {
            println!("would delete namespace/{ns} and wait until it is gone, and with it everything it holds");
            for f in foreign {
                println!("  would delete with it: {f}");
            }
        } else {
            delete_namespace(namespaces, ns).await?;
        }
        removed.push(format!("namespace/{ns}"));
    }

    if removed.is_empty() {
        println!("nothing to do: release {release} and its objects are not in the cluster");
    } else if args.dry_run {
        println!("would remove: {}", removed.join(", "));
    } else {
        println!("removed: {}", removed.join(", "));
    }
    Ok(())
}

/// The kinds a namespace's user objects are looked for in before it is deleted.
const KINDS: [(&str, &str, &str, &str); 13] = [
    ("", "v1", "ConfigMap", "configmaps"),
    ("", "v1", "Secret", "secrets"),
    ("", "v1", "ServiceAccount", "serviceaccounts"),
    ("", "v1", "Service", "services"),
    ("", "v1", "Pod", "pods"),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    ("apps", "v1", "Deployment", "deployments"),
    ("apps", "v1", "StatefulSet", "statefulsets"),
    ("apps", "v1", "DaemonSet", "daemonsets"),
    ("batch", "v1", "Job", "jobs"),
    ("batch", "v1", "CronJob", "cronjobs"),
    ("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
];

/// Objects in the namespace that are neither this instance's, nor its release's, nor what
/// Kubernetes puts in every namespace: `kind/name` for each.
async fn foreign_objects(cluster: &Cluster, ns: &str, release: &str) -> Result<Vec<String>> {
    let me = instance(ns, release);
    let mut out = Vec::new();
    for (group, version, kind, plural) in KINDS {
        let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        let api: Api<DynamicObject> = Api::namespaced_with(cluster.client.clone(), ns, &resource);
        for o in api.list(&ListParams::default()).await?.items {
            let name = o.metadata.name.clone().unwrap_or_default();
            let labels = o.metadata.labels.clone().unwrap_or_default();
            let value = serde_json::to_value(&o)?;
            let is_ours = owner(&value, &me) == Owner::Us
                || labels.get("app.kubernetes.io/instance").map(String::as_str) == Some(release)
                || (kind == "Secret" && name.starts_with(&format!("sh.helm.release.v1.{release}.v")))
                || (kind == "ConfigMap" && name == "kube-root-ca.crt")
                || (kind == "ServiceAccount" && name == "default")
                || (kind == "Pod" && o.metadata.owner_references.as_ref().is_some_and(|r| !r.is_empty()));
            if !is_ours {
                out.push(format!("{}/{name}", kind.to_lowercase()));
            }
        }
    }
    Ok(out)
}

async fn delete_namespace(namespaces: &Api<Namespace>, ns: &str) -> Result<()> {
    namespaces.delete(ns, &Default::default()).await?;
    eprintln!("deleting namespace/{ns}: waiting until it is gone");
    let start = Instant::now();
    while namespaces.get_opt(ns).await?.is_some() {
        if start.elapsed() > Duration::from_secs(300) {
            bail!("namespace {ns} is still terminating after 5 minutes: look for finalizers with `kubectl get namespace {ns} -o yaml`");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("deleted namespace/{ns}");
    Ok(())
}
