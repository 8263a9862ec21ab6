//! `mcp-bridge login`, `logout` and `auth set|clear`: the credential store for
//! people at a terminal. They read the same config and registry as `serve` and
//! open the same store, with logging on (what the store says, such as its
//! fallback to a file or an entry it replaced, is seen). Messages go to stderr;
//! nothing here prints a secret, and what servers say is escaped
//! ([`printable`]) before a terminal sees it.

use std::sync::Arc;
use std::time::Duration;

use crate::app::{self, ServeOptions};
use crate::auth::store::{StoreError, TokenStore};
use crate::auth::{ServerCredentials, oauth};
use crate::config::{Config, Paths, secs};
use crate::registry::{AdHoc, OAuthSettings, ServerSpec};
use crate::util::{printable, printable_lines};

/// The config, the credential store, and logging for a command that uses the
/// store (keep the guard for the command's life).
async fn open(opts: &ServeOptions) -> anyhow::Result<(Paths, Config, Arc<TokenStore>, crate::logging::Guard)> {
    let (paths, cfg) = app::load_config(opts)?;
    let log = crate::logging::init(&cfg.log, &paths.state_dir);
    let store = app::open_store(&cfg, &paths)
        .get()
        .await
        .ok_or_else(|| anyhow::anyhow!("no credential store is usable"))?;
    Ok((paths, cfg, store, log))
}

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
        if oauth.client_credentials.is_some() {
            s.oauth.client_credentials = oauth.client_credentials.clone();
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
        show: None,
    }
}

/// `mcp-bridge login [SERVER]`.
pub async fn login(opts: &ServeOptions, which: Option<&str>, oauth_args: &OAuthSettings) -> anyhow::Result<()> {
    let (paths, cfg, store, _log) = open(opts).await?;
    let servers = targets(&cfg, &paths, which, oauth_args).await?;
    let mut failures = 0;
    let mut done = 0;
    for s in &servers {
        let creds = ServerCredentials::new(store.clone(), &s.url);
        // Client credentials: a token now, no browser (a check of the setup).
        if s.oauth.client_credentials.is_some() {
            match crate::auth::client_credentials::fetch(s, creds).await {
                Ok(()) => {
                    done += 1;
                    eprintln!(
                        "got a token for {} ({}) with client credentials",
                        s.id,
                        printable(&s.url)
                    );
                }
                Err(e) => {
                    failures += 1;
                    eprintln!("{}", printable_lines(&e.to_string()));
                }
            }
            continue;
        }
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
    let (paths, cfg, store, _log) = open(opts).await?;
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

/// `mcp-bridge auth set|clear SERVER`: a static credential (or a private key)
/// read from stdin, kept in the credential store, never echoed.
pub async fn auth(opts: &ServeOptions, action: &crate::cli::AuthAction) -> anyhow::Result<()> {
    use crate::cli::AuthAction;
    let (paths, cfg, store, _log) = open(opts).await?;
    let (server, header, private_key) = match action {
        AuthAction::Set {
            server,
            header,
            private_key,
        }
        | AuthAction::Clear {
            server,
            header,
            private_key,
        } => (server, header, *private_key),
    };
    let targets = targets(&cfg, &paths, Some(server), &OAuthSettings::default()).await?;
    let s = &targets[0];
    let creds = ServerCredentials::new(store, &s.url);
    let name = if private_key {
        "the private key".to_owned()
    } else {
        header.clone().unwrap_or_else(|| "Authorization".into())
    };
    let replaced = match action {
        AuthAction::Set { .. } if private_key => {
            let mut pem = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut pem)?;
            crate::auth::client_credentials::check_key(&pem).map_err(|e| anyhow::anyhow!("stdin: {e}"))?;
            creds.set_private_key(Some(pem)).await?
        }
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
            creds.set_static_header(name.clone(), Some(value)).await?
        }
        AuthAction::Clear { .. } if private_key => creds.set_private_key(None).await?,
        AuthAction::Clear { .. } => creds.set_static_header(name.clone(), None).await?,
    };
    let set = matches!(action, AuthAction::Set { .. });
    match (replaced, set) {
        (Some(StoreError::Corrupt { location, message, .. }), true) => eprintln!(
            "stored {name} for {} in the credential store, replacing unreadable credentials at {} ({})",
            s.id,
            printable(&location),
            printable(&message)
        ),
        (Some(StoreError::Corrupt { location, message, .. }), false) => eprintln!(
            "removed unreadable credentials for {} from {} ({})",
            s.id,
            printable(&location),
            printable(&message)
        ),
        (_, true) => eprintln!("stored {name} for {} in the credential store", s.id),
        (_, false) => eprintln!("removed {name} for {}", s.id),
    }
    Ok(())
}
