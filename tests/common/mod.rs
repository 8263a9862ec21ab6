//! Test harness: real rmcp Streamable HTTP servers on 127.0.0.1:0 (each in its own
//! runtime so a test can kill one abruptly), temp config/cache dirs, and the
//! built `mcp-bridge` binary spawned over stdio and driven by an rmcp client.

#![allow(dead_code, deprecated)]

use mcp_bridge::util::Locked;
use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_bridge::samples::{LEGACY_VERSIONS, MODERN_VERSIONS, from_json, text_result};
use rmcp::model::*;
use rmcp::service::{NotificationContext, RequestContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ClientHandler, ErrorData as McpError, RoleClient, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{Notify, mpsc};
pub mod auth;
pub mod chaos;
pub mod idp;
pub mod interop;
pub mod jwt;
pub mod otlp;
pub mod tls;

/// Which protocol generation a test server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Era {
    /// 2025-11-25 and older, with sessions.
    Legacy,
    /// 2026-07-28 only, stateless.
    Modern,
}

/// What happened inside a test server, for assertions.
#[derive(Default)]
pub struct Probe {
    pub cancelled: Notify,
    pub cancel_count: AtomicUsize,
    pub started: Notify,
    pub calls: AtomicUsize,
    pub extra_tools: AtomicUsize,
    pub last_meta: Mutex<Option<Value>>,
    /// Every HTTP request seen: (method, value of the X-Test header).
    pub http: Mutex<Vec<(String, Option<String>)>>,
    /// URIs subscribed with `resources/subscribe`.
    pub subscribed: Mutex<Vec<String>>,
    /// `server/discover` requests seen.
    pub discovers: AtomicUsize,
    /// TCP connections accepted.
    pub connections: AtomicUsize,
    /// The trace context of every tool call, in order.
    pub traces: Mutex<Vec<TraceSeen>>,
}

/// The W3C trace context a tool call reached the test server with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceSeen {
    /// The upstream tool name.
    pub tool: String,
    /// The HTTP header `traceparent` of the request that carried the call.
    pub header: Option<String>,
    /// `params._meta.traceparent`.
    pub meta: Option<String>,
    /// The id of the SERVER span the server exported for the call (hex), when
    /// it was given a collector ([`TestServer::otlp`]).
    pub span: Option<String>,
}

/// How many tools a `TestServer` lists before `add_tool` is called.
pub const TOOLS: usize = 13;

/// A configurable test server.
#[derive(Clone)]
pub struct TestServer {
    pub era: Era,
    pub label: &'static str,
    pub probe: Arc<Probe>,
    /// Upstream page size for tools/list (0 = one page).
    pub page: usize,
    /// `ttlMs` on tools/list (2026-07-28 only).
    pub ttl_ms: Option<u64>,
    /// Behind a sticky load balancer: a request in a session without the
    /// balancer's cookie is refused with 503, as a node that never saw it would.
    pub sticky: bool,
    /// Answer `server/discover` with this HTTP status and body (`{id}` is the
    /// request's id) instead of the server's own answer: the odd answers of
    /// legacy servers in the field.
    pub discover_answer: Option<(u16, &'static str)>,
    /// Set TCP_NODELAY on accepted connections, as most production HTTP stacks
    /// do. Off by default (as axum's): an SSE answer is then written in pieces
    /// that meet delayed ACKs on reused connections (src/upstream/http.rs).
    pub nodelay: bool,
    /// An OTLP/HTTP base URL ([`otlp::Receiver::url`]): each tool call is then
    /// exported as a SERVER span `tools/call <tool>`, the child of the
    /// `traceparent` the call came with (`_meta`, else the header).
    pub otlp: Option<String>,
}

fn tool(name: &str, desc: &str) -> Tool {
    // Annotated as a real server would: `echo` and `whoami` only read,
    // `wipe` destroys.
    let annotations = match name {
        "echo" | "whoami" => json!({ "readOnlyHint": true }),
        "wipe" => json!({ "destructiveHint": true }),
        _ => json!({}),
    };
    from_json(json!({ "name": name, "description": desc, "annotations": annotations,
        "inputSchema": { "type": "object", "properties": { "text": { "type": "string" }, "seconds": { "type": "number" } } } }))
}

impl TestServer {
    pub fn new(era: Era, label: &'static str) -> TestServer {
        TestServer {
            era,
            label,
            probe: Arc::new(Probe::default()),
            page: 0,
            ttl_ms: None,
            sticky: false,
            discover_answer: None,
            nodelay: false,
            otlp: None,
        }
    }

    fn all_tools(&self) -> Vec<Tool> {
        let mut t = vec![
            tool("echo", "Echo the text back"),
            tool("whoami", "Name of this server"),
            tool("slow", "Wait until cancelled or for `seconds`"),
            tool("progress", "Report three progress steps"),
            tool("ask", "Ask the user a question through elicitation"),
            tool("sample", "Ask the client's model through sampling"),
            tool("roots", "List the client's roots"),
            tool("add_tool", "Add a tool and announce list_changed"),
            tool("fail", "Return a tool error"),
            tool("image", "Return an image and structured content"),
            tool("touch", "Announce that the resource `text` was updated"),
            tool("add_tool_silently", "Add a tool without announcing it"),
            tool("wipe", "Delete everything (answers 'wiped')"),
        ];
        for i in 0..self.probe.extra_tools.load(Ordering::SeqCst) {
            t.push(tool(&format!("extra_{i}"), "Added at run time"));
        }
        t
    }
}

fn arg<'a>(p: &'a CallToolRequestParams, k: &str) -> Option<&'a Value> {
    p.arguments.as_ref()?.get(k)
}

impl TestServer {
    /// The tool calls; results as built, `resultType` possibly absent.
    async fn call_tool_untyped(
        &self,
        p: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.probe.calls.fetch_add(1, Ordering::SeqCst);
        *self.probe.last_meta.locked() = serde_json::to_value(&ctx.meta).ok();
        let text = |s: String| Ok(CallToolResponse::Complete(text_result(s)));
        match p.name.as_ref() {
            // With `link`: a resource link and an embedded resource for that URI.
            "echo" if arg(&p, "link").is_some() => {
                let uri = arg(&p, "link").and_then(Value::as_str).unwrap_or_default();
                Ok(CallToolResponse::Complete(from_json(json!({ "content": [
                    { "type": "resource_link", "uri": uri, "name": "linked" },
                    { "type": "resource", "resource": { "uri": uri, "text": "embedded" } }
                ] }))))
            }
            "echo" => text(arg(&p, "text").and_then(Value::as_str).unwrap_or("").to_owned()),
            "whoami" => text(self.label.to_owned()),
            "wipe" => text("wiped".to_owned()),
            "fail" => Ok(CallToolResponse::Complete(from_json(
                json!({ "content": [{ "type": "text", "text": "it failed" }], "isError": true }),
            ))),
            "image" => Ok(CallToolResponse::Complete(from_json(json!({
                "content": [{ "type": "image", "data": "iVBORw0KGgo=", "mimeType": "image/png" }],
                "structuredContent": { "answer": 42, "nested": { "list": [1, 2, 3] } },
                "_meta": { "example.com/trace": "abc" }
            })))),
            "slow" => {
                self.probe.started.notify_one();
                let secs = arg(&p, "seconds").and_then(Value::as_f64).unwrap_or(60.0);
                tokio::select! {
                    _ = ctx.ct.cancelled() => {
                        self.probe.cancel_count.fetch_add(1, Ordering::SeqCst);
                        self.probe.cancelled.notify_one();
                        Err(McpError::internal_error("cancelled", None))
                    }
                    _ = tokio::time::sleep(Duration::from_secs_f64(secs)) => text("slept".into()),
                }
            }
            "progress" => {
                let token = ctx.meta.get_progress_token();
                if let Some(token) = token {
                    for i in 1..=3 {
                        let n = ProgressNotificationParam::new(token.clone(), i as f64)
                            .with_total(3.0)
                            .with_message(format!("step {i}"));
                        let _ = ctx.peer.notify_progress(n).await;
                    }
                }
                text("progress done".into())
            }
            "ask" => match self.era {
                Era::Legacy => {
                    let req: ElicitRequestParams = from_json(json!({
                        "message": "Proceed?",
                        "requestedSchema": { "type": "object", "properties": { "answer": { "type": "string" } } }
                    }));
                    let r = ctx
                        .peer
                        .create_elicitation(req)
                        .await
                        .map_err(|e| McpError::internal_error(e.to_string(), None))?;
                    text(format!("elicitation: {}", serde_json::to_string(&r).unwrap()))
                }
                Era::Modern => match p.input_responses.as_ref().and_then(|r| r.get("confirm")) {
                    Some(answer) => text(format!("elicitation: {answer}")),
                    None => Ok(CallToolResponse::InputRequired(from_json(json!({
                        "resultType": "input_required",
                        "inputRequests": { "confirm": { "method": "elicitation/create", "params": {
                            "message": "Proceed?",
                            "requestedSchema": { "type": "object", "properties": { "answer": { "type": "string" } } }
                        } } },
                        "requestState": "opaque-state-1"
                    })))),
                },
            },
            "sample" => {
                let req: CreateMessageRequestParams = from_json(json!({
                    "messages": [{ "role": "user", "content": { "type": "text", "text": "hello model" } }],
                    "maxTokens": 10
                }));
                let r = ctx
                    .peer
                    .create_message(req)
                    .await
                    .map_err(|e| McpError::internal_error(e.to_string(), None))?;
                text(format!("sampling: {}", serde_json::to_string(&r).unwrap()))
            }
            "roots" => {
                let r = ctx
                    .peer
                    .list_roots()
                    .await
                    .map_err(|e| McpError::internal_error(e.to_string(), None))?;
                text(format!("roots: {}", serde_json::to_string(&r).unwrap()))
            }
            "touch" => {
                let uri = arg(&p, "text")
                    .and_then(Value::as_str)
                    .unwrap_or("mem://shared")
                    .to_owned();
                let _ = ctx
                    .peer
                    .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                    .await;
                text("touched".into())
            }
            "add_tool_silently" => {
                self.probe.extra_tools.fetch_add(1, Ordering::SeqCst);
                text("added quietly".into())
            }
            "add_tool" => {
                self.probe.extra_tools.fetch_add(1, Ordering::SeqCst);
                let _ = ctx.peer.notify_tool_list_changed().await;
                text("added".into())
            }
            other => Err(McpError::invalid_params(format!("no tool {other}"), None)),
        }
    }
}

impl ServerHandler for TestServer {
    fn get_info(&self) -> ServerConfig {
        let caps = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_prompts()
            .enable_completions()
            .build();
        ServerConfig::new(caps).with_server_info(Implementation::new(self.label, "0.0.1"))
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(match self.era {
            Era::Legacy => LEGACY_VERSIONS,
            Era::Modern => MODERN_VERSIONS,
        })
    }

    async fn list_tools(
        &self,
        p: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let all = self.all_tools();
        if self.page == 0 {
            let r = ListToolsResult::with_all_items(all);
            return Ok(match self.ttl_ms {
                Some(t) => r.with_ttl_ms(t),
                None => r,
            });
        }
        let start: usize = p.and_then(|p| p.cursor).and_then(|c| c.parse().ok()).unwrap_or(0);
        let end = (start + self.page).min(all.len());
        let mut r = ListToolsResult::with_all_items(all[start..end].to_vec());
        r.next_cursor = (end < all.len()).then(|| end.to_string());
        Ok(r)
    }

    async fn call_tool(
        &self,
        p: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let start = otlp::unix_ns();
        let tool = p.name.to_string();
        let header = ctx
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.headers.get("traceparent"))
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let meta = ctx.meta.get_traceparent().map(str::to_owned);
        let r = self.call_tool_untyped(p, ctx).await;
        let span = match &self.otlp {
            Some(base) => {
                let parent = meta.as_deref().or(header.as_deref());
                let service = format!("test-server-{}", self.label);
                Some(otlp::export_server_span(base, &service, &format!("tools/call {tool}"), parent, start).await)
            }
            None => None,
        };
        self.probe.traces.locked().push(TraceSeen {
            tool,
            header,
            meta,
            span,
        });
        // A 2026-07-28 server MUST send `resultType`; rmcp strips it for older peers.
        r.map(|r| match r {
            CallToolResponse::Complete(mut r) => {
                r.result_type.get_or_insert(ResultType::COMPLETE);
                CallToolResponse::Complete(r)
            }
            other => other,
        })
    }

    async fn list_resources(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(from_json(json!([
            { "uri": "mem://shared", "name": "shared" },
            { "uri": format!("mem://{}/own", self.label), "name": "own" }
        ]))))
    }

    async fn subscribe(&self, p: SubscribeRequestParams, _: RequestContext<RoleServer>) -> Result<(), McpError> {
        self.probe.subscribed.locked().push(p.uri);
        Ok(())
    }

    async fn read_resource(
        &self,
        p: ReadResourceRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        Ok(ReadResourceResult::new(vec![ResourceContents::text(
            format!("{} says {}", self.label, p.uri),
            p.uri,
        )])
        .into())
    }

    async fn list_prompts(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(from_json(json!([
            { "name": "greet", "arguments": [{ "name": "who", "required": true }] }
        ]))))
    }

    async fn get_prompt(
        &self,
        p: GetPromptRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let who = p
            .arguments
            .and_then(|a| a.get("who").cloned())
            .unwrap_or(json!("nobody"));
        let mut r: GetPromptResult = from_json(json!({
            "messages": [{ "role": "user", "content": { "type": "text", "text": format!("{} greets {}", self.label, who) } }]
        }));
        r.result_type = Some(ResultType::COMPLETE);
        Ok(GetPromptResponse::Complete(r))
    }

    async fn complete(
        &self,
        p: CompleteRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let v = format!("{}-{}", self.label, p.argument.value);
        let mut r: CompleteResult = from_json(json!({ "completion": { "values": [v], "hasMore": false } }));
        r.result_type = Some(ResultType::COMPLETE);
        Ok(r)
    }
}

/// A server running in its own runtime thread, so that `kill` drops every task
/// and socket at once, as a crashed process would.
pub struct Upstream {
    pub addr: SocketAddr,
    pub url: String,
    pub server: TestServer,
    kill: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Upstream {
    pub fn start(server: TestServer) -> Upstream {
        Self::start_on(server, 0)
    }

    pub fn start_on(server: TestServer, port: u16) -> Upstream {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (kill_tx, kill_rx) = std::sync::mpsc::channel::<()>();
        let s = server.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let app = app(&s);
                let listener = bind_retry(port).await;
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let (probe, nodelay) = (s.probe.clone(), s.nodelay);
                let listener = axum::serve::ListenerExt::tap_io(listener, move |tcp| {
                    probe.connections.fetch_add(1, Ordering::SeqCst);
                    if nodelay {
                        let _ = tcp.set_nodelay(true);
                    }
                });
                tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            });
            let _ = kill_rx.recv();
            rt.shutdown_background();
        });
        let addr = addr_rx.recv().unwrap();
        Upstream {
            addr,
            url: format!("http://{addr}/mcp"),
            server,
            kill: Some(kill_tx),
            thread: Some(thread),
        }
    }

    /// Drop the server abruptly: every connection closes, no goodbye.
    pub fn kill(&mut self) {
        if let Some(k) = self.kill.take() {
            let _ = k.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The HTTP app of `s`: its MCP service at `/mcp`, with the recording, sticky
/// balancer and `server/discover` layers.
pub fn app(s: &TestServer) -> axum::Router {
    let mut cfg = StreamableHttpServerConfig::default();
    cfg.legacy_session_mode = s.era == Era::Legacy;
    cfg.sse_keep_alive = Some(Duration::from_secs(5));
    let s2 = s.clone();
    let service = StreamableHttpService::new(move || Ok(s2.clone()), Arc::new(LocalSessionManager::default()), cfg);
    let probe = s.probe.clone();
    let record = move |req: axum::extract::Request, next: axum::middleware::Next| {
        let probe = probe.clone();
        async move {
            let header = req
                .headers()
                .get("x-test")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            probe.http.locked().push((req.method().to_string(), header));
            next.run(req).await
        }
    };
    let sticky = s.sticky;
    let balancer = move |req: axum::extract::Request, next: axum::middleware::Next| async move {
        if !sticky {
            return next.run(req).await;
        }
        let cookie = req
            .headers()
            .get_all("cookie")
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("lb=node-1")));
        if req.headers().contains_key("mcp-session-id") && !cookie {
            return axum::response::IntoResponse::into_response((
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "no sticky cookie: this node does not know the session",
            ));
        }
        let mut resp = next.run(req).await;
        resp.headers_mut().append(
            "set-cookie",
            axum::http::HeaderValue::from_static("lb=node-1; Path=/; HttpOnly"),
        );
        resp
    };
    let (discover_answer, probe) = (s.discover_answer, s.probe.clone());
    let discover = move |req: axum::extract::Request, next: axum::middleware::Next| {
        let probe = probe.clone();
        async move {
            if req.method() != axum::http::Method::POST {
                return next.run(req).await;
            }
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 24).await.unwrap_or_default();
            let msg: Value = serde_json::from_slice(&bytes).unwrap_or_default();
            if msg["method"] == json!("server/discover") {
                probe.discovers.fetch_add(1, Ordering::SeqCst);
                if let Some((status, answer)) = discover_answer {
                    let body = answer.replace("{id}", &msg["id"].to_string());
                    return axum::response::IntoResponse::into_response((
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        [("content-type", "application/json")],
                        body,
                    ));
                }
            }
            next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
    };
    axum::Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn(discover))
        .layer(axum::middleware::from_fn(balancer))
        .layer(axum::middleware::from_fn(record))
}

async fn bind_retry(port: u16) -> tokio::net::TcpListener {
    for _ in 0..50 {
        match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => return l,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("cannot bind 127.0.0.1:{port}");
}

/// What the IDE-side test client saw.
#[derive(Debug)]
pub enum Seen {
    Progress(ProgressNotificationParam),
    ToolsChanged,
    PromptsChanged,
    ResourcesChanged,
    ResourceUpdated(String),
    /// A URL-mode elicitation (the IDE "opened" nothing: the test browses it).
    Link {
        url: String,
        id: String,
        message: String,
    },
    /// `notifications/elicitation/complete` for this elicitation id.
    LinkDone(String),
}

/// What the test IDE does with URL-mode elicitation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    /// Not declared (`elicitation: {form: {}}`), as most IDEs.
    Unable,
    /// Declared; every link is accepted (and reported as [`Seen::Link`]).
    Accept,
    /// Declared; every link is declined (and reported).
    Decline,
}

/// The IDE: answers sampling, elicitation and roots, records notifications.
#[derive(Clone)]
pub struct Ide {
    pub seen: mpsc::UnboundedSender<Seen>,
    pub links: Links,
}

impl Ide {
    pub fn new(seen: mpsc::UnboundedSender<Seen>) -> Ide {
        Ide {
            seen,
            links: Links::Unable,
        }
    }
}

impl ClientHandler for Ide {
    fn get_info(&self) -> ClientConfig {
        let elicitation = match self.links {
            Links::Unable => json!({ "form": {} }),
            _ => json!({ "form": {}, "url": {} }),
        };
        let caps: ClientCapabilities = from_json(json!({
            "sampling": {}, "elicitation": elicitation, "roots": { "listChanged": true }
        }));
        ClientConfig::new(caps, Implementation::new("test-ide", "1.0"))
    }

    async fn on_custom_notification(&self, n: CustomNotification, _: NotificationContext<RoleClient>) {
        if n.method == "notifications/elicitation/complete" {
            let id = n
                .params
                .as_ref()
                .and_then(|p| p["elicitationId"].as_str())
                .unwrap_or_default();
            let _ = self.seen.send(Seen::LinkDone(id.to_owned()));
        }
    }

    async fn create_elicitation(
        &self,
        p: ElicitRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        let msg = match &p {
            ElicitRequestParams::FormElicitationParams { message, .. } => message.clone(),
            ElicitRequestParams::UrlElicitationParams {
                message,
                url,
                elicitation_id,
                ..
            } => {
                let _ = self.seen.send(Seen::Link {
                    url: url.clone(),
                    id: elicitation_id.clone(),
                    message: message.clone(),
                });
                let action = match self.links {
                    Links::Decline => "decline",
                    _ => "accept",
                };
                return Ok(from_json(json!({ "action": action })));
            }
            _ => "?".into(),
        };
        // The user's behaviour, chosen by the text a test put in the question.
        if msg.contains("decline-me") {
            return Ok(from_json(json!({ "action": "decline" })));
        }
        if msg.contains("hang-me") {
            std::future::pending::<()>().await;
        }
        let remember = msg.contains("remember-me");
        Ok(from_json(
            json!({ "action": "accept", "content": { "answer": format!("yes to {msg}"), "remember": remember } }),
        ))
    }

    async fn create_message(
        &self,
        _: CreateMessageRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        Ok(from_json(json!({
            "role": "assistant", "content": { "type": "text", "text": "model says hi" }, "model": "test-model"
        })))
    }

    async fn list_roots(&self, _: RequestContext<RoleClient>) -> Result<ListRootsResult, McpError> {
        Ok(from_json(
            json!({ "roots": [{ "uri": "file:///work/project", "name": "project" }] }),
        ))
    }

    async fn on_progress(&self, p: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        let _ = self.seen.send(Seen::Progress(p));
    }
    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.seen.send(Seen::ToolsChanged);
    }
    async fn on_prompt_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.seen.send(Seen::PromptsChanged);
    }
    async fn on_resource_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.seen.send(Seen::ResourcesChanged);
    }
    async fn on_resource_updated(&self, p: ResourceUpdatedNotificationParam, _: NotificationContext<RoleClient>) {
        let _ = self.seen.send(Seen::ResourceUpdated(p.uri));
    }
}

/// A temp home for one bridge: config, cache and state dirs.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }
    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config(), text).unwrap();
    }
    /// `[[servers]]` blocks for `(name, url)` pairs, plus extra text.
    pub fn servers_config(&self, servers: &[(&str, &str)], extra: &str) {
        let mut s = String::from(extra);
        for (name, url) in servers {
            s.push_str(&format!("\n[[servers]]\nname = \"{name}\"\nurl = \"{url}\"\n"));
        }
        self.write_config(&s);
    }
}

pub fn bridge_command(home: &Home, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-bridge"));
    cmd.arg("serve")
        .args(args)
        .env("MCP_BRIDGE_HOME", home.path())
        // Never touch the developer's real keyring from tests.
        .env("MCP_BRIDGE_CREDENTIAL_STORE", "file")
        // Nor open a real browser: an automatic login "opens" nothing.
        .env("BROWSER", "true")
        .env_remove("MCP_BRIDGE_CONFIG");
    // Nor export telemetry to the developer's collector: a test names its own.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OTEL_") {
            cmd.env_remove(k);
        }
    }
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "mcp_bridge=debug");
    }
    cmd
}

/// Every file under `dir` except the credential store (`credentials/`), as text:
/// what redaction tests grep for secrets.
pub fn written_files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "credentials") {
                    stack.push(p);
                }
            } else {
                out.push((
                    p.clone(),
                    String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned(),
                ));
            }
        }
    }
    out
}

/// `mcp-bridge ARGS` as a person would run it at a terminal, in `home`, on the
/// file credential store.
pub fn cli(home: &Home, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-bridge"));
    cmd.args(args)
        .env("MCP_BRIDGE_HOME", home.path())
        .env("MCP_BRIDGE_CREDENTIAL_STORE", "file")
        .env_remove("MCP_BRIDGE_CONFIG");
    cmd
}

/// Run `cmd` (from [`cli`]) to its end; its stdout (UTF-8) and stderr, which must
/// be a success.
pub async fn run_ok(mut cmd: tokio::process::Command) -> (String, String) {
    let args: Vec<_> = cmd
        .as_std()
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let out = cmd.output().await.unwrap();
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{args:?}: {stderr}\n{stdout}");
    (stdout, stderr)
}

pub type Client = RunningService<RoleClient, Ide>;

/// Spawn `mcp-bridge serve` in `home` and connect the test IDE to it.
pub async fn spawn_bridge(home: &Home, args: &[&str]) -> (Client, mpsc::UnboundedReceiver<Seen>) {
    spawn_bridge_env(home, args, &[]).await
}

/// Like `spawn_bridge`, with environment changes (`None` removes a variable).
pub async fn spawn_bridge_env(
    home: &Home,
    args: &[&str],
    env: &[(&str, Option<&str>)],
) -> (Client, mpsc::UnboundedReceiver<Seen>) {
    spawn_ide(env_command(home, args, env), Links::Unable).await
}

/// `serve` in `home` with environment changes, connected to a test IDE that
/// handles URL-mode elicitation as `links` says.
pub async fn spawn_bridge_links(
    home: &Home,
    env: &[(&str, Option<&str>)],
    links: Links,
) -> (Client, mpsc::UnboundedReceiver<Seen>) {
    spawn_ide(env_command(home, &[], env), links).await
}

fn env_command(home: &Home, args: &[&str], env: &[(&str, Option<&str>)]) -> tokio::process::Command {
    let mut cmd = bridge_command(home, args);
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd
}

async fn spawn_ide(cmd: tokio::process::Command, links: Links) -> (Client, mpsc::UnboundedReceiver<Seen>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let transport = TokioChildProcess::new(cmd).unwrap();
    let client = Ide { seen: tx, links }
        .serve(transport)
        .await
        .expect("bridge initialises");
    (client, rx)
}

/// The bridge launched by `cmd`, connected to a test IDE; the third value
/// resolves to everything the bridge wrote to stderr once it has exited.
pub async fn spawn_with_stderr(
    cmd: tokio::process::Command,
) -> (Client, mpsc::UnboundedReceiver<Seen>, tokio::task::JoinHandle<String>) {
    let (transport, stderr) = TokioChildProcess::builder(cmd).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = stderr.expect("stderr is piped");
    let read = tokio::spawn(async move {
        let mut out = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut stderr, &mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let client = Ide::new(tx).serve(transport).await.expect("bridge initialises");
    (client, rx, read)
}

/// Like `spawn_bridge`, with a `RUST_LOG`, also returning the bridge's process id
/// (for its RSS).
pub async fn spawn_bridge_with_pid(
    home: &Home,
    args: &[&str],
    rust_log: &str,
) -> (Client, mpsc::UnboundedReceiver<Seen>, u32) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut cmd = bridge_command(home, args);
    cmd.env("RUST_LOG", rust_log);
    let transport = TokioChildProcess::new(cmd).unwrap();
    let pid = transport.id().expect("the bridge is running");
    let client = Ide::new(tx).serve(transport).await.expect("bridge initialises");
    (client, rx, pid)
}

/// How often [`eventually`] checks again when nothing tells it of a change.
pub const POLL: Duration = Duration::from_millis(20);

/// What tells a wait that the thing it waits for may have changed, so that it
/// checks again: a timer, a channel, a `Notify`. `next` is called before each
/// check and arms at once, so a change made during the check is not missed.
pub trait Wake {
    /// Resolves on the next change after this call; `Err` says why none can come.
    fn next(&mut self) -> impl Future<Output = Result<(), &'static str>> + '_;
}

/// Check again after this long: polling, for state nothing signals.
pub struct Every(pub Duration);

impl Wake for Every {
    fn next(&mut self) -> impl Future<Output = Result<(), &'static str>> + '_ {
        let d = self.0;
        async move {
            tokio::time::sleep(d).await;
            Ok(())
        }
    }
}

/// Check again at once: the check itself waits (it reads the next line,
/// chunk or message of a stream).
pub struct Now;

impl Wake for Now {
    fn next(&mut self) -> impl Future<Output = Result<(), &'static str>> + '_ {
        std::future::ready(Ok(()))
    }
}

/// Every message is a possible change (the test IDE's `Seen` notifications).
impl<T> Wake for mpsc::UnboundedReceiver<T> {
    async fn next(&mut self) -> Result<(), &'static str> {
        self.recv().await.map(drop).ok_or("the channel it listened on closed")
    }
}

/// A new version of the value is a possible change.
impl<T> Wake for tokio::sync::watch::Receiver<T> {
    fn next(&mut self) -> impl Future<Output = Result<(), &'static str>> + '_ {
        self.mark_unchanged();
        async move { self.changed().await.map_err(|_| "the state it watched was dropped") }
    }
}

/// A `notify_waiters` is a possible change (registered before the check).
impl Wake for &Notify {
    fn next(&mut self) -> impl Future<Output = Result<(), &'static str>> + '_ {
        let mut notified = Box::pin(self.notified());
        notified.as_mut().enable();
        async move {
            notified.await;
            Ok(())
        }
    }
}

impl<W: Wake> Wake for &mut W {
    fn next(&mut self) -> impl Future<Output = Result<(), &'static str>> + '_ {
        (**self).next()
    }
}

/// Whichever comes first: a signal, or a beat when the signal may not come.
impl<A: Wake, B: Wake> Wake for (A, B) {
    fn next(&mut self) -> impl Future<Output = Result<(), &'static str>> + '_ {
        let (a, b) = (self.0.next(), self.1.next());
        async move {
            tokio::select! {
                r = a => r,
                r = b => r,
            }
        }
    }
}

/// Text shown as it is (lines, no quotes) where a wait names what it saw last.
pub struct Text(pub String);

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Check `probe` until it returns `Ok`, for at most `within`, checking again every
/// [`POLL`]. `Err` carries what the check saw, which the panic on timeout shows.
pub async fn eventually<T, O: std::fmt::Debug>(
    what: &str,
    within: Duration,
    probe: impl AsyncFnMut() -> Result<T, O>,
) -> T {
    eventually_woken(what, within, Every(POLL), probe).await
}

/// [`eventually`], checking again whenever `wake` signals a possible change. The
/// deadline bounds the checks too: a check still running at the deadline fails
/// the wait. Panics naming `what` and the last thing a check saw.
pub async fn eventually_woken<T, O: std::fmt::Debug>(
    what: &str,
    within: Duration,
    mut wake: impl Wake,
    mut probe: impl AsyncFnMut() -> Result<T, O>,
) -> T {
    let deadline = tokio::time::Instant::now() + within;
    let mut last: Option<O> = None;
    loop {
        let next = wake.next();
        match tokio::time::timeout_at(deadline, probe()).await {
            Ok(Ok(t)) => return t,
            Ok(Err(seen)) => last = Some(seen),
            Err(_) => {
                panic!("timed out after {within:?} waiting for {what} (a check was still running); last seen: {last:?}")
            }
        }
        let last = last.as_ref().expect("set just above");
        match tokio::time::timeout_at(deadline, next).await {
            Ok(Ok(())) => {}
            Ok(Err(gone)) => panic!("{gone} while waiting for {what}; last seen: {last:?}"),
            Err(_) => panic!("timed out after {within:?} waiting for {what}; last seen: {last:?}"),
        }
    }
}

/// Tool names the bridge currently lists.
pub async fn tool_names(c: &Client) -> Vec<String> {
    let mut v: Vec<String> = c
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    v.sort();
    v
}

/// Wait (bounded) until the bridge lists a tool satisfying `pred`, re-listing on
/// every notification the test IDE receives (`tools/list_changed` among them).
pub async fn wait_for_tools(
    c: &Client,
    seen: &mut mpsc::UnboundedReceiver<Seen>,
    pred: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    eventually_woken(
        "the tools the test expects",
        Duration::from_secs(20),
        seen,
        async || {
            let names = tool_names(c).await;
            if pred(&names) { Ok(names) } else { Err(names) }
        },
    )
    .await
}

pub fn params(name: &str, args: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(name.to_owned()).with_arguments(args.as_object().cloned().unwrap_or_default())
}

/// The text of the first content block.
pub fn first_text(r: &CallToolResult) -> String {
    r.content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default()
}

/// The IDE as raw JSON-RPC lines: the bridge spawned with piped stdio, for
/// tests about the exact wire shape.
pub struct Raw {
    pub child: tokio::process::Child,
    pub stdin: Option<tokio::process::ChildStdin>,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Raw {
    pub fn spawn(home: &Home) -> Raw {
        Self::spawn_args(home, &[])
    }
    pub fn spawn_args(home: &Home, args: &[&str]) -> Raw {
        let mut child = bridge_command(home, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Raw { child, stdin, lines }
    }
    pub async fn send(&mut self, line: &str) {
        let w = self.stdin.as_mut().unwrap();
        w.write_all(line.as_bytes()).await.unwrap();
        w.write_all(b"\n").await.unwrap();
        w.flush().await.unwrap();
    }
    /// Next stdout line as it was written.
    pub async fn recv_text(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(10), self.lines.next_line())
            .await
            .expect("an answer within 10 s")
            .unwrap()
            .expect("stdout open")
    }
    /// Next answer (a line without `method`) as written, skipping the
    /// bridge's notifications and requests.
    pub async fn answer_text(&mut self) -> String {
        loop {
            let line = self.recv_text().await;
            let v: Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout is not JSON-RPC: {line:?}: {e}"));
            if v.get("method").is_none() {
                return line;
            }
        }
    }
    /// Next answer, parsed.
    pub async fn answer(&mut self) -> Value {
        serde_json::from_str(&self.answer_text().await).unwrap()
    }
    /// Next stdout line, which must be JSON-RPC.
    pub async fn recv(&mut self) -> Value {
        let line = self.recv_text().await;
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout is not JSON-RPC: {line:?}: {e}"));
        assert_eq!(v["jsonrpc"], json!("2.0"), "{line}");
        v
    }
    pub async fn initialize(&mut self) {
        self.send(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#).await;
        assert_eq!(self.recv().await["id"], json!(1));
        self.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await;
    }
}
