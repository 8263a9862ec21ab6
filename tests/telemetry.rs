//! OpenTelemetry export end to end: the spawned bridge, a real rmcp client as
//! the IDE, test servers of both protocol generations, and an OTLP/HTTP test
//! collector ([`common::otlp::Receiver`]) on loopback. The bridge flushes what
//! it holds when stdin closes, so each test makes its calls, closes the IDE,
//! waits for the bridge to exit and then reads the collector: no sleeps.
//!
//! Pinned here: a forwarded call's span joins the IDE's trace and is the
//! parent of the server's (through `_meta.traceparent` and the `traceparent`
//! header); the call counters, durations and minutes saved match what the
//! audit log records; no argument or result reaches the collector; the off
//! switches send nothing and still pass the IDE's trace context through; a
//! failing collector is counted in `status`, and one that never answers holds
//! up no call and no exit; an HTTPS collector is verified against the system's
//! roots or a private CA, and gets a client certificate when one is named; the resource names the bridge,
//! a stable pseudonymous user and the IDE; a first run with nothing cached
//! exports to the collector the registry's first answer names, and each read
//! of the registry API has a span; with
//! `protocol = "grpc"`, a real gRPC collector (grpcio, installed by
//! `tests/interop/setup.sh`; `MCP_BRIDGE_SKIP_INTEROP=1` skips it) gets the
//! same.

mod common;

use std::time::{Duration, Instant};

use common::otlp::{self, Receiver, SpanSeen};
use common::*;
use mcp_bridge::samples::from_json;
use mcp_bridge::util::Locked;
use rmcp::model::*;
use serde_json::{Value, json};

/// The IDE's own span, whose trace the bridge must join.
const IDE_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const IDE_SPAN: &str = "00f067aa0ba902b7";

fn ide_traceparent() -> String {
    format!("00-{IDE_TRACE}-{IDE_SPAN}-01")
}

/// Config naming the collector at `url`, every tool prefixed with its server.
fn telemetry_config(url: &str, extra: &str) -> String {
    format!("[naming]\nprefix = \"always\"\n[telemetry]\nendpoint = \"{url}\"\n{extra}")
}

/// The bridge under test, connected to the test IDE.
struct Bridge {
    client: Client,
    seen: tokio::sync::mpsc::UnboundedReceiver<Seen>,
    stderr: tokio::task::JoinHandle<String>,
}

impl Bridge {
    /// `serve` in `home` with `env` set (the test's own `OTEL_*` are removed by
    /// [`bridge_command`]).
    async fn start(home: &Home, env: &[(&str, &str)]) -> Bridge {
        let mut cmd = bridge_command(home, &[]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let (client, seen, stderr) = spawn_with_stderr(cmd).await;
        Bridge { client, seen, stderr }
    }

    /// Wait (bounded) until the bridge lists `name`.
    async fn wait_for(&mut self, names: &[&str]) {
        wait_for_tools(&self.client, &mut self.seen, |n| {
            names.iter().all(|want| n.iter().any(|have| have == want))
        })
        .await;
    }

    async fn call(&self, name: &str, args: Value) -> Result<CallToolResult, rmcp::ServiceError> {
        self.client.call_tool(params(name, args)).await
    }

    /// A call whose request carries `_meta.traceparent = traceparent`.
    async fn call_traced(&self, name: &str, args: Value, traceparent: &str) -> CallToolResult {
        let mut p = params(name, args);
        p.meta = Some(from_json(json!({ "traceparent": traceparent })));
        self.client.call_tool(p).await.unwrap()
    }

    /// `alpha__echo` in the IDE's trace with a marker argument and a marker
    /// result, which must reach no collector: (argument, result).
    async fn call_with_secrets(&self) -> (String, String) {
        let (secret_arg, secret_result) = (marker("argument"), marker("result"));
        let r = self
            .call_traced(
                "alpha__echo",
                json!({ "text": secret_result, "other": secret_arg }),
                &ide_traceparent(),
            )
            .await;
        assert_eq!(first_text(&r), secret_result);
        (secret_arg, secret_result)
    }

    /// Close the IDE's side (stdin EOF) and wait for the bridge to exit; its
    /// stderr. It must exit by itself, within its shutdown budget, before rmcp
    /// would send SIGTERM (3 s): what it exported is then all there is.
    async fn finish(self) -> String {
        let start = Instant::now();
        self.client.cancel().await.unwrap();
        let stderr = tokio::time::timeout(Duration::from_secs(15), self.stderr)
            .await
            .expect("the bridge exited")
            .unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "the bridge took {:?} to exit on stdin EOF:\n{stderr}",
            start.elapsed()
        );
        stderr
    }
}

/// `mcp-bridge status --json` in `home`: the `telemetry` object of its one running bridge.
async fn status_telemetry(home: &Home) -> Value {
    let (out, _) = run_ok(cli(home, &["status", "--json"])).await;
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let bridges = v["bridges"].as_array().unwrap_or_else(|| panic!("no bridges in {v}"));
    assert_eq!(bridges.len(), 1, "{v}");
    bridges[0]["telemetry"].clone()
}

/// `status --json`'s telemetry once `done` holds of it: checked again at each
/// `wake`, bounded at 20 s.
async fn telemetry_once(home: &Home, what: &str, wake: impl Wake, done: impl Fn(&Value) -> bool) -> Value {
    eventually_woken(what, Duration::from_secs(20), wake, async || {
        let t = status_telemetry(home).await;
        if done(&t) { Ok(t) } else { Err(t) }
    })
    .await
}

/// The bridge's CLIENT span for `tools/call <tool>` in `spans`, exactly one.
fn call_span<'a>(spans: &'a [SpanSeen], tool: &str, pred: impl Fn(&SpanSeen) -> bool) -> &'a SpanSeen {
    let found: Vec<&SpanSeen> = spans
        .iter()
        .filter(|s| s.name() == format!("tools/call {tool}") && pred(s))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one span 'tools/call {tool}' among {:#?}",
        spans
            .iter()
            .map(|s| (s.name(), s.trace_id(), s.parent()))
            .collect::<Vec<_>>()
    );
    found[0]
}

/// No raw body the collector got contains any of `markers`.
fn assert_no_markers(receiver: &Receiver, markers: &[&str]) {
    let arrivals = receiver.arrivals();
    assert!(!arrivals.is_empty());
    for a in &arrivals {
        for m in markers {
            assert!(
                !a.body.windows(m.len()).any(|w| w == m.as_bytes()),
                "{m:?} reached the collector in {}",
                a.path
            );
        }
    }
}

fn marker(what: &str) -> String {
    format!("{what}-{}", otlp::hex(&rand::random::<[u8; 8]>()))
}

/// A call carrying the IDE's `_meta.traceparent` gives a CLIENT span in the
/// IDE's trace, child of the IDE's span; the server gets `_meta.traceparent`
/// and the `traceparent` header naming the bridge's span, and its own span is
/// the bridge span's child. A call without one starts a new trace, passed on
/// the same way. Connecting and listing have their own spans.
async fn calls_join_the_ide_trace(era: Era) {
    let receiver = Receiver::start();
    let mut server = TestServer::new(era, "alpha");
    server.otlp = Some(receiver.url.clone());
    let alpha = Upstream::start(server);
    let home = Home::new();
    home.servers_config(&[("alpha", &alpha.url)], &telemetry_config(&receiver.url, ""));
    let mut bridge = Bridge::start(&home, &[]).await;
    bridge.wait_for(&["alpha__echo"]).await;
    let (secret_arg, secret_result) = bridge.call_with_secrets().await;

    let r = bridge.call("alpha__echo", json!({ "text": "untraced" })).await.unwrap();
    assert_eq!(first_text(&r), "untraced");
    let stderr = bridge.finish().await;

    assert_eq!(receiver.undecodable(), vec![], "{stderr}");
    for a in receiver.arrivals() {
        assert_eq!(a.content_type(), Some("application/x-protobuf"), "{}", a.path);
        assert_eq!(a.status, 200, "{}", a.path);
    }
    let seen = alpha.server.probe.traces.locked().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let spans = receiver.spans_of("mcp-bridge");
    let server_spans = receiver.spans_of("test-server-alpha");

    // The traced call.
    let bridge_span = call_span(&spans, "echo", |s| s.trace_id() == IDE_TRACE);
    assert_eq!(bridge_span.span.kind, otlp::CLIENT);
    assert_eq!(bridge_span.parent().as_deref(), Some(IDE_SPAN));
    assert_ne!(bridge_span.span_id(), IDE_SPAN);
    assert_eq!(
        bridge_span.str("mcp.method.name"),
        Some("tools/call"),
        "{:?}",
        bridge_span.keys()
    );
    assert_eq!(bridge_span.str("gen_ai.tool.name"), Some("echo"));
    assert_eq!(bridge_span.str("mcp_bridge.server"), Some("alpha"));
    assert_eq!(bridge_span.str("mcp_bridge.outcome"), Some("ok"));
    assert!(
        bridge_span.int("mcp_bridge.result.bytes").is_some_and(|b| b > 0),
        "{bridge_span:?}"
    );
    assert_eq!(bridge_span.str("error.type"), None);
    assert_ne!(bridge_span.status_code(), otlp::STATUS_ERROR);
    assert!(bridge_span.span.end_time_unix_nano >= bridge_span.span.start_time_unix_nano);
    let expected = format!("00-{IDE_TRACE}-{}-01", bridge_span.span_id());
    assert_eq!(
        seen[0].meta.as_deref(),
        Some(expected.as_str()),
        "_meta.traceparent the server got"
    );
    assert_eq!(
        seen[0].header.as_deref(),
        Some(expected.as_str()),
        "traceparent header the server got"
    );
    let server_span = server_spans
        .iter()
        .find(|s| Some(s.span_id()) == seen[0].span)
        .expect("the server's span arrived");
    assert_eq!(server_span.name(), "tools/call echo");
    assert_eq!(server_span.trace_id(), IDE_TRACE);
    assert_eq!(server_span.parent(), Some(bridge_span.span_id()));

    // The untraced call: a new trace, rooted at the bridge's span.
    let root = call_span(&spans, "echo", |s| s.trace_id() != IDE_TRACE);
    assert_eq!(root.parent(), None);
    assert_ne!(root.trace_id(), "0".repeat(32));
    let expected = format!("00-{}-{}-01", root.trace_id(), root.span_id());
    assert_eq!(seen[1].meta.as_deref(), Some(expected.as_str()));
    assert_eq!(seen[1].header.as_deref(), Some(expected.as_str()));
    let server_span = server_spans
        .iter()
        .find(|s| Some(s.span_id()) == seen[1].span)
        .expect("the server's span arrived");
    assert_eq!(
        (server_span.trace_id(), server_span.parent()),
        (root.trace_id(), Some(root.span_id()))
    );

    // The bridge's own work on the server, each span its own trace's root.
    for name in ["mcp_bridge.connect", "mcp_bridge.list"] {
        let s = spans
            .iter()
            .find(|s| s.name() == name && s.str("mcp_bridge.server") == Some("alpha"))
            .unwrap_or_else(|| panic!("no {name} span for alpha in {:?}", receiver.summary()));
        assert_eq!(s.parent(), None, "{name}");
    }
    assert_no_markers(&receiver, &[&secret_arg, &secret_result]);
}

/// [`calls_join_the_ide_trace`] with a 2025-11-25 server (sessions).
#[tokio::test]
async fn calls_join_the_ide_trace_legacy() {
    calls_join_the_ide_trace(Era::Legacy).await;
}

/// [`calls_join_the_ide_trace`] with a 2026-07-28 server (stateless).
#[tokio::test]
async fn calls_join_the_ide_trace_modern() {
    calls_join_the_ide_trace(Era::Modern).await;
}

/// `(server, tool, outcome)` counts of the audit log's lines.
fn audit_counts(home: &Home) -> std::collections::BTreeMap<(String, String, String), u64> {
    let text = std::fs::read_to_string(home.path().join("state/audit.jsonl")).unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let key = (
            v["server"].as_str().unwrap().to_owned(),
            v["tool"].as_str().unwrap().to_owned(),
            v["outcome"].as_str().unwrap().to_owned(),
        );
        *counts.entry(key).or_default() += 1;
    }
    counts
}

/// A scripted sequence, one of each outcome: `mcp_bridge.calls` counts exactly
/// what the audit log records, by server, tool and outcome; the duration
/// histogram counts the calls that went upstream; minutes saved follow
/// `[audit.minutes_saved]` (first matching pattern, `ok` calls only); only the
/// forwarded calls have spans, a failed one with status ERROR. No argument or
/// result value reaches the collector.
#[tokio::test]
async fn metrics_count_what_the_audit_log_records() {
    let receiver = Receiver::start();
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let mut beta = Upstream::start(TestServer::new(Era::Modern, "beta"));
    let home = Home::new();
    home.servers_config(
        &[("alpha", &alpha.url), ("beta", &beta.url)],
        &telemetry_config(
            &receiver.url,
            "[policy]\ndeny = [\"alpha__image\"]\n[audit.minutes_saved]\n\"alpha__echo\" = 2\n\"alpha__*\" = 0.5\n[timeouts]\nready_wait = 2\n",
        ),
    );
    let mut bridge = Bridge::start(&home, &[]).await;
    bridge.wait_for(&["alpha__echo", "beta__echo"]).await;
    let (secret_arg, secret_result) = (marker("argument"), marker("result"));

    for _ in 0..3 {
        let r = bridge
            .call("alpha__echo", json!({ "text": secret_result, "other": secret_arg }))
            .await
            .unwrap();
        assert_eq!(first_text(&r), secret_result);
    }
    assert_eq!(
        first_text(&bridge.call("alpha__whoami", json!({})).await.unwrap()),
        "alpha"
    );
    let r = bridge.call("alpha__fail", json!({ "text": secret_arg })).await.unwrap();
    assert_eq!(r.is_error, Some(true));
    let refused = bridge.call("alpha__image", json!({ "text": secret_arg })).await;
    assert!(refused.is_err(), "{refused:?}");
    let declined = bridge
        .call("alpha__wipe", json!({ "text": "decline-me" }))
        .await
        .unwrap();
    assert_eq!(declined.is_error, Some(true));
    // Cancelled by the IDE once the server has it.
    let req = ClientRequest::CallToolRequest(Request::new(params("alpha__slow", json!({ "seconds": 60 }))));
    let handle = bridge
        .client
        .peer()
        .send_cancellable_request(req, rmcp::service::PeerRequestOptions::no_options())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), alpha.server.probe.started.notified())
        .await
        .expect("the slow call reached the server");
    handle.cancel(Some("test".into())).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), alpha.server.probe.cancelled.notified())
        .await
        .expect("the server saw the cancellation");
    // A server gone: the call fails.
    beta.kill();
    let dead = bridge.call("beta__echo", json!({ "text": secret_arg })).await;
    assert!(dead.is_err(), "{dead:?}");
    // Answered after the cancellation: the cancelled call has ended in the bridge.
    assert_eq!(
        first_text(&bridge.call("alpha__whoami", json!({})).await.unwrap()),
        "alpha"
    );
    let stderr = bridge.finish().await;
    assert_eq!(receiver.undecodable(), vec![], "{stderr}");

    // A tool the policy hides is refused by its IDE-facing name, before it is
    // routed: the audit log, and so the counter, name no server or tool.
    let expected: Vec<((&str, &str, &str), u64)> = vec![
        (("", "", "refused"), 1),
        (("alpha", "echo", "ok"), 3),
        (("alpha", "fail", "tool_error"), 1),
        (("alpha", "slow", "cancelled"), 1),
        (("alpha", "whoami", "ok"), 2),
        (("alpha", "wipe", "declined"), 1),
        (("beta", "echo", "error"), 1),
    ];
    let audit = audit_counts(&home);
    let audit: Vec<((&str, &str, &str), u64)> = audit
        .iter()
        .map(|((s, t, o), n)| ((s.as_str(), t.as_str(), o.as_str()), *n))
        .collect();
    assert_eq!(audit, expected, "the audit log's outcomes");

    let m = receiver
        .last_metrics()
        .unwrap_or_else(|| panic!("no metrics: {:?}", receiver.summary()));
    let calls = "mcp_bridge.calls";
    let all_calls = m.describe(calls);
    for ((server, tool, outcome), n) in &expected {
        let attrs = [
            ("mcp_bridge.server", *server),
            ("gen_ai.tool.name", *tool),
            ("mcp_bridge.outcome", *outcome),
        ];
        assert_eq!(
            m.points(calls, &attrs).len(),
            1,
            "{server} {tool} {outcome}: {all_calls:#?}"
        );
        assert_eq!(
            m.sum(calls, &attrs),
            *n as f64,
            "{server} {tool} {outcome}: {all_calls:#?}"
        );
    }
    assert_eq!(m.sum(calls, &[]), 10.0, "{all_calls:#?}");
    let Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Sum(sum)) =
        m.metric(calls).and_then(|x| x.data.clone())
    else {
        panic!("{calls} is not a sum")
    };
    assert!(sum.is_monotonic);
    assert_eq!(sum.aggregation_temporality, 2, "cumulative");

    // Durations: the calls that went upstream (not the refused or declined ones).
    let dur = "mcp.client.operation.duration";
    let all_durations = m.describe(dur);
    assert_eq!(m.metric(dur).map(|x| x.unit.as_str()), Some("s"));
    let count = |server: &str, tool: &str| {
        m.histogram_count(
            dur,
            &[
                ("mcp.method.name", "tools/call"),
                ("mcp_bridge.server", server),
                ("gen_ai.tool.name", tool),
            ],
        )
    };
    for (server, tool, n) in [
        ("alpha", "echo", 3),
        ("alpha", "whoami", 2),
        ("alpha", "fail", 1),
        ("alpha", "slow", 1),
        ("beta", "echo", 1),
        ("alpha", "image", 0),
        ("alpha", "wipe", 0),
    ] {
        assert_eq!(count(server, tool), n, "{server} {tool}: {all_durations:#?}");
    }
    for p in m.points(dur, &[("mcp_bridge.server", "alpha"), ("gen_ai.tool.name", "echo")]) {
        assert!(
            p.attrs().iter().all(|a| a.key != "error.type"),
            "an ok call has no error.type: {all_durations:#?}"
        );
    }
    assert!(
        m.points(dur, &[("mcp_bridge.server", "beta")])
            .iter()
            .all(|p| p.attrs().iter().any(|a| a.key == "error.type")),
        "a failed call has an error.type: {all_durations:#?}"
    );

    // Minutes saved: echo 3 x 2, whoami 2 x 0.5 ("alpha__*"); a tool error saves nothing.
    let minutes = "mcp_bridge.minutes_saved";
    let all_minutes = m.describe(minutes);
    let saved = |tool: &str| m.sum(minutes, &[("mcp_bridge.server", "alpha"), ("gen_ai.tool.name", tool)]);
    assert_eq!(saved("echo"), 6.0, "{all_minutes:#?}");
    assert_eq!(saved("whoami"), 1.0, "{all_minutes:#?}");
    assert_eq!(m.sum(minutes, &[]), 7.0, "{all_minutes:#?}");

    // The state gauges: the session being served, one state per server; nothing
    // dropped, no token refreshed (no login here).
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    let gauge_like = |name: &str| match m.metric(name).and_then(|x| x.data.as_ref()) {
        Some(Data::Gauge(_)) => true,
        Some(Data::Sum(s)) => !s.is_monotonic,
        _ => false,
    };
    // (The last export is made as the bridge exits: the session may be over.)
    assert!(gauge_like("mcp_bridge.sessions.active"));
    assert_eq!(m.points("mcp_bridge.sessions.active", &[]).len(), 1);
    assert!(gauge_like("mcp_bridge.server.state"));
    let states = m.describe("mcp_bridge.server.state");
    for server in ["alpha", "beta"] {
        let points = m.points("mcp_bridge.server.state", &[("mcp_bridge.server", server)]);
        assert_eq!(points.len(), 1, "{server}: {states:?}");
        assert!(
            points[0].attrs().iter().any(|a| a.key == "mcp_bridge.state"),
            "{states:?}"
        );
        assert_eq!(m.sum("mcp_bridge.server.state", &[("mcp_bridge.server", server)]), 1.0);
    }
    assert_eq!(m.sum("mcp_bridge.telemetry.dropped", &[]), 0.0);
    assert!(m.metric("mcp_bridge.telemetry.dropped").is_some());
    assert_eq!(m.points("mcp_bridge.token.refreshes", &[]).len(), 0);

    // Spans: one per forwarded call; status ERROR only for the failed one.
    let spans = receiver.spans_of("mcp-bridge");
    let outcome_of = |tool: &str, server: &str| -> Vec<String> {
        let mut v: Vec<String> = spans
            .iter()
            .filter(|s| s.name() == format!("tools/call {tool}") && s.str("mcp_bridge.server") == Some(server))
            .map(|s| s.str("mcp_bridge.outcome").unwrap_or("?").to_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(outcome_of("echo", "alpha"), ["ok", "ok", "ok"]);
    assert_eq!(outcome_of("fail", "alpha"), ["tool_error"]);
    assert_eq!(outcome_of("slow", "alpha"), ["cancelled"]);
    assert_eq!(outcome_of("echo", "beta"), ["error"]);
    assert_eq!(
        outcome_of("image", "alpha"),
        Vec::<String>::new(),
        "refused: not forwarded"
    );
    assert_eq!(
        outcome_of("wipe", "alpha"),
        Vec::<String>::new(),
        "declined: not forwarded"
    );
    for s in spans.iter().filter(|s| s.name().starts_with("tools/call ")) {
        let outcome = s.str("mcp_bridge.outcome").unwrap();
        assert_eq!(s.span.kind, otlp::CLIENT);
        assert_eq!(s.status_code() == otlp::STATUS_ERROR, outcome == "error", "{s:?}");
        assert_eq!(s.str("error.type").is_some(), outcome != "ok", "{s:?}");
    }
    assert_no_markers(&receiver, &[&secret_arg, &secret_result]);
}

/// `OTEL_SDK_DISABLED=true` turns export off whatever the config names: nothing
/// reaches the collector, `status` shows no telemetry, and the IDE's trace
/// context reaches the server unchanged.
#[tokio::test]
async fn sdk_disabled_exports_nothing() {
    let receiver = Receiver::start();
    let alpha = Upstream::start(TestServer::new(Era::Modern, "alpha"));
    let home = Home::new();
    home.servers_config(&[("alpha", &alpha.url)], &telemetry_config(&receiver.url, ""));
    let mut bridge = Bridge::start(&home, &[("OTEL_SDK_DISABLED", "true")]).await;
    bridge.wait_for(&["alpha__echo"]).await;
    bridge
        .call_traced("alpha__echo", json!({ "text": "x" }), &ide_traceparent())
        .await;
    assert_eq!(status_telemetry(&home).await, Value::Null);
    bridge.finish().await;
    assert_eq!(receiver.arrivals().len(), 0, "{:?}", receiver.summary());
    let seen = alpha.server.probe.traces.locked().clone();
    assert_eq!(seen[0].meta, Some(ide_traceparent()));
}

/// With no `[telemetry]` and no `OTEL_*` variable, telemetry is off: the
/// IDE's `traceparent` reaches the server unchanged, in `_meta` and as the
/// header, for both generations.
#[tokio::test]
async fn off_by_default_and_the_trace_context_passes_through() {
    let receiver = Receiver::start();
    let legacy = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let modern = Upstream::start(TestServer::new(Era::Modern, "beta"));
    let home = Home::new();
    home.servers_config(
        &[("alpha", &legacy.url), ("beta", &modern.url)],
        "[naming]\nprefix = \"always\"\n",
    );
    let mut bridge = Bridge::start(&home, &[]).await;
    bridge.wait_for(&["alpha__echo", "beta__echo"]).await;
    for name in ["alpha__echo", "beta__echo"] {
        bridge
            .call_traced(name, json!({ "text": "x" }), &ide_traceparent())
            .await;
    }
    // Untraced: nothing is made up.
    bridge.call("alpha__echo", json!({ "text": "y" })).await.unwrap();
    assert_eq!(status_telemetry(&home).await, Value::Null);
    bridge.finish().await;
    for up in [&legacy, &modern] {
        let seen = up.server.probe.traces.locked().clone();
        assert_eq!(seen[0].meta, Some(ide_traceparent()), "{}", up.server.label);
        assert_eq!(seen[0].header, Some(ide_traceparent()), "{}", up.server.label);
    }
    let seen = legacy.server.probe.traces.locked().clone();
    assert_eq!((seen[1].meta.as_deref(), seen[1].header.as_deref()), (None, None));
    assert_eq!(receiver.arrivals().len(), 0);
}

/// `[telemetry] enabled = false` refuses a collector named by the environment.
#[tokio::test]
async fn enabled_false_refuses_the_environments_collector() {
    let receiver = Receiver::start();
    let alpha = Upstream::start(TestServer::new(Era::Modern, "alpha"));
    let home = Home::new();
    home.servers_config(&[("alpha", &alpha.url)], "[telemetry]\nenabled = false\n");
    let mut bridge = Bridge::start(&home, &[("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url)]).await;
    bridge.wait_for(&["echo"]).await;
    bridge.call("echo", json!({ "text": "x" })).await.unwrap();
    bridge.finish().await;
    assert_eq!(receiver.arrivals().len(), 0, "{:?}", receiver.summary());
}

/// The standard variables alone name the collector: `OTEL_EXPORTER_OTLP_ENDPOINT`
/// as a base, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as a full URL used as it is,
/// and `OTEL_EXPORTER_OTLP_HEADERS` sent with every export but never logged.
#[tokio::test]
async fn the_environment_names_the_collector_and_its_headers() {
    let (base, traces) = (Receiver::start(), Receiver::start());
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let home = Home::new();
    home.servers_config(&[("alpha", &alpha.url)], "");
    let traces_url = format!("{}/custom/traces", traces.url);
    let mut bridge = Bridge::start(
        &home,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &base.url),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &traces_url),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=sekrit-4242,x-team=data"),
        ],
    )
    .await;
    bridge.wait_for(&["echo"]).await;
    bridge.call("echo", json!({ "text": "x" })).await.unwrap();
    let status = status_telemetry(&home).await;
    assert!(!status.to_string().contains("sekrit"), "{status}");
    let stderr = bridge.finish().await;
    assert!(!stderr.contains("sekrit-4242"), "a header value was logged:\n{stderr}");

    let paths = |r: &Receiver| {
        let mut p: Vec<String> = r.arrivals().into_iter().map(|a| a.path).collect();
        p.dedup();
        p
    };
    assert_eq!(paths(&base), ["/v1/metrics"]);
    assert_eq!(paths(&traces), ["/custom/traces"]);
    for a in base.arrivals().into_iter().chain(traces.arrivals()) {
        let h = |k: &str| a.headers.get(k).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(h("x-api-key").as_deref(), Some("sekrit-4242"), "{}", a.path);
        assert_eq!(h("x-team").as_deref(), Some("data"), "{}", a.path);
        assert_eq!(a.content_type(), Some("application/x-protobuf"));
    }
    let spans = traces.spans_of("mcp-bridge");
    call_span(&spans, "echo", |_| true);
    assert!(
        base.last_metrics()
            .is_some_and(|m| m.sum("mcp_bridge.calls", &[]) == 1.0)
    );
}

/// A collector that answers 503: the lost spans and failed exports are
/// counted in `status --json` (and its table) while the bridge runs, and the
/// next accepted metric export carries `mcp_bridge.telemetry.dropped`, with the
/// live session and the server's state.
#[tokio::test]
async fn a_failing_collector_is_counted_in_status() {
    let receiver = Receiver::start();
    receiver.fail(true);
    let alpha = Upstream::start(TestServer::new(Era::Modern, "alpha"));
    let home = Home::new();
    home.servers_config(
        &[("alpha", &alpha.url)],
        &telemetry_config(&receiver.url, "span_delay = 0.05\nexport_interval = 0.2\n"),
    );
    let mut bridge = Bridge::start(&home, &[]).await;
    bridge.wait_for(&["alpha__echo"]).await;
    bridge.call("alpha__echo", json!({ "text": "x" })).await.unwrap();

    let wake = (receiver.arrived(), Every(Duration::from_millis(100)));
    let state = telemetry_once(&home, "status to count the failed exports", wake, |t| {
        let n = |k: &str| t[k].as_u64().unwrap_or(0);
        n("exports_failed") >= 1 && n("spans_dropped") >= 1
    })
    .await;
    assert_eq!(state["destination"], format!("{}/v1/traces", receiver.url), "{state}");
    assert!(
        state["last_error"].as_str().is_some_and(|e| e.contains("503")),
        "{state}"
    );
    let (table, _) = run_ok(cli(&home, &["status"])).await;
    assert!(table.contains("exports failed"), "{table}");
    assert!(receiver.arrivals().iter().all(|a| a.status == 503));

    // The collector is back: the next metric export says what was lost.
    receiver.fail(false);
    let dropped = receiver
        .wait("an accepted metric export", Duration::from_secs(20), |r| {
            r.last_metrics().map(|m| m.sum("mcp_bridge.telemetry.dropped", &[]))
        })
        .await;
    assert!(dropped >= 1.0, "{dropped}");
    // Exported while the IDE is connected: its session, and the server ready.
    let m = receiver.last_metrics().unwrap();
    assert_eq!(m.sum("mcp_bridge.sessions.active", &[]), 1.0);
    assert_eq!(
        m.sum(
            "mcp_bridge.server.state",
            &[("mcp_bridge.server", "alpha"), ("mcp_bridge.state", "ready")]
        ),
        1.0,
        "{:?}",
        m.describe("mcp_bridge.server.state")
    );
    bridge.finish().await;
}

/// A collector, a server `alpha` (2026-07-28) and a bridge whose tools are
/// listed, exporting spans only, every 50 ms.
async fn span_exporting_bridge() -> (Receiver, Upstream, Home, Bridge) {
    let receiver = Receiver::start();
    let alpha = Upstream::start(TestServer::new(Era::Modern, "alpha"));
    let home = Home::new();
    home.servers_config(
        &[("alpha", &alpha.url)],
        &telemetry_config(&receiver.url, "span_delay = 0.05\nmetrics = false\n"),
    );
    let mut bridge = Bridge::start(&home, &[]).await;
    bridge.wait_for(&["alpha__echo"]).await;
    (receiver, alpha, home, bridge)
}

/// A collector that refuses an export with a retryable status (503) gets the
/// same spans again at the next tick, and nothing is dropped; one that refuses
/// it for good (400) does not, and the spans are counted as dropped. Either
/// way the failure is in `status`, and no span arrives twice.
#[tokio::test]
async fn a_refused_span_export_is_retried_only_when_the_collector_may_take_it_later() {
    let (receiver, _alpha, home, bridge) = span_exporting_bridge().await;
    let echo_spans = |r: &Receiver| {
        r.spans_of("mcp-bridge")
            .iter()
            .filter(|s| s.name() == "tools/call echo")
            .count()
    };

    receiver.refuse(503, 1, "tools/call echo", None);
    bridge.call("alpha__echo", json!({ "text": "x" })).await.unwrap();
    receiver
        .wait("the refused span, offered again", Duration::from_secs(20), |r| {
            (echo_spans(r) == 1).then_some(())
        })
        .await;
    let arrivals = receiver.arrivals();
    assert!(
        arrivals.iter().any(|a| a.status == 503),
        "the first offer was refused: {:?}",
        arrivals.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    let t = telemetry_once(
        &home,
        "status to show the retried export",
        Every(Duration::from_millis(50)),
        |t| t["exports_failed"] == 1 && t["spans_exported"].as_u64().unwrap_or(0) >= 1,
    )
    .await;
    assert_eq!(t["spans_dropped"], 0, "{t}");

    receiver.refuse(400, 1, "tools/call echo", None);
    bridge.call("alpha__echo", json!({ "text": "y" })).await.unwrap();
    let t = telemetry_once(
        &home,
        "status to count the dropped spans",
        (receiver.arrived(), Every(Duration::from_millis(100))),
        |t| t["spans_dropped"].as_u64().unwrap_or(0) >= 1,
    )
    .await;
    assert_eq!(t["exports_failed"], 2, "{t}");
    assert!(t["last_error"].as_str().is_some_and(|e| e.contains("400")), "{t}");
    bridge.finish().await;
    assert_eq!(
        echo_spans(&receiver),
        1,
        "the refused span was not sent again, nor the first twice"
    );
    assert_eq!(receiver.arrivals().iter().filter(|a| a.status == 400).count(), 1);
}

/// A collector that takes connections and never answers: every call still
/// answers, the spans beyond `max_queue` are dropped and counted in `status`
/// while the export hangs, and stdin EOF still ends the bridge at once (its
/// last export is bounded, not the collector's timeout).
#[tokio::test]
async fn a_collector_that_never_answers_holds_up_no_call_and_no_exit() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    let accepting = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            keep.locked().push(socket);
        }
    });
    let alpha = Upstream::start(TestServer::new(Era::Modern, "alpha"));
    let home = Home::new();
    home.servers_config(
        &[("alpha", &alpha.url)],
        &telemetry_config(
            &url,
            "span_delay = 0.05\nmax_queue = 2\ntimeout = 30\nmetrics = false\n",
        ),
    );
    let mut bridge = Bridge::start(&home, &[]).await;
    bridge.wait_for(&["alpha__echo"]).await;
    for i in 0..6 {
        let text = format!("call {i}");
        let r = bridge.call("alpha__echo", json!({ "text": text })).await.unwrap();
        assert_eq!(first_text(&r), text);
    }
    let t = telemetry_once(
        &home,
        "status to count the spans the hung export left no room for",
        Every(Duration::from_millis(50)),
        |t| t["spans_dropped"].as_u64().unwrap_or(0) >= 1,
    )
    .await;
    assert_eq!(t["spans_exported"], 0, "{t}");
    assert!(!held.locked().is_empty(), "the bridge connected to the collector");
    bridge.finish().await;
    accepting.abort();
}

/// A collector that answers 429 with `Retry-After: 1` gets the batch again
/// no sooner than a second later, though spans go every 50 ms.
#[tokio::test]
async fn a_collectors_retry_after_is_honoured() {
    let (receiver, _alpha, _home, bridge) = span_exporting_bridge().await;
    receiver.refuse(429, 1, "tools/call echo", Some(1));
    bridge.call("alpha__echo", json!({ "text": "x" })).await.unwrap();
    let holds_echo = |a: &otlp::Arrival| a.body.windows(15).any(|w| w == b"tools/call echo");
    let taken = receiver
        .wait("the refused span, offered again", Duration::from_secs(20), |r| {
            r.arrivals().into_iter().find(|a| a.status == 200 && holds_echo(a))
        })
        .await;
    bridge.finish().await;
    let refused = receiver
        .arrivals()
        .into_iter()
        .find(|a| a.status == 429)
        .expect("the first offer was refused");
    assert!(
        taken.at.duration_since(refused.at) >= Duration::from_secs(1),
        "offered again after {:?}",
        taken.at.duration_since(refused.at)
    );
    let offers = receiver.arrivals().into_iter().filter(|a| holds_echo(a)).count();
    assert_eq!(offers, 2, "{:?}", receiver.summary());
}

/// `receiver` behind a TLS terminator with `config` (the test CA's
/// certificate for 127.0.0.1), until `stop`: its `https://` base URL.
async fn https_collector(
    receiver: &Receiver,
    config: std::sync::Arc<rustls::ServerConfig>,
    stop: &tokio_util::sync::CancellationToken,
) -> String {
    let plain: std::net::SocketAddr = receiver.url.trim_start_matches("http://").parse().unwrap();
    let tls = common::tls::tls_terminator_with(plain, stop.clone(), config).await;
    format!("https://127.0.0.1:{}", tls.port())
}

/// A bridge in a new home exporting to `endpoint` (with `extra` `[telemetry]`
/// lines), whose system roots are the fixture `roots` (`SSL_CERT_FILE`, honoured
/// on Linux), after one call to `alpha`'s echo.
#[cfg(target_os = "linux")]
async fn https_bridge(endpoint: &str, alpha: &Upstream, roots: &str, extra: &str) -> (Home, Bridge) {
    let home = Home::new();
    home.servers_config(
        &[("alpha", &alpha.url)],
        &telemetry_config(endpoint, &format!("span_delay = 0.05\nexport_interval = 0.2\n{extra}")),
    );
    let roots = common::tls::fixture(roots);
    let mut bridge = Bridge::start(
        &home,
        &[
            ("SSL_CERT_FILE", roots.to_str().unwrap()),
            ("SSL_CERT_DIR", "/nonexistent"),
        ],
    )
    .await;
    bridge.wait_for(&["alpha__echo"]).await;
    bridge.call("alpha__echo", json!({ "text": "x" })).await.unwrap();
    (home, bridge)
}

/// The last export error `status` shows, once there is one (bounded).
#[cfg(target_os = "linux")]
async fn export_error(home: &Home) -> String {
    let t = telemetry_once(
        home,
        "status to say why nothing went",
        Every(Duration::from_millis(100)),
        |t| t["exports_failed"].as_u64().unwrap_or(0) >= 1,
    )
    .await;
    t["last_error"].as_str().unwrap_or_default().to_owned()
}

/// `receiver` got the span of one `echo` call and a metric export counting it.
fn assert_one_call_exported(receiver: &Receiver) {
    call_span(&receiver.spans_of("mcp-bridge"), "echo", |_| true);
    assert!(
        receiver
            .last_metrics()
            .is_some_and(|m| m.sum("mcp_bridge.calls", &[]) == 1.0),
        "{:?}",
        receiver.summary()
    );
}

/// An HTTPS collector (a TLS terminator with the test CA's certificate for
/// 127.0.0.1 in front of the receiver) is verified against the system roots,
/// here the test CA by `SSL_CERT_FILE` (honoured on Linux), and gets the spans
/// and the metrics; signed by another CA, it gets nothing, and `status` says why.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn an_https_collector_is_verified_against_the_system_roots() {
    let receiver = Receiver::start();
    let stop = tokio_util::sync::CancellationToken::new();
    let endpoint = https_collector(&receiver, common::tls::server_config(&[]), &stop).await;
    let alpha = Upstream::start(TestServer::new(Era::Modern, "alpha"));
    let run = async |ca: &str| https_bridge(&endpoint, &alpha, ca, "").await;

    let (_home, bridge) = run("ca.pem").await;
    bridge.finish().await;
    assert_one_call_exported(&receiver);

    let before = receiver.arrivals().len();
    let (home, bridge) = run("other-ca.pem").await;
    let error = export_error(&home).await;
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    bridge.finish().await;
    assert_eq!(receiver.arrivals().len(), before, "nothing reached the collector");
    stop.cancel();
}

/// `protocol = "grpc"`: the spans and metrics reach a real OTLP/gRPC collector
/// (grpcio with the official services) as `Export` calls with the configured
/// headers as metadata; the call's span is in the IDE's trace; a call the
/// collector answers UNAVAILABLE is made again (no span lost or sent twice),
/// and `status` names the collector, the protocol and the gRPC status;
/// `doctor` gets its empty exports taken.
#[tokio::test]
async fn a_grpc_collector_gets_the_spans_and_metrics() {
    if common::interop::skip_requested() {
        return;
    }
    common::interop::ensure_installed(&[".venv/bin/python"]);
    let receiver = Receiver::start_grpc(Some((14, 1, "tools/call echo")));
    let alpha = Upstream::start(TestServer::new(Era::Modern, "alpha"));
    let home = Home::new();
    home.servers_config(
        &[("alpha", &alpha.url)],
        &telemetry_config(
            &receiver.url,
            "protocol = \"grpc\"\nspan_delay = 0.05\nheaders = { \"x-api-key\" = \"grpc-sekrit\" }\n",
        ),
    );
    let mut bridge = Bridge::start(&home, &[]).await;
    bridge.wait_for(&["alpha__echo"]).await;
    let (secret_arg, secret_result) = bridge.call_with_secrets().await;
    let echo_spans = |r: &Receiver| {
        r.spans_of("mcp-bridge")
            .into_iter()
            .filter(|s| s.name() == "tools/call echo")
            .collect::<Vec<_>>()
    };
    receiver
        .wait("the refused span, offered again", Duration::from_secs(20), |r| {
            (!echo_spans(r).is_empty()).then_some(())
        })
        .await;
    let t = telemetry_once(
        &home,
        "status to show the refused export",
        Every(Duration::from_millis(50)),
        |t| t["exports_failed"] == 1 && t["spans_exported"].as_u64().unwrap_or(0) >= 1,
    )
    .await;
    assert_eq!(t["destination"], format!("{}/ (gRPC)", receiver.url), "{t}");
    assert!(
        t["last_error"].as_str().is_some_and(|e| e.contains("UNAVAILABLE")),
        "{t}"
    );
    assert_eq!(t["spans_dropped"], 0, "{t}");
    let stderr = bridge.finish().await;
    assert!(!stderr.contains("grpc-sekrit"), "a header value was logged:\n{stderr}");

    assert_eq!(receiver.undecodable(), vec![], "{stderr}");
    let arrivals = receiver.arrivals();
    assert_eq!(
        arrivals.iter().filter(|a| a.status == 14).count(),
        1,
        "{:?}",
        receiver.summary()
    );
    for a in &arrivals {
        let h = |k: &str| a.headers.get(k).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(h("x-api-key").as_deref(), Some("grpc-sekrit"), "{}", a.path);
        assert!(
            a.path == "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
                || a.path == "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            "{}",
            a.path
        );
    }
    let spans = echo_spans(&receiver);
    assert_eq!(spans.len(), 1, "{:?}", receiver.summary());
    assert_eq!(spans[0].trace_id(), IDE_TRACE);
    assert_eq!(spans[0].parent().as_deref(), Some(IDE_SPAN));
    assert_eq!(spans[0].str("mcp_bridge.server"), Some("alpha"));
    let metrics = receiver.last_metrics().expect("metrics were exported");
    assert_eq!(metrics.sum("mcp_bridge.calls", &[("gen_ai.tool.name", "echo")]), 1.0);
    assert_no_markers(&receiver, &[&secret_arg, &secret_result]);

    // `doctor` makes an empty gRPC export of each signal.
    let before = receiver.arrivals().len();
    let (_, text) = doctor(&home, &[]).await;
    assert!(
        text.contains(&format!(
            "telemetry: the collector at {}/ (gRPC) takes OTLP exports",
            receiver.url
        )),
        "{text}"
    );
    assert_eq!(receiver.arrivals().len(), before + 2, "{text}");

    // The gRPC port with OTLP/HTTP: doctor says which port takes which.
    let (ok, text) = doctor(&home, &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]).await;
    assert!(!ok, "{text}");
    assert!(text.contains("is it an OTLP/gRPC endpoint?"), "{text}");
}

/// gRPC to an `https://` collector: HTTP/2 by ALPN through TLS (a terminator
/// offering `h2`, with the test CA's certificate, trusted through
/// `[telemetry] certificate`), to the real gRPC server behind it.
#[tokio::test]
async fn a_grpc_collector_behind_tls() {
    if common::interop::skip_requested() {
        return;
    }
    common::interop::ensure_installed(&[".venv/bin/python"]);
    let receiver = Receiver::start_grpc(None);
    let stop = tokio_util::sync::CancellationToken::new();
    let endpoint = https_collector(&receiver, common::tls::server_config(&[b"h2"]), &stop).await;
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let home = Home::new();
    let ca = common::tls::fixture("ca.pem");
    home.servers_config(
        &[("alpha", &alpha.url)],
        &telemetry_config(
            &endpoint,
            &format!("protocol = \"grpc\"\ncertificate = \"{}\"\n", ca.display()),
        ),
    );
    let mut bridge = Bridge::start(&home, &[]).await;
    bridge.wait_for(&["alpha__echo"]).await;
    bridge.call("alpha__echo", json!({ "text": "x" })).await.unwrap();
    let stderr = bridge.finish().await;
    assert_eq!(receiver.undecodable(), vec![], "{stderr}");
    assert_one_call_exported(&receiver);
    stop.cancel();
}

/// A collector behind a private CA that asks for a client certificate:
/// `[telemetry] certificate` adds the CA to the system's roots (here another
/// CA's, by `SSL_CERT_FILE`), and `client_certificate` with `client_key` is
/// presented; the spans and metrics arrive. Without the client certificate the
/// collector refuses the handshake, and with a key file that is not there the
/// exporter says so; in both cases `status` says why and nothing arrives.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_collector_with_a_private_ca_and_client_certificates() {
    let receiver = Receiver::start();
    let stop = tokio_util::sync::CancellationToken::new();
    let config = common::tls::server_config_with(&[], Some("client-ca.pem"));
    let endpoint = https_collector(&receiver, config, &stop).await;
    let alpha = Upstream::start(TestServer::new(Era::Modern, "alpha"));
    let path = |name: &str| common::tls::fixture(name).display().to_string();
    let run = async |files: String| https_bridge(&endpoint, &alpha, "other-ca.pem", &files).await;
    let all = format!(
        "certificate = \"{}\"\nclient_certificate = \"{}\"\nclient_key = \"{}\"\n",
        path("ca.pem"),
        path("client.pem"),
        path("client.key")
    );
    let (_home, bridge) = run(all).await;
    bridge.finish().await;
    assert_one_call_exported(&receiver);

    let before = receiver.arrivals().len();
    let (home, bridge) = run(format!("certificate = \"{}\"\n", path("ca.pem"))).await;
    let error = export_error(&home).await;
    bridge.finish().await;
    assert!(error.contains("CertificateRequired"), "{error}");

    let missing = format!(
        "certificate = \"{}\"\nclient_certificate = \"{}\"\nclient_key = \"/nonexistent/client.key\"\n",
        path("ca.pem"),
        path("client.pem")
    );
    let (home, bridge) = run(missing).await;
    let error = export_error(&home).await;
    bridge.finish().await;
    assert!(error.contains("/nonexistent/client.key"), "{error}");
    assert_eq!(receiver.arrivals().len(), before, "nothing reached the collector");
    stop.cancel();
}

/// The resource: `service.name`, `service.version`, a `service.instance.id`
/// per run, `enduser.pseudo.id` stable across runs with the same home (and
/// neither the user's name nor shared with another home), and the IDE's
/// `clientInfo.name`; on spans and metrics alike.
#[tokio::test]
async fn the_resource_names_the_bridge_a_pseudonymous_user_and_the_ide() {
    let alpha = Upstream::start(TestServer::new(Era::Modern, "alpha"));
    let (home, other_home) = (Home::new(), Home::new());
    let run = async |home: &Home| {
        let receiver = Receiver::start();
        home.servers_config(&[("alpha", &alpha.url)], &telemetry_config(&receiver.url, ""));
        let mut bridge = Bridge::start(home, &[]).await;
        bridge.wait_for(&["alpha__echo"]).await;
        bridge.call("alpha__echo", json!({ "text": "x" })).await.unwrap();
        bridge.finish().await;
        receiver
    };
    let first = run(&home).await;
    let second = run(&home).await;
    let other = run(&other_home).await;

    let resource = |r: &Receiver| {
        let spans = r.spans_of("mcp-bridge");
        let span = call_span(&spans, "echo", |_| true).clone();
        let metrics = r.last_metrics().expect("metrics were exported");
        for key in [
            "service.name",
            "service.version",
            "service.instance.id",
            "enduser.pseudo.id",
            "mcp_bridge.client.name",
        ] {
            assert_eq!(
                span.resource_str(key),
                metrics.resource_str(key),
                "{key}: the same on spans and metrics"
            );
        }
        let get = |k: &str| {
            span.resource_str(k)
                .unwrap_or_else(|| panic!("no {k} in {:?}", span.resource))
                .to_owned()
        };
        assert_eq!(get("service.name"), "mcp-bridge");
        assert_eq!(get("service.version"), env!("CARGO_PKG_VERSION"));
        assert_eq!(get("mcp_bridge.client.name"), "test-ide");
        (get("service.instance.id"), get("enduser.pseudo.id"))
    };
    let (a, b, c) = (resource(&first), resource(&second), resource(&other));
    assert_eq!(a.1, b.1, "the same home, the same pseudonymous user");
    assert_ne!(a.1, c.1, "another home, another user id");
    assert_ne!(a.0, b.0, "each run is its own instance");
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_default();
    for id in [&a.1, &c.1] {
        assert!(id.len() >= 16 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        if user.len() >= 3 {
            assert!(!id.contains(&user), "{id} names the user");
        }
    }
    if user.len() >= 4 {
        for r in [&first, &second, &other] {
            for arrival in r.arrivals() {
                assert!(
                    !arrival.body.windows(user.len()).any(|w| w == user.as_bytes()),
                    "the user's name reached the collector"
                );
            }
        }
    }
}

/// Run `mcp-bridge login NAME`, completing the browser step (as `auth_flow`).
async fn login(home: &Home, name: &str) {
    let (browser, out) = common::interop::fake_browser(home.path());
    let mut cmd = cli(home, &["login", name]);
    cmd.env("BROWSER", &browser)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().unwrap();
    let url = eventually("the browser to be opened", Duration::from_secs(20), async || {
        std::fs::read_to_string(&out)
            .map(|s| s.trim().to_owned())
            .map_err(|e| e.kind())
    })
    .await;
    let visit = common::auth::browse(&url, true).await;
    assert_eq!(visit.callback_status, Some(200), "{visit:?}");
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Refreshes ahead of expiry are spans (`mcp_bridge.token.refresh`, a failed
/// one with status ERROR and a fixed `error.type`) and counted by outcome in
/// `mcp_bridge.token.refreshes`; no token reaches the collector.
#[tokio::test]
async fn token_refreshes_are_traced_and_counted() {
    use common::auth::{AuthServer, Protection, TokenFailure, start_protected};
    let receiver = Receiver::start();
    let auth = AuthServer::start();
    auth.set_access_lifetime(3);
    let protected = start_protected(TestServer::new(Era::Legacy, "vault"), &auth, Protection::default());
    let home = Home::new();
    home.servers_config(&[("vault", &protected.url)], &telemetry_config(&receiver.url, ""));
    login(&home, "vault").await;
    // The first refresh fails (transient), the retry succeeds.
    auth.fail_next_token_requests(1, TokenFailure::TemporarilyUnavailable);
    let mut bridge = Bridge::start(&home, &[]).await;
    bridge.wait_for(&["vault__echo"]).await;
    auth.wait_until("a failed refresh, then a good one", Duration::from_secs(30), |log| {
        (log.refreshes() >= 1 && log.requests("refresh_token") >= 2).then_some(())
    })
    .await;
    assert_eq!(
        first_text(&bridge.call("vault__whoami", json!({})).await.unwrap()),
        "vault"
    );
    bridge.finish().await;
    let log = auth.log();
    let (ok, failed) = (log.refreshes(), log.requests("refresh_token") - log.refreshes());
    assert!(ok >= 1 && failed >= 1, "{ok} good and {failed} failed refreshes");

    let spans = receiver.spans_of("mcp-bridge");
    let refreshes: Vec<&SpanSeen> = spans
        .iter()
        .filter(|s| s.name() == "mcp_bridge.token.refresh")
        .collect();
    assert_eq!(refreshes.len(), ok + failed, "{:?}", receiver.summary());
    for s in &refreshes {
        assert_eq!(s.str("mcp_bridge.server"), Some("vault"));
        assert_eq!(s.parent(), None);
        let outcome = s.str("mcp_bridge.outcome");
        assert!(matches!(outcome, Some("ok" | "error")), "{s:?}");
        assert_eq!(s.status_code() == otlp::STATUS_ERROR, outcome == Some("error"), "{s:?}");
        assert_eq!(s.str("error.type").is_some(), outcome == Some("error"), "{s:?}");
    }
    let failed_spans = refreshes
        .iter()
        .filter(|s| s.str("mcp_bridge.outcome") == Some("error"))
        .count();
    assert_eq!(failed_spans, failed);

    let m = receiver.last_metrics().expect("metrics were exported");
    let counted = |outcome: &str| {
        m.sum(
            "mcp_bridge.token.refreshes",
            &[("mcp_bridge.server", "vault"), ("mcp_bridge.outcome", outcome)],
        )
    };
    let all = m.describe("mcp_bridge.token.refreshes");
    assert_eq!(counted("ok"), ok as f64, "{all:?}");
    assert_eq!(counted("failed"), failed as f64, "{all:?}");
    let secrets = auth.issued_secrets();
    assert!(!secrets.is_empty());
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_no_markers(&receiver, &secrets);
}

/// `doctor` says where telemetry goes and whether the collector takes an OTLP
/// export (an empty one of each signal, sent with the configured headers), and
/// asks for a fix when it refuses; with no collector it only notes that
/// telemetry is off.
#[tokio::test]
async fn doctor_checks_the_collector() {
    let receiver = Receiver::start();
    let home = Home::new();
    home.servers_config(
        &[],
        &telemetry_config(&receiver.url, "headers = { \"x-doctor-key\" = \"doctor-secret-1\" }\n"),
    );
    let (_, text) = doctor(&home, &[]).await;
    assert!(
        text.contains(&format!(
            "telemetry: the collector at {}/v1/traces takes OTLP exports",
            receiver.url
        )),
        "{text}"
    );
    let arrivals = receiver.arrivals();
    assert_eq!(arrivals.len(), 2, "one empty export per signal");
    assert!(
        arrivals
            .iter()
            .all(|a| a.status == 200 && a.headers.get("x-doctor-key").is_some_and(|v| v == "doctor-secret-1"))
    );
    assert!(!text.contains("doctor-secret-1"), "{text}");

    receiver.fail(true);
    let (ok, text) = doctor(&home, &[]).await;
    assert!(!ok, "{text}");
    assert!(text.contains("FIX") && text.contains("answered HTTP 503"), "{text}");

    // gRPC to an OTLP/HTTP receiver (HTTP/1.1 only): the hint names the ports.
    receiver.fail(false);
    let (_, text) = doctor(&home, &[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]).await;
    assert!(text.contains("is it an OTLP/HTTP endpoint?"), "{text}");

    let off = Home::new();
    off.servers_config(&[], "");
    let (_, text) = doctor(&off, &[]).await;
    assert!(text.contains("telemetry: off"), "{text}");
}

/// `mcp-bridge doctor` in `home` with `env` set: whether it found nothing
/// to fix, and what it printed.
async fn doctor(home: &Home, env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = cli(home, &["doctor"]);
    cmd.envs(env.iter().copied());
    let out = cmd.output().await.unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A registry API on 127.0.0.1 (on the test's runtime) listing `alpha`, with
/// the operator's `telemetry` settings in its `_meta`: its base URL.
async fn registry_api(alpha: &Upstream, telemetry: Value) -> String {
    let page = json!({
        "servers": [{
            "server": { "name": "com.example/alpha", "description": "test", "version": "1.0.0",
                "remotes": [{ "type": "streamable-http", "url": alpha.url }] },
            "_meta": {
                "io.modelcontextprotocol.registry/official": { "status": "active", "isLatest": true,
                    "updatedAt": "2026-11-01T00:00:00Z" },
                "dev.mcp-bridge/config": { "namespace": "alpha", "telemetry": telemetry }
            }
        }],
        "metadata": { "count": 1 }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let registry = format!("http://{}", listener.local_addr().unwrap());
    let page = page.to_string();
    let app = axum::Router::new().route(
        "/v0.1/servers",
        axum::routing::get(move || {
            let page = page.clone();
            async move { ([("content-type", "application/json")], page) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    registry
}

/// Each fetch of the registry API is a span of its own trace, with its
/// outcome and no server (nor the registry's URL, which may carry a key).
#[tokio::test]
async fn registry_fetches_are_traced() {
    let receiver = Receiver::start();
    let alpha = Upstream::start(TestServer::new(Era::Modern, "alpha"));
    let registry = registry_api(&alpha, json!({})).await;
    let home = Home::new();
    home.write_config(&format!(
        "[registry]\nurl = \"{registry}\"\n[telemetry]\nendpoint = \"{}\"\n",
        receiver.url
    ));
    let mut bridge = Bridge::start(&home, &[]).await;
    bridge.wait_for(&["echo"]).await;
    bridge.finish().await;
    let spans = receiver.spans_of("mcp-bridge");
    let fetch = spans
        .iter()
        .find(|s| s.name() == "mcp_bridge.registry.fetch")
        .unwrap_or_else(|| panic!("no registry span in {:?}", receiver.summary()));
    assert_eq!(fetch.str("mcp_bridge.outcome"), Some("ok"));
    assert_eq!(fetch.str("mcp_bridge.server"), None);
    assert_eq!(fetch.parent(), None);
    assert_eq!(fetch.span.kind, otlp::INTERNAL);
    let port = registry.rsplit(':').next().unwrap();
    for a in receiver.arrivals() {
        assert!(
            !a.body
                .windows(port.len() + 1)
                .any(|w| w == format!(":{port}").as_bytes()),
            "the registry's address reached the collector"
        );
    }
}

/// A first run in an empty home (nothing cached) whose registry API names the
/// collector in its operator `_meta`: the export starts with the registry's
/// first answer, before its servers join, so the connection and the first
/// call are exported too.
#[tokio::test]
async fn a_first_run_exports_to_the_collector_the_registry_names() {
    let receiver = Receiver::start();
    let alpha = Upstream::start(TestServer::new(Era::Modern, "alpha"));
    let registry = registry_api(&alpha, json!({ "endpoint": receiver.url })).await;
    let home = Home::new();
    home.write_config(&format!(
        "[naming]\nprefix = \"always\"\n[registry]\nurl = \"{registry}\"\n"
    ));

    let mut bridge = Bridge::start(&home, &[]).await;
    bridge.wait_for(&["alpha__echo"]).await;
    bridge.call("alpha__echo", json!({ "text": "x" })).await.unwrap();
    let stderr = bridge.finish().await;

    let spans = receiver.spans_of("mcp-bridge");
    call_span(&spans, "echo", |_| true);
    assert!(
        spans
            .iter()
            .any(|s| s.name() == "mcp_bridge.connect" && s.str("mcp_bridge.outcome") == Some("ok")),
        "no connect span: {:?}\n{stderr}",
        spans.iter().map(SpanSeen::name).collect::<Vec<_>>()
    );
    let metrics = receiver.last_metrics().expect("metrics were exported");
    assert_eq!(metrics.sum("mcp_bridge.calls", &[]), 1.0, "{stderr}");
}
