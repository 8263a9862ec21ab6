//! A minimal OTLP/HTTP collector for tests: `POST /v1/traces` and `/v1/metrics`
//! (or any path naming `traces` or `metrics`, for signal URLs set whole) on
//! 127.0.0.1:0, decoded with the official protobuf types
//! (`opentelemetry-proto`, `prost`). It keeps every request's raw body and
//! headers and the decoded requests it accepted, answers 200 with an empty
//! `Export*ServiceResponse`, or 503 while [`Receiver::fail`] says so. Each
//! arrival wakes [`Receiver::wait`].
//!
//! [`Receiver::start_grpc`] is the OTLP/gRPC collector: a real gRPC server
//! (`grpcio` with the official generated services, `tests/interop/otlp_grpc.py`)
//! that reports each call here, kept and read the same way.
//!
//! Also the other direction: [`export_server_span`], with which the test
//! server reports its own SERVER span to a receiver, joined to the trace of the
//! `traceparent` it received.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_bridge::util::Locked;
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1 as pm;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as pt;
use prost::Message;
use tokio::sync::watch;

use super::{Text, eventually_woken};

/// `SpanKind` values of the OTLP protobuf.
pub const INTERNAL: i32 = pt::span::SpanKind::Internal as i32;
pub const SERVER: i32 = pt::span::SpanKind::Server as i32;
pub const CLIENT: i32 = pt::span::SpanKind::Client as i32;
/// `Status.code` ERROR.
pub const STATUS_ERROR: i32 = pt::status::StatusCode::Error as i32;

/// One HTTP request the receiver got, as it came.
#[derive(Clone, Debug)]
pub struct Arrival {
    pub path: String,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
    /// The status the receiver answered (200, 503, or 400 for a body that does
    /// not decode).
    pub status: u16,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Arrival {
    pub fn content_type(&self) -> Option<&str> {
        self.headers.get("content-type").and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
struct Store {
    arrivals: Vec<Arrival>,
    traces: Vec<ExportTraceServiceRequest>,
    metrics: Vec<ExportMetricsServiceRequest>,
    /// Bodies that did not decode: (path, prost's error).
    undecodable: Vec<(String, String)>,
}

impl Store {
    /// Decode and keep an export to `path` (a signal's path names it); the
    /// encoded answer. `Err(true)`: the body did not decode (kept in
    /// `undecodable`); `Err(false)`: the path names no signal.
    fn accept(&mut self, path: &str, body: &[u8]) -> Result<Vec<u8>, bool> {
        let undecodable = |store: &mut Store, e: prost::DecodeError| {
            store.undecodable.push((path.to_owned(), e.to_string()));
            true
        };
        if path.contains("trace") {
            let r = ExportTraceServiceRequest::decode(body).map_err(|e| undecodable(self, e))?;
            self.traces.push(r);
            Ok(ExportTraceServiceResponse::default().encode_to_vec())
        } else if path.contains("metrics") {
            let r = ExportMetricsServiceRequest::decode(body).map_err(|e| undecodable(self, e))?;
            self.metrics.push(r);
            Ok(ExportMetricsServiceResponse::default().encode_to_vec())
        } else {
            Err(false)
        }
    }
}

struct Refusal {
    status: u16,
    n: usize,
    needle: Vec<u8>,
    /// Sent as `Retry-After` (seconds).
    retry_after: Option<u64>,
}

struct Shared {
    store: Mutex<Store>,
    fail: AtomicBool,
    /// Answer the next `n` exports whose body holds `needle` with `status`.
    refuse: Mutex<Option<Refusal>>,
    /// How many requests arrived; every arrival is a new version.
    arrived: watch::Sender<usize>,
}

/// The collector, on its own runtime thread (as [`super::Upstream`]), so that
/// it answers whatever the test's runtime is doing.
pub struct Receiver {
    /// The OTLP/HTTP base URL (`http://127.0.0.1:PORT`), as `[telemetry] endpoint`
    /// and `OTEL_EXPORTER_OTLP_ENDPOINT` take it.
    pub url: String,
    shared: Arc<Shared>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The gRPC collector's process ([`Receiver::start_grpc`]).
    child: Option<std::process::Child>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let shared = Receiver::shared();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let s = shared.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new().fallback(move |req: axum::extract::Request| receive(s.clone(), req));
                tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            });
            let _ = stop_rx.recv();
            rt.shutdown_background();
        });
        let addr = addr_rx.recv().unwrap();
        Receiver {
            url: format!("http://{addr}"),
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
            child: None,
        }
    }

    fn shared() -> Arc<Shared> {
        let (arrived, _) = watch::channel(0);
        Arc::new(Shared {
            store: Mutex::new(Store::default()),
            fail: AtomicBool::new(false),
            refuse: Mutex::new(None),
            arrived,
        })
    }

    /// An OTLP/gRPC collector: `tests/interop/otlp_grpc.py`, the official
    /// generated services on `grpcio` (installed by `tests/interop/setup.sh`),
    /// whose every call is kept here as an [`Arrival`] (its gRPC metadata as
    /// headers; `status` 200 for OK, else the gRPC code it answered). With
    /// `refuse = Some((code, n, needle))` it answers the first `n` calls whose
    /// request holds `needle` with gRPC status `code`. `url` is the collector's
    /// base URL, as `[telemetry] endpoint` takes it with `protocol = "grpc"`.
    pub fn start_grpc(refuse: Option<(u32, usize, &str)>) -> Receiver {
        use std::io::BufRead;
        let py = super::interop::interop_dir().join(".venv/bin/python");
        assert!(
            py.is_file(),
            "{} missing: run tests/interop/setup.sh (or set MCP_BRIDGE_SKIP_INTEROP=1)",
            py.display()
        );
        let mut cmd = std::process::Command::new(py);
        cmd.arg(super::interop::interop_dir().join("otlp_grpc.py"));
        if let Some((code, n, needle)) = refuse {
            cmd.arg("--refuse").arg(format!("{code}:{n}:{needle}"));
        }
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start tests/interop/otlp_grpc.py");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let port: u16 = match lines.next() {
            Some(Ok(line)) => line
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("otlp_grpc.py said {line:?}")),
            other => panic!("otlp_grpc.py did not start: {other:?} {:?}", child.wait()),
        };
        let shared = Receiver::shared();
        let s = shared.clone();
        let thread = std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                let path = v["path"].as_str().unwrap().to_owned();
                let body = unhex(v["body"].as_str().unwrap()).unwrap();
                let code = v["code"].as_u64().unwrap();
                let mut headers = axum::http::HeaderMap::new();
                for kv in v["metadata"].as_array().unwrap() {
                    let (k, v) = (kv[0].as_str().unwrap(), kv[1].as_str().unwrap());
                    headers.append(
                        axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                        axum::http::HeaderValue::from_str(v).unwrap(),
                    );
                }
                {
                    let mut store = s.store.locked();
                    if code == 0 {
                        let _ = store.accept(&path, &body);
                    }
                    store.arrivals.push(Arrival {
                        path,
                        headers,
                        body,
                        status: if code == 0 { 200 } else { code as u16 },
                        at: std::time::Instant::now(),
                    });
                }
                s.arrived.send_modify(|n| *n += 1);
            }
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}"),
            shared,
            stop: None,
            thread: Some(thread),
            child: Some(child),
        }
    }

    /// While `on`, every export is answered 503 (and not kept as accepted).
    pub fn fail(&self, on: bool) {
        self.shared.fail.store(on, Ordering::SeqCst);
    }

    /// Answer the next `n` exports whose body contains `needle` (a span's
    /// name, say) with HTTP `status` (and `Retry-After: retry_after` when
    /// given), and keep nothing of them.
    pub fn refuse(&self, status: u16, n: usize, needle: &str, retry_after: Option<u64>) {
        *self.shared.refuse.locked() = Some(Refusal {
            status,
            n,
            needle: needle.as_bytes().to_vec(),
            retry_after,
        });
    }

    /// Every request so far, accepted or not.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.shared.store.locked().arrivals.clone()
    }

    /// The accepted trace exports, in arrival order.
    pub fn trace_requests(&self) -> Vec<ExportTraceServiceRequest> {
        self.shared.store.locked().traces.clone()
    }

    /// The accepted metric exports, in arrival order.
    pub fn metric_requests(&self) -> Vec<ExportMetricsServiceRequest> {
        self.shared.store.locked().metrics.clone()
    }

    /// Bodies that were not valid `Export*ServiceRequest`s: (path, error).
    pub fn undecodable(&self) -> Vec<(String, String)> {
        self.shared.store.locked().undecodable.clone()
    }

    /// Every accepted span with its resource and scope.
    pub fn spans(&self) -> Vec<SpanSeen> {
        let store = self.shared.store.locked();
        let mut out = Vec::new();
        for req in &store.traces {
            for rs in &req.resource_spans {
                let resource = rs.resource.clone().map(|r| r.attributes).unwrap_or_default();
                for ss in &rs.scope_spans {
                    let scope = ss.scope.as_ref().map(|s| s.name.clone()).unwrap_or_default();
                    for span in &ss.spans {
                        out.push(SpanSeen {
                            span: span.clone(),
                            resource: resource.clone(),
                            scope: scope.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// Accepted spans whose resource says `service.name = service`.
    pub fn spans_of(&self, service: &str) -> Vec<SpanSeen> {
        self.spans()
            .into_iter()
            .filter(|s| s.resource_str("service.name") == Some(service))
            .collect()
    }

    /// The metrics of the last accepted metric export: with cumulative
    /// temporality, the totals since the exporter started.
    pub fn last_metrics(&self) -> Option<MetricsSeen> {
        let store = self.shared.store.locked();
        let req = store.metrics.last()?;
        let mut seen = MetricsSeen::default();
        for rm in &req.resource_metrics {
            seen.resource = rm.resource.clone().map(|r| r.attributes).unwrap_or_default();
            for sm in &rm.scope_metrics {
                seen.metrics.extend(sm.metrics.iter().cloned());
            }
        }
        Some(seen)
    }

    /// What arrived, in a line per request, for a wait's failure message.
    pub fn summary(&self) -> Text {
        let store = self.shared.store.locked();
        let mut lines: Vec<String> = store
            .arrivals
            .iter()
            .map(|a| format!("{} {} ({} bytes)", a.status, a.path, a.body.len()))
            .collect();
        for req in &store.traces {
            for rs in &req.resource_spans {
                for ss in &rs.scope_spans {
                    for s in &ss.spans {
                        lines.push(format!("span {:?} kind {}", s.name, s.kind));
                    }
                }
            }
        }
        if let Some(req) = store.metrics.last() {
            for rm in &req.resource_metrics {
                for sm in &rm.scope_metrics {
                    for m in &sm.metrics {
                        lines.push(format!("metric {}", m.name));
                    }
                }
            }
        }
        Text(lines.join("\n"))
    }

    /// Wait until `check` returns `Some`, checking again at each arrival; at
    /// most `within`. Panics naming `what` and what arrived so far.
    pub async fn wait<T>(&self, what: &str, within: Duration, mut check: impl FnMut(&Receiver) -> Option<T>) -> T {
        let wake = self.arrived();
        eventually_woken(what, within, wake, async || check(self).ok_or_else(|| self.summary())).await
    }

    /// Woken at each arrival (a [`super::Wake`], combinable with others).
    pub fn arrived(&self) -> watch::Receiver<usize> {
        self.shared.arrived.subscribe()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn receive(shared: Arc<Shared>, req: axum::extract::Request) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default().to_vec();
    let failing = shared.fail.load(Ordering::SeqCst);
    let at = std::time::Instant::now();
    let (refused, retry_after) = {
        let mut refuse = shared.refuse.locked();
        match refuse.as_mut() {
            Some(r) if r.n > 0 && body.windows(r.needle.len()).any(|w| w == r.needle) => {
                r.n -= 1;
                (StatusCode::from_u16(r.status).ok(), r.retry_after)
            }
            _ => (None, None),
        }
    };
    let (status, answer) = {
        let mut store = shared.store.locked();
        let answer = if parts.method != axum::http::Method::POST {
            Err(StatusCode::METHOD_NOT_ALLOWED)
        } else if let Some(status) = refused {
            Err(status)
        } else if failing {
            Err(StatusCode::SERVICE_UNAVAILABLE)
        } else {
            store.accept(&path, &body).map_err(|known| {
                if known {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::NOT_FOUND
                }
            })
        };
        let status = match &answer {
            Ok(_) => StatusCode::OK,
            Err(s) => *s,
        };
        store.arrivals.push(Arrival {
            path,
            headers: parts.headers,
            body,
            status: status.as_u16(),
            at,
        });
        (status, answer)
    };
    shared.arrived.send_modify(|n| *n += 1);
    match answer {
        Ok(bytes) => (status, [("content-type", "application/x-protobuf")], bytes).into_response(),
        Err(status) => match retry_after {
            Some(secs) => (status, [("retry-after", secs.to_string())]).into_response(),
            None => status.into_response(),
        },
    }
}

/// An attribute's value as text (strings as they are, other scalars printed).
fn text(v: &AnyValue) -> Option<String> {
    Some(match v.value.as_ref()? {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::DoubleValue(d) => d.to_string(),
        any_value::Value::BoolValue(b) => b.to_string(),
        _ => return None,
    })
}

fn find<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs.iter().find(|a| a.key == key)?.value.as_ref()?.value.as_ref()
}

fn find_str<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match find(attrs, key)? {
        any_value::Value::StringValue(s) => Some(s),
        _ => None,
    }
}

/// Whether `attrs` hold every `(key, value)` of `want` (values compared as text).
pub fn has_attrs(attrs: &[KeyValue], want: &[(&str, &str)]) -> bool {
    want.iter().all(|(k, v)| {
        attrs
            .iter()
            .find(|a| a.key == *k)
            .and_then(|a| a.value.as_ref())
            .and_then(text)
            .is_some_and(|t| t == *v)
    })
}

/// Lowercase hex, as `traceparent` writes ids.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (s.len().is_multiple_of(2) && s.bytes().all(|b| b.is_ascii_hexdigit())).then_some(())?;
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// A `traceparent`'s trace id, span id and flags, as hex.
pub fn parse_traceparent(tp: &str) -> Option<(String, String, String)> {
    let parts: Vec<&str> = tp.split('-').collect();
    match parts.as_slice() {
        ["00", trace, span, flags] if trace.len() == 32 && span.len() == 16 && flags.len() == 2 => {
            unhex(trace)?;
            unhex(span)?;
            unhex(flags)?;
            Some((trace.to_string(), span.to_string(), flags.to_string()))
        }
        _ => None,
    }
}

/// A span as the receiver got it, with its resource's attributes.
#[derive(Clone, Debug)]
pub struct SpanSeen {
    pub span: pt::Span,
    pub resource: Vec<KeyValue>,
    pub scope: String,
}

impl SpanSeen {
    pub fn name(&self) -> &str {
        &self.span.name
    }
    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }
    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }
    /// The parent span id, `None` for a root span.
    pub fn parent(&self) -> Option<String> {
        (!self.span.parent_span_id.is_empty()).then(|| hex(&self.span.parent_span_id))
    }
    pub fn attr(&self, key: &str) -> Option<&any_value::Value> {
        find(&self.span.attributes, key)
    }
    pub fn str(&self, key: &str) -> Option<&str> {
        find_str(&self.span.attributes, key)
    }
    pub fn int(&self, key: &str) -> Option<i64> {
        match self.attr(key)? {
            any_value::Value::IntValue(i) => Some(*i),
            _ => None,
        }
    }
    pub fn resource_str(&self, key: &str) -> Option<&str> {
        find_str(&self.resource, key)
    }
    pub fn status_code(&self) -> i32 {
        self.span.status.as_ref().map_or(0, |s| s.code)
    }
    /// Every attribute key, for failure messages.
    pub fn keys(&self) -> Vec<&str> {
        self.span.attributes.iter().map(|a| a.key.as_str()).collect()
    }
}

/// The metrics of one export.
#[derive(Clone, Debug, Default)]
pub struct MetricsSeen {
    pub resource: Vec<KeyValue>,
    pub metrics: Vec<pm::Metric>,
}

/// One data point's attributes and value(s), whatever the metric's type.
#[derive(Clone, Debug)]
pub enum Point {
    Number { attrs: Vec<KeyValue>, value: f64 },
    Histogram { attrs: Vec<KeyValue>, count: u64, sum: f64 },
}

impl Point {
    pub fn attrs(&self) -> &[KeyValue] {
        match self {
            Point::Number { attrs, .. } | Point::Histogram { attrs, .. } => attrs,
        }
    }
}

fn number(p: &pm::NumberDataPoint) -> f64 {
    match p.value {
        Some(pm::number_data_point::Value::AsInt(i)) => i as f64,
        Some(pm::number_data_point::Value::AsDouble(d)) => d,
        None => 0.0,
    }
}

impl MetricsSeen {
    pub fn resource_str(&self, key: &str) -> Option<&str> {
        find_str(&self.resource, key)
    }

    pub fn metric(&self, name: &str) -> Option<&pm::Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// The data points of `name` whose attributes include `attrs`.
    pub fn points(&self, name: &str, attrs: &[(&str, &str)]) -> Vec<Point> {
        let Some(data) = self.metric(name).and_then(|m| m.data.as_ref()) else {
            return Vec::new();
        };
        let numbers = |points: &[pm::NumberDataPoint]| -> Vec<Point> {
            points
                .iter()
                .map(|p| Point::Number {
                    attrs: p.attributes.clone(),
                    value: number(p),
                })
                .collect()
        };
        let all: Vec<Point> = match data {
            pm::metric::Data::Sum(s) => numbers(&s.data_points),
            pm::metric::Data::Gauge(g) => numbers(&g.data_points),
            pm::metric::Data::Histogram(h) => h
                .data_points
                .iter()
                .map(|p| Point::Histogram {
                    attrs: p.attributes.clone(),
                    count: p.count,
                    sum: p.sum.unwrap_or_default(),
                })
                .collect(),
            _ => Vec::new(),
        };
        all.into_iter().filter(|p| has_attrs(p.attrs(), attrs)).collect()
    }

    /// The sum of a counter's (or gauge's) points with `attrs`.
    pub fn sum(&self, name: &str, attrs: &[(&str, &str)]) -> f64 {
        self.points(name, attrs)
            .iter()
            .map(|p| match p {
                Point::Number { value, .. } => *value,
                Point::Histogram { .. } => 0.0,
            })
            .sum()
    }

    /// How many values a histogram's points with `attrs` counted.
    pub fn histogram_count(&self, name: &str, attrs: &[(&str, &str)]) -> u64 {
        self.points(name, attrs)
            .iter()
            .map(|p| match p {
                Point::Histogram { count, .. } => *count,
                Point::Number { .. } => 0,
            })
            .sum()
    }

    /// Every point of `name` as `attr=value,...: value`, for failure messages.
    pub fn describe(&self, name: &str) -> Vec<String> {
        self.points(name, &[])
            .iter()
            .map(|p| {
                let attrs: Vec<String> = p
                    .attrs()
                    .iter()
                    .map(|a| format!("{}={}", a.key, a.value.as_ref().and_then(text).unwrap_or_default()))
                    .collect();
                match p {
                    Point::Number { value, .. } => format!("{}: {value}", attrs.join(",")),
                    Point::Histogram { count, sum, .. } => format!("{}: count {count}, sum {sum}", attrs.join(",")),
                }
            })
            .collect()
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Export one SERVER span named `name` for `service` to the collector at `base`:
/// the child of `traceparent`'s span in its trace, or the root of a new trace
/// when there is none (or it does not parse). Waits for the collector's
/// answer, so that the span is there before the call's result leaves the
/// server. Returns the span's id (hex).
pub async fn export_server_span(
    base: &str,
    service: &str,
    name: &str,
    traceparent: Option<&str>,
    start_ns: u64,
) -> String {
    let parsed = traceparent.and_then(parse_traceparent);
    let (trace_id, parent) = match &parsed {
        Some((t, s, _)) => (unhex(t).unwrap(), unhex(s).unwrap()),
        None => (rand::random::<[u8; 16]>().to_vec(), Vec::new()),
    };
    let span_id = rand::random::<[u8; 8]>().to_vec();
    let id = hex(&span_id);
    let req = ExportTraceServiceRequest {
        resource_spans: vec![pt::ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", service)],
                ..Default::default()
            }),
            scope_spans: vec![pt::ScopeSpans {
                spans: vec![pt::Span {
                    trace_id,
                    span_id,
                    parent_span_id: parent,
                    name: name.to_owned(),
                    kind: SERVER,
                    start_time_unix_nano: start_ns,
                    end_time_unix_nano: now_ns(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    // A refused export shows as a missing span in the test's assertions.
    let sent = reqwest::Client::new()
        .post(format!("{base}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .timeout(Duration::from_secs(10))
        .body(req.encode_to_vec())
        .send()
        .await;
    if let Err(e) = sent {
        eprintln!("test server: its span was not exported: {e}");
    }
    id
}

/// Nanoseconds since the Unix epoch (a span's start).
pub fn unix_ns() -> u64 {
    now_ns()
}
