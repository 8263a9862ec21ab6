//! The `mcp-bridge` binary: parse the command line, set up logging (stderr or a
//! file, never stdout), and run the chosen command. Exit 64 on a bad config
//! (`serve` first tells the IDE what is wrong, over the protocol).

use std::process::ExitCode;

use clap::Parser;
use mcp_bridge::app::{self, ServeOptions};
use mcp_bridge::cli::{Cli, Command, parse_header};
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
    match cli.command {
        Command::Login { server, oauth } => {
            let opts = ServeOptions {
                config: cli.config,
                ..ServeOptions::default()
            };
            let cfg = app::load_config(&opts).map(|(p, c)| (p.state_dir, c.log));
            let _guard = cfg.as_ref().ok().map(|(dir, log)| mcp_bridge::logging::init(log, dir));
            report(mcp_bridge::commands::login::login(&opts, server.as_deref(), &oauth.settings()).await)
        }
        Command::Tools { json } => {
            let opts = ServeOptions {
                config: cli.config,
                ..ServeOptions::default()
            };
            report(mcp_bridge::commands::tools::tools(&opts, json).await)
        }
        Command::Call { name, args } => {
            let opts = ServeOptions {
                config: cli.config,
                ..ServeOptions::default()
            };
            report(mcp_bridge::commands::tools::call(&opts, &name, &args).await)
        }
        Command::Status { json } => {
            let opts = ServeOptions {
                config: cli.config,
                ..ServeOptions::default()
            };
            report(mcp_bridge::commands::status::status(&opts, json).await)
        }
        Command::Stats { since, json } => {
            let opts = ServeOptions {
                config: cli.config,
                ..ServeOptions::default()
            };
            report(mcp_bridge::commands::stats::stats(&opts, since, json))
        }
        Command::Auth { action } => {
            let opts = ServeOptions {
                config: cli.config,
                ..ServeOptions::default()
            };
            // Logging, as for `login`: what the credential store says (its
            // fallback to a file, an entry it replaced) is seen.
            let cfg = app::load_config(&opts).map(|(p, c)| (p.state_dir, c.log));
            let _guard = cfg.as_ref().ok().map(|(dir, log)| mcp_bridge::logging::init(log, dir));
            report(mcp_bridge::commands::login::auth(&opts, &action).await)
        }
        Command::Logout { server } => {
            let opts = ServeOptions {
                config: cli.config,
                ..ServeOptions::default()
            };
            let cfg = app::load_config(&opts).map(|(p, c)| (p.state_dir, c.log));
            let _guard = cfg.as_ref().ok().map(|(dir, log)| mcp_bridge::logging::init(log, dir));
            report(mcp_bridge::commands::login::logout(&opts, server.as_deref()).await)
        }
        Command::Serve {
            urls,
            headers,
            prefix,
            oauth,
        } => {
            let headers = match headers.iter().map(|h| parse_header(h)).collect::<Result<Vec<_>, _>>() {
                Ok(h) => h,
                Err(e) => {
                    eprintln!("mcp-bridge: {e}");
                    return ExitCode::from(64);
                }
            };
            let opts = ServeOptions {
                config: cli.config,
                adhoc: AdHoc {
                    urls,
                    headers,
                    oauth: oauth.settings(),
                },
                prefix: prefix.map(Into::into),
            };
            let (paths, cfg) = match app::load_config(&opts) {
                Ok(c) => c,
                Err(e) => {
                    // The IDE hides stderr: it hears the error over the protocol.
                    eprintln!("mcp-bridge: {e}");
                    if let Err(e) = app::serve_unconfigured(&e).await {
                        eprintln!("mcp-bridge: {e:#}");
                    }
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
        Command::Install { target, binary } => {
            let opts = install_options(target, cli.config, binary);
            report(mcp_bridge::install::install(&opts))
        }
        Command::Uninstall { target } => {
            let opts = install_options(target, cli.config, None);
            report(mcp_bridge::install::uninstall(&opts))
        }
        Command::Doctor => {
            let opts = ServeOptions {
                config: cli.config,
                ..ServeOptions::default()
            };
            report(mcp_bridge::commands::doctor::run(&opts).await)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "mcp-bridge", &mut std::io::stdout());
            ExitCode::SUCCESS
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

fn install_options(
    t: mcp_bridge::cli::InstallArgs,
    config: Option<std::path::PathBuf>,
    binary: Option<std::path::PathBuf>,
) -> mcp_bridge::install::Options {
    mcp_bridge::install::Options {
        clients: t.clients,
        all: t.all,
        scope: t.scope,
        name: t.name,
        dry_run: t.dry_run,
        config,
        binary,
    }
}
