//! Plain helpers any layer may use: parsing what users type, platform names, the TLS provider.
//! Uses no other layer.

pub(crate) mod flags;
pub(crate) mod platform;
pub mod tls;
