//! A plan as data (what will change, and why) and the code that carries it out. May use every layer
//! under it: `server`, `cluster`, `oci`, `programs`, `common`.

pub mod data;
pub(crate) mod execute;
