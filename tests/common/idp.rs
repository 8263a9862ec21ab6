//! A test OpenID provider: the company identity provider of enterprise-managed
//! authorization (SEP-990), on 127.0.0.1:0 in its own runtime thread.
//!
//! * OIDC discovery (`/.well-known/openid-configuration`, also served at the RFC 8414 path)
//!   naming the token exchange grant and `identity_chaining_requested_token_types_supported`;
//!   a JWKS with one EC P-256 key generated per run.
//! * `/authorize` + `/token` `authorization_code` with PKCE S256 (loopback redirect URIs on
//!   any port, RFC 8252 §7.3): an ID token (`iss`, `aud` = the client, `sub`, `iat`, `exp`)
//!   and, with `offline_access`, a refresh token; the `refresh_token` grant (a new ID token).
//! * RFC 8693 token exchange of an ID token for an ID-JAG (`typ` `oauth-id-jag+jwt`; `iss`,
//!   `sub`, `aud` = the requested audience, `client_id` = the client's id at that
//!   authorization server, `resource`, `jti`, `iat`, `exp`), under a policy per audience:
//!   only allowed audiences (else `invalid_target`), the subject token verified (signature,
//!   `aud` = the authenticated client, `exp`, a live session).
//! * Knobs: ID-token lifetime, ending the session (refresh tokens revoked, ID tokens refused),
//!   and a log of every request (no token values) for counting.
//!
//! Token values never appear in `Debug` output or the log; [`IdpState::issued_secrets`]
//! hands them to tests that grep outputs for leaks.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mcp_bridge::util::Locked;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::auth::{
    AuthState, ID_JAG_TYP, Spawned, base64_decode, failure_code, form, json_response, random_token, redirect, s256,
    spawn_server, strings, token_error,
};
use super::jwt::{EcKey, now, random_id};

/// RFC 8693's grant type.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The requested token type of an identity assertion JWT authorization grant.
pub const ID_JAG: &str = "urn:ietf:params:oauth:token-type:id-jag";
/// The subject token type of an OIDC ID token.
pub const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";

/// IdP behaviour; change it at run time with [`IdpState::configure`].
#[derive(Clone, Debug)]
pub struct IdpConfig {
    /// The user: `sub` of every ID token.
    pub subject: String,
    /// `exp - iat` of ID tokens issued from now on (may be tiny, for expiry tests).
    pub id_token_lifetime_secs: i64,
    /// `exp - iat` of ID-JAGs.
    pub id_jag_lifetime_secs: i64,
    /// Issue a refresh token when `offline_access` is asked for.
    pub issue_refresh_tokens: bool,
    /// Scripted consent: deny (`access_denied`) instead of approving.
    pub deny: bool,
}

impl Default for IdpConfig {
    fn default() -> Self {
        IdpConfig {
            subject: "alice".into(),
            id_token_lifetime_secs: 3600,
            id_jag_lifetime_secs: 300,
            issue_refresh_tokens: true,
            deny: false,
        }
    }
}

/// What the IdP lets a client get an ID-JAG for, per audience (an authorization server's
/// issuer): the client's id there (the out-of-band mapping), and the resources allowed
/// (`None`: any).
#[derive(Clone, Debug)]
pub struct Audience {
    pub client_id: String,
    pub resources: Option<Vec<String>>,
}

/// One `GET /authorize`.
#[derive(Clone, Debug)]
pub struct IdpAuthorize {
    pub params: BTreeMap<String, String>,
    /// `code`, or the error.
    pub outcome: String,
}

/// One `POST /token` (no token values).
#[derive(Clone, Debug)]
pub struct IdpTokenRequest {
    pub grant_type: Option<String>,
    /// The authenticated (or claimed) client.
    pub client_id: Option<String>,
    /// `client_secret_basic`, `client_secret_post` or `none`.
    pub auth_method: String,
    pub audience: Option<String>,
    pub resource: Option<String>,
    pub scope: Option<String>,
    pub requested_token_type: Option<String>,
    pub subject_token_type: Option<String>,
    pub status: u16,
    /// `None` on success, else the OAuth error code.
    pub error: Option<String>,
}

impl IdpTokenRequest {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Everything the IdP has seen.
#[derive(Clone, Debug, Default)]
pub struct IdpLog {
    pub authorizations: Vec<IdpAuthorize>,
    pub tokens: Vec<IdpTokenRequest>,
    /// Discovery documents served.
    pub discoveries: usize,
    /// JWKS served.
    pub jwks_fetches: usize,
}

impl IdpLog {
    /// Successful token requests of `grant_type`.
    pub fn granted(&self, grant_type: &str) -> usize {
        self.tokens
            .iter()
            .filter(|t| t.ok() && t.grant_type.as_deref() == Some(grant_type))
            .count()
    }
    /// Token exchanges (successful or not).
    pub fn exchanges(&self) -> Vec<IdpTokenRequest> {
        self.tokens
            .iter()
            .filter(|t| t.grant_type.as_deref() == Some(TOKEN_EXCHANGE))
            .cloned()
            .collect()
    }
}

struct IdpClient {
    secret: Option<String>,
}

struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    scope: Vec<String>,
    nonce: Option<String>,
    expires: Instant,
}

struct Refresh {
    client_id: String,
    scope: Vec<String>,
    revoked: bool,
}

#[derive(Default)]
struct Inner {
    cfg: IdpConfig,
    clients: HashMap<String, IdpClient>,
    codes: HashMap<String, Code>,
    refresh: HashMap<String, Refresh>,
    audiences: HashMap<String, Audience>,
    /// `jti`s of the ID tokens of the live session (ending it empties this).
    live_id_tokens: HashSet<String>,
    log: IdpLog,
    issued: Vec<String>,
}

/// The shared state of the IdP (no `Debug`: it holds tokens).
pub struct IdpState {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub issuer: String,
    key: EcKey,
    inner: Mutex<Inner>,
    version: watch::Sender<u64>,
}

impl IdpState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.locked()
    }

    fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer)
    }
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    /// Change any part of the configuration.
    pub fn configure(&self, f: impl FnOnce(&mut IdpConfig)) {
        f(&mut self.lock().cfg);
        self.changed();
    }
    /// Lifetime of the ID tokens issued from now on.
    pub fn set_id_token_lifetime(&self, secs: i64) {
        self.configure(|c| c.id_token_lifetime_secs = secs);
    }

    /// Register a client (the bridge's registration at the IdP); with a secret it must
    /// authenticate (Basic or post), without it is public.
    pub fn register_client(&self, client_id: &str, secret: Option<&str>) {
        self.lock().clients.insert(
            client_id.to_owned(),
            IdpClient {
                secret: secret.map(str::to_owned),
            },
        );
        self.changed();
    }

    /// Allow ID-JAGs for `audience` (an authorization server's issuer), naming the client
    /// there `client_id`, for `resources` (`None`: any resource).
    pub fn allow_audience(&self, audience: &str, client_id: &str, resources: Option<&[&str]>) {
        self.lock().audiences.insert(
            audience.to_owned(),
            Audience {
                client_id: client_id.to_owned(),
                resources: resources.map(strings),
            },
        );
        self.changed();
    }
    /// Stop allowing `audience`.
    pub fn disallow_audience(&self, audience: &str) {
        self.lock().audiences.remove(audience);
        self.changed();
    }

    /// End the user's session: every refresh token is revoked and every ID token issued so
    /// far is refused as a subject token, as an expired one would be.
    pub fn end_session(&self) {
        let mut g = self.lock();
        for r in g.refresh.values_mut() {
            r.revoked = true;
        }
        g.live_id_tokens.clear();
        drop(g);
        self.changed();
    }

    /// An ID token for `client_id` minted directly (as `MCP_BRIDGE_IDP_ID_TOKEN` supplies one).
    pub fn issue_id_token(&self, client_id: &str) -> String {
        let mut g = self.lock();
        let t = self.id_token(&mut g, client_id, None);
        drop(g);
        self.changed();
        t
    }

    /// A JWT signed with the IdP's own key (tests make ID-JAGs with one thing wrong).
    pub fn sign(&self, typ: &str, claims: &Value) -> String {
        let t = self.key.sign(typ, claims);
        self.lock().issued.push(t.clone());
        t
    }

    /// The public keys, as the JWKS publishes them.
    pub fn public_keys(&self) -> Vec<jsonwebtoken::DecodingKey> {
        vec![self.key.decoding()]
    }

    /// The JWKS document.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.key.public_jwk()] })
    }

    /// Make `auth` trust this IdP's ID-JAGs (its keys handed in-process).
    pub fn trusted_by(&self, auth: &AuthState) {
        let key = self.key.clone();
        auth.trust_idp(&self.issuer, move || vec![key.decoding()]);
    }

    /// Every ID token, refresh token, access token and ID-JAG issued so far.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.lock().issued.clone()
    }

    /// A snapshot of everything seen.
    pub fn log(&self) -> IdpLog {
        self.lock().log.clone()
    }

    /// Wait (at most `timeout`) until `f` returns `Some` for the log; wakes on every change.
    pub async fn wait_until<T>(&self, what: &str, timeout: Duration, f: impl Fn(&IdpLog) -> Option<T>) -> T {
        super::eventually_woken(what, timeout, self.version.subscribe(), async || {
            let log = self.log();
            f(&log).ok_or_else(|| {
                log.tokens
                    .iter()
                    .map(|t| (t.grant_type.clone(), t.error.clone()))
                    .collect::<Vec<_>>()
            })
        })
        .await
    }

    fn id_token(&self, g: &mut Inner, client_id: &str, nonce: Option<&str>) -> String {
        let iat = now();
        let jti = random_id();
        let mut claims = json!({
            "iss": self.issuer,
            "sub": g.cfg.subject,
            "aud": client_id,
            "iat": iat,
            "exp": iat + g.cfg.id_token_lifetime_secs,
            "jti": jti,
            "email": format!("{}@example.com", g.cfg.subject),
        });
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        let t = self.key.sign("JWT", &claims);
        g.live_id_tokens.insert(jti);
        g.issued.push(t.clone());
        t
    }
}

// ---------------------------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------------------------

type St = State<Arc<IdpState>>;

async fn discovery(State(st): St) -> Response {
    st.lock().log.discoveries += 1;
    st.changed();
    let i = &st.issuer;
    json_response(
        StatusCode::OK,
        &json!({
            "issuer": i,
            "authorization_endpoint": format!("{i}/authorize"),
            "token_endpoint": format!("{i}/token"),
            "jwks_uri": format!("{i}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "scopes_supported": ["openid", "offline_access", "email", "profile"],
            "grant_types_supported": ["authorization_code", "refresh_token", TOKEN_EXCHANGE],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "authorization_response_iss_parameter_supported": true,
            "identity_chaining_requested_token_types_supported": [ID_JAG],
        }),
    )
}

async fn jwks(State(st): St) -> Response {
    st.lock().log.jwks_fetches += 1;
    st.changed();
    json_response(StatusCode::OK, &st.jwks())
}

fn loopback_redirect(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|u| {
        u.scheme() == "http"
            && u.fragment().is_none()
            && (matches!(u.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
                || matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
                || matches!(u.host(), Some(url::Host::Domain("localhost"))))
    })
}

async fn authorize(State(st): St, uri: Uri) -> Response {
    let p: BTreeMap<String, String> = form(uri.query().unwrap_or("").as_bytes()).into_iter().collect();
    let mut g = st.lock();
    let (resp, outcome) = authorize_inner(&st.issuer, &mut g, &p);
    g.log.authorizations.push(IdpAuthorize { params: p, outcome });
    drop(g);
    st.changed();
    resp
}

fn authorize_inner(issuer: &str, g: &mut Inner, p: &BTreeMap<String, String>) -> (Response, String) {
    let page = |e: &str| {
        (
            (StatusCode::BAD_REQUEST, format!("authorization error: {e}")).into_response(),
            e.to_owned(),
        )
    };
    let Some(client_id) = p.get("client_id").filter(|id| g.clients.contains_key(*id)) else {
        return page("invalid_client");
    };
    // The bridge's loopback listener: any port (RFC 8252 §7.3).
    let Some(redirect_uri) = p.get("redirect_uri").filter(|r| loopback_redirect(r)) else {
        return page("invalid_redirect_uri");
    };
    let back = |pairs: &[(&str, &str)]| {
        let mut u = url::Url::parse(redirect_uri).expect("checked above");
        {
            let mut q = u.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
            if let Some(s) = p.get("state") {
                q.append_pair("state", s);
            }
            q.append_pair("iss", issuer);
        }
        redirect(u.as_str())
    };
    let error = |code: &str| (back(&[("error", code)]), code.to_owned());
    if p.get("response_type").map(String::as_str) != Some("code") {
        return error("unsupported_response_type");
    }
    let scope: Vec<String> = p
        .get("scope")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    if !scope.iter().any(|s| s == "openid") {
        return error("invalid_scope");
    }
    let (Some(challenge), Some("S256")) = (
        p.get("code_challenge"),
        p.get("code_challenge_method").map(String::as_str),
    ) else {
        return error("invalid_request");
    };
    if g.cfg.deny {
        return error("access_denied");
    }
    let code = random_token("idpcode");
    g.codes.insert(
        code.clone(),
        Code {
            client_id: client_id.clone(),
            redirect_uri: redirect_uri.clone(),
            challenge: challenge.clone(),
            scope,
            nonce: p.get("nonce").cloned(),
            expires: Instant::now() + Duration::from_secs(120),
        },
    );
    (back(&[("code", &code)]), "code".into())
}

/// Client authentication: `(method, client_id, secret)`.
fn client_auth(headers: &HeaderMap, f: &HashMap<String, String>) -> (&'static str, Option<String>, Option<String>) {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        && let Some(decoded) = base64_decode(basic).and_then(|b| String::from_utf8(b).ok())
        && let Some((id, secret)) = decoded.split_once(':')
    {
        let dec = |s: &str| form(format!("x={s}").as_bytes()).remove("x").unwrap_or_default();
        return ("client_secret_basic", Some(dec(id)), Some(dec(secret)));
    }
    match f.get("client_secret") {
        Some(s) => ("client_secret_post", f.get("client_id").cloned(), Some(s.clone())),
        None => ("none", f.get("client_id").cloned(), None),
    }
}

async fn token(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    let f = form(&body);
    let (method, client_id, secret) = client_auth(&headers, &f);
    let mut rec = IdpTokenRequest {
        grant_type: f.get("grant_type").cloned(),
        client_id: client_id.clone(),
        auth_method: method.to_owned(),
        audience: f.get("audience").cloned(),
        resource: f.get("resource").cloned(),
        scope: f.get("scope").cloned(),
        requested_token_type: f.get("requested_token_type").cloned(),
        subject_token_type: f.get("subject_token_type").cloned(),
        status: 200,
        error: None,
    };
    let mut g = st.lock();
    let resp = token_inner(&st, &mut g, &f, client_id, secret);
    rec.status = resp.status().as_u16();
    if rec.status != 200 {
        rec.error = Some(failure_code(&resp).unwrap_or_else(|| "unknown".into()));
    }
    g.log.tokens.push(rec);
    drop(g);
    st.changed();
    resp
}

fn token_inner(
    st: &IdpState,
    g: &mut Inner,
    f: &HashMap<String, String>,
    client_id: Option<String>,
    secret: Option<String>,
) -> Response {
    let Some(client_id) = client_id else {
        return token_error(StatusCode::UNAUTHORIZED, "invalid_client", "no client_id");
    };
    let Some(client) = g.clients.get(&client_id) else {
        return token_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
    };
    if client.secret.is_some() && client.secret != secret {
        return token_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    }
    match f.get("grant_type").map(String::as_str) {
        Some("authorization_code") => code_grant(st, g, f, &client_id),
        Some("refresh_token") => refresh_grant(st, g, f, &client_id),
        Some(TOKEN_EXCHANGE) => exchange(st, g, f, &client_id),
        _ => token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "unsupported grant_type",
        ),
    }
}

fn tokens(st: &IdpState, g: &mut Inner, client_id: &str, scope: &[String], nonce: Option<&str>) -> Value {
    let access = random_token("idpat");
    g.issued.push(access.clone());
    let id_token = st.id_token(g, client_id, nonce);
    let mut v = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": g.cfg.id_token_lifetime_secs.max(0),
        "id_token": id_token,
        "scope": scope.join(" "),
    });
    if g.cfg.issue_refresh_tokens && scope.iter().any(|s| s == "offline_access") {
        let r = random_token("idprt");
        g.refresh.insert(
            r.clone(),
            Refresh {
                client_id: client_id.to_owned(),
                scope: scope.to_vec(),
                revoked: false,
            },
        );
        g.issued.push(r.clone());
        v["refresh_token"] = json!(r);
    }
    v
}

fn code_grant(st: &IdpState, g: &mut Inner, f: &HashMap<String, String>, client_id: &str) -> Response {
    let bad = |d: &str| token_error(StatusCode::BAD_REQUEST, "invalid_grant", d);
    let Some(code) = f.get("code").and_then(|c| g.codes.remove(c)) else {
        return bad("unknown or used code");
    };
    if Instant::now() >= code.expires || code.client_id != client_id {
        return bad("code expired or of another client");
    }
    if f.get("redirect_uri") != Some(&code.redirect_uri) {
        return bad("redirect_uri mismatch");
    }
    if f.get("code_verifier").map(|v| s256(v)) != Some(code.challenge.clone()) {
        return bad("PKCE verification failed");
    }
    let v = tokens(st, g, client_id, &code.scope, code.nonce.as_deref());
    json_response(StatusCode::OK, &v)
}

/// A new ID token (the refresh token stays: no rotation, as many IdPs do for confidential
/// and native clients alike), unless the session ended.
fn refresh_grant(st: &IdpState, g: &mut Inner, f: &HashMap<String, String>, client_id: &str) -> Response {
    let bad = |d: &str| token_error(StatusCode::BAD_REQUEST, "invalid_grant", d);
    let Some(r) = f.get("refresh_token").and_then(|r| g.refresh.get(r)) else {
        return bad("unknown refresh token");
    };
    if r.revoked {
        return bad("the session ended");
    }
    if r.client_id != client_id {
        return bad("refresh token of another client");
    }
    let scope = r.scope.clone();
    let access = random_token("idpat");
    g.issued.push(access.clone());
    let id_token = st.id_token(g, client_id, None);
    json_response(
        StatusCode::OK,
        &json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": g.cfg.id_token_lifetime_secs.max(0),
            "id_token": id_token,
            "scope": scope.join(" "),
        }),
    )
}

/// RFC 8693 for ID-JAGs (draft-ietf-oauth-identity-assertion-authz-grant §4.3).
fn exchange(st: &IdpState, g: &mut Inner, f: &HashMap<String, String>, client_id: &str) -> Response {
    let req = |d: &str| token_error(StatusCode::BAD_REQUEST, "invalid_request", d);
    if f.get("requested_token_type").map(String::as_str) != Some(ID_JAG) {
        return req("requested_token_type must be urn:ietf:params:oauth:token-type:id-jag");
    }
    if f.get("subject_token_type").map(String::as_str) != Some(ID_TOKEN) {
        return req("subject_token_type must be urn:ietf:params:oauth:token-type:id_token");
    }
    let (Some(subject), Some(audience), Some(resource)) =
        (f.get("subject_token"), f.get("audience"), f.get("resource"))
    else {
        return req("subject_token, audience and resource are required");
    };
    // The subject token: our own ID token, for this client, unexpired, of a live session.
    let bad = |d: &str| token_error(StatusCode::BAD_REQUEST, "invalid_grant", d);
    let Some(p) = super::jwt::parse(subject, &st.public_keys()) else {
        return bad("the subject token is not a JWT");
    };
    if !p.signature_ok || p.str("iss") != Some(st.issuer.as_str()) {
        return bad("the subject token is not an ID token of this IdP");
    }
    if p.str("aud") != Some(client_id) {
        return bad("the subject token was issued to another client");
    }
    if p.int("exp").is_none_or(|e| e <= now()) {
        return bad("the subject token expired");
    }
    if !p.str("jti").is_some_and(|j| g.live_id_tokens.contains(j)) {
        return bad("the session of the subject token ended");
    }
    // Policy: the audience must be allowed, and the resource with it.
    let Some(policy) = g.audiences.get(audience).cloned() else {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            "this audience is not allowed for the client",
        );
    };
    if policy.resources.as_ref().is_some_and(|r| !r.contains(resource)) {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            "this resource is not allowed for the audience",
        );
    }
    let iat = now();
    let mut claims = json!({
        "iss": st.issuer,
        "sub": p.str("sub"),
        "aud": audience,
        "client_id": policy.client_id,
        "resource": resource,
        "jti": random_id(),
        "iat": iat,
        "exp": iat + g.cfg.id_jag_lifetime_secs,
    });
    if let Some(s) = f.get("scope") {
        claims["scope"] = json!(s);
    }
    let jag = st.key.sign(ID_JAG_TYP, &claims);
    g.issued.push(jag.clone());
    let mut v = json!({
        "access_token": jag,
        "issued_token_type": ID_JAG,
        "token_type": "N_A",
        "expires_in": g.cfg.id_jag_lifetime_secs,
    });
    if let Some(s) = f.get("scope") {
        v["scope"] = json!(s);
    }
    json_response(StatusCode::OK, &v)
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

/// A running IdP (own runtime thread). Derefs to its [`IdpState`].
pub struct IdpServer {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`.
    pub issuer: String,
    pub state: Arc<IdpState>,
    kill: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::ops::Deref for IdpServer {
    type Target = IdpState;
    fn deref(&self) -> &IdpState {
        &self.state
    }
}

impl IdpServer {
    /// Start with the default configuration.
    pub fn start() -> IdpServer {
        Self::start_with(IdpConfig::default())
    }

    pub fn start_with(cfg: IdpConfig) -> IdpServer {
        let key = EcKey::generate();
        let (addr, kill, thread, state): Spawned<Arc<IdpState>> = spawn_server(0, move |addr| {
            let st = Arc::new(IdpState {
                issuer: format!("http://{addr}"),
                key,
                inner: Mutex::new(Inner {
                    cfg,
                    ..Inner::default()
                }),
                version: watch::Sender::new(0),
            });
            let app = axum::Router::new()
                .route("/.well-known/openid-configuration", get(discovery))
                .route("/.well-known/oauth-authorization-server", get(discovery))
                .route("/jwks", get(jwks))
                .route("/authorize", get(authorize))
                .route("/token", post(token))
                .with_state(st.clone());
            (app, st)
        });
        IdpServer {
            addr,
            issuer: state.issuer.clone(),
            state,
            kill: Some(kill),
            thread: Some(thread),
        }
    }
}

impl Drop for IdpServer {
    fn drop(&mut self) {
        if let Some(k) = self.kill.take() {
            let _ = k.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
