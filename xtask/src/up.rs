//! `cargo xtask up`: namespace and RBAC from `deploy/`, the chart pinned by the digest of its
//! content, a rollout check, the mode the server really runs with, and the NodePort URL. A second
//! run with nothing changed changes nothing.

use crate::address::{self, client_config, current_node_port, parse_node_ip};
use crate::chart::{self, Chart};
use crate::cluster::{root_cause, Cluster, ClusterArgs, FIELD_MANAGER};
use crate::manifests::{instance, is_subset, owner, rbac_objects, Object, Owner, INSTANCE_ANNOTATION, SERVICE_ACCOUNT};
use crate::reference::ImageRef;
use crate::registry::{Credentials, Registry};
use crate::shell::Shell;
use crate::state::{self, State};
use crate::values::{ServerMode, Values};
use crate::{deployed, helm, lock, rollout};
use anyhow::{anyhow, bail, Context, Result};
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, Patch, PatchParams};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Accept this digest of the OCI chart's manifest (after reviewing the content it names)
    #[arg(long, env = "KMCP_CHART_DIGEST", value_name = "sha256:...")]
    pub chart_digest: Option<String>,
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
    /// Take over existing RBAC objects that this deployment did not create
    #[arg(long)]
    pub adopt: bool,
    /// Fail at once, instead of waiting, when another `up` or `down` holds the lock
    #[arg(long)]
    pub no_wait: bool,
    /// After a successful rollout, run `verify` against the printed URL
    #[arg(long)]
    pub verify: bool,
    /// Print the plan (objects, helm command, values); change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// Durations longer than a day are refused.
const MAX_TIMEOUT_SECS: u64 = 24 * 3600;

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
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        total = n.checked_mul(unit).and_then(|v| v.checked_add(total)).unwrap_or(u64::MAX);
        number.clear();
    }
    if !number.is_empty() {
        total = total.saturating_add(number.parse::<u64>().unwrap_or(u64::MAX));
    }
    if total == 0 {
        return Err(bad());
    }
    if total > MAX_TIMEOUT_SECS {
        bail!("duration '{text}' is too long: at most 24h");
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

/// Everything `up` needs from its flags, checked before anything is contacted.
struct Inputs {
    node_ip: Option<IpAddr>,
    node_port: Option<i32>,
    timeout: Duration,
    image: ImageRef,
    chart: chart::Source,
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
        args.cluster.check()?;
        if args.port == 0 {
            bail!("invalid --port 0: pass the port the server listens on, e.g. 8080");
        }
        Ok(Inputs {
            node_ip: args.node_ip.as_deref().map(parse_node_ip).transpose()?,
            node_port: args.node_port.map(i32::from),
            timeout: parse_duration(&args.timeout)?,
            image: image_ref(args)?,
            chart: chart::source(
                args.chart.as_deref(),
                args.chart_version.as_deref(),
                args.chart_digest.as_deref().filter(|d| !d.is_empty()),
            )?,
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
    let helm_cli = if args.dry_run { None } else { Some(helm::preflight(&sh)?) };
    let chart = match chart::fetch(&input.chart, &chart::cache_dir(), args.dry_run).await {
        Ok(c) => c,
        Err(e) if args.dry_run => {
            println!("{e:#}: the plan names the chart by its tag");
            chart::unresolved(&input.chart)
        }
        Err(e) => return Err(e),
    };
    if !chart.cached && !args.dry_run {
        eprintln!("pulled chart {} into {}", chart.display, chart.path.display());
    }
    let pinned = pin_digest(&input.image, args.dry_run).await?;
    let typed = Values::new(&pinned, SERVICE_ACCOUNT, &input.mode);
    let (values, set) = (typed.render()?, typed.set_args());
    let desired_hash = deploy_hash(&chart, &format!("{values}{}", set.join(" ")));
    let prepared = Prepared { chart, pinned, values, set, desired_hash, helm: helm_cli };

    let Some(cluster) = cluster else {
        let plan = assess(None, &args, &input, &prepared).await?;
        return apply(&sh, None, &args, &input, &prepared, plan).await;
    };
    // A no-op reads and reports, and takes no lock (a lock is two writes); anything else is
    // planned again and carried out under the lock.
    let mut plan = assess(Some(&cluster), &args, &input, &prepared).await?;
    let (ns, release) = (&args.cluster.namespace, &args.cluster.release);
    if plan.terminating && !sh.dry_run {
        wait_while_terminating(&cluster, ns, input.timeout).await?;
        plan = assess(Some(&cluster), &args, &input, &prepared).await?;
    }
    if plan.is_noop() && !lock::is_held(&cluster, ns, release).await? || sh.dry_run {
        return apply(&sh, Some(&cluster), &args, &input, &prepared, plan).await;
    }
    let mut changes = apply_rbac(&sh, Some(&cluster), &plan.namespace).await?;
    let held = lock::acquire(&cluster, ns, release, "cargo xtask up", args.no_wait, input.timeout).await?;
    let result = async {
        let mut plan = assess(Some(&cluster), &args, &input, &prepared).await?;
        plan.namespace.clear();
        plan.changes.append(&mut changes);
        apply(&sh, Some(&cluster), &args, &input, &prepared, plan).await
    }
    .await;
    held.release().await;
    result
}

/// What the deploy needs, worked out before any change: the chart, the pinned image, the values
/// and their hash, and the helm that will run.
struct Prepared {
    chart: Chart,
    pinned: ImageRef,
    values: String,
    /// `--set` arguments beside the values file.
    set: Vec<String>,
    desired_hash: String,
    helm: Option<helm::Helm>,
}

/// What `up` will do, read from the cluster: nothing is changed while it is worked out.
struct Plan {
    /// The namespace is being deleted: nothing can be created in it until it is gone.
    terminating: bool,
    namespace: Vec<RbacStep>,
    rbac: Vec<RbacStep>,
    /// Why helm must run, if it must.
    helm: Option<String>,
    /// helm 4 must take fields another manager changed by hand back.
    force_conflicts: bool,
    recorded: State,
    wanted_port: Option<i32>,
    live: Option<deployed::Live>,
    changes: Vec<String>,
}

impl Plan {
    fn is_noop(&self) -> bool {
        let node_port_ok = match (&self.live, self.wanted_port) {
            (Some(live), Some(want)) => live.service.as_ref().and_then(|s| current_node_port(s).ok()) == Some(want),
            _ => true,
        };
        let rolled_out = self.live.as_ref().and_then(|l| l.deployment.as_ref()).is_some_and(rollout::is_complete);
        !self.terminating
            && self.namespace.is_empty()
            && self.rbac.is_empty()
            && self.helm.is_none()
            && node_port_ok
            && rolled_out
    }
}

async fn assess(cluster: Option<&Cluster>, args: &Args, input: &Inputs, prepared: &Prepared) -> Result<Plan> {
    let (ns, release) = (&args.cluster.namespace, &args.cluster.release);
    let (steps, terminating) = plan_rbac(cluster, ns, release, args.adopt).await?;
    let (namespace, rbac): (Vec<RbacStep>, Vec<RbacStep>) =
        steps.into_iter().partition(|s| s.object.kind() == "Namespace");
    let (recorded, live) = match cluster {
        Some(c) => (state::read(c, ns, release).await?, Some(deployed::read(c, ns, &chart::fullname(release)).await?)),
        None => (State::default(), None),
    };
    let deployment = live.as_ref().and_then(|l| l.deployment.as_ref());
    let drifted = match (&recorded.rendered, &live) {
        (Some(r), Some(l)) if deployment.is_some() => deployed::drift(r, &l.fingerprint()),
        _ => Vec::new(),
    };
    let helm = if deployment.is_none() {
        Some("the release is not deployed".to_string())
    } else if recorded.deployed_sha256.as_deref() != Some(prepared.desired_hash.as_str()) {
        Some("the image, chart or values changed".to_string())
    } else if !drifted.is_empty() {
        Some(format!("the live objects drifted from the release: {} changed by hand", drifted.join(", ")))
    } else {
        None
    };
    let force_conflicts = !drifted.is_empty() && prepared.helm.as_ref().is_some_and(|h| h.version.starts_with("v4"));
    let wanted_port = input.node_port.or(recorded.node_port);
    Ok(Plan { terminating, namespace, rbac, helm, force_conflicts, recorded, wanted_port, live, changes: Vec::new() })
}

/// Carries the plan out (prints it under `--dry-run`), then reports.
async fn apply(
    sh: &Shell,
    cluster: Option<&Cluster>,
    args: &Args,
    input: &Inputs,
    prepared: &Prepared,
    mut plan: Plan,
) -> Result<()> {
    let Prepared { chart, pinned, values, set, desired_hash, helm: helm_cli } = prepared;
    let (ns, release) = (&args.cluster.namespace, &args.cluster.release);
    let name = chart::fullname(release);
    let mut changes = std::mem::take(&mut plan.changes);
    changes.extend(apply_rbac(sh, cluster, &plan.namespace).await?);
    changes.extend(apply_rbac(sh, cluster, &plan.rbac).await?);
    let recorded = plan.recorded.clone();
    if let Some(why) = &plan.helm {
        eprintln!("running helm: {why}");
        if let Some(c) = cluster.filter(|_| !recorded.owned && !sh.dry_run) {
            // Recorded before helm runs, so that `down` knows the release is this deployment's
            // even when this run does not get to the end.
            state::write(c, ns, release, &State { owned: true, node_port: recorded.node_port, ..State::default() })
                .await?;
        }
        run_helm(sh, cluster, &args.cluster, chart, values, set, plan.force_conflicts).await?;
        if let Some(h) = helm_cli {
            eprintln!("ran helm {} ({})", h.version, h.path.display());
        }
        changes.push(format!("helm release {release} upgraded to {pinned}"));
    } else {
        eprintln!("release {release} is up to date (chart {}, {pinned}): helm skipped", chart.display);
    }
    let Some(cluster) = cluster.filter(|_| !sh.dry_run) else {
        match plan.wanted_port {
            Some(p) => {
                println!("would set the Service's nodePort to {p} and record it in configmap/{}", state::name(release))
            }
            None => println!("would record the nodePort Kubernetes allocates in configmap/{}", state::name(release)),
        }
        println!(
            "would wait up to {}s for deployment/{name}, check the mode it runs with, then print http://<node-ip>:<nodePort>/mcp",
            input.timeout.as_secs()
        );
        return Ok(());
    };

    let rolled_out = plan.live.as_ref().and_then(|l| l.deployment.as_ref()).is_some_and(rollout::is_complete);
    let live = if plan.helm.is_some() || !rolled_out {
        rollout::wait(cluster, ns, &name, input.timeout).await?;
        deployed::read(cluster, ns, &name).await?
    } else {
        plan.live.take().expect("a cluster plan reads the live objects")
    };
    let mode = live.mode();
    if let Some(why) = input.mode.difference(&mode) {
        bail!(
            "deployed, but the server does not run in the mode asked for ({}): {why}; the chart {} {}",
            input.mode.describe(),
            chart.display,
            if live.lacks_extra_args() {
                "ignores extraArgs (content before v0.0.59) and its config.toml lacks the setting"
            } else {
                "renders a config and args that disagree with it"
            }
        );
    }
    let node_port = ensure_node_port(cluster, ns, &name, live.service.as_ref(), plan.wanted_port, &mut changes).await?;
    let next = State {
        owned: true,
        node_port: Some(node_port),
        deployed_sha256: Some(desired_hash.to_string()),
        chart_digest: Some(chart.digest.clone()),
        rendered: Some(live.fingerprint()),
    };
    if next != recorded {
        state::write(cluster, ns, release, &next).await?;
        if recorded.node_port != Some(node_port) {
            changes.push(format!("nodePort {node_port} recorded"));
        }
    }

    let node_ip = match input.node_ip {
        Some(ip) => ip,
        None => address::internal_ip(cluster).await?,
    };
    let url = address::url(&node_ip, node_port);
    if changes.is_empty() {
        println!("up to date: nothing changed (release {release}, {pinned}, chart {})", chart.digest);
    } else {
        println!("deployed {pinned} as release {release} in {ns}, chart {}", chart.display);
        println!("changed: {}", changes.join(", "));
    }
    println!("mode: {}", mode.describe());
    println!("MCP URL: {url}");
    println!("MCP client configuration:\n{}", client_config(&url));
    if args.verify {
        let report = crate::verify::verify(&url, Ok(cluster), &args.cluster).await;
        crate::verify::print(&report, false);
        if !report.passed {
            let failed = report.checks.iter().filter(|c| !c.passed).count();
            bail!("deployed, but verify failed: {failed} of {} checks", report.checks.len());
        }
    }
    Ok(())
}

/// A namespace still terminating (a `down --delete-namespace` or a user's delete in progress)
/// takes no new objects: wait until it is gone, so that `up` creates it afresh.
async fn wait_while_terminating(cluster: &Cluster, ns: &str, timeout: Duration) -> Result<()> {
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    let start = std::time::Instant::now();
    let mut said = false;
    while let Some(n) = namespaces.get_opt(ns).await.with_context(|| format!("cannot read namespace/{ns}"))? {
        if n.metadata.deletion_timestamp.is_none() {
            break;
        }
        if !said {
            eprintln!("namespace {ns} is terminating: waiting until it is gone, to create it again");
            said = true;
        }
        if start.elapsed() >= timeout {
            bail!("namespace {ns} is still terminating after {}s: look for finalizers (kubectl get namespace {ns} -o yaml), then run up again", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// The image by digest, resolved through the registry (a dry run goes on with the tag).
async fn pin_digest(image: &ImageRef, dry_run: bool) -> Result<ImageRef> {
    let registry = Registry::new(&image.registry, Credentials::for_registry(&image.registry)?.as_ref());
    match registry.resolve_digest(image).await {
        Ok(digest) => Ok(image.with_digest(&digest)),
        Err(e) if dry_run => {
            println!("cannot resolve {image} to a digest ({e:#}): the plan shows the tag");
            Ok(image.clone())
        }
        Err(e) => Err(e),
    }
}

/// What `up` does to one object of `deploy/rbac.yaml`.
struct RbacStep {
    object: Object,
    action: &'static str,
}

/// Reads the live RBAC objects and decides, before any change, what to create or update; refuses
/// to take over an object this instance did not create (unless `adopt`). A namespace that existed
/// before is used as it is: never applied, never adopted, never deleted. Also says whether the
/// namespace is terminating.
async fn plan_rbac(cluster: Option<&Cluster>, ns: &str, release: &str, adopt: bool) -> Result<(Vec<RbacStep>, bool)> {
    let objects = rbac_objects(ns, release)?;
    let live = match cluster {
        Some(c) => c.get_all(&objects).await?,
        None => vec![None; objects.len()],
    };
    let me = instance(ns, release);
    let terminating = objects.iter().zip(&live).any(|(o, l)| {
        o.kind() == "Namespace" && l.as_ref().is_some_and(|l| !l["metadata"]["deletionTimestamp"].is_null())
    });
    let mut steps = Vec::new();
    for (object, live) in objects.into_iter().zip(live) {
        let action = match &live {
            None => "create",
            Some(l) => match owner(l, &me) {
                Owner::Us if is_subset(&object.value, l) => continue,
                Owner::Us => "update",
                _ if object.kind() == "Namespace" => continue,
                _ if adopt => "adopt",
                Owner::Nobody => bail!(
                    "{} already exists and was not created by `cargo xtask up` (it has no {INSTANCE_ANNOTATION} mark): up does not take it over; remove or rename it, or pass --adopt to make it this deployment's",
                    object.id()
                ),
                Owner::Other(other) => bail!(
                    "{} belongs to the deployment {other}, not {me}: up does not take it over; deploy with another --namespace/--release, or pass --adopt",
                    object.id()
                ),
            },
        };
        steps.push(RbacStep { object, action });
    }
    Ok((steps, terminating))
}

/// Applies the planned steps (prints them under `--dry-run`); the changes made.
async fn apply_rbac(sh: &Shell, cluster: Option<&Cluster>, steps: &[RbacStep]) -> Result<Vec<String>> {
    let mut changes = Vec::new();
    for RbacStep { object, action } in steps {
        let done = match *action {
            "create" => "created",
            "adopt" => "adopted",
            _ => "updated",
        };
        if sh.dry_run {
            println!("would {action} {} (server-side apply, field manager {FIELD_MANAGER}):", object.id());
            println!("{}", indent(&serde_norway::to_string(&object.value)?));
        } else if let Some(c) = cluster {
            c.apply(object).await?;
            eprintln!("{done} {}", object.id());
        }
        changes.push(format!("{done} {}", object.id()));
    }
    Ok(changes)
}

/// `helm upgrade --install` with the values in a temporary file (printed under `--dry-run`).
/// The values go to helm in a file of a private temp directory (0700, the file 0600, a fresh
/// name), removed when helm is done, whatever happened; a dry run prints them and writes nothing.
async fn run_helm(
    sh: &Shell,
    cluster: Option<&Cluster>,
    args: &ClusterArgs,
    chart: &Chart,
    values: &str,
    set: &[String],
    force_conflicts: bool,
) -> Result<()> {
    let target = helm::target(cluster);
    let mut extra = set.to_vec();
    if force_conflicts {
        extra.push("--force-conflicts".into());
    }
    if sh.dry_run {
        let path = std::path::Path::new("<private temp dir>/values.yaml");
        println!("values ({}):\n{}", path.display(), indent(values));
        return helm::upgrade_install(sh, &target, &args.release, &chart.path, &args.namespace, path, &extra).await;
    }
    if let Some(recovered) = helm::recover(sh, &target, &args.release, &args.namespace)? {
        eprintln!("{recovered}");
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("kmcp-xtask-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .context("cannot make a private temp directory")?;
    let path = dir.path().join("values.yaml");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .context("cannot write the values file")?;
        file.write_all(values.as_bytes()).context("cannot write the values file")?;
    }
    helm::upgrade_install(sh, &target, &args.release, &chart.path, &args.namespace, &path, &extra).await
}

/// The Service's nodePort, put back on `wanted` (the recorded one or `--node-port`) if it differs.
async fn ensure_node_port(
    cluster: &Cluster,
    ns: &str,
    name: &str,
    service: Option<&Service>,
    wanted: Option<i32>,
    changes: &mut Vec<String>,
) -> Result<i32> {
    let services: Api<Service> = Api::namespaced(cluster.client.clone(), ns);
    let service = service.ok_or_else(|| anyhow!("service {ns}/{name} does not exist after helm ran"))?;
    let current = current_node_port(service)?;
    match wanted {
        Some(want) if want != current => {
            set_node_port(&services, service, want).await?;
            changes.push(format!("nodePort set to {want}"));
            Ok(want)
        }
        _ => Ok(current),
    }
}

fn deploy_hash(chart: &Chart, values: &str) -> String {
    let mut h = Sha256::new();
    for part in [chart.digest.as_str(), values] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    crate::git::hex(&h.finalize())
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("2m30s").unwrap(), Duration::from_secs(150));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        for bad in ["", "5x", "m", "0s", "25h", "5124095576030432h", "99999999999999999999999s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86400));
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("30000-32767").unwrap(), (30000, 32767));
        assert!(parse_range("32767-30000").is_err());
        assert!(parse_range("abc").is_err());
    }
}
