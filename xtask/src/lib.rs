//! The xtask as a library, one folder per layer, lowest first: `common`, `programs`, `oci`,
//! `cluster`, `server`, `plan`, `local`, `tasks`; each imports only layers under it (the tidy
//! test checks). `main.rs` is the CLI; the library exposes only what it and the tests use.

mod cluster;
pub mod common;
#[cfg(target_os = "linux")]
pub mod local;
mod oci;
pub mod plan;
pub mod programs;
pub mod server;
pub mod tasks;
