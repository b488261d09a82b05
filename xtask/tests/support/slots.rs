//! A cap on how many tests deploy to the shared cluster at once: `cargo xtask test` makes a
//! directory of slot files (`KMCP_TEST_SLOTS`); a test holds one, locked, from its first `Deploy`
//! until its thread ends. On two cores, sixty rollouts at once each outlast any timeout; a dozen
//! keep the cores as busy and each pod starts in seconds.

use std::cell::RefCell;
use std::fs::File;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

thread_local! {
    static HELD: RefCell<Option<File>> = const { RefCell::new(None) };
}

/// Takes a slot for this test's thread (once; none without `KMCP_TEST_SLOTS`), waiting for one.
pub fn take() {
    let Some(dir) = std::env::var_os("KMCP_TEST_SLOTS") else { return };
    HELD.with(|held| {
        if held.borrow().is_some() {
            return;
        }
        let mut slots: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        assert!(!slots.is_empty(), "no slot files in KMCP_TEST_SLOTS={}", dir.to_string_lossy());
        // Each test starts at a slot of its own, so that waiters do not all try the same file first.
        static TAKEN: AtomicUsize = AtomicUsize::new(0);
        let offset = (std::process::id() as usize + TAKEN.fetch_add(1, Ordering::Relaxed)) % slots.len();
        slots.rotate_left(offset);
        loop {
            for slot in &slots {
                let file = File::open(slot).unwrap();
                if file.try_lock().is_ok() {
                    *held.borrow_mut() = Some(file);
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    });
}
