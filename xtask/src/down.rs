//! `cargo xtask down`: uninstall the release and delete what `up` applied. Safe on an empty
//! cluster; the namespace goes only with `--delete-namespace`.

use crate::cluster::{Cluster, ClusterArgs};
use crate::manifests::rbac_objects;
use crate::shell::Shell;
use crate::{helm, state};
use anyhow::{bail, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Delete the namespace too, and wait until it is gone
    #[arg(long, conflicts_with = "keep_port")]
    pub delete_namespace: bool,
    /// Keep the recorded nodePort, so the next `up` serves on the same URL
    #[arg(long)]
    pub keep_port: bool,
    /// Print what would be deleted; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(args: Args) -> Result<()> {
    let sh = Shell::new(args.dry_run)?;
    let ns = &args.cluster.namespace;
    let release = &args.cluster.release;
    let cluster = match Cluster::reach(&args.cluster).await {
        Ok(c) => c,
        Err(e) if args.dry_run => {
            println!("no reachable cluster ({e:#}): on an empty cluster `down` has nothing to do");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if !args.dry_run {
        helm::preflight()?;
    }
    let mut removed: Vec<String> = Vec::new();
    let verb = if args.dry_run { "would delete" } else { "deleted" };

    if helm::status(&sh, &cluster, release, ns)?.is_some() {
        helm::uninstall(&sh, &cluster, release, ns)?;
        removed.push(format!("helm release {release}"));
    } else {
        eprintln!("helm release {release} is not installed in {ns}");
    }

    for object in rbac_objects(ns)?.iter().rev() {
        if object.kind() == "Namespace" {
            continue;
        }
        let gone = if args.dry_run { cluster.get(object).await?.is_some() } else { cluster.delete(object).await? };
        if gone {
            eprintln!("{verb} {}", object.id());
            removed.push(object.id());
        }
    }

    let recorded = state::read(&cluster, ns, release).await?;
    if args.keep_port {
        if recorded.deployed_sha256.is_some() {
            if !args.dry_run {
                state::keep_port_only(&cluster, ns, release).await?;
            }
            removed.push("the deployment record (nodePort kept)".into());
        }
        if let Some(p) = recorded.node_port {
            eprintln!("keeping the recorded nodePort {p} for the next `up`");
        }
    } else if recorded != state::State::default() && (args.dry_run || state::forget(&cluster, ns, release).await?) {
        eprintln!("{verb} configmap/{} (the recorded nodePort)", state::name(release));
        removed.push(format!("configmap/{}", state::name(release)));
    }

    if args.delete_namespace {
        let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
        if namespaces.get_opt(ns).await?.is_some() {
            if args.dry_run {
                println!("would delete namespace/{ns} and wait until it is gone");
            } else {
                delete_namespace(&cluster, &namespaces, ns).await?;
            }
            removed.push(format!("namespace/{ns}"));
        }
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

async fn delete_namespace(cluster: &Cluster, namespaces: &Api<Namespace>, ns: &str) -> Result<()> {
    let object =
        rbac_objects(ns)?.into_iter().find(|o| o.kind() == "Namespace").expect("deploy/rbac.yaml has the namespace");
    cluster.delete(&object).await?;
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
