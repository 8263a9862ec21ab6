//! The HTTP side of each upstream server: its reqwest clients (from
//! [`crate::net::builder`], with the server's headers and cookie jar) under rmcp's
//! Streamable HTTP transport, and the per-server choice between reused
//! connections and a new one per request (see [`Upstream`]).

use crate::util::Locked;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures::stream::BoxStream;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_client::{
    StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse, StreamableHttpResponseLimits,
};

use tokio_util::sync::CancellationToken;

use crate::registry::ServerSpec;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("server '{server}': header {name:?} is not a valid HTTP header")]
    BadHeader { server: String, name: String },
    #[error("cannot build an HTTP client: {0}")]
    Build(String),
}

/// The HTTP side of one upstream server: reqwest clients made from its spec,
/// under rmcp's Streamable HTTP transport.
///
/// Connections are reused (over HTTP/2 where the server offers it, so that
/// concurrent calls share one connection). One kind of server defeats reuse: one
/// that writes an SSE answer in several small pieces without TCP_NODELAY. On a
/// connection that just carried a request and its answer, Linux delays its ACK of
/// the first piece (up to 40 ms; longer elsewhere), and the server's Nagle holds
/// the next piece, which is the answer, until that ACK: every call is 40 ms late
/// (measured on loopback: 44 ms against 0.1 ms). A new connection starts in
/// quick-ACK mode and does not stall, but costs a TCP and a TLS handshake. A
/// client cannot reach reqwest's sockets to ask for quick ACKs, so the stall is
/// found and weighed per server instead:
///
/// - while the server is being watched, each answer it sends over SSE is timed
///   from the request to the first message (the stall may hold the headers or
///   the message after them, depending on how the server writes);
/// - one 25 ms or more after its request (a stall, or a slow tool) starts one
///   probe: the last listing request (cheap for a server, and safe to repeat)
///   sent three times on reused connections and three times on new ones
///   (answers read and dropped, under ids of the bridge's own);
/// - if new connections answer in less than half the time, with at least 25 ms
///   to gain (a delayed ACK is 40 ms on Linux), the server gets a new connection
///   per request from then on (logged at `info`, with both times); otherwise
///   reuse stays, and watching resumes after a rest (30 s, doubling with each
///   probe up to an hour: a probe on a loaded machine can miss the stall).
///
/// `keep_alive = false` (per server or in `[http]`) asks for a new connection
/// per request from the start, without watching.
#[derive(Clone)]
pub struct Upstream {
    shared: Arc<Shared>,
}

struct Shared {
    server: Arc<str>,
    /// The pooled client.
    reuse: reqwest::Client,
    /// The client without idle connections, made when first needed.
    fresh: OnceLock<reqwest::Client>,
    /// What both clients are made from: the static headers and one cookie jar,
    /// so that switching clients keeps a session cookie.
    headers: HeaderMap,
    jar: Arc<reqwest::cookie::Jar>,
    mode: Arc<AtomicU8>,
    /// The last listing request (message and its headers), which a probe sends
    /// again: cheap, and safe to repeat, unlike the call that raised suspicion.
    listing: std::sync::Mutex<Option<(ClientJsonRpcMessage, HashMap<HeaderName, HeaderValue>)>>,
    /// Probes started.
    probes: std::sync::atomic::AtomicU32,
    /// Ends a running probe when the connection is dropped; a child of the
    /// owner task's token, so that shutting down ends it too.
    _probe: tokio_util::sync::DropGuard,
    probe_stop: CancellationToken,
}

/// [`Upstream`] modes.
const WATCH: u8 = 0;
const PROBING: u8 = 1;
const REUSE: u8 = 2;
const FRESH: u8 = 3;

/// An SSE answer this long after its request starts a probe.
const SUSPECT_GAP: Duration = Duration::from_millis(25);
/// Requests per side in a probe; each is bounded by `PROBE_WAIT`.
const PROBE_ROUNDS: usize = 3;
const PROBE_WAIT: Duration = Duration::from_secs(5);
/// After a probe that kept reuse, watching resumes after this rest, doubled
/// with each probe up to `MAX_REST`.
const REST: Duration = Duration::from_secs(30);
const MAX_REST: Duration = Duration::from_secs(3600);
/// How long a probe reads on after an answer for the end of its stream.
const DRAIN: Duration = Duration::from_millis(100);

/// A client for `spec`: its static headers as defaults, a cookie jar of its own
/// (load balancers pin a session to one node with one, and a request without it
/// lands where the session is unknown). The tasks it starts end with `cancel`.
pub fn client(spec: &ServerSpec, cancel: &CancellationToken) -> Result<Upstream, HttpError> {
    let mut headers = HeaderMap::new();
    for (name, value) in &spec.headers {
        let bad = || HttpError::BadHeader {
            server: spec.id.clone(),
            name: name.clone(),
        };
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
        let mut v = HeaderValue::from_str(&value.value).map_err(|_| bad())?;
        v.set_sensitive(value.secret);
        headers.insert(n, v);
    }
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let reuse = build(&headers, &jar, if spec.keep_alive { usize::MAX } else { 0 })?;
    let fresh = OnceLock::new();
    let mode = if spec.keep_alive {
        WATCH
    } else {
        let _ = fresh.set(reuse.clone());
        FRESH
    };
    let probe_stop = cancel.child_token();
    Ok(Upstream {
        shared: Arc::new(Shared {
            server: spec.id.as_str().into(),
            reuse,
            fresh,
            headers,
            jar,
            mode: Arc::new(AtomicU8::new(mode)),
            listing: std::sync::Mutex::new(None),
            probes: Default::default(),
            _probe: probe_stop.clone().drop_guard(),
            probe_stop,
        }),
    })
}

/// A client with the server's headers and cookie jar, keeping up to `idle`
/// idle connections.
fn build(headers: &HeaderMap, jar: &Arc<reqwest::cookie::Jar>, idle: usize) -> Result<reqwest::Client, HttpError> {
    crate::net::builder()
        .pool_max_idle_per_host(idle)
        .default_headers(headers.clone())
        .cookie_provider(jar.clone())
        .build()
        .map_err(|e| HttpError::Build(e.to_string()))
}

impl Upstream {
    /// The client for the next request.
    fn pick(&self) -> &reqwest::Client {
        if self.shared.mode.load(Ordering::Relaxed) == FRESH {
            self.fresh().unwrap_or(&self.shared.reuse)
        } else {
            &self.shared.reuse
        }
    }

    fn fresh(&self) -> Option<&reqwest::Client> {
        if let Some(c) = self.shared.fresh.get() {
            return Some(c);
        }
        let c = build(&self.shared.headers, &self.shared.jar, 0).ok()?;
        Some(self.shared.fresh.get_or_init(|| c))
    }

    /// Whether the server is still being watched for the stall.
    fn watching(&self) -> bool {
        self.shared.mode.load(Ordering::Relaxed) == WATCH
    }

    /// `stream`, the SSE answer to a request sent at `sent`, with the time to its
    /// first message checked (`to` is where the request went).
    fn watch(&self, stream: SseItems, sent: Instant, to: Target) -> SseItems {
        use futures::StreamExt;
        let this = self.clone();
        let mut to = Some(to);
        stream
            .inspect(move |item| {
                let Ok(sse_stream::Sse { data: Some(data), .. }) = item else {
                    return;
                };
                if data.trim().is_empty() {
                    return; // a priming event
                }
                let Some(to) = to.take() else { return };
                if sent.elapsed() >= SUSPECT_GAP {
                    this.start_probe(to);
                }
            })
            .boxed()
    }

    /// Start the probe (see the type's doc) with the last listing request, sent
    /// to `to`, unless one ran or runs, or no listing was seen yet.
    fn start_probe(&self, to: Target) {
        let Some((message, headers)) = self.shared.listing.locked().clone() else {
            return;
        };
        let mode = &self.shared.mode;
        if mode
            .compare_exchange(WATCH, PROBING, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let Some(fresh) = self.fresh().cloned() else {
            mode.store(REUSE, Ordering::Relaxed);
            return;
        };
        let request = Probe { to, message, headers };
        // Reuse is probed on a client of its own that keeps one connection: each
        // request then goes out on the connection that just carried the last
        // answer, as calls in quick succession do (the shared pool may hand out
        // connections that have rested, which do not stall).
        let Ok(reuse) = build(&self.shared.headers, &self.shared.jar, 1) else {
            mode.store(REUSE, Ordering::Relaxed);
            return;
        };
        let (server, mode) = (self.shared.server.clone(), mode.clone());
        let stop = self.shared.probe_stop.clone();
        let rest = REST
            .saturating_mul(1 << self.shared.probes.fetch_add(1, Ordering::Relaxed).min(7))
            .min(MAX_REST);
        tokio::spawn(async move {
            let decided = tokio::select! {
                d = probe(&reuse, &fresh, &request) => d,
                _ = stop.cancelled() => return,
            };
            let next = match decided {
                Some((reused, new)) if prefers_new(reused, new) => {
                    tracing::info!(
                        "server '{server}': answers take {} ms on reused connections (an SSE answer \
                         written in pieces without TCP_NODELAY meets delayed ACKs), {} ms on new ones: \
                         using a new connection per request",
                        reused.as_millis(),
                        new.as_millis()
                    );
                    FRESH
                }
                Some((reused, new)) => {
                    tracing::debug!(
                        "server '{server}': reused connections answer in {reused:?}, new ones in {new:?}: \
                         reusing, watching again in {rest:?}"
                    );
                    WATCH
                }
                None => WATCH,
            };
            if next == WATCH {
                // A probe on a loaded machine can miss the stall: watch again,
                // after a rest that doubles with each probe.
                tokio::select! {
                    _ = tokio::time::sleep(rest) => {}
                    _ = stop.cancelled() => return,
                }
            }
            mode.store(next, Ordering::Relaxed);
        });
    }
}

/// Whether new connections answered enough sooner than reused ones (medians)
/// to give up reuse for a server: in less than half the time, and at least
/// 25 ms sooner (noise on a loaded machine is less; a stall is 40 ms or more).
fn prefers_new(reused: Duration, new: Duration) -> bool {
    new * 2 < reused && reused - new >= Duration::from_millis(25)
}

/// Where a watched request went: the probe sends there, with the same session
/// and credentials.
struct Target {
    uri: Arc<str>,
    session_id: Option<Arc<str>>,
    auth: Option<String>,
}

/// A probe's request: the last listing, sent to a [`Target`].
struct Probe {
    to: Target,
    message: ClientJsonRpcMessage,
    headers: HashMap<HeaderName, HeaderValue>,
}

/// The median time to an answer of `request` sent [`PROBE_ROUNDS`] times on
/// `reuse` (after one more that opens its connection) then on `fresh`; `None`
/// when any of them fails.
async fn probe(reuse: &reqwest::Client, fresh: &reqwest::Client, request: &Probe) -> Option<(Duration, Duration)> {
    let mut n = 0u32;
    let mut side = async |client: &reqwest::Client, warm: usize| {
        let mut times = Vec::with_capacity(PROBE_ROUNDS + warm);
        for _ in 0..PROBE_ROUNDS + warm {
            n += 1;
            let mut message = request.message.clone();
            if let ClientJsonRpcMessage::Request(r) = &mut message {
                r.id = rmcp::model::RequestId::String(format!("mcp-bridge-probe-{n}").into());
            }
            let took = tokio::time::timeout(PROBE_WAIT, answer(client, request, message)).await;
            times.push(took.ok().flatten()?);
        }
        let mut times = times.split_off(warm);
        times.sort();
        Some(times[times.len() / 2])
    };
    let reused = side(reuse, 1).await?;
    let new = side(fresh, 0).await?;
    Some((reused, new))
}

/// Send `message` and read its answer to the end: the time to the answer.
async fn answer(client: &reqwest::Client, request: &Probe, message: ClientJsonRpcMessage) -> Option<Duration> {
    use futures::StreamExt;
    let start = Instant::now();
    let r = client
        .post_message(
            request.to.uri.clone(),
            message,
            request.to.session_id.clone(),
            request.to.auth.clone(),
            request.headers.clone(),
        )
        .await;
    match r {
        Ok(StreamableHttpPostResponse::Json(..)) => Some(start.elapsed()),
        Ok(StreamableHttpPostResponse::Sse(mut stream, _)) => {
            let took = loop {
                match stream.next().await? {
                    Ok(sse_stream::Sse { data: Some(d), .. }) if !d.trim().is_empty() => break start.elapsed(),
                    Ok(_) => {}
                    Err(_) => return None,
                }
            };
            // Read on to the end, briefly, as rmcp does, so that the connection
            // goes back to the pool (a server may keep the stream open).
            let _ = tokio::time::timeout(DRAIN, async { while stream.next().await.is_some() {} }).await;
            Some(took)
        }
        _ => None,
    }
}

/// A listing request: cheap and safe to send again.
/// W3C trace context as HTTP headers (`traceparent`, `tracestate`), copied
/// from the request's `_meta` where the bridge put it: gateways and servers of
/// both generations join the trace from the header, 2026-07-28 servers also
/// from `_meta`. Values that are not valid header values are left out.
fn trace_headers(message: &ClientJsonRpcMessage, headers: &mut HashMap<HeaderName, HeaderValue>) {
    use rmcp::model::GetMeta;
    let ClientJsonRpcMessage::Request(r) = message else {
        return;
    };
    let meta = r.request.get_meta();
    for (name, value) in [
        ("traceparent", meta.get_traceparent()),
        ("tracestate", meta.get_tracestate()),
    ] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
}

fn is_listing(message: &ClientJsonRpcMessage) -> bool {
    let ClientJsonRpcMessage::Request(r) = message else {
        return false;
    };
    matches!(
        r.request,
        rmcp::model::ClientRequest::ListToolsRequest(_)
            | rmcp::model::ClientRequest::ListPromptsRequest(_)
            | rmcp::model::ClientRequest::ListResourcesRequest(_)
            | rmcp::model::ClientRequest::ListResourceTemplatesRequest(_)
            | rmcp::model::ClientRequest::PingRequest(_)
    )
}

impl StreamableHttpClient for Upstream {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> HttpResult<StreamableHttpPostResponse, reqwest::Error> {
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            StreamableHttpResponseLimits::default(),
        )
        .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> HttpResult<StreamableHttpPostResponse, reqwest::Error> {
        let mut custom_headers = custom_headers;
        trace_headers(&message, &mut custom_headers);
        let watched = self.watching().then(|| {
            if is_listing(&message) {
                *self.shared.listing.locked() = Some((message.clone(), custom_headers.clone()));
            }
            Target {
                uri: uri.clone(),
                session_id: session_id.clone(),
                auth: auth_header.clone(),
            }
        });
        let sent = Instant::now();
        let r = self
            .pick()
            .post_message_with_response_limits(uri, message, session_id, auth_header, custom_headers, limits)
            .await;
        match (watched, r) {
            (Some(to), Ok(StreamableHttpPostResponse::Sse(stream, session))) => {
                Ok(StreamableHttpPostResponse::Sse(self.watch(stream, sent, to), session))
            }
            (_, r) => r,
        }
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> HttpResult<(), reqwest::Error> {
        self.pick()
            .delete_session(uri, session_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> HttpResult<SseItems, reqwest::Error> {
        self.pick()
            .get_stream(uri, session_id, last_event_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> HttpResult<SseItems, reqwest::Error> {
        self.pick()
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await
    }
}

/// A client that also recognises an expired session the way real servers report
/// it. rmcp re-initialises a session only on HTTP 404; the reference
/// server `server-everything` (and others built on the TypeScript SDK) answer a
/// request for a session they do not know with HTTP 400 and an id-less JSON-RPC
/// error ("No valid session ID provided"), which rmcp delivers as a stray error
/// while the request waits forever. An id-less error about the session, to a
/// request that carried a session id, is turned into `SessionExpired` here, so
/// rmcp's own re-initialise-and-retry runs.
///
/// It also keeps one bad answer from ending the connection: rmcp's worker treats
/// an answer (JSON body or SSE event) over `[http] max_message_bytes` or one that
/// is not JSON-RPC (not UTF-8, nested past serde_json's depth limit, valid JSON
/// of no JSON-RPC shape) as a fatal
/// transport error, which
/// failed every call in flight to that server with an error quoting rmcp's type
/// names and the whole hostile body. Such an answer to a request becomes a
/// JSON-RPC error for that request alone, naming the server and the limit.
#[derive(Clone)]
pub struct SessionAware<C> {
    pub client: C,
    /// The server's id, for error messages.
    pub server: Arc<str>,
}

impl<C> SessionAware<C> {
    pub fn new(client: C, server: &str) -> Self {
        SessionAware {
            client,
            server: server.into(),
        }
    }
}

fn names_lost_session(msg: &ServerJsonRpcMessage) -> bool {
    match msg {
        ServerJsonRpcMessage::Error(e) if e.id.is_none() => {
            let m = e.error.message.to_ascii_lowercase();
            m.contains("session")
        }
        _ => false,
    }
}

type HttpResult<T, E> = Result<T, StreamableHttpError<E>>;

impl<C: StreamableHttpClient + Sync> StreamableHttpClient for SessionAware<C> {
    type Error = C::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> HttpResult<StreamableHttpPostResponse, C::Error> {
        let had_session = session_id.is_some();
        let id = request_id(&message);
        let r = self
            .client
            .post_message(uri, message, session_id, auth_header, custom_headers)
            .await;
        self.contain_bad_answer(id, check_session(had_session, r))
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> HttpResult<StreamableHttpPostResponse, C::Error> {
        let had_session = session_id.is_some();
        let id = request_id(&message);
        let r = self
            .client
            .post_message_with_response_limits(uri, message, session_id, auth_header, custom_headers, limits)
            .await;
        self.contain_bad_answer(id, check_session(had_session, r))
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> HttpResult<(), C::Error> {
        self.client
            .delete_session(uri, session_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> HttpResult<BoxStream<'static, Result<sse_stream::Sse, sse_stream::Error>>, C::Error> {
        self.client
            .get_stream(uri, session_id, last_event_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> HttpResult<BoxStream<'static, Result<sse_stream::Sse, sse_stream::Error>>, C::Error> {
        self.client
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await
    }
}

fn check_session<E: std::error::Error + Send + Sync + 'static>(
    had_session: bool,
    r: HttpResult<StreamableHttpPostResponse, E>,
) -> HttpResult<StreamableHttpPostResponse, E> {
    match r {
        Ok(StreamableHttpPostResponse::Json(msg, _)) if had_session && names_lost_session(&msg) => {
            tracing::debug!("the server no longer knows our session; re-initialising");
            Err(StreamableHttpError::SessionExpired)
        }
        other => other,
    }
}

fn request_id(message: &ClientJsonRpcMessage) -> Option<rmcp::model::RequestId> {
    match message {
        ClientJsonRpcMessage::Request(r) => Some(r.id.clone()),
        _ => None,
    }
}

impl<C> SessionAware<C> {
    /// A request's answer that is too large or not JSON-RPC, as an error answer
    /// to that request (see the type's doc). Anything else passes unchanged.
    fn contain_bad_answer<E: std::error::Error + Send + Sync + 'static>(
        &self,
        id: Option<rmcp::model::RequestId>,
        r: HttpResult<StreamableHttpPostResponse, E>,
    ) -> HttpResult<StreamableHttpPostResponse, E> {
        let server = &self.server;
        let r = match (&id, r) {
            (Some(id), Ok(StreamableHttpPostResponse::Sse(stream, session))) => {
                return Ok(StreamableHttpPostResponse::Sse(
                    contain_bad_events(server.clone(), id.clone(), stream),
                    session,
                ));
            }
            (_, r) => r,
        };
        let message = match (&id, &r) {
            (Some(_), Err(StreamableHttpError::ResponseBodyTooLarge { max_size })) => format!(
                "server '{server}' answered with more than the {max_size} byte limit ([http] max_message_bytes)"
            ),
            (Some(_), Err(StreamableHttpError::UnexpectedServerResponse(why))) => {
                // rmcp appends the whole body after the reason; keep only the reason.
                let why: String = why.chars().take(200).collect();
                let why = why.split(": {").next().unwrap_or_default();
                format!("server '{server}' answered with a message that is not valid JSON-RPC: {why}")
            }
            (Some(_), Err(StreamableHttpError::Deserialize(e))) => {
                format!("server '{server}' answered with a message that is not valid JSON-RPC: {e}")
            }
            _ => return r,
        };
        tracing::warn!("{message}");
        match serde_json::from_value::<ServerJsonRpcMessage>(error_answer(id.as_ref(), &message, server)) {
            Ok(msg) => Ok(StreamableHttpPostResponse::Json(msg, None)),
            Err(_) => r,
        }
    }
}

fn error_answer(id: Option<&rmcp::model::RequestId>, message: &str, server: &str) -> serde_json::Value {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": -32603, "message": message, "data": { "server": server } },
    })
}

/// The fields rmcp classifies a message by (the values are skipped, not built).
#[derive(serde::Deserialize)]
struct Shape<'a> {
    #[serde(borrow)]
    jsonrpc: Option<std::borrow::Cow<'a, str>>,
    /// As rmcp reads it: a number or a string (null counts as absent).
    id: Option<rmcp::model::RequestId>,
    method: Option<serde::de::IgnoredAny>,
    result: Option<serde::de::IgnoredAny>,
    error: Option<serde::de::IgnoredAny>,
}

/// Why rmcp's worker could not parse `data` as a message, if it could not; two
/// linear scans, no second parse. Checked: JSON syntax; a JSON-RPC 2.0 object
/// of one of the four shapes rmcp accepts (its `classify_object_keys`, and a
/// result needs an id: valid JSON such as `{"hello":"world"}` ended the whole
/// connection; found by tests/hostile.rs); and nesting within serde_json's
/// recursion limit (128), which skipped values are not held to.
fn unreadable_json(data: &str) -> Option<String> {
    // Priming events (resumability) carry no data; rmcp skips them.
    let trimmed = data.trim_start();
    if trimmed.is_empty() {
        return None;
    }
    if !trimmed.starts_with('{') {
        return Some("not a JSON object".into());
    }
    let shape = match serde_json::from_str::<Shape>(data) {
        Ok(shape) => shape,
        Err(e) => return Some(e.to_string()),
    };
    if shape.jsonrpc.as_deref() != Some("2.0") {
        return Some("no \"jsonrpc\": \"2.0\"".into());
    }
    let (method, id, result, error) = (
        shape.method.is_some(),
        shape.id.is_some(),
        shape.result.is_some(),
        shape.error.is_some(),
    );
    let known = matches!(
        (method, id, result, error),
        (true, _, false, false) | (false, true, true, false) | (false, _, false, true)
    );
    if !known {
        return Some("neither a request, a notification, a result nor an error".into());
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for b in data.bytes() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if in_string => escaped = true,
            b'"' => in_string = !in_string,
            b'[' | b'{' if !in_string => {
                depth += 1;
                if depth > 128 {
                    return Some("nested more than 128 levels deep".into());
                }
            }
            b']' | b'}' if !in_string => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

type SseItems = BoxStream<'static, Result<sse_stream::Sse, sse_stream::Error>>;

/// The SSE answer to request `id`, with an event that is over the size limit or
/// not UTF-8 turned into an error answer to that request, which ends the stream.
/// Network errors pass unchanged (rmcp resumes the stream after those).
fn contain_bad_events(server: Arc<str>, id: rmcp::model::RequestId, stream: SseItems) -> SseItems {
    use futures::StreamExt;
    stream
        .scan(false, move |ended, item| {
            if *ended {
                return futures::future::ready(None);
            }
            let bad = match &item {
                Err(sse_stream::Error::Body(e)) if e.to_string().contains("exceeded the maximum size") => Some(
                    format!("server '{server}' answered with an event over the limit: {e} ([http] max_message_bytes)"),
                ),
                Err(e @ (sse_stream::Error::Utf8Parse(_) | sse_stream::Error::InvalidLine)) => Some(format!(
                    "server '{server}' answered with an SSE event that cannot be read: {e}"
                )),
                Ok(sse_stream::Sse { data: Some(data), .. }) => unreadable_json(data)
                    .map(|why| format!("server '{server}' answered with a message that is not valid JSON-RPC: {why}")),
                _ => None,
            };
            let Some(message) = bad else {
                return futures::future::ready(Some(item));
            };
            tracing::warn!("{message}");
            *ended = true;
            futures::future::ready(Some(Ok(sse_stream::Sse {
                event: Some("message".into()),
                data: Some(error_answer(Some(&id), &message, &server).to_string()),
                ..Default::default()
            })))
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stall measured on loopback (44 ms against 0.3 ms) moves a server to
    /// new connections; noise, a slow server, or a real network's handshakes
    /// (three round trips against one plus the stall) do not.
    #[test]
    fn new_connections_only_when_clearly_faster() {
        let ms = Duration::from_millis;
        assert!(prefers_new(ms(44), Duration::from_micros(300)));
        assert!(prefers_new(ms(50), ms(5)));
        assert!(!prefers_new(ms(10), ms(2)), "noise on a loaded machine");
        assert!(!prefers_new(ms(45), ms(40)), "a slow server is slow either way");
        assert!(!prefers_new(ms(60), ms(60)), "20 ms RTT: RTT + stall against 3 RTT");
        assert!(!prefers_new(ms(120), ms(240)), "80 ms RTT");
        assert!(!prefers_new(ms(2), ms(30)));
    }

    /// A probe's stop token hangs off the owner task's: shutting down ends a
    /// probe even while something still holds the client; dropping the client
    /// ends it too, and leaves the owner's token alone.
    #[test]
    fn probes_end_with_the_owner_or_the_client() {
        let spec = ServerSpec {
            id: "a".into(),
            display_name: "a".into(),
            source: crate::registry::Source::Config,
            url: "http://127.0.0.1:9/mcp".into(),
            headers: Vec::new(),
            call_timeout: None,
            oauth: Default::default(),
            keep_alive: true,
            max_message_bytes: 1 << 20,
            rules: Default::default(),
        };
        let owner = CancellationToken::new();
        let up = client(&spec, &owner).unwrap();
        let stop = up.shared.probe_stop.clone();
        assert!(!stop.is_cancelled());
        owner.cancel();
        assert!(stop.is_cancelled(), "the owner's token ends the probe");

        let owner = CancellationToken::new();
        let up = client(&spec, &owner).unwrap();
        let stop = up.shared.probe_stop.clone();
        drop(up);
        assert!(stop.is_cancelled(), "dropping the client ends the probe");
        assert!(!owner.is_cancelled());
    }

    /// Never stricter than rmcp: what rmcp parses passes; what it refuses (and
    /// so would end the connection over) is caught.
    #[test]
    fn unreadable_json_agrees_with_rmcp() {
        let cases = [
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hi"}]}}"#,
            r#"{"jsonrpc":"2.0","id":"a","result":{}}"#,
            r#" {"result":{},"id":7,"jsonrpc":"2.0","extra":[1,2]}"#,
            r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"Method not found"}}"#,
            r#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#,
            r#"{"jsonrpc":"2\u002e0","id":4,"result":{}}"#,
            r#"{"hello":"world"}"#,
            r#"[{"jsonrpc":"2.0","id":1,"result":{}}]"#,
            r#""2.0""#,
            r#"{"jsonrpc":"1.0","id":1,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}"#,
            r#"{"jsonrpc":"2.0","id":{},"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":null,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request"}}"#,
            r#"{"jsonrpc":"2.0","result":{}}"#,
        ];
        for data in cases {
            let rmcp_ok = serde_json::from_str::<ServerJsonRpcMessage>(data).is_ok();
            let ours = unreadable_json(data);
            if rmcp_ok {
                assert_eq!(ours, None, "refused what rmcp reads: {data}");
            } else {
                assert!(ours.is_some(), "missed what rmcp refuses: {data}");
            }
        }
        assert_eq!(unreadable_json("  "), None, "a priming event");
    }
}
