//! A real OAuth 2.1 authorization server for tests, and MCP upstreams protected by it.
//!
//! * [`AuthServer`]: RFC 8414 / OIDC discovery, RFC 7591 dynamic client registration,
//!   `/authorize` with scripted consent (an immediate 302, or a denial), `/token` with the
//!   `authorization_code` (PKCE) and `refresh_token` grants, refresh-token rotation and reuse
//!   detection, and failures on demand. It runs in its own runtime thread on 127.0.0.1:0.
//!   For agents and enterprises also the `client_credentials` grant (RFC 6749 §4.4) with
//!   `client_secret_basic`, `client_secret_post` or `private_key_jwt` (RFC 7523 §2.2, every
//!   check recorded in an [`AssertionCheck`]), and the JWT bearer grant (RFC 7523 §2.1)
//!   redeeming identity assertion grants (ID-JAGs) from a trusted IdP ([`IdJagCheck`]).
//! * [`AuthState`]: the shared in-memory state (`Arc<AuthState>`, a `Mutex` inside), with the
//!   observable logs and the knobs; protected upstreams introspect tokens through it directly.
//! * [`start_protected`]: a [`TestServer`] behind a bearer-token guard that answers 401/403 with
//!   the right `WWW-Authenticate` challenges and serves RFC 9728 protected resource metadata.
//!
//! Token values never appear in `Debug` output, panic messages or logs of this module; the
//! only way to see them is to ask explicitly ([`AuthState::issued_secrets`], [`IssuedTokens`]).

#![allow(dead_code)]

use mcp_bridge::util::Locked;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::{Era, TestServer, Upstream, bind_retry};

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// What `/authorize` puts in the `iss` parameter of its redirects (RFC 9207).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssParam {
    /// No `iss` parameter.
    Omit,
    /// `iss` = the real issuer.
    Correct,
    /// `iss` = this (wrong) value, to test the mix-up check.
    Wrong(String),
}

/// A forced failure of one token request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenFailure {
    /// 400 `{"error":"invalid_grant"}`.
    InvalidGrant,
    /// 401 `{"error":"invalid_client"}`.
    InvalidClient,
    /// 503 `{"error":"temporarily_unavailable"}`.
    TemporarilyUnavailable,
    /// 500 with a plain-text (non-JSON) body.
    ServerError,
}

/// Authorization server behaviour; change it at run time with [`AuthState::configure`].
#[derive(Clone, Debug)]
pub struct AsConfig {
    /// `scopes_supported` in the metadata; also the scopes `/authorize` accepts.
    pub scopes_supported: Vec<String>,
    /// Scopes granted when the authorization request has no `scope`.
    pub default_scope: Vec<String>,
    /// Refuse (`invalid_scope`) a request naming a scope outside `scopes_supported`.
    pub reject_unknown_scopes: bool,
    /// `code_challenge_methods_supported`; `None` omits the field. PKCE stays mandatory; the
    /// methods accepted are these, or S256 alone when the field is omitted.
    pub code_challenge_methods: Option<Vec<String>>,
    /// `authorization_response_iss_parameter_supported`; `None` omits the field.
    pub advertise_iss: Option<bool>,
    /// What `/authorize` sends as `iss`.
    pub iss_param: IssParam,
    /// Serve `POST /register` (and advertise `registration_endpoint`); otherwise 404.
    pub registration: bool,
    /// Serve `/.well-known/oauth-authorization-server`.
    pub serve_rfc8414: bool,
    /// Serve `/.well-known/openid-configuration`.
    pub serve_oidc: bool,
    /// `issuer` written in the metadata documents instead of the real one (mismatch tests).
    pub metadata_issuer_override: Option<String>,
    /// Scripted consent: deny (`error=access_denied`) instead of approving.
    pub deny: bool,
    /// Accept a loopback IP redirect URI on any port (RFC 8252 §7.3); else exact match only.
    pub loopback_any_port: bool,
    /// `expires_in` of access tokens, in seconds.
    pub access_lifetime_secs: u64,
    /// Lifetime of refresh tokens, in seconds; `None` = no expiry.
    pub refresh_lifetime_secs: Option<u64>,
    /// Issue refresh tokens at all.
    pub issue_refresh_tokens: bool,
    /// Rotate refresh tokens: each refresh returns a new one and the old one dies (a second use
    /// is detected as reuse). When false, a refresh returns no refresh token and the old one
    /// stays valid.
    pub rotate_refresh_tokens: bool,
    /// Latency added to every token request (to make refresh races observable).
    pub token_delay: Duration,
    /// Advertise `client_id_metadata_document_supported` (tests pre-register the
    /// document's URL as the client, standing for the AS having fetched it).
    pub cimd: bool,
    /// `token_endpoint_auth_methods_supported`, also the methods the token endpoint accepts
    /// (`none` = a public client). With `private_key_jwt` the metadata also says
    /// `token_endpoint_auth_signing_alg_values_supported: ["ES256"]`.
    pub token_auth_methods: Vec<String>,
    /// `grant_types_supported`. The token endpoint serves every grant it knows regardless, so
    /// that a client that ignores the list is seen doing so.
    pub grant_types: Vec<String>,
    /// The longest `exp - now` a client assertion may have (RFC 7523 §3: an AS may refuse
    /// assertions valid too far in the future).
    pub assertion_max_lifetime_secs: i64,
}

impl Default for AsConfig {
    fn default() -> Self {
        AsConfig {
            scopes_supported: strings(&["mcp:read", "mcp:write", "mcp:admin", "offline_access"]),
            default_scope: strings(&["mcp:read"]),
            reject_unknown_scopes: true,
            code_challenge_methods: Some(strings(&["S256"])),
            advertise_iss: Some(true),
            iss_param: IssParam::Correct,
            registration: true,
            serve_rfc8414: true,
            serve_oidc: true,
            metadata_issuer_override: None,
            deny: false,
            loopback_any_port: true,
            access_lifetime_secs: 3600,
            refresh_lifetime_secs: None,
            issue_refresh_tokens: true,
            rotate_refresh_tokens: true,
            token_delay: Duration::ZERO,
            cimd: false,
            token_auth_methods: strings(&["none", "client_secret_basic", "client_secret_post"]),
            grant_types: strings(&["authorization_code", "refresh_token", "client_credentials", JWT_BEARER]),
            assertion_max_lifetime_secs: 600,
        }
    }
}

/// The JWT bearer grant type (RFC 7523 §2.1), which redeems ID-JAGs.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// `client_assertion_type` of `private_key_jwt` (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The `typ` of an identity assertion JWT authorization grant.
pub const ID_JAG_TYP: &str = "oauth-id-jag+jwt";

pub fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// Observable logs (no secrets in here: they are printed freely)
// ---------------------------------------------------------------------------------------------

/// One `POST /register` (successful or not).
#[derive(Clone, Debug)]
pub struct Registration {
    /// The client id issued, if the registration succeeded.
    pub client_id: Option<String>,
    /// HTTP status answered.
    pub status: u16,
    /// The JSON metadata the client sent.
    pub request: Value,
    /// Whether a client secret was issued.
    pub confidential: bool,
}

/// One `GET /authorize`.
#[derive(Clone, Debug)]
pub struct AuthorizeRequest {
    /// Every query parameter received.
    pub params: BTreeMap<String, String>,
    /// `"code"` when a code was issued, else the error code (`access_denied`, `invalid_client`…).
    pub outcome: String,
    /// Whether the answer was a redirect to the client (false: a 400 page shown to the user).
    pub redirected: bool,
}

impl AuthorizeRequest {
    pub fn param(&self, k: &str) -> Option<&str> {
        self.params.get(k).map(String::as_str)
    }
    /// The `resource` indicator received (RFC 8707).
    pub fn resource(&self) -> Option<&str> {
        self.param("resource")
    }
}

/// One `POST /token`. Codes, verifiers and tokens are not recorded.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    /// `grant_type` as sent.
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    /// The `resource` parameter as sent (RFC 8707).
    pub resource: Option<String>,
    /// The `scope` parameter as sent.
    pub scope: Option<String>,
    /// The grant concerned, when the code or refresh token was recognised.
    pub grant_id: Option<u64>,
    /// For `refresh_token`: which refresh token of the grant's chain was presented (0 = the one
    /// from the code exchange, 1 = the first rotated one…).
    pub refresh_generation: Option<u32>,
    pub status: u16,
    /// `None` on success, else the OAuth error code (or `server_error` for a forced 500).
    pub error: Option<String>,
    /// Whether this failure was forced by [`AuthState::fail_next_token_requests`].
    pub forced: bool,
    /// How the client authenticated: `client_secret_basic`, `client_secret_post`,
    /// `private_key_jwt` or `none`.
    pub auth_method: Option<String>,
    /// With `private_key_jwt`: what the assertion's checks found.
    pub assertion: Option<AssertionCheck>,
    /// With the JWT bearer grant: what the ID-JAG's checks found.
    pub id_jag: Option<IdJagCheck>,
}

impl TokenRequest {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// The checks of one `private_key_jwt` client assertion (RFC 7523 §3), each result
/// recorded, with the claims that are not secret. The assertion itself is not kept.
#[derive(Clone, Debug, Default)]
pub struct AssertionCheck {
    /// The header's `alg` and `typ`.
    pub alg: Option<String>,
    pub typ: Option<String>,
    /// Signed (ES256) by the key registered for the client `sub` names.
    pub signature: bool,
    /// `iss` = the client id.
    pub iss: bool,
    /// `sub` = the client id (and = `client_id` in the body, if sent).
    pub sub: bool,
    /// `aud` = exactly this server's issuer, as one string.
    pub aud: bool,
    /// `exp` in the future and at most `assertion_max_lifetime_secs` away.
    pub exp: bool,
    /// `jti` present and never seen before.
    pub jti_fresh: bool,
    /// The claims as sent.
    pub iss_value: Option<String>,
    pub sub_value: Option<String>,
    pub aud_value: Value,
    pub jti: Option<String>,
    /// `exp - now` when checked, in seconds.
    pub exp_in: Option<i64>,
}

impl AssertionCheck {
    /// Every check passed.
    pub fn ok(&self) -> bool {
        self.signature && self.iss && self.sub && self.aud && self.exp && self.jti_fresh
    }
}

/// The checks of one ID-JAG at the JWT bearer grant ([EMA §7.4], draft IDJAG processing
/// rules), each recorded. The ID-JAG itself is not kept.
#[derive(Clone, Debug, Default)]
pub struct IdJagCheck {
    /// Header `typ` = `oauth-id-jag+jwt`.
    pub typ: bool,
    /// Signed by a key of the IdP `iss` names, which this server trusts.
    pub signature: bool,
    /// `iss` is a trusted IdP.
    pub iss: bool,
    /// `aud` = this server's issuer.
    pub aud: bool,
    /// The `client_id` claim = the authenticated client.
    pub client_id: bool,
    /// `resource` = a resource this server protects.
    pub resource: bool,
    /// `exp` in the future.
    pub exp: bool,
    /// `jti` present and never seen before.
    pub jti_fresh: bool,
    pub iss_value: Option<String>,
    pub sub: Option<String>,
    pub aud_value: Value,
    pub client_id_value: Option<String>,
    pub resource_value: Option<String>,
    pub jti: Option<String>,
}

impl IdJagCheck {
    /// Every check passed.
    pub fn ok(&self) -> bool {
        self.typ
            && self.signature
            && self.iss
            && self.aud
            && self.client_id
            && self.resource
            && self.exp
            && self.jti_fresh
    }
}

/// Everything the AS has seen.
#[derive(Clone, Debug, Default)]
pub struct AsLog {
    pub registrations: Vec<Registration>,
    pub authorizations: Vec<AuthorizeRequest>,
    pub tokens: Vec<TokenRequest>,
    /// How many times an already-used refresh token was presented (each revoked its grant).
    pub reuse_detections: usize,
    /// How many times an already-used authorization code was presented.
    pub code_reuses: usize,
}

impl AsLog {
    /// Successful refreshes.
    pub fn refreshes(&self) -> usize {
        self.tokens
            .iter()
            .filter(|t| t.ok() && t.grant_type.as_deref() == Some("refresh_token"))
            .count()
    }
    /// Successful code exchanges.
    pub fn code_exchanges(&self) -> usize {
        self.granted("authorization_code")
    }
    /// Successful token requests of `grant_type`.
    pub fn granted(&self, grant_type: &str) -> usize {
        self.tokens
            .iter()
            .filter(|t| t.ok() && t.grant_type.as_deref() == Some(grant_type))
            .count()
    }
    /// Token requests of `grant_type`, successful or not.
    pub fn requests(&self, grant_type: &str) -> usize {
        self.tokens
            .iter()
            .filter(|t| t.grant_type.as_deref() == Some(grant_type))
            .count()
    }
}

/// A grant (one successful code exchange or [`AuthState::issue_tokens`]), as seen by tests.
#[derive(Clone, Debug)]
pub struct GrantInfo {
    pub id: u64,
    pub client_id: String,
    pub scope: Vec<String>,
    pub resource: Option<String>,
    pub revoked: bool,
    /// How many successful refreshes.
    pub refreshes: u32,
}

/// What introspection says about a valid access token.
#[derive(Clone, Debug)]
pub struct TokenInfo {
    pub grant_id: u64,
    pub client_id: String,
    pub scope: Vec<String>,
    /// The audience (RFC 8707 resource) the token was issued for, if any.
    pub resource: Option<String>,
    pub expires_at: Instant,
}

/// Why introspection refused an access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenProblem {
    Unknown,
    Expired,
    Revoked,
}

/// Tokens minted directly by [`AuthState::issue_tokens`]. `Debug` hides the values.
#[derive(Clone)]
pub struct IssuedTokens {
    pub grant_id: u64,
    pub access_token: String,
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for IssuedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedTokens")
            .field("grant_id", &self.grant_id)
            .field("access_token", &"<redacted>")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

struct Client {
    secret: Option<String>,
    redirect_uris: Vec<String>,
    /// The public key of a `private_key_jwt` client.
    key: Option<jsonwebtoken::DecodingKey>,
}

/// An IdP whose ID-JAGs the JWT bearer grant accepts: its issuer, and its keys as of now
/// (read at each check, so a key the IdP rotates in is seen).
struct TrustedIdp {
    issuer: String,
    keys: Box<dyn Fn() -> Vec<jsonwebtoken::DecodingKey> + Send + Sync>,
}

struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    method: String,
    scope: Vec<String>,
    resource: Option<String>,
    expires: Instant,
}

struct Grant {
    client_id: String,
    scope: Vec<String>,
    resource: Option<String>,
    revoked: bool,
    refreshes: u32,
}

struct Access {
    grant: u64,
    scope: Vec<String>,
    resource: Option<String>,
    expires: Instant,
}

struct Refresh {
    grant: u64,
    generation: u32,
    used: bool,
    expires: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    cfg: AsConfig,
    clients: HashMap<String, Client>,
    codes: HashMap<String, Code>,
    /// Codes already exchanged (or refused), with the grant they produced if any.
    spent_codes: HashMap<String, Option<u64>>,
    grants: Vec<Grant>,
    access: HashMap<String, Access>,
    refresh: HashMap<String, Refresh>,
    failures: VecDeque<TokenFailure>,
    next_client: u64,
    log: AsLog,
    /// Every token value issued, for tests that grep logs for leaks.
    issued: Vec<String>,
    /// `jti`s of the client assertions and ID-JAGs accepted so far (replay detection).
    seen_jtis: HashSet<String>,
    trusted_idps: Vec<TrustedIdp>,
    /// The resources this server issues tokens for (the protected upstreams using it).
    resources: Vec<String>,
    /// Every client assertion and ID-JAG received, for tests that grep logs for leaks.
    received: Vec<String>,
}

/// The shared in-memory state of an authorization server (no `Debug`: it holds tokens).
pub struct AuthState {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub issuer: String,
    inner: Mutex<Inner>,
    version: watch::Sender<u64>,
}

impl AuthState {
    fn new(issuer: String, cfg: AsConfig) -> AuthState {
        AuthState {
            issuer,
            inner: Mutex::new(Inner {
                cfg,
                ..Inner::default()
            }),
            version: watch::Sender::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.locked()
    }

    fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    // --- endpoints ---

    pub fn metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-authorization-server", self.issuer)
    }
    pub fn oidc_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }
    pub fn authorization_endpoint(&self) -> String {
        format!("{}/authorize", self.issuer)
    }
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer)
    }
    pub fn registration_endpoint(&self) -> String {
        format!("{}/register", self.issuer)
    }

    // --- knobs ---

    /// Change any part of the configuration.
    pub fn configure(&self, f: impl FnOnce(&mut AsConfig)) {
        f(&mut self.lock().cfg);
        self.changed();
    }
    /// A copy of the current configuration.
    pub fn config(&self) -> AsConfig {
        self.lock().cfg.clone()
    }
    /// `expires_in` of access tokens issued from now on.
    pub fn set_access_lifetime(&self, secs: u64) {
        self.configure(|c| c.access_lifetime_secs = secs);
    }
    /// Lifetime of refresh tokens issued from now on (`None`: no expiry).
    pub fn set_refresh_lifetime(&self, secs: Option<u64>) {
        self.configure(|c| c.refresh_lifetime_secs = secs);
    }
    /// Scripted consent: deny (true) or approve (false).
    pub fn set_deny(&self, deny: bool) {
        self.configure(|c| c.deny = deny);
    }
    /// The advertised `authorization_response_iss_parameter_supported` and the `iss` sent.
    pub fn set_iss(&self, advertise: Option<bool>, param: IssParam) {
        self.configure(|c| {
            c.advertise_iss = advertise;
            c.iss_param = param;
        });
    }
    /// `code_challenge_methods_supported` (`None` omits it), e.g. `Some(&["plain"])`.
    pub fn set_code_challenge_methods(&self, methods: Option<&[&str]>) {
        self.configure(|c| c.code_challenge_methods = methods.map(strings));
    }
    /// Enable or disable dynamic client registration.
    pub fn set_registration(&self, on: bool) {
        self.configure(|c| c.registration = on);
    }
    /// The next `n` token requests fail with `failure` (queued after any pending ones).
    pub fn fail_next_token_requests(&self, n: usize, failure: TokenFailure) {
        let mut g = self.lock();
        g.failures.extend(std::iter::repeat_n(failure, n));
    }
    /// Forced failures still queued.
    pub fn pending_failures(&self) -> usize {
        self.lock().failures.len()
    }

    // --- clients ---

    /// Register a client out of band (the "pre-registered client" case). With a secret the
    /// client is confidential (`client_secret_basic` or `client_secret_post`).
    pub fn pre_register(&self, client_id: &str, secret: Option<&str>, redirect_uris: &[&str]) {
        self.lock().clients.insert(
            client_id.to_owned(),
            Client {
                secret: secret.map(str::to_owned),
                redirect_uris: strings(redirect_uris),
                key: None,
            },
        );
        self.changed();
    }
    /// Register a `private_key_jwt` client out of band with its public key (RFC 7523 §2.2).
    pub fn pre_register_jwt(&self, client_id: &str, key: jsonwebtoken::DecodingKey) {
        self.lock().clients.insert(
            client_id.to_owned(),
            Client {
                secret: None,
                redirect_uris: Vec::new(),
                key: Some(key),
            },
        );
        self.changed();
    }
    /// Trust the IdP `issuer` for ID-JAGs, verified with the keys `keys` returns at each
    /// check (handed in-process: the IdP's JWKS as it stands).
    pub fn trust_idp(&self, issuer: &str, keys: impl Fn() -> Vec<jsonwebtoken::DecodingKey> + Send + Sync + 'static) {
        self.lock().trusted_idps.push(TrustedIdp {
            issuer: issuer.to_owned(),
            keys: Box::new(keys),
        });
        self.changed();
    }
    /// A resource (an MCP URL) this server issues tokens for; [`start_protected`] adds its own.
    pub fn add_resource(&self, resource: &str) {
        self.lock().resources.push(resource.to_owned());
    }
    /// The client-assertion checks of every `private_key_jwt` token request, in order.
    pub fn assertion_checks(&self) -> Vec<AssertionCheck> {
        self.lock()
            .log
            .tokens
            .iter()
            .filter_map(|t| t.assertion.clone())
            .collect()
    }
    /// The ID-JAG checks of every JWT bearer token request, in order.
    pub fn id_jag_checks(&self) -> Vec<IdJagCheck> {
        self.lock().log.tokens.iter().filter_map(|t| t.id_jag.clone()).collect()
    }
    /// Forget a client: its tokens stop working and the token endpoint answers `invalid_client`.
    pub fn remove_client(&self, client_id: &str) {
        let mut g = self.lock();
        g.clients.remove(client_id);
        for gr in g.grants.iter_mut().filter(|gr| gr.client_id == client_id) {
            gr.revoked = true;
        }
        drop(g);
        self.changed();
    }
    /// Ids of the known clients (pre-registered and dynamically registered).
    pub fn client_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.lock().clients.keys().cloned().collect();
        v.sort();
        v
    }
    /// The redirect URIs registered for a client.
    pub fn redirect_uris(&self, client_id: &str) -> Option<Vec<String>> {
        self.lock().clients.get(client_id).map(|c| c.redirect_uris.clone())
    }

    // --- grants and tokens ---

    /// Revoke a grant: all its access and refresh tokens die.
    pub fn revoke_grant(&self, grant_id: u64) {
        if let Some(g) = self.lock().grants.get_mut(grant_id as usize) {
            g.revoked = true;
        }
        self.changed();
    }
    /// Revoke every grant.
    pub fn revoke_all(&self) {
        for g in self.lock().grants.iter_mut() {
            g.revoked = true;
        }
        self.changed();
    }
    /// Make every access token issued so far expired (refresh tokens stay valid).
    pub fn expire_access_tokens(&self) {
        let now = Instant::now();
        for a in self.lock().access.values_mut() {
            a.expires = now;
        }
        self.changed();
    }
    /// Mint a grant directly, without the browser flow.
    pub fn issue_tokens(&self, client_id: &str, scope: &[&str], resource: Option<&str>) -> IssuedTokens {
        let mut g = self.lock();
        let grant = g.new_grant(client_id, strings(scope), resource.map(str::to_owned));
        let (access_token, refresh_token) = g.mint(grant, strings(scope), resource.map(str::to_owned), Some(0));
        drop(g);
        self.changed();
        IssuedTokens {
            grant_id: grant,
            access_token,
            refresh_token,
        }
    }
    /// Check an access token as a resource server would.
    pub fn introspect(&self, token: &str) -> Result<TokenInfo, TokenProblem> {
        let g = self.lock();
        let a = g.access.get(token).ok_or(TokenProblem::Unknown)?;
        let grant = &g.grants[a.grant as usize];
        if grant.revoked {
            return Err(TokenProblem::Revoked);
        }
        if Instant::now() >= a.expires {
            return Err(TokenProblem::Expired);
        }
        Ok(TokenInfo {
            grant_id: a.grant,
            client_id: grant.client_id.clone(),
            scope: a.scope.clone(),
            resource: a.resource.clone(),
            expires_at: a.expires,
        })
    }
    /// All grants so far (index = id).
    pub fn grants(&self) -> Vec<GrantInfo> {
        self.lock()
            .grants
            .iter()
            .enumerate()
            .map(|(i, g)| GrantInfo {
                id: i as u64,
                client_id: g.client_id.clone(),
                scope: g.scope.clone(),
                resource: g.resource.clone(),
                revoked: g.revoked,
                refreshes: g.refreshes,
            })
            .collect()
    }
    /// Every access and refresh token value issued so far (to grep logs for leaks).
    pub fn issued_secrets(&self) -> Vec<String> {
        self.lock().issued.clone()
    }
    /// Every client assertion and ID-JAG received so far (to grep logs for leaks).
    pub fn received_assertions(&self) -> Vec<String> {
        self.lock().received.clone()
    }

    // --- observation ---

    /// A snapshot of everything seen.
    pub fn log(&self) -> AsLog {
        self.lock().log.clone()
    }
    pub fn registrations(&self) -> Vec<Registration> {
        self.lock().log.registrations.clone()
    }
    pub fn authorize_requests(&self) -> Vec<AuthorizeRequest> {
        self.lock().log.authorizations.clone()
    }
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.lock().log.tokens.clone()
    }
    pub fn reuse_detections(&self) -> usize {
        self.lock().log.reuse_detections
    }

    /// Wait (at most `timeout`) until `f` returns `Some` for the log; panics with `what` on
    /// timeout. Wakes on every change, so no polling interval.
    pub async fn wait_until<T>(&self, what: &str, timeout: Duration, f: impl Fn(&AsLog) -> Option<T>) -> T {
        super::eventually_woken(what, timeout, self.version.subscribe(), async || {
            // A copy, so that `f` may call back into the state without deadlocking.
            let log = self.log();
            f(&log).ok_or_else(|| {
                let grants: Vec<_> = log.tokens.iter().map(|t| (t.grant_type.clone(), t.ok())).collect();
                format!("token requests (grant type, ok): {grants:?}")
            })
        })
        .await
    }
}

impl Inner {
    fn new_grant(&mut self, client_id: &str, scope: Vec<String>, resource: Option<String>) -> u64 {
        self.grants.push(Grant {
            client_id: client_id.to_owned(),
            scope,
            resource,
            revoked: false,
            refreshes: 0,
        });
        (self.grants.len() - 1) as u64
    }

    /// A new access token for `grant`, and a refresh token of generation `refresh` when asked
    /// for and configured.
    fn mint(
        &mut self,
        grant: u64,
        scope: Vec<String>,
        resource: Option<String>,
        refresh: Option<u32>,
    ) -> (String, Option<String>) {
        let now = Instant::now();
        let access = random_token("at");
        self.access.insert(
            access.clone(),
            Access {
                grant,
                scope,
                resource,
                expires: now + Duration::from_secs(self.cfg.access_lifetime_secs),
            },
        );
        self.issued.push(access.clone());
        let refresh = refresh.filter(|_| self.cfg.issue_refresh_tokens).map(|generation| {
            let r = random_token("rt");
            self.refresh.insert(
                r.clone(),
                Refresh {
                    grant,
                    generation,
                    used: false,
                    expires: self.cfg.refresh_lifetime_secs.map(|s| now + Duration::from_secs(s)),
                },
            );
            self.issued.push(r.clone());
            r
        });
        (access, refresh)
    }

    fn accepted_methods(&self) -> Vec<String> {
        self.cfg
            .code_challenge_methods
            .clone()
            .unwrap_or_else(|| strings(&["S256"]))
    }

    fn redirect_allowed(&self, client: &Client, uri: &str) -> bool {
        client
            .redirect_uris
            .iter()
            .any(|r| r == uri || (self.cfg.loopback_any_port && loopback_match(r, uri)))
    }
}

/// RFC 8252 §7.3: a loopback IP literal redirect URI matches whatever the port.
fn loopback_match(registered: &str, requested: &str) -> bool {
    let (Ok(a), Ok(b)) = (url::Url::parse(registered), url::Url::parse(requested)) else {
        return false;
    };
    let loopback = |u: &url::Url| {
        u.scheme() == "http"
            && (matches!(u.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
                || matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback()))
    };
    loopback(&a)
        && loopback(&b)
        && a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.path() == b.path()
        && a.query() == b.query()
        && a.fragment().is_none()
        && b.fragment().is_none()
}

pub(super) fn random_token(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    let mut s = String::with_capacity(prefix.len() + 65);
    s.push_str(prefix);
    s.push('_');
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// base64url without padding (RFC 4648 §5), as PKCE S256 uses.
pub fn base64url(data: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, data)
}

/// Standard base64 decoding (for `Authorization: Basic`), padding optional.
pub(super) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    lenient.decode(s.trim()).ok()
}

/// The PKCE S256 challenge of a verifier.
pub fn s256(verifier: &str) -> String {
    base64url(&Sha256::digest(verifier.as_bytes()))
}

pub(super) fn form(data: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(data).into_owned().collect()
}

pub(super) fn json_response(status: StatusCode, v: &Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

pub(super) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(status, &json!({ "error": error, "error_description": description }))
}

pub(super) fn redirect(location: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    r.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(location).expect("valid location"),
    );
    r
}

// ---------------------------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------------------------

type St = State<Arc<AuthState>>;

fn metadata(st: &AuthState) -> Value {
    let cfg = st.lock().cfg.clone();
    let mut m = json!({
        "issuer": cfg.metadata_issuer_override.clone().unwrap_or_else(|| st.issuer.clone()),
        "authorization_endpoint": st.authorization_endpoint(),
        "token_endpoint": st.token_endpoint(),
        "grant_types_supported": cfg.grant_types,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "scopes_supported": cfg.scopes_supported,
        "token_endpoint_auth_methods_supported": cfg.token_auth_methods,
    });
    if cfg.token_auth_methods.iter().any(|m| m == "private_key_jwt") {
        m["token_endpoint_auth_signing_alg_values_supported"] = json!(["ES256"]);
    }
    if cfg.registration {
        m["registration_endpoint"] = json!(st.registration_endpoint());
    }
    if let Some(methods) = &cfg.code_challenge_methods {
        m["code_challenge_methods_supported"] = json!(methods);
    }
    if let Some(iss) = cfg.advertise_iss {
        m["authorization_response_iss_parameter_supported"] = json!(iss);
    }
    if cfg.cimd {
        m["client_id_metadata_document_supported"] = json!(true);
    }
    m
}

async fn rfc8414(State(st): St) -> Response {
    if !st.lock().cfg.serve_rfc8414 {
        return StatusCode::NOT_FOUND.into_response();
    }
    json_response(StatusCode::OK, &metadata(&st))
}

async fn oidc(State(st): St) -> Response {
    if !st.lock().cfg.serve_oidc {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut m = metadata(&st);
    m["subject_types_supported"] = json!(["public"]);
    m["id_token_signing_alg_values_supported"] = json!(["RS256"]);
    json_response(StatusCode::OK, &m)
}

fn redirect_uri_ok(uri: &str) -> bool {
    match url::Url::parse(uri) {
        Ok(u) if u.fragment().is_none() => match u.scheme() {
            "https" => true,
            "http" => {
                matches!(u.host(), Some(url::Host::Domain("localhost")))
                    || matches!(u.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
                    || matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
            }
            _ => false,
        },
        _ => false,
    }
}

async fn register(State(st): St, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut g = st.lock();
    let record = |g: &mut Inner, client_id: Option<String>, status: StatusCode, confidential: bool| {
        g.log.registrations.push(Registration {
            client_id,
            status: status.as_u16(),
            request: request.clone(),
            confidential,
        });
    };
    if !g.cfg.registration {
        record(&mut g, None, StatusCode::NOT_FOUND, false);
        drop(g);
        st.changed();
        return StatusCode::NOT_FOUND.into_response();
    }
    let fail = |g: &mut Inner, error: &str, description: &str| {
        g.log.registrations.push(Registration {
            client_id: None,
            status: 400,
            request: request.clone(),
            confidential: false,
        });
        oauth_error(StatusCode::BAD_REQUEST, error, description)
    };
    if !request.is_object() {
        let r = fail(&mut g, "invalid_client_metadata", "body is not a JSON object");
        drop(g);
        st.changed();
        return r;
    }
    let uris: Vec<String> = request["redirect_uris"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    if uris.is_empty() || !uris.iter().all(|u| redirect_uri_ok(u)) {
        let r = fail(
            &mut g,
            "invalid_redirect_uri",
            "redirect URIs must be loopback or https",
        );
        drop(g);
        st.changed();
        return r;
    }
    let method = request["token_endpoint_auth_method"]
        .as_str()
        .unwrap_or("client_secret_basic")
        .to_owned();
    if !["none", "client_secret_basic", "client_secret_post"].contains(&method.as_str()) {
        let r = fail(
            &mut g,
            "invalid_client_metadata",
            "unsupported token_endpoint_auth_method",
        );
        drop(g);
        st.changed();
        return r;
    }
    g.next_client += 1;
    let client_id = format!("dcr-client-{}", g.next_client);
    let secret = (method != "none").then(|| random_token("cs"));
    g.clients.insert(
        client_id.clone(),
        Client {
            secret: secret.clone(),
            redirect_uris: uris.clone(),
            key: None,
        },
    );
    record(&mut g, Some(client_id.clone()), StatusCode::CREATED, secret.is_some());
    if let Some(s) = &secret {
        g.issued.push(s.clone());
    }
    drop(g);
    st.changed();
    let mut resp = json!({
        "client_id": client_id,
        "client_id_issued_at": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        "redirect_uris": uris,
        "token_endpoint_auth_method": method,
        "grant_types": request.get("grant_types").cloned().unwrap_or(json!(["authorization_code"])),
        "response_types": request.get("response_types").cloned().unwrap_or(json!(["code"])),
        "application_type": request.get("application_type").cloned().unwrap_or(json!("web")),
    });
    for k in ["client_name", "scope", "client_uri", "software_id", "software_version"] {
        if let Some(v) = request.get(k) {
            resp[k] = v.clone();
        }
    }
    if let Some(s) = secret {
        resp["client_secret"] = json!(s);
        resp["client_secret_expires_at"] = json!(0);
    }
    json_response(StatusCode::CREATED, &resp)
}

async fn authorize(State(st): St, uri: Uri) -> Response {
    let params: BTreeMap<String, String> = form(uri.query().unwrap_or("").as_bytes()).into_iter().collect();
    let mut g = st.lock();
    let (resp, outcome, redirected) = authorize_inner(&st.issuer, &mut g, &params);
    g.log.authorizations.push(AuthorizeRequest {
        params,
        outcome,
        redirected,
    });
    drop(g);
    st.changed();
    resp
}

fn authorize_inner(issuer: &str, g: &mut Inner, p: &BTreeMap<String, String>) -> (Response, String, bool) {
    let page = |error: &str| {
        (
            (StatusCode::BAD_REQUEST, format!("authorization error: {error}")).into_response(),
            error.to_owned(),
            false,
        )
    };
    // Errors about the client or the redirect URI are shown to the user, never redirected.
    let Some(client) = p.get("client_id").and_then(|id| g.clients.get(id)) else {
        return page("invalid_client");
    };
    let redirect_uri = match p.get("redirect_uri") {
        Some(r) if g.redirect_allowed(client, r) => r.clone(),
        Some(_) => return page("invalid_redirect_uri"),
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return page("missing_redirect_uri"),
    };
    let iss = match &g.cfg.iss_param {
        IssParam::Omit => None,
        IssParam::Correct => Some(issuer.to_owned()),
        IssParam::Wrong(w) => Some(w.clone()),
    };
    let back = |pairs: &[(&str, &str)]| {
        let mut u = url::Url::parse(&redirect_uri).expect("registered redirect URI parses");
        {
            let mut q = u.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
            if let Some(s) = p.get("state") {
                q.append_pair("state", s);
            }
            if let Some(i) = &iss {
                q.append_pair("iss", i);
            }
        }
        redirect(u.as_str())
    };
    let error = |code: &str, description: &str| {
        (
            back(&[("error", code), ("error_description", description)]),
            code.to_owned(),
            true,
        )
    };
    if p.get("response_type").map(String::as_str) != Some("code") {
        return error("unsupported_response_type", "only response_type=code");
    }
    let Some(challenge) = p.get("code_challenge") else {
        return error("invalid_request", "PKCE code_challenge is required");
    };
    let method = p.get("code_challenge_method").map(String::as_str).unwrap_or("plain");
    if !g.accepted_methods().iter().any(|m| m == method) {
        return error("invalid_request", "unsupported code_challenge_method");
    }
    if method == "S256" && !(43..=128).contains(&challenge.len()) {
        return error("invalid_request", "malformed code_challenge");
    }
    let scope: Vec<String> = match p.get("scope") {
        Some(s) => s.split_whitespace().map(str::to_owned).collect(),
        None => g.cfg.default_scope.clone(),
    };
    if g.cfg.reject_unknown_scopes && scope.iter().any(|s| !g.cfg.scopes_supported.contains(s)) {
        return error("invalid_scope", "unknown scope requested");
    }
    if g.cfg.deny {
        return error("access_denied", "the user denied the request");
    }
    let code = random_token("code");
    g.codes.insert(
        code.clone(),
        Code {
            client_id: p["client_id"].clone(),
            redirect_uri: redirect_uri.clone(),
            challenge: challenge.clone(),
            method: method.to_owned(),
            scope,
            resource: p.get("resource").cloned(),
            expires: Instant::now() + Duration::from_secs(120),
        },
    );
    (back(&[("code", &code)]), "code".to_owned(), true)
}

/// What a token request presented to authenticate its client (RFC 6749 §2.3).
enum Presented {
    /// `Authorization: Basic`, id and secret URL-decoded (RFC 6749 §2.3.1).
    Basic { id: String, secret: String },
    /// `client_id` and `client_secret` in the body.
    Post { id: String, secret: String },
    /// `client_assertion` (RFC 7523 §2.2), with its type and the body's `client_id` if any.
    Assertion {
        kind: Option<String>,
        jwt: String,
        body_id: Option<String>,
    },
    /// No credentials: a public client (its `client_id` in the body).
    None { id: Option<String> },
    /// More than one method in one request, which RFC 6749 §2.3 forbids.
    Several,
    /// An `Authorization: Basic` header that does not decode to `id:secret`.
    Malformed,
}

impl Presented {
    fn read(headers: &HeaderMap, f: &HashMap<String, String>) -> Presented {
        let basic = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "));
        let methods =
            basic.is_some() as u8 + f.contains_key("client_secret") as u8 + f.contains_key("client_assertion") as u8;
        if methods > 1 {
            return Presented::Several;
        }
        if let Some(basic) = basic {
            let Some((id, secret)) = base64_decode(basic)
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|d| d.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())))
            else {
                return Presented::Malformed;
            };
            let dec = |s: &str| form(format!("x={s}").as_bytes()).remove("x").unwrap_or_default();
            return Presented::Basic {
                id: dec(&id),
                secret: dec(&secret),
            };
        }
        if let Some(jwt) = f.get("client_assertion") {
            return Presented::Assertion {
                kind: f.get("client_assertion_type").cloned(),
                jwt: jwt.clone(),
                body_id: f.get("client_id").cloned(),
            };
        }
        match (f.get("client_id"), f.get("client_secret")) {
            (Some(id), Some(secret)) => Presented::Post {
                id: id.clone(),
                secret: secret.clone(),
            },
            (id, _) => Presented::None { id: id.cloned() },
        }
    }

    /// The RFC 8414 name of the method.
    fn method(&self) -> &'static str {
        match self {
            Presented::Basic { .. } => "client_secret_basic",
            Presented::Post { .. } => "client_secret_post",
            Presented::Assertion { .. } => "private_key_jwt",
            Presented::None { .. } => "none",
            Presented::Several => "several",
            Presented::Malformed => "malformed",
        }
    }

    /// The client it claims to be (before any check).
    fn claimed_id(&self) -> Option<String> {
        match self {
            Presented::Basic { id, .. } | Presented::Post { id, .. } => Some(id.clone()),
            Presented::Assertion { jwt, body_id, .. } => body_id
                .clone()
                .or_else(|| super::jwt::parse(jwt, &[])?.str("sub").map(str::to_owned)),
            Presented::None { id } => id.clone(),
            Presented::Several | Presented::Malformed => None,
        }
    }
}

async fn token(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    let delay = st.lock().cfg.token_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let f = form(&body);
    let presented = Presented::read(&headers, &f);
    let mut rec = TokenRequest {
        grant_type: f.get("grant_type").cloned(),
        client_id: presented.claimed_id(),
        resource: f.get("resource").cloned(),
        scope: f.get("scope").cloned(),
        grant_id: None,
        refresh_generation: None,
        status: 200,
        error: None,
        forced: false,
        auth_method: Some(presented.method().to_owned()),
        assertion: None,
        id_jag: None,
    };
    let mut g = st.lock();
    let resp = match g.failures.pop_front() {
        Some(failure) => {
            rec.forced = true;
            match failure {
                TokenFailure::InvalidGrant => token_error(StatusCode::BAD_REQUEST, "invalid_grant", "forced failure"),
                TokenFailure::InvalidClient => {
                    token_error(StatusCode::UNAUTHORIZED, "invalid_client", "forced failure")
                }
                TokenFailure::TemporarilyUnavailable => token_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "forced failure",
                ),
                TokenFailure::ServerError => {
                    rec.error = Some("server_error".into());
                    (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
                }
            }
        }
        None => token_inner(&mut g, &st.issuer, &f, presented, &mut rec),
    };
    rec.status = resp.status().as_u16();
    if rec.status != 200 && rec.error.is_none() {
        rec.error = Some(failure_code(&resp).unwrap_or_else(|| "unknown".into()));
    }
    g.log.tokens.push(rec);
    drop(g);
    st.changed();
    resp
}

/// Authenticate the client of a token request; its id, or the error response.
fn authenticate(
    g: &mut Inner,
    issuer: &str,
    presented: Presented,
    rec: &mut TokenRequest,
) -> Result<String, Box<Response>> {
    let invalid = |d: &str| Err(Box::new(token_error(StatusCode::UNAUTHORIZED, "invalid_client", d)));
    match presented {
        Presented::Several => {
            return Err(Box::new(token_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "more than one client authentication method",
            )));
        }
        Presented::Malformed => return invalid("malformed Basic credentials"),
        _ => {}
    }
    let method = presented.method();
    if !g.cfg.token_auth_methods.iter().any(|m| m == method) {
        return invalid(&format!("{method} is not a token endpoint authentication method here"));
    }
    match presented {
        Presented::Basic { id, secret } | Presented::Post { id, secret } => {
            let Some(client) = g.clients.get(&id) else {
                return invalid("unknown client");
            };
            if client.key.is_some() {
                return invalid("this client authenticates with private_key_jwt");
            }
            match &client.secret {
                // A public client's secret means nothing (the old behaviour, kept).
                None => Ok(id),
                Some(s) if *s == secret => Ok(id),
                Some(_) => invalid("client authentication failed"),
            }
        }
        Presented::None { id } => {
            let Some(id) = id else {
                return invalid("no client_id");
            };
            let Some(client) = g.clients.get(&id) else {
                return invalid("unknown client");
            };
            if client.secret.is_some() || client.key.is_some() {
                return invalid("client authentication failed");
            }
            Ok(id)
        }
        Presented::Assertion { kind, jwt, body_id } => check_assertion(g, issuer, kind, &jwt, body_id, rec),
        Presented::Several | Presented::Malformed => unreachable!("answered above"),
    }
}

/// `private_key_jwt`: every RFC 7523 §3 check on the assertion, each recorded.
fn check_assertion(
    g: &mut Inner,
    issuer: &str,
    kind: Option<String>,
    jwt: &str,
    body_id: Option<String>,
    rec: &mut TokenRequest,
) -> Result<String, Box<Response>> {
    let invalid = |d: &str| Err(Box::new(token_error(StatusCode::UNAUTHORIZED, "invalid_client", d)));
    if kind.as_deref() != Some(CLIENT_ASSERTION_TYPE) {
        return invalid("client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    }
    g.received.push(jwt.to_owned());
    let Some(unverified) = super::jwt::parse(jwt, &[]) else {
        return invalid("client_assertion is not a JWT");
    };
    // RFC 7523 §3: `sub` names the client; a `client_id` in the body must agree.
    let Some(id) = body_id.clone().or_else(|| unverified.str("sub").map(str::to_owned)) else {
        return invalid("the assertion names no client");
    };
    rec.client_id = Some(id.clone());
    let Some(key) = g.clients.get(&id).and_then(|c| c.key.clone()) else {
        return invalid("no key registered for this client");
    };
    let p = super::jwt::parse(jwt, &[key]).expect("parsed above");
    let exp_in = p.int("exp").map(|e| e - super::jwt::now());
    let jti = p.str("jti").map(str::to_owned);
    let check = AssertionCheck {
        alg: p.header.get("alg").and_then(Value::as_str).map(str::to_owned),
        typ: p.typ().map(str::to_owned),
        signature: p.signature_ok,
        iss: p.str("iss") == Some(&id),
        sub: p.str("sub") == Some(&id),
        aud: p.claims.get("aud") == Some(&json!(issuer)),
        exp: exp_in.is_some_and(|e| e > 0 && e <= g.cfg.assertion_max_lifetime_secs),
        jti_fresh: jti.as_ref().is_some_and(|j| !g.seen_jtis.contains(j)),
        iss_value: p.str("iss").map(str::to_owned),
        sub_value: p.str("sub").map(str::to_owned),
        aud_value: p.claims.get("aud").cloned().unwrap_or(Value::Null),
        jti: jti.clone(),
        exp_in,
    };
    // Only a signed assertion uses up its jti: a forgery cannot burn someone's.
    if check.signature
        && let Some(j) = jti
    {
        g.seen_jtis.insert(j);
    }
    let ok = check.ok();
    let failed = failed_checks(&[
        ("signature", check.signature),
        ("iss", check.iss),
        ("sub", check.sub),
        ("aud", check.aud),
        ("exp", check.exp),
        ("jti (replayed or missing)", check.jti_fresh),
    ]);
    rec.assertion = Some(check);
    if !ok {
        return invalid(&format!("client assertion refused: {failed}"));
    }
    Ok(id)
}

fn failed_checks(checks: &[(&str, bool)]) -> String {
    checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `error` a JSON error response carries (recorded in the log; we built it ourselves).
pub(super) fn failure_code(resp: &Response) -> Option<String> {
    resp.extensions().get::<ErrorCode>().map(|e| e.0.clone())
}

#[derive(Clone)]
pub(super) struct ErrorCode(pub(super) String);

pub(super) fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut r = oauth_error(status, error, description);
    r.extensions_mut().insert(ErrorCode(error.to_owned()));
    r
}

fn token_inner(
    g: &mut Inner,
    issuer: &str,
    f: &HashMap<String, String>,
    presented: Presented,
    rec: &mut TokenRequest,
) -> Response {
    let client_id = match authenticate(g, issuer, presented, rec) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match f.get("grant_type").map(String::as_str) {
        Some("authorization_code") => code_grant(g, f, &client_id, rec),
        Some("refresh_token") => refresh_grant(g, f, &client_id, rec),
        Some("client_credentials") => client_credentials_grant(g, f, &client_id, rec),
        Some(JWT_BEARER) => jwt_bearer_grant(g, issuer, f, &client_id, rec),
        _ => token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "unsupported grant_type",
        ),
    }
}

/// The scopes a grant asks for: `scope` if given (each known, when the server is strict),
/// else the default.
fn requested_scope(g: &Inner, f: &HashMap<String, String>) -> Result<Vec<String>, Box<Response>> {
    let scope: Vec<String> = match f.get("scope") {
        Some(s) => s.split_whitespace().map(str::to_owned).collect(),
        None => g.cfg.default_scope.clone(),
    };
    if g.cfg.reject_unknown_scopes && scope.iter().any(|s| !g.cfg.scopes_supported.contains(s)) {
        return Err(Box::new(token_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "unknown scope requested",
        )));
    }
    Ok(scope)
}

fn confidential(g: &Inner, client_id: &str) -> bool {
    g.clients
        .get(client_id)
        .is_some_and(|c| c.secret.is_some() || c.key.is_some())
}

/// RFC 6749 §4.4: a confidential client gets a token for itself; no refresh token (§4.4.3).
fn client_credentials_grant(
    g: &mut Inner,
    f: &HashMap<String, String>,
    client_id: &str,
    rec: &mut TokenRequest,
) -> Response {
    if !confidential(g, client_id) {
        return token_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "a public client cannot use client_credentials",
        );
    }
    let scope = match requested_scope(g, f) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let resource = f.get("resource").cloned();
    let grant = g.new_grant(client_id, scope.clone(), resource.clone());
    rec.grant_id = Some(grant);
    let (access, _) = g.mint(grant, scope.clone(), resource, None);
    token_success(g, access, None, &scope)
}

/// RFC 7523 §2.1 with an ID-JAG as the assertion: every check of the identity assertion
/// authorization grant draft recorded; the token is for the ID-JAG's `resource`.
fn jwt_bearer_grant(
    g: &mut Inner,
    issuer: &str,
    f: &HashMap<String, String>,
    client_id: &str,
    rec: &mut TokenRequest,
) -> Response {
    if !confidential(g, client_id) {
        return token_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "ID-JAGs are for confidential clients only",
        );
    }
    let Some(assertion) = f.get("assertion") else {
        return token_error(StatusCode::BAD_REQUEST, "invalid_request", "missing assertion");
    };
    g.received.push(assertion.clone());
    let Some(unverified) = super::jwt::parse(assertion, &[]) else {
        return token_error(StatusCode::BAD_REQUEST, "invalid_grant", "the assertion is not a JWT");
    };
    let idp = g
        .trusted_idps
        .iter()
        .find(|t| unverified.str("iss") == Some(t.issuer.as_str()));
    let keys = idp.map(|t| (t.keys)()).unwrap_or_default();
    let p = super::jwt::parse(assertion, &keys).expect("parsed above");
    let aud = p.claims.get("aud").cloned().unwrap_or(Value::Null);
    let jti = p.str("jti").map(str::to_owned);
    let resource = p.str("resource").map(str::to_owned);
    let check = IdJagCheck {
        typ: p.typ() == Some(ID_JAG_TYP),
        signature: p.signature_ok,
        iss: idp.is_some(),
        aud: aud == json!(issuer) || aud == json!([issuer]),
        client_id: p.str("client_id") == Some(client_id),
        resource: resource.as_ref().is_some_and(|r| g.resources.contains(r)),
        exp: p.int("exp").is_some_and(|e| e > super::jwt::now()),
        jti_fresh: jti.as_ref().is_some_and(|j| !g.seen_jtis.contains(j)),
        iss_value: p.str("iss").map(str::to_owned),
        sub: p.str("sub").map(str::to_owned),
        aud_value: aud,
        client_id_value: p.str("client_id").map(str::to_owned),
        resource_value: resource.clone(),
        jti: jti.clone(),
    };
    if check.signature
        && let Some(j) = jti
    {
        g.seen_jtis.insert(j);
    }
    let ok = check.ok();
    let failed = failed_checks(&[
        ("typ", check.typ),
        ("signature", check.signature),
        ("iss (not a trusted IdP)", check.iss),
        ("aud", check.aud),
        ("client_id", check.client_id),
        ("resource", check.resource),
        ("exp", check.exp),
        ("jti (replayed or missing)", check.jti_fresh),
    ]);
    rec.id_jag = Some(check);
    if !ok {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            &format!("ID-JAG refused: {failed}"),
        );
    }
    let scope = match requested_scope(g, f) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let grant = g.new_grant(client_id, scope.clone(), resource.clone());
    rec.grant_id = Some(grant);
    let (access, _) = g.mint(grant, scope.clone(), resource, None);
    token_success(g, access, None, &scope)
}

fn token_success(g: &Inner, access: String, refresh: Option<String>, scope: &[String]) -> Response {
    let mut v = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": g.cfg.access_lifetime_secs,
        "scope": scope.join(" "),
    });
    if let Some(r) = refresh {
        v["refresh_token"] = json!(r);
    }
    json_response(StatusCode::OK, &v)
}

fn code_grant(g: &mut Inner, f: &HashMap<String, String>, client_id: &str, rec: &mut TokenRequest) -> Response {
    let Some(code_value) = f.get("code") else {
        return token_error(StatusCode::BAD_REQUEST, "invalid_request", "missing code");
    };
    if let Some(spent) = g.spent_codes.get(code_value) {
        // OAuth 2.1 §4.1.3: a reused code SHOULD revoke the tokens issued from it.
        g.log.code_reuses += 1;
        if let Some(id) = *spent {
            rec.grant_id = Some(id);
            g.grants[id as usize].revoked = true;
        }
        return token_error(StatusCode::BAD_REQUEST, "invalid_grant", "code already used");
    }
    let Some(code) = g.codes.remove(code_value) else {
        return token_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown code");
    };
    // One shot: whatever happens next, this code is spent.
    g.spent_codes.insert(code_value.clone(), None);
    if Instant::now() >= code.expires {
        return token_error(StatusCode::BAD_REQUEST, "invalid_grant", "code expired");
    }
    if code.client_id != client_id {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "code issued to another client",
        );
    }
    if f.get("redirect_uri") != Some(&code.redirect_uri) {
        return token_error(StatusCode::BAD_REQUEST, "invalid_grant", "redirect_uri mismatch");
    }
    let Some(verifier) = f.get("code_verifier") else {
        return token_error(StatusCode::BAD_REQUEST, "invalid_request", "missing code_verifier");
    };
    let verifier_ok = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let matches = match code.method.as_str() {
        "S256" => s256(verifier) == code.challenge,
        _ => *verifier == code.challenge,
    };
    if !verifier_ok || !matches {
        return token_error(StatusCode::BAD_REQUEST, "invalid_grant", "PKCE verification failed");
    }
    let resource = match (f.get("resource"), &code.resource) {
        (Some(a), Some(b)) if a != b => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "invalid_target",
                "resource differs from authorization",
            );
        }
        (a, b) => a.or(b.as_ref()).cloned(),
    };
    let grant = g.new_grant(client_id, code.scope.clone(), resource.clone());
    g.spent_codes.insert(code_value.clone(), Some(grant));
    rec.grant_id = Some(grant);
    let (access, refresh) = g.mint(grant, code.scope.clone(), resource, Some(0));
    token_success(g, access, refresh, &code.scope)
}

fn refresh_grant(g: &mut Inner, f: &HashMap<String, String>, client_id: &str, rec: &mut TokenRequest) -> Response {
    let Some(value) = f.get("refresh_token") else {
        return token_error(StatusCode::BAD_REQUEST, "invalid_request", "missing refresh_token");
    };
    let Some(r) = g.refresh.get(value) else {
        return token_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown refresh token");
    };
    let (grant_id, generation, used, expires) = (r.grant, r.generation, r.used, r.expires);
    rec.grant_id = Some(grant_id);
    rec.refresh_generation = Some(generation);
    let grant = &g.grants[grant_id as usize];
    if grant.client_id != client_id {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "refresh token of another client",
        );
    }
    if grant.revoked {
        return token_error(StatusCode::BAD_REQUEST, "invalid_grant", "grant revoked");
    }
    if used {
        // Reuse detection: someone holds a rotated-away token; kill the whole grant.
        g.grants[grant_id as usize].revoked = true;
        g.log.reuse_detections += 1;
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "refresh token reused; grant revoked",
        );
    }
    if expires.is_some_and(|e| Instant::now() >= e) {
        return token_error(StatusCode::BAD_REQUEST, "invalid_grant", "refresh token expired");
    }
    let scope: Vec<String> = match f.get("scope") {
        Some(s) => s.split_whitespace().map(str::to_owned).collect(),
        None => grant.scope.clone(),
    };
    if scope.iter().any(|s| !grant.scope.contains(s)) {
        return token_error(StatusCode::BAD_REQUEST, "invalid_scope", "scope broader than the grant");
    }
    let resource = match (f.get("resource"), &grant.resource) {
        (Some(a), Some(b)) if a != b => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "invalid_target",
                "resource differs from the grant",
            );
        }
        (a, b) => a.or(b.as_ref()).cloned(),
    };
    g.grants[grant_id as usize].refreshes += 1;
    if g.cfg.rotate_refresh_tokens {
        g.refresh.get_mut(value).expect("present").used = true;
        let (access, refresh) = g.mint(grant_id, scope.clone(), resource, Some(generation + 1));
        token_success(g, access, refresh, &scope)
    } else {
        let (access, _) = g.mint(grant_id, scope.clone(), resource, None);
        token_success(g, access, None, &scope)
    }
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

/// A running authorization server (own runtime thread). Derefs to its [`AuthState`].
pub struct AuthServer {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`.
    pub issuer: String,
    pub state: Arc<AuthState>,
    kill: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::ops::Deref for AuthServer {
    type Target = AuthState;
    fn deref(&self) -> &AuthState {
        &self.state
    }
}

impl AuthServer {
    /// Start with the default configuration.
    pub fn start() -> AuthServer {
        Self::start_with(AsConfig::default())
    }

    /// Start with `cfg`.
    pub fn start_with(cfg: AsConfig) -> AuthServer {
        let (addr, kill, thread, state) = serve_as(0, |issuer| Arc::new(AuthState::new(issuer, cfg)));
        AuthServer {
            addr,
            issuer: state.issuer.clone(),
            state,
            kill: Some(kill),
            thread: Some(thread),
        }
    }

    /// Stop serving (connections refused); the state is kept.
    pub fn stop(&mut self) {
        if let Some(k) = self.kill.take() {
            let _ = k.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Serve again on the same port with the same state.
    pub fn restart(&mut self) {
        self.stop();
        let state = self.state.clone();
        let (_, kill, thread, _) = serve_as(self.addr.port(), move |_| state);
        self.kill = Some(kill);
        self.thread = Some(thread);
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(super) type Spawned<T> = (SocketAddr, std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>, T);

fn serve_as(port: u16, make: impl FnOnce(String) -> Arc<AuthState> + Send + 'static) -> Spawned<Arc<AuthState>> {
    spawn_server(port, move |addr| {
        let st = make(format!("http://{addr}"));
        let app = axum::Router::new()
            .route("/.well-known/oauth-authorization-server", get(rfc8414))
            .route("/.well-known/openid-configuration", get(oidc))
            .route("/register", post(register))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(st.clone());
        (app, st)
    })
}

/// Run `make(addr)`'s router on 127.0.0.1:`port` in a runtime thread of its own.
pub(super) fn spawn_server<T: Send + 'static>(
    port: u16,
    make: impl FnOnce(SocketAddr) -> (axum::Router, T) + Send + 'static,
) -> Spawned<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (kill_tx, kill_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = bind_retry(port).await;
            let addr = listener.local_addr().unwrap();
            let (app, t) = make(addr);
            tx.send((addr, t)).unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        });
        let _ = kill_rx.recv();
        rt.shutdown_background();
    });
    let (addr, t) = rx.recv_timeout(Duration::from_secs(30)).expect("server thread starts");
    (addr, kill_tx, thread, t)
}

// ---------------------------------------------------------------------------------------------
// Protected upstreams (the resource server side)
// ---------------------------------------------------------------------------------------------

/// Where the protected resource metadata (RFC 9728) is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrmLocation {
    /// `/.well-known/oauth-protected-resource/mcp` (path insertion).
    PathInserted,
    /// `/.well-known/oauth-protected-resource`.
    Root,
    /// Both.
    Both,
    /// Nowhere (404).
    None,
}

/// How an upstream is protected; change it at run time with [`ResourceGuard::configure`].
#[derive(Clone, Debug)]
pub struct Protection {
    /// `scopes_supported` in the protected resource metadata.
    pub scopes_supported: Vec<String>,
    /// `scope="…"` in 401 challenges; `None` omits it.
    pub challenge_scope: Option<String>,
    /// Put `resource_metadata="…"` in 401 challenges.
    pub resource_metadata_in_challenge: bool,
    /// Send `WWW-Authenticate` at all on 401 (it may be absent since 2025-11-25).
    pub www_authenticate: bool,
    pub prm: PrmLocation,
    /// `authorization_servers` in the metadata; `None` = `[issuer of the AS]`.
    pub authorization_servers: Option<Vec<String>>,
    /// `resource` in the metadata; `None` = the MCP URL.
    pub resource_override: Option<String>,
    /// Scopes every request needs (403 `insufficient_scope` otherwise).
    pub required_scopes: Vec<String>,
    /// Scope needed to call a tool, by tool name (403 `insufficient_scope` otherwise).
    pub tool_scopes: HashMap<String, String>,
    /// Tokens must carry this upstream's URL as `resource` (audience). When false, a token for
    /// another resource is still refused, but one without any resource is accepted.
    pub strict_audience: bool,
}

impl Default for Protection {
    fn default() -> Self {
        Protection {
            scopes_supported: strings(&["mcp:read", "mcp:write"]),
            challenge_scope: Some("mcp:read".into()),
            resource_metadata_in_challenge: true,
            www_authenticate: true,
            prm: PrmLocation::PathInserted,
            authorization_servers: None,
            resource_override: None,
            required_scopes: strings(&["mcp:read"]),
            tool_scopes: HashMap::new(),
            strict_audience: false,
        }
    }
}

/// One request to `/mcp` as the guard judged it (no token values).
#[derive(Clone, Debug)]
pub struct GuardEvent {
    pub method: String,
    pub status: u16,
    /// An `Authorization: Bearer` header was present.
    pub had_token: bool,
    /// The grant of the (valid) token.
    pub grant_id: Option<u64>,
    /// Why the token was refused (`unknown`, `expired`, `revoked`, `audience`, `insufficient_scope`).
    pub problem: Option<String>,
    /// JSON-RPC method of a POST, if any.
    pub rpc_method: Option<String>,
    /// Tool name of a `tools/call`.
    pub tool: Option<String>,
}

/// The bearer-token guard of a protected upstream, shared with the test.
pub struct ResourceGuard {
    /// The MCP URL (`http://127.0.0.1:PORT/mcp`): the resource identifier.
    pub resource: String,
    /// `http://127.0.0.1:PORT/.well-known/oauth-protected-resource/mcp`.
    pub metadata_url: String,
    pub auth: Arc<AuthState>,
    opts: Mutex<Protection>,
    events: Mutex<Vec<GuardEvent>>,
    version: watch::Sender<u64>,
}

impl ResourceGuard {
    pub fn configure(&self, f: impl FnOnce(&mut Protection)) {
        f(&mut self.opts.locked());
    }
    pub fn protection(&self) -> Protection {
        self.opts.locked().clone()
    }
    /// Require `scope` to call `tool`.
    pub fn set_tool_scope(&self, tool: &str, scope: &str) {
        self.configure(|p| {
            p.tool_scopes.insert(tool.to_owned(), scope.to_owned());
        });
    }
    /// The server refused a token (at least once: a background list may meet it
    /// beside a call), and never saw it again once a newer grant's token was in use.
    pub fn assert_refused_then_replaced(&self) {
        let events = self.events();
        let first = events.iter().find_map(|e| e.grant_id);
        let new_in_use = events
            .iter()
            .position(|e| e.grant_id.is_some() && e.grant_id != first)
            .unwrap_or_else(|| panic!("no new token was used: {events:?}"));
        let refused: Vec<usize> = (0..events.len())
            .filter(|&i| events[i].status == 401 && events[i].had_token)
            .collect();
        assert!(!refused.is_empty(), "no token was refused: {events:?}");
        assert!(
            refused.iter().all(|&i| i < new_in_use),
            "a refused token was presented after the new one: {events:?}"
        );
    }

    /// Every request seen on `/mcp`.
    pub fn events(&self) -> Vec<GuardEvent> {
        self.events.locked().clone()
    }
    /// How many requests were answered with `status`.
    pub fn count(&self, status: u16) -> usize {
        self.events().iter().filter(|e| e.status == status).count()
    }
    /// Wait (at most `timeout`) until `f` returns `Some` for the events; panics with `what`.
    pub async fn wait_until<T>(&self, what: &str, timeout: Duration, f: impl Fn(&[GuardEvent]) -> Option<T>) -> T {
        super::eventually_woken(what, timeout, self.version.subscribe(), async || {
            let events = self.events();
            f(&events).ok_or_else(|| {
                events
                    .iter()
                    .map(|e| (e.rpc_method.clone(), e.status))
                    .collect::<Vec<_>>()
            })
        })
        .await
    }

    fn record(&self, e: GuardEvent) {
        self.events.locked().push(e);
        self.version.send_modify(|v| *v += 1);
    }

    fn prm(&self) -> Value {
        let p = self.protection();
        json!({
            "resource": p.resource_override.unwrap_or_else(|| self.resource.clone()),
            "authorization_servers": p.authorization_servers.unwrap_or_else(|| vec![self.auth.issuer.clone()]),
            "scopes_supported": p.scopes_supported,
            "bearer_methods_supported": ["header"],
        })
    }

    fn challenge(&self, status: StatusCode, error: Option<&str>, scope: Option<String>) -> Response {
        let p = self.protection();
        let mut r = status.into_response();
        if status == StatusCode::UNAUTHORIZED && !p.www_authenticate {
            return r;
        }
        let mut parts = Vec::new();
        if let Some(e) = error {
            parts.push(format!("error=\"{e}\""));
        }
        if p.resource_metadata_in_challenge {
            parts.push(format!("resource_metadata=\"{}\"", self.metadata_url));
        }
        if let Some(s) = scope {
            parts.push(format!("scope=\"{s}\""));
        }
        let value = if parts.is_empty() {
            "Bearer".to_owned()
        } else {
            format!("Bearer {}", parts.join(", "))
        };
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_str(&value).expect("valid header"),
        );
        r
    }
}

async fn guard_mw(guard: Arc<ResourceGuard>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| t.trim().to_owned());
    let mut ev = GuardEvent {
        method: method.to_string(),
        status: 0,
        had_token: bearer.is_some(),
        grant_id: None,
        problem: None,
        rpc_method: None,
        tool: None,
    };
    // Look into POST bodies for the JSON-RPC method and tool name.
    let req = if method == Method::POST {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
            return StatusCode::PAYLOAD_TOO_LARGE.into_response();
        };
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            ev.rpc_method = v["method"].as_str().map(str::to_owned);
            if ev.rpc_method.as_deref() == Some("tools/call") {
                ev.tool = v["params"]["name"].as_str().map(str::to_owned);
            }
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        req
    };
    let p = guard.protection();
    let refuse = |guard: &ResourceGuard, mut ev: GuardEvent, r: Response| {
        ev.status = r.status().as_u16();
        guard.record(ev);
        r
    };

    let Some(token) = bearer else {
        let r = guard.challenge(StatusCode::UNAUTHORIZED, None, p.challenge_scope.clone());
        return refuse(&guard, ev, r);
    };
    let info = match guard.auth.introspect(&token) {
        Ok(info) => info,
        Err(problem) => {
            ev.problem = Some(format!("{problem:?}").to_lowercase());
            let r = guard.challenge(
                StatusCode::UNAUTHORIZED,
                Some("invalid_token"),
                p.challenge_scope.clone(),
            );
            return refuse(&guard, ev, r);
        }
    };
    ev.grant_id = Some(info.grant_id);
    let audience_ok = match &info.resource {
        Some(r) => *r == guard.resource,
        None => !p.strict_audience,
    };
    if !audience_ok {
        ev.problem = Some("audience".into());
        let r = guard.challenge(
            StatusCode::UNAUTHORIZED,
            Some("invalid_token"),
            p.challenge_scope.clone(),
        );
        return refuse(&guard, ev, r);
    }
    let mut needed: Vec<String> = p.required_scopes.clone();
    if let Some(s) = ev.tool.as_ref().and_then(|t| p.tool_scopes.get(t)) {
        needed.extend(s.split_whitespace().map(str::to_owned));
    }
    let missing: HashSet<&String> = needed.iter().filter(|s| !info.scope.contains(s)).collect();
    if !missing.is_empty() {
        ev.problem = Some("insufficient_scope".into());
        // Challenge with the scopes this operation needs.
        let r = guard.challenge(
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            Some(needed.join(" ")),
        );
        return refuse(&guard, ev, r);
    }
    let resp = next.run(req).await;
    ev.status = resp.status().as_u16();
    guard.record(ev);
    resp
}

/// A protected upstream: an [`Upstream`] (deref) plus its guard.
pub struct ProtectedUpstream {
    pub upstream: Upstream,
    pub guard: Arc<ResourceGuard>,
}

impl std::ops::Deref for ProtectedUpstream {
    type Target = Upstream;
    fn deref(&self) -> &Upstream {
        &self.upstream
    }
}

impl std::ops::DerefMut for ProtectedUpstream {
    fn deref_mut(&mut self) -> &mut Upstream {
        &mut self.upstream
    }
}

/// Start `server` on 127.0.0.1:0 behind a bearer-token guard checked against `auth`.
pub fn start_protected(server: TestServer, auth: &AuthServer, protection: Protection) -> ProtectedUpstream {
    start_protected_on(server, auth, protection, 0)
}

/// Like [`start_protected`] on a given port (to restart on the same URL after `kill`).
pub fn start_protected_on(
    server: TestServer,
    auth: &AuthServer,
    protection: Protection,
    port: u16,
) -> ProtectedUpstream {
    let auth = auth.state.clone();
    let s = server.clone();
    let (addr, kill, thread, guard) = spawn_server(port, move |addr| {
        // The ID-JAGs this server's AS accepts name this resource.
        auth.add_resource(&format!("http://{addr}/mcp"));
        let guard = Arc::new(ResourceGuard {
            resource: format!("http://{addr}/mcp"),
            metadata_url: format!("http://{addr}/.well-known/oauth-protected-resource/mcp"),
            auth,
            opts: Mutex::new(protection),
            events: Mutex::new(Vec::new()),
            version: watch::Sender::new(0),
        });
        let mut cfg = StreamableHttpServerConfig::default();
        cfg.legacy_session_mode = s.era == Era::Legacy;
        cfg.sse_keep_alive = Some(Duration::from_secs(5));
        let s2 = s.clone();
        let service = StreamableHttpService::new(move || Ok(s2.clone()), Arc::new(LocalSessionManager::default()), cfg);
        let g = guard.clone();
        let mcp = axum::Router::new()
            .nest_service("/mcp", service)
            .layer(axum::middleware::from_fn(move |req: Request, next: Next| {
                guard_mw(g.clone(), req, next)
            }));
        let prm = |g: Arc<ResourceGuard>, at: PrmLocation| {
            move || {
                let g = g.clone();
                async move {
                    let loc = g.protection().prm;
                    if loc == at || loc == PrmLocation::Both {
                        json_response(StatusCode::OK, &g.prm())
                    } else {
                        StatusCode::NOT_FOUND.into_response()
                    }
                }
            }
        };
        let probe = s.probe.clone();
        let record = move |req: Request, next: Next| {
            let probe = probe.clone();
            async move {
                let header = req
                    .headers()
                    .get("x-test")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                probe.http.locked().push((req.method().to_string(), header));
                next.run(req).await
            }
        };
        let app = axum::Router::new()
            .route(
                "/.well-known/oauth-protected-resource/mcp",
                get(prm(guard.clone(), PrmLocation::PathInserted)),
            )
            .route(
                "/.well-known/oauth-protected-resource",
                get(prm(guard.clone(), PrmLocation::Root)),
            )
            .merge(mcp)
            .layer(axum::middleware::from_fn(record));
        (app, guard)
    });
    ProtectedUpstream {
        upstream: Upstream {
            addr,
            url: format!("http://{addr}/mcp"),
            server,
            kill: Some(kill),
            thread: Some(thread),
        },
        guard,
    }
}

// ---------------------------------------------------------------------------------------------
// The "browser"
// ---------------------------------------------------------------------------------------------

/// What a scripted browser visit to an authorization URL saw.
#[derive(Clone, Debug)]
pub struct Visit {
    /// Status of the `/authorize` answer (302, or 400 for an error page).
    pub authorize_status: u16,
    /// Where the AS redirected to (the client's loopback callback, with `code`/`error`).
    pub location: Option<String>,
    /// Status and body of the callback page, when the redirect was followed.
    pub callback_status: Option<u16>,
    pub callback_body: Option<String>,
}

impl Visit {
    /// A query parameter of the redirect `location`.
    pub fn param(&self, k: &str) -> Option<String> {
        let u = url::Url::parse(self.location.as_ref()?).ok()?;
        u.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned())
    }
}

/// Play the user's browser: open `authorize_url`, then (if `follow`) open the redirect target,
/// i.e. deliver the code to the client's loopback listener. Every step is bounded by 20 s.
pub async fn browse(authorize_url: &str, follow: bool) -> Visit {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let r = client
        .get(authorize_url)
        .send()
        .await
        .expect("authorization endpoint answers");
    let location = r
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut visit = Visit {
        authorize_status: r.status().as_u16(),
        location,
        callback_status: None,
        callback_body: None,
    };
    if follow && let Some(loc) = visit.location.clone() {
        let cb = client.get(&loc).send().await.expect("callback answers");
        visit.callback_status = Some(cb.status().as_u16());
        visit.callback_body = cb.text().await.ok();
    }
    visit
}
