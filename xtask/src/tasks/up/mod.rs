//! `cargo xtask up`: namespace and RBAC from `deploy/`, the chart pinned by the digest of its
//! content, a rollout check, the mode the server really runs with, and the NodePort URL. Reads
//! top to bottom: inputs, the desired release, the plan, print or carry it out, the report. A
//! second run with nothing changed has an empty plan.

mod assemble;
mod decide;
mod desired;
mod inputs;
mod rbac;
mod read;
mod report;

use crate::cluster::client::Cluster;
use crate::cluster::placement;
use crate::plan::data::Plan;
use crate::plan::execute::{execute, Outcome};
use crate::programs::helm;
use crate::programs::shell::Shell;
use anyhow::Result;
use desired::Desired;
pub use inputs::Args;
use inputs::{warn_about_mode, Inputs};
use read::Planner;
use report::report;

/// `carry_out` says, for a plan, whether to carry it out (`main` prints it under `--dry-run`).
pub async fn run(sh: &Shell, args: Args, carry_out: impl Fn(&Plan) -> Result<bool>) -> Result<()> {
    let input = Inputs::from_args(&args)?;
    warn_about_mode(&args);
    let mut notes = Vec::new();
    // The cluster (and the node the server belongs on) and the registries at once; their answers
    // (and errors) in this order.
    let reach_and_place = async {
        let cluster = Cluster::reach(&args.cluster).await?;
        let placement = placement::decide(&cluster, args.node.node_ip, args.on_node.as_deref()).await;
        anyhow::Ok((cluster, placement))
    };
    let (reached, desired) = tokio::join!(reach_and_place, Desired::work_out(sh, &input));
    let (cluster, placement) = sh.unless_dry_run(reached, &mut notes)?.unzip();
    sh.unless_dry_run(helm::find(), &mut notes)?;
    let (mut desired, desired_notes) = desired?;
    notes.extend(desired_notes);
    desired.pin_to(placement.transpose()?.flatten())?;
    let planner = Planner {
        sh,
        cluster: cluster.as_ref(),
        args: &args,
        input: &input,
        desired: &desired,
        helm: Default::default(),
    };
    loop {
        let planned = planner.plan(&notes).await?;
        if !carry_out(&planned.plan)? {
            return Ok(());
        }
        let helm = planner.helm.get().and_then(Option::as_ref);
        match execute(sh, cluster.as_ref(), helm, &planned.plan).await? {
            Outcome::Replan => continue,
            Outcome::Done(done) => return report(&planner, planned.live, *done).await,
        }
    }
}
