//! Command-line interface: what each subcommand takes.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::catalog::PrefixMode;

#[derive(Debug, Parser)]
#[command(
    name = "mcp-bridge",
    version,
    about = "One stdio MCP server in front of many remote MCP servers",
    long_about = "One stdio MCP server in front of many remote MCP servers.\n\n\
        Your IDE launches `mcp-bridge serve`; the bridge connects to every server your \
        company's registry and your config name, logs in to them, and shows their tools \
        to the IDE as one list.",
    after_help = "Getting started:\n  \
        mcp-bridge demo                 see it work against two local sample servers\n  \
        mcp-bridge install --all        add the bridge to every IDE found on this machine\n  \
        mcp-bridge doctor               check the config, the servers, logins and IDE entries\n  \
        mcp-bridge status               what a running bridge is connected to\n\n\
        Config: ~/.config/mcp-bridge/config.toml (see config/config.example.toml)."
)]
pub struct Cli {
    /// Config file (default: $MCP_BRIDGE_CONFIG, then ~/.config/mcp-bridge/config.toml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP on stdio (what IDEs launch). URLs given here are bridged in
    /// addition to the config's servers.
    Serve {
        /// Streamable HTTP endpoints to bridge, e.g. https://mcp.example.com/mcp.
        #[arg(value_name = "URL")]
        urls: Vec<String>,
        /// A header for the URLs given here, as 'Name: value' (repeatable).
        #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// Tool name prefixes: auto (only with several servers), always, never.
        #[arg(long, value_enum)]
        prefix: Option<Prefix>,
        #[command(flatten)]
        oauth: OAuthArgs,
    },
    /// Log in to servers that use OAuth (all that need it when none is named).
    /// Opens the browser; the address is also printed to stderr.
    Login {
        /// Server name (its prefix, e.g. `jira`) or URL.
        server: Option<String>,
        /// Sign in to the identity provider (`[auth.idp]`, or --idp-issuer):
        /// one browser login that opens every server with `grant = "enterprise"`.
        #[arg(long, conflicts_with = "server")]
        idp: bool,
        #[command(flatten)]
        oauth: OAuthArgs,
    },
    /// List the merged tool catalog, through the same code as `serve`.
    Tools {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Call one tool through the same code as `serve` and print its result.
    Call {
        /// The tool's name as the IDE sees it (e.g. `jira__search`).
        name: String,
        /// Arguments as a JSON object.
        #[arg(long, default_value = "{}", value_name = "JSON")]
        args: String,
    },
    /// The servers, what running bridges report about them, and how each logs
    /// in (no connection is made). Colour on a terminal unless NO_COLOR is set.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Tool calls from the audit log, per server and per tool: calls, errors,
    /// latency, result sizes, time saved. Colour on a terminal unless NO_COLOR is set.
    Stats {
        /// The period to sum up: 30m, 24h, 7d, 2w, or all.
        #[arg(long, default_value = "7d", value_name = "DURATION", value_parser = crate::audit::parse_since)]
        since: crate::audit::Since,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Static credentials kept in the credential store (never in the config).
    Auth {
        #[command(subcommand)]
        action: AuthAction,
    },
    /// Forget the stored tokens of a server (all servers when none is named).
    Logout {
        /// Server name (its prefix) or URL.
        server: Option<String>,
    },
    /// Start two sample servers on loopback and show the bridge working in front of them.
    Demo,
    /// Add the bridge to an IDE's MCP servers, keeping everything else in the
    /// file (comments, other servers, formatting). Safe to run again.
    #[command(after_help = "Examples:\n  \
        mcp-bridge install cursor\n  \
        mcp-bridge install --all --dry-run     show the changes, write nothing\n  \
        mcp-bridge install vscode --scope project")]
    Install {
        #[command(flatten)]
        target: InstallArgs,
        /// The binary the IDE should launch (default: this one). User scope only:
        /// a project entry launches `mcp-bridge` from PATH.
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
    },
    /// Remove the bridge's entry from an IDE's MCP servers (and nothing else).
    Uninstall {
        #[command(flatten)]
        target: InstallArgs,
    },
    /// Check everything the bridge depends on: the config, the registry, each
    /// server (reachable, logged in), the credential store, and the IDE entries.
    /// Each line says OK or what to do.
    Doctor,
    /// Print a shell completion script, e.g. `mcp-bridge completions bash >
    /// ~/.local/share/bash-completion/completions/mcp-bridge`.
    Completions { shell: clap_complete::Shell },
}

/// Which IDE files `install` and `uninstall` change.
#[derive(Debug, Clone, clap::Args)]
pub struct InstallArgs {
    /// The IDEs and agents to write the entry for (`mcp-bridge install --help` lists them).
    #[arg(value_enum, required_unless_present = "all")]
    pub clients: Vec<crate::install::Client>,
    /// Every IDE and agent found on this machine.
    #[arg(long, conflicts_with = "clients")]
    pub all: bool,
    /// The user's file (all projects) or the current project's (shared with
    /// the repository; Cursor, VS Code and Claude Code only).
    #[arg(long, value_enum, default_value = "user")]
    pub scope: crate::install::Scope,
    /// The entry's name in the IDE.
    #[arg(long, default_value = crate::install::DEFAULT_NAME)]
    pub name: String,
    /// Print the change as a diff and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum AuthAction {
    /// Read a token from stdin and send it as `Authorization: Bearer <token>`
    /// (or, with --header, as that header's value) to SERVER. With
    /// --private-key, read a PEM private key that SERVER's client credentials
    /// sign with (private_key_jwt), instead of a key file.
    Set {
        /// Server name (its prefix) or URL.
        server: String,
        /// Store the value for this header instead of a bearer token.
        #[arg(long, value_name = "NAME")]
        header: Option<String>,
        /// Store a PEM private key for private_key_jwt.
        #[arg(long, conflicts_with = "header")]
        private_key: bool,
    },
    /// Remove what `auth set` stored for SERVER.
    Clear {
        server: String,
        #[arg(long, value_name = "NAME")]
        header: Option<String>,
        /// Remove the stored private key.
        #[arg(long, conflicts_with = "header")]
        private_key: bool,
    },
}

/// OAuth client settings for servers given on the command line (the config's
/// `[[servers]] oauth` does the same for configured ones).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OAuthArgs {
    /// A client id registered with the server's authorization server.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Its client secret, if it has one (prefer the env var).
    #[arg(
        long,
        value_name = "SECRET",
        env = "MCP_BRIDGE_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub client_secret: Option<String>,
    /// A scope to ask for (repeatable).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// The https URL of a Client ID Metadata Document to log in with, where
    /// the authorization server supports them (dynamic registration otherwise).
    #[arg(long, value_name = "URL")]
    pub client_metadata_url: Option<String>,
    /// Get tokens with the client credentials grant (agents, CI): no browser,
    /// no refresh token. Needs --client-id and a secret
    /// (MCP_BRIDGE_CLIENT_SECRET) or --private-key-file.
    #[arg(long)]
    pub client_credentials: bool,
    /// PEM private key for private_key_jwt client authentication (RFC 7523),
    /// with --client-credentials or --idp-issuer.
    #[arg(long, value_name = "FILE")]
    pub private_key_file: Option<PathBuf>,
    /// client_secret_basic, client_secret_post or private_key_jwt (default:
    /// what the authorization server lists).
    #[arg(long, value_name = "METHOD")]
    pub token_endpoint_auth_method: Option<crate::config::TokenAuthMethod>,

    // Enterprise-managed authorization (SEP-990) for the URLs given here:
    // tokens from the identity provider's ID token, no browser for the server;
    // `--client-id` (and MCP_BRIDGE_CLIENT_SECRET) are the bridge's at the
    // server's authorization server.
    /// The issuer of the identity provider whose ID token opens these servers
    /// (enterprise-managed authorization; needs --idp-client-id and --client-id).
    #[arg(long, value_name = "ISSUER", requires = "idp_client_id")]
    pub idp_issuer: Option<String>,
    /// The bridge's client id at that identity provider.
    #[arg(long, value_name = "ID", requires = "idp_issuer")]
    pub idp_client_id: Option<String>,
    /// The bridge's client secret at the identity provider, if it has one
    /// (from the environment only).
    #[arg(skip = std::env::var(crate::auth::enterprise::ENV_IDP_CLIENT_SECRET).ok())]
    pub idp_client_secret: Option<String>,
}

impl OAuthArgs {
    pub fn settings(&self) -> crate::registry::OAuthSettings {
        crate::registry::OAuthSettings {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            scopes: self.scopes.clone(),
            redirect_port: None,
            omit_resource: false,
            client_metadata_url: self.client_metadata_url.clone(),
            client_credentials: self.client_credentials.then(|| self.client_auth()),
            enterprise: self.enterprise(),
        }
    }

    /// The enterprise grant the `--idp-*` flags ask for.
    fn enterprise(&self) -> Option<crate::registry::Enterprise> {
        let (issuer, client_id) = (self.idp_issuer.clone()?, self.idp_client_id.clone()?);
        Some(crate::registry::Enterprise {
            idp: crate::registry::Idp {
                issuer,
                client_id,
                client_secret: self.idp_client_secret.clone(),
                scopes: crate::config::idp_scopes(),
                redirect_port: None,
            },
            client: self.client_auth(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.client_id.is_none()
            && self.client_secret.is_none()
            && self.scopes.is_empty()
            && !self.client_credentials
            && self.idp_issuer.is_none()
    }

    /// How the bridge authenticates at the token endpoint of the servers'
    /// authorization server (client credentials, enterprise).
    fn client_auth(&self) -> crate::registry::ClientCredentials {
        crate::registry::ClientCredentials {
            method: self.token_endpoint_auth_method,
            private_key_file: self.private_key_file.clone(),
        }
    }

    /// What is missing or contradictory in these flags, if anything (the
    /// config's `[servers.oauth]` is checked the same way, in its own words).
    pub fn problem(&self) -> Option<String> {
        use crate::config::TokenAuthMethod as M;
        let key = self.private_key_file.is_some();
        let grant = match (self.client_credentials, self.idp_issuer.is_some()) {
            (true, true) => {
                return Some("--client-credentials and --idp-issuer are two ways to get tokens: give one".into());
            }
            (false, false) => {
                return (key || self.token_endpoint_auth_method.is_some()).then(|| {
                    "--private-key-file and --token-endpoint-auth-method go with --client-credentials or --idp-issuer"
                        .into()
                });
            }
            (true, false) => "--client-credentials",
            (false, true) => "--idp-issuer",
        };
        if self.client_id.is_none() {
            return Some(format!("{grant} needs --client-id"));
        }
        let jwt = self.token_endpoint_auth_method == Some(M::PrivateKeyJwt);
        match (key, jwt, self.client_secret.is_some(), self.token_endpoint_auth_method) {
            // private_key_jwt with no file: the key `auth set --private-key` stored.
            (false, true, true, _) => Some(
                "--token-endpoint-auth-method private_key_jwt signs with a private key, not a client secret".into(),
            ),
            (true, _, true, _) => {
                Some("give --private-key-file or a client secret (MCP_BRIDGE_CLIENT_SECRET), not both".into())
            }
            (true, false, _, Some(m)) => Some(format!(
                "--private-key-file goes with private_key_jwt, not {}",
                m.as_str()
            )),
            // Both grants authenticate the bridge at the authorization server
            // (confidential clients only, draft-ietf-oauth-identity-assertion-authz-grant),
            // as `[servers.oauth]` and the registry's meta require too.
            (false, false, false, _) => Some(format!(
                "{grant} needs a client secret (the environment variable MCP_BRIDGE_CLIENT_SECRET), --private-key-file, or --token-endpoint-auth-method private_key_jwt with a key stored by `mcp-bridge auth set URL --private-key`"
            )),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Prefix {
    Auto,
    Always,
    Never,
}

impl From<Prefix> for PrefixMode {
    fn from(p: Prefix) -> Self {
        match p {
            Prefix::Auto => PrefixMode::Auto,
            Prefix::Always => PrefixMode::Always,
            Prefix::Never => PrefixMode::Never,
        }
    }
}

/// Parse `Name: value`.
pub fn parse_header(h: &str) -> Result<(String, String), String> {
    let (name, value) = h
        .split_once(':')
        .ok_or_else(|| format!("header {h:?} is not in the form 'Name: value'"))?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) {
        return Err(format!("header name {name:?} is not valid"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert_eq!(parse_header("X-Key: a:b ").unwrap(), ("X-Key".into(), "a:b".into()));
        assert!(parse_header("nocolon").is_err());
        assert!(parse_header("bad name: x").is_err());
    }

    /// `--idp-issuer` and `--idp-client-id` make the URLs' grant the
    /// enterprise one (the AS client from `--client-id`); each needs the other,
    /// and they do not go with `--client-credentials`.
    #[test]
    fn enterprise_flags() {
        let parse = |a: &[&str]| {
            let mut argv = vec!["mcp-bridge", "serve", "http://127.0.0.1:1/mcp"];
            argv.extend_from_slice(a);
            Cli::try_parse_from(argv).map(|c| match c.command {
                Command::Serve { oauth, .. } => oauth,
                _ => unreachable!(),
            })
        };
        let ok = parse(&[
            "--idp-issuer",
            "http://127.0.0.1:2",
            "--idp-client-id",
            "bridge",
            "--client-id",
            "at-as",
            "--client-secret",
            "s",
        ])
        .unwrap();
        assert_eq!(ok.problem(), None);
        let public = parse(&[
            "--idp-issuer",
            "http://127.0.0.1:2",
            "--idp-client-id",
            "bridge",
            "--client-id",
            "at-as",
        ])
        .unwrap();
        assert!(
            public
                .problem()
                .unwrap()
                .starts_with("--idp-issuer needs a client secret")
        );
        let s = ok.settings();
        let e = s.enterprise.as_ref().unwrap();
        assert_eq!(
            (e.idp.issuer.as_str(), e.idp.client_id.as_str()),
            ("http://127.0.0.1:2", "bridge")
        );
        assert_eq!(e.idp.scopes, ["openid", "offline_access"]);
        assert_eq!(s.client_id.as_deref(), Some("at-as"));
        assert!(s.headless() && s.client_credentials.is_none());
        assert!(parse(&["--idp-issuer", "http://127.0.0.1:2"]).is_err());
        assert!(parse(&["--idp-client-id", "bridge"]).is_err());
        let no_client = parse(&["--idp-issuer", "http://i", "--idp-client-id", "b"]).unwrap();
        assert!(no_client.problem().unwrap().contains("needs --client-id"));
        let both = parse(&[
            "--idp-issuer",
            "http://i",
            "--idp-client-id",
            "b",
            "--client-id",
            "c",
            "--client-credentials",
        ])
        .unwrap();
        assert!(both.problem().unwrap().contains("give one"));
        assert!(parse(&[]).unwrap().settings().enterprise.is_none());
    }

    #[test]
    fn client_credentials_flags_are_checked_together() {
        let args = |a: &[&str]| {
            let mut argv = vec!["mcp-bridge", "serve", "http://127.0.0.1:1/mcp"];
            argv.extend_from_slice(a);
            match Cli::try_parse_from(argv).unwrap().command {
                Command::Serve { oauth, .. } => oauth,
                _ => unreachable!(),
            }
        };
        let ok = args(&["--client-credentials", "--client-id", "ci", "--client-secret", "s"]);
        assert_eq!(ok.problem(), None);
        assert!(ok.settings().client_credentials.is_some());
        let key = args(&[
            "--client-credentials",
            "--client-id",
            "ci",
            "--private-key-file",
            "/k.pem",
        ]);
        assert_eq!(key.problem(), None);
        for (a, says) in [
            (&["--private-key-file", "/k"][..], "go with --client-credentials"),
            (
                &["--client-credentials", "--client-secret", "s"][..],
                "needs --client-id",
            ),
            (
                &["--client-credentials", "--client-id", "ci"][..],
                "MCP_BRIDGE_CLIENT_SECRET",
            ),
            (
                &[
                    "--client-credentials",
                    "--client-id",
                    "ci",
                    "--client-secret",
                    "s",
                    "--private-key-file",
                    "/k",
                ][..],
                "not both",
            ),
            (
                &[
                    "--client-credentials",
                    "--client-id",
                    "ci",
                    "--client-secret",
                    "s",
                    "--token-endpoint-auth-method",
                    "private_key_jwt",
                ][..],
                "not a client secret",
            ),
        ] {
            let p = args(a).problem().unwrap_or_default();
            assert!(p.contains(says), "{a:?}: {p:?}");
        }
        assert!(Cli::try_parse_from(["mcp-bridge", "serve", "--token-endpoint-auth-method", "jwt"]).is_err());
    }
}
