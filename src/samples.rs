//! Two small, real MCP servers served over Streamable HTTP on loopback, used by
//! `mcp-bridge demo` and the benchmark: "notes" (2025-11-25 with sessions; tools,
//! a resource, a resource template, a prompt with completion) and "metrics"
//! (2026-07-28, stateless; tools with structured output and one that reports
//! progress).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult,
    GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, Prompt, ProtocolVersion,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::util::Locked;

/// Build a value of an rmcp model type from its wire JSON.
pub fn from_json<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("valid MCP JSON")
}

/// A text result. Built with rmcp's constructor, so it carries `resultType`,
/// which a 2026-07-28 server must send (rmcp strips it for older clients).
pub fn text_result(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![rmcp::model::ContentBlock::text(text.into())])
}

fn tool_error(text: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![rmcp::model::ContentBlock::text(text.into())])
}

fn arg_str(p: &CallToolRequestParams, key: &str) -> Option<String> {
    p.arguments.as_ref()?.get(key)?.as_str().map(str::to_owned)
}

fn arg_f64(p: &CallToolRequestParams, key: &str) -> Option<f64> {
    p.arguments.as_ref()?.get(key)?.as_f64()
}

pub const LEGACY_VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_03_26,
];
pub const MODERN_VERSIONS: &[ProtocolVersion] = &[ProtocolVersion::V_2026_07_28];

/// A running sample server.
pub struct Running {
    pub addr: SocketAddr,
    pub url: String,
    pub stop: CancellationToken,
}

/// Serve `factory`'s handlers at `http://127.0.0.1:<port>/mcp`. `sessions` picks
/// legacy session mode (a `Mcp-Session-Id` per client); otherwise stateless.
pub async fn serve_http<S, F>(factory: F, sessions: bool, port: u16) -> std::io::Result<Running>
where
    S: ServerHandler + Send + 'static,
    F: Fn() -> S + Send + Sync + 'static,
{
    let (app, stop) = router(factory, sessions);
    serve_router(app, stop, port, true).await
}

/// The axum Router serving `factory`'s handlers at `/mcp`, and the token that
/// stops its sessions; for a caller with its own listener (the bench's TLS
/// server). `sessions` as in [`serve_http`].
pub fn router<S, F>(factory: F, sessions: bool) -> (axum::Router, CancellationToken)
where
    S: ServerHandler + Send + 'static,
    F: Fn() -> S + Send + Sync + 'static,
{
    let stop = CancellationToken::new();
    let mut cfg = StreamableHttpServerConfig::default();
    cfg.legacy_session_mode = sessions;
    cfg.json_response = !sessions;
    cfg.cancellation_token = stop.child_token();
    let service = StreamableHttpService::new(move || Ok(factory()), Arc::new(LocalSessionManager::default()), cfg);
    (axum::Router::new().nest_service("/mcp", service), stop)
}

/// Serve `app` over plain HTTP/1.1 at `http://127.0.0.1:<port>/mcp` until `stop`.
/// `nodelay` sets TCP_NODELAY on every accepted connection, as production HTTP
/// stacks do: without it an SSE response written in pieces meets a client's
/// delayed ACK on a reused connection and stalls ~40 ms (mcp-remote measured
/// 44 ms per call against these servers before); the bench serves both ways.
pub async fn serve_router(
    app: axum::Router,
    stop: CancellationToken,
    port: u16,
    nodelay: bool,
) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let listener = axum::serve::ListenerExt::tap_io(listener, move |tcp| {
        let _ = tcp.set_nodelay(nodelay);
    });
    let ct = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { ct.cancelled().await })
            .await;
    });
    Ok(Running {
        addr,
        url: format!("http://{addr}/mcp"),
        stop,
    })
}

// ---------------------------------------------------------------- notes

#[derive(Debug, Clone)]
struct Note {
    title: String,
    body: String,
}

/// A note book shared by every session of one "notes" server.
#[derive(Clone, Default)]
pub struct Notes {
    notes: Arc<Mutex<BTreeMap<u64, Note>>>,
}

impl Notes {
    pub fn seeded() -> Notes {
        let n = Notes::default();
        {
            let mut m = n.notes.locked();
            m.insert(
                1,
                Note {
                    title: "Welcome".into(),
                    body: "mcp-bridge routes this note through one stdio entry.".into(),
                },
            );
            m.insert(
                2,
                Note {
                    title: "Standup".into(),
                    body: "Ship the registry sync; review the OAuth flow.".into(),
                },
            );
        }
        n
    }

    fn tools() -> Vec<Tool> {
        from_json(json!([
            { "name": "add_note", "title": "Add a note", "description": "Store a note and return its id.",
              "inputSchema": { "type": "object", "properties": {
                  "title": { "type": "string" }, "body": { "type": "string" } }, "required": ["title", "body"] } },
            { "name": "list_notes", "description": "List the titles of all notes.",
              "inputSchema": { "type": "object", "properties": {} },
              "annotations": { "readOnlyHint": true } },
            { "name": "search_notes", "description": "Find notes whose title or body contains the query.",
              "inputSchema": { "type": "object", "properties": { "query": { "type": "string" } }, "required": ["query"] },
              "annotations": { "readOnlyHint": true } }
        ]))
    }
}

impl ServerHandler for Notes {
    fn get_info(&self) -> ServerConfig {
        let caps = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_prompts()
            .enable_completions()
            .build();
        ServerConfig::new(caps).with_server_info(Implementation::new("notes", "1.0.0"))
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(LEGACY_VERSIONS)
    }

    async fn list_tools(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(Self::tools()))
    }

    async fn call_tool(
        &self,
        p: CallToolRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let mut notes = self.notes.locked();
        let r = match p.name.as_ref() {
            "add_note" => {
                let (Some(title), Some(body)) = (arg_str(&p, "title"), arg_str(&p, "body")) else {
                    return Ok(tool_error("add_note needs a title and a body").into());
                };
                let id = notes.keys().next_back().copied().unwrap_or(0) + 1;
                notes.insert(id, Note { title, body });
                text_result(format!("stored note {id}"))
            }
            "list_notes" => text_result(
                notes
                    .iter()
                    .map(|(id, n)| format!("{id}: {}", n.title))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            "search_notes" => {
                let q = arg_str(&p, "query").unwrap_or_default().to_lowercase();
                let hits: Vec<_> = notes
                    .iter()
                    .filter(|(_, n)| n.title.to_lowercase().contains(&q) || n.body.to_lowercase().contains(&q))
                    .map(|(id, n)| format!("{id}: {}", n.title))
                    .collect();
                text_result(if hits.is_empty() {
                    "no match".into()
                } else {
                    hits.join("\n")
                })
            }
            other => return Err(McpError::invalid_params(format!("unknown tool {other}"), None)),
        };
        Ok(r.into())
    }

    async fn list_resources(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let r: Resource = from_json(
            json!({ "uri": "notes://index", "name": "index", "mimeType": "text/plain",
            "description": "Titles of all notes" }),
        );
        Ok(ListResourcesResult::with_all_items(vec![r]))
    }

    async fn list_resource_templates(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let t: ResourceTemplate =
            from_json(json!({ "uriTemplate": "notes://note/{id}", "name": "note", "mimeType": "text/plain" }));
        Ok(ListResourceTemplatesResult::with_all_items(vec![t]))
    }

    async fn read_resource(
        &self,
        p: ReadResourceRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let notes = self.notes.locked();
        let text = if p.uri == "notes://index" {
            notes
                .iter()
                .map(|(id, n)| format!("{id}: {}", n.title))
                .collect::<Vec<_>>()
                .join("\n")
        } else if let Some(n) = p
            .uri
            .strip_prefix("notes://note/")
            .and_then(|id| id.parse::<u64>().ok())
            .and_then(|id| notes.get(&id))
        {
            format!("# {}\n\n{}", n.title, n.body)
        } else {
            return Err(McpError::resource_not_found(format!("no resource {}", p.uri), None));
        };
        Ok(ReadResourceResult::new(vec![ResourceContents::text(text, p.uri)]).into())
    }

    async fn list_prompts(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let p: Prompt = from_json(
            json!({ "name": "summarize_notes", "description": "Summarize all notes.",
            "arguments": [{ "name": "style", "description": "brief or detailed", "required": false }] }),
        );
        Ok(ListPromptsResult::with_all_items(vec![p]))
    }

    async fn get_prompt(
        &self,
        p: GetPromptRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        if p.name != "summarize_notes" {
            return Err(McpError::invalid_params(format!("unknown prompt {}", p.name), None));
        }
        let style = p
            .arguments
            .as_ref()
            .and_then(|a| a.get("style"))
            .and_then(Value::as_str)
            .unwrap_or("brief");
        let notes = self.notes.locked();
        let all = notes
            .values()
            .map(|n| format!("- {}: {}", n.title, n.body))
            .collect::<Vec<_>>()
            .join("\n");
        Ok(GetPromptResponse::Complete(from_json(json!({
            "description": "Summarize notes",
            "messages": [{ "role": "user", "content": { "type": "text",
                "text": format!("Give a {style} summary of these notes:\n{all}") } }]
        }))))
    }

    async fn complete(
        &self,
        p: CompleteRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let prefix = p.argument.value.clone();
        let values: Vec<&str> = ["brief", "detailed"]
            .into_iter()
            .filter(|v| v.starts_with(&prefix))
            .collect();
        Ok(from_json(
            json!({ "completion": { "values": values, "total": values.len(), "hasMore": false } }),
        ))
    }
}

// ---------------------------------------------------------------- metrics

/// A tiny in-memory time-series store shared by all requests of one server.
#[derive(Clone, Default)]
pub struct Metrics {
    series: Arc<Mutex<BTreeMap<String, Vec<f64>>>>,
}

impl Metrics {
    fn tools() -> Vec<Tool> {
        from_json(json!([
            { "name": "record", "description": "Record a value in a named series.",
              "inputSchema": { "type": "object", "properties": {
                  "name": { "type": "string" }, "value": { "type": "number" } }, "required": ["name", "value"] } },
            { "name": "query", "description": "Count, mean, min and max of a series.",
              "inputSchema": { "type": "object", "properties": { "name": { "type": "string" } }, "required": ["name"] },
              "outputSchema": { "type": "object", "properties": {
                  "count": { "type": "integer" }, "mean": { "type": "number" },
                  "min": { "type": "number" }, "max": { "type": "number" } } },
              "annotations": { "readOnlyHint": true } },
            { "name": "generate_report", "description": "Build a report in steps, reporting progress.",
              "inputSchema": { "type": "object", "properties": { "steps": { "type": "integer", "minimum": 1, "maximum": 20 } } } },
            { "name": "echo", "description": "Return the text unchanged (for latency checks).",
              "inputSchema": { "type": "object", "properties": { "text": { "type": "string" } } },
              "annotations": { "readOnlyHint": true } }
        ]))
    }
}

impl ServerHandler for Metrics {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("metrics", "1.0.0"))
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(MODERN_VERSIONS)
    }

    async fn list_tools(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(Self::tools()))
    }

    async fn call_tool(
        &self,
        p: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let r = match p.name.as_ref() {
            "echo" => text_result(arg_str(&p, "text").unwrap_or_default()),
            "record" => {
                let (Some(name), Some(v)) = (arg_str(&p, "name"), arg_f64(&p, "value")) else {
                    return Ok(tool_error("record needs a name and a numeric value").into());
                };
                let mut s = self.series.locked();
                let series = s.entry(name.clone()).or_default();
                series.push(v);
                text_result(format!("{name}: {} values", series.len()))
            }
            "query" => {
                let name = arg_str(&p, "name").unwrap_or_default();
                let s = self.series.locked();
                let Some(v) = s.get(&name).filter(|v| !v.is_empty()) else {
                    return Ok(tool_error(format!("no series named {name:?}")).into());
                };
                let mean = v.iter().sum::<f64>() / v.len() as f64;
                let min = v.iter().copied().fold(f64::INFINITY, f64::min);
                let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let structured = json!({ "count": v.len(), "mean": mean, "min": min, "max": max });
                from_json(
                    json!({ "content": [{ "type": "text", "text": structured.to_string() }], "structuredContent": structured }),
                )
            }
            "generate_report" => {
                let steps = p
                    .arguments
                    .as_ref()
                    .and_then(|a| a.get("steps"))
                    .and_then(Value::as_u64)
                    .unwrap_or(3)
                    .clamp(1, 20);
                if let Some(token) = ctx.meta.get_progress_token() {
                    for i in 1..=steps {
                        let n = ProgressNotificationParam::new(token.clone(), i as f64)
                            .with_total(steps as f64)
                            .with_message(format!("step {i} of {steps}"));
                        let _ = ctx.peer.notify_progress(n).await;
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                }
                let count = self.series.locked().len();
                text_result(format!("report ready after {steps} steps: {count} series"))
            }
            other => return Err(McpError::invalid_params(format!("unknown tool {other}"), None)),
        };
        Ok(r.into())
    }
}
