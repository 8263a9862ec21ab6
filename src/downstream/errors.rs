//! The IDE's words for what went wrong: every `ErrorData` the bridge answers a
//! request with is built here, from a failed upstream request
//! ([`RequestError`]), a name the catalog does not have or the policy hides, or
//! an answer of the wrong kind. The texts are part of the bridge's behaviour
//! (IDEs show them to people, and tests assert on them).

use rmcp::ErrorData as McpError;
use rmcp::model::ServerResult;

use crate::upstream::{RequestError, RequestFailure, UpstreamError, errors as rmcp_errors};

/// The text of a request the IDE cancelled.
pub(super) const CANCELLED: &str = "cancelled by the client";

/// A request for something the policy hides (a stale IDE list, or a guess).
pub(super) fn refused(kind: &str, name: &str, why: &str) -> McpError {
    McpError::invalid_params(
        format!("{kind} {name} is not allowed by the bridge's policy: {why}"),
        Some(serde_json::json!({ "reason": why })),
    )
}

pub(super) fn unknown(kind: &str, name: &str) -> McpError {
    McpError::invalid_params(format!("unknown {kind}: {name}"), None)
}

/// "unknown tool" (or prompt), naming the servers that have not listed
/// anything yet (id, URL, their last error) and why: the name may well be one
/// of theirs.
pub(super) fn unknown_unlisted(kind: &str, name: &str, unlisted: &[(String, String, Option<String>)]) -> McpError {
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

/// A server the catalog routes to but the bridge has no handle for.
pub(super) fn not_connected(server: &str) -> McpError {
    McpError::internal_error(format!("server '{server}' is not connected"), None)
}

/// A server that answered with something other than what was asked for.
pub(super) fn unexpected(what: &str, r: &ServerResult) -> McpError {
    let kind = match r {
        ServerResult::CreateTaskResult(_) => "a task",
        _ => "an unexpected result",
    };
    McpError::internal_error(format!("the server answered {what} with {kind}"), None)
}

impl From<RequestError> for McpError {
    fn from(e: RequestError) -> McpError {
        let RequestError { server, url, failure } = e;
        match failure {
            RequestFailure::Unavailable(e) => unavailable(&server, e),
            RequestFailure::NeedsScope(scope) => McpError::internal_error(
                format!(
                    "server '{server}' needs more access ({scope}): run `mcp-bridge login {server} --scope {}`",
                    scope.replace(' ', " --scope ")
                ),
                Some(serde_json::json!({ "server": server, "scope": scope })),
            ),
            RequestFailure::LoginRefused => McpError::internal_error(
                format!(
                    "server '{server}' ({url}) no longer accepts the login (HTTP 401); the call was not run. \
                     The bridge is connecting again to start a new login; if none appears, run `mcp-bridge login {server}`"
                ),
                Some(serde_json::json!({ "server": server, "url": url })),
            ),
            RequestFailure::TokenRefused => McpError::internal_error(
                format!(
                    "server '{server}' ({url}) refused the bridge's token, and a new one too (HTTP 401); the call was not run. \
                     Check that its authorization server lets this client (oauth.client_id) use the server: `mcp-bridge status` shows the last error"
                ),
                Some(serde_json::json!({ "server": server, "url": url })),
            ),
            RequestFailure::Cancelled => McpError::internal_error(CANCELLED, None),
            RequestFailure::Service { error, timeout } => service(&server, &url, error, timeout),
        }
    }
}

fn unavailable(server: &str, e: UpstreamError) -> McpError {
    McpError::internal_error(e.to_string(), Some(serde_json::json!({ "server": server })))
}

/// rmcp's error for a request to `server`, sent with `timeout` seconds to answer.
fn service(server: &str, url: &str, e: rmcp::ServiceError, timeout: f64) -> McpError {
    let data = Some(serde_json::json!({ "server": server, "url": url }));
    // An HTTP 429 or 5xx: say so plainly, with the server's Retry-After, which
    // rmcp keeps but does not act on. The bridge does not retry: a 5xx may
    // come after the server started a call that is not idempotent, and a 429
    // is the server asking for time (found by tests/chaos.rs: the message
    // named rmcp's worker types and dropped Retry-After).
    if let Some(h) = rmcp_errors::http_status(&e) {
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
            let fate = if rmcp_errors::never_sent(&other) {
                "the request was not sent"
            } else {
                "the connection failed after the request was sent, so the server may have run it; it was not retried"
            };
            McpError::internal_error(
                format!(
                    "server '{server}' ({url}) failed: {}; {fate}. The bridge reconnects in the background; `mcp-bridge status` shows details",
                    rmcp_errors::without_type_names(&rmcp_errors::failure_text(&other))
                ),
                data,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(failure: RequestFailure) -> McpError {
        McpError::from(RequestError {
            server: "files".into(),
            url: "https://files.example/mcp".into(),
            failure,
        })
    }

    /// Each typed failure reads as before: scopes to log in with, the
    /// cancellation text the audit log and IDEs know, a timeout with its
    /// seconds, and a server's own error passed through untouched.
    #[test]
    fn request_failures_in_the_ides_words() {
        let e = failed(RequestFailure::NeedsScope("files:read files:write".into()));
        assert_eq!(
            e.message,
            "server 'files' needs more access (files:read files:write): run `mcp-bridge login files --scope files:read --scope files:write`"
        );
        assert_eq!(e.data.unwrap()["scope"], "files:read files:write");
        assert_eq!(failed(RequestFailure::Cancelled).message, CANCELLED);
        let e = failed(RequestFailure::Service {
            error: rmcp::ServiceError::Timeout {
                timeout: std::time::Duration::from_secs(3),
            },
            timeout: 2.5,
        });
        assert!(
            e.message.starts_with("server 'files' did not answer within 2.5 s"),
            "{}",
            e.message
        );
        let own = McpError::invalid_params("no such file", None);
        let e = failed(RequestFailure::Service {
            error: rmcp::ServiceError::McpError(own.clone()),
            timeout: 1.0,
        });
        assert_eq!(e, own);
        let e = failed(RequestFailure::Unavailable(UpstreamError::Stopped {
            server: "files".into(),
        }));
        assert_eq!(e.message, "server 'files' was removed");
        assert_eq!(e.data.unwrap()["server"], "files");
    }
}
