//! End to end: servers reached with the client credentials grant (`oauth.grant =
//! "client_credentials"`), as agents and CI use them: the bridge, spawned as a binary
//! and driven by a real MCP client, gets its tokens from the test authorization server
//! with `client_secret_basic`, `client_secret_post` or `private_key_jwt` (every check of
//! the assertion recorded by the server), gets a new one when a token is refused, never
//! opens a browser, says precisely what is wrong when the server refuses the
//! credentials (the other servers serve on), and writes no secret anywhere but the
//! credential store.

mod common;

use std::path::Path;
use std::time::Duration;

use common::auth::*;
use common::interop::fake_browser;
use common::jwt::EcKey;
use common::*;
use serde_json::{Value, json};

const CLIENT: &str = "ci-bot";
/// Characters that RFC 6749 §2.3.1's form-encoding of Basic credentials changes: a
/// client that skips the encoding fails here.
const SECRET: &str = "cc s3cret/+:&=%~";
const SECRET_ENV: &str = "CI_SECRET";

/// An authorization server that accepts only `methods` at its token endpoint.
fn auth_server(methods: &[&str]) -> AuthServer {
    let auth = AuthServer::start();
    auth.configure(|c| c.token_auth_methods = strings(methods));
    auth
}

/// The `[servers.oauth]` lines of a client-credentials server.
fn cc_oauth(method: &str, key_file: Option<&Path>) -> String {
    match key_file {
        Some(k) => format!(
            "grant = \"client_credentials\"\nclient_id = \"{CLIENT}\"\ntoken_endpoint_auth_method = \"{method}\"\nprivate_key_file = \"{}\"\n",
            k.display()
        ),
        None => format!(
            "grant = \"client_credentials\"\nclient_id = \"{CLIENT}\"\nclient_secret_env = \"{SECRET_ENV}\"\ntoken_endpoint_auth_method = \"{method}\"\n"
        ),
    }
}

/// A config of `(name, url, oauth lines or "")` servers.
fn write_config(home: &Home, servers: &[(&str, &str, String)], extra: &str) {
    let mut s = String::from(extra);
    for (name, url, oauth) in servers {
        s.push_str(&format!("\n[[servers]]\nname = \"{name}\"\nurl = \"{url}\"\n"));
        if !oauth.is_empty() {
            s.push_str(&format!("[servers.oauth]\n{oauth}"));
        }
    }
    home.write_config(&s);
}

/// `serve` with the secret in its environment and a `$BROWSER` that records what it
/// is asked to open (the file it writes must never appear).
async fn serve(home: &Home, secret: &str) -> (Client, tokio::sync::mpsc::UnboundedReceiver<Seen>) {
    let (browser, _) = fake_browser(home.path());
    spawn_bridge_env(
        home,
        &[],
        &[(SECRET_ENV, Some(secret)), ("BROWSER", Some(browser.to_str().unwrap()))],
    )
    .await
}

fn no_browser_opened(home: &Home) {
    assert!(
        !home.path().join("opened-url.txt").exists(),
        "a browser was opened for a client-credentials server"
    );
}

/// A private key in its own directory (never under the bridge's home, whose files
/// the redaction checks read).
fn key_file(key: &EcKey) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.pem");
    std::fs::write(&path, key.private_pem()).unwrap();
    (dir, path)
}

/// Call `name` until it succeeds (bounded): a token the server refused is replaced
/// on the bridge's next connection, which the first call may not wait for (see
/// `the_call_after_a_refused_token_succeeds`).
async fn call_eventually(client: &Client, name: &str, args: Value) -> rmcp::model::CallToolResult {
    eventually_woken(
        &format!("a call to {name} to succeed"),
        Duration::from_secs(10),
        Every(Duration::from_millis(200)),
        async || {
            client
                .call_tool(params(name, args.clone()))
                .await
                .map_err(|e| e.to_string())
        },
    )
    .await
}

fn form_body(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn cc_requests(auth: &AuthServer) -> Vec<TokenRequest> {
    auth.token_requests()
        .into_iter()
        .filter(|t| t.grant_type.as_deref() == Some("client_credentials"))
        .collect()
}

/// `client_secret_basic`: one token request with the secret form-encoded in Basic, the
/// resource named; tools listed and called; no browser, no registration, no authorize.
#[tokio::test]
async fn client_secret_basic() {
    let auth = auth_server(&["client_secret_basic"]);
    auth.pre_register(CLIENT, Some(SECRET), &[]);
    let up = start_protected(TestServer::new(Era::Modern, "ci"), &auth, Protection::default());
    let home = Home::new();
    write_config(&home, &[("ci", &up.url, cc_oauth("client_secret_basic", None))], "");
    let (client, mut seen) = serve(&home, SECRET).await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"echo".into())).await;
    let r = client.call_tool(params("whoami", json!({}))).await.unwrap();
    assert_eq!(first_text(&r), "ci");

    let cc = cc_requests(&auth);
    assert_eq!(cc.len(), 1, "{cc:?}");
    assert!(cc[0].ok(), "{cc:?}");
    assert_eq!(cc[0].auth_method.as_deref(), Some("client_secret_basic"));
    assert_eq!(cc[0].client_id.as_deref(), Some(CLIENT));
    assert_eq!(cc[0].resource.as_deref(), Some(up.url.as_str()));
    let log = auth.log();
    assert_eq!(log.tokens.len(), 1, "no other token request: {:?}", log.tokens);
    assert!(log.authorizations.is_empty() && log.registrations.is_empty());
    assert!(up.guard.events().iter().any(|e| e.had_token && e.status == 200));
    no_browser_opened(&home);
    client.cancel().await.unwrap();
}

/// `client_secret_post`, when configured and listed: the secret in the body.
#[tokio::test]
async fn client_secret_post() {
    let auth = auth_server(&["client_secret_basic", "client_secret_post"]);
    auth.pre_register(CLIENT, Some(SECRET), &[]);
    let up = start_protected(TestServer::new(Era::Legacy, "ci"), &auth, Protection::default());
    let home = Home::new();
    write_config(&home, &[("ci", &up.url, cc_oauth("client_secret_post", None))], "");
    let (client, mut seen) = serve(&home, SECRET).await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"echo".into())).await;
    let r = client
        .call_tool(params("echo", json!({"text": "posted"})))
        .await
        .unwrap();
    assert_eq!(first_text(&r), "posted");
    let cc = cc_requests(&auth);
    assert_eq!(cc.len(), 1, "{cc:?}");
    assert!(cc[0].ok(), "{cc:?}");
    assert_eq!(cc[0].auth_method.as_deref(), Some("client_secret_post"));
    no_browser_opened(&home);
    client.cancel().await.unwrap();
}

/// `private_key_jwt`: the server checks the assertion's signature, `iss` = `sub` = the
/// client, `aud` = exactly its issuer (one string, not the token endpoint), `exp` soon,
/// and a `jti` never seen; a second token request (after the server expired the first
/// token) carries a fresh assertion with another `jti`, and no browser ever opens.
#[tokio::test]
async fn private_key_jwt_assertions_are_checked() {
    let auth = auth_server(&["private_key_jwt"]);
    let key = EcKey::generate();
    auth.pre_register_jwt(CLIENT, key.decoding());
    let up = start_protected(TestServer::new(Era::Modern, "ci"), &auth, Protection::default());
    let (_dir, path) = key_file(&key);
    let home = Home::new();
    write_config(
        &home,
        &[("ci", &up.url, cc_oauth("private_key_jwt", Some(&path)))],
        "[timeouts]\nbackoff_max = 1\n",
    );
    let (client, mut seen) = serve(&home, "").await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"echo".into())).await;
    let r = client.call_tool(params("whoami", json!({}))).await.unwrap();
    assert_eq!(first_text(&r), "ci");

    let checks = auth.assertion_checks();
    assert_eq!(checks.len(), 1, "{checks:?}");
    let first = &checks[0];
    assert!(first.ok(), "{first:?}");
    assert!(first.signature, "{first:?}");
    assert_eq!(first.alg.as_deref(), Some("ES256"));
    assert_eq!(first.iss_value.as_deref(), Some(CLIENT));
    assert_eq!(first.sub_value.as_deref(), Some(CLIENT));
    assert_eq!(first.aud_value, json!(auth.issuer), "aud is the issuer, as a string");
    assert!(
        first.exp_in.is_some_and(|e| e > 0 && e <= 600),
        "a short-lived assertion: {first:?}"
    );
    assert!(first.jti.is_some());
    let cc = cc_requests(&auth);
    assert_eq!(cc[0].auth_method.as_deref(), Some("private_key_jwt"));
    assert_eq!(cc[0].resource.as_deref(), Some(up.url.as_str()));

    // The server expires the token: the next call gets a new one, with a new assertion.
    auth.expire_access_tokens();
    let r = call_eventually(&client, "echo", json!({"text": "again"})).await;
    assert_eq!(first_text(&r), "again");
    let checks = auth.assertion_checks();
    assert_eq!(checks.len(), 2, "{checks:?}");
    assert!(checks[1].ok(), "{:?}", checks[1]);
    assert_ne!(checks[0].jti, checks[1].jti, "each assertion has its own jti");
    assert!(auth.authorize_requests().is_empty());
    no_browser_opened(&home);
    client.cancel().await.unwrap();
}

/// The test server is an honest judge of assertions: a replayed `jti`, the token
/// endpoint as `aud`, an expired or far-future `exp`, a wrong `iss` and another key
/// are each refused with `invalid_client`, and the failing check is recorded.
#[tokio::test]
async fn the_test_server_refuses_bad_assertions() {
    let auth = auth_server(&["private_key_jwt"]);
    let key = EcKey::generate();
    auth.pre_register_jwt(CLIENT, key.decoding());
    let now = common::jwt::now();
    let claims = |f: &dyn Fn(&mut Value)| {
        let mut c = json!({
            "iss": CLIENT, "sub": CLIENT, "aud": auth.issuer,
            "iat": now, "exp": now + 300, "jti": common::jwt::random_id(),
        });
        f(&mut c);
        c
    };
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let post = async |assertion: &str| {
        let r = http
            .post(auth.token_endpoint())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                ("client_assertion", assertion),
            ]))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap())
    };
    let good = key.sign("client-authentication+jwt", &claims(&|_| {}));
    let (status, body) = post(&good).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.get("refresh_token").is_none(),
        "no refresh token (RFC 6749 §4.4.3)"
    );
    let (status, body) = post(&good).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    assert!(!auth.assertion_checks()[1].jti_fresh);

    let other = EcKey::generate();
    // An assertion, and the check it must fail.
    type Case = (String, fn(&AssertionCheck) -> bool);
    let cases: Vec<Case> = vec![
        (
            key.sign("JWT", &claims(&|c| c["aud"] = json!(auth.token_endpoint()))),
            |c| !c.aud,
        ),
        (key.sign("JWT", &claims(&|c| c["aud"] = json!([auth.issuer]))), |c| {
            !c.aud
        }),
        (key.sign("JWT", &claims(&|c| c["exp"] = json!(now - 5))), |c| !c.exp),
        (key.sign("JWT", &claims(&|c| c["exp"] = json!(now + 7200))), |c| !c.exp),
        (key.sign("JWT", &claims(&|c| c["iss"] = json!("someone"))), |c| !c.iss),
        (
            key.sign(
                "JWT",
                &claims(&|c| {
                    c.as_object_mut().unwrap().remove("jti");
                }),
            ),
            |c| !c.jti_fresh,
        ),
        (other.sign("JWT", &claims(&|_| {})), |c| !c.signature),
    ];
    for (i, (assertion, failed)) in cases.iter().enumerate() {
        let (status, body) = post(assertion).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "case {i}"
        );
        let check = auth.assertion_checks().pop().unwrap();
        assert!(failed(&check), "case {i}: {check:?}");
        assert!(!check.ok(), "case {i}");
    }
    // A secret is refused where only private_key_jwt is accepted.
    auth.pre_register("secret-client", Some("x"), &[]);
    let r = http
        .post(auth.token_endpoint())
        .basic_auth("secret-client", Some("x"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("grant_type", "client_credentials")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let m: Value = http
        .get(auth.metadata_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["token_endpoint_auth_methods_supported"], json!(["private_key_jwt"]));
    assert_eq!(m["token_endpoint_auth_signing_alg_values_supported"], json!(["ES256"]));
    assert!(
        m["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("client_credentials"))
    );
}

/// A token the server refuses (it expired it, then revoked the grant) is replaced by a
/// new one from the grant, with no browser and no login: the calls go on.
#[tokio::test]
async fn a_refused_token_is_replaced_with_no_browser() {
    let auth = auth_server(&["client_secret_basic"]);
    auth.pre_register(CLIENT, Some(SECRET), &[]);
    let up = start_protected(TestServer::new(Era::Legacy, "ci"), &auth, Protection::default());
    let home = Home::new();
    write_config(
        &home,
        &[("ci", &up.url, cc_oauth("client_secret_basic", None))],
        "[timeouts]\nbackoff_max = 1\n",
    );
    let (client, mut seen) = serve(&home, SECRET).await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"echo".into())).await;
    auth.expire_access_tokens();
    let r = call_eventually(&client, "echo", json!({"text": "after expiry"})).await;
    assert_eq!(first_text(&r), "after expiry");
    assert_eq!(auth.log().granted("client_credentials"), 2);
    assert!(
        up.guard
            .events()
            .iter()
            .any(|e| e.problem.as_deref() == Some("expired"))
    );

    auth.revoke_all();
    let r = call_eventually(&client, "echo", json!({"text": "after revocation"})).await;
    assert_eq!(first_text(&r), "after revocation");
    assert_eq!(auth.log().granted("client_credentials"), 3);
    let log = auth.log();
    assert!(log.authorizations.is_empty() && log.registrations.is_empty());
    assert_eq!(log.refreshes(), 0);
    no_browser_opened(&home);
    client.cancel().await.unwrap();
}

/// What a refreshable login does (`auth_flow`), a client-credentials server does
/// too: the call that meets the refused token (the server ran nothing) waits for
/// a new one and runs, and the refused token is not presented once the new one is
/// in use (its expiry, as the bridge reads it, has not come).
#[tokio::test]
async fn the_call_after_a_refused_token_succeeds() {
    let auth = auth_server(&["client_secret_basic"]);
    auth.pre_register(CLIENT, Some(SECRET), &[]);
    let up = start_protected(TestServer::new(Era::Modern, "ci"), &auth, Protection::default());
    let home = Home::new();
    write_config(&home, &[("ci", &up.url, cc_oauth("client_secret_basic", None))], "");
    let (client, mut seen) = serve(&home, SECRET).await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"echo".into())).await;
    auth.expire_access_tokens();
    let r = client
        .call_tool(params("echo", json!({"text": "after expiry"})))
        .await
        .unwrap();
    assert_eq!(first_text(&r), "after expiry");
    // 2, or 3 if a background list met the refused token beside the call.
    assert!(auth.log().granted("client_credentials") >= 2);
    up.guard.assert_refused_then_replaced();
    client.cancel().await.unwrap();
}

/// A wrong secret: the server's status and `doctor` say the authorization server
/// refused the client credentials (`invalid_client`) and what to check, without the
/// secret; the server beside it serves.
#[tokio::test]
async fn a_wrong_secret_is_a_precise_error() {
    let auth = auth_server(&["client_secret_basic"]);
    auth.pre_register(CLIENT, Some(SECRET), &[]);
    let up = start_protected(TestServer::new(Era::Modern, "ci"), &auth, Protection::default());
    let open = Upstream::start(TestServer::new(Era::Modern, "open"));
    let home = Home::new();
    write_config(
        &home,
        &[
            ("ci", &up.url, cc_oauth("client_secret_basic", None)),
            ("open", &open.url, String::new()),
        ],
        "[timeouts]\nready_wait = 2\n",
    );
    let wrong = "not-the-secret-4711";
    let (client, mut seen) = serve(&home, wrong).await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"open__echo".into())).await;
    let r = client.call_tool(params("open__whoami", json!({}))).await.unwrap();
    assert_eq!(first_text(&r), "open");
    auth.wait_until("the refused token request", Duration::from_secs(10), |l| {
        l.tokens
            .iter()
            .any(|t| t.error.as_deref() == Some("invalid_client"))
            .then_some(())
    })
    .await;

    // The failure is published with the server's state (bounded wait: the bridge
    // writes its snapshot on each change).
    let (out, ci) = eventually_woken(
        "status to show ci failed",
        Duration::from_secs(10),
        Every(Duration::from_millis(100)),
        async || {
            let (out, _) = run_ok(cli(&home, &["status", "--json"])).await;
            let v: Value = serde_json::from_str(&out).unwrap();
            let ci = v["servers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["server"] == "ci")
                .cloned()
                .unwrap();
            if ci["state"] == "failed" {
                Ok((out, ci))
            } else {
                Err(ci)
            }
        },
    )
    .await;
    let text = ci.to_string();
    assert!(text.contains("refused the client credentials"), "{text}");
    assert!(text.contains("invalid_client"), "{text}");
    assert!(text.contains("client_secret_env"), "says what to check: {text}");
    assert!(!text.contains("mcp-bridge login"), "no login can help: {text}");
    let (status_text, _) = run_ok(cli(&home, &["status"])).await;
    let doctor = cli(&home, &["doctor"]).env(SECRET_ENV, wrong).output().await.unwrap();
    let doctor = String::from_utf8_lossy(&doctor.stdout).into_owned() + &String::from_utf8_lossy(&doctor.stderr);
    assert!(doctor.contains("invalid_client"), "{doctor}");
    for out in [&out, &status_text, &doctor] {
        assert!(!out.contains(wrong) && !out.contains(SECRET), "a secret in: {out}");
    }
    // A call to the failing server says why.
    let e = client
        .call_tool(params("ci__whoami", json!({})))
        .await
        .expect_err("ci has no token");
    eprintln!("call error: {e}");
    let r = client
        .call_tool(params("open__echo", json!({"text": "fine"})))
        .await
        .unwrap();
    assert_eq!(first_text(&r), "fine");
    no_browser_opened(&home);
    client.cancel().await.unwrap();
}

/// `mcp-bridge login <server>` for a client-credentials server gets a token with no
/// browser; `serve` then uses it without asking for another.
#[tokio::test]
async fn login_gets_a_token_with_no_browser() {
    let auth = auth_server(&["client_secret_basic"]);
    auth.pre_register(CLIENT, Some(SECRET), &[]);
    let up = start_protected(TestServer::new(Era::Modern, "ci"), &auth, Protection::default());
    let home = Home::new();
    write_config(&home, &[("ci", &up.url, cc_oauth("client_secret_basic", None))], "");
    let (browser, opened) = fake_browser(home.path());
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        cli(&home, &["login", "ci"])
            .env(SECRET_ENV, SECRET)
            .env("BROWSER", &browser)
            .env("RUST_LOG", "debug")
            .stdin(std::process::Stdio::null())
            .output(),
    )
    .await
    .expect("login ends by itself")
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(stderr.contains("with client credentials"), "{stderr}");
    assert!(!opened.exists(), "login opened a browser");
    assert_eq!(auth.log().granted("client_credentials"), 1);
    for s in auth.issued_secrets().iter().map(String::as_str).chain([SECRET]) {
        assert!(!stderr.contains(s), "a secret in login's output");
    }

    let (client, mut seen) = serve(&home, SECRET).await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"echo".into())).await;
    let r = client.call_tool(params("whoami", json!({}))).await.unwrap();
    assert_eq!(first_text(&r), "ci");
    assert_eq!(auth.log().granted("client_credentials"), 1, "the stored token is used");
    client.cancel().await.unwrap();
}

/// Redaction: with a secret server and a key server, at `RUST_LOG=debug`, through a
/// token replaced after expiry, neither the secret, the private key, the assertions
/// nor the tokens appear in serve's stderr, in `status` (text and JSON) or `doctor`,
/// or in any file under the bridge's home but the credential store.
#[tokio::test]
async fn no_secret_in_any_output() {
    let auth = auth_server(&["client_secret_basic", "private_key_jwt"]);
    auth.pre_register(CLIENT, Some(SECRET), &[]);
    let key = EcKey::generate();
    auth.pre_register_jwt("ci-key", key.decoding());
    let a = start_protected(TestServer::new(Era::Modern, "a"), &auth, Protection::default());
    let b = start_protected(TestServer::new(Era::Legacy, "b"), &auth, Protection::default());
    let (_dir, path) = key_file(&key);
    let home = Home::new();
    let keyed = cc_oauth("private_key_jwt", Some(&path)).replace(CLIENT, "ci-key");
    write_config(
        &home,
        &[
            ("a", &a.url, cc_oauth("client_secret_basic", None)),
            ("b", &b.url, keyed),
        ],
        "[timeouts]\nbackoff_max = 1\n",
    );
    let mut cmd = bridge_command(&home, &[]);
    cmd.env("RUST_LOG", "debug").env(SECRET_ENV, SECRET);
    let (client, mut seen, stderr) = spawn_with_stderr(cmd).await;
    wait_for_tools(&client, &mut seen, |n| {
        n.contains(&"a__echo".into()) && n.contains(&"b__echo".into())
    })
    .await;
    for t in ["a__whoami", "b__whoami"] {
        client.call_tool(params(t, json!({}))).await.unwrap();
    }
    auth.expire_access_tokens();
    for t in ["a__whoami", "b__whoami"] {
        call_eventually(&client, t, json!({})).await;
    }
    assert_eq!(auth.log().granted("client_credentials"), 4);
    let (status_json, _) = run_ok(cli(&home, &["status", "--json"])).await;
    let (status_text, _) = run_ok(cli(&home, &["status"])).await;
    let doctor = cli(&home, &["doctor"])
        .env(SECRET_ENV, SECRET)
        .env("RUST_LOG", "debug")
        .output()
        .await
        .unwrap();
    let doctor = String::from_utf8_lossy(&doctor.stdout).into_owned() + &String::from_utf8_lossy(&doctor.stderr);
    client.cancel().await.unwrap();
    let stderr = tokio::time::timeout(Duration::from_secs(10), stderr)
        .await
        .expect("the bridge exits after the IDE goes away")
        .unwrap();
    assert!(stderr.contains("DEBUG"), "debug logging reached stderr");

    let mut secrets: Vec<String> = vec![SECRET.into()];
    secrets.extend(auth.issued_secrets());
    secrets.extend(auth.received_assertions());
    assert!(auth.received_assertions().len() >= 2);
    // The key: every line of its PEM body (any one would be a leak).
    secrets.extend(
        key.private_pem()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::to_owned),
    );
    let files = written_files(home.path());
    for s in &secrets {
        for (what, out) in [
            ("serve's stderr", &stderr),
            ("status --json", &status_json),
            ("status", &status_text),
            ("doctor", &doctor),
        ] {
            assert!(!out.contains(s.as_str()), "a secret leaked into {what}");
        }
        for (p, text) in &files {
            assert!(!text.contains(s.as_str()), "a secret leaked into {}", p.display());
        }
    }
}
