//! OpenTelemetry for the organisation's view of its MCP usage: a span per
//! forwarded request (joined to the IDE's trace through `_meta.traceparent`,
//! and passed on to the server in `_meta` and the `traceparent` header),
//! spans for connections, list refreshes, logins and token refreshes, and
//! cumulative metrics (calls by outcome, durations, minutes saved, sessions,
//! connection states, token refreshes), exported over OTLP (HTTP/protobuf or gRPC).
//!
//! Off unless a collector is named ([`plan`]): then [`Telemetry`] is a `None`
//! and every hook is one branch. On, the call path appends a record to a
//! bounded queue or bumps an aggregate under a short lock; encoding and HTTP
//! happen in one task ([`export`]). Spans that do not fit in the queue, or
//! whose export fails, are dropped and counted ([`Telemetry::state`], shown by
//! `status`); metrics are cumulative, so a failed export loses nothing.
//!
//! What is recorded names servers, tools, prompts and methods, outcomes,
//! durations and sizes: never arguments, results, resource URIs, error texts
//! from servers, tokens or user names.
//!
//! Why not the OpenTelemetry SDK's pipeline: its batch processors do not
//! expose how many records they dropped (`status` must show it), its resource
//! is fixed before the IDE has said its name, and its exporters bring a
//! second HTTP stack or runtime thread. The wire format is the official one
//! (`opentelemetry-proto`'s generated types, encoded by `prost`); what the
//! bridge records is small and fixed, so the recorder is too. `tracing`
//! spans are not bridged (no `tracing-opentelemetry`): most are debug
//! detail, and a layer would cost on every span of the process.

mod export;
pub mod metrics;
pub mod plan;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use export::probe;
pub use plan::Plan;

use crate::util::{Locked, RwLocked};

/// Spans queued before the exporter is woken without waiting for its timer.
const BATCH: usize = 512;

/// The process's handle, set once by `serve` ([`install`]); off everywhere
/// else (`call`, `tools`, tests of the library).
static GLOBAL: OnceLock<Telemetry> = OnceLock::new();
static OFF: Telemetry = Telemetry(None);

/// The process's telemetry: off unless `serve` installed one.
pub fn global() -> &'static Telemetry {
    GLOBAL.get().unwrap_or(&OFF)
}

/// Make `t` the process's telemetry (once; later calls are ignored).
pub fn install(t: Telemetry) {
    let _ = GLOBAL.set(t);
}

/// W3C trace context `traceparent`: a trace, the span it came from, and flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: u8,
}

impl TraceParent {
    /// Parse a `traceparent` value: `version-traceid-spanid-flags`, lowercase
    /// hex; version `ff` and all-zero ids are invalid; a future version may add
    /// fields after the flags (W3C Trace Context, section 3.2).
    pub fn parse(s: &str) -> Option<TraceParent> {
        let mut parts = s.trim().split('-');
        let version = parts.next()?;
        let (trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?);
        let more = parts.next().is_some();
        let is_hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !is_hex(version, 2) || version == "ff" || (version == "00" && more) {
            return None;
        }
        if !is_hex(trace, 32) || !is_hex(span, 16) || !is_hex(flags, 2) {
            return None;
        }
        let mut t = TraceParent {
            trace_id: [0; 16],
            span_id: [0; 8],
            flags: 0,
        };
        unhex(trace, &mut t.trace_id);
        unhex(span, &mut t.span_id);
        let mut f = [0u8; 1];
        unhex(flags, &mut f);
        t.flags = f[0];
        (t.trace_id != [0; 16] && t.span_id != [0; 8]).then_some(t)
    }

    /// The `traceparent` value (version 00).
    pub fn header(&self) -> String {
        let mut s = String::with_capacity(55);
        s.push_str("00-");
        push_hex(&mut s, &self.trace_id);
        s.push('-');
        push_hex(&mut s, &self.span_id);
        s.push('-');
        push_hex(&mut s, &[self.flags]);
        s
    }

    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

fn unhex(s: &str, out: &mut [u8]) {
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        let d = |b: u8| if b.is_ascii_digit() { b - b'0' } else { b - b'a' + 10 };
        out[i] = d(pair[0]) << 4 | d(pair[1]);
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s
}

/// Lowercase hex digits, by table: this is on the call path (each forwarded
/// request's `traceparent`), where `write!` per byte cost about 5,000
/// instructions a call (callgrind, `benches/profile.rs`).
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

/// Whether a new trace is recorded at `ratio`: the trace id's last eight
/// bytes against the ratio of their range, so that every process sampling at
/// the same ratio decides the same for one trace (the OpenTelemetry
/// `TraceIdRatioBased` sampler's rule).
fn sampled(trace_id: &[u8; 16], ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id[8..]);
    (u64::from_be_bytes(low) >> 1) < (ratio.max(0.0) * (1u64 << 63) as f64) as u64
}

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    Str(String),
    Int(i64),
}

/// Which side of a request a span is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Internal,
    /// A request the bridge sends (to a server, an authorization server).
    Client,
}

/// A started span: its context goes upstream before it ends.
#[derive(Debug)]
pub struct Span {
    ctx: TraceParent,
    parent: Option<[u8; 8]>,
    trace_state: String,
    start_ns: u64,
    started: Instant,
}

impl Span {
    /// The `traceparent` that makes the next hop a child of this span.
    pub fn traceparent(&self) -> String {
        self.ctx.header()
    }

    /// The trace and span ids (tests, logs).
    pub fn context(&self) -> TraceParent {
        self.ctx
    }

    pub fn elapsed_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// A finished span, waiting for export.
#[derive(Debug, Clone)]
pub(crate) struct SpanRecord {
    ctx: TraceParent,
    parent: Option<[u8; 8]>,
    trace_state: String,
    name: String,
    kind: Kind,
    start_ns: u64,
    end_ns: u64,
    attrs: Vec<(&'static str, Attr)>,
    /// Set when the span failed: a short description, never a server's text.
    error: Option<String>,
}

/// What `status` shows of the exporter: where it sends, and what was lost.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TelemetryState {
    /// Where spans (else metrics) go, without credentials.
    pub destination: String,
    pub spans_exported: u64,
    /// Spans lost: the queue was full, or their export failed.
    pub spans_dropped: u64,
    /// Export requests (spans or metrics) that failed.
    pub exports_failed: u64,
    pub metric_exports: u64,
    pub last_error: Option<String>,
}

/// What the exporter reads from the rest of the bridge at each metric export.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The IDE's `clientInfo.name`, once known.
    pub client_name: Option<String>,
    /// Whether an IDE session is being served.
    pub session: bool,
    /// Each server's id and connection state (`ready`, `connecting`, ...).
    pub servers: Vec<(String, String)>,
}

pub type Observer = Arc<dyn Fn() -> Observed + Send + Sync>;

/// Cheap to clone; `Default` is off.
#[derive(Clone, Default)]
pub struct Telemetry(Option<Arc<Shared>>);

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").field("on", &self.0.is_some()).finish()
    }
}

pub(crate) struct Shared {
    traces: bool,
    metrics: bool,
    max_queue: usize,
    sample_ratio: f64,
    destination: String,
    start_ns: u64,
    spans: Mutex<Vec<SpanRecord>>,
    wake: Notify,
    agg: Mutex<metrics::Aggregates>,
    /// `[audit.minutes_saved]` and the registry's, first match wins.
    minutes: RwLock<Vec<(String, f64)>>,
    spans_exported: AtomicU64,
    spans_dropped: AtomicU64,
    exports_failed: AtomicU64,
    metric_exports: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Woken when a count changes (an export, a failure, a loss), so that
    /// `status` sees it.
    changed: OnceLock<Arc<Notify>>,
}

impl Shared {
    /// An export request failed with `error`; what it carried may be retried.
    fn failed(&self, error: String) {
        self.exports_failed.fetch_add(1, Ordering::Relaxed);
        *self.last_error.locked() = Some(error);
        self.tell();
    }

    /// `spans` will never be delivered.
    fn dropped(&self, spans: u64) {
        self.spans_dropped.fetch_add(spans, Ordering::Relaxed);
        self.tell();
    }

    /// `status` is to see a count that changed.
    fn tell(&self) {
        if let Some(n) = self.changed.get() {
            n.notify_one();
        }
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Telemetry {
    /// Start exporting as `plan` says until `shutdown`; then one last export,
    /// bounded, before the returned task ends. `id_file` keeps the pseudonymous
    /// user id (created on first use). Needs a tokio runtime.
    pub fn start(
        plan: Plan,
        id_file: Option<std::path::PathBuf>,
        observe: Observer,
        shutdown: CancellationToken,
    ) -> (Telemetry, tokio::task::JoinHandle<()>) {
        let shared = Arc::new(Shared {
            traces: plan.traces.is_some(),
            metrics: plan.metrics.is_some(),
            max_queue: plan.max_queue,
            sample_ratio: plan.sample_ratio,
            destination: plan.destination(),
            start_ns: now_ns(),
            spans: Mutex::new(Vec::new()),
            wake: Notify::new(),
            agg: Mutex::new(metrics::Aggregates::default()),
            minutes: RwLock::new(Vec::new()),
            spans_exported: AtomicU64::new(0),
            spans_dropped: AtomicU64::new(0),
            exports_failed: AtomicU64::new(0),
            metric_exports: AtomicU64::new(0),
            last_error: Mutex::new(None),
            changed: OnceLock::new(),
        });
        let task = tokio::spawn(export::run(shared.clone(), plan, id_file, observe, shutdown));
        (Telemetry(Some(shared)), task)
    }

    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Woken whenever an export count changes (the published state's writer).
    pub fn notify_on_change(&self, n: Arc<Notify>) {
        if let Some(s) = &self.0 {
            let _ = s.changed.set(n);
        }
    }

    /// The minutes one successful call saves, by pattern over `server__tool`.
    pub fn set_minutes(&self, minutes: Vec<(String, f64)>) {
        if let Some(s) = &self.0 {
            *s.minutes.write_locked() = minutes;
        }
    }

    /// A span, child of `parent` when given (same trace), else the root of a
    /// new trace. `None` when traces are off. A parent that was not sampled
    /// gives a span that is propagated but not recorded.
    pub fn start_span(&self, parent: Option<TraceParent>, trace_state: Option<&str>) -> Option<Span> {
        let ratio = self.0.as_ref().filter(|s| s.traces)?.sample_ratio;
        let mut rng = rand::rng();
        let span_id = loop {
            let id: [u8; 8] = rand::Rng::random(&mut rng);
            if id != [0; 8] {
                break id;
            }
        };
        let (trace_id, flags, parent_id) = match parent {
            Some(p) => (p.trace_id, p.flags, Some(p.span_id)),
            None => {
                let id = loop {
                    let id: [u8; 16] = rand::Rng::random(&mut rng);
                    if id != [0; 16] {
                        break id;
                    }
                };
                (id, u8::from(sampled(&id, ratio)), None)
            }
        };
        Some(Span {
            ctx: TraceParent {
                trace_id,
                span_id,
                flags,
            },
            parent: parent_id,
            trace_state: trace_state.unwrap_or_default().to_owned(),
            start_ns: now_ns(),
            started: Instant::now(),
        })
    }

    /// Finish `span` and queue it for export; when the queue is full it is
    /// dropped and counted. Never blocks on the exporter.
    pub fn end_span(
        &self,
        span: Span,
        name: String,
        kind: Kind,
        attrs: Vec<(&'static str, Attr)>,
        error: Option<String>,
    ) {
        let Some(s) = &self.0 else { return };
        if !span.ctx.sampled() {
            return;
        }
        let record = SpanRecord {
            ctx: span.ctx,
            parent: span.parent,
            trace_state: span.trace_state,
            name,
            kind,
            start_ns: span.start_ns,
            end_ns: span.start_ns + span.started.elapsed().as_nanos() as u64,
            attrs,
            error,
        };
        let len = {
            let mut q = s.spans.locked();
            if q.len() >= s.max_queue {
                drop(q);
                s.dropped(1);
                return;
            }
            q.push(record);
            q.len()
        };
        if len == BATCH {
            s.wake.notify_one();
        }
    }

    /// A root span of the bridge's own work on `server` (a connection, a list
    /// refresh, a login, a token refresh; `""` for the registry's fetch, which
    /// is no server's): `work` runs inside it, and
    /// `error_type` names a failure with a fixed word (`error.type`): error
    /// texts may carry URLs with credentials in them, and stay out.
    pub async fn traced<T, E>(
        &self,
        name: &'static str,
        server: &str,
        error_type: impl FnOnce(&E) -> &'static str,
        work: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let Some(span) = self.start_span(None, None) else {
            return work.await;
        };
        let r = work.await;
        let mut attrs = Vec::with_capacity(3);
        if !server.is_empty() {
            attrs.push(("mcp_bridge.server", Attr::Str(server.to_owned())));
        }
        let error = r.as_ref().err().map(error_type);
        attrs.push((
            "mcp_bridge.outcome",
            Attr::Str(if error.is_some() { "error" } else { "ok" }.to_owned()),
        ));
        if let Some(e) = error {
            attrs.push(("error.type", Attr::Str(e.to_owned())));
        }
        self.end_span(span, name.to_owned(), Kind::Internal, attrs, error.map(str::to_owned));
        r
    }

    /// A tool call ended with `outcome` (the audit log's outcomes): counted,
    /// and its minutes saved when it succeeded.
    pub fn call(&self, server: &str, tool: &str, outcome: &'static str) {
        let Some(s) = self.0.as_ref().filter(|s| s.metrics) else {
            return;
        };
        let minutes = {
            let table = s.minutes.read_locked();
            if outcome == "ok" && !table.is_empty() {
                crate::policy::minutes_for(&table, server, tool)
            } else {
                0.0
            }
        };
        let key = metrics::CallKey {
            server: server.into(),
            tool: tool.to_owned(),
            outcome,
        };
        s.agg.locked().call(key, minutes);
    }

    /// A forwarded request took `secs`; `error` is its `error.type` when it failed.
    pub fn operation(&self, key: metrics::OpKey, secs: f64) {
        if let Some(s) = self.0.as_ref().filter(|s| s.metrics) {
            s.agg.locked().operation(key, secs);
        }
    }

    /// A token refresh ahead of expiry ended.
    pub fn refresh(&self, server: &str, ok: bool) {
        if let Some(s) = self.0.as_ref().filter(|s| s.metrics) {
            s.agg.locked().refresh(server.into(), if ok { "ok" } else { "failed" });
        }
    }

    /// The exporter's counts, for `status`; `None` when off.
    pub fn state(&self) -> Option<TelemetryState> {
        let s = self.0.as_ref()?;
        Some(TelemetryState {
            destination: s.destination.clone(),
            spans_exported: s.spans_exported.load(Ordering::Relaxed),
            spans_dropped: s.spans_dropped.load(Ordering::Relaxed),
            exports_failed: s.exports_failed.load(Ordering::Relaxed),
            metric_exports: s.metric_exports.load(Ordering::Relaxed),
            last_error: s.last_error.locked().clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_refuses_invalid_values() {
        let v = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let t = TraceParent::parse(v).unwrap();
        assert_eq!(t.header(), v);
        assert!(t.sampled());
        assert_eq!(t.span_id, [0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31]);
        // A future version may append fields; version 00 may not.
        assert!(TraceParent::parse("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-extra").is_some());
        for bad in [
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",
            "garbage",
            "",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn spans_join_the_parent_and_a_full_queue_counts_drops() {
        let plan = Plan {
            traces: Some("http://127.0.0.1:9/v1/traces".into()),
            metrics: None,
            grpc: false,
            tls: Default::default(),
            headers: vec![],
            timeout: std::time::Duration::from_secs(1),
            export_interval: std::time::Duration::from_secs(3600),
            span_delay: std::time::Duration::from_secs(3600),
            max_queue: 2,
            sample_ratio: 1.0,
            service_name: "mcp-bridge".into(),
            resource: vec![],
        };
        let stop = CancellationToken::new();
        let (t, _task) = Telemetry::start(plan, None, Arc::new(Observed::default), stop.clone());
        let ide = TraceParent::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
        let child = t.start_span(Some(ide), None).unwrap();
        assert_eq!(child.context().trace_id, ide.trace_id);
        assert_ne!(child.context().span_id, ide.span_id);
        let root = t.start_span(None, None).unwrap();
        assert_ne!(root.context().trace_id, ide.trace_id);
        for _ in 0..3 {
            let s = t.start_span(Some(ide), None).unwrap();
            t.end_span(s, "x".into(), Kind::Client, vec![], None);
        }
        assert_eq!(t.state().unwrap().spans_dropped, 1);
        // A parent that was not sampled: propagated, never recorded.
        let unsampled = TraceParent { flags: 0, ..ide };
        let s = t.start_span(Some(unsampled), None).unwrap();
        assert!(s.traceparent().ends_with("-00"));
        t.end_span(s, "y".into(), Kind::Client, vec![], None);
        assert_eq!(t.state().unwrap().spans_dropped, 1);
        stop.cancel();
    }

    #[test]
    fn new_traces_are_sampled_by_their_id() {
        let id = |low: u64| {
            let mut t = [0xffu8; 16];
            t[8..].copy_from_slice(&low.to_be_bytes());
            t
        };
        assert!(sampled(&id(u64::MAX), 1.0));
        assert!(!sampled(&id(0), 0.0));
        assert!(sampled(&id(0), 0.5));
        assert!(!sampled(&id(u64::MAX), 0.5));
        let kept = (0..1000u64)
            .filter(|i| sampled(&id(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)), 0.25))
            .count();
        assert!((200..300).contains(&kept), "{kept} of 1000 at 0.25");
    }
}
