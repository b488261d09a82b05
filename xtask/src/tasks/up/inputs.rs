//! `up`'s inputs: its flags, and what they give once checked together, before anything is contacted.

use crate::cluster::allow_from::{self, AllowFrom};
use crate::cluster::client::ClusterArgs;
use crate::common::flags::{self, PortRange};
use crate::oci::chart;
use crate::oci::reference::ImageRef;
use crate::plan::data::DryRun;
use crate::server::mode::ServerMode;
use anyhow::{bail, Context, Result};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
    /// Image to deploy, by tag or digest [default: <registry>/<owner>/kubernetes-mcp-server:dev-latest]
    #[arg(long, value_name = "REF")]
    pub(crate) image: Option<String>,
    /// Where the default --image is (where `cargo xtask image` pushed)
    #[command(flatten)]
    pub(crate) image_name: crate::oci::reference::ImageNameArgs,
    /// The fork's checkout, to work out the default owner
    #[arg(long, env = "MCP_FORK_DIR", value_name = "PATH")]
    pub(crate) fork: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) node: crate::cluster::address::NodeArgs,
    /// On a cluster of several nodes, the node to run the server on, when --node-ip is an address
    /// Kubernetes does not list for it (a WireGuard address) [default: the node listing --node-ip]
    #[arg(long = "node", env = "MCP_NODE", value_name = "NAME")]
    pub(crate) on_node: Option<String>,
    /// The networks that may connect (a NetworkPolicy; the Service keeps the client's address)
    /// [default: the network of the local interface that holds --node-ip]
    #[arg(long, env = "MCP_ALLOW_FROM", value_name = "CIDR[,CIDR...]", value_parser = allow_from::parse)]
    pub(crate) allow_from: Option<AllowFrom>,
    /// Pin the Service's nodePort [default: the recorded port, else one Kubernetes allocates]
    #[arg(long, value_name = "N")]
    pub(crate) node_port: Option<u16>,
    /// The cluster's NodePort range
    #[arg(long, value_name = "MIN-MAX", default_value = "30000-32767", value_parser = flags::port_range)]
    pub(crate) nodeport_range: PortRange,
    /// Chart reference [default: the fork's chart that `image` pushed beside the image (named in
    /// its index); else the chart pinned in deploy/chart.yaml]
    #[arg(long, value_name = "REF")]
    pub(crate) chart: Option<String>,
    /// Chart version, with --chart [default: the fork's chart's, or the one pinned in
    /// deploy/chart.yaml]
    #[arg(long, value_name = "V")]
    pub(crate) chart_version: Option<String>,
    /// Accept this digest of the OCI chart's manifest (after reviewing the content it names)
    #[arg(long, env = "KMCP_CHART_DIGEST", value_name = "sha256:...")]
    pub(crate) chart_digest: Option<String>,
    /// The port the server listens on (container port, probes and Service port alike)
    #[arg(long, value_name = "N", default_value_t = 8080, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) port: u16,
    /// Server log level, 0-9
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=9))]
    pub(crate) log_level: u8,
    /// How long to wait for the rollout (e.g. 90s, 5m)
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = flags::duration)]
    pub(crate) timeout: Duration,
    /// Expose the server's write tools too (RBAC still denies writes)
    #[arg(long)]
    pub(crate) allow_write_tools: bool,
    /// Run the server with SSE sessions instead of --stateless
    #[arg(long)]
    pub(crate) stateful: bool,
    /// Toolsets to enable (passed to --toolsets): config, core, helm, kcp, kiali, kubevirt, netobserv, tekton
    #[arg(long, value_name = "LIST", value_parser = crate::server::mode::toolsets)]
    pub(crate) toolsets: Option<String>,
    /// Offer a tool that is disabled by default because it hands out a credential (repeatable):
    /// configuration_view returns the server's kubeconfig with its ServiceAccount token
    #[arg(long = "enable-tool", value_name = "NAME", value_parser = crate::server::credential_tools::credential_tool)]
    pub(crate) enable_tools: Vec<String>,
    /// A name the laptop reaches the node by (repeatable): the guard in front of the server passes
    /// on requests whose Host is --node-ip or one of these (and whose Origin, if any, matches)
    #[arg(long = "host", value_name = "NAME", value_parser = crate::server::guard::host_name)]
    pub(crate) hosts: Vec<String>,
    /// Deploy without the Host/Origin guard (for an image not built by `cargo xtask image`): a web
    /// page the laptop's browser opens can then rebind its name to the URL and call the tools
    #[arg(long, conflicts_with = "hosts")]
    pub(crate) no_guard: bool,
    /// Let the node pull a private image: a pull secret `<release>-pull` from the credentials up
    /// uses for the image's registry (GHCR_TOKEN for ghcr.io, else the Docker config)
    #[arg(long)]
    pub(crate) pull_secret: bool,
    /// Take over existing objects (and a release) that carry no deployment's mark
    #[arg(long)]
    pub(crate) adopt: bool,
    /// Also take over the objects another deployment's mark names (that deployment's next `down`
    /// leaves them); implies --adopt
    #[arg(long, value_name = "NAMESPACE/RELEASE", value_parser = adopt_from)]
    pub(crate) adopt_from: Option<String>,
    /// Fail at once, instead of waiting, when another `up` or `down` holds the lock
    #[arg(long)]
    pub(crate) no_wait: bool,
    /// After a successful rollout, run `verify` against the printed URL
    #[arg(long)]
    pub(crate) verify: bool,
    #[command(flatten)]
    pub(crate) client: crate::common::clients::ClientArgs,
    /// Set by `dev`: the cluster is its local environment's (no advice on its kube-proxy)
    #[arg(long, hide = true)]
    pub(crate) local_environment: bool,
    #[command(flatten)]
    pub dry_run: DryRun,
}

/// Everything `up` needs from its flags, checked before anything is contacted (the checks that
/// span several flags; clap parsed each value).
pub(super) struct Inputs {
    pub(super) node_port: Option<i32>,
    pub(super) allow_from: AllowFrom,
    pub(super) pull_secret: bool,
    pub(super) release: String,
    pub(super) image: ImageRef,
    pub(super) chart: chart::Source,
    /// No chart flag and no digest in `deploy/chart.yaml`: the chart is the one the image's index
    /// names (the fork's own, pushed by `image`), when it names one.
    pub(super) chart_from_image: bool,
    pub(super) mode: ServerMode,
    /// Whether the server gets its guard, and the names it passes besides --node-ip.
    pub(super) guard: bool,
    pub(super) node_ip: Option<IpAddr>,
    pub(super) hosts: Vec<String>,
}

impl Inputs {
    pub(super) fn from_args(args: &Args) -> Result<Inputs> {
        if let Some(p) = args.node_port {
            let range = args.nodeport_range;
            if !range.contains(p) {
                bail!("--node-port {p} is outside the cluster's NodePort range {range}: pick a port inside it (or set --nodeport-range)");
            }
        }
        args.cluster.check()?;
        Ok(Inputs {
            node_port: args.node_port.map(i32::from),
            allow_from: allow_from::resolve(args.allow_from.as_ref(), args.node.node_ip)?,
            pull_secret: args.pull_secret,
            release: args.cluster.release.clone(),
            image: image_ref(args)?,
            chart: chart::source(
                args.chart.as_deref(),
                args.chart_version.as_deref(),
                args.chart_digest.as_deref().filter(|d| !d.is_empty()),
            )?,
            chart_from_image: args.chart.is_none()
                && args.chart_version.is_none()
                && args.chart_digest.as_deref().is_none_or(str::is_empty)
                && !chart::pin_has_digest(),
            mode: ServerMode {
                port: args.port,
                log_level: args.log_level,
                read_only: !args.allow_write_tools,
                stateless: !args.stateful,
                toolsets: args.toolsets.clone(),
                disabled_tools: crate::server::credential_tools::disabled_tools(&args.enable_tools),
            },
            guard: !args.no_guard,
            node_ip: args.node.node_ip,
            hosts: args.hosts.clone(),
        })
    }
}

/// The image to deploy: `--image`, else `<registry>/<owner>/kubernetes-mcp-server:dev-latest`.
fn image_ref(args: &Args) -> Result<ImageRef> {
    if let Some(i) = &args.image {
        return ImageRef::parse(i);
    }
    let origin =
        args.fork.as_deref().and_then(|f| crate::programs::git::Checkout::open(f).ok()).and_then(|c| c.origin_url());
    let image = args.image_name.resolve(origin.as_deref());
    Ok(image.context("no --image given")?.with_tag("dev-latest"))
}

pub(super) fn warn_about_mode(args: &Args) {
    if args.allow_write_tools {
        eprintln!("warning: --allow-write-tools: the server offers tools that create, change and delete resources (pods_exec, resources_delete, ...); only the read-only RBAC now stands between the agent and writes");
    }
    if crate::common::flags::runs_toolset(args.toolsets.as_deref(), "helm") {
        eprintln!("warning: --toolsets includes helm: Helm keeps its releases in Secrets, so the server's ServiceAccount can then read every Secret in the cluster (ClusterRole helm-readonly), and so can whoever reaches the URL");
    }
    for tool in &args.enable_tools {
        eprintln!("warning: --enable-tool {tool}: whoever reaches the URL gets the server's kubeconfig with its ServiceAccount token, and can use the API server directly with the pod's rights, outside the server's denied_resources and its log");
    }
    if args.no_guard {
        eprintln!("warning: --no-guard: the server answers any Host and Origin, so a web page the laptop's browser opens can rebind its own name to the URL and call the tools (DNS rebinding); see docs/security.md");
    }
    if args.stateful {
        eprintln!("warning: --stateful: the server keeps SSE streams; over WireGuard idle links a client may get 409 Conflict on reconnect: set PersistentKeepalive = 25 on the laptop peer");
    }
}

/// `--adopt-from`: a deployment as its mark names it, `<namespace>/<release>`.
fn adopt_from(text: &str) -> anyhow::Result<String> {
    match text.split_once('/') {
        Some((ns, release)) if !ns.is_empty() && !release.is_empty() && !release.contains('/') => Ok(text.to_string()),
        _ => anyhow::bail!(
            "invalid --adopt-from '{text}': expected NAMESPACE/RELEASE, the deployment whose objects to take"
        ),
    }
}
