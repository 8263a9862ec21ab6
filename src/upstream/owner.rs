//! The owner task of one server: connect (either protocol generation, with the
//! stored login when there is one), list, publish the lists, re-list on change,
//! on the server's `ttlMs` and periodically, keep idle sessions alive, and
//! reconnect with capped, jittered backoff when the connection ends. A login the
//! server asks for is started here (once per episode) and its end retried at once.
//!
//! Every task this file spawns (the token refresher, a login started from
//! `serve`, the modern `subscriptions/listen` stream, and through
//! [`http::client`] the connection-reuse probe) ends when the owner's
//! cancellation token (a child of the root token) is cancelled.

use crate::util::Locked;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rmcp::model::{ProtocolVersion, SubscriptionFilter};
use rmcp::service::{ClientCacheConfig, ClientInitializeError};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::common::client_side_sse::ExponentialBackoff;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientLifecycleMode, ClientServiceExt, Peer, RoleClient};
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::errors::{Failure, describe_failure, failure_text, links};
use super::{ConnState, LastError, LastFailure, NeedsLogin, UpstreamClient, UpstreamEvent, http};
use crate::catalog::ServerLists;
use crate::config::{Timeouts, secs};
use crate::registry::ServerSpec;

/// How long a cancellation or a reply to the server may take (see `transport_config`).
const CONTROL_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// rmcp's transport settings for `spec`. rmcp's default SSE reconnect policy
/// retries a broken stream forever, with no cap on the delay
/// (`ExponentialBackoff::default()`: `max_times` and `max_delay` unset); here a
/// stream gets at most three tries, 250 ms to 2 s apart.
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

/// How the published error of a server that needs a login starts (the type
/// is [`NeedsLogin`]; this is the text people read).
const NEEDS_LOGIN: &str = "the server requires a login";

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
    cancel: &CancellationToken,
) -> Result<(Running, Option<CancellationToken>), Failure> {
    let stored = match store {
        Some(lazy) => lazy.get().await,
        None => None,
    };
    let http = if let Some(store) = stored {
        // One read of the store: static credentials set with `mcp-bridge auth set`
        // join the configured headers; stored tokens select the OAuth client.
        let creds = crate::auth::ServerCredentials::new(store.clone(), &spec.url);
        // Client credentials or enterprise: a token before the first request,
        // no browser, no refresh token (a new token when this one runs out or
        // is refused); an ended IdP session is a login to do, at the IdP only.
        let headless = spec.oauth.headless();
        if headless && !crate::auth::client_credentials::usable(&creds).await {
            crate::auth::fetch_headless(spec, creds.clone(), store.clone())
                .await
                // The message alone: the owner's reports name the server.
                .map_err(|e| match e.idp_login {
                    true => Failure::NeedsIdpLogin(e.message),
                    false => Failure::Other(e.message),
                })?;
        }
        let entry = creds.entry().await.unwrap_or_default();
        let has_tokens = entry.oauth.as_ref().is_some_and(|c| c.token_response.is_some());
        let mut with = spec.clone();
        with.headers.extend(
            entry
                .headers
                .into_iter()
                .map(|(k, v)| (k, crate::registry::HeaderValue { value: v, secret: true })),
        );
        let http = http::client(&with, cancel).map_err(|e| e.to_string())?;
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
            // The owner's token ends it as well, without cancelling `stop`: that
            // would read as a lost login.
            let stop = CancellationToken::new();
            let (id, manager, s) = (spec.id.clone(), auth.auth_manager.clone(), stop.clone());
            let root = cancel.clone();
            if headless {
                let spec = spec.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = root.cancelled() => {}
                        _ = crate::auth::renew_headless(spec, creds, store, s.clone()) => {}
                    }
                });
                return Ok((running, Some(stop)));
            }
            tokio::spawn(async move {
                let outcome = tokio::select! {
                    _ = root.cancelled() => return,
                    o = crate::auth::refresh::run(id, manager, creds.clone(), s.clone()) => o,
                };
                if let crate::auth::refresh::Outcome::NeedsLogin(_) = outcome {
                    use rmcp::transport::auth::CredentialStore;
                    let _ = creds.clear().await;
                    s.cancel();
                }
            });
            return Ok((running, Some(stop)));
        }
        http
    } else {
        http::client(spec, cancel).map_err(|e| e.to_string())?
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

/// `base` with up to 20 % jitter either way, so servers are not re-listed in step.
fn jittered(base: Duration) -> Duration {
    base.mul_f64(rand::rng().random_range(0.8..=1.2))
}

/// [`list_once`] in a `mcp_bridge.list` span.
async fn relist(
    peer: &Peer<RoleClient>,
    timeouts: &Timeouts,
    id: &Arc<str>,
    url: &str,
    events: &mpsc::UnboundedSender<UpstreamEvent>,
    legacy: bool,
    had_tokens: bool,
) -> Result<Option<Duration>, Failure> {
    let list = list_once(peer, timeouts, id, url, events, legacy, had_tokens);
    crate::telemetry::global()
        .traced("mcp_bridge.list", id, Failure::kind, list)
        .await
}

/// List a server and publish the result (the catalog ignores identical lists).
/// Returns when to list again by the server's own cache hint, if it gave one.
async fn list_once(
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
async fn list_all(peer: &Peer<RoleClient>) -> Result<(ServerLists, Option<u64>), rmcp::ServiceError> {
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
pub(super) struct Owner {
    pub(super) spec: ServerSpec,
    pub(super) handler: UpstreamClient,
    pub(super) state: watch::Sender<ConnState>,
    pub(super) refresh: Arc<Notify>,
    pub(super) reconnect: Arc<Notify>,
    pub(super) events: mpsc::UnboundedSender<UpstreamEvent>,
    pub(super) timeouts: watch::Receiver<Timeouts>,
    pub(super) store: Option<crate::auth::oauth::Store>,
    pub(super) cancel: CancellationToken,
    pub(super) changed: Arc<Notify>,
    pub(super) last_error: LastError,
    pub(super) legacy_hint: Option<bool>,
    /// The logins this task starts, as calls see them.
    pub(super) login: super::login::StatusCell,
    /// A call asks for a login (the IDE can show its link): set, then notified.
    pub(super) login_asked: Arc<std::sync::atomic::AtomicBool>,
    pub(super) login_now: Arc<Notify>,
}

/// The owner task: runs until `owner.cancel` is cancelled, then reports
/// [`ConnState::Stopped`].
pub(super) async fn run(owner: Owner) {
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
        login,
        login_asked,
        login_now,
    } = owner;
    let id = handler.server.clone();
    let report = |s: ConnState| {
        if let ConnState::Failed { error, needs_login, .. } = &s {
            *last_error_at.locked() = Some(LastFailure {
                error: error.clone(),
                at: crate::util::now_unix(),
                needs_login: needs_login.clone(),
            });
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
                r = crate::telemetry::global().traced(
                    "mcp_bridge.connect",
                    &id,
                    Failure::kind,
                    connect(&spec, handler.clone(), &timeouts, store.as_ref(), legacy_hint, &cancel),
                ) => r,
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
                let cc = spec.oauth.client_credentials.is_some();
                let ent = spec.oauth.enterprise.is_some();
                let (mut e, needs) = match f {
                    // No login to do: the next attempt gets a new token.
                    Failure::NeedsLogin { .. } if cc => (
                        "the server refused the token got with client credentials (HTTP 401); a new one is fetched on the next attempt".to_owned(),
                        None,
                    ),
                    Failure::NeedsScope(scope) if cc => (
                        format!("the client credentials lack the scope the server asks for ({scope}, HTTP 403): add it to oauth.scopes and grant it to the client at the authorization server"),
                        None,
                    ),
                    // Exchanged again on the next attempt (a fresh ID-JAG).
                    Failure::NeedsLogin { .. } if ent => (
                        "the server refused the token got through the identity provider (HTTP 401); a new one is exchanged on the next attempt".to_owned(),
                        None,
                    ),
                    Failure::NeedsScope(scope) if ent => (
                        format!("the token got through the identity provider lacks the scope the server asks for ({scope}, HTTP 403): add it to oauth.scopes and have the identity provider and the server's authorization server grant it"),
                        None,
                    ),
                    // The IdP's login is gone: typed as a login to do, which
                    // only `mcp-bridge login --idp` does (never a browser here).
                    Failure::NeedsIdpLogin(e) => (e, Some(NeedsLogin::Login)),
                    Failure::NeedsLogin { .. } => (
                        format!("{NEEDS_LOGIN} (HTTP 401): run `mcp-bridge login {id}`"),
                        Some(NeedsLogin::Login),
                    ),
                    Failure::NeedsScope(scope) => (
                        format!(
                            "{NEEDS_LOGIN} with more access ({scope}, HTTP 403): run `mcp-bridge login {id} --scope {}`",
                            scope.replace(' ', " --scope ")
                        ),
                        Some(NeedsLogin::MoreScope(scope)),
                    ),
                    Failure::Other(e) => (e, None),
                };
                // A server that needs a login (or more scope): start the
                // browser flow once per episode (one process among several
                // opens the tab), and retry as soon as it is done.
                let mut login_started = false;
                // A call asked for a login: start one even if one was tried
                // this outage.
                let asked = login_asked.load(std::sync::atomic::Ordering::SeqCst);
                if let Some(needs) = &needs
                    && !spec.oauth.headless()
                    && (!auto_login_tried || asked)
                    && !login_running.load(std::sync::atomic::Ordering::SeqCst)
                    && let Some(lazy) = &store
                    && let Some(wait) = lazy.auto_login
                    && let Some(tokens) = lazy.get().await
                {
                    // Taken only by a login that starts: a call that asked
                    // while none could start still gets one.
                    let by_call = login_asked.swap(false, std::sync::atomic::Ordering::SeqCst);
                    auto_login_tried = true;
                    login_started = true;
                    let (spec2, retry, events, id) = (spec.clone(), retry_now.clone(), events.clone(), id.clone());
                    let (needs, root) = (needs.clone(), cancel.clone());
                    let running = login_running.clone();
                    running.store(true, std::sync::atomic::Ordering::SeqCst);
                    let status = login.clone();
                    super::login::started(&status);
                    let show = super::login::IdeShow::new(
                        id.clone(),
                        handler.ide.clone(),
                        Some(status.clone()),
                        by_call,
                        wait,
                    );
                    let show: Option<Arc<dyn crate::auth::oauth::ShowLink>> = Some(Arc::new(show));
                    tokio::spawn(async move {
                        let login = async {
                            match needs {
                                NeedsLogin::Login => crate::auth::auto::login(&spec2, tokens, wait, show).await,
                                NeedsLogin::MoreScope(s) => {
                                    crate::auth::auto::step_up(&spec2, tokens, &s, wait, show).await
                                }
                            }
                        };
                        // Shutting down ends the login (its loopback listener
                        // and the cross-process login lock go with it); calls
                        // waiting on it are told.
                        let ok = tokio::select! {
                            _ = root.cancelled() => {
                                super::login::ended(&status, false);
                                return;
                            }
                            ok = crate::telemetry::global().traced(
                                "mcp_bridge.login",
                                &id,
                                |_| "login_failed",
                                async { if login.await { Ok(()) } else { Err(()) } },
                            ) => ok.is_ok(),
                        };
                        running.store(false, std::sync::atomic::Ordering::SeqCst);
                        super::login::ended(&status, ok);
                        if ok {
                            retry.notify_one();
                        } else {
                            let _ = events.send(UpstreamEvent::Settled { server: id });
                        }
                    });
                }
                if needs.is_some() && auto_login_tried {
                    e = format!("{e} (a login was started)");
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
                    needs_login: needs,
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
                    // Try once more first: another process may have logged in.
                    _ = login_now.notified() => continue,
                    _ = tokio::time::sleep(crate::util::backoff(attempt, secs(timeouts.backoff_max))) => continue,
                }
            }
        };
        auto_login_tried = false;
        // Connected: what calls asked of the outage before is answered. A
        // permit left by a request that failed on the old connection would
        // otherwise end this one at once.
        login_asked.store(false, std::sync::atomic::Ordering::SeqCst);
        let _ = futures::FutureExt::now_or_never(login_now.notified());
        let _ = futures::FutureExt::now_or_never(reconnect.notified());
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
            needs_login: None,
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
            tokio::select! {
                _ = ct.cancelled() => return,
                _ = tokio::time::sleep(crate::util::backoff(attempt, Duration::from_secs(30))) => {}
            }
        }
    });
    cancel
}
