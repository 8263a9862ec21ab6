//! Self-test of the test authorization server (`common::auth`) with a plain HTTP client:
//! discovery, registration, PKCE code flow, protected MCP calls, refresh rotation, reuse
//! detection, forced failures, pre-registered confidential clients and step-up.

mod common;

use mcp_bridge::util::Locked;
use std::time::Duration;

use common::auth::{self, AuthServer, IssParam, ProtectedUpstream, Protection, TokenFailure};
use common::{Era, Now, TestServer, eventually_woken};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const T: Duration = Duration::from_secs(20);

// --- independent helpers (not shared with the server, so they cross-check it) ---

fn b64(data: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

fn b64url(data: &[u8]) -> String {
    b64(
        data,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        false,
    )
}

fn b64std(data: &[u8]) -> String {
    b64(
        data,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        true,
    )
}

/// A PKCE pair: (verifier, S256 challenge).
fn pkce() -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let verifier = b64url(&bytes);
    let challenge = b64url(&Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(T)
        .build()
        .unwrap()
}

fn encode(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

async fn get_json(url: &str) -> (u16, Value) {
    let r = http().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// POST a form to the token endpoint: (status, JSON body or Null, raw body).
async fn post_token(auth: &AuthServer, pairs: &[(&str, &str)], basic: Option<(&str, &str)>) -> (u16, Value, String) {
    let mut req = http()
        .post(auth.token_endpoint())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(pairs));
    if let Some((id, secret)) = basic {
        req = req.header(
            "authorization",
            format!("Basic {}", b64std(format!("{id}:{secret}").as_bytes())),
        );
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null), text)
}

async fn register(auth: &AuthServer, redirect: &str) -> String {
    let r = http()
        .post(auth.registration_endpoint())
        .json(&json!({
            "redirect_uris": [redirect],
            "application_type": "native",
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "client_name": "self-test",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let v: Value = r.json().await.unwrap();
    assert!(v.get("client_secret").is_none(), "public client gets no secret");
    assert_eq!(v["token_endpoint_auth_method"], "none");
    assert_eq!(v["application_type"], "native");
    v["client_id"].as_str().unwrap().to_owned()
}

fn authorize_url(
    auth: &AuthServer,
    client_id: &str,
    redirect: &str,
    challenge: &str,
    state: &str,
    resource: &str,
) -> String {
    let mut u = url::Url::parse(&auth.authorization_endpoint()).unwrap();
    u.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("state", state),
        ("scope", "mcp:read mcp:write offline_access"),
        ("resource", resource),
    ]);
    u.into()
}

/// Authorize (scripted consent) and return the code from the redirect.
async fn get_code(auth: &AuthServer, client_id: &str, redirect: &str, challenge: &str, resource: &str) -> String {
    let visit = auth::browse(
        &authorize_url(auth, client_id, redirect, challenge, "st-1", resource),
        false,
    )
    .await;
    assert_eq!(visit.authorize_status, 302);
    let loc = visit.location.clone().unwrap();
    assert!(loc.starts_with(redirect), "redirected to the requested redirect URI");
    assert_eq!(visit.param("state").as_deref(), Some("st-1"));
    assert_eq!(visit.param("iss").as_deref(), Some(auth.issuer.as_str()));
    visit.param("code").expect("code")
}

struct Tokens {
    access: String,
    refresh: String,
    expires_in: u64,
}

/// The whole browser flow for a public client: (client_id, redirect URI used, tokens).
async fn login(auth: &AuthServer, resource: &str) -> (String, String, Tokens) {
    let client_id = register(auth, "http://127.0.0.1:49152/callback").await;
    let redirect = "http://127.0.0.1:49152/callback";
    let (verifier, challenge) = pkce();
    let code = get_code(auth, &client_id, redirect, &challenge, resource).await;
    let (status, v, _) = post_token(
        auth,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("client_id", &client_id),
            ("code_verifier", &verifier),
            ("resource", resource),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "code exchange: {}", v["error"]);
    assert_eq!(v["token_type"], "Bearer");
    (
        client_id,
        redirect.to_owned(),
        Tokens {
            access: v["access_token"].as_str().unwrap().to_owned(),
            refresh: v["refresh_token"].as_str().unwrap().to_owned(),
            expires_in: v["expires_in"].as_u64().unwrap(),
        },
    )
}

async fn refresh(auth: &AuthServer, client_id: &str, rt: &str, resource: &str) -> (u16, Value, String) {
    post_token(
        auth,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", client_id),
            ("resource", resource),
        ],
        None,
    )
    .await
}

// --- MCP over HTTP by hand ---

fn mcp(url: &str, token: Option<&str>, method: reqwest::Method) -> reqwest::RequestBuilder {
    let mut r = http()
        .request(method, url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json");
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r
}

fn initialize() -> Value {
    json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "self-test", "version": "1" } } })
}

/// Read a (possibly SSE) body until it contains `needle`; bounded by `T`.
async fn read_until(mut r: reqwest::Response, needle: &str) -> String {
    let mut body = String::new();
    eventually_woken(&format!("{needle:?} in the body"), T, Now, async || {
        if body.contains(needle) {
            return Ok(());
        }
        match r.chunk().await {
            Ok(Some(c)) => body.push_str(&String::from_utf8_lossy(&c)),
            Ok(None) => return Ok(()),
            Err(e) => panic!("body error: {e}"),
        }
        Err(body.clone())
    })
    .await;
    body
}

/// initialize + notifications/initialized; returns the session id.
async fn open_session(url: &str, token: &str) -> String {
    let r = mcp(url, Some(token), reqwest::Method::POST)
        .json(&initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let session = r.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    read_until(r, "\"id\":1").await;
    let r = mcp(url, Some(token), reqwest::Method::POST)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    session
}

async fn call_echo(url: &str, token: &str, session: &str, text: &str) -> reqwest::Response {
    mcp(url, Some(token), reqwest::Method::POST)
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({ "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": { "name": "echo", "arguments": { "text": text } } }))
        .send()
        .await
        .unwrap()
}

fn www_auth(r: &reqwest::Response) -> String {
    r.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn init_status(up: &ProtectedUpstream, token: &str) -> (u16, String) {
    let r = mcp(&up.url, Some(token), reqwest::Method::POST)
        .json(&initialize())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), www_auth(&r))
}

fn setup() -> (AuthServer, ProtectedUpstream) {
    let auth = AuthServer::start();
    let up = auth::start_protected(TestServer::new(Era::Legacy, "locked"), &auth, Protection::default());
    (auth, up)
}

// --- tests ---

#[tokio::test]
async fn discovery_and_challenges() {
    let (auth, up) = setup();
    assert!(auth.issuer.starts_with("http://127.0.0.1:"));

    // RFC 8414 and OIDC discovery serve the same metadata.
    for url in [auth.metadata_url(), auth.oidc_url()] {
        let (status, m) = get_json(&url).await;
        assert_eq!(status, 200, "{url}");
        assert_eq!(m["issuer"], auth.issuer);
        assert_eq!(m["authorization_endpoint"], format!("{}/authorize", auth.issuer));
        assert_eq!(m["token_endpoint"], format!("{}/token", auth.issuer));
        assert_eq!(m["registration_endpoint"], format!("{}/register", auth.issuer));
        assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(m["response_types_supported"], json!(["code"]));
        assert_eq!(
            m["grant_types_supported"],
            json!([
                "authorization_code",
                "refresh_token",
                "client_credentials",
                "urn:ietf:params:oauth:grant-type:jwt-bearer"
            ])
        );
        assert_eq!(m["authorization_response_iss_parameter_supported"], true);
        assert!(
            m["scopes_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("offline_access"))
        );
    }

    // Toggles.
    auth.set_code_challenge_methods(None);
    auth.set_iss(None, IssParam::Omit);
    auth.set_registration(false);
    let (_, m) = get_json(&auth.metadata_url()).await;
    assert!(m.get("code_challenge_methods_supported").is_none());
    assert!(m.get("authorization_response_iss_parameter_supported").is_none());
    assert!(m.get("registration_endpoint").is_none());
    auth.set_code_challenge_methods(Some(&["plain"]));
    auth.configure(|c| c.metadata_issuer_override = Some("http://127.0.0.1:1".into()));
    let (_, m) = get_json(&auth.metadata_url()).await;
    assert_eq!(m["code_challenge_methods_supported"], json!(["plain"]));
    assert_eq!(m["issuer"], "http://127.0.0.1:1");
    auth.configure(|c| c.serve_rfc8414 = false);
    assert_eq!(get_json(&auth.metadata_url()).await.0, 404);
    assert_eq!(get_json(&auth.oidc_url()).await.0, 200);

    // Protected resource metadata (RFC 9728, path insertion).
    let prm_url = up.url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp");
    assert_eq!(up.guard.metadata_url, prm_url);
    let (status, prm) = get_json(&prm_url).await;
    assert_eq!(status, 200);
    assert_eq!(prm["resource"], up.url);
    assert_eq!(prm["authorization_servers"], json!([auth.issuer]));
    assert_eq!(prm["scopes_supported"], json!(["mcp:read", "mcp:write"]));
    let root = up.url.replace("/mcp", "/.well-known/oauth-protected-resource");
    assert_eq!(get_json(&root).await.0, 404);

    // No token: 401 with the challenge, on POST, GET and DELETE alike.
    let expected = format!("Bearer resource_metadata=\"{prm_url}\", scope=\"mcp:read\"");
    for method in [reqwest::Method::POST, reqwest::Method::GET, reqwest::Method::DELETE] {
        let r = mcp(&up.url, None, method.clone())
            .json(&initialize())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{method}");
        assert_eq!(www_auth(&r), expected, "{method}");
    }
    // A bad token: 401 with error="invalid_token".
    let (status, challenge) = init_status(&up, "not-a-token").await;
    assert_eq!(status, 401);
    assert_eq!(
        challenge,
        format!("Bearer error=\"invalid_token\", resource_metadata=\"{prm_url}\", scope=\"mcp:read\"")
    );
    let ev = up.guard.events();
    assert_eq!(ev.len(), 4);
    assert!(ev.iter().all(|e| e.status == 401));
    assert_eq!(ev[3].problem.as_deref(), Some("unknown"));
    assert!(ev[3].had_token && !ev[0].had_token);
    assert_eq!(ev[0].rpc_method.as_deref(), Some("initialize"));
    // The TestServer probe still records every HTTP request (PRM and /mcp).
    assert!(up.server.probe.http.locked().len() >= 6);
}

#[tokio::test]
async fn authorization_code_flow_with_pkce() {
    let (auth, up) = setup();
    let registered = "http://127.0.0.1:49152/callback";
    let client_id = register(&auth, registered).await;
    let regs = auth.registrations();
    assert_eq!(regs.len(), 1);
    assert_eq!(regs[0].client_id.as_deref(), Some(client_id.as_str()));
    assert_eq!(regs[0].request["application_type"], "native");
    assert!(!regs[0].confidential);

    // Loopback redirect on another port is accepted (RFC 8252 §7.3).
    let redirect = "http://127.0.0.1:55555/callback";
    let (verifier, challenge) = pkce();
    let code = get_code(&auth, &client_id, redirect, &challenge, &up.url).await;
    let a = auth.authorize_requests();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].outcome, "code");
    assert_eq!(a[0].resource(), Some(up.url.as_str()));
    assert_eq!(a[0].param("code_challenge_method"), Some("S256"));
    assert_eq!(a[0].param("code_challenge"), Some(challenge.as_str()));

    // Wrong verifier: invalid_grant (and the code is spent).
    let exchange = |code: String, verifier: String, redirect: &'static str| {
        let (auth, client_id, url) = (&auth, client_id.clone(), up.url.clone());
        async move {
            post_token(
                auth,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", redirect),
                    ("client_id", &client_id),
                    ("code_verifier", &verifier),
                    ("resource", &url),
                ],
                None,
            )
            .await
        }
    };
    let (status, v, _) = exchange(code.clone(), pkce().0, redirect).await;
    assert_eq!((status, v["error"].as_str()), (400, Some("invalid_grant")));
    let (status, v, _) = exchange(code, verifier, redirect).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "single use"
    );

    // Right verifier, but a redirect_uri differing from the authorization request's.
    let (verifier, challenge) = pkce();
    let code = get_code(&auth, &client_id, redirect, &challenge, &up.url).await;
    let (status, v, _) = exchange(code, verifier, registered).await;
    assert_eq!((status, v["error"].as_str()), (400, Some("invalid_grant")));

    // The real thing.
    let (verifier, challenge) = pkce();
    let code = get_code(&auth, &client_id, redirect, &challenge, &up.url).await;
    let (status, v, raw) = exchange(code.clone(), verifier.clone(), redirect).await;
    assert_eq!(status, 200, "{}", v["error"]);
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3600);
    assert_eq!(v["scope"], "mcp:read mcp:write offline_access");
    let access = v["access_token"].as_str().unwrap().to_owned();
    assert!(v["refresh_token"].is_string());
    assert!(auth.issued_secrets().contains(&access));
    let last = auth.token_requests().pop().unwrap();
    assert!(last.ok());
    assert_eq!(last.grant_type.as_deref(), Some("authorization_code"));
    assert_eq!(last.resource.as_deref(), Some(up.url.as_str()));
    // Logs and Debug output never contain token values.
    assert!(!format!("{:?}", auth.log()).contains(&access));
    assert!(!format!("{:?}", up.guard.events()).contains(&access));
    assert!(raw.contains(&access));

    // A protected MCP session works with the token: initialize, initialized, tools/call.
    let session = open_session(&up.url, &access).await;
    let r = call_echo(&up.url, &access, &session, "through the guard").await;
    assert_eq!(r.status().as_u16(), 200);
    let body = read_until(r, "through the guard").await;
    assert!(body.contains("\"id\":7"));
    let ok: Vec<_> = up.guard.events().into_iter().filter(|e| e.status < 300).collect();
    assert_eq!(ok.len(), 3);
    assert!(ok.iter().all(|e| e.had_token && e.grant_id.is_some()));
    assert_eq!(ok[2].tool.as_deref(), Some("echo"));
    // DELETE of the session also needs (and gets through with) the token.
    let r = mcp(&up.url, Some(&access), reqwest::Method::DELETE)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let r = mcp(&up.url, None, reqwest::Method::DELETE)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // Replaying a spent code revokes the tokens issued from it.
    let (status, v, _) = exchange(code, verifier, redirect).await;
    assert_eq!((status, v["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(auth.log().code_reuses, 2);
    let (status, challenge) = init_status(&up, &access).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("error=\"invalid_token\""));
    assert_eq!(up.guard.events().last().unwrap().problem.as_deref(), Some("revoked"));

    // Errors: unknown redirect URI and unknown client get a page, not a redirect.
    let (_, challenge) = pkce();
    let v = auth::browse(
        &authorize_url(&auth, &client_id, "https://evil.example/cb", &challenge, "s", &up.url),
        true,
    )
    .await;
    assert_eq!((v.authorize_status, v.location.is_none()), (400, true));
    let v = auth::browse(
        &authorize_url(&auth, "nobody", redirect, &challenge, "s", &up.url),
        true,
    )
    .await;
    assert_eq!((v.authorize_status, v.location.is_none()), (400, true));
    // Scripted denial: redirect with error=access_denied, state and iss.
    auth.set_deny(true);
    let v = auth::browse(
        &authorize_url(&auth, &client_id, redirect, &challenge, "s-9", &up.url),
        false,
    )
    .await;
    assert_eq!(v.authorize_status, 302);
    assert_eq!(v.param("error").as_deref(), Some("access_denied"));
    assert_eq!(v.param("state").as_deref(), Some("s-9"));
    assert_eq!(v.param("iss").as_deref(), Some(auth.issuer.as_str()));
    assert!(v.param("code").is_none());
    // A wrong iss on demand.
    auth.set_deny(false);
    auth.set_iss(Some(true), IssParam::Wrong("http://127.0.0.1:9".into()));
    let v = auth::browse(
        &authorize_url(&auth, &client_id, redirect, &challenge, "s", &up.url),
        false,
    )
    .await;
    assert_eq!(v.param("iss").as_deref(), Some("http://127.0.0.1:9"));
    // S256 not accepted when the AS only does plain.
    auth.set_code_challenge_methods(Some(&["plain"]));
    let v = auth::browse(
        &authorize_url(&auth, &client_id, redirect, &challenge, "s", &up.url),
        false,
    )
    .await;
    assert_eq!(v.param("error").as_deref(), Some("invalid_request"));
    let outcomes: Vec<String> = auth.authorize_requests().into_iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes[3..],
        [
            "invalid_redirect_uri",
            "invalid_client",
            "access_denied",
            "code",
            "invalid_request"
        ]
    );
}

#[tokio::test]
async fn refresh_rotation_and_reuse_detection() {
    let (auth, up) = setup();
    auth.set_access_lifetime(2);
    let (client_id, _, t0) = login(&auth, &up.url).await;
    assert_eq!(t0.expires_in, 2);
    assert_eq!(init_status(&up, &t0.access).await.0, 200);

    // Rotation: a new pair each time.
    let (status, v, _) = refresh(&auth, &client_id, &t0.refresh, &up.url).await;
    assert_eq!(status, 200, "{}", v["error"]);
    let (at1, rt1) = (
        v["access_token"].as_str().unwrap(),
        v["refresh_token"].as_str().unwrap(),
    );
    assert_ne!(rt1, t0.refresh);
    assert_ne!(at1, t0.access);
    assert_eq!(v["expires_in"], 2);
    let last = auth.token_requests().pop().unwrap();
    assert_eq!(last.grant_type.as_deref(), Some("refresh_token"));
    assert_eq!(last.resource.as_deref(), Some(up.url.as_str()));
    assert_eq!(last.refresh_generation, Some(0));
    assert_eq!(init_status(&up, at1).await.0, 200);

    // Expiry, without waiting: every access token so far expires now.
    auth.expire_access_tokens();
    let (status, challenge) = init_status(&up, at1).await;
    assert_eq!(status, 401);
    assert!(challenge.starts_with("Bearer error=\"invalid_token\""));
    assert_eq!(up.guard.events().last().unwrap().problem.as_deref(), Some("expired"));

    // A broader scope on refresh is refused, and does not consume the refresh token.
    let (status, v, _) = post_token(
        &auth,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt1),
            ("client_id", &client_id),
            ("scope", "mcp:admin"),
        ],
        None,
    )
    .await;
    assert_eq!((status, v["error"].as_str()), (400, Some("invalid_scope")));
    // Narrowing is fine.
    let (status, v, _) = post_token(
        &auth,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt1),
            ("client_id", &client_id),
            ("scope", "mcp:read"),
            ("resource", &up.url),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{}", v["error"]);
    assert_eq!(v["scope"], "mcp:read");
    let (at2, rt2) = (
        v["access_token"].as_str().unwrap(),
        v["refresh_token"].as_str().unwrap(),
    );
    assert_eq!(init_status(&up, at2).await.0, 200);
    assert_eq!(auth.log().refreshes(), 2);

    // Reuse of the rotated-away rt1: invalid_grant, and the whole grant dies.
    let (status, v, _) = refresh(&auth, &client_id, rt1, &up.url).await;
    assert_eq!((status, v["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(auth.reuse_detections(), 1);
    let grant = auth.token_requests().pop().unwrap().grant_id.unwrap();
    assert!(auth.grants()[grant as usize].revoked);
    assert_eq!(auth.grants()[grant as usize].refreshes, 2);
    let (status, challenge) = init_status(&up, at2).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("invalid_token"));
    let (status, v, _) = refresh(&auth, &client_id, rt2, &up.url).await;
    assert_eq!((status, v["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(
        auth.reuse_detections(),
        1,
        "a revoked grant's live token is not a reuse"
    );

    // Without rotation: no new refresh token, the old one stays valid.
    auth.configure(|c| c.rotate_refresh_tokens = false);
    let (client_id, _, t) = login(&auth, &up.url).await;
    for _ in 0..2 {
        let (status, v, _) = refresh(&auth, &client_id, &t.refresh, &up.url).await;
        assert_eq!(status, 200);
        assert!(v.get("refresh_token").is_none());
    }
    // Revoking a grant by hand.
    let grant = auth.token_requests().pop().unwrap().grant_id.unwrap();
    auth.revoke_grant(grant);
    let (status, v, _) = refresh(&auth, &client_id, &t.refresh, &up.url).await;
    assert_eq!((status, v["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn forced_failures() {
    let (auth, up) = setup();
    let (client_id, _, t) = login(&auth, &up.url).await;

    auth.fail_next_token_requests(1, TokenFailure::TemporarilyUnavailable);
    auth.fail_next_token_requests(1, TokenFailure::ServerError);
    auth.fail_next_token_requests(1, TokenFailure::InvalidGrant);
    auth.fail_next_token_requests(1, TokenFailure::InvalidClient);
    assert_eq!(auth.pending_failures(), 4);

    let (status, v, _) = refresh(&auth, &client_id, &t.refresh, &up.url).await;
    assert_eq!((status, v["error"].as_str()), (503, Some("temporarily_unavailable")));
    let (status, v, raw) = refresh(&auth, &client_id, &t.refresh, &up.url).await;
    assert_eq!((status, &v), (500, &Value::Null), "a 500 with a non-JSON body: {raw}");
    let (status, v, _) = refresh(&auth, &client_id, &t.refresh, &up.url).await;
    assert_eq!((status, v["error"].as_str()), (400, Some("invalid_grant")));
    let (status, v, _) = refresh(&auth, &client_id, &t.refresh, &up.url).await;
    assert_eq!((status, v["error"].as_str()), (401, Some("invalid_client")));
    // Forced failures consume nothing: the refresh token still works.
    let (status, v, _) = refresh(&auth, &client_id, &t.refresh, &up.url).await;
    assert_eq!(status, 200, "{}", v["error"]);
    let errors: Vec<_> = auth
        .token_requests()
        .iter()
        .skip(1)
        .map(|t| (t.status, t.error.clone(), t.forced))
        .collect();
    assert_eq!(
        errors,
        [
            (503, Some("temporarily_unavailable".into()), true),
            (500, Some("server_error".into()), true),
            (400, Some("invalid_grant".into()), true),
            (401, Some("invalid_client".into()), true),
            (200, None, false),
        ]
    );
    assert_eq!(auth.reuse_detections(), 0);

    // Waiting on the log (bounded, wakes on change): a refresh done by another task.
    let rt = v["refresh_token"].as_str().unwrap().to_owned();
    let state = auth.state.clone();
    let (url, cid) = (up.url.clone(), client_id.clone());
    let task = tokio::spawn(async move {
        let body = encode(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", &cid),
            ("resource", &url),
        ]);
        http()
            .post(state.token_endpoint())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
    });
    let n = auth
        .wait_until("a second refresh", T, |l| (l.refreshes() >= 2).then_some(l.refreshes()))
        .await;
    assert_eq!(n, 2);
    assert_eq!(task.await.unwrap().as_u16(), 200);
}

#[tokio::test]
async fn pre_registered_confidential_client_and_step_up() {
    let (auth, up) = setup();
    auth.set_registration(false);
    let r = http()
        .post(auth.registration_endpoint())
        .json(&json!({ "redirect_uris": ["http://127.0.0.1:1/cb"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(auth.registrations()[0].status, 404);

    let redirect = "http://127.0.0.1:7777/cb";
    auth.pre_register("pre-1", Some("s3cret"), &[redirect]);
    let (verifier, challenge) = pkce();
    let code = get_code(&auth, "pre-1", redirect, &challenge, &up.url).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect),
        ("code_verifier", verifier.as_str()),
        ("resource", up.url.as_str()),
    ];
    // No client authentication: refused without spending the code.
    let (status, v, _) = post_token(&auth, &[&form[..], &[("client_id", "pre-1")]].concat(), None).await;
    assert_eq!((status, v["error"].as_str()), (401, Some("invalid_client")));
    let (status, v, _) = post_token(&auth, &form, Some(("pre-1", "s3cret"))).await;
    assert_eq!(status, 200, "{}", v["error"]);
    let access = v["access_token"].as_str().unwrap().to_owned();
    let info = auth.introspect(&access).unwrap();
    assert_eq!(info.client_id, "pre-1");
    assert_eq!(info.resource.as_deref(), Some(up.url.as_str()));
    assert_eq!(info.scope, ["mcp:read", "mcp:write", "offline_access"]);

    // Step-up: echo now needs mcp:admin.
    let session = open_session(&up.url, &access).await;
    up.guard.set_tool_scope("echo", "mcp:admin");
    let r = call_echo(&up.url, &access, &session, "x").await;
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(
        www_auth(&r),
        format!(
            "Bearer error=\"insufficient_scope\", resource_metadata=\"{}\", scope=\"mcp:read mcp:admin\"",
            up.guard.metadata_url
        )
    );
    // A token with the bigger scope gets through.
    let big = auth.issue_tokens("pre-1", &["mcp:read", "mcp:admin"], Some(&up.url));
    assert!(!format!("{big:?}").contains(&big.access_token));
    let r = call_echo(&up.url, &big.access_token, &session, "stepped up").await;
    assert_eq!(r.status().as_u16(), 200);
    read_until(r, "stepped up").await;

    // Audience: a token for another resource is refused; without a resource only when strict.
    let other = auth.issue_tokens("pre-1", &["mcp:read"], Some("http://127.0.0.1:1/mcp"));
    assert_eq!(init_status(&up, &other.access_token).await.0, 401);
    assert_eq!(up.guard.events().last().unwrap().problem.as_deref(), Some("audience"));
    let none = auth.issue_tokens("pre-1", &["mcp:read"], None);
    assert_eq!(init_status(&up, &none.access_token).await.0, 200);
    up.guard.configure(|p| p.strict_audience = true);
    assert_eq!(init_status(&up, &none.access_token).await.0, 401);

    // Removing the client kills its tokens and the token endpoint says invalid_client.
    auth.remove_client("pre-1");
    assert_eq!(init_status(&up, &big.access_token).await.0, 401);
    let (status, v, _) = post_token(
        &auth,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", big.refresh_token.as_deref().unwrap()),
        ],
        Some(("pre-1", "s3cret")),
    )
    .await;
    assert_eq!((status, v["error"].as_str()), (401, Some("invalid_client")));
}

#[tokio::test]
async fn restart_keeps_state() {
    let (mut auth, up) = setup();
    let t = auth.issue_tokens("anyone", &["mcp:read"], Some(&up.url));
    let port = auth.addr.port();
    auth.stop();
    assert!(http().get(auth.metadata_url()).send().await.is_err());
    // Introspection does not need the AS to be up.
    assert_eq!(init_status(&up, &t.access_token).await.0, 200);
    auth.restart();
    assert_eq!(auth.addr.port(), port);
    assert_eq!(get_json(&auth.metadata_url()).await.0, 200);
}
