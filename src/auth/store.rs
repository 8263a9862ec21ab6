//! Where credentials live: the OS credential store (macOS Keychain, Windows
//! Credential Manager, Secret Service on Linux) through `keyring-core`, or, when
//! none works (headless Linux), a 0600 file in the state dir, chosen once with one
//! warning. One entry per server, keyed by its canonical URL; the value is
//! versioned JSON so that an upgrade never loses a login.
//!
//! Every call here blocks (the OS stores are synchronous): async callers go
//! through `spawn_blocking`. Nothing here logs a secret; [`Entry`]'s `Debug`
//! redacts them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rmcp::transport::auth::StoredCredentials;
use serde::{Deserialize, Serialize};

/// Keyring service name for every entry of the bridge.
const SERVICE: &str = "mcp-bridge";
/// Version of the stored JSON. Readers accept every version up to this one.
pub const ENTRY_VERSION: u32 = 1;
/// Longest value written to one keyring item (Windows limits a blob to 2560 bytes).
const CHUNK: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("credential store ({backend}): {message}")]
    Backend { backend: &'static str, message: String },
    #[error("stored credentials for {key} are unreadable: {message}")]
    Corrupt { key: String, message: String },
}

/// What is kept for one server.
#[derive(Clone, Serialize, Deserialize, Default)]
pub struct Entry {
    pub version: u32,
    /// OAuth tokens and client id, as rmcp stores them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<StoredCredentials>,
    /// A client secret issued at registration or configured (rmcp does not keep it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// The redirect URI a registered client is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// Static headers set with `mcp-bridge auth set` (e.g. a bearer token).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("version", &self.version)
            .field("oauth", &self.oauth.as_ref().map(|_| "[REDACTED]"))
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[REDACTED]"))
            .field("redirect_uri", &self.redirect_uri)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The canonical key of a server: lower-case scheme and host, no fragment, no
/// trailing slash.
pub fn canonical_key(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.set_fragment(None);
            let s = u.to_string();
            s.trim_end_matches('/').to_owned()
        }
        Err(_) => url.trim_end_matches('/').to_owned(),
    }
}

enum Backend {
    Keyring(Arc<keyring_core::CredentialStore>),
    File(PathBuf),
    Memory(Mutex<BTreeMap<String, String>>),
}

/// The credential store of this process.
pub struct TokenStore {
    backend: Backend,
    /// Where cross-process lock files live.
    lock_dir: PathBuf,
}

/// Which store to use, from config (`[auth] store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The OS store if it works, else the file.
    #[default]
    Auto,
    Keyring,
    File,
    /// In memory only (tests).
    Memory,
}

impl TokenStore {
    /// Open the store of `kind`. `Auto` probes the OS store with a canary entry
    /// and falls back to the file store with one warning.
    pub fn open(kind: StoreKind, state_dir: &Path) -> Result<TokenStore, StoreError> {
        let lock_dir = state_dir.join("locks");
        let file = || Backend::File(state_dir.join("credentials"));
        let backend = match kind {
            StoreKind::Memory => Backend::Memory(Mutex::new(BTreeMap::new())),
            StoreKind::File => file(),
            StoreKind::Keyring => Backend::Keyring(os_store().map_err(|message| StoreError::Backend {
                backend: "keyring",
                message,
            })?),
            StoreKind::Auto => match os_store().and_then(|s| probe(&s).map(|()| s)) {
                Ok(s) => Backend::Keyring(s),
                Err(why) => {
                    tracing::warn!(
                        "no usable OS credential store ({why}); keeping credentials in a 0600 file under {}",
                        state_dir.display()
                    );
                    file()
                }
            },
        };
        Ok(TokenStore { backend, lock_dir })
    }

    /// A name for `status`: where credentials are kept.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Keyring(_) => "OS credential store".into(),
            Backend::File(dir) => format!("file store in {} (0600)", dir.display()),
            Backend::Memory(_) => "memory (not persisted)".into(),
        }
    }

    pub fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let raw = match &self.backend {
            Backend::Memory(m) => m.lock().expect("memory store").get(key).cloned(),
            Backend::File(dir) => file_read(dir, key)?,
            Backend::Keyring(s) => keyring_read(s, key)?,
        };
        let Some(raw) = raw else { return Ok(None) };
        let entry: Entry = serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt {
            key: key.to_owned(),
            message: e.to_string(),
        })?;
        if entry.version > ENTRY_VERSION {
            return Err(StoreError::Corrupt {
                key: key.to_owned(),
                message: format!("written by a newer mcp-bridge (format {})", entry.version),
            });
        }
        Ok(Some(entry))
    }

    pub fn put(&self, key: &str, entry: &Entry) -> Result<(), StoreError> {
        let mut e = entry.clone();
        e.version = ENTRY_VERSION;
        let raw = serde_json::to_string(&e).map_err(|err| StoreError::Corrupt {
            key: key.into(),
            message: err.to_string(),
        })?;
        match &self.backend {
            Backend::Memory(m) => {
                m.lock().expect("memory store").insert(key.to_owned(), raw);
                Ok(())
            }
            Backend::File(dir) => file_write(dir, key, &raw),
            Backend::Keyring(s) => keyring_write(s, key, &raw),
        }
    }

    pub fn delete(&self, key: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Memory(m) => Ok(m.lock().expect("memory store").remove(key).is_some()),
            Backend::File(dir) => match std::fs::remove_file(file_path(dir, key)) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(StoreError::Backend {
                    backend: "file",
                    message: e.to_string(),
                }),
            },
            Backend::Keyring(s) => keyring_delete(s, key),
        }
    }

    /// Take the cross-process lock for `key` (blocks until it is free). Dropping
    /// the file releases it.
    pub fn lock(&self, key: &str) -> std::io::Result<std::fs::File> {
        std::fs::create_dir_all(&self.lock_dir)?;
        let path = self.lock_dir.join(format!("{}.lock", hash(key)));
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        f.lock()?;
        Ok(f)
    }
}

impl TokenStore {
    /// The login lock for `key`, if no other process holds it: the bridge process
    /// that gets it opens the browser; the others wait for it.
    pub fn try_login_lock(&self, key: &str) -> std::io::Result<Option<std::fs::File>> {
        std::fs::create_dir_all(&self.lock_dir)?;
        let path = self.lock_dir.join(format!("{}.login", hash(key)));
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        match f.try_lock() {
            Ok(()) => Ok(Some(f)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// Wait until no process holds the login lock for `key`.
    pub fn wait_login_lock(&self, key: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.lock_dir)?;
        let path = self.lock_dir.join(format!("{}.login", hash(key)));
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        f.lock()?;
        Ok(())
    }
}

fn hash(key: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(key.as_bytes())[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ------------------------------------------------------------------ OS store

#[cfg(target_os = "linux")]
fn os_store() -> Result<Arc<keyring_core::CredentialStore>, String> {
    zbus_secret_service_keyring_store::Store::new()
        .map(|s| s as Arc<keyring_core::CredentialStore>)
        .map_err(|e| e.to_string())
}

#[cfg(target_os = "macos")]
fn os_store() -> Result<Arc<keyring_core::CredentialStore>, String> {
    apple_native_keyring_store::keychain::Store::new()
        .map(|s| s as Arc<keyring_core::CredentialStore>)
        .map_err(|e| e.to_string())
}

#[cfg(windows)]
fn os_store() -> Result<Arc<keyring_core::CredentialStore>, String> {
    windows_native_keyring_store::Store::new()
        .map(|s| s as Arc<keyring_core::CredentialStore>)
        .map_err(|e| e.to_string())
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn os_store() -> Result<Arc<keyring_core::CredentialStore>, String> {
    Err("no OS credential store on this platform".into())
}

/// Write, read back and delete a canary: a locked keyring opens fine and fails on
/// the first write.
fn probe(store: &Arc<keyring_core::CredentialStore>) -> Result<(), String> {
    let e = keyring_core::Entry::new_in_store(store, SERVICE, "probe").map_err(|e| e.to_string())?;
    e.set_password("ok").map_err(|e| e.to_string())?;
    let back = e.get_password().map_err(|e| e.to_string())?;
    let _ = e.delete_credential();
    if back == "ok" {
        Ok(())
    } else {
        Err("the store returned something else".into())
    }
}

fn kerr(e: keyring_core::Error) -> StoreError {
    StoreError::Backend {
        backend: "keyring",
        message: e.to_string(),
    }
}

/// A value is split over items `key`, `key#1`, `key#2`...; the first holds
/// `<count>:<chunk>`.
fn keyring_write(store: &Arc<keyring_core::CredentialStore>, key: &str, raw: &str) -> Result<(), StoreError> {
    let chunks = char_chunks(raw);
    for (i, c) in chunks.iter().enumerate().skip(1) {
        let e = keyring_core::Entry::new_in_store(store, SERVICE, &format!("{key}#{i}")).map_err(kerr)?;
        e.set_password(c).map_err(kerr)?;
    }
    let first = format!(
        "{}:{}",
        chunks.len().max(1),
        chunks.first().map(String::as_str).unwrap_or("")
    );
    keyring_core::Entry::new_in_store(store, SERVICE, key)
        .map_err(kerr)?
        .set_password(&first)
        .map_err(kerr)
}

fn char_chunks(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for ch in raw.chars() {
        if cur.len() + ch.len_utf8() > CHUNK {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(ch);
    }
    out.push(cur);
    out
}

fn keyring_read(store: &Arc<keyring_core::CredentialStore>, key: &str) -> Result<Option<String>, StoreError> {
    let first = match keyring_core::Entry::new_in_store(store, SERVICE, key)
        .map_err(kerr)?
        .get_password()
    {
        Ok(v) => v,
        Err(keyring_core::Error::NoEntry) => return Ok(None),
        Err(e) => return Err(kerr(e)),
    };
    let (count, head) = first
        .split_once(':')
        .and_then(|(n, rest)| n.parse::<usize>().ok().map(|n| (n, rest)))
        .ok_or_else(|| StoreError::Corrupt {
            key: key.into(),
            message: "bad chunk header".into(),
        })?;
    let mut raw = head.to_owned();
    for i in 1..count {
        let e = keyring_core::Entry::new_in_store(store, SERVICE, &format!("{key}#{i}")).map_err(kerr)?;
        raw.push_str(&e.get_password().map_err(kerr)?);
    }
    Ok(Some(raw))
}

fn keyring_delete(store: &Arc<keyring_core::CredentialStore>, key: &str) -> Result<bool, StoreError> {
    let count = match keyring_read(store, key) {
        Ok(Some(_)) => {
            let e = keyring_core::Entry::new_in_store(store, SERVICE, key).map_err(kerr)?;
            let first = e.get_password().map_err(kerr)?;
            first
                .split_once(':')
                .and_then(|(n, _)| n.parse::<usize>().ok())
                .unwrap_or(1)
        }
        Ok(None) => return Ok(false),
        Err(_) => 1,
    };
    for i in 1..count {
        if let Ok(e) = keyring_core::Entry::new_in_store(store, SERVICE, &format!("{key}#{i}")) {
            let _ = e.delete_credential();
        }
    }
    match keyring_core::Entry::new_in_store(store, SERVICE, key)
        .map_err(kerr)?
        .delete_credential()
    {
        Ok(()) => Ok(true),
        Err(keyring_core::Error::NoEntry) => Ok(false),
        Err(e) => Err(kerr(e)),
    }
}

// ------------------------------------------------------------------ file store

fn file_path(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{}.json", hash(key)))
}

fn file_read(dir: &Path, key: &str) -> Result<Option<String>, StoreError> {
    match std::fs::read_to_string(file_path(dir, key)) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::Backend {
            backend: "file",
            message: e.to_string(),
        }),
    }
}

fn file_write(dir: &Path, key: &str, raw: &str) -> Result<(), StoreError> {
    let err = |e: std::io::Error| StoreError::Backend {
        backend: "file",
        message: e.to_string(),
    };
    crate::util::create_private_dir(dir).map_err(err)?;
    let path = file_path(dir, key);
    let tmp = dir.join(format!(".{}.{}.tmp", hash(key), std::process::id()));
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(err)?;
        f.write_all(raw.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, &path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        let mut e = Entry {
            client_secret: Some("s3cret-value".into()),
            ..Entry::default()
        };
        e.headers.insert("Authorization".into(), "Bearer tok-123".into());
        e
    }

    #[test]
    fn canonical_keys() {
        assert_eq!(canonical_key("HTTPS://Example.COM/mcp/#x"), "https://example.com/mcp");
        assert_eq!(canonical_key("https://example.com"), "https://example.com");
    }

    /// The file store round-trips, keeps the file private and survives garbage.
    #[test]
    fn file_store_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let s = TokenStore::open(StoreKind::File, dir.path()).unwrap();
        assert!(s.get("https://a/mcp").unwrap().is_none());
        s.put("https://a/mcp", &entry()).unwrap();
        let back = s.get("https://a/mcp").unwrap().unwrap();
        assert_eq!(back.client_secret.as_deref(), Some("s3cret-value"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let p = file_path(&dir.path().join("credentials"), "https://a/mcp");
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
            std::fs::write(&p, "{oops").unwrap();
            assert!(matches!(s.get("https://a/mcp"), Err(StoreError::Corrupt { .. })));
        }
        assert!(s.delete("https://a/mcp").unwrap());
        assert!(!s.delete("https://a/mcp").unwrap());
    }

    /// Debug output never shows secrets.
    #[test]
    fn debug_redacts() {
        let d = format!("{:?}", entry());
        assert!(!d.contains("s3cret") && !d.contains("tok-123"), "{d}");
    }

    /// Values larger than one keyring item are split and joined again.
    #[test]
    fn keyring_chunks_roundtrip() {
        let store: Arc<keyring_core::CredentialStore> = keyring_core::mock::Store::new().unwrap();
        let big = format!("{{\"x\":\"{}é\"}}", "a".repeat(CHUNK * 2 + 7));
        keyring_write(&store, "k", &big).unwrap();
        assert_eq!(keyring_read(&store, "k").unwrap().as_deref(), Some(big.as_str()));
        assert!(keyring_delete(&store, "k").unwrap());
        assert_eq!(keyring_read(&store, "k").unwrap(), None);
    }
}
