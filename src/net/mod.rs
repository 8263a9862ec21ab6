//! The one HTTP client configuration of the bridge, below every module that
//! speaks HTTP (upstream servers, the registry API, OAuth endpoints): the shared
//! TLS settings ([`tls`]) and the reqwest builder all of them start from.

pub mod tls;

use std::time::Duration;

/// How long an idle connection is kept for reuse: below the idle timeouts of
/// common load balancers (60 s and up), so that the bridge closes first rather
/// than send a request on a connection the other side is closing.
pub const POOL_IDLE: Duration = Duration::from_secs(50);

/// An HTTP/2 connection with streams open (a long SSE answer, a GET stream) is
/// pinged this often, and dropped when a ping is not answered within as long:
/// a connection that died on the way (NAT, a sleeping laptop) is noticed.
const H2_PING: Duration = Duration::from_secs(30);

/// The shared builder settings, also used for the registry and OAuth clients: one
/// shared TLS configuration whose system roots load on first use (see
/// [`tls`]), which offers HTTP/2 and HTTP/1.1 by ALPN; idle connections
/// kept for [`POOL_IDLE`]; only same-origin 307/308 redirects; and no global
/// timeout (it would cut long SSE streams; the bridge times calls itself).
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
        .tls_backend_preconfigured(tls::client_config())
        .pool_idle_timeout(POOL_IDLE)
        .http2_keep_alive_interval(H2_PING)
        .http2_keep_alive_timeout(H2_PING)
        .redirect(policy)
        .user_agent(concat!("mcp-bridge/", env!("CARGO_PKG_VERSION")))
}
