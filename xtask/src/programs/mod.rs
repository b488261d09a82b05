//! The outside programs: the one shell that runs and logs every command (and the signals it
//! passes on), and helm, docker and git on top of it. May use `common`.

pub(crate) mod docker;
pub(crate) mod git;
pub(crate) mod heartbeat;
pub(crate) mod helm;
#[cfg(target_os = "linux")]
pub(crate) mod pdeathsig;
pub mod shell;
pub(crate) mod signals;
