//! `cargo xtask status`: one screen on the deployment.

use crate::cluster::client::ClusterArgs;
use crate::programs::shell::Shell;
use crate::{cluster::address, cluster::state_configmap, oci::chart, server::deployed, server::guard};
use anyhow::Result;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
    #[command(flatten)]
    pub(crate) node: crate::cluster::address::NodeArgs,
    #[command(flatten)]
    pub(crate) client: crate::common::clients::ClientArgs,
    /// Status changes nothing; as for `up` and `down`, a dry run takes an unreachable cluster for an empty one
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(sh: &Shell, args: Args) -> Result<()> {
    let node_ip = args.node.node_ip;
    args.cluster.check()?;
    let mut notes = Vec::new();
    let Some(cluster) = sh.unless_dry_run(crate::cluster::client::Cluster::reach(&args.cluster).await, &mut notes)?
    else {
        println!("{}: on an empty cluster, release {} is not installed", notes.join("; "), args.cluster.release);
        return Ok(());
    };
    let (ns, release) = (&args.cluster.namespace, &args.cluster.release);
    let name = chart::fullname(release);
    match crate::cluster::helm_history::status(sh, &cluster, ns, release).await? {
        Some(r) => {
            let chart =
                r.chart.map(|c| format!(", chart {} {}", c.metadata.name, c.metadata.version)).unwrap_or_default();
            println!("release:  {release} in {ns}, revision {} ({}{chart})", r.version, r.info.status);
        }
        None => {
            println!("release:  {release} is not installed in {ns}: run `cargo xtask up`");
            return Ok(());
        }
    }
    let deployment = Api::<Deployment>::namespaced(cluster.client.clone(), ns).get_opt(&name).await?;
    let container =
        deployment.as_ref().and_then(|d| d.spec.as_ref()?.template.spec.as_ref()?.containers.first().cloned());
    if let Some(c) = &container {
        println!("image:    {}", c.image.as_deref().unwrap_or("?"));
        println!(
            "mode:     {} (live: container args over config.toml)",
            deployed::read(&cluster, ns, &name).await?.mode().describe()
        );
        let containers = deployment.as_ref().and_then(|d| d.spec.as_ref()?.template.spec.as_ref().cloned());
        let guard = containers.iter().flat_map(|s| s.containers.iter()).find(|c| c.name == guard::CONTAINER);
        match guard.and_then(|g| g.args.as_ref()?.iter().find_map(|a| a.strip_prefix("--allow-host="))) {
            Some(hosts) => println!("guard:    only requests to {hosts} (and loopback) pass"),
            None => println!("guard:    none: the server answers any Host and Origin (up --no-guard)"),
        }
    }
    let pods = Api::<Pod>::namespaced(cluster.client.clone(), ns)
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={release}")))
        .await?;
    let ready = pods.items.iter().filter(|p| is_ready(p)).count();
    println!("pods:     {ready}/{} ready", pods.items.len());
    for p in &pods.items {
        let restarts: i32 = p
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .map_or(0, |c| c.iter().map(|c| c.restart_count).sum());
        let phase = p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .map_or(" (no node yet)".into(), |n| format!(" on {n}"));
        println!("          {} {phase}{node}, {} restarts", p.metadata.name.as_deref().unwrap_or("?"), restarts);
    }
    let recorded = state_configmap::read(&cluster, ns, release).await?;
    if let Some(d) = &recorded.chart_digest {
        println!("chart:    {d}");
    }
    if let Some(service) = Api::<Service>::namespaced(cluster.client.clone(), ns).get_opt(&name).await? {
        let port = address::current_node_port(&service)?;
        let note = if recorded.node_port == Some(port) { " (recorded)" } else { "" };
        println!("nodePort: {port}{note}");
        let policy = service.spec.as_ref().and_then(|s| s.external_traffic_policy.clone()).unwrap_or_default();
        println!(
            "allowed:  {} (externalTrafficPolicy {policy})",
            crate::server::proof_door::admitted(&cluster, &args.cluster).await
        );
        if node_ip.is_some() {
            let url = address::deployment_url(None, node_ip, port).await?;
            println!("MCP URL:  {url}");
            println!("{}", crate::common::clients::setup(&url, args.client.client));
        } else {
            println!("MCP URL:  http://<node-ip>:{port}/mcp (pass --node-ip for the full URL)");
        }
    }
    Ok(())
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
