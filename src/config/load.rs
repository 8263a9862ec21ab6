//! The config's IO, in one place: reading the file ([`Config::load`]), the
//! process environment ([`env_var`], [`expand_env`]) and the OS's dirs
//! ([`Paths::resolve`]). Everything else in [`crate::config`] is pure and takes
//! what these read as arguments.

use std::ffi::OsString;
use std::path::Path;

use super::{APP, Config, ConfigError, OsDirs, Paths, expand_with, xdg_dirs};

impl Config {
    /// Read and parse the file at `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Io {
                path: path.into(),
                source,
            }),
        }
    }
}

impl Paths {
    /// Resolve the paths from an explicit `--config`, the environment and the OS.
    pub fn resolve(explicit: Option<&Path>) -> Paths {
        Paths::from_env(explicit, |var: &str| std::env::var_os(var), os_dirs)
    }
}

/// A variable of the process environment (`None` when unset or not UTF-8): the
/// lookup the pure functions take ([`expand_with`],
/// [`crate::registry::resolve_with`]) when they serve the real process.
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Expand `${VAR}` from the process environment. Unknown variables are an
/// error naming them.
pub fn expand_env(value: &str) -> Result<String, String> {
    expand_with(value, env_var)
}

/// The OS's dirs: XDG-style on Linux and macOS, the platform's own on Windows,
/// a temp dir when there is no home.
fn os_dirs() -> OsDirs {
    if cfg!(windows) {
        if let Some(p) = directories::ProjectDirs::from("dev", "mcp-bridge", APP) {
            return OsDirs {
                config: p.config_dir().into(),
                cache: p.cache_dir().into(),
                state: p.data_local_dir().into(),
            };
        }
    } else if let Some(b) = directories::BaseDirs::new() {
        return xdg_dirs(b.home_dir(), |var: &str| -> Option<OsString> { std::env::var_os(var) });
    }
    let tmp = std::env::temp_dir().join(APP);
    OsDirs {
        config: tmp.clone(),
        cache: tmp.join("cache"),
        state: tmp.join("state"),
    }
}
