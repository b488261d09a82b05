//! The MCP server: its chart values and mode, the deployed mode read back (its command line as its
//! flag library reads it), the MCP client and the proofs `verify` runs. May use `cluster`, `oci`,
//! `programs` and `common`.

pub(crate) mod check;
pub(crate) mod cli_args;
pub(crate) mod credential_tools;
pub(crate) mod deployed;
pub(crate) mod guard;
pub mod mcp;
pub(crate) mod mode;
pub(crate) mod proof;
pub(crate) mod proof_credentials;
pub(crate) mod proof_door;
pub(crate) mod proof_mode;
pub(crate) mod proof_nodes;
pub(crate) mod proof_rebinding;
pub(crate) mod proof_rights;
pub(crate) mod proof_secrets;
pub(crate) mod proof_ways_in;
pub(crate) mod values;
