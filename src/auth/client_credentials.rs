//! The client credentials grant (RFC 6749 §4.4, MCP SEP-1046) for agents and CI:
//! tokens with no browser and no refresh token. Discovery as for a login (the
//! server's 401, its protected resource metadata, the authorization server's
//! metadata), then one `POST` to the token endpoint, authenticated with
//! `client_secret_basic`, `client_secret_post` or `private_key_jwt` (RFC 7523: a
//! fresh assertion per request, `aud` = the issuer). The token lands in the
//! credential store like a login's; [`super::renew_headless`] gets a new one
//! before it expires.
//!
//! rmcp 3.11's `exchange_client_credentials` does the secret methods; its gaps
//! are filled here, one place each:
//! - it picks `client_secret_post` unless the server lists only
//!   `client_secret_basic`, and cannot be told which: the metadata it reads is
//!   narrowed to the chosen method ([`narrow`]); with no list, RFC 8414's
//!   default (`client_secret_basic`) is chosen here;
//! - the protected resource's `resource` has no getter: read here ([`resource`]);
//! - its `private_key_jwt` exchange (feature `auth-client-credentials-jwt`)
//!   holds a non-`Send` form serializer across an await, so it cannot run in a
//!   spawned task: the assertion and its request are made here ([`assertion`],
//!   [`exchange_jwt`]), with the same claims (`aud` the issuer, 300 s, a fresh
//!   `jti`) and the algorithm chosen from the server's list and the key
//!   ([`algorithms`]);
//! - no check that the token endpoint is HTTPS for a secret: done here for all
//!   methods (plain HTTP only on loopback).

use std::time::Duration;

use jsonwebtoken::Algorithm;
use rmcp::transport::auth::{
    AuthorizationMetadata, ClientCredentialsConfig, CredentialStore, OAuthTokenResponse, StoredCredentials,
};

use super::{ServerCredentials, oauth};
use crate::config::TokenAuthMethod;
use crate::registry::{ClientCredentials, ServerSpec};

/// Why no token could be had. The text names the server and what to fix, and
/// holds no secret (rmcp's messages carry the server's `error` and
/// `error_description`, never the request).
#[derive(Debug, thiserror::Error)]
#[error("server {server}: {message}")]
pub struct Error {
    pub server: String,
    pub message: String,
}

pub(crate) fn error(spec: &ServerSpec, message: impl std::fmt::Display) -> Error {
    Error {
        server: spec.id.clone(),
        message: message.to_string(),
    }
}

/// The method to use: the configured one if the server lists it (or lists
/// none), else the server's choice among those the configuration allows.
pub fn choose(
    configured: Option<TokenAuthMethod>,
    has_key: bool,
    listed: Option<&[String]>,
) -> Result<TokenAuthMethod, String> {
    use TokenAuthMethod as M;
    let allowed = match (configured, has_key) {
        (Some(m), _) => vec![m],
        (None, true) => vec![M::PrivateKeyJwt],
        (None, false) => vec![M::ClientSecretBasic, M::ClientSecretPost],
    };
    // RFC 8414 §2: no list means client_secret_basic; a configured method or
    // key is trusted then (the server said nothing against it).
    let Some(listed) = listed else {
        return Ok(allowed[0]);
    };
    allowed
        .iter()
        .copied()
        .find(|m| listed.iter().any(|l| l == m.as_str()))
        .ok_or_else(|| {
            format!(
                "the authorization server accepts {} at its token endpoint, not {}; set oauth.token_endpoint_auth_method (and a secret or a private key) to one of those",
                listed.join(", "),
                allowed.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(" or ")
            )
        })
}

/// The algorithms to try for `key` (PEM text), in the server's order, among
/// those rmcp signs with; a key's PEM label says its type when it can.
pub fn algorithms(key: &str, listed: Option<&[String]>) -> Vec<Algorithm> {
    use Algorithm as A;
    let all = [
        ("ES256", A::ES256),
        ("ES384", A::ES384),
        ("RS256", A::RS256),
        ("RS384", A::RS384),
        ("RS512", A::RS512),
    ];
    let ec = key.contains("BEGIN EC PRIVATE KEY");
    let rsa = key.contains("BEGIN RSA PRIVATE KEY");
    let fits = |name: &str| (!ec || name.starts_with("ES")) && (!rsa || name.starts_with("RS"));
    match listed {
        Some(l) => l
            .iter()
            .filter_map(|n| all.iter().find(|(a, _)| a == n))
            .filter(|(n, _)| fits(n))
            .map(|(_, a)| *a)
            .collect(),
        // No list: the two every server knows.
        None => all
            .iter()
            .filter(|(n, _)| (*n == "ES256" || *n == "RS256") && fits(n))
            .map(|(_, a)| *a)
            .collect(),
    }
}

/// An RFC 7523 client assertion: `iss` = `sub` = the client, `aud` = the
/// authorization server's issuer (one string, never the token endpoint), 300 s,
/// a fresh random `jti`; `typ` as draft-ietf-oauth-rfc7523bis says.
pub fn assertion(client_id: &str, issuer: &str, key: &[u8], alg: Algorithm, now: u64) -> Result<String, String> {
    let key = match alg {
        Algorithm::ES256 | Algorithm::ES384 => jsonwebtoken::EncodingKey::from_ec_pem(key),
        _ => jsonwebtoken::EncodingKey::from_rsa_pem(key),
    }
    .map_err(|e| format!("the private key is not a {alg:?} private key in PEM: {e}"))?;
    let mut header = jsonwebtoken::Header::new(alg);
    header.typ = Some("client-authentication+jwt".into());
    let jti: [u8; 16] = rand::random();
    let claims = serde_json::json!({
        "iss": client_id,
        "sub": client_id,
        "aud": issuer,
        "iat": now,
        "exp": now + 300,
        "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
    });
    jsonwebtoken::encode(&header, &claims, &key).map_err(|e| format!("cannot sign with the private key: {e}"))
}

/// Whether a token endpoint may receive client credentials: HTTPS, or plain
/// HTTP on loopback.
pub fn endpoint_allowed(url: &str) -> bool {
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "https" => true,
        Ok(u) if u.scheme() == "http" => match u.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

/// How a token request authenticates the client, at an authorization server
/// or an identity provider. `Debug` never shows a secret or an assertion.
#[derive(Clone)]
pub enum ClientAuth {
    /// RFC 6749 §2.3.1 `Authorization: Basic`, id and secret form-encoded first.
    Basic { client_id: String, secret: String },
    /// `client_id` and `client_secret` in the body.
    Post { client_id: String, secret: String },
    /// RFC 7523 §2.2: a signed assertion in the body, no `client_id` (its
    /// `sub` names the client).
    Assertion(String),
    /// A public client: `client_id` in the body only.
    Public { client_id: String },
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientAuth::Basic { client_id, .. } => write!(f, "Basic({client_id:?}, [REDACTED])"),
            ClientAuth::Post { client_id, .. } => write!(f, "Post({client_id:?}, [REDACTED])"),
            ClientAuth::Assertion(_) => f.write_str("Assertion([REDACTED])"),
            ClientAuth::Public { client_id } => write!(f, "Public({client_id:?})"),
        }
    }
}

impl ClientAuth {
    /// The body fields this method adds to a token request.
    pub fn form_fields(&self) -> Vec<(&'static str, String)> {
        match self {
            ClientAuth::Basic { .. } => vec![],
            ClientAuth::Post { client_id, secret } => {
                vec![("client_id", client_id.clone()), ("client_secret", secret.clone())]
            }
            ClientAuth::Assertion(a) => vec![
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ),
                ("client_assertion", a.clone()),
            ],
            ClientAuth::Public { client_id } => vec![("client_id", client_id.clone())],
        }
    }

    /// The `Authorization` header value this method sends, if any.
    pub fn header(&self) -> Option<String> {
        let ClientAuth::Basic { client_id, secret } = self else {
            return None;
        };
        let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        Some(format!(
            "Basic {}",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("{}:{}", enc(client_id), enc(secret))
            )
        ))
    }
}

/// A token endpoint's refusal (RFC 6749 §5.2: `error`, `error_description`),
/// or why it could not be asked. The text holds no part of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    /// The `error` code, when the endpoint gave one.
    pub code: Option<String>,
    pub text: String,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// `POST` a form to a token endpoint, authenticated with `auth`, and return
/// its JSON answer. Redirects are not followed (a body with credentials goes
/// to the URL the metadata named, nowhere else).
pub async fn token_request(
    endpoint: &str,
    mut form: Vec<(&'static str, String)>,
    auth: &ClientAuth,
) -> Result<serde_json::Value, TokenError> {
    let plain = |text: String| TokenError { code: None, text };
    form.extend(auth.form_fields());
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&form)
        .finish();
    let client = crate::net::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| plain(e.to_string()))?;
    let mut req = client
        .post(endpoint)
        .header("accept", "application/json")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(h) = auth.header() {
        req = req.header("authorization", h);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| plain(format!("cannot reach the token endpoint {endpoint}: {e}")))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| plain(e.to_string()))?;
    if !status.is_success() {
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let field = |k: &str| {
            v.get(k)
                .and_then(|x| x.as_str())
                .map(|x| crate::util::printable(x).into_owned())
        };
        let code = field("error");
        let text = match (&code, field("error_description")) {
            (Some(e), Some(d)) => format!("HTTP {status}: {e}: {d}"),
            (Some(e), None) => format!("HTTP {status}: {e}"),
            _ => format!("HTTP {status}"),
        };
        return Err(TokenError { code, text });
    }
    serde_json::from_slice(&body).map_err(|e| plain(format!("the token endpoint's answer is not JSON: {e}")))
}

/// An access token response from JSON.
pub fn token_response(v: serde_json::Value) -> Result<OAuthTokenResponse, String> {
    serde_json::from_value(v).map_err(|e| format!("the token endpoint's answer is not a token response: {e}"))
}

/// `private_key_jwt` token request: the assertion in the body, no `client_id`
/// (RFC 7523 §3: the assertion's `sub` names the client).
async fn exchange_jwt(
    metadata: &AuthorizationMetadata,
    assertion: &str,
    scopes: &[String],
    resource: Option<&str>,
) -> Result<OAuthTokenResponse, String> {
    let mut form = vec![("grant_type", "client_credentials".to_owned())];
    let scope = scopes.join(" ");
    if !scope.is_empty() {
        form.push(("scope", scope));
    }
    if let Some(r) = resource {
        form.push(("resource", r.to_owned()));
    }
    let v = token_request(
        &metadata.token_endpoint,
        form,
        &ClientAuth::Assertion(assertion.to_owned()),
    )
    .await
    .map_err(|e| e.text)?;
    token_response(v)
}

/// `metadata` listing only `method`, so that rmcp authenticates that way.
fn narrow(metadata: &mut AuthorizationMetadata, method: TokenAuthMethod) {
    metadata.additional_fields.insert(
        "token_endpoint_auth_methods_supported".into(),
        serde_json::json!([method.as_str()]),
    );
}

pub(crate) fn listed(metadata: &AuthorizationMetadata, field: &str) -> Option<Vec<String>> {
    metadata
        .additional_fields
        .get(field)
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
}

/// The `resource_metadata` URL of a `WWW-Authenticate` challenge.
pub fn resource_metadata_url(challenge: &str) -> Option<&str> {
    let at = challenge.find("resource_metadata=")? + "resource_metadata=".len();
    let rest = &challenge[at..];
    match rest.strip_prefix('"') {
        Some(q) => q.split('"').next(),
        None => rest.split([',', ' ']).next(),
    }
}

/// The protected resource's `resource` (RFC 9728), else the server's URL.
/// A `resource` that does not name this server is not taken: this read is
/// separate from rmcp's discovery (which checks it), and a server answering
/// differently the second time must not get a token for another resource.
pub(crate) async fn resource(spec: &ServerSpec, challenge: Option<&str>) -> String {
    let from_prm = async {
        let url = challenge.and_then(resource_metadata_url)?;
        let client = crate::net::builder().build().ok()?;
        let doc: serde_json::Value = client.get(url).send().await.ok()?.json().await.ok()?;
        doc.get("resource")?.as_str().map(str::to_owned)
    };
    from_prm
        .await
        .filter(|r| resource_matches(&spec.url, r))
        .unwrap_or_else(|| spec.url.clone())
}

/// Whether the resource identifier `resource` names the server at `url`:
/// the same origin, and its path equal to the server's or a `/`-bounded
/// prefix of it (rmcp's rule for protected resource metadata).
pub fn resource_matches(url: &str, resource: &str) -> bool {
    let (Ok(u), Ok(r)) = (url::Url::parse(url), url::Url::parse(resource)) else {
        return false;
    };
    if u.scheme() != r.scheme()
        || u.host_str() != r.host_str()
        || u.port_or_known_default() != r.port_or_known_default()
    {
        return false;
    }
    let (up, rp) = (u.path(), r.path());
    up == rp || (up.starts_with(rp) && (rp.ends_with('/') || up.as_bytes().get(rp.len()) == Some(&b'/')))
}

/// What discovery found for a server: its authorization server's metadata,
/// the first 401's challenge and the protected resource's `resource`.
pub struct Discovered {
    pub metadata: AuthorizationMetadata,
    pub challenge: Option<String>,
    pub resource: String,
    /// The manager that discovered it, with `creds` as its store.
    pub manager: rmcp::transport::auth::AuthorizationManager,
}

/// The server's 401, its protected resource metadata and its authorization
/// server's metadata (which must exist: the token endpoint is needed), for a
/// grant with no browser (`what` names it in errors).
pub async fn discover(spec: &ServerSpec, creds: ServerCredentials, what: &str) -> Result<Discovered, Error> {
    let challenge = oauth::challenge(&spec.url).await.map_err(|e| error(spec, e))?;
    let m = oauth::manager(&spec.url, creds, !spec.oauth.omit_resource)
        .await
        .map_err(|e| error(spec, format!("OAuth set-up failed: {e}")))?;
    let meta = m
        .resolve_metadata_from_challenge(challenge.as_deref())
        .await
        .map_err(|e| error(spec, format!("authorization server discovery failed: {e}")))?;
    if !meta.source.is_discovered() {
        return Err(error(
            spec,
            format!(
                "{} names no authorization server metadata: {what} need its token endpoint",
                spec.url
            ),
        ));
    }
    let resource = resource(spec, challenge.as_deref()).await;
    Ok(Discovered {
        metadata: meta.metadata,
        challenge,
        resource,
        manager: m,
    })
}

/// A refusal when the token endpoint is not HTTPS (or loopback).
pub fn check_endpoint(spec: &ServerSpec, endpoint: &str, what: &str) -> Result<(), Error> {
    if endpoint_allowed(endpoint) {
        return Ok(());
    }
    Err(error(
        spec,
        format!("the token endpoint {endpoint} is not HTTPS: {what} are sent only over HTTPS (or to loopback)"),
    ))
}

/// Where the `private_key_jwt` key is: `oauth.private_key_file`, else the one
/// `mcp-bridge auth set --private-key` put in the server's store entry.
pub enum Key {
    File(std::path::PathBuf),
    Stored(String),
}

impl Key {
    /// The key of `spec`, from its configuration or `creds`, if it has one.
    pub async fn of(cc: &ClientCredentials, creds: &ServerCredentials) -> Option<Key> {
        match &cc.private_key_file {
            Some(path) => Some(Key::File(path.clone())),
            None => creds.entry().await.and_then(|e| e.private_key).map(Key::Stored),
        }
    }
}

/// Whether `pem` is a private key an assertion can be signed with.
pub fn check_key(pem: &str) -> Result<(), String> {
    let b = pem.as_bytes();
    let fits = jsonwebtoken::EncodingKey::from_ec_pem(b).is_ok() || jsonwebtoken::EncodingKey::from_rsa_pem(b).is_ok();
    fits.then_some(())
        .ok_or_else(|| "not a PEM private key (PKCS#8, SEC1 EC or PKCS#1 RSA)".to_owned())
}

/// A fresh `private_key_jwt` assertion for `client_id` at the authorization
/// server of `metadata`, signed with `key`.
pub async fn sign(
    spec: &ServerSpec,
    client_id: &str,
    key: Key,
    metadata: &AuthorizationMetadata,
) -> Result<String, Error> {
    let key = match key {
        Key::File(path) => {
            let shown = path.display().to_string();
            tokio::task::spawn_blocking(move || std::fs::read(&path))
                .await
                .map_err(|e| error(spec, e))?
                .map_err(|e| error(spec, format!("cannot read oauth.private_key_file {shown}: {e}")))?
        }
        Key::Stored(pem) => pem.into_bytes(),
    };
    let issuer = metadata.issuer.clone().ok_or_else(|| {
        error(
            spec,
            "the authorization server's metadata has no issuer, which private_key_jwt needs as the audience",
        )
    })?;
    let algs = algorithms(
        &String::from_utf8_lossy(&key),
        listed(metadata, "token_endpoint_auth_signing_alg_values_supported").as_deref(),
    );
    // The first algorithm the key signs with (a PKCS#8 PEM does not say its type).
    algs.iter()
        .map(|alg| assertion(client_id, &issuer, &key, *alg, crate::util::now_unix()))
        .reduce(|a, b| a.or(b))
        .unwrap_or_else(|| {
            Err("the authorization server lists no signing algorithm this key can use (ES256, ES384, RS256, RS384, RS512)".into())
        })
        .map_err(|e| error(spec, e))
}

/// How the bridge authenticates at `spec`'s authorization server with its
/// client credentials (`client_id` and `client_secret` are `spec.oauth`'s):
/// the method [`choose`]s, and its secret or a fresh assertion.
pub async fn authenticate(
    spec: &ServerSpec,
    cc: &ClientCredentials,
    creds: &ServerCredentials,
    metadata: &AuthorizationMetadata,
) -> Result<(TokenAuthMethod, ClientAuth), Error> {
    let client_id = spec
        .oauth
        .client_id
        .clone()
        .ok_or_else(|| error(spec, "oauth.client_id is not set"))?;
    let methods = listed(metadata, "token_endpoint_auth_methods_supported");
    let key = Key::of(cc, creds).await;
    let method = choose(cc.method, key.is_some(), methods.as_deref()).map_err(|e| error(spec, e))?;
    let secret = || {
        spec.oauth
            .client_secret
            .clone()
            .ok_or_else(|| error(spec, "no client secret: set the variable oauth.client_secret_env names"))
    };
    let auth = match method {
        TokenAuthMethod::ClientSecretBasic => ClientAuth::Basic {
            client_id,
            secret: secret()?,
        },
        TokenAuthMethod::ClientSecretPost => ClientAuth::Post {
            client_id,
            secret: secret()?,
        },
        TokenAuthMethod::PrivateKeyJwt => {
            let key = key.ok_or_else(|| {
                error(
                    spec,
                    format!(
                        "private_key_jwt needs a key: set oauth.private_key_file, or store one with `mcp-bridge auth set {} --private-key < key.pem`",
                        spec.id
                    ),
                )
            })?;
            ClientAuth::Assertion(sign(spec, &client_id, key, metadata).await?)
        }
    };
    Ok((method, auth))
}

/// Keep `token` (from the authorization server `issuer`) as `spec`'s login.
pub async fn save(
    spec: &ServerSpec,
    creds: &ServerCredentials,
    client_id: String,
    token: OAuthTokenResponse,
    issuer: Option<String>,
) -> Result<(), Error> {
    let granted = serde_json::to_value(&token)
        .ok()
        .and_then(|v| {
            Some(
                v.get("scope")?
                    .as_str()?
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect(),
            )
        })
        .unwrap_or_default();
    creds
        .save(
            StoredCredentials::new(client_id, Some(token), granted, Some(crate::util::now_unix())).with_issuer(issuer),
        )
        .await
        .map_err(|e| error(spec, format!("cannot store the token: {e}")))
}

/// Get a token for `spec` with its client credentials and store it in `creds`.
pub async fn fetch(spec: &ServerSpec, creds: ServerCredentials) -> Result<(), Error> {
    let Some(cc) = &spec.oauth.client_credentials else {
        return Err(error(spec, "no client credentials configured"));
    };
    let client_id = spec
        .oauth
        .client_id
        .clone()
        .ok_or_else(|| error(spec, "oauth.client_id is not set"))?;
    let Discovered {
        mut metadata,
        resource,
        manager: mut m,
        ..
    } = discover(spec, creds.clone(), "client credentials").await?;
    let methods = listed(&metadata, "token_endpoint_auth_methods_supported");
    let has_key = Key::of(cc, &creds).await.is_some();
    let method = choose(cc.method, has_key, methods.as_deref()).map_err(|e| error(spec, e))?;
    let resource = Some(resource);
    let scopes = spec.oauth.scopes.clone();
    check_endpoint(spec, &metadata.token_endpoint, "client credentials")?;
    let refused = |e: String| {
        error(
            spec,
            format!(
                "the authorization server refused the client credentials ({}, client {client_id}): {e}; check oauth.client_id and the {}",
                method.as_str(),
                if method == TokenAuthMethod::PrivateKeyJwt {
                    "key registered for it (oauth.private_key_file, or the one `mcp-bridge auth set --private-key` stored)"
                } else {
                    "secret in the variable oauth.client_secret_env names"
                }
            ),
        )
    };
    if method != TokenAuthMethod::PrivateKeyJwt {
        let client_secret = spec
            .oauth
            .client_secret
            .clone()
            .ok_or_else(|| error(spec, "no client secret: set the variable oauth.client_secret_env names"))?;
        narrow(&mut metadata, method);
        m.set_metadata(metadata);
        let config = ClientCredentialsConfig::ClientSecret {
            client_id: client_id.clone(),
            client_secret,
            scopes,
            resource,
        };
        m.configure_client_credentials(&config).map_err(|e| error(spec, e))?;
        // rmcp stores the token through `creds`.
        m.exchange_client_credentials(&config)
            .await
            .map_err(|e| refused(e.to_string()))?;
        tracing::debug!(server = %spec.id, method = method.as_str(), "got a token with client credentials");
        return Ok(());
    }
    let (_, auth) = authenticate(spec, cc, &creds, &metadata).await?;
    let ClientAuth::Assertion(signed) = auth else {
        return Err(error(spec, "private_key_jwt gave no assertion"));
    };
    let sent_resource = resource.filter(|_| !spec.oauth.omit_resource);
    let token = exchange_jwt(&metadata, &signed, &scopes, sent_resource.as_deref())
        .await
        .map_err(refused)?;
    save(spec, &creds, client_id, token, metadata.issuer.clone()).await?;
    tracing::debug!(server = %spec.id, method = method.as_str(), "got a token with client credentials");
    Ok(())
}

/// (received at, lifetime) of the stored token, in seconds, if it says.
async fn lifetime(creds: &ServerCredentials) -> Option<(u64, u64)> {
    let c = creds.load_fresh().await.ok()??;
    let v = serde_json::to_value(c.token_response.as_ref()?).ok()?;
    Some((c.token_received_at?, v.get("expires_in")?.as_u64()?))
}

/// Whether the stored token is there and has not run out.
pub async fn usable(creds: &ServerCredentials) -> bool {
    match creds.load_fresh().await {
        Ok(Some(c)) if c.token_response.is_some() => match lifetime(creds).await {
            Some((at, life)) => at + life > crate::util::now_unix() + 5,
            None => true,
        },
        _ => false,
    }
}

/// Get a new token with `fetch` at about 75 % of each one's lifetime, until
/// `cancel`, for any grant that gets a whole new token (client credentials,
/// enterprise). A failure is retried with backoff while the old token lasts;
/// the connection's requests read the store, so nothing reconnects.
pub async fn renew_with<F, Fut, E>(creds: &ServerCredentials, cancel: tokio_util::sync::CancellationToken, fetch: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut failures = 0u32;
    loop {
        let Some((received, expires_in)) = lifetime(creds).await else {
            return;
        };
        let wait = if failures == 0 {
            super::refresh::due_in(
                received,
                expires_in,
                crate::util::now_unix(),
                rand::random_range(0.0..1.0),
            )
        } else {
            crate::util::backoff(failures, Duration::from_secs(60)).max(Duration::from_secs(1))
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        match tokio::select! {
            _ = cancel.cancelled() => return,
            r = fetch() => r,
        } {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                tracing::warn!("cannot renew the token: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TokenAuthMethod as M;

    fn v(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_method_follows_the_server_and_the_configuration() {
        assert_eq!(choose(None, false, None), Ok(M::ClientSecretBasic));
        assert_eq!(
            choose(None, false, Some(&v(&["client_secret_post"]))),
            Ok(M::ClientSecretPost)
        );
        assert_eq!(
            choose(None, false, Some(&v(&["client_secret_basic", "client_secret_post"]))),
            Ok(M::ClientSecretBasic)
        );
        assert_eq!(
            choose(
                Some(M::ClientSecretPost),
                false,
                Some(&v(&["client_secret_basic", "client_secret_post"]))
            ),
            Ok(M::ClientSecretPost)
        );
        assert_eq!(choose(None, true, Some(&v(&["private_key_jwt"]))), Ok(M::PrivateKeyJwt));
        let e = choose(None, false, Some(&v(&["private_key_jwt"]))).unwrap_err();
        assert!(e.contains("accepts private_key_jwt"), "{e}");
        assert_eq!(choose(None, true, None), Ok(M::PrivateKeyJwt));
        assert_eq!(choose(Some(M::PrivateKeyJwt), true, None), Ok(M::PrivateKeyJwt));
    }

    #[test]
    fn algorithms_follow_the_list_and_the_key() {
        use Algorithm as A;
        assert_eq!(
            algorithms("-----BEGIN EC PRIVATE KEY-----", Some(&v(&["RS256", "ES256"]))),
            [A::ES256]
        );
        assert_eq!(
            algorithms("-----BEGIN PRIVATE KEY-----", Some(&v(&["RS256", "none", "ES256"]))),
            [A::RS256, A::ES256]
        );
        assert_eq!(algorithms("-----BEGIN RSA PRIVATE KEY-----", None), [A::RS256]);
    }

    /// Basic client authentication form-encodes id and secret before base64
    /// (RFC 6749 §2.3.1); `Debug` shows neither the secret nor an assertion.
    #[test]
    fn basic_auth_is_encoded_and_secrets_are_not_shown() {
        let b = ClientAuth::Basic {
            client_id: "conformance-test-xaa-client".into(),
            secret: "conformance-test-xaa-secret".into(),
        };
        assert_eq!(
            b.header().unwrap(),
            "Basic Y29uZm9ybWFuY2UtdGVzdC14YWEtY2xpZW50OmNvbmZvcm1hbmNlLXRlc3QteGFhLXNlY3JldA=="
        );
        assert!(b.form_fields().is_empty());
        let odd = ClientAuth::Basic {
            client_id: "a:b".into(),
            secret: "p w".into(),
        };
        assert_eq!(odd.header().unwrap(), "Basic YSUzQWI6cCt3");
        for a in [
            b,
            ClientAuth::Post {
                client_id: "c".into(),
                secret: "s3cret".into(),
            },
            ClientAuth::Assertion("eyJ.s3cret.sig".into()),
        ] {
            assert!(!format!("{a:?}").contains("secret"), "{a:?}");
        }
        assert_eq!(
            ClientAuth::Public { client_id: "c".into() }.form_fields(),
            [("client_id", "c".to_owned())]
        );
    }

    #[test]
    fn a_resource_must_name_the_server() {
        let url = "http://localhost:8/mcp";
        assert!(resource_matches(url, "http://localhost:8/mcp"));
        assert!(resource_matches(url, "http://localhost:8/"));
        assert!(resource_matches("https://a.example/x/mcp", "https://a.example/x"));
        assert!(!resource_matches(url, "http://localhost:8/mcp/"));
        assert!(!resource_matches(url, "http://localhost:9/mcp"));
        assert!(!resource_matches(url, "https://localhost:8/mcp"));
        assert!(!resource_matches("https://a.example/xy", "https://a.example/x"));
        assert!(!resource_matches(url, "https://sql.example.com/mcp"));
    }

    #[test]
    fn only_https_or_loopback_token_endpoints_get_credentials() {
        assert!(endpoint_allowed("https://as.example/token"));
        assert!(endpoint_allowed("http://127.0.0.1:9/token"));
        assert!(endpoint_allowed("http://localhost:9/token"));
        assert!(endpoint_allowed("http://[::1]:9/token"));
        assert!(!endpoint_allowed("http://as.example/token"));
        assert!(!endpoint_allowed("ftp://localhost/token"));
    }

    #[test]
    fn the_resource_metadata_url_is_read_from_a_challenge() {
        assert_eq!(
            resource_metadata_url(
                r#"Bearer error="invalid_token", resource_metadata="http://a/.well-known/x", scope="s""#
            ),
            Some("http://a/.well-known/x")
        );
        assert_eq!(
            resource_metadata_url("Bearer resource_metadata=http://a/x, scope=s"),
            Some("http://a/x")
        );
        assert_eq!(resource_metadata_url("Bearer"), None);
    }
}
