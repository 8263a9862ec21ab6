//! The path of a `tools/call`: the discovery meta-tools, routing under the
//! policy (hidden tools refused, approval asked for), a login the server waits
//! for (offered through the IDE, [`login`]), forwarding with the input
//! rounds a modern server may ask a legacy IDE for, and the audit record of how
//! the call ended. Cancellation by the IDE is a typed outcome here
//! ([`CallError::Cancelled`]), not a text to look for.

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientRequest, ContentBlock, InputRequest, InputResponses,
    Request, ServerResult,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer};

use super::errors::{CANCELLED, refused, unexpected};
use super::{Downstream, approval, login};
use crate::config::secs;
use crate::upstream::{RequestError, RequestFailure};

/// Most rounds of input requests a legacy IDE is asked to answer for one call.
const MAX_INPUT_ROUNDS: usize = rmcp::model::DEFAULT_MRTR_MAX_ROUNDS;

/// How a tool call through the bridge ended without a result.
#[derive(Debug)]
pub(super) enum CallError {
    /// The IDE cancelled it (and the server was told).
    Cancelled,
    Failed(McpError),
}

impl From<McpError> for CallError {
    fn from(e: McpError) -> CallError {
        CallError::Failed(e)
    }
}

impl From<RequestError> for CallError {
    fn from(e: RequestError) -> CallError {
        match e.failure {
            RequestFailure::Cancelled => CallError::Cancelled,
            _ => CallError::Failed(e.into()),
        }
    }
}

impl From<CallError> for McpError {
    fn from(e: CallError) -> McpError {
        match e {
            CallError::Cancelled => McpError::internal_error(CANCELLED, None),
            CallError::Failed(e) => e,
        }
    }
}

impl Downstream {
    /// A `tools/call`, recorded in the audit log when there is one.
    pub(super) async fn call(
        &self,
        params: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let telemetry = crate::telemetry::global();
        let log = self.bridge.audit();
        if log.is_none() && !telemetry.is_on() {
            return Ok(self.call_routed(params, ctx, &mut CallNote::default()).await?);
        }
        let (ts_ms, started) = (crate::audit::now_ms(), std::time::Instant::now());
        let name = params.name.to_string();
        let arguments = log
            .filter(|l| l.include_arguments())
            .and_then(|_| params.arguments.clone().map(serde_json::Value::Object));
        let mut note = CallNote::default();
        let result = self.call_routed(params, ctx, &mut note).await;
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        use crate::audit::Outcome;
        let (outcome, result_bytes, error) = match &result {
            // One round of a modern IDE's exchange: the final round is recorded.
            Ok(CallToolResponse::InputRequired(_)) => return Ok(result?),
            Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => {
                let text = r.content.first().and_then(|c| c.as_text()).map(|t| t.text.clone());
                (
                    note.refusal.unwrap_or(Outcome::ToolError),
                    super::trace::result_size(r),
                    text,
                )
            }
            Ok(CallToolResponse::Complete(r)) => (Outcome::Ok, super::trace::result_size(r), None),
            Ok(_) => (Outcome::Ok, 0, None),
            Err(CallError::Cancelled) => (Outcome::Cancelled, 0, Some(CANCELLED.to_owned())),
            Err(CallError::Failed(e)) => (note.refusal.unwrap_or(Outcome::Error), 0, Some(e.message.to_string())),
        };
        telemetry.call(&note.server, &note.tool, outcome.as_str());
        let Some(log) = log else { return Ok(result?) };
        log.record(crate::audit::Record {
            ts_ms,
            server: note.server,
            tool: note.tool,
            name,
            duration_ms,
            outcome,
            result_bytes,
            error,
            arguments,
        });
        Ok(result?)
    }

    /// Route a tool call under the policy (refusals, approval) and forward it,
    /// answering a modern server's input requests for a legacy IDE. `note`
    /// learns the server and tool for the audit log.
    async fn call_routed(
        &self,
        mut params: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
        note: &mut CallNote,
    ) -> Result<CallToolResponse, CallError> {
        use crate::discovery::{CALL, DESCRIBE, SEARCH};
        if [SEARCH, DESCRIBE, CALL].contains(&params.name.as_ref()) {
            // The discovery meta-tools search the whole catalog: on a first
            // launch, wait for it like a list request does.
            self.bridge.first_lists().await;
        }
        if let Some(answer) = self.meta_tool(&mut params, note) {
            return Ok(answer?);
        }
        self.lookup(|c| c.tool(&params.name).map(drop)).await;
        let (route, approval) = {
            let cat = self.bridge.catalog();
            match cat.tool(&params.name) {
                Some(r) => (r.clone(), cat.approval(&params.name).map(str::to_owned)),
                None => {
                    if let Some(why) = cat.hidden(&params.name) {
                        note.refusal = Some(crate::audit::Outcome::Refused);
                        return Err(refused("tool", &params.name, why).into());
                    }
                    return Err(self.unknown_name("tool", &params.name).into());
                }
            }
        };
        note.server = route.server.to_string();
        note.tool = route.name.clone();
        let up = self.upstream(&route).await?;
        match self.login_gate(&up, &mut params, &ctx, false).await? {
            login::Gate::Go => {}
            login::Gate::Ask(round) => return Ok(CallToolResponse::InputRequired(*round)),
            login::Gate::Refuse(text) => {
                return Ok(note.declined(text));
            }
        }
        if let Some(why) = approval {
            let ask = approval::Ask {
                tool: &params.name,
                server: &route.server,
                arguments: params.arguments.as_ref(),
                why: &why,
            };
            let wait = secs(self.bridge.settings().policy.approval_timeout);
            let modern = self.bridge.ide.is_modern();
            // A 2026-07-28 IDE declares its capabilities on every request.
            let caps = match modern {
                true => ctx.meta.client_capabilities().unwrap_or_default(),
                false => self.bridge.ide.capabilities(),
            };
            if modern {
                let state = params.request_state.clone();
                let gate = self
                    .approvals
                    .gate(ask, state.as_deref(), params.input_responses.as_ref(), &caps, wait);
                match gate {
                    approval::Gate::Ask(round) => return Ok(CallToolResponse::InputRequired(*round)),
                    approval::Gate::Refuse(text) => {
                        return Ok(note.declined(text));
                    }
                    approval::Gate::Go { strip } => {
                        // The bridge's own question and state never reach the server.
                        if strip {
                            params.request_state = None;
                            if let Some(r) = params.input_responses.as_mut() {
                                r.remove(approval::INPUT_KEY);
                            }
                            if params.input_responses.as_ref().is_some_and(|r| r.is_empty()) {
                                params.input_responses = None;
                            }
                        }
                    }
                }
            } else if let Err(text) = self.approvals.check(ask, &ctx.peer, &caps, wait).await {
                return Ok(note.declined(text));
            }
        }
        let route_server = route.server.clone();
        params.name = route.name.into();
        let modern_ide = self.bridge.ide.is_modern();
        let mut logged_in_again = false;
        for _ in 0..MAX_INPUT_ROUNDS {
            let req = ClientRequest::CallToolRequest(Request::new(params.clone()));
            let answer = match self.forward(&up, req, &ctx).await {
                // The server refused the login before running the call: log in
                // again through the IDE, where it opens links, and send it once more.
                Err(e)
                    if matches!(e.failure, RequestFailure::LoginRefused)
                        && !logged_in_again
                        && self.ide_opens_links(&ctx) =>
                {
                    logged_in_again = true;
                    match self.login_gate(&up, &mut params, &ctx, true).await? {
                        login::Gate::Go => continue,
                        login::Gate::Ask(round) => return Ok(CallToolResponse::InputRequired(*round)),
                        login::Gate::Refuse(text) => {
                            return Ok(note.declined(text));
                        }
                    }
                }
                other => other?,
            };
            match answer {
                ServerResult::CallToolResult(mut r) => {
                    self.ide_uris(&route_server, &mut r.content);
                    return Ok(CallToolResponse::Complete(r));
                }
                ServerResult::InputRequiredResult(ir) if modern_ide => return Ok(CallToolResponse::InputRequired(ir)),
                ServerResult::InputRequiredResult(ir) => {
                    params.input_responses = self.answer_inputs(ir.input_requests, &ctx).await?;
                    params.request_state = ir.request_state;
                }
                other => return Err(unexpected("tools/call", &other).into()),
            }
        }
        Err(McpError::internal_error(
            format!(
                "server '{}' asked for input more than {MAX_INPUT_ROUNDS} times",
                up.spec.id
            ),
            None,
        )
        .into())
    }

    /// The discovery meta-tools, when the catalog has no tool of that name:
    /// search and describe are answered here; call rewrites `params` into the
    /// call it names (which then goes through policy and approval like any
    /// other) and returns `None`.
    fn meta_tool(
        &self,
        params: &mut CallToolRequestParams,
        note: &mut CallNote,
    ) -> Option<Result<CallToolResponse, McpError>> {
        use crate::discovery::{CALL, DESCRIBE, SEARCH};
        let cat = self.bridge.catalog();
        let name = params.name.to_string();
        if ![SEARCH, DESCRIBE, CALL].contains(&name.as_str()) || cat.tool(&name).is_some() {
            return None;
        }
        note.server = "mcp-bridge".into();
        note.tool = name.clone();
        let args = params.arguments.clone().unwrap_or_default();
        let text_arg = |k: &str| args.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let done = |r: CallToolResult| Some(Ok(CallToolResponse::Complete(r)));
        let fail = |m: String| done(CallToolResult::error(vec![ContentBlock::text(m)]));
        match name.as_str() {
            SEARCH => {
                let Some(query) = text_arg("query") else {
                    return fail(format!(
                        "{SEARCH} needs a `query`: words describing what you want to do"
                    ));
                };
                let limit = args.get("limit").and_then(|v| v.as_u64()).unwrap_or(10).clamp(1, 50) as usize;
                let hits = cat.index().search(&query, limit);
                let (text, structured) = crate::discovery::render_hits(&hits);
                let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
                r.structured_content = Some(structured);
                done(r)
            }
            DESCRIBE => {
                let Some(target) = text_arg("name") else {
                    return fail(format!("{DESCRIBE} needs the `name` of a tool"));
                };
                match cat.tools.iter().find(|t| t.name == target) {
                    Some(t) => {
                        let v = serde_json::json!({
                            "name": t.name, "description": t.description,
                            "inputSchema": t.input_schema, "annotations": t.annotations,
                        });
                        let text = serde_json::to_string_pretty(&v).unwrap_or_default();
                        let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
                        r.structured_content = Some(v);
                        done(r)
                    }
                    None => fail(match cat.hidden(&target) {
                        Some(why) => format!("{target} is not allowed by the bridge's policy: {why}"),
                        None => format!("No tool is named {target}; find one with {SEARCH}."),
                    }),
                }
            }
            _ => {
                let Some(target) = text_arg("name") else {
                    return fail(format!("{CALL} needs the `name` of the tool to call"));
                };
                if [SEARCH, DESCRIBE, CALL].contains(&target.as_str()) {
                    return fail(format!("{CALL} calls catalog tools, not {target}"));
                }
                params.name = target.into();
                params.arguments = match args.get("arguments") {
                    Some(serde_json::Value::Object(m)) => Some(m.clone()),
                    Some(serde_json::Value::Null) | None => None,
                    Some(_) => return fail(format!("{CALL}: `arguments` must be an object")),
                };
                None
            }
        }
    }

    /// Answer a modern upstream's input requests by asking a legacy IDE, for at
    /// most [`MAX_INPUT_ROUNDS`] rounds.
    async fn answer_inputs(
        &self,
        requests: Option<rmcp::model::InputRequests>,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<Option<InputResponses>, McpError> {
        let ide = &ctx.peer;
        let internal = |e: &dyn std::fmt::Display| McpError::internal_error(e.to_string(), None);
        let ide_err = |e: rmcp::ServiceError| match e {
            rmcp::ServiceError::McpError(e) => e,
            other => internal(&other),
        };
        let mut answers = InputResponses::new();
        for (key, req) in requests.unwrap_or_default() {
            let v = match req {
                InputRequest::Elicitation(r) => {
                    serde_json::to_value(ide.create_elicitation(r.params).await.map_err(ide_err)?)
                }
                InputRequest::CreateMessage(r) => {
                    serde_json::to_value(ide.create_message(r.params).await.map_err(ide_err)?)
                }
                InputRequest::ListRoots(_) => serde_json::to_value(ide.list_roots().await.map_err(ide_err)?),
                _ => return Err(internal(&"the server asked for an input the bridge cannot relay")),
            }
            .map_err(|e| internal(&e))?;
            answers.insert(key, v);
        }
        Ok((!answers.is_empty()).then_some(answers))
    }
}

/// What the audit log learns about a call while it is routed.
#[derive(Default)]
struct CallNote {
    server: String,
    tool: String,
    /// Set when the bridge itself refused the call (policy, approval, login).
    refusal: Option<crate::audit::Outcome>,
}

impl CallNote {
    /// The call was not made because the user said no (approval, login):
    /// `text` says so to the IDE as a tool error.
    fn declined(&mut self, text: String) -> CallToolResponse {
        self.refusal = Some(crate::audit::Outcome::Declined);
        CallToolResponse::Complete(CallToolResult::error(vec![ContentBlock::text(text)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_error(failure: RequestFailure) -> RequestError {
        RequestError {
            server: "files".into(),
            url: "https://files.example/mcp".into(),
            failure,
        }
    }

    /// A call the IDE cancelled is told apart by its type: the audit log
    /// records it as cancelled, and the IDE still reads the same text. A
    /// server's own error that happens to use those words stays an error.
    #[test]
    fn cancellation_is_an_outcome_not_a_text() {
        let cancelled = CallError::from(request_error(RequestFailure::Cancelled));
        assert!(matches!(cancelled, CallError::Cancelled));
        assert_eq!(McpError::from(cancelled).message, "cancelled by the client");
        let own = McpError::internal_error("cancelled by the client", None);
        let failed = CallError::from(request_error(RequestFailure::Service {
            error: rmcp::ServiceError::McpError(own.clone()),
            timeout: 1.0,
        }));
        assert!(matches!(&failed, CallError::Failed(e) if *e == own));
        assert!(matches!(
            CallError::from(McpError::invalid_params("unknown tool: x", None)),
            CallError::Failed(_)
        ));
    }
}
