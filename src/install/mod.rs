//! `mcp-bridge install` and `uninstall`: put the bridge's entry into IDE config
//! files, and take it out again, without harming anything else in them.
//! [`clients`] knows where each IDE keeps its file and the entry's shape;
//! [`edit`] changes the text (comments, order, line endings kept); this module
//! does the file work and decides where writing is allowed, and returns what
//! became of each file ([`Run`]). It prints nothing: `commands::install` tells
//! the person.
//!
//! - a file is edited where it really is: a link is followed to its target, and
//!   the temp file (new, random name) and the backup go beside the target, so
//!   the link stays a link; a dangling link is refused. At project scope the
//!   target must be inside the project and outside its `.git`;
//! - a read-only file (no write bit for its owner, whoever runs us) and
//!   anything but a regular file are refused;
//! - the backup, at user scope only and once, is created exclusively: a link
//!   or anything but a regular file at its path is refused;
//! - a project entry is the same for every teammate: `mcp-bridge` from PATH,
//!   `serve`, no environment, no config path, no backup in the repository;
//! - uninstall keeps the top-level key as an empty object (what every client
//!   accepts), and removes a file that then holds exactly what install writes
//!   into a new one.

pub mod clients;
pub mod edit;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub use clients::{Client, Machine, Scope};
use edit::Place;

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
    /// Uninstall removed the file: nothing but the entry was in it.
    Removed,
    /// `--dry-run` of a removal: the diff to nothing.
    WouldRemove(String),
}

/// Why one file was not changed (the file itself is untouched).
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{path}: {source}; the file was left untouched")]
    Edit { path: String, source: edit::EditError },
    #[error("{path}: {message}; the file was left untouched")]
    Io { path: String, message: String },
    /// Writing there is not allowed (a link, a read-only file, ...); the
    /// message says what to do.
    #[error("{path}: {message}; the file was left untouched")]
    Refused { path: String, message: String },
}

/// The command a project entry launches: found on each teammate's PATH.
pub const PROJECT_COMMAND: &str = "mcp-bridge";

/// The arguments and environment a user entry launches the bridge with:
/// `serve`, plus the config and bridge home in use when they are not the
/// defaults (an IDE does not inherit this shell's environment). Never a secret.
pub fn launch(config: Option<&Path>) -> std::io::Result<(Vec<String>, serde_json::Map<String, Value>)> {
    let mut args = vec!["serve".to_owned()];
    let config = config
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("MCP_BRIDGE_CONFIG").map(PathBuf::from));
    if let Some(c) = config {
        // `serve` refuses a named config that is not there; say so now, not in the IDE.
        if !c.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "config file {} does not exist (named by --config or MCP_BRIDGE_CONFIG); create it first",
                    c.display()
                ),
            ));
        }
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

/// Where an edit may write.
#[derive(Debug, Clone, Copy)]
pub enum Bounds<'a> {
    /// The user's own file: edited where its links lead, backed up once.
    User,
    /// A project's file, shared with everyone who clones it: only inside this
    /// directory (the project root) and outside its `.git`, never backed up
    /// (version control keeps its history; a backup would sit in the repository).
    Project(&'a Path),
}

impl<'a> Bounds<'a> {
    pub fn of(scope: Scope, m: &'a Machine) -> Bounds<'a> {
        match scope {
            Scope::User => Bounds::User,
            Scope::Project => Bounds::Project(&m.project),
        }
    }
}

/// An IDE file as found on disk.
#[derive(Debug)]
struct Found {
    /// The file an edit really changes: links (of the file and of the
    /// directories above it) followed. The temp file and the backup go beside it.
    real: PathBuf,
    /// The file the user named is itself a link (to `real`).
    link: bool,
    /// Its text and metadata, when it exists.
    current: Option<(String, std::fs::Metadata)>,
}

fn refused(path: &Path, message: String) -> InstallError {
    InstallError::Refused {
        path: path.display().to_string(),
        message,
    }
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> InstallError {
    move |e| InstallError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// `path` with its links and `..` resolved. A part that does not exist yet is
/// kept as named (install creates it); a link whose target does not exist is
/// refused, since creating the target could put a file anywhere.
fn real_path(path: &Path) -> Result<PathBuf, String> {
    let path = std::path::absolute(path).map_err(|e| e.to_string())?;
    let mut existing = path.as_path();
    let mut missing = Vec::new();
    loop {
        match std::fs::symlink_metadata(existing) {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                missing.push(existing.file_name().unwrap_or_default());
                match existing.parent() {
                    Some(parent) => existing = parent,
                    None => return Ok(path),
                }
            }
            Err(e) => return Err(format!("cannot read {}: {e}", existing.display())),
        }
    }
    match std::fs::canonicalize(existing) {
        Ok(real) => Ok(missing.iter().rev().fold(real, |p, part| p.join(part))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let to = std::fs::read_link(existing).map_or_else(|_| "?".into(), |t| t.display().to_string());
            Err(format!(
                "{} is a symbolic link to {to}, which does not exist; the bridge does not create a file through a \
                 dangling link: create the target, or remove the link, and run again",
                existing.display()
            ))
        }
        Err(e) => Err(format!("cannot resolve {}: {e}", existing.display())),
    }
}

/// Find the file at `path`, refusing what must not be edited: a place outside
/// `bounds`, something that is not a regular file, text that is not UTF-8.
fn find(path: &Path, bounds: Bounds) -> Result<Found, InstallError> {
    let real = real_path(path).map_err(|m| refused(path, m))?;
    if let Bounds::Project(root) = bounds {
        let root = std::fs::canonicalize(root).map_err(|e| {
            refused(
                path,
                format!("cannot resolve the project directory {}: {e}", root.display()),
            )
        })?;
        if !real.starts_with(&root) {
            return Err(refused(
                path,
                format!(
                    "it leads through a symbolic link to {}, outside the project {}; a project file is shared with \
                     everyone who clones the repository, so the bridge does not write through a link that leaves \
                     it: replace the link with a regular file, or install with --scope user",
                    real.display(),
                    root.display()
                ),
            ));
        }
        if real.strip_prefix(&root).is_ok_and(|rel| rel.starts_with(".git")) {
            return Err(refused(
                path,
                format!(
                    "it leads through a symbolic link to {}, inside the repository's .git directory (hooks run from \
                     there); remove the link and run again",
                    real.display()
                ),
            ));
        }
    }
    let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let meta = match std::fs::metadata(&real) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Found {
                real,
                link,
                current: None,
            });
        }
        Err(e) => return Err(io_error(path)(e)),
    };
    if !meta.is_file() {
        return Err(refused(
            path,
            format!("{} is not a regular file: an IDE config file is one", real.display()),
        ));
    }
    let text = String::from_utf8(std::fs::read(&real).map_err(io_error(path))?)
        .map_err(|_| refused(path, "not UTF-8 text".into()))?;
    Ok(Found {
        real,
        link,
        current: Some((text, meta)),
    })
}

/// Refuse a file the user (or whoever made it read-only) does not let us
/// write. The mode is checked, not only what the OS allows: root may write a
/// 0444 file, and a rename replaces one whatever its mode.
fn check_writable(real: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    #[cfg(unix)]
    let (read_only, mode) = {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        (mode & 0o200 == 0, format!(" (mode {:o})", mode & 0o7777))
    };
    #[cfg(not(unix))]
    let (read_only, mode) = (meta.permissions().readonly(), String::new());
    if read_only {
        return Err(format!(
            "{} is read-only{mode}; the bridge does not change a file made read-only: make it writable (chmod u+w) \
             if the change is wanted, and run again",
            real.display()
        ));
    }
    #[cfg(unix)]
    if let Err(e) = std::fs::OpenOptions::new().write(true).open(real) {
        return Err(format!("{} cannot be written: {e}", real.display()));
    }
    Ok(())
}

/// `<real>.mcp-bridge.bak`.
fn backup_path(real: &Path) -> PathBuf {
    let mut name = real.file_name().unwrap_or_default().to_os_string();
    name.push(".mcp-bridge.bak");
    real.with_file_name(name)
}

/// Whether a backup is already at `bak` (then it is kept: the first backup is
/// the file as it was before the bridge touched it). Anything there but a
/// regular file is refused: a planted link would make the copy land anywhere.
fn backup_exists(bak: &Path) -> Result<bool, String> {
    match std::fs::symlink_metadata(bak) {
        Ok(m) if m.file_type().is_symlink() => Err(format!(
            "the backup path {} is a symbolic link, and the bridge never writes through one: remove the link \
             and run again",
            bak.display()
        )),
        Ok(m) if !m.is_file() => Err(format!(
            "the backup path {} is not a regular file: move it away and run again",
            bak.display()
        )),
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!("cannot check the backup path {}: {e}", bak.display())),
    }
}

/// Write `bytes` to `bak`, which must not exist (`O_CREAT | O_EXCL`: a link or
/// file that appeared meanwhile fails it), readable by the user only.
fn write_backup(bak: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(bak)?;
    f.write_all(bytes).and_then(|()| f.sync_all()).inspect_err(|_| {
        let _ = std::fs::remove_file(bak);
    })
}

/// Put the entry `name` = `entry` into the file at `path` (at `place`).
/// An entry the user renamed (same bridge command, another name) is updated
/// under its own name rather than duplicated.
pub fn install_file(
    path: &Path,
    bounds: Bounds,
    place: Place,
    name: &str,
    entry: &Value,
    dry_run: bool,
) -> Result<Outcome, InstallError> {
    let found = find(path, bounds)?;
    let text = found.current.as_ref().map_or("", |(t, _)| t.as_str());
    let edit_err = |source| InstallError::Edit {
        path: path.display().to_string(),
        source,
    };
    let mut target = name.to_owned();
    if edit::get(text, place, name).map_err(edit_err)?.is_none()
        && let Some(renamed) = edit::entries_with_command(text, place, is_bridge_command)
            .map_err(edit_err)?
            .into_iter()
            .next()
    {
        target = renamed;
    }
    let Some(next) = edit::upsert(text, place, &target, entry).map_err(edit_err)? else {
        return Ok(Outcome::Unchanged);
    };
    commit(path, &found, Some(&next), bounds, dry_run)
}

/// Take the entry `name` out of the file at `path`, and nothing else. A file
/// left holding exactly what install writes into a new file (the top-level key,
/// empty) is removed, unless the user's path is a link to it; any other keeps
/// the key as an empty object, which every client accepts.
pub fn uninstall_file(
    path: &Path,
    bounds: Bounds,
    place: Place,
    name: &str,
    dry_run: bool,
) -> Result<Outcome, InstallError> {
    let found = find(path, bounds)?;
    let Some((text, _)) = &found.current else {
        return Ok(Outcome::Absent);
    };
    let next = edit::remove(text, place, name).map_err(|source| InstallError::Edit {
        path: path.display().to_string(),
        source,
    })?;
    match next {
        None => Ok(Outcome::Absent),
        Some(next) if edit::is_fresh(&next, place) && !found.link => commit(path, &found, None, bounds, dry_run),
        Some(next) => commit(path, &found, Some(&next), bounds, dry_run),
    }
}

/// Replace the file's text with `new`, or remove the file (`None`): checks
/// first, then (user scope, an existing file) the backup, then the write.
fn commit(
    path: &Path,
    found: &Found,
    new: Option<&str>,
    bounds: Bounds,
    dry_run: bool,
) -> Result<Outcome, InstallError> {
    let old = found.current.as_ref().map_or("", |(t, _)| t.as_str());
    let backup = match (&found.current, bounds) {
        (Some((_, meta)), _) => {
            check_writable(&found.real, meta).map_err(|m| refused(path, m))?;
            let bak = backup_path(&found.real);
            match bounds {
                Bounds::User if new.is_some() && !backup_exists(&bak).map_err(|m| refused(path, m))? => Some(bak),
                _ => None,
            }
        }
        (None, _) => None,
    };
    let shown = path.display().to_string();
    if dry_run {
        return Ok(match new {
            Some(new) => Outcome::WouldWrite(edit::diff(&shown, old, new)),
            None => Outcome::WouldRemove(edit::diff(&shown, old, "")),
        });
    }
    if let Some(bak) = backup {
        write_backup(&bak, old.as_bytes())
            .map_err(|e| refused(path, format!("cannot create the backup {}: {e}", bak.display())))?;
        tracing::info!("backed up {} to {}", found.real.display(), bak.display());
    }
    match new {
        Some(new) => {
            let permissions = found.current.as_ref().map(|(_, meta)| meta.permissions());
            crate::cache::write_atomic_with(&found.real, new.as_bytes(), permissions).map_err(io_error(path))?;
            Ok(Outcome::Written)
        }
        None => {
            std::fs::remove_file(&found.real).map_err(io_error(path))?;
            Ok(Outcome::Removed)
        }
    }
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

/// The command, arguments and environment of the entry for `opts.scope`.
/// A project entry is shared, so it holds nothing of this machine or user:
/// `mcp-bridge` from PATH, `serve`, no environment; `--binary` and `--config`
/// are refused there, and what this shell's environment would have added is
/// named in a note.
fn entry_parts(opts: &Options, notes: &mut Vec<String>) -> anyhow::Result<(String, Vec<String>, Map<String, Value>)> {
    match opts.scope {
        Scope::User => {
            let bin = clients::binary_path(opts.binary.as_deref())?;
            let (args, env) = launch(opts.config.as_deref())?;
            Ok((bin.display().to_string(), args, env))
        }
        Scope::Project => {
            anyhow::ensure!(
                opts.binary.is_none(),
                "--binary is for --scope user: a project entry is shared with everyone who clones the project, so \
                 it launches `{PROJECT_COMMAND}` from each one's PATH, not a path on this machine"
            );
            anyhow::ensure!(
                opts.config.is_none(),
                "--config is for --scope user: a project entry is shared with everyone who clones the project, so \
                 it names no config file; each teammate's bridge reads their own (~/.config/mcp-bridge/config.toml, \
                 or MCP_BRIDGE_CONFIG in the IDE's environment)"
            );
            for var in ["MCP_BRIDGE_HOME", "MCP_BRIDGE_CONFIG"] {
                if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
                    notes.push(format!(
                        "note: {var} is set in this shell; a project entry does not carry it (it is shared), so the \
                         bridge the IDE starts uses the default unless the IDE's environment sets {var}"
                    ));
                }
            }
            if clients::find_command(PROJECT_COMMAND).is_none() {
                notes.push(format!(
                    "note: no `{PROJECT_COMMAND}` on PATH; a project entry launches it from there: put the directory \
                     holding it on PATH (installers/install.sh installs to ~/.local/bin)"
                ));
            }
            Ok((PROJECT_COMMAND.to_owned(), vec!["serve".to_owned()], Map::new()))
        }
    }
}

/// One file an `install` or `uninstall` run was about, and what became of it.
#[derive(Debug)]
pub struct FileRun {
    pub client: Client,
    pub path: PathBuf,
    pub outcome: Result<Outcome, InstallError>,
}

/// What an `install` or `uninstall` run did, in the order it did it.
#[derive(Debug, Default)]
pub struct Run {
    /// Clients left out, and why (`Cursor: not found on this machine, skipped`).
    pub skipped: Vec<String>,
    /// Each file, changed or not; one that failed did not stop the others.
    pub files: Vec<FileRun>,
    /// What the person should know about the entry (a project entry does not
    /// carry this shell's environment, ...).
    pub notes: Vec<String>,
}

/// `install`: the bridge's entry into each chosen IDE's file. Fails only when
/// the entry cannot be made (`--binary` or `--config` at project scope, no
/// binary); a file that cannot be changed is in [`Run::files`] with its error.
pub fn install(opts: &Options) -> anyhow::Result<Run> {
    let m = Machine::detect();
    let mut notes = Vec::new();
    let (command, args, env) = entry_parts(opts, &mut notes)?;
    let (files, skipped) = targets(opts, &m);
    let bounds = Bounds::of(opts.scope, &m);
    for (i, (client, _)) in files.iter().enumerate() {
        if !files[..i].iter().any(|(c, _)| c == client) {
            notes.extend(client.note(opts.scope, &m));
        }
    }
    let files = files
        .into_iter()
        .map(|(client, path)| {
            let mut entry = client.entry(&command, &args, &env);
            // Goose repeats the entry's key inside it.
            if let Some(n) = entry.get_mut("name") {
                *n = Value::String(opts.name.clone());
            }
            let outcome = install_file(&path, bounds, client.place(), &opts.name, &entry, opts.dry_run);
            FileRun { client, path, outcome }
        })
        .collect();
    Ok(Run { skipped, files, notes })
}

/// `uninstall`: removes only the bridge's entry from each chosen IDE's file
/// (and the file, when nothing else is in it).
pub fn uninstall(opts: &Options) -> Run {
    let m = Machine::detect();
    let (files, skipped) = targets(opts, &m);
    let bounds = Bounds::of(opts.scope, &m);
    let files = files
        .into_iter()
        .map(|(client, path)| {
            let outcome = uninstall_file(&path, bounds, client.place(), &opts.name, opts.dry_run);
            FileRun { client, path, outcome }
        })
        .collect();
    Run {
        skipped,
        files,
        notes: Vec::new(),
    }
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
