//! What each known MCP client does to the tool names the bridge lists, keyed
//! on the `clientInfo.name` it sends in `initialize`.
//!
//! Clients do not show a server's tool name to the model as it is: Claude Code
//! says `mcp__<entry>__<tool>`, Gemini CLI `mcp_<entry>_<tool>`, Copilot CLI
//! `<entry>-<tool>`, and each holds the whole name to its model API's limit and
//! character set (Codex even turns `-` into `_`). A [`Profile`] records that
//! prefix, limit and character set, and the tool budget the client copes with;
//! `catalog::Naming::for_client` turns it into the names the catalog builds, so
//! the client never has to shorten or rewrite one. Names then stay unique and
//! route exactly, since the bridge's tables hold what the client will send back.
//!
//! `<entry>` is the name the bridge's entry has in the client's config. The
//! bridge cannot see it; [`ENTRY`] (what `install` writes by default) is
//! assumed.
//!
//! Pure data: no IO. Sources are in each profile's comment.

/// The entry name `install` gives the bridge in a client's config.
pub const ENTRY: &str = "mcp-bridge";

/// The characters a client keeps in a tool name; anything else it rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Charset {
    /// `[A-Za-z0-9_.-]`: what the bridge produces when no client rule applies.
    #[default]
    Portable,
    /// `[A-Za-z0-9_-]`: OpenAI-style and Anthropic function names.
    WordDash,
    /// `[A-Za-z0-9_]`: a `-` or `.` becomes `_` (Codex).
    Word,
}

impl Charset {
    pub fn allows(self, c: char) -> bool {
        c.is_ascii_alphanumeric()
            || c == '_'
            || match self {
                Charset::Portable => c == '-' || c == '.',
                Charset::WordDash => c == '-',
                Charset::Word => false,
            }
    }
}

/// One client's handling of tool names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// Who this is, for logs.
    pub client: &'static str,
    /// Lower-case fragments of `clientInfo.name` that identify the client.
    matches: &'static [&'static str],
    /// What the client puts before the entry name and between it and the tool.
    before: &'static str,
    between: &'static str,
    /// The longest name the client passes on (prefix included).
    pub limit: usize,
    /// The characters it keeps, in the tool name and in the entry name.
    pub charset: Charset,
    /// How many tools to list before the rest go behind search (0: no limit).
    pub max_tools: usize,
}

impl Profile {
    /// The prefix the client adds to every tool of the entry `entry`, after
    /// its own character rules.
    pub fn prefix(&self, entry: &str) -> String {
        let entry: String = entry
            .chars()
            .map(|c| if self.charset.allows(c) { c } else { '_' })
            .collect();
        format!("{}{entry}{}", self.before, self.between)
    }

    /// The longest tool name the bridge may list to this client.
    pub fn budget(&self, entry: &str) -> usize {
        self.limit.saturating_sub(self.prefix(entry).len())
    }
}

/// The tool budget for clients not in the table.
pub const DEFAULT_MAX_TOOLS: usize = 128;

/// Known clients, the more specific first (Cursor's name contains "vscode").
const PROFILES: &[Profile] = &[
    // Claude Code 2.1.332 (its binary): clientInfo "claude-code"; tools
    // `mcp__<server>__<tool>`, the server name with `[^A-Za-z0-9_-]` made `_`
    // (normalizeMcpServerName); 64 at most, as Anthropic's tool names.
    Profile {
        client: "Claude Code",
        matches: &["claude-code"],
        before: "mcp__",
        between: "__",
        limit: 64,
        charset: Charset::WordDash,
        max_tools: DEFAULT_MAX_TOOLS,
    },
    // Gemini CLI 0.61.0 (@google/gemini-cli-core, tools/mcp-tool.js
    // `generateValidName`): `mcp_<server>_<tool>`, `[A-Za-z0-9_.:-]`, cut in
    // the middle past 63; clientInfo "gemini-cli-mcp-client" (mcp-client.js).
    Profile {
        client: "Gemini CLI",
        matches: &["gemini-cli"],
        before: "mcp_",
        between: "_",
        limit: 63,
        charset: Charset::Portable,
        max_tools: DEFAULT_MAX_TOOLS,
    },
    // Codex (openai/codex main, codex-mcp/src/tools.rs): namespace
    // `mcp__<server>`, then `__<tool>`, at most 64 bytes, every character
    // outside `[A-Za-z0-9_]` made `_`; clientInfo "codex-mcp-client".
    Profile {
        client: "Codex",
        matches: &["codex"],
        before: "mcp__",
        between: "__",
        limit: 64,
        charset: Charset::Word,
        max_tools: DEFAULT_MAX_TOOLS,
    },
    // Copilot CLI: clientInfo "github-copilot-developer" (github/copilot-cli
    // #1268, 1.0.25); tools `<server>-<tool>` (#191, and issue 16 by hand);
    // OpenAI function names `[A-Za-z0-9_-]{1,64}`.
    Profile {
        client: "Copilot CLI",
        matches: &["copilot"],
        before: "",
        between: "-",
        limit: 64,
        charset: Charset::WordDash,
        max_tools: DEFAULT_MAX_TOOLS,
    },
    // Cursor ("cursor-vscode"): "Combined server and tool name length (65)
    // exceeds 60 characters" filters a tool out (its own message, no
    // separator counted); a tool budget of 40 (Cursor warns past it).
    Profile {
        client: "Cursor",
        matches: &["cursor"],
        before: "",
        between: "",
        limit: 60,
        charset: Charset::WordDash,
        max_tools: 40,
    },
    // Windsurf (not verified): Cursor's 60-character rule assumed, at most 50
    // tools listed as before.
    Profile {
        client: "Windsurf",
        matches: &["windsurf", "codeium"],
        before: "",
        between: "",
        limit: 60,
        charset: Charset::WordDash,
        max_tools: 50,
    },
    // VS Code ("Visual Studio Code"; not verified against its source):
    // `mcp_<server>_<tool>`, 64 characters.
    Profile {
        client: "VS Code",
        matches: &["visual studio code", "vscode"],
        before: "mcp_",
        between: "_",
        limit: 64,
        charset: Charset::WordDash,
        max_tools: DEFAULT_MAX_TOOLS,
    },
    // opencode (not verified against its source): `<server>_<tool>`.
    Profile {
        client: "opencode",
        matches: &["opencode"],
        before: "",
        between: "_",
        limit: 64,
        charset: Charset::WordDash,
        max_tools: DEFAULT_MAX_TOOLS,
    },
    // Roo Code 3.52.1 (RooCodeInc/Roo-Code@cb836567, src/utils/mcp-name.ts
    // `buildMcpToolName`; McpHub.ts sends clientInfo "Roo Code"):
    // `mcp--<server>--<tool>`, each part with whitespace made `_`, other
    // characters outside `[A-Za-z0-9_-]` deleted, `--` made `-`, `_` put before
    // a leading digit or `-`; the whole cut to 64.
    Profile {
        client: "Roo Code",
        matches: &["roo code", "roo-code"],
        before: "mcp--",
        between: "--",
        limit: 64,
        charset: Charset::WordDash,
        max_tools: DEFAULT_MAX_TOOLS,
    },
    // Continue (continuedev/continue@d0a3c0b6, core/tools/mcpToolName.ts;
    // clientInfo "continue-client", MCPConnection.ts): `<server>_<tool>`, the
    // server lowercased with runs outside `[a-z0-9]` made `_`; no limit of its
    // own, so the model APIs' 64. `Word` so that the entry's `-` becomes `_`
    // as Continue does (tool names then lose `-` too: safe, not required).
    Profile {
        client: "Continue",
        matches: &["continue-client"],
        before: "",
        between: "_",
        limit: 64,
        charset: Charset::Word,
        max_tools: DEFAULT_MAX_TOOLS,
    },
    // Goose (from its source, block/goose): `<extension>__<tool>`, the
    // extension's name lowercased; no length limit of its own.
    Profile {
        client: "Goose",
        matches: &["goose"],
        before: "",
        between: "__",
        limit: 64,
        charset: Charset::WordDash,
        max_tools: DEFAULT_MAX_TOOLS,
    },
];

/// The profile of the client that said `client_name` in `initialize`
/// (case-insensitive), if it is a known one.
pub fn profile(client_name: Option<&str>) -> Option<&'static Profile> {
    let name = client_name?.to_ascii_lowercase();
    PROFILES.iter().find(|p| p.matches.iter().any(|m| name.contains(m)))
}

/// The tool budget for the client that said `client_name`.
pub fn max_tools(client_name: Option<&str>) -> usize {
    profile(client_name).map_or(DEFAULT_MAX_TOOLS, |p| p.max_tools)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_found_by_their_client_info_name() {
        let who = |n: &str| profile(Some(n)).map(|p| p.client);
        assert_eq!(who("claude-code"), Some("Claude Code"));
        assert_eq!(who("gemini-cli-mcp-client"), Some("Gemini CLI"));
        assert_eq!(who("codex-mcp-client"), Some("Codex"));
        assert_eq!(who("Codex-MCP-Client"), Some("Codex"));
        assert_eq!(who("github-copilot-developer"), Some("Copilot CLI"));
        assert_eq!(who("cursor-vscode"), Some("Cursor"));
        assert_eq!(who("Visual Studio Code"), Some("VS Code"));
        assert_eq!(who("Visual Studio Code - Insiders"), Some("VS Code"));
        assert_eq!(who("windsurf-client"), Some("Windsurf"));
        assert_eq!(who("opencode"), Some("opencode"));
        assert_eq!(who("goose"), Some("Goose"));
        assert_eq!(who("Roo Code"), Some("Roo Code"));
        assert_eq!(who("continue-client"), Some("Continue"));
        assert_eq!(who("some-agent"), None);
        assert_eq!(profile(None), None);
    }

    #[test]
    fn prefixes_follow_each_clients_rules() {
        let p = |n: &str| profile(Some(n)).unwrap().prefix(ENTRY);
        assert_eq!(p("claude-code"), "mcp__mcp-bridge__");
        assert_eq!(p("gemini-cli-mcp-client"), "mcp_mcp-bridge_");
        assert_eq!(p("codex-mcp-client"), "mcp__mcp_bridge__");
        assert_eq!(p("copilot"), "mcp-bridge-");
        assert_eq!(p("cursor-vscode"), "mcp-bridge");
        assert_eq!(p("Roo Code"), "mcp--mcp-bridge--");
        assert_eq!(p("continue-client"), "mcp_bridge_");
        let roo = profile(Some("Roo Code")).unwrap();
        assert_eq!(roo.budget(ENTRY), 64 - 17);
        assert_eq!(roo.prefix("my.bridge"), "mcp--my_bridge--");
        let claude = profile(Some("claude-code")).unwrap();
        assert_eq!(claude.budget(ENTRY), 64 - 17);
        assert_eq!(claude.prefix("my bridge"), "mcp__my_bridge__");
    }

    #[test]
    fn tool_budgets_by_client() {
        assert_eq!(max_tools(Some("cursor-vscode")), 40);
        assert_eq!(max_tools(Some("Windsurf")), 50);
        assert_eq!(max_tools(Some("claude-code")), DEFAULT_MAX_TOOLS);
        assert_eq!(max_tools(None), DEFAULT_MAX_TOOLS);
    }

    #[test]
    fn charsets() {
        assert!(Charset::Portable.allows('.') && Charset::Portable.allows('-'));
        assert!(!Charset::WordDash.allows('.') && Charset::WordDash.allows('-'));
        assert!(!Charset::Word.allows('-') && Charset::Word.allows('_'));
        assert!(!Charset::Portable.allows('/') && !Charset::Portable.allows('é'));
    }
}
