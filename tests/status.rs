//! `mcp-bridge status` reads what serving bridges publish in `state_dir/run`, across
//! processes: a live snapshot (its lock held by this test process) is merged with
//! the config; a crashed bridge's snapshot is removed and ignored.

mod common;

use common::{Home, cli, run_ok};
use mcp_bridge::state::{Publisher, ServerState, Snapshot, now_unix};
use serde_json::Value;

/// `mcp-bridge status ARGS` in `home`, which must succeed: its stdout and stderr.
async fn status(home: &Home, args: &[&str]) -> (String, String) {
    run_ok(cli(home, &[&["status"], args].concat())).await
}

async fn status_json(home: &Home) -> Value {
    let (out, _) = status(home, &["--json"]).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn server<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["server"] == id)
        .unwrap()
}

const NOTES: &str = "http://127.0.0.1:9/notes/mcp";

fn home_with_config() -> Home {
    let home = Home::new();
    home.servers_config(&[("notes", NOTES)], "");
    home
}

/// A live bridge's states and counts show up, with its pid; a server only it knows
/// is listed too; once it is gone, the config alone is shown.
#[tokio::test]
async fn live_state_is_merged_and_goes_away_with_the_bridge() {
    let home = home_with_config();
    let state_dir = home.path().join("state");
    let publisher = Publisher::open(&state_dir).unwrap();
    let now = now_unix();
    let snapshot = Snapshot {
        registry: None,
        servers: vec![
            ServerState {
                id: "notes".into(),
                source: "config".into(),
                url: NOTES.into(),
                state: "ready".into(),
                protocol: Some("2025-11-25".into()),
                tools: 5,
                prompts: 1,
                last_refresh: Some(now - 30),
                ..ServerState::default()
            },
            ServerState {
                id: "local-8080".into(),
                source: "command line".into(),
                url: "http://127.0.0.1:8080/mcp".into(),
                state: "failed".into(),
                last_error: Some("the server requires a login".into()),
                needs_login: true,
                ..ServerState::default()
            },
        ],
        ..Snapshot::new(&home.path().join("config.toml"))
    };
    publisher.write(&snapshot).unwrap();

    let v = status_json(&home).await;
    assert_eq!(v["bridges"][0]["pid"], std::process::id(), "{v}");
    let notes = server(&v, "notes");
    assert_eq!(notes["state"], "ready");
    assert_eq!(notes["protocol"], "2025-11-25");
    assert_eq!(notes["tools"], 5);
    assert!(notes["last_refresh_age_seconds"].as_u64().unwrap() >= 30);
    assert!(notes["auth"].as_str().unwrap().starts_with("none"));
    let adhoc = server(&v, "local-8080");
    assert_eq!(adhoc["source"], "command line");
    assert_eq!(
        adhoc["auth"], "needs login: run `mcp-bridge login http://127.0.0.1:8080/mcp`",
        "{v}"
    );

    let (text, _) = status(&home, &[]).await;
    assert!(!text.contains('\x1b'), "no colour when stdout is not a terminal");
    assert!(text.contains(&format!("pid {}", std::process::id())), "{text}");
    let row = text.lines().find(|l| l.starts_with("notes")).unwrap();
    assert!(row.contains("ready") && row.contains(" s ago"), "{row}");

    drop(publisher);
    let v = status_json(&home).await;
    assert_eq!(v["bridges"], serde_json::json!([]));
    assert_eq!(server(&v, "notes")["state"], "not running");
    assert_eq!(server(&v, "notes")["tools"], Value::Null);
    assert_eq!(v["servers"].as_array().unwrap().len(), 1);
    let (text, _) = status(&home, &[]).await;
    assert!(text.contains("no bridge running"), "{text}");
}

/// A snapshot whose bridge died (no lock held) is not believed, and is cleaned up.
#[tokio::test]
async fn a_crashed_bridge_is_not_reported() {
    let home = home_with_config();
    let run = home.path().join("state").join("run");
    std::fs::create_dir_all(&run).unwrap();
    let dead = Snapshot {
        pid: 999_999,
        servers: vec![ServerState {
            id: "notes".into(),
            url: NOTES.into(),
            state: "ready".into(),
            ..ServerState::default()
        }],
        ..Snapshot::default()
    };
    std::fs::write(run.join("999999.json"), serde_json::to_vec(&dead).unwrap()).unwrap();
    std::fs::write(run.join("999999.lock"), b"").unwrap();
    let v = status_json(&home).await;
    assert_eq!(v["bridges"], serde_json::json!([]));
    assert_eq!(server(&v, "notes")["state"], "not running");
    assert_eq!(std::fs::read_dir(&run).unwrap().count(), 0, "stale files removed");
}
