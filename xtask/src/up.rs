//! `cargo xtask up`: namespace and RBAC from `deploy/`, the upstream chart pinned by digest, a
//! rollout check, and the NodePort URL. A second run with nothing changed changes nothing.

use crate::cluster::{root_cause, Cluster, ClusterArgs, FIELD_MANAGER};
use crate::manifests::{is_subset, rbac_objects};
use crate::reference::ImageRef;
use crate::registry::{Credentials, Registry};
use crate::shell::Shell;
use crate::state::{self, State};
use crate::values::{ServerMode, Values};
use crate::{helm, rollout};
use anyhow::{anyhow, bail, Context, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Service};
use kube::api::{Api, Patch, PatchParams};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const SERVICE_ACCOUNT: &str = "kubernetes-mcp-server";
const CHART_PIN: &str = include_str!("../../deploy/chart.yaml");

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Image to deploy, by tag or digest [default: ghcr.io/<owner>/kubernetes-mcp-server:dev-latest]
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// Owner for the default --image [default: GITHUB_REPOSITORY_OWNER, else the fork's origin owner]
    #[arg(long, value_name = "NAME")]
    pub owner: Option<String>,
    /// The fork's checkout, to work out the default owner
    #[arg(long, env = "MCP_FORK_DIR", value_name = "PATH")]
    pub fork: Option<PathBuf>,
    /// The node address the laptop reaches (its WireGuard IP) [default: the node's InternalIP]
    #[arg(long, env = "MCP_NODE_IP", value_name = "IP")]
    pub node_ip: Option<String>,
    /// Pin the Service's nodePort [default: the recorded port, else one Kubernetes allocates]
    #[arg(long, value_name = "N")]
    pub node_port: Option<u16>,
    /// The cluster's NodePort range
    #[arg(long, value_name = "MIN-MAX", default_value = "30000-32767")]
    pub nodeport_range: String,
    /// Chart reference [default: pinned in deploy/chart.yaml]
    #[arg(long, value_name = "REF")]
    pub chart: Option<String>,
    /// Chart version [default: pinned in deploy/chart.yaml]
    #[arg(long, value_name = "V")]
    pub chart_version: Option<String>,
    /// The port the server listens on (container port, probes and Service port alike)
    #[arg(long, value_name = "N", default_value_t = 8080)]
    pub port: u16,
    /// Server log level, 0-9
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=9))]
    pub log_level: u8,
    /// How long to wait for the rollout (e.g. 90s, 5m)
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub timeout: String,
    /// Expose the server's write tools too (RBAC still denies writes)
    #[arg(long)]
    pub allow_write_tools: bool,
    /// Run the server with SSE sessions instead of --stateless
    #[arg(long)]
    pub stateful: bool,
    /// Toolsets to enable (passed to --toolsets)
    #[arg(long, value_name = "LIST")]
    pub toolsets: Option<String>,
    /// After a successful rollout, run `verify` against the printed URL
    #[arg(long)]
    pub verify: bool,
    /// Print the plan (objects, helm command, values); change nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub struct ChartPin {
    pub chart: String,
    pub version: String,
}

pub fn chart_pin(chart: Option<&str>, version: Option<&str>) -> Result<ChartPin> {
    #[derive(serde::Deserialize)]
    struct Pin {
        chart: String,
        version: String,
    }
    let pin: Pin = serde_norway::from_str(CHART_PIN).context("deploy/chart.yaml is not valid")?;
    Ok(ChartPin {
        chart: chart.map_or(pin.chart, str::to_string),
        version: version.map_or(pin.version, str::to_string),
    })
}

/// The chart's fullname: the release name when it contains the chart name.
pub fn fullname(release: &str) -> String {
    if release.contains("kubernetes-mcp-server") {
        release.to_string()
    } else {
        format!("{release}-kubernetes-mcp-server")
    }
}

pub fn parse_duration(text: &str) -> Result<Duration> {
    let bad = || anyhow!("invalid duration '{text}': use e.g. 90s, 5m, 1h or 2m30s");
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().map_err(|_| bad())?;
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        number.clear();
    }
    if !number.is_empty() {
        total += number.parse::<u64>().map_err(|_| bad())?;
    }
    if total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

pub fn parse_range(text: &str) -> Result<(u16, u16)> {
    let bad = || anyhow!("invalid --nodeport-range '{text}': expected MIN-MAX such as 30000-32767");
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let (a, b): (u16, u16) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
    if a == 0 || a > b {
        return Err(bad());
    }
    Ok((a, b))
}

pub fn parse_node_ip(text: &str) -> Result<IpAddr> {
    text.trim().parse().map_err(|_| anyhow!("invalid node IP '{text}': pass an IP address, e.g. --node-ip 10.8.0.1"))
}

/// The image to deploy: `--image`, else `ghcr.io/<owner>/kubernetes-mcp-server:dev-latest`.
fn image_ref(args: &Args) -> Result<ImageRef> {
    if let Some(i) = &args.image {
        return ImageRef::parse(i);
    }
    let origin = args.fork.as_deref().and_then(|f| crate::git::Checkout::open(f).ok()).and_then(|c| c.origin_url());
    let names = crate::image::NameArgs {
        registry: "ghcr.io".into(),
        owner: args.owner.clone(),
        name: "kubernetes-mcp-server".into(),
    };
    Ok(names.resolve(origin.as_deref()).context("no --image given")?.with_tag("dev-latest"))
}

pub fn url(node_ip: &IpAddr, node_port: i32) -> String {
    match node_ip {
        IpAddr::V6(ip) => format!("http://[{ip}]:{node_port}/mcp"),
        IpAddr::V4(ip) => format!("http://{ip}:{node_port}/mcp"),
    }
}

pub fn client_config(url: &str) -> String {
    let config = serde_json::json!({"mcpServers": {"kubernetes": {"type": "http", "url": url}}});
    serde_json::to_string_pretty(&config).unwrap_or_default()
}

/// Everything `up` needs from its flags, checked before anything is contacted.
struct Inputs {
    node_ip: Option<IpAddr>,
    node_port: Option<i32>,
    timeout: Duration,
    image: ImageRef,
    chart: ChartPin,
    mode: ServerMode,
}

impl Inputs {
    fn from_args(args: &Args) -> Result<Inputs> {
        let (low, high) = parse_range(&args.nodeport_range)?;
        if let Some(p) = args.node_port {
            if p < low || p > high {
                bail!("--node-port {p} is outside the cluster's NodePort range {low}-{high}: pick a port inside it (or set --nodeport-range)");
            }
        }
        if args.port == 0 {
            bail!("invalid --port 0: pass the port the server listens on, e.g. 8080");
        }
        Ok(Inputs {
            node_ip: args.node_ip.as_deref().map(parse_node_ip).transpose()?,
            node_port: args.node_port.map(i32::from),
            timeout: parse_duration(&args.timeout)?,
            image: image_ref(args)?,
            chart: chart_pin(args.chart.as_deref(), args.chart_version.as_deref())?,
            mode: ServerMode {
                port: args.port,
                log_level: args.log_level,
                read_only: !args.allow_write_tools,
                stateless: !args.stateful,
                toolsets: args.toolsets.clone(),
            },
        })
    }
}

pub async fn run(args: Args) -> Result<()> {
    let sh = Shell::new(args.dry_run)?;
    let input = Inputs::from_args(&args)?;
    if args.allow_write_tools {
        eprintln!("warning: --allow-write-tools: the server offers tools that create, change and delete resources (pods_exec, resources_delete, ...); only the read-only RBAC now stands between the agent and writes");
    }
    if args.stateful {
        eprintln!("warning: --stateful: the server keeps SSE streams; over WireGuard idle links a client may get 409 Conflict on reconnect: set PersistentKeepalive = 25 on the laptop peer");
    }
    let cluster = match Cluster::reach(&args.cluster).await {
        Ok(c) => Some(c),
        Err(e) if args.dry_run => {
            println!("no reachable cluster ({e:#}): showing the plan for an empty cluster");
            None
        }
        Err(e) => return Err(e),
    };
    if !args.dry_run {
        helm::preflight()?;
    }
    let pinned = pin_digest(&input.image, args.dry_run).await?;
    let values = Values::new(&pinned, SERVICE_ACCOUNT, &input.mode).render()?;
    let desired_hash = deploy_hash(&input.chart, &values);
    let (ns, release) = (&args.cluster.namespace, &args.cluster.release);
    let name = fullname(release);

    let mut changes = ensure_rbac(&sh, cluster.as_ref(), ns).await?;
    let (recorded, deployment) = match &cluster {
        Some(c) => (
            state::read(c, ns, release).await?,
            Api::<Deployment>::namespaced(c.client.clone(), ns).get_opt(&name).await?,
        ),
        None => (State::default(), None),
    };
    let helm_needed = recorded.deployed_sha256.as_deref() != Some(desired_hash.as_str()) || deployment.is_none();
    if helm_needed {
        run_helm(&sh, cluster.as_ref(), &args.cluster, &input.chart, &values)?;
        changes.push(format!("helm release {release} upgraded to {pinned}"));
    } else {
        eprintln!(
            "release {release} is up to date (chart {} {}, {pinned}): helm skipped",
            input.chart.chart, input.chart.version
        );
    }
    let wanted_port = input.node_port.or(recorded.node_port);
    let Some(cluster) = cluster.filter(|_| !sh.dry_run) else {
        match wanted_port {
            Some(p) => {
                println!("would set the Service's nodePort to {p} and record it in configmap/{}", state::name(release))
            }
            None => println!("would record the nodePort Kubernetes allocates in configmap/{}", state::name(release)),
        }
        println!(
            "would wait up to {}s for deployment/{name}, then print http://<node-ip>:<nodePort>/mcp",
            input.timeout.as_secs()
        );
        return Ok(());
    };

    if helm_needed || !deployment.as_ref().is_some_and(rollout::is_complete) {
        rollout::wait(&cluster, ns, &name, input.timeout).await?;
    }
    let node_port = ensure_node_port(&cluster, ns, &name, wanted_port, &mut changes).await?;
    let next = State { node_port: Some(node_port), deployed_sha256: Some(desired_hash) };
    if next != recorded {
        state::write(&cluster, ns, release, &next).await?;
        if recorded.node_port != Some(node_port) {
            changes.push(format!("nodePort {node_port} recorded"));
        }
    }

    let node_ip = match input.node_ip {
        Some(ip) => ip,
        None => internal_ip(&cluster).await?,
    };
    let url = url(&node_ip, node_port);
    if changes.is_empty() {
        println!("up to date: nothing changed (release {release}, {pinned})");
    } else {
        println!("deployed {pinned} as release {release} in {ns}");
        println!("changed: {}", changes.join(", "));
    }
    println!("mode: {}", input.mode.describe());
    println!("MCP URL: {url}");
    println!("MCP client configuration:\n{}", client_config(&url));
    if args.verify {
        let report = crate::verify::verify(&url, Ok(&cluster), &args.cluster).await;
        crate::verify::print(&report, false);
        if !report.passed {
            let failed = report.checks.iter().filter(|c| !c.passed).count();
            bail!("deployed, but verify failed: {failed} of {} checks", report.checks.len());
        }
    }
    Ok(())
}

/// The image by digest, resolved through the registry (a dry run goes on with the tag).
async fn pin_digest(image: &ImageRef, dry_run: bool) -> Result<ImageRef> {
    let owner = image.repository.split('/').next().unwrap_or_default();
    let registry = Registry::new(&image.registry, Credentials::from_env(owner).as_ref());
    match registry.resolve_digest(image).await {
        Ok(digest) => Ok(image.with_digest(&digest)),
        Err(e) if dry_run => {
            println!("cannot resolve {image} to a digest ({e:#}): the plan shows the tag");
            Ok(image.clone())
        }
        Err(e) => Err(e),
    }
}

/// Applies what differs from `deploy/rbac.yaml` (prints it under `--dry-run`); the changes made.
async fn ensure_rbac(sh: &Shell, cluster: Option<&Cluster>, namespace: &str) -> Result<Vec<String>> {
    let objects = rbac_objects(namespace)?;
    let live = match cluster {
        Some(c) => c.get_all(&objects).await?,
        None => vec![None; objects.len()],
    };
    let mut changes = Vec::new();
    for (object, live) in objects.iter().zip(live) {
        let action = match &live {
            None => "create",
            Some(l) if !is_subset(&object.value, l) => "update",
            Some(_) => continue,
        };
        if sh.dry_run {
            println!("would {action} {} (server-side apply, field manager {FIELD_MANAGER}):", object.id());
            println!("{}", indent(&serde_norway::to_string(&object.value)?));
        } else if let Some(c) = cluster {
            c.apply(object).await?;
            eprintln!("{action}d {}", object.id());
        }
        changes.push(format!("{action}d {}", object.id()));
    }
    Ok(changes)
}

/// `helm upgrade --install` with the values in a temporary file (printed under `--dry-run`).
fn run_helm(sh: &Shell, cluster: Option<&Cluster>, args: &ClusterArgs, chart: &ChartPin, values: &str) -> Result<()> {
    let path = std::env::temp_dir().join(format!("kmcp-values-{}.yaml", std::process::id()));
    if sh.dry_run {
        println!("values ({}):\n{}", path.display(), indent(values));
    }
    std::fs::write(&path, values).context("cannot write the values file")?;
    let target = helm::target(cluster);
    let result =
        helm::upgrade_install(sh, &target, &args.release, &chart.chart, &chart.version, &args.namespace, &path);
    let _ = std::fs::remove_file(&path);
    result
}

/// The Service's nodePort, put back on `wanted` (the recorded one or `--node-port`) if it differs.
async fn ensure_node_port(
    cluster: &Cluster,
    ns: &str,
    name: &str,
    wanted: Option<i32>,
    changes: &mut Vec<String>,
) -> Result<i32> {
    let services: Api<Service> = Api::namespaced(cluster.client.clone(), ns);
    let service =
        services.get_opt(name).await?.ok_or_else(|| anyhow!("service {ns}/{name} does not exist after helm ran"))?;
    let current = current_node_port(&service)?;
    match wanted {
        Some(want) if want != current => {
            set_node_port(&services, &service, want).await?;
            changes.push(format!("nodePort set to {want}"));
            Ok(want)
        }
        _ => Ok(current),
    }
}

fn deploy_hash(chart: &ChartPin, values: &str) -> String {
    let mut h = Sha256::new();
    for part in [chart.chart.as_str(), chart.version.as_str(), values] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    crate::git::hex(&h.finalize())
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

pub fn current_node_port(service: &Service) -> Result<i32> {
    service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .and_then(|p| p.first())
        .and_then(|p| p.node_port)
        .ok_or_else(|| anyhow!("the Service has no nodePort: is its type NodePort?"))
}

async fn set_node_port(services: &Api<Service>, service: &Service, port: i32) -> Result<()> {
    let mut ports = service.spec.as_ref().and_then(|s| s.ports.clone()).unwrap_or_default();
    if let Some(first) = ports.first_mut() {
        first.node_port = Some(port);
    }
    let patch = serde_json::json!({"spec": {"ports": ports}});
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    let name = service.metadata.name.clone().unwrap_or_default();
    match services.patch(&name, &params, &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 422 => {
            bail!("nodePort {port} is not available ({}): pick another with --node-port, or forget the recorded one with `cargo xtask down`", s.message)
        }
        Err(e) => Err(anyhow!("cannot set the nodePort of service {name}: {}", root_cause(&e))),
    }
}

pub async fn internal_ip(cluster: &Cluster) -> Result<IpAddr> {
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let list = nodes.list(&Default::default()).await?;
    for node in &list.items {
        let addresses = node.status.as_ref().and_then(|s| s.addresses.clone()).unwrap_or_default();
        if let Some(a) = addresses.iter().find(|a| a.type_ == "InternalIP") {
            let ip = parse_node_ip(&a.address)?;
            eprintln!(
                "warning: using node {}'s InternalIP {ip}; the address the laptop reaches over WireGuard is usually another one: pass --node-ip or set MCP_NODE_IP",
                node.metadata.name.as_deref().unwrap_or("?")
            );
            return Ok(ip);
        }
    }
    bail!("no node reports an InternalIP: pass --node-ip (the node's WireGuard address)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("2m30s").unwrap(), Duration::from_secs(150));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        for bad in ["", "5x", "m", "0s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_and_ips() {
        assert_eq!(parse_range("30000-32767").unwrap(), (30000, 32767));
        assert!(parse_range("32767-30000").is_err());
        assert!(parse_range("abc").is_err());
        assert!(parse_node_ip("10.8.0.1").is_ok());
        assert!(parse_node_ip("fd00::1").is_ok());
        assert_eq!(
            parse_node_ip("10.8.0").unwrap_err().to_string(),
            "invalid node IP '10.8.0': pass an IP address, e.g. --node-ip 10.8.0.1"
        );
    }

    #[test]
    fn urls_and_names() {
        assert_eq!(url(&"10.8.0.1".parse().unwrap(), 31234), "http://10.8.0.1:31234/mcp");
        assert_eq!(url(&"fd00::1".parse().unwrap(), 31234), "http://[fd00::1]:31234/mcp");
        assert_eq!(fullname("kubernetes-mcp-server"), "kubernetes-mcp-server");
        assert_eq!(fullname("mcp"), "mcp-kubernetes-mcp-server");
        let cfg: serde_json::Value = serde_json::from_str(&client_config("http://x/mcp")).unwrap();
        assert_eq!(cfg["mcpServers"]["kubernetes"]["url"], "http://x/mcp");
    }
}
