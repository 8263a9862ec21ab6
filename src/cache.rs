//! Files the bridge keeps between runs: the last catalog of each server (so that
//! `tools/list` is answered at once on start), written atomically; and the one
//! atomic write every file the bridge replaces goes through ([`write_atomic`]:
//! a new temp file, never a link, beside the target, then a rename).
//!
//! A cache entry is keyed by server id and remembers the URL it came from; a
//! server whose URL changed starts without a cache rather than with a wrong one.
//! An unreadable cache is treated as empty: it can only ever make start slower.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::catalog::ServerLists;

/// Write `bytes` to `path` through a temp file in the same directory and a rename,
/// so a crash never leaves a half-written file. The temp file is new (0600),
/// so a file or link planted at a guessable name is never written through.
/// Blocking (the temp file is synced): while serving, it runs through
/// `spawn_blocking`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, bytes, None)
}

/// [`write_atomic`], the new file getting `permissions` (default 0600).
///
/// The temp file is created exclusively (`O_CREAT | O_EXCL`: an existing file
/// or link there fails the attempt, never followed) under a random name, tried
/// again under another name on a clash, and renamed over `path`: a link at
/// `path` is replaced, not written through; callers that mean to edit a link's
/// target resolve it first. On Windows, where a rename fails while another
/// process holds the file open (an IDE reading its config), the rename is
/// retried for half a second.
pub fn write_atomic_with(path: &Path, bytes: &[u8], permissions: Option<std::fs::Permissions>) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    if let Some(p) = permissions {
        tmp.as_file().set_permissions(p)?;
    }
    for attempt in 0.. {
        match tmp.persist(path) {
            Ok(_) => return Ok(()),
            Err(e) if attempt < 5 && cfg!(windows) => {
                tmp = e.file;
                // A blocking wait in a blocking write: callers that serve run
                // this on a blocking thread, never on the runtime's.
                #[allow(clippy::disallowed_methods)]
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            // Dropping the temp file removes it.
            Err(e) => return Err(e.error),
        }
    }
    unreachable!("the loop returns")
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CachedServer {
    pub url: String,
    pub lists: ServerLists,
    /// The server's protocol generation when it was last listed (`true`:
    /// 2025-11-25 or older), so that the next start skips the
    /// `server/discover` probe for a legacy server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy: Option<bool>,
}

/// The on-disk catalog cache: server id -> its last lists.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CatalogCache {
    version: u32,
    pub servers: BTreeMap<String, CachedServer>,
}

const VERSION: u32 = 1;

pub fn catalog_path(cache_dir: &Path) -> PathBuf {
    cache_dir.join("catalog.json")
}

impl CatalogCache {
    pub fn load(cache_dir: &Path) -> CatalogCache {
        let path = catalog_path(cache_dir);
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<CatalogCache>(&bytes) {
                Ok(c) if c.version == VERSION => c,
                Ok(_) => CatalogCache::default(),
                Err(e) => {
                    tracing::warn!("ignoring unreadable catalog cache {}: {e}", path.display());
                    CatalogCache::default()
                }
            },
            Err(_) => CatalogCache::default(),
        }
    }

    pub fn store(&self, cache_dir: &Path) -> std::io::Result<()> {
        write_atomic(&catalog_path(cache_dir), &self.to_bytes()?)
    }

    /// The file's contents.
    pub fn to_bytes(&self) -> serde_json::Result<Vec<u8>> {
        let mut c = serde_json::to_vec(&CatalogCacheRef {
            version: VERSION,
            servers: &self.servers,
        })?;
        c.push(b'\n');
        Ok(c)
    }
}

#[derive(Serialize)]
struct CatalogCacheRef<'a> {
    version: u32,
    servers: &'a BTreeMap<String, CachedServer>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = CatalogCache::default();
        c.servers.insert(
            "a".into(),
            CachedServer {
                url: "http://x".into(),
                lists: ServerLists::default(),
                legacy: Some(true),
            },
        );
        c.store(dir.path()).unwrap();
        assert_eq!(CatalogCache::load(dir.path()).servers, c.servers);
        std::fs::write(catalog_path(dir.path()), b"{not json").unwrap();
        assert!(CatalogCache::load(dir.path()).servers.is_empty());
        // No temp files left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    /// A link planted where an older version put its temp file (a name anyone
    /// could guess: `.<name>.<pid>.tmp`) is neither written through nor
    /// replaced: the temp file is always a new file with a random name.
    #[cfg(unix)]
    #[test]
    fn a_planted_temp_link_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let planted = dir.path().join(format!(".catalog.json.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        write_atomic(&catalog_path(dir.path()), b"{}").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(std::fs::symlink_metadata(&planted).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(catalog_path(dir.path())).unwrap(), b"{}");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(catalog_path(dir.path())).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
}
