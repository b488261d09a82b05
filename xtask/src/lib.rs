//! The xtask as a library: one module per task and per outside party. `main.rs` is the CLI; the
//! library exposes only what it and the tests use (the tidy test checks).

mod address;
mod allow_from;
mod chart;
mod check;
mod cluster;
mod deployed;
mod docker;
mod docker_config;
pub mod down;
mod execute;
mod flags;
mod git;
mod helm;
mod host_state;
pub mod image;
mod lock;
mod manifests;
pub mod mcp;
pub mod plan;
mod pod_trouble;
mod proof;
mod proof_door;
mod proof_secrets;
mod pull_secret;
mod reference;
mod registry;
mod rollout;
pub mod selftest;
pub mod shell;
mod state;
pub mod status;
pub mod testbed;
pub mod tls;
pub mod up;
mod values;
pub mod verify;
