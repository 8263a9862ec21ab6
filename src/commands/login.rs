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
use crate::registry::{AdHoc, Idp, OAuthSettings, ServerSpec};
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
        if oauth.enterprise.is_some() {
            s.oauth.enterprise = oauth.enterprise.clone();
        }
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
        idp: false,
    }
}

/// `mcp-bridge login [SERVER]`.
pub async fn login(opts: &ServeOptions, which: Option<&str>, oauth_args: &OAuthSettings) -> anyhow::Result<()> {
    let (paths, cfg, store, _log) = open(opts).await?;
    let servers = targets(&cfg, &paths, which, oauth_args).await?;
    let mut failures = 0;
    let mut done = 0;
    // Logging in to everything includes the identity provider, when an
    // enterprise server needs it and it has no session (once per IdP).
    if which.is_none() {
        let mut signed: Vec<&str> = Vec::new();
        for e in servers.iter().filter_map(|s| s.oauth.enterprise.as_ref()) {
            if signed.contains(&e.idp.issuer.as_str())
                || crate::auth::enterprise::session(Some(store.clone()), &e.idp).await
                    != crate::auth::enterprise::Session::Ended
            {
                continue;
            }
            signed.push(&e.idp.issuer);
            match sign_in(&e.idp, store.clone(), secs(cfg.auth.login_timeout)).await {
                Ok(()) => eprintln!("signed in to the identity provider {}", printable(&e.idp.issuer)),
                Err(why) => {
                    failures += 1;
                    eprintln!(
                        "identity provider {}: {}",
                        printable(&e.idp.issuer),
                        printable_lines(&why)
                    );
                }
            }
        }
    }
    for s in &servers {
        let creds = ServerCredentials::new(store.clone(), &s.url);
        // Enterprise or client credentials: a token now, no browser for the
        // server (a check of the setup).
        if s.oauth.headless() {
            let how = match s.oauth.enterprise {
                Some(_) => "through the identity provider",
                None => "with client credentials",
            };
            match crate::auth::fetch_headless(s, creds, store.clone()).await {
                Ok(()) => {
                    done += 1;
                    eprintln!("got a token for {} ({}) {how}", s.id, printable(&s.url));
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

/// The browser login at the identity provider `idp`, kept under its issuer;
/// an answer without an ID token is a failure (the scopes lack `openid`).
async fn sign_in(idp: &Idp, store: Arc<TokenStore>, timeout: Duration) -> Result<(), String> {
    use crate::auth::enterprise;
    let creds = enterprise::idp_credentials(store, idp);
    let options = oauth::LoginOptions {
        client_id: Some(idp.client_id.clone()),
        client_secret: idp.client_secret.clone(),
        scopes: idp.scopes.clone(),
        redirect_port: idp.redirect_port,
        timeout: Some(timeout),
        // An IdP is not an MCP resource: no RFC 8707 `resource`.
        send_resource: false,
        client_metadata_url: None,
        show: None,
        idp: true,
    };
    oauth::login(&idp.issuer, creds.clone(), &options)
        .await
        .map_err(|e| e.to_string())?;
    // rmcp keeps the token response's extra fields: the ID token is there.
    let has_id_token = creds
        .entry()
        .await
        .and_then(|e| e.oauth)
        .is_some_and(|c| enterprise::stored_tokens(&c).0.is_some());
    if !has_id_token {
        return Err("signed in, but it issued no ID token; check that [auth.idp] scopes include \"openid\"".into());
    }
    Ok(())
}

/// `mcp-bridge login --idp`: the browser login at the identity provider
/// (OIDC authorization code with PKCE, through the same loopback flow as a
/// server's), kept in the store under the IdP's issuer; then every enterprise
/// server of that IdP gets its token with no browser, each said in a line.
pub async fn login_idp(opts: &ServeOptions, oauth_args: &OAuthSettings) -> anyhow::Result<()> {
    use crate::auth::enterprise;
    let (paths, cfg, store, _log) = open(opts).await?;
    let servers = targets(&cfg, &paths, None, &OAuthSettings::default()).await?;
    // The command line's IdP, else `[auth.idp]`, else those registry entries name.
    let mut idps: Vec<Idp> = Vec::new();
    if let Some(e) = &oauth_args.enterprise {
        idps.push(e.idp.clone());
    } else if let Some(c) = &cfg.auth.idp {
        idps.push(Idp::from_config(c, &crate::config::env_var).map_err(|e| anyhow::anyhow!(e))?);
    } else {
        for s in &servers {
            if let Some(e) = &s.oauth.enterprise
                && !idps.iter().any(|i| i.issuer == e.idp.issuer)
            {
                idps.push(e.idp.clone());
            }
        }
    }
    anyhow::ensure!(
        !idps.is_empty(),
        "no identity provider is configured: add [auth.idp] (issuer, client_id) to {}, or pass --idp-issuer and --idp-client-id",
        paths.config_file.display()
    );
    let mut failures = 0;
    for idp in &idps {
        let issuer = printable(&idp.issuer);
        if let Err(e) = sign_in(idp, store.clone(), secs(cfg.auth.login_timeout)).await {
            failures += 1;
            eprintln!("identity provider {issuer}: {}", printable_lines(&e));
            continue;
        }
        eprintln!("signed in to the identity provider {issuer}");
        for s in servers
            .iter()
            .filter(|s| s.oauth.enterprise.as_ref().is_some_and(|e| e.idp.issuer == idp.issuer))
        {
            let server_creds = ServerCredentials::new(store.clone(), &s.url);
            match enterprise::fetch(s, server_creds, Some(store.clone())).await {
                Ok(()) => eprintln!(
                    "  {} ({}): reached through the identity provider",
                    s.id,
                    printable(&s.url)
                ),
                Err(e) => {
                    failures += 1;
                    eprintln!("  {}", printable_lines(&e.to_string()));
                }
            }
        }
    }
    anyhow::ensure!(failures == 0, "{failures} step(s) failed");
    Ok(())
}

/// `mcp-bridge logout [SERVER]`: forget the tokens (keeping a static
/// credential or a registration), or remove an entry that cannot be read.
pub async fn logout(opts: &ServeOptions, which: Option<&str>) -> anyhow::Result<()> {
    let (paths, cfg, store, _log) = open(opts).await?;
    let servers = targets(&cfg, &paths, which, &OAuthSettings::default()).await?;
    // Logging out of everything ends the identity provider's session too:
    // its ID token would otherwise keep opening the enterprise servers.
    if which.is_none() {
        let mut issuers: Vec<Idp> = Vec::new();
        if let Some(Ok(i)) = cfg
            .auth
            .idp
            .as_ref()
            .map(|c| Idp::from_config(c, &crate::config::env_var))
        {
            issuers.push(i);
        }
        for e in servers.iter().filter_map(|s| s.oauth.enterprise.as_ref()) {
            if !issuers.iter().any(|i| i.issuer == e.idp.issuer) {
                issuers.push(e.idp.clone());
            }
        }
        for idp in &issuers {
            let creds = crate::auth::enterprise::idp_credentials(store.clone(), idp);
            if oauth::has_tokens(&creds).await {
                oauth::logout(&creds).await?;
                eprintln!("signed out of the identity provider {}", printable(&idp.issuer));
            }
        }
    }
    for s in servers {
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
