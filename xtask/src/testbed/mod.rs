//! What `cargo xtask test` builds and starts for the tests (the cluster, its node, helm, the
//! registry, BuildKit and buildx, act) and the host state it checks. May use `programs` and `common`.

pub(crate) mod act;
pub(crate) mod buildkit;
mod go_cache;
pub(crate) mod host_state;
pub(crate) mod packages;
pub mod parts;
