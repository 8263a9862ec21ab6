//! The bridge following the world while it serves: registry polls, config and
//! registry-file edits, cache hints, keepalive and load-balancer cookies. Each
//! test drives the spawned binary with a real MCP client in front of real
//! Streamable HTTP servers and a registry API on loopback.

mod common;

use mcp_bridge::util::Locked;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use rmcp::ServiceExt;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// A registry API on loopback whose contents the test changes: it honours
/// `updated_since` and answers conditional requests with 304.
#[derive(Default)]
struct RegistryState {
    entries: Vec<Value>,
    /// Bumped on every change; the ETag is derived from it.
    generation: u64,
    /// 0: healthy; 1: HTTP 503; 2: 200 with a body that is not a registry page.
    fault: u8,
    queries: Vec<String>,
    not_modified: usize,
}

#[derive(Clone)]
struct TestRegistry {
    base: String,
    state: Arc<Mutex<RegistryState>>,
}

fn entry(name: &str, ns: &str, url: &str, updated: &str, status: &str) -> Value {
    json!({
        "server": { "name": name, "description": format!("{ns} server"), "version": "1.0.0",
            "remotes": [{ "type": "streamable-http", "url": url }] },
        "_meta": {
            "io.modelcontextprotocol.registry/official": { "status": status, "isLatest": true, "updatedAt": updated },
            "dev.mcp-bridge/config": { "schemaVersion": 1, "namespace": ns }
        }
    })
}

impl TestRegistry {
    /// Start it; the receiver hears of every request, so tests can wait for
    /// polls without sleeping.
    async fn start(entries: Vec<Value>) -> (TestRegistry, mpsc::UnboundedReceiver<()>) {
        let state = Arc::new(Mutex::new(RegistryState {
            entries,
            generation: 1,
            ..Default::default()
        }));
        let (tx, rx) = mpsc::unbounded_channel();
        let (st, polled) = (state.clone(), tx);
        let app = axum::Router::new().route(
            "/v0.1/servers",
            axum::routing::get(move |q: axum::extract::RawQuery, headers: axum::http::HeaderMap| {
                let (st, polled) = (st.clone(), polled.clone());
                async move {
                    use axum::response::IntoResponse;
                    let q = q.0.unwrap_or_default();
                    let since = url::form_urlencoded::parse(q.as_bytes())
                        .find(|(k, _)| k == "updated_since")
                        .map(|(_, v)| v.into_owned());
                    let mut s = st.locked();
                    s.queries.push(format!("{since:?} {q}"));
                    let _ = polled.send(());
                    match s.fault {
                        1 => return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down").into_response(),
                        2 => return "<html>maintenance</html>".into_response(),
                        _ => {}
                    }
                    let etag = format!("\"g{}-{}\"", s.generation, since.as_deref().unwrap_or(""));
                    if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
                        s.not_modified += 1;
                        return axum::http::StatusCode::NOT_MODIFIED.into_response();
                    }
                    // Timestamps in one format compare as text here.
                    let servers: Vec<Value> = s
                        .entries
                        .iter()
                        .filter(|e| {
                            let at = e["_meta"]["io.modelcontextprotocol.registry/official"]["updatedAt"]
                                .as_str()
                                .unwrap_or("");
                            let deleted =
                                e["_meta"]["io.modelcontextprotocol.registry/official"]["status"] == "deleted";
                            match &since {
                                Some(since) => at > since.as_str(),
                                None => !deleted,
                            }
                        })
                        .cloned()
                        .collect();
                    let body = json!({ "servers": servers, "metadata": { "count": servers.len() } });
                    (
                        [("content-type", "application/json"), ("etag", etag.as_str())],
                        body.to_string(),
                    )
                        .into_response()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (TestRegistry { base, state }, rx)
    }

    fn change(&self, f: impl FnOnce(&mut Vec<Value>)) {
        let mut s = self.state.locked();
        f(&mut s.entries);
        s.generation += 1;
    }
}

/// Wait until the registry has answered `n` more requests.
async fn polls(rx: &mut mpsc::UnboundedReceiver<()>, n: usize) {
    for _ in 0..n {
        tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("the bridge polls the registry")
            .unwrap();
    }
}

/// Spawn the bridge with its stderr captured, line by line.
async fn spawn_with_stderr(home: &Home, args: &[&str]) -> (Client, mpsc::UnboundedReceiver<Seen>, Stderr) {
    let (tx, rx) = mpsc::unbounded_channel();
    let cmd = bridge_command(home, args);
    let (transport, stderr) = TokioChildProcess::builder(cmd).stderr(Stdio::piped()).spawn().unwrap();
    let client = Ide::new(tx).serve(transport).await.expect("bridge initialises");
    let (ltx, lrx) = mpsc::unbounded_channel();
    let all = Arc::new(Mutex::new(String::new()));
    let a = all.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr.unwrap()).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            a.locked().push_str(&l);
            a.locked().push('\n');
            let _ = ltx.send(l);
        }
    });
    (client, rx, Stderr { lines: lrx, all })
}

struct Stderr {
    lines: mpsc::UnboundedReceiver<String>,
    all: Arc<Mutex<String>>,
}

impl Stderr {
    /// Wait (bounded) for a log line containing `text`.
    async fn wait_for(&mut self, text: &str) -> String {
        let what = format!("a log line with {text:?}");
        eventually_woken(&what, Duration::from_secs(20), Now, async || {
            match self.lines.recv().await {
                Some(l) if l.contains(text) => Ok(l),
                Some(_) => Err(Text(format!("the log so far:\n{}", self.all.locked()))),
                None => panic!("no log line with {text:?}; got:\n{}", self.all.locked()),
            }
        })
        .await
    }

    fn count(&self, text: &str) -> usize {
        self.all.locked().matches(text).count()
    }
}

/// The registry adds a server, marks one deleted, and goes down: the bridge
/// connects and drops servers live, tells the IDE, keeps serving the last good
/// list through the outage, and says so once.
#[tokio::test]
async fn registry_changes_apply_live_and_an_outage_keeps_serving() {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let beta = Upstream::start(TestServer::new(Era::Modern, "beta"));
    let gamma = Upstream::start(TestServer::new(Era::Legacy, "gamma"));
    let (reg, mut polled) = TestRegistry::start(vec![
        entry("dev.test/alpha", "alpha", &alpha.url, "2026-11-01T00:00:00Z", "active"),
        entry("dev.test/beta", "beta", &beta.url, "2026-11-02T00:00:00Z", "active"),
    ])
    .await;
    let home = Home::new();
    home.write_config(&format!(
        "[registry]\nurl = \"{}\"\nrefresh = 0.2\n[naming]\nprefix = \"always\"\n",
        reg.base
    ));
    let (client, mut seen, mut log) = spawn_with_stderr(&home, &[]).await;
    wait_for_tools(&client, &mut seen, |n| {
        n.contains(&"alpha__echo".into()) && n.contains(&"beta__echo".into())
    })
    .await;

    // Unchanged polls are incremental and conditional.
    polls(&mut polled, 3).await;
    {
        let s = reg.state.locked();
        let last = s.queries.last().unwrap();
        assert!(
            last.contains("updated_since") && last.contains("2026-11-02T00:00:00Z"),
            "{last}"
        );
        assert!(s.not_modified >= 1, "{:?}", s.queries);
    }

    // A server is added: the IDE hears of it and can call it.
    while seen.try_recv().is_ok() {}
    reg.change(|e| {
        e.push(entry(
            "dev.test/gamma",
            "gamma",
            &gamma.url,
            "2026-11-03T00:00:00Z",
            "active",
        ))
    });
    wait_for_tools(&client, &mut seen, |n| n.contains(&"gamma__whoami".into())).await;
    let r = client.call_tool(params("gamma__whoami", json!({}))).await.unwrap();
    assert_eq!(first_text(&r), "gamma");

    // A server is deleted: it disappears and its tools are refused.
    reg.change(|e| {
        e[0]["_meta"]["io.modelcontextprotocol.registry/official"]["status"] = json!("deleted");
        e[0]["_meta"]["io.modelcontextprotocol.registry/official"]["updatedAt"] = json!("2026-11-04T00:00:00Z");
    });
    let names = wait_for_tools(&client, &mut seen, |n| !n.iter().any(|t| t.starts_with("alpha__"))).await;
    assert!(names.contains(&"beta__echo".into()) && names.contains(&"gamma__echo".into()));
    assert!(client.call_tool(params("alpha__echo", json!({}))).await.is_err());

    // The registry goes down, then answers garbage: everything keeps serving.
    reg.state.locked().fault = 1;
    polls(&mut polled, 3).await;
    reg.state.locked().fault = 2;
    polls(&mut polled, 3).await;
    let names = tool_names(&client).await;
    assert!(
        names.contains(&"beta__echo".into()) && names.contains(&"gamma__echo".into()),
        "{names:?}"
    );
    let r = client
        .call_tool(params("beta__echo", json!({ "text": "still here" })))
        .await
        .unwrap();
    assert_eq!(first_text(&r), "still here");

    // It comes back: said once, as is the outage.
    reg.state.locked().fault = 0;
    log.wait_for("the registry answers again").await;
    assert_eq!(log.count("keeping the last good list"), 1, "{}", log.all.locked());
    drop(client);
}

/// A config edit applies live (servers added and removed, even when an editor
/// replaces the file); a broken edit is refused with its line and changes nothing.
#[tokio::test]
async fn config_edits_apply_live_and_broken_ones_change_nothing() {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let beta = Upstream::start(TestServer::new(Era::Modern, "beta"));
    let home = Home::new();
    let naming = "[naming]\nprefix = \"always\"\n";
    home.servers_config(&[("alpha", &alpha.url)], naming);
    let (client, mut seen, mut log) = spawn_with_stderr(&home, &[]).await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"alpha__echo".into())).await;

    // Add beta, writing the file in place.
    home.servers_config(&[("alpha", &alpha.url), ("beta", &beta.url)], naming);
    wait_for_tools(&client, &mut seen, |n| n.contains(&"beta__echo".into())).await;

    // A broken edit: refused, with the line, and nothing changes.
    home.write_config(&format!("{naming}\n[[servers]]\nname = \"alpha\"\nurl = \n"));
    log.wait_for("The change was not applied").await;
    let refused = log.all.locked().clone();
    assert!(refused.contains("line 6"), "{refused}");
    let names = tool_names(&client).await;
    assert!(names.contains(&"alpha__echo".into()) && names.contains(&"beta__echo".into()));
    let r = client.call_tool(params("alpha__whoami", json!({}))).await.unwrap();
    assert_eq!(first_text(&r), "alpha");

    // An editor's save: write elsewhere, rename over. Alpha goes, naming changes.
    let tmp = home.path().join(".config.toml.swp");
    std::fs::write(
        &tmp,
        format!(
            "[naming]\nprefix = \"always\"\nseparator = \"-\"\n[[servers]]\nname = \"beta\"\nurl = \"{}\"\n",
            beta.url
        ),
    )
    .unwrap();
    std::fs::rename(&tmp, home.config()).unwrap();
    let names = wait_for_tools(&client, &mut seen, |n| n.contains(&"beta-echo".into())).await;
    assert!(!names.iter().any(|n| n.starts_with("alpha")), "{names:?}");
    let r = client.call_tool(params("beta-whoami", json!({}))).await.unwrap();
    assert_eq!(first_text(&r), "beta");
}

/// A local registry file is watched like the config.
#[tokio::test]
async fn registry_file_edits_apply_live() {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let beta = Upstream::start(TestServer::new(Era::Modern, "beta"));
    let home = Home::new();
    let file = home.path().join("registry.json");
    let page = |servers: &[(&str, &str, &str)]| mcp_bridge::commands::demo::registry_page(servers).to_string();
    std::fs::write(&file, page(&[("dev.test/alpha", "alpha", &alpha.url)])).unwrap();
    home.write_config(&format!(
        "[registry]\nfile = {:?}\n[naming]\nprefix = \"always\"\n",
        file.display().to_string()
    ));
    let (client, mut seen, mut log) = spawn_with_stderr(&home, &[]).await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"alpha__echo".into())).await;

    std::fs::write(&file, "{ not json").unwrap();
    log.wait_for("keeps the previous registry").await;
    assert!(tool_names(&client).await.contains(&"alpha__echo".into()));

    std::fs::write(&file, page(&[("dev.test/beta", "beta", &beta.url)])).unwrap();
    let names = wait_for_tools(&client, &mut seen, |n| n.contains(&"beta__echo".into())).await;
    assert!(!names.contains(&"alpha__echo".into()), "{names:?}");
}

/// A stateless server's `ttlMs` makes the bridge re-list it when the hint
/// expires, long before the periodic fallback (10 minutes by default).
#[tokio::test]
async fn ttl_hint_triggers_a_relist() {
    let mut server = TestServer::new(Era::Modern, "beta");
    server.ttl_ms = Some(500);
    let beta = Upstream::start(server);
    let home = Home::new();
    home.servers_config(&[("beta", &beta.url)], "[naming]\nprefix = \"always\"\n");
    let (client, mut seen) = spawn_bridge(&home, &[]).await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"beta__echo".into())).await;
    client
        .call_tool(params("beta__add_tool_silently", json!({})))
        .await
        .unwrap();
    wait_for_tools(&client, &mut seen, |n| n.contains(&"beta__extra_0".into())).await;
}

/// Behind a sticky load balancer the session works only with its cookie; idle
/// sessions are pinged.
#[tokio::test]
async fn load_balancer_cookie_is_kept_and_idle_sessions_are_pinged() {
    let mut server = TestServer::new(Era::Legacy, "alpha");
    server.sticky = true;
    let alpha = Upstream::start(server);
    let probe = alpha.server.probe.clone();
    let home = Home::new();
    home.servers_config(
        &[("alpha", &alpha.url)],
        "[timeouts]\nkeepalive = 0.2\nlist_refresh = 0\n[naming]\nprefix = \"always\"\n",
    );
    let (client, mut seen) = spawn_bridge(&home, &[]).await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"alpha__echo".into())).await;
    let r = client
        .call_tool(params("alpha__echo", json!({ "text": "sticky" })))
        .await
        .unwrap();
    assert_eq!(first_text(&r), "sticky");

    // Idle: POSTs keep arriving (pings; periodic re-listing is off).
    let posts = || probe.http.locked().iter().filter(|(m, _)| m == "POST").count();
    let before = posts();
    eventually("three keepalive pings", Duration::from_secs(20), async || {
        let now = posts();
        if now >= before + 3 {
            Ok(())
        } else {
            Err(format!("{} POSTs", now - before))
        }
    })
    .await;
    assert_eq!(probe.calls.load(Ordering::SeqCst), 1);
}

/// `mcp-bridge status --json`, run beside a serving bridge, reports what this
/// test set up: where each server came from, its state, protocol and counts,
/// the dead one's error, the registry and its age, and the bridge itself; once
/// the bridge is gone, only the config is left.
#[tokio::test]
async fn status_reports_the_serving_bridge() {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let beta = Upstream::start(TestServer::new(Era::Modern, "beta"));
    let (reg, _polled) = TestRegistry::start(vec![entry(
        "dev.test/alpha",
        "alpha",
        &alpha.url,
        "2026-11-01T00:00:00Z",
        "active",
    )])
    .await;
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}/mcp", dead.local_addr().unwrap());
    drop(dead);
    let home = Home::new();
    let config = format!(
        "[registry]\nurl = \"{}\"\n[naming]\nprefix = \"always\"\n\
         [[servers]]\nname = \"beta\"\nurl = \"{}\"\n[[servers]]\nname = \"gone\"\nurl = \"{dead_url}\"\n",
        reg.base, beta.url
    );
    home.write_config(&config);
    let (client, mut seen) = spawn_bridge(&home, &[]).await;
    wait_for_tools(&client, &mut seen, |n| {
        n.contains(&"alpha__echo".into()) && n.contains(&"beta__echo".into())
    })
    .await;

    // `status --json`: its exit code and report.
    let status_exit = || async {
        let out = cli(&home, &["status", "--json"]).output().await.unwrap();
        let v = serde_json::from_slice::<Value>(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), v)
    };
    let status = || async {
        let (code, v) = status_exit().await;
        assert_eq!(code, Some(0), "{v}");
        v
    };
    let server = |v: &Value, id: &str| -> Value {
        v["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["server"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no {id} in {v}"))
    };
    // The bridge publishes within a moment of connecting; poll, bounded.
    let every = Every(Duration::from_millis(100));
    let v = eventually_woken("all servers published", Duration::from_secs(20), every, async || {
        let v = status().await;
        let ready = |id| server(&v, id)["state"] == "ready";
        if ready("alpha") && ready("beta") && server(&v, "gone")["state"] == "failed" {
            Ok(v)
        } else {
            Err(Text(format!("{v:#}")))
        }
    })
    .await;
    let (a, b, g) = (server(&v, "alpha"), server(&v, "beta"), server(&v, "gone"));
    assert_eq!(a["source"], "registry");
    assert_eq!(b["source"], "config");
    assert_eq!(a["url"], json!(alpha.url));
    assert_eq!(a["protocol"], "2025-11-25");
    assert_eq!(b["protocol"], "2026-07-28");
    assert_eq!(a["tools"], json!(TOOLS));
    assert_eq!(b["tools"], json!(TOOLS));
    assert!(a["last_refresh_age_seconds"].as_u64().is_some(), "{a}");
    assert!(g["last_error"].as_str().unwrap().contains("cannot reach"), "{g}");
    assert_eq!(g["tools"], json!(0));
    assert_eq!(v["registry"]["source"], json!(reg.base));
    assert_eq!(v["registry"]["servers"], json!(1));
    assert!(v["registry"]["age_seconds"].as_u64().unwrap() < 60, "{v}");
    assert_eq!(v["bridges"].as_array().unwrap().len(), 1, "{v}");

    // A broken edit: the running bridge refuses it and says so; `status` fails
    // on the config (exit 64) but still shows what the bridge reports.
    home.write_config("[[servers]]\nname = \"beta\"\nurl = \n");
    let every = Every(Duration::from_millis(100));
    eventually_woken("the refused edit to show", Duration::from_secs(20), every, async || {
        let (code, v) = status_exit().await;
        assert_eq!(code, Some(64));
        if v["bridges"][0]["config_error"]
            .as_str()
            .is_some_and(|e| e.contains("line 3"))
        {
            assert_eq!(server(&v, "alpha")["state"], "ready", "{v}");
            assert_eq!(server(&v, "beta")["state"], "ready", "{v}");
            return Ok(());
        }
        Err(Text(format!("{v:#}")))
    })
    .await;

    home.write_config(&config);

    // The bridge exits with its IDE; its published state goes with it.
    drop(client);
    let every = Every(Duration::from_millis(100));
    eventually_woken("the bridge's state to go", Duration::from_secs(20), every, async || {
        let v = status().await;
        if v["bridges"].as_array().unwrap().is_empty() {
            assert_ne!(server(&v, "alpha")["state"], "ready", "{v}");
            return Ok(());
        }
        Err(Text(format!("{v:#}")))
    })
    .await;
}
