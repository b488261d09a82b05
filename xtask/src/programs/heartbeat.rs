//! A line every 20 s while a long, possibly silent program runs (a `go build` prints nothing for
//! minutes): what runs, for how long, and the last line it wrote when its output goes to a log.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const EVERY: Duration = Duration::from_secs(20);

/// Runs `work`, printing `<what>: still running after N s` on stderr every 20 s until it ends
/// (with the last line of `log`, when given).
pub fn while_running<T>(what: &str, log: Option<&Path>, work: impl FnOnce() -> T) -> T {
    every(EVERY, what, log, work, |line| eprintln!("{line}"))
}

fn every<T>(
    period: Duration,
    what: &str,
    log: Option<&Path>,
    work: impl FnOnce() -> T,
    say: impl Fn(String) + Sync,
) -> T {
    let done = AtomicBool::new(false);
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut next = period;
            while !done.load(Ordering::Relaxed) {
                if start.elapsed() >= next {
                    let last = log.and_then(last_line).map(|l| format!(": {l}")).unwrap_or_default();
                    say(format!("{what}: still running after {} s{last}", start.elapsed().as_secs()));
                    next += period;
                }
                std::thread::park_timeout((period / 80).max(Duration::from_millis(1)));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn a_line_each_period_with_the_logs_last_line_until_the_work_ends() {
        let log = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(log.path(), "#1 [builder 1/4] FROM go\n#5 [builder 4/4] RUN make build-multiarch\n\n").unwrap();
        let said = Mutex::new(Vec::new());
        let out = every(
            Duration::from_millis(40),
            "building linux/arm64",
            Some(log.path()),
            || {
                std::thread::sleep(Duration::from_millis(220));
                7
            },
            |l| said.lock().unwrap().push(l),
        );
        assert_eq!(out, 7);
        let said = said.into_inner().unwrap();
        assert!(said.len() >= 3, "{said:?}");
        assert!(
            said[0].starts_with("building linux/arm64: still running after 0 s: #5 [builder 4/4] RUN make"),
            "{said:?}"
        );
    }
}
