//! Logging: `tracing` to stderr (quiet by default: `warn`) or to a file in the
//! state dir. stdout is the protocol and is never written here. `RUST_LOG` wins
//! over the config's level. A log file that cannot be opened falls back to stderr.

use std::path::Path;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFile};

/// Keeps the log writer alive; drop it last.
pub struct Guard;

pub fn init(cfg: &LogConfig, state_dir: &Path) -> Guard {
    // rmcp logs whole messages at debug, notifications at info, and every error
    // response it sends or gets at warn: errors that the bridge
    // reports itself. Keep it at error unless RUST_LOG asks for more. Its
    // transport worker logs every failed connect attempt as an error; the bridge
    // says each outage once itself, so that one stays quiet by default.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},rmcp=error,rmcp::transport::worker=off", cfg.level)))
        // rmcp logs the authorization code and token exchanges at debug: never,
        // whatever RUST_LOG says.
        .add_directive("rmcp::transport::auth=warn".parse().expect("static directive"));
    let file = match &cfg.file {
        None | Some(LogFile::Default(false)) => None,
        Some(LogFile::Default(true)) => Some(state_dir.join("bridge.log")),
        Some(LogFile::Path(p)) => Some(p.clone()),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false);
    if let Some(path) = file {
        let _ = path.parent().map(std::fs::create_dir_all);
        match std::fs::OpenOptions::new().create(true).append(true).open(&path) {
            Ok(f) => {
                let _ = builder.with_writer(std::sync::Mutex::new(f)).try_init();
                return Guard;
            }
            Err(e) => eprintln!(
                "mcp-bridge: cannot open log file {}: {e}; logging to stderr",
                path.display()
            ),
        }
    }
    let _ = builder.with_writer(std::io::stderr).try_init();
    Guard
}
