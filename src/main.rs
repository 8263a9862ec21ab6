//! The `mcp-bridge` binary: parse the command line, start the runtime, and hand
//! the command to `serve` (which sets up logging: stderr or a file, never
//! stdout) or to its terminal command in [`mcp_bridge::commands`]. Exit 64 on a
//! bad config (`serve` first tells the IDE what is wrong, over the protocol).

use std::process::ExitCode;

use clap::Parser;
use mcp_bridge::app::{self, ServeOptions};
use mcp_bridge::cli::{Cli, Command, OAuthArgs, Prefix, parse_header};
use mcp_bridge::commands::{completions, demo, doctor, install, login, stats, status, tools};
use mcp_bridge::registry::AdHoc;

/// mimalloc instead of the system allocator: rmcp's message handling allocates a
/// lot, and glibc's malloc and free were over a quarter of the instructions the
/// bridge spent per call (benches/profile.rs: 315k -> 259k instructions per call
/// for echo; 248k with the single-threaded runtime below).
/// Built with `no_thp`: mimalloc otherwise asks for transparent huge pages on its
/// arenas, which cost 7 MB of RSS for a process this small.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One thread: the bridge only moves messages between a pipe and sockets, and
    // a single-threaded runtime does that with no cross-thread wake-ups or work
    // stealing. Measured against two workers (benches/bridge.rs): bridge CPU per
    // call -20 to -30%, added latency p50 -0.04 ms, throughput at 32 in flight
    // 0.76x -> 0.86x of direct, and fewer threads' stacks and arenas. Blocking
    // work (keyring, file locks) goes to `spawn_blocking`, as it must on any runtime.
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
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
    let opts = ServeOptions {
        config: cli.config,
        ..ServeOptions::default()
    };
    match cli.command {
        Command::Serve {
            urls,
            headers,
            prefix,
            oauth,
        } => serve(opts, urls, &headers, prefix, &oauth).await,
        Command::Login { idp: true, oauth, .. } => report(login::login_idp(&opts, &oauth.settings()).await),
        Command::Login { server, oauth, .. } => report(login::login(&opts, server.as_deref(), &oauth.settings()).await),
        Command::Logout { server } => report(login::logout(&opts, server.as_deref()).await),
        Command::Auth { action } => report(login::auth(&opts, &action).await),
        Command::Tools { json } => report(tools::tools(&opts, json).await),
        Command::Call { name, args } => report(tools::call(&opts, &name, &args).await),
        Command::Status { json } => report(status::status(&opts, json).await),
        Command::Stats { since, json } => report(stats::stats(&opts, since, json)),
        Command::Doctor => report(doctor::run(&opts).await),
        Command::Install { target, binary } => report(install::install(&opts, &target, binary)),
        Command::Uninstall { target } => report(install::uninstall(&opts, &target)),
        Command::Completions { shell } => report(completions::completions(shell)),
        Command::Demo => match demo::run().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mcp-bridge demo: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `mcp-bridge serve`: a config it cannot use is still served, so that the IDE
/// hears what is wrong over the protocol (it hides stderr); exit 64 afterwards.
async fn serve(
    opts: ServeOptions,
    urls: Vec<String>,
    headers: &[String],
    prefix: Option<Prefix>,
    oauth: &OAuthArgs,
) -> ExitCode {
    let headers = match headers.iter().map(|h| parse_header(h)).collect::<Result<Vec<_>, _>>() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("mcp-bridge: {e}");
            return ExitCode::from(64);
        }
    };
    let opts = ServeOptions {
        adhoc: AdHoc {
            urls,
            headers,
            oauth: oauth.settings(),
        },
        prefix: prefix.map(Into::into),
        ..opts
    };
    let (paths, cfg) = match app::load_config(&opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mcp-bridge: {e}");
            if let Err(e) = app::serve_unconfigured(&e).await {
                eprintln!("mcp-bridge: {e:#}");
            }
            return ExitCode::from(64);
        }
    };
    let _log = mcp_bridge::logging::init(&cfg.log, &paths.state_dir);
    match app::serve(opts, paths, cfg).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("mcp-bridge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Exit status of a terminal command: its error on stderr (escaped: it may
/// quote a server's words), 64 for a bad config.
fn report(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-bridge: {}", mcp_bridge::util::printable_lines(&format!("{e:#}")));
            if e.downcast_ref::<mcp_bridge::config::ConfigError>().is_some() {
                ExitCode::from(64)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
