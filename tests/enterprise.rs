//! End to end: enterprise-managed authorization (SEP-990). One `mcp-bridge login --idp`
//! at the test IdP (its browser step played by the fake `$BROWSER`), then servers
//! each behind their own authorization server that trusts the IdP are reached with no
//! further browser: the bridge exchanges the ID token for an ID-JAG (RFC 8693) and
//! redeems it with the JWT bearer grant (RFC 7523), again whenever a token is refused.
//! The IdP's session ending is said as `login --idp`, an audience the IdP does not
//! allow fails only its server, and no ID token, ID-JAG, secret or token appears in
//! any output.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::auth::*;
use common::idp::*;
use common::*;
use serde_json::{Value, json};

const IDP_CLIENT: &str = "mcp-bridge";
const IDP_SECRET: &str = "idp-s3cret/+:&=";
const IDP_SECRET_ENV: &str = "IDP_CLIENT_SECRET";

/// One server of the organisation: its authorization server (trusting the IdP) and
/// the MCP server it protects.
struct Site {
    name: String,
    auth: AuthServer,
    up: ProtectedUpstream,
    /// The bridge's client at this AS, and its secret (in `secret_env`).
    client_id: String,
    secret: String,
    secret_env: String,
}

/// An IdP, its servers, a bridge home configured for all of them, and a `$BROWSER`
/// that counts what it is asked to open.
struct Org {
    idp: IdpServer,
    sites: Vec<Site>,
    home: Home,
    browser: PathBuf,
    opens: PathBuf,
}

impl Org {
    fn new(names: &[&str]) -> Org {
        let idp = IdpServer::start();
        idp.register_client(IDP_CLIENT, Some(IDP_SECRET));
        let sites: Vec<Site> = names
            .iter()
            .map(|name| {
                let auth = AuthServer::start();
                auth.configure(|c| c.token_auth_methods = strings(&["client_secret_basic"]));
                let client_id = format!("bridge-at-{name}");
                let secret = format!("{name}-as-s3cret:{}", common::jwt::random_id());
                auth.pre_register(&client_id, Some(&secret), &[]);
                idp.trusted_by(&auth);
                let protection = Protection {
                    strict_audience: true,
                    ..Protection::default()
                };
                let up = start_protected(TestServer::new(Era::Modern, "x"), &auth, protection);
                idp.allow_audience(&auth.issuer, &client_id, Some(&[up.url.as_str()]));
                Site {
                    name: name.to_string(),
                    auth,
                    up,
                    client_id,
                    secret,
                    secret_env: format!("{}_AS_SECRET", name.to_uppercase()),
                }
            })
            .collect();
        let home = Home::new();
        let mut config = format!(
            "[auth.idp]\nissuer = \"{}\"\nclient_id = \"{IDP_CLIENT}\"\nclient_secret_env = \"{IDP_SECRET_ENV}\"\n\n[timeouts]\nready_wait = 5\nbackoff_max = 1\n",
            idp.issuer
        );
        for s in &sites {
            config.push_str(&format!(
                "\n[[servers]]\nname = \"{}\"\nurl = \"{}\"\n[servers.oauth]\ngrant = \"enterprise\"\nclient_id = \"{}\"\nclient_secret_env = \"{}\"\n",
                s.name, s.up.url, s.client_id, s.secret_env
            ));
        }
        home.write_config(&config);
        let (browser, opens) = counting_browser(home.path());
        Org {
            idp,
            sites,
            home,
            browser,
            opens,
        }
    }

    fn site(&self, name: &str) -> &Site {
        self.sites.iter().find(|s| s.name == name).unwrap()
    }

    /// The environment every bridge process of this org gets: the secrets and the browser.
    fn env(&self, cmd: &mut tokio::process::Command) {
        cmd.env(IDP_SECRET_ENV, IDP_SECRET)
            .env("BROWSER", &self.browser)
            .env_remove("MCP_BRIDGE_IDP_ID_TOKEN");
        for s in &self.sites {
            cmd.env(&s.secret_env, &s.secret);
        }
    }

    /// How many times a browser was opened so far.
    fn browser_opens(&self) -> usize {
        std::fs::read_to_string(&self.opens)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// `mcp-bridge login --idp` at `RUST_LOG=debug`, its browser step played; whether it
    /// succeeded, and its stderr.
    async fn login_idp(&self) -> (bool, String) {
        let before = self.browser_opens();
        let mut cmd = cli(&self.home, &["login", "--idp"]);
        self.env(&mut cmd);
        cmd.env("RUST_LOG", "debug")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let child = cmd.spawn().unwrap();
        let url = eventually("login --idp to open the browser", Duration::from_secs(20), async || {
            let text = std::fs::read_to_string(&self.opens).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            if lines.len() > before {
                Ok(lines[before].to_owned())
            } else {
                Err(lines.len())
            }
        })
        .await;
        assert!(url.starts_with(&format!("{}/authorize?", self.idp.issuer)), "{url}");
        let visit = auth_browse(&url).await;
        assert_eq!(visit.callback_status, Some(200), "{visit:?}");
        let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
            .await
            .expect("login --idp ends after the browser step")
            .unwrap();
        assert!(out.stdout.is_empty(), "stdout stays empty");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// `serve` with this org's environment, stderr captured.
    async fn serve(
        &self,
    ) -> (
        Client,
        tokio::sync::mpsc::UnboundedReceiver<Seen>,
        tokio::task::JoinHandle<String>,
    ) {
        let mut cmd = bridge_command(&self.home, &[]);
        self.env(&mut cmd);
        cmd.env("RUST_LOG", "debug");
        spawn_with_stderr(cmd).await
    }

    /// `mcp-bridge status --json` in the same environment as the bridge, the entry of
    /// each server by name. (Without the secrets' variables, status lists such a server
    /// from the live bridge only, without its grant: see the report of issue 17.)
    async fn status(&self) -> (String, Vec<(String, Value)>) {
        let mut cmd = cli(&self.home, &["status", "--json"]);
        self.env(&mut cmd);
        let (out, _) = run_ok(cmd).await;
        let v: Value = serde_json::from_str(&out).unwrap();
        let servers = v["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["server"].as_str().unwrap_or("").to_owned(), s.clone()))
            .collect();
        (out, servers)
    }
}

async fn auth_browse(url: &str) -> Visit {
    browse(url, true).await
}

/// A `$BROWSER` that appends each URL it is asked to open to a file, one per line.
fn counting_browser(dir: &Path) -> (PathBuf, PathBuf) {
    let script = dir.join("browser.sh");
    let out = dir.join("opened-urls.txt");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n", out.display()),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (script, out)
}

/// Call `name` until it succeeds (bounded): a refused token is replaced on the
/// bridge's next connection.
async fn call_eventually(client: &Client, name: &str) -> rmcp::model::CallToolResult {
    eventually_woken(
        &format!("a call to {name} to succeed"),
        Duration::from_secs(10),
        Every(Duration::from_millis(200)),
        async || {
            client
                .call_tool(params(name, json!({})))
                .await
                .map_err(|e| e.to_string())
        },
    )
    .await
}

fn tools_of(names: &[&str]) -> impl Fn(&[String]) -> bool {
    let want: Vec<String> = names.iter().map(|n| format!("{n}__whoami")).collect();
    move |have: &[String]| want.iter().all(|w| have.contains(w))
}

/// One IdP login (one browser tab), then three servers behind three authorization
/// servers: each reached with an ID-JAG made for it (audience = its AS issuer,
/// resource = its URL, client_id = the bridge's id there) that its AS checked in full;
/// serving uses the stored tokens, and when the ASes expire them, new ID-JAGs (fresh
/// `jti`s) bring new tokens, still with no browser.
#[tokio::test]
async fn one_idp_login_opens_three_servers() {
    let org = Org::new(&["sql", "wiki", "jira"]);
    let (ok, stderr) = org.login_idp().await;
    assert!(ok, "{stderr}");
    assert!(stderr.contains("signed in to the identity provider"), "{stderr}");
    for s in &org.sites {
        assert!(
            stderr.contains(&format!("{} (", s.name)) && stderr.contains("reached through the identity provider"),
            "{stderr}"
        );
    }
    assert_eq!(org.browser_opens(), 1);

    let log = org.idp.log();
    assert_eq!(log.granted("authorization_code"), 1);
    let exchanges = log.exchanges();
    assert_eq!(exchanges.len(), 3, "{exchanges:?}");
    for s in &org.sites {
        let x = exchanges
            .iter()
            .find(|x| x.audience.as_deref() == Some(s.auth.issuer.as_str()))
            .unwrap_or_else(|| panic!("no exchange for {}: {exchanges:?}", s.name));
        assert!(x.ok(), "{x:?}");
        assert_eq!(x.resource.as_deref(), Some(s.up.url.as_str()));
        assert_eq!(x.requested_token_type.as_deref(), Some(ID_JAG));
        assert_eq!(x.subject_token_type.as_deref(), Some(ID_TOKEN));
        assert_eq!(x.client_id.as_deref(), Some(IDP_CLIENT));
        let checks = s.auth.id_jag_checks();
        assert_eq!(checks.len(), 1, "{}: {checks:?}", s.name);
        assert!(checks[0].ok(), "{}: {:?}", s.name, checks[0]);
        assert_eq!(checks[0].client_id_value.as_deref(), Some(s.client_id.as_str()));
        assert_eq!(checks[0].resource_value.as_deref(), Some(s.up.url.as_str()));
        let bearer: Vec<_> = s
            .auth
            .token_requests()
            .into_iter()
            .filter(|t| t.grant_type.as_deref() == Some(JWT_BEARER))
            .collect();
        assert_eq!(bearer[0].auth_method.as_deref(), Some("client_secret_basic"));
        assert_eq!(bearer[0].client_id.as_deref(), Some(s.client_id.as_str()));
        let log = s.auth.log();
        assert!(log.authorizations.is_empty() && log.registrations.is_empty());
    }

    let (client, mut seen, _stderr) = org.serve().await;
    wait_for_tools(&client, &mut seen, tools_of(&["sql", "wiki", "jira"])).await;
    for s in &org.sites {
        let r = client
            .call_tool(params(&format!("{}__echo", s.name), json!({"text": s.name})))
            .await
            .unwrap();
        assert_eq!(first_text(&r), s.name);
        assert_eq!(s.auth.log().granted(JWT_BEARER), 1, "the stored token serves");
    }
    let (_, servers) = org.status().await;
    for (name, v) in &servers {
        assert!(v["auth"].as_str().unwrap_or("").contains("via idp"), "{name}: {v}");
    }

    // Each AS expires its token: new ID-JAGs, new tokens, no browser.
    for s in &org.sites {
        s.auth.expire_access_tokens();
    }
    for s in &org.sites {
        call_eventually(&client, &format!("{}__whoami", s.name)).await;
        assert_eq!(s.auth.log().granted(JWT_BEARER), 2, "{}", s.name);
        let checks = s.auth.id_jag_checks();
        assert!(checks.iter().all(|c| c.ok()), "{checks:?}");
        assert_ne!(checks[0].jti, checks[1].jti, "a new ID-JAG each time");
    }
    assert_eq!(org.idp.log().granted(TOKEN_EXCHANGE), 6);
    assert_eq!(org.idp.log().granted("authorization_code"), 1);
    assert_eq!(org.browser_opens(), 1, "exactly one browser tab, for the IdP");
    client.cancel().await.unwrap();
}

/// The IdP session ends (its refresh tokens revoked; its ID tokens short-lived): when
/// the servers' tokens are refused, their status says to run `mcp-bridge login --idp`;
/// after that login, the running bridge serves them again.
#[tokio::test]
async fn idp_session_expiry_asks_for_login_idp() {
    let org = Org::new(&["sql", "wiki"]);
    // ID tokens valid for 15 s, which the bridge counts as expired already (it wants
    // 30 s left): each use renews them with the IdP refresh token, so the IdP session
    // is what keeps access alive, and its end is seen at the next exchange.
    org.idp.set_id_token_lifetime(15);
    let (ok, stderr) = org.login_idp().await;
    assert!(ok, "{stderr}");
    let (client, mut seen, _stderr) = org.serve().await;
    wait_for_tools(&client, &mut seen, tools_of(&["sql", "wiki"])).await;

    org.idp.end_session();
    for s in &org.sites {
        s.auth.expire_access_tokens();
    }
    for s in &org.sites {
        let _ = client
            .call_tool(params(&format!("{}__whoami", s.name), json!({})))
            .await;
    }
    let servers = eventually_woken(
        "status to say login --idp for both servers",
        Duration::from_secs(15),
        Every(Duration::from_millis(200)),
        async || {
            let (_, servers) = org.status().await;
            // Failed for that reason (the `auth` column says the session ended as soon
            // as the IdP login is dropped, before the server's own attempt fails).
            let all = servers.iter().all(|(_, v)| {
                v["state"] == "failed" && v["last_error"].as_str().is_some_and(|e| e.contains("login --idp"))
            });
            if all && servers.len() == 2 {
                Ok(servers)
            } else {
                Err(servers)
            }
        },
    )
    .await;
    for (name, v) in &servers {
        assert!(v["auth"].as_str().unwrap_or("").contains("login --idp"), "{name}: {v}");
    }
    let (text, _) = run_ok(cli(&org.home, &["status"])).await;
    assert!(text.contains("login --idp"), "{text}");
    assert_eq!(org.browser_opens(), 1, "serve opens no browser for the IdP by itself");

    let (ok, stderr) = org.login_idp().await;
    assert!(ok, "{stderr}");
    assert_eq!(org.browser_opens(), 2);
    for s in &org.sites {
        let r = call_eventually(&client, &format!("{}__whoami", s.name)).await;
        assert!(!r.is_error.unwrap_or(false));
    }
    client.cancel().await.unwrap();
}

/// The IdP does not allow one AS's audience: that server fails with a clear error
/// (its AS never sees an assertion), the others serve.
#[tokio::test]
async fn an_audience_the_idp_refuses_fails_only_its_server() {
    let org = Org::new(&["sql", "wiki", "jira"]);
    org.idp.disallow_audience(&org.site("jira").auth.issuer);
    let (ok, stderr) = org.login_idp().await;
    assert!(!ok, "one server failed, the login says so: {stderr}");
    assert!(stderr.contains("refused access to jira"), "{stderr}");
    assert!(
        stderr.contains("invalid_target") || stderr.contains("not allowed"),
        "{stderr}"
    );
    let refused: Vec<_> = org.idp.log().exchanges().into_iter().filter(|x| !x.ok()).collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].error.as_deref(), Some("invalid_target"));
    assert_eq!(
        refused[0].audience.as_deref(),
        Some(org.site("jira").auth.issuer.as_str())
    );
    assert_eq!(org.site("jira").auth.log().requests(JWT_BEARER), 0);

    let (client, mut seen, _stderr) = org.serve().await;
    wait_for_tools(&client, &mut seen, tools_of(&["sql", "wiki"])).await;
    for name in ["sql", "wiki"] {
        let r = client
            .call_tool(params(&format!("{name}__whoami"), json!({})))
            .await
            .unwrap();
        assert_eq!(first_text(&r), "x");
    }
    let jira = eventually_woken(
        "status to show jira failed",
        Duration::from_secs(10),
        Every(Duration::from_millis(200)),
        async || {
            let (_, servers) = org.status().await;
            let jira = servers.into_iter().find(|(n, _)| n == "jira").unwrap().1;
            if jira["state"] == "failed" { Ok(jira) } else { Err(jira) }
        },
    )
    .await;
    let text = jira.to_string();
    assert!(text.contains("refused access to jira"), "{text}");
    assert!(!text.contains("login --idp"), "a new login would not help: {text}");
    assert_eq!(org.site("jira").auth.log().requests(JWT_BEARER), 0);
    assert_eq!(org.browser_opens(), 1);
    client.cancel().await.unwrap();
}

/// An ID token from `MCP_BRIDGE_IDP_ID_TOKEN` (CI) opens the servers with no browser
/// and no login at all.
#[tokio::test]
async fn an_id_token_from_the_environment_needs_no_browser() {
    let org = Org::new(&["sql", "wiki"]);
    let id_token = org.idp.issue_id_token(IDP_CLIENT);
    let mut cmd = bridge_command(&org.home, &[]);
    org.env(&mut cmd);
    cmd.env("MCP_BRIDGE_IDP_ID_TOKEN", &id_token);
    let (client, mut seen) = {
        let (c, s, _stderr) = spawn_with_stderr(cmd).await;
        (c, s)
    };
    wait_for_tools(&client, &mut seen, tools_of(&["sql", "wiki"])).await;
    for s in &org.sites {
        let r = client
            .call_tool(params(&format!("{}__whoami", s.name), json!({})))
            .await
            .unwrap();
        assert_eq!(first_text(&r), "x");
        assert_eq!(s.auth.log().granted(JWT_BEARER), 1);
    }
    assert_eq!(org.idp.log().granted("authorization_code"), 0);
    assert_eq!(org.browser_opens(), 0);
    client.cancel().await.unwrap();
}

/// Redaction: through a login, serving, and re-exchanges after expiry, at
/// `RUST_LOG=debug`: no ID token, IdP refresh or access token, ID-JAG, client secret
/// or access token appears in login's or serve's stderr, `status` (text, JSON),
/// `doctor`, or any file under the bridge's home but the credential store.
#[tokio::test]
async fn no_secret_in_any_output() {
    let org = Org::new(&["sql", "wiki"]);
    let (ok, login_stderr) = org.login_idp().await;
    assert!(ok, "{login_stderr}");
    let (client, mut seen, stderr) = org.serve().await;
    wait_for_tools(&client, &mut seen, tools_of(&["sql", "wiki"])).await;
    for s in &org.sites {
        s.auth.expire_access_tokens();
    }
    for s in &org.sites {
        call_eventually(&client, &format!("{}__whoami", s.name)).await;
    }
    let (status_json, _) = run_ok(cli(&org.home, &["status", "--json"])).await;
    let (status_text, _) = run_ok(cli(&org.home, &["status"])).await;
    let mut doctor = cli(&org.home, &["doctor"]);
    org.env(&mut doctor);
    let doctor = doctor.env("RUST_LOG", "debug").output().await.unwrap();
    let doctor = String::from_utf8_lossy(&doctor.stdout).into_owned() + &String::from_utf8_lossy(&doctor.stderr);
    client.cancel().await.unwrap();
    let serve_stderr = tokio::time::timeout(Duration::from_secs(10), stderr)
        .await
        .expect("the bridge exits after the IDE goes away")
        .unwrap();
    assert!(serve_stderr.contains("DEBUG"), "debug logging reached stderr");

    let mut secrets: Vec<String> = vec![IDP_SECRET.into()];
    secrets.extend(org.idp.issued_secrets());
    for s in &org.sites {
        secrets.push(s.secret.clone());
        secrets.extend(s.auth.issued_secrets());
        secrets.extend(s.auth.received_assertions());
    }
    assert!(
        org.sites.iter().all(|s| s.auth.received_assertions().len() >= 2),
        "ID-JAGs were exchanged twice per server"
    );
    let files = written_files(org.home.path());
    for s in &secrets {
        for (what, out) in [
            ("login --idp's stderr", &login_stderr),
            ("serve's stderr", &serve_stderr),
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

/// The test IdP and authorization server are honest judges. The IdP's discovery names
/// the token exchange and ID-JAGs, its JWKS the key; an exchange gives an ID-JAG with
/// the claims SEP-990 names, and is refused for an audience or resource the policy does
/// not allow and for an ID token of another client or another key. The AS redeems an
/// ID-JAG once (a replayed `jti` is refused) and refuses one with a wrong `typ`, `aud`,
/// `client_id`, `resource`, `exp` or signer, recording which check failed.
#[tokio::test]
async fn the_test_idp_and_as_judge_honestly() {
    let org = Org::new(&["sql"]);
    let s = org.site("sql");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let d: Value = http
        .get(org.idp.discovery_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["issuer"], json!(org.idp.issuer));
    assert_eq!(d["token_endpoint"], json!(org.idp.token_endpoint()));
    assert!(
        d["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(TOKEN_EXCHANGE))
    );
    assert_eq!(d["identity_chaining_requested_token_types_supported"], json!([ID_JAG]));
    let jwks: Value = http
        .get(d["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    assert_eq!(jwks["keys"][0]["crv"], "P-256");

    let form = |pairs: &[(&str, &str)]| {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    };
    let post = async |url: String, user: &str, pass: &str, body: String| {
        // RFC 6749 §2.3.1: id and secret form-encoded before base64 (reqwest does not).
        let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        let basic = common::jwt::base64_std(format!("{}:{}", enc(user), enc(pass)).as_bytes());
        let r = http
            .post(url)
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    let exchange = async |subject: &str, audience: &str, resource: &str| {
        let body = form(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("requested_token_type", ID_JAG),
            ("subject_token", subject),
            ("subject_token_type", ID_TOKEN),
            ("audience", audience),
            ("resource", resource),
        ]);
        post(org.idp.token_endpoint(), IDP_CLIENT, IDP_SECRET, body).await
    };
    let id_token = org.idp.issue_id_token(IDP_CLIENT);
    let (status, v) = exchange(&id_token, &s.auth.issuer, &s.up.url).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["issued_token_type"], json!(ID_JAG));
    let jag = v["access_token"].as_str().unwrap().to_owned();
    let p = common::jwt::parse(&jag, &org.idp.public_keys()).unwrap();
    assert!(p.signature_ok);
    assert_eq!(p.typ(), Some(ID_JAG_TYP));
    assert_eq!(p.str("iss"), Some(org.idp.issuer.as_str()));
    assert_eq!(p.str("aud"), Some(s.auth.issuer.as_str()));
    assert_eq!(p.str("client_id"), Some(s.client_id.as_str()));
    assert_eq!(p.str("resource"), Some(s.up.url.as_str()));
    assert_eq!(p.str("sub"), Some("alice"));
    assert!(p.str("jti").is_some() && p.int("exp").unwrap() > common::jwt::now());

    let other_client = org.idp.issue_id_token("someone-else");
    let forged = common::jwt::EcKey::generate().sign("JWT", &common::jwt::parse(&id_token, &[]).unwrap().claims);
    for (subject, audience, resource, error) in [
        (&id_token, "http://127.0.0.1:1", s.up.url.as_str(), "invalid_target"),
        (
            &id_token,
            s.auth.issuer.as_str(),
            "http://127.0.0.1:1/mcp",
            "invalid_target",
        ),
        (
            &other_client,
            s.auth.issuer.as_str(),
            s.up.url.as_str(),
            "invalid_grant",
        ),
        (&forged, s.auth.issuer.as_str(), s.up.url.as_str(), "invalid_grant"),
    ] {
        let (status, v) = exchange(subject, audience, resource).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some(error)),
            "{audience} {resource}: {v}"
        );
    }

    let redeem = async |assertion: &str| {
        let body = form(&[("grant_type", JWT_BEARER), ("assertion", assertion)]);
        post(s.auth.token_endpoint(), &s.client_id, &s.secret, body).await
    };
    let (status, v) = redeem(&jag).await;
    assert_eq!(status, 200, "{v}");
    assert!(v.get("refresh_token").is_none(), "no refresh token for an ID-JAG");
    assert!(s.auth.introspect(v["access_token"].as_str().unwrap()).is_ok());
    let (status, v) = redeem(&jag).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "replay: {v}"
    );
    assert!(!s.auth.id_jag_checks().pop().unwrap().jti_fresh);

    let now = common::jwt::now();
    let claims = |f: &dyn Fn(&mut Value)| {
        let mut c = json!({
            "iss": org.idp.issuer, "sub": "alice", "aud": s.auth.issuer,
            "client_id": s.client_id, "resource": s.up.url,
            "jti": common::jwt::random_id(), "iat": now, "exp": now + 300,
        });
        f(&mut c);
        c
    };
    type Case = (String, fn(&IdJagCheck) -> bool);
    let cases: Vec<Case> = vec![
        (org.idp.sign("JWT", &claims(&|_| {})), |c| !c.typ),
        (
            org.idp
                .sign(ID_JAG_TYP, &claims(&|c| c["aud"] = json!("http://127.0.0.1:1"))),
            |c| !c.aud,
        ),
        (
            org.idp
                .sign(ID_JAG_TYP, &claims(&|c| c["client_id"] = json!("someone-else"))),
            |c| !c.client_id,
        ),
        (
            org.idp.sign(
                ID_JAG_TYP,
                &claims(&|c| c["resource"] = json!("http://127.0.0.1:1/mcp")),
            ),
            |c| !c.resource,
        ),
        (org.idp.sign(ID_JAG_TYP, &claims(&|c| c["exp"] = json!(now - 5))), |c| {
            !c.exp
        }),
        (common::jwt::EcKey::generate().sign(ID_JAG_TYP, &claims(&|_| {})), |c| {
            !c.signature
        }),
    ];
    for (i, (assertion, failed)) in cases.iter().enumerate() {
        let (status, v) = redeem(assertion).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_grant")),
            "case {i}: {v}"
        );
        let check = s.auth.id_jag_checks().pop().unwrap();
        assert!(failed(&check) && !check.ok(), "case {i}: {check:?}");
    }
    // The IdP's client must authenticate: a wrong secret is invalid_client.
    let body = form(&[
        ("grant_type", TOKEN_EXCHANGE),
        ("requested_token_type", ID_JAG),
        ("subject_token", &id_token),
        ("subject_token_type", ID_TOKEN),
        ("audience", &s.auth.issuer),
        ("resource", &s.up.url),
    ]);
    let (status, v) = post(org.idp.token_endpoint(), IDP_CLIENT, "wrong", body).await;
    assert_eq!((status, v["error"].as_str()), (401, Some("invalid_client")));
}

/// As for a refreshable login, the call that meets a refused token waits for a new
/// one (a new ID-JAG, no browser) and runs; the refused token is not presented again.
#[tokio::test]
async fn the_call_after_a_refused_token_succeeds() {
    let org = Org::new(&["sql"]);
    let (ok, stderr) = org.login_idp().await;
    assert!(ok, "{stderr}");
    let (client, mut seen, _stderr) = org.serve().await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"whoami".into())).await;
    org.site("sql").auth.expire_access_tokens();
    let r = client.call_tool(params("whoami", json!({}))).await.unwrap();
    assert_eq!(first_text(&r), "x");
    // 2, or 3 if a background list met the refused token beside the call.
    assert!(org.site("sql").auth.log().granted(JWT_BEARER) >= 2);
    assert_eq!(org.browser_opens(), 1);
    org.site("sql").up.guard.assert_refused_then_replaced();
    client.cancel().await.unwrap();
}
