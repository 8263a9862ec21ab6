//! Logins the bridge starts while serving, and where their link goes.
//!
//! A login belongs to the server's owner task (one at a time per server). Its
//! progress is published in a [`LoginStatus`] that calls can wait on, and its
//! authorization link is shown through the IDE when the IDE can open links:
//! - a 2025-11-25 IDE that declared `elicitation.url` is sent a URL-mode
//!   `elicitation/create`, then `notifications/elicitation/complete` when the
//!   login ends;
//! - a 2026-07-28 IDE cannot be sent requests: when one of its calls asked for
//!   the login, the link waits in the status for that call to hand out as an
//!   input round (`downstream::login`);
//! - otherwise the browser opens, as `mcp-bridge login` does.
//!
//! This is URL mode's intended use: the bridge is the OAuth client of a
//! third-party resource (the upstream), not the IDE's MCP server authorising
//! the IDE.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rmcp::model::{CustomNotification, ElicitRequestParams, ElicitationAction, ServerNotification};
use tokio::sync::watch;

use super::client::IdeLink;
use crate::auth::oauth::{LoginLink, ShowLink, Shown};

/// Longest wait for a 2025-11-25 IDE to answer the link before the browser
/// opens as well (the login itself goes on waiting for the user).
const IDE_ANSWER: Duration = Duration::from_secs(60);

/// How the latest login of a server ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    LoggedIn,
    /// The user declined the link in the IDE.
    Declined,
    /// Timed out, refused by the authorization server, or could not start.
    Failed,
}

/// The login of one server as calls see it.
#[derive(Debug, Clone, Default)]
pub struct LoginStatus {
    /// Counts the logins started; a caller waits for a given round to end.
    pub round: u64,
    pub running: bool,
    /// The running login's authorization link, once it has one.
    pub url: Option<String>,
    /// How the round ended (`None` while it runs).
    pub outcome: Option<LoginOutcome>,
}

/// The status a server's owner publishes and its handle reads.
pub type StatusCell = Arc<watch::Sender<LoginStatus>>;

/// Mark a new round as started.
pub fn started(status: &StatusCell) {
    status.send_modify(|s| {
        s.round += 1;
        s.running = true;
        s.url = None;
        s.outcome = None;
    });
}

/// Mark the running round as ended (a decline seen by [`IdeShow`] is kept);
/// its link, whose listener is gone, is no longer handed out.
pub fn ended(status: &StatusCell, ok: bool) {
    status.send_modify(|s| {
        s.running = false;
        s.url = None;
        s.outcome = Some(match (ok, s.outcome) {
            (true, _) => LoginOutcome::LoggedIn,
            (false, Some(LoginOutcome::Declined)) => LoginOutcome::Declined,
            (false, _) => LoginOutcome::Failed,
        });
    });
}

/// Wait until `status` satisfies `done` (at most `wait`); the status then.
pub async fn wait_for(status: &StatusCell, wait: Duration, done: impl Fn(&LoginStatus) -> bool) -> Option<LoginStatus> {
    let mut rx = status.subscribe();
    let found = tokio::time::timeout(wait, rx.wait_for(|s| done(s))).await;
    match found {
        Ok(Ok(s)) => Some(s.clone()),
        _ => None,
    }
}

/// Shows a login's link through the IDE where it can (see the module doc).
pub struct IdeShow {
    pub server: Arc<str>,
    pub ide: Arc<IdeLink>,
    /// Where the link is published for calls; `None` for a step-up, which a
    /// call waits for in place.
    pub status: Option<StatusCell>,
    /// A 2026-07-28 IDE's call asked for this login and hands the link out.
    pub by_call: bool,
    /// How long the login waits for the user.
    pub timeout: Duration,
    /// The elicitation sent, to be completed when the login ends.
    sent: std::sync::OnceLock<String>,
}

impl IdeShow {
    pub fn new(
        server: Arc<str>,
        ide: Arc<IdeLink>,
        status: Option<StatusCell>,
        by_call: bool,
        timeout: Duration,
    ) -> IdeShow {
        IdeShow {
            server,
            ide,
            status,
            by_call,
            timeout,
            sent: std::sync::OnceLock::new(),
        }
    }
}

/// What the IDE shows with a login link: which server, and where the link goes.
pub fn link_message(server: &str, url: &str) -> String {
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    format!(
        "The MCP server '{server}' needs you to log in. Open the link to sign in at {host}; \
         mcp-bridge continues by itself when you are done."
    )
}

impl ShowLink for IdeShow {
    fn show<'a>(&'a self, link: &'a LoginLink) -> BoxFuture<'a, Shown> {
        Box::pin(async move {
            if let Some(s) = &self.status {
                s.send_modify(|s| s.url = Some(link.url.clone()));
            }
            let modern = self.ide.is_modern();
            let peer = match self.ide.peer() {
                Some(p) if !modern && self.ide.capabilities().elicitation.is_some_and(|e| e.url.is_some()) => p,
                _ if modern && self.by_call => return Shown::Shown,
                _ => return Shown::Unable,
            };
            let params = ElicitRequestParams::UrlElicitationParams {
                meta: None,
                message: link_message(&self.server, &link.url),
                url: link.url.clone(),
                elicitation_id: link.id.clone(),
            };
            let _ = self.sent.set(link.id.clone());
            tracing::info!(server = %self.server, "offering the login link to the IDE");
            // An IDE that does not answer in time gets the browser too.
            let answer = self.timeout.min(IDE_ANSWER);
            match peer.create_elicitation_with_timeout(params, Some(answer)).await {
                Ok(r) if r.action == ElicitationAction::Accept => Shown::Shown,
                Ok(_) => {
                    tracing::warn!(server = %self.server, "the login to {} was declined in the IDE", self.server);
                    if let Some(s) = &self.status {
                        s.send_modify(|s| s.outcome = Some(LoginOutcome::Declined));
                    }
                    Shown::Declined
                }
                Err(e) => {
                    tracing::debug!(server = %self.server, "the IDE did not take the login link ({e}): opening the browser");
                    Shown::Unable
                }
            }
        })
    }

    fn finished(&self, _link: &LoginLink, ok: bool) {
        let (Some(id), Some(peer)) = (self.sent.get(), self.ide.peer()) else {
            return;
        };
        if !ok {
            return;
        }
        // rmcp 3.11 has no typed `notifications/elicitation/complete` (rmcp.md #21).
        let note = CustomNotification::new(
            "notifications/elicitation/complete",
            Some(serde_json::json!({ "elicitationId": id })),
        );
        let peer = peer.clone();
        tokio::spawn(async move {
            let _ = peer
                .send_notification(ServerNotification::CustomNotification(note))
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rounds_and_outcomes() {
        let cell: StatusCell = Arc::new(watch::channel(LoginStatus::default()).0);
        started(&cell);
        let waiting = {
            let cell = cell.clone();
            tokio::spawn(async move { wait_for(&cell, Duration::from_secs(5), |s| s.round >= 1 && !s.running).await })
        };
        cell.send_modify(|s| {
            s.outcome = Some(LoginOutcome::Declined);
            s.url = Some("http://127.0.0.1:1/authorize".into());
        });
        ended(&cell, false);
        let s = waiting.await.unwrap().unwrap();
        assert_eq!((s.round, s.outcome), (1, Some(LoginOutcome::Declined)));
        assert_eq!(s.url, None, "an ended login's link is not handed out");
        started(&cell);
        assert_eq!(cell.borrow().outcome, None, "a new round forgets the last outcome");
        ended(&cell, false);
        assert_eq!(cell.borrow().outcome, Some(LoginOutcome::Failed));
        started(&cell);
        ended(&cell, true);
        assert_eq!(
            (cell.borrow().round, cell.borrow().outcome),
            (3, Some(LoginOutcome::LoggedIn))
        );
    }

    #[tokio::test]
    async fn a_wait_that_is_not_met_ends() {
        let cell: StatusCell = Arc::new(watch::channel(LoginStatus::default()).0);
        started(&cell);
        assert!(
            wait_for(&cell, Duration::from_millis(10), |s| !s.running)
                .await
                .is_none()
        );
    }
}
