//! Logging in from `serve`: when a server answers 401 and has no login, the bridge
//! starts the browser flow by itself, in the background, as users of IDE bridges
//! expect. Several bridge processes (one per IDE window) share the store; a login
//! lock file makes sure that only one of them opens a browser tab, and the others
//! pick the tokens up when it is done. The caller may show the link another
//! way than the browser (the IDE, through [`oauth::ShowLink`]).

use std::sync::Arc;
use std::time::Duration;

use super::oauth::ShowLink;
use super::{ServerCredentials, TokenStore, oauth};
use crate::registry::ServerSpec;

/// Run (or wait for) the login of `spec`. Returns whether tokens are now there.
pub async fn login(
    spec: &ServerSpec,
    store: Arc<TokenStore>,
    timeout: Duration,
    show: Option<Arc<dyn ShowLink>>,
) -> bool {
    run(spec, store, timeout, None, show).await
}

/// Step-up after `403 insufficient_scope`: log in again asking for the union of
/// the scopes granted so far, the configured ones and the challenged ones.
pub async fn step_up(
    spec: &ServerSpec,
    store: Arc<TokenStore>,
    challenged: &str,
    timeout: Duration,
    show: Option<Arc<dyn ShowLink>>,
) -> bool {
    use rmcp::transport::auth::CredentialStore;
    let creds = ServerCredentials::new(store.clone(), &spec.url);
    let mut scopes: Vec<String> = creds
        .load()
        .await
        .ok()
        .flatten()
        .map(|c| c.granted_scopes)
        .unwrap_or_default();
    for s in spec
        .oauth
        .scopes
        .iter()
        .map(String::as_str)
        .chain(challenged.split_whitespace())
    {
        if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_owned());
        }
    }
    tracing::warn!(server = %spec.id, "{} asks for more access ({challenged}): logging in again", spec.id);
    run(spec, store, timeout, Some(scopes), show).await
}

async fn run(
    spec: &ServerSpec,
    store: Arc<TokenStore>,
    timeout: Duration,
    scopes: Option<Vec<String>>,
    show: Option<Arc<dyn ShowLink>>,
) -> bool {
    // A server reached with client credentials or through the IdP never gets
    // a browser login: the owner fetches its tokens (see `client_credentials`,
    // `enterprise`; the IdP's own login is `mcp-bridge login --idp`).
    if spec.oauth.headless() {
        return false;
    }
    let step_up = scopes.is_some();
    let creds = ServerCredentials::new(store.clone(), &spec.url);
    let key = creds.key().to_owned();
    let lock = {
        let (store, key) = (store.clone(), key.clone());
        tokio::task::spawn_blocking(move || store.try_login_lock(&key)).await
    };
    match lock {
        Ok(Ok(Some(_held))) => {
            // Another process may have finished just before we took the lock.
            if !step_up && oauth::has_tokens(&ServerCredentials::new(store.clone(), &spec.url)).await {
                return true;
            }
            if !step_up {
                tracing::warn!(server = %spec.id, "{} needs a login: starting one", spec.id);
            }
            let opts = oauth::LoginOptions {
                client_id: spec.oauth.client_id.clone(),
                client_secret: spec.oauth.client_secret.clone(),
                scopes: scopes.unwrap_or_else(|| spec.oauth.scopes.clone()),
                redirect_port: spec.oauth.redirect_port,
                send_resource: !spec.oauth.omit_resource,
                client_metadata_url: spec.oauth.client_metadata_url.clone(),
                timeout: Some(timeout),
                show,
                idp: false,
            };
            match oauth::login(&spec.url, creds, &opts).await {
                Ok(()) => {
                    tracing::warn!(server = %spec.id, "logged in to {}", spec.id);
                    true
                }
                Err(e) => {
                    tracing::warn!(server = %spec.id, "login to {} failed: {e}; run `mcp-bridge login {}`", spec.id, spec.id);
                    false
                }
            }
        }
        Ok(Ok(None)) => {
            tracing::info!(server = %spec.id, "another mcp-bridge is logging in to {}; waiting for it", spec.id);
            let waited = tokio::time::timeout(
                timeout + Duration::from_secs(5),
                tokio::task::spawn_blocking(move || store.wait_login_lock(&key)),
            )
            .await;
            matches!(waited, Ok(Ok(Ok(()))))
        }
        Ok(Err(e)) => {
            tracing::warn!(server = %spec.id, "cannot coordinate the login with other processes: {e}");
            false
        }
        Err(_) => false,
    }
}
