//! mcp-bridge: one stdio MCP server in front of many remote Streamable HTTP MCP
//! servers.
//!
//! The IDE launches `mcp-bridge serve`. [`app`] reads the [`config`], resolves the
//! servers from the [`registry`], builds the [`bridge`] (seeded from the disk
//! [`cache`]), and serves the IDE through [`downstream`]. Each remote server gets
//! one owner task in [`upstream`]. The merged names and routing tables live in
//! [`catalog`], which is pure data; [`discovery`] indexes its tools for search
//! when the catalog is too long to list. A serving bridge publishes its live state
//! through [`state`], and records every forwarded tool call in the [`audit`]
//! log. [`policy`] decides what the IDE may see and call; [`ide`] knows what each
//! known IDE does to tool names (its prefix, length limit and characters) and how
//! many tools it copes with.
//!
//! Every other subcommand is in [`commands`], parsed by [`cli`]: `status` reads
//! that state, `stats` sums up the audit log, `install` drives the [`install`]
//! library (IDE config files), `tools`, `call` and `doctor` run a bridge in
//! process, `demo` launches `serve` in front of the [`samples`].
//!
//! Protocol knowledge stays at the edges: `downstream` (stdio, IDE side),
//! `upstream` (Streamable HTTP) and `auth` (OAuth), all on the HTTP client of
//! [`net`]. `catalog`, `policy`, `discovery`, config parsing and registry
//! resolution do no IO; the config's file and environment are read in
//! `config::load` alone. stdout is written in two places only: by
//! `downstream::stdio` under `serve`, and by [`commands::out::print`] for every
//! other command (`print!` is denied below; `std::io::stdout` is banned in
//! clippy.toml but there). The layers and invariants are in ARCHITECTURE.md.

#![deny(clippy::print_stdout)] // stdout is the protocol (see ARCHITECTURE.md)

pub mod app;
pub mod audit;
pub mod auth;
pub mod bridge;
pub mod cache;
pub mod catalog;
pub mod cli;
pub mod commands;
pub mod config;
pub mod discovery;
pub mod downstream;
pub mod ide;
pub mod install;
pub mod live;
pub mod logging;
pub mod net;
pub mod policy;
pub mod registry;
pub mod samples;
pub mod shutdown;
pub mod state;
pub mod telemetry;
pub mod upstream;
pub mod util;
