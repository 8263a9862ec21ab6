//! Commands for people at a terminal: `login`, `logout`, `auth`, `status`,
//! `stats`, `tools` and `call`. They read the same config and registry as `serve`
//! and talk to the same credential store. Messages go to stderr; nothing here
//! prints a secret, and what servers say is escaped ([`crate::util::printable`])
//! before a terminal sees it.

pub mod doctor;
pub mod out;
pub mod stats;
mod status;
mod table;

use std::time::Duration;

pub use stats::stats;
pub use status::status;

use crate::app::{self, ServeOptions};
use crate::auth::store::StoreError;
use crate::auth::{ServerCredentials, oauth};
use crate::config::{Config, Paths, secs};
use crate::registry::{AdHoc, OAuthSettings, ServerSpec};
use crate::util::{printable, printable_lines};

/// Servers named by `which` (an id, a registry name or a URL), or all of them.
/// A URL that is not configured becomes an ad-hoc server.
async fn targets(
    cfg: &Config,
    paths: &Paths,
    which: Option<&str>,
    oauth: &OAuthSettings,
) -> anyhow::Result<Vec<ServerSpec>> {
    let mut adhoc = AdHoc {
        oauth: oauth.clone(),
        ..AdHoc::default()
    };
    let is_url = which.is_some_and(|w| w.starts_with("http://") || w.starts_with("https://"));
    let resolved = app::resolve_servers(cfg, paths, &AdHoc::default()).await;
    let mut servers = resolved.servers;
    if let Some(w) = which {
        servers.retain(|s| s.id == w || s.display_name == w || s.url == w);
        if servers.is_empty() && is_url {
            adhoc.urls.push(w.to_owned());
            servers = crate::registry::resolve(&Config::default(), &[], &adhoc).servers;
        }
        anyhow::ensure!(
            !servers.is_empty(),
            "no server named {w:?} in {}",
            paths.config_file.display()
        );
    }
    // Command-line OAuth settings win over configured ones.
    for s in servers.iter_mut() {
        if oauth.client_id.is_some() {
            s.oauth.client_id = oauth.client_id.clone();
            s.oauth.client_secret = oauth.client_secret.clone();
        }
        if !oauth.scopes.is_empty() {
            s.oauth.scopes = oauth.scopes.clone();
        }
    }
    Ok(servers)
}

fn options(s: &ServerSpec, timeout: Duration) -> oauth::LoginOptions {
    oauth::LoginOptions {
        client_id: s.oauth.client_id.clone(),
        client_secret: s.oauth.client_secret.clone(),
        scopes: s.oauth.scopes.clone(),
        redirect_port: s.oauth.redirect_port,
        send_resource: !s.oauth.omit_resource,
        client_metadata_url: s.oauth.client_metadata_url.clone(),
        timeout: Some(timeout),
    }
}

/// `mcp-bridge login [SERVER]`.
pub async fn login(opts: &ServeOptions, which: Option<&str>, oauth_args: &OAuthSettings) -> anyhow::Result<()> {
    let (paths, cfg) = app::load_config(opts)?;
    let store = app::open_store(&cfg, &paths)
        .get()
        .await
        .ok_or_else(|| anyhow::anyhow!("no credential store is usable"))?;
    let servers = targets(&cfg, &paths, which, oauth_args).await?;
    let mut failures = 0;
    let mut done = 0;
    for s in &servers {
        let creds = ServerCredentials::new(store.clone(), &s.url);
        match oauth::login(&s.url, creds, &options(s, secs(cfg.auth.login_timeout))).await {
            Ok(()) => {
                done += 1;
                eprintln!("logged in to {} ({})", s.id, printable(&s.url));
            }
            Err(oauth::LoginError::NotProtected { .. }) if which.is_none() => {}
            Err(e) => {
                failures += 1;
                eprintln!("{}: {}", s.id, printable_lines(&e.to_string()));
            }
        }
    }
    if which.is_none() && done == 0 && failures == 0 {
        eprintln!("no server needs a login");
    }
    anyhow::ensure!(failures == 0, "{failures} login(s) failed");
    Ok(())
}

/// `mcp-bridge logout [SERVER]`: forget the tokens (keeping a static
/// credential or a registration), or remove an entry that cannot be read.
pub async fn logout(opts: &ServeOptions, which: Option<&str>) -> anyhow::Result<()> {
    let (paths, cfg) = app::load_config(opts)?;
    let store = app::open_store(&cfg, &paths)
        .get()
        .await
        .ok_or_else(|| anyhow::anyhow!("no credential store is usable"))?;
    for s in targets(&cfg, &paths, which, &OAuthSettings::default()).await? {
        let creds = ServerCredentials::new(store.clone(), &s.url);
        match creds.read().await {
            Ok(Some(e)) if e.oauth.as_ref().is_some_and(|c| c.token_response.is_some()) => {
                oauth::logout(&creds).await?;
                eprintln!("logged out of {} ({})", s.id, printable(&s.url));
            }
            Ok(_) if which.is_some() => eprintln!("{}: not logged in; nothing to remove", s.id),
            Ok(_) => {}
            Err(StoreError::Corrupt { location, message, .. }) => {
                creds.remove().await?;
                eprintln!(
                    "{}: removed unreadable credentials from {} ({}); run `mcp-bridge login {}` if it needs a login",
                    s.id,
                    printable(&location),
                    printable(&message),
                    s.id
                );
            }
            Err(e) => anyhow::bail!("{}: {e}", s.id),
        }
    }
    Ok(())
}

/// `mcp-bridge auth set|clear SERVER`: a static credential read from stdin, kept in
/// the credential store, never echoed.
pub async fn auth(opts: &ServeOptions, action: &crate::cli::AuthAction) -> anyhow::Result<()> {
    use crate::cli::AuthAction;
    let (paths, cfg) = app::load_config(opts)?;
    let store = app::open_store(&cfg, &paths)
        .get()
        .await
        .ok_or_else(|| anyhow::anyhow!("no credential store is usable"))?;
    let (server, header) = match action {
        AuthAction::Set { server, header } | AuthAction::Clear { server, header } => (server, header),
    };
    let targets = targets(&cfg, &paths, Some(server), &OAuthSettings::default()).await?;
    let s = &targets[0];
    let creds = ServerCredentials::new(store, &s.url);
    let name = header.clone().unwrap_or_else(|| "Authorization".into());
    match action {
        AuthAction::Set { .. } => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let value = line.trim().to_owned();
            anyhow::ensure!(
                !value.is_empty(),
                "nothing on stdin: pipe the token in, e.g. `mcp-bridge auth set {} < token.txt`",
                s.id
            );
            let value = if header.is_none() && !value.starts_with("Bearer ") {
                format!("Bearer {value}")
            } else {
                value
            };
            reqwest::header::HeaderValue::from_str(&value)
                .map_err(|_| anyhow::anyhow!("the value is not a valid HTTP header value"))?;
            match creds.set_static_header(name.clone(), Some(value)).await? {
                Some(StoreError::Corrupt { location, message, .. }) => eprintln!(
                    "stored {name} for {} in the credential store, replacing unreadable credentials at {} ({})",
                    s.id,
                    printable(&location),
                    printable(&message)
                ),
                _ => eprintln!("stored {name} for {} in the credential store", s.id),
            }
        }
        AuthAction::Clear { .. } => match creds.set_static_header(name.clone(), None).await? {
            Some(StoreError::Corrupt { location, message, .. }) => eprintln!(
                "removed unreadable credentials for {} from {} ({})",
                s.id,
                printable(&location),
                printable(&message)
            ),
            _ => eprintln!("removed {name} for {}", s.id),
        },
    }
    Ok(())
}

/// An MCP client connected to a bridge in this process over an in-memory pipe:
/// the same handler, framing and routing as `serve`, once every server has had
/// its first connection attempt.
async fn local_client(
    opts: &ServeOptions,
) -> anyhow::Result<(
    rmcp::service::RunningService<rmcp::RoleClient, ()>,
    std::sync::Arc<crate::bridge::Bridge>,
)> {
    let (paths, cfg) = app::load_config(opts)?;
    let resolved = app::resolve_servers(&cfg, &paths, &opts.adhoc).await;
    let (client, bridge) = local_bridge(&paths, &cfg, resolved.servers).await?;
    for u in bridge.upstreams() {
        if let crate::upstream::ConnState::Failed { error, .. } = u.state() {
            eprintln!("{}: {}", u.spec.id, printable_lines(&error));
        }
    }
    Ok((client, bridge))
}

/// A bridge for `servers` in this process, with a client on an in-memory pipe,
/// once every server has had its first connection attempt.
async fn local_bridge(
    paths: &Paths,
    cfg: &Config,
    servers: Vec<ServerSpec>,
) -> anyhow::Result<(
    rmcp::service::RunningService<rmcp::RoleClient, ()>,
    std::sync::Arc<crate::bridge::Bridge>,
)> {
    use rmcp::ServiceExt;
    let settings = crate::bridge::Settings::from_config(cfg, Some(paths.cache_dir.clone()));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let bridge = crate::bridge::Bridge::new(settings, servers, Some(app::open_store(cfg, paths)), shutdown.clone());
    // `mcp-bridge call` makes real calls: they are recorded like the IDE's.
    bridge.set_audit(app::audit_log(cfg, paths));
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let (r, w) = tokio::io::split(theirs);
    let b = bridge.clone();
    tokio::spawn(async move { app::run_session(b, r, w, shutdown).await });
    let client = ().serve(ours).await?;
    bridge.settle(secs(cfg.timeouts.connect) + Duration::from_secs(1)).await;
    Ok((client, bridge))
}

/// `mcp-bridge tools [--json]`.
#[allow(clippy::print_stdout)] // the listing is the command's output
pub async fn tools(opts: &ServeOptions, json: bool) -> anyhow::Result<()> {
    let (client, _bridge) = local_client(opts).await?;
    let tools = client.list_all_tools().await?;
    if json {
        println!("{}", crate::util::json_pretty(&tools)?);
    } else {
        // Names and descriptions are the servers' words: escaped, so that none
        // can move the cursor, retitle the terminal or reverse the text.
        let rows: Vec<(String, String)> = tools
            .iter()
            .map(|t| {
                let first = t.description.as_deref().unwrap_or("").lines().next().unwrap_or("");
                (printable(&t.name).into_owned(), printable(first).into_owned())
            })
            .collect();
        let width = rows.iter().map(|(n, _)| n.chars().count()).max().unwrap_or(4).max(4);
        println!("{:<width$}  DESCRIPTION", "TOOL");
        for (name, first) in &rows {
            println!("{name:<width$}  {first}");
        }
    }
    let _ = client.cancel().await;
    Ok(())
}

/// `mcp-bridge call NAME --args JSON`: prints the result as JSON; fails when the
/// call fails or the tool reports an error.
#[allow(clippy::print_stdout)] // the result is the command's output
pub async fn call(opts: &ServeOptions, name: &str, args: &str) -> anyhow::Result<()> {
    let args: serde_json::Value = serde_json::from_str(args).map_err(|e| anyhow::anyhow!("--args is not JSON: {e}"))?;
    let serde_json::Value::Object(args) = args else {
        anyhow::bail!("--args must be a JSON object")
    };
    let (client, bridge) = local_client(opts).await?;
    let params = rmcp::model::CallToolRequestParams::new(name.to_owned()).with_arguments(args);
    let result = client.call_tool(params).await;
    let _ = client.cancel().await;
    if let Some(log) = bridge.audit() {
        log.flush(Duration::from_millis(500)).await;
    }
    let result = result.map_err(|e| match e {
        rmcp::ServiceError::McpError(e) => anyhow::anyhow!("{} (JSON-RPC {})", e.message, e.code.0),
        other => anyhow::anyhow!("{other}"),
    })?;
    println!("{}", crate::util::json_pretty(&result)?);
    anyhow::ensure!(result.is_error != Some(true), "the tool reported an error");
    Ok(())
}
