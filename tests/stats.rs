//! `mcp-bridge stats` reads what [`AuditLog`] wrote in `MCP_BRIDGE_HOME/state/`,
//! rotated files and all, skips a garbage line, applies the config's
//! `[audit.minutes_saved]`, and limits itself to `--since`.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{Home, cli, run_ok};
use mcp_bridge::audit::{self, AuditLog, Outcome, Record};
use mcp_bridge::config::AuditConfig;
use serde_json::{Value, json};

/// `mcp-bridge stats ARGS` in `home`, which must succeed: its stdout and stderr.
async fn stats(home: &Home, args: &[&str]) -> (String, String) {
    let mut cmd = cli(home, &[&["stats"], args].concat());
    cmd.env_remove("NO_COLOR");
    run_ok(cmd).await
}

async fn stats_json(home: &Home, since: &str) -> Value {
    let (out, _) = stats(home, &["--json", "--since", since]).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn record(ts_ms: u64, server: &str, tool: &str, duration_ms: f64, outcome: Outcome) -> Record {
    Record {
        ts_ms,
        server: server.into(),
        tool: tool.into(),
        name: format!("{server}__{tool}"),
        duration_ms,
        outcome,
        result_bytes: if outcome == Outcome::Ok { 250 } else { 0 },
        error: (outcome == Outcome::Error).then(|| "server 'jira' is unavailable".into()),
        arguments: None,
    }
}

fn row<'a>(v: &'a Value, key: &str, server: &str, tool: Option<&str>) -> &'a Value {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["server"] == server && r.get("tool").and_then(Value::as_str) == tool)
        .unwrap_or_else(|| panic!("no {server} {tool:?} in {v}"))
}

/// Twelve recent calls (through a rotation) and three from two hours ago: `--since
/// all` counts all fifteen and the garbage line, `--since 1h` only the recent ones.
#[tokio::test]
async fn stats_sums_up_the_audit_log() {
    let home = Home::new();
    home.write_config("[audit.minutes_saved]\n\"jira__create_*\" = 6\n\"jira__*\" = 1\n");
    let state = home.path().join("state");
    // About four lines a file: the records below rotate twice.
    let cfg = AuditConfig {
        max_bytes: 600,
        keep: 5,
        ..AuditConfig::default()
    };
    let log = AuditLog::start(&state, &cfg);
    let now = audit::now_ms();
    let old = now - 2 * 3_600_000;
    let mut records = vec![
        record(old, "jira", "create_issue", 1_000.0, Outcome::Ok),
        record(old + 1, "jira", "search", 1_000.0, Outcome::Error),
        record(old + 2, "notes", "add", 1_000.0, Outcome::Ok),
    ];
    // create_issue: 10, 20, ... 80 ms, one tool_error; search: 5, 15 ms, one
    // cancelled; notes add: 30, 40 ms.
    for (i, ms) in [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0].into_iter().enumerate() {
        let outcome = if i == 4 { Outcome::ToolError } else { Outcome::Ok };
        records.push(record(now - 60_000 + i as u64, "jira", "create_issue", ms, outcome));
    }
    records.push(record(now - 1_000, "jira", "search", 15.0, Outcome::Ok));
    records.push(record(now - 999, "jira", "search", 5.0, Outcome::Cancelled));
    records.push(record(now - 500, "notes", "add", 40.0, Outcome::Ok));
    records.push(record(now - 400, "notes", "add", 30.0, Outcome::Ok));
    for r in records {
        log.record(r);
    }
    log.flush(Duration::from_secs(10)).await;
    assert_eq!(log.dropped(), 0);
    std::fs::OpenOptions::new()
        .append(true)
        .open(state.join("audit.jsonl"))
        .unwrap()
        .write_all(b"{\"ts_ms\": \"garbage\"}\n")
        .unwrap();
    assert!(state.join("audit.1.jsonl").exists(), "the log rotated");
    assert!(state.join("audit.2.jsonl").exists(), "the log rotated twice");

    let all = stats_json(&home, "all").await;
    assert_eq!(all["skipped_lines"], 1);
    assert_eq!(all["since_ms"], Value::Null);
    assert_eq!(all["log"], state.join("audit.jsonl").display().to_string());
    let totals = &all["totals"];
    assert_eq!(totals["calls"], 15);
    assert_eq!(totals["errors"], 3);
    assert_eq!(
        totals["by_outcome"],
        json!({"ok": 12, "tool_error": 1, "error": 1, "refused": 0, "declined": 0, "cancelled": 1})
    );
    assert_eq!(totals["result_bytes"], 12 * 250);
    // Durations 5, 10, 15, 20, 30, 30, 40, 40, 50, 60, 70, 80, 1000 x3: the 8th of
    // 15 (40 ms) and the 15th (1000 ms).
    assert_eq!(
        (totals["p50_ms"].as_f64(), totals["p95_ms"].as_f64()),
        (Some(40.0), Some(1_000.0))
    );
    // create_issue: 8 ok x 6 min; search: 1 ok x 1 min; notes: none configured.
    assert_eq!(totals["minutes_saved"], 49.0);
    assert!((all["hours_saved"].as_f64().unwrap() - 49.0 / 60.0).abs() < 1e-9);
    let jira = row(&all, "servers", "jira", None);
    assert_eq!((jira["calls"].as_u64(), jira["errors"].as_u64()), (Some(12), Some(3)));
    assert_eq!(all["servers"][0]["server"], "jira", "most calls first");
    let create = row(&all, "tools", "jira", Some("create_issue"));
    assert_eq!(create["calls"], 9);
    assert_eq!(create["error_rate"], 1.0 / 9.0);
    assert_eq!(create["minutes_saved"], 48.0);
    // 10..80 and 1000: the 5th of 9 (50 ms), the 9th (1000 ms).
    assert_eq!(
        (create["p50_ms"].as_f64(), create["p95_ms"].as_f64()),
        (Some(50.0), Some(1_000.0))
    );

    let recent = stats_json(&home, "1h").await;
    assert!(recent["since_ms"].as_u64().unwrap() > old);
    assert_eq!(recent["totals"]["calls"], 12);
    assert_eq!(recent["totals"]["errors"], 2);
    assert_eq!(recent["totals"]["minutes_saved"], 43.0);
    let create = row(&recent, "tools", "jira", Some("create_issue"));
    assert_eq!(
        (create["calls"].as_u64(), create["p95_ms"].as_f64()),
        (Some(8), Some(80.0))
    );
    let notes = row(&recent, "tools", "notes", Some("add"));
    assert_eq!(
        (notes["p50_ms"].as_f64(), notes["p95_ms"].as_f64()),
        (Some(30.0), Some(40.0))
    );

    // The table (stdout is a pipe: no colour).
    let (table, _) = stats(&home, &["--since", "1h"]).await;
    assert!(!table.contains('\x1b'), "{table}");
    assert!(table.contains("period:      the last 1 h"), "{table}");
    assert!(table.contains("time saved:  0.7 h (43 min)"), "{table}");
    let tools = table
        .lines()
        .skip_while(|l| !l.starts_with("SERVER  TOOL"))
        .nth(1)
        .unwrap();
    assert!(tools.starts_with("jira    create_issue"), "{table}");
}

/// Nothing recorded in the period: a friendly line naming the log; a bad
/// `--since` is a usage error.
#[tokio::test]
async fn empty_log_and_bad_since() {
    let home = Home::new();
    let (out, _) = stats(&home, &[]).await;
    let log = home.path().join("state").join("audit.jsonl");
    assert_eq!(
        out,
        format!(
            "No tool calls recorded in the last 7 d (audit log: {}).\n",
            log.display()
        )
    );
    let v = stats_json(&home, "all").await;
    assert_eq!(v["totals"]["calls"], 0);
    assert_eq!(v["servers"], json!([]));

    home.write_config("[audit]\nenabled = false\n");
    let (_, err) = stats(&home, &[]).await;
    assert!(err.contains("enabled = false"), "{err}");

    let out = cli(&home, &["stats", "--since", "a week"]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("30m, 24h, 7d"));
}
