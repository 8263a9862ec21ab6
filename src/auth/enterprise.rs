//! Enterprise-managed authorization (SEP-990, "cross-app access"): one sign-in
//! at the company's identity provider opens every server whose authorization
//! server trusts it, with no browser for the servers.
//!
//! The flow, per server with `oauth.grant = "enterprise"` ([`fetch`]):
//! 1. discovery as for client credentials: the server's 401, its protected
//!    resource metadata (`resource`), its authorization server's metadata
//!    (`issuer`, `token_endpoint`, `grant_types_supported`);
//! 2. the user's ID token ([`id_token`]): `MCP_BRIDGE_IDP_ID_TOKEN` when set
//!    (CI, conformance), else the IdP login in the credential store; an expired
//!    one is renewed with the IdP's refresh token, else the IdP session has
//!    ended ([`SESSION_ENDED`]: `mcp-bridge login --idp`);
//! 3. RFC 8693 token exchange at the IdP's token endpoint (from its OIDC
//!    discovery, [`idp_metadata`]) for an ID-JAG: `audience` = the AS issuer,
//!    `resource` = the PRM `resource` exactly ([`exchange_form`]);
//! 4. RFC 7523 JWT bearer at the AS with the ID-JAG as `assertion`
//!    ([`bearer_form`]), the bridge authenticated there as for client
//!    credentials (`client_secret_basic` by default, post, or private_key_jwt:
//!    [`client_credentials::authenticate`]);
//! 5. the access token is stored like a login's, renewed at ~75 % of its life
//!    ([`super::renew_headless`]), and exchanged again after a 401 (the owner drops the refused
//!    token; the next connect calls [`fetch`]).
//!
//! Store keys: a server's access token is its `ServerCredentials` (the server
//! URL), as for any login. The IdP login is the `ServerCredentials` of the
//! IdP's issuer URL ([`idp_credentials`]): rmcp's token response, whose extra
//! field `id_token` is the ID token, with the IdP's refresh token.
//!
//! Invariants:
//! - an ID-JAG is used for exactly one AS token request and never stored
//!   (the AS must reject a replayed `jti`);
//! - an ID-JAG goes only to the AS whose issuer is its audience; credentials
//!   and assertions go only to HTTPS or loopback token endpoints;
//! - a server with this grant never gets a browser login of its own
//!   (`auth::auto`); only `mcp-bridge login --idp` opens a browser, for the IdP;
//! - no ID token, ID-JAG, token, secret or assertion reaches a log, an error
//!   or `Debug` output: errors carry the endpoints' `error` and
//!   `error_description`, escaped, never a request.

use std::sync::Arc;

use rmcp::transport::auth::{CredentialStore, StoredCredentials};

use super::client_credentials::{self, ClientAuth, TokenError};
use super::{ServerCredentials, TokenStore};
use crate::registry::{Idp, ServerSpec};

/// Env var with a pre-issued ID token (CI, the conformance suite): used
/// instead of the IdP login in the store.
pub const ENV_ID_TOKEN: &str = "MCP_BRIDGE_IDP_ID_TOKEN";
/// Env var with the bridge's client secret at the IdP, for `--idp-issuer`.
pub const ENV_IDP_CLIENT_SECRET: &str = "MCP_BRIDGE_IDP_CLIENT_SECRET";
/// What a server whose IdP login is gone says.
pub const SESSION_ENDED: &str = "the identity provider session has ended: run `mcp-bridge login --idp`";

pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub const ID_JAG: &str = "urn:ietf:params:oauth:token-type:id-jag";
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

/// An ID token this close to its `exp` (seconds) counts as expired: the
/// exchange and the AS request must fit before it runs out.
const EXP_MARGIN: u64 = 30;

/// Why a server's token could not be had. The text names the server and what
/// to fix, and holds no secret.
#[derive(Debug, thiserror::Error)]
#[error("server {server}: {message}")]
pub struct Error {
    pub server: String,
    pub message: String,
    /// The IdP session has ended: only `mcp-bridge login --idp` helps.
    pub idp_login: bool,
}

impl From<client_credentials::Error> for Error {
    fn from(e: client_credentials::Error) -> Error {
        Error {
            server: e.server,
            message: e.message,
            idp_login: false,
        }
    }
}

fn error(spec: &ServerSpec, message: impl std::fmt::Display) -> Error {
    Error {
        server: spec.id.clone(),
        message: message.to_string(),
        idp_login: false,
    }
}

/// Why there is no usable ID token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    /// No IdP login, or it expired and could not be renewed.
    #[error("{SESSION_ENDED}")]
    SessionEnded,
    /// `MCP_BRIDGE_IDP_ID_TOKEN` is set but its `exp` has passed.
    #[error("the ID token in {ENV_ID_TOKEN} has expired: set a fresh one")]
    EnvExpired,
    /// The IdP or the store could not be asked (may pass: retried).
    #[error("{0}")]
    Other(String),
}

/// The IdP's login in the credential store: the entry of its issuer URL.
pub fn idp_credentials(store: Arc<TokenStore>, idp: &Idp) -> ServerCredentials {
    ServerCredentials::new(store, &idp.issuer)
}

/// The `exp` claim of a JWT, read without verifying it (the bridge only
/// decides when to renew; the IdP verifies the token).
pub fn expiry(jwt: &str) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Exp {
        exp: Option<serde_json::Value>,
    }
    let claims: Exp = jsonwebtoken::dangerous::insecure_decode_claims(jwt).ok()?;
    match claims.exp? {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        _ => None,
    }
}

/// Whether an ID token with this `exp` is still good at `now` (no `exp`: good;
/// the IdP will say otherwise).
pub fn live(exp: Option<u64>, now: u64) -> bool {
    exp.is_none_or(|e| e > now + EXP_MARGIN)
}

/// The ID token and refresh token of a stored IdP login.
pub fn stored_tokens(c: &StoredCredentials) -> (Option<String>, Option<String>) {
    let Some(v) = c.token_response.as_ref().and_then(|t| serde_json::to_value(t).ok()) else {
        return (None, None);
    };
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    (s("id_token"), s("refresh_token"))
}

/// The IdP's session as `status` and `doctor` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Session {
    /// `MCP_BRIDGE_IDP_ID_TOKEN` is set (expiry, if it says).
    Env { exp: Option<u64> },
    /// An ID token that has not expired.
    Live { exp: Option<u64> },
    /// The ID token has expired but a refresh token can renew it.
    Renewable,
    /// No usable login: `mcp-bridge login --idp`.
    Ended,
}

impl Session {
    pub fn is_usable(&self) -> bool {
        !matches!(self, Session::Ended) && !matches!(self, Session::Env { exp } if !live(*exp, crate::util::now_unix()))
    }
}

/// What the store (or the environment) holds for `idp`; no network.
pub async fn session(store: Option<Arc<TokenStore>>, idp: &Idp) -> Session {
    if let Some(t) = env_id_token() {
        return Session::Env { exp: expiry(&t) };
    }
    let Some(store) = store else {
        return Session::Ended;
    };
    let Some(c) = idp_credentials(store, idp).entry().await.and_then(|e| e.oauth) else {
        return Session::Ended;
    };
    match stored_tokens(&c) {
        (Some(t), _) if live(expiry(&t), crate::util::now_unix()) => Session::Live { exp: expiry(&t) },
        (_, Some(_)) => Session::Renewable,
        _ => Session::Ended,
    }
}

fn env_id_token() -> Option<String> {
    std::env::var(ENV_ID_TOKEN).ok().filter(|t| !t.trim().is_empty())
}

/// The parts of an IdP's discovery document the bridge uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpMetadata {
    pub issuer: String,
    pub token_endpoint: String,
    pub grant_types_supported: Option<Vec<String>>,
}

/// Where the discovery document of `issuer` may be: OIDC's
/// `/.well-known/openid-configuration` appended to the issuer, then RFC 8414's
/// `/.well-known/oauth-authorization-server` inserted before its path.
pub fn metadata_urls(issuer: &str) -> Vec<String> {
    let base = issuer.trim_end_matches('/');
    let mut urls = vec![format!("{base}/.well-known/openid-configuration")];
    if let Ok(u) = url::Url::parse(base) {
        let path = u.path().trim_end_matches('/');
        urls.push(format!(
            "{}/.well-known/oauth-authorization-server{path}",
            u.origin().ascii_serialization()
        ));
    }
    urls
}

/// Two issuer identifiers that name the same server (a trailing `/` aside).
fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// The IdP's discovery document; its `issuer` must be the configured one.
pub async fn idp_metadata(issuer: &str) -> Result<IdpMetadata, String> {
    let client = crate::net::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let mut tried = Vec::new();
    for url in metadata_urls(issuer) {
        let doc: serde_json::Value = match client.get(&url).header("accept", "application/json").send().await {
            Ok(r) if r.status().is_success() => match r.json().await {
                Ok(d) => d,
                Err(e) => {
                    tried.push(format!("{url}: not JSON ({e})"));
                    continue;
                }
            },
            Ok(r) => {
                tried.push(format!("{url}: HTTP {}", r.status()));
                continue;
            }
            Err(e) => {
                tried.push(format!("{url}: {e}"));
                continue;
            }
        };
        let s = |k: &str| doc.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let found = s("issuer").unwrap_or_default();
        if !same_issuer(&found, issuer) {
            return Err(format!(
                "the identity provider's metadata at {url} names the issuer {:?}, not {issuer:?}: check [auth.idp] issuer",
                crate::util::printable(&found)
            ));
        }
        let Some(token_endpoint) = s("token_endpoint") else {
            return Err(format!(
                "the identity provider's metadata at {url} has no token_endpoint"
            ));
        };
        let grant_types_supported = doc
            .get("grant_types_supported")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect());
        return Ok(IdpMetadata {
            issuer: found,
            token_endpoint,
            grant_types_supported,
        });
    }
    Err(format!(
        "cannot read the identity provider's metadata ({})",
        crate::util::printable(&tried.join("; "))
    ))
}

/// How the bridge authenticates at the IdP: Basic with its secret, else as a
/// public client (`client_id` in the body).
pub fn idp_auth(idp: &Idp) -> ClientAuth {
    match &idp.client_secret {
        Some(secret) => ClientAuth::Basic {
            client_id: idp.client_id.clone(),
            secret: secret.clone(),
        },
        None => ClientAuth::Public {
            client_id: idp.client_id.clone(),
        },
    }
}

/// The RFC 8693 token exchange request for an ID-JAG (draft-ietf-oauth-
/// identity-assertion-authz-grant): `audience` the AS issuer, `resource` the
/// protected resource, exactly as its metadata says.
pub fn exchange_form(id_token: &str, audience: &str, resource: &str, scopes: &[String]) -> Vec<(&'static str, String)> {
    let mut form = vec![
        ("grant_type", TOKEN_EXCHANGE.to_owned()),
        ("requested_token_type", ID_JAG.to_owned()),
        ("audience", audience.to_owned()),
        ("resource", resource.to_owned()),
        ("subject_token", id_token.to_owned()),
        ("subject_token_type", ID_TOKEN_TYPE.to_owned()),
    ];
    if !scopes.is_empty() {
        form.push(("scope", scopes.join(" ")));
    }
    form
}

/// The RFC 7523 JWT bearer request at the AS, with the ID-JAG as assertion.
pub fn bearer_form(id_jag: &str, resource: Option<&str>, scopes: &[String]) -> Vec<(&'static str, String)> {
    let mut form = vec![("grant_type", JWT_BEARER.to_owned()), ("assertion", id_jag.to_owned())];
    if let Some(r) = resource {
        form.push(("resource", r.to_owned()));
    }
    if !scopes.is_empty() {
        form.push(("scope", scopes.join(" ")));
    }
    form
}

/// What the IdP's refusal of a token exchange means for `server`.
pub fn exchange_refused(server: &str, e: &TokenError) -> String {
    let detail = e.text.split_once(": ").map(|(_, d)| d).unwrap_or(&e.text);
    match e.code.as_deref() {
        Some("invalid_grant" | "invalid_target" | "access_denied" | "unauthorized_client") => {
            format!("the identity provider refused access to {server} ({detail})")
        }
        Some("invalid_client") => format!(
            "the identity provider refused the bridge's client ({detail}): check [auth.idp] client_id and the secret in the variable client_secret_env names"
        ),
        _ => format!("the token exchange at the identity provider failed: {}", e.text),
    }
}

/// A usable ID token for `idp`: from the environment, else the store, renewed
/// with the refresh token when it has expired.
pub async fn id_token(idp: &Idp, store: Option<Arc<TokenStore>>) -> Result<String, IdTokenError> {
    let now = crate::util::now_unix();
    if let Some(t) = env_id_token() {
        return if live(expiry(&t), now) {
            Ok(t)
        } else {
            Err(IdTokenError::EnvExpired)
        };
    }
    let store = store.ok_or_else(|| IdTokenError::Other("no credential store is usable".into()))?;
    let creds = idp_credentials(store, idp);
    let stored = creds
        .load_fresh()
        .await
        .map_err(|e| IdTokenError::Other(e.to_string()))?;
    let Some(c) = stored else {
        return Err(IdTokenError::SessionEnded);
    };
    match stored_tokens(&c) {
        (Some(t), _) if live(expiry(&t), now) => return Ok(t),
        (_, None) => return Err(IdTokenError::SessionEnded),
        _ => {}
    }
    // One process renews at a time (a rotating refresh token would be spent
    // twice); the others then find its result.
    let _guard = creds
        .acquire_refresh_guard()
        .await
        .map_err(|e| IdTokenError::Other(e.to_string()))?;
    let c = match creds.load().await {
        Ok(Some(c)) => c,
        _ => return Err(IdTokenError::SessionEnded),
    };
    let refresh_token = match stored_tokens(&c) {
        (Some(t), _) if live(expiry(&t), crate::util::now_unix()) => return Ok(t),
        (_, Some(r)) => r,
        (_, None) => return Err(IdTokenError::SessionEnded),
    };
    let meta = idp_metadata(&idp.issuer).await.map_err(IdTokenError::Other)?;
    if !client_credentials::endpoint_allowed(&meta.token_endpoint) {
        return Err(IdTokenError::Other(format!(
            "the identity provider's token endpoint {} is not HTTPS",
            meta.token_endpoint
        )));
    }
    let form = vec![
        ("grant_type", "refresh_token".to_owned()),
        ("refresh_token", refresh_token.clone()),
    ];
    let mut v = match client_credentials::token_request(&meta.token_endpoint, form, &idp_auth(idp)).await {
        Ok(v) => v,
        // The refresh token is dead: the login goes (the registration stays),
        // so that `status` says the session has ended.
        Err(e) if e.code.as_deref() == Some("invalid_grant") => {
            tracing::warn!("the identity provider refused to renew its login ({e})");
            let _ = creds.clear().await;
            return Err(IdTokenError::SessionEnded);
        }
        Err(e) if e.code.is_some() => {
            return Err(IdTokenError::Other(format!(
                "the identity provider refused to renew its login ({e}): check [auth.idp] client_id and client_secret_env"
            )));
        }
        Err(e) => {
            return Err(IdTokenError::Other(format!(
                "cannot renew the identity provider login: {e}"
            )));
        }
    };
    let Some(t) = v.get("id_token").and_then(|x| x.as_str()).map(str::to_owned) else {
        tracing::warn!("the identity provider renewed its login without a new ID token");
        return Err(IdTokenError::SessionEnded);
    };
    // The refresh token stays when the IdP does not rotate it.
    if v.get("refresh_token").is_none()
        && let Some(o) = v.as_object_mut()
    {
        o.insert("refresh_token".into(), refresh_token.into());
    }
    let token = client_credentials::token_response(v).map_err(IdTokenError::Other)?;
    let saved = StoredCredentials::new(
        c.client_id.clone(),
        Some(token),
        c.granted_scopes.clone(),
        Some(crate::util::now_unix()),
    )
    .with_issuer(Some(meta.issuer));
    creds
        .save(saved)
        .await
        .map_err(|e| IdTokenError::Other(format!("cannot store the renewed identity provider login: {e}")))?;
    tracing::debug!("renewed the identity provider login");
    Ok(t)
}

/// Get an access token for `spec` through its IdP and store it in `creds`.
pub async fn fetch(spec: &ServerSpec, creds: ServerCredentials, store: Option<Arc<TokenStore>>) -> Result<(), Error> {
    let Some(ent) = &spec.oauth.enterprise else {
        return Err(error(spec, "oauth.grant is not \"enterprise\""));
    };
    let client_id = spec.oauth.client_id.clone().ok_or_else(|| {
        error(
            spec,
            "oauth.client_id is not set: the enterprise grant needs the bridge's client id at the server's authorization server",
        )
    })?;
    let found = client_credentials::discover(spec, creds.clone(), "enterprise-managed authorization").await?;
    let metadata = found.metadata;
    let issuer = metadata.issuer.clone().ok_or_else(|| {
        error(
            spec,
            "the authorization server's metadata has no issuer, which the identity provider needs as the audience",
        )
    })?;
    if let Some(grants) = client_credentials::listed(&metadata, "grant_types_supported")
        && !grants.iter().any(|g| g == JWT_BEARER)
    {
        return Err(error(
            spec,
            format!(
                "the authorization server {issuer} does not accept the JWT bearer grant (it lists {}): it does not take identity assertions from {}",
                grants.join(", "),
                ent.idp.issuer
            ),
        ));
    }
    client_credentials::check_endpoint(spec, &metadata.token_endpoint, "identity assertions")?;
    // Authenticated at the AS first: a missing secret or key is said before
    // the IdP is asked for an assertion that would go unused.
    let (method, as_auth) = client_credentials::authenticate(spec, &ent.client, &creds, &metadata).await?;
    let id_token = id_token(&ent.idp, store).await.map_err(|e| Error {
        server: spec.id.clone(),
        idp_login: matches!(e, IdTokenError::SessionEnded | IdTokenError::EnvExpired),
        message: e.to_string(),
    })?;
    let idp_meta = idp_metadata(&ent.idp.issuer).await.map_err(|e| error(spec, e))?;
    if !client_credentials::endpoint_allowed(&idp_meta.token_endpoint) {
        return Err(error(
            spec,
            format!(
                "the identity provider's token endpoint {} is not HTTPS: ID tokens are sent only over HTTPS (or to loopback)",
                idp_meta.token_endpoint
            ),
        ));
    }
    let scopes = &spec.oauth.scopes;
    // A fresh ID-JAG for this one request: the AS rejects a replayed `jti`.
    let exchanged = client_credentials::token_request(
        &idp_meta.token_endpoint,
        exchange_form(&id_token, &issuer, &found.resource, scopes),
        &idp_auth(&ent.idp),
    )
    .await;
    let v = match exchanged {
        Ok(v) => v,
        // Step-up: the IdP wants the user to sign in again.
        Err(e) if e.code.as_deref() == Some("insufficient_user_authentication") => {
            return Err(Error {
                server: spec.id.clone(),
                message: SESSION_ENDED.into(),
                idp_login: true,
            });
        }
        Err(e) => return Err(error(spec, exchange_refused(&spec.id, &e))),
    };
    if let Some(t) = v.get("issued_token_type").and_then(|t| t.as_str())
        && t != ID_JAG
    {
        return Err(error(
            spec,
            format!(
                "the identity provider issued a {} instead of an identity assertion (ID-JAG)",
                crate::util::printable(t)
            ),
        ));
    }
    let Some(id_jag) = v.get("access_token").and_then(|t| t.as_str()) else {
        return Err(error(
            spec,
            "the identity provider's token exchange answer has no access_token",
        ));
    };
    let resource = Some(found.resource.as_str()).filter(|_| !spec.oauth.omit_resource);
    let granted = client_credentials::token_request(
        &metadata.token_endpoint,
        bearer_form(id_jag, resource, scopes),
        &as_auth,
    )
    .await
    .map_err(|e| {
        let hint = match e.code.as_deref() {
            Some("invalid_client" | "unauthorized_client") => format!(
                "check oauth.client_id ({client_id}) and the {} registered for it",
                if matches!(as_auth, ClientAuth::Assertion(_)) {
                    "key (oauth.private_key_file)"
                } else {
                    "secret (the variable oauth.client_secret_env names)"
                }
            ),
            Some("invalid_grant") => format!(
                "it may not trust the identity provider {} or this client at it",
                ent.idp.issuer
            ),
            _ => "check the authorization server's setup for identity assertions".into(),
        };
        error(
            spec,
            format!(
                "the authorization server refused the identity assertion ({}, client {client_id}): {e}; {hint}",
                method.as_str()
            ),
        )
    })?;
    let token = client_credentials::token_response(granted).map_err(|e| error(spec, e))?;
    client_credentials::save(spec, &creds, client_id, token, Some(issuer)).await?;
    tracing::debug!(server = %spec.id, idp = %ent.idp.issuer, "got a token through the identity provider");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> String {
        let key = jsonwebtoken::EncodingKey::from_secret(b"k");
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
    }

    /// The ID token's `exp` is read without a key; a token within the margin
    /// of its `exp` counts as expired, one without `exp` as live.
    #[test]
    fn the_id_token_expiry_is_read_unverified() {
        let t = jwt(serde_json::json!({"sub": "u", "exp": 2_000_000_000u64}));
        assert_eq!(expiry(&t), Some(2_000_000_000));
        assert_eq!(expiry(&jwt(serde_json::json!({"sub": "u"}))), None);
        assert_eq!(expiry("not a jwt"), None);
        assert!(live(Some(1000), 900));
        assert!(!live(Some(1000), 990));
        assert!(!live(Some(1000), 2000));
        assert!(live(None, 2000));
    }

    /// The token exchange and the JWT bearer request carry exactly the
    /// parameters SEP-990 names, `resource` unchanged (no slash added).
    #[test]
    fn the_exchange_and_bearer_forms() {
        let f = exchange_form("idt", "http://localhost:9", "http://localhost:8/mcp", &[]);
        let get = |f: &[(&str, String)], k: &str| f.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get(&f, "grant_type").as_deref(), Some(TOKEN_EXCHANGE));
        assert_eq!(get(&f, "requested_token_type").as_deref(), Some(ID_JAG));
        assert_eq!(get(&f, "subject_token_type").as_deref(), Some(ID_TOKEN_TYPE));
        assert_eq!(get(&f, "audience").as_deref(), Some("http://localhost:9"));
        assert_eq!(get(&f, "resource").as_deref(), Some("http://localhost:8/mcp"));
        assert_eq!(get(&f, "subject_token").as_deref(), Some("idt"));
        assert_eq!(get(&f, "scope"), None);
        let scoped = exchange_form("idt", "a", "r", &["read".into(), "write".into()]);
        assert_eq!(get(&scoped, "scope").as_deref(), Some("read write"));
        let b = bearer_form("jag", Some("http://localhost:8/mcp"), &["read".into()]);
        assert_eq!(get(&b, "grant_type").as_deref(), Some(JWT_BEARER));
        assert_eq!(get(&b, "assertion").as_deref(), Some("jag"));
        assert_eq!(get(&b, "resource").as_deref(), Some("http://localhost:8/mcp"));
        assert_eq!(get(&b, "scope").as_deref(), Some("read"));
        assert_eq!(get(&bearer_form("jag", None, &[]), "resource"), None);
    }

    #[test]
    fn idp_metadata_is_looked_up_by_oidc_then_rfc8414() {
        assert_eq!(
            metadata_urls("https://idp.example.com"),
            [
                "https://idp.example.com/.well-known/openid-configuration",
                "https://idp.example.com/.well-known/oauth-authorization-server"
            ]
        );
        assert_eq!(
            metadata_urls("https://login.example.com/tenant/v2/"),
            [
                "https://login.example.com/tenant/v2/.well-known/openid-configuration",
                "https://login.example.com/.well-known/oauth-authorization-server/tenant/v2"
            ]
        );
        assert!(same_issuer("http://localhost:9/", "http://localhost:9"));
        assert!(!same_issuer("http://localhost:9", "http://localhost:8"));
    }

    /// The IdP's refusal names the server and the IdP's words; a refused
    /// client says what to check; nothing else is added.
    #[test]
    fn exchange_refusals_say_what_happened() {
        let e = TokenError {
            code: Some("invalid_target".into()),
            text: "HTTP 400 Bad Request: invalid_target: audience not allowed".into(),
        };
        assert_eq!(
            exchange_refused("sql", &e),
            "the identity provider refused access to sql (invalid_target: audience not allowed)"
        );
        let e = TokenError {
            code: Some("invalid_client".into()),
            text: "HTTP 401 Unauthorized: invalid_client".into(),
        };
        assert!(exchange_refused("sql", &e).contains("check [auth.idp] client_id"));
        let e = TokenError {
            code: None,
            text: "HTTP 500 Internal Server Error".into(),
        };
        assert!(exchange_refused("sql", &e).ends_with("failed: HTTP 500 Internal Server Error"));
        assert_eq!(
            IdTokenError::SessionEnded.to_string(),
            "the identity provider session has ended: run `mcp-bridge login --idp`"
        );
    }

    /// rmcp keeps a token response's extra fields through the store's
    /// serialization: the IdP login's `id_token` is read back from it.
    #[test]
    fn the_stored_idp_login_keeps_its_id_token() {
        let token = client_credentials::token_response(serde_json::json!({
            "access_token": "at", "token_type": "Bearer", "expires_in": 3600,
            "refresh_token": "rt", "id_token": "h.p.s", "scope": "openid offline_access"
        }))
        .unwrap();
        let c = StoredCredentials::new("bridge".into(), Some(token), vec![], Some(1));
        let back: StoredCredentials = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(stored_tokens(&back), (Some("h.p.s".into()), Some("rt".into())));
    }

    /// The IdP is asked with Basic when it gave the bridge a secret, else
    /// as a public client.
    #[test]
    fn idp_client_authentication() {
        let mut idp = Idp {
            issuer: "https://idp.example.com".into(),
            client_id: "bridge".into(),
            ..Idp::default()
        };
        assert_eq!(idp_auth(&idp).form_fields(), [("client_id", "bridge".to_owned())]);
        idp.client_secret = Some("s".into());
        assert!(idp_auth(&idp).header().unwrap().starts_with("Basic "));
        assert!(idp_auth(&idp).form_fields().is_empty());
    }
}
