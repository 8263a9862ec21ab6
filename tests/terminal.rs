//! End to end: what a server says never drives the user's terminal. A server
//! whose tool name, title and description carry escape sequences (retitle the
//! terminal, clear the screen, 8-bit CSI, a right-to-left override), and a
//! bridge publishing such words as a server's state: `tools`, `stats` after a
//! `call`, and `status` print them escaped, while `--json` keeps every string
//! exact and still writes nothing raw that a terminal acts on.

mod common;

use axum::body::Bytes;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use common::*;
use serde_json::{Value, json};

/// Retitle the terminal, clear the screen and home the cursor, ring the bell,
/// an 8-bit CSI, and reverse what follows.
const EVIL: &str = "\x1b]0;pwned\x07\x1b[2J\x1b[H\u{9b}31m\x08\x7f\u{202e}txt.exe";
/// How `EVIL` reads once escaped.
const ESCAPED: &str = "\\x1b]0;pwned\\x07\\x1b[2J\\x1b[H\\u{9b}31m\\x08\\x7f\\u{202e}txt.exe";

/// A server speaking enough MCP 2025-11-25 over plain JSON answers.
async fn answer(method: Method, body: Bytes) -> Response {
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let Some(id) = msg.get("id").cloned() else {
        return StatusCode::ACCEPTED.into_response();
    };
    let ok = |result: Value| json!({"jsonrpc": "2.0", "id": id, "result": result});
    let err =
        |code: i64, message: String| json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    let reply = match msg["method"].as_str().unwrap_or_default() {
        "initialize" => ok(json!({
            "protocolVersion": msg["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "evil", "version": "1"}
        })),
        "ping" => ok(json!({})),
        "tools/list" => ok(json!({"tools": [{
            "name": format!("look{EVIL}"),
            "title": format!("Title {EVIL}"),
            "description": format!("Description {EVIL}\nsecond line"),
            "inputSchema": {"type": "object"}
        }]})),
        "tools/call" => ok(json!({"content": [{"type": "text", "text": "looked"}]})),
        _ => err(-32601, "Method not found".into()),
    };
    ([(header::CONTENT_TYPE, "application/json")], reply.to_string()).into_response()
}

/// Serve on 127.0.0.1:0 in its own runtime; returns its URL.
fn start() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/mcp",
                axum::routing::any(move |method: Method, body: Bytes| answer(method, body)),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}/mcp", rx.recv().unwrap())
}

/// Run `mcp-bridge ARGS` in `home`; its stdout, which must be a success.
async fn run(home: &Home, args: &[&str]) -> String {
    let (stdout, stderr) = run_ok(cli(home, args)).await;
    assert_no_controls(&stderr);
    stdout
}

/// Nothing a terminal would act on: no C0 control but newline, no DEL, no C1,
/// no bidi override or isolate.
fn assert_no_controls(text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
        })
        .collect();
    assert!(bad.is_empty(), "raw {bad:?} in {text:?}");
}

/// `tools` shows the description escaped; `--json` has the name, title and
/// description exact (C1 and bidi controls as `\uXXXX`, which JSON reads back
/// as they were). `call` records the call; `stats` shows the upstream tool
/// name escaped, its `--json` exact.
#[tokio::test]
async fn tools_and_stats_escape_what_the_server_says() {
    let url = start();
    let home = Home::new();
    home.servers_config(&[("evil", &url)], "");

    let table = run(&home, &["tools"]).await;
    assert_no_controls(&table);
    assert!(table.contains(&format!("Description {ESCAPED}")), "{table}");
    assert!(!table.contains("second line"), "first line only: {table}");

    let listed = run(&home, &["tools", "--json"]).await;
    assert_no_controls(&listed);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let tool = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["title"] == format!("Title {EVIL}"))
        .unwrap_or_else(|| panic!("no exact title in {listed:#}"));
    assert_eq!(tool["description"], format!("Description {EVIL}\nsecond line"));
    let name = tool["name"].as_str().unwrap().to_owned();

    let called = run(&home, &["call", &name, "--args", "{}"]).await;
    assert!(called.contains("looked"), "{called}");

    let stats = run(&home, &["stats"]).await;
    assert_no_controls(&stats);
    assert!(stats.contains(&format!("look{ESCAPED}")), "{stats}");
    let stats = run(&home, &["stats", "--json"]).await;
    assert_no_controls(&stats);
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert!(
        stats["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["tool"] == format!("look{EVIL}")),
        "{stats:#}"
    );
}

/// `status` beside a serving bridge whose published state carries a server's
/// words (its protocol string, its error, its registry's error) shows them
/// escaped, and `--json` exact. (The bridge's own failure texts do not quote
/// an upstream's error message today: a server answering `initialize` with
/// `EVIL` is reported as "discover and legacy initialize both failed". The
/// published snapshot is the seam where any such text would arrive.)
#[test]
fn status_escapes_what_a_bridge_publishes() {
    use mcp_bridge::state::{Publisher, RegistryState, ServerState, Snapshot};
    let home = Home::new();
    home.servers_config(&[("notes", "http://127.0.0.1:9/mcp")], "");
    let publisher = Publisher::open(&home.path().join("state")).unwrap();
    let snapshot = Snapshot {
        registry: Some(RegistryState {
            source: "https://registry.example/v0".into(),
            last_success: None,
            last_error: Some(format!("registry said {EVIL}")),
            servers: 0,
        }),
        servers: vec![ServerState {
            id: "notes".into(),
            source: "config".into(),
            url: "http://127.0.0.1:9/mcp".into(),
            state: "failed".into(),
            protocol: Some(format!("2025-11-25{EVIL}")),
            last_error: Some(format!("upstream says {EVIL}")),
            ..ServerState::default()
        }],
        ..Snapshot::new(&home.config())
    };
    publisher.write(&snapshot).unwrap();
    let status = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-bridge"))
            .arg("status")
            .args(args)
            .env("MCP_BRIDGE_HOME", home.path())
            .env("MCP_BRIDGE_CREDENTIAL_STORE", "file")
            .env_remove("MCP_BRIDGE_CONFIG")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let table = status(&[]);
    assert_no_controls(&table);
    assert!(table.contains(&format!("upstream says {ESCAPED}")), "{table}");
    assert!(table.contains(&format!("registry said {ESCAPED}")), "{table}");
    let row = table.lines().find(|l| l.starts_with("notes")).unwrap();
    assert!(row.contains("2025-11-25\\x1b]0;pwned"), "{row}");
    let v = status(&["--json"]);
    assert_no_controls(&v);
    let v: Value = serde_json::from_str(&v).unwrap();
    assert_eq!(v["servers"][0]["last_error"], format!("upstream says {EVIL}"));
    assert_eq!(v["servers"][0]["protocol"], format!("2025-11-25{EVIL}"));
}
