//! `mcp-bridge doctor`: checks, in order, everything the bridge depends on:
//! the config, the registry, the credential store (its fallback to a file, and
//! each server's entry: an unreadable one is named with the fix), each server
//! (connected through the same code as `serve`, logged in), and the IDE entries
//! (present, pointing at a binary that exists: a path, or for a project entry
//! `mcp-bridge` found on `PATH`). Each line says OK or what to do, escaped for
//! the terminal; the command fails when anything needs doing.

use std::fmt::Write as _;

use crate::app::{self, ServeOptions};
use crate::config::{Config, secs};
use crate::install::{self, Client, Machine, Scope};
use crate::upstream::ConnState;

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    Ok(String),
    /// Worth knowing, nothing is broken.
    Note(String),
    /// Something to fix; the text says what to do.
    Fix(String),
}

#[derive(Debug, Default)]
struct Report(Vec<Check>);

impl Report {
    fn ok(&mut self, s: impl Into<String>) {
        self.0.push(Check::Ok(s.into()));
    }
    fn note(&mut self, s: impl Into<String>) {
        self.0.push(Check::Note(s.into()));
    }
    fn fix(&mut self, s: impl Into<String>) {
        self.0.push(Check::Fix(s.into()));
    }

    /// One line per check. The texts quote servers, registries and files, so
    /// they are escaped ([`crate::util::printable_lines`]).
    fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.0 {
            let (tag, text) = match c {
                Check::Ok(t) => ("OK  ", t),
                Check::Note(t) => ("NOTE", t),
                Check::Fix(t) => ("FIX ", t),
            };
            let _ = writeln!(out, "{tag}  {}", crate::util::printable_lines(text));
        }
        out
    }

    fn problems(&self) -> usize {
        self.0.iter().filter(|c| matches!(c, Check::Fix(_))).count()
    }
}

pub async fn run(opts: &ServeOptions) -> anyhow::Result<()> {
    let mut r = Report::default();
    let loaded = app::load_config(opts);
    let (paths, cfg) = match loaded {
        Ok((paths, cfg)) => {
            if paths.config_file.is_file() {
                r.ok(format!("config {} loads", paths.config_file.display()));
            } else {
                r.note(format!(
                    "no config file at {}: defaults apply (copy config/config.example.toml there to start)",
                    paths.config_file.display()
                ));
            }
            (paths, cfg)
        }
        Err(e) => {
            r.fix(format!("{e}: fix the file (serve refuses to start with it)"));
            ides(&mut r, &Machine::detect());
            super::out::print(r.render())?;
            anyhow::bail!("{} thing(s) to fix", r.problems());
        }
    };
    registry(&mut r, &cfg, &paths).await;
    let store = app::open_store(&cfg, &paths).get().await;
    match &store {
        Some(s) => match s.fallback_reason() {
            Some(why) => r.note(format!(
                "credential store: {}, as no OS credential store is usable ({why})",
                s.describe()
            )),
            None => r.ok(format!("credential store: {}", s.describe())),
        },
        None => r.fix("no credential store could be opened: set [auth] store = \"file\" in the config"),
    }
    servers(&mut r, &cfg, &paths, store).await;
    telemetry(&mut r, &cfg, &paths).await;
    ides(&mut r, &Machine::detect());
    super::out::print(r.render())?;
    let n = r.problems();
    anyhow::ensure!(n == 0, "{n} thing(s) to fix");
    Ok(())
}

async fn registry(r: &mut Report, cfg: &Config, paths: &crate::config::Paths) {
    let Some(rc) = &cfg.registry else {
        r.note("no registry configured: only [[servers]] are bridged");
        return;
    };
    if let Some(file) = &rc.file {
        match crate::registry::read_file(file) {
            Ok(e) => r.ok(format!("registry file {} has {} entries", file.display(), e.len())),
            Err(e) => r.fix(format!("{e}: fix the file; serve keeps its last good copy")),
        }
        return;
    }
    let Some(url) = &rc.url else { return };
    let client = crate::net::builder().build().unwrap_or_default();
    let fetched = tokio::time::timeout(
        secs(cfg.timeouts.connect),
        crate::registry::sync::fetch_since(&client, url, rc, None, None),
    )
    .await;
    match fetched {
        Ok(Ok(crate::registry::sync::Fetched::Servers {
            servers, capped: false, ..
        })) => r.ok(format!("registry {url} answers: {} entries", servers.len())),
        Ok(Ok(crate::registry::sync::Fetched::Servers {
            servers, capped: true, ..
        })) => r.ok(format!(
            "registry {url} answers: more than {} entries; serve takes the first {} ([registry] max_servers)",
            servers.len(),
            servers.len()
        )),
        Ok(Ok(crate::registry::sync::Fetched::NotModified)) => r.ok(format!("registry {url} answers")),
        other => {
            let why = match other {
                Ok(Err(e)) => e.to_string(),
                _ => format!("registry {url}: no answer within {} s", cfg.timeouts.connect),
            };
            match crate::registry::load_cached(&paths.cache_dir, url) {
                Some((_, age)) => r.fix(format!(
                    "{why}; serve uses its cached copy from {age} s ago. Check the URL and your network"
                )),
                None => r.fix(format!("{why}; no cached copy either. Check the URL and your network")),
            }
        }
    }
}

/// Where `serve` would export telemetry, and whether that collector takes an
/// (empty) OTLP export.
async fn telemetry(r: &mut Report, cfg: &Config, paths: &crate::config::Paths) {
    let collector = crate::registry::collector(&crate::live::load_local(cfg, paths).mirror.servers);
    let env = |k: &str| std::env::var(k).ok();
    match crate::telemetry::Plan::resolve(&cfg.telemetry, &env, collector) {
        Ok(None) => r.note("telemetry: off (no collector named in [telemetry], OTEL_EXPORTER_OTLP_ENDPOINT or the registry)"),
        Err(why) => r.fix(format!("telemetry: {why}")),
        Ok(Some(plan)) => match crate::telemetry::probe(&plan).await {
            Ok(to) => r.ok(format!("telemetry: the collector at {to} takes OTLP exports")),
            Err(why) => r.fix(format!(
                "telemetry: {why}; spans would be dropped (metrics are resent whole). Check [telemetry] endpoint and headers"
            )),
        },
    }
}

/// Connect to every server through the same code as `serve` and report each.
async fn servers(
    r: &mut Report,
    cfg: &Config,
    paths: &crate::config::Paths,
    store: Option<std::sync::Arc<crate::auth::store::TokenStore>>,
) {
    let resolved = app::resolve_servers(cfg, paths, &Default::default()).await;
    if let Some(st) = &store {
        stored_entries(r, st, &resolved.servers).await;
    }
    idp_chain(r, cfg, store.clone(), &resolved.servers).await;
    for p in &resolved.problems {
        r.fix(format!("server {}: not bridged: {}", p.server, p.reason));
    }
    if resolved.servers.is_empty() {
        if resolved.problems.is_empty() {
            r.note("no servers configured: add a [registry] or [[servers]] to the config");
        }
        return;
    }
    let (client, bridge) = match super::local::bridge(paths, cfg, resolved.servers).await {
        Ok(x) => x,
        Err(e) => {
            r.fix(format!("cannot start a bridge in this process: {e:#}"));
            return;
        }
    };
    let states = bridge.server_states();
    for u in bridge.upstreams() {
        let (id, url) = (&u.spec.id, &u.spec.url);
        match u.state() {
            ConnState::Ready { protocol, .. } => {
                let tools = states.iter().find(|s| s.id == *id).map_or(0, |s| s.tools);
                let configured_header = u
                    .spec
                    .headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("authorization"));
                let entry = match &store {
                    Some(st) => crate::auth::ServerCredentials::new(st.clone(), url).entry().await,
                    None => None,
                };
                let mut auth = super::status::auth_state(configured_header, entry.as_ref(), crate::util::now_unix());
                if u.spec.oauth.client_credentials.is_some() {
                    auth = super::status::client_credentials(auth);
                }
                let auth = super::status::via_idp(&u.spec, auth, store.as_ref(), &mut Vec::new()).await;
                r.ok(format!(
                    "server {id} ({url}): connected, protocol {protocol}, {tools} tools; auth: {}",
                    auth.long(id)
                ));
            }
            // The IdP's session: the error says `login --idp`.
            ConnState::Failed {
                needs_login: Some(_),
                error,
                ..
            } if u.spec.oauth.enterprise.is_some() => r.fix(format!("server {id} ({url}): {error}")),
            ConnState::Failed {
                needs_login: Some(_), ..
            } => r.fix(format!(
                "server {id} ({url}): needs a login: run `mcp-bridge login {id}`"
            )),
            ConnState::Failed { error, .. } => r.fix(format!("server {id} ({url}): {error}")),
            ConnState::Connecting { .. } => r.fix(format!(
                "server {id} ({url}): no answer within {} s; check the URL, or raise [timeouts] connect",
                cfg.timeouts.connect
            )),
            ConnState::Stopped => {}
        }
    }
    let _ = client.cancel().await;
    bridge.stop().await;
}

/// Enterprise-managed authorization, link by link: each identity provider's
/// discovery and its ID token (present, unexpired); each enterprise server's
/// protected resource and authorization server metadata, and that the
/// authorization server takes the JWT bearer grant when it lists grants.
async fn idp_chain(
    r: &mut Report,
    cfg: &Config,
    store: Option<std::sync::Arc<crate::auth::store::TokenStore>>,
    servers: &[crate::registry::ServerSpec],
) {
    use crate::auth::enterprise::{self, Session};
    // `[auth.idp]` even with no enterprise server yet, then those servers'.
    let configured = match cfg
        .auth
        .idp
        .as_ref()
        .map(|c| crate::registry::Idp::from_config(c, &crate::config::env_var))
    {
        Some(Ok(i)) => Some(i),
        Some(Err(why)) => {
            r.fix(format!("[auth.idp]: {why}"));
            None
        }
        None => None,
    };
    let mut seen: Vec<&str> = Vec::new();
    let idps = configured.iter().chain(
        servers
            .iter()
            .filter_map(|s| s.oauth.enterprise.as_ref())
            .map(|e| &e.idp),
    );
    for idp in idps {
        let issuer = idp.issuer.as_str();
        if seen.contains(&issuer) {
            continue;
        }
        seen.push(issuer);
        match enterprise::idp_metadata(issuer).await {
            Ok(m) => {
                let exchanges = m
                    .grant_types_supported
                    .as_ref()
                    .is_none_or(|g| g.iter().any(|x| x == enterprise::TOKEN_EXCHANGE));
                if exchanges {
                    r.ok(format!(
                        "identity provider {issuer}: discovery answers (token endpoint {})",
                        m.token_endpoint
                    ));
                } else {
                    r.fix(format!(
                        "identity provider {issuer}: its metadata does not list the token exchange grant: ask its administrator to enable identity assertions (ID-JAG) for the bridge's client {}",
                        idp.client_id
                    ));
                }
            }
            Err(why) => r.fix(format!("identity provider {issuer}: {why}")),
        }
        let now = crate::util::now_unix();
        let left = |exp: Option<u64>| match exp {
            Some(x) => format!("expires in {} min", x.saturating_sub(now) / 60),
            None => "no expiry".into(),
        };
        match enterprise::session(store.clone(), idp).await {
            s @ Session::Env { exp } if s.is_usable() => r.ok(format!(
                "identity provider {issuer}: ID token from {} ({})",
                enterprise::ENV_ID_TOKEN,
                left(exp)
            )),
            Session::Env { .. } => r.fix(format!(
                "identity provider {issuer}: the ID token in {} has expired: set a fresh one",
                enterprise::ENV_ID_TOKEN
            )),
            Session::Live { exp } => r.ok(format!("identity provider {issuer}: signed in, ID token {}", left(exp))),
            Session::Renewable => r.note(format!(
                "identity provider {issuer}: the ID token has expired; it is renewed with the refresh token on next use"
            )),
            Session::Ended => r.fix(format!(
                "identity provider {issuer}: no ID token (never signed in, or the session has ended): run `mcp-bridge login --idp`"
            )),
        }
    }
    let Some(store) = store else { return };
    for s in servers.iter().filter(|s| s.oauth.enterprise.is_some()) {
        let creds = crate::auth::ServerCredentials::new(store.clone(), &s.url);
        match crate::auth::client_credentials::discover(s, creds, "identity assertions").await {
            Ok(found) => {
                let grants = crate::auth::client_credentials::listed(&found.metadata, "grant_types_supported");
                let issuer = found.metadata.issuer.clone().unwrap_or_default();
                match grants {
                    Some(g) if !g.iter().any(|x| x == enterprise::JWT_BEARER) => r.fix(format!(
                        "server {}: its authorization server {issuer} does not list the JWT bearer grant: it must trust the identity provider for the bridge to get tokens",
                        s.id
                    )),
                    _ => r.ok(format!(
                        "server {}: resource {} and authorization server {issuer} found for identity assertions",
                        s.id, found.resource
                    )),
                }
            }
            Err(e) => r.fix(e.to_string()),
        }
    }
}

/// The credential store's entry of each server: one that exists and cannot be
/// read is named (its file, or the OS store's service and user) with the fix.
async fn stored_entries(
    r: &mut Report,
    store: &std::sync::Arc<crate::auth::store::TokenStore>,
    servers: &[crate::registry::ServerSpec],
) {
    use crate::auth::store::StoreError;
    for s in servers {
        let id = &s.id;
        match crate::auth::ServerCredentials::new(store.clone(), &s.url).read().await {
            Ok(_) => {}
            Err(StoreError::Corrupt { location, message, .. }) => r.fix(format!(
                "credential store: the entry of server {id} in {location} is unreadable ({message}): \
                 run `mcp-bridge logout {id}` to remove it, then log in again"
            )),
            Err(e) => r.fix(format!("credential store: cannot read the entry of server {id}: {e}")),
        }
    }
    // The IdPs' logins are entries too (keyed by their issuers).
    let known: Vec<String> = servers
        .iter()
        .map(|s| crate::auth::canonical_key(&s.url))
        .chain(
            servers
                .iter()
                .filter_map(|s| s.oauth.enterprise.as_ref())
                .map(|e| crate::auth::canonical_key(&e.idp.issuer)),
        )
        .collect();
    for path in store.unreadable_files(&known) {
        r.note(format!(
            "credential store: {} is unreadable and belongs to no configured server: \
             run `mcp-bridge logout <URL>` for a server you give on the command line, else delete the file",
            path.display()
        ));
    }
}

/// The IDE entries: for each IDE found, is the bridge in its file, and does
/// the entry launch a binary that exists?
fn ides(r: &mut Report, m: &Machine) {
    for c in Client::ALL {
        let mut files: Vec<(Scope, std::path::PathBuf)> = Vec::new();
        for scope in [Scope::User, Scope::Project] {
            if let Ok(paths) = c.paths(scope, m) {
                files.extend(paths.into_iter().map(|p| (scope, p)));
            }
        }
        let mut found = false;
        for (scope, path) in &files {
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            let named = install::edit::get(&text, c.place(), install::DEFAULT_NAME);
            let renamed = install::edit::entries_with_command(&text, c.place(), install::is_bridge_command);
            let entry = match (named, renamed) {
                (Ok(Some(e)), _) => Some(e),
                (Ok(None), Ok(names)) => names
                    .first()
                    .and_then(|n| install::edit::get(&text, c.place(), n).ok().flatten()),
                (Err(e), _) | (_, Err(e)) => {
                    r.fix(format!(
                        "{}: {} does not parse ({e}); the IDE cannot read it either",
                        c.title(),
                        path.display()
                    ));
                    continue;
                }
            };
            let Some(entry) = entry else { continue };
            found = true;
            let command = install::edit::entry_command(&entry).unwrap_or_default();
            let scope_flag = if *scope == Scope::Project {
                " --scope project"
            } else {
                ""
            };
            let bare = !command.is_empty() && !command.contains(['/', '\\']);
            match install::clients::find_command(command) {
                Some(found) if bare => r.ok(format!(
                    "{}: {} launches {command} from PATH ({}; an IDE started from the desktop may have another PATH)",
                    c.title(),
                    path.display(),
                    found.display()
                )),
                Some(_) => r.ok(format!("{}: {} launches {command}", c.title(), path.display())),
                None if bare => r.fix(format!(
                    "{}: {} launches {command:?} from PATH, and there is none on PATH: put the directory holding \
                     mcp-bridge on PATH (installers/install.sh installs to ~/.local/bin)",
                    c.title(),
                    path.display()
                )),
                None => r.fix(format!(
                    "{}: {} launches {command:?}, which does not exist: run `mcp-bridge install {}{scope_flag}`",
                    c.title(),
                    path.display(),
                    c.id()
                )),
            }
        }
        if !found && c.looks_installed(m) {
            r.note(format!(
                "{}: found, without the bridge: run `mcp-bridge install {}` to add it",
                c.title(),
                c.id()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_and_problems() {
        let mut r = Report::default();
        r.ok("config loads");
        r.note("no registry");
        r.fix("server x: needs a login: run `mcp-bridge login x`");
        assert_eq!(r.problems(), 1);
        let text = r.render();
        assert!(
            text.starts_with("OK    config loads\nNOTE  no registry\nFIX   server x"),
            "{text}"
        );
    }

    /// A server's error text cannot drive the terminal.
    #[test]
    fn report_lines_are_escaped() {
        let mut r = Report::default();
        r.fix("server x (http://x/mcp): \x1b]0;pwned\x07\x1b[2J\u{9b}1m");
        let text = r.render();
        assert_eq!(
            text,
            "FIX   server x (http://x/mcp): \\x1b]0;pwned\\x07\\x1b[2J\\u{9b}1m\n"
        );
    }
}
