//! The interactive login: discovery from the server's 401, PKCE S256 (refused when
//! the authorization server does not advertise it), client registration in the
//! spec's order (pre-registered id, else dynamic registration as a native app),
//! the authorization URL shown to the user (by a [`ShowLink`] when the caller
//! has one, e.g. the IDE; else the browser is opened), a one-shot loopback listener on
//! 127.0.0.1 for the redirect (`state` and `iss` checked by rmcp), and the code
//! exchanged for tokens that land in the credential store.

use crate::util::Locked;
use std::sync::Arc;
use std::time::Duration;

use rmcp::transport::auth::{AuthorizationManager, AuthorizationRequest, OAuthState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ServerCredentials;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("server {url} does not ask for OAuth (it answered without a 401 challenge)")]
    NotProtected { url: String },
    #[error("the authorization server of {url} does not advertise PKCE S256, which MCP requires; refusing to log in")]
    NoPkce { url: String },
    #[error("no browser login within {0:?}; run `mcp-bridge login` again")]
    Timeout(Duration),
    #[error("the authorization server refused: {0}")]
    Denied(String),
    #[error("the login link was declined in the IDE")]
    Declined,
    #[error("login failed: {0}")]
    Failed(String),
}

/// What a login may use, from config or the command line.
#[derive(Clone)]
pub struct LoginOptions {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scopes: Vec<String>,
    /// A fixed loopback port for providers that need a registered redirect URI.
    pub redirect_port: Option<u16>,
    pub timeout: Option<Duration>,
    /// Send RFC 8707 `resource` (default); some identity providers reject it.
    pub send_resource: bool,
    /// Client ID Metadata Document URL, used when the server supports CIMD.
    pub client_metadata_url: Option<String>,
    /// Who shows the user the authorization link; `None`: the browser.
    pub show: Option<Arc<dyn ShowLink>>,
    /// `url` is an identity provider's issuer, not an MCP server: no 401 to
    /// ask for, its own metadata must exist (`mcp-bridge login --idp`).
    pub idp: bool,
}

/// The authorization link of a login in progress.
#[derive(Debug, Clone)]
pub struct LoginLink {
    /// The authorization URL the user opens.
    pub url: String,
    /// A fresh id for this login (the MCP `elicitationId` when shown in an IDE).
    pub id: String,
}

/// How a login's link reached the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// Shown (or handed to whoever shows it); the login waits for the redirect.
    Shown,
    /// The user said no: the login ends at once with [`LoginError::Declined`].
    Declined,
    /// It could not be shown this way: the browser is opened instead.
    Unable,
}

/// Shows the authorization link of a login to the user, instead of the browser:
/// the IDE, for the bridge (`upstream::login`). The login waits for the redirect
/// while `show` runs, so a user who opens the link before answering is not lost.
pub trait ShowLink: Send + Sync {
    fn show<'a>(&'a self, link: &'a LoginLink) -> futures::future::BoxFuture<'a, Shown>;
    /// The login ended (`ok`: tokens stored), after `show` said [`Shown::Shown`].
    fn finished(&self, link: &LoginLink, ok: bool);
}

impl Default for LoginOptions {
    fn default() -> Self {
        LoginOptions {
            client_id: None,
            client_secret: None,
            scopes: Vec::new(),
            redirect_port: None,
            timeout: None,
            send_resource: true,
            client_metadata_url: None,
            show: None,
            idp: false,
        }
    }
}

impl std::fmt::Debug for LoginOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginOptions")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[REDACTED]"))
            .field("scopes", &self.scopes)
            .field("show", &self.show.as_ref().map(|_| "ShowLink"))
            .finish()
    }
}

fn failed(e: impl std::fmt::Display) -> LoginError {
    LoginError::Failed(e.to_string())
}

/// An OAuth manager for `url` whose HTTP client has the bridge's settings and
/// reaches internal servers (rmcp filters private addresses otherwise).
/// With `send_resource` false, the RFC 8707 `resource` parameter is left out of
/// token requests, for identity providers that reject it (rmcp always sends it).
pub async fn manager(
    url: &str,
    creds: ServerCredentials,
    send_resource: bool,
) -> Result<AuthorizationManager, rmcp::transport::auth::AuthError> {
    let mut m = if send_resource {
        let mut m = AuthorizationManager::new(url).await?;
        m.with_client(crate::net::builder().build()?)?;
        m
    } else {
        let inner = rmcp::transport::auth::default_oauth_http_client()?;
        AuthorizationManager::new_with_oauth_http_client(url, std::sync::Arc::new(WithoutResource(Box::new(inner))))
            .await?
    };
    m.set_credential_store(creds);
    Ok(m)
}

/// Removes `resource` from form-encoded OAuth request bodies.
struct WithoutResource(Box<dyn rmcp::transport::auth::OAuthHttpClient>);

impl rmcp::transport::auth::OAuthHttpClient for WithoutResource {
    fn execute(
        &self,
        mut req: rmcp::transport::auth::OAuthHttpRequest,
    ) -> rmcp::transport::auth::OAuthHttpClientFuture<'_> {
        let is_form = req
            .request
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            let body = strip_param(std::str::from_utf8(req.request.body()).unwrap_or(""), "resource");
            *req.request.body_mut() = body.into_bytes();
        }
        self.0.execute(req)
    }
}

/// `a=1&resource=x&b=2` without `resource`.
pub fn strip_param(query: &str, name: &str) -> String {
    query
        .split('&')
        .filter(|kv| kv.split('=').next() != Some(name))
        .collect::<Vec<_>>()
        .join("&")
}

/// Ask the server without credentials, as the bridge's first requests do
/// (`server/discover`, then `initialize`), and return the `WWW-Authenticate`
/// challenge of the first 401 (for the `resource_metadata` URL and the scopes
/// it wants: a server may let `initialize` through and challenge only later).
pub(crate) async fn challenge(url: &str) -> Result<Option<String>, LoginError> {
    let client = crate::net::builder().build().map_err(failed)?;
    let info = serde_json::json!({"name": "mcp-bridge", "version": env!("CARGO_PKG_VERSION")});
    let probes = [
        serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "server/discover", "params": {"_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": info}}}),
        serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": info}}),
    ];
    for body in probes {
        let mut req = client
            .post(url)
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if body["method"] == "server/discover" {
            req = req
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "server/discover");
        }
        let resp = req
            .send()
            .await
            .map_err(|e| failed(format!("cannot reach {url}: {e}")))?;
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Ok(resp
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned));
        }
    }
    Ok(None)
}

/// Run the browser login for the server at `url` and store its tokens.
pub async fn login(url: &str, creds: ServerCredentials, opts: &LoginOptions) -> Result<(), LoginError> {
    let challenge = if opts.idp { None } else { challenge(url).await? };
    let previous = creds.entry().await;
    let mut m = manager(url, creds.clone(), opts.send_resource).await.map_err(failed)?;
    let meta = m
        .resolve_metadata_from_challenge(challenge.as_deref())
        .await
        .map_err(failed)?;
    if opts.idp && !meta.source.is_discovered() {
        return Err(failed(format!(
            "the identity provider {url} publishes no OpenID or OAuth metadata: check [auth.idp] issuer"
        )));
    }
    if challenge.is_none() && !meta.source.is_discovered() {
        return Err(LoginError::NotProtected { url: url.to_owned() });
    }
    let mut meta = meta;
    if meta.source.is_discovered() {
        // rmcp only warns when the methods list is absent; the spec says refuse.
        let s256 = meta
            .metadata
            .code_challenge_methods_supported
            .as_ref()
            .is_some_and(|m| m.iter().any(|x| x == "S256"));
        if !s256 {
            return Err(LoginError::NoPkce { url: url.to_owned() });
        }
    } else {
        // A 2025-03-26 server with no metadata at all: its origin serves
        // `/authorize`, `/token` and `/register`. Nothing can advertise S256
        // there (it is still sent), and the origin is the issuer: an `iss` in
        // the redirect must name it (see the README, "Logging in").
        let origin = url::Url::parse(url).map_err(failed)?.origin().ascii_serialization();
        meta.metadata.issuer = Some(origin);
    }
    let issuer = meta.metadata.issuer.clone();
    m.set_metadata(meta.metadata);

    // A client registered dynamically before, with the same authorization server,
    // is reused: it is bound to its redirect URI, so listen on that port again if
    // it is free (rmcp would register a new client on every login).
    let reuse = match (&opts.client_id, &previous) {
        (None, Some(e)) => e
            .oauth
            .as_ref()
            .filter(|c| c.issuer.is_some() && c.issuer == issuer)
            .and_then(|c| Some((c.client_id.clone(), e.redirect_uri.clone()?, e.client_secret.clone()))),
        _ => None,
    };
    let reused_port = reuse
        .as_ref()
        .and_then(|(_, r, _)| url::Url::parse(r).ok())
        .and_then(|u| u.port())
        .filter(|_| opts.redirect_port.is_none());
    let listener = match reused_port {
        Some(p) => tokio::net::TcpListener::bind(("127.0.0.1", p)).await.ok(),
        None => None,
    };
    let reuse = if listener.is_some() { reuse } else { None };
    let listener = match listener {
        Some(l) => l,
        None => tokio::net::TcpListener::bind(("127.0.0.1", opts.redirect_port.unwrap_or(0)))
            .await
            .map_err(|e| failed(format!("cannot listen on 127.0.0.1 for the login redirect: {e}")))?,
    };
    let port = listener.local_addr().map_err(failed)?.port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let mut req = AuthorizationRequest::new(&redirect)
        .with_client_name("mcp-bridge")
        .with_application_type("native");
    if let Some(ch) = &challenge {
        req = req.with_challenge(ch.clone());
    }
    if !opts.scopes.is_empty() {
        req = req.with_scopes(opts.scopes.iter().cloned());
    } else {
        req = req.with_initial_scope_selection();
    }
    if let Some(id) = &opts.client_id {
        req = req.with_preregistered_client(id.clone());
        if let Some(secret) = &opts.client_secret {
            req = req.with_client_secret(secret.clone());
        }
    } else if let Some(cimd) = &opts.client_metadata_url {
        // rmcp uses it only when the authorization server advertises CIMD, and
        // falls back to dynamic registration otherwise (the spec's order).
        req = req.with_client_metadata_url(cimd.clone());
    } else if let Some((id, _, secret)) = &reuse {
        tracing::debug!("reusing the client registered before");
        req = req.with_preregistered_client(id.clone());
        if let Some(secret) = secret {
            req = req.with_client_secret(secret.clone());
        }
    }
    let mut state = OAuthState::Unauthorized(m);
    state.start_authorization(req).await.map_err(failed)?;
    let mut auth_url = state.get_authorization_url().await.map_err(failed)?;
    if !opts.send_resource
        && let Some((base, query)) = auth_url.split_once('?')
    {
        auth_url = format!("{base}?{}", strip_param(query, "resource"));
    }
    let timeout = opts.timeout.unwrap_or(Duration::from_secs(300));
    let link = LoginLink {
        url: auth_url,
        id: format!("{:032x}", rand::random::<u128>()),
    };
    let ended = async {
        let callback = tokio::time::timeout(timeout, await_redirect(&listener, port, &link, opts.show.as_deref()))
            .await
            .map_err(|_| LoginError::Timeout(timeout))??;
        if let Err(e) = state.handle_callback_url(&callback.url).await {
            callback.reply(false, &e.to_string()).await;
            return Err(failed(e));
        }
        callback.reply(true, "").await;
        // Remember the redirect URI the client is bound to, for the next login.
        let secret = opts.client_secret.clone().or_else(|| reuse.and_then(|(_, _, s)| s));
        creds.remember_registration(redirect, secret).await.map_err(failed)
    }
    .await;
    if let Some(show) = &opts.show {
        show.finished(&link, ended.is_ok());
    }
    ended
}

/// Show the user `link` (through `show`, else the browser) and wait for the
/// browser's redirect to the loopback listener.
async fn await_redirect(
    listener: &tokio::net::TcpListener,
    port: u16,
    link: &LoginLink,
    show: Option<&dyn ShowLink>,
) -> Result<Callback, LoginError> {
    let waiting = accept_callback(listener, port);
    let Some(show) = show else {
        open_browser(&link.url);
        return waiting.await;
    };
    tokio::pin!(waiting);
    // The redirect may come before the IDE answers (the user opened the link
    // at once): whichever is first.
    tokio::select! {
        shown = show.show(link) => match shown {
            Shown::Shown => {}
            Shown::Declined => return Err(LoginError::Declined),
            Shown::Unable => open_browser(&link.url),
        },
        callback = &mut waiting => return callback,
    }
    waiting.await
}

/// Open `url` in the user's browser: `$BROWSER` when set (a command; `%s` is
/// replaced by the URL, else the URL is appended), else the system opener. The URL
/// is always printed to stderr too, never stdout.
pub fn open_browser(url: &str) {
    // The address comes from the authorization server's metadata: escaped.
    eprintln!(
        "mcp-bridge: to log in, open this address in your browser:\n  {}",
        crate::util::printable(url)
    );
    let spawned = match std::env::var("BROWSER").ok().filter(|b| !b.trim().is_empty()) {
        Some(b) => {
            let mut parts: Vec<String> = b.split_whitespace().map(str::to_owned).collect();
            if parts.iter().any(|p| p.contains("%s")) {
                for p in parts.iter_mut() {
                    *p = p.replace("%s", url);
                }
            } else {
                parts.push(url.to_owned());
            }
            std::process::Command::new(&parts[0])
                .args(&parts[1..])
                .stdout(std::process::Stdio::null())
                .stdin(std::process::Stdio::null())
                .spawn()
        }
        None => system_opener(url),
    };
    if let Err(e) = spawned {
        eprintln!("mcp-bridge: could not open a browser ({e}); open the address above yourself");
    }
}

fn system_opener(url: &str) -> std::io::Result<std::process::Child> {
    let mut cmd = if cfg!(target_os = "macos") {
        let mut c = std::process::Command::new("open");
        c.arg(url);
        c
    } else if cfg!(windows) {
        let mut c = std::process::Command::new("rundll32");
        c.args(["url.dll,FileProtocolHandler", url]);
        c
    } else {
        let mut c = std::process::Command::new("xdg-open");
        c.arg(url);
        c
    };
    cmd.stdout(std::process::Stdio::null())
        .stdin(std::process::Stdio::null())
        .spawn()
}

/// The browser's request to the loopback listener, with the connection kept so
/// that the page can say how it went.
struct Callback {
    url: String,
    stream: std::sync::Mutex<Option<tokio::net::TcpStream>>,
}

impl Callback {
    /// Answer the browser with the result page. Awaited, so that the page is sent
    /// before `login` returns and the process may exit.
    async fn reply(&self, ok: bool, detail: &str) {
        let Some(mut stream) = self.stream.locked().take() else {
            return;
        };
        let page = page(ok, detail);
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            page.len()
        );
        let write = async {
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(page.as_bytes()).await?;
            stream.shutdown().await
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), write).await;
    }
}

fn page(ok: bool, detail: &str) -> String {
    let (title, text) = if ok {
        (
            "Logged in",
            "mcp-bridge is logged in. You can close this tab and go back to your editor.".to_owned(),
        )
    } else {
        let escaped = detail.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        (
            "Login failed",
            format!("mcp-bridge could not log in: {escaped}. Run <code>mcp-bridge login</code> again."),
        )
    };
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>mcp-bridge: {title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;color:#222}}</style></head>\
         <body><h1>{title}</h1><p>{text}</p></body></html>"
    )
}

/// Accept connections until one is `GET /callback?...`; others get a 404.
async fn accept_callback(listener: &tokio::net::TcpListener, port: u16) -> Result<Callback, LoginError> {
    loop {
        let (mut stream, _) = listener.accept().await.map_err(failed)?;
        let mut buf = vec![0u8; 8192];
        let mut n = 0;
        // Read the request head (bounded).
        while n < buf.len() {
            match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf[n..])).await {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(k)) => {
                    n += k;
                    if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                Ok(Err(_)) => break,
            }
        }
        let head = String::from_utf8_lossy(&buf[..n]);
        let target = head
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("GET "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or("");
        if target.starts_with("/callback?") {
            let url = format!("http://127.0.0.1:{port}{target}");
            // An error redirect (`error=access_denied`) has no code: say what the
            // server said instead of rmcp's "missing code".
            if let Ok(u) = url::Url::parse(&url)
                && let Some((_, e)) = u.query_pairs().find(|(k, _)| k == "error")
            {
                let cb = Callback {
                    url,
                    stream: std::sync::Mutex::new(Some(stream)),
                };
                cb.reply(false, &e).await;
                return Err(LoginError::Denied(e.into_owned()));
            }
            return Ok(Callback {
                url,
                stream: std::sync::Mutex::new(Some(stream)),
            });
        }
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
    }
}

/// Whether credentials with tokens exist for `url`.
pub async fn has_tokens(creds: &ServerCredentials) -> bool {
    use rmcp::transport::auth::CredentialStore;
    matches!(creds.load().await, Ok(Some(c)) if c.token_response.is_some())
}

/// Log out: forget the tokens for `url` (the registration is kept).
pub async fn logout(creds: &ServerCredentials) -> Result<(), LoginError> {
    use rmcp::transport::auth::CredentialStore;
    creds.clear().await.map_err(failed)
}

/// Shared handle used by upstreams.
pub type Store = Arc<crate::auth::LazyStore>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_only_the_named_parameter() {
        assert_eq!(strip_param("a=1&resource=x%3A&b=2", "resource"), "a=1&b=2");
        assert_eq!(strip_param("resource=x", "resource"), "");
        assert_eq!(strip_param("resources=x&resource", "resource"), "resources=x");
    }

    #[test]
    fn options_debug_hides_the_secret() {
        let o = LoginOptions {
            client_secret: Some("hunter2".into()),
            ..LoginOptions::default()
        };
        assert!(!format!("{o:?}").contains("hunter2"));
        assert!(o.send_resource);
    }
}
