//! First contact: the bridge as a new user meets it. An empty home (no catalog
//! cache, no login), a client that lists once and calls at once, a client that
//! speaks 2026-07-28, chatter before `initialize`, and an IDE that goes away
//! with work in flight, a config that does not parse.

// Logging is deprecated for 2026-07-28 (SEP-2577); 2025 IDEs still show it.
#![allow(deprecated)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const MODERN_META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"}}"#;

/// A 2026-07-28 request line: `params` is a JSON object body without braces.
fn modern(id: u64, method: &str, params: &str) -> String {
    let sep = if params.is_empty() { "" } else { "," };
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{{{params}{sep}{MODERN_META}}}}}"#)
}

/// The answer to request `id`, skipping notifications.
async fn answer(raw: &mut Raw, id: u64) -> Value {
    loop {
        let v = raw.recv().await;
        if v["id"] == json!(id) && v.get("method").is_none() {
            return v;
        }
    }
}

/// The answers to requests `ids`, in whatever order they come.
async fn answers(raw: &mut Raw, ids: &[u64]) -> std::collections::HashMap<u64, Value> {
    let mut got = std::collections::HashMap::new();
    while got.len() < ids.len() {
        let v = raw.recv().await;
        if let Some(id) = v["id"].as_u64().filter(|id| ids.contains(id))
            && v.get("method").is_none()
        {
            got.insert(id, v);
        }
    }
    got
}

fn names(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{list}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

/// A listener that accepts connections and never answers: a hung server.
async fn black_hole() -> (String, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", l.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    (url, task)
}

/// A bridge from an empty home in front of `alpha` (2025-11-25) and `beta`
/// (2026-07-28), and a legacy IDE that has just initialised it.
async fn two_eras() -> (Upstream, Upstream, Home, Raw) {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let beta = Upstream::start(TestServer::new(Era::Modern, "beta"));
    let home = Home::new();
    home.servers_config(&[("alpha", &alpha.url), ("beta", &beta.url)], "");
    let mut raw = Raw::spawn(&home);
    raw.initialize().await;
    (alpha, beta, home, raw)
}

/// With no cache, the very first `tools/list` (sent right after `initialize`)
/// already holds every reachable server's tools, in both protocol generations.
#[tokio::test]
async fn first_list_from_an_empty_home_has_every_tool() {
    let (_alpha, _beta, _home, mut raw) = two_eras().await;
    raw.send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#).await;
    let list = answer(&mut raw, 2).await;
    let got = names(&list);
    assert_eq!(got.len(), 2 * TOOLS, "{got:?}");
    assert!(got.contains(&"alpha__echo".to_owned()) && got.contains(&"beta__echo".to_owned()));
}

/// A client that calls without listing first, right after `initialize`, on a
/// first launch: the call waits for the server's first listing instead of
/// failing "unknown tool". The same holds for prompts and resources.
#[tokio::test]
async fn first_call_right_after_initialize_finds_its_tool() {
    let (_alpha, _beta, _home, mut raw) = two_eras().await;
    raw.send(
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"beta__echo","arguments":{"text":"first"}}}"#,
    )
    .await;
    raw.send(
        r#"{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"alpha__greet","arguments":{"who":"you"}}}"#,
    )
    .await;
    raw.send(r#"{"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"mem://beta/own"}}"#)
        .await;
    let mut answers = answers(&mut raw, &[2, 3, 4]).await;
    let call = answers.remove(&2).unwrap();
    assert_eq!(call["result"]["content"][0]["text"], json!("first"), "{call}");
    let prompt = answers.remove(&3).unwrap();
    assert_eq!(
        prompt["result"]["messages"][0]["content"]["text"],
        json!("alpha greets \"you\""),
        "{prompt}"
    );
    let read = answers.remove(&4).unwrap();
    assert_eq!(
        read["result"]["contents"][0]["text"],
        json!("beta says mem://beta/own"),
        "{read}"
    );
    // A name no server has is still unknown, once the servers have listed.
    raw.send(r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"nobody__nothing"}}"#)
        .await;
    let v = answer(&mut raw, 5).await;
    assert_eq!(v["error"]["code"], json!(-32602), "{v}");
}

/// The first `tools/list` of a bridge in front of `alpha` (legacy) and
/// `other`, with `timeouts` in the config.
async fn first_list_beside(other: &str, timeouts: &str) -> Vec<String> {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let home = Home::new();
    home.servers_config(
        &[("alpha", &alpha.url), ("other", other)],
        &format!("[timeouts]\n{timeouts}\n"),
    );
    let mut raw = Raw::spawn(&home);
    raw.initialize().await;
    raw.send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#).await;
    names(&answer(&mut raw, 2).await)
}

/// A server that cannot be reached stops holding the first answer as soon as
/// its connection fails: the IDE gets the others' tools without waiting out
/// `first_list` (set far beyond the test's patience here).
#[tokio::test]
async fn a_dead_server_does_not_hold_the_first_answer() {
    // A port nobody listens on: connection refused at once.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/mcp", l.local_addr().unwrap())
    };
    let got = first_list_beside(&dead, "first_list = 120").await;
    assert_eq!(got.len(), TOOLS, "{got:?}");
    assert!(got.iter().all(|n| n.starts_with("alpha__")), "{got:?}");
}

/// A server that accepts and never answers holds the first answer for
/// `first_list` at most, then the IDE gets what the others have.
#[tokio::test]
async fn a_hung_server_holds_the_first_answer_only_for_first_list() {
    let (hung, _hole) = black_hole().await;
    let got = first_list_beside(&hung, "first_list = 1\nconnect = 60").await;
    assert_eq!(got.len(), TOOLS, "{got:?}");
    assert!(got.iter().all(|n| n.starts_with("alpha__")), "{got:?}");
}

/// A 2026-07-28 IDE gets results valid in its generation from a 2025-11-25
/// server: `resultType` on every result, cache hints on cacheable ones.
#[tokio::test]
async fn a_modern_ide_gets_valid_results_from_a_legacy_server() {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let home = Home::new();
    home.servers_config(&[("alpha", &alpha.url)], "");
    let mut raw = Raw::spawn(&home);
    raw.send(&modern(1, "server/discover", "")).await;
    let discover = answer(&mut raw, 1).await;
    assert_eq!(discover["result"]["resultType"], json!("complete"), "{discover}");
    let requests = [
        ("tools/list", String::new()),
        ("tools/call", r#""name":"echo","arguments":{"text":"hi"}"#.to_owned()),
        ("prompts/list", String::new()),
        ("prompts/get", r#""name":"greet","arguments":{"who":"me"}"#.to_owned()),
        ("resources/list", String::new()),
        ("resources/templates/list", String::new()),
        ("resources/read", r#""uri":"mem://alpha/own""#.to_owned()),
        (
            "completion/complete",
            r#""ref":{"type":"ref/prompt","name":"greet"},"argument":{"name":"who","value":"x"}"#.to_owned(),
        ),
    ];
    for (i, (method, params)) in requests.iter().enumerate() {
        let id = 10 + i as u64;
        raw.send(&modern(id, method, params)).await;
        let v = answer(&mut raw, id).await;
        assert_eq!(v["result"]["resultType"], json!("complete"), "{method}: {v}");
        if method.ends_with("list") || *method == "resources/read" {
            assert!(v["result"]["ttlMs"].is_u64(), "{method}: {v}");
            assert!(v["result"]["cacheScope"].is_string(), "{method}: {v}");
        }
    }
}

/// A 2025-11-25 IDE never sees 2026-only fields, even from a 2026-07-28 server.
#[tokio::test]
async fn a_legacy_ide_never_gets_modern_fields() {
    let mut server = TestServer::new(Era::Modern, "beta");
    server.ttl_ms = Some(60_000);
    let beta = Upstream::start(server);
    let home = Home::new();
    home.servers_config(&[("beta", &beta.url)], "");
    let mut raw = Raw::spawn(&home);
    raw.initialize().await;
    let requests = [
        ("tools/list", "{}"),
        ("tools/call", r#"{"name":"echo","arguments":{"text":"hi"}}"#),
        ("resources/read", r#"{"uri":"mem://beta/own"}"#),
        ("prompts/get", r#"{"name":"greet","arguments":{"who":"me"}}"#),
    ];
    for (i, (method, params)) in requests.iter().enumerate() {
        let id = 10 + i as u64;
        raw.send(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#
        ))
        .await;
        let v = answer(&mut raw, id).await;
        let r = &v["result"];
        assert!(r.is_object(), "{method}: {v}");
        for field in ["resultType", "ttlMs", "cacheScope"] {
            assert!(r.get(field).is_none(), "{method} has {field}: {v}");
        }
    }
}

/// Notifications and stray responses before `initialize` are ignored, a
/// request other than `initialize`/`ping`/`server/discover` gets an error, and
/// the bridge keeps waiting for `initialize`.
#[tokio::test]
async fn chatter_before_initialize_is_survived() {
    let home = Home::new();
    let mut raw = Raw::spawn(&home);
    raw.send(r#"{"jsonrpc":"2.0","method":"$/setTrace","params":{"value":"off"}}"#)
        .await;
    raw.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .await;
    raw.send(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}"#)
        .await;
    raw.send(r#"{"jsonrpc":"2.0","id":"stray","result":{}}"#).await;
    raw.send(r#"{"jsonrpc":"2.0","id":5,"method":"tools/list"}"#).await;
    let v = answer(&mut raw, 5).await;
    assert!(v["error"]["code"].is_i64(), "{v}");
    raw.send(r#"{"jsonrpc":"2.0","id":6,"method":"ping"}"#).await;
    assert_eq!(answer(&mut raw, 6).await["result"], json!({}));
    raw.initialize().await;
    raw.send(r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#).await;
    assert!(answer(&mut raw, 7).await["result"]["tools"].is_array());
}

/// stdin EOF ends the process within about a second, even with a call in
/// flight and a 2026-07-28 listen stream open (rmcp alone would drain for 5 s).
#[tokio::test]
async fn stdin_eof_exits_at_once_with_work_in_flight() {
    let alpha = Upstream::start(TestServer::new(Era::Modern, "alpha"));
    let home = Home::new();
    home.servers_config(&[("alpha", &alpha.url)], "");
    let mut raw = Raw::spawn(&home);
    raw.send(&modern(
        1,
        "subscriptions/listen",
        r#""notifications":{"toolsListChanged":true}"#,
    ))
    .await;
    raw.send(&modern(2, "tools/call", r#""name":"slow","arguments":{"seconds":60}"#))
        .await;
    tokio::time::timeout(Duration::from_secs(20), alpha.server.probe.started.notified())
        .await
        .expect("the call reaches the server");
    let start = Instant::now();
    drop(raw.stdin.take());
    let status = tokio::time::timeout(Duration::from_secs(10), raw.child.wait())
        .await
        .expect("exits")
        .unwrap();
    let took = start.elapsed();
    eprintln!("exit after stdin EOF with a call in flight took {took:?}");
    assert!(status.success(), "{status:?}");
    // rmcp's drain would take 5 s; the bridge's own bound is under a second
    // (the margin is for a loaded CI machine).
    assert!(took < Duration::from_secs(3), "{took:?}");
}

/// A legacy server that answers `server/discover` with anything but a
/// DiscoverResult (an empty success, a malformed result, an HTTP 4xx, an
/// error) is reached over `initialize`; and the next start, knowing the
/// server is legacy, does not probe it again.
#[tokio::test]
async fn odd_answers_to_discover_fall_back_to_initialize() {
    let answers: [(u16, &str); 4] = [
        (200, r#"{"jsonrpc":"2.0","id":{id},"result":{}}"#),
        (200, r#"{"jsonrpc":"2.0","id":{id},"result":{"supportedVersions":42}}"#),
        (400, r#"{"error":"unknown method"}"#),
        (
            200,
            r#"{"jsonrpc":"2.0","id":{id},"error":{"code":-32601,"message":"Method not found"}}"#,
        ),
    ];
    for odd in answers {
        let mut server = TestServer::new(Era::Legacy, "alpha");
        server.discover_answer = Some(odd);
        let alpha = Upstream::start(server);
        let home = Home::new();
        home.servers_config(&[("alpha", &alpha.url)], "");
        for start in 0..2 {
            let mut raw = Raw::spawn(&home);
            raw.initialize().await;
            raw.send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami"}}"#)
                .await;
            let v = answer(&mut raw, 2).await;
            assert_eq!(
                v["result"]["content"][0]["text"],
                json!("alpha"),
                "{odd:?} start {start}: {v}"
            );
            drop(raw.stdin.take());
            raw.child.wait().await.unwrap();
        }
        let probes = alpha.server.probe.discovers.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(probes, 1, "{odd:?}: the second start probed again");
    }
}

/// URIs a server puts in a tool result (a resource link, an embedded
/// resource) read back through the bridge from that server: unchanged when
/// they route there already, namespaced when another server has the same URI.
#[tokio::test]
async fn uris_in_results_read_back_from_their_server() {
    let (_alpha, _beta, _home, mut raw) = two_eras().await;
    // `mem://shared` is listed by both servers; `mem://beta/own` only by beta.
    for (id, link, owner) in [(2, "mem://shared", "beta"), (3, "mem://beta/own", "beta")] {
        raw.send(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{owner}__echo","arguments":{{"link":"{link}"}}}}}}"#
        ))
        .await;
        let v = answer(&mut raw, id).await;
        let content = &v["result"]["content"];
        let linked = content[0]["uri"].as_str().unwrap_or_else(|| panic!("{v}")).to_owned();
        assert_eq!(content[1]["resource"]["uri"], json!(linked), "{v}");
        if link == "mem://shared" {
            assert!(linked.starts_with("mcp-bridge://beta/"), "{v}");
        } else {
            assert_eq!(linked, link);
        }
        let read = 10 + id;
        raw.send(&format!(
            r#"{{"jsonrpc":"2.0","id":{read},"method":"resources/read","params":{{"uri":"{linked}"}}}}"#
        ))
        .await;
        let r = answer(&mut raw, read).await;
        assert_eq!(
            r["result"]["contents"][0]["text"],
            json!(format!("beta says {link}")),
            "{r}"
        );
        assert_eq!(r["result"]["contents"][0]["uri"], json!(linked), "{r}");
    }
}

/// An IDE that records the log notifications it gets.
#[derive(Clone)]
struct LogIde(tokio::sync::mpsc::UnboundedSender<rmcp::model::LoggingMessageNotificationParam>);

impl rmcp::ClientHandler for LogIde {
    async fn on_logging_message(
        &self,
        p: rmcp::model::LoggingMessageNotificationParam,
        _: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        let _ = self.0.send(p);
    }
}

/// A config that does not parse, or an explicit config path that does not
/// exist, is shown in the IDE: `serve` still answers `initialize`, with the
/// precise error in its instructions, in a log notification and in the answer
/// to every request; the process then exits 64. Run from a terminal, the same
/// error goes to stderr with exit 64 and nothing on stdout but the protocol.
#[tokio::test]
async fn a_broken_config_is_shown_in_the_ide() {
    use rmcp::ServiceExt;
    let home = Home::new();
    let bad = home.path().join("bad.toml");
    std::fs::write(&bad, "[timeouts]\nconnect = 5\nfirst_list = \"soon\"\n").unwrap();
    let missing = home.path().join("nowhere.toml");
    // An absurd value (this one once spun the audit writer at full CPU).
    let absurd = home.path().join("absurd.toml");
    std::fs::write(&absurd, "[audit]\nmax_bytes = 2048\nkeep = 1000000000000\n").unwrap();
    for (config, expect) in [
        (&bad, "line 3"),
        (&missing, "does not exist"),
        (&absurd, "[audit] keep (line 3) must be between 0 and 1000 files"),
    ] {
        let (tx, mut logs) = tokio::sync::mpsc::unbounded_channel();
        let mut cmd = bridge_command(&home, &["--config", config.to_str().unwrap()]);
        cmd.stderr(std::process::Stdio::null());
        let (transport, _) = rmcp::transport::TokioChildProcess::builder(cmd).spawn().unwrap();
        let client = LogIde(tx).serve(transport).await.expect("initialize is answered");
        let instructions = client
            .peer_info()
            .and_then(|i| i.instructions.clone())
            .unwrap_or_default();
        assert!(instructions.contains(expect), "{instructions}");
        assert!(instructions.contains(config.to_str().unwrap()), "{instructions}");
        let e = client.list_tools(None).await.expect_err("no tools while broken");
        assert!(e.to_string().contains(expect), "{e}");
        let e = client
            .call_tool(params("anything", json!({})))
            .await
            .expect_err("no calls while broken");
        assert!(e.to_string().contains(expect), "{e}");
        let log = tokio::time::timeout(Duration::from_secs(10), logs.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(log.level, rmcp::model::LoggingLevel::Error);
        assert!(log.data.as_str().unwrap_or_default().contains(expect), "{log:?}");
        client.cancel().await.unwrap();
    }
    // The terminal's view: exit 64, the error on stderr.
    let out = bridge_command(&home, &["--config", missing.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(out.stdout.is_empty(), "{:?}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    let out = cli(&home, &["--config", bad.to_str().unwrap(), "tools"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 3"));
}
