//! Asking the user before a call the policy marks for approval. The question
//! goes to the IDE as an MCP elicitation (server, tool, arguments, and why): a
//! request to a 2025 IDE, or an input-required round for a 2026-07-28 IDE (the
//! IDE retries the call with the answer and the bridge's request state). Until
//! the user accepts, nothing reaches the server. "Allow for the rest of this
//! session" is remembered for this IDE connection only. An IDE that cannot ask,
//! a decline, or no answer in time refuses the call with a message that says
//! how to allow it.

use crate::util::Locked;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rmcp::model::{
    ElicitRequestParams, ElicitResult, ElicitationAction, InputRequest, InputRequiredResult, InputResponses,
    JsonObject, Request,
};
use rmcp::service::Peer;
use rmcp::{RoleServer, model::ClientCapabilities};
use serde_json::json;

use crate::policy::Policy;

/// Longest argument text shown in the question.
const MAX_ARGS: usize = 2000;

/// The key of the bridge's question among a round's input requests.
pub const INPUT_KEY: &str = "mcp-bridge/approval";
/// How the bridge's request state starts (the rest is a one-time nonce).
const STATE_PREFIX: &str = "mcp-bridge/approval:";

/// Tools the user allowed for this session, and questions out to a 2026 IDE.
#[derive(Debug, Default)]
pub struct Approvals {
    session: Mutex<HashSet<String>>,
    /// Nonce -> (tool, when asked).
    pending: Mutex<HashMap<String, (String, Instant)>>,
}

/// What a 2026-07-28 IDE's call does next.
#[derive(Debug)]
pub enum Gate {
    /// Go ahead; `strip` when the request carries the bridge's answered
    /// question, which must not reach the server.
    Go {
        strip: bool,
    },
    Refuse(String),
    /// Ask first: return this round to the IDE.
    Ask(Box<InputRequiredResult>),
}

/// The question as an elicitation, with a "for the session" checkbox.
fn question(ask: &Ask<'_>) -> Result<ElicitRequestParams, String> {
    let mut args = ask
        .arguments
        .map(|a| serde_json::to_string_pretty(a).unwrap_or_default())
        .unwrap_or_else(|| "(none)".into());
    if args.len() > MAX_ARGS {
        let cut = (0..=MAX_ARGS).rev().find(|i| args.is_char_boundary(*i)).unwrap_or(0);
        args.truncate(cut);
        args.push_str("\n…");
    }
    serde_json::from_value(json!({
        "mode": "form",
        "message": format!(
            "Allow the tool {} (server {}) to run?\n\nArguments:\n{args}\n\nAsked because {}.",
            ask.tool, ask.server, ask.why
        ),
        "requestedSchema": {
            "type": "object",
            "properties": {
                "remember": {
                    "type": "boolean",
                    "title": "Allow it for the rest of this session",
                    "default": false
                }
            }
        }
    }))
    .map_err(|e| {
        format!(
            "The call to {} was not made: cannot build the approval question: {e}",
            ask.tool
        )
    })
}

/// The question for one call.
pub struct Ask<'a> {
    /// The tool's name as the IDE knows it.
    pub tool: &'a str,
    pub server: &'a str,
    pub arguments: Option<&'a JsonObject>,
    /// Why approval is needed (from the policy).
    pub why: &'a str,
}

impl Approvals {
    /// The approval step for a 2025 IDE, asked by an elicitation request: `Ok`
    /// when the call may go ahead; otherwise the text of the refusal.
    pub async fn check(
        &self,
        ask: Ask<'_>,
        ide: &Peer<RoleServer>,
        caps: &ClientCapabilities,
        wait: Duration,
    ) -> Result<(), String> {
        let Ask {
            tool,
            server,
            arguments,
            why,
        } = ask;
        if self.session.locked().contains(tool) {
            return Ok(());
        }
        let not_made = format!("The call to {tool} was not made");
        if caps.elicitation.is_none() {
            return Err(cannot_ask(tool, why));
        }
        let params = question(&Ask {
            tool,
            server,
            arguments,
            why,
        })?;
        match tokio::time::timeout(wait, ide.create_elicitation(params)).await {
            Ok(Ok(r)) if r.action == ElicitationAction::Accept => {
                self.accepted(tool, &r);
                Ok(())
            }
            Ok(Ok(_)) => Err(format!("{not_made}: the user declined it.")),
            Ok(Err(e)) => Err(format!("{not_made}: asking for approval failed ({e}).")),
            Err(_) => Err(format!(
                "{not_made}: no answer to the approval request within {} s.",
                wait.as_secs()
            )),
        }
    }
}

fn cannot_ask(tool: &str, why: &str) -> String {
    format!(
        "The call to {tool} was not made: it needs your approval ({why}), and this IDE cannot be asked (no MCP elicitation). {}",
        Policy::how_to_allow(why)
    )
}

impl Approvals {
    fn accepted(&self, tool: &str, r: &ElicitResult) {
        let remember = r
            .content
            .as_ref()
            .and_then(|c| c.get("remember"))
            .and_then(|v| v.as_bool());
        if remember == Some(true) {
            self.session.locked().insert(tool.to_owned());
        }
    }

    /// The approval step for a 2026-07-28 IDE, which cannot be sent a request:
    /// the first round returns the question; the IDE's retry carries the answer
    /// under [`INPUT_KEY`] and the bridge's one-time request state. A request
    /// state that is not the bridge's continues a call already approved (the
    /// server's own input rounds).
    pub fn gate(
        &self,
        ask: Ask<'_>,
        request_state: Option<&str>,
        responses: Option<&InputResponses>,
        caps: &ClientCapabilities,
        wait: Duration,
    ) -> Gate {
        let ours = request_state.and_then(|s| s.strip_prefix(STATE_PREFIX));
        if self.session.locked().contains(ask.tool) {
            return Gate::Go { strip: ours.is_some() };
        }
        let not_made = format!("The call to {} was not made", ask.tool);
        match (request_state, ours) {
            (_, Some(nonce)) => {
                let asked = self.pending.locked().remove(nonce);
                let Some((tool, at)) = asked.filter(|(t, _)| t == ask.tool) else {
                    return Gate::Refuse(format!(
                        "{not_made}: the approval it answers is unknown or was for another tool."
                    ));
                };
                if at.elapsed() > wait {
                    return Gate::Refuse(format!(
                        "{not_made}: no answer to the approval request within {} s.",
                        wait.as_secs()
                    ));
                }
                let answer = responses
                    .and_then(|r| r.get(INPUT_KEY))
                    .and_then(|v| serde_json::from_value::<ElicitResult>(v.clone()).ok());
                match answer {
                    Some(r) if r.action == ElicitationAction::Accept => {
                        self.accepted(&tool, &r);
                        Gate::Go { strip: true }
                    }
                    Some(_) => Gate::Refuse(format!("{not_made}: the user declined it.")),
                    None => Gate::Refuse(format!(
                        "{not_made}: the retry carried no answer to the approval request."
                    )),
                }
            }
            (Some(_), None) => Gate::Go { strip: false },
            (None, _) if caps.elicitation.is_none() => Gate::Refuse(cannot_ask(ask.tool, ask.why)),
            (None, _) => {
                let params = match question(&ask) {
                    Ok(p) => p,
                    Err(e) => return Gate::Refuse(e),
                };
                let nonce = format!("{:032x}", rand::random::<u128>());
                let mut pending = self.pending.locked();
                // Questions never answered do not pile up.
                pending.retain(|_, (_, at)| at.elapsed() <= wait);
                pending.insert(nonce.clone(), (ask.tool.to_owned(), Instant::now()));
                let requests = [(INPUT_KEY.to_owned(), InputRequest::Elicitation(Request::new(params)))]
                    .into_iter()
                    .collect();
                Gate::Ask(Box::new(InputRequiredResult::new(
                    Some(requests),
                    Some(format!("{STATE_PREFIX}{nonce}")),
                )))
            }
        }
    }
}
