//! A call to a server that needs a login, from an IDE that can open links
//! (it declared URL-mode elicitation): the call waits for the login and then
//! goes ahead, instead of failing with "run `mcp-bridge login`".
//!
//! - A 2025-11-25 IDE is sent the link by the login itself (an
//!   `elicitation/create` request, `upstream::login`); the call waits for the
//!   login to end.
//! - A 2026-07-28 IDE cannot be sent requests: the call ends with an
//!   input-required round whose only input is the URL elicitation, under
//!   [`INPUT_KEY`], and the bridge's one-time request state. The IDE opens the
//!   link and retries; the retry waits for the login to end. The bridge's
//!   question and state never reach the server.
//!
//! An IDE without URL elicitation gets today's answer at once: the error says
//! to log in, and the browser opens (`upstream::owner`).

use crate::util::Locked;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::RoleServer;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ElicitRequestParams, ElicitResult, ElicitationAction, InputRequest,
    InputRequiredResult, ProgressNotificationParam, Request,
};
use rmcp::service::RequestContext;

use super::Downstream;
use super::call::CallError;
use crate::config::secs;
use crate::upstream::UpstreamHandle;
use crate::upstream::login::{LoginOutcome, link_message};

/// The key of the bridge's login link among a round's input requests.
pub const INPUT_KEY: &str = "mcp-bridge/login";
/// How the bridge's request state starts (the rest is a one-time nonce).
const STATE_PREFIX: &str = "mcp-bridge/login:";
/// How long a 2026-07-28 IDE's call waits for the login to have a link
/// (discovery and client registration: a few round trips).
const LINK_WAIT: Duration = Duration::from_secs(30);
/// How often a call waiting for a login says so.
const PROGRESS_EVERY: Duration = Duration::from_secs(15);
/// Beyond the login's own limit, for the login to report its end.
const END_MARGIN: Duration = Duration::from_secs(5);

/// Login links out to a 2026-07-28 IDE, by nonce.
#[derive(Debug, Default)]
pub struct Logins {
    pending: Mutex<HashMap<String, Offered>>,
}

/// One link handed out: for which server, which login round, and when.
#[derive(Debug)]
struct Offered {
    server: Arc<str>,
    round: u64,
    at: Instant,
}

/// What the call does next.
#[derive(Debug)]
pub enum Gate {
    Go,
    /// End the call with this text as a tool error.
    Refuse(String),
    /// Return this round to a 2026-07-28 IDE.
    Ask(Box<InputRequiredResult>),
}

/// Whether the IDE can open a link it is given.
pub fn opens_links(caps: &ClientCapabilities) -> bool {
    caps.elicitation.as_ref().is_some_and(|e| e.url.is_some())
}

impl Downstream {
    /// Whether the IDE that sent `ctx` can open a link it is given.
    pub(super) fn ide_opens_links(&self, ctx: &RequestContext<RoleServer>) -> bool {
        // A 2026-07-28 IDE declares its capabilities on every request.
        opens_links(&match self.bridge.ide.is_modern() {
            true => ctx.meta.client_capabilities().unwrap_or_default(),
            false => self.bridge.ide.capabilities(),
        })
    }

    /// The login step of a call to `up` (see the module doc); `refused`: the
    /// server has just refused the login (HTTP 401), whatever the bridge knew.
    pub(super) async fn login_gate(
        &self,
        up: &UpstreamHandle,
        params: &mut CallToolRequestParams,
        ctx: &RequestContext<RoleServer>,
        refused: bool,
    ) -> Result<Gate, CallError> {
        let Some(wait) = up.login_wait() else {
            return Ok(Gate::Go);
        };
        let modern = self.bridge.ide.is_modern();
        let not_made = |why: &str| format!("The call to {} was not made: {why}", params.name);
        if modern
            && let Some(nonce) = params
                .request_state
                .as_deref()
                .and_then(|s| s.strip_prefix(STATE_PREFIX))
        {
            let nonce = nonce.to_owned();
            let answer = params.input_responses.as_mut().and_then(|r| r.remove(INPUT_KEY));
            params.request_state = None;
            if params.input_responses.as_ref().is_some_and(|r| r.is_empty()) {
                params.input_responses = None;
            }
            let asked = self.logins.pending.locked().remove(&nonce);
            let Some(Offered { round, at, .. }) = asked.filter(|o| o.server == up.id) else {
                return Ok(Gate::Refuse(not_made(
                    "the login it answers is unknown or was for another server.",
                )));
            };
            let accepted = answer
                .and_then(|v| serde_json::from_value::<ElicitResult>(v).ok())
                .map(|r| r.action == ElicitationAction::Accept);
            return match accepted {
                Some(true) => {
                    self.after_login(up, round, wait.saturating_sub(at.elapsed()), ctx)
                        .await
                }
                Some(false) => Ok(Gate::Refuse(not_made(&format!(
                    "the login to '{}' was declined.",
                    up.id
                )))),
                None => Ok(Gate::Refuse(not_made("the retry carried no answer to the login link."))),
            };
        }
        // No link to show for a server whose tokens the bridge gets itself
        // (client credentials, the IdP's): its login never starts here, and
        // the call fails at once with what to do (`mcp-bridge login --idp`).
        if (!refused && up.needs_login().is_none()) || !self.ide_opens_links(ctx) || up.spec.oauth.headless() {
            return Ok(Gate::Go);
        }
        let round = up.ask_login();
        if !modern {
            // The login sends the IDE its link; wait for it to end.
            return self.after_login(up, round, wait + END_MARGIN, ctx).await;
        }
        let link = tokio::select! {
            s = up.login_link(round, LINK_WAIT) => s,
            _ = ctx.ct.cancelled() => return Err(CallError::Cancelled),
        };
        // No link: the login could not start (or another bridge process runs
        // it); the call fails as it would have.
        let Some((round, url)) = link.and_then(|s| Some((s.round, s.url?))) else {
            return Ok(Gate::Go);
        };
        let nonce = format!("{:032x}", rand::random::<u128>());
        {
            let mut pending = self.logins.pending.locked();
            // Links never followed do not pile up.
            pending.retain(|_, o| o.at.elapsed() <= wait);
            let offered = Offered {
                server: up.id.clone(),
                round,
                at: Instant::now(),
            };
            pending.insert(nonce.clone(), offered);
        }
        let elicit = ElicitRequestParams::UrlElicitationParams {
            meta: None,
            message: link_message(&up.id, &url),
            url,
            elicitation_id: nonce.clone(),
        };
        let requests = [(INPUT_KEY.to_owned(), InputRequest::Elicitation(Request::new(elicit)))]
            .into_iter()
            .collect();
        Ok(Gate::Ask(Box::new(InputRequiredResult::new(
            Some(requests),
            Some(format!("{STATE_PREFIX}{nonce}")),
        ))))
    }

    /// Wait for login `round` of `up` to end (at most `wait`, or until the IDE
    /// cancels the call).
    async fn after_login(
        &self,
        up: &UpstreamHandle,
        round: u64,
        wait: Duration,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<Gate, CallError> {
        let ready = secs(self.bridge.settings().timeouts.ready_wait);
        let status = up.login_status();
        let ended = status.round >= round && !status.running;
        // Says why the call takes a while, again every so often (which keeps
        // alive the IDE's timeout where progress resets it).
        let progress = async {
            match ctx.meta.get_progress_token() {
                Some(token) if !ended => {
                    for step in 0u32.. {
                        let note = ProgressNotificationParam::new(token.clone(), f64::from(step))
                            .with_message(format!("Waiting for you to log in to '{}'", up.id));
                        let _ = ctx.peer.notify_progress(note).await;
                        tokio::time::sleep(PROGRESS_EVERY).await;
                    }
                }
                _ => {}
            }
            std::future::pending::<()>().await
        };
        let outcome = tokio::select! {
            o = up.login_ended(round, wait, ready) => o,
            _ = ctx.ct.cancelled() => return Err(CallError::Cancelled),
            _ = progress => unreachable!("progress never ends"),
        };
        Ok(match outcome {
            Some(LoginOutcome::Declined) => Gate::Refuse(format!(
                "The call was not made: the login to '{}' was declined. Ask again to get the link, or run `mcp-bridge login {}`.",
                up.id, up.id
            )),
            // Logged in: go. Failed or still running: the call fails as it
            // would have, with what to do.
            _ => Gate::Go,
        })
    }
}
