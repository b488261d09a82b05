//! A line every 20 s while a long, possibly silent program runs (a `go build` prints nothing for
//! minutes): what runs, for how long, and the last line it wrote when its output goes to a log.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const EVERY: Duration = Duration::from_secs(20);

/// Runs `work`, printing `<what>: still running after N s` on stderr every 20 s until it ends
/// (with the last line of `log`, when given).
pub fn while_running<T>(what: &str, log: Option<&Path>, work: impl FnOnce() -> T) -> T {
    let done = AtomicBool::new(false);
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut next = EVERY;
            while !done.load(Ordering::Relaxed) {
                if start.elapsed() >= next {
                    let last = log.and_then(last_line).map(|l| format!(": {l}")).unwrap_or_default();
                    eprintln!("{what}: still running after {} s{last}", start.elapsed().as_secs());
                    next += EVERY;
                }
                std::thread::park_timeout(Duration::from_millis(250));
            }
        });
        let out = work();
        done.store(true, Ordering::Relaxed);
        out
    })
}

/// The last line of a log with text on it, cut to 120 characters.
pub fn last_line(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    Some(line.chars().take(120).collect())
}
