//! `mcp-bridge status`: the configured servers merged with what the running
//! bridges publish ([`crate::state`]), the credential store's view of each login,
//! and the registry's freshness; a table for a person, `--json` for a script.
//!
//! Only [`status`] does IO. Merging, auth states (an unreadable stored entry
//! named with its location and the fix), ages and rendering (foreign text
//! escaped, `--json` exact) are plain functions over plain data, tested below.

use serde_json::{Value, json};

use super::out;
use super::table::{Align, Paint, table};
use crate::app::{self, ServeOptions};
use crate::auth::ServerCredentials;
use crate::auth::store::{Entry, StoreError};
use crate::cache::CatalogCache;
use crate::config::{Config, Paths};
use crate::registry::{self, AdHoc, Problem, ServerSpec};
use crate::state::{self, Snapshot};
use crate::util::printable;

/// `mcp-bridge status [--json]`: no connection is made.
pub async fn status(opts: &ServeOptions, json: bool) -> anyhow::Result<()> {
    // A broken config must not hide what the running bridges (which keep their
    // last good config) report: say it, show the rest, and still fail.
    let (paths, cfg, broken) = match app::load_config(opts) {
        Ok((paths, cfg)) => (paths, cfg, None),
        Err(e) => {
            eprintln!(
                "mcp-bridge: {}\n(showing what running bridges report; servers from the config are unknown)",
                crate::util::printable_lines(&e.to_string())
            );
            let paths = crate::config::Paths::resolve(opts.config.as_deref());
            (paths, crate::config::Config::default(), Some(e))
        }
    };
    let resolved = app::resolve_servers(&cfg, &paths, &AdHoc::default()).await;
    let store = app::open_store(&cfg, &paths).get().await;
    let now = state::now_unix();
    let live = state::read_live(&paths.state_dir);
    let cache = if resolved
        .servers
        .iter()
        .all(|s| published(&live, &s.id, &s.url).is_some())
    {
        CatalogCache::default()
    } else {
        CatalogCache::load(&paths.cache_dir)
    };
    let mut rows = merge(&resolved.servers, &live, &cache);
    let mut sessions = Vec::new();
    for row in &mut rows {
        let stored = match &store {
            Some(st) => stored_auth(
                row.configured_header,
                ServerCredentials::new(st.clone(), &row.url).read().await,
                now,
            ),
            None => auth_state(row.configured_header, None, now),
        };
        row.auth = effective_auth(stored, row);
        if let Some(spec) = resolved.servers.iter().find(|s| s.id == row.server && s.url == row.url) {
            let auth = std::mem::replace(&mut row.auth, Auth::None);
            row.auth = via_idp(spec, auth, store.as_ref(), &mut sessions).await;
        }
    }
    let report = Report {
        config: paths.config_file.display().to_string(),
        credential_store: store
            .as_ref()
            .map(|s| s.describe())
            .unwrap_or_else(|| "unavailable".into()),
        bridges: live.iter().map(BridgeInfo::from).collect(),
        registry: registry_report(registry_on_disk(&cfg, &paths, now), &live, now),
        rows,
        problems: resolved.problems,
    };
    let text = if json {
        crate::util::json_pretty(&to_json(&report, now))? + "\n"
    } else {
        render(&report, now, out::colour())
    };
    out::print(text)?;
    match broken {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// The registry as the disk shows it: the API's cached copy (its age, its entry
/// count), or the file (its modification time, its entry count or why it is
/// unreadable).
fn registry_on_disk(cfg: &Config, paths: &Paths, now: u64) -> Option<RegistryReport> {
    let rc = cfg.registry.as_ref()?;
    let source = state::registry_source(rc)?;
    if let Some(file) = &rc.file {
        let modified = std::fs::metadata(file)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        let (servers, last_error) = match registry::read_file(file) {
            Ok(entries) => (Some(entries.len()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        return Some(RegistryReport {
            source,
            age_seconds: modified.map(|d| now.saturating_sub(d.as_secs())),
            age_is: "modified",
            last_error,
            servers,
        });
    }
    let cached = registry::load_cached(&paths.cache_dir, &source);
    Some(RegistryReport {
        source,
        age_seconds: cached.as_ref().map(|(_, age)| *age),
        age_is: "fetched",
        last_error: None,
        servers: cached.map(|(entries, _)| entries.len()),
    })
}

/// Everything `status` reports.
#[derive(Debug)]
struct Report {
    config: String,
    credential_store: String,
    bridges: Vec<BridgeInfo>,
    registry: Option<RegistryReport>,
    rows: Vec<Row>,
    problems: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq)]
struct BridgeInfo {
    pid: u32,
    started_at: u64,
    updated_at: u64,
    config: String,
    config_error: Option<String>,
    telemetry: Option<crate::telemetry::TelemetryState>,
}

impl From<&Snapshot> for BridgeInfo {
    fn from(s: &Snapshot) -> Self {
        BridgeInfo {
            pid: s.pid,
            started_at: s.started_at,
            updated_at: s.updated_at,
            config: s.config.clone(),
            config_error: s.config_error.clone(),
            telemetry: s.telemetry.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct RegistryReport {
    source: String,
    age_seconds: Option<u64>,
    /// What the age counts from: `fetched`, `read` or `modified`.
    age_is: &'static str,
    last_error: Option<String>,
    servers: Option<usize>,
}

/// The registry from the newest bridge that reads the configured one (or any, with
/// none configured), completed from the disk; else what the disk says.
fn registry_report(on_disk: Option<RegistryReport>, live: &[Snapshot], now: u64) -> Option<RegistryReport> {
    let published = live
        .iter()
        .filter_map(|s| s.registry.as_ref())
        .find(|r| match &on_disk {
            Some(d) => r.source == d.source,
            None => true,
        });
    let Some(p) = published else { return on_disk };
    let is_url = p.source.starts_with("http://") || p.source.starts_with("https://");
    Some(match p.last_success {
        Some(at) => RegistryReport {
            source: p.source.clone(),
            age_seconds: Some(now.saturating_sub(at)),
            age_is: if is_url { "fetched" } else { "read" },
            last_error: p.last_error.clone(),
            servers: Some(p.servers),
        },
        None => RegistryReport {
            source: p.source.clone(),
            last_error: p.last_error.clone(),
            ..on_disk.unwrap_or(RegistryReport {
                source: String::new(),
                age_seconds: None,
                age_is: "fetched",
                last_error: None,
                servers: None,
            })
        },
    })
}

/// How a server authenticates, from the credential store and the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Auth {
    LoggedIn {
        expires_in: Option<u64>,
    },
    ExpiredWillRefresh,
    NeedsLogin,
    Static(Vec<String>),
    ConfigHeader,
    None,
    /// The stored entry exists and cannot be read: where it is, and why.
    Unreadable {
        location: String,
        why: String,
    },
    /// The store itself failed (a locked keyring).
    StoreFailed(String),
    /// Tokens the bridge gets itself with client credentials: never a login.
    ClientCredentials {
        /// The stored token's time left, if there is one that has not run out.
        expires_in: Option<u64>,
    },
    /// Enterprise grant: tokens through the identity provider `issuer`;
    /// `token` is the server's own token's state, `session` the IdP's.
    ViaIdp {
        issuer: String,
        session: crate::auth::enterprise::Session,
        token: Box<Auth>,
    },
}

impl Auth {
    /// The full sentence (`--json`); `target` is what to pass to `login`.
    pub(super) fn long(&self, target: &str) -> String {
        match self {
            Auth::LoggedIn { expires_in: Some(s) } => format!("logged in (token expires in {s} s)"),
            Auth::LoggedIn { expires_in: None } => "logged in".into(),
            Auth::ExpiredWillRefresh => "logged in (token expired; will refresh)".into(),
            Auth::NeedsLogin => format!("needs login: run `mcp-bridge login {target}`"),
            Auth::Static(names) => format!("static credential ({})", names.join(", ")),
            Auth::ConfigHeader => "static header from config".into(),
            Auth::None => "none configured (logs in on first 401)".into(),
            Auth::Unreadable { location, why } => format!(
                "unreadable credentials in {location} ({why}): run `mcp-bridge logout {target}` to remove them, then log in again"
            ),
            Auth::StoreFailed(e) => format!("unknown ({e})"),
            Auth::ClientCredentials { expires_in: Some(s) } => {
                format!("client credentials (token expires in {s} s; renewed before)")
            }
            Auth::ClientCredentials { expires_in: None } => {
                "client credentials (a token is fetched when the bridge connects)".into()
            }
            Auth::ViaIdp { issuer, session, token } => {
                use crate::auth::enterprise::Session;
                let session = match session {
                    Session::Env { .. } if !session.is_usable() => {
                        format!("the ID token in {} has expired", crate::auth::enterprise::ENV_ID_TOKEN)
                    }
                    Session::Env { .. } => format!("ID token from {}", crate::auth::enterprise::ENV_ID_TOKEN),
                    Session::Live { .. } => "identity provider session live".into(),
                    Session::Renewable => "identity provider session live (ID token will be renewed)".into(),
                    Session::Ended => crate::auth::enterprise::SESSION_ENDED.into(),
                };
                let token = match token.as_ref() {
                    Auth::LoggedIn { expires_in: Some(s) } => format!("token expires in {s} s"),
                    Auth::LoggedIn { expires_in: None } => "has a token".into(),
                    _ => "no token yet (exchanged on connect)".into(),
                };
                format!("via idp {issuer}: {token}; {session}")
            }
        }
    }

    /// Something the user has to act on.
    fn needs_action(&self) -> bool {
        match self {
            Auth::ViaIdp { session, .. } => !session.is_usable(),
            _ => matches!(self, Auth::NeedsLogin | Auth::Unreadable { .. } | Auth::StoreFailed(_)),
        }
    }

    /// A table cell.
    fn short(&self) -> String {
        match self {
            Auth::LoggedIn { expires_in: Some(s) } => format!("logged in, {} left", format_duration(*s)),
            Auth::LoggedIn { expires_in: None } => "logged in".into(),
            Auth::ExpiredWillRefresh => "logged in, will refresh".into(),
            Auth::NeedsLogin => "needs login".into(),
            Auth::Static(_) => "static credential".into(),
            Auth::ConfigHeader => "static (config)".into(),
            Auth::None => "none".into(),
            Auth::Unreadable { .. } => "unreadable".into(),
            Auth::StoreFailed(_) => "store error".into(),
            Auth::ClientCredentials { expires_in: Some(s) } => {
                format!("client credentials, {} left", format_duration(*s))
            }
            Auth::ClientCredentials { expires_in: None } => "client credentials".into(),
            Auth::ViaIdp { session, token, .. } => match token.as_ref() {
                _ if !session.is_usable() => "via idp, login --idp".into(),
                Auth::LoggedIn { expires_in: Some(s) } => format!("via idp, {} left", format_duration(*s)),
                _ => "via idp".into(),
            },
        }
    }
}

/// A server with the enterprise grant: its token's state with the IdP's
/// session (`sessions` holds each IdP's, read once).
pub(super) async fn via_idp(
    spec: &ServerSpec,
    token: Auth,
    store: Option<&std::sync::Arc<crate::auth::TokenStore>>,
    sessions: &mut Vec<(String, crate::auth::enterprise::Session)>,
) -> Auth {
    let Some(e) = &spec.oauth.enterprise else {
        return token;
    };
    if matches!(token, Auth::Unreadable { .. } | Auth::StoreFailed(_)) {
        return token;
    }
    let session = match sessions.iter().find(|(i, _)| *i == e.idp.issuer) {
        Some((_, s)) => s.clone(),
        None => {
            let s = crate::auth::enterprise::session(store.cloned(), &e.idp).await;
            sessions.push((e.idp.issuer.clone(), s.clone()));
            s
        }
    };
    Auth::ViaIdp {
        issuer: e.idp.issuer.clone(),
        session,
        token: Box::new(token),
    }
}

/// The auth state from what reading the store gave.
pub(super) fn stored_auth(configured_header: bool, read: Result<Option<Entry>, StoreError>, now: u64) -> Auth {
    match read {
        Ok(entry) => auth_state(configured_header, entry.as_ref(), now),
        Err(StoreError::Corrupt { location, message, .. }) => Auth::Unreadable { location, why: message },
        Err(e) => Auth::StoreFailed(e.to_string()),
    }
}

/// The auth state the credential store and the config give.
pub(super) fn auth_state(configured_header: bool, entry: Option<&Entry>, now: u64) -> Auth {
    if let Some(e) = entry {
        if let Some(c) = e.oauth.as_ref().filter(|c| c.token_response.is_some()) {
            let v = serde_json::to_value(c.token_response.as_ref()).unwrap_or_default();
            let exp = v.get("expires_in").and_then(Value::as_u64);
            let refreshable = v.get("refresh_token").is_some();
            return match (c.token_received_at, exp) {
                (Some(at), Some(exp)) if at + exp > now => Auth::LoggedIn {
                    expires_in: Some(at + exp - now),
                },
                (Some(_), Some(_)) if refreshable => Auth::ExpiredWillRefresh,
                (Some(_), Some(_)) => Auth::NeedsLogin,
                _ => Auth::LoggedIn { expires_in: None },
            };
        }
        if !e.headers.is_empty() {
            return Auth::Static(e.headers.keys().cloned().collect());
        }
    }
    if configured_header {
        return Auth::ConfigHeader;
    }
    Auth::None
}

/// The state of a server whose tokens come from client credentials, from what
/// the store holds for it.
pub(super) fn client_credentials(stored: Auth) -> Auth {
    match stored {
        Auth::LoggedIn { expires_in } => Auth::ClientCredentials { expires_in },
        Auth::Unreadable { .. } | Auth::StoreFailed(_) => stored,
        _ => Auth::ClientCredentials { expires_in: None },
    }
}

/// A bridge that cannot reach a server for want of a login says so: that wins over
/// the store (whose tokens the server may have revoked) unless the server is ready,
/// or the stored entry is unreadable (which has to go before a login helps).
fn effective_auth(stored: Auth, row: &Row) -> Auth {
    if matches!(stored, Auth::Unreadable { .. } | Auth::StoreFailed(_)) {
        return stored;
    }
    // Such a server is never logged in to: an expired or refused token is
    // replaced by the bridge (a refused secret is the row's last error).
    if row.client_credentials {
        return client_credentials(stored);
    }
    if row.needs_login && row.state != "ready" {
        Auth::NeedsLogin
    } else {
        stored
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    tools: usize,
    resources: usize,
    resource_templates: usize,
    prompts: usize,
}

/// Where a row's counts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListsFrom {
    /// A running bridge's live lists.
    Bridge,
    /// The catalog cache the last bridge left.
    Cache,
}

/// One server in the report.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    server: String,
    name: Option<String>,
    source: String,
    url: String,
    /// A published state, or `not running`.
    state: String,
    protocol: Option<String>,
    auth: Auth,
    counts: Option<(Counts, ListsFrom)>,
    last_refresh: Option<u64>,
    last_error: Option<String>,
    last_error_at: Option<u64>,
    /// The bridge published that the server wants a login.
    needs_login: bool,
    /// The bridge the live state comes from.
    bridge: Option<u32>,
    /// The config sends an `Authorization` header.
    configured_header: bool,
    /// The bridge gets this server's tokens with client credentials.
    client_credentials: bool,
}

impl Row {
    /// What to pass to `mcp-bridge login`: the id, or the URL for a server given
    /// on a bridge's command line (unknown to the config).
    fn login_target(&self) -> &str {
        if self.source == state::source_label(&registry::Source::CommandLine) {
            &self.url
        } else {
            &self.server
        }
    }
}

/// The newest published state of the server `id` at `url`, and its bridge's pid.
fn published<'a>(live: &'a [Snapshot], id: &str, url: &str) -> Option<(&'a state::ServerState, u32)> {
    live.iter().find_map(|s| {
        s.servers
            .iter()
            .find(|x| x.id == id && x.url == url)
            .map(|x| (x, s.pid))
    })
}

/// One row per configured server (in config order), with the newest live state a
/// bridge publishes for it, else its cached counts; then the servers only running
/// bridges know (started with other configs or URLs), newest bridge first.
fn merge(specs: &[ServerSpec], live: &[Snapshot], cache: &CatalogCache) -> Vec<Row> {
    let mut rows = Vec::new();
    for s in specs {
        let configured_header = s.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization"));
        let mut row = match published(live, &s.id, &s.url) {
            Some((st, pid)) => from_published(st, pid),
            None => Row {
                server: s.id.clone(),
                name: None,
                source: String::new(),
                url: s.url.clone(),
                state: "not running".into(),
                protocol: None,
                auth: Auth::None,
                counts: cache.servers.get(&s.id).filter(|c| c.url == s.url).map(|c| {
                    let counts = Counts {
                        tools: c.lists.tools.len(),
                        resources: c.lists.resources.len(),
                        resource_templates: c.lists.resource_templates.len(),
                        prompts: c.lists.prompts.len(),
                    };
                    (counts, ListsFrom::Cache)
                }),
                last_refresh: None,
                last_error: None,
                last_error_at: None,
                needs_login: false,
                bridge: None,
                configured_header: false,
                client_credentials: false,
            },
        };
        row.name = Some(s.display_name.clone());
        row.source = state::source_label(&s.source).into();
        row.configured_header = configured_header;
        row.client_credentials = s.oauth.client_credentials.is_some();
        rows.push(row);
    }
    for snap in live {
        for st in &snap.servers {
            if !rows.iter().any(|r| r.server == st.id && r.url == st.url) {
                rows.push(from_published(st, snap.pid));
            }
        }
    }
    rows
}

fn from_published(st: &state::ServerState, pid: u32) -> Row {
    Row {
        server: st.id.clone(),
        name: st.name.clone(),
        source: st.source.clone(),
        url: st.url.clone(),
        state: st.state.clone(),
        protocol: st.protocol.clone(),
        auth: Auth::None,
        counts: Some((
            Counts {
                tools: st.tools,
                resources: st.resources,
                resource_templates: st.resource_templates,
                prompts: st.prompts,
            },
            ListsFrom::Bridge,
        )),
        last_refresh: st.last_refresh,
        last_error: st.last_error.clone(),
        last_error_at: st.last_error_at,
        needs_login: st.needs_login,
        bridge: Some(pid),
        configured_header: false,
        client_credentials: false,
    }
}

/// The `--json` document. Keys are stable; absent values are `null`.
fn to_json(r: &Report, now: u64) -> Value {
    let count = |row: &Row, f: fn(&Counts) -> usize| row.counts.as_ref().map(|(c, _)| f(c));
    let servers: Vec<Value> = r
        .rows
        .iter()
        .map(|row| {
            json!({
                "server": row.server,
                "name": row.name,
                "source": row.source,
                "url": row.url,
                "state": row.state,
                "protocol": row.protocol,
                "auth": row.auth.long(row.login_target()),
                // Enterprise grant: the IdP it comes through and its session.
                "idp": match &row.auth {
                    Auth::ViaIdp { issuer, session, .. } => json!({
                        "issuer": issuer,
                        "session": match session {
                            crate::auth::enterprise::Session::Env { .. } if !session.is_usable() => "expired",
                            crate::auth::enterprise::Session::Env { .. } => "env",
                            crate::auth::enterprise::Session::Live { .. } => "live",
                            crate::auth::enterprise::Session::Renewable => "renewable",
                            crate::auth::enterprise::Session::Ended => "ended",
                        },
                    }),
                    _ => Value::Null,
                },
                "tools": count(row, |c| c.tools),
                "resources": count(row, |c| c.resources),
                "resource_templates": count(row, |c| c.resource_templates),
                "prompts": count(row, |c| c.prompts),
                "lists_from": row.counts.as_ref().map(|(_, from)| match from {
                    ListsFrom::Bridge => "bridge",
                    ListsFrom::Cache => "cache",
                }),
                "last_refresh": row.last_refresh,
                "last_refresh_age_seconds": row.last_refresh.map(|t| now.saturating_sub(t)),
                "last_error": row.last_error,
                "last_error_at": row.last_error_at,
                "bridge_pid": row.bridge,
            })
        })
        .collect();
    json!({
        "config": r.config,
        "credential_store": r.credential_store,
        "bridges": r.bridges.iter().map(|b| json!({
            "pid": b.pid, "started_at": b.started_at, "updated_at": b.updated_at, "config": b.config,
            "config_error": b.config_error, "telemetry": b.telemetry,
        })).collect::<Vec<_>>(),
        "registry": r.registry.as_ref().map(|g| json!({
            "source": g.source, "age_seconds": g.age_seconds, "last_error": g.last_error, "servers": g.servers,
        })),
        "servers": servers,
        "not_bridged": r.problems.iter().map(|p| json!({"server": p.server, "problem": p.reason})).collect::<Vec<_>>(),
    })
}

/// The colour of a server's state.
fn state_paint(state: &str) -> Paint {
    match state {
        "ready" => Paint::Green,
        "connecting" => Paint::Yellow,
        "failed" => Paint::Red,
        "stopped" | "not running" => Paint::Dim,
        _ => Paint::Plain,
    }
}

/// `12 s`, `3 min`, `2 h`, `4 d`: one unit, rounded down.
fn format_duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86400 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86400),
    }
}

/// `12 s ago`; a time in the future (clock skew) counts as now.
fn format_age(at: u64, now: u64) -> String {
    format!("{} ago", format_duration(now.saturating_sub(at)))
}

/// The first line of `s`, at most `max` characters, with `…` when cut.
fn truncate(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() <= max && line.len() == s.trim_end().len() {
        return line.to_owned();
    }
    let cut: String = line.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", cut.trim_end())
}

/// Errors in the table are cut to this many characters (`--json` has them whole).
const ERROR_WIDTH: usize = 100;

/// The terminal report. Every text that is not the bridge's own goes through
/// [`printable`] (the table does it per cell).
fn render(r: &Report, now: u64, colour: bool) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "config:            {}", printable(&r.config));
    let _ = writeln!(out, "credential store:  {}", printable(&r.credential_store));
    match &r.registry {
        Some(g) => {
            let mut facts = Vec::new();
            if let Some(n) = g.servers {
                facts.push(format!("{n} entries"));
            }
            if let Some(age) = g.age_seconds {
                facts.push(format!("{} {} ago", g.age_is, format_duration(age)));
            }
            let facts = if facts.is_empty() {
                "never read".into()
            } else {
                facts.join(", ")
            };
            let _ = writeln!(out, "registry:          {} ({facts})", printable(&g.source));
            if let Some(e) = &g.last_error {
                let _ = writeln!(
                    out,
                    "                   {}",
                    Paint::Red.apply(&printable(&truncate(e, ERROR_WIDTH)), colour)
                );
            }
        }
        None => {
            let _ = writeln!(out, "registry:          none");
        }
    }
    if r.bridges.is_empty() {
        let text = "no bridge running (states below are from the config only)";
        let _ = writeln!(out, "bridges:           {}", Paint::Dim.apply(text, colour));
    }
    for (i, b) in r.bridges.iter().enumerate() {
        let label = if i == 0 { "bridges:" } else { "" };
        let mut line = format!(
            "pid {}, started {}, updated {}",
            b.pid,
            format_age(b.started_at, now),
            format_age(b.updated_at, now)
        );
        if b.config != r.config {
            line.push_str(&format!(", config {}", printable(&b.config)));
        }
        let _ = writeln!(out, "{label:<19}{line}");
        if let Some(t) = &b.telemetry {
            let mut line = format!(
                "telemetry to {}: {} spans sent, {} metric exports",
                printable(&t.destination),
                t.spans_exported,
                t.metric_exports
            );
            let lost = t.spans_dropped > 0 || t.exports_failed > 0;
            if lost {
                line.push_str(&format!(
                    "; {} spans dropped, {} exports failed",
                    t.spans_dropped, t.exports_failed
                ));
            }
            if let Some(e) = t.last_error.as_ref().filter(|_| lost) {
                line.push_str(&format!(" (last: {e})"));
            }
            let line = printable(&truncate(&line, ERROR_WIDTH * 2)).into_owned();
            let paint = if lost { Paint::Red } else { Paint::Dim };
            let _ = writeln!(out, "{:<19}{}", "", paint.apply(&line, colour));
        }
        if let Some(e) = &b.config_error {
            let e = format!("config edit refused, running with the previous one: {e}");
            let _ = writeln!(
                out,
                "{:<19}{}",
                "",
                Paint::Red.apply(&printable(&truncate(&e, ERROR_WIDTH)), colour)
            );
        }
    }
    let _ = writeln!(out);

    if r.rows.is_empty() {
        let _ = writeln!(
            out,
            "no servers: configure a registry or [[servers]] in {}",
            printable(&r.config)
        );
    } else {
        let header = [
            ("SERVER", Align::Left),
            ("SOURCE", Align::Left),
            ("STATE", Align::Left),
            ("AUTH", Align::Left),
            ("PROTOCOL", Align::Left),
            ("TOOLS", Align::Right),
            ("RESOURCES", Align::Right),
            ("PROMPTS", Align::Right),
            ("REFRESHED", Align::Left),
            ("URL", Align::Left),
        ];
        let dash = || ("-".to_owned(), Paint::Plain);
        let cells: Vec<Vec<(String, Paint)>> = r
            .rows
            .iter()
            .map(|row| {
                let count = |f: fn(&Counts) -> usize| match &row.counts {
                    Some((c, _)) => (f(c).to_string(), Paint::Plain),
                    None => dash(),
                };
                let auth_paint = if row.auth.needs_action() {
                    Paint::Red
                } else {
                    Paint::Plain
                };
                vec![
                    (row.server.clone(), Paint::Plain),
                    (row.source.clone(), Paint::Plain),
                    (row.state.clone(), state_paint(&row.state)),
                    (row.auth.short(), auth_paint),
                    row.protocol.clone().map(|p| (p, Paint::Plain)).unwrap_or_else(dash),
                    count(|c| c.tools),
                    count(|c| c.resources + c.resource_templates),
                    count(|c| c.prompts),
                    row.last_refresh
                        .map(|t| (format_age(t, now), Paint::Plain))
                        .unwrap_or_else(dash),
                    (row.url.clone(), Paint::Plain),
                ]
            })
            .collect();
        let lines = table(&header, &cells, colour);
        let mut lines = lines.into_iter();
        if let Some(h) = lines.next() {
            let _ = writeln!(out, "{h}");
        }
        for (row, line) in r.rows.iter().zip(lines) {
            let _ = writeln!(out, "{line}");
            if let Some(e) = &row.last_error {
                let when = row
                    .last_error_at
                    .map(|t| format!(" {}", format_age(t, now)))
                    .unwrap_or_default();
                let paint = if row.state == "ready" { Paint::Dim } else { Paint::Red };
                let text = format!("last error{when}: {}", printable(&truncate(e, ERROR_WIDTH)));
                let _ = writeln!(out, "  {}", paint.apply(&text, colour));
            }
        }
    }
    if !r.problems.is_empty() {
        let _ = writeln!(out);
    }
    for p in &r.problems {
        let _ = writeln!(out, "{}: not bridged: {}", printable(&p.server), printable(&p.reason));
    }
    let logins: Vec<_> = r.rows.iter().filter(|row| row.auth.needs_action()).collect();
    if !logins.is_empty() {
        let _ = writeln!(out);
    }
    for row in logins {
        let _ = writeln!(
            out,
            "{}: {}",
            printable(&row.server),
            printable(&row.auth.long(row.login_target()))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server reached through the IdP says so, with its token and the IdP's
    /// session; an ended session is something to act on, with the command.
    #[test]
    fn servers_through_the_idp_say_so() {
        use crate::auth::enterprise::Session;
        let via = |session: Session, token: Auth| Auth::ViaIdp {
            issuer: "https://idp.example.com".into(),
            session,
            token: Box::new(token),
        };
        let live = via(Session::Live { exp: None }, Auth::LoggedIn { expires_in: Some(600) });
        assert_eq!(live.short(), "via idp, 10 min left");
        assert_eq!(
            live.long("sql"),
            "via idp https://idp.example.com: token expires in 600 s; identity provider session live"
        );
        assert!(!live.needs_action());
        let ended = via(Session::Ended, Auth::None);
        assert_eq!(ended.short(), "via idp, login --idp");
        assert!(
            ended.long("sql").ends_with("run `mcp-bridge login --idp`"),
            "{}",
            ended.long("sql")
        );
        assert!(ended.needs_action());
        let renewable = via(Session::Renewable, Auth::None);
        assert!(renewable.long("sql").contains("no token yet"));
        assert!(!renewable.needs_action());
    }
    use crate::commands::table::strip_ansi;
    use crate::registry::Source;
    use crate::state::{RegistryState, ServerState};

    fn spec(id: &str, url: &str, source: Source) -> ServerSpec {
        ServerSpec {
            id: id.into(),
            display_name: format!("com.example/{id}"),
            source,
            url: url.into(),
            headers: Vec::new(),
            call_timeout: None,
            oauth: Default::default(),
            keep_alive: true,
            max_message_bytes: crate::config::DEFAULT_MAX_MESSAGE_BYTES,
            rules: Default::default(),
        }
    }

    fn live_server(id: &str, url: &str, state: &str) -> ServerState {
        ServerState {
            id: id.into(),
            name: Some(id.into()),
            source: "config".into(),
            url: url.into(),
            state: state.into(),
            protocol: Some("2025-11-25".into()),
            tools: 4,
            resources: 2,
            resource_templates: 1,
            prompts: 3,
            last_refresh: Some(1_000),
            ..ServerState::default()
        }
    }

    fn snapshot(pid: u32, updated_at: u64, servers: Vec<ServerState>) -> Snapshot {
        Snapshot {
            pid,
            started_at: 500,
            updated_at,
            config: "/c.toml".into(),
            registry: None,
            servers,
            config_error: None,
            telemetry: None,
        }
    }

    fn entry(json: Value) -> Entry {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn ages_use_one_unit() {
        assert_eq!(format_duration(0), "0 s");
        assert_eq!(format_duration(59), "59 s");
        assert_eq!(format_duration(60), "1 min");
        assert_eq!(format_duration(3599), "59 min");
        assert_eq!(format_duration(7200), "2 h");
        assert_eq!(format_duration(3 * 86400 + 5), "3 d");
        assert_eq!(format_age(988, 1000), "12 s ago");
        assert_eq!(format_age(2000, 1000), "0 s ago", "clock skew counts as now");
    }

    #[test]
    fn errors_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("ééééééééééé", 5), "éééé…");
        assert_eq!(truncate("first line\nsecond", 50), "first line…");
        assert_eq!(truncate("trailing newline\n", 50), "trailing newline");
    }

    /// Config servers come first, in config order, with the newest bridge's state;
    /// servers only a bridge knows follow; a server at another URL is another server.
    #[test]
    fn merge_configured_and_published() {
        let specs = [
            spec("jira", "https://jira/mcp", Source::Registry),
            spec("notes", "http://notes/mcp", Source::Config),
        ];
        let mut old_jira = live_server("jira", "https://jira/mcp", "failed");
        old_jira.last_error = Some("boom".into());
        let live = [
            snapshot(
                2,
                900,
                vec![
                    live_server("jira", "https://jira/mcp", "ready"),
                    live_server("extra", "http://extra/mcp", "connecting"),
                ],
            ),
            snapshot(
                1,
                800,
                vec![old_jira, live_server("notes", "http://elsewhere/mcp", "ready")],
            ),
        ];
        let rows = merge(&specs, &live, &CatalogCache::default());
        let ids: Vec<_> = rows.iter().map(|r| (r.server.as_str(), r.url.as_str())).collect();
        assert_eq!(
            ids,
            [
                ("jira", "https://jira/mcp"),
                ("notes", "http://notes/mcp"),
                ("extra", "http://extra/mcp"),
                ("notes", "http://elsewhere/mcp"),
            ]
        );
        assert_eq!(rows[0].state, "ready", "the newest bridge wins");
        assert_eq!(rows[0].bridge, Some(2));
        assert_eq!(rows[0].source, "registry", "the config's source, not the snapshot's");
        assert_eq!(rows[0].name.as_deref(), Some("com.example/jira"));
        assert_eq!(rows[0].last_error, None);
        assert_eq!(rows[0].counts.unwrap().1, ListsFrom::Bridge);
        assert_eq!(rows[1].state, "not running");
        assert_eq!(rows[1].counts, None);
        assert_eq!(rows[2].state, "connecting");
    }

    /// With no bridge running, counts come from the catalog cache when its URL
    /// still matches.
    #[test]
    fn counts_from_the_catalog_cache() {
        use crate::cache::CachedServer;
        use crate::catalog::ServerLists;
        let mut cache = CatalogCache::default();
        let tool: rmcp::model::Tool =
            serde_json::from_value(json!({"name": "t", "inputSchema": {"type": "object"}})).unwrap();
        let lists = ServerLists {
            tools: vec![tool.clone(), tool],
            ..ServerLists::default()
        };
        for (id, url) in [("a", "http://a/mcp"), ("b", "http://old-b/mcp")] {
            let cached = CachedServer {
                legacy: None,
                url: url.into(),
                lists: lists.clone(),
            };
            cache.servers.insert(id.into(), cached);
        }
        let specs = [
            spec("a", "http://a/mcp", Source::Config),
            spec("b", "http://b/mcp", Source::Config),
        ];
        let rows = merge(&specs, &[], &cache);
        let (counts, from) = rows[0].counts.unwrap();
        assert_eq!((counts.tools, counts.prompts, from), (2, 0, ListsFrom::Cache));
        assert_eq!(rows[1].counts, None, "cached for another URL");
    }

    #[test]
    fn auth_states() {
        let now = 10_000;
        let oauth = |received: u64, refresh: bool| {
            let mut token = json!({"access_token": "x", "token_type": "Bearer", "expires_in": 3600});
            if refresh {
                token["refresh_token"] = json!("r");
            }
            entry(json!({
                "version": 1,
                "oauth": {"client_id": "c", "token_response": token, "token_received_at": received},
            }))
        };
        assert_eq!(
            auth_state(false, Some(&oauth(now - 600, false)), now),
            Auth::LoggedIn { expires_in: Some(3000) }
        );
        assert_eq!(auth_state(false, Some(&oauth(0, true)), now), Auth::ExpiredWillRefresh);
        assert_eq!(auth_state(false, Some(&oauth(0, false)), now), Auth::NeedsLogin);
        let stat = entry(json!({"version": 1, "headers": {"Authorization": "Bearer s"}}));
        assert_eq!(
            auth_state(false, Some(&stat), now),
            Auth::Static(vec!["Authorization".into()])
        );
        assert_eq!(auth_state(true, None, now), Auth::ConfigHeader);
        assert_eq!(auth_state(false, None, now), Auth::None);
        assert!(Auth::None.long("x").starts_with("none"));
        assert_eq!(
            Auth::NeedsLogin.long("jira"),
            "needs login: run `mcp-bridge login jira`"
        );
        assert_eq!(
            Auth::LoggedIn { expires_in: Some(3000) }.short(),
            "logged in, 50 min left"
        );
    }

    /// An unreadable entry is named with where it is and how to remove it, in
    /// the table's footer and in the JSON, whatever the bridge says.
    #[test]
    fn unreadable_credentials_say_where_and_what_to_do() {
        let corrupt = StoreError::Corrupt {
            key: "http://notes/mcp".into(),
            location: "/s/credentials/abc.json".into(),
            message: "not an entry: expected value at line 1 column 1".into(),
        };
        let auth = stored_auth(false, Err(corrupt), 0);
        let mut rows = merge(
            &[spec("notes", "http://notes/mcp", Source::Config)],
            &[],
            &CatalogCache::default(),
        );
        let mut failed = rows[0].clone();
        failed.state = "failed".into();
        failed.last_error = Some("the server requires a login".into());
        failed.needs_login = true;
        assert_eq!(
            effective_auth(auth.clone(), &failed),
            auth,
            "the bridge's needs-login does not hide it"
        );
        rows[0].auth = auth;
        let text = render(&report(rows.clone(), Vec::new()), 0, false);
        let row = text.lines().find(|l| l.starts_with("notes")).unwrap();
        assert!(row.contains("unreadable"), "{row}");
        assert!(
            text.contains(
                "notes: unreadable credentials in /s/credentials/abc.json (not an entry: expected value at line 1 column 1): \
                 run `mcp-bridge logout notes` to remove them, then log in again"
            ),
            "{text}"
        );
        let v = to_json(&report(rows, Vec::new()), 0);
        assert!(
            v["servers"][0]["auth"]
                .as_str()
                .unwrap()
                .contains("/s/credentials/abc.json")
        );
        let failed = stored_auth(
            false,
            Err(StoreError::Backend {
                backend: "keyring",
                message: "locked".into(),
            }),
            0,
        );
        assert_eq!(failed.short(), "store error");
    }

    /// A bridge that publishes `needs_login` ("the server requires a login")
    /// overrides the store, unless the server has become ready since.
    #[test]
    fn a_published_login_error_means_needs_login() {
        let specs = [spec("vault", "http://vault/mcp", Source::Config)];
        let mut st = live_server("vault", "http://vault/mcp", "failed");
        st.last_error = Some("the server requires a login: run `mcp-bridge login vault`".into());
        st.needs_login = true;
        let rows = merge(&specs, &[snapshot(1, 1, vec![st])], &CatalogCache::default());
        let stored = Auth::LoggedIn { expires_in: None };
        assert_eq!(effective_auth(stored.clone(), &rows[0]), Auth::NeedsLogin);
        let mut ready = rows[0].clone();
        ready.state = "ready".into();
        assert_eq!(effective_auth(stored.clone(), &ready), stored);
    }

    /// A client-credentials server is never "logged in" nor "needs login": its
    /// token's time left, or nothing when the bridge has yet to fetch one
    /// (an expired token with no refresh token would read "needs login").
    #[test]
    fn client_credentials_servers_never_need_a_login() {
        let mut s = spec("jobs", "http://jobs/mcp", Source::Config);
        s.oauth.client_credentials = Some(Default::default());
        let rows = merge(&[s], &[], &CatalogCache::default());
        let live = Auth::LoggedIn { expires_in: Some(90) };
        assert_eq!(
            effective_auth(live, &rows[0]),
            Auth::ClientCredentials { expires_in: Some(90) }
        );
        let expired = effective_auth(Auth::NeedsLogin, &rows[0]);
        assert_eq!(expired, Auth::ClientCredentials { expires_in: None });
        assert!(!expired.needs_action());
        assert_eq!(expired.short(), "client credentials");
        let unreadable = Auth::Unreadable {
            location: "f".into(),
            why: "bad".into(),
        };
        assert_eq!(effective_auth(unreadable.clone(), &rows[0]), unreadable);
    }

    /// The state file of a bridge from before `needs_login` still reads; its
    /// servers are taken as not asking for a login.
    #[test]
    fn an_older_state_file_reads_without_needs_login() {
        let st: state::ServerState = serde_json::from_str(r#"{"id":"vault","state":"failed"}"#).unwrap();
        assert!(!st.needs_login);
        let row = from_published(&st, 1);
        let stored = Auth::LoggedIn { expires_in: None };
        assert_eq!(effective_auth(stored.clone(), &row), stored);
    }

    #[test]
    fn command_line_servers_log_in_by_url() {
        let mut st = live_server("local-8080", "http://127.0.0.1:8080/mcp", "failed");
        st.source = "command line".into();
        let rows = merge(&[], &[snapshot(1, 1, vec![st])], &CatalogCache::default());
        assert_eq!(rows[0].login_target(), "http://127.0.0.1:8080/mcp");
    }

    /// The registry comes from the newest bridge reading the configured one; its
    /// age falls back to the disk when the bridge never succeeded.
    #[test]
    fn registry_from_bridge_or_disk() {
        let disk = RegistryReport {
            source: "https://reg".into(),
            age_seconds: Some(300),
            age_is: "fetched",
            last_error: None,
            servers: Some(7),
        };
        assert_eq!(registry_report(Some(disk.clone()), &[], 1000), Some(disk.clone()));
        let mut s = snapshot(1, 1, Vec::new());
        s.registry = Some(RegistryState {
            source: "https://reg".into(),
            last_success: Some(990),
            last_error: None,
            servers: 9,
        });
        let got = registry_report(Some(disk.clone()), std::slice::from_ref(&s), 1000).unwrap();
        assert_eq!((got.age_seconds, got.servers), (Some(10), Some(9)));
        s.registry = Some(RegistryState {
            source: "https://reg".into(),
            last_success: None,
            last_error: Some("registry https://reg: 503".into()),
            servers: 0,
        });
        let got = registry_report(Some(disk.clone()), std::slice::from_ref(&s), 1000).unwrap();
        assert_eq!((got.age_seconds, got.servers), (Some(300), Some(7)));
        assert_eq!(got.last_error.as_deref(), Some("registry https://reg: 503"));
        s.registry.as_mut().unwrap().source = "https://other".into();
        assert_eq!(registry_report(Some(disk.clone()), &[s.clone()], 1000), Some(disk));
        let got = registry_report(None, &[s], 1000).unwrap();
        assert_eq!(got.source, "https://other", "with none configured, the bridge's");
        assert_eq!(registry_report(None, &[], 1000), None);
    }

    fn report(rows: Vec<Row>, bridges: Vec<BridgeInfo>) -> Report {
        Report {
            config: "/c.toml".into(),
            credential_store: "OS credential store".into(),
            bridges,
            registry: None,
            rows,
            problems: vec![Problem {
                server: "bad".into(),
                reason: "required input region is not set".into(),
            }],
        }
    }

    fn sample_rows() -> Vec<Row> {
        let specs = [
            spec("jira", "https://jira.example.com/mcp", Source::Registry),
            spec("notes", "http://127.0.0.1:9/mcp", Source::Config),
        ];
        let mut failed = live_server("notes", "http://127.0.0.1:9/mcp", "failed");
        failed.last_error = Some(format!("the server requires a login {}", "x".repeat(200)));
        failed.needs_login = true;
        failed.last_error_at = Some(1_090);
        failed.last_refresh = None;
        let live = [snapshot(
            1,
            1,
            vec![live_server("jira", "https://jira.example.com/mcp", "ready"), failed],
        )];
        let mut rows = merge(&specs, &live, &CatalogCache::default());
        for r in &mut rows {
            r.auth = effective_auth(Auth::None, r);
        }
        rows
    }

    /// The table lines up, whatever the colours, and says what to do.
    #[test]
    fn table_is_aligned_with_and_without_colour() {
        let bridges = vec![BridgeInfo {
            pid: 4242,
            started_at: 100,
            updated_at: 1_095,
            config: "/c.toml".into(),
            config_error: Some("invalid config file /c.toml: line 3".into()),
            telemetry: Some(crate::telemetry::TelemetryState {
                destination: "http://127.0.0.1:4318/v1/traces".into(),
                spans_exported: 7,
                spans_dropped: 3,
                exports_failed: 1,
                metric_exports: 2,
                last_error: Some("http://127.0.0.1:4318/v1/traces answered HTTP 503".into()),
            }),
        }];
        let r = report(sample_rows(), bridges);
        let plain = render(&r, 1_100, false);
        assert!(!plain.contains('\x1b'));
        assert!(
            plain.contains("telemetry to http://127.0.0.1:4318/v1/traces: 7 spans sent, 2 metric exports; 3 spans dropped, 1 exports failed (last: http://127.0.0.1:4318/v1/traces answered HTTP 503)"),
            "{plain}"
        );
        let lines: Vec<&str> = plain.lines().collect();
        let header = lines.iter().position(|l| l.starts_with("SERVER")).unwrap();
        let col = |l: &str, name: &str| l.find(name).unwrap();
        let (h, jira, notes) = (lines[header], lines[header + 1], lines[header + 2]);
        assert_eq!(col(h, "STATE"), col(jira, "ready"));
        assert_eq!(col(h, "STATE"), col(notes, "failed"));
        assert_eq!(col(h, "URL"), col(jira, "https://"));
        assert_eq!(col(h, "URL"), col(notes, "http://"));
        assert!(jira.contains("1 min ago"), "{jira}");
        assert!(notes.contains("needs login"), "{notes}");
        assert!(plain.contains("config edit refused"), "{plain}");
        let err = lines[header + 3];
        assert!(
            err.starts_with("  last error 10 s ago: the server requires a login"),
            "{err}"
        );
        assert!(err.ends_with('…') && err.chars().count() < 140, "{err}");
        assert!(plain.contains("bridges:           pid 4242, started 16 min ago, updated 5 s ago"));
        assert!(plain.contains("bad: not bridged: required input region is not set"));
        assert!(plain.contains("notes: needs login: run `mcp-bridge login notes`"));

        let coloured = render(&r, 1_100, true);
        assert!(coloured.contains("\x1b[32mready\x1b[0m"));
        assert!(coloured.contains("\x1b[31mfailed\x1b[0m"));
        assert!(coloured.contains("\x1b[31mneeds login\x1b[0m"));
        assert_eq!(strip_ansi(&coloured), plain, "colour adds codes, never width");
    }

    /// What a server, a registry or a config says is shown escaped, and the
    /// table still lines up; the JSON keeps every string exact.
    #[test]
    fn hostile_text_is_escaped() {
        let evil = "\x1b]0;pwned\x07\x1b[2J\u{9b}1m\u{202e}";
        let specs = [spec("notes", "http://notes/mcp", Source::Config)];
        let mut st = live_server("notes", "http://notes/mcp", "failed");
        st.protocol = Some(format!("2025{evil}"));
        st.last_error = Some(format!("boom {evil}"));
        let mut snap = snapshot(1, 1, vec![st]);
        snap.registry = Some(RegistryState {
            source: format!("https://reg/{evil}"),
            last_success: None,
            last_error: Some(format!("registry: {evil}")),
            servers: 0,
        });
        snap.config_error = Some(format!("line 3: {evil}"));
        let live = [snap];
        let mut r = report(
            merge(&specs, &live, &CatalogCache::default()),
            vec![BridgeInfo::from(&live[0])],
        );
        r.registry = registry_report(None, &live, 2);
        r.problems[0].reason = format!("input {evil}");
        for colour in [false, true] {
            let text = strip_ansi(&render(&r, 2, colour));
            assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text:?}");
            assert!(text.contains("\\x1b]0;pwned\\x07\\x1b[2J\\u{9b}1m\\u{202e}"), "{text}");
        }
        let plain = render(&r, 2, false);
        let lines: Vec<&str> = plain.lines().collect();
        let h = lines.iter().position(|l| l.starts_with("SERVER")).unwrap();
        assert_eq!(
            lines[h].find("TOOLS").unwrap() + 5,
            lines[h + 1].find(" 4").unwrap() + 2
        );
        let v = to_json(&r, 2);
        assert_eq!(v["servers"][0]["last_error"], format!("boom {evil}"));
        assert_eq!(v["servers"][0]["protocol"], format!("2025{evil}"));
    }

    #[test]
    fn nothing_running_says_so() {
        let specs = [spec("notes", "http://notes/mcp", Source::Config)];
        let rows = merge(&specs, &[], &CatalogCache::default());
        let plain = render(&report(rows, Vec::new()), 1_000, false);
        assert!(plain.contains("no bridge running (states below are from the config only)"));
        let row = plain.lines().find(|l| l.starts_with("notes")).unwrap();
        assert!(row.contains("not running"), "{row}");
        assert!(row.contains("-"), "{row}");
        let coloured = render(
            &report(merge(&specs, &[], &CatalogCache::default()), Vec::new()),
            1_000,
            true,
        );
        assert!(coloured.contains("\x1b[2mnot running\x1b[0m"));
    }

    /// The JSON keeps the keys scripts read.
    #[test]
    fn json_keys() {
        let r = report(sample_rows(), Vec::new());
        let v = to_json(&r, 1_100);
        for key in [
            "config",
            "credential_store",
            "bridges",
            "registry",
            "servers",
            "not_bridged",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        let s = &v["servers"][0];
        for key in [
            "server",
            "name",
            "source",
            "url",
            "state",
            "protocol",
            "auth",
            "tools",
            "resources",
            "resource_templates",
            "prompts",
            "last_refresh",
            "last_refresh_age_seconds",
            "last_error",
        ] {
            assert!(s.get(key).is_some(), "{key}");
        }
        assert_eq!(s["server"], "jira");
        assert_eq!(s["tools"], 4);
        assert_eq!(s["last_refresh_age_seconds"], 100);
        assert_eq!(v["servers"][1]["auth"], "needs login: run `mcp-bridge login notes`");
        assert!(
            v["servers"][1]["last_error"].as_str().unwrap().len() > 200,
            "whole in JSON"
        );
        assert_eq!(v["not_bridged"][0]["server"], "bad");
    }
}
