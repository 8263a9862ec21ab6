//! The client credentials grant (RFC 6749 §4.4, MCP SEP-1046) for agents and CI:
//! tokens with no browser and no refresh token. Discovery as for a login (the
//! server's 401, its protected resource metadata, the authorization server's
//! metadata), then one `POST` to the token endpoint, authenticated with
//! `client_secret_basic`, `client_secret_post` or `private_key_jwt` (RFC 7523: a
//! fresh assertion per request, `aud` = the issuer). The token lands in the
//! credential store like a login's; [`renew`] gets a new one before it expires.
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
use crate::registry::ServerSpec;

/// Why no token could be had. The text names the server and what to fix, and
/// holds no secret (rmcp's messages carry the server's `error` and
/// `error_description`, never the request).
#[derive(Debug, thiserror::Error)]
#[error("server {server}: {message}")]
pub struct Error {
    pub server: String,
    pub message: String,
}

fn error(spec: &ServerSpec, message: impl std::fmt::Display) -> Error {
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

/// Whether `pem` is a private key an assertion can be signed with.
pub fn check_key(pem: &str) -> Result<(), String> {
    let b = pem.as_bytes();
    let fits = jsonwebtoken::EncodingKey::from_ec_pem(b).is_ok() || jsonwebtoken::EncodingKey::from_rsa_pem(b).is_ok();
    fits.then_some(())
        .ok_or_else(|| "not a PEM private key (PKCS#8, SEC1 EC or PKCS#1 RSA)".to_owned())
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

/// `private_key_jwt` token request: the assertion in the body, no `client_id`
/// (RFC 7523 §3: the assertion's `sub` names the client).
async fn exchange_jwt(
    metadata: &AuthorizationMetadata,
    assertion: &str,
    scopes: &[String],
    resource: Option<&str>,
) -> Result<OAuthTokenResponse, String> {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion),
    ];
    let scope = scopes.join(" ");
    if !scope.is_empty() {
        form.push(("scope", &scope));
    }
    if let Some(r) = resource {
        form.push(("resource", r));
    }
    // Built before any await: the serializer is not `Send`.
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&form)
        .finish();
    let client = crate::net::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client
        .post(&metadata.token_endpoint)
        .header("accept", "application/json")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("cannot reach the token endpoint {}: {e}", metadata.token_endpoint))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(crate::util::printable);
        return Err(match (field("error"), field("error_description")) {
            (Some(e), Some(d)) => format!("HTTP {status}: {e}: {d}"),
            (Some(e), None) => format!("HTTP {status}: {e}"),
            _ => format!("HTTP {status}"),
        });
    }
    serde_json::from_slice(&body).map_err(|e| format!("the token endpoint's answer is not a token response: {e}"))
}

/// `metadata` listing only `method`, so that rmcp authenticates that way.
fn narrow(metadata: &mut AuthorizationMetadata, method: TokenAuthMethod) {
    metadata.additional_fields.insert(
        "token_endpoint_auth_methods_supported".into(),
        serde_json::json!([method.as_str()]),
    );
}

fn listed(metadata: &AuthorizationMetadata, field: &str) -> Option<Vec<String>> {
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
async fn resource(spec: &ServerSpec, challenge: Option<&str>) -> String {
    let from_prm = async {
        let url = challenge.and_then(resource_metadata_url)?;
        let client = crate::net::builder().build().ok()?;
        let doc: serde_json::Value = client.get(url).send().await.ok()?.json().await.ok()?;
        doc.get("resource")?.as_str().map(str::to_owned)
    };
    from_prm.await.unwrap_or_else(|| spec.url.clone())
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
    let challenge = oauth::challenge(&spec.url).await.map_err(|e| error(spec, e))?;
    let mut m = oauth::manager(&spec.url, creds.clone(), !spec.oauth.omit_resource)
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
                "{} names no authorization server metadata: client credentials need its token endpoint",
                spec.url
            ),
        ));
    }
    let mut metadata = meta.metadata;
    let methods = listed(&metadata, "token_endpoint_auth_methods_supported");
    // A key set with `mcp-bridge auth set --private-key` stands for a key file.
    let stored_key = match &cc.private_key_file {
        Some(_) => None,
        None => creds.entry().await.and_then(|e| e.private_key),
    };
    let has_key = cc.private_key_file.is_some() || stored_key.is_some();
    let method = choose(cc.method, has_key, methods.as_deref()).map_err(|e| error(spec, e))?;
    let resource = Some(resource(spec, challenge.as_deref()).await);
    let scopes = spec.oauth.scopes.clone();
    if !endpoint_allowed(&metadata.token_endpoint) {
        return Err(error(
            spec,
            format!(
                "the token endpoint {} is not HTTPS: client credentials are sent only over HTTPS (or to loopback)",
                metadata.token_endpoint
            ),
        ));
    }
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
    let key = match (&cc.private_key_file, stored_key) {
        (Some(path), _) => {
            let (path, shown) = (path.clone(), path.display().to_string());
            tokio::task::spawn_blocking(move || std::fs::read(&path))
                .await
                .map_err(|e| error(spec, e))?
                .map_err(|e| error(spec, format!("cannot read oauth.private_key_file {shown}: {e}")))?
        }
        (None, Some(pem)) => pem.into_bytes(),
        (None, None) => {
            return Err(error(
                spec,
                format!(
                    "private_key_jwt needs a key: set oauth.private_key_file, or store one with `mcp-bridge auth set {} --private-key < key.pem`",
                    spec.id
                ),
            ));
        }
    };
    let issuer = metadata.issuer.clone().ok_or_else(|| {
        error(
            spec,
            "the authorization server's metadata has no issuer, which private_key_jwt needs as the audience",
        )
    })?;
    let algs = algorithms(
        &String::from_utf8_lossy(&key),
        listed(&metadata, "token_endpoint_auth_signing_alg_values_supported").as_deref(),
    );
    // The first algorithm the key signs with (a PKCS#8 PEM does not say its type).
    let signed = algs
        .iter()
        .map(|alg| assertion(&client_id, &issuer, &key, *alg, crate::util::now_unix()))
        .reduce(|a, b| a.or(b))
        .unwrap_or_else(|| {
            Err("the authorization server lists no signing algorithm this key can use (ES256, ES384, RS256, RS384, RS512)".into())
        })
        .map_err(|e| error(spec, e))?;
    let sent_resource = resource.filter(|_| !spec.oauth.omit_resource);
    let token = exchange_jwt(&metadata, &signed, &scopes, sent_resource.as_deref())
        .await
        .map_err(refused)?;
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
            StoredCredentials::new(client_id, Some(token), granted, Some(crate::util::now_unix()))
                .with_issuer(Some(issuer)),
        )
        .await
        .map_err(|e| error(spec, format!("cannot store the token: {e}")))?;
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

/// Get a new token at about 75 % of each one's lifetime, until `cancel`. A
/// failure is retried with backoff while the old token lasts; the connection's
/// requests read the store, so nothing reconnects.
pub async fn renew(spec: ServerSpec, creds: ServerCredentials, cancel: tokio_util::sync::CancellationToken) {
    let mut failures = 0u32;
    loop {
        let Some((received, expires_in)) = lifetime(&creds).await else {
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
            r = fetch(&spec, creds.clone()) => r,
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
