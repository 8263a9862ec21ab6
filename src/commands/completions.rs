//! `mcp-bridge completions SHELL`: the shell completion script clap writes for
//! the command line in [`crate::cli`], printed through [`super::out`].

use clap::CommandFactory;

use crate::cli::Cli;

/// `mcp-bridge completions SHELL`.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "mcp-bridge", &mut script);
    super::out::print(script)
}
