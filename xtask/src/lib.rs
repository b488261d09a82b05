//! The xtask as a library: one module per task and per outside party. `main.rs` is the CLI.

pub mod address;
pub mod chart;
pub mod cluster;
pub mod deployed;
pub mod docker;
pub mod docker_config;
pub mod down;
pub mod execute;
pub mod flags;
pub mod git;
pub mod helm;
pub mod image;
pub mod lock;
pub mod manifests;
pub mod mcp;
pub mod plan;
pub mod proof;
pub mod reference;
pub mod registry;
pub mod rollout;
pub mod selftest;
pub mod shell;
pub mod state;
pub mod status;
pub mod testbed;
pub mod up;
pub mod values;
pub mod verify;

/// rustls needs one crypto provider for the whole process: ring (no aws-lc, no OpenSSL).
pub fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
