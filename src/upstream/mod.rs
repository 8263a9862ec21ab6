//! One remote MCP server: an owner task that connects over Streamable HTTP (either
//! protocol generation), lists what the server offers, re-lists on change, and
//! reconnects with capped, jittered backoff when the connection ends.
//!
//! Calls do not go through the owner task: they take the current [`Peer`] from the
//! handle's `watch` channel and talk to the server directly, so the task is never
//! on the hot path and one slow call never blocks another. A failure here stays
//! here: the task logs it, publishes it in [`ConnState`], and retries.

pub mod client;
pub mod http;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rmcp::model::{ProtocolVersion, SubscriptionFilter};
use rmcp::service::{ClientCacheConfig, ClientInitializeError};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::common::client_side_sse::ExponentialBackoff;
use rmcp::transport::streamable_http_client::{
    HttpStatusError, StreamableHttpClientTransportConfig, StreamableHttpError,
};
use rmcp::{ClientLifecycleMode, ClientServiceExt, Peer, RoleClient};
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::catalog::ServerLists;
use crate::config::{Timeouts, secs};
use crate::registry::ServerSpec;
pub use client::{IdeLink, ProgressMap, UpstreamClient, UpstreamEvent};

/// Where a connection stands. Cheap to clone: the peer is a handle.
#[derive(Clone, Debug)]
pub enum ConnState {
    Connecting {
        attempt: u32,
        last_error: Option<String>,
    },
    Ready {
        peer: Peer<RoleClient>,
        protocol: ProtocolVersion,
    },
    Failed {
        error: String,
        attempt: u32,
    },
    Stopped,
}

/// Why a request could not reach a server.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error(
        "server '{server}' ({url}) is unavailable: {reason}. The bridge keeps retrying in the background; `mcp-bridge status` shows details"
    )]
    Unavailable {
        server: String,
        url: String,
        reason: String,
    },
    #[error("server '{server}' ({url}) is still connecting after {waited:?}. Try again shortly")]
    StillConnecting {
        server: String,
        url: String,
        waited: Duration,
    },
    #[error("server '{server}' was removed")]
    Stopped { server: String },
}

/// What an owner task shares with the rest of the bridge.
pub struct Links {
    pub ide: Arc<IdeLink>,
    pub events: mpsc::UnboundedSender<UpstreamEvent>,
    /// The timeouts in force; read again at each (re)connect.
    pub timeouts: watch::Receiver<Timeouts>,
    pub store: Option<crate::auth::oauth::Store>,
    /// Woken on every connection state change (for the published state).
    pub changed: Arc<Notify>,
    /// The generation the server spoke last time (`true`: legacy), from the
    /// catalog cache: a legacy server is then met with `initialize` at once.
    pub legacy_hint: Option<bool>,
}

/// The last error and when it happened (unix seconds).
pub type LastError = Arc<std::sync::Mutex<Option<(String, u64)>>>;

/// The handle the rest of the bridge holds for one server.
pub struct UpstreamHandle {
    pub spec: ServerSpec,
    pub id: Arc<str>,
    state: watch::Receiver<ConnState>,
    /// The most recent failure, kept after recovery for `mcp-bridge status`.
    pub last_error: LastError,
    pub progress: ProgressMap,
    reconnect: Arc<Notify>,
    cancel: CancellationToken,
    task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Where this server's credentials live, for step-up.
    pub store: Option<crate::auth::oauth::Store>,
}

impl UpstreamHandle {
    /// Start the owner task for `spec`.
    pub fn spawn(spec: ServerSpec, links: Links, parent: &CancellationToken) -> Arc<UpstreamHandle> {
        let Links {
            ide,
            events,
            timeouts,
            store,
            changed,
            legacy_hint,
        } = links;
        let id: Arc<str> = Arc::from(spec.id.as_str());
        let (tx, rx) = watch::channel(ConnState::Connecting {
            attempt: 0,
            last_error: None,
        });
        let progress = ProgressMap::default();
        let refresh = Arc::new(Notify::new());
        let reconnect = Arc::new(Notify::new());
        let cancel = parent.child_token();
        let last_error = LastError::default();
        let handler = UpstreamClient {
            server: id.clone(),
            ide,
            progress: progress.clone(),
            refresh: refresh.clone(),
            events: events.clone(),
        };
        let task = tokio::spawn(run(Owner {
            spec: spec.clone(),
            handler,
            state: tx,
            refresh: refresh.clone(),
            reconnect: reconnect.clone(),
            events,
            timeouts,
            store: store.clone(),
            cancel: cancel.clone(),
            changed,
            last_error: last_error.clone(),
            legacy_hint,
        }));
        Arc::new(UpstreamHandle {
            spec,
            id,
            state: rx,
            last_error,
            progress,
            reconnect,
            cancel,
            task: tokio::sync::Mutex::new(Some(task)),
            store,
        })
    }

    pub fn state(&self) -> ConnState {
        self.state.borrow().clone()
    }

    /// Wait until the first connection attempt has an outcome (connected, or
    /// failed), at most `wait`.
    pub async fn settled(&self, wait: Duration) {
        let mut rx = self.state.clone();
        let _ = tokio::time::timeout(wait, async {
            loop {
                if !matches!(*rx.borrow_and_update(), ConnState::Connecting { .. }) {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }

    /// Drop the connection and connect again at once (e.g. with new tokens), then
    /// wait up to `wait` for the new connection.
    pub async fn reconnect(&self, wait: Duration) -> Result<Peer<RoleClient>, UpstreamError> {
        let mut rx = self.state.clone();
        rx.borrow_and_update();
        self.reconnect.notify_one();
        let _ = tokio::time::timeout(wait, rx.changed()).await;
        self.peer(wait).await
    }

    /// The live peer, waiting up to `wait` for a connection in progress.
    pub async fn peer(&self, wait: Duration) -> Result<Peer<RoleClient>, UpstreamError> {
        let mut rx = self.state.clone();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let current = rx.borrow_and_update().clone();
            match current {
                ConnState::Ready { peer, .. } if !peer.is_transport_closed() => return Ok(peer),
                ConnState::Ready { .. } => {}
                ConnState::Stopped => {
                    return Err(UpstreamError::Stopped {
                        server: self.spec.id.clone(),
                    });
                }
                ConnState::Failed { error, attempt } if attempt > 1 => {
                    // Repeated failures: answer now rather than make the IDE wait.
                    return Err(self.unavailable(error));
                }
                ConnState::Failed { .. } | ConnState::Connecting { .. } => {}
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => {
                    return Err(UpstreamError::Stopped {
                        server: self.spec.id.clone(),
                    });
                }
                Err(_) => {
                    return Err(match rx.borrow().clone() {
                        ConnState::Failed { error, .. }
                        | ConnState::Connecting {
                            last_error: Some(error),
                            ..
                        } => self.unavailable(error),
                        _ => UpstreamError::StillConnecting {
                            server: self.spec.id.clone(),
                            url: self.spec.url.clone(),
                            waited: wait,
                        },
                    });
                }
            }
        }
    }

    fn unavailable(&self, reason: String) -> UpstreamError {
        UpstreamError::Unavailable {
            server: self.spec.id.clone(),
            url: self.spec.url.clone(),
            reason,
        }
    }

    /// Stop the owner task, closing the session (HTTP DELETE where it has one).
    pub async fn stop(&self) {
        self.cancel.cancel();
        if let Some(task) = self.task.lock().await.take() {
            let _ = tokio::time::timeout(Duration::from_millis(900), task).await;
        }
    }
}

/// How long a cancellation or a reply to the server may take (see `transport_config`).
pub const CONTROL_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

fn transport_config(spec: &ServerSpec) -> StreamableHttpClientTransportConfig {
    let mut retry = ExponentialBackoff::default();
    retry.max_times = Some(3);
    retry.base_duration = Duration::from_millis(250);
    retry.max_delay = Some(Duration::from_secs(2));
    // The one place upstream message sizes are bounded (`[http] max_message_bytes`):
    // rmcp checks JSON bodies and SSE events against these before parsing.
    let mut cfg = StreamableHttpClientTransportConfig::with_uri(spec.url.clone())
        .max_concurrent_requests(256)
        .max_json_response_size(spec.max_message_bytes)
        .max_sse_event_size(spec.max_message_bytes)
        // rmcp answers a timed-out request only after its cancellation POST is
        // done, and waits up to this long for it (5 s by default): against a
        // server that stalls, every timeout came 5 s late (tests/chaos.rs).
        // Cancellations and replies to the server's requests are small POSTs
        // answered with a bare 202, so 2 s is plenty.
        .control_request_timeout(CONTROL_REQUEST_TIMEOUT);
    cfg.retry_config = Arc::new(retry);
    cfg
}

type Running = rmcp::service::RunningService<RoleClient, UpstreamClient>;

/// How the published error of a server that needs a login starts (`status`
/// and `doctor` key their advice on it).
pub(crate) const NEEDS_LOGIN: &str = "the server requires a login";

/// Why a connection could not be used.
#[derive(Debug)]
enum Failure {
    /// HTTP 401. `had_tokens`: the stored tokens were refused (the login was
    /// revoked, or the server moved to another authorization server).
    NeedsLogin {
        had_tokens: bool,
    },
    /// HTTP 403 `insufficient_scope`: the scopes the server asks for.
    NeedsScope(String),
    Other(String),
}

impl From<String> for Failure {
    fn from(e: String) -> Failure {
        Failure::Other(e)
    }
}

impl Failure {
    /// The auth failure behind an rmcp error, if that is what it is.
    fn auth(challenge: Option<&str>, required: bool, url: &str, had_tokens: bool) -> Option<Failure> {
        if let Some(ch) = challenge
            && ch.contains("insufficient_scope")
        {
            let scope = url::Url::parse(url)
                .ok()
                .and_then(|u| rmcp::transport::auth::WWWAuthenticateParams::parse(ch, &u).scope)
                .unwrap_or_default();
            return Some(Failure::NeedsScope(scope));
        }
        required.then_some(Failure::NeedsLogin { had_tokens })
    }
}

/// The handshake over `client`, in either protocol generation.
///
/// Era detection: a `server/discover` probe (rmcp's Auto mode), and
/// `initialize` whenever the server answered the probe with anything but a
/// DiscoverResult. rmcp falls back by itself only on a JSON-RPC error; servers
/// in the field also answer an unknown method with an empty or malformed
/// success, an HTTP 4xx, or a -32022 that lists only legacy versions, and a
/// server that was not reached at all gets no second try here. With
/// `legacy_hint` (the server was legacy last time), `initialize` goes first
/// and the probe only follows if that fails.
async fn handshake<C>(
    client: C,
    spec: &ServerSpec,
    handler: &UpstreamClient,
    timeouts: &Timeouts,
    legacy_hint: Option<bool>,
    had_tokens: bool,
) -> Result<Running, Failure>
where
    C: rmcp::transport::streamable_http_client::StreamableHttpClient + Sync + Clone,
{
    let auto = || ClientLifecycleMode::Auto {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        legacy_version: Some(ProtocolVersion::V_2025_11_25),
    };
    let attempt = |mode| {
        let handler = handler.clone();
        let t = StreamableHttpClientTransport::with_client(client.clone(), transport_config(spec));
        async move {
            tokio::time::timeout(secs(timeouts.connect), handler.serve_with_lifecycle(t, mode))
                .await
                .map_err(|_| format!("no answer to the handshake within {} s", timeouts.connect))
        }
    };
    let (first, second) = match legacy_hint {
        Some(true) => (ClientLifecycleMode::Initialize, auto()),
        _ => (auto(), ClientLifecycleMode::Initialize),
    };
    let result = match attempt(first).await? {
        Err(e) if answered(&e) => {
            tracing::debug!(server = %spec.id, "handshake failed ({e}); trying the other protocol generation");
            attempt(second).await?
        }
        other => other,
    };
    match result {
        Err(e) => match Failure::auth(e.auth_challenge(), e.is_authorization_required(), &spec.url, had_tokens) {
            Some(f) => Err(f),
            None => Err(Failure::Other(describe_failure(&spec.url, &failure_text(&e)).await)),
        },
        Ok(running) => Ok(running),
    }
}

/// Whether a failed handshake got an answer from the server that is worth
/// trying the other protocol generation on: anything but no answer at all (a
/// connection refused or timed out), a login to do, or rmcp's own
/// `initialize` fallback having failed already.
fn answered(e: &ClientInitializeError) -> bool {
    use ClientInitializeError as E;
    match e {
        _ if e.is_authorization_required() || e.auth_challenge().is_some() => false,
        E::LegacyFallbackFailed { .. } | E::Cancelled | E::ConnectionClosed(_) => false,
        E::TransportError { .. } => !links(e)
            .filter_map(|c| c.downcast_ref::<reqwest::Error>())
            .any(|r| r.is_connect() || r.is_timeout()),
        _ => true,
    }
}

/// Connect to `spec`: with its stored OAuth tokens when there are any (rmcp's
/// `AuthClient` adds the bearer token to every request; a refresh task keeps it
/// fresh, stopped with the returned token), else with its static headers only.
async fn connect(
    spec: &ServerSpec,
    handler: UpstreamClient,
    timeouts: &Timeouts,
    store: Option<&crate::auth::oauth::Store>,
    legacy_hint: Option<bool>,
) -> Result<(Running, Option<CancellationToken>), Failure> {
    let stored = match store {
        Some(lazy) => lazy.get().await,
        None => None,
    };
    let http = if let Some(store) = stored {
        // One read of the store: static credentials set with `mcp-bridge auth set`
        // join the configured headers; stored tokens select the OAuth client.
        let creds = crate::auth::ServerCredentials::new(store, &spec.url);
        let entry = creds.entry().await.unwrap_or_default();
        let has_tokens = entry.oauth.as_ref().is_some_and(|c| c.token_response.is_some());
        let mut with = spec.clone();
        with.headers.extend(
            entry
                .headers
                .into_iter()
                .map(|(k, v)| (k, crate::registry::HeaderValue { value: v, secret: true })),
        );
        let http = http::client(&with).map_err(|e| e.to_string())?;
        if has_tokens {
            let mut m = crate::auth::oauth::manager(&spec.url, creds.clone(), !spec.oauth.omit_resource)
                .await
                .map_err(|e| format!("OAuth set-up failed: {e}"))?;
            m.initialize_from_store()
                .await
                .map_err(|e| format!("cannot use the stored login: {e}; run `mcp-bridge login {}`", spec.id))?;
            let auth = rmcp::transport::auth::AuthClient::new(http, m);
            let running = handshake(
                http::SessionAware::new(auth.clone(), &spec.id),
                spec,
                &handler,
                timeouts,
                legacy_hint,
                true,
            )
            .await?;
            // `stop` ends the refresher with the connection; the refresher cancels
            // it when the grant is gone, which ends the connection too, so that the
            // next attempt runs without the dead tokens and reports "needs login".
            let stop = CancellationToken::new();
            let (id, manager, s) = (spec.id.clone(), auth.auth_manager.clone(), stop.clone());
            tokio::spawn(async move {
                if let crate::auth::refresh::Outcome::NeedsLogin(_) =
                    crate::auth::refresh::run(id, manager, creds.clone(), s.clone()).await
                {
                    use rmcp::transport::auth::CredentialStore;
                    let _ = creds.clear().await;
                    s.cancel();
                }
            });
            return Ok((running, Some(stop)));
        }
        http
    } else {
        http::client(spec).map_err(|e| e.to_string())?
    };
    Ok((
        handshake(
            http::SessionAware::new(http, &spec.id),
            spec,
            &handler,
            timeouts,
            legacy_hint,
            false,
        )
        .await?,
        None,
    ))
}

/// `message` without the worker type names rmcp puts in transport errors
/// (`Transport [rmcp::transport::worker::WorkerTransport<…>] error: `).
pub fn without_type_names(message: &str) -> String {
    let mut m = message.to_owned();
    while let (Some(a), Some(b)) = (m.find("Transport ["), m.find("] error: ")) {
        if b < a {
            break;
        }
        m.replace_range(a..b + "] error: ".len(), "");
    }
    m
}

/// The HTTP status a server answered a request with, when that is why it failed
/// (rmcp keeps 429 and 5xx, with the raw `Retry-After`, inside a transport
/// error; every client the bridge builds has reqwest's error type).
pub fn http_status(e: &rmcp::ServiceError) -> Option<&HttpStatusError> {
    let rmcp::ServiceError::TransportSend(t) = e else {
        return None;
    };
    links(t.error.as_ref()).find_map(|current| match current.downcast_ref() {
        Some(StreamableHttpError::<reqwest::Error>::HttpStatus(h)) => Some(h),
        _ => current.downcast_ref::<HttpStatusError>(),
    })
}

/// Whether a request failed before it left: the TCP connect to the server did
/// not succeed. Any other transport failure may come after the server got the
/// request (a reset or a cut response), so it may have run it.
pub fn never_sent(e: &rmcp::ServiceError) -> bool {
    let rmcp::ServiceError::TransportSend(t) = e else {
        return false;
    };
    links(t.error.as_ref())
        .find_map(|c| c.downcast_ref::<reqwest::Error>())
        .is_some_and(reqwest::Error::is_connect)
}

/// The links of an rmcp transport error, including the two rmcp does not expose
/// as `source()`: `ClientInitializeError::TransportError` and
/// `StreamableHttpError::Client`, which hold the reqwest error with the cause.
fn links<'a>(e: &'a (dyn std::error::Error + 'static)) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |current| {
        if let Some(ClientInitializeError::TransportError { error, .. }) = current.downcast_ref() {
            return Some(error as &(dyn std::error::Error + 'static));
        }
        match current.downcast_ref() {
            Some(StreamableHttpError::<reqwest::Error>::Client(r)) => Some(r as &(dyn std::error::Error + 'static)),
            _ => current.source(),
        }
    })
}

/// An rmcp transport error on one line, with the cause rmcp drops: it formats
/// the reqwest error inside as "Client error: error sending request for url"
/// without reqwest's own sources, where the reason is (refused, a DNS failure,
/// "invalid peer certificate: UnknownIssuer"; found by tests/tls.rs).
pub fn failure_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = crate::util::error_chain(e);
    let cause = links(e)
        .find_map(|c| c.downcast_ref::<reqwest::Error>())
        .and_then(std::error::Error::source);
    if let Some(cause) = cause.map(crate::util::error_chain)
        && !text.contains(&cause)
    {
        text.push_str(": ");
        text.push_str(&cause);
    }
    text
}

/// A connect failure in words a person can act on. rmcp formats transport errors
/// into strings that name its worker types and drop the cause (reqwest's message
/// is only "error sending request"), so strip the type names and, when the request
/// never got an HTTP answer, find out why with a plain TCP connect.
async fn describe_failure(url: &str, message: &str) -> String {
    let m = without_type_names(message);
    if !m.contains("error sending request") {
        return m;
    }
    let Ok(u) = url::Url::parse(url) else { return m };
    let (Some(host), Some(port)) = (u.host_str(), u.port_or_known_default()) else {
        return m;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    match tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    {
        Ok(Err(e)) => format!("cannot reach {host}:{port}: {e}"),
        Err(_) => format!("cannot reach {host}:{port}: no answer within 3 s"),
        Ok(Ok(_)) => m,
    }
}

/// `base` with up to 20 % jitter either way, so servers are not re-listed in step.
fn jittered(base: Duration) -> Duration {
    base.mul_f64(rand::rng().random_range(0.8..=1.2))
}

/// List a server and publish the result (the catalog ignores identical lists).
/// Returns when to list again by the server's own cache hint, if it gave one.
async fn relist(
    peer: &Peer<RoleClient>,
    timeouts: &Timeouts,
    id: &Arc<str>,
    url: &str,
    events: &mpsc::UnboundedSender<UpstreamEvent>,
    legacy: bool,
    had_tokens: bool,
) -> Result<Option<Duration>, Failure> {
    match list_bounded(peer, timeouts).await {
        Ok((lists, ttl)) => {
            let _ = events.send(UpstreamEvent::Lists {
                server: id.clone(),
                url: url.to_owned(),
                legacy,
                lists,
            });
            Ok(ttl_refresh(ttl, timeouts))
        }
        Err(ListError::Service(e)) => {
            if let Some(f) = Failure::auth(e.auth_challenge(), e.is_authorization_required(), url, had_tokens) {
                tracing::info!(server = %id, "listing refused: {f:?}");
                return Err(f);
            }
            tracing::warn!(server = %id, "listing failed: {e}");
            Ok(None)
        }
        Err(ListError::Timeout(e)) => {
            tracing::warn!(server = %id, "listing failed: {e}");
            Ok(None)
        }
    }
}

enum ListError {
    Service(rmcp::ServiceError),
    Timeout(String),
}

/// When a server's `ttlMs` says its lists go stale, if that comes before the
/// periodic fallback. A TTL is a freshness hint, not a polling interval: 0
/// (stale at once) means nothing here, very short ones are stretched to a
/// second, and the time is jittered so that servers do not refresh in step.
fn ttl_refresh(ttl_ms: Option<u64>, timeouts: &Timeouts) -> Option<Duration> {
    let ttl = Duration::from_millis(ttl_ms.filter(|t| *t > 0)?).max(Duration::from_secs(1));
    let fallback = secs(timeouts.list_refresh);
    (timeouts.list_refresh <= 0.0 || ttl < fallback).then(|| ttl.mul_f64(rand::rng().random_range(1.0..=1.2)))
}

/// List everything, bounded in time: a server that stalls on `tools/list` must
/// not wedge its owner task.
async fn list_bounded(peer: &Peer<RoleClient>, timeouts: &Timeouts) -> Result<(ServerLists, Option<u64>), ListError> {
    match tokio::time::timeout(secs(timeouts.call), list_all(peer)).await {
        Ok(Ok(l)) => Ok(l),
        Ok(Err(e)) => Err(ListError::Service(e)),
        Err(_) => Err(ListError::Timeout(format!(
            "no complete list within {} s",
            timeouts.call
        ))),
    }
}

/// List everything the server's capabilities say it has, following pagination,
/// with the shortest positive `ttlMs` any list carried (2026-07-28 servers only).
/// The kinds are listed at once, not one after another: over a real network each
/// is a round trip (over HTTP/2 they share the connection).
pub async fn list_all(peer: &Peer<RoleClient>) -> Result<(ServerLists, Option<u64>), rmcp::ServiceError> {
    let caps = peer.peer_info().map(|i| i.capabilities.clone()).unwrap_or_default();
    let tools = async {
        match caps.tools {
            Some(_) => peer.list_all_tools_with_cache_hint().await.map(Some),
            None => Ok(None),
        }
    };
    let prompts = async {
        match caps.prompts {
            Some(_) => peer.list_all_prompts_with_cache_hint().await.map(Some),
            None => Ok(None),
        }
    };
    let resources = async {
        match caps.resources {
            Some(_) => peer.list_all_resources_with_cache_hint().await.map(Some),
            None => Ok(None),
        }
    };
    // Templates are optional even for resource servers: a failure is no list.
    let templates = async {
        match caps.resources {
            Some(_) => peer.list_all_resource_templates_with_cache_hint().await.ok(),
            None => None,
        }
    };
    let (tools, prompts, resources, templates) = tokio::join!(tools, prompts, resources, templates);
    let mut lists = ServerLists::default();
    let mut ttl: Option<u64> = None;
    // The shortest positive hint: 0 ("stale at once", also what rmcp fills in
    // when a server gives none) is no reason to poll.
    let mut shortest = |t: Option<u64>| {
        if let Some(t) = t.filter(|t| *t > 0) {
            ttl = Some(ttl.map_or(t, |cur| cur.min(t)));
        }
    };
    if let Some(m) = tools? {
        shortest(m.ttl_ms);
        lists.tools = m.items;
    }
    if let Some(m) = prompts? {
        shortest(m.ttl_ms);
        lists.prompts = m.items;
    }
    if let Some(m) = resources? {
        shortest(m.ttl_ms);
        lists.resources = m.items;
        if let Some(m) = templates {
            shortest(m.ttl_ms);
            lists.resource_templates = m.items;
        }
    }
    Ok((lists, ttl))
}

/// Everything the owner task of one server holds.
struct Owner {
    spec: ServerSpec,
    handler: UpstreamClient,
    state: watch::Sender<ConnState>,
    refresh: Arc<Notify>,
    reconnect: Arc<Notify>,
    events: mpsc::UnboundedSender<UpstreamEvent>,
    timeouts: watch::Receiver<Timeouts>,
    store: Option<crate::auth::oauth::Store>,
    cancel: CancellationToken,
    changed: Arc<Notify>,
    last_error: LastError,
    legacy_hint: Option<bool>,
}

async fn run(owner: Owner) {
    let Owner {
        spec,
        handler,
        state,
        refresh,
        reconnect,
        events,
        timeouts,
        store,
        cancel,
        changed,
        last_error: last_error_at,
        mut legacy_hint,
    } = owner;
    let id = handler.server.clone();
    let report = |s: ConnState| {
        if let ConnState::Failed { error, .. } = &s {
            *last_error_at.lock().expect("last error") = Some((error.clone(), crate::util::now_unix()));
        }
        state.send_replace(s);
        changed.notify_one();
    };
    let mut attempt: u32 = 0;
    let mut last_error: Option<String> = None;
    let mut auto_login_tried = false;
    let mut deliberate = false;
    let retry_now = Arc::new(Notify::new());
    // A login problem found on a live connection, handled like a connect failure.
    let mut pending: Option<Failure> = None;
    // Set while a login this task started runs.
    let login_running = Arc::new(std::sync::atomic::AtomicBool::new(false));
    loop {
        let timeouts = timeouts.borrow().clone();
        report(ConnState::Connecting {
            attempt,
            last_error: last_error.clone(),
        });
        let connected = match pending.take() {
            Some(f) => Err(f),
            None => tokio::select! {
                _ = cancel.cancelled() => break,
                r = connect(&spec, handler.clone(), &timeouts, store.as_ref(), legacy_hint) => r,
            },
        };
        let (running, refresher) = match connected {
            Ok(r) => r,
            Err(f) => {
                // Tokens the server refused are dropped, so that the next
                // attempt (and a login) starts clean: a revoked grant, or a
                // server that moved to another authorization server.
                if let (Failure::NeedsLogin { had_tokens: true }, Some(lazy)) = (&f, &store)
                    && let Some(tokens) = lazy.get().await
                {
                    use rmcp::transport::auth::CredentialStore;
                    let _ = crate::auth::ServerCredentials::new(tokens, &spec.url).clear().await;
                }
                let (mut e, scope) = match f {
                    Failure::NeedsLogin { .. } => (
                        format!("{NEEDS_LOGIN} (HTTP 401): run `mcp-bridge login {id}`"),
                        Some(None),
                    ),
                    Failure::NeedsScope(scope) => (
                        format!(
                            "{NEEDS_LOGIN} with more access ({scope}, HTTP 403): run `mcp-bridge login {id} --scope {}`",
                            scope.replace(' ', " --scope ")
                        ),
                        Some(Some(scope)),
                    ),
                    Failure::Other(e) => (e, None),
                };
                // A server that needs a login (or more scope): start the
                // browser flow once per episode (one process among several
                // opens the tab), and retry as soon as it is done.
                let mut login_started = false;
                if let Some(scope) = &scope
                    && !auto_login_tried
                    && let Some(lazy) = &store
                    && let Some(wait) = lazy.auto_login
                    && let Some(tokens) = lazy.get().await
                {
                    auto_login_tried = true;
                    login_started = true;
                    let (spec2, retry, events, id) = (spec.clone(), retry_now.clone(), events.clone(), id.clone());
                    let scope = scope.clone();
                    let running = login_running.clone();
                    running.store(true, std::sync::atomic::Ordering::SeqCst);
                    tokio::spawn(async move {
                        let ok = match scope {
                            None => crate::auth::auto::login(&spec2, tokens, wait).await,
                            Some(s) => crate::auth::auto::step_up(&spec2, tokens, &s, wait).await,
                        };
                        running.store(false, std::sync::atomic::Ordering::SeqCst);
                        if ok {
                            retry.notify_one();
                        } else {
                            let _ = events.send(UpstreamEvent::Settled { server: id });
                        }
                    });
                }
                if scope.is_some() && auto_login_tried {
                    e = format!("{e} (a login was started in your browser)");
                }
                // Say it once per outage, not once per retry.
                if attempt == 0 {
                    tracing::warn!(server = %id, url = %spec.url, "connect failed: {e}; retrying in the background");
                } else {
                    tracing::debug!(server = %id, attempt, "connect failed again: {e}");
                }
                attempt += 1;
                report(ConnState::Failed {
                    error: e.clone(),
                    attempt,
                });
                // A login this bridge just started may end in seconds (a
                // browser that is already signed in, an agent's authorization
                // server): the first answer keeps waiting for it, within
                // `first_list`; the login's end settles it either way.
                // A backoff retry that fails while that login still runs does
                // not settle it either (found by the conformance suite on a
                // loaded machine: the retry came before the login's end).
                if !login_started && !login_running.load(std::sync::atomic::Ordering::SeqCst) {
                    let _ = events.send(UpstreamEvent::Settled { server: id.clone() });
                }
                last_error = Some(e);
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = retry_now.notified() => continue,
                    _ = tokio::time::sleep(crate::util::backoff(attempt, secs(timeouts.backoff_max))) => continue,
                }
            }
        };
        auto_login_tried = false;
        let peer = running.peer().clone();
        // Refreshers must see failures, not a stale cached list (rmcp serves its
        // cached list on error by default).
        peer.set_response_cache_config(ClientCacheConfig::default().with_serve_stale_on_error(false))
            .await;
        let protocol = peer.peer_info().map(|i| i.protocol_version.clone()).unwrap_or_default();
        legacy_hint = Some(protocol.has_initialize());
        tracing::info!(server = %id, %protocol, "connected");
        // List before announcing Ready: for modern servers this also fills the
        // transport's schema cache that `Mcp-Param-*` headers need (rmcp fills it
        // only from a listing).
        // Deadlines, not durations: a timer must not restart whenever another
        // branch of the loop below fires.
        let at = |d: Option<Duration>| d.map(|d| tokio::time::Instant::now() + d);
        let legacy = protocol.has_initialize();
        let had_tokens = refresher.is_some();
        let mut ttl_at = match relist(&peer, &timeouts, &id, &spec.url, &events, legacy, had_tokens).await {
            Ok(t) => at(t),
            Err(f) => {
                // Connected, but not allowed to list: a login problem.
                running.cancellation_token().cancel();
                if let Some(r) = refresher {
                    r.cancel();
                }
                pending = Some(f);
                continue;
            }
        };
        let _ = events.send(UpstreamEvent::Settled { server: id.clone() });
        attempt = 0;
        report(ConnState::Ready {
            peer: peer.clone(),
            protocol: protocol.clone(),
        });
        let listener =
            (!protocol.has_initialize()).then(|| spawn_listener(peer.clone(), refresh.clone(), cancel.child_token()));

        let stop = running.cancellation_token();
        let waiting = running.waiting();
        tokio::pin!(waiting);
        let login_lost = refresher.clone().unwrap_or_default();
        let periodic = (timeouts.list_refresh > 0.0).then(|| jittered(secs(timeouts.list_refresh)));
        let mut periodic_at = at(periodic);
        // Sessions (2025-11-25) can expire when idle; stateless servers have none.
        let keepalive = (protocol.has_initialize() && timeouts.keepalive > 0.0).then(|| secs(timeouts.keepalive));
        let mut keepalive_at = at(keepalive);
        let never = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
        let ended = loop {
            let relist_now = tokio::select! {
                _ = cancel.cancelled() => {
                    stop.cancel();
                    let _ = tokio::time::timeout(Duration::from_millis(800), &mut waiting).await;
                    break false;
                }
                _ = reconnect.notified() => {
                    tracing::info!(server = %id, "reconnecting on request");
                    stop.cancel();
                    let _ = tokio::time::timeout(Duration::from_millis(800), &mut waiting).await;
                    deliberate = true;
                    break true;
                }
                _ = login_lost.cancelled(), if refresher.is_some() => {
                    tracing::warn!(server = %id, "the login is no longer valid: run `mcp-bridge login {id}`");
                    stop.cancel();
                    let _ = tokio::time::timeout(Duration::from_millis(800), &mut waiting).await;
                    break true;
                }
                _ = refresh.notified() => {
                    true
                }
                // The server's own cache hint said its lists are stale.
                _ = tokio::time::sleep_until(ttl_at.unwrap_or(never)), if ttl_at.is_some() => {
                    true
                }
                // Fallback for servers that never announce a change.
                _ = tokio::time::sleep_until(periodic_at.unwrap_or(never)), if periodic_at.is_some() => {
                    periodic_at = at(periodic.map(jittered));
                    true
                }
                _ = tokio::time::sleep_until(keepalive_at.unwrap_or(never)), if keepalive_at.is_some() => {
                    keepalive_at = at(keepalive);
                    // A failed ping on a live transport is the server's business;
                    // a closed transport ends `waiting` and reconnects.
                    if let Err(e) = tokio::time::timeout(secs(timeouts.call), peer.send_request(
                        rmcp::model::ClientRequest::PingRequest(rmcp::model::PingRequest {
                            method: Default::default(),
                            extensions: Default::default(),
                        }),
                    )).await {
                        tracing::debug!(server = %id, "keepalive ping: {e}");
                    }
                    false
                }
                r = &mut waiting => {
                    tracing::warn!(server = %id, "connection ended: {r:?}");
                    break true;
                }
            };
            // A change announced, the server's cache hint, or the fallback.
            if relist_now {
                match relist(&peer, &timeouts, &id, &spec.url, &events, legacy, had_tokens).await {
                    Ok(t) => ttl_at = at(t),
                    Err(f) => {
                        // A login problem on a live connection: end it, and
                        // handle the failure as if the connect had failed.
                        stop.cancel();
                        let _ = tokio::time::timeout(Duration::from_millis(800), &mut waiting).await;
                        pending = Some(f);
                        deliberate = true;
                        break true;
                    }
                }
            }
        };
        if let Some(l) = listener {
            l.cancel();
        }
        if let Some(r) = refresher {
            r.cancel();
        }
        if !ended {
            break;
        }
        if std::mem::take(&mut deliberate) {
            continue;
        }
        attempt += 1;
        last_error = Some("the connection ended".into());
        report(ConnState::Failed {
            error: "the connection ended".into(),
            attempt,
        });
        tracing::debug!(server = %id, "reconnecting after {last_error:?}");
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(crate::util::backoff(attempt, secs(timeouts.backoff_max))) => {}
        }
    }
    report(ConnState::Stopped);
}

/// Modern (2026-07-28) servers send list changes only on a `subscriptions/listen`
/// stream: keep one open and turn each notification into a refresh.
fn spawn_listener(peer: Peer<RoleClient>, refresh: Arc<Notify>, cancel: CancellationToken) -> CancellationToken {
    let ct = cancel.clone();
    tokio::spawn(async move {
        let filter = SubscriptionFilter::builder()
            .tools_list_changed()
            .prompts_list_changed()
            .resources_list_changed()
            .build();
        let mut attempt = 0;
        while !ct.is_cancelled() && attempt < 5 {
            let sub = tokio::select! {
                _ = ct.cancelled() => return,
                s = peer.listen(filter.clone()) => s,
            };
            let mut sub = match sub {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!("listen not available: {e}");
                    return;
                }
            };
            loop {
                tokio::select! {
                    _ = ct.cancelled() => { let _ = sub.cancel().await; return; }
                    n = sub.next() => match n {
                        Ok(Some(_)) => refresh.notify_one(),
                        _ => break,
                    }
                }
            }
            attempt += 1;
            tokio::time::sleep(crate::util::backoff(attempt, Duration::from_secs(30))).await;
        }
    });
    cancel
}
