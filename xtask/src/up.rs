//! `cargo xtask up`: namespace and RBAC from `deploy/`, the chart pinned by the digest of its
//! content, a rollout check, the mode the server really runs with, and the NodePort URL. Reads
//! top to bottom: inputs, the desired release, the plan, print or carry it out, the report. A
//! second run with nothing changed has an empty plan.

use crate::address::{self, client_config, current_node_port};
use crate::allow_from::{self, AllowFrom};
use crate::chart::{self, Chart};
use crate::cluster::{Cluster, ClusterArgs};
use crate::deployed::{self, Live};
use crate::docker_config::Credentials;
use crate::execute::{execute, Done, Outcome};
use crate::flags::{self, PortRange};
use crate::lock::{self, LeaseState};
use crate::manifests::{
    drifted_fields, instance, is_subset, needed, owner, rbac_objects, Object, Owner, INSTANCE_ANNOTATION,
    SERVICE_ACCOUNT,
};
use crate::plan::{Action, DryRun, Plan, Step, Write};
use crate::pull_secret;
use crate::reference::ImageRef;
use crate::registry::Registry;
use crate::shell::Shell;
use crate::state::{self, State};
use crate::values::{ServerMode, Values};
use crate::{helm, proof, rollout};
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
    /// Image to deploy, by tag or digest [default: ghcr.io/<owner>/kubernetes-mcp-server:dev-latest]
    #[arg(long, value_name = "REF")]
    pub(crate) image: Option<String>,
    /// Owner for the default --image [default: GITHUB_REPOSITORY_OWNER, else the fork's origin owner]
    #[arg(long, value_name = "NAME")]
    pub(crate) owner: Option<String>,
    /// The fork's checkout, to work out the default owner
    #[arg(long, env = "MCP_FORK_DIR", value_name = "PATH")]
    pub(crate) fork: Option<PathBuf>,
    /// The node address the laptop reaches (its WireGuard IP) [default: the node's InternalIP]
    #[arg(long, env = "MCP_NODE_IP", value_name = "IP", value_parser = flags::node_ip)]
    pub(crate) node_ip: Option<IpAddr>,
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
    /// Chart reference [default: pinned in deploy/chart.yaml]
    #[arg(long, value_name = "REF")]
    pub(crate) chart: Option<String>,
    /// Chart version [default: pinned in deploy/chart.yaml]
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
    /// Toolsets to enable (passed to --toolsets)
    #[arg(long, value_name = "LIST")]
    pub(crate) toolsets: Option<String>,
    /// Let the node pull a private image: a pull secret `<release>-pull` from the credentials up
    /// uses for the image's registry (GHCR_TOKEN for ghcr.io, else the Docker config)
    #[arg(long)]
    pub(crate) pull_secret: bool,
    /// Take over existing RBAC objects that this deployment did not create
    #[arg(long)]
    pub(crate) adopt: bool,
    /// Fail at once, instead of waiting, when another `up` or `down` holds the lock
    #[arg(long)]
    pub(crate) no_wait: bool,
    /// After a successful rollout, run `verify` against the printed URL
    #[arg(long)]
    pub(crate) verify: bool,
    #[command(flatten)]
    pub dry_run: DryRun,
}

/// `carry_out` says, for a plan, whether to carry it out (`main` prints it under `--dry-run`).
pub async fn run(sh: &Shell, args: Args, carry_out: impl Fn(&Plan) -> Result<bool>) -> Result<()> {
    let input = Inputs::from_args(sh, &args)?;
    warn_about_mode(&args);
    let mut notes = Vec::new();
    let cluster = sh.unless_dry_run(Cluster::reach(&args.cluster).await, &mut notes)?;
    let helm = sh.unless_dry_run(helm::preflight(sh), &mut notes)?;
    let desired = Desired::work_out(sh, &input, &mut notes).await?;
    let planner =
        Planner { sh, cluster: cluster.as_ref(), args: &args, input: &input, desired: &desired, helm: helm.as_ref() };
    loop {
        let planned = planner.plan(&notes).await?;
        if !carry_out(&planned.plan)? {
            return Ok(());
        }
        match execute(sh, cluster.as_ref(), helm.as_ref(), &planned.plan).await? {
            Outcome::Replan => continue,
            Outcome::Done(done) => return report(&planner, planned.live, *done).await,
        }
    }
}

/// Everything `up` needs from its flags, checked before anything is contacted (the checks that
/// span several flags; clap parsed each value).
struct Inputs {
    node_port: Option<i32>,
    allow_from: AllowFrom,
    pull_secret: bool,
    release: String,
    image: ImageRef,
    chart: chart::Source,
    mode: ServerMode,
}

impl Inputs {
    fn from_args(sh: &Shell, args: &Args) -> Result<Inputs> {
        if let Some(p) = args.node_port {
            let range = args.nodeport_range;
            if !range.contains(p) {
                bail!("--node-port {p} is outside the cluster's NodePort range {range}: pick a port inside it (or set --nodeport-range)");
            }
        }
        args.cluster.check()?;
        Ok(Inputs {
            node_port: args.node_port.map(i32::from),
            allow_from: allow_from::resolve(sh, args.allow_from.as_ref(), args.node_ip)?,
            pull_secret: args.pull_secret,
            release: args.cluster.release.clone(),
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

/// The image to deploy: `--image`, else `ghcr.io/<owner>/kubernetes-mcp-server:dev-latest`.
fn image_ref(args: &Args) -> Result<ImageRef> {
    if let Some(i) = &args.image {
        return ImageRef::parse(i);
    }
    let origin = args.fork.as_deref().and_then(|f| crate::git::Checkout::open(f).ok()).and_then(|c| c.origin_url());
    let image = ImageRef::owned("ghcr.io", args.owner.as_deref(), "kubernetes-mcp-server", origin.as_deref());
    Ok(image.context("no --image given")?.with_tag("dev-latest"))
}

fn warn_about_mode(args: &Args) {
    if args.allow_write_tools {
        eprintln!("warning: --allow-write-tools: the server offers tools that create, change and delete resources (pods_exec, resources_delete, ...); only the read-only RBAC now stands between the agent and writes");
    }
    if crate::flags::runs_toolset(args.toolsets.as_deref(), "helm") {
        eprintln!("warning: --toolsets includes helm: Helm keeps its releases in Secrets, so the server's ServiceAccount can then read every Secret in the cluster (ClusterRole helm-readonly), and so can whoever reaches the URL");
    }
    if args.stateful {
        eprintln!("warning: --stateful: the server keeps SSE streams; over WireGuard idle links a client may get 409 Conflict on reconnect: set PersistentKeepalive = 25 on the laptop peer");
    }
}

/// The release as it should be: the chart (by digest), the image (by digest), the values, and a
/// hash of them all. Reads the registries; a dry run goes on with what it cannot resolve.
struct Desired {
    chart: Chart,
    pinned: ImageRef,
    values: String,
    /// `--set` arguments beside the values file.
    set: Vec<String>,
    hash: String,
    /// With `--pull-secret`: the credentials the pull secret is made of.
    pull_credentials: Option<Credentials>,
}

impl Desired {
    async fn work_out(sh: &Shell, input: &Inputs, notes: &mut Vec<String>) -> Result<Desired> {
        let located = chart::locate(sh, &input.chart, &chart::cache_dir()).await;
        let chart = sh.unless_dry_run(located, notes)?.unwrap_or_else(|| chart::unresolved(&input.chart));
        let pinned =
            sh.unless_dry_run(pin_digest(sh, &input.image).await, notes)?.unwrap_or_else(|| input.image.clone());
        let pull_credentials = match input.pull_secret {
            false => None,
            true => {
                let registry = &input.image.registry;
                let found = Credentials::for_registry(sh, registry)?;
                Some(found.with_context(|| format!("--pull-secret: there are no credentials for {registry} to make it from: set GHCR_TOKEN (ghcr.io) or log in with `docker login {registry}`"))?)
            }
        };
        let mut typed = Values::new(&pinned, SERVICE_ACCOUNT, &input.mode);
        if input.pull_secret {
            typed.image_pull_secrets = vec![crate::values::Named { name: pull_secret::name(&input.release) }];
        }
        let (values, set) = (typed.render()?, typed.set_args());
        let hash = deploy_hash(&chart, &format!("{values}{}", set.join(" ")));
        Ok(Desired { chart, pinned, values, set, hash, pull_credentials })
    }
}

/// The image by digest, resolved through the registry.
async fn pin_digest(sh: &Shell, image: &ImageRef) -> Result<ImageRef> {
    let registry = Registry::new(&image.registry, Credentials::for_registry(sh, &image.registry)?.as_ref());
    let digest = registry.resolve_digest(image).await?;
    Ok(image.with_digest(&digest))
}

fn deploy_hash(chart: &Chart, values: &str) -> String {
    let mut h = Sha256::new();
    for part in [chart.digest.as_str(), values] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    crate::git::hex(&h.finalize())
}

/// The plan and the live objects it was made from.
struct Planned {
    plan: Plan,
    live: Option<Live>,
}

/// What planning reads from the cluster (nothing is changed while it is worked out).
struct Seen {
    /// The namespace and RBAC objects to apply.
    rbac: Vec<Step>,
    /// The namespace is being deleted: what it holds counts as gone.
    terminating: bool,
    recorded: State,
    live: Option<Live>,
    /// The chart-set fields changed by hand since the last rollout.
    drifted: Vec<String>,
    lease: LeaseState,
}

/// Works out what `up` will change: the namespace, then under the lock the RBAC objects, helm, the
/// rollout, the nodePort and the record.
struct Planner<'a> {
    sh: &'a Shell,
    cluster: Option<&'a Cluster>,
    args: &'a Args,
    input: &'a Inputs,
    desired: &'a Desired,
    helm: Option<&'a helm::Helm>,
}

impl Planner<'_> {
    async fn plan(&self, notes: &[String]) -> Result<Planned> {
        let mut seen = self.read().await?;
        let why_helm = self.why_helm(&seen);
        let (namespace, mut work): (Vec<Step>, Vec<Step>) = std::mem::take(&mut seen.rbac)
            .into_iter()
            .partition(|s| matches!(&s.action, Action::Apply { object, .. } if object.starts_with("namespace/")));
        if let Some(why) = &why_helm {
            work.extend(self.helm_steps(&seen, why)?);
        }
        work.extend(self.rollout_step(&seen, why_helm.is_some()));
        work.extend(self.node_port_steps(&seen, why_helm.is_some())?);
        Ok(self.assemble(seen, namespace, work, notes))
    }

    fn names(&self) -> (&str, &str, String) {
        let (ns, release) = (self.args.cluster.namespace.as_str(), self.args.cluster.release.as_str());
        (ns, release, chart::fullname(release))
    }

    async fn read(&self) -> Result<Seen> {
        let (ns, release, name) = self.names();
        let toolsets = self.input.mode.toolsets.as_deref();
        let mut wanted = vec![allow_from::policy(ns, release, &self.input.allow_from, self.input.mode.port)];
        let mut unwanted = Vec::new();
        let registry = &self.input.image.registry;
        match &self.desired.pull_credentials {
            Some(c) => wanted.push(pull_secret::secret(ns, release, registry, Some(c))),
            None => unwanted.push(pull_secret::secret(ns, release, registry, None)),
        }
        let objects = (wanted, unwanted);
        let (rbac, terminating) = plan_rbac(self.cluster, ns, release, toolsets, objects, self.args.adopt).await?;
        let Some(c) = self.cluster.filter(|_| !terminating) else {
            let (recorded, live, drifted, lease) = (State::default(), None, Vec::new(), LeaseState::Absent);
            return Ok(Seen { rbac, terminating, recorded, live, drifted, lease });
        };
        let recorded = state::read(c, ns, release).await?;
        let live = deployed::read(c, ns, &name).await?;
        let drifted = match &recorded.rendered {
            Some(r) if live.deployment.is_some() => deployed::drift(r, &live.fingerprint()),
            _ => Vec::new(),
        };
        let lease = lock::inspect(c, ns, release).await?;
        Ok(Seen { rbac, terminating, recorded, live: Some(live), drifted, lease })
    }

    fn deployment<'s>(&self, seen: &'s Seen) -> Option<&'s k8s_openapi::api::apps::v1::Deployment> {
        seen.live.as_ref().and_then(|l| l.deployment.as_ref())
    }

    /// Why helm must run, if it must.
    fn why_helm(&self, seen: &Seen) -> Option<String> {
        let drifted = &seen.drifted;
        if self.deployment(seen).is_none() {
            Some("the release is not deployed".to_string())
        } else if seen.recorded.deployed_sha256.as_deref() != Some(self.desired.hash.as_str()) {
            Some("the image, chart or values changed".to_string())
        } else if !drifted.is_empty() {
            Some(format!("the live objects drifted from the release: {} changed by hand", drifted.join(", ")))
        } else {
            None
        }
    }

    fn record_writes(&self) -> Vec<Write> {
        let (ns, release, _) = self.names();
        vec![Write::new("patch", "configmaps", Some(ns), &state::name(release))]
    }

    /// The ownership record, the chart pull, a recovery of a release left pending, and helm itself.
    fn helm_steps(&self, seen: &Seen, why: &str) -> Result<Vec<Step>> {
        let (ns, release, _) = self.names();
        let (desired, mut steps) = (self.desired, Vec::new());
        if !seen.recorded.owned {
            steps.push(step(
                Action::RecordOwner { config_map: state::name(release) },
                "so that `down` knows the release is this deployment's, even if this run does not get to the end"
                    .into(),
                self.record_writes(),
            ));
        }
        if let Some(from) = &desired.chart.pull_from {
            let (chart, path) = (desired.chart.display.clone(), desired.chart.path.clone());
            let action = Action::PullChart { chart, from: from.to_string(), path };
            steps.push(step(action, "the chart is not in the cache".into(), vec![]));
        }
        let target = crate::cluster::helm_target(self.cluster);
        if self.helm.is_some() && seen.live.is_some() {
            let status = helm::status_of(self.sh, &target, release, ns)?;
            if let Some((command, how)) = helm::recovery(&status, &target, release, ns) {
                steps.push(step(
                    Action::RecoverRelease { status: status.clone(), command },
                    format!("release {release} was left {status} by a helm run that did not finish: {how}"),
                    vec![],
                ));
            }
        }
        let mut extra = desired.set.clone();
        let v4 = self.helm.is_some_and(|h| h.version.starts_with("v4"));
        if v4 && !seen.drifted.is_empty() {
            extra.push("--force-conflicts".into());
        }
        let command = helm::upgrade_install(&target, release, &desired.chart.path, ns, &extra);
        steps.push(step(Action::Helm { command, values: desired.values.clone() }, why.into(), vec![]));
        Ok(steps)
    }

    fn rollout_step(&self, seen: &Seen, helm_runs: bool) -> Option<Step> {
        if !helm_runs && self.deployment(seen).is_some_and(rollout::is_complete) {
            return None;
        }
        let action = Action::WaitRollout {
            deployment: self.names().2,
            timeout_secs: self.args.timeout.as_secs(),
            mode: self.input.mode.clone(),
            chart: self.desired.chart.display.clone(),
        };
        let why = if helm_runs { "helm changes the release" } else { "the last rollout has not completed" };
        Some(step(action, why.into(), vec![]))
    }

    /// The nodePort put back on the recorded one (or `--node-port`), and the record written.
    fn node_port_steps(&self, seen: &Seen, helm_runs: bool) -> Result<Vec<Step>> {
        let (ns, release, name) = self.names();
        let (input, mut steps) = (self.input, Vec::new());
        let service = seen.live.as_ref().and_then(|l| l.service.as_ref());
        let current = service.map(current_node_port).transpose()?;
        let wanted = input.node_port.or(seen.recorded.node_port);
        let port = i32::from(input.mode.port);
        let port_moves = helm_runs && service.is_some_and(|s| service_port(s) != Some(port));
        let origin = if input.node_port.is_some() { "--node-port" } else { "recorded" };
        let set_port = match (wanted.or(current.filter(|_| port_moves)), current) {
            (Some(w), Some(c)) if w != c => Some((w, format!("the Service's nodePort is {c}, not the {origin} {w}"))),
            (Some(w), None) => Some((w, format!("the {origin} nodePort {w}: set once helm has created the Service"))),
            (Some(w), Some(_)) if port_moves => Some((
                w,
                format!(
                    "--port {port} gives the Service a new port entry, which Kubernetes gives a new nodePort: keep {w}"
                ),
            )),
            _ => None,
        };
        let final_port = set_port.as_ref().map(|(p, _)| *p).or(current);
        if let Some((port, why)) = set_port {
            let writes = vec![Write::new("patch", "services", Some(ns), &name)];
            steps.push(step(Action::SetNodePort { service: name.clone(), port }, why, writes));
        }
        let policy = service.and_then(|s| s.spec.as_ref()?.external_traffic_policy.clone());
        if policy.as_deref() != Some("Local") {
            let why = match policy {
                Some(p) => format!("it is {p}: kube-proxy would hand the pod the node's address, not the client's, and the NetworkPolicy could not tell a laptop from the internet"),
                None => "set once helm has created the Service: the pod then sees the client's address, which the NetworkPolicy checks".to_string(),
            };
            let writes = vec![Write::new("patch", "services", Some(ns), &name)];
            steps.push(step(Action::SetTrafficPolicy { service: name.clone() }, why, writes));
        }
        if helm_runs || (final_port.is_some() && seen.recorded.node_port != final_port) {
            let action = Action::RecordState {
                config_map: state::name(release),
                deployment: name,
                node_port: final_port,
                deployed_sha256: self.desired.hash.clone(),
                chart_digest: self.desired.chart.digest.clone(),
            };
            let why = "the next `up` keeps the nodePort and tells a no-op and drift from it";
            steps.push(step(action, why.into(), self.record_writes()));
        }
        Ok(steps)
    }

    /// The steps in order: a terminating namespace waited for, the namespace, then the lock and
    /// the rest (the lock also when another run holds it: its changes call for a new plan).
    fn assemble(&self, seen: Seen, namespace: Vec<Step>, work: Vec<Step>, notes: &[String]) -> Planned {
        let (ns, release, _) = self.names();
        let mut notes = notes.to_vec();
        if self.cluster.is_none() {
            notes.push("no reachable cluster: showing the plan for an empty cluster".into());
        }
        let mut steps = Vec::new();
        if seen.terminating {
            steps.push(step(
                Action::WaitNamespaceGone { namespace: ns.into(), timeout_secs: self.args.timeout.as_secs() },
                format!("namespace {ns} is terminating: wait until it is gone, then create it afresh"),
                vec![],
            ));
        }
        steps.extend(namespace);
        if !work.is_empty() || matches!(seen.lease, LeaseState::Held { .. }) {
            let wait = self.args.timeout.as_secs();
            steps.push(crate::plan::lock_step(ns, release, &seen.lease, wait, self.args.no_wait, false));
            steps.extend(work);
        }
        let (pinned, chart) = (&self.desired.pinned, &self.desired.chart);
        let summary = if steps.is_empty() {
            format!("release {release} is up to date ({pinned}, chart {})", chart.digest)
        } else {
            format!("deploy {pinned} as release {release} in {ns}, chart {}", chart.display)
        };
        let plan = Plan { task: "up", namespace: ns.into(), release: release.into(), summary, notes, steps };
        Planned { plan, live: seen.live }
    }
}

fn step(action: Action, reason: String, writes: Vec<Write>) -> Step {
    Step { action, reason, writes }
}

fn service_port(service: &k8s_openapi::api::core::v1::Service) -> Option<i32> {
    service.spec.as_ref()?.ports.as_ref()?.first().map(|p| p.port)
}

/// Reads the live RBAC objects and decides, before any change, what to create or update; refuses
/// to take over an object this instance did not create (unless `adopt`). A namespace that existed
/// before is used as it is: never applied, never adopted, never deleted. Also says whether the
/// namespace is terminating (its objects then count as gone).
async fn plan_rbac(
    cluster: Option<&Cluster>,
    ns: &str,
    release: &str,
    toolsets: Option<&str>,
    (wanted, unwanted): (Vec<Object>, Vec<Object>),
    adopt: bool,
) -> Result<(Vec<Step>, bool)> {
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
    for (i, (object, live)) in objects.into_iter().zip(live).enumerate() {
        if i >= first_unwanted || !needed(&object, toolsets) {
            if live.as_ref().is_some_and(|l| matches!(owner(l, &me), Owner::Us)) {
                let (plural, namespaced) = object.plural()?;
                let write = Write::new("delete", plural, object.namespace().filter(|_| namespaced), object.name());
                let reason = match i >= first_unwanted {
                    true => "no --pull-secret: no credential is kept in the cluster".to_string(),
                    false => "the server runs no helm toolset: it needs no Secrets".to_string(),
                };
                steps.push(step(Action::Delete { object: object.id(), manifest: object.value }, reason, vec![write]));
            }
            continue;
        }
        let (change, reason) = match &live {
            None => ("create", "it is not in the cluster".to_string()),
            Some(l) => match owner(l, &me) {
                Owner::Us if is_subset(&object.value, l) => continue,
                Owner::Us => {
                    let source = if object.kind() == "NetworkPolicy" { "--allow-from" } else { "deploy/rbac.yaml" };
                    ("update", format!("{} drifted from {source}", drifted_fields(&object.value, l).join(", ")))
                }
                _ if object.kind() == "Namespace" => continue,
                _ if adopt => ("adopt", format!("--adopt: it has no {INSTANCE_ANNOTATION} mark of {me}")),
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
        let (plural, namespaced) = object.plural()?;
        let write = Write::new("patch", plural, object.namespace().filter(|_| namespaced), object.name());
        let action = match object.kind() {
            "Secret" => Action::ApplyHidden { change, object: object.id(), manifest: object.value },
            _ => Action::Apply { change, object: object.id(), manifest: object.value },
        };
        steps.push(step(action, reason, vec![write]));
    }
    Ok((steps, terminating))
}

/// After the plan is carried out: the mode the server runs with, the nodePort, the URL, and the
/// client configuration; `--verify` runs the checks.
async fn report(planner: &Planner<'_>, planned_live: Option<Live>, done: Done) -> Result<()> {
    let Planner { cluster, args, input, desired, .. } = *planner;
    let cluster = cluster.context("no cluster to report on")?;
    let (ns, release) = (&args.cluster.namespace, &args.cluster.release);
    let name = chart::fullname(release);
    let live = match done.live.or(planned_live) {
        Some(l) => l,
        None => deployed::read(cluster, ns, &name).await?,
    };
    live.check_mode(&input.mode, &desired.chart.display)?;
    let node_port = match (done.node_port, &live.service) {
        (Some(p), _) => p,
        (None, Some(s)) => current_node_port(s)?,
        (None, None) => bail!("service {ns}/{name} does not exist: run up again"),
    };
    let node_ip = match args.node_ip {
        Some(ip) => ip,
        None => address::internal_ip(cluster).await?,
    };
    let url = address::url(&node_ip, node_port);
    let pinned = &desired.pinned;
    if done.changes.is_empty() {
        println!("up to date: nothing changed (release {release}, {pinned}, chart {})", desired.chart.digest);
    } else {
        println!("deployed {pinned} as release {release} in {ns}, chart {}", desired.chart.display);
        println!("changed: {}", done.changes.join(", "));
        // kube-proxy programs a new NodePort a moment after the pod is ready: print a URL that answers.
        if let Err(e) = crate::mcp::health(&url).await {
            eprintln!("note: {e:#} (from this machine; the laptop may still reach it)");
        }
    }
    println!("mode: {}", live.mode().describe());
    println!("MCP URL: {url}");
    println!("MCP client configuration:\n{}", client_config(&url));
    if args.verify {
        let report = proof::verify(&url, Ok(cluster), &args.cluster, Some(&input.allow_from)).await;
        proof::print(&report, false);
        if !report.passed {
            let failed = report.checks.iter().filter(|c| !c.passed).count();
            bail!("deployed, but verify failed: {failed} of {} checks", report.checks.len());
        }
    }
    Ok(())
}
