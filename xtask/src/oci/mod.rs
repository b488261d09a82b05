//! Registries: image references, credentials, the OCI registry client, each platform's binary
//! proven from its layers, and the chart. May use `programs` and `common`.

pub(crate) mod base_config;
pub(crate) mod binaries;
pub(crate) mod chart;
pub(crate) mod chart_push;
pub(crate) mod docker_config;
pub(crate) mod dockerfile;
pub(crate) mod index;
pub(crate) mod layer_scan;
pub(crate) mod reference;
pub(crate) mod registry;
