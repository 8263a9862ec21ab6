//! Command-line interface: what each subcommand takes.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::catalog::PrefixMode;

#[derive(Debug, Parser)]
#[command(name = "mcp-bridge", version, about = "One stdio MCP server in front of many remote MCP servers", long_about = None)]
pub struct Cli {
    /// Config file (default: $MCP_BRIDGE_CONFIG, then ~/.config/mcp-bridge/config.toml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP on stdio (what IDEs launch). URLs given here are bridged in
    /// addition to the config's servers.
    Serve {
        /// Streamable HTTP endpoints to bridge, e.g. https://mcp.example.com/mcp.
        #[arg(value_name = "URL")]
        urls: Vec<String>,
        /// A header for the URLs given here, as 'Name: value' (repeatable).
        #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// Tool name prefixes: auto (only with several servers), always, never.
        #[arg(long, value_enum)]
        prefix: Option<Prefix>,
    },
    /// Start two sample servers on loopback and show the bridge working in front of them.
    Demo,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Prefix {
    Auto,
    Always,
    Never,
}

impl From<Prefix> for PrefixMode {
    fn from(p: Prefix) -> Self {
        match p {
            Prefix::Auto => PrefixMode::Auto,
            Prefix::Always => PrefixMode::Always,
            Prefix::Never => PrefixMode::Never,
        }
    }
}

/// Parse `Name: value`.
pub fn parse_header(h: &str) -> Result<(String, String), String> {
    let (name, value) = h
        .split_once(':')
        .ok_or_else(|| format!("header {h:?} is not in the form 'Name: value'"))?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) {
        return Err(format!("header name {name:?} is not valid"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert_eq!(parse_header("X-Key: a:b ").unwrap(), ("X-Key".into(), "a:b".into()));
        assert!(parse_header("nocolon").is_err());
        assert!(parse_header("bad name: x").is_err());
    }
}
