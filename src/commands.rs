//! Commands for people at a terminal: `login` and `logout`. They read the same
//! config and registry as `serve` and talk to the same credential store. Messages
//! go to stderr; nothing here prints a secret.

use std::time::Duration;

use crate::app::{self, ServeOptions};
use crate::auth::{ServerCredentials, oauth};
use crate::config::{Config, Paths, secs};
use crate::registry::{AdHoc, OAuthSettings, ServerSpec};

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
                eprintln!("logged in to {} ({})", s.id, s.url);
            }
            Err(oauth::LoginError::NotProtected { .. }) if which.is_none() => {}
            Err(e) => {
                failures += 1;
                eprintln!("{}: {e}", s.id);
            }
        }
    }
    if which.is_none() && done == 0 && failures == 0 {
        eprintln!("no server needs a login");
    }
    anyhow::ensure!(failures == 0, "{failures} login(s) failed");
    Ok(())
}

/// `mcp-bridge logout [SERVER]`.
pub async fn logout(opts: &ServeOptions, which: Option<&str>) -> anyhow::Result<()> {
    let (paths, cfg) = app::load_config(opts)?;
    let store = app::open_store(&cfg, &paths)
        .get()
        .await
        .ok_or_else(|| anyhow::anyhow!("no credential store is usable"))?;
    for s in targets(&cfg, &paths, which, &OAuthSettings::default()).await? {
        let creds = ServerCredentials::new(store.clone(), &s.url);
        if oauth::has_tokens(&creds).await {
            oauth::logout(&creds).await?;
            eprintln!("logged out of {} ({})", s.id, s.url);
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
            creds.set_static_header(name.clone(), Some(value)).await?;
            eprintln!("stored {name} for {} in the credential store", s.id);
        }
        AuthAction::Clear { .. } => {
            creds.set_static_header(name.clone(), None).await?;
            eprintln!("removed {name} for {}", s.id);
        }
    }
    Ok(())
}
