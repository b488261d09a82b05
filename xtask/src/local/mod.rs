//! The local environment `cargo xtask dev` and `cargo xtask test` run on one Linux machine: a
//! registry on loopback, the real BuildKit and buildx, and the cluster with its real node, each
//! built from Go (cached under `target/`), started in namespaces of their own and stopped with
//! what they made; Debian's packages they need; and the host state that must be left as found.
//! May use `programs` and `common`.

pub mod buildkit;
pub(crate) mod cluster;
pub(crate) mod environment;
pub(crate) mod go_build;
pub(crate) mod go_cache;
pub mod helm;
pub(crate) mod host_state;
pub(crate) mod packages;
pub(crate) mod pidfile;
pub mod registry;
