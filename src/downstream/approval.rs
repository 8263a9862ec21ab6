//! Asking the user before a call the policy marks for approval. The question
//! goes to the IDE as an MCP elicitation (server, tool, arguments, and why);
//! until the user accepts, nothing reaches the server. "Allow for the rest of
//! this session" is remembered for this IDE connection only. An IDE that cannot
//! ask, a decline, or no answer in time refuses the call with a message that
//! says how to allow it.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use rmcp::model::{ElicitRequestParams, ElicitationAction, JsonObject};
use rmcp::service::Peer;
use rmcp::{RoleServer, model::ClientCapabilities};
use serde_json::json;

use crate::policy::Policy;

/// Longest argument text shown in the question.
const MAX_ARGS: usize = 2000;

/// Tools the user allowed for this session.
#[derive(Debug, Default)]
pub struct Approvals {
    session: Mutex<HashSet<String>>,
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
    /// `Ok` when the call may go ahead; otherwise the text of the refusal.
    pub async fn check(
        &self,
        ask: Ask<'_>,
        ide: &Peer<RoleServer>,
        caps: &ClientCapabilities,
        modern: bool,
        wait: Duration,
    ) -> Result<(), String> {
        let Ask {
            tool,
            server,
            arguments,
            why,
        } = ask;
        if self.session.lock().expect("approvals").contains(tool) {
            return Ok(());
        }
        let not_made = format!("The call to {tool} was not made");
        if caps.elicitation.is_none() || modern {
            // A 2026-07-28 IDE would need the question as an input-required
            // round, which the bridge does not originate yet.
            return Err(format!(
                "{not_made}: it needs your approval ({why}), and this IDE cannot be asked (no MCP elicitation). {}",
                Policy::how_to_allow(why)
            ));
        }
        let mut args = arguments
            .map(|a| serde_json::to_string_pretty(a).unwrap_or_default())
            .unwrap_or_else(|| "(none)".into());
        if args.len() > MAX_ARGS {
            let cut = (0..=MAX_ARGS).rev().find(|i| args.is_char_boundary(*i)).unwrap_or(0);
            args.truncate(cut);
            args.push_str("\n…");
        }
        let params: ElicitRequestParams = serde_json::from_value(json!({
            "mode": "form",
            "message": format!("Allow the tool {tool} (server {server}) to run?\n\nArguments:\n{args}\n\nAsked because {why}."),
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
        .map_err(|e| format!("{not_made}: cannot build the approval question: {e}"))?;
        match tokio::time::timeout(wait, ide.create_elicitation(params)).await {
            Ok(Ok(r)) if r.action == ElicitationAction::Accept => {
                let remember = r
                    .content
                    .as_ref()
                    .and_then(|c| c.get("remember"))
                    .and_then(|v| v.as_bool());
                if remember == Some(true) {
                    self.session.lock().expect("approvals").insert(tool.to_owned());
                }
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
