//! The `ClientHandler` each upstream connection runs: it relays what a server
//! sends on its own initiative (progress, list changes, resource updates, and
//! sampling/elicitation/roots requests) to the IDE side.

#![allow(deprecated)] // sampling and roots are deprecated in 2026-07-28 but still relayed

use crate::util::Locked;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rmcp::model::{
    ClientCapabilities, ClientConfig, CreateMessageRequestParams, CreateMessageResult, CustomNotification,
    ElicitRequestParams, ElicitResult, ElicitationAction, Implementation, ListRootsResult, LoggingLevel,
    LoggingMessageNotificationParam, ProgressNotificationParam, ProgressToken, ResourceUpdatedNotificationParam,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ClientHandler, ErrorData as McpError, Peer, RoleClient, RoleServer};
use tokio::sync::{Notify, mpsc};

/// Routes progress notifications of one connection back to the IDE's tokens.
///
/// rmcp replaces the progress token of every outbound request with its own,
/// and hands the bridge that token only after the request is queued.
/// A fast server can send progress before the bridge has recorded the mapping, so
/// notifications for a token not yet registered are held briefly (bounded in count
/// and age) and released when the call registers it. rmcp also runs each
/// notification handler in its own task, so a notification sent just before the
/// response can be routed just after it: a finished call's mapping is kept for a
/// short grace period so that such stragglers still reach the IDE. Since those
/// tasks can also run out of order, a notification whose progress does not
/// increase is dropped: the spec requires progress to increase per token.
#[derive(Default)]
pub struct ProgressRouter {
    inner: Mutex<ProgressInner>,
}

#[derive(Default)]
struct ProgressInner {
    /// Upstream token -> IDE token (`None`: the IDE asked for no progress).
    live: HashMap<ProgressToken, Option<(ProgressToken, f64)>>,
    early: HashMap<ProgressToken, (std::time::Instant, Vec<ProgressNotificationParam>)>,
    /// Recently finished calls: (upstream token, IDE token, when).
    finished: std::collections::VecDeque<(ProgressToken, (ProgressToken, f64), std::time::Instant)>,
}

const EARLY_TOKENS: usize = 64;
const EARLY_PER_TOKEN: usize = 32;
const EARLY_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(10);
const FINISHED_KEEP: usize = 64;
const FINISHED_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

pub type ProgressMap = Arc<ProgressRouter>;

impl ProgressRouter {
    /// A notification from upstream: rewritten for the IDE, dropped, or held.
    pub fn route(&self, mut p: ProgressNotificationParam) -> Option<ProgressNotificationParam> {
        let mut g = self.inner.locked();
        match g.live.get_mut(&p.progress_token) {
            Some(Some((ide, last))) => {
                if p.progress <= *last {
                    return None;
                }
                *last = p.progress;
                p.progress_token = ide.clone();
                Some(p)
            }
            Some(None) => None,
            None => {
                let now = std::time::Instant::now();
                if let Some((_, (ide, last), _)) = g
                    .finished
                    .iter_mut()
                    .find(|(up, _, at)| *up == p.progress_token && now.duration_since(*at) < FINISHED_GRACE)
                {
                    if p.progress <= *last {
                        return None;
                    }
                    *last = p.progress;
                    p.progress_token = ide.clone();
                    return Some(p);
                }
                g.early.retain(|_, (t, _)| now.duration_since(*t) < EARLY_MAX_AGE);
                if g.early.len() < EARLY_TOKENS || g.early.contains_key(&p.progress_token) {
                    let e = g
                        .early
                        .entry(p.progress_token.clone())
                        .or_insert_with(|| (now, Vec::new()));
                    if e.1.len() < EARLY_PER_TOKEN {
                        e.1.push(p);
                    }
                }
                None
            }
        }
    }

    /// A call started: map `upstream` to the IDE's token and release anything
    /// that arrived early, already rewritten.
    pub fn register(&self, upstream: ProgressToken, ide: Option<ProgressToken>) -> Vec<ProgressNotificationParam> {
        let mut g = self.inner.locked();
        let mut early = g.early.remove(&upstream).map(|(_, v)| v).unwrap_or_default();
        let Some(ide) = ide else {
            g.live.insert(upstream, None);
            return Vec::new();
        };
        early.sort_by(|a, b| a.progress.total_cmp(&b.progress));
        early.dedup_by(|a, b| a.progress == b.progress);
        let last = early.last().map(|p| p.progress).unwrap_or(f64::NEG_INFINITY);
        g.live.insert(upstream, Some((ide.clone(), last)));
        early
            .into_iter()
            .map(|mut p| {
                p.progress_token = ide.clone();
                p
            })
            .collect()
    }

    /// The call ended: forget its token.
    pub fn unregister(&self, upstream: &ProgressToken) {
        let mut g = self.inner.locked();
        if let Some(Some(ide)) = g.live.remove(upstream) {
            if g.finished.len() >= FINISHED_KEEP {
                g.finished.pop_front();
            }
            g.finished.push_back((upstream.clone(), ide, std::time::Instant::now()));
        }
        g.early.remove(upstream);
    }

    /// Entries held (for leak checks).
    pub fn len(&self) -> (usize, usize) {
        let g = self.inner.locked();
        (g.live.len(), g.early.len())
    }
}

/// The IDE side, as upstream handlers see it: set once the IDE has initialised.
#[derive(Default)]
pub struct IdeLink {
    peer: OnceLock<Peer<RoleServer>>,
    caps: OnceLock<ClientCapabilities>,
    /// The `clientInfo.name` a 2026-07-28 IDE sent in a request's `_meta`
    /// (it has no `initialize`, so rmcp keeps no peer info).
    named: OnceLock<String>,
    /// Lowest log level the IDE asked for with `logging/setLevel`, as a rank
    /// (0 = debug .. 7 = emergency); until it asks, warnings and above.
    log_level: std::sync::atomic::AtomicU8,
}

fn level_rank(l: LoggingLevel) -> u8 {
    match l {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        _ => 7,
    }
}

impl IdeLink {
    pub fn set(&self, peer: Peer<RoleServer>, caps: ClientCapabilities) {
        let _ = self.caps.set(caps);
        let _ = self.peer.set(peer);
    }

    pub fn peer(&self) -> Option<&Peer<RoleServer>> {
        self.peer.get()
    }

    pub fn set_log_level(&self, level: LoggingLevel) {
        self.log_level
            .store(level_rank(level) + 1, std::sync::atomic::Ordering::Relaxed);
    }

    fn wants_log(&self, level: LoggingLevel) -> bool {
        let set = self.log_level.load(std::sync::atomic::Ordering::Relaxed);
        let min = if set == 0 {
            level_rank(LoggingLevel::Warning)
        } else {
            set - 1
        };
        level_rank(level) >= min
    }

    /// The capabilities the IDE declared, mirrored upstream on its behalf.
    /// The IDE's `clientInfo.name` (for per-IDE presets).
    pub fn client_name(&self) -> Option<String> {
        match self.peer.get().and_then(|p| p.peer_info()) {
            Some(info) => Some(info.client_info.name.clone()),
            None => self.named.get().cloned(),
        }
    }

    /// Remember the name a 2026-07-28 IDE gave in a request's `_meta`; whether
    /// it is new (the first, and no `initialize` named the IDE).
    pub fn learn_name(&self, name: &str) -> bool {
        !self.has_name() && self.named.set(name.to_owned()).is_ok()
    }

    /// Whether the IDE has named itself (in `initialize` or a request's
    /// `_meta`): a check without copying the name, made on every call.
    pub fn has_name(&self) -> bool {
        self.named.get().is_some() || self.peer.get().and_then(|p| p.peer_info()).is_some()
    }

    pub fn capabilities(&self) -> ClientCapabilities {
        self.caps.get().cloned().unwrap_or_default()
    }

    /// Whether the IDE speaks 2026-07-28 or later (no server-to-client requests).
    pub fn is_modern(&self) -> bool {
        self.peer
            .get()
            .and_then(|p| p.peer_info())
            .map(|i| !i.protocol_version.has_initialize())
            .unwrap_or(true)
    }
}

/// Events an upstream connection reports to the bridge.
#[derive(Debug)]
pub enum UpstreamEvent {
    /// A connection attempt has an outcome (listed, failed to list, or failed
    /// to connect): the server's first listing is no longer awaited. Sent after
    /// the `Lists` of the same attempt, so the catalog already has them.
    Settled {
        server: Arc<str>,
    },
    Lists {
        server: Arc<str>,
        url: String,
        /// Listed over a 2025-11-25 (or older) connection.
        legacy: bool,
        lists: crate::catalog::ServerLists,
    },
    ResourceUpdated {
        server: Arc<str>,
        uri: String,
    },
    /// Answered once every event sent before it has been applied.
    Flush(tokio::sync::oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct UpstreamClient {
    pub server: Arc<str>,
    pub ide: Arc<IdeLink>,
    pub progress: ProgressMap,
    pub refresh: Arc<Notify>,
    pub events: mpsc::UnboundedSender<UpstreamEvent>,
}

fn no_ide(what: &str) -> McpError {
    McpError::internal_error(
        format!("the IDE has not connected, so {what} cannot be forwarded"),
        None,
    )
}

fn ide_error(e: rmcp::ServiceError) -> McpError {
    match e {
        rmcp::ServiceError::McpError(e) => e,
        other => McpError::internal_error(format!("IDE did not answer: {other}"), None),
    }
}

impl ClientHandler for UpstreamClient {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            self.ide.capabilities(),
            Implementation::new("mcp-bridge", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn create_message(
        &self,
        mut params: CreateMessageRequestParams,
        _ctx: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        let ide = self.ide.peer().ok_or_else(|| no_ide("sampling"))?;
        if self.ide.capabilities().sampling.is_none() || self.ide.is_modern() {
            return Err(McpError::method_not_found::<rmcp::model::CreateMessageRequestMethod>());
        }
        // "thisServer"/"allServers" would make the IDE include context of the
        // bridge as a whole, which is not what the upstream meant (and both values
        // are deprecated): ask for none.
        if params.include_context.is_some() {
            params.include_context = Some(rmcp::model::ContextInclusion::None);
        }
        ide.create_message(params).await.map_err(ide_error)
    }

    async fn create_elicitation(
        &self,
        params: ElicitRequestParams,
        _ctx: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        let Some(ide) = self.ide.peer() else {
            return Err(no_ide("elicitation"));
        };
        if self.ide.capabilities().elicitation.is_none() || self.ide.is_modern() {
            // The IDE cannot show it: declining is what a client without the
            // capability would answer.
            return Ok(ElicitResult::new(ElicitationAction::Decline));
        }
        ide.create_elicitation(params).await.map_err(ide_error)
    }

    async fn list_roots(&self, _ctx: RequestContext<RoleClient>) -> Result<ListRootsResult, McpError> {
        match self.ide.peer() {
            Some(ide) if self.ide.capabilities().roots.is_some() && !self.ide.is_modern() => {
                ide.list_roots().await.map_err(ide_error)
            }
            _ => Ok(ListRootsResult::default()),
        }
    }

    async fn on_progress(&self, p: ProgressNotificationParam, _ctx: NotificationContext<RoleClient>) {
        if let (Some(p), Some(ide)) = (self.progress.route(p), self.ide.peer()) {
            let _ = ide.notify_progress(p).await;
        }
    }

    async fn on_tool_list_changed(&self, _ctx: NotificationContext<RoleClient>) {
        self.refresh.notify_one();
    }

    async fn on_prompt_list_changed(&self, _ctx: NotificationContext<RoleClient>) {
        self.refresh.notify_one();
    }

    async fn on_resource_list_changed(&self, _ctx: NotificationContext<RoleClient>) {
        self.refresh.notify_one();
    }

    async fn on_resource_updated(&self, p: ResourceUpdatedNotificationParam, _ctx: NotificationContext<RoleClient>) {
        let _ = self.events.send(UpstreamEvent::ResourceUpdated {
            server: self.server.clone(),
            uri: p.uri,
        });
    }

    async fn on_logging_message(&self, mut p: LoggingMessageNotificationParam, _ctx: NotificationContext<RoleClient>) {
        let server = &*self.server;
        let data = &p.data;
        match p.level {
            LoggingLevel::Debug => tracing::debug!(server, ?data, "upstream log"),
            LoggingLevel::Info | LoggingLevel::Notice => tracing::info!(server, ?data, "upstream log"),
            LoggingLevel::Warning => tracing::warn!(server, ?data, "upstream log"),
            _ => tracing::error!(server, ?data, "upstream log"),
        }
        // Relay to a legacy IDE at or above the level it asked for, with the
        // server's name in the logger so the IDE can tell servers apart.
        if let Some(ide) = self.ide.peer()
            && !self.ide.is_modern()
            && self.ide.wants_log(p.level)
        {
            p.logger = Some(match p.logger.take() {
                Some(l) => format!("{server}/{l}"),
                None => server.to_owned(),
            });
            let _ = ide.notify_logging_message(p).await;
        }
    }

    async fn on_custom_notification(&self, n: CustomNotification, _ctx: NotificationContext<RoleClient>) {
        // `notifications/elicitation/complete` has no typed variant in rmcp 3.11:
        // relay it to a legacy IDE as is.
        if n.method == "notifications/elicitation/complete"
            && let Some(ide) = self.ide.peer()
            && !self.ide.is_modern()
        {
            let _ = ide
                .send_notification(rmcp::model::ServerNotification::CustomNotification(n))
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::NumberOrString;

    fn tok(n: i64) -> ProgressToken {
        ProgressToken(NumberOrString::Number(n))
    }

    /// Progress that arrives before the call registered its token is released,
    /// rewritten, on registration; nothing is kept after the call ends.
    #[test]
    fn early_progress_is_released_on_register() {
        let r = ProgressRouter::default();
        assert!(r.route(ProgressNotificationParam::new(tok(1), 1.0)).is_none());
        let early = r.register(tok(1), Some(tok(99)));
        assert_eq!(early.len(), 1);
        assert_eq!(early[0].progress_token, tok(99));
        let p = r.route(ProgressNotificationParam::new(tok(1), 2.0)).unwrap();
        assert_eq!(p.progress_token, tok(99));
        // Out of order: progress must increase, so a regression is dropped.
        assert!(r.route(ProgressNotificationParam::new(tok(1), 1.5)).is_none());
        r.unregister(&tok(1));
        assert_eq!(r.len(), (0, 0));
        // A straggler right after the end still reaches the IDE.
        assert_eq!(
            r.route(ProgressNotificationParam::new(tok(1), 3.0))
                .unwrap()
                .progress_token,
            tok(99)
        );
    }

    /// Calls without an IDE token drop their progress; held entries are bounded.
    #[test]
    fn unwanted_progress_is_dropped_and_bounded() {
        let r = ProgressRouter::default();
        r.register(tok(1), None);
        assert!(r.route(ProgressNotificationParam::new(tok(1), 1.0)).is_none());
        for i in 0..1000 {
            r.route(ProgressNotificationParam::new(tok(1000 + i), 1.0));
        }
        assert!(r.len().1 <= EARLY_TOKENS);
    }
}
