//! Plain helpers any layer may use: parsing what users type, the process's TLS provider. Uses
//! no other layer.

pub(crate) mod flags;
pub mod tls;
