//! Reading rmcp's errors: what went wrong with a request or a connection, in
//! types the rest of `upstream` branches on and in words a person can act on.
//!
//! rmcp hides most of what matters: it formats transport errors with its worker
//! type names and without reqwest's causes, keeps an HTTP 429 or 5xx (with the
//! raw `Retry-After`) inside a transport error, and holds the reqwest error in
//! two places that are not `source()` links. Each of those workarounds lives here
//! once, with the rmcp behaviour it undoes; everything else in the bridge reads
//! these functions instead of rmcp's error types.

use std::time::Duration;

use rmcp::service::ClientInitializeError;
use rmcp::transport::streamable_http_client::{HttpStatusError, StreamableHttpError};

/// Why a connection could not be used.
#[derive(Debug)]
pub(super) enum Failure {
    /// HTTP 401. `had_tokens`: the stored tokens were refused (the login was
    /// revoked, or the server moved to another authorization server).
    NeedsLogin {
        had_tokens: bool,
    },
    /// HTTP 403 `insufficient_scope`: the scopes the server asks for.
    NeedsScope(String),
    /// The identity provider's session has ended (enterprise grant): the
    /// text says to run `mcp-bridge login --idp`; no login for the server.
    NeedsIdpLogin(String),
    Other(String),
}

impl Failure {
    /// A fixed word for telemetry (`error.type`): never the text, which may
    /// quote a URL.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Failure::NeedsLogin { .. } => "needs_login",
            Failure::NeedsScope(_) => "insufficient_scope",
            Failure::NeedsIdpLogin(_) => "idp_session_ended",
            Failure::Other(_) => "connect_failed",
        }
    }
}

impl From<String> for Failure {
    fn from(e: String) -> Failure {
        Failure::Other(e)
    }
}

impl Failure {
    /// The auth failure behind an rmcp error, if that is what it is: a 403 whose
    /// challenge says `insufficient_scope`, or a 401.
    pub(super) fn auth(challenge: Option<&str>, required: bool, url: &str, had_tokens: bool) -> Option<Failure> {
        if let Some(scope) = insufficient_scope(challenge, url) {
            return Some(Failure::NeedsScope(scope));
        }
        required.then_some(Failure::NeedsLogin { had_tokens })
    }
}

/// The scopes a `WWW-Authenticate` challenge asks for, when it says
/// `insufficient_scope` (the scope list may be empty: the server named none).
pub(super) fn insufficient_scope(challenge: Option<&str>, url: &str) -> Option<String> {
    let ch = challenge.filter(|ch| ch.contains("insufficient_scope"))?;
    let scope = url::Url::parse(url)
        .ok()
        .and_then(|u| rmcp::transport::auth::WWWAuthenticateParams::parse(ch, &u).scope)
        .unwrap_or_default();
    Some(scope)
}

/// `message` without the worker type names rmcp puts in transport errors
/// (`Transport [rmcp::transport::worker::WorkerTransport<…>] error: `).
pub fn without_type_names(message: &str) -> String {
    let mut m = message.to_owned();
    while let (Some(a), Some(b)) = (m.find("Transport ["), m.find("] error: ")) {
        if b < a {
            break;
        }
        m.replace_range(a..b + "] error: ".len(), "");
    }
    m
}

/// The HTTP status a server answered a request with, when that is why it failed.
/// rmcp keeps a 429 or 5xx, with the raw `Retry-After`, as an `HttpStatusError`
/// deep inside a transport error and shows it only as "Transport [<worker
/// types>] error: HTTP 429"; every client the bridge builds has reqwest's error
/// type, so it is found by downcasting along [`links`].
pub fn http_status(e: &rmcp::ServiceError) -> Option<&HttpStatusError> {
    let rmcp::ServiceError::TransportSend(t) = e else {
        return None;
    };
    links(t.error.as_ref()).find_map(|current| match current.downcast_ref() {
        Some(StreamableHttpError::<reqwest::Error>::HttpStatus(h)) => Some(h),
        _ => current.downcast_ref::<HttpStatusError>(),
    })
}

/// Whether a request failed before it left: the TCP connect to the server did
/// not succeed. Any other transport failure may come after the server got the
/// request (a reset or a cut response), so it may have run it. rmcp's text says
/// "error sending request" for both, so the reqwest error is asked instead.
pub fn never_sent(e: &rmcp::ServiceError) -> bool {
    let rmcp::ServiceError::TransportSend(t) = e else {
        return false;
    };
    links(t.error.as_ref())
        .find_map(|c| c.downcast_ref::<reqwest::Error>())
        .is_some_and(reqwest::Error::is_connect)
}

/// The links of an rmcp transport error, including the two rmcp does not expose
/// as `source()`: `ClientInitializeError::TransportError` and
/// `StreamableHttpError::Client`, which hold the reqwest error with the cause.
pub(super) fn links<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |current| {
        if let Some(ClientInitializeError::TransportError { error, .. }) = current.downcast_ref() {
            return Some(error as &(dyn std::error::Error + 'static));
        }
        match current.downcast_ref() {
            Some(StreamableHttpError::<reqwest::Error>::Client(r)) => Some(r as &(dyn std::error::Error + 'static)),
            _ => current.source(),
        }
    })
}

/// An rmcp transport error on one line, with the cause rmcp drops: it formats
/// the reqwest error inside as "Client error: error sending request for url"
/// without reqwest's own sources, where the reason is (refused, a DNS failure,
/// "invalid peer certificate: UnknownIssuer"; found by tests/tls.rs).
pub fn failure_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = crate::util::error_chain(e);
    let cause = links(e)
        .find_map(|c| c.downcast_ref::<reqwest::Error>())
        .and_then(std::error::Error::source);
    if let Some(cause) = cause.map(crate::util::error_chain)
        && !text.contains(&cause)
    {
        text.push_str(": ");
        text.push_str(&cause);
    }
    text
}

/// A connect failure in words a person can act on. rmcp formats transport errors
/// into strings that name its worker types and drop the cause (reqwest's message
/// is only "error sending request"), so strip the type names and, when the request
/// never got an HTTP answer, find out why with a plain TCP connect.
pub(super) async fn describe_failure(url: &str, message: &str) -> String {
    let m = without_type_names(message);
    if !m.contains("error sending request") {
        return m;
    }
    let Ok(u) = url::Url::parse(url) else { return m };
    let (Some(host), Some(port)) = (u.host_str(), u.port_or_known_default()) else {
        return m;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    match tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    {
        Ok(Err(e)) => format!("cannot reach {host}:{port}: {e}"),
        Err(_) => format!("cannot reach {host}:{port}: no answer within 3 s"),
        Ok(Ok(_)) => m,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rmcp's worker type names go, however many times they appear; text
    /// without them is kept as it is.
    #[test]
    fn worker_type_names_are_stripped() {
        assert_eq!(
            without_type_names(
                "Transport [rmcp::transport::worker::WorkerTransport<rmcp::X<Y>>] error: Client error: boom"
            ),
            "Client error: boom"
        );
        assert_eq!(
            without_type_names("Transport [a] error: Transport [b] error: HTTP 429"),
            "HTTP 429"
        );
        assert_eq!(without_type_names("plain ] error: text"), "plain ] error: text");
    }

    /// A 403 challenge with `insufficient_scope` gives its scopes; a 401 is a
    /// login; anything else is neither.
    #[test]
    fn auth_failures_are_classified_from_the_challenge() {
        let url = "https://mcp.example.com/mcp";
        let ch = r#"Bearer error="insufficient_scope", scope="files:read files:write""#;
        assert_eq!(
            insufficient_scope(Some(ch), url).as_deref(),
            Some("files:read files:write")
        );
        assert!(matches!(
            Failure::auth(Some(ch), true, url, true),
            Some(Failure::NeedsScope(s)) if s == "files:read files:write"
        ));
        assert_eq!(insufficient_scope(Some(r#"Bearer realm="x""#), url), None);
        assert!(matches!(
            Failure::auth(Some(r#"Bearer realm="x""#), true, url, false),
            Some(Failure::NeedsLogin { had_tokens: false })
        ));
        assert!(Failure::auth(None, false, url, true).is_none());
    }
}
