//! `cargo xtask down`: uninstall the release and delete what `up` created for this instance, and
//! nothing else. Safe on an empty cluster; the namespace goes only with `--delete-namespace`, only
//! when `up` created it, and not while it holds objects that are not the instance's (unless
//! `--force`). Reads top to bottom: inputs, the plan, print or carry it out, the report.

use crate::cluster::client::{Cluster, ClusterArgs};
use crate::cluster::manifests::{instance, owner, rbac_objects, Owner};
use crate::cluster::namespace_contents;
use crate::cluster::state_configmap::{self, State};
use crate::plan::data::{Action, DryRun, Plan, Step, Write};
use crate::plan::execute::{execute, Done, Outcome};
use crate::programs::shell::Shell;
use crate::{cluster::lock, programs::helm};
use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;

/// Namespaces Kubernetes itself keeps: never deleted.
const PROTECTED: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];
/// How long `down` waits for the lock and for a namespace to go.
const WAIT_SECS: u64 = 300;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
    /// Delete the namespace too (only one `up` created), and wait until it is gone
    #[arg(long, conflicts_with = "keep_port")]
    pub(crate) delete_namespace: bool,
    /// With --delete-namespace: delete it even though it holds objects that are not this deployment's
    #[arg(long, requires = "delete_namespace")]
    pub(crate) force: bool,
    /// Keep the recorded nodePort, so the next `up` serves on the same URL
    #[arg(long)]
    pub(crate) keep_port: bool,
    /// Wait for nothing: fail at once when another `up` or `down` holds the lock, and end without
    /// waiting for the release's pods to go
    #[arg(long)]
    pub(crate) no_wait: bool,
    #[command(flatten)]
    pub dry_run: DryRun,
}

/// `carry_out` says, for a plan, whether to carry it out (`main` prints it under `--dry-run`).
pub async fn run(sh: &Shell, args: Args, carry_out: impl Fn(&Plan) -> Result<bool>) -> Result<()> {
    check_inputs(&args)?;
    let mut notes = Vec::new();
    let cluster = sh.unless_dry_run(Cluster::reach(&args.cluster).await, &mut notes)?;
    let mut helm = None;
    loop {
        let mut plan = plan(sh, cluster.as_ref(), &args, &notes).await?;
        if helm.is_none() && plan.steps.iter().any(|s| matches!(s.action, Action::Uninstall { .. })) {
            helm = sh.unless_dry_run(helm::preflight(sh), &mut plan.notes)?;
        }
        if !carry_out(&plan)? {
            return Ok(());
        }
        match execute(sh, cluster.as_ref(), helm.as_ref(), &plan).await? {
            Outcome::Replan => continue,
            Outcome::Done(done) => {
                report(&plan, &done);
                return Ok(());
            }
        }
    }
}

fn check_inputs(args: &Args) -> Result<()> {
    args.cluster.check()?;
    let ns = &args.cluster.namespace;
    if args.delete_namespace && PROTECTED.contains(&ns.as_str()) {
        bail!("--delete-namespace refuses namespace {ns}: Kubernetes keeps it; run without --delete-namespace");
    }
    Ok(())
}

/// What `down` will remove, read from the cluster; refuses, before any change, a namespace it
/// must not delete.
async fn plan(sh: &Shell, cluster: Option<&Cluster>, args: &Args, notes: &[String]) -> Result<Plan> {
    let (ns, release) = (args.cluster.namespace.as_str(), args.cluster.release.as_str());
    let mut plan = Plan {
        task: "down",
        namespace: ns.into(),
        release: release.into(),
        summary: String::new(),
        notes: notes.to_vec(),
        placement: None,
        steps: Vec::new(),
    };
    let Some(cluster) = cluster else {
        plan.summary = "no reachable cluster: on an empty cluster `down` has nothing to do".into();
        return Ok(plan);
    };
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    let Some(namespace) = namespaces.get_opt(ns).await.with_context(|| format!("cannot read namespace/{ns}"))? else {
        plan.summary = format!("namespace {ns} does not exist");
        return Ok(plan);
    };
    let ours = owner(&serde_json::to_value(&namespace)?, &instance(ns, release)) == Owner::Us;
    let recorded = state_configmap::read(cluster, ns, release).await?;
    let foreign = match args.delete_namespace {
        true => namespace_contents::foreign_objects(cluster, ns, release, recorded.owned).await?,
        false => Vec::new(),
    };
    if args.delete_namespace {
        refuse_namespace(args, ours, &foreign)?;
    }
    let release_marked = !recorded.owned && crate::cluster::release_mark::marked(cluster, ns, release).await?;
    let mut steps: Vec<Step> =
        release_step(sh, cluster, args, (&recorded, release_marked), &mut plan.notes).await?.into_iter().collect();
    if !steps.is_empty() {
        steps.extend(pods_step(args, &mut plan.notes));
    }
    steps.extend(object_steps(cluster, ns, release, &mut plan.notes).await?);
    steps.extend(record_step(args, &recorded, &mut plan.notes));
    let delete_namespace = args.delete_namespace && ours;
    if delete_namespace {
        steps.push(Step {
            action: Action::DeleteNamespace { namespace: ns.into(), with: foreign, timeout_secs: WAIT_SECS },
            reason: format!("--delete-namespace, and `cargo xtask up` created it for {}", instance(ns, release)),
            writes: vec![Write::new("delete", "namespaces", None, ns)],
        });
    }
    if steps.is_empty() {
        plan.summary = format!("release {release} and its objects are not in the cluster");
        return Ok(plan);
    }
    let lease = lock::inspect(cluster, ns, release).await?;
    plan.steps.push(crate::plan::data::lock_step(ns, release, &lease, WAIT_SECS, args.no_wait, delete_namespace));
    plan.steps.extend(steps);
    plan.summary = format!("remove release {release} and what `cargo xtask up` created for it in {ns}");
    Ok(plan)
}

/// `--delete-namespace` goes only for a namespace `up` created, holding nothing else (or `--force`).
fn refuse_namespace(args: &Args, ours: bool, foreign: &[String]) -> Result<()> {
    let (ns, me) = (&args.cluster.namespace, instance(&args.cluster.namespace, &args.cluster.release));
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
    Ok(())
}

/// The helm release goes when `up` installed it: its record says so, or (the record gone) the
/// release's own mark.
async fn release_step(
    sh: &Shell,
    cluster: &Cluster,
    args: &Args,
    (recorded, release_marked): (&State, bool),
    notes: &mut Vec<String>,
) -> Result<Option<Step>> {
    let (ns, release) = (args.cluster.namespace.as_str(), args.cluster.release.as_str());
    let installed = crate::cluster::helm_history::status(sh, cluster, ns, release).await?.is_some();
    Ok(match (installed, recorded.owned || release_marked) {
        (true, true) => Some(Step {
            action: Action::Uninstall {
                command: helm::uninstall(&crate::cluster::client::helm_target(Some(cluster)), release, ns),
            },
            reason: match recorded.owned {
                true => format!("`cargo xtask up` installed release {release}"),
                false => {
                    format!("release {release} carries the mark of {} (its record is gone)", instance(ns, release))
                }
            },
            writes: vec![],
        }),
        (true, false) => {
            notes.push(format!(
                "helm release {release} in {ns} was not installed by `cargo xtask up` (no record, no mark): left alone"
            ));
            None
        }
        (false, _) => {
            notes.push(format!("helm release {release} is not installed in {ns}"));
            None
        }
    })
}

/// After the uninstall, the release's pods waited for until they are gone (`--no-wait`: not,
/// and the plan says so).
fn pods_step(args: &Args, notes: &mut Vec<String>) -> Option<Step> {
    let selector = format!("app.kubernetes.io/instance={}", args.cluster.release);
    if args.no_wait {
        notes.push(format!("--no-wait: not waiting for the pods {selector} to go; they may still be terminating"));
        return None;
    }
    let reason = "helm uninstall returns while the pods terminate: `down` ends when they are gone".to_string();
    Some(Step::new(Action::WaitPodsGone { selector, timeout_secs: WAIT_SECS }, reason, vec![]))
}

/// The objects of `deploy/rbac.yaml` and the NetworkPolicy that carry this instance's mark, the
/// policy first, then in reverse order.
async fn object_steps(cluster: &Cluster, ns: &str, release: &str, notes: &mut Vec<String>) -> Result<Vec<Step>> {
    let me = instance(ns, release);
    let mut steps = Vec::new();
    let mut objects = rbac_objects(ns, release)?;
    objects.push(crate::cluster::allow_from::policy(
        ns,
        release,
        &crate::cluster::allow_from::AllowFrom(Vec::new()),
        0,
    ));
    objects.push(crate::cluster::pull_secret::secret(ns, release, "", None));
    for object in objects.into_iter().rev().filter(|o| o.kind() != "Namespace") {
        let Some(live) = cluster.get(&object).await? else { continue };
        match owner(&live, &me) {
            Owner::Us => {
                let (plural, namespaced) = object.plural()?;
                let write = Write::new("delete", plural, object.namespace().filter(|_| namespaced), object.name());
                steps.push(Step {
                    action: Action::Delete { object: object.id(), manifest: object.value.clone() },
                    reason: format!("`cargo xtask up` created it for {me}"),
                    writes: vec![write],
                });
            }
            Owner::Nobody => notes.push(format!("{} is not this deployment's (no mark): left alone", object.id())),
            Owner::Other(other) => notes.push(format!("{} belongs to {other}: left alone", object.id())),
        }
    }
    Ok(steps)
}

/// The record goes, or with `--keep-port` only the deployment in it.
fn record_step(args: &Args, recorded: &State, notes: &mut Vec<String>) -> Option<Step> {
    let (ns, config_map) = (args.cluster.namespace.as_str(), state_configmap::name(&args.cluster.release));
    let writes = |verb| vec![Write::new(verb, "configmaps", Some(ns), &config_map)];
    if args.keep_port && recorded.deployed_sha256.is_some() {
        return Some(Step {
            action: Action::ForgetDeployment { config_map: config_map.clone(), node_port: recorded.node_port },
            reason: "--keep-port: the next `up` serves on the same URL".into(),
            writes: writes("patch"),
        });
    }
    if args.keep_port {
        if let Some(p) = recorded.node_port {
            notes.push(format!("keeping the recorded nodePort {p} for the next `up`"));
        }
        return None;
    }
    recorded.owned.then(|| Step {
        action: Action::ForgetState { config_map: config_map.clone() },
        reason: "`cargo xtask up` recorded the deployment there".into(),
        writes: writes("delete"),
    })
}

fn report(plan: &Plan, done: &Done) {
    for note in &plan.notes {
        eprintln!("{note}");
    }
    if done.changes.is_empty() {
        println!("nothing to do: {}", plan.summary);
    } else {
        println!("removed: {}", done.changes.join(", "));
    }
}
