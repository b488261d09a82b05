//! The outside programs: the one shell that runs and logs every command, and helm, docker and git
//! on top of it. May use `common`.

pub(crate) mod docker;
pub(crate) mod git;
pub(crate) mod helm;
pub mod shell;
