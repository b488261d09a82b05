//! Plain helpers any layer may use: parsing what users type, platform names, the TLS provider,
//! where the workspace is.
//! Uses no other layer.

pub mod clients;
pub mod error_text;
pub(crate) mod flags;
pub(crate) mod interfaces;
pub(crate) mod platform;
pub mod tls;
pub(crate) mod workspace;
