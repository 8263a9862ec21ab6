//! The IDEs and agents `install` knows (19): where each keeps its MCP server list on Linux,
//! macOS and Windows, which key of which format (JSON, TOML, YAML) holds the
//! servers, and the exact entry that launches the bridge. Path resolution is a
//! pure function of a [`Machine`], so every OS's rules are tested on any host;
//! [`find_command`] finds what an entry launches (a path, or a name on `PATH`).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::edit::{Format, Place};

/// An IDE with an MCP server list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Client {
    Cursor,
    #[value(name = "vscode")]
    VsCode,
    ClaudeDesktop,
    ClaudeCode,
    Windsurf,
    Codex,
    Gemini,
    Copilot,
    #[value(name = "opencode")]
    OpenCode,
    Kiro,
    #[value(name = "lm-studio")]
    LmStudio,
    Cline,
    AmazonQ,
    Zed,
    Goose,
    RooCode,
    VisualStudio,
    Junie,
    Continue,
}

/// Whose file: the user's (all projects) or the current project's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Scope {
    #[default]
    User,
    Project,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Linux,
    MacOs,
    Windows,
}

/// What path resolution needs to know about the machine; [`Machine::detect`]
/// reads it from the environment, tests build it by hand.
#[derive(Debug, Clone)]
pub struct Machine {
    pub os: Os,
    pub home: PathBuf,
    /// `%APPDATA%` (Windows).
    pub appdata: Option<PathBuf>,
    /// `%LOCALAPPDATA%` (Windows).
    pub local_appdata: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME` (Linux).
    pub xdg_config: Option<PathBuf>,
    /// `$CLAUDE_CONFIG_DIR` (Claude Code).
    pub claude_config_dir: Option<PathBuf>,
    /// `$CODEX_HOME` (Codex; default `~/.codex`).
    pub codex_home: Option<PathBuf>,
    /// `$GEMINI_CLI_HOME` (Gemini CLI): stands for the home directory, so its
    /// files are in `$GEMINI_CLI_HOME/.gemini`.
    pub gemini_cli_home: Option<PathBuf>,
    /// `$COPILOT_HOME` (Copilot CLI): replaces `~/.copilot`.
    pub copilot_home: Option<PathBuf>,
    /// Cline's `$CLINE_MCP_SETTINGS_PATH` (the file), `$CLINE_DATA_DIR` and
    /// `$CLINE_DIR` (default `~/.cline`), in that order of precedence.
    pub cline_env: [Option<PathBuf>; 3],
    /// `$GOOSE_PATH_ROOT` (Goose; used only when absolute): its config is in `<root>/config`.
    pub goose_path_root: Option<PathBuf>,
    /// The project for `--scope project`.
    pub project: PathBuf,
    /// Claude Desktop's MSIX package directories
    /// (`%LOCALAPPDATA%\Packages\Claude_*\LocalCache\Roaming\Claude`), and
    /// whether each already holds a config file.
    pub claude_msix: Vec<(PathBuf, bool)>,
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

impl Machine {
    pub fn detect() -> Machine {
        let os = if cfg!(windows) {
            Os::Windows
        } else if cfg!(target_os = "macos") {
            Os::MacOs
        } else {
            Os::Linux
        };
        let home = directories::BaseDirs::new()
            .map(|d| d.home_dir().to_path_buf())
            .or_else(|| env_path("HOME"))
            .unwrap_or_else(|| PathBuf::from("."));
        let local_appdata = env_path("LOCALAPPDATA");
        let mut claude_msix = Vec::new();
        if let Some(packages) = local_appdata.as_ref().map(|l| l.join("Packages"))
            && let Ok(dir) = std::fs::read_dir(&packages)
        {
            for e in dir.flatten() {
                if e.file_name().to_string_lossy().starts_with("Claude_") {
                    let roaming = e.path().join("LocalCache").join("Roaming").join("Claude");
                    if roaming.is_dir() {
                        let has = roaming.join("claude_desktop_config.json").is_file();
                        claude_msix.push((roaming, has));
                    }
                }
            }
            claude_msix.sort();
        }
        Machine {
            os,
            home,
            appdata: env_path("APPDATA"),
            local_appdata,
            xdg_config: env_path("XDG_CONFIG_HOME"),
            claude_config_dir: env_path("CLAUDE_CONFIG_DIR"),
            codex_home: env_path("CODEX_HOME"),
            gemini_cli_home: env_path("GEMINI_CLI_HOME"),
            copilot_home: env_path("COPILOT_HOME"),
            cline_env: [
                env_path("CLINE_MCP_SETTINGS_PATH"),
                env_path("CLINE_DATA_DIR"),
                env_path("CLINE_DIR"),
            ],
            goose_path_root: env_path("GOOSE_PATH_ROOT").filter(|p| p.is_absolute()),
            project: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            claude_msix,
        }
    }

    fn appdata(&self) -> PathBuf {
        self.appdata
            .clone()
            .unwrap_or_else(|| self.home.join("AppData").join("Roaming"))
    }

    /// Where applications keep per-user settings: `~/Library/Application
    /// Support`, `%APPDATA%`, or `$XDG_CONFIG_HOME` (`~/.config`).
    fn app_config(&self) -> PathBuf {
        match self.os {
            Os::MacOs => self.home.join("Library").join("Application Support"),
            Os::Windows => self.appdata(),
            Os::Linux => self.xdg_config.clone().unwrap_or_else(|| self.home.join(".config")),
        }
    }

    /// Codex's home: `$CODEX_HOME`, else `~/.codex` on every OS
    /// (`%USERPROFILE%\.codex` on Windows).
    fn codex_home(&self) -> PathBuf {
        self.codex_home.clone().unwrap_or_else(|| self.home.join(".codex"))
    }

    /// `~/.gemini`, or `$GEMINI_CLI_HOME/.gemini`.
    fn gemini_dir(&self) -> PathBuf {
        self.gemini_cli_home.as_ref().unwrap_or(&self.home).join(".gemini")
    }

    /// Zed's settings directory: `$XDG_CONFIG_HOME/zed` or `~/.config/zed` on
    /// Linux and macOS, `%APPDATA%\\Zed` on Windows.
    fn zed_dir(&self) -> PathBuf {
        match self.os {
            Os::Windows => self.appdata().join("Zed"),
            Os::Linux | Os::MacOs => self
                .xdg_config
                .clone()
                .unwrap_or_else(|| self.home.join(".config"))
                .join("zed"),
        }
    }

    /// Goose's config directory (its `etcetera` app strategy, XDG on macOS
    /// too): `$GOOSE_PATH_ROOT/config`, else `$XDG_CONFIG_HOME/goose` or
    /// `~/.config/goose` on Linux and macOS, `%APPDATA%\\Block\\goose\\config` on Windows.
    fn goose_dir(&self) -> PathBuf {
        if let Some(root) = &self.goose_path_root {
            return root.join("config");
        }
        match self.os {
            Os::Windows => self.appdata().join("Block").join("goose").join("config"),
            Os::Linux | Os::MacOs => self
                .xdg_config
                .clone()
                .unwrap_or_else(|| self.home.join(".config"))
                .join("goose"),
        }
    }

    /// `~/.copilot`, or `$COPILOT_HOME`.
    fn copilot_dir(&self) -> PathBuf {
        self.copilot_home.clone().unwrap_or_else(|| self.home.join(".copilot"))
    }

    /// opencode's directory: `$XDG_CONFIG_HOME/opencode` or
    /// `~/.config/opencode` on every OS (it follows XDG on macOS and Windows too).
    fn opencode_dir(&self) -> PathBuf {
        self.xdg_config
            .clone()
            .unwrap_or_else(|| self.home.join(".config"))
            .join("opencode")
    }
}

/// Why a client has no file for a scope.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PathError {
    #[error("{client} has no {scope} configuration")]
    NoScope { client: &'static str, scope: &'static str },
    #[error("{0}")]
    Unsupported(String),
}

impl Client {
    pub const ALL: [Client; 19] = [
        Client::Cursor,
        Client::VsCode,
        Client::ClaudeDesktop,
        Client::ClaudeCode,
        Client::Windsurf,
        Client::Codex,
        Client::Gemini,
        Client::Copilot,
        Client::OpenCode,
        Client::Kiro,
        Client::LmStudio,
        Client::Cline,
        Client::AmazonQ,
        Client::Zed,
        Client::Goose,
        Client::RooCode,
        Client::VisualStudio,
        Client::Junie,
        Client::Continue,
    ];

    /// The name on the command line.
    pub fn id(self) -> &'static str {
        match self {
            Client::Cursor => "cursor",
            Client::VsCode => "vscode",
            Client::ClaudeDesktop => "claude-desktop",
            Client::ClaudeCode => "claude-code",
            Client::Windsurf => "windsurf",
            Client::Codex => "codex",
            Client::Gemini => "gemini",
            Client::Copilot => "copilot",
            Client::OpenCode => "opencode",
            Client::Kiro => "kiro",
            Client::LmStudio => "lm-studio",
            Client::Cline => "cline",
            Client::AmazonQ => "amazon-q",
            Client::Zed => "zed",
            Client::Goose => "goose",
            Client::RooCode => "roo-code",
            Client::VisualStudio => "visual-studio",
            Client::Junie => "junie",
            Client::Continue => "continue",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Client::Cursor => "Cursor",
            Client::VsCode => "VS Code",
            Client::ClaudeDesktop => "Claude Desktop",
            Client::ClaudeCode => "Claude Code",
            Client::Windsurf => "Windsurf",
            Client::Codex => "Codex",
            Client::Gemini => "Gemini CLI",
            Client::Copilot => "Copilot CLI",
            Client::OpenCode => "opencode",
            Client::Kiro => "Kiro",
            Client::LmStudio => "LM Studio",
            Client::Cline => "Cline",
            Client::AmazonQ => "Amazon Q Developer CLI",
            Client::Zed => "Zed",
            Client::Goose => "Goose",
            Client::RooCode => "Roo Code",
            Client::VisualStudio => "Visual Studio",
            Client::Junie => "Junie",
            Client::Continue => "Continue",
        }
    }

    /// Where the server entries are: the file's format and key.
    pub fn place(self) -> Place<'static> {
        let format = match self {
            Client::Codex => Format::Toml,
            Client::Goose => Format::Yaml,
            _ => Format::Json,
        };
        Place {
            format,
            key: self.top_key(),
        }
    }

    /// The key that holds the server entries.
    pub fn top_key(self) -> &'static str {
        match self {
            Client::VsCode | Client::VisualStudio => "servers",
            Client::Codex => "mcp_servers",
            Client::OpenCode => "mcp",
            Client::Zed => "context_servers",
            Client::Goose => "extensions",
            _ => "mcpServers",
        }
    }

    /// The config files of `scope` (VS Code: stable, plus Insiders when it is
    /// installed). The first is the primary one.
    pub fn paths(self, scope: Scope, m: &Machine) -> Result<Vec<PathBuf>, PathError> {
        let no_scope = || PathError::NoScope {
            client: self.title(),
            scope: "project",
        };
        Ok(match (self, scope) {
            (Client::Cursor, Scope::User) => vec![m.home.join(".cursor").join("mcp.json")],
            (Client::Cursor, Scope::Project) => vec![m.project.join(".cursor").join("mcp.json")],
            (Client::VsCode, Scope::User) => vscode_user_dirs(m).into_iter().map(|d| d.join("mcp.json")).collect(),
            (Client::VsCode, Scope::Project) => vec![m.project.join(".vscode").join("mcp.json")],
            (Client::ClaudeDesktop, Scope::User) => vec![claude_desktop(m)?],
            (Client::ClaudeCode, Scope::User) => {
                vec![m.claude_config_dir.as_ref().unwrap_or(&m.home).join(".claude.json")]
            }
            (Client::ClaudeCode, Scope::Project) => vec![m.project.join(".mcp.json")],
            (Client::Windsurf, Scope::User) => vec![m.home.join(".codeium").join("windsurf").join("mcp_config.json")],
            (Client::ClaudeDesktop | Client::Windsurf, Scope::Project) => return Err(no_scope()),
            (Client::Codex, Scope::User) => vec![m.codex_home().join("config.toml")],
            // Read by Codex only in a project the user trusts.
            (Client::Codex, Scope::Project) => vec![m.project.join(".codex").join("config.toml")],
            (Client::Gemini, Scope::User) => vec![m.gemini_dir().join("settings.json")],
            (Client::Gemini, Scope::Project) => vec![m.project.join(".gemini").join("settings.json")],
            (Client::Copilot, Scope::User) => vec![m.copilot_dir().join("mcp-config.json")],
            // Not the `.mcp.json` Copilot also reads: that is Claude Code's
            // project file, whose entry has another shape.
            (Client::Copilot, Scope::Project) => vec![m.project.join(".github").join("mcp.json")],
            (Client::OpenCode, Scope::User) => vec![opencode_file(&m.opencode_dir())],
            (Client::OpenCode, Scope::Project) => vec![opencode_file(&m.project)],
            (Client::Kiro, Scope::User) => vec![m.home.join(".kiro").join("settings").join("mcp.json")],
            (Client::Kiro, Scope::Project) => vec![m.project.join(".kiro").join("settings").join("mcp.json")],
            (Client::LmStudio, Scope::User) => vec![m.home.join(".lmstudio").join("mcp.json")],
            (Client::Cline, Scope::User) => {
                let mut v = vec![cline_file(m)];
                let legacy = cline_legacy_file(m);
                if legacy.is_file() {
                    v.push(legacy);
                }
                v
            }
            (Client::LmStudio | Client::Cline, Scope::Project) => return Err(no_scope()),
            (Client::AmazonQ, Scope::User) => vec![m.home.join(".aws").join("amazonq").join("mcp.json")],
            (Client::AmazonQ, Scope::Project) => vec![m.project.join(".amazonq").join("mcp.json")],
            (Client::Zed, Scope::User) => vec![m.zed_dir().join("settings.json")],
            (Client::Zed, Scope::Project) => vec![m.project.join(".zed").join("settings.json")],
            (Client::Goose, Scope::User) => vec![m.goose_dir().join("config.yaml")],
            // Goose reads extensions from its user config only (recipes aside).
            (Client::Goose, Scope::Project) => return Err(no_scope()),
            // The extension's globalStorage in VS Code (and Insiders, when installed).
            (Client::RooCode, Scope::User) => vscode_user_dirs(m)
                .into_iter()
                .map(|d| roo_dir(&d).join("settings").join("mcp_settings.json"))
                .collect(),
            (Client::RooCode, Scope::Project) => vec![m.project.join(".roo").join("mcp.json")],
            (Client::VisualStudio, _) if m.os != Os::Windows => {
                return Err(PathError::Unsupported(
                    "Visual Studio runs on Windows only (Visual Studio for Mac, retired, had no MCP support)".into(),
                ));
            }
            (Client::VisualStudio, Scope::User) => vec![m.home.join(".mcp.json")],
            // Visual Studio's own file for this solution (per user); not the
            // `.mcp.json` it also reads, which is Claude Code's project file.
            (Client::VisualStudio, Scope::Project) => vec![m.project.join(".vs").join("mcp.json")],
            (Client::Junie, Scope::User) => vec![m.home.join(".junie").join("mcp").join("mcp.json")],
            (Client::Junie, Scope::Project) => vec![m.project.join(".junie").join("mcp").join("mcp.json")],
            // Continue's user config lists its servers in a YAML sequence, which
            // the bridge's editors (one map of entries per file) do not edit.
            (Client::Continue, Scope::User) => {
                return Err(PathError::Unsupported(
                    "Continue keeps user-wide servers in a list in ~/.continue/config.yaml, which install does not \
                     edit; install it for this project with --scope project (.continue/mcpServers/mcp-bridge.json)"
                        .into(),
                ));
            }
            // A file of its own, in the Claude Desktop format Continue reads
            // from `.continue/mcpServers/`.
            (Client::Continue, Scope::Project) => vec![
                m.project
                    .join(".continue")
                    .join("mcpServers")
                    .join(format!("{}.json", super::DEFAULT_NAME)),
            ],
        })
    }

    /// Whether the IDE looks installed for this user (its settings directory
    /// exists), for `--all`.
    pub fn looks_installed(self, m: &Machine) -> bool {
        match self {
            Client::Cursor => m.home.join(".cursor").is_dir(),
            Client::VsCode => m.app_config().join("Code").is_dir() || m.app_config().join("Code - Insiders").is_dir(),
            Client::ClaudeDesktop => claude_desktop(m).is_ok_and(|p| p.parent().is_some_and(Path::is_dir)),
            Client::ClaudeCode => {
                let base = m.claude_config_dir.as_ref().unwrap_or(&m.home);
                base.join(".claude.json").is_file() || m.home.join(".claude").is_dir()
            }
            Client::Windsurf => m.home.join(".codeium").join("windsurf").is_dir(),
            Client::Codex => m.codex_home().is_dir(),
            Client::Gemini => m.gemini_dir().is_dir(),
            Client::Copilot => m.copilot_dir().is_dir(),
            Client::OpenCode => m.opencode_dir().is_dir(),
            Client::Kiro => m.home.join(".kiro").is_dir(),
            Client::AmazonQ => m.home.join(".aws").join("amazonq").is_dir(),
            Client::Zed => m.zed_dir().is_dir(),
            Client::Goose => m.goose_dir().is_dir(),
            Client::RooCode => vscode_user_dirs(m).iter().any(|d| roo_dir(d).is_dir()),
            // Visual Studio keeps per-user data in %LOCALAPPDATA%\Microsoft\VisualStudio.
            Client::VisualStudio => {
                m.os == Os::Windows
                    && m.local_appdata
                        .as_ref()
                        .is_some_and(|l| l.join("Microsoft").join("VisualStudio").is_dir())
            }
            Client::Junie => m.home.join(".junie").is_dir(),
            Client::Continue => m.home.join(".continue").is_dir(),
            Client::LmStudio => m.home.join(".lmstudio").is_dir(),
            Client::Cline => {
                cline_file(m).parent().and_then(Path::parent).is_some_and(Path::is_dir)
                    || cline_legacy_file(m)
                        .parent()
                        .and_then(Path::parent)
                        .is_some_and(Path::is_dir)
            }
        }
    }

    /// The entry that launches `command` with `args` (and `env`), in this
    /// IDE's shape.
    pub fn entry(self, command: &str, args: &[String], env: &serde_json::Map<String, Value>) -> Value {
        match self {
            Client::VsCode | Client::ClaudeCode | Client::VisualStudio => {
                json!({ "type": "stdio", "command": command, "args": args, "env": env })
            }
            // Roo's `timeout` (seconds, default 60) bounds each call, which may
            // include a first login. No `alwaysAllow`: approving tools is the user's.
            Client::RooCode => {
                json!({ "type": "stdio", "command": command, "args": args, "env": env, "timeout": ROO_TIMEOUT_SEC })
            }
            // Codex gives a server 10 s to start by default; the bridge may wait
            // longer for upstream logins. No empty `[….env]` table.
            Client::Codex => {
                let mut e =
                    json!({ "command": command, "args": args, "startup_timeout_sec": CODEX_STARTUP_TIMEOUT_SEC });
                if !env.is_empty() {
                    e["env"] = Value::Object(env.clone());
                }
                e
            }
            // Gemini's `timeout` bounds every request, tool calls included
            // (default 10 minutes): written so that a first start with a
            // browser login fits, not shortened. No `"trust": true`: that
            // would skip Gemini's confirmation for every tool of every server.
            Client::Gemini => {
                json!({ "command": command, "args": args, "env": env, "timeout": GEMINI_TIMEOUT_MS })
            }
            // Without `tools`, Copilot CLI offers none of the server's tools.
            Client::Copilot => {
                json!({ "type": "local", "command": command, "args": args, "env": env, "tools": ["*"] })
            }
            // One `command` array, program first; `environment`, not `env`.
            Client::OpenCode => {
                let mut line = vec![command.to_owned()];
                line.extend(args.iter().cloned());
                json!({ "type": "local", "command": line, "enabled": true, "environment": env })
            }
            // Goose's stdio extension: `name`, `cmd` and `args` are required,
            // `enabled` is the entry's own; its `timeout` (seconds, default
            // 300) bounds each call, which may include a first login.
            Client::Goose => json!({
                "enabled": true,
                "type": "stdio",
                "name": super::DEFAULT_NAME,
                "description": "",
                "cmd": command,
                "args": args,
                "envs": env,
                "timeout": GOOSE_TIMEOUT_SEC,
            }),
            _ => json!({ "command": command, "args": args, "env": env }),
        }
    }

    /// What the user does for the IDE to pick the change up.
    pub fn reload_hint(self) -> &'static str {
        match self {
            Client::Cursor => "reload Cursor's MCP settings (or restart Cursor)",
            Client::VsCode => "VS Code picks it up; run \"MCP: List Servers\" to start it",
            Client::ClaudeDesktop => "quit Claude Desktop fully (tray or menu bar) and start it again",
            Client::ClaudeCode => "start a new Claude Code session (`/mcp` shows it)",
            Client::Windsurf => "press refresh in Windsurf's MCP panel",
            Client::Codex => {
                "start a new Codex session (`codex mcp list` shows it; a project's .codex/config.toml is read only \
                 in a trusted project)"
            }
            Client::Gemini => "start a new Gemini CLI session in a trusted folder (`gemini mcp list` shows it)",
            Client::Copilot => "start a new Copilot CLI session (`/mcp show` lists it)",
            Client::OpenCode => "start opencode again (`opencode mcp list` shows it)",
            Client::Kiro => "Kiro reconnects when the file is saved (see the MCP servers panel)",
            Client::LmStudio => "LM Studio loads it from mcp.json (Program tab, Install > Edit mcp.json shows it)",
            Client::Cline => "Cline reloads it (MCP Servers > Installed in Cline's panel)",
            Client::AmazonQ => "start a new `q chat` session (`/mcp` shows it)",
            Client::Zed => "Zed reloads settings.json when it is saved (the Agent panel's settings list the server)",
            Client::Goose => "start a new goose session (`goose info -v` shows the config)",
            Client::RooCode => "Roo Code reloads it when the file is saved (MCP Servers in Roo's panel lists it)",
            Client::VisualStudio => {
                "Visual Studio reloads it when the file is saved; enable the bridge's tools in the Copilot Chat tool \
                 picker (agent mode): they are off by default"
            }
            Client::Junie => "restart Junie (Settings > Tools > Junie > MCP Settings lists it)",
            Client::Continue => "Continue picks it up from .continue/mcpServers (its tools work in agent mode)",
        }
    }

    /// What the person must know beyond the file, for `install` at `scope`.
    pub fn note(self, scope: Scope, m: &Machine) -> Option<String> {
        match (self, scope) {
            (Client::Gemini, _) => {
                let rules = m.gemini_dir().join("trustedFolders.json");
                let (folder, key) = match scope {
                    Scope::User => ("each folder you run gemini in".to_owned(), "<folder>".to_owned()),
                    Scope::Project => {
                        let text = std::fs::read_to_string(&rules).unwrap_or_default();
                        match gemini_trusts(&text, &m.project) {
                            Some(true) => return None,
                            Some(false) => {
                                return Some(format!(
                                    "note: {} marks {} as not trusted, so Gemini CLI will not start the bridge \
                                     there until you trust the folder (/permissions in gemini)",
                                    rules.display(),
                                    m.project.display()
                                ));
                            }
                            None => (m.project.display().to_string(), m.project.display().to_string()),
                        }
                    }
                };
                Some(format!(
                    "note: Gemini CLI starts a local MCP server only in a trusted folder. The bridge does not trust \
                     folders for you (trust also lets a folder's own settings, .env and hooks take effect): trust \
                     {folder} when gemini asks (or with /permissions), or add \"{key}\": \"TRUST_FOLDER\" to {}",
                    rules.display()
                ))
            }
            (Client::Copilot, Scope::Project) => Some(format!(
                "note: Copilot CLI reads a project's .github/mcp.json only once you have trusted the folder: when \
                 copilot asks, or under \"trusted_folders\" in {}",
                m.copilot_dir().join("config.json").display()
            )),
            (Client::VisualStudio, Scope::Project) => Some(
                "note: .vs/mcp.json is Visual Studio's per-user file for this solution (.vs is usually not under \
                 version control); Visual Studio also reads .vscode/mcp.json, so `mcp-bridge install vscode --scope \
                 project` gives the whole team the entry"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

/// VS Code's user directories (`<app config>/Code/User`, and `Code -
/// Insiders/User` when Insiders is installed), the first the primary one.
fn vscode_user_dirs(m: &Machine) -> Vec<PathBuf> {
    let mut v = vec![m.app_config().join("Code").join("User")];
    let insiders = m.app_config().join("Code - Insiders");
    if insiders.is_dir() {
        v.push(insiders.join("User"));
    }
    v
}

/// Roo Code's globalStorage in a VS Code user directory (VS Code lowercases
/// the extension id `RooVeterinaryInc.roo-cline`).
fn roo_dir(vscode_user: &Path) -> PathBuf {
    vscode_user.join("globalStorage").join("rooveterinaryinc.roo-cline")
}

/// Roo Code's `timeout` (seconds; its default is 60) for the bridge's entry:
/// long enough for a call that waits for an upstream login.
pub const ROO_TIMEOUT_SEC: u64 = 300;

const CLINE_FILE: &str = "cline_mcp_settings.json";

/// The file Cline 4.x (extension, CLI and JetBrains) shares:
/// `~/.cline/data/settings/cline_mcp_settings.json`, moved by its variables.
fn cline_file(m: &Machine) -> PathBuf {
    let [file, data, dir] = &m.cline_env;
    if let Some(file) = file {
        return file.clone();
    }
    let data = data
        .clone()
        .unwrap_or_else(|| dir.clone().unwrap_or_else(|| m.home.join(".cline")).join("data"));
    data.join("settings").join(CLINE_FILE)
}

/// Where the VS Code extension before 4.0 kept it (stable VS Code's
/// globalStorage); 4.x migrates it on its first start.
fn cline_legacy_file(m: &Machine) -> PathBuf {
    m.app_config()
        .join("Code")
        .join("User")
        .join("globalStorage")
        .join("saoudrizwan.claude-dev")
        .join("settings")
        .join(CLINE_FILE)
}

/// Whether Gemini CLI's trusted-folders rules (`trustedFolders.json`: a map
/// of absolute path to `TRUST_FOLDER`, `TRUST_PARENT` or `DO_NOT_TRUST`) trust
/// `folder`, as Gemini decides it: the longest matching rule wins, and
/// `TRUST_PARENT` stands for the rule path's parent. `None` when no rule
/// matches or the text does not parse (Gemini then asks).
pub fn gemini_trusts(rules: &str, folder: &Path) -> Option<bool> {
    let root = jsonc_parser::cst::CstRootNode::parse(rules, &Default::default()).ok()?;
    let Some(Value::Object(rules)) = root.value()?.to_serde_value() else {
        return None;
    };
    let mut best: Option<(usize, &str)> = None;
    for (rule, level) in &rules {
        let level = level.as_str()?;
        let rule_path = Path::new(rule);
        let covers = match level {
            "TRUST_PARENT" => rule_path.parent().is_some_and(|p| folder.starts_with(p)),
            "TRUST_FOLDER" | "DO_NOT_TRUST" => folder.starts_with(rule_path),
            _ => return None,
        };
        if covers && best.is_none_or(|(len, _)| rule.len() > len) {
            best = Some((rule.len(), level));
        }
    }
    best.map(|(_, level)| level != "DO_NOT_TRUST")
}

/// Gemini CLI's request timeout for the bridge's entry, in milliseconds.
pub const GEMINI_TIMEOUT_MS: u64 = 600_000;

/// opencode's file in `dir`: `opencode.jsonc` when that is the one there,
/// else `opencode.json` (opencode reads both, JSONC in either).
fn opencode_file(dir: &Path) -> PathBuf {
    let jsonc = dir.join("opencode.jsonc");
    if jsonc.is_file() && !dir.join("opencode.json").is_file() {
        jsonc
    } else {
        dir.join("opencode.json")
    }
}

/// Goose's `timeout` (seconds) for the bridge's extension: Goose's own
/// default, long enough for a call that waits for an upstream login.
pub const GOOSE_TIMEOUT_SEC: u64 = 300;

/// Codex's `startup_timeout_sec` for the bridge's entry (Codex's default is 10).
pub const CODEX_STARTUP_TIMEOUT_SEC: u64 = 30;

/// Claude Desktop's file: on Windows the MSIX package's virtualised path when
/// the app is packaged (the classic path is then silently ignored), preferring
/// a package that already has a config; otherwise the classic location.
fn claude_desktop(m: &Machine) -> Result<PathBuf, PathError> {
    const FILE: &str = "claude_desktop_config.json";
    match m.os {
        Os::MacOs => Ok(m.app_config().join("Claude").join(FILE)),
        Os::Windows => {
            let msix = m
                .claude_msix
                .iter()
                .find(|(_, has)| *has)
                .or_else(|| m.claude_msix.first())
                .map(|(dir, _)| dir.join(FILE));
            Ok(msix.unwrap_or_else(|| m.appdata().join("Claude").join(FILE)))
        }
        Os::Linux => {
            // No official Linux app; community builds use this path.
            let dir = m.app_config().join("Claude");
            if dir.is_dir() {
                Ok(dir.join(FILE))
            } else {
                Err(PathError::Unsupported(
                    "Claude Desktop has no official Linux version (no ~/.config/Claude found)".into(),
                ))
            }
        }
    }
}

/// The bridge binary as IDEs must launch it: an absolute path (GUI-launched
/// IDEs do not get the shell's PATH), without Windows' `\\?\` prefix, which
/// other programs may not accept.
pub fn binary_path(given: Option<&Path>) -> std::io::Result<PathBuf> {
    let p = match given {
        Some(p) => std::path::absolute(p)?,
        None => std::env::current_exe()?,
    };
    Ok(strip_verbatim(p))
}

/// The file an entry's `command` launches: a path as it is, a bare name (a
/// project entry's `mcp-bridge`) through `PATH` as a spawned process finds it
/// (on Windows also with `.exe`). `None` when there is no such file.
pub fn find_command(command: &str) -> Option<PathBuf> {
    if command.is_empty() {
        return None;
    }
    if command.contains(['/', '\\']) {
        let p = PathBuf::from(command);
        return p.is_file().then_some(p);
    }
    let names: Vec<String> = if cfg!(windows) && !command.to_ascii_lowercase().ends_with(".exe") {
        vec![command.to_owned(), format!("{command}.exe")]
    } else {
        vec![command.to_owned()]
    };
    std::env::split_paths(&std::env::var_os("PATH")?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

fn strip_verbatim(p: PathBuf) -> PathBuf {
    let s = p.to_string_lossy();
    if let Some(rest) = s.strip_prefix(r"\\?\UNC\") {
        return PathBuf::from(format!(r"\\{rest}"));
    }
    match s.strip_prefix(r"\\?\") {
        Some(rest) => PathBuf::from(rest),
        None => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(os: Os) -> Machine {
        let (home, appdata, local) = match os {
            Os::Windows => (
                PathBuf::from(r"C:\Users\Ann Lee"),
                Some(PathBuf::from(r"C:\Users\Ann Lee\AppData\Roaming")),
                Some(PathBuf::from(r"C:\Users\Ann Lee\AppData\Local")),
            ),
            Os::MacOs => (PathBuf::from("/Users/ann"), None, None),
            Os::Linux => (PathBuf::from("/home/ann"), None, None),
        };
        Machine {
            os,
            home,
            appdata,
            local_appdata: local,
            xdg_config: None,
            claude_config_dir: None,
            codex_home: None,
            gemini_cli_home: None,
            copilot_home: None,
            cline_env: [None, None, None],
            goose_path_root: None,
            project: PathBuf::from("/work/proj"),
            claude_msix: Vec::new(),
        }
    }

    fn one(c: Client, s: Scope, m: &Machine) -> PathBuf {
        c.paths(s, m).unwrap().remove(0)
    }

    #[test]
    fn user_paths_per_os() {
        let (l, mac, w) = (machine(Os::Linux), machine(Os::MacOs), machine(Os::Windows));
        assert_eq!(
            one(Client::Cursor, Scope::User, &l),
            Path::new("/home/ann/.cursor/mcp.json")
        );
        assert_eq!(
            one(Client::VsCode, Scope::User, &l),
            Path::new("/home/ann/.config/Code/User/mcp.json")
        );
        assert_eq!(
            one(Client::VsCode, Scope::User, &mac),
            Path::new("/Users/ann/Library/Application Support/Code/User/mcp.json")
        );
        assert_eq!(
            one(Client::VsCode, Scope::User, &w),
            Path::new(r"C:\Users\Ann Lee\AppData\Roaming")
                .join("Code")
                .join("User")
                .join("mcp.json")
        );
        assert_eq!(
            one(Client::ClaudeDesktop, Scope::User, &mac),
            Path::new("/Users/ann/Library/Application Support/Claude/claude_desktop_config.json")
        );
        assert_eq!(
            one(Client::ClaudeDesktop, Scope::User, &w),
            Path::new(r"C:\Users\Ann Lee\AppData\Roaming")
                .join("Claude")
                .join("claude_desktop_config.json")
        );
        assert_eq!(
            one(Client::ClaudeCode, Scope::User, &l),
            Path::new("/home/ann/.claude.json")
        );
        assert_eq!(
            one(Client::Windsurf, Scope::User, &w),
            Path::new(r"C:\Users\Ann Lee")
                .join(".codeium")
                .join("windsurf")
                .join("mcp_config.json")
        );
        let mut x = machine(Os::Linux);
        x.xdg_config = Some("/cfg".into());
        x.claude_config_dir = Some("/cc".into());
        assert_eq!(
            one(Client::VsCode, Scope::User, &x),
            Path::new("/cfg/Code/User/mcp.json")
        );
        assert_eq!(one(Client::ClaudeCode, Scope::User, &x), Path::new("/cc/.claude.json"));
    }

    #[test]
    fn project_paths_and_scopes() {
        let m = machine(Os::Linux);
        assert_eq!(
            one(Client::Cursor, Scope::Project, &m),
            Path::new("/work/proj/.cursor/mcp.json")
        );
        assert_eq!(
            one(Client::VsCode, Scope::Project, &m),
            Path::new("/work/proj/.vscode/mcp.json")
        );
        assert_eq!(
            one(Client::ClaudeCode, Scope::Project, &m),
            Path::new("/work/proj/.mcp.json")
        );
        assert!(matches!(
            Client::Windsurf.paths(Scope::Project, &m),
            Err(PathError::NoScope { .. })
        ));
        assert!(matches!(
            Client::ClaudeDesktop.paths(Scope::Project, &m),
            Err(PathError::NoScope { .. })
        ));
    }

    /// MSIX first, preferring a package that already has a config; the classic
    /// path only without a package.
    #[test]
    fn claude_desktop_windows_store_location() {
        let mut w = machine(Os::Windows);
        let pkg = |n: &str| {
            PathBuf::from(r"C:\Users\Ann Lee\AppData\Local\Packages")
                .join(n)
                .join("LocalCache")
                .join("Roaming")
                .join("Claude")
        };
        w.claude_msix = vec![(pkg("Claude_aaa"), false), (pkg("Claude_pzs8sxrjxfjjc"), true)];
        assert_eq!(
            one(Client::ClaudeDesktop, Scope::User, &w),
            pkg("Claude_pzs8sxrjxfjjc").join("claude_desktop_config.json")
        );
        w.claude_msix = vec![(pkg("Claude_aaa"), false)];
        assert_eq!(
            one(Client::ClaudeDesktop, Scope::User, &w),
            pkg("Claude_aaa").join("claude_desktop_config.json")
        );
        // No official Linux app.
        assert!(Client::ClaudeDesktop.paths(Scope::User, &machine(Os::Linux)).is_err());
    }

    #[test]
    fn entries_have_each_clients_shape() {
        let args = vec!["serve".to_owned()];
        let env = serde_json::Map::new();
        assert_eq!(
            Client::VsCode.entry("/bin/mcp-bridge", &args, &env),
            json!({"type": "stdio", "command": "/bin/mcp-bridge", "args": ["serve"], "env": {}})
        );
        assert_eq!(
            Client::Cursor.entry("/bin/mcp-bridge", &args, &env),
            json!({"command": "/bin/mcp-bridge", "args": ["serve"], "env": {}})
        );
        assert_eq!(Client::VsCode.top_key(), "servers");
        assert_eq!(Client::Windsurf.top_key(), "mcpServers");
    }

    /// Codex: `$CODEX_HOME/config.toml`, else `~/.codex/config.toml` on every
    /// OS; a project's `.codex/config.toml`; TOML under `mcp_servers`; an entry
    /// with a startup timeout and `env` only when there is one.
    #[test]
    fn codex_paths_place_and_entry() {
        let (l, mac, w) = (machine(Os::Linux), machine(Os::MacOs), machine(Os::Windows));
        assert_eq!(
            one(Client::Codex, Scope::User, &l),
            Path::new("/home/ann/.codex/config.toml")
        );
        assert_eq!(
            one(Client::Codex, Scope::User, &mac),
            Path::new("/Users/ann/.codex/config.toml")
        );
        assert_eq!(
            one(Client::Codex, Scope::User, &w),
            Path::new(r"C:\Users\Ann Lee").join(".codex").join("config.toml")
        );
        let mut x = machine(Os::Linux);
        x.codex_home = Some("/srv/codex".into());
        assert_eq!(one(Client::Codex, Scope::User, &x), Path::new("/srv/codex/config.toml"));
        assert_eq!(
            one(Client::Codex, Scope::Project, &l),
            Path::new("/work/proj/.codex/config.toml")
        );
        assert_eq!(
            Client::Codex.place(),
            Place {
                format: Format::Toml,
                key: "mcp_servers"
            }
        );
        assert_eq!(Client::Cursor.place().format, Format::Json);

        let args = vec!["serve".to_owned()];
        let mut env = serde_json::Map::new();
        assert_eq!(
            Client::Codex.entry("/bin/mcp-bridge", &args, &env),
            json!({"command": "/bin/mcp-bridge", "args": ["serve"], "startup_timeout_sec": 30})
        );
        env.insert("MCP_BRIDGE_HOME".into(), json!("/b"));
        assert_eq!(
            Client::Codex.entry("/bin/mcp-bridge", &args, &env),
            json!({"command": "/bin/mcp-bridge", "args": ["serve"], "startup_timeout_sec": 30,
                   "env": {"MCP_BRIDGE_HOME": "/b"}})
        );
    }

    /// Gemini CLI, Copilot CLI and opencode: the same file on every OS, under
    /// the home directory or the variable that moves it.
    #[test]
    fn terminal_agent_paths_per_os() {
        let (l, mac, w) = (machine(Os::Linux), machine(Os::MacOs), machine(Os::Windows));
        let win_home = Path::new(r"C:\Users\Ann Lee");
        assert_eq!(
            one(Client::Gemini, Scope::User, &l),
            Path::new("/home/ann/.gemini/settings.json")
        );
        assert_eq!(
            one(Client::Gemini, Scope::User, &mac),
            Path::new("/Users/ann/.gemini/settings.json")
        );
        assert_eq!(
            one(Client::Gemini, Scope::User, &w),
            win_home.join(".gemini").join("settings.json")
        );
        assert_eq!(
            one(Client::Copilot, Scope::User, &l),
            Path::new("/home/ann/.copilot/mcp-config.json")
        );
        assert_eq!(
            one(Client::Copilot, Scope::User, &mac),
            Path::new("/Users/ann/.copilot/mcp-config.json")
        );
        assert_eq!(
            one(Client::Copilot, Scope::User, &w),
            win_home.join(".copilot").join("mcp-config.json")
        );
        // opencode follows XDG on every OS, not Application Support / %APPDATA%.
        assert_eq!(
            one(Client::OpenCode, Scope::User, &l),
            Path::new("/home/ann/.config/opencode/opencode.json")
        );
        assert_eq!(
            one(Client::OpenCode, Scope::User, &mac),
            Path::new("/Users/ann/.config/opencode/opencode.json")
        );
        assert_eq!(
            one(Client::OpenCode, Scope::User, &w),
            win_home.join(".config").join("opencode").join("opencode.json")
        );
        let mut x = machine(Os::MacOs);
        x.gemini_cli_home = Some("/g".into());
        x.copilot_home = Some("/c".into());
        x.xdg_config = Some("/x".into());
        assert_eq!(
            one(Client::Gemini, Scope::User, &x),
            Path::new("/g/.gemini/settings.json")
        );
        assert_eq!(one(Client::Copilot, Scope::User, &x), Path::new("/c/mcp-config.json"));
        assert_eq!(
            one(Client::OpenCode, Scope::User, &x),
            Path::new("/x/opencode/opencode.json")
        );
    }

    #[test]
    fn terminal_agent_project_paths() {
        let m = machine(Os::Linux);
        assert_eq!(
            one(Client::Gemini, Scope::Project, &m),
            Path::new("/work/proj/.gemini/settings.json")
        );
        // Not Claude Code's .mcp.json, whose entry has another shape.
        assert_eq!(
            one(Client::Copilot, Scope::Project, &m),
            Path::new("/work/proj/.github/mcp.json")
        );
        assert_eq!(
            one(Client::OpenCode, Scope::Project, &m),
            Path::new("/work/proj/opencode.json")
        );
    }

    /// opencode.jsonc when it is the only file there, else opencode.json.
    #[test]
    fn opencode_prefers_the_file_that_exists() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(opencode_file(dir.path()), dir.path().join("opencode.json"));
        std::fs::write(dir.path().join("opencode.jsonc"), "{}").unwrap();
        assert_eq!(opencode_file(dir.path()), dir.path().join("opencode.jsonc"));
        std::fs::write(dir.path().join("opencode.json"), "{}").unwrap();
        assert_eq!(opencode_file(dir.path()), dir.path().join("opencode.json"));
    }

    #[test]
    fn terminal_agent_entries() {
        let args = vec!["serve".to_owned(), "--config".to_owned(), "/c.toml".to_owned()];
        let mut env = serde_json::Map::new();
        env.insert("MCP_BRIDGE_HOME".into(), json!("/h"));
        assert_eq!(
            Client::Gemini.entry("/bin/mcp-bridge", &args, &env),
            json!({"command": "/bin/mcp-bridge", "args": ["serve", "--config", "/c.toml"],
                   "env": {"MCP_BRIDGE_HOME": "/h"}, "timeout": 600_000})
        );
        assert_eq!(
            Client::Copilot.entry("/bin/mcp-bridge", &args, &env),
            json!({"type": "local", "command": "/bin/mcp-bridge", "args": ["serve", "--config", "/c.toml"],
                   "env": {"MCP_BRIDGE_HOME": "/h"}, "tools": ["*"]})
        );
        let oc = Client::OpenCode.entry("/bin/mcp-bridge", &args, &env);
        assert_eq!(
            oc,
            json!({"type": "local", "command": ["/bin/mcp-bridge", "serve", "--config", "/c.toml"],
                   "enabled": true, "environment": {"MCP_BRIDGE_HOME": "/h"}})
        );
        assert_eq!(super::super::edit::entry_command(&oc), Some("/bin/mcp-bridge"));
        assert_eq!(Client::OpenCode.top_key(), "mcp");
        assert_eq!(Client::Gemini.top_key(), "mcpServers");
        assert_eq!(Client::Copilot.top_key(), "mcpServers");
    }

    /// Gemini's own rule: the longest matching path wins; TRUST_PARENT trusts
    /// the rule path's parent and all below it.
    #[test]
    fn gemini_trust_rules() {
        let p = Path::new("/work/proj");
        assert_eq!(gemini_trusts("", p), None);
        assert_eq!(gemini_trusts("{}", p), None);
        assert_eq!(gemini_trusts("not json", p), None);
        assert_eq!(gemini_trusts(r#"{"/work/proj": "TRUST_FOLDER"}"#, p), Some(true));
        assert_eq!(gemini_trusts(r#"{"/work": "TRUST_FOLDER"}"#, p), Some(true));
        assert_eq!(gemini_trusts(r#"{"/work/projector": "TRUST_FOLDER"}"#, p), None);
        assert_eq!(gemini_trusts(r#"{"/work/other": "TRUST_PARENT"}"#, p), Some(true));
        assert_eq!(gemini_trusts(r#"{"/work/proj/sub": "TRUST_FOLDER"}"#, p), None);
        assert_eq!(
            gemini_trusts(
                "{\n  // Gemini strips comments\n  \"/work\": \"TRUST_FOLDER\",\n  \"/work/proj\": \"DO_NOT_TRUST\"\n}",
                p
            ),
            Some(false)
        );
        assert_eq!(
            gemini_trusts(r#"{"/work": "DO_NOT_TRUST", "/work/proj": "TRUST_FOLDER"}"#, p),
            Some(true)
        );
        // An unknown level: Gemini refuses the whole file.
        assert_eq!(gemini_trusts(r#"{"/work/proj": "YES"}"#, p), None);
    }

    #[test]
    fn kiro_lm_studio_cline_paths() {
        let (l, mac, w) = (machine(Os::Linux), machine(Os::MacOs), machine(Os::Windows));
        let win_home = Path::new(r"C:\Users\Ann Lee");
        assert_eq!(
            one(Client::Kiro, Scope::User, &mac),
            Path::new("/Users/ann/.kiro/settings/mcp.json")
        );
        assert_eq!(
            one(Client::Kiro, Scope::User, &w),
            win_home.join(".kiro").join("settings").join("mcp.json")
        );
        assert_eq!(
            one(Client::Kiro, Scope::Project, &l),
            Path::new("/work/proj/.kiro/settings/mcp.json")
        );
        assert_eq!(
            one(Client::LmStudio, Scope::User, &l),
            Path::new("/home/ann/.lmstudio/mcp.json")
        );
        assert_eq!(
            one(Client::LmStudio, Scope::User, &w),
            win_home.join(".lmstudio").join("mcp.json")
        );
        assert_eq!(
            one(Client::Cline, Scope::User, &l),
            Path::new("/home/ann/.cline/data/settings/cline_mcp_settings.json")
        );
        assert_eq!(
            one(Client::Cline, Scope::User, &w),
            win_home
                .join(".cline")
                .join("data")
                .join("settings")
                .join("cline_mcp_settings.json")
        );
        let cline = "saoudrizwan.claude-dev/settings/cline_mcp_settings.json";
        assert_eq!(
            cline_legacy_file(&l),
            Path::new("/home/ann/.config/Code/User/globalStorage").join(cline)
        );
        assert_eq!(
            cline_legacy_file(&mac),
            Path::new("/Users/ann/Library/Application Support/Code/User/globalStorage").join(cline)
        );
        let mut x = machine(Os::Linux);
        x.cline_env = [None, None, Some("/cd".into())];
        assert_eq!(
            one(Client::Cline, Scope::User, &x),
            Path::new("/cd/data/settings/cline_mcp_settings.json")
        );
        x.cline_env[1] = Some("/data".into());
        assert_eq!(
            one(Client::Cline, Scope::User, &x),
            Path::new("/data/settings/cline_mcp_settings.json")
        );
        x.cline_env[0] = Some("/f.json".into());
        assert_eq!(one(Client::Cline, Scope::User, &x), Path::new("/f.json"));
        for c in [Client::LmStudio, Client::Cline] {
            assert!(matches!(c.paths(Scope::Project, &l), Err(PathError::NoScope { .. })));
        }
        assert_eq!(
            one(Client::AmazonQ, Scope::User, &l),
            Path::new("/home/ann/.aws/amazonq/mcp.json")
        );
        assert_eq!(
            one(Client::AmazonQ, Scope::User, &mac),
            Path::new("/Users/ann/.aws/amazonq/mcp.json")
        );
        assert_eq!(
            one(Client::AmazonQ, Scope::Project, &l),
            Path::new("/work/proj/.amazonq/mcp.json")
        );
        for c in [Client::Kiro, Client::LmStudio, Client::Cline, Client::AmazonQ] {
            assert_eq!(
                c.entry("/b", &["serve".to_owned()], &serde_json::Map::new()),
                json!({"command": "/b", "args": ["serve"], "env": {}})
            );
            assert_eq!(c.top_key(), "mcpServers");
        }
    }

    /// Goose: `config.yaml` under `~/.config/goose` (Linux, macOS, following
    /// `$XDG_CONFIG_HOME`), `%APPDATA%\\Block\\goose\\config` (Windows), or
    /// `$GOOSE_PATH_ROOT/config`; no project scope; YAML under `extensions`;
    /// a stdio extension entry.
    #[test]
    fn goose_paths_place_and_entry() {
        let one = |m: &Machine| Client::Goose.paths(Scope::User, m).unwrap().remove(0);
        assert_eq!(
            one(&machine(Os::Linux)),
            Path::new("/home/ann/.config/goose/config.yaml")
        );
        assert_eq!(
            one(&machine(Os::MacOs)),
            Path::new("/Users/ann/.config/goose/config.yaml")
        );
        let w = machine(Os::Windows);
        assert_eq!(
            one(&w),
            w.appdata
                .clone()
                .unwrap()
                .join("Block")
                .join("goose")
                .join("config")
                .join("config.yaml")
        );
        let mut x = machine(Os::Linux);
        x.xdg_config = Some("/xdg".into());
        assert_eq!(one(&x), Path::new("/xdg/goose/config.yaml"));
        x.goose_path_root = Some("/srv/goose".into());
        assert_eq!(one(&x), Path::new("/srv/goose/config/config.yaml"));
        assert_eq!(
            Client::Goose.paths(Scope::Project, &machine(Os::Linux)),
            Err(PathError::NoScope {
                client: "Goose",
                scope: "project"
            })
        );
        assert_eq!(
            Client::Goose.place(),
            Place {
                format: Format::Yaml,
                key: "extensions"
            }
        );
        let mut env = serde_json::Map::new();
        env.insert("MCP_BRIDGE_HOME".into(), json!("/b"));
        assert_eq!(
            Client::Goose.entry("/bin/mcp-bridge", &["serve".to_owned()], &env),
            json!({
                "enabled": true, "type": "stdio", "name": "mcp-bridge", "description": "",
                "cmd": "/bin/mcp-bridge", "args": ["serve"], "envs": {"MCP_BRIDGE_HOME": "/b"},
                "timeout": 300,
            })
        );
        assert_eq!(
            crate::install::edit::entry_command(&Client::Goose.entry("/b", &[], &env)),
            Some("/b")
        );
    }

    /// Zed: `settings.json` under `~/.config/zed` (Linux, macOS) or
    /// `%APPDATA%\\Zed` (Windows), the project's `.zed/settings.json`; servers
    /// under `context_servers` in the plain shape.
    #[test]
    fn zed_paths_place_and_entry() {
        let one = |scope, m: &Machine| Client::Zed.paths(scope, m).unwrap().remove(0);
        assert_eq!(
            one(Scope::User, &machine(Os::Linux)),
            Path::new("/home/ann/.config/zed/settings.json")
        );
        assert_eq!(
            one(Scope::User, &machine(Os::MacOs)),
            Path::new("/Users/ann/.config/zed/settings.json")
        );
        assert_eq!(
            one(Scope::User, &machine(Os::Windows)),
            Path::new(r"C:\Users\Ann Lee\AppData\Roaming")
                .join("Zed")
                .join("settings.json")
        );
        assert_eq!(
            one(Scope::Project, &machine(Os::Linux)),
            Path::new("/work/proj/.zed/settings.json")
        );
        assert_eq!(
            Client::Zed.place(),
            Place {
                format: Format::Json,
                key: "context_servers"
            }
        );
        assert_eq!(
            Client::Zed.entry("/b", &["serve".to_owned()], &serde_json::Map::new()),
            json!({"command": "/b", "args": ["serve"], "env": {}})
        );
    }

    /// Gemini's trust is the person's decision: a note names the folder and the
    /// file, at both scopes.
    #[test]
    fn gemini_trust_is_a_note() {
        let m = machine(Os::Linux);
        let project = Client::Gemini.note(Scope::Project, &m).unwrap();
        assert!(project.contains("/work/proj"), "{project}");
        assert!(project.contains("/home/ann/.gemini/trustedFolders.json"), "{project}");
        assert!(project.contains("TRUST_FOLDER"), "{project}");
        let user = Client::Gemini.note(Scope::User, &m).unwrap();
        assert!(user.contains("each folder"), "{user}");
        let copilot = Client::Copilot.note(Scope::Project, &m).unwrap();
        assert!(copilot.contains("/home/ann/.copilot/config.json"), "{copilot}");
        assert_eq!(Client::Copilot.note(Scope::User, &m), None);
        assert_eq!(Client::OpenCode.note(Scope::User, &m), None);
    }

    /// Roo Code: its file in the extension's globalStorage under VS Code's
    /// user directory on each OS (Insiders too once installed), the project's
    /// `.roo/mcp.json`; a stdio entry with a timeout, no `alwaysAllow`.
    #[test]
    fn roo_code_paths_place_and_entry() {
        let roo = "globalStorage/rooveterinaryinc.roo-cline/settings/mcp_settings.json";
        assert_eq!(
            Client::RooCode.paths(Scope::User, &machine(Os::Linux)).unwrap(),
            [Path::new("/home/ann/.config/Code/User").join(roo)]
        );
        assert_eq!(
            one(Client::RooCode, Scope::User, &machine(Os::MacOs)),
            Path::new("/Users/ann/Library/Application Support/Code/User").join(roo)
        );
        assert_eq!(
            one(Client::RooCode, Scope::User, &machine(Os::Windows)),
            Path::new(r"C:\Users\Ann Lee\AppData\Roaming")
                .join("Code")
                .join("User")
                .join("globalStorage")
                .join("rooveterinaryinc.roo-cline")
                .join("settings")
                .join("mcp_settings.json")
        );
        let mut x = machine(Os::Linux);
        x.xdg_config = Some("/xdg".into());
        assert_eq!(
            one(Client::RooCode, Scope::User, &x),
            Path::new("/xdg/Code/User").join(roo)
        );
        let dir = tempfile::tempdir().unwrap();
        x.xdg_config = Some(dir.path().to_path_buf());
        assert!(!Client::RooCode.looks_installed(&x));
        std::fs::create_dir_all(
            dir.path()
                .join("Code - Insiders/User/globalStorage/rooveterinaryinc.roo-cline"),
        )
        .unwrap();
        assert_eq!(
            Client::RooCode.paths(Scope::User, &x).unwrap(),
            [
                dir.path().join("Code/User").join(roo),
                dir.path().join("Code - Insiders/User").join(roo)
            ]
        );
        assert!(Client::RooCode.looks_installed(&x));
        assert_eq!(
            one(Client::RooCode, Scope::Project, &machine(Os::Linux)),
            Path::new("/work/proj/.roo/mcp.json")
        );
        assert_eq!(
            Client::RooCode.place(),
            Place {
                format: Format::Json,
                key: "mcpServers"
            }
        );
        let entry = Client::RooCode.entry("/b", &["serve".to_owned()], &serde_json::Map::new());
        assert_eq!(
            entry,
            json!({"type": "stdio", "command": "/b", "args": ["serve"], "env": {}, "timeout": 300})
        );
        assert!(entry.get("alwaysAllow").is_none());
    }

    /// Visual Studio: Windows only; `%USERPROFILE%\.mcp.json` and the
    /// solution's `.vs\mcp.json`, under `servers`, VS Code's entry shape.
    #[test]
    fn visual_studio_paths_place_and_entry() {
        let w = machine(Os::Windows);
        assert_eq!(
            one(Client::VisualStudio, Scope::User, &w),
            Path::new(r"C:\Users\Ann Lee").join(".mcp.json")
        );
        assert_eq!(
            one(Client::VisualStudio, Scope::Project, &w),
            Path::new("/work/proj").join(".vs").join("mcp.json")
        );
        for os in [Os::Linux, Os::MacOs] {
            for scope in [Scope::User, Scope::Project] {
                let e = Client::VisualStudio.paths(scope, &machine(os)).unwrap_err();
                assert!(e.to_string().contains("Windows only"), "{e}");
            }
            assert!(!Client::VisualStudio.looks_installed(&machine(os)));
        }
        assert!(!Client::VisualStudio.looks_installed(&w));
        let dir = tempfile::tempdir().unwrap();
        let mut x = machine(Os::Windows);
        x.local_appdata = Some(dir.path().to_path_buf());
        std::fs::create_dir_all(dir.path().join("Microsoft").join("VisualStudio")).unwrap();
        assert!(Client::VisualStudio.looks_installed(&x));
        assert_eq!(
            Client::VisualStudio.place(),
            Place {
                format: Format::Json,
                key: "servers"
            }
        );
        assert_eq!(
            Client::VisualStudio.entry("C:\\b.exe", &["serve".to_owned()], &serde_json::Map::new()),
            json!({"type": "stdio", "command": "C:\\b.exe", "args": ["serve"], "env": {}})
        );
        let note = Client::VisualStudio.note(Scope::Project, &w).unwrap();
        assert!(note.contains("install vscode --scope project"), "{note}");
        assert_eq!(Client::VisualStudio.note(Scope::User, &w), None);
    }

    /// Junie: `~/.junie/mcp/mcp.json` on every OS, the project's
    /// `.junie/mcp/mcp.json`; `mcpServers`, no `type`.
    #[test]
    fn junie_paths_place_and_entry() {
        assert_eq!(
            one(Client::Junie, Scope::User, &machine(Os::Linux)),
            Path::new("/home/ann/.junie/mcp/mcp.json")
        );
        assert_eq!(
            one(Client::Junie, Scope::User, &machine(Os::MacOs)),
            Path::new("/Users/ann/.junie/mcp/mcp.json")
        );
        assert_eq!(
            one(Client::Junie, Scope::User, &machine(Os::Windows)),
            Path::new(r"C:\Users\Ann Lee")
                .join(".junie")
                .join("mcp")
                .join("mcp.json")
        );
        assert_eq!(
            one(Client::Junie, Scope::Project, &machine(Os::Linux)),
            Path::new("/work/proj/.junie/mcp/mcp.json")
        );
        assert_eq!(
            Client::Junie.place(),
            Place {
                format: Format::Json,
                key: "mcpServers"
            }
        );
        assert_eq!(
            Client::Junie.entry("/b", &["serve".to_owned()], &serde_json::Map::new()),
            json!({"command": "/b", "args": ["serve"], "env": {}})
        );
    }

    /// Continue: project scope only, a file of the bridge's own in
    /// `.continue/mcpServers/`, Claude Desktop's shape.
    #[test]
    fn continue_paths_place_and_entry() {
        for os in [Os::Linux, Os::MacOs, Os::Windows] {
            assert_eq!(
                one(Client::Continue, Scope::Project, &machine(os)),
                Path::new("/work/proj")
                    .join(".continue")
                    .join("mcpServers")
                    .join("mcp-bridge.json")
            );
            let e = Client::Continue.paths(Scope::User, &machine(os)).unwrap_err();
            assert!(e.to_string().contains("--scope project"), "{e}");
        }
        assert_eq!(
            Client::Continue.place(),
            Place {
                format: Format::Json,
                key: "mcpServers"
            }
        );
        assert_eq!(
            Client::Continue.entry("mcp-bridge", &["serve".to_owned()], &serde_json::Map::new()),
            json!({"command": "mcp-bridge", "args": ["serve"], "env": {}})
        );
    }

    #[test]
    fn windows_verbatim_prefix_is_stripped() {
        assert_eq!(
            strip_verbatim(PathBuf::from(r"\\?\C:\Program Files\mcp-bridge.exe")),
            PathBuf::from(r"C:\Program Files\mcp-bridge.exe")
        );
        assert_eq!(
            strip_verbatim(PathBuf::from(r"\\?\UNC\server\share\b.exe")),
            PathBuf::from(r"\\server\share\b.exe")
        );
        assert_eq!(strip_verbatim(PathBuf::from("/usr/bin/x")), PathBuf::from("/usr/bin/x"));
    }
}
