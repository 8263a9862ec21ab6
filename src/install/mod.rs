//! `mcp-bridge install` and `uninstall`: put the bridge's entry into IDE config
//! files, and take it out again, without harming anything else in them.
//! [`clients`] knows where each IDE keeps its file and the entry's shape;
//! [`edit`] changes the text (comments, order, line endings kept); this module
//! does the file work: read, back up once, write atomically keeping the mode,
//! and say what changed.

pub mod clients;
pub mod edit;

use std::path::{Path, PathBuf};

use serde_json::Value;

pub use clients::{Client, Machine, Scope};

/// The entry name IDEs show (short: Claude Code shows tools as
/// `mcp__<entry>__<tool>`).
pub const DEFAULT_NAME: &str = "mcp-bridge";

/// What `install` / `uninstall` were asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub clients: Vec<Client>,
    /// Every client that looks installed.
    pub all: bool,
    pub scope: Scope,
    pub name: String,
    pub dry_run: bool,
    /// A non-default config for the entry (`serve --config PATH`).
    pub config: Option<PathBuf>,
    /// The binary to launch (default: this one).
    pub binary: Option<PathBuf>,
}

/// The outcome for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Written,
    /// Already as wanted: nothing written.
    Unchanged,
    /// `--dry-run`: the diff that would be applied.
    WouldWrite(String),
    /// Uninstall found no entry.
    Absent,
}

/// Why one file was not changed (the file itself is untouched).
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{path}: {source}; the file was left untouched")]
    Edit { path: String, source: edit::EditError },
    #[error("{path}: {message}; the file was left untouched")]
    Io { path: String, message: String },
}

/// The arguments and environment the entry launches the bridge with: `serve`,
/// plus the config and bridge home in use when they are not the defaults (an
/// IDE does not inherit this shell's environment). Never a secret.
pub fn launch(config: Option<&Path>) -> std::io::Result<(Vec<String>, serde_json::Map<String, Value>)> {
    let mut args = vec!["serve".to_owned()];
    let config = config
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("MCP_BRIDGE_CONFIG").map(PathBuf::from));
    if let Some(c) = config {
        args.push("--config".into());
        args.push(std::path::absolute(c)?.display().to_string());
    }
    let mut env = serde_json::Map::new();
    if let Some(home) = std::env::var_os("MCP_BRIDGE_HOME").filter(|h| !h.is_empty()) {
        env.insert(
            "MCP_BRIDGE_HOME".into(),
            Value::String(std::path::absolute(PathBuf::from(home))?.display().to_string()),
        );
    }
    Ok((args, env))
}

/// Whether a `command` launches a bridge binary (to adopt an entry the user
/// renamed, and for `doctor`).
pub fn is_bridge_command(command: &str) -> bool {
    let name = command.rsplit(['/', '\\']).next().unwrap_or(command);
    name == "mcp-bridge" || name.eq_ignore_ascii_case("mcp-bridge.exe")
}

/// Read a config file; a missing one reads as empty (it will be created).
fn read(path: &Path) -> Result<(String, bool), InstallError> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(|s| (s, true))
            .map_err(|_| InstallError::Io {
                path: path.display().to_string(),
                message: "not UTF-8 text".into(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((String::new(), false)),
        Err(e) => Err(InstallError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }),
    }
}

/// Copy `path` to `<path>.mcp-bridge.bak` unless a backup exists: the first
/// backup is the file as it was before the bridge ever touched it.
fn back_up(path: &Path) -> std::io::Result<Option<PathBuf>> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".mcp-bridge.bak");
    let bak = path.with_file_name(name);
    if bak.exists() {
        return Ok(None);
    }
    std::fs::copy(path, &bak)?;
    Ok(Some(bak))
}

/// Replace `path` with `text` atomically (temp file in the same directory,
/// synced, renamed over), keeping the original file's permissions.
fn write(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".mcp-bridge.").tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp.path(), meta.permissions())?;
    }
    // Windows refuses a rename while another process holds the file open; an
    // IDE reading it lets go quickly.
    let mut tmp = tmp;
    for attempt in 0.. {
        match tmp.persist(path) {
            Ok(_) => return Ok(()),
            Err(e) if attempt < 5 && cfg!(windows) => {
                tmp = e.file;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => return Err(e.error),
        }
    }
    unreachable!("the loop returns")
}

/// Put the entry `name` = `entry` into the file at `path` (under `top_key`).
/// An entry the user renamed (same bridge command, another name) is updated
/// under its own name rather than duplicated.
pub fn install_file(
    path: &Path,
    top_key: &str,
    name: &str,
    entry: &Value,
    dry_run: bool,
) -> Result<Outcome, InstallError> {
    let (text, exists) = read(path)?;
    let edit_err = |source| InstallError::Edit {
        path: path.display().to_string(),
        source,
    };
    let mut target = name.to_owned();
    if edit::get(&text, top_key, name).map_err(edit_err)?.is_none()
        && let Some(renamed) = edit::entries_with_command(&text, top_key, is_bridge_command)
            .map_err(edit_err)?
            .into_iter()
            .next()
    {
        target = renamed;
    }
    let Some(next) = edit::upsert(&text, top_key, &target, entry).map_err(edit_err)? else {
        return Ok(Outcome::Unchanged);
    };
    commit(path, &text, &next, exists, dry_run)
}

/// Take the entry `name` out of the file at `path`, and nothing else.
pub fn uninstall_file(path: &Path, top_key: &str, name: &str, dry_run: bool) -> Result<Outcome, InstallError> {
    let (text, exists) = read(path)?;
    if !exists {
        return Ok(Outcome::Absent);
    }
    let next = edit::remove(&text, top_key, name).map_err(|source| InstallError::Edit {
        path: path.display().to_string(),
        source,
    })?;
    match next {
        None => Ok(Outcome::Absent),
        Some(next) => commit(path, &text, &next, exists, dry_run),
    }
}

fn commit(path: &Path, old: &str, new: &str, exists: bool, dry_run: bool) -> Result<Outcome, InstallError> {
    if dry_run {
        return Ok(Outcome::WouldWrite(edit::diff(&path.display().to_string(), old, new)));
    }
    let io = |e: std::io::Error| InstallError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    if exists && let Some(bak) = back_up(path).map_err(io)? {
        tracing::info!("backed up {} to {}", path.display(), bak.display());
    }
    write(path, new).map_err(io)?;
    Ok(Outcome::Written)
}

/// The files an `install`/`uninstall` run is about, with why a client was
/// skipped.
fn targets(opts: &Options, m: &Machine) -> (Vec<(Client, PathBuf)>, Vec<String>) {
    let clients: Vec<Client> = if opts.all {
        Client::ALL.into_iter().filter(|c| c.looks_installed(m)).collect()
    } else {
        opts.clients.clone()
    };
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    if opts.all {
        for c in Client::ALL.iter().filter(|c| !clients.contains(c)) {
            skipped.push(format!("{}: not found on this machine, skipped", c.title()));
        }
    }
    for c in clients {
        match c.paths(opts.scope, m) {
            Ok(paths) => files.extend(paths.into_iter().map(|p| (c, p))),
            Err(e) => skipped.push(format!("{}: {e}", c.title())),
        }
    }
    (files, skipped)
}

/// `mcp-bridge install`: prints one line per file; fails if any file could
/// not be changed (the others still are).
#[allow(clippy::print_stdout)] // the report is the command's output
pub fn install(opts: &Options) -> anyhow::Result<()> {
    let m = Machine::detect();
    let bin = clients::binary_path(opts.binary.as_deref())?;
    let (args, env) = launch(opts.config.as_deref())?;
    let (files, skipped) = targets(opts, &m);
    for s in &skipped {
        println!("{s}");
    }
    anyhow::ensure!(
        !files.is_empty(),
        "no IDE to install into: name one (cursor, vscode, claude-desktop, claude-code, windsurf)"
    );
    let mut failed = 0;
    for (client, path) in &files {
        let entry = client.entry(&bin.display().to_string(), &args, &env);
        match install_file(path, client.top_key(), &opts.name, &entry, opts.dry_run) {
            Ok(Outcome::Written) => println!(
                "{}: added {:?} to {}; {}",
                client.title(),
                opts.name,
                path.display(),
                client.reload_hint()
            ),
            Ok(Outcome::Unchanged) => println!("{}: {} is already up to date", client.title(), path.display()),
            Ok(Outcome::WouldWrite(diff)) => print!("{diff}"),
            Ok(Outcome::Absent) => {}
            Err(e) => {
                failed += 1;
                eprintln!("{}: {e}", client.title());
            }
        }
    }
    anyhow::ensure!(failed == 0, "{failed} file(s) could not be changed");
    Ok(())
}

/// `mcp-bridge uninstall`: removes only the bridge's entry.
#[allow(clippy::print_stdout)] // the report is the command's output
pub fn uninstall(opts: &Options) -> anyhow::Result<()> {
    let m = Machine::detect();
    let (files, skipped) = targets(opts, &m);
    for s in &skipped {
        println!("{s}");
    }
    let mut failed = 0;
    for (client, path) in &files {
        match uninstall_file(path, client.top_key(), &opts.name, opts.dry_run) {
            Ok(Outcome::Written) => println!("{}: removed {:?} from {}", client.title(), opts.name, path.display()),
            Ok(Outcome::Absent | Outcome::Unchanged) => {
                println!("{}: no {:?} entry in {}", client.title(), opts.name, path.display())
            }
            Ok(Outcome::WouldWrite(diff)) => print!("{diff}"),
            Err(e) => {
                failed += 1;
                eprintln!("{}: {e}", client.title());
            }
        }
    }
    anyhow::ensure!(failed == 0, "{failed} file(s) could not be changed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_commands_are_recognised() {
        assert!(is_bridge_command("/usr/local/bin/mcp-bridge"));
        assert!(is_bridge_command(r"C:\Programs\mcp-bridge\MCP-BRIDGE.EXE"));
        assert!(is_bridge_command("mcp-bridge"));
        assert!(!is_bridge_command("/usr/bin/mcp-bridge-old"));
        assert!(!is_bridge_command("npx"));
    }
}
