//! Authentication for upstream servers: OAuth 2.1 per the MCP authorization spec
//! on top of rmcp's `auth` feature, credentials in the OS credential store (or a
//! 0600 file), and the adapter that lets rmcp read and write them.
//!
//! `upstream::owner` wraps each server's HTTP client (from [`crate::net`]) in
//! rmcp's `AuthClient` with this module's credentials and runs its refresher;
//! `upstream` asks [`auto`] for a step-up login. OAuth is known here alone. rmcp
//! gaps are filled here, one place each:
//! - the client secret is not persisted by rmcp: kept in our [`store::Entry`];
//! - `get_access_token` reads the store on every request: cached in
//!   [`ServerCredentials`];
//! - no cross-process refresh lock: a lock file per server;
//! - PKCE support only warned about when absent: [`oauth::login`] refuses.

pub mod auto;
pub mod client_credentials;
pub mod enterprise;
pub mod oauth;
pub mod refresh;
pub mod store;

use crate::util::Locked;
use std::sync::{Arc, Mutex};

use rmcp::transport::auth::{AuthError, CredentialRefreshGuard, CredentialStore, StoredCredentials};

pub use store::{TokenStore, canonical_key};

use crate::config::StoreKind;
use crate::registry::ServerSpec;

/// Env var that overrides `[auth] store` (tests use it to stay off the user's keyring).
pub const ENV_STORE: &str = "MCP_BRIDGE_CREDENTIAL_STORE";

/// The credential store, opened on first use: probing the OS store costs a D-Bus
/// or Keychain round trip, which must not delay the IDE's first answer.
pub struct LazyStore {
    kind: StoreKind,
    dir: std::path::PathBuf,
    cell: tokio::sync::OnceCell<Option<Arc<TokenStore>>>,
    /// While serving, start the browser login by itself for a server that needs
    /// one, waiting at most this long for the user (`[auth] auto_login`).
    pub auto_login: Option<std::time::Duration>,
}

impl LazyStore {
    pub fn new(kind: StoreKind, state_dir: &std::path::Path) -> Self {
        let kind = match std::env::var(ENV_STORE).ok().as_deref() {
            Some("file") => StoreKind::File,
            Some("memory") => StoreKind::Memory,
            Some("keyring") => StoreKind::Keyring,
            Some("auto") => StoreKind::Auto,
            _ => kind,
        };
        LazyStore {
            kind,
            dir: state_dir.to_owned(),
            cell: tokio::sync::OnceCell::new(),
            auto_login: None,
        }
    }

    /// The store, or `None` (logged once) when it cannot be opened.
    pub async fn get(&self) -> Option<Arc<TokenStore>> {
        self.cell
            .get_or_init(|| async {
                let (kind, dir) = (self.kind, self.dir.clone());
                match tokio::task::spawn_blocking(move || TokenStore::open(kind, &dir)).await {
                    Ok(Ok(s)) => Some(Arc::new(s)),
                    Ok(Err(e)) => {
                        tracing::error!("{e}; servers that need a login will not be usable");
                        None
                    }
                    Err(e) => {
                        tracing::error!("cannot open the credential store: {e}");
                        None
                    }
                }
            })
            .await
            .clone()
    }
}

/// The entry for `key` to change and write back; an unreadable one is replaced
/// (said in the log, with where it was).
fn updatable(s: &TokenStore, key: &str) -> Result<store::Entry, store::StoreError> {
    let update = s.get_for_update(key)?;
    if let Some(e) = update.replaces {
        tracing::warn!("{e}; replacing it");
    }
    Ok(update.entry)
}

/// rmcp's view of one server's credentials in our store, with an in-memory copy
/// so that a request does not hit the OS store.
#[derive(Clone)]
pub struct ServerCredentials {
    store: Arc<TokenStore>,
    key: String,
    cache: Arc<Mutex<Option<Option<StoredCredentials>>>>,
}

impl ServerCredentials {
    pub fn new(store: Arc<TokenStore>, url: &str) -> Self {
        ServerCredentials {
            store,
            key: canonical_key(url),
            cache: Arc::new(Mutex::new(None)),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&TokenStore, &str) -> Result<T, store::StoreError> + Send + 'static,
    ) -> Result<T, AuthError> {
        let (store, key) = (self.store.clone(), self.key.clone());
        tokio::task::spawn_blocking(move || f(&store, &key))
            .await
            .map_err(|e| AuthError::CredentialStoreError(e.to_string()))?
            .map_err(|e| AuthError::CredentialStoreError(e.to_string()))
    }

    /// The whole stored entry, fresh from the store; `None` when there is
    /// none or it cannot be read (see [`ServerCredentials::read`]).
    pub async fn entry(&self) -> Option<store::Entry> {
        self.read().await.ok().flatten()
    }

    /// The whole stored entry, fresh from the store, or why it cannot be read
    /// ([`store::StoreError::Corrupt`] names where it is).
    pub async fn read(&self) -> Result<Option<store::Entry>, store::StoreError> {
        let (store, key) = (self.store.clone(), self.key.clone());
        tokio::task::spawn_blocking(move || store.get(&key))
            .await
            .map_err(|e| store::StoreError::Backend {
                backend: "task",
                message: e.to_string(),
            })?
    }

    /// Remove this server's entry, readable or not; whether there was one.
    pub async fn remove(&self) -> Result<bool, AuthError> {
        *self.cache.locked() = Some(None);
        self.blocking(|s, k| s.delete(k)).await
    }

    /// Keep the redirect URI (and client secret) a registration is bound to.
    pub async fn remember_registration(&self, redirect_uri: String, secret: Option<String>) -> Result<(), AuthError> {
        self.blocking(move |s, k| {
            let mut e = updatable(s, k)?;
            e.redirect_uri = Some(redirect_uri);
            if secret.is_some() {
                e.client_secret = secret;
            }
            s.put(k, &e)
        })
        .await
    }

    /// Store (or, with `None`, remove) a static header for this server. An
    /// unreadable entry is replaced (set) or removed (clear): the error it gave
    /// is returned, for the command to say so.
    pub async fn set_static_header(
        &self,
        name: String,
        value: Option<String>,
    ) -> Result<Option<store::StoreError>, AuthError> {
        self.update(move |entry| match value {
            Some(v) => {
                entry.headers.insert(name, v);
            }
            None => {
                entry.headers.remove(&name);
            }
        })
        .await
    }

    /// Store (or, with `None`, remove) the PEM private key this server's
    /// `private_key_jwt` signs with; an unreadable entry as for
    /// [`Self::set_static_header`].
    pub async fn set_private_key(&self, pem: Option<String>) -> Result<Option<store::StoreError>, AuthError> {
        self.update(move |entry| entry.private_key = pem).await
    }

    /// Change this server's entry (replacing an unreadable one, whose error is
    /// returned); an entry left with nothing in it is deleted.
    async fn update(
        &self,
        change: impl FnOnce(&mut store::Entry) + Send + 'static,
    ) -> Result<Option<store::StoreError>, AuthError> {
        self.blocking(move |s, k| {
            let store::ForUpdate { mut entry, replaces } = s.get_for_update(k)?;
            change(&mut entry);
            if entry.is_empty() {
                s.delete(k)?;
            } else {
                s.put(k, &entry)?;
            }
            Ok(replaces)
        })
        .await
    }

    /// Read from the backing store, bypassing the cache (after taking the lock,
    /// another process may have written newer tokens).
    pub(crate) async fn load_fresh(&self) -> Result<Option<StoredCredentials>, AuthError> {
        let entry = self.blocking(|s, k| s.get(k)).await?;
        let creds = entry.and_then(|e| e.oauth);
        *self.cache.locked() = Some(creds.clone());
        Ok(creds)
    }
}

#[async_trait::async_trait]
impl CredentialStore for ServerCredentials {
    async fn load(&self) -> Result<Option<StoredCredentials>, AuthError> {
        if let Some(c) = self.cache.locked().clone() {
            return Ok(c);
        }
        self.load_fresh().await
    }

    async fn save(&self, credentials: StoredCredentials) -> Result<(), AuthError> {
        *self.cache.locked() = Some(Some(credentials.clone()));
        self.blocking(move |s, k| {
            let mut e = updatable(s, k)?;
            e.oauth = Some(credentials);
            s.put(k, &e)
        })
        .await
    }

    async fn clear(&self) -> Result<(), AuthError> {
        *self.cache.locked() = Some(None);
        self.blocking(|s, k| {
            // Keep a static credential, a client secret or a private key; drop
            // the tokens. An unreadable entry holds nothing to keep: it goes.
            match s.get(k) {
                Ok(Some(mut e)) => {
                    e.oauth = None;
                    if e.is_empty() {
                        s.delete(k).map(|_| ())
                    } else {
                        s.put(k, &e)
                    }
                }
                Err(store::StoreError::Corrupt { .. }) => s.delete(k).map(|_| ()),
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn acquire_refresh_guard(&self) -> Result<Option<CredentialRefreshGuard>, AuthError> {
        let (store, key) = (self.store.clone(), self.key.clone());
        let file = tokio::task::spawn_blocking(move || store.lock(&key))
            .await
            .map_err(|e| AuthError::CredentialStoreError(e.to_string()))?
            .map_err(|e| AuthError::CredentialStoreError(format!("cannot take the refresh lock: {e}")))?;
        // Another bridge process may have refreshed while we waited: the next
        // `load` must see its tokens, not our cached copy.
        self.load_fresh().await?;
        Ok(Some(CredentialRefreshGuard::new(file)))
    }
}

/// A token for a server whose tokens the bridge gets itself
/// ([`crate::registry::OAuthSettings::headless`]): through the identity
/// provider (enterprise), else with client credentials. The error says
/// whether only `mcp-bridge login --idp` helps.
pub async fn fetch_headless(
    spec: &ServerSpec,
    creds: ServerCredentials,
    store: Arc<TokenStore>,
) -> Result<(), enterprise::Error> {
    if spec.oauth.enterprise.is_some() {
        enterprise::fetch(spec, creds, Some(store)).await
    } else {
        client_credentials::fetch(spec, creds).await.map_err(Into::into)
    }
}

/// Renew such a server's token ahead of its expiry, until `cancel`.
pub async fn renew_headless(
    spec: ServerSpec,
    creds: ServerCredentials,
    store: Arc<TokenStore>,
    cancel: tokio_util::sync::CancellationToken,
) {
    let c = creds.clone();
    client_credentials::renew_with(&creds, cancel, move || {
        let (spec, c, store) = (spec.clone(), c.clone(), store.clone());
        async move { fetch_headless(&spec, c, store).await }
    })
    .await
}
