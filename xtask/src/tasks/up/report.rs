//! `up`, after the plan is carried out: the mode, the nodePort, the URL, the client configuration.

use super::read::Planner;
use crate::cluster::address::{self, current_node_port};
use crate::oci::chart;
use crate::plan::execute::Done;
use crate::server::deployed::{self, Live};
use crate::server::guard;
use crate::server::proof;
use anyhow::{bail, Context, Result};

/// After the plan is carried out: the mode the server runs with, the nodePort, the URL, and the
/// client configuration; `--verify` runs the checks.
pub(super) async fn report(planner: &Planner<'_>, planned_live: Option<Live>, done: Done) -> Result<()> {
    let Planner { cluster, args, input, desired, .. } = *planner;
    let cluster = cluster.context("no cluster to report on")?;
    let (ns, release) = (&args.cluster.namespace, &args.cluster.release);
    let name = chart::fullname(release);
    let live = match done.live.or(planned_live) {
        Some(l) => l,
        None => deployed::read(cluster, ns, &name).await?,
    };
    live.check_mode(&input.mode, &desired.chart.display)?;
    if desired.guard.is_some() && !live.has_container(guard::CONTAINER) {
        bail!("deployed, but the pod has no {} container: the chart {} does not render extraContainers (content before v0.0.58); use a newer chart, or pass --no-guard", guard::CONTAINER, desired.chart.display);
    }
    let node_port = match (done.node_port, &live.service) {
        (Some(p), _) => p,
        (None, Some(s)) => current_node_port(s)?,
        (None, None) => bail!("service {ns}/{name} does not exist: run up again"),
    };
    let url = address::deployment_url(Some(cluster), args.node.node_ip, node_port).await?;
    let pinned = &desired.pinned;
    if done.changes.is_empty() {
        println!("up to date: nothing changed (release {release}, {pinned}, chart {})", desired.chart.digest);
    } else {
        println!("deployed {pinned} as release {release} in {ns}, chart {}", desired.chart.display);
        println!("changed: {}", done.changes.join(", "));
        // kube-proxy programs a new NodePort a moment after the pod is ready: print a URL that answers.
        if let Err(e) = crate::server::mcp::health(&url).await {
            eprintln!(
                "note: {} (from this machine; the laptop may still reach it)",
                crate::common::error_text::one_line(&e)
            );
        }
    }
    println!("mode: {}", live.mode().describe());
    match &desired.guard {
        Some(g) => println!("{}", g.describe()),
        None => println!(
            "no Host/Origin guard (--no-guard): a page the laptop's browser opens can rebind its name to this URL"
        ),
    }
    if let Some(p) = &desired.placement {
        println!("{}", p.describe());
    }
    println!("MCP URL: {url}");
    println!("{}", crate::common::clients::setup(&url, args.client.client));
    if args.verify {
        let report =
            proof::verify(&url, Ok(cluster), &args.cluster, Some(&input.allow_from), args.local_environment).await;
        proof::print(&report, false);
        if !report.passed {
            let failed = report.checks.iter().filter(|c| !c.passed).count();
            bail!("deployed, but verify failed: {failed} of {} checks", report.checks.len());
        }
    }
    Ok(())
}
