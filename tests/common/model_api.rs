//! A loopback stand-in for a coding agent's model API, scripted to make exactly
//! one MCP tool call (issue 16, requirement 4).
//!
//! It speaks the three wire APIs the agents use, parsing the real request JSON:
//! OpenAI Chat Completions (`POST …/chat/completions`, Copilot CLI), Anthropic
//! Messages (`POST …/messages`, Claude Code) and OpenAI Responses
//! (`POST …/responses`, Codex). For each model request:
//!
//! - if it carries a tool result for the call this stand-in asked for, the
//!   result's text is recorded and the answer is a final text;
//! - else, if its `tools` list offers a tool that [`Plan::pick`] accepts, and no
//!   call was asked for yet, the answer asks to call it with [`Plan::arguments`]
//!   (the tool's name as the agent spelled it is recorded);
//! - else, for an agent that defers its MCP tools behind a search tool
//!   ([`Plan::search`]), the answer calls that tool once for the deferred tool
//!   the request names, and the call is made when a later request offers it;
//! - else, for an agent that offers MCP tools only to code it runs
//!   ([`Plan::code`]), the answer calls its code tool with a script that calls
//!   the MCP tool;
//! - else the answer is a plain text (agents also send side requests: titles,
//!   summaries), and the request is logged to stderr.
//!
//! Answers are streamed as SSE in the wire's own event format when the request
//! says `"stream": true`, and are plain JSON otherwise. Any other request (a
//! WebSocket upgrade, a model list) gets a quick 404 and is logged to stderr.
//! Every request is kept, for the test to print when it fails.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::Response;
use mcp_bridge::util::Locked;
use serde_json::{Value, json};

/// The search tool's input for a deferred tool's name.
pub type SearchInput = Box<dyn Fn(&str) -> Value + Send + Sync>;

/// What the scripted model does.
pub struct Plan {
    /// Which offered tool to call, by its name as the agent spelled it.
    pub pick: Box<dyn Fn(&str) -> bool + Send + Sync>,
    /// The call's arguments.
    pub arguments: Value,
    /// For agents that offer MCP tools only to code they run (Codex's code mode):
    /// the custom tool to call instead (`exec`), and its input (a script that
    /// calls the MCP tool). Used when the request offers that tool and none that
    /// `pick` accepts.
    pub code: Option<(String, String)>,
    /// For agents that defer MCP tools behind a search tool (Claude Code's
    /// ToolSearch): that tool's name, and its input for the deferred tool's
    /// name. Called once when the request offers the search tool but no tool
    /// that `pick` accepts, and mentions one `pick` accepts in its text (the
    /// deferred list); the call itself waits for a request that offers it.
    pub search: Option<(String, SearchInput)>,
    /// The final answer, once the tool result is back.
    pub final_text: String,
}

/// What the stand-in saw.
#[derive(Default)]
pub struct Seen {
    /// Every request: method, path and JSON body (`null` if not JSON).
    pub requests: Vec<(String, String, Value)>,
    /// The names of the tools offered by the request that got the tool call.
    pub offered: Vec<String>,
    /// The picked tool's name, as the agent spelled it.
    pub called: Option<String>,
    /// The text of every tool result sent back for that call.
    pub results: Vec<String>,
    /// The search made first (tool, deferred name), if any.
    pub searched: Option<(String, String)>,
}

struct Api {
    script: Plan,
    seen: Mutex<Seen>,
}

/// The running stand-in; it stops with the test's runtime.
pub struct ModelApi {
    pub addr: SocketAddr,
    api: Arc<Api>,
}

/// The call id the stand-in gives its one tool call.
const CALL_ID: &str = "call_standin_1";
/// The call id of the search made first, if any.
const SEARCH_ID: &str = "call_standin_search";

impl ModelApi {
    /// Serve `script` on 127.0.0.1 at a free port, in the current runtime.
    pub async fn start(script: Plan) -> ModelApi {
        let api = Arc::new(Api {
            script,
            seen: Mutex::new(Seen::default()),
        });
        let app = axum::Router::new().fallback(handle).with_state(api.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        ModelApi { addr, api }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A view of what was seen so far.
    pub fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.api.seen.locked())
    }

    /// Every request seen, one per line, for failure messages.
    pub fn log(&self) -> String {
        self.seen(|s| {
            s.requests
                .iter()
                .map(|(m, p, b)| format!("{m} {p} {b}"))
                .collect::<Vec<_>>()
                .join("\n")
        })
    }
}

/// The three wire APIs.
#[derive(Clone, Copy, Debug)]
enum Wire {
    Chat,
    Messages,
    Responses,
}

async fn handle(State(api): State<Arc<Api>>, method: Method, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    api.seen
        .locked()
        .requests
        .push((method.to_string(), uri.to_string(), body.clone()));
    let wire = match (&method, path.as_str()) {
        (&Method::POST, p) if p.ends_with("/chat/completions") => Wire::Chat,
        (&Method::POST, p) if p.ends_with("/messages") => Wire::Messages,
        (&Method::POST, p) if p.ends_with("/responses") => Wire::Responses,
        _ => {
            eprintln!("model stand-in: 404 for {method} {uri} {body}");
            return Response::builder()
                .status(StatusCode::NOT_FOUND)
                .body(Body::from("not found"))
                .unwrap();
        }
    };
    let offered = offered_tools(wire, &body);
    let results = tool_results(wire, &body);
    let turn = {
        let mut seen = api.seen.locked();
        if !results.is_empty() && seen.called.is_some() {
            seen.results.extend(results);
            Turn::Text(api.script.final_text.clone())
        } else if let (None, Some(name)) = (&seen.called, offered.iter().find(|n| (api.script.pick)(n))) {
            seen.called = Some(name.clone());
            seen.offered = offered.clone();
            Turn::Call(CALL_ID, name.clone(), api.script.arguments.to_string())
        } else if let (None, None, Some((tool, input)), Some(name)) = (
            &seen.called,
            &seen.searched,
            &api.script.search,
            mentioned(&body).into_iter().find(|n| (api.script.pick)(n)),
        ) && offered.contains(tool)
        {
            seen.searched = Some((tool.clone(), name.clone()));
            Turn::Call(SEARCH_ID, tool.clone(), input(&name).to_string())
        } else if let (None, Some((tool, input))) = (&seen.called, &api.script.code)
            && offered.contains(tool)
        {
            seen.called = Some(tool.clone());
            seen.offered = offered.clone();
            Turn::Custom(tool.clone(), input.clone())
        } else {
            eprintln!(
                "model stand-in: {wire:?} request answered with plain text (offered {offered:?}): {}",
                body.to_string().chars().take(2000).collect::<String>()
            );
            Turn::Text("(stand-in) nothing to do".into())
        }
    };
    let model = body["model"].as_str().unwrap_or("stand-in").to_owned();
    let stream = body["stream"] == true;
    match wire {
        Wire::Chat => chat(&turn, &model, stream),
        Wire::Messages => messages(&turn, &model, stream),
        Wire::Responses => responses(&turn, &model),
    }
}

/// The model's answer to one request.
enum Turn {
    /// Call a tool (call id, name, arguments as JSON text).
    Call(&'static str, String, String),
    /// Call a custom (free-form input) tool: name, input. Responses only.
    Custom(String, String),
    Text(String),
}

/// The tool names a request offers: its `tools`, and for Responses also the
/// tools an input item carries (Codex 0.171 sends them in its developer
/// message), each tool of a `namespace` by its own name.
fn offered_tools(wire: Wire, body: &Value) -> Vec<String> {
    let mut lists = vec![&body["tools"]];
    if let Wire::Responses = wire {
        lists.extend(body["input"].as_array().into_iter().flatten().map(|i| &i["tools"]));
    }
    let mut out = Vec::new();
    for t in lists.into_iter().filter_map(Value::as_array).flatten() {
        if t["type"] == "namespace" {
            for inner in t["tools"].as_array().into_iter().flatten() {
                out.extend(inner["name"].as_str().map(str::to_owned));
            }
            continue;
        }
        let name = match wire {
            Wire::Chat => &t["function"]["name"],
            Wire::Messages | Wire::Responses => &t["name"],
        };
        out.extend(name.as_str().map(str::to_owned));
    }
    out
}

/// Every word of every string in a request (split at whitespace, quotes,
/// commas and brackets): where an agent names its deferred tools.
fn mentioned(body: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.extend(
                s.split(|c: char| c.is_whitespace() || "\"'`,;()[]{}<>".contains(c))
                    .filter(|w| !w.is_empty())
                    .map(str::to_owned),
            ),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(body, &mut out);
    out
}

/// The text of `v`: a string, or the `text` of each part of an array.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str().or(p.as_str()))
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The results a request carries for the stand-in's call.
fn tool_results(wire: Wire, body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match wire {
        Wire::Chat => {
            for m in body["messages"].as_array().into_iter().flatten() {
                if m["role"] == "tool" && m["tool_call_id"] == CALL_ID {
                    out.push(text_of(&m["content"]));
                }
            }
        }
        Wire::Messages => {
            for m in body["messages"].as_array().into_iter().flatten() {
                for c in m["content"].as_array().into_iter().flatten() {
                    if c["type"] == "tool_result" && c["tool_use_id"] == CALL_ID {
                        out.push(text_of(&c["content"]));
                    }
                }
            }
        }
        Wire::Responses => {
            for i in body["input"].as_array().into_iter().flatten() {
                let output = i["type"] == "function_call_output" || i["type"] == "custom_tool_call_output";
                if output && i["call_id"] == CALL_ID {
                    out.push(text_of(&i["output"]));
                }
            }
        }
    }
    out
}

fn json_response(v: Value) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(v.to_string()))
        .unwrap()
}

/// An SSE body of `(event name, data)` pairs; `None` writes no `event:` line.
fn sse(events: Vec<(Option<&str>, String)>) -> Response {
    let mut text = String::new();
    for (event, data) in events {
        if let Some(e) = event {
            text.push_str(&format!("event: {e}\n"));
        }
        text.push_str(&format!("data: {data}\n\n"));
    }
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from(text))
        .unwrap()
}

/// OpenAI Chat Completions.
fn chat(turn: &Turn, model: &str, stream: bool) -> Response {
    let (message, delta, finish) = match turn {
        Turn::Custom(..) => unreachable!("custom tools are offered only on the Responses wire"),
        Turn::Call(id, name, args) => {
            let call = json!({ "id": id, "type": "function", "function": { "name": name, "arguments": args } });
            let mut streamed = call.clone();
            streamed["index"] = json!(0);
            (
                json!({ "role": "assistant", "content": null, "tool_calls": [call] }),
                json!({ "role": "assistant", "content": null, "tool_calls": [streamed] }),
                "tool_calls",
            )
        }
        Turn::Text(t) => (
            json!({ "role": "assistant", "content": t }),
            json!({ "role": "assistant", "content": t }),
            "stop",
        ),
    };
    let usage = json!({ "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15 });
    let base = json!({ "id": "chatcmpl-standin", "created": 0, "model": model });
    if !stream {
        let mut v = base;
        v["object"] = json!("chat.completion");
        v["choices"] = json!([{ "index": 0, "message": message, "finish_reason": finish }]);
        v["usage"] = usage;
        return json_response(v);
    }
    let chunk = |choice: Value, usage: Option<&Value>| {
        let mut v = base.clone();
        v["object"] = json!("chat.completion.chunk");
        v["choices"] = json!([choice]);
        if let Some(u) = usage {
            v["usage"] = u.clone();
        }
        v.to_string()
    };
    sse(vec![
        (
            None,
            chunk(json!({ "index": 0, "delta": delta, "finish_reason": null }), None),
        ),
        (
            None,
            chunk(
                json!({ "index": 0, "delta": {}, "finish_reason": finish }),
                Some(&usage),
            ),
        ),
        (None, "[DONE]".into()),
    ])
}

/// Anthropic Messages.
fn messages(turn: &Turn, model: &str, stream: bool) -> Response {
    let (block, stop) = match turn {
        Turn::Custom(..) => unreachable!("custom tools are offered only on the Responses wire"),
        Turn::Call(id, name, args) => (
            json!({ "type": "tool_use", "id": id, "name": name,
                    "input": serde_json::from_str::<Value>(args).unwrap() }),
            "tool_use",
        ),
        Turn::Text(t) => (json!({ "type": "text", "text": t }), "end_turn"),
    };
    let usage = json!({ "input_tokens": 10, "output_tokens": 5 });
    if !stream {
        return json_response(json!({
            "id": "msg_standin", "type": "message", "role": "assistant", "model": model,
            "content": [block], "stop_reason": stop, "stop_sequence": null, "usage": usage
        }));
    }
    let (start, delta) = match turn {
        Turn::Custom(..) => unreachable!(),
        Turn::Call(id, name, args) => (
            json!({ "type": "tool_use", "id": id, "name": name, "input": {} }),
            json!({ "type": "input_json_delta", "partial_json": args }),
        ),
        Turn::Text(t) => (
            json!({ "type": "text", "text": "" }),
            json!({ "type": "text_delta", "text": t }),
        ),
    };
    sse(vec![
        (
            Some("message_start"),
            json!({ "type": "message_start", "message": {
                "id": "msg_standin", "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": { "input_tokens": 10, "output_tokens": 1 } } })
            .to_string(),
        ),
        (
            Some("content_block_start"),
            json!({ "type": "content_block_start", "index": 0, "content_block": start }).to_string(),
        ),
        (
            Some("content_block_delta"),
            json!({ "type": "content_block_delta", "index": 0, "delta": delta }).to_string(),
        ),
        (
            Some("content_block_stop"),
            json!({ "type": "content_block_stop", "index": 0 }).to_string(),
        ),
        (
            Some("message_delta"),
            json!({ "type": "message_delta", "delta": { "stop_reason": stop, "stop_sequence": null },
                    "usage": { "output_tokens": 5 } })
            .to_string(),
        ),
        (Some("message_stop"), json!({ "type": "message_stop" }).to_string()),
    ])
}

/// OpenAI Responses (always streamed: Codex asks for SSE).
fn responses(turn: &Turn, model: &str) -> Response {
    let item = match turn {
        Turn::Call(id, name, args) => json!({
            "type": "function_call", "id": format!("fc_{id}"), "call_id": id,
            "name": name, "arguments": args, "status": "completed"
        }),
        Turn::Custom(name, input) => json!({
            "type": "custom_tool_call", "id": "ctc_standin", "call_id": CALL_ID,
            "name": name, "input": input, "status": "completed"
        }),
        Turn::Text(t) => json!({
            "type": "message", "id": "msg_standin", "role": "assistant", "status": "completed",
            "content": [{ "type": "output_text", "text": t, "annotations": [] }]
        }),
    };
    let response = |status: &str, output: Value| {
        json!({ "id": "resp_standin", "object": "response", "created_at": 0, "model": model,
                "status": status, "output": output,
                "usage": { "input_tokens": 10, "input_tokens_details": { "cached_tokens": 0 },
                           "output_tokens": 5, "output_tokens_details": { "reasoning_tokens": 0 },
                           "total_tokens": 15 } })
    };
    sse(vec![
        (
            Some("response.created"),
            json!({ "type": "response.created", "response": response("in_progress", json!([])) }).to_string(),
        ),
        (
            Some("response.output_item.done"),
            json!({ "type": "response.output_item.done", "output_index": 0, "item": item }).to_string(),
        ),
        (
            Some("response.completed"),
            json!({ "type": "response.completed", "response": response("completed", json!([item])) }).to_string(),
        ),
    ])
}
