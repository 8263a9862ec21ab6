//! Files the bridge keeps between runs: the last catalog of each server (so that
//! `tools/list` is answered at once on start), written atomically.
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
/// so a crash never leaves a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
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
}
