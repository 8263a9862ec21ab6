//! Real MCP clients in front of the built bridge, as IDEs use it: from an empty
//! home, calling right after connect (issue 12, item 8).
//!
//! Each test starts two rmcp upstreams on 127.0.0.1, one of each protocol
//! generation (`old`: 2025-11-25 with sessions, `new`: 2026-07-28 stateless),
//! writes a config naming both into a fresh temp `MCP_BRIDGE_HOME` (no catalog
//! cache, no registry cache, no state) with a fresh temp `HOME`, and runs a client
//! script that spawns `mcp-bridge serve` over stdio with its SDK, connects, and at
//! once lists tools, calls `echo` on each upstream, reads every resource and gets
//! every prompt, printing a JSON summary that the test checks:
//!
//! - `tests/interop/ts_client.mjs`: the TypeScript SDK, v1 (`@modelcontextprotocol/sdk`,
//!   2025-11-25 only) and v2 (`@modelcontextprotocol/client`, whose
//!   `versionNegotiation.mode` is `"legacy"` (default), `"auto"` or `{ pin }`);
//! - `tests/interop/py_client.py`: the Python SDK (`mcp`), whose `Client(mode=…)` is
//!   `"legacy"`, `"auto"` (default) or a modern version string.
//!
//! And Claude Code: `mcp-bridge install claude-code` into a temp HOME, then
//! `claude mcp list` (offline, no account) reports the entry connected, and an
//! entry with a broken config with the bridge's message.
//!
//! And Gemini CLI, opencode and Codex the same way (`mcp-bridge install <client>`
//! into a temp HOME, then the client's own `mcp list`): Gemini CLI and opencode
//! connect to the bridge (Gemini CLI only in a trusted folder); Codex's list
//! does not connect, so it proves the entry is read as written.
//!
//! And one prompt each for GitHub Copilot CLI, Claude Code and Codex, pointed
//! through their documented base-URL settings at the loopback model API of
//! `tests/common/model_api.rs`, which asks for the bridged `echo` with a fresh
//! nonce: the agent's tool result must carry the nonce and the upstream must
//! have run the call.
//!
//! And the Python SDK's trace context (SEP-414: it puts the current span in
//! `_meta.traceparent`, here taken from `TRACEPARENT`): the bridge's span for the
//! call is its child in the collector of `tests/common/otlp.rs`, and the upstream
//! receives the bridge's span, in `_meta` and in the HTTP header. The TypeScript
//! SDK sends no trace context, so it has no such test.
//!
//! Versions are pinned in `tests/interop/package.json` (+ lock) and
//! `tests/interop/requirements.txt`, installed by `tests/interop/setup.sh`, which
//! these tests run themselves when something is missing. `MCP_BRIDGE_SKIP_INTEROP=1`
//! skips them. Only loopback is used.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::interop::{ensure_installed, find_node, interop_dir, skip_requested};
use common::otlp;
use common::*;
use mcp_bridge::util::Locked;
use serde_json::{Value, json};

/// Upper bound for one request of a client script.
const REQUEST_TIMEOUT_MS: u64 = 20_000;
/// Upper bound for a whole client script (connect, ~10 requests, close).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// What `setup.sh` installs that these tests use.
const MARKS: &[&str] = &[
    "node_modules/@modelcontextprotocol/sdk/package.json",
    "node_modules/@modelcontextprotocol/client/package.json",
    "node_modules/.bin/claude",
    "node_modules/.bin/gemini",
    "node_modules/.bin/opencode",
    "node_modules/.bin/codex",
    "node_modules/.bin/copilot",
    ".venv/bin/python",
];

/// The upstream names, which are also their labels (`whoami`, resource text).
const OLD: &str = "old";
const NEW: &str = "new";

/// Two upstreams, one per generation, and an empty bridge home whose config
/// names both. `user` is the empty HOME the bridge (and Claude Code) run with.
struct World {
    old: Upstream,
    new: Upstream,
    home: Home,
    user: PathBuf,
}

impl World {
    fn new() -> World {
        World::with_config("")
    }

    /// [`World::new`] with `extra` appended to the config.
    fn with_config(extra: &str) -> World {
        let old = Upstream::start(TestServer::new(Era::Legacy, OLD));
        let new = Upstream::start(TestServer::new(Era::Modern, NEW));
        let home = Home::new();
        home.servers_config(&[(OLD, &old.url), (NEW, &new.url)], extra);
        let user = home.path().join("user");
        std::fs::create_dir_all(&user).unwrap();
        let w = World { old, new, home, user };
        // Empty: the config and the empty HOME, nothing else (no catalog cache).
        let mut entries: Vec<String> = std::fs::read_dir(w.home.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        entries.sort();
        assert_eq!(entries, ["config.toml", "user"]);
        w
    }

    /// Leave a catalog cache in the home, as an earlier session would: `mcp-bridge
    /// tools` (the same code as `serve`, in process) lists both upstreams and
    /// persists the merged catalog.
    async fn warm(&self) {
        let out = tokio::time::timeout(
            SCRIPT_TIMEOUT,
            cli(&self.home, &["tools", "--json"]).env("HOME", &self.user).output(),
        )
        .await
        .expect("mcp-bridge tools finishes")
        .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
        for t in expected_tools() {
            assert!(said.contains(&format!("\"{t}\"")), "mcp-bridge tools lacks {t}: {said}");
        }
        let cache = self.home.path().join("cache/catalog.json");
        assert!(
            cache.is_file(),
            "no catalog cache at {} after mcp-bridge tools",
            cache.display()
        );
    }

    /// The whole environment the client gives the bridge it spawns.
    fn bridge_env(&self) -> Value {
        json!({
            "MCP_BRIDGE_HOME": self.home.path(),
            "HOME": self.user,
            "PATH": std::env::var("PATH").unwrap_or_default(),
            "MCP_BRIDGE_CREDENTIAL_STORE": "file",
            "BROWSER": "true",
            "RUST_LOG": std::env::var("RUST_LOG").unwrap_or_else(|_| "mcp_bridge=debug".into()),
        })
    }
}

/// The `echo` call on each upstream, made right after the first `tools/list`.
fn calls() -> Value {
    json!([
        { "name": format!("{OLD}__echo"), "arguments": { "text": "hello old" } },
        { "name": format!("{NEW}__echo"), "arguments": { "text": "hello new" } },
    ])
}

/// Every tool a `TestServer` lists, under the bridge's name for it.
fn expected_tools() -> Vec<String> {
    let names = [
        "echo",
        "whoami",
        "slow",
        "progress",
        "ask",
        "sample",
        "roots",
        "add_tool",
        "fail",
        "image",
        "touch",
        "add_tool_silently",
        "wipe",
    ];
    assert_eq!(names.len(), TOOLS);
    let mut v: Vec<String> = [OLD, NEW]
        .iter()
        .flat_map(|s| names.iter().map(move |t| format!("{s}__{t}")))
        .collect();
    v.sort();
    v
}

enum Script {
    /// `ts_client.mjs <sdk> <mode>`.
    Ts(&'static str),
    /// `py_client.py <mode>`.
    Py,
}

/// Run a client script against a bridge in `world`; its summary, stdout and
/// stderr (the script's and the bridge's), and how long it took.
async fn run(world: &World, script: Script, mode: &str) -> (Value, String, Duration) {
    run_env(world, script, mode, &[]).await
}

/// [`run`] with `env` set for the client script.
async fn run_env(world: &World, script: Script, mode: &str, env: &[(&str, &str)]) -> (Value, String, Duration) {
    ensure_installed(MARKS);
    let dir = interop_dir();
    let mut cmd = match script {
        Script::Ts(sdk) => {
            let mut c = tokio::process::Command::new(find_node());
            c.arg(dir.join("ts_client.mjs")).arg(sdk);
            c
        }
        Script::Py => {
            let py = dir.join(".venv/bin/python");
            assert!(
                py.is_file(),
                "{} missing: run tests/interop/setup.sh (or set MCP_BRIDGE_SKIP_INTEROP=1)",
                py.display()
            );
            let mut c = tokio::process::Command::new(py);
            c.arg(dir.join("py_client.py"));
            c
        }
    };
    cmd.arg(mode)
        .current_dir(&dir)
        .env("BRIDGE_BIN", env!("CARGO_BIN_EXE_mcp-bridge"))
        .env("BRIDGE_ENV", world.bridge_env().to_string())
        .env("CALLS", calls().to_string())
        .env("TIMEOUT_MS", REQUEST_TIMEOUT_MS.to_string())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let out = tokio::time::timeout(SCRIPT_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("client script did not finish within {SCRIPT_TIMEOUT:?}"))
        .expect("client script runs");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let logs = format!("---- client stdout ----\n{stdout}\n---- client + bridge stderr ----\n{stderr}");
    let summary = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .unwrap_or_else(|| panic!("client script printed no JSON summary (exit {}):\n{logs}", out.status));
    (summary, logs, took)
}

/// The steps of `kind` in the summary.
fn steps<'a>(s: &'a Value, kind: &str) -> Vec<&'a Value> {
    s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|st| st["kind"] == kind)
        .collect()
}

/// The text of every content block of a tool result or every message of a
/// prompt, or every text of resource contents.
fn texts(v: &Value) -> String {
    let mut out = Vec::new();
    for c in v["content"].as_array().into_iter().flatten() {
        out.extend(c["text"].as_str());
    }
    for m in v["messages"].as_array().into_iter().flatten() {
        out.extend(m["content"]["text"].as_str());
    }
    for c in v["contents"].as_array().into_iter().flatten() {
        out.extend(c["text"].as_str());
    }
    out.join("\n")
}

/// Check a summary against the rules and panic with every broken rule at once,
/// the summary and the logs.
///
/// - connect succeeds and negotiates `protocol`;
/// - the first `tools/list` (sent right after connect) lists every tool of both
///   upstreams;
/// - `echo` on each upstream, called right after that, succeeds with its text;
/// - `resources/list` lists the two resources of each upstream and every
///   `resources/read` succeeds with the owning upstream's text;
/// - `prompts/list` lists `greet` of each upstream and every `prompts/get`
///   succeeds with the owning upstream's text.
fn check(summary: &Value, logs: &str, protocol: &str) {
    let mut broken: Vec<String> = Vec::new();
    let fail = |st: &Value| -> String {
        format!(
            "{} {} failed after {} ms: {}",
            st["kind"].as_str().unwrap_or("?"),
            st["target"].as_str().unwrap_or(""),
            st["ms"],
            st["error"].as_str().unwrap_or("?")
        )
    };

    let connect = steps(summary, "connect");
    match connect.first() {
        Some(st) if st["ok"] == true => {
            if st["result"]["protocolVersion"] != protocol {
                broken.push(format!(
                    "negotiated {} instead of {protocol}",
                    st["result"]["protocolVersion"]
                ));
            }
        }
        Some(st) => broken.push(fail(st)),
        None => broken.push("no connect step".into()),
    }

    if broken.is_empty() {
        match steps(summary, "tools/list").first() {
            Some(st) if st["ok"] == true => {
                let mut names: Vec<String> = st["result"]["tools"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["name"].as_str().unwrap().to_owned())
                    .collect();
                names.sort();
                if names != expected_tools() {
                    broken.push(format!(
                        "first tools/list (right after connect) listed {} tools {names:?}, expected all {} of both upstreams",
                        names.len(),
                        2 * TOOLS
                    ));
                }
            }
            Some(st) => broken.push(fail(st)),
            None => broken.push("no tools/list step".into()),
        }

        let calls = steps(summary, "tools/call");
        if calls.len() != 2 {
            broken.push(format!("{} tools/call steps, expected 2", calls.len()));
        }
        for st in calls {
            let target = st["target"].as_str().unwrap();
            let want = if target.starts_with(OLD) {
                "hello old"
            } else {
                "hello new"
            };
            if st["ok"] != true {
                broken.push(fail(st));
            } else if st["result"]["isError"] == true || texts(&st["result"]) != want {
                broken.push(format!(
                    "tools/call {target}: expected the text {want:?}, got {}",
                    st["result"]
                ));
            }
        }

        for (kind, item_kind, key, per_upstream, want) in [
            ("resources/list", "resources/read", "resources", 2, "says"),
            ("prompts/list", "prompts/get", "prompts", 1, "greets \"interop\""),
        ] {
            match steps(summary, kind).first() {
                Some(st) if st["ok"] == true => {
                    let n = st["result"][key].as_array().map_or(0, Vec::len);
                    if n != 2 * per_upstream {
                        broken.push(format!(
                            "{kind} listed {n}, expected {}: {}",
                            2 * per_upstream,
                            st["result"]
                        ));
                    }
                }
                Some(st) => broken.push(fail(st)),
                None => broken.push(format!("no {kind} step")),
            }
            for st in steps(summary, item_kind) {
                if st["ok"] != true {
                    broken.push(fail(st));
                    continue;
                }
                let text = texts(&st["result"]);
                let owner = [OLD, NEW].iter().any(|u| text.starts_with(&format!("{u} {want}")));
                if !owner {
                    broken.push(format!(
                        "{item_kind} {}: unexpected result {}",
                        st["target"], st["result"]
                    ));
                }
            }
        }
    }

    assert!(
        broken.is_empty(),
        "{} ({}) broke {} rule(s):\n  - {}\nsummary: {}\n{logs}",
        summary["sdk"],
        summary["mode"],
        broken.len(),
        broken.join("\n  - "),
        serde_json::to_string_pretty(summary).unwrap()
    );
}

/// Whether the bridge home starts empty or with a catalog cache.
#[derive(Clone, Copy, PartialEq)]
enum Start {
    /// A fresh home: the bridge has never listed the upstreams.
    Empty,
    /// The catalog cache an earlier run left (see `World::warm`): isolates the
    /// protocol behaviour from the first-list-after-connect rule.
    Warm,
}

async fn client_case(script: Script, mode: &str, protocol: &str, start: Start) {
    if skip_requested() {
        return;
    }
    let world = World::new();
    if start == Start::Warm {
        world.warm().await;
    }
    let (summary, logs, took) = run(&world, script, mode).await;
    println!("{} ({mode}) took {took:.1?}", summary["sdk"]);
    check(&summary, &logs, protocol);
}

/// TypeScript SDK v1 (`@modelcontextprotocol/sdk`, what most IDEs embed; speaks
/// 2025-11-25): from an empty home, the first list is complete and everything
/// right after connect works, against both upstream generations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ts_sdk_v1_legacy_from_empty_home() {
    client_case(Script::Ts("v1"), "legacy", "2025-11-25", Start::Empty).await;
}

/// The same with the catalog cache of an earlier run in the home.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ts_sdk_v1_legacy_warm_home() {
    client_case(Script::Ts("v1"), "legacy", "2025-11-25", Start::Warm).await;
}

/// TypeScript SDK v2 in its default `versionNegotiation.mode: "legacy"`: as v1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ts_sdk_v2_legacy_from_empty_home() {
    client_case(Script::Ts("v2"), "legacy", "2025-11-25", Start::Empty).await;
}

/// The same with the catalog cache of an earlier run in the home.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ts_sdk_v2_legacy_warm_home() {
    client_case(Script::Ts("v2"), "legacy", "2025-11-25", Start::Warm).await;
}

/// TypeScript SDK v2 with `mode: "auto"`: its `server/discover` probe (on a
/// sibling bridge process) finds 2026-07-28, and the connection uses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ts_sdk_v2_auto_from_empty_home() {
    client_case(Script::Ts("v2"), "auto", "2026-07-28", Start::Empty).await;
}

/// The same with the catalog cache of an earlier run in the home.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ts_sdk_v2_auto_warm_home() {
    client_case(Script::Ts("v2"), "auto", "2026-07-28", Start::Warm).await;
}

/// TypeScript SDK v2 pinned to 2026-07-28 (`mode: { pin }`): every result,
/// whichever upstream generation produced it, is a valid 2026-07-28 result
/// (`resultType`), and the first list is complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ts_sdk_v2_pinned_2026_07_28_from_empty_home() {
    client_case(Script::Ts("v2"), "2026-07-28", "2026-07-28", Start::Empty).await;
}

/// The same with the catalog cache of an earlier run in the home.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ts_sdk_v2_pinned_2026_07_28_warm_home() {
    client_case(Script::Ts("v2"), "2026-07-28", "2026-07-28", Start::Warm).await;
}

/// Python SDK `Client(mode="legacy")`: the initialize handshake, then as above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_legacy_from_empty_home() {
    client_case(Script::Py, "legacy", "2025-11-25", Start::Empty).await;
}

/// The same with the catalog cache of an earlier run in the home.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_legacy_warm_home() {
    client_case(Script::Py, "legacy", "2025-11-25", Start::Warm).await;
}

/// Python SDK `Client(mode="auto")`, its default: `server/discover` on the same
/// process, which must neither kill the bridge nor be refused; 2026-07-28 is used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_auto_from_empty_home() {
    client_case(Script::Py, "auto", "2026-07-28", Start::Empty).await;
}

/// The same with the catalog cache of an earlier run in the home.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_auto_warm_home() {
    client_case(Script::Py, "auto", "2026-07-28", Start::Warm).await;
}

/// Python SDK `Client(mode="2026-07-28")`: no handshake at all, the first
/// request is `tools/list` with the per-request `_meta`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_2026_07_28_from_empty_home() {
    client_case(Script::Py, "2026-07-28", "2026-07-28", Start::Empty).await;
}

/// The same with the catalog cache of an earlier run in the home.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_2026_07_28_warm_home() {
    client_case(Script::Py, "2026-07-28", "2026-07-28", Start::Warm).await;
}

/// The Python SDK puts the ambient OpenTelemetry context in each request's
/// `_meta.traceparent` (SEP-414). Through the bridge, with telemetry on, in both
/// IDE-side generations: each `echo` call's bridge span is a child of the
/// IDE's span, and the upstream (of either generation) gets the bridge's span
/// as its parent, in `_meta` and in the `traceparent` header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_trace_context_is_joined_by_the_bridge_and_passed_on() {
    if skip_requested() {
        return;
    }
    for (mode, protocol) in [("legacy", "2025-11-25"), ("2026-07-28", "2026-07-28")] {
        let receiver = otlp::Receiver::start();
        let world = World::with_config(&format!("[telemetry]\nendpoint = \"{}\"\n", receiver.url));
        let trace = otlp::hex(&rand::random::<[u8; 16]>());
        let parent = otlp::hex(&rand::random::<[u8; 8]>());
        let traceparent = format!("00-{trace}-{parent}-01");
        let (summary, logs, _) = run_env(&world, Script::Py, mode, &[("TRACEPARENT", &traceparent)]).await;
        check(&summary, &logs, protocol);
        let found = |r: &otlp::Receiver, server: &str| {
            r.spans_of("mcp-bridge")
                .into_iter()
                .find(|s| s.name() == "tools/call echo" && s.str("mcp_bridge.server") == Some(server))
        };
        // The bridge exported before it exited; the script may have returned
        // first (the SDK stops waiting for its server after a bound).
        receiver
            .wait("both echo spans", Duration::from_secs(20), |r| {
                (found(r, OLD).is_some() && found(r, NEW).is_some()).then_some(())
            })
            .await;
        for (upstream, server) in [(&world.old, OLD), (&world.new, NEW)] {
            let span = found(&receiver, server).unwrap();
            assert_eq!(
                (span.trace_id(), span.parent()),
                (trace.clone(), Some(parent.clone())),
                "{mode}: the bridge's span for {server}__echo is the IDE span's child"
            );
            let seen = upstream.server.probe.traces.locked().clone();
            let echo = seen
                .iter()
                .find(|t| t.tool == "echo")
                .unwrap_or_else(|| panic!("{mode}: {server} saw no echo call: {seen:?}"));
            let expected = format!("00-{trace}-{}-01", span.span_id());
            assert_eq!(
                echo.meta.as_deref(),
                Some(expected.as_str()),
                "{mode}: {server}'s _meta"
            );
            assert_eq!(
                echo.header.as_deref(),
                Some(expected.as_str()),
                "{mode}: {server}'s header"
            );
        }
    }
}

/// Claude Code (npm): after `mcp-bridge install claude-code` into an empty temp
/// HOME, `claude mcp list` (which starts each server and connects; no account,
/// no network) reports the bridge's entry `✔ Connected`. A second entry whose
/// binary does not exist is reported failed in the same run, so the check can
/// tell the two apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_mcp_list_reports_the_installed_bridge_connected() {
    if skip_requested() {
        return;
    }
    ensure_installed(MARKS);
    let world = World::new();
    let claude = interop_dir().join("node_modules/.bin/claude");
    assert!(
        claude.exists(),
        "{} missing: run tests/interop/setup.sh (or set MCP_BRIDGE_SKIP_INTEROP=1)",
        claude.display()
    );
    let project = world.user.join("project");
    std::fs::create_dir_all(&project).unwrap();
    let as_user = |program: &std::path::Path| {
        let mut c = tokio::process::Command::new(program);
        c.current_dir(&project)
            .env("HOME", &world.user)
            .env("MCP_BRIDGE_HOME", world.home.path())
            .env("MCP_BRIDGE_CREDENTIAL_STORE", "file")
            .env("BROWSER", "true")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("CLAUDE_CONFIG_DIR")
            .env_remove("MCP_BRIDGE_CONFIG")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("ANTHROPIC_BASE_URL")
            // Offline: no update check, no telemetry, no other traffic.
            .env("DISABLE_AUTOUPDATER", "1")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    };
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_mcp-bridge"));
    let out = as_user(&bin).arg("install").arg("claude-code").output().await.unwrap();
    let said = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "mcp-bridge install claude-code: {said}");
    let written = std::fs::read_to_string(world.user.join(".claude.json")).unwrap();
    let missing = world.user.join("no-such-dir/mcp-bridge");
    let mut cfg: Value = serde_json::from_str(&written).unwrap();
    cfg["mcpServers"]["broken"] = json!({ "type": "stdio", "command": missing, "args": ["serve"], "env": {} });
    // A config with a mistake: Claude Code shows the bridge's message.
    let bad = world.user.join("bad.toml");
    std::fs::write(&bad, "[timeouts]\ncall = \"soon\"\n").unwrap();
    cfg["mcpServers"]["misconfigured"] =
        json!({ "type": "stdio", "command": bin, "args": ["serve", "--config", bad], "env": {} });
    std::fs::write(world.user.join(".claude.json"), cfg.to_string()).unwrap();

    let started = Instant::now();
    let out = tokio::time::timeout(SCRIPT_TIMEOUT, as_user(&claude).args(["mcp", "list"]).output())
        .await
        .expect("claude mcp list finishes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    println!("claude mcp list took {:.1?}:\n{stdout}\n{stderr}", started.elapsed());
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no line for {name} in `claude mcp list`:\n{stdout}\n{stderr}"))
            .to_owned()
    };
    let ours = line("mcp-bridge");
    assert!(
        ours.contains(&format!("{} serve", bin.display())) && ours.contains("Connected") && !ours.contains("Failed"),
        "the installed bridge is not reported connected: {ours}\n{stdout}\n{stderr}"
    );
    let broken = line("broken");
    assert!(broken.contains("Failed"), "{broken}");
    let misconfigured = line("misconfigured");
    assert!(
        misconfigured.contains("mcp-bridge cannot start") && misconfigured.contains("line 2"),
        "the config error is not shown: {misconfigured}"
    );
}

// ---- Gemini CLI, opencode and Codex (npm), issue 16 requirement 4 ----

/// A real client from `tests/interop/node_modules/.bin`, failing with the way to
/// get it when it is missing.
fn npm_client(name: &str) -> PathBuf {
    ensure_installed(MARKS);
    let bin = interop_dir().join("node_modules/.bin").join(name);
    assert!(
        bin.exists(),
        "{} missing: run tests/interop/setup.sh (or set MCP_BRIDGE_SKIP_INTEROP=1)",
        bin.display()
    );
    bin
}

/// `program` run as the user of the world's empty HOME, in `cwd`: every place a
/// client or the bridge looks for its files (XDG dirs, `CODEX_HOME`) is inside
/// that HOME, the variables that would move them or reach a model API are
/// removed, and update checks are off, so nothing leaves the machine. (The
/// one-prompt tests set a loopback model API on top.)
fn as_user(world: &World, cwd: &std::path::Path, program: &std::path::Path) -> tokio::process::Command {
    let u = &world.user;
    let mut c = tokio::process::Command::new(program);
    c.current_dir(cwd)
        .env("HOME", u)
        .env("XDG_CONFIG_HOME", u.join(".config"))
        .env("XDG_DATA_HOME", u.join(".local/share"))
        .env("XDG_STATE_HOME", u.join(".local/state"))
        .env("XDG_CACHE_HOME", u.join(".cache"))
        .env("CODEX_HOME", u.join(".codex"))
        .env("COPILOT_HOME", u.join(".copilot"))
        .env("MCP_BRIDGE_HOME", world.home.path())
        .env("MCP_BRIDGE_CREDENTIAL_STORE", "file")
        .env("BROWSER", "true")
        .env("OPENCODE_DISABLE_AUTOUPDATE", "1")
        .env("OPENCODE_DISABLE_MODELS_FETCH", "1")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for v in [
        "MCP_BRIDGE_CONFIG",
        "GEMINI_CLI_HOME",
        "GEMINI_CLI_TRUST_WORKSPACE",
        "GEMINI_CLI_TRUSTED_FOLDERS_PATH",
        "GEMINI_CLI_SYSTEM_SETTINGS_PATH",
        "GEMINI_CLI_SYSTEM_DEFAULTS_PATH",
        "GEMINI_RESTRICTED_MODE",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "GOOGLE_GEMINI_BASE_URL",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "OPENCODE_CONFIG",
        "OPENCODE_CONFIG_DIR",
        "OPENCODE_CONFIG_CONTENT",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "CLAUDE_CONFIG_DIR",
        "COPILOT_ALLOW_ALL",
        "COPILOT_PROVIDER_BASE_URL",
        "COPILOT_PROVIDER_API_KEY",
        "COPILOT_MODEL",
        "GH_TOKEN",
        "GITHUB_TOKEN",
    ] {
        c.env_remove(v);
    }
    c
}

/// A real client, and a user for whom the bridge is installed in it.
struct Installed {
    /// The client's program, from tests/interop.
    program: PathBuf,
    world: World,
    /// An empty folder in the user's home, the client's working directory.
    project: PathBuf,
    /// The bridge binary the entry launches.
    bin: PathBuf,
}

/// The real client `npm_bin`, and an empty temp user (with a `project` folder)
/// for whom `mcp-bridge install <client>` has run; `None` when the interop
/// tests are skipped on request.
async fn installed(npm_bin: &str, client: &str) -> Option<Installed> {
    if skip_requested() {
        return None;
    }
    let program = npm_client(npm_bin);
    let world = World::new();
    let project = world.user.join("project");
    std::fs::create_dir_all(&project).unwrap();
    let bin = install_for(&world, &project, client).await;
    Some(Installed {
        program,
        world,
        project,
        bin,
    })
}

/// `mcp-bridge install <client> --binary <the built binary>` as the world's user.
async fn install_for(world: &World, cwd: &std::path::Path, client: &str) -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_mcp-bridge"));
    let out = tokio::time::timeout(
        SCRIPT_TIMEOUT,
        as_user(world, cwd, &bin)
            .args(["install", client, "--binary"])
            .arg(&bin)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("mcp-bridge install {client} finishes"))
    .unwrap();
    let said = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "mcp-bridge install {client}: {said}");
    bin
}

/// Runs a client command to its end (bounded), returning stdout and stderr
/// without ANSI colour codes. These `mcp list` commands exit 0 even when a
/// server fails, so the caller reads the text.
async fn client_output(cmd: &mut tokio::process::Command, what: &str) -> (String, String) {
    let started = Instant::now();
    let out = tokio::time::timeout(SCRIPT_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("`{what}` did not finish in {SCRIPT_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("`{what}` does not start: {e}"));
    let stdout = strip_ansi(&String::from_utf8_lossy(&out.stdout));
    let stderr = strip_ansi(&String::from_utf8_lossy(&out.stderr));
    println!("`{what}` took {:.1?}:\n{stdout}\n{stderr}", started.elapsed());
    assert!(
        out.status.success(),
        "`{what}` failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

/// `s` without ANSI escape sequences (`ESC [ … letter`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The one line of `text` that names the server `name` (as `name:` or `name `).
fn server_line(text: &str, name: &str, what: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| {
            l.split_whitespace()
                .any(|w| w == name || w.strip_suffix(':') == Some(name))
        })
        .unwrap_or_else(|| panic!("no line for {name} in `{what}`:\n{text}"))
        .to_owned()
}

#[test]
fn strip_ansi_keeps_the_text() {
    assert_eq!(
        strip_ansi("\u{1b}[32m✓\u{1b}[0m mcp-bridge \u{1b}[2mconnected"),
        "✓ mcp-bridge connected"
    );
    assert_eq!(
        server_line("x\n  ✓ mcp-bridge: /b serve (stdio) - Connected\n", "mcp-bridge", "t"),
        "✓ mcp-bridge: /b serve (stdio) - Connected"
    );
}

/// Gemini CLI 0.61 (npm `@google/gemini-cli`): after `mcp-bridge install gemini`
/// into an empty temp HOME, `gemini mcp list` (which spawns each server and sends
/// `initialize` and `ping`; no account, no network) reports the bridge
/// `Connected` once the folder is trusted in `~/.gemini/trustedFolders.json`,
/// and `Disabled` before: Gemini CLI's folder trust is on by default and also
/// suppresses user-level servers, which is why `install gemini` has to say so.
/// A second entry whose binary does not exist is `Disconnected` in the same run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_cli_mcp_list_connects_the_installed_bridge_in_a_trusted_folder_only() {
    let Some(Installed {
        program: gemini,
        world,
        project,
        bin,
    }) = installed("gemini", "gemini").await
    else {
        return;
    };
    let settings = world.user.join(".gemini/settings.json");
    let written = std::fs::read_to_string(&settings).unwrap();
    let mut cfg: Value = serde_json::from_str(&written).unwrap();
    let missing = world.user.join("no-such-dir/mcp-bridge");
    cfg["mcpServers"]["broken"] = json!({ "command": missing, "args": ["serve"] });
    std::fs::write(&settings, cfg.to_string()).unwrap();

    let what = "gemini mcp list (untrusted folder)";
    let (stdout, stderr) = client_output(as_user(&world, &project, &gemini).args(["mcp", "list"]), what).await;
    let all = format!("{stdout}\n{stderr}");
    let ours = server_line(&all, "mcp-bridge", what);
    assert!(ours.ends_with("Disabled"), "untrusted: {ours}\n{all}");
    assert!(all.contains("untrusted"), "no word on the untrusted folder:\n{all}");

    let real = std::fs::canonicalize(&project).unwrap();
    std::fs::write(
        world.user.join(".gemini/trustedFolders.json"),
        json!({ real.to_string_lossy(): "TRUST_FOLDER" }).to_string(),
    )
    .unwrap();
    let what = "gemini mcp list (trusted folder)";
    let (stdout, stderr) = client_output(as_user(&world, &project, &gemini).args(["mcp", "list"]), what).await;
    let all = format!("{stdout}\n{stderr}");
    let ours = server_line(&all, "mcp-bridge", what);
    assert!(
        ours.contains(&format!("{} serve", bin.display())) && ours.ends_with("- Connected"),
        "the installed bridge is not reported connected: {ours}\n{all}"
    );
    let broken = server_line(&all, "broken", what);
    assert!(broken.ends_with("Disconnected"), "{broken}\n{all}");
}

/// opencode 1.18 (npm `opencode-ai`): after `mcp-bridge install opencode` into an
/// empty temp HOME (`$XDG_CONFIG_HOME/opencode/opencode.json`), `opencode mcp
/// list` (which spawns each server, initializes and lists its tools; offline)
/// reports the bridge `connected`, and an entry whose binary does not exist
/// `failed`. The bridge it started ran on the world's config and reached both
/// upstreams: their catalog is cached in the world's home afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opencode_mcp_list_reports_the_installed_bridge_connected() {
    let Some(Installed {
        program: opencode,
        world,
        project,
        bin,
    }) = installed("opencode", "opencode").await
    else {
        return;
    };
    let file = world.user.join(".config/opencode/opencode.json");
    let written = std::fs::read_to_string(&file).unwrap();
    let mut cfg: Value = serde_json::from_str(&written).unwrap();
    assert_eq!(cfg["mcp"]["mcp-bridge"]["command"][0], json!(bin), "{written}");
    let missing = world.user.join("no-such-dir/mcp-bridge");
    cfg["mcp"]["broken"] = json!({ "type": "local", "command": [missing, "serve"], "enabled": true });
    std::fs::write(&file, cfg.to_string()).unwrap();

    let what = "opencode mcp list";
    let (stdout, stderr) = client_output(as_user(&world, &project, &opencode).args(["mcp", "list"]), what).await;
    let all = format!("{stdout}\n{stderr}");
    let ours = server_line(&all, "mcp-bridge", what);
    assert!(
        ours.contains("connected") && !ours.contains("failed"),
        "the installed bridge is not reported connected: {ours}\n{all}"
    );
    let broken = server_line(&all, "broken", what);
    assert!(broken.contains("failed"), "{broken}\n{all}");
    // The bridge opencode started ran on the world's home (the entry carries
    // `MCP_BRIDGE_HOME`) and listed both upstreams: their catalog is cached there.
    let cache = world.home.path().join("cache/catalog.json");
    let catalog = std::fs::read_to_string(&cache)
        .unwrap_or_else(|e| panic!("no catalog cache at {} after `{what}`: {e}", cache.display()));
    let catalog: Value = serde_json::from_str(&catalog).unwrap();
    for upstream in [OLD, NEW] {
        let tools = &catalog["servers"][upstream]["lists"]["tools"];
        assert!(
            tools.as_array().is_some_and(|t| t.iter().any(|t| t["name"] == "echo")),
            "the bridge's catalog lacks {upstream}'s echo: {catalog}"
        );
    }
}

/// Codex 0.171 (npm `@openai/codex`): `codex mcp list --json` does not start
/// servers, so this proves the file, not the connection: after `mcp-bridge install
/// codex` into an empty temp `CODEX_HOME`, the real Codex reads
/// `config.toml` and lists `mcp-bridge`, enabled, as a stdio server running our
/// binary with `serve`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_mcp_list_reads_the_installed_entry() {
    let Some(Installed {
        program: codex,
        world,
        project,
        bin,
    }) = installed("codex", "codex").await
    else {
        return;
    };
    assert!(world.user.join(".codex/config.toml").is_file());

    let what = "codex mcp list --json";
    let (stdout, stderr) = client_output(as_user(&world, &project, &codex).args(["mcp", "list", "--json"]), what).await;
    let listed: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("`{what}` is not JSON ({e}):\n{stdout}\n{stderr}"));
    let entries = listed.as_array().unwrap_or_else(|| panic!("not a list: {listed}"));
    let ours = entries
        .iter()
        .find(|e| e["name"] == "mcp-bridge")
        .unwrap_or_else(|| panic!("no mcp-bridge in `{what}`: {listed}"));
    assert_eq!(ours["enabled"], json!(true), "{ours}");
    assert_eq!(ours["transport"]["type"], "stdio", "{ours}");
    assert_eq!(ours["transport"]["command"], json!(bin), "{ours}");
    assert_eq!(ours["transport"]["args"], json!(["serve"]), "{ours}");
    // `install` ran with `MCP_BRIDGE_HOME` set, so the entry carries it.
    assert_eq!(
        ours["transport"]["env"]["MCP_BRIDGE_HOME"],
        json!(world.home.path()),
        "{ours}"
    );
}

// ---- One-prompt runs through a loopback model API (issue 16 requirement 4) ----
//
// Copilot CLI, Claude Code and Codex have no `mcp list` that connects, or one
// that proves less than a call: each is installed into with `mcp-bridge install
// <client>`, pointed through its documented base-URL setting at the stand-in of
// `tests/common/model_api.rs`, and given one prompt. The stand-in asks for the
// bridged `echo` of the `old` upstream with a fresh nonce, and the test checks
// that the result the agent sent back carries the nonce and that the upstream
// ran the call.

#[path = "common/model_api.rs"]
mod model_api;

use model_api::{ModelApi, Plan, SearchInput};

/// A text no run can have seen before.
fn nonce() -> String {
    format!("nonce-{:016x}", rand::random::<u64>())
}

/// The stand-in for one run: call the `old` upstream's `echo` (whatever prefix
/// the agent puts before the bridge's name) with `{"text": nonce}`, then say
/// `final_text`.
async fn model_for(nonce: &str, final_text: &str) -> ModelApi {
    ModelApi::start(Plan {
        pick: Box::new(|name: &str| name.ends_with("echo") && name.contains(OLD)),
        arguments: json!({ "text": nonce }),
        code: None,
        search: None,
        final_text: final_text.to_owned(),
    })
    .await
}

/// After an agent's run: the stand-in asked for the bridged echo (named as
/// `expect_name` says), the agent sent its result back with the nonce in it,
/// and the `old` upstream ran exactly that one call. Returns the name the agent
/// gave the tool.
fn check_round_trip(
    world: &World,
    api: &ModelApi,
    nonce: &str,
    output: &str,
    expect_name: impl Fn(&str) -> bool,
) -> String {
    let context = || {
        format!(
            "---- agent output ----\n{output}\n---- model API requests ----\n{}",
            api.log()
        )
    };
    let called = api
        .seen(|s| s.called.clone())
        .unwrap_or_else(|| panic!("the agent never offered the bridged echo to the model\n{}", context()));
    let offered = api.seen(|s| s.offered.clone());
    println!("the agent named the bridged tool {called:?}; it offered {offered:?}");
    assert!(
        expect_name(&called),
        "unexpected name for the bridged echo: {called}\n{}",
        context()
    );
    let results = api.seen(|s| s.results.clone());
    println!("the tool result the agent sent back: {results:?}");
    assert!(
        results.iter().any(|r| r.contains(nonce)),
        "no tool result with {nonce} came back to the model: {results:?}\n{}",
        context()
    );
    let calls = world.old.server.probe.calls.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(calls, 1, "the old upstream ran {calls} calls\n{}", context());
    called
}

/// Runs an agent to its end (bounded), returning stdout + stderr; it must succeed.
async fn agent_output(cmd: &mut tokio::process::Command, what: &str, api: &ModelApi) -> String {
    let started = Instant::now();
    let out = tokio::time::timeout(SCRIPT_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("`{what}` did not finish in {SCRIPT_TIMEOUT:?}\n{}", api.log()))
        .unwrap_or_else(|e| panic!("`{what}` does not start: {e}"));
    let all = format!(
        "---- stdout ----\n{}\n---- stderr ----\n{}",
        strip_ansi(&String::from_utf8_lossy(&out.stdout)),
        strip_ansi(&String::from_utf8_lossy(&out.stderr))
    );
    println!("`{what}` took {:.1?} ({})", started.elapsed(), out.status);
    assert!(
        out.status.success(),
        "`{what}` failed ({}):\n{all}\n---- model API requests ----\n{}",
        out.status,
        api.log()
    );
    all
}

/// GitHub Copilot CLI 1.0.102 (npm `@github/copilot`): after `mcp-bridge install
/// copilot` into an empty temp `COPILOT_HOME`, `copilot -p … --allow-all-tools`
/// offline (`COPILOT_OFFLINE`), on a loopback OpenAI-compatible provider
/// (`COPILOT_PROVIDER_BASE_URL`, Chat Completions), lists the bridge's tools to
/// the model as `mcp-bridge-<tool>`, calls the bridged echo when asked, and
/// sends its result (the nonce, through the bridge from the upstream) back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copilot_cli_calls_a_bridged_tool_through_a_loopback_model() {
    let Some(Installed {
        program: copilot,
        world,
        project,
        ..
    }) = installed("copilot", "copilot").await
    else {
        return;
    };
    assert!(world.user.join(".copilot/mcp-config.json").is_file());

    let nonce = nonce();
    let done = format!("done with {nonce}");
    let api = model_for(&nonce, &done).await;
    let what = "copilot -p";
    let mut cmd = as_user(&world, &project, &copilot);
    cmd.env("COPILOT_OFFLINE", "true")
        .env("COPILOT_AUTO_UPDATE", "false")
        .env("COPILOT_PROVIDER_BASE_URL", format!("{}/v1", api.base()))
        .env("COPILOT_PROVIDER_TYPE", "openai")
        .env("COPILOT_PROVIDER_API_KEY", "test")
        .env("COPILOT_MODEL", "gpt-4.1")
        .args([
            "-p",
            "Call the echo tool of the mcp-bridge server.",
            "--allow-all-tools",
        ]);
    let output = agent_output(&mut cmd, what, &api).await;
    let name = check_round_trip(&world, &api, &nonce, &output, |n| n.starts_with("mcp-bridge-"));
    println!("Copilot CLI named the bridged echo {name:?}");
    assert!(output.contains(&done), "the final answer is not shown:\n{output}");
}

/// Claude Code 2.1.332 (npm `@anthropic-ai/claude-code`): after `mcp-bridge
/// install claude-code` into an empty temp HOME (`~/.claude.json`), `claude -p`
/// on a loopback Anthropic Messages API (`ANTHROPIC_BASE_URL`, streamed SSE)
/// lists the bridge's tools to the model as `mcp__mcp-bridge__<tool>`, calls the
/// bridged echo when asked (allowed for the bridge's tools only, with
/// `--allowedTools mcp__mcp-bridge`), and sends its result back. Here with
/// `ENABLE_TOOL_SEARCH=false`, so the bridge's tools are in the request's `tools`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_calls_a_bridged_tool_through_a_loopback_model() {
    claude_code_case(false).await;
}

/// The same as Claude Code runs by default (2.1.332, even on a custom base
/// URL): MCP tools are deferred, named only in the system prompt; the model
/// loads the bridged echo with `ToolSearch` (`select:<name>`), then calls it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_calls_a_bridged_tool_found_with_tool_search() {
    claude_code_case(true).await;
}

async fn claude_code_case(tool_search: bool) {
    let Some(Installed {
        program: claude,
        world,
        project,
        ..
    }) = installed("claude", "claude-code").await
    else {
        return;
    };
    assert!(world.user.join(".claude.json").is_file());

    let nonce = nonce();
    let done = format!("done with {nonce}");
    let api = ModelApi::start(Plan {
        pick: Box::new(|name: &str| name.ends_with("echo") && name.contains(OLD)),
        arguments: json!({ "text": nonce }),
        code: None,
        search: tool_search.then(|| -> (String, SearchInput) {
            (
                "ToolSearch".into(),
                Box::new(|name: &str| json!({ "query": format!("select:{name}") })),
            )
        }),
        final_text: done.clone(),
    })
    .await;
    let what = "claude -p";
    let mut cmd = as_user(&world, &project, &claude);
    cmd.env("ANTHROPIC_BASE_URL", api.base())
        .env("ANTHROPIC_API_KEY", "test")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .args([
            "-p",
            "Call the echo tool of the mcp-bridge server.",
            "--allowedTools",
            "mcp__mcp-bridge",
        ]);
    if tool_search {
        // Claude Code's default: unset.
        cmd.env_remove("ENABLE_TOOL_SEARCH");
    } else {
        cmd.env("ENABLE_TOOL_SEARCH", "false");
    }
    let output = agent_output(&mut cmd, what, &api).await;
    let name = check_round_trip(&world, &api, &nonce, &output, |n| n.starts_with("mcp__mcp-bridge__"));
    println!("Claude Code named the bridged echo {name:?}");
    let searched = api.seen(|s| s.searched.clone());
    if tool_search {
        assert_eq!(searched, Some(("ToolSearch".into(), name)), "{}", api.log());
    } else {
        assert_eq!(searched, None);
    }
    assert!(output.contains(&done), "the final answer is not shown:\n{output}");
}

/// Codex 0.171.0 (npm `@openai/codex`): after `mcp-bridge install codex` into an
/// empty temp `CODEX_HOME`, `codex exec` on a loopback Responses API (the
/// `openai_base_url` setting; the stand-in refuses Codex's WebSocket attempt
/// with 404, so it falls back to HTTP POST with SSE) lists the bridge as the
/// deferred namespace `mcp__mcp_bridge`, runs the model's `exec` script that
/// calls `tools.mcp__mcp_bridge__old__echo` (MCP tools reach the model only
/// through code mode in 0.171), and sends the result back. `approval_policy =
/// "never"` lets the call run unattended; nothing else is changed for the
/// bridge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_calls_a_bridged_tool_through_a_loopback_model() {
    let Some(Installed {
        program: codex,
        world,
        project,
        ..
    }) = installed("codex", "codex").await
    else {
        return;
    };
    assert!(world.user.join(".codex/config.toml").is_file());

    let nonce = nonce();
    let done = format!("done with {nonce}");
    // Codex 0.171 offers MCP tools only to the scripts of its `exec` tool (code
    // mode), under `tools.<namespace>__<tool>` with `-` turned into `_`.
    let script =
        format!("const r = await tools.mcp__mcp_bridge__{OLD}__echo({{ text: {nonce:?} }});\ntext(JSON.stringify(r));");
    let api = ModelApi::start(Plan {
        pick: Box::new(|_: &str| false),
        arguments: json!({}),
        code: Some(("exec".into(), script)),
        search: None,
        final_text: done.clone(),
    })
    .await;
    let what = "codex exec";
    let mut cmd = as_user(&world, &project, &codex);
    cmd.env("OPENAI_API_KEY", "test")
        .args(["exec", "--skip-git-repo-check", "-c"])
        .arg(format!("openai_base_url=\"{}/v1\"", api.base()))
        .args(["-c", "approval_policy=\"never\""])
        // Nothing but loopback: no analytics, no update check (api.github.com),
        // no plugin marketplace (`git ls-remote` of github.com/openai/plugins),
        // no ChatGPT apps (chatgpt.com).
        .args([
            "-c",
            "analytics.enabled=false",
            "-c",
            "check_for_update_on_startup=false",
        ])
        .args(["-c", "features.plugins=false", "-c", "features.remote_plugin=false"])
        .args(["-c", "features.apps=false"])
        .arg("Call the echo tool of the mcp-bridge server.");
    let output = agent_output(&mut cmd, what, &api).await;
    check_round_trip(&world, &api, &nonce, &output, |n| n == "exec");
    // The bridge was listed to the model as a deferred namespace, `-` turned
    // into `_`.
    let log = api.log();
    assert!(log.contains("Deferred tool namespaces:\\n- mcp__mcp_bridge:"), "{log}");
    assert!(output.contains(&done), "the final answer is not shown:\n{output}");
}
