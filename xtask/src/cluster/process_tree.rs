//! Linux only: a thread's child processes, and their descendants, read from /proc and killed.

/// This thread's id (gettid).
pub fn this_thread() -> i32 {
    // SAFETY: gettid(2) takes no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// Kills the children `thread` of this process started, with all their descendants. How many.
pub fn kill_children(thread: i32) -> usize {
    kill_tree(&format!("/proc/self/task/{thread}/children"))
}

/// The pids in a `children` file of /proc.
fn pids(children_file: &str) -> Vec<u32> {
    let text = std::fs::read_to_string(children_file).unwrap_or_default();
    text.split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

/// The children of `pid`, from each of its threads.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    tasks.flatten().flat_map(|t| pids(&t.path().join("children").to_string_lossy())).collect()
}

/// Kills the processes a `children` file names and all their descendants (the whole tree is listed
/// first: a killed parent's children would be handed to init and lost from view). How many.
fn kill_tree(children_file: &str) -> usize {
    let (mut tree, mut next) = (Vec::new(), pids(children_file));
    while let Some(pid) = next.pop() {
        next.extend(children(pid));
        tree.push(pid);
    }
    for pid in &tree {
        let Ok(pid) = i32::try_from(*pid) else { continue };
        crate::programs::signals::send(pid, libc::SIGKILL);
    }
    tree.len()
}
