//! One remote MCP server, as the rest of the bridge sees it: the
//! [`UpstreamHandle`], its connection state ([`ConnState`]) and the one way to
//! send it a request ([`UpstreamHandle::request`]).
//!
//! An owner task per server ([`owner`]) connects, lists and reconnects. Calls do
//! not go through it: they take the current [`Peer`] from the handle's `watch`
//! channel and talk to the server directly, so the task is never on the hot path
//! and one slow call never blocks another. A failure here stays here: the task
//! logs it, publishes it in [`ConnState`], and retries. What rmcp's errors mean
//! is read in [`errors`]; the IDE-facing words for them are `downstream`'s.

pub mod client;
pub mod errors;
pub mod http;
pub mod login;
mod owner;

use crate::util::Locked;
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{CancelledNotificationParam, ClientRequest, ProgressToken, ProtocolVersion, ServerResult};
use rmcp::service::PeerRequestOptions;
use rmcp::{Peer, RoleClient, RoleServer};
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

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
        /// Set when the server refused the bridge for want of a login.
        needs_login: Option<NeedsLogin>,
    },
    Stopped,
}

/// The login a server asked for before it lets the bridge in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NeedsLogin {
    /// HTTP 401: there is no login, or the server refused the stored one.
    Login,
    /// HTTP 403 `insufficient_scope`: a login that also grants these scopes.
    MoreScope(String),
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

/// Why one request sent with [`UpstreamHandle::request`] has no result.
#[derive(Debug)]
pub struct RequestError {
    pub server: String,
    pub url: String,
    pub failure: RequestFailure,
}

/// What went wrong with a request; `downstream` puts it in the IDE's words.
#[derive(Debug)]
pub enum RequestFailure {
    /// There was no connection to send it on.
    Unavailable(UpstreamError),
    /// HTTP 403 `insufficient_scope`, and a step-up login did not help (or
    /// could not be started): the scopes the server asks for.
    NeedsScope(String),
    /// HTTP 401 on a live connection: the server no longer takes the login
    /// (revoked, expired) and did not run the request. The owner has been
    /// told to connect again, which starts a new login.
    LoginRefused,
    /// HTTP 401 for a server whose tokens the bridge gets itself (client
    /// credentials, enterprise), twice: once with the token it had, once with
    /// a new one. The server ran nothing; the owner connects again.
    TokenRefused,
    /// The IDE cancelled the request; the server was told.
    Cancelled,
    /// rmcp's error: the server's own, a timeout (`timeout` seconds without a
    /// result or progress), or the connection.
    Service { error: rmcp::ServiceError, timeout: f64 },
}

/// What a request brings from the IDE that sent it.
pub struct Caller<'a> {
    /// The IDE's progress token: the server's progress is delivered under it.
    pub progress: Option<ProgressToken>,
    /// Where progress that came before the token was mapped is delivered.
    pub ide: &'a Peer<RoleServer>,
    /// Cancelled when the IDE cancels the request.
    pub cancelled: &'a CancellationToken,
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

/// The most recent failure of a server, kept after recovery for `mcp-bridge status`.
#[derive(Clone, Debug)]
pub struct LastFailure {
    pub error: String,
    /// Unix seconds.
    pub at: u64,
    pub needs_login: Option<NeedsLogin>,
}

type LastError = Arc<std::sync::Mutex<Option<LastFailure>>>;

/// The handle the rest of the bridge holds for one server.
pub struct UpstreamHandle {
    pub spec: ServerSpec,
    pub id: Arc<str>,
    state: watch::Receiver<ConnState>,
    last_error: LastError,
    pub progress: ProgressMap,
    reconnect: Arc<Notify>,
    cancel: CancellationToken,
    task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Where this server's credentials live, for step-up.
    store: Option<crate::auth::oauth::Store>,
    /// The IDE, which may show a login's link.
    ide: Arc<IdeLink>,
    /// The owner's logins, as calls see them.
    login: login::StatusCell,
    login_asked: Arc<std::sync::atomic::AtomicBool>,
    login_now: Arc<Notify>,
}

impl UpstreamHandle {
    /// Start the owner task for `spec`, under a child of `parent`.
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
        let login: login::StatusCell = Arc::new(watch::channel(login::LoginStatus::default()).0);
        let login_now = Arc::new(Notify::new());
        let login_asked = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let handler = UpstreamClient {
            server: id.clone(),
            ide: ide.clone(),
            progress: progress.clone(),
            refresh: refresh.clone(),
            events: events.clone(),
        };
        let task = tokio::spawn(owner::run(owner::Owner {
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
            login: login.clone(),
            login_asked: login_asked.clone(),
            login_now: login_now.clone(),
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
            ide,
            login,
            login_asked,
            login_now,
        })
    }

    /// How long a login this bridge starts may wait for the user; `None` when
    /// it starts none (`[auth] auto_login` off, or no credential store).
    pub fn login_wait(&self) -> Option<Duration> {
        self.store.as_ref().and_then(|s| s.auto_login)
    }

    /// The server's latest login.
    pub fn login_status(&self) -> login::LoginStatus {
        self.login.borrow().clone()
    }

    /// Ask for a login for a call: the one running, else a new one the owner
    /// starts (after one more connection attempt). Returns its round.
    pub fn ask_login(&self) -> u64 {
        let s = self.login.borrow();
        if s.running {
            return s.round;
        }
        self.login_asked.store(true, std::sync::atomic::Ordering::SeqCst);
        self.login_now.notify_one();
        s.round + 1
    }

    /// Wait (at most `wait`) until login `round` has a link, or has ended;
    /// `None` also when the server connects (or stops) first, with no login.
    pub async fn login_link(&self, round: u64, wait: Duration) -> Option<login::LoginStatus> {
        let state = self.fresh_state();
        tokio::select! {
            s = login::wait_for(&self.login, wait, |s| s.round >= round && (s.url.is_some() || !s.running)) => s,
            _ = connected_or_stopped(state) => None,
        }
    }

    /// Wait (at most `wait`) until login `round` (or a later one) has ended.
    /// After a successful one, the owner connects again: wait for that too
    /// (within `ready_wait`), so that the next request finds the connection.
    /// A server that connects first (another process logged in, a refresh
    /// worked) counts as logged in; one that stops, as no outcome.
    pub async fn login_ended(&self, round: u64, wait: Duration, ready_wait: Duration) -> Option<login::LoginOutcome> {
        let mut state = self.fresh_state();
        let s = tokio::select! {
            s = login::wait_for(&self.login, wait, |s| s.round >= round && !s.running) => s?,
            ready = connected_or_stopped(self.fresh_state()) => {
                return ready.then_some(login::LoginOutcome::LoggedIn);
            }
        };
        let outcome = s.outcome?;
        if outcome == login::LoginOutcome::LoggedIn {
            // The owner leaves `Failed` once it is told of the login (it may
            // report `Failed` again for attempts made while the login ran).
            let _ = tokio::time::timeout(ready_wait, state.wait_for(|s| !matches!(s, ConnState::Failed { .. }))).await;
        }
        Some(outcome)
    }

    /// A receiver of the connection state that has seen the current one.
    fn fresh_state(&self) -> watch::Receiver<ConnState> {
        let mut rx = self.state.clone();
        rx.borrow_and_update();
        rx
    }

    pub fn state(&self) -> ConnState {
        self.state.borrow().clone()
    }

    /// The most recent failure, if there was one (kept after recovery).
    pub fn last_failure(&self) -> Option<LastFailure> {
        self.last_error.locked().clone()
    }

    /// The login the server waits for: its last failure was a refused login,
    /// and it has not connected since.
    pub fn needs_login(&self) -> Option<NeedsLogin> {
        // Asked on every call: no copy of the state, nor of the failure's text.
        if matches!(*self.state.borrow(), ConnState::Ready { .. }) {
            return None;
        }
        self.last_error.locked().as_ref()?.needs_login.clone()
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
    async fn reconnect(&self, wait: Duration) -> Result<Peer<RoleClient>, UpstreamError> {
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
                ConnState::Failed { error, attempt, .. } if attempt > 1 => {
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

    /// Send one request for `caller` and wait for its result, on the live
    /// connection (waiting up to `ready_wait` for one).
    ///
    /// A server that answers 403 `insufficient_scope` gets one step-up: a new
    /// login for the union of the scopes (from `serve`, when the bridge may open
    /// a browser), a reconnect with the new tokens, and the request sent once
    /// more. Nothing else is ever resent: a call may not be idempotent.
    pub async fn request(
        &self,
        request: ClientRequest,
        timeouts: &Timeouts,
        caller: Caller<'_>,
    ) -> Result<ServerResult, RequestError> {
        let wait = secs(timeouts.ready_wait);
        let peer = self
            .peer(wait)
            .await
            .map_err(|e| self.error(RequestFailure::Unavailable(e)))?;
        let scope = match self.send(peer, request.clone(), timeouts, &caller).await {
            Err(RequestFailure::NeedsScope(scope)) => scope,
            // The server ran nothing, and the bridge needs no one to get a
            // token: a new one, and the request sent once more.
            Err(RequestFailure::LoginRefused) if self.spec.oauth.headless() => {
                let peer = self
                    .new_token(wait)
                    .await
                    .map_err(|e| self.error(RequestFailure::Unavailable(e)))?;
                return match self.send(peer, request, timeouts, &caller).await {
                    Err(RequestFailure::LoginRefused) => {
                        self.drop_token().await;
                        self.reconnect.notify_one();
                        Err(self.error(RequestFailure::TokenRefused))
                    }
                    other => other.map_err(|f| self.error(f)),
                };
            }
            other => return other.map_err(|f| self.error(f)),
        };
        if !self.step_up(&scope).await {
            return Err(self.error(RequestFailure::NeedsScope(scope)));
        }
        let peer = self
            .reconnect(wait)
            .await
            .map_err(|e| self.error(RequestFailure::Unavailable(e)))?;
        match self.send(peer, request, timeouts, &caller).await {
            Err(RequestFailure::NeedsScope(_)) => Err(self.error(RequestFailure::NeedsScope(scope))),
            other => other.map_err(|f| self.error(f)),
        }
    }

    fn error(&self, failure: RequestFailure) -> RequestError {
        RequestError {
            server: self.spec.id.clone(),
            url: self.spec.url.clone(),
            failure,
        }
    }

    /// Drop the stored access token the server refused, so that the next
    /// connection of a server whose tokens the bridge gets itself fetches a new
    /// one (its expiry, as the bridge reads it, may not have come).
    async fn drop_token(&self) {
        use rmcp::transport::auth::CredentialStore;
        if let Some(lazy) = self.store.as_ref()
            && let Some(tokens) = lazy.get().await
        {
            let _ = crate::auth::ServerCredentials::new(tokens, &self.spec.url)
                .clear()
                .await;
        }
    }

    /// A new connection with a new token (see [`Self::drop_token`]).
    async fn new_token(&self, wait: Duration) -> Result<Peer<RoleClient>, UpstreamError> {
        self.drop_token().await;
        self.reconnect(wait).await
    }

    /// Log in again asking for `scope` too, when this bridge may start logins.
    /// Returns whether there are new tokens.
    async fn step_up(&self, scope: &str) -> bool {
        let Some(lazy) = self.store.as_ref() else {
            return false;
        };
        let (Some(wait), Some(tokens)) = (lazy.auto_login, lazy.get().await) else {
            return false;
        };
        let show = login::IdeShow::new(self.id.clone(), self.ide.clone(), None, false, wait);
        crate::auth::auto::step_up(&self.spec, tokens, scope, wait, Some(Arc::new(show))).await
    }

    /// Send `request` on `peer` once, with the IDE's progress token mapped and
    /// its cancellation forwarded.
    async fn send(
        &self,
        peer: Peer<RoleClient>,
        request: ClientRequest,
        timeouts: &Timeouts,
        caller: &Caller<'_>,
    ) -> Result<ServerResult, RequestFailure> {
        let timeout = self.spec.call_timeout.unwrap_or(timeouts.call);
        let opts = PeerRequestOptions::with_timeout(secs(timeout))
            .reset_timeout_on_progress()
            .with_max_total_timeout(secs(timeouts.call_max));
        let failed =
            |error: rmcp::ServiceError| match errors::insufficient_scope(error.auth_challenge(), &self.spec.url) {
                Some(scope) => RequestFailure::NeedsScope(scope),
                None if error.is_authorization_required() => {
                    // Only a new connection finds out whether a login is needed
                    // (the refresher may still have a token to try). A server
                    // whose tokens the bridge gets itself is reconnected by
                    // `request`, once the refused token is gone.
                    if !self.spec.oauth.headless() {
                        self.reconnect.notify_one();
                    }
                    RequestFailure::LoginRefused
                }
                None => RequestFailure::Service { error, timeout },
            };
        let handle = peer.send_request_with_option(request, opts).await.map_err(failed)?;
        let up_id = handle.id.clone();
        // rmcp always replaces the progress token on outbound requests:
        // map the upstream's token back to the IDE's for as long as the call runs.
        let up_token = handle.progress_token.clone();
        let early = self.progress.register(up_token.clone(), caller.progress.clone());
        let _progress = ProgressEntry {
            router: self.progress.clone(),
            token: up_token,
        };
        for p in early {
            let _ = caller.ide.notify_progress(p).await;
        }
        // rmcp does not abort the IDE's handler when the IDE cancels: the
        // caller's token says so, and the server is told.
        tokio::select! {
            r = handle.await_response() => r.map_err(failed),
            _ = caller.cancelled.cancelled() => {
                let p = CancelledNotificationParam::new(Some(up_id), Some("cancelled by the client".into()));
                let _ = peer.notify_cancelled(p).await;
                Err(RequestFailure::Cancelled)
            }
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

/// Resolves once the connection state changes to `Ready` (`true`) or
/// `Stopped` (`false`) after `state`'s current value.
async fn connected_or_stopped(mut state: watch::Receiver<ConnState>) -> bool {
    loop {
        if state.changed().await.is_err() {
            return false;
        }
        match *state.borrow_and_update() {
            ConnState::Ready { .. } => return true,
            ConnState::Stopped => return false,
            _ => {}
        }
    }
}

/// Removes a progress-token mapping when the call ends, however it ends.
struct ProgressEntry {
    router: ProgressMap,
    token: ProgressToken,
}

impl Drop for ProgressEntry {
    fn drop(&mut self) {
        self.router.unregister(&self.token);
    }
}
