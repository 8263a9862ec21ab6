//! The live state a serving bridge publishes for `mcp-bridge status`: one JSON
//! [`Snapshot`] per process in `<state_dir>/run/<pid>.json`, next to
//! `<state_dir>/run/<pid>.lock`, which the bridge holds with an exclusive file lock
//! for as long as it runs. Several bridges (one per IDE) publish side by side.
//!
//! A reader tells a live bridge from a crashed one by the lock alone: the OS
//! releases it when the process dies, however it dies, so a snapshot whose lock is
//! free is stale and [`read_live`] removes it. Nothing here holds a secret: error
//! strings come already scrubbed from the bridge, and headers are never recorded.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::registry::{ServerSpec, Source};

/// What one serving bridge publishes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Snapshot {
    pub pid: u32,
    /// Unix seconds.
    pub started_at: u64,
    /// Unix seconds.
    pub updated_at: u64,
    /// The config file's path.
    pub config: String,
    pub registry: Option<RegistryState>,
    pub servers: Vec<ServerState>,
    /// Why the last edit of the config file was refused (the bridge runs on
    /// with the configuration before it).
    pub config_error: Option<String>,
    /// The OpenTelemetry exporter's counts, when it runs.
    pub telemetry: Option<crate::telemetry::TelemetryState>,
}

/// The registry as one bridge last saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegistryState {
    /// URL or file path.
    pub source: String,
    /// Unix seconds of the last good read or fetch.
    pub last_success: Option<u64>,
    pub last_error: Option<String>,
    /// Entries in the last good registry.
    pub servers: usize,
}

/// One remote server as one bridge sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerState {
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// `"registry"`, `"config"` or `"command line"` ([`source_label`]).
    pub source: String,
    pub url: String,
    /// `"connecting"`, `"ready"`, `"failed"` or `"stopped"`.
    pub state: String,
    /// The negotiated protocol version, e.g. `"2025-11-25"`.
    pub protocol: Option<String>,
    pub tools: usize,
    pub resources: usize,
    pub resource_templates: usize,
    pub prompts: usize,
    /// Unix seconds the lists were last fetched.
    pub last_refresh: Option<u64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<u64>,
    /// The server refused the bridge for want of a login (or of scopes), and
    /// has not let it in since. Absent in files of older bridges: `false`.
    pub needs_login: bool,
}

impl Snapshot {
    /// A snapshot of this process, started and updated now, with nothing in it yet.
    pub fn new(config: &Path) -> Snapshot {
        let now = now_unix();
        Snapshot {
            pid: std::process::id(),
            started_at: now,
            updated_at: now,
            config: config.display().to_string(),
            ..Snapshot::default()
        }
    }
}

impl ServerState {
    /// A server about to connect: its identity from the spec, state `connecting`.
    pub fn new(spec: &ServerSpec) -> ServerState {
        ServerState {
            id: spec.id.clone(),
            name: Some(spec.display_name.clone()),
            source: source_label(&spec.source).into(),
            url: spec.url.clone(),
            state: "connecting".into(),
            ..ServerState::default()
        }
    }
}

/// How a [`Source`] is written in snapshots and in `status`.
pub fn source_label(source: &Source) -> &'static str {
    match source {
        Source::Registry => "registry",
        Source::Config => "config",
        Source::CommandLine => "command line",
    }
}

/// How a registry is named in [`RegistryState::source`]: its URL or its file path,
/// as `status` finds it in the config.
pub fn registry_source(rc: &crate::config::RegistryConfig) -> Option<String> {
    match (&rc.file, &rc.url) {
        (Some(file), _) => Some(file.display().to_string()),
        (None, Some(url)) => Some(url.clone()),
        (None, None) => None,
    }
}

pub use crate::util::now_unix;

/// `<state_dir>/run`.
pub fn run_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("run")
}

/// Held by a serving bridge for its lifetime: `<state_dir>/run/<pid>.lock` is held
/// with an exclusive file lock so readers can tell a live bridge from a crashed
/// one; `<state_dir>/run/<pid>.json` holds the snapshot, written atomically.
/// Dropping it removes both files.
#[derive(Debug)]
pub struct Publisher {
    dir: PathBuf,
    /// The file name stem: the pid (another name only in tests).
    stem: String,
    /// Holds the exclusive lock until dropped.
    _lock: File,
}

/// How many times `open` retries a lock a reader holds for an instant.
const OPEN_ATTEMPTS: u32 = 20;

impl Publisher {
    /// Create `run/` (0700 on unix) and take this process's lock. Blocking
    /// (file IO, and short waits for a reader's lock): off the runtime thread.
    pub fn open(state_dir: &Path) -> std::io::Result<Publisher> {
        Publisher::open_as(state_dir, &std::process::id().to_string())
    }

    fn open_as(state_dir: &Path, stem: &str) -> std::io::Result<Publisher> {
        let dir = run_dir(state_dir);
        crate::util::create_private_dir(&dir)?;
        let lock_path = dir.join(format!("{stem}.lock"));
        for _ in 0..OPEN_ATTEMPTS {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)?;
            match f.try_lock() {
                Ok(()) => {}
                // A reader checking for staleness holds a shared lock for an instant.
                Err(TryLockError::WouldBlock) => {
                    // A blocking wait, as `open` is: `serve` calls it through
                    // `spawn_blocking`, `status` and tests from plain threads.
                    #[allow(clippy::disallowed_methods)]
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
                Err(TryLockError::Error(e)) => return Err(e),
            }
            // A reader may have removed a stale file of the same name between our
            // open and our lock; then the lock is on an unlinked file: start again.
            if !crate::util::is_same_file(&f, &lock_path) {
                continue;
            }
            // A snapshot left by a crashed process that had our pid.
            remove_if_present(&dir.join(format!("{stem}.json")))?;
            return Ok(Publisher {
                dir,
                stem: stem.to_owned(),
                _lock: f,
            });
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::WouldBlock,
            format!("{} is locked by another publisher", lock_path.display()),
        ))
    }

    /// Replace the published snapshot (atomically: readers see the old or the
    /// new). Blocking (a synced write): off the runtime thread.
    pub fn write(&self, snapshot: &Snapshot) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(snapshot)?;
        bytes.push(b'\n');
        crate::cache::write_atomic(&self.json_path(), &bytes)
    }

    /// Where the snapshot is written.
    pub fn json_path(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.stem))
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        // The snapshot first, then the lock file, still under the lock: a reader
        // never sees a snapshot without a held lock because of us.
        let _ = std::fs::remove_file(self.json_path());
        let _ = std::fs::remove_file(self.dir.join(format!("{}.lock", self.stem)));
    }
}

/// Snapshots of the bridges running now, newest `updated_at` first. A snapshot whose
/// lock file is not held (the bridge crashed) is stale: its files are removed and it
/// is skipped. Unreadable files are skipped.
pub fn read_live(state_dir: &Path) -> Vec<Snapshot> {
    let dir = run_dir(state_dir);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut stems: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".json").or_else(|| name.strip_suffix(".lock"))?;
            (!stem.is_empty() && !stem.starts_with('.')).then(|| stem.to_owned())
        })
        .collect();
    stems.sort();
    stems.dedup();
    let mut live = Vec::new();
    for stem in stems {
        let json = dir.join(format!("{stem}.json"));
        let lock = dir.join(format!("{stem}.lock"));
        match liveness(&lock) {
            Liveness::Alive => {
                // A bridge that has not written yet, or is just going away, has none.
                if let Some(s) = std::fs::read(&json)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Snapshot>(&b).ok())
                {
                    live.push(s);
                }
            }
            Liveness::Stale(held) => {
                let _ = std::fs::remove_file(&json);
                let _ = std::fs::remove_file(&lock);
                drop(held);
            }
            Liveness::Unknown => {}
        }
    }
    live.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(a.pid.cmp(&b.pid)));
    live
}

enum Liveness {
    Alive,
    /// Nobody holds the lock; the shared lock we took (if the file exists) is held
    /// while the files are removed, so a new publisher cannot slip in between.
    Stale(Option<File>),
    Unknown,
}

fn liveness(lock: &Path) -> Liveness {
    let f = match File::open(lock) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Liveness::Stale(None),
        Err(_) => return Liveness::Unknown,
    };
    match f.try_lock_shared() {
        Err(TryLockError::WouldBlock) => Liveness::Alive,
        Ok(()) => Liveness::Stale(Some(f)),
        Err(TryLockError::Error(_)) => Liveness::Unknown,
    }
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(pid: u32, updated_at: u64) -> Snapshot {
        Snapshot {
            pid,
            started_at: 100,
            updated_at,
            config: "/home/me/.config/mcp-bridge/config.toml".into(),
            registry: Some(RegistryState {
                source: "https://registry.example.com".into(),
                last_success: Some(90),
                last_error: None,
                servers: 3,
            }),
            servers: vec![ServerState {
                id: "jira".into(),
                name: Some("com.example/jira".into()),
                source: "registry".into(),
                url: "https://jira.example.com/mcp".into(),
                state: "ready".into(),
                protocol: Some("2025-11-25".into()),
                tools: 12,
                last_refresh: Some(updated_at),
                ..ServerState::default()
            }],
            config_error: None,
            telemetry: None,
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<_> = std::fs::read_dir(run_dir(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    /// What a publisher writes is what a reader gets back, while it lives.
    #[test]
    fn publish_and_read_back() {
        let home = tempfile::tempdir().unwrap();
        let p = Publisher::open(home.path()).unwrap();
        assert!(read_live(home.path()).is_empty(), "nothing written yet");
        let s = snapshot(std::process::id(), 200);
        p.write(&s).unwrap();
        assert_eq!(read_live(home.path()), vec![s.clone()]);
        let s2 = Snapshot {
            updated_at: 201,
            ..s.clone()
        };
        p.write(&s2).unwrap();
        assert_eq!(read_live(home.path()), vec![s2]);
        let pid = std::process::id();
        assert_eq!(names(home.path()), vec![format!("{pid}.json"), format!("{pid}.lock")]);
    }

    /// `run/` is private to the user.
    #[cfg(unix)]
    #[test]
    fn run_dir_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let _p = Publisher::open(home.path()).unwrap();
        let mode = std::fs::metadata(run_dir(home.path())).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    /// flock locks belong to an open file description, so a second open of the lock
    /// file in the same process sees the publisher's lock as held.
    #[test]
    fn the_lock_is_seen_from_the_same_process() {
        let home = tempfile::tempdir().unwrap();
        let p = Publisher::open(home.path()).unwrap();
        let lock = run_dir(home.path()).join(format!("{}.lock", std::process::id()));
        let other = File::open(&lock).unwrap();
        assert!(matches!(other.try_lock_shared(), Err(TryLockError::WouldBlock)));
        assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock)));
        assert!(matches!(liveness(&lock), Liveness::Alive));
        drop(p);
        assert!(matches!(liveness(&lock), Liveness::Stale(None)));
    }

    /// A snapshot whose lock nobody holds (its bridge crashed) is removed, with its
    /// lock file; so is one without any lock file.
    #[test]
    fn stale_snapshots_are_removed() {
        let home = tempfile::tempdir().unwrap();
        let run = run_dir(home.path());
        std::fs::create_dir_all(&run).unwrap();
        let bytes = serde_json::to_vec(&snapshot(4242, 300)).unwrap();
        std::fs::write(run.join("4242.json"), &bytes).unwrap();
        std::fs::write(run.join("4242.lock"), b"").unwrap();
        std::fs::write(run.join("4243.json"), &bytes).unwrap();
        std::fs::write(run.join("4244.lock"), b"").unwrap();
        let live = Publisher::open_as(home.path(), "4245").unwrap();
        live.write(&snapshot(4245, 10)).unwrap();
        let got = read_live(home.path());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].pid, 4245);
        assert_eq!(names(home.path()), vec!["4245.json", "4245.lock"]);
    }

    /// Unreadable snapshots are skipped, temp files of an atomic write are ignored.
    #[test]
    fn garbage_is_skipped() {
        let home = tempfile::tempdir().unwrap();
        let p = Publisher::open_as(home.path(), "7").unwrap();
        std::fs::write(p.json_path(), b"{not json").unwrap();
        std::fs::write(run_dir(home.path()).join(".7.json.99.tmp"), b"{}").unwrap();
        assert!(read_live(home.path()).is_empty());
        assert!(read_live(&home.path().join("missing")).is_empty());
    }

    /// Dropping the publisher removes both of its files.
    #[test]
    fn drop_removes_the_files() {
        let home = tempfile::tempdir().unwrap();
        let p = Publisher::open(home.path()).unwrap();
        p.write(&snapshot(1, 1)).unwrap();
        drop(p);
        assert!(names(home.path()).is_empty());
        assert!(read_live(home.path()).is_empty());
    }

    /// A publisher that finds a snapshot left by a crashed process with its pid
    /// removes it rather than vouching for it.
    #[test]
    fn a_reused_pid_does_not_revive_an_old_snapshot() {
        let home = tempfile::tempdir().unwrap();
        let run = run_dir(home.path());
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("9.json"), serde_json::to_vec(&snapshot(9, 5)).unwrap()).unwrap();
        std::fs::write(run.join("9.lock"), b"").unwrap();
        let _p = Publisher::open_as(home.path(), "9").unwrap();
        assert!(read_live(home.path()).is_empty());
    }

    /// Several bridges are listed, the most recently updated first.
    #[test]
    fn two_publishers_newest_first() {
        let home = tempfile::tempdir().unwrap();
        let a = Publisher::open_as(home.path(), "101").unwrap();
        let b = Publisher::open_as(home.path(), "102").unwrap();
        a.write(&snapshot(101, 500)).unwrap();
        b.write(&snapshot(102, 400)).unwrap();
        let pids: Vec<_> = read_live(home.path()).iter().map(|s| s.pid).collect();
        assert_eq!(pids, vec![101, 102]);
        b.write(&snapshot(102, 600)).unwrap();
        let pids: Vec<_> = read_live(home.path()).iter().map(|s| s.pid).collect();
        assert_eq!(pids, vec![102, 101]);
        drop(a);
        let pids: Vec<_> = read_live(home.path()).iter().map(|s| s.pid).collect();
        assert_eq!(pids, vec![102]);
    }

    /// A second publisher for the same name (same process) is refused, not blocked.
    #[test]
    fn one_publisher_per_name() {
        let home = tempfile::tempdir().unwrap();
        let _a = Publisher::open_as(home.path(), "5").unwrap();
        let err = Publisher::open_as(home.path(), "5").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    }

    /// Snapshots from an older or newer bridge still parse: missing fields default.
    #[test]
    fn missing_fields_default() {
        let s: Snapshot = serde_json::from_str(r#"{"pid": 3, "servers": [{"id": "a", "extra": 1}]}"#).unwrap();
        assert_eq!(s.pid, 3);
        assert_eq!(s.servers[0].id, "a");
        assert_eq!(s.servers[0].tools, 0);
    }
}
