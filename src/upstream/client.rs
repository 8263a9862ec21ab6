//! The `ClientHandler` each upstream connection runs: it relays what a server
//! sends on its own initiative (progress, list changes, resource updates, and
//! sampling/elicitation/roots requests) to the IDE side.

#![allow(deprecated)] // sampling and roots are deprecated in 2026-07-28 but still relayed

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

/// Upstream progress token -> the IDE's token, for calls in flight on one connection.
pub type ProgressMap = Arc<Mutex<HashMap<ProgressToken, ProgressToken>>>;

/// The IDE side, as upstream handlers see it: set once the IDE has initialised.
#[derive(Default)]
pub struct IdeLink {
    peer: OnceLock<Peer<RoleServer>>,
    caps: OnceLock<ClientCapabilities>,
}

impl IdeLink {
    pub fn set(&self, peer: Peer<RoleServer>, caps: ClientCapabilities) {
        let _ = self.caps.set(caps);
        let _ = self.peer.set(peer);
    }

    pub fn peer(&self) -> Option<&Peer<RoleServer>> {
        self.peer.get()
    }

    /// The capabilities the IDE declared, mirrored upstream on its behalf.
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
    Lists {
        server: Arc<str>,
        url: String,
        lists: crate::catalog::ServerLists,
    },
    ResourceUpdated {
        server: Arc<str>,
        uri: String,
    },
    /// The connection state changed (for status and list-changed bookkeeping).
    State {
        server: Arc<str>,
    },
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
        params: CreateMessageRequestParams,
        _ctx: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        let ide = self.ide.peer().ok_or_else(|| no_ide("sampling"))?;
        if self.ide.capabilities().sampling.is_none() || self.ide.is_modern() {
            return Err(McpError::method_not_found::<rmcp::model::CreateMessageRequestMethod>());
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

    async fn on_progress(&self, mut p: ProgressNotificationParam, _ctx: NotificationContext<RoleClient>) {
        let token = self
            .progress
            .lock()
            .expect("progress map")
            .get(&p.progress_token)
            .cloned();
        if let (Some(token), Some(ide)) = (token, self.ide.peer()) {
            p.progress_token = token;
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

    async fn on_logging_message(&self, p: LoggingMessageNotificationParam, _ctx: NotificationContext<RoleClient>) {
        let server = &*self.server;
        let data = &p.data;
        match p.level {
            LoggingLevel::Debug => tracing::debug!(server, ?data, "upstream log"),
            LoggingLevel::Info | LoggingLevel::Notice => tracing::info!(server, ?data, "upstream log"),
            LoggingLevel::Warning => tracing::warn!(server, ?data, "upstream log"),
            _ => tracing::error!(server, ?data, "upstream log"),
        }
    }

    async fn on_custom_notification(&self, n: CustomNotification, _ctx: NotificationContext<RoleClient>) {
        // `notifications/elicitation/complete` has no typed variant in rmcp 3.11
        // (rmcp.md #21): relay it to a legacy IDE as is.
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
