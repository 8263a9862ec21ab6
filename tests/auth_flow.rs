//! End to end: `mcp-bridge login` against a real authorization server (discovery,
//! registration, PKCE, loopback redirect), then `serve` using the stored tokens,
//! refreshing them when they expire, beside a server that needs no login; and no
//! token value ever appears in anything the bridge wrote outside the store.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::auth::*;
use common::interop::fake_browser;
use common::*;
use rmcp::model::{ClientRequest, Request, ServerResult};
use serde_json::json;

/// Wait (bounded) until the fake browser was asked to open a URL.
async fn opened_url(out: &Path) -> String {
    eventually("the browser to be opened", Duration::from_secs(20), async || {
        std::fs::read_to_string(out)
            .map(|s| s.trim().to_owned())
            .map_err(|e| e.kind())
    })
    .await
}

/// Run `mcp-bridge login NAME` and complete the browser step; returns stderr and
/// the authorization code the browser carried.
async fn login(home: &Home, name: &str) -> (String, String) {
    let (browser, out) = fake_browser(home.path());
    let _ = std::fs::remove_file(&out);
    let mut cmd = cli(home, &["login", name]);
    cmd.env("RUST_LOG", "debug")
        .env("BROWSER", &browser)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().unwrap();
    let url = opened_url(&out).await;
    let visit = browse(&url, true).await;
    assert_eq!(visit.callback_status, Some(200), "{visit:?}");
    assert!(
        visit.callback_body.as_deref().unwrap_or("").contains("Logged in"),
        "{visit:?}"
    );
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "login failed: {stderr}");
    assert!(output.stdout.is_empty(), "stdout must stay empty");
    (stderr, visit.param("code").expect("the redirect carried a code"))
}

/// `serve` in `home` at `RUST_LOG=rust_log`, connected to a test IDE; the second
/// value resolves to everything the bridge wrote to stderr once it has exited.
async fn serve_capturing_stderr(home: &Home, rust_log: &str) -> (Client, tokio::task::JoinHandle<String>) {
    let mut cmd = bridge_command(home, &[]);
    cmd.env("RUST_LOG", rust_log);
    let (client, _seen, stderr) = spawn_with_stderr(cmd).await;
    (client, stderr)
}

/// Login, calls with the token, expiry and refresh, a server without auth beside
/// it, and no secret in any log or file outside the store.
#[tokio::test]
async fn login_then_serve_with_refresh() {
    let auth = AuthServer::start();
    let protected = start_protected(TestServer::new(Era::Legacy, "vault"), &auth, Protection::default());
    let open = Upstream::start(TestServer::new(Era::Modern, "open"));
    let home = Home::new();
    // Log everything, to a file, so the redaction check below sees serve's output.
    home.servers_config(
        &[("vault", &protected.url), ("open", &open.url)],
        "[log]\nlevel = \"trace\"\nfile = true\n",
    );

    let (login_log, code) = login(&home, "vault").await;
    // Even at RUST_LOG=debug the authorization code stays out of the log.
    for line in login_log.lines().filter(|l| l.contains(&code)) {
        eprintln!("LEAK: {line}");
    }
    assert!(
        !login_log.contains(&code),
        "the authorization code leaked into the login output"
    );
    // The flow: one registration as a native app, authorize with PKCE S256 and the
    // resource, one code exchange with the resource.
    let regs = auth.registrations();
    assert_eq!(regs.len(), 1);
    assert_eq!(regs[0].request["application_type"], json!("native"));
    let authz = auth.authorize_requests();
    assert_eq!(authz.len(), 1);
    assert_eq!(authz[0].param("code_challenge_method"), Some("S256"));
    assert_eq!(authz[0].resource(), Some(protected.url.as_str()));
    let log = auth.log();
    assert_eq!(log.code_exchanges(), 1);
    assert!(
        log.tokens
            .iter()
            .all(|t| t.resource.as_deref() == Some(protected.url.as_str()))
    );

    // Serve with the stored tokens: the protected server's tools are there and work.
    // (RUST_LOG would override the config's level and target stderr: unset it.)
    let (client, mut seen) = spawn_bridge_env(&home, &[], &[("RUST_LOG", None)]).await;
    wait_for_tools(&client, &mut seen, |n| {
        n.contains(&"vault__echo".into()) && n.contains(&"open__echo".into())
    })
    .await;
    let r = client.call_tool(params("vault__whoami", json!({}))).await.unwrap();
    assert_eq!(first_text(&r), "vault");
    assert!(protected.guard.events().iter().any(|e| e.had_token && e.status == 200));

    // Expire the access token: the next call still works, after a refresh.
    auth.expire_access_tokens();
    let r = client
        .call_tool(params("vault__echo", json!({"text": "after expiry"})))
        .await
        .unwrap();
    assert_eq!(first_text(&r), "after expiry");
    assert!(auth.log().refreshes() >= 1, "no refresh happened");
    let r = client.call_tool(params("open__whoami", json!({}))).await.unwrap();
    assert_eq!(first_text(&r), "open");
    client.cancel().await.unwrap();

    // Again at RUST_LOG=debug (still logging to the file), with stderr captured:
    // calls, and a refresh, leave no secret there either.
    let refreshes = auth.log().refreshes();
    let (client, stderr) = serve_capturing_stderr(&home, "debug").await;
    let r = client.call_tool(params("vault__whoami", json!({}))).await.unwrap();
    assert_eq!(first_text(&r), "vault");
    auth.expire_access_tokens();
    let r = client
        .call_tool(params("vault__echo", json!({"text": "after expiry"})))
        .await
        .unwrap();
    assert_eq!(first_text(&r), "after expiry");
    assert!(auth.log().refreshes() > refreshes, "no refresh at debug level");
    client.cancel().await.unwrap();
    let mut serve_stderr = tokio::time::timeout(Duration::from_secs(10), stderr)
        .await
        .expect("the bridge exits after the IDE goes away")
        .unwrap();

    // And with the log on stderr (no log file) at debug: a call and a refresh.
    home.servers_config(&[("vault", &protected.url), ("open", &open.url)], "");
    let refreshes = auth.log().refreshes();
    let (client, stderr) = serve_capturing_stderr(&home, "debug").await;
    auth.expire_access_tokens();
    let r = client.call_tool(params("vault__whoami", json!({}))).await.unwrap();
    assert_eq!(first_text(&r), "vault");
    assert!(auth.log().refreshes() > refreshes, "no refresh with the log on stderr");
    client.cancel().await.unwrap();
    let stderr = tokio::time::timeout(Duration::from_secs(10), stderr)
        .await
        .expect("the bridge exits after the IDE goes away")
        .unwrap();
    assert!(stderr.contains("DEBUG"), "debug logging reached stderr: {stderr}");
    serve_stderr.push_str(&stderr);

    // Redaction: no token, code or secret in the login output, serve's stderr or
    // any file the bridge wrote outside the credential store (cache, state, audit
    // log, log file).
    let mut secrets = auth.issued_secrets();
    assert!(
        secrets.len() >= 4,
        "an access and a refresh token, twice refreshed: {}",
        secrets.len()
    );
    secrets.push(code);
    let files = written_files(home.path());
    for dir in ["state", "cache"] {
        assert!(
            files.iter().any(|(p, _)| p.starts_with(home.path().join(dir))),
            "nothing written under {dir}/"
        );
    }
    for s in &secrets {
        assert!(!login_log.contains(s.as_str()), "a secret leaked into the login output");
        assert!(
            !serve_stderr.contains(s.as_str()),
            "a secret leaked into serve's stderr"
        );
        for (path, text) in &files {
            assert!(!text.contains(s.as_str()), "a secret leaked into {}", path.display());
        }
    }
    let log = std::fs::read_to_string(home.path().join("state/bridge.log")).expect("serve wrote its log file");
    assert!(log.contains("connected"), "the log file has serve's output");
    // The credential store itself does hold the tokens, in a private file.
    let store: Vec<_> = std::fs::read_dir(home.path().join("state/credentials"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(store.len(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(store[0].metadata().unwrap().permissions().mode() & 0o777, 0o600);
    }
}

/// Without a login, a protected server's calls say exactly what to do, and the
/// server beside it works.
#[tokio::test]
async fn without_login_the_error_says_what_to_do() {
    let auth = AuthServer::start();
    let protected = start_protected(TestServer::new(Era::Modern, "vault"), &auth, Protection::default());
    let open = Upstream::start(TestServer::new(Era::Legacy, "open"));
    let home = Home::new();
    home.servers_config(
        &[("vault", &protected.url), ("open", &open.url)],
        "[timeouts]\nready_wait = 2\n",
    );
    let (client, mut seen) = spawn_bridge(&home, &[]).await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"open__echo".into())).await;
    let r = client.call_tool(params("open__whoami", json!({}))).await.unwrap();
    assert_eq!(first_text(&r), "open");
    // vault is not listed (no cache, no login); a call to it by name is unknown.
    // Log in, and it appears on the next start.
    assert!(!tool_names(&client).await.iter().any(|n| n.starts_with("vault__")));
    client.cancel().await.unwrap();
    login(&home, "vault").await;
    let (client, mut seen) = spawn_bridge(&home, &[]).await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"vault__echo".into())).await;
}

/// An authorization server that does not advertise S256 is refused with a clear
/// message, and nothing is stored.
#[tokio::test]
async fn no_pkce_no_login() {
    let auth = AuthServer::start();
    auth.set_code_challenge_methods(None);
    let protected = start_protected(TestServer::new(Era::Legacy, "vault"), &auth, Protection::default());
    let home = Home::new();
    home.servers_config(&[("vault", &protected.url)], "");
    let out = cli(&home, &["login", "vault"])
        .env("BROWSER", "/bin/false")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PKCE S256"), "{err}");
    assert!(auth.authorize_requests().is_empty());
    assert!(!home.path().join("state/credentials").exists());
}

/// Tokens are refreshed ahead of expiry in the background, and two bridge
/// processes sharing one store (two IDE windows) never present a rotated refresh
/// token twice: the authorization server, which revokes the grant on reuse, sees
/// no reuse, and both keep working.
#[tokio::test]
async fn proactive_refresh_shared_by_two_processes() {
    let auth = AuthServer::start();
    auth.set_access_lifetime(3);
    let protected = start_protected(TestServer::new(Era::Legacy, "vault"), &auth, Protection::default());
    let home = Home::new();
    home.servers_config(&[("vault", &protected.url)], "");
    login(&home, "vault").await;
    let (a, mut seen_a) = spawn_bridge(&home, &[]).await;
    let (b, mut seen_b) = spawn_bridge(&home, &[]).await;
    wait_for_tools(&a, &mut seen_a, |n| n.contains(&"echo".into())).await;
    wait_for_tools(&b, &mut seen_b, |n| n.contains(&"echo".into())).await;
    let calls_before = protected.guard.events().iter().filter(|e| e.tool.is_some()).count();
    // Two lifetimes' worth of refreshes, with no call made meanwhile.
    auth.wait_until("two proactive refreshes", Duration::from_secs(30), |log| {
        (log.refreshes() >= 2).then_some(())
    })
    .await;
    let calls_after = protected.guard.events().iter().filter(|e| e.tool.is_some()).count();
    assert_eq!(calls_before, calls_after, "refreshes must not need calls");
    assert_eq!(
        auth.reuse_detections(),
        0,
        "a rotated refresh token was presented twice"
    );
    for c in [&a, &b] {
        let r = c.call_tool(params("whoami", json!({}))).await.unwrap();
        assert_eq!(first_text(&r), "vault");
    }
    assert_eq!(auth.reuse_detections(), 0);
    assert!(auth.grants().iter().all(|g| !g.revoked));
}

/// A revoked login moves the server to "needs login": its calls say which
/// `mcp-bridge login` to run, and a new login brings it back without a restart.
#[tokio::test]
async fn revoked_login_asks_for_a_new_one() {
    let auth = AuthServer::start();
    auth.set_access_lifetime(3);
    let protected = start_protected(TestServer::new(Era::Modern, "vault"), &auth, Protection::default());
    let home = Home::new();
    home.servers_config(
        &[("vault", &protected.url)],
        "[timeouts]\nready_wait = 2\nbackoff_max = 1\n",
    );
    login(&home, "vault").await;
    let (client, mut seen) = spawn_bridge(&home, &[]).await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"echo".into())).await;
    auth.revoke_all();
    let beat = Duration::from_millis(500);
    let message = eventually_woken(
        "a call to ask for a new login",
        Duration::from_secs(30),
        (&mut seen, Every(beat)),
        async || match client.call_tool(params("whoami", json!({}))).await {
            Err(rmcp::ServiceError::McpError(e)) if e.message.contains("mcp-bridge login vault") => Ok(e.message),
            other => Err(other),
        },
    )
    .await;
    assert!(message.contains("'vault'"), "{message}");
    // Log in again while the bridge runs: it picks the new tokens up by itself.
    login(&home, "vault").await;
    let r = eventually_woken(
        "the new login to be picked up",
        Duration::from_secs(30),
        (&mut seen, Every(beat)),
        async || client.call_tool(params("whoami", json!({}))).await,
    )
    .await;
    assert_eq!(first_text(&r), "vault");
}

/// A static token from `mcp-bridge auth set` (read from stdin) is kept in the
/// credential store, sent as a bearer token, and never written anywhere else.
#[tokio::test]
async fn static_token_from_auth_set() {
    let auth = AuthServer::start();
    auth.set_access_lifetime(3600);
    let protected = start_protected(TestServer::new(Era::Legacy, "vault"), &auth, Protection::default());
    let tokens = auth.issue_tokens("static-client", &["mcp:read"], Some(&protected.url));
    let home = Home::new();
    home.servers_config(&[("vault", &protected.url)], "");
    let mut child = cli(&home, &["auth", "set", "vault"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(format!("{}\n", tokens.access_token).as_bytes())
            .await
            .unwrap();
    }
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains(&tokens.access_token) && out.stdout.is_empty());
    let (client, mut seen) = spawn_bridge(&home, &[]).await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"echo".into())).await;
    let r = client.call_tool(params("whoami", json!({}))).await.unwrap();
    assert_eq!(first_text(&r), "vault");
    client.cancel().await.unwrap();
    for (path, text) in written_files(home.path()) {
        assert!(
            !text.contains(&tokens.access_token),
            "the token leaked into {}",
            path.display()
        );
    }
}

/// A refresh that fails for a transient reason (503 temporarily_unavailable, 500)
/// is retried with backoff; the login survives and calls keep working.
#[tokio::test]
async fn transient_refresh_failures_are_retried() {
    let auth = AuthServer::start();
    auth.set_access_lifetime(3);
    let protected = start_protected(TestServer::new(Era::Legacy, "vault"), &auth, Protection::default());
    let home = Home::new();
    home.servers_config(&[("vault", &protected.url)], "");
    login(&home, "vault").await;
    let (client, mut seen) = spawn_bridge(&home, &[]).await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"echo".into())).await;
    auth.fail_next_token_requests(1, TokenFailure::TemporarilyUnavailable);
    auth.fail_next_token_requests(1, TokenFailure::ServerError);
    auth.wait_until("a refresh after two failures", Duration::from_secs(30), |log| {
        let refreshes: Vec<_> = log
            .tokens
            .iter()
            .filter(|t| t.grant_type.as_deref() == Some("refresh_token"))
            .collect();
        (refreshes.iter().filter(|t| t.forced).count() == 2 && refreshes.iter().any(|t| t.ok())).then_some(())
    })
    .await;
    let r = client.call_tool(params("whoami", json!({}))).await.unwrap();
    assert_eq!(first_text(&r), "vault");
    assert!(auth.grants().iter().all(|g| !g.revoked));
}

/// While serving, a server that needs a login gets one started by the bridge
/// itself; with two bridge processes (two IDE windows) only one browser tab is
/// opened, and both pick the login up without a restart.
#[tokio::test]
async fn serve_starts_the_login_once_across_processes() {
    let auth = AuthServer::start();
    let protected = start_protected(TestServer::new(Era::Legacy, "vault"), &auth, Protection::default());
    let home = Home::new();
    home.servers_config(&[("vault", &protected.url)], "");
    let opened = home.path().join("opened.txt");
    let script = home.path().join("browser-append.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n", opened.display()),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let browser = script.to_str().unwrap();
    let (a, mut seen_a) = spawn_bridge_env(&home, &[], &[("BROWSER", Some(browser))]).await;
    let (b, mut seen_b) = spawn_bridge_env(&home, &[], &[("BROWSER", Some(browser))]).await;
    let url = opened_url(&opened).await;
    browse(&url, true).await;
    wait_for_tools(&a, &mut seen_a, |n| n.contains(&"echo".into())).await;
    wait_for_tools(&b, &mut seen_b, |n| n.contains(&"echo".into())).await;
    for c in [&a, &b] {
        assert_eq!(
            first_text(&c.call_tool(params("whoami", json!({}))).await.unwrap()),
            "vault"
        );
    }
    let tabs = std::fs::read_to_string(&opened).unwrap();
    assert_eq!(tabs.lines().count(), 1, "one browser tab, not one per process: {tabs}");
    assert_eq!(auth.log().code_exchanges(), 1);
}

/// `403 insufficient_scope` on a call: the bridge logs in again for the union of
/// the scopes it had and the ones asked for, reconnects, and retries the call,
/// which then succeeds; without a browser it says which login to run.
#[tokio::test]
async fn insufficient_scope_steps_up() {
    let auth = AuthServer::start();
    let protected = start_protected(TestServer::new(Era::Legacy, "vault"), &auth, Protection::default());
    protected.guard.set_tool_scope("whoami", "mcp:admin");
    let home = Home::new();
    home.servers_config(&[("vault", &protected.url)], "");
    login(&home, "vault").await;
    let (browser, out) = fake_browser(home.path());
    let _ = std::fs::remove_file(&out);
    let (client, mut seen) = spawn_bridge_env(&home, &[], &[("BROWSER", browser.to_str())]).await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"whoami".into())).await;
    let pending = {
        let c = client.peer().clone();
        tokio::spawn(async move { c.call_tool(params("whoami", json!({}))).await })
    };
    let url = opened_url(&out).await;
    let visit = browse(&url, true).await;
    assert_eq!(visit.callback_status, Some(200));
    let r = tokio::time::timeout(Duration::from_secs(30), pending)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first_text(&r), "vault");
    let asked = auth
        .authorize_requests()
        .last()
        .and_then(|a| a.param("scope").map(str::to_owned))
        .unwrap();
    let asked: Vec<&str> = asked.split(' ').collect();
    assert!(asked.contains(&"mcp:read") && asked.contains(&"mcp:admin"), "{asked:?}");
    assert!(protected.guard.count(403) >= 1);
}

/// A dynamically registered client is stored per authorization server and reused
/// by the next login (same client id, same redirect URI), instead of registering
/// a new client every time.
#[tokio::test]
async fn registration_is_reused() {
    let auth = AuthServer::start();
    let protected = start_protected(TestServer::new(Era::Legacy, "vault"), &auth, Protection::default());
    let home = Home::new();
    home.servers_config(&[("vault", &protected.url)], "");
    login(&home, "vault").await;
    login(&home, "vault").await;
    assert_eq!(auth.registrations().len(), 1, "registered twice");
    let authz = auth.authorize_requests();
    assert_eq!(authz.len(), 2);
    assert_eq!(authz[0].param("client_id"), authz[1].param("client_id"));
    assert_eq!(authz[0].param("redirect_uri"), authz[1].param("redirect_uri"));
    assert_eq!(auth.log().code_exchanges(), 2);
}

/// `status --json` reports each server's auth state from the store, without
/// connecting and without printing any secret.
#[tokio::test]
async fn status_reports_auth_state() {
    let auth = AuthServer::start();
    let protected = start_protected(TestServer::new(Era::Legacy, "vault"), &auth, Protection::default());
    let open = Upstream::start(TestServer::new(Era::Modern, "open"));
    let home = Home::new();
    home.servers_config(&[("vault", &protected.url), ("open", &open.url)], "");
    login(&home, "vault").await;
    let out = cli(&home, &["status", "--json"]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let state = |name: &str| {
        v["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["server"] == json!(name))
            .unwrap()["auth"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(state("vault").starts_with("logged in"), "{text}");
    assert!(state("open").starts_with("none"), "{text}");
    assert!(v["credential_store"].as_str().unwrap().contains("file store"), "{text}");
    for s in auth.issued_secrets() {
        assert!(!text.contains(&s));
    }
}

/// The `iss` of the redirect is checked (RFC 9207): a wrong issuer fails the
/// login with a clear page and message, and nothing is stored.
#[tokio::test]
async fn wrong_issuer_on_the_redirect_is_refused() {
    let auth = AuthServer::start();
    auth.set_iss(Some(true), IssParam::Wrong("https://evil.example".into()));
    let protected = start_protected(TestServer::new(Era::Legacy, "vault"), &auth, Protection::default());
    let home = Home::new();
    home.servers_config(&[("vault", &protected.url)], "");
    let (browser, out) = fake_browser(home.path());
    let child = cli(&home, &["login", "vault"])
        .env("BROWSER", &browser)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let visit = browse(&opened_url(&out).await, true).await;
    assert!(
        visit.callback_body.as_deref().unwrap_or("").contains("Login failed"),
        "{visit:?}"
    );
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(!output.status.success());
    assert_eq!(auth.log().code_exchanges(), 0, "the code must not be exchanged");
    let store = home.path().join("state/credentials");
    let stored = std::fs::read_dir(&store).map(|d| d.count()).unwrap_or(0);
    assert_eq!(stored, 0, "nothing is stored after a refused login");
}

/// `oauth = { resource = false }` leaves RFC 8707 `resource` out of the
/// authorization and token requests, for identity providers that reject it.
#[tokio::test]
async fn resource_can_be_omitted() {
    let auth = AuthServer::start();
    let protected = start_protected(TestServer::new(Era::Legacy, "vault"), &auth, Protection::default());
    let home = Home::new();
    home.write_config(&format!(
        "[[servers]]\nname = \"vault\"\nurl = \"{}\"\noauth = {{ resource = false }}\n",
        protected.url
    ));
    login(&home, "vault").await;
    let (client, mut seen) = spawn_bridge(&home, &[]).await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"echo".into())).await;
    auth.expire_access_tokens();
    assert_eq!(
        first_text(&client.call_tool(params("whoami", json!({}))).await.unwrap()),
        "vault"
    );
    assert_eq!(auth.authorize_requests()[0].resource(), None);
    let log = auth.log();
    assert!(log.refreshes() >= 1);
    assert!(log.tokens.iter().all(|t| t.resource.is_none()), "resource was sent");
}

/// A client id pre-registered in config comes first in the spec's order: no
/// dynamic registration happens (here the authorization server has none).
#[tokio::test]
async fn preregistered_client_from_config() {
    let auth = AuthServer::start();
    auth.set_registration(false);
    auth.pre_register("pre-registered-1", None, &["http://127.0.0.1/callback"]);
    let protected = start_protected(TestServer::new(Era::Modern, "vault"), &auth, Protection::default());
    let home = Home::new();
    home.write_config(&format!(
        "[[servers]]\nname = \"vault\"\nurl = \"{}\"\noauth = {{ client_id = \"pre-registered-1\" }}\n",
        protected.url
    ));
    login(&home, "vault").await;
    assert!(auth.registrations().is_empty());
    assert_eq!(
        auth.authorize_requests()[0].param("client_id"),
        Some("pre-registered-1")
    );
    let (client, mut seen) = spawn_bridge(&home, &[]).await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"echo".into())).await;
    assert_eq!(
        first_text(&client.call_tool(params("whoami", json!({}))).await.unwrap()),
        "vault"
    );
}

/// With a Client ID Metadata Document URL configured and an authorization server
/// that supports CIMD, that URL is the client id and nothing is registered; a
/// server without CIMD support gets a dynamic registration instead.
#[tokio::test]
async fn client_id_metadata_document() {
    let cimd = "https://bridge.example.com/oauth/client.json";
    for supported in [true, false] {
        let auth = AuthServer::start();
        auth.configure(|c| c.cimd = supported);
        auth.pre_register(cimd, None, &["http://127.0.0.1/callback"]);
        let protected = start_protected(TestServer::new(Era::Legacy, "vault"), &auth, Protection::default());
        let home = Home::new();
        home.write_config(&format!(
            "[[servers]]\nname = \"vault\"\nurl = \"{}\"\noauth = {{ client_metadata_url = \"{cimd}\" }}\n",
            protected.url
        ));
        login(&home, "vault").await;
        let client_id = auth.authorize_requests()[0].param("client_id").map(str::to_owned);
        if supported {
            assert_eq!(client_id.as_deref(), Some(cimd));
            assert!(auth.registrations().is_empty());
        } else {
            assert_ne!(client_id.as_deref(), Some(cimd));
            assert_eq!(auth.registrations().len(), 1);
        }
    }
}

/// Discovery without hints: a challenge without `resource_metadata` (the
/// well-known path-insertion fallback) and an authorization server that only
/// publishes OpenID Connect metadata. Then `logout` forgets the tokens.
#[tokio::test]
async fn discovery_fallbacks_and_logout() {
    let auth = AuthServer::start();
    auth.configure(|c| c.serve_rfc8414 = false);
    let protection = Protection {
        resource_metadata_in_challenge: false,
        ..Protection::default()
    };
    let protected = start_protected(TestServer::new(Era::Legacy, "vault"), &auth, protection);
    let home = Home::new();
    home.servers_config(&[("vault", &protected.url)], "");
    login(&home, "vault").await;
    assert_eq!(auth.log().code_exchanges(), 1);
    let status = async |home: &Home| {
        let out = cli(home, &["status", "--json"]).output().await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["servers"][0]["auth"].as_str().unwrap().to_owned()
    };
    assert!(status(&home).await.starts_with("logged in"));
    let out = cli(&home, &["logout", "vault"]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let after = status(&home).await;
    assert!(after.starts_with("none"), "{after}");
}

/// Ad-hoc servers: `login URL --client-id ... --scope ...`, then `serve URL` uses
/// the stored login; the pre-registered client and the scope are used as given.
#[tokio::test]
async fn adhoc_url_with_client_id_and_scope() {
    let auth = AuthServer::start();
    auth.set_registration(false);
    auth.pre_register("cli-client", None, &["http://127.0.0.1/callback"]);
    let protected = start_protected(TestServer::new(Era::Modern, "vault"), &auth, Protection::default());
    let home = Home::new();
    let (browser, out) = fake_browser(home.path());
    let child = cli(
        &home,
        &[
            "login",
            &protected.url,
            "--client-id",
            "cli-client",
            "--scope",
            "mcp:read",
        ],
    )
    .env("BROWSER", &browser)
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .kill_on_drop(true)
    .spawn()
    .unwrap();
    browse(&opened_url(&out).await, true).await;
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let a = &auth.authorize_requests()[0];
    assert_eq!(a.param("client_id"), Some("cli-client"));
    // The asked scope, plus offline_access (rmcp adds it when the server offers
    // it, to get a refresh token).
    let scope: Vec<&str> = a.param("scope").unwrap_or("").split(' ').collect();
    assert!(
        scope.contains(&"mcp:read") && !scope.contains(&"mcp:write"),
        "{scope:?}"
    );
    let (client, mut seen) = spawn_bridge(&home, &[&protected.url]).await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"echo".into())).await;
    assert_eq!(
        first_text(&client.call_tool(params("whoami", json!({}))).await.unwrap()),
        "vault"
    );
}

/// `[auth] auto_login = false`: serve opens no browser, and calls say which
/// login to run.
#[tokio::test]
async fn auto_login_can_be_turned_off() {
    let auth = AuthServer::start();
    let protected = start_protected(TestServer::new(Era::Legacy, "vault"), &auth, Protection::default());
    let open = Upstream::start(TestServer::new(Era::Modern, "open"));
    let home = Home::new();
    home.servers_config(
        &[("vault", &protected.url), ("open", &open.url)],
        "[auth]\nauto_login = false\n",
    );
    let (browser, out) = fake_browser(home.path());
    let (client, mut seen) = spawn_bridge_env(&home, &[], &[("BROWSER", browser.to_str())]).await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"open__echo".into())).await;
    // The bridge has tried vault twice (the retry comes after the failure was
    // handled, when an automatic login would already have opened the browser).
    protected
        .guard
        .wait_until("two 401s", Duration::from_secs(10), |ev| {
            (ev.iter().filter(|e| e.status == 401).count() >= 2).then_some(())
        })
        .await;
    assert!(!out.exists(), "a browser was opened");
    assert!(auth.authorize_requests().is_empty());
}

/// A login nobody completes times out with a clear message (here after 1 s).
#[tokio::test]
async fn login_times_out_clearly() {
    let auth = AuthServer::start();
    let protected = start_protected(TestServer::new(Era::Legacy, "vault"), &auth, Protection::default());
    let home = Home::new();
    home.servers_config(&[("vault", &protected.url)], "[auth]\nlogin_timeout = 1\n");
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        cli(&home, &["login", "vault"]).env("BROWSER", "true").output(),
    )
    .await
    .expect("login gives up by itself")
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no browser login within"), "{err}");
    assert!(err.contains("mcp-bridge login"), "{err}");
}

/// A protected server `vault` the user has logged in to, and a bridge serving it
/// to a test IDE that handles login links as `links` says, with a `$BROWSER`
/// that records any tab opened (`opened`).
struct LinkWorld {
    auth: AuthServer,
    _protected: ProtectedUpstream,
    _home: Home,
    client: Client,
    seen: tokio::sync::mpsc::UnboundedReceiver<Seen>,
    opened: PathBuf,
}

impl LinkWorld {
    async fn start(era: Era, links: Links) -> LinkWorld {
        let auth = AuthServer::start();
        let protected = start_protected(TestServer::new(era, "vault"), &auth, Protection::default());
        let home = Home::new();
        home.servers_config(
            &[("vault", &protected.url)],
            "[timeouts]\nready_wait = 2\nbackoff_max = 1\n",
        );
        login(&home, "vault").await;
        let (browser, opened) = fake_browser(home.path());
        let _ = std::fs::remove_file(&opened);
        let (client, mut seen) = spawn_bridge_links(&home, &[("BROWSER", browser.to_str())], links).await;
        wait_for_tools(&client, &mut seen, |n| n.contains(&"whoami".into())).await;
        LinkWorld {
            auth,
            _protected: protected,
            _home: home,
            client,
            seen,
            opened,
        }
    }
}

/// Calls until the bridge offers a new login through the IDE (after the
/// authorization server revoked every grant): the link the IDE was given.
/// Calls before that fail (the login is not noticed yet); a call made once it
/// is noticed waits for the login, and is dropped here.
async fn link_after_revocation(
    client: &Client,
    seen: &mut tokio::sync::mpsc::UnboundedReceiver<Seen>,
) -> (String, String, String) {
    let beat = Duration::from_millis(300);
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let call = async {
                let _ = client.call_tool(params("whoami", json!({}))).await;
                // Paces the calls that fail before the login is noticed.
                tokio::time::sleep(beat).await;
            };
            tokio::select! {
                s = seen.recv() => if let Some(Seen::Link { url, id, message }) = s {
                    return (url, id, message);
                },
                _ = call => {}
            }
        }
    })
    .await
    .expect("a login link in the IDE within 30 s")
}

/// A call sent now (its progress token is the IDE's), not yet answered.
async fn send_whoami(client: &Client) -> rmcp::service::RequestHandle<rmcp::RoleClient> {
    client
        .send_request_with_option(
            ClientRequest::CallToolRequest(Request::new(params("whoami", json!({})))),
            rmcp::service::PeerRequestOptions::no_options(),
        )
        .await
        .unwrap()
}

/// An IDE that declares URL-mode elicitation is offered the login link
/// instead of a browser tab; a call made while the login is pending says it
/// waits (progress), and completes once the user has logged in. The IDE is
/// told the elicitation is complete.
#[tokio::test]
async fn the_ide_offers_the_login_link_and_the_call_waits_for_it() {
    let w = LinkWorld::start(Era::Legacy, Links::Accept).await;
    let (auth, client, mut seen, opened) = (&w.auth, &w.client, w.seen, &w.opened);
    auth.revoke_all();
    let (url, id, message) = link_after_revocation(client, &mut seen).await;
    assert!(url.starts_with(&auth.authorization_endpoint()), "{url}");
    assert!(
        message.contains("'vault'") && message.contains("127.0.0.1"),
        "{message}"
    );
    assert!(!id.is_empty(), "a 2025-11-25 URL elicitation has an id");

    let pending = send_whoami(client).await;
    let token = pending.progress_token.clone();
    let waiting = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(Seen::Progress(p)) = seen.recv().await
                && p.progress_token == token
            {
                return p.message.unwrap_or_default();
            }
        }
    })
    .await
    .expect("the call says it waits for the login");
    assert!(waiting.contains("log in to 'vault'"), "{waiting}");
    let visit = browse(&url, true).await;
    assert_eq!(visit.callback_status, Some(200), "{visit:?}");
    let ServerResult::CallToolResult(r) = tokio::time::timeout(Duration::from_secs(30), pending.await_response())
        .await
        .expect("the call completes after the login")
        .unwrap()
    else {
        panic!("not a tool result")
    };
    assert_eq!(first_text(&r), "vault", "{r:?}");
    let done = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(Seen::LinkDone(done)) = seen.recv().await {
                return done;
            }
        }
    })
    .await
    .expect("notifications/elicitation/complete");
    assert_eq!(done, id);
    assert!(!opened.exists(), "no browser tab was opened");
}

/// Declining the link in the IDE ends the waiting call with a clear refusal,
/// and no browser opens behind the user's back.
#[tokio::test]
async fn a_declined_login_link_refuses_the_call() {
    let w = LinkWorld::start(Era::Modern, Links::Decline).await;
    let (auth, client, mut seen, opened) = (&w.auth, &w.client, w.seen, &w.opened);
    auth.revoke_all();
    link_after_revocation(client, &mut seen).await;
    // The next call asks for a login again (the link is offered again) and is
    // refused when the user declines it.
    let r = tokio::time::timeout(Duration::from_secs(30), client.call_tool(params("whoami", json!({}))))
        .await
        .expect("an answer")
        .expect("a tool result, not a protocol error");
    assert_eq!(r.is_error, Some(true), "{r:?}");
    let text = first_text(&r);
    assert!(text.contains("login to 'vault' was declined"), "{text}");
    assert!(text.contains("mcp-bridge login vault"), "{text}");
    assert!(!opened.exists(), "no browser tab was opened");
}

/// A 2026-07-28 IDE that declares URL elicitation cannot be sent a request: the
/// call ends with an input-required round carrying the link and the bridge's
/// request state; the retry with the answer completes once the login has.
#[tokio::test]
async fn a_modern_ide_gets_the_login_link_as_an_input_round() {
    let auth = AuthServer::start();
    let protected = start_protected(TestServer::new(Era::Modern, "vault"), &auth, Protection::default());
    let home = Home::new();
    home.servers_config(
        &[("vault", &protected.url)],
        "[timeouts]\nready_wait = 2\nbackoff_max = 1\n",
    );
    login(&home, "vault").await;
    let mut raw = Raw::spawn(&home);
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{"url":{}}},"io.modelcontextprotocol/clientInfo":{"name":"modern-ide","version":"1"}}"#;
    let ids = std::sync::atomic::AtomicU64::new(0);
    // Sends a call of `whoami` with `extra` params (answered by `raw.answer()`).
    let send = async |raw: &mut Raw, extra: &str| {
        let id = ids.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        raw.send(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"whoami","arguments":{{}}{extra},{meta}}}}}"#
        ))
        .await;
    };
    let call = async |raw: &mut Raw, extra: &str| {
        send(raw, extra).await;
        raw.answer().await
    };
    let first = call(&mut raw, "").await;
    assert_eq!(first["result"]["content"][0]["text"], json!("vault"), "{first}");
    auth.revoke_all();
    let round = eventually(
        "an input round with the login link",
        Duration::from_secs(30),
        async || {
            let r = call(&mut raw, "").await;
            if r["result"]["resultType"] == json!("input_required") {
                Ok(r)
            } else {
                Err(r)
            }
        },
    )
    .await;
    let ask = &round["result"]["inputRequests"]["mcp-bridge/login"];
    assert_eq!(ask["method"], json!("elicitation/create"), "{round}");
    assert_eq!(ask["params"]["mode"], json!("url"), "{round}");
    let url = ask["params"]["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&auth.authorization_endpoint()), "{url}");
    let state = round["result"]["requestState"].as_str().unwrap().to_owned();
    let answered = format!(
        r#","inputResponses":{{"mcp-bridge/login":{{"action":"accept"}}}},"requestState":{}"#,
        json!(state)
    );
    // The retry comes before the user has logged in: it waits for the login.
    send(&mut raw, &answered).await;
    let visit = browse(&url, true).await;
    assert_eq!(visit.callback_status, Some(200), "{visit:?}");
    let done = raw.answer().await;
    assert_eq!(done["result"]["content"][0]["text"], json!("vault"), "{done}");
    // The bridge's state is single-use.
    let again = call(&mut raw, &answered).await;
    assert_eq!(again["result"]["isError"], json!(true), "{again}");
}
