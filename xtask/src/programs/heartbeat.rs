//! A line every 20 s while a long, possibly silent program runs (a `go build` prints nothing for
//! minutes): what runs, and for how long.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const EVERY: Duration = Duration::from_secs(20);

/// Runs `work`, printing `<what>: still running after N s` on stderr every 20 s until it ends.
pub fn while_running<T>(what: &str, work: impl FnOnce() -> T) -> T {
    let done = AtomicBool::new(false);
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut next = EVERY;
            while !done.load(Ordering::Relaxed) {
                if start.elapsed() >= next {
                    eprintln!("{what}: still running after {} s", start.elapsed().as_secs());
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
