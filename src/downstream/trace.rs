//! Trace context across the bridge: the IDE's W3C `traceparent`,
//! `tracestate` and `baggage` (request `_meta`) go upstream in the forwarded
//! request's `_meta` (the HTTP layer copies them into headers). With
//! telemetry on, the bridge's span sits between: the server sees the
//! bridge's span as its parent, and the span records the server, the method
//! and tool, the outcome, the duration and the result size, never an
//! argument or a result. The IDE's other `_meta` keys stay with the IDE.

use std::sync::Arc;
use std::time::Instant;

use rmcp::model::{CallToolResult, ClientRequest, GetMeta, MetaObject, ServerResult};

use crate::telemetry::{Attr, Kind, Span, Telemetry, TraceParent, metrics::OpKey};
use crate::upstream::{RequestError, RequestFailure};

/// A forwarded request being traced.
pub(super) struct Traced {
    span: Option<Span>,
    method: String,
    target: Option<String>,
    started: Instant,
}

/// Put the trace context on `request` (the bridge's span when telemetry is
/// on, else the IDE's context as it came) and start timing it; `None` when
/// telemetry is off.
pub(super) fn propagate(t: &Telemetry, request: &mut ClientRequest, ide: &MetaObject) -> Option<Traced> {
    let ide_parent = ide.get_traceparent();
    if !t.is_on() {
        if ide_parent.is_some() || ide.get_baggage().is_some() {
            copy_context(request.get_meta_mut(), ide, ide_parent.map(str::to_owned));
        }
        return None;
    }
    let span = t.start_span(ide_parent.and_then(TraceParent::parse), ide.get_tracestate());
    let traceparent = span
        .as_ref()
        .map(Span::traceparent)
        .or_else(|| ide_parent.map(str::to_owned));
    copy_context(request.get_meta_mut(), ide, traceparent);
    let target = match request {
        ClientRequest::CallToolRequest(r) => Some(r.params.name.to_string()),
        ClientRequest::GetPromptRequest(r) => Some(r.params.name.clone()),
        _ => None,
    };
    Some(Traced {
        span,
        method: request.method().to_owned(),
        target,
        started: Instant::now(),
    })
}

fn copy_context(out: &mut MetaObject, ide: &MetaObject, traceparent: Option<String>) {
    if let Some(tp) = traceparent {
        out.set_traceparent(tp);
        if let Some(ts) = ide.get_tracestate() {
            out.set_tracestate(ts);
        }
    }
    if let Some(b) = ide.get_baggage() {
        out.set_baggage(b);
    }
}

impl Traced {
    /// The request ended with `r`: its span and its duration are recorded.
    pub(super) fn finish(self, t: &Telemetry, server: &Arc<str>, r: &Result<ServerResult, RequestError>) {
        let secs = self.started.elapsed().as_secs_f64();
        let (outcome, error_type, bytes) = match r {
            Ok(ServerResult::CallToolResult(c)) if c.is_error == Some(true) => {
                ("tool_error", Some("tool_error"), result_size(c))
            }
            Ok(ServerResult::CallToolResult(c)) => ("ok", None, result_size(c)),
            Ok(ServerResult::ReadResourceResult(res)) => ("ok", None, resource_size(res)),
            Ok(_) => ("ok", None, 0),
            Err(e) => match &e.failure {
                RequestFailure::Cancelled => ("cancelled", Some("cancelled"), 0),
                f => ("error", Some(error_type(f)), 0),
            },
        };
        t.operation(
            OpKey {
                server: server.clone(),
                method: self.method.clone(),
                target: self.target.clone(),
                error: error_type,
            },
            secs,
        );
        let Some(span) = self.span else { return };
        let name = match &self.target {
            Some(t) => format!("{} {t}", self.method),
            None => self.method.clone(),
        };
        let method = self.method.clone();
        let mut attrs = vec![
            ("mcp.method.name", Attr::Str(self.method)),
            ("mcp_bridge.server", Attr::Str(server.to_string())),
            ("mcp_bridge.outcome", Attr::Str(outcome.to_owned())),
            ("mcp_bridge.result.bytes", Attr::Int(bytes as i64)),
        ];
        match self.target {
            Some(prompt) if method == "prompts/get" => attrs.push(("gen_ai.prompt.name", Attr::Str(prompt))),
            Some(tool) => {
                attrs.push(("gen_ai.tool.name", Attr::Str(tool)));
                attrs.push(("gen_ai.operation.name", Attr::Str("execute_tool".into())));
            }
            None => {}
        }
        if let Some(e) = error_type {
            attrs.push(("error.type", Attr::Str(e.to_owned())));
        }
        // Only the bridge's own failure texts: a server's error message may
        // quote the arguments.
        let error = (outcome == "error").then(|| error_type.unwrap_or("error").to_owned());
        t.end_span(span, name, Kind::Client, attrs, error);
    }
}

/// `error.type` of a failed forwarded request: a fixed word, never a text
/// from the server.
fn error_type(f: &RequestFailure) -> &'static str {
    match f {
        RequestFailure::Unavailable(_) => "unavailable",
        RequestFailure::NeedsScope(_) => "insufficient_scope",
        RequestFailure::LoginRefused | RequestFailure::TokenRefused => "unauthorized",
        RequestFailure::Cancelled => "cancelled",
        RequestFailure::Service { error, .. } => match error {
            rmcp::ServiceError::McpError(_) => "mcp_error",
            rmcp::ServiceError::Timeout { .. } => "timeout",
            _ => "transport",
        },
    }
}

/// The size of a tool result without serialising the text it carries again:
/// text and base64 data lengths, other blocks and structured content
/// serialised (they are small).
pub(super) fn result_size(r: &CallToolResult) -> usize {
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

/// Text and blob lengths of a read resource.
fn resource_size(r: &rmcp::model::ReadResourceResult) -> usize {
    r.contents
        .iter()
        .map(|c| match c {
            rmcp::model::ResourceContents::TextResourceContents { text, .. } => text.len(),
            rmcp::model::ResourceContents::BlobResourceContents { blob, .. } => blob.len(),
            #[allow(unreachable_patterns)]
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{CallToolRequestParams, Request};

    fn call() -> ClientRequest {
        ClientRequest::CallToolRequest(Request::new(CallToolRequestParams::new("echo")))
    }

    const IDE: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    /// With telemetry off the IDE's context goes upstream as it came, and
    /// only the trace keys: nothing else of the IDE's `_meta`.
    #[test]
    fn off_passes_the_ide_context_through() {
        let mut ide = MetaObject::new();
        ide.set_traceparent(IDE);
        ide.set_tracestate("vendor=x");
        ide.set_baggage("team=data");
        ide.0
            .insert("io.modelcontextprotocol/protocolVersion".into(), "2026-07-28".into());
        let mut req = call();
        assert!(propagate(&Telemetry::default(), &mut req, &ide).is_none());
        let meta = req.get_meta();
        assert_eq!(meta.get_traceparent(), Some(IDE));
        assert_eq!(meta.get_tracestate(), Some("vendor=x"));
        assert_eq!(meta.get_baggage(), Some("team=data"));
        assert!(!meta.0.contains_key("io.modelcontextprotocol/protocolVersion"));
        // No context: nothing added.
        let mut req = call();
        assert!(propagate(&Telemetry::default(), &mut req, &MetaObject::new()).is_none());
        assert!(req.get_meta().get_traceparent().is_none());
    }
}
