//! A kubeconfig's exec plugin runs inside kube's client set-up, blocking and with no time limit.
//! Here that set-up runs on a thread of its own under a deadline; a plugin still running then is
//! killed, with every process it started, and nothing else (on Linux, which names a thread's
//! children; elsewhere the deadline still ends the wait and the plugin is left to itself).

use anyhow::{anyhow, bail, Result};
use kube::config::Kubeconfig;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
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

/// Runs `set_up` on a blocking thread; past the deadline, kills what that thread started (the
/// plugin, and every process the plugin started) and names `plugin`. Other programs this process
/// runs meanwhile (a credential helper, helm) are left alone.
pub async fn within<T: Send + 'static>(
    plugin: Option<String>,
    set_up: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let thread = Arc::new(AtomicI32::new(0));
    let mine = thread.clone();
    let mut task = tokio::task::spawn_blocking(move || {
        mine.store(this_thread(), Ordering::SeqCst);
        set_up()
    });
    match tokio::time::timeout(EXEC_DEADLINE, &mut task).await {
        Ok(done) => done.map_err(|e| anyhow!("the kube client's set-up stopped: {e}"))?,
        Err(_) => {
            // kube runs the plugin again when a run of it fails: stop each run until it gives up.
            let mut killed = 0;
            for _ in 0..100 {
                killed += kill_children(thread.load(Ordering::SeqCst));
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

#[cfg(target_os = "linux")]
use crate::cluster::process_tree::{kill_children, this_thread};

#[cfg(not(target_os = "linux"))]
fn this_thread() -> i32 {
    0
}

#[cfg(not(target_os = "linux"))]
fn kill_children(_thread: i32) -> usize {
    0
}
