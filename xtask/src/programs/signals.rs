//! SIGINT, SIGTERM and SIGHUP, handled alike once a task starts changing things: a step that waits
//! (helm, the rollout, the lock) races against them, and the step loop stops between steps. Before
//! `watch` is called they end the process as usual.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// The first signal received (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);
static NOTIFY: OnceLock<watch::Receiver<i32>> = OnceLock::new();

/// From now on the three signals are caught and remembered, not fatal.
pub fn watch() {
    NOTIFY.get_or_init(|| {
        let (tx, rx) = watch::channel(0);
        for kind in [SignalKind::interrupt(), SignalKind::terminate(), SignalKind::hangup()] {
            let Ok(mut stream) = signal(kind) else { continue };
            let tx = tx.clone();
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    let _ = RECEIVED.compare_exchange(0, kind.as_raw_value(), Ordering::SeqCst, Ordering::SeqCst);
                    tx.send_replace(kind.as_raw_value());
                }
            });
        }
        rx
    });
}

/// The signal received so far, if any.
pub fn pending() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Waits for the next of the three signals (forever when `watch` was not called); its number.
pub async fn next() -> i32 {
    let Some(rx) = NOTIFY.get() else { return std::future::pending().await };
    let mut rx = rx.clone();
    rx.mark_unchanged();
    match rx.changed().await {
        Ok(()) => *rx.borrow(),
        Err(_) => std::future::pending().await,
    }
}

pub fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT (Ctrl-C)",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// Sends `signal` to `pid` (a negative pid: its process group): the one place this tool signals
/// another process. False when there was none to signal.
pub fn send(pid: i32, signal: i32) -> bool {
    // SAFETY: kill(2) with a valid signal number has no memory effects.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// Stops a child: SIGTERM, up to `grace` for it to end by itself (and undo what it made), then
/// SIGKILL; reaped either way.
pub fn stop(child: &mut std::process::Child, grace: std::time::Duration) {
    if let Ok(pid) = i32::try_from(child.id()) {
        send(pid, libc::SIGTERM);
    }
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// For a child that must not outlive this process: on Linux it gets SIGTERM when the tool dies,
/// even by SIGKILL (`pdeathsig`). Elsewhere only the signals the tool receives are passed on to
/// its process group.
pub fn die_with_parent(command: &mut std::process::Command) {
    #[cfg(target_os = "linux")]
    crate::programs::pdeathsig::set(command);
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}
