//! Where credentials live: the OS credential store (macOS Keychain, Windows
//! Credential Manager, Secret Service on Linux) through `keyring-core`, or, when
//! none works (headless Linux), a 0600 file in the state dir. That fallback is
//! said once per machine and reason, when something first needs the store
//! (not on every start). One entry per server, keyed by its canonical URL; the value is
//! versioned JSON so that an upgrade never loses a login.
//!
//! An entry that exists and cannot be read (garbage in the file, keyring items
//! that do not make a value, a newer format) is [`StoreError::Corrupt`], which
//! names where it is ([`TokenStore::location`]). It is never a dead end:
//! [`TokenStore::delete`] removes it whatever its state, and
//! [`TokenStore::get_for_update`] lets a write replace it. Directories the
//! store uses are created, or tightened, to 0700.
//!
//! Every call here blocks (the OS stores are synchronous): async callers go
//! through `spawn_blocking`. Nothing here logs a secret; [`Entry`]'s `Debug`
//! redacts them.

use crate::config::StoreKind;
use crate::util::Locked;
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
    /// The entry exists and cannot be read: `location` names it (a file, or the
    /// OS store's service and user) so that a person can find it. Removing it
    /// (`logout`, `auth clear`) or overwriting it (`login`, `auth set`) recovers.
    #[error("stored credentials for {key} in {location} are unreadable: {message}")]
    Corrupt {
        key: String,
        location: String,
        message: String,
    },
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
    /// A PEM private key for `private_key_jwt`, set with `mcp-bridge auth set
    /// --private-key` (in place of `oauth.private_key_file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
}

impl Entry {
    /// Nothing left worth keeping (the entry is deleted rather than written).
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.oauth.is_none() && self.client_secret.is_none() && self.private_key.is_none()
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("version", &self.version)
            .field("oauth", &self.oauth.as_ref().map(|_| "[REDACTED]"))
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[REDACTED]"))
            .field("redirect_uri", &self.redirect_uri)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("private_key", &self.private_key.as_ref().map(|_| "[REDACTED]"))
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
    /// Why `auto` fell back to the file, said once (see [`Fallback`]).
    fallback: Option<Fallback>,
}

/// `auto` found no usable OS store and keeps credentials in the file. That is
/// said when something first needs the store (a credential is written, or one
/// is found), not at every start, and once per machine: a marker file in the
/// state dir holds the reason it was said for. A new reason is said again.
struct Fallback {
    why: String,
    dir: PathBuf,
    marker: PathBuf,
    /// Decided in this process already.
    done: std::sync::atomic::AtomicBool,
}

/// The marker's name in the state dir.
pub const FALLBACK_MARKER: &str = "credential-store-fallback";

impl Fallback {
    /// Say it, if it was never said for this reason, and only where it is
    /// seen: with no log output (`tools`, `status`) it waits for a command
    /// that has one.
    fn notice(&self) {
        use std::sync::atomic::Ordering;
        if self.done.load(Ordering::Relaxed) || !tracing::enabled!(tracing::Level::WARN) {
            return;
        }
        self.done.store(true, Ordering::Relaxed);
        if std::fs::read_to_string(&self.marker).is_ok_and(|said| said == self.why) {
            return;
        }
        tracing::warn!(
            "no usable OS credential store ({}); keeping credentials in 0600 files in {}. \
             Said once (remove {} to see it again); `mcp-bridge doctor` shows it any time",
            self.why,
            self.dir.display(),
            self.marker.display()
        );
        let dir = self.marker.parent().unwrap_or(Path::new("."));
        if let Err(e) = crate::util::create_private_dir(dir).and_then(|()| std::fs::write(&self.marker, &self.why)) {
            tracing::debug!("cannot write {}: {e}", self.marker.display());
        }
    }
}

/// What [`TokenStore::get_for_update`] found.
pub struct ForUpdate {
    /// The stored entry, or a new one.
    pub entry: Entry,
    /// The unreadable entry the next write replaces.
    pub replaces: Option<StoreError>,
}

impl TokenStore {
    /// Open the store of `kind`. `Auto` probes the OS store with a canary entry
    /// and falls back to the file store, which is said once, when it matters
    /// ([`Fallback`]).
    pub fn open(kind: StoreKind, state_dir: &Path) -> Result<TokenStore, StoreError> {
        let lock_dir = state_dir.join("locks");
        let file = || Backend::File(state_dir.join("credentials"));
        let mut fallback = None;
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
                    tracing::debug!("no usable OS credential store ({why}); using the file store");
                    fallback = Some(Fallback {
                        why,
                        dir: state_dir.join("credentials"),
                        marker: state_dir.join(FALLBACK_MARKER),
                        done: Default::default(),
                    });
                    file()
                }
            },
        };
        Ok(TokenStore {
            backend,
            lock_dir,
            fallback,
        })
    }

    /// Why `auto` keeps credentials in the file store, if it does.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_ref().map(|f| f.why.as_str())
    }

    /// Something needs the store: say that it is the file, if it is a fallback.
    fn needed(&self) {
        if let Some(f) = &self.fallback {
            f.notice();
        }
    }

    /// A name for `status`: where credentials are kept.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Keyring(_) => "OS credential store".into(),
            Backend::File(dir) => format!("file store in {} (0600)", dir.display()),
            Backend::Memory(_) => "memory (not persisted)".into(),
        }
    }

    /// Where the entry for `key` is kept, for a person to find it: the file,
    /// or the OS store's service and user names.
    pub fn location(&self, key: &str) -> String {
        match &self.backend {
            Backend::Keyring(_) => keyring_location(key),
            Backend::File(dir) => file_path(dir, key).display().to_string(),
            Backend::Memory(_) => "memory".into(),
        }
    }

    /// The entry for `key`; [`StoreError::Corrupt`] when it exists and cannot be
    /// read (not UTF-8, not JSON, a newer format, missing keyring chunks).
    pub fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let corrupt = |message: String| StoreError::Corrupt {
            key: key.to_owned(),
            location: self.location(key),
            message,
        };
        let raw = match &self.backend {
            Backend::Memory(m) => m.locked().get(key).cloned().map(Ok),
            Backend::File(dir) => file_read(dir, key)?,
            Backend::Keyring(s) => keyring_read(s, key)?,
        };
        let raw = match raw {
            None => return Ok(None),
            Some(raw) => {
                self.needed();
                raw.map_err(corrupt)?
            }
        };
        let entry: Entry = serde_json::from_str(&raw).map_err(|e| corrupt(format!("not an entry: {e}")))?;
        if entry.version > ENTRY_VERSION {
            return Err(corrupt(format!(
                "written by a newer mcp-bridge (format {})",
                entry.version
            )));
        }
        Ok(Some(entry))
    }

    /// The entry to change and write back: the stored one, or a new one when
    /// there is none or it is unreadable (which the write then replaces, so a
    /// login or `auth set` recovers from a corrupt entry). Errors of the store
    /// itself (a locked keyring) are returned: nothing is overwritten blindly.
    pub fn get_for_update(&self, key: &str) -> Result<ForUpdate, StoreError> {
        match self.get(key) {
            Ok(entry) => Ok(ForUpdate {
                entry: entry.unwrap_or_default(),
                replaces: None,
            }),
            Err(e @ StoreError::Corrupt { .. }) => Ok(ForUpdate {
                entry: Entry::default(),
                replaces: Some(e),
            }),
            Err(e) => Err(e),
        }
    }

    pub fn put(&self, key: &str, entry: &Entry) -> Result<(), StoreError> {
        self.needed();
        let mut e = entry.clone();
        e.version = ENTRY_VERSION;
        let raw = serde_json::to_string(&e).map_err(|err| StoreError::Backend {
            backend: "json",
            message: err.to_string(),
        })?;
        match &self.backend {
            Backend::Memory(m) => {
                m.locked().insert(key.to_owned(), raw);
                Ok(())
            }
            Backend::File(dir) => file_write(dir, key, &raw),
            Backend::Keyring(s) => keyring_write(s, key, &raw),
        }
    }

    /// The file store's entry files that cannot be read, other than those of
    /// `known` keys (which [`TokenStore::get`] reports by key): an entry left
    /// by a server no longer configured. Empty for the other stores.
    pub fn unreadable_files(&self, known: &[String]) -> Vec<PathBuf> {
        let Backend::File(dir) = &self.backend else {
            return Vec::new();
        };
        let known: Vec<PathBuf> = known.iter().map(|k| file_path(dir, k)).collect();
        let Ok(list) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut out: Vec<PathBuf> = list
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json") && !known.contains(p))
            .filter(|p| {
                std::fs::read(p).map_or(true, |bytes| {
                    serde_json::from_slice::<Entry>(&bytes).map_or(true, |e| e.version > ENTRY_VERSION)
                })
            })
            .collect();
        out.sort();
        out
    }

    /// Remove the entry for `key`, readable or not; whether there was one.
    pub fn delete(&self, key: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Memory(m) => Ok(m.locked().remove(key).is_some()),
            Backend::File(dir) => match std::fs::remove_file(file_path(dir, key)) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(StoreError::Backend {
                    backend: "file",
                    message: format!("cannot remove {}: {e}", file_path(dir, key).display()),
                }),
            },
            Backend::Keyring(s) => keyring_delete(s, key),
        }
    }

    /// Take the cross-process lock for `key` (blocks until it is free). Dropping
    /// the file releases it.
    pub fn lock(&self, key: &str) -> std::io::Result<std::fs::File> {
        crate::util::create_private_dir(&self.lock_dir)?;
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
        crate::util::create_private_dir(&self.lock_dir)?;
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
        crate::util::create_private_dir(&self.lock_dir)?;
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

/// Where an entry lives in the OS store: the names a keyring tool shows.
fn keyring_location(key: &str) -> String {
    format!("the OS credential store (service \"{SERVICE}\", user \"{key}\", and \"{key}#1\"... when split)")
}

/// Most items one value is split over (a header claiming more is corrupt).
const MAX_CHUNKS: usize = 64;

/// The count a first item's `<count>:` header gives, if it is well-formed.
fn chunk_count(first: &str) -> Option<usize> {
    first
        .split_once(':')
        .and_then(|(n, _)| n.parse::<usize>().ok())
        .filter(|n| (1..=MAX_CHUNKS).contains(n))
}

/// The whole value for `key`: `None` when there is none, `Some(Err(why))` when
/// its items do not make a value (a bad header, a missing item, not UTF-8).
fn keyring_read(
    store: &Arc<keyring_core::CredentialStore>,
    key: &str,
) -> Result<Option<Result<String, String>>, StoreError> {
    let item = |user: &str| keyring_core::Entry::new_in_store(store, SERVICE, user).map_err(kerr);
    let first = match item(key)?.get_password() {
        Ok(v) => v,
        Err(keyring_core::Error::NoEntry) => return Ok(None),
        Err(keyring_core::Error::BadEncoding(_)) => return Ok(Some(Err("the value is not UTF-8".into()))),
        Err(e) => return Err(kerr(e)),
    };
    let Some(count) = chunk_count(&first) else {
        return Ok(Some(Err(format!(
            "the first item does not start with a chunk count (1 to {MAX_CHUNKS}) and a colon"
        ))));
    };
    let mut raw = first
        .split_once(':')
        .map(|(_, head)| head.to_owned())
        .unwrap_or_default();
    for i in 1..count {
        match item(&format!("{key}#{i}"))?.get_password() {
            Ok(part) => raw.push_str(&part),
            Err(keyring_core::Error::NoEntry) => {
                return Ok(Some(Err(format!("item \"{key}#{i}\" of {count} is missing"))));
            }
            Err(keyring_core::Error::BadEncoding(_)) => {
                return Ok(Some(Err(format!("item \"{key}#{i}\" is not UTF-8"))));
            }
            Err(e) => return Err(kerr(e)),
        }
    }
    Ok(Some(Ok(raw)))
}

/// Remove every item of `key`, whatever state they are in: the count from a
/// readable header, else every `key#i` there is (up to [`MAX_CHUNKS`]).
fn keyring_delete(store: &Arc<keyring_core::CredentialStore>, key: &str) -> Result<bool, StoreError> {
    let first = match keyring_core::Entry::new_in_store(store, SERVICE, key)
        .map_err(kerr)?
        .get_password()
    {
        Ok(v) => Some(v),
        Err(keyring_core::Error::NoEntry) => None,
        Err(keyring_core::Error::BadEncoding(_)) => Some(String::new()),
        Err(e) => return Err(kerr(e)),
    };
    let count = first.as_deref().and_then(chunk_count);
    for i in 1..count.unwrap_or(MAX_CHUNKS) {
        let Ok(e) = keyring_core::Entry::new_in_store(store, SERVICE, &format!("{key}#{i}")) else {
            continue;
        };
        match e.delete_credential() {
            // Without a count, the items end at the first gap.
            Err(keyring_core::Error::NoEntry) if count.is_none() => break,
            _ => {}
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

/// The file's text: `None` when there is none, `Some(Err(why))` when it is
/// not text.
fn file_read(dir: &Path, key: &str) -> Result<Option<Result<String, String>>, StoreError> {
    let path = file_path(dir, key);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(
            String::from_utf8(bytes).map_err(|_| "the file is not UTF-8 text".to_owned()),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::Backend {
            backend: "file",
            message: format!("cannot read {}: {e}", path.display()),
        }),
    }
}

fn file_write(dir: &Path, key: &str, raw: &str) -> Result<(), StoreError> {
    let err = |e: std::io::Error| StoreError::Backend {
        backend: "file",
        message: format!("cannot write {}: {e}", file_path(dir, key).display()),
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

    /// A file that is not an entry (garbage, not UTF-8, a newer format) is
    /// reported with its path; an update starts afresh and replaces it; delete
    /// removes it.
    #[test]
    fn corrupt_file_entries_are_named_and_recoverable() {
        let dir = tempfile::tempdir().unwrap();
        let s = TokenStore::open(StoreKind::File, dir.path()).unwrap();
        let key = "https://a/mcp";
        s.put(key, &entry()).unwrap();
        let path = file_path(&dir.path().join("credentials"), key);
        for (bytes, why) in [
            (&b"{oops"[..], "not an entry"),
            (&b"\xff\xfe"[..], "not UTF-8"),
            (&br#"{"version": 99}"#[..], "newer mcp-bridge (format 99)"),
        ] {
            std::fs::write(&path, bytes).unwrap();
            let e = s.get(key).unwrap_err();
            let StoreError::Corrupt { location, message, .. } = &e else {
                panic!("{e}")
            };
            assert_eq!(location, &path.display().to_string());
            assert!(message.contains(why), "{message}");
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
            let update = s.get_for_update(key).unwrap();
            assert!(update.replaces.is_some() && update.entry.headers.is_empty());
        }
        assert!(s.unreadable_files(&[key.to_owned()]).is_empty(), "reported by key");
        assert_eq!(s.unreadable_files(&[]), std::slice::from_ref(&path), "an orphan");
        assert!(s.delete(key).unwrap());
        assert!(!path.exists());
        assert!(s.get_for_update(key).unwrap().replaces.is_none());
        s.put(key, &entry()).unwrap();
        assert!(s.unreadable_files(&[]).is_empty(), "a readable orphan is fine");
    }

    /// A keyring entry whose items do not make a value (a bad header, a missing
    /// item) is reported with the service and user; delete removes every item.
    #[test]
    fn corrupt_keyring_entries_are_named_and_removed() {
        let mock: Arc<keyring_core::CredentialStore> = keyring_core::mock::Store::new().unwrap();
        let s = TokenStore {
            backend: Backend::Keyring(mock.clone()),
            lock_dir: PathBuf::new(),
            fallback: None,
        };
        let set = |user: &str, v: &str| {
            keyring_core::Entry::new_in_store(&mock, SERVICE, user)
                .unwrap()
                .set_password(v)
                .unwrap()
        };
        let exists = |user: &str| {
            keyring_core::Entry::new_in_store(&mock, SERVICE, user)
                .unwrap()
                .get_password()
                .is_ok()
        };
        let key = "https://k/mcp";
        set(key, "garbage without a header");
        set(&format!("{key}#1"), "stray");
        set(&format!("{key}#2"), "stray");
        let e = s.get(key).unwrap_err();
        assert!(
            matches!(&e, StoreError::Corrupt { location, .. } if location.contains("service \"mcp-bridge\", user \"https://k/mcp\"")),
            "{e}"
        );
        assert!(s.delete(key).unwrap());
        assert!(!exists(key) && !exists(&format!("{key}#1")) && !exists(&format!("{key}#2")));

        set(key, "3:{\"version\":");
        set(&format!("{key}#1"), "1}");
        let e = s.get(key).unwrap_err();
        assert!(e.to_string().contains("#2\" of 3 is missing"), "{e}");
        assert!(s.delete(key).unwrap());
        assert!(!exists(key) && !exists(&format!("{key}#1")));
        assert!(s.get(key).unwrap().is_none());
    }

    /// Values larger than one keyring item are split and joined again.
    #[test]
    fn keyring_chunks_roundtrip() {
        let store: Arc<keyring_core::CredentialStore> = keyring_core::mock::Store::new().unwrap();
        let big = format!("{{\"x\":\"{}é\"}}", "a".repeat(CHUNK * 2 + 7));
        keyring_write(&store, "k", &big).unwrap();
        assert_eq!(keyring_read(&store, "k").unwrap(), Some(Ok(big.clone())));
        assert!(keyring_delete(&store, "k").unwrap());
        assert_eq!(keyring_read(&store, "k").unwrap(), None);
    }
}
