//! Registries: image references, credentials, the OCI registry client and the chart. May use
//! `programs` and `common`.

pub(crate) mod chart;
pub(crate) mod docker_config;
pub(crate) mod reference;
pub(crate) mod registry;
