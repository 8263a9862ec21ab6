//! `mcp-bridge install`: registers the bridge's stdio entry in IDE config files.
//!
//! [`edit`] owns the text edits (parse, upsert, remove, diff) and does no IO.

pub mod edit;
