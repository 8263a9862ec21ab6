//! The list of remote servers to bridge: registry entries (from an MCP Registry
//! API or a local file in the same page shape), `[[servers]]` from the config and
//! URLs given on the command line, resolved into [`ServerSpec`]s.
//!
//! Parsing and resolution are pure: [`resolve_with`] takes the environment as a
//! lookup, and [`resolve`] passes it the process's ([`crate::config::env_var`]).
//! [`sync::fetch_since`] is the only function here that does network IO, and
//! [`read_file`] and [`load_mirror`] the only ones that read disk (the cache is
//! written by the caller, from [`mirror_bytes`]). A broken entry is reported as
//! a [`Problem`] naming the server and never stops the others.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod sync;

use crate::catalog::namespace_from;
use crate::config::{Config, RegistryConfig, expand_with};
use crate::util::glob_match;

/// Registry `_meta` key of the official status block.
pub const OFFICIAL_META: &str = "io.modelcontextprotocol.registry/official";
/// Registry `_meta` key of this project's extension.
pub const BRIDGE_META: &str = "dev.mcp-bridge/config";

/// Where a server came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Registry,
    Config,
    CommandLine,
}

/// A header value that may be secret; `Debug` never shows a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct HeaderValue {
    pub value: String,
    pub secret: bool,
}

impl fmt::Debug for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.secret {
            f.write_str("\"[REDACTED]\"")
        } else {
            write!(f, "{:?}", self.value)
        }
    }
}

/// One upstream server, fully resolved and ready to connect.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSpec {
    /// Namespace: the name prefix and the key for caches.
    pub id: String,
    /// Registry name (`com.example/jira`) or the config/CLI name.
    pub display_name: String,
    pub source: Source,
    pub url: String,
    pub headers: Vec<(String, HeaderValue)>,
    /// Call timeout override, seconds.
    pub call_timeout: Option<f64>,
    /// OAuth client settings for this server (from config, the registry's
    /// `_meta`, or the command line).
    pub oauth: OAuthSettings,
    /// Reuse HTTP connections to this server (`keep_alive` in config).
    pub keep_alive: bool,
    /// Largest message accepted from this server (`[http] max_message_bytes`).
    pub max_message_bytes: usize,
    /// The registry operator's tool rules for this server.
    pub rules: crate::policy::ServerRules,
}

/// How to log in to one server.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OAuthSettings {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scopes: Vec<String>,
    pub redirect_port: Option<u16>,
    /// Leave RFC 8707 `resource` out of OAuth requests.
    pub omit_resource: bool,
    /// Client ID Metadata Document URL (CIMD).
    pub client_metadata_url: Option<String>,
    /// Set: the bridge gets tokens itself with the client credentials grant
    /// (`client_id` and `client_secret`, or a private key), never a browser.
    pub client_credentials: Option<ClientCredentials>,
    /// Set: enterprise-managed authorization (SEP-990): tokens from the IdP
    /// login, exchanged with no browser for this server (`auth::enterprise`).
    /// `client_id` and `client_secret` are the bridge's at this server's
    /// authorization server.
    pub enterprise: Option<Enterprise>,
}

impl OAuthSettings {
    /// Whether the bridge gets this server's tokens itself, never through a
    /// browser login for it (client credentials, enterprise).
    pub fn headless(&self) -> bool {
        self.client_credentials.is_some() || self.enterprise.is_some()
    }
}

/// The enterprise grant of one server: its identity provider and how the
/// bridge authenticates at the server's authorization server (as for client
/// credentials: a secret, Basic by default, or a private key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enterprise {
    pub idp: Idp,
    pub client: ClientCredentials,
}

/// An identity provider, from `[auth.idp]`, the registry entry's `_meta` or
/// the command line. `Debug` never shows the secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Idp {
    pub issuer: String,
    /// The bridge's client id at the IdP.
    pub client_id: String,
    pub client_secret: Option<String>,
    pub scopes: Vec<String>,
    pub redirect_port: Option<u16>,
}

impl fmt::Debug for Idp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Idp")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[REDACTED]"))
            .field("scopes", &self.scopes)
            .field("redirect_port", &self.redirect_port)
            .finish()
    }
}

impl Idp {
    /// `[auth.idp]` with its secret read from `env`, or why it cannot be.
    pub fn from_config(c: &crate::config::IdpConfig, env: Env) -> Result<Idp, String> {
        let client_secret = match &c.client_secret_env {
            Some(var) => Some(
                env(var).ok_or_else(|| format!("auth.idp.client_secret_env: environment variable {var} is not set"))?,
            ),
            None => None,
        };
        Ok(Idp {
            issuer: c.issuer.clone(),
            client_id: c.client_id.clone(),
            client_secret,
            scopes: c.scopes.clone(),
            redirect_port: c.redirect_port,
        })
    }
}

/// The client credentials grant's client authentication (`client_id` and
/// `client_secret` are [`OAuthSettings`]' own).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCredentials {
    /// Configured; `None`: what the authorization server lists.
    pub method: Option<crate::config::TokenAuthMethod>,
    /// `private_key_jwt`'s PEM key.
    pub private_key_file: Option<std::path::PathBuf>,
}

impl fmt::Debug for OAuthSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthSettings")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[REDACTED]"))
            .field("scopes", &self.scopes)
            .field("redirect_port", &self.redirect_port)
            .field("client_credentials", &self.client_credentials)
            .field("enterprise", &self.enterprise)
            .finish()
    }
}

/// A server that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub server: String,
    pub reason: String,
}

/// One `/v0.1/servers` response page.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct Page {
    #[serde(default)]
    pub servers: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<PageMetadata>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PageMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    server: ServerJson,
    #[serde(rename = "_meta", default)]
    meta: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize)]
struct ServerJson {
    name: String,
    #[serde(default)]
    remotes: Vec<Remote>,
    #[serde(rename = "_meta", default)]
    meta: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize)]
struct Remote {
    #[serde(rename = "type")]
    kind: String,
    url: String,
    #[serde(default)]
    variables: BTreeMap<String, Input>,
    #[serde(default)]
    headers: Vec<HeaderInput>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Input {
    #[serde(default)]
    is_required: bool,
    #[serde(default)]
    is_secret: bool,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    default: Option<Value>,
    #[serde(default)]
    choices: Vec<Value>,
    #[serde(default)]
    variables: BTreeMap<String, Input>,
}

#[derive(Debug, Deserialize)]
struct HeaderInput {
    name: String,
    #[serde(flatten)]
    input: Input,
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Replace `{name}` placeholders from `vars`; unknown names stay literal.
///
/// One pass over the template: a value is never scanned again, so a registry
/// entry whose values name other variables (`a = "{b}{b}"`, `b = "{c}{c}"`, …)
/// cannot grow a URL exponentially, as replacing variable by variable did.
fn fill(template: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after
            .find('}')
            .and_then(|close| Some((vars.get(&after[..close])?, close)))
        {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A lookup of environment variables ([`crate::config::env_var`] for the process's).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Resolve one input: registry `value`, then the user's setting (`${ENV}`
/// expanded from `env`), then `default`.
fn resolve_input(name: &str, input: &Input, user: Option<&String>, env: Env) -> Result<Option<String>, String> {
    let value = if let Some(v) = &input.value {
        let nested = input
            .variables
            .iter()
            .filter_map(|(k, i)| i.value.as_ref().or(i.default.as_ref()).map(|v| (k.clone(), scalar(v))))
            .collect();
        Some(fill(&scalar(v), &nested))
    } else if let Some(u) = user {
        Some(expand_with(u, env).map_err(|e| format!("input {name}: {e}"))?)
    } else {
        input.default.as_ref().map(scalar)
    };
    if let Some(v) = &value
        && !input.choices.is_empty()
        && !input.choices.iter().any(|c| scalar(c) == *v)
    {
        return Err(format!("input {name}: {v:?} is not one of the allowed choices"));
    }
    if value.is_none() && input.is_required {
        return Err(format!(
            "required input {name} is not set (set it under [registry.inputs.\"<server>\"])"
        ));
    }
    Ok(value)
}

fn bridge_meta<'a>(entry: &'a Entry, field: &str) -> Option<&'a Value> {
    let op = entry.meta.get(BRIDGE_META).and_then(|m| m.get(field));
    op.or_else(|| entry.server.meta.get(BRIDGE_META).and_then(|m| m.get(field)))
}

/// A usable registry entry before namespace de-duplication.
struct Candidate {
    name: String,
    namespace: String,
    url: String,
    headers: Vec<(String, HeaderValue)>,
    oauth: OAuthSettings,
    rules: crate::policy::ServerRules,
}

/// `idp`: `[auth.idp]`, which wins over an IdP named in the entry's `_meta`.
fn resolve_entry(
    raw: &Value,
    rc: &RegistryConfig,
    idp: Option<&Result<Idp, String>>,
    env: Env,
) -> Result<Option<Candidate>, Problem> {
    let label = raw
        .pointer("/server/name")
        .and_then(Value::as_str)
        .unwrap_or("<entry without a name>")
        .to_owned();
    let problem = |reason: String| Problem {
        server: label.clone(),
        reason,
    };
    let entry: Entry = serde_json::from_value(raw.clone()).map_err(|e| problem(format!("malformed entry: {e}")))?;
    let name = entry.server.name.clone();
    let official = entry.meta.get(OFFICIAL_META);
    let status = official
        .and_then(|o| o.get("status"))
        .and_then(Value::as_str)
        .unwrap_or("active");
    match status {
        "active" => {}
        "deprecated" if rc.include_deprecated => {}
        other => {
            tracing::debug!(server = %name, status = other, "skipping registry entry that is not active");
            return Ok(None);
        }
    }
    if official.and_then(|o| o.get("isLatest")).and_then(Value::as_bool) == Some(false) {
        return Ok(None);
    }
    let namespace = bridge_meta(&entry, "namespace")
        .and_then(Value::as_str)
        .filter(|ns| {
            !ns.is_empty()
                && ns.len() <= 24
                && ns
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| namespace_from(&name));
    let included = rc.include.is_empty()
        || rc
            .include
            .iter()
            .any(|p| glob_match(p, &name) || glob_match(p, &namespace));
    let excluded = rc
        .exclude
        .iter()
        .any(|p| glob_match(p, &name) || glob_match(p, &namespace));
    if !included || excluded {
        return Ok(None);
    }
    let Some(remote) = entry.server.remotes.iter().find(|r| r.kind == "streamable-http") else {
        let kinds: Vec<_> = entry.server.remotes.iter().map(|r| r.kind.as_str()).collect();
        let reason = if kinds.is_empty() {
            "no remote endpoint (only local packages, which the bridge does not run)".to_owned()
        } else {
            format!(
                "no streamable-http remote (has: {}); the legacy SSE transport is not supported",
                kinds.join(", ")
            )
        };
        return Err(problem(reason));
    };
    let empty = BTreeMap::new();
    let user = rc
        .inputs
        .get(&name)
        .or_else(|| rc.inputs.get(&namespace))
        .unwrap_or(&empty);
    let mut vars = BTreeMap::new();
    for (k, input) in &remote.variables {
        if let Some(v) = resolve_input(k, input, user.get(k), env).map_err(&problem)? {
            vars.insert(k.clone(), v);
        }
    }
    let url = fill(&remote.url, &vars);
    if url.contains('{')
        || url::Url::parse(&url)
            .map(|u| !matches!(u.scheme(), "http" | "https"))
            .unwrap_or(true)
    {
        return Err(problem(format!("remote URL {url:?} is not a usable http(s) URL")));
    }
    let mut headers = Vec::new();
    for h in &remote.headers {
        if let Some(v) = resolve_input(&h.name, &h.input, user.get(&h.name), env).map_err(&problem)? {
            headers.push((
                h.name.clone(),
                HeaderValue {
                    value: v,
                    secret: h.input.is_secret,
                },
            ));
        }
    }
    let oauth = match bridge_meta(&entry, "oauth") {
        Some(o) => meta_oauth(o, bridge_meta(&entry, "idp"), idp, env).map_err(&problem)?,
        None => OAuthSettings::default(),
    };
    let rules = crate::policy::ServerRules::from_meta(bridge_meta(&entry, "tools"));
    Ok(Some(Candidate {
        name,
        namespace,
        url,
        headers,
        oauth,
        rules,
    }))
}

/// The OTLP collector the registry's operator names for every bridge: the
/// first entry whose operator `_meta` (`servers[i]._meta`, never the
/// publisher's `server._meta`: a publisher must not learn who uses what) has
/// `telemetry.endpoint`, an http(s) URL. The config and `OTEL_*` variables
/// win over it, and `[telemetry] enabled = false` refuses it.
pub fn collector(entries: &[Value]) -> Option<String> {
    entries.iter().find_map(|e| {
        let url = e
            .get("_meta")?
            .get(BRIDGE_META)?
            .get("telemetry")?
            .get("endpoint")?
            .as_str()?;
        url::Url::parse(url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
            .then(|| url.to_owned())
    })
}

/// A registry entry's `oauth` meta (camelCase, as the registry's own fields).
/// A registry holds no secret: `clientSecretEnv` names the variable that does,
/// `privateKeyFile` a path on the user's machine. `idp_meta` is the entry's
/// `idp`, `configured` the config's `[auth.idp]` (which wins).
fn meta_oauth(
    o: &Value,
    idp_meta: Option<&Value>,
    configured: Option<&Result<Idp, String>>,
    env: Env,
) -> Result<OAuthSettings, String> {
    let text = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
    let client = || -> Result<ClientCredentials, String> {
        Ok(ClientCredentials {
            method: text("tokenEndpointAuthMethod")
                .map(|m| m.parse())
                .transpose()
                .map_err(|e| format!("oauth tokenEndpointAuthMethod: {e}"))?,
            private_key_file: text("privateKeyFile").map(std::path::PathBuf::from),
        })
    };
    let grant = text("grant");
    let (client_credentials, enterprise) = match grant.as_deref() {
        None | Some("authorization_code") => (None, None),
        Some("client_credentials") => (Some(client()?), None),
        Some("enterprise") => (
            None,
            Some(Enterprise {
                idp: registry_idp(idp_meta, configured, env)?,
                client: client()?,
            }),
        ),
        Some(other) => return Err(format!("oauth grant {other:?} is not one the bridge knows")),
    };
    let client_secret = match text("clientSecretEnv") {
        Some(var) => {
            Some(env(&var).ok_or_else(|| format!("oauth clientSecretEnv: environment variable {var} is not set"))?)
        }
        None => None,
    };
    if let (Some(g), Some(c)) = (
        grant.as_deref(),
        client_credentials.as_ref().or(enterprise.as_ref().map(|e| &e.client)),
    ) {
        // A key may also be in the store (`auth set --private-key`) when the
        // method says private_key_jwt.
        let jwt = c.method == Some(crate::config::TokenAuthMethod::PrivateKeyJwt);
        match (
            text("clientId").is_some(),
            client_secret.is_some(),
            c.private_key_file.is_some() || jwt,
        ) {
            (false, ..) => return Err(format!("oauth grant {g} needs clientId")),
            (true, false, false) => {
                return Err(format!("oauth grant {g} needs clientSecretEnv or privateKeyFile"));
            }
            _ => {}
        }
    }
    Ok(OAuthSettings {
        client_id: text("clientId"),
        client_secret,
        scopes: o
            .get("scopes")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default(),
        redirect_port: o
            .get("redirectPorts")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok()),
        omit_resource: o.get("resource").and_then(Value::as_bool) == Some(false),
        client_metadata_url: text("clientMetadataUrl"),
        client_credentials,
        enterprise,
    })
}

/// The IdP of a registry entry with the enterprise grant: `[auth.idp]` when
/// configured, else the entry's `_meta` `idp` (`issuer`, `clientId`, and
/// `clientSecretEnv`: the name of a variable, never a secret).
fn registry_idp(meta: Option<&Value>, configured: Option<&Result<Idp, String>>, env: Env) -> Result<Idp, String> {
    if let Some(c) = configured {
        return c.clone();
    }
    let no_idp = || {
        "its oauth.grant is \"enterprise\" but no identity provider is named: add [auth.idp] (issuer, client_id) to the config".to_owned()
    };
    let m = meta.ok_or_else(no_idp)?;
    let field = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(issuer), Some(client_id)) = (field("issuer"), field("clientId")) else {
        return Err(no_idp());
    };
    if !url::Url::parse(&issuer).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
        return Err(format!("its _meta idp.issuer {issuer:?} is not an http(s) URL"));
    }
    let client_secret = match field("clientSecretEnv") {
        Some(var) => {
            Some(env(&var).ok_or_else(|| format!("idp.clientSecretEnv: environment variable {var} is not set"))?)
        }
        None => None,
    };
    Ok(Idp {
        issuer,
        client_id,
        client_secret,
        scopes: crate::config::idp_scopes(),
        redirect_port: None,
    })
}

/// Everything `serve` bridges: config servers, registry entries, CLI URLs.
#[derive(Debug, Default)]
pub struct Resolved {
    pub servers: Vec<ServerSpec>,
    pub problems: Vec<Problem>,
}

/// Command-line ad-hoc servers: URLs with headers applied to all of them.
#[derive(Debug, Clone, Default)]
pub struct AdHoc {
    pub urls: Vec<String>,
    pub headers: Vec<(String, String)>,
    /// `--client-id`, `--client-secret`, `--scope` for these URLs.
    pub oauth: OAuthSettings,
}

fn unique(ns: String, taken: &mut HashSet<String>) -> String {
    if taken.insert(ns.clone()) {
        return ns;
    }
    let mut n = 2;
    loop {
        let candidate = format!("{ns}-{n}");
        if taken.insert(candidate.clone()) {
            return candidate;
        }
        n += 1;
    }
}

/// Namespace for an ad-hoc URL: the most telling label of its host.
fn adhoc_namespace(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("server");
    if host.parse::<std::net::IpAddr>().is_ok() || host == "localhost" {
        return match url.port() {
            Some(p) => format!("local-{p}"),
            None => "local".into(),
        };
    }
    let generic = ["mcp", "api", "www", "app"];
    let label = host.split('.').find(|l| !generic.contains(l)).unwrap_or(host);
    namespace_from(label)
}

/// [`resolve_with`] the process environment.
pub fn resolve(cfg: &Config, registry: &[Value], adhoc: &AdHoc) -> Resolved {
    resolve_with(cfg, registry, adhoc, &crate::config::env_var)
}

/// Combine config, registry entries and ad-hoc URLs into specs. Config servers keep
/// their names; registry and CLI namespaces are de-duplicated with a numeric suffix.
/// `${ENV}` in headers and inputs, `bearer_token_env` and `client_secret_env`
/// are read from `env`.
pub fn resolve_with(cfg: &Config, registry: &[Value], adhoc: &AdHoc, env: Env) -> Resolved {
    let mut out = Resolved::default();
    let mut taken = HashSet::new();
    let idp = cfg.auth.idp.as_ref().map(|c| Idp::from_config(c, env));
    for s in cfg.servers.iter().filter(|s| s.enabled) {
        let mut headers = Vec::new();
        let mut failed = None;
        for (k, v) in &s.headers {
            match expand_with(v, env) {
                Ok(value) => headers.push((
                    k.clone(),
                    HeaderValue {
                        value,
                        secret: v.contains("${"),
                    },
                )),
                Err(e) => failed = Some(format!("header {k}: {e}")),
            }
        }
        if let Some(var) = &s.bearer_token_env {
            match env(var) {
                Some(t) => headers.push((
                    "Authorization".into(),
                    HeaderValue {
                        value: format!("Bearer {t}"),
                        secret: true,
                    },
                )),
                None => failed = Some(format!("bearer_token_env: environment variable {var} is not set")),
            }
        }
        let client_credentials =
            (s.oauth.grant == Some(crate::config::Grant::ClientCredentials)).then(|| ClientCredentials {
                method: s.oauth.token_endpoint_auth_method,
                private_key_file: s.oauth.private_key_file.clone(),
            });
        let client_secret = s.oauth.client_secret_env.as_deref().and_then(env);
        let enterprise = (s.oauth.grant == Some(crate::config::Grant::Enterprise)).then(|| Enterprise {
            idp: Idp::default(),
            client: ClientCredentials {
                method: s.oauth.token_endpoint_auth_method,
                private_key_file: s.oauth.private_key_file.clone(),
            },
        });
        let enterprise = match (enterprise, &idp) {
            (Some(e), Some(Ok(i))) => Some(Enterprise { idp: i.clone(), ..e }),
            (Some(e), Some(Err(why))) => {
                failed = Some(why.clone());
                Some(e)
            }
            // Config::parse refuses this; a Config built in code may not.
            (Some(e), None) => {
                failed = Some("oauth.grant = \"enterprise\" needs [auth.idp]".into());
                Some(e)
            }
            (None, _) => None,
        };
        if let (true, Some(var), None) = (
            client_credentials.is_some() || enterprise.is_some(),
            &s.oauth.client_secret_env,
            &client_secret,
        ) {
            failed = Some(format!(
                "oauth.client_secret_env: environment variable {var} is not set"
            ));
        }
        if let Some(reason) = failed {
            out.problems.push(Problem {
                server: s.name.clone(),
                reason,
            });
            continue;
        }
        taken.insert(s.name.clone());
        out.servers.push(ServerSpec {
            id: s.name.clone(),
            display_name: s.name.clone(),
            source: Source::Config,
            url: s.url.clone(),
            headers,
            call_timeout: s.call_timeout,
            oauth: OAuthSettings {
                client_id: s.oauth.client_id.clone(),
                client_secret,
                scopes: s.oauth.scopes.clone(),
                redirect_port: s.oauth.redirect_port,
                omit_resource: s.oauth.resource == Some(false),
                client_metadata_url: s.oauth.client_metadata_url.clone(),
                client_credentials,
                enterprise,
            },
            keep_alive: s.keep_alive.unwrap_or(cfg.http.keep_alive),
            max_message_bytes: cfg.http.max_message_bytes,
            rules: Default::default(),
        });
    }
    let rc = cfg.registry.clone().unwrap_or_default();
    let mut seen_names = HashSet::new();
    for raw in registry {
        match resolve_entry(raw, &rc, idp.as_ref(), env) {
            Ok(Some(c)) => {
                if !seen_names.insert(c.name.clone()) {
                    continue; // an older version of a server already taken
                }
                let id = unique(c.namespace, &mut taken);
                out.servers.push(ServerSpec {
                    id,
                    display_name: c.name,
                    source: Source::Registry,
                    url: c.url,
                    headers: c.headers,
                    call_timeout: None,
                    oauth: c.oauth,
                    keep_alive: cfg.http.keep_alive,
                    max_message_bytes: cfg.http.max_message_bytes,
                    rules: c.rules,
                });
            }
            Ok(None) => {}
            Err(p) => out.problems.push(p),
        }
    }
    for raw in &adhoc.urls {
        match url::Url::parse(raw) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {
                let id = unique(adhoc_namespace(&u), &mut taken);
                let headers = adhoc
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        let secret = is_secret_header(k);
                        (
                            k.clone(),
                            HeaderValue {
                                value: v.clone(),
                                secret,
                            },
                        )
                    })
                    .collect();
                out.servers.push(ServerSpec {
                    id,
                    display_name: raw.clone(),
                    source: Source::CommandLine,
                    url: raw.clone(),
                    headers,
                    call_timeout: None,
                    oauth: adhoc.oauth.clone(),
                    keep_alive: cfg.http.keep_alive,
                    max_message_bytes: cfg.http.max_message_bytes,
                    rules: Default::default(),
                });
            }
            _ => out.problems.push(Problem {
                server: raw.clone(),
                reason: "not an http(s) URL".into(),
            }),
        }
    }
    out
}

/// Header names whose values are credentials.
pub fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "authorization" || n.contains("key") || n.contains("token") || n.contains("secret") || n.contains("cookie")
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {url}: {message}")]
    Http { url: String, message: String },
    #[error("registry file {path}: {message}")]
    File { path: String, message: String },
}

/// Read a local registry file (one page).
pub fn read_file(path: &Path) -> Result<Vec<Value>, RegistryError> {
    let err = |message: String| RegistryError::File {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let page: Page =
        serde_json::from_str(&text).map_err(|e| err(format!("line {}, column {}: {e}", e.line(), e.column())))?;
    Ok(page.servers)
}

/// The cached copy of the last good registry.
#[derive(Debug, Deserialize)]
struct CachedRegistry {
    source: String,
    fetched_at_unix: u64,
    servers: Vec<Value>,
    #[serde(default)]
    validators: sync::Validators,
}

/// [`CachedRegistry`] as written: borrowed, so a write does not copy the registry.
#[derive(Serialize)]
struct CachedRegistryRef<'a> {
    source: &'a str,
    fetched_at_unix: u64,
    servers: &'a [Value],
    validators: &'a sync::Validators,
}

/// The registry cache file in `cache_dir`.
pub fn mirror_path(cache_dir: &Path) -> std::path::PathBuf {
    cache_dir.join("registry.json")
}

/// The registry cache file's contents: the last good registry for `source`
/// with its validators, fetched now. The caller writes them
/// ([`crate::cache::write_atomic`] at [`mirror_path`]), off the runtime thread.
pub fn mirror_bytes(source: &str, mirror: &sync::Mirror) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&CachedRegistryRef {
        source,
        fetched_at_unix: crate::util::now_unix(),
        servers: &mirror.servers,
        validators: &mirror.validators,
    })
}

/// The cached registry for `source`, with its age in seconds.
pub fn load_cached(cache_dir: &Path, source: &str) -> Option<(Vec<Value>, u64)> {
    load_mirror(cache_dir, source, u64::MAX)
        .ok()
        .flatten()
        .map(|(m, at)| (m.servers, crate::util::now_unix().saturating_sub(at)))
}

/// The cached registry for `source` and when it was fetched (unix seconds);
/// `None` when there is none for `source` or it does not read. A cache file
/// larger than `max_bytes` (written by a version without bounds) is not read:
/// the error says so.
pub fn load_mirror(cache_dir: &Path, source: &str, max_bytes: u64) -> Result<Option<(sync::Mirror, u64)>, String> {
    let path = mirror_path(cache_dir);
    let Ok(file) = std::fs::File::open(&path) else {
        return Ok(None);
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > max_bytes {
        return Err(format!(
            "the registry cache {} is {size} bytes, more than the {max_bytes} bytes one read of the registry may bring",
            path.display()
        ));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    if std::io::Read::read_to_end(&mut std::io::Read::take(file, max_bytes), &mut bytes).is_err() {
        return Ok(None);
    }
    let Ok(c) = serde_json::from_slice::<CachedRegistry>(&bytes) else {
        return Ok(None);
    };
    if c.source != source {
        return Ok(None);
    }
    let mut m = sync::Mirror::new(c.servers);
    m.validators = c.validators;
    Ok(Some((m, c.fetched_at_unix)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The collector comes from the operator's `_meta` only, and only as an
    /// http(s) URL: a publisher cannot learn who calls its tools.
    #[test]
    fn the_collector_is_the_operators() {
        let entry = |operator: Value, publisher: Value| json!({"server": {"name": "x", "_meta": {BRIDGE_META: publisher}}, "_meta": {BRIDGE_META: operator}});
        let t = |url: &str| json!({"telemetry": {"endpoint": url}});
        assert_eq!(
            collector(&[
                entry(json!({}), t("https://publisher.example")),
                entry(t("https://otel.corp"), json!({}))
            ]),
            Some("https://otel.corp".into())
        );
        assert_eq!(collector(&[entry(t("ftp://otel.corp"), json!({}))]), None);
        assert_eq!(collector(&[]), None);
    }
    use serde_json::json;

    fn example() -> Vec<Value> {
        let page: Page = serde_json::from_str(include_str!("../../config/registry.example.json")).unwrap();
        page.servers
    }

    fn cfg_with(rc: RegistryConfig) -> Config {
        Config {
            registry: Some(rc),
            ..Config::default()
        }
    }

    /// The sample registry: active streamable-http entries kept, SSE-only and
    /// deprecated entries skipped, URL variables filled from defaults.
    #[test]
    fn sample_registry_resolves() {
        let mut rc = RegistryConfig::default();
        rc.inputs.insert(
            "com.example.corp/metrics".into(),
            BTreeMap::from([("X-API-Key".into(), "k".into())]),
        );
        let r = resolve(&cfg_with(rc), &example(), &AdHoc::default());
        let ids: Vec<_> = r.servers.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["jira", "metrics"]);
        assert_eq!(r.servers[0].oauth.client_id.as_deref(), Some("0oa9mcpbridge"));
        assert_eq!(r.servers[0].oauth.scopes, ["jira.read", "jira.write", "offline_access"]);
        assert_eq!(r.servers[1].url, "https://eu.metrics.example.com/mcp");
        let h: BTreeMap<_, _> = r.servers[1].headers.iter().map(|(k, v)| (k.as_str(), v)).collect();
        assert_eq!(h["X-Team"].value, "platform");
        assert!(h["X-API-Key"].secret);
        assert!(!format!("{:?}", r.servers[1]).contains("\"k\""));
    }

    /// A required input that is missing makes that server a problem, not the others.
    #[test]
    fn missing_required_input_is_a_problem() {
        let r = resolve(&cfg_with(RegistryConfig::default()), &example(), &AdHoc::default());
        assert_eq!(r.servers.len(), 1);
        assert_eq!(r.problems.len(), 1);
        assert_eq!(r.problems[0].server, "com.example.corp/metrics");
        assert!(r.problems[0].reason.contains("X-API-Key"), "{}", r.problems[0].reason);
    }

    #[test]
    fn user_choice_and_bad_choice() {
        let mut rc = RegistryConfig::default();
        let inputs = BTreeMap::from([("region".into(), "us".into()), ("X-API-Key".into(), "k".into())]);
        rc.inputs.insert("metrics".into(), inputs);
        let r = resolve(&cfg_with(rc.clone()), &example(), &AdHoc::default());
        assert_eq!(r.servers[1].url, "https://us.metrics.example.com/mcp");
        rc.inputs
            .get_mut("metrics")
            .unwrap()
            .insert("region".into(), "mars".into());
        let r = resolve(&cfg_with(rc), &example(), &AdHoc::default());
        assert!(r.problems.iter().any(|p| p.reason.contains("mars")));
    }

    #[test]
    fn include_exclude() {
        let rc = RegistryConfig {
            exclude: vec!["jira".into()],
            ..Default::default()
        };
        let r = resolve(&cfg_with(rc), &example(), &AdHoc::default());
        assert!(r.servers.iter().all(|s| s.id != "jira"));
        let rc = RegistryConfig {
            include: vec!["com.example.corp/j*".into()],
            ..Default::default()
        };
        let r = resolve(&cfg_with(rc), &example(), &AdHoc::default());
        assert_eq!(r.servers.len(), 1);
        assert!(r.problems.is_empty());
    }

    /// A malformed entry is reported by name; the rest still resolve.
    #[test]
    fn malformed_entry_is_isolated() {
        let mut entries = example();
        entries.insert(0, json!({"server": {"name": "com.bad/x", "remotes": "nope"}}));
        let r = resolve(&cfg_with(RegistryConfig::default()), &entries, &AdHoc::default());
        assert_eq!(r.servers[0].id, "jira");
        assert!(
            r.problems
                .iter()
                .any(|p| p.server == "com.bad/x" && p.reason.contains("malformed"))
        );
    }

    /// Config servers keep their names; registry namespaces are de-duplicated.
    #[test]
    fn namespaces_deduplicated() {
        let cfg = Config::parse(
            "[[servers]]\nname = \"jira\"\nurl = \"http://127.0.0.1:1/mcp\"\n",
            Path::new("c"),
        )
        .unwrap();
        let r = resolve(&cfg, &example()[..1], &AdHoc::default());
        let ids: Vec<_> = r.servers.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["jira", "jira-2"]);
    }

    /// Secrets named by environment variables come from the lookup given, never
    /// from the process: headers, the bearer token, the client secret and
    /// registry inputs; a variable that is not set makes that server a problem.
    #[test]
    fn the_environment_is_passed_in() {
        let text = "[[servers]]\nname = \"a\"\nurl = \"http://127.0.0.1:1/mcp\"\nheaders = { X-Key = \"k-${KEY}\" }\n\
                    bearer_token_env = \"TOKEN\"\noauth = { client_secret_env = \"SECRET\" }\n\
                    [[servers]]\nname = \"b\"\nurl = \"http://127.0.0.1:2/mcp\"\nbearer_token_env = \"UNSET\"\n\
                    [registry.inputs.\"com.example.corp/metrics\"]\nX-API-Key = \"${KEY}\"\n";
        let cfg = Config::parse(text, Path::new("c")).unwrap();
        let env = |var: &str| {
            let v = match var {
                "KEY" => "1",
                "TOKEN" => "t",
                "SECRET" => "s",
                _ => return None,
            };
            Some(v.to_owned())
        };
        let r = resolve_with(&cfg, &example(), &AdHoc::default(), &env);
        let ids: Vec<_> = r.servers.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "jira", "metrics"]);
        let a = &r.servers[0];
        let h: BTreeMap<_, _> = a.headers.iter().map(|(k, v)| (k.as_str(), v)).collect();
        assert_eq!((h["X-Key"].value.as_str(), h["X-Key"].secret), ("k-1", true));
        assert_eq!(h["Authorization"].value, "Bearer t");
        assert_eq!(a.oauth.client_secret.as_deref(), Some("s"));
        let metrics = &r.servers[2];
        assert!(metrics.headers.iter().any(|(k, v)| k == "X-API-Key" && v.value == "1"));
        assert_eq!(r.problems.len(), 1);
        assert_eq!(r.problems[0].server, "b");
        assert!(r.problems[0].reason.contains("UNSET"), "{}", r.problems[0].reason);
    }

    /// A registry entry with `grant = "enterprise"` uses `[auth.idp]`, else
    /// the IdP its `_meta` names; secrets come only by the name of a variable;
    /// with no IdP anywhere, the entry is a problem saying what to add.
    #[test]
    fn enterprise_entries_name_their_idp() {
        let entry = |meta: Value| {
            json!({"server": {"name": "com.example/sql", "version": "1",
                "remotes": [{"type": "streamable-http", "url": "https://sql.example.com/mcp"}]},
                "_meta": {BRIDGE_META: meta}})
        };
        let oauth = json!({"grant": "enterprise", "clientId": "bridge-at-sql", "clientSecretEnv": "SQL_AS_SECRET"});
        let env = |var: &str| match var {
            "SQL_AS_SECRET" => Some("as-secret".to_owned()),
            "IDP_SECRET" => Some("idp-secret".to_owned()),
            _ => None,
        };
        let from_meta = entry(
            json!({"oauth": oauth, "idp": {"issuer": "https://idp.example.com", "clientId": "bridge", "clientSecretEnv": "IDP_SECRET"}}),
        );
        let r = resolve_with(
            &Config::default(),
            std::slice::from_ref(&from_meta),
            &AdHoc::default(),
            &env,
        );
        let o = &r.servers[0].oauth;
        assert_eq!(o.client_id.as_deref(), Some("bridge-at-sql"));
        assert_eq!(o.client_secret.as_deref(), Some("as-secret"));
        let idp = &o.enterprise.as_ref().unwrap().idp;
        assert_eq!(
            (idp.issuer.as_str(), idp.client_id.as_str()),
            ("https://idp.example.com", "bridge")
        );
        assert_eq!(idp.client_secret.as_deref(), Some("idp-secret"));
        assert!(o.headless());
        assert!(!format!("{o:?}").contains("secret\""), "{o:?}");
        assert!(!format!("{o:?}").contains("idp-secret"), "{o:?}");

        let cfg = Config::parse(
            "[auth.idp]\nissuer = \"https://corp-idp.example\"\nclient_id = \"mcp-bridge\"\n",
            Path::new("c"),
        )
        .unwrap();
        let r = resolve_with(&cfg, &[from_meta], &AdHoc::default(), &env);
        let idp = &r.servers[0].oauth.enterprise.as_ref().unwrap().idp;
        assert_eq!(idp.issuer, "https://corp-idp.example");
        assert_eq!(idp.scopes, ["openid", "offline_access"]);

        let r = resolve_with(
            &Config::default(),
            &[entry(json!({"oauth": oauth}))],
            &AdHoc::default(),
            &env,
        );
        assert!(r.servers.is_empty());
        assert!(r.problems[0].reason.contains("add [auth.idp]"), "{:?}", r.problems);
    }

    #[test]
    fn registry_meta_asks_for_client_credentials_without_holding_a_secret() {
        use serde_json::json;
        let env = |var: &str| (var == "JOBS_SECRET").then(|| "s3".to_owned());
        let ok = meta_oauth(
            &json!({"grant": "client_credentials", "clientId": "ci", "clientSecretEnv": "JOBS_SECRET"}),
            None,
            None,
            &env,
        )
        .unwrap();
        assert_eq!(ok.client_secret.as_deref(), Some("s3"));
        assert_eq!(ok.client_credentials, Some(ClientCredentials::default()));
        let key = meta_oauth(
            &json!({"grant": "client_credentials", "clientId": "ci", "privateKeyFile": "/k.pem",
                    "tokenEndpointAuthMethod": "private_key_jwt"}),
            None,
            None,
            &env,
        )
        .unwrap();
        let cc = key.client_credentials.unwrap();
        assert_eq!(cc.method, Some(crate::config::TokenAuthMethod::PrivateKeyJwt));
        assert_eq!(cc.private_key_file.as_deref(), Some(std::path::Path::new("/k.pem")));
        for (meta, says) in [
            (
                json!({"grant": "client_credentials", "clientSecretEnv": "JOBS_SECRET"}),
                "needs clientId",
            ),
            (
                json!({"grant": "client_credentials", "clientId": "ci"}),
                "needs clientSecretEnv",
            ),
            (
                json!({"grant": "client_credentials", "clientId": "ci", "clientSecretEnv": "NOPE"}),
                "NOPE is not set",
            ),
            (json!({"grant": "password"}), "\"password\" is not one"),
            (
                json!({"grant": "client_credentials", "clientId": "ci", "privateKeyFile": "/k", "tokenEndpointAuthMethod": "jwt"}),
                "not client_secret_basic",
            ),
        ] {
            let e = meta_oauth(&meta, None, None, &env).unwrap_err();
            assert!(e.contains(says), "{meta}: {e}");
        }
        // An interactive login's meta is read as before.
        let login = meta_oauth(&json!({"clientId": "c", "scopes": ["a"]}), None, None, &env).unwrap();
        assert_eq!((login.client_credentials, login.scopes), (None, vec!["a".to_owned()]));
    }

    #[test]
    fn adhoc_names() {
        let adhoc = AdHoc {
            urls: vec![
                "https://mcp.notion.com/mcp".into(),
                "http://127.0.0.1:8080/mcp".into(),
                "nope".into(),
            ],
            headers: vec![("Authorization".into(), "Bearer x".into())],
            oauth: OAuthSettings::default(),
        };
        let r = resolve(&Config::default(), &[], &adhoc);
        let ids: Vec<_> = r.servers.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["notion", "local-8080"]);
        assert!(r.servers[0].headers[0].1.secret);
        assert_eq!(r.problems.len(), 1);
    }
}
