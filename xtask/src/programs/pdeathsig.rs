//! Linux only: a child that gets SIGTERM when the tool dies, even by SIGKILL (`PR_SET_PDEATHSIG`).

/// For a child that must not outlive this process: it gets SIGTERM when the tool dies, even by
/// SIGKILL (`PR_SET_PDEATHSIG`; the runtime is single-threaded, so the parent thread is the
/// process's), and it does not start if the tool is already gone.
pub fn set(command: &mut std::process::Command) {
    // SAFETY: getpid is async-signal-safe.
    let parent = unsafe { libc::getpid() };
    let hook = move || {
        // SAFETY: prctl and getppid are async-signal-safe; nothing is allocated between fork and exec.
        unsafe {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 || libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
        Ok(())
    };
    // SAFETY: the hook only makes async-signal-safe calls.
    unsafe { std::os::unix::process::CommandExt::pre_exec(command, hook) };
}
