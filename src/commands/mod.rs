//! Commands for people at a terminal: every subcommand but `serve`, one file
//! each (or per family). They read the same config and registry as `serve`,
//! talk to the same credential store, and reach servers through a bridge in
//! this process (`local`), so what a person sees is what the IDE would.
//!
//! Output goes through one writer, [`out::print`], and tables through one
//! painter (`table`); messages for the person go to stderr. Nothing here
//! prints a secret, and what servers, registries and files say is escaped
//! ([`crate::util::printable`]) before a terminal sees it.

pub mod completions;
pub mod demo;
pub mod doctor;
pub mod install;
mod local;
pub mod login;
pub mod out;
pub mod stats;
pub mod status;
mod table;
pub mod tools;
