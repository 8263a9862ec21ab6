//! The `mcp-bridge` binary: parse the command line, set up logging (stderr or a
//! file, never stdout), and run the chosen command. Exit 64 on a bad config.

use std::process::ExitCode;

use clap::Parser;
use mcp_bridge::app::{self, ServeOptions};
use mcp_bridge::cli::{Cli, Command, parse_header};
use mcp_bridge::registry::AdHoc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcp-bridge: cannot start the async runtime: {e}");
            return ExitCode::from(70);
        }
    };
    let code = rt.block_on(run(cli));
    // Do not wait for a blocking stdin read that may never finish: the work is done.
    rt.shutdown_timeout(std::time::Duration::from_millis(50));
    code
}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve { urls, headers, prefix } => {
            let headers = match headers.iter().map(|h| parse_header(h)).collect::<Result<Vec<_>, _>>() {
                Ok(h) => h,
                Err(e) => {
                    eprintln!("mcp-bridge: {e}");
                    return ExitCode::from(64);
                }
            };
            let opts = ServeOptions {
                config: cli.config,
                adhoc: AdHoc { urls, headers },
                prefix: prefix.map(Into::into),
            };
            let (paths, cfg) = match app::load_config(&opts) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("mcp-bridge: {e}");
                    return ExitCode::from(64);
                }
            };
            let _guard = mcp_bridge::logging::init(&cfg.log, &paths.state_dir);
            match app::serve(opts, paths, cfg).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("mcp-bridge: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Demo => {
            let _guard = mcp_bridge::logging::init(&Default::default(), &std::env::temp_dir());
            match mcp_bridge::demo::run().await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mcp-bridge demo: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
