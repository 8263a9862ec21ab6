//! The user's configuration: the typed TOML file, its defaults, where it and the
//! bridge's cache and state live, and validation with messages that name the file,
//! line and key.
//!
//! Everything here is pure: text in, a [`Config`] or a [`ConfigError`] out
//! ([`Config::parse`]); paths from an explicit flag, an environment lookup and
//! the OS's dirs passed in ([`Paths::from_env`]); `${ENV}` expansion with the
//! variables passed in ([`expand_with`]). The IO (reading the file, the process
//! environment and the OS's dirs) is in [`load`] alone.
//!
//! Lookup order for the file: `--config PATH`, then `$MCP_BRIDGE_CONFIG`, then
//! `$MCP_BRIDGE_HOME/config.toml`, then the OS config dir. `MCP_BRIDGE_HOME` also
//! moves the cache and state dirs under it, which keeps tests hermetic. A missing
//! file is not an error: the defaults (no registry, no servers) apply.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::catalog::{Naming, PrefixMode};

pub mod load;

pub use load::{env_var, expand_env};

/// Env var naming the config file.
pub const ENV_CONFIG: &str = "MCP_BRIDGE_CONFIG";
/// Env var naming a root dir for config, cache and state.
pub const ENV_HOME: &str = "MCP_BRIDGE_HOME";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "config file {path} does not exist (named by --config or MCP_BRIDGE_CONFIG); create it, or name the file you meant"
    )]
    Missing { path: PathBuf },
}

/// The whole file. Every section is optional.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub registry: Option<RegistryConfig>,
    pub servers: Vec<ServerConfig>,
    pub naming: NamingConfig,
    pub timeouts: Timeouts,
    pub log: LogConfig,
    pub cache: CacheConfig,
    pub auth: AuthConfig,
    pub http: HttpConfig,
    pub policy: crate::policy::PolicyConfig,
    pub audit: AuditConfig,
    pub telemetry: TelemetryConfig,
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Where credentials live: "auto" (OS store, else a 0600 file), "keyring",
    /// "file", or "memory" (tests).
    pub store: StoreKind,
    /// Seconds `mcp-bridge login` waits for the browser.
    pub login_timeout: f64,
    /// While serving, open the browser by itself for a server that needs a login.
    pub auto_login: bool,
    /// `[auth.idp]`: the company's identity provider, for servers with
    /// `oauth.grant = "enterprise"` (one login at the IdP opens them all).
    pub idp: Option<IdpConfig>,
}

/// `[auth.idp]`: the identity provider of enterprise-managed authorization
/// (SEP-990). The bridge signs in to it once (`mcp-bridge login --idp`) and
/// exchanges the ID token for each enterprise server's access.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IdpConfig {
    /// The IdP's issuer URL (its OIDC discovery document is under it).
    pub issuer: String,
    /// The bridge's client id at the IdP.
    pub client_id: String,
    /// Env var holding the bridge's client secret at the IdP, if it has one.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// Scopes of the IdP login.
    #[serde(default = "idp_scopes")]
    pub scopes: Vec<String>,
    /// A fixed loopback port registered with the IdP as redirect URI.
    #[serde(default)]
    pub redirect_port: Option<u16>,
}

/// `[auth.idp] scopes` default: an ID token and a refresh token for it.
pub fn idp_scopes() -> Vec<String> {
    vec!["openid".into(), "offline_access".into()]
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            store: StoreKind::Auto,
            login_timeout: 300.0,
            auto_login: true,
            idp: None,
        }
    }
}

/// `[auth] store`: where credentials live (the `auth` module opens it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The OS store if it works, else the file.
    #[default]
    Auto,
    Keyring,
    File,
    /// In memory only (tests).
    Memory,
}

/// `[registry]`: where the list of company servers comes from.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Base URL of an MCP Registry API (the bridge appends `/v0.1/servers`).
    pub url: Option<String>,
    /// A local JSON file shaped like one `/v0.1/servers` response page.
    pub file: Option<PathBuf>,
    /// Glob patterns over registry names or namespaces; empty means all.
    pub include: Vec<String>,
    /// Glob patterns removed after `include`.
    pub exclude: Vec<String>,
    /// Also bridge entries whose status is `deprecated`.
    pub include_deprecated: bool,
    /// Poll the registry API this often, in seconds (jittered; errors back off).
    /// A registry file is watched instead.
    pub refresh: f64,
    /// Extra headers sent to the registry itself (values may use `${ENV}`).
    pub headers: BTreeMap<String, String>,
    /// Values for URL `{variables}` and headers, per registry server name or
    /// namespace: `[registry.inputs."com.example/metrics"] region = "us"`.
    pub inputs: BTreeMap<String, BTreeMap<String, String>>,
    /// Largest registry page accepted, in bytes. A larger page fails that read
    /// (the last good copy keeps serving) with an error naming the URL and the limit.
    pub max_page_bytes: usize,
    /// Most registry entries taken: paging stops there, with a warning naming
    /// the cap. Bounds the bridge's memory and the servers it connects to.
    pub max_servers: usize,
}

/// Default `[registry] max_page_bytes`: 4 MiB (a page of 100 entries is
/// typically 100 to 300 KiB).
pub const DEFAULT_MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Default `[registry] max_servers`.
pub const DEFAULT_MAX_REGISTRY_SERVERS: usize = 1000;

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            url: None,
            file: None,
            include: Vec::new(),
            exclude: Vec::new(),
            include_deprecated: false,
            refresh: 3600.0,
            headers: BTreeMap::new(),
            inputs: BTreeMap::new(),
            max_page_bytes: DEFAULT_MAX_PAGE_BYTES,
            max_servers: DEFAULT_MAX_REGISTRY_SERVERS,
        }
    }
}

/// `[[servers]]`: a server configured by hand.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Short id, used as the name prefix: `[A-Za-z0-9-]`.
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Env var holding a bearer token for this server.
    #[serde(default)]
    pub bearer_token_env: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Per-server call timeout in seconds (overrides `[timeouts] call`).
    #[serde(default)]
    pub call_timeout: Option<f64>,
    /// OAuth client settings: `oauth = { client_id = "...", scopes = [...] }`.
    #[serde(default)]
    pub oauth: ServerOAuth,
    /// Reuse HTTP connections to this server (overrides `[http] keep_alive`).
    #[serde(default)]
    pub keep_alive: Option<bool>,
}

/// `[http]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Reuse connections to upstream servers (HTTP/2 where offered). A server
    /// that stalls on reused connections is found and gets new connections
    /// (`upstream::http`); `false` asks for a new connection per request.
    pub keep_alive: bool,
    /// Largest message accepted from an upstream server (one JSON body or one
    /// SSE event), in bytes. A larger answer fails its call with an error naming
    /// the server and the limit.
    pub max_message_bytes: usize,
}

/// Default `[http] max_message_bytes`: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            keep_alive: true,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// `[[servers]] oauth = {...}`: how to log in to a server whose authorization
/// server does not allow dynamic registration.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ServerOAuth {
    #[serde(default)]
    pub client_id: Option<String>,
    /// Env var holding a client secret (never put the secret itself in the file).
    #[serde(default)]
    pub client_secret_env: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// A fixed loopback port registered with the provider as redirect URI.
    #[serde(default)]
    pub redirect_port: Option<u16>,
    /// `false` leaves RFC 8707 `resource` out, for providers that reject it.
    #[serde(default)]
    pub resource: Option<bool>,
    /// An https URL serving this client's Client ID Metadata Document, used when
    /// the authorization server supports CIMD and no client id is given.
    #[serde(default)]
    pub client_metadata_url: Option<String>,
    /// `client_credentials`: the bridge gets its tokens itself, with no browser
    /// (agents, CI); `enterprise`: from the `[auth.idp]` login (SEP-990), with
    /// no browser for this server; absent: the interactive login.
    #[serde(default)]
    pub grant: Option<Grant>,
    /// How the client authenticates at the token endpoint (client credentials);
    /// absent: what the authorization server lists.
    #[serde(default)]
    pub token_endpoint_auth_method: Option<TokenAuthMethod>,
    /// PEM private key for `private_key_jwt` (PKCS#8, SEC1 EC or PKCS#1 RSA).
    #[serde(default)]
    pub private_key_file: Option<std::path::PathBuf>,
}

/// `oauth.grant`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    AuthorizationCode,
    ClientCredentials,
    /// Enterprise-managed authorization (SEP-990): the IdP's ID token exchanged
    /// for an identity assertion (RFC 8693), redeemed at this server's
    /// authorization server (RFC 7523 JWT bearer).
    Enterprise,
}

impl Grant {
    /// The name in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::AuthorizationCode => "authorization_code",
            Grant::ClientCredentials => "client_credentials",
            Grant::Enterprise => "enterprise",
        }
    }
}

/// `oauth.token_endpoint_auth_method` (RFC 8414 names).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
}

impl std::str::FromStr for TokenAuthMethod {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        [Self::ClientSecretBasic, Self::ClientSecretPost, Self::PrivateKeyJwt]
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not client_secret_basic, client_secret_post or private_key_jwt"))
    }
}

impl TokenAuthMethod {
    /// The RFC 8414 name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenAuthMethod::ClientSecretBasic => "client_secret_basic",
            TokenAuthMethod::ClientSecretPost => "client_secret_post",
            TokenAuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

impl ServerOAuth {
    /// What is missing or contradictory in a client-credentials or enterprise
    /// setup (both authenticate the bridge at the authorization server with a
    /// secret or a private key), if anything.
    pub fn client_credentials_problem(&self) -> Option<String> {
        let g = match self.grant {
            Some(g @ (Grant::ClientCredentials | Grant::Enterprise)) => g.as_str(),
            _ => {
                return (self.token_endpoint_auth_method.is_some() || self.private_key_file.is_some())
                    .then(|| "oauth.token_endpoint_auth_method and oauth.private_key_file need oauth.grant = \"client_credentials\" or \"enterprise\"".into());
            }
        };
        if self.client_id.is_none() {
            return Some(format!("oauth.grant = \"{g}\" needs oauth.client_id"));
        }
        let jwt = self.token_endpoint_auth_method == Some(TokenAuthMethod::PrivateKeyJwt);
        match (jwt || self.private_key_file.is_some(), &self.private_key_file, &self.client_secret_env) {
            // private_key_jwt with no file: the key `mcp-bridge auth set --private-key` stored.
            (true, None, Some(_)) => Some(
                "oauth.token_endpoint_auth_method = \"private_key_jwt\" signs with a private key, not oauth.client_secret_env".into(),
            ),
            (true, None, None) => None,
            (true, Some(_), Some(_)) => Some("give oauth.private_key_file or oauth.client_secret_env, not both".into()),
            (true, Some(_), None) if !jwt && self.token_endpoint_auth_method.is_some() => {
                Some("oauth.private_key_file goes with token_endpoint_auth_method = \"private_key_jwt\"".into())
            }
            (false, _, None) => Some(format!(
                "oauth.grant = \"{g}\" needs oauth.client_secret_env (the name of an environment variable holding the secret), oauth.private_key_file, or token_endpoint_auth_method = \"private_key_jwt\" with a key stored by `mcp-bridge auth set <server> --private-key`"
            )),
            _ => None,
        }
    }
}

/// What is wrong with `[auth.idp]`, if anything.
pub fn idp_problem(idp: &IdpConfig) -> Option<String> {
    match url::Url::parse(&idp.issuer) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.query().is_none() && u.fragment().is_none() => {}
        _ => {
            return Some(format!(
                "[auth.idp] issuer {:?} is not an http(s) URL without query or fragment",
                idp.issuer
            ));
        }
    }
    if idp.client_id.trim().is_empty() {
        return Some("[auth.idp] client_id is empty: set the bridge's client id at the identity provider".into());
    }
    if !idp.scopes.iter().any(|s| s == "openid") {
        return Some("[auth.idp] scopes must include \"openid\" (the login is for an ID token)".into());
    }
    None
}

fn yes() -> bool {
    true
}

/// `[naming]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NamingConfig {
    pub prefix: PrefixMode,
    pub separator: String,
    pub max_length: usize,
    /// Items per page in IDE-facing list results; 0 = everything in one page.
    pub page_size: usize,
    /// `separator` or `max_length` differs from its default: names follow
    /// them for every IDE, not the IDE's own rules (set by [`Config::parse`];
    /// the defaults written out, as in the example config, fix nothing).
    #[serde(skip)]
    pub fixed: bool,
}

impl Default for NamingConfig {
    fn default() -> Self {
        let n = Naming::default();
        NamingConfig {
            prefix: n.prefix,
            separator: n.separator,
            max_length: n.max_len,
            page_size: 0,
            fixed: false,
        }
    }
}

impl NamingConfig {
    pub fn naming(&self) -> Naming {
        Naming {
            prefix: self.prefix,
            separator: self.separator.clone(),
            max_len: self.max_length,
            fixed: self.fixed,
            ..Naming::default()
        }
    }
}

/// `[timeouts]`, in seconds.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// Connecting and the first handshake with one server.
    pub connect: f64,
    /// A call with no response and no progress for this long fails.
    pub call: f64,
    /// A call fails after this long whatever progress it reports.
    pub call_max: f64,
    /// How long a call waits for its server to finish connecting.
    pub ready_wait: f64,
    /// With no cached lists for a server, list requests (and calls to names not
    /// known yet) wait this long for its first listing, so that a first launch
    /// does not answer an empty list. A server that fails or needs a login
    /// stops holding them at once.
    pub first_list: f64,
    /// Longest pause between reconnect attempts.
    pub backoff_max: f64,
    /// Re-list a server this often even if it announces no change (some servers
    /// never send list_changed); 0 turns the fallback off. Jittered.
    pub list_refresh: f64,
    /// Ping an idle session-based (2025-11-25) server this often, so that
    /// neither it nor a proxy in between drops the session; 0 turns it off.
    pub keepalive: f64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: 10.0,
            call: 50.0,
            call_max: 1800.0,
            ready_wait: 15.0,
            first_list: 5.0,
            backoff_max: 60.0,
            list_refresh: 600.0,
            keepalive: 240.0,
        }
    }
}

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 86_400.0 * 365.0))
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `RUST_LOG`-style filter; `RUST_LOG` wins when set.
    pub level: String,
    /// Log to this file instead of stderr (`true` = `bridge.log` in the state dir).
    pub file: Option<LogFile>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum LogFile {
    Default(bool),
    Path(PathBuf),
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "warn".into(),
            file: None,
        }
    }
}

/// `[cache]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Answer list requests from the last catalog on disk while servers connect.
    pub catalog: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { catalog: true }
    }
}

/// `[audit]`: the local log of forwarded tool calls that `mcp-bridge stats`
/// summarises (see [`crate::audit`]).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Record every forwarded tool call in `audit.jsonl` in the state dir.
    pub enabled: bool,
    /// Also record each call's arguments (they may contain personal data).
    pub arguments: bool,
    /// Rotate the log before a write would take it past this many bytes.
    pub max_bytes: u64,
    /// Rotated files kept (`audit.1.jsonl` is the newest); 0 keeps none.
    pub keep: usize,
    /// `[audit.minutes_saved]`: minutes one successful call saves, by glob pattern
    /// over `server__tool` (server id, two underscores, upstream tool name), in
    /// file order; the first matching pattern wins.
    #[serde(deserialize_with = "ordered_table")]
    pub minutes_saved: Vec<(String, f64)>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            enabled: true,
            arguments: false,
            max_bytes: 10_000_000,
            keep: 5,
            minutes_saved: Vec::new(),
        }
    }
}

/// How spans and metrics travel to the collector (`OTEL_EXPORTER_OTLP_PROTOCOL`'s values).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// POST of the protobuf to `/v1/traces` and `/v1/metrics` (port 4318 by convention).
    #[default]
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    /// The `Export` calls of OTLP's gRPC services, over HTTP/2 (port 4317).
    #[serde(rename = "grpc")]
    Grpc,
}

/// `[telemetry]`: OpenTelemetry export of spans and metrics over OTLP
/// HTTP/protobuf or gRPC (see [`crate::telemetry`]). Off unless a collector is named
/// here, by `OTEL_EXPORTER_OTLP_*`, or by the registry.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// `false` turns export off whoever names a collector; unset: on when one is named.
    pub enabled: Option<bool>,
    /// The collector's base URL; `/v1/traces` and `/v1/metrics` are appended
    /// (with gRPC, the services' method paths).
    pub endpoint: Option<String>,
    /// `"http/protobuf"` (the default) or `"grpc"`.
    pub protocol: OtlpProtocol,
    /// A PEM file of certificates to trust besides the system's roots (the
    /// collector's private CA).
    pub certificate: Option<std::path::PathBuf>,
    /// A PEM certificate and its key, presented to the collector (mutual TLS).
    pub client_certificate: Option<std::path::PathBuf>,
    pub client_key: Option<std::path::PathBuf>,
    /// Headers sent with every export (a collector's API key, say).
    pub headers: BTreeMap<String, String>,
    /// Export spans.
    pub traces: bool,
    /// Export metrics.
    pub metrics: bool,
    /// Seconds between metric exports.
    pub export_interval: f64,
    /// Seconds a finished span may wait before its batch is sent.
    pub span_delay: f64,
    /// Finished spans held for export; more are dropped, and counted.
    pub max_queue: usize,
    /// Seconds one export request may take.
    pub timeout: f64,
    /// Share of new traces whose spans are recorded (0 to 1); a request that
    /// comes with the IDE's trace follows the IDE's sampling decision.
    pub sample_ratio: f64,
    /// Extra resource attributes (`deployment.environment = "prod"`, say).
    pub resource_attributes: BTreeMap<String, String>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            enabled: None,
            endpoint: None,
            protocol: OtlpProtocol::default(),
            certificate: None,
            client_certificate: None,
            client_key: None,
            headers: BTreeMap::new(),
            traces: true,
            metrics: true,
            export_interval: 60.0,
            span_delay: 5.0,
            max_queue: 2048,
            timeout: 10.0,
            sample_ratio: 1.0,
            resource_attributes: BTreeMap::new(),
        }
    }
}

/// Header values may be credentials: never printed.
impl std::fmt::Debug for TelemetryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryConfig")
            .field("enabled", &self.enabled)
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field("certificate", &self.certificate)
            .field("client_certificate", &self.client_certificate)
            .field("client_key", &self.client_key)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("traces", &self.traces)
            .field("metrics", &self.metrics)
            .field("export_interval", &self.export_interval)
            .field("span_delay", &self.span_delay)
            .field("max_queue", &self.max_queue)
            .field("timeout", &self.timeout)
            .field("sample_ratio", &self.sample_ratio)
            .field("resource_attributes", &self.resource_attributes)
            .finish()
    }
}

/// A TOML table of `pattern = number` as pairs in file order (the `toml` crate
/// keeps the order with its `preserve_order` feature).
fn ordered_table<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, f64)>, D::Error> {
    struct Pairs;
    impl<'de> serde::de::Visitor<'de> for Pairs {
        type Value = Vec<(String, f64)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a table of \"glob pattern\" = minutes")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(pair) = map.next_entry::<String, f64>()? {
                out.push(pair);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Pairs)
}

/// Where the bridge keeps its files.
#[derive(Debug, Clone)]
pub struct Paths {
    pub config_file: PathBuf,
    /// `config_file` was named by `--config` or `MCP_BRIDGE_CONFIG`, so it must
    /// exist (the default location may not: no config is a valid config).
    pub config_explicit: bool,
    pub cache_dir: PathBuf,
    pub state_dir: PathBuf,
}

impl Paths {
    /// The paths from an explicit `--config`, the environment (`env`) and the
    /// OS's dirs (`os_dirs`, asked only when neither names a place).
    pub fn from_env(
        explicit: Option<&Path>,
        env: impl Fn(&str) -> Option<OsString>,
        os_dirs: impl Fn() -> OsDirs,
    ) -> Paths {
        let var = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let home = var(ENV_HOME);
        let named = explicit.map(Path::to_path_buf).or_else(|| var(ENV_CONFIG));
        let config_explicit = named.is_some();
        let config_file = named
            .or_else(|| home.as_ref().map(|h| h.join("config.toml")))
            .unwrap_or_else(|| os_dirs().config.join("config.toml"));
        match home {
            Some(h) => Paths {
                config_file,
                config_explicit,
                cache_dir: h.join("cache"),
                state_dir: h.join("state"),
            },
            None => {
                let OsDirs { cache, state, .. } = os_dirs();
                Paths {
                    config_file,
                    config_explicit,
                    cache_dir: cache,
                    state_dir: state,
                }
            }
        }
    }
}

/// The directory names under the OS's dirs.
pub const APP: &str = "mcp-bridge";

/// The OS's config, cache and state dirs for the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsDirs {
    pub config: PathBuf,
    pub cache: PathBuf,
    pub state: PathBuf,
}

/// XDG-style dirs (Linux and macOS: a CLI tool's config belongs in
/// `~/.config`) under the user's `home`, moved by `XDG_CONFIG_HOME`,
/// `XDG_CACHE_HOME` and `XDG_STATE_HOME` as `env` has them.
pub fn xdg_dirs(home: &Path, env: impl Fn(&str) -> Option<OsString>) -> OsDirs {
    let xdg = |var: &str, rel: &str| {
        env(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(rel))
            .join(APP)
    };
    OsDirs {
        config: xdg("XDG_CONFIG_HOME", ".config"),
        cache: xdg("XDG_CACHE_HOME", ".cache"),
        state: xdg("XDG_STATE_HOME", ".local/state"),
    }
}

impl Config {
    /// Parse and validate config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string().trim_end().replace('\n', "\n  "),
        })?;
        let defaults = NamingConfig::default();
        cfg.naming.fixed = cfg.naming.separator != defaults.separator || cfg.naming.max_length != defaults.max_length;
        // Every validation error names a line (found by property tests: some named
        // none). `key_line` finds a `key = ...` assignment, else any line naming
        // the key; `quoted` a string value in either kind of TOML quotes.
        let at = |i: usize| format!(" (line {})", i + 1);
        let find = |needle: &str| text.lines().position(|l| l.contains(needle));
        let key_line = |key: &str| {
            text.lines()
                .position(|l| {
                    let l = l.trim_start();
                    !l.starts_with('#') && l.strip_prefix(key).is_some_and(|r| r.trim_start().starts_with('='))
                })
                .or_else(|| find(key))
                .map(at)
                .unwrap_or_default()
        };
        let quoted = |value: &str| {
            let q = [format!("\"{value}\""), format!("'{value}'")];
            text.lines().position(|l| q.iter().any(|q| l.contains(q.as_str())))
        };
        // A server's value, else its `[[servers]]` header (values written with
        // escapes are not found as they are).
        let server_line = |i: usize, value: &str| {
            quoted(value)
                .or_else(|| {
                    text.lines()
                        .enumerate()
                        .filter(|(_, l)| l.trim_start().starts_with("[[servers]]"))
                        .nth(i)
                        .map(|(n, _)| n)
                })
                .or_else(|| find("servers"))
                .map(at)
                .unwrap_or_default()
        };
        let invalid = |message: String| ConfigError::Invalid {
            path: path.into(),
            message,
        };
        let sep = &cfg.naming.separator;
        if !(1..=8).contains(&sep.len()) || !sep.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
            return Err(invalid(format!(
                "[naming] separator {sep:?}{} must be 1 to 8 characters, only A-Z a-z 0-9 _ - .",
                key_line("separator")
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, s) in cfg.servers.iter().enumerate() {
            let at = server_line(i, &s.name);
            if s.name.is_empty()
                || s.name.len() > 64
                || !s
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(invalid(format!(
                    "server name {:?}{at} must be 1 to 64 characters, only A-Z a-z 0-9 - _",
                    s.name
                )));
            }
            if s.name.contains(sep.as_str()) {
                return Err(invalid(format!(
                    "server name {:?}{at} must not contain the separator {sep:?}",
                    s.name
                )));
            }
            if !seen.insert(s.name.as_str()) {
                return Err(invalid(format!("server name {:?}{at} is used twice", s.name)));
            }
            match url::Url::parse(&s.url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => {
                    return Err(invalid(format!(
                        "server {:?}{}: url {:?} is not an http(s) URL",
                        s.name,
                        server_line(i, &s.url),
                        s.url
                    )));
                }
            }
        }
        if let Some(r) = &cfg.registry
            && r.url.is_some()
            && r.file.is_some()
        {
            return Err(invalid(format!(
                "[registry]{} takes either url or file, not both",
                key_line("file")
            )));
        }
        // Every number has a range: absurd values are refused with their key,
        // line and range instead of misbehaving later (a huge `[audit] keep`
        // once spun the audit writer).
        let section_line = |section: &str, key: &str| {
            let mut current = "";
            text.lines()
                .position(|l| {
                    let l = l.trim_start();
                    if l.starts_with('[') {
                        current = l.trim_start_matches('[').split(']').next().unwrap_or("").trim();
                        return false;
                    }
                    current == section && l.strip_prefix(key).is_some_and(|r| r.trim_start().starts_with('='))
                })
                .map(at)
                .unwrap_or_else(|| key_line(key))
        };
        let out_of_range = |name: String, line: String, v: f64, r: &Range| {
            let unit = if r.unit.is_empty() {
                String::new()
            } else {
                format!(" {}", r.unit)
            };
            invalid(format!(
                "{name}{line} must be between {} and {}{unit}, not {v}",
                r.min, r.max
            ))
        };
        for (section, key, v, r) in numbers(&cfg) {
            if !(v >= r.min && v <= r.max) {
                return Err(out_of_range(
                    format!("[{section}] {key}"),
                    section_line(section, key),
                    v,
                    &r,
                ));
            }
        }
        for (i, s) in cfg.servers.iter().enumerate() {
            let checks = [
                ("call_timeout", s.call_timeout, SECONDS_CALL),
                ("oauth.redirect_port", s.oauth.redirect_port.map(f64::from), PORT),
            ];
            for (key, v, r) in checks {
                if let Some(v) = v
                    && !(v >= r.min && v <= r.max)
                {
                    return Err(out_of_range(
                        format!("server {:?}: {key}", s.name),
                        server_line(i, &s.name),
                        v,
                        &r,
                    ));
                }
            }
            if let Some(p) = s.oauth.client_credentials_problem() {
                return Err(invalid(format!("server {:?}{}: {p}", s.name, server_line(i, &s.name))));
            }
            if s.oauth.grant == Some(Grant::Enterprise) && cfg.auth.idp.is_none() {
                return Err(invalid(format!(
                    "server {:?}{}: oauth.grant = \"enterprise\" needs an [auth.idp] section naming the identity provider (issuer and client_id)",
                    s.name,
                    server_line(i, &s.name)
                )));
            }
        }
        if let Some(e) = &cfg.telemetry.endpoint
            && !url::Url::parse(e).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        {
            return Err(invalid(format!(
                "[telemetry] endpoint {e:?}{} is not an http(s) URL",
                section_line("telemetry", "endpoint")
            )));
        }
        if let Some(p) = cfg.auth.idp.as_ref().and_then(idp_problem) {
            return Err(invalid(format!("{p}{}", section_line("auth.idp", "issuer"))));
        }
        for (pattern, minutes) in &cfg.audit.minutes_saved {
            if !(*minutes >= 0.0 && *minutes <= MINUTES.max) {
                return Err(invalid(format!(
                    "[audit.minutes_saved] {pattern:?}{} must be a number of minutes between 0 and {}, not {minutes}",
                    quoted(pattern)
                        .or_else(|| find(pattern))
                        .or_else(|| find("minutes_saved"))
                        .map(at)
                        .unwrap_or_default(),
                    MINUTES.max
                )));
            }
        }
        Ok(cfg)
    }
}

/// The allowed values of one number in the file.
#[derive(Debug, Clone, Copy)]
struct Range {
    min: f64,
    max: f64,
    unit: &'static str,
}

const fn range(min: f64, max: f64, unit: &'static str) -> Range {
    Range { min, max, unit }
}

const DAY: f64 = 86_400.0;
const MIB: f64 = 1024.0 * 1024.0;
const SECONDS_CALL: Range = range(0.01, DAY, "seconds");
const PORT: Range = range(1.0, 65_535.0, "");
const MINUTES: Range = range(0.0, 100_000.0, "minutes");

/// Every number of the file's sections with its range: `(section, key, value, range)`.
fn numbers(cfg: &Config) -> Vec<(&'static str, &'static str, f64, Range)> {
    let t = &cfg.timeouts;
    let mut v = vec![
        (
            "auth",
            "login_timeout",
            cfg.auth.login_timeout,
            range(1.0, 3_600.0, "seconds"),
        ),
        (
            "naming",
            "max_length",
            cfg.naming.max_length as f64,
            range(16.0, 128.0, "characters"),
        ),
        (
            "naming",
            "page_size",
            cfg.naming.page_size as f64,
            range(0.0, 100_000.0, "items"),
        ),
        ("timeouts", "connect", t.connect, range(0.01, 600.0, "seconds")),
        ("timeouts", "call", t.call, SECONDS_CALL),
        ("timeouts", "call_max", t.call_max, range(0.01, 7.0 * DAY, "seconds")),
        ("timeouts", "ready_wait", t.ready_wait, range(0.01, 3_600.0, "seconds")),
        ("timeouts", "first_list", t.first_list, range(0.0, 600.0, "seconds")),
        ("timeouts", "backoff_max", t.backoff_max, range(0.01, DAY, "seconds")),
        (
            "timeouts",
            "list_refresh",
            t.list_refresh,
            range(0.0, 7.0 * DAY, "seconds"),
        ),
        ("timeouts", "keepalive", t.keepalive, range(0.0, DAY, "seconds")),
        (
            "telemetry",
            "export_interval",
            cfg.telemetry.export_interval,
            range(0.05, DAY, "seconds"),
        ),
        (
            "telemetry",
            "span_delay",
            cfg.telemetry.span_delay,
            range(0.01, 3_600.0, "seconds"),
        ),
        (
            "telemetry",
            "max_queue",
            cfg.telemetry.max_queue as f64,
            range(1.0, 1_000_000.0, "spans"),
        ),
        (
            "telemetry",
            "timeout",
            cfg.telemetry.timeout,
            range(0.1, 600.0, "seconds"),
        ),
        (
            "telemetry",
            "sample_ratio",
            cfg.telemetry.sample_ratio,
            range(0.0, 1.0, ""),
        ),
        (
            "http",
            "max_message_bytes",
            cfg.http.max_message_bytes as f64,
            range(1024.0, 1024.0 * MIB, "bytes"),
        ),
        (
            "audit",
            "max_bytes",
            cfg.audit.max_bytes as f64,
            range(1024.0, 1024.0 * 1024.0 * MIB, "bytes"),
        ),
        ("audit", "keep", cfg.audit.keep as f64, range(0.0, 1_000.0, "files")),
        (
            "policy",
            "approval_timeout",
            cfg.policy.approval_timeout,
            range(0.01, 3_600.0, "seconds"),
        ),
    ];
    if let Some(n) = cfg.policy.max_tools {
        v.push(("policy", "max_tools", n as f64, range(0.0, 100_000.0, "tools")));
    }
    if let Some(r) = &cfg.registry {
        v.push(("registry", "refresh", r.refresh, range(0.1, 7.0 * DAY, "seconds")));
        v.push((
            "registry",
            "max_page_bytes",
            r.max_page_bytes as f64,
            range(1024.0, 1024.0 * MIB, "bytes"),
        ));
        v.push((
            "registry",
            "max_servers",
            r.max_servers as f64,
            range(1.0, 100_000.0, "servers"),
        ));
    }
    v
}

/// Expand `${VAR}` with the variables from `lookup` ([`env_var`] for the
/// process's). Unknown variables are an error naming them.
pub fn expand_with(value: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('}').ok_or_else(|| format!("unclosed ${{ in {value:?}"))?;
        let var = &after[..end];
        match lookup(var) {
            Some(v) => out.push_str(&v),
            None => return Err(format!("environment variable {var} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, Path::new("/x/config.toml"))
    }

    /// The shipped example parses and means what its comments say.
    #[test]
    fn example_config_parses() {
        let text = include_str!("../../config/config.example.toml");
        let cfg = parse(text).unwrap();
        assert_eq!(cfg.naming.separator, "__");
        assert!(
            !cfg.naming.fixed,
            "the defaults written out leave names to the IDE's rules"
        );
        assert_eq!(cfg.timeouts, Timeouts::default());
        assert_eq!(cfg.audit, AuditConfig::default());
        assert_eq!(cfg.telemetry, TelemetryConfig::default());
    }

    /// `[telemetry] protocol` takes the two names `OTEL_EXPORTER_OTLP_PROTOCOL`
    /// takes, and says which those are.
    #[test]
    fn telemetry_protocol() {
        let cfg = parse("[telemetry]\nprotocol = \"grpc\"\n").unwrap();
        assert_eq!(cfg.telemetry.protocol, OtlpProtocol::Grpc);
        let cfg = parse("[telemetry]\nprotocol = \"http/protobuf\"\n").unwrap();
        assert_eq!(cfg.telemetry.protocol, OtlpProtocol::HttpProtobuf);
        let e = parse("[telemetry]\nprotocol = \"http/json\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("http/json") && e.contains("grpc") && e.contains("line 2"),
            "{e}"
        );
    }

    /// `[audit.minutes_saved]` keeps the file's order, so the first matching
    /// pattern is the one written first; minutes are never negative.
    #[test]
    fn audit_section() {
        let cfg = parse(
            "[audit]\narguments = true\nkeep = 2\n[audit.minutes_saved]\n\"jira__create_*\" = 5\n\"b*\" = 0.5\n\"a*\" = 1\n",
        )
        .unwrap();
        assert!(cfg.audit.enabled && cfg.audit.arguments);
        assert_eq!((cfg.audit.keep, cfg.audit.max_bytes), (2, 10_000_000));
        let patterns: Vec<_> = cfg.audit.minutes_saved.iter().map(|(p, m)| (p.as_str(), *m)).collect();
        assert_eq!(patterns, [("jira__create_*", 5.0), ("b*", 0.5), ("a*", 1.0)]);
        let e = parse("[audit.minutes_saved]\n\"x\" = -1\n").unwrap_err().to_string();
        assert!(e.contains("\"x\"") && e.contains("line 2"), "{e}");
        let e = parse("[audit]\nmax_bytes = 0\n").unwrap_err().to_string();
        assert!(e.contains("max_bytes"), "{e}");
        let e = parse("[audit]\nargs = true\n").unwrap_err().to_string();
        assert!(e.contains("args"), "{e}");
    }

    /// Client credentials: a secret only by the name of an environment variable,
    /// or a private key file; what is
    /// missing or contradictory is said with the server and its line.
    #[test]
    fn client_credentials_settings_are_checked() {
        let server =
            |oauth: &str| format!("[[servers]]\nname = \"a\"\nurl = \"https://a.example\"\n[servers.oauth]\n{oauth}\n");
        let ok = parse(&server(
            "grant = \"client_credentials\"\nclient_id = \"ci\"\nclient_secret_env = \"CI_SECRET\"",
        ))
        .unwrap();
        assert_eq!(ok.servers[0].oauth.grant, Some(Grant::ClientCredentials));
        let jwt = parse(&server(
            "grant = \"client_credentials\"\nclient_id = \"ci\"\nprivate_key_file = \"/k.pem\"\ntoken_endpoint_auth_method = \"private_key_jwt\"",
        ))
        .unwrap();
        assert_eq!(
            jwt.servers[0].oauth.token_endpoint_auth_method,
            Some(TokenAuthMethod::PrivateKeyJwt)
        );
        // The key may be in the credential store instead of a file.
        parse(&server(
            "grant = \"client_credentials\"\nclient_id = \"ci\"\ntoken_endpoint_auth_method = \"private_key_jwt\"",
        ))
        .unwrap();
        for (bad, says) in [
            (
                "grant = \"client_credentials\"\nclient_id = \"ci\"",
                "client_secret_env",
            ),
            ("grant = \"client_credentials\"\nclient_secret_env = \"X\"", "client_id"),
            (
                "grant = \"client_credentials\"\nclient_id = \"ci\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\nclient_secret_env = \"X\"",
                "not oauth.client_secret_env",
            ),
            (
                "grant = \"client_credentials\"\nclient_id = \"ci\"\nclient_secret_env = \"X\"\nprivate_key_file = \"/k\"",
                "not both",
            ),
            ("client_id = \"ci\"\nprivate_key_file = \"/k\"", "need oauth.grant"),
        ] {
            let e = parse(&server(bad)).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
    }

    /// Enterprise-managed authorization: `[auth.idp]` names the identity
    /// provider (scopes default to an ID token and a refresh token); a server
    /// with `grant = "enterprise"` authenticates at its authorization server
    /// like a client-credentials one, and without `[auth.idp]` is refused
    /// with what to add.
    #[test]
    fn enterprise_settings_are_checked() {
        let idp = "[auth.idp]\nissuer = \"https://idp.example.com\"\nclient_id = \"mcp-bridge\"\nclient_secret_env = \"IDP_SECRET\"\n";
        let server = |oauth: &str| {
            format!("[[servers]]\nname = \"sql\"\nurl = \"https://sql.example.com/mcp\"\n[servers.oauth]\n{oauth}\n")
        };
        let ok = parse(&format!(
            "{idp}{}",
            server("grant = \"enterprise\"\nclient_id = \"bridge-at-sql\"\nclient_secret_env = \"SQL_AS_SECRET\"")
        ))
        .unwrap();
        let i = ok.auth.idp.as_ref().unwrap();
        assert_eq!(i.issuer, "https://idp.example.com");
        assert_eq!(i.scopes, ["openid", "offline_access"]);
        assert_eq!(i.client_secret_env.as_deref(), Some("IDP_SECRET"));
        assert_eq!(ok.servers[0].oauth.grant, Some(Grant::Enterprise));
        let e = parse(&server(
            "grant = \"enterprise\"\nclient_id = \"bridge-at-sql\"\nclient_secret_env = \"SQL_AS_SECRET\"",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("server \"sql\"") && e.contains("needs an [auth.idp] section"),
            "{e}"
        );
        for (bad, says) in [
            (
                "grant = \"enterprise\"\nclient_secret_env = \"X\"",
                "oauth.grant = \"enterprise\" needs oauth.client_id",
            ),
            ("grant = \"enterprise\"\nclient_id = \"c\"", "client_secret_env"),
        ] {
            let e = parse(&format!("{idp}{}", server(bad))).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        for (bad, says) in [
            (
                "[auth.idp]\nissuer = \"idp.example.com\"\nclient_id = \"c\"\n",
                "is not an http(s) URL",
            ),
            (
                "[auth.idp]\nissuer = \"https://idp.example.com\"\nclient_id = \"\"\n",
                "client_id is empty",
            ),
            (
                "[auth.idp]\nissuer = \"https://idp.example.com\"\nclient_id = \"c\"\nscopes = [\"email\"]\n",
                "must include \"openid\"",
            ),
            ("[auth.idp]\nissuer = \"https://idp.example.com\"\n", "client_id"),
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    /// Every number in the file has a range: the defaults are inside it, and a
    /// value past either end is refused naming the section, key, line and range.
    #[test]
    fn every_number_has_a_range() {
        let mut cfg = Config {
            registry: Some(RegistryConfig::default()),
            ..Config::default()
        };
        cfg.policy.max_tools = Some(40);
        let all = numbers(&cfg);
        assert!(all.len() >= 18);
        for (section, key, default, r) in all {
            assert!(
                default >= r.min && default <= r.max,
                "default {section}.{key} = {default}"
            );
            for bad in ["1000000000000000", "-1", "nan"] {
                let text = format!("# settings\n[{section}]\n{key} = {bad}\n");
                let e = parse(&text).expect_err(&text).to_string();
                assert!(e.contains(key) && e.contains("line 3"), "{text}: {e}");
                // A type error (a negative or NaN count) is TOML's own, with its line.
                if !e.contains("TOML parse error") {
                    assert!(e.contains(&format!("between {} and {}", r.min, r.max)), "{text}: {e}");
                }
            }
        }
        // The same key in two sections: the line of the right one.
        let e = parse("[timeouts]\ncall = 5\n[audit]\nkeep = 5000\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[audit] keep (line 4) must be between 0 and 1000 files, not 5000"),
            "{e}"
        );
        let e = parse("[[servers]]\nname = \"a\"\nurl = \"https://a.example\"\ncall_timeout = 1e9\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("call_timeout") && e.contains("line 2"), "{e}");
        let e = parse("[[servers]]\nname = \"a\"\nurl = \"https://a.example\"\noauth = { redirect_port = 0 }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("redirect_port"), "{e}");
        let e = parse("[audit.minutes_saved]\n\"x\" = 1e9\n").unwrap_err().to_string();
        assert!(e.contains("between 0 and 100000"), "{e}");
        let e = parse("[naming]\nseparator = \"_________\"\n").unwrap_err().to_string();
        assert!(
            e.contains("separator") && e.contains("line 2") && e.contains("1 to 8"),
            "{e}"
        );
        let long = "a".repeat(65);
        let e = parse(&format!(
            "[[servers]]\nname = \"{long}\"\nurl = \"https://a.example\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("1 to 64") && e.contains("line 2"), "{e}");
    }

    /// The registry's input bounds: defaults, and values refused with their line.
    #[test]
    fn registry_bounds() {
        let cfg = parse("[registry]\nurl = \"https://r.example\"\n").unwrap();
        let r = cfg.registry.unwrap();
        assert_eq!(
            (r.max_page_bytes, r.max_servers),
            (4 * 1024 * 1024, DEFAULT_MAX_REGISTRY_SERVERS)
        );
        let cfg = parse("[registry]\nmax_page_bytes = 65536\nmax_servers = 10\n").unwrap();
        let r = cfg.registry.unwrap();
        assert_eq!((r.max_page_bytes, r.max_servers), (65536, 10));
        let e = parse("[registry]\nurl = \"https://r.example\"\nmax_page_bytes = 100\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("max_page_bytes") && e.contains("line 3") && e.contains("1024"),
            "{e}"
        );
        let e = parse("[registry]\nmax_servers = 0\n").unwrap_err().to_string();
        assert!(e.contains("max_servers") && e.contains("line 2"), "{e}");
        let e = parse("[registry]\nmax_page_bytes = -1\n").unwrap_err().to_string();
        assert!(e.contains("max_page_bytes"), "{e}");
    }

    #[test]
    fn empty_is_default() {
        assert_eq!(parse("").unwrap(), Config::default());
    }

    /// A `[naming]` that asks for another separator or length holds for every
    /// IDE (`catalog::Naming::for_client` keeps it); the defaults do not.
    #[test]
    fn naming_fixed_by_the_config() {
        assert!(parse("[naming]\nmax_length = 40\n").unwrap().naming.naming().fixed);
        assert!(parse("[naming]\nseparator = \"-\"\n").unwrap().naming.naming().fixed);
        assert!(
            !parse("[naming]\nmax_length = 64\nprefix = \"always\"\n")
                .unwrap()
                .naming
                .fixed
        );
    }

    /// Errors name the file and the line.
    #[test]
    fn parse_errors_name_file_and_line() {
        let e = parse("[naming]\nprefix = \"sometimes\"\n").unwrap_err().to_string();
        assert!(e.contains("/x/config.toml"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        let e = parse("[[servers]]\nname = \"a\"\nurl = \"http://x\"\ncolour = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn invalid_servers_are_named() {
        let e = parse("[[servers]]\nname = \"a b\"\nurl = \"http://x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"a b\"") && e.contains("line 2"), "{e}");
        let e = parse("[[servers]]\nname = \"a\"\nurl = \"ftp://x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ftp://x"), "{e}");
        let e = parse("[[servers]]\nname = \"a\"\nurl = \"http://x\"\n[[servers]]\nname = \"a\"\nurl = \"http://y\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("used twice"), "{e}");
    }

    /// `--config` wins over `MCP_BRIDGE_CONFIG`, which wins over
    /// `MCP_BRIDGE_HOME`, which wins over the OS's dirs; an empty variable is
    /// unset; only a named file must exist; the OS is asked only when needed.
    #[test]
    fn paths_precedence() {
        let os = || OsDirs {
            config: "/os/config".into(),
            cache: "/os/cache".into(),
            state: "/os/state".into(),
        };
        let env_of = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| OsString::from(v))
        };
        let p = Paths::from_env(None, env_of(&[]), os);
        assert_eq!(p.config_file, Path::new("/os/config/config.toml"));
        assert_eq!(
            (p.cache_dir.as_path(), p.state_dir.as_path()),
            (Path::new("/os/cache"), Path::new("/os/state"))
        );
        assert!(!p.config_explicit);
        let home = env_of(&[(ENV_HOME, "/h")]);
        let never = || -> OsDirs { unreachable!("MCP_BRIDGE_HOME names every place") };
        let p = Paths::from_env(None, home, never);
        assert_eq!(p.config_file, Path::new("/h/config.toml"));
        assert_eq!(
            (p.cache_dir.as_path(), p.state_dir.as_path()),
            (Path::new("/h/cache"), Path::new("/h/state"))
        );
        assert!(!p.config_explicit);
        let both = env_of(&[(ENV_HOME, "/h"), (ENV_CONFIG, "/c.toml")]);
        let p = Paths::from_env(None, both, never);
        assert_eq!(
            (p.config_file.as_path(), p.config_explicit),
            (Path::new("/c.toml"), true)
        );
        assert_eq!(p.state_dir, Path::new("/h/state"));
        let p = Paths::from_env(Some(Path::new("/flag.toml")), both, never);
        assert_eq!(
            (p.config_file.as_path(), p.config_explicit),
            (Path::new("/flag.toml"), true)
        );
        let empty = env_of(&[(ENV_HOME, ""), (ENV_CONFIG, "")]);
        let p = Paths::from_env(None, empty, os);
        assert_eq!(
            (p.config_file.as_path(), p.config_explicit),
            (Path::new("/os/config/config.toml"), false)
        );
    }

    /// XDG variables move each dir; unset or empty ones fall back under home.
    #[test]
    fn xdg_dirs_follow_the_variables() {
        let env = |name: &str| match name {
            "XDG_CACHE_HOME" => Some(OsString::from("/xc")),
            "XDG_STATE_HOME" => Some(OsString::new()),
            _ => None,
        };
        let d = xdg_dirs(Path::new("/home/me"), env);
        assert_eq!(d.config, Path::new("/home/me/.config/mcp-bridge"));
        assert_eq!(d.cache, Path::new("/xc/mcp-bridge"));
        assert_eq!(d.state, Path::new("/home/me/.local/state/mcp-bridge"));
    }

    #[test]
    fn env_expansion() {
        // The environment is never changed in a test (clippy.toml): other
        // threads read it.
        let env = |var: &str| (var == "X").then(|| "v".to_owned());
        assert_eq!(expand_with("a${X}b", env).unwrap(), "avb");
        assert!(expand_with("${UNSET_Y}", env).unwrap_err().contains("UNSET_Y"));
        assert!(expand_with("${X", env).unwrap_err().contains("unclosed"));
        assert_eq!(expand_with("plain", env).unwrap(), "plain");
        assert_eq!(expand_env("plain").unwrap(), "plain");
    }
}
