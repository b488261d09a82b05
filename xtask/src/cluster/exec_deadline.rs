//! A kubeconfig's exec plugin runs inside kube's client set-up, blocking and with no time limit.
//! Here that set-up runs on a thread of its own under a deadline; a plugin still running then is
//! killed, with every process it started.

use anyhow::{anyhow, bail, Result};
use kube::config::Kubeconfig;
use std::time::Duration;

/// How long the set-up (and so an exec plugin) may take.
pub const EXEC_DEADLINE: Duration = Duration::from_secs(20);

/// The exec plugin of the user the context (`--context`, else the current one) names, if any.
pub fn plugin(kubeconfig: &Kubeconfig, context: Option<&str>) -> Option<String> {
    let context = context.or(kubeconfig.current_context.as_deref())?;
    let named = kubeconfig.contexts.iter().find(|c| c.name == context)?;
    let user = named.context.as_ref()?.user.as_deref()?;
    let auth = kubeconfig.auth_infos.iter().find(|a| a.name == user)?;
    auth.auth_info.as_ref()?.exec.as_ref()?.command.clone()
}

/// Runs `set_up` on a blocking thread; past the deadline, kills this process's children (the
/// plugin and what it started) and names `plugin`.
pub async fn within<T: Send + 'static>(
    plugin: Option<String>,
    set_up: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let mut task = tokio::task::spawn_blocking(set_up);
    match tokio::time::timeout(EXEC_DEADLINE, &mut task).await {
        Ok(done) => done.map_err(|e| anyhow!("the kube client's set-up stopped: {e}"))?,
        Err(_) => {
            // kube runs the plugin again when a run of it fails: stop each run until it gives up.
            let mut killed = 0;
            for _ in 0..100 {
                killed += kill_descendants();
                if task.is_finished() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let what =
                plugin.map_or("the kubeconfig's exec plugin".into(), |p| format!("the kubeconfig's exec plugin `{p}`"));
            bail!(
                "{what} gave no credentials within {} s: stopped it ({killed} processes); run it by hand to see what it waits for (a login prompt, a network)",
                EXEC_DEADLINE.as_secs()
            )
        }
    }
}

/// The children of `pid`, from every thread's `/proc/<pid>/task/<tid>/children`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let lists = tasks.flatten().map(|t| std::fs::read_to_string(t.path().join("children")).unwrap_or_default());
    lists.flat_map(|l| l.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<u32>>()).collect()
}

/// Kills every descendant of this process (the whole tree is listed first: a killed parent's
/// children would be handed to init and lost from view). How many were killed.
fn kill_descendants() -> usize {
    let (mut tree, mut next) = (Vec::new(), children(std::process::id()));
    while let Some(pid) = next.pop() {
        next.extend(children(pid));
        tree.push(pid);
    }
    for pid in &tree {
        let Ok(pid) = i32::try_from(*pid) else { continue };
        // SAFETY: kill(2) with a pid read from /proc and a valid signal has no memory effects.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    tree.len()
}
