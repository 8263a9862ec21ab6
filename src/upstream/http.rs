//! The one place HTTP clients for upstream servers are built. Authentication will
//! wrap the client made here; everything else about HTTP stays in rmcp.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::registry::ServerSpec;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("server '{server}': header {name:?} is not a valid HTTP header")]
    BadHeader { server: String, name: String },
    #[error("cannot build an HTTP client: {0}")]
    Build(String),
}

/// A client for `spec`: its static headers as defaults, rmcp's own settings
/// copied (rmcp.md #16): no idle pool (avoids delayed-ACK stalls), only
/// same-origin 307/308 redirects, and no global timeout (it would cut long SSE
/// streams; the bridge times calls itself).
pub fn client(spec: &ServerSpec) -> Result<reqwest::Client, HttpError> {
    let mut headers = HeaderMap::new();
    for (name, value) in &spec.headers {
        let bad = || HttpError::BadHeader {
            server: spec.id.clone(),
            name: name.clone(),
        };
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
        let mut v = HeaderValue::from_str(&value.value).map_err(|_| bad())?;
        v.set_sensitive(value.secret);
        headers.insert(n, v);
    }
    builder()
        .default_headers(headers)
        .build()
        .map_err(|e| HttpError::Build(e.to_string()))
}

/// The shared builder settings, also used for the registry client.
pub fn builder() -> reqwest::ClientBuilder {
    let policy = reqwest::redirect::Policy::custom(|a| {
        let keeps_body = matches!(a.status().as_u16(), 307 | 308);
        let same_origin = a.previous().first().is_some_and(|u| u.origin() == a.url().origin());
        if !keeps_body || !same_origin {
            a.stop()
        } else if a.previous().len() > 10 {
            a.error("too many redirects")
        } else {
            a.follow()
        }
    });
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(policy)
        .user_agent(concat!("mcp-bridge/", env!("CARGO_PKG_VERSION")))
}
