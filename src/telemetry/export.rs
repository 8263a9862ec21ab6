//! The export task: OTLP/HTTP with protobuf bodies, or OTLP/gRPC (the same
//! messages as unary `Export` calls over HTTP/2, read back from `grpc-status`),
//! with `opentelemetry-proto`'s message types and `prost`'s encoder, on the
//! bridge's runtime and HTTP client settings. Spans go when [`BATCH`](super::BATCH) are queued or every
//! `span_delay`; metrics every `export_interval`; both once more, bounded, at
//! shutdown. Nothing here is on the call path.
//!
//! A span export the collector may take later (HTTP 429, 502, 503, 504, or no
//! answer: the OTLP/HTTP spec's retryable failures) is kept, encoded, and sent
//! again at the next span tick, no sooner than a `Retry-After` says, up to
//! [`ATTEMPTS`] times; while it waits, new spans wait in the bounded queue.
//! Over gRPC the retryable failures are the statuses the OTLP spec names
//! (CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE,
//! DATA_LOSS, and RESOURCE_EXHAUSTED when the server sends status details,
//! where its RetryInfo lives).
//! Metrics are cumulative and need no retry: the next export carries them.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1 as pm;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as pt;
use prost::Message;
use tokio_util::sync::CancellationToken;

use super::metrics::{Aggregates, DURATION_BOUNDS, Hist};
use super::{Attr, Kind, Observed, Observer, Plan, Shared, SpanRecord, now_ns};
use crate::util::Locked;

/// The last export at shutdown gets this long (spans and metrics at once).
const FINAL: Duration = Duration::from_millis(500);
/// Times one batch of spans is offered to a collector that answers with a
/// retryable failure, before its spans are dropped (and counted).
const ATTEMPTS: u32 = 4;
/// The longest `Retry-After` honoured: a collector asking for more is retried
/// after this, and the batch is dropped after [`ATTEMPTS`] as usual.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The instrumentation scope of everything the bridge records.
fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "mcp-bridge".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    }
}

fn kv(key: &str, value: Attr) -> KeyValue {
    let value = match value {
        Attr::Str(s) => any_value::Value::StringValue(s),
        Attr::Int(i) => any_value::Value::IntValue(i),
    };
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(key: &str, value: &str) -> KeyValue {
    kv(key, Attr::Str(value.to_owned()))
}

pub(super) async fn run(
    shared: Arc<Shared>,
    plan: Plan,
    id_file: Option<PathBuf>,
    observe: Observer,
    shutdown: CancellationToken,
) {
    // Reads the TLS files named, if any (and then the system's roots).
    let tls_plan = plan.clone();
    let client = match tokio::task::spawn_blocking(move || client(&tls_plan)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            tracing::warn!("telemetry: nothing is exported: {e}");
            shared.failed(e);
            return;
        }
        Err(e) => {
            tracing::warn!("telemetry: nothing is exported: {e}");
            return;
        }
    };
    let user = match id_file {
        Some(path) => tokio::task::spawn_blocking(move || pseudonym(&path))
            .await
            .ok()
            .flatten(),
        None => None,
    };
    let mut exporter = Exporter {
        shared,
        client,
        base: base_resource(&plan, user),
        plan,
        observe,
        ended: false,
        retry: None,
    };
    let start = tokio::time::Instant::now();
    let mut metric_tick =
        tokio::time::interval_at(start + exporter.plan.export_interval, exporter.plan.export_interval);
    metric_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut span_tick = tokio::time::interval_at(start + exporter.plan.span_delay, exporter.plan.span_delay);
    span_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (traces, metrics) = (exporter.plan.traces.is_some(), exporter.plan.metrics.is_some());
    let wait = exporter.plan.timeout;
    let shared = exporter.shared.clone();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = metric_tick.tick(), if metrics => exporter.metrics(wait).await,
            _ = span_tick.tick(), if traces => exporter.spans(wait).await,
            _ = shared.wake.notified() => exporter.spans(wait).await,
        }
    }
    let last = FINAL.min(exporter.plan.timeout);
    // The last export says the session has ended: summed across bridges,
    // `mcp_bridge.sessions.active` counts only those still serving.
    exporter.ended = true;
    let exporter = &mut exporter;
    let (spans, metrics_body) = (exporter.last_spans(), metrics.then(|| exporter.metrics_body()));
    tokio::join!(
        async {
            for (body, n) in spans {
                exporter.post_spans(body, n, last).await;
            }
        },
        async {
            if let Some(body) = metrics_body {
                exporter.post_metrics(body, last).await
            }
        }
    );
}

/// A batch of spans the collector did not take, to offer again.
struct Retry {
    body: Vec<u8>,
    spans: u64,
    /// Times it was offered.
    attempts: u32,
    /// Not before (the collector's `Retry-After`).
    at: tokio::time::Instant,
}

/// Why an export request failed: what to say, and whether the collector may
/// take it later (and when).
struct Failed {
    text: String,
    retry: bool,
    after: Option<Duration>,
}

struct Exporter {
    shared: Arc<Shared>,
    client: reqwest::Client,
    plan: Plan,
    /// Resource attributes known at start; the client name joins at each export.
    base: Vec<KeyValue>,
    observe: Observer,
    /// Set for the last export, at shutdown.
    ended: bool,
    /// The batch a collector failed to take, waiting to be offered again.
    retry: Option<Retry>,
}

impl Exporter {
    fn resource(&self, seen: &Observed) -> Resource {
        let mut attributes = self.base.clone();
        if let Some(name) = &seen.client_name {
            attributes.push(s("mcp_bridge.client.name", name));
        }
        Resource {
            attributes,
            ..Default::default()
        }
    }

    /// Send the batch waiting for a retry, when it is due, then what is
    /// queued (when nothing waits any more).
    async fn spans(&mut self, wait: Duration) {
        if let Some(r) = self.retry.take() {
            if tokio::time::Instant::now() < r.at {
                self.retry = Some(r);
                return;
            }
            self.offer(r, wait).await;
            if self.retry.is_some() {
                return;
            }
        }
        if let Some(body) = self.queued_body() {
            self.offer(body_retry(body), wait).await;
        }
    }

    /// Offer `r` once: delivered, kept for another attempt, or dropped.
    async fn offer(&mut self, mut r: Retry, wait: Duration) {
        let Some(url) = &self.plan.traces else { return };
        r.attempts += 1;
        match post(&self.client, &self.plan, url, r.body.clone(), wait).await {
            Ok(()) => {
                self.shared.spans_exported.fetch_add(r.spans, Ordering::Relaxed);
                self.shared.tell();
            }
            Err(f) => {
                self.shared.failed(f.text.clone());
                if f.retry && r.attempts < ATTEMPTS {
                    tracing::debug!(
                        "telemetry: {} spans not taken, offered again later: {}",
                        r.spans,
                        f.text
                    );
                    r.at = tokio::time::Instant::now() + f.after.unwrap_or_default().min(MAX_RETRY_AFTER);
                    self.retry = Some(r);
                } else {
                    tracing::debug!("telemetry: {} spans lost: {}", r.spans, f.text);
                    self.shared.dropped(r.spans);
                }
            }
        }
    }

    /// The last exports' span bodies: the batch waiting for a retry, then the queue.
    fn last_spans(&mut self) -> Vec<(Vec<u8>, u64)> {
        let mut out: Vec<(Vec<u8>, u64)> = self.retry.take().map(|r| (r.body, r.spans)).into_iter().collect();
        out.extend(self.queued_body());
        out
    }

    /// Offer `body` once, at shutdown: what fails is dropped.
    async fn post_spans(&self, body: Vec<u8>, n: u64, wait: Duration) {
        let Some(url) = &self.plan.traces else { return };
        match post(&self.client, &self.plan, url, body, wait).await {
            Ok(()) => {
                self.shared.spans_exported.fetch_add(n, Ordering::Relaxed);
                self.shared.tell();
            }
            Err(f) => {
                tracing::debug!("telemetry: {n} spans lost: {}", f.text);
                self.shared.failed(f.text);
                self.shared.dropped(n);
            }
        }
    }

    /// The queued spans, encoded, and how many; `None` when there are none
    /// (or traces are not exported).
    fn queued_body(&self) -> Option<(Vec<u8>, u64)> {
        self.plan.traces.as_ref()?;
        let batch = std::mem::take(&mut *self.shared.spans.locked());
        if batch.is_empty() {
            return None;
        }
        let n = batch.len() as u64;
        let seen = (self.observe)();
        let body = ExportTraceServiceRequest {
            resource_spans: vec![pt::ResourceSpans {
                resource: Some(self.resource(&seen)),
                scope_spans: vec![pt::ScopeSpans {
                    scope: Some(scope()),
                    spans: batch.into_iter().map(span).collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        Some((body.encode_to_vec(), n))
    }

    async fn metrics(&self, wait: Duration) {
        if self.plan.metrics.is_some() {
            let body = self.metrics_body();
            self.post_metrics(body, wait).await;
        }
    }

    /// The cumulative metrics as of now, encoded.
    fn metrics_body(&self) -> Vec<u8> {
        let mut seen = (self.observe)();
        seen.session &= !self.ended;
        let now = now_ns();
        let dropped = self.shared.spans_dropped.load(Ordering::Relaxed);
        let metrics = {
            let agg = self.shared.agg.locked();
            encode_metrics(&agg, &seen, dropped, self.shared.start_ns, now)
        };
        ExportMetricsServiceRequest {
            resource_metrics: vec![pm::ResourceMetrics {
                resource: Some(self.resource(&seen)),
                scope_metrics: vec![pm::ScopeMetrics {
                    scope: Some(scope()),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    async fn post_metrics(&self, body: Vec<u8>, wait: Duration) {
        let Some(url) = &self.plan.metrics else { return };
        match post(&self.client, &self.plan, url, body, wait).await {
            Ok(()) => {
                self.shared.metric_exports.fetch_add(1, Ordering::Relaxed);
                self.shared.tell();
            }
            // Cumulative: the next export carries these counts too.
            Err(f) => {
                tracing::debug!("telemetry: metric export failed: {}", f.text);
                self.shared.failed(f.text);
            }
        }
    }
}

/// A batch not yet offered.
fn body_retry((body, spans): (Vec<u8>, u64)) -> Retry {
    Retry {
        body,
        spans,
        attempts: 0,
        at: tokio::time::Instant::now(),
    }
}

/// The exporter's HTTP client: the bridge's settings, with the collector's
/// CA and client certificate when the plan names them (read now); for gRPC,
/// HTTP/2 from the first byte (cleartext collectors take no upgrade).
fn client(plan: &Plan) -> Result<reqwest::Client, String> {
    let mut builder = crate::net::builder();
    if !plan.tls.is_empty() {
        builder = builder.tls_backend_preconfigured(crate::net::tls::client_config_with(&plan.tls)?);
    }
    if plan.grpc {
        builder = builder.http2_prior_knowledge();
    }
    builder.build().map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// One export request; the error names the collector without credentials
/// and never carries the request's headers.
async fn post(client: &reqwest::Client, plan: &Plan, url: &str, body: Vec<u8>, wait: Duration) -> Result<(), Failed> {
    use reqwest::header::{CONTENT_TYPE, TE};
    let req = client.post(url).timeout(wait);
    let mut req = if plan.grpc {
        // A unary call: one uncompressed length-prefixed message.
        let mut framed = Vec::with_capacity(body.len() + 5);
        framed.push(0);
        framed.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
        framed.extend_from_slice(&body);
        req.header(CONTENT_TYPE, "application/grpc")
            .header(TE, "trailers")
            .header("grpc-timeout", format!("{}m", wait.as_millis().min(99_999_999)))
            .body(framed)
    } else {
        req.header(CONTENT_TYPE, "application/x-protobuf").body(body)
    };
    for (k, v) in &plan.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let where_ = super::plan::redact(url);
    let failed = |text: String, retry: bool, after: Option<Duration>| Failed { text, retry, after };
    match req.send().await {
        Ok(r) if r.status().is_success() && plan.grpc => grpc_status(r)
            .await
            .map_err(|(text, retry)| failed(format!("{where_} {text}"), retry, None)),
        Ok(r) if r.status().is_success() => {
            // Read the (small) answer so the connection is reused.
            let _ = r.bytes().await;
            Ok(())
        }
        Ok(r) => {
            let status = r.status().as_u16();
            let after = r
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            // A gRPC server answers in gRPC even to refuse; plain HTTP means
            // something else is listening there.
            let grpc_answer = r
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/grpc"));
            let retry = matches!(status, 429 | 502 | 503 | 504);
            let hint = if plan.grpc && !grpc_answer && !retry {
                port_hint(true)
            } else {
                ""
            };
            Err(failed(format!("{where_} answered HTTP {status}{hint}"), retry, after))
        }
        Err(e) if e.is_timeout() => Err(failed(
            format!("{where_} did not answer within {} ms", wait.as_millis()),
            true,
            None,
        )),
        Err(e) => {
            let retry = e.is_connect() || e.is_request();
            let text = crate::util::error_chain(&e.without_url());
            let hint = if other_protocol(plan.grpc, &text) {
                port_hint(plan.grpc)
            } else {
                ""
            };
            Err(failed(format!("{where_}: {text}{hint}"), retry, None))
        }
    }
}

/// Whether a failed request looks like the other OTLP protocol at the other
/// end: HTTP/2 frames where HTTP/1 was expected, or the reverse.
fn other_protocol(grpc: bool, error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    if grpc {
        e.contains("http2 error") || e.contains("frame")
    } else {
        e.contains("invalid http version")
    }
}

/// The hint for the commonest OTLP mistake, the other protocol's port.
fn port_hint(grpc: bool) -> &'static str {
    if grpc {
        " (is it an OTLP/HTTP endpoint? Collectors take gRPC on port 4317 by default, and HTTP, protocol = \"http/protobuf\", on 4318)"
    } else {
        " (is it an OTLP/gRPC endpoint? Collectors take HTTP on port 4318 by default; for gRPC on 4317 set protocol = \"grpc\")"
    }
}

/// A gRPC call's outcome: `grpc-status` in the answer's headers (a
/// trailers-only answer) or its trailers, 0 being OK. `Err` says what the
/// collector answered and whether it may take the export later.
async fn grpc_status(r: reqwest::Response) -> Result<(), (String, bool)> {
    use http_body_util::BodyExt;
    let head = r.headers().clone();
    let trailers = match reqwest::Body::from(r).collect().await {
        Ok(body) => body.trailers().cloned(),
        Err(e) => return Err((format!("broke off its answer: {}", crate::util::error_chain(&e)), true)),
    };
    let find = |k: &str| head.get(k).or_else(|| trailers.as_ref().and_then(|t| t.get(k)));
    let code = find("grpc-status").and_then(|v| v.to_str().ok()?.trim().parse::<u32>().ok());
    let Some(code) = code else {
        return Err(("answered without a gRPC status (is it a gRPC endpoint?)".into(), false));
    };
    if code == 0 {
        return Ok(());
    }
    // grpc-message is percent-encoded UTF-8; the collector's words, kept short
    // and printable.
    let message = find("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(|m| super::plan::percent_decode(m).chars().take(200).collect::<String>())
        .filter(|m| !m.is_empty())
        .map(|m| format!(": {}", crate::util::printable(&m)))
        .unwrap_or_default();
    let retry = matches!(code, 1 | 4 | 10 | 11 | 14 | 15) || (code == 8 && find("grpc-status-details-bin").is_some());
    Err((
        format!("answered gRPC status {code} ({}){message}", grpc_code_name(code)),
        retry,
    ))
}

/// The name gRPC gives a status code.
fn grpc_code_name(code: u32) -> &'static str {
    match code {
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "unknown code",
    }
}

/// Ask the collector to take an empty export of each signal the plan sends
/// (`doctor`): OTLP receivers answer 200 (gRPC OK) to one. Returns where it went.
pub async fn probe(plan: &Plan) -> Result<String, String> {
    let client = client(plan)?;
    if let Some(url) = &plan.traces {
        let body = ExportTraceServiceRequest::default().encode_to_vec();
        post(&client, plan, url, body, plan.timeout).await.map_err(|f| f.text)?;
    }
    if let Some(url) = &plan.metrics {
        let body = ExportMetricsServiceRequest::default().encode_to_vec();
        post(&client, plan, url, body, plan.timeout).await.map_err(|f| f.text)?;
    }
    Ok(plan.destination())
}

fn span(r: SpanRecord) -> pt::Span {
    let failed = r.error.is_some();
    pt::Span {
        trace_id: r.ctx.trace_id.to_vec(),
        span_id: r.ctx.span_id.to_vec(),
        trace_state: r.trace_state,
        parent_span_id: r.parent.map(|p| p.to_vec()).unwrap_or_default(),
        flags: u32::from(r.ctx.flags) | 0x100 | if r.parent.is_some() { 0x200 } else { 0 },
        name: r.name,
        kind: match r.kind {
            Kind::Internal => pt::span::SpanKind::Internal,
            Kind::Client => pt::span::SpanKind::Client,
        } as i32,
        start_time_unix_nano: r.start_ns,
        end_time_unix_nano: r.end_ns,
        attributes: r.attrs.into_iter().map(|(k, v)| kv(k, v)).collect(),
        status: Some(pt::Status {
            message: r.error.unwrap_or_default(),
            code: if failed {
                pt::status::StatusCode::Error
            } else {
                pt::status::StatusCode::Unset
            } as i32,
        }),
        ..Default::default()
    }
}

fn int_point(attributes: Vec<KeyValue>, v: i64, start: u64, now: u64) -> pm::NumberDataPoint {
    pm::NumberDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: now,
        value: Some(pm::number_data_point::Value::AsInt(v)),
        ..Default::default()
    }
}

fn counter(name: &str, unit: &str, description: &str, points: Vec<pm::NumberDataPoint>) -> pm::Metric {
    pm::Metric {
        name: name.into(),
        unit: unit.into(),
        description: description.into(),
        data: Some(pm::metric::Data::Sum(pm::Sum {
            data_points: points,
            aggregation_temporality: pm::AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

fn gauge(name: &str, description: &str, points: Vec<pm::NumberDataPoint>) -> pm::Metric {
    pm::Metric {
        name: name.into(),
        unit: "1".into(),
        description: description.into(),
        data: Some(pm::metric::Data::Gauge(pm::Gauge { data_points: points })),
        ..Default::default()
    }
}

/// The overflow series' only attribute (OpenTelemetry SDK cardinality limits).
fn overflow() -> Vec<KeyValue> {
    vec![KeyValue {
        key: "otel.metric.overflow".into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::BoolValue(true)),
        }),
        ..Default::default()
    }]
}

/// The metrics of one export: cumulative since `start` (the process's start).
pub(super) fn encode_metrics(agg: &Aggregates, seen: &Observed, dropped: u64, start: u64, now: u64) -> Vec<pm::Metric> {
    let calls = agg
        .calls
        .iter()
        .map(|(k, n)| {
            let attrs = match k {
                Some(k) => vec![
                    s("mcp_bridge.server", &k.server),
                    s("gen_ai.tool.name", &k.tool),
                    s("mcp_bridge.outcome", k.outcome),
                ],
                None => overflow(),
            };
            int_point(attrs, *n as i64, start, now)
        })
        .collect();
    let minutes = agg
        .minutes
        .iter()
        .map(|(k, m)| pm::NumberDataPoint {
            attributes: match k {
                Some((server, tool)) => vec![s("mcp_bridge.server", server), s("gen_ai.tool.name", tool)],
                None => overflow(),
            },
            start_time_unix_nano: start,
            time_unix_nano: now,
            value: Some(pm::number_data_point::Value::AsDouble(*m)),
            ..Default::default()
        })
        .collect();
    let durations = agg
        .durations
        .iter()
        .map(|(k, h)| histogram_point(k.as_ref(), h, start, now))
        .collect();
    let refreshes = agg
        .refreshes
        .iter()
        .map(|((server, outcome), n)| {
            int_point(
                vec![s("mcp_bridge.server", server), s("mcp_bridge.outcome", outcome)],
                *n as i64,
                start,
                now,
            )
        })
        .collect();
    let states = seen
        .servers
        .iter()
        .map(|(server, state)| {
            int_point(
                vec![s("mcp_bridge.server", server), s("mcp_bridge.state", state)],
                1,
                now,
                now,
            )
        })
        .collect();
    let all = vec![
        counter(
            "mcp_bridge.calls",
            "{call}",
            "Tool calls through the bridge, by server, tool and outcome",
            calls,
        ),
        counter(
            "mcp_bridge.minutes_saved",
            "min",
            "Minutes saved by successful tool calls, per [audit.minutes_saved] and the registry",
            minutes,
        ),
        pm::Metric {
            name: "mcp.client.operation.duration".into(),
            unit: "s".into(),
            description: "Duration of the requests the bridge forwarded, until the server answered".into(),
            data: Some(pm::metric::Data::Histogram(pm::Histogram {
                data_points: durations,
                aggregation_temporality: pm::AggregationTemporality::Cumulative as i32,
            })),
            ..Default::default()
        },
        counter(
            "mcp_bridge.token.refreshes",
            "{refresh}",
            "OAuth token refreshes ahead of expiry, by outcome",
            refreshes,
        ),
        counter(
            "mcp_bridge.telemetry.dropped",
            "{span}",
            "Spans dropped: the export queue was full or their export failed",
            vec![int_point(vec![], dropped as i64, start, now)],
        ),
        gauge(
            "mcp_bridge.sessions.active",
            "IDE sessions this bridge serves",
            vec![int_point(vec![], i64::from(seen.session), now, now)],
        ),
        gauge(
            "mcp_bridge.server.state",
            "1 for each server's current connection state",
            states,
        ),
    ];
    // A metric with no data point yet says nothing: left out.
    all.into_iter()
        .filter(|m| match &m.data {
            Some(pm::metric::Data::Sum(x)) => !x.data_points.is_empty(),
            Some(pm::metric::Data::Gauge(x)) => !x.data_points.is_empty(),
            Some(pm::metric::Data::Histogram(x)) => !x.data_points.is_empty(),
            _ => false,
        })
        .collect()
}

fn histogram_point(k: Option<&super::metrics::OpKey>, h: &Hist, start: u64, now: u64) -> pm::HistogramDataPoint {
    let attributes = match k {
        Some(k) => {
            let mut a = vec![s("mcp.method.name", &k.method), s("mcp_bridge.server", &k.server)];
            if let Some(t) = &k.target {
                let key = if k.method == "prompts/get" {
                    "gen_ai.prompt.name"
                } else {
                    "gen_ai.tool.name"
                };
                a.push(s(key, t));
            }
            if let Some(e) = k.error {
                a.push(s("error.type", e));
            }
            a
        }
        None => overflow(),
    };
    pm::HistogramDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: now,
        count: h.count,
        sum: Some(h.sum),
        bucket_counts: h.buckets.to_vec(),
        explicit_bounds: DURATION_BOUNDS.to_vec(),
        min: (h.count > 0).then_some(h.min),
        max: (h.count > 0).then_some(h.max),
        ..Default::default()
    }
}

/// The attributes fixed for the process: service, version, instance, the
/// pseudonymous user, the OS; then the configured ones. No host name and no
/// user name: users are counted by `enduser.pseudo.id`.
fn base_resource(plan: &Plan, user: Option<String>) -> Vec<KeyValue> {
    let instance: [u8; 16] = rand::random();
    let mut v = vec![
        s("service.name", &plan.service_name),
        s("service.version", env!("CARGO_PKG_VERSION")),
        s("service.instance.id", &super::hex(&instance)),
        s("os.type", std::env::consts::OS),
        s("host.arch", std::env::consts::ARCH),
    ];
    if let Some(u) = user {
        v.push(s("enduser.pseudo.id", &u));
    }
    for (k, val) in &plan.resource {
        v.retain(|a| a.key != *k);
        v.push(s(k, val));
    }
    v
}

/// The stable pseudonymous user id: 128 random bits kept in `path` (created
/// 0600 on first use, never derived from the user's name or machine). Two
/// bridges starting at once agree: only one creates the file.
fn pseudonym(path: &std::path::Path) -> Option<String> {
    let valid = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Ok(text) = std::fs::read_to_string(path)
        && valid(text.trim())
    {
        return Some(text.trim().to_owned());
    }
    if let Some(dir) = path.parent() {
        let _ = crate::util::create_private_dir(dir);
    }
    let id = super::hex(&rand::random::<[u8; 16]>());
    // Written whole to a temporary file, then linked in only if no id exists:
    // a reader never sees half an id, and a concurrent creator's id wins.
    let dir = path.parent()?;
    let tmp = tempfile::NamedTempFile::new_in(dir).ok()?;
    std::fs::write(tmp.path(), format!("{id}\n")).ok()?;
    match tmp.persist_noclobber(path) {
        Ok(_) => Some(id),
        Err(e) => match std::fs::read_to_string(path) {
            // Another bridge made it first.
            Ok(t) if valid(t.trim()) => Some(t.trim().to_owned()),
            // A damaged file: replaced.
            _ => e.file.persist(path).ok().map(|_| id),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::metrics::{CallKey, OpKey};

    #[test]
    fn metrics_encode_counts_histograms_and_gauges() {
        let mut agg = Aggregates::default();
        agg.call(
            CallKey {
                server: "jira".into(),
                tool: "create".into(),
                outcome: "ok",
            },
            2.5,
        );
        agg.operation(
            OpKey {
                server: "jira".into(),
                method: "tools/call".into(),
                target: Some("create".into()),
                error: None,
            },
            0.3,
        );
        let seen = Observed {
            client_name: Some("ide".into()),
            session: true,
            servers: vec![("jira".into(), "ready".into())],
        };
        let m = encode_metrics(&agg, &seen, 4, 10, 20);
        let by = |n: &str| m.iter().find(|x| x.name == n).unwrap().data.clone().unwrap();
        let Some(pm::metric::Data::Sum(calls)) = Some(by("mcp_bridge.calls")) else {
            panic!()
        };
        assert!(calls.is_monotonic);
        assert_eq!(calls.data_points[0].value, Some(pm::number_data_point::Value::AsInt(1)));
        assert_eq!(calls.data_points[0].start_time_unix_nano, 10);
        let Some(pm::metric::Data::Histogram(h)) = Some(by("mcp.client.operation.duration")) else {
            panic!()
        };
        assert_eq!(h.data_points[0].count, 1);
        assert_eq!(h.data_points[0].bucket_counts.len(), DURATION_BOUNDS.len() + 1);
        assert!(h.data_points[0].attributes.iter().any(|a| a.key == "gen_ai.tool.name"));
        let Some(pm::metric::Data::Sum(d)) = Some(by("mcp_bridge.telemetry.dropped")) else {
            panic!()
        };
        assert_eq!(d.data_points[0].value, Some(pm::number_data_point::Value::AsInt(4)));
        let Some(pm::metric::Data::Gauge(g)) = Some(by("mcp_bridge.server.state")) else {
            panic!()
        };
        assert_eq!(g.data_points.len(), 1);
    }

    #[test]
    fn the_pseudonym_is_stable_and_random() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("telemetry-id");
        let a = pseudonym(&path).unwrap();
        assert_eq!(pseudonym(&path).unwrap(), a);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(pseudonym(&other.path().join("telemetry-id")).unwrap(), a);
        // A damaged file is replaced by a new id, which then stays.
        std::fs::write(&path, "garbage").unwrap();
        let b = pseudonym(&path).unwrap();
        assert_ne!(b, a);
        assert_eq!(pseudonym(&path).unwrap(), b);
    }
}
