//! The IDE side: the `ServerHandler` an IDE talks to over stdio. It answers list
//! requests from the merged catalog, routes every call to its server, keeps the
//! IDE's progress token and cancellation attached to the upstream request, and
//! turns upstream failures into MCP errors. This is the only module that builds
//! `ErrorData` for the IDE, and [`stdio`] is the only code that touches stdout.

#![allow(deprecated)] // sampling and roots are deprecated in 2026-07-28 but still relayed

pub mod approval;
pub mod era;
pub mod ids;
pub mod stdio;
pub mod unconfigured;

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelledNotificationParam, ClientRequest,
    CompleteRequestParams, CompleteResult, ContentBlock, Cursor, GetPromptRequestParams, GetPromptResponse,
    Implementation, InputRequest, InputResponses, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, Reference, Request,
    ServerCapabilities, ServerConfig, ServerResult, SetLevelRequestParams, SubscribeRequestParams,
    UnsubscribeRequestParams,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RequestContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};

use crate::bridge::Bridge;
use crate::catalog::Route;
use crate::config::secs;
use crate::upstream::UpstreamHandle;

/// Most rounds of input requests a legacy IDE is asked to answer for one call.
const MAX_INPUT_ROUNDS: usize = rmcp::model::DEFAULT_MRTR_MAX_ROUNDS;

#[derive(Clone)]
pub struct Downstream {
    bridge: Arc<Bridge>,
    /// What the user allowed for this IDE session.
    approvals: Arc<approval::Approvals>,
}

impl Downstream {
    pub fn new(bridge: Arc<Bridge>) -> Self {
        Downstream {
            bridge,
            approvals: Arc::default(),
        }
    }
}

/// A request for something the policy hides (a stale IDE list, or a guess).
fn refused(kind: &str, name: &str, why: &str) -> McpError {
    McpError::invalid_params(
        format!("{kind} {name} is not allowed by the bridge's policy: {why}"),
        Some(serde_json::json!({ "reason": why })),
    )
}

fn unknown(kind: &str, name: &str) -> McpError {
    McpError::invalid_params(format!("unknown {kind}: {name}"), None)
}

/// One page of a merged list, as the IDE asked for it.
macro_rules! list_page {
    ($self:ident, $p:ident, $field:ident, $result:ident) => {{
        $self.bridge.first_lists().await;
        let cat = $self.bridge.catalog();
        let cursor = $p.as_ref().and_then(|p| p.cursor.as_ref());
        let (items, next) = page(&cat.$field, $self.bridge.settings().page_size, cursor)?;
        let mut r = $result::with_all_items(items);
        r.next_cursor = next;
        Ok(r)
    }};
}

/// An opaque cursor over the merged list: the offset of the next page.
fn page<T: Clone>(items: &[T], size: usize, cursor: Option<&Cursor>) -> Result<(Vec<T>, Option<Cursor>), McpError> {
    let start = match cursor {
        None => 0,
        Some(c) => c
            .strip_prefix("o:")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| McpError::invalid_params(format!("unknown cursor {c:?}"), None))?,
    };
    if size == 0 {
        return Ok((items[start..].to_vec(), None));
    }
    let end = (start + size).min(items.len());
    let next = (end < items.len()).then(|| format!("o:{end}"));
    Ok((items[start..end].to_vec(), next))
}

impl Downstream {
    /// Look a name up in the catalog; when it is not there while some server
    /// is still on its first listing, wait for that (bounded) and look again,
    /// so that a call made right after `initialize` on a first launch finds
    /// its tool instead of failing "unknown tool".
    async fn lookup<T>(&self, find: impl Fn(&crate::catalog::Catalog) -> Option<T>) -> Option<T> {
        if let Some(found) = find(&self.bridge.catalog()) {
            return Some(found);
        }
        if !self.bridge.awaiting_first_lists() {
            return None;
        }
        self.bridge.first_lists().await;
        find(&self.bridge.catalog())
    }

    /// "unknown tool" (or prompt), naming the servers that have not listed
    /// anything yet and why: the name may well be one of theirs.
    fn unknown_name(&self, kind: &str, name: &str) -> McpError {
        let unlisted = self.bridge.unlisted();
        if unlisted.is_empty() {
            return unknown(kind, name);
        }
        let why: Vec<String> = unlisted
            .iter()
            .map(|(id, url, error)| match error {
                Some(e) => format!("server '{id}' ({url}) has not listed yet: {e}"),
                None => format!("server '{id}' ({url}) is still connecting"),
            })
            .collect();
        let data = unlisted
            .iter()
            .map(|(id, url, error)| serde_json::json!({ "server": id, "url": url, "error": error }))
            .collect::<Vec<_>>();
        McpError::invalid_params(
            format!("unknown {kind}: {name}; {}", why.join("; ")),
            Some(serde_json::json!({ "unlisted": data })),
        )
    }

    async fn upstream(&self, route: &Route) -> Result<Arc<UpstreamHandle>, McpError> {
        let wait = secs(self.bridge.settings().timeouts.ready_wait);
        self.bridge
            .upstream_when_started(&route.server, wait)
            .await
            .ok_or_else(|| McpError::internal_error(format!("server '{}' is not connected", route.server), None))
    }

    /// The server owning an IDE-facing resource URI, and the URI it knows.
    async fn resource_upstream(&self, ide_uri: &str) -> Result<(Arc<UpstreamHandle>, String), McpError> {
        let route = self
            .lookup(|c| c.resource(ide_uri))
            .await
            .ok_or_else(|| unknown("resource", ide_uri))?;
        if let Some(why) = self.bridge.catalog().resource_refused(&route) {
            return Err(refused("resource", ide_uri, &why));
        }
        Ok((self.upstream(&route).await?, route.name))
    }

    fn upstream_error(up: &UpstreamHandle, e: rmcp::ServiceError, timeout: f64) -> McpError {
        let server = &up.spec.id;
        let data = Some(serde_json::json!({ "server": server, "url": up.spec.url }));
        // An HTTP 429 or 5xx: say so plainly, with the server's Retry-After, which
        // rmcp keeps but does not act on. The bridge does not retry: a 5xx may
        // come after the server started a call that is not idempotent, and a 429
        // is the server asking for time (found by tests/chaos.rs: the message
        // named rmcp's worker types and dropped Retry-After).
        if let Some(h) = crate::upstream::http_status(&e) {
            let url = &up.spec.url;
            let after = h.retry_after.as_deref().map(|v| match v.trim().parse::<u64>() {
                Ok(s) => format!("; retry after {s} s"),
                Err(_) => format!("; retry after {v}"),
            });
            let data = Some(serde_json::json!({
                "server": server, "url": url, "status": h.status, "retryAfter": h.retry_after,
            }));
            let what = if h.status == 429 {
                format!("server '{server}' ({url}) is rate limiting requests (HTTP 429)")
            } else {
                format!("server '{server}' ({url}) answered HTTP {}", h.status)
            };
            return McpError::internal_error(
                format!("{what}{}. The request was not retried", after.unwrap_or_default()),
                data,
            );
        }
        match e {
            rmcp::ServiceError::McpError(e) => e,
            rmcp::ServiceError::Timeout { .. } => McpError::internal_error(
                format!(
                    "server '{server}' did not answer within {timeout} s (no result and no progress); the request was cancelled upstream"
                ),
                data,
            ),
            rmcp::ServiceError::Cancelled { .. } => {
                McpError::internal_error(format!("request to server '{server}' was cancelled"), data)
            }
            other => {
                // Calls may not be idempotent, so the bridge never resends one;
                // say whether the server may have run it (a reset or a cut
                // response came after the request; found by tests/chaos.rs, where
                // reqwest's "error sending request" read as "not sent").
                let fate = if crate::upstream::never_sent(&other) {
                    "the request was not sent"
                } else {
                    "the connection failed after the request was sent, so the server may have run it; it was not retried"
                };
                McpError::internal_error(
                    format!(
                        "server '{server}' ({}) failed: {}; {fate}. The bridge reconnects in the background; `mcp-bridge status` shows details",
                        up.spec.url,
                        crate::upstream::without_type_names(&crate::upstream::failure_text(&other))
                    ),
                    data,
                )
            }
        }
    }

    /// Send one request to `up`, with the IDE's progress token mapped and its
    /// cancellation forwarded, and wait for the result.
    async fn forward(
        &self,
        up: &UpstreamHandle,
        request: ClientRequest,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<ServerResult, McpError> {
        let settings = self.bridge.settings();
        let t = &settings.timeouts;
        let unavailable = |e: crate::upstream::UpstreamError| {
            McpError::internal_error(e.to_string(), Some(serde_json::json!({ "server": up.spec.id })))
        };
        let peer = up.peer(secs(t.ready_wait)).await.map_err(unavailable)?;
        match self.forward_once(up, peer, request.clone(), ctx).await {
            // 403 insufficient_scope: log in again for the union of scopes (once),
            // reconnect with the new tokens, and retry the request once.
            Err(Failure::InsufficientScope(scope)) => {
                let needed = || {
                    McpError::internal_error(
                        format!(
                            "server '{}' needs more access ({scope}): run `mcp-bridge login {} --scope {}`",
                            up.spec.id,
                            up.spec.id,
                            scope.replace(' ', " --scope ")
                        ),
                        Some(serde_json::json!({ "server": up.spec.id, "scope": scope })),
                    )
                };
                let Some(lazy) = up.store.as_ref() else {
                    return Err(needed());
                };
                let (Some(wait), Some(tokens)) = (lazy.auto_login, lazy.get().await) else {
                    return Err(needed());
                };
                if !crate::auth::auto::step_up(&up.spec, tokens, &scope, wait).await {
                    return Err(needed());
                }
                let peer = up.reconnect(secs(t.ready_wait)).await.map_err(unavailable)?;
                match self.forward_once(up, peer, request, ctx).await {
                    Err(Failure::InsufficientScope(_)) => Err(needed()),
                    Err(Failure::Error(e)) => Err(e),
                    Ok(r) => Ok(r),
                }
            }
            Err(Failure::Error(e)) => Err(e),
            Ok(r) => Ok(r),
        }
    }

    async fn forward_once(
        &self,
        up: &UpstreamHandle,
        peer: rmcp::Peer<rmcp::RoleClient>,
        request: ClientRequest,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<ServerResult, Failure> {
        let settings = self.bridge.settings();
        let t = &settings.timeouts;
        let timeout = up.spec.call_timeout.unwrap_or(t.call);
        let opts = PeerRequestOptions::with_timeout(secs(timeout))
            .reset_timeout_on_progress()
            .with_max_total_timeout(secs(t.call_max));
        let handle = peer
            .send_request_with_option(request, opts)
            .await
            .map_err(|e| Failure::from(up, e, timeout))?;
        let up_id = handle.id.clone();
        // rmcp always replaces the progress token on outbound requests:
        // map the upstream's token back to the IDE's for as long as the call runs.
        let up_token = handle.progress_token.clone();
        let early = up.progress.register(up_token.clone(), ctx.meta.get_progress_token());
        let _progress = ProgressEntry {
            router: up.progress.clone(),
            token: up_token,
        };
        for p in early {
            let _ = ctx.peer.notify_progress(p).await;
        }
        // rmcp does not abort handlers on cancellation: watch ctx.ct.
        tokio::select! {
            r = handle.await_response() => r.map_err(|e| Failure::from(up, e, timeout)),
            _ = ctx.ct.cancelled() => {
                let p = CancelledNotificationParam::new(Some(up_id), Some("cancelled by the client".into()));
                let _ = peer.notify_cancelled(p).await;
                Err(Failure::Error(McpError::internal_error("cancelled by the client", None)))
            }
        }
    }

    /// Route a tool call under the policy (refusals, approval) and forward it,
    /// answering a modern server's input requests for a legacy IDE. `note`
    /// learns the server and tool for the audit log.
    async fn call_routed(
        &self,
        mut params: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
        note: &mut CallNote,
    ) -> Result<CallToolResponse, McpError> {
        use crate::discovery::{CALL, DESCRIBE, SEARCH};
        if [SEARCH, DESCRIBE, CALL].contains(&params.name.as_ref()) {
            // The discovery meta-tools search the whole catalog: on a first
            // launch, wait for it like a list request does.
            self.bridge.first_lists().await;
        }
        if let Some(answer) = self.meta_tool(&mut params, note) {
            return answer;
        }
        self.lookup(|c| c.tool(&params.name).map(drop)).await;
        let (route, approval) = {
            let cat = self.bridge.catalog();
            match cat.tool(&params.name) {
                Some(r) => (r.clone(), cat.approval(&params.name).map(str::to_owned)),
                None => {
                    if let Some(why) = cat.hidden(&params.name) {
                        note.refusal = Some(crate::audit::Outcome::Refused);
                        return Err(refused("tool", &params.name, why));
                    }
                    return Err(self.unknown_name("tool", &params.name));
                }
            }
        };
        note.server = route.server.to_string();
        note.tool = route.name.clone();
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
                        note.refusal = Some(crate::audit::Outcome::Declined);
                        return Ok(CallToolResponse::Complete(CallToolResult::error(vec![
                            ContentBlock::text(text),
                        ])));
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
                note.refusal = Some(crate::audit::Outcome::Declined);
                return Ok(CallToolResponse::Complete(CallToolResult::error(vec![
                    ContentBlock::text(text),
                ])));
            }
        }
        let up = self.upstream(&route).await?;
        let route_server = route.server.clone();
        params.name = route.name.into();
        let modern_ide = self.bridge.ide.is_modern();
        for _ in 0..MAX_INPUT_ROUNDS {
            let req = ClientRequest::CallToolRequest(Request::new(params.clone()));
            match self.forward(&up, req, &ctx).await? {
                ServerResult::CallToolResult(mut r) => {
                    self.ide_uris(&route_server, &mut r.content);
                    return Ok(CallToolResponse::Complete(r));
                }
                ServerResult::InputRequiredResult(ir) if modern_ide => return Ok(CallToolResponse::InputRequired(ir)),
                ServerResult::InputRequiredResult(ir) => {
                    params.input_responses = self.answer_inputs(ir.input_requests, &ctx).await?;
                    params.request_state = ir.request_state;
                }
                other => return Err(unexpected("tools/call", &other)),
            }
        }
        Err(McpError::internal_error(
            format!(
                "server '{}' asked for input more than {MAX_INPUT_ROUNDS} times",
                up.spec.id
            ),
            None,
        ))
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

    async fn read_from(
        &self,
        up: &UpstreamHandle,
        params: ReadResourceRequestParams,
        ide_uri: String,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        match self
            .forward(up, ClientRequest::ReadResourceRequest(Request::new(params)), ctx)
            .await?
        {
            ServerResult::ReadResourceResult(mut r) => {
                // Contents carry the upstream URI; give the IDE back the one it asked for.
                for c in r.contents.iter_mut() {
                    rewrite_contents_uri(c, &ide_uri);
                }
                Ok(ReadResourceResponse::Complete(r))
            }
            ServerResult::InputRequiredResult(ir) if self.bridge.ide.is_modern() => {
                Ok(ReadResourceResponse::InputRequired(ir))
            }
            other => Err(unexpected("resources/read", &other)),
        }
    }

    /// A URI several servers' templates match (or, with no template, any
    /// resource server may know): ask each in turn, and answer with the first
    /// that has it. Reads change nothing, so asking one too many is harmless.
    async fn read_from_any(
        &self,
        params: ReadResourceRequestParams,
        routes: Vec<Route>,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let mut first_error = None;
        for route in routes {
            if let Some(why) = self.bridge.catalog().resource_refused(&route) {
                first_error.get_or_insert(refused("resource", &params.uri, &why));
                continue;
            }
            let up = match self.upstream(&route).await {
                Ok(up) => up,
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            match self.read_from(&up, params.clone(), params.uri.clone(), ctx).await {
                Ok(r) => return Ok(r),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or_else(|| unknown("resource", &params.uri)))
    }

    /// Give the IDE URIs it can read back through the bridge for the resource
    /// links and embedded resources `server` put in a result (see
    /// [`crate::catalog::Catalog::result_uri`]).
    fn ide_uris(&self, server: &str, content: &mut [ContentBlock]) {
        let cat = self.bridge.catalog();
        for block in content {
            let uri = match block {
                ContentBlock::ResourceLink(r) => &mut r.uri,
                ContentBlock::Resource(e) => match &mut e.resource {
                    rmcp::model::ResourceContents::TextResourceContents { uri, .. } => uri,
                    rmcp::model::ResourceContents::BlobResourceContents { uri, .. } => uri,
                    _ => continue,
                },
                _ => continue,
            };
            if let Some(ide) = cat.result_uri(server, uri) {
                *uri = ide;
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
    /// Set when the bridge itself refused the call (policy, approval).
    refusal: Option<crate::audit::Outcome>,
}

/// The size of a result for the audit log, without serialising the text it
/// carries again: text and base64 data lengths, other blocks and structured
/// content serialised (they are small).
fn result_size(r: &CallToolResult) -> usize {
    let content: usize = r
        .content
        .iter()
        .map(|c| {
            if let Some(t) = c.as_text() {
                t.text.len()
            } else if let Some(i) = c.as_image() {
                i.data.len()
            } else if let Some(a) = c.as_audio() {
                a.data.len()
            } else {
                serde_json::to_string(c).map_or(0, |s| s.len())
            }
        })
        .sum();
    let structured = r
        .structured_content
        .as_ref()
        .map_or(0, |v| serde_json::to_string(v).map_or(0, |s| s.len()));
    content + structured
}

/// Why one forwarded request failed.
enum Failure {
    /// 403 with `insufficient_scope`: these scopes are needed.
    InsufficientScope(String),
    Error(McpError),
}

impl Failure {
    fn from(up: &UpstreamHandle, e: rmcp::ServiceError, timeout: f64) -> Failure {
        if let Some(ch) = e.auth_challenge()
            && ch.contains("insufficient_scope")
        {
            let url = url::Url::parse(&up.spec.url).ok();
            let scope = url
                .and_then(|u| rmcp::transport::auth::WWWAuthenticateParams::parse(ch, &u).scope)
                .unwrap_or_default();
            return Failure::InsufficientScope(scope);
        }
        Failure::Error(Downstream::upstream_error(up, e, timeout))
    }
}

/// Removes a progress-token mapping when the call ends, however it ends.
struct ProgressEntry {
    router: crate::upstream::ProgressMap,
    token: rmcp::model::ProgressToken,
}

impl Drop for ProgressEntry {
    fn drop(&mut self) {
        self.router.unregister(&self.token);
    }
}

fn unexpected(what: &str, r: &ServerResult) -> McpError {
    let kind = match r {
        ServerResult::CreateTaskResult(_) => "a task",
        _ => "an unexpected result",
    };
    McpError::internal_error(format!("the server answered {what} with {kind}"), None)
}

impl ServerHandler for Downstream {
    fn get_info(&self) -> ServerConfig {
        let caps = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_list_changed()
            .enable_resources_subscribe()
            .enable_completions()
            .enable_logging()
            .build();
        ServerConfig::new(caps)
            .with_server_info(Implementation::new("mcp-bridge", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "mcp-bridge: tools of several remote MCP servers, named <server>__<tool> when more than one server is bridged.",
            )
    }

    async fn list_tools(
        &self,
        p: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        self.bridge.first_lists().await;
        let cat = self.bridge.catalog();
        let budget = cat.policy().max_tools(self.bridge.ide.client_name().as_deref());
        let Some(tools) = cat.listed_tools(budget) else {
            return list_page!(self, p, tools, ListToolsResult);
        };
        let cursor = p.as_ref().and_then(|p| p.cursor.as_ref());
        let (items, next) = page(&tools, self.bridge.settings().page_size, cursor)?;
        let mut r = ListToolsResult::with_all_items(items);
        r.next_cursor = next;
        Ok(r)
    }

    async fn call_tool(
        &self,
        params: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let Some(log) = self.bridge.audit() else {
            return self.call_routed(params, ctx, &mut CallNote::default()).await;
        };
        let (ts_ms, started) = (crate::audit::now_ms(), std::time::Instant::now());
        let name = params.name.to_string();
        let arguments = log
            .include_arguments()
            .then(|| params.arguments.clone().map(serde_json::Value::Object))
            .flatten();
        let mut note = CallNote::default();
        let result = self.call_routed(params, ctx, &mut note).await;
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        use crate::audit::Outcome;
        let (outcome, result_bytes, error) = match &result {
            // One round of a modern IDE's exchange: the final round is recorded.
            Ok(CallToolResponse::InputRequired(_)) => return result,
            Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => {
                let text = r.content.first().and_then(|c| c.as_text()).map(|t| t.text.clone());
                (note.refusal.unwrap_or(Outcome::ToolError), result_size(r), text)
            }
            Ok(CallToolResponse::Complete(r)) => (Outcome::Ok, result_size(r), None),
            Ok(_) => (Outcome::Ok, 0, None),
            Err(e) if e.message.contains("cancelled by the client") => {
                (Outcome::Cancelled, 0, Some(e.message.to_string()))
            }
            Err(e) => (note.refusal.unwrap_or(Outcome::Error), 0, Some(e.message.to_string())),
        };
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
        result
    }

    async fn list_prompts(
        &self,
        p: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        list_page!(self, p, prompts, ListPromptsResult)
    }

    async fn get_prompt(
        &self,
        mut params: GetPromptRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        self.lookup(|c| c.prompt(&params.name).map(drop)).await;
        let route = {
            let cat = self.bridge.catalog();
            match cat.prompt(&params.name) {
                Some(r) => r.clone(),
                None => {
                    return Err(match cat.hidden(&params.name) {
                        Some(why) => refused("prompt", &params.name, why),
                        None => self.unknown_name("prompt", &params.name),
                    });
                }
            }
        };
        let up = self.upstream(&route).await?;
        params.name = route.name.clone();
        match self
            .forward(&up, ClientRequest::GetPromptRequest(Request::new(params)), &ctx)
            .await?
        {
            ServerResult::GetPromptResult(mut r) => {
                for m in r.messages.iter_mut() {
                    self.ide_uris(&route.server, std::slice::from_mut(&mut m.content));
                }
                Ok(GetPromptResponse::Complete(r))
            }
            ServerResult::InputRequiredResult(ir) if self.bridge.ide.is_modern() => {
                Ok(GetPromptResponse::InputRequired(ir))
            }
            other => Err(unexpected("prompts/get", &other)),
        }
    }

    async fn list_resources(
        &self,
        p: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        list_page!(self, p, resources, ListResourcesResult)
    }

    async fn list_resource_templates(
        &self,
        p: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        list_page!(self, p, resource_templates, ListResourceTemplatesResult)
    }

    async fn read_resource(
        &self,
        mut params: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let candidates = self
            .lookup(|c| Some(c.resource_candidates(&params.uri)).filter(|c| !c.is_empty()))
            .await;
        if let Some(routes) = candidates.filter(|c| c.len() > 1) {
            return self.read_from_any(params, routes, &ctx).await;
        }
        let (up, upstream_uri) = self.resource_upstream(&params.uri).await?;
        let ide_uri = std::mem::replace(&mut params.uri, upstream_uri);
        self.read_from(&up, params, ide_uri, &ctx).await
    }

    async fn subscribe(
        &self,
        mut params: SubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let (up, upstream_uri) = self.resource_upstream(&params.uri).await?;
        params.uri = upstream_uri;
        self.forward(&up, ClientRequest::SubscribeRequest(Request::new(params)), &ctx)
            .await
            .map(|_| ())
    }

    async fn unsubscribe(
        &self,
        mut params: UnsubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let (up, upstream_uri) = self.resource_upstream(&params.uri).await?;
        params.uri = upstream_uri;
        self.forward(&up, ClientRequest::UnsubscribeRequest(Request::new(params)), &ctx)
            .await
            .map(|_| ())
    }

    async fn complete(
        &self,
        mut params: CompleteRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        match &params.r#ref {
            Reference::Prompt(p) => self.lookup(|c| c.prompt(&p.name).map(drop)).await,
            Reference::Resource(r) => self.lookup(|c| c.template(&r.uri).map(drop)).await,
            _ => None,
        };
        let cat = self.bridge.catalog();
        let route = match &mut params.r#ref {
            Reference::Prompt(p) => {
                let route = cat.prompt(&p.name).cloned().ok_or_else(|| unknown("prompt", &p.name))?;
                p.name = route.name.clone();
                route
            }
            Reference::Resource(r) => {
                let route = cat
                    .template(&r.uri)
                    .ok_or_else(|| unknown("resource template", &r.uri))?;
                r.uri = route.name.clone();
                route
            }
            _ => return Err(McpError::invalid_params("unsupported completion reference", None)),
        };
        let up = self.upstream(&route).await?;
        match self
            .forward(&up, ClientRequest::CompleteRequest(Request::new(params)), &ctx)
            .await?
        {
            ServerResult::CompleteResult(r) => Ok(r),
            other => Err(unexpected("completion/complete", &other)),
        }
    }

    fn accepted_subscription_filter(
        &self,
        requested: &rmcp::model::SubscriptionFilter,
    ) -> Option<rmcp::model::SubscriptionFilter> {
        // List changes of every kind; rmcp intersects with what was asked and
        // advertised. Per-resource subscriptions are relayed only for legacy IDEs.
        let mut accepted = requested.clone();
        accepted.resource_subscriptions = None;
        Some(accepted)
    }

    async fn listen(&self, ctx: rmcp::service::SubscriptionContext) -> Result<(), McpError> {
        let sink = ctx.sink().clone();
        let id = sink.id().clone();
        self.bridge.add_listener(sink);
        tokio::select! {
            _ = ctx.cancelled() => {}
            _ = self.bridge.shutdown.cancelled() => {}
        }
        self.bridge.remove_listener(&id);
        Ok(())
    }

    async fn on_custom_request(
        &self,
        request: rmcp::model::CustomRequest,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CustomResult, McpError> {
        Err(McpError::new(
            rmcp::model::ErrorCode::METHOD_NOT_FOUND,
            format!("Method not found: {}", request.method),
            None,
        ))
    }

    async fn set_level(&self, p: SetLevelRequestParams, _ctx: RequestContext<RoleServer>) -> Result<(), McpError> {
        // Filter what the bridge relays; upstreams keep their own levels.
        self.bridge.ide.set_log_level(p.level);
        Ok(())
    }

    async fn on_roots_list_changed(&self, _ctx: NotificationContext<RoleServer>) {
        for up in self.bridge.upstreams() {
            if let crate::upstream::ConnState::Ready { peer, protocol } = up.state()
                && protocol.has_initialize()
            {
                let _ = peer.notify_roots_list_changed().await;
            }
        }
    }
}

/// Only a read of a rewritten URI changes the contents' URI, and only when it
/// equals the upstream URI that was read.
fn rewrite_contents_uri(c: &mut rmcp::model::ResourceContents, ide_uri: &str) {
    if let Some((_, upstream_uri)) = crate::catalog::unrewrite_uri(ide_uri) {
        let uri = match c {
            rmcp::model::ResourceContents::TextResourceContents { uri, .. } => uri,
            rmcp::model::ResourceContents::BlobResourceContents { uri, .. } => uri,
            _ => return,
        };
        if *uri == upstream_uri {
            *uri = ide_uri.to_owned();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging() {
        let items: Vec<u32> = (0..5).collect();
        let (a, n) = page(&items, 2, None).unwrap();
        assert_eq!((a, n.as_deref()), (vec![0, 1], Some("o:2")));
        let (b, n) = page(&items, 2, Some(&"o:4".to_string())).unwrap();
        assert_eq!((b, n), (vec![4], None));
        let (all, n) = page(&items, 0, None).unwrap();
        assert_eq!((all.len(), n), (5, None));
        assert!(page(&items, 2, Some(&"o:9".to_string())).is_err());
        assert!(page(&items, 2, Some(&"zz".to_string())).is_err());
    }
}
