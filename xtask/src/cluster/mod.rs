//! The Kubernetes API: the client, the objects the tool owns and their marks, what else a namespace
//! holds, the lock, the record, the rollout and the node addresses. May use `oci`, `programs` and `common`.

pub(crate) mod address;
pub(crate) mod allow_from;
pub(crate) mod client;
pub(crate) mod diagnosis;
pub(crate) mod exec_deadline;
pub(crate) mod helm_history;
pub(crate) mod http2;
pub(crate) mod lock;
pub(crate) mod manifests;
pub(crate) mod namespace_contents;
pub(crate) mod placement;
pub(crate) mod pod_trouble;
pub(crate) mod pods_gone;
#[cfg(target_os = "linux")]
pub(crate) mod process_tree;
pub(crate) mod pull_secret;
pub(crate) mod release_mark;
pub(crate) mod rollout;
pub(crate) mod state_configmap;
