//! End to end: tool names fitted to the IDE that launched the bridge. Two real
//! upstreams list long, hyphenated and dotted tool names; the built binary is
//! initialised by an rmcp client that calls itself Claude Code, Gemini CLI or
//! Codex, and every name it lists must survive that client's own prefix
//! (`mcp__mcp-bridge__`, `mcp_mcp-bridge_`, `mcp__mcp_bridge__`), its length
//! limit and its character rules, and still route to the right tool.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{Home, bridge_command, eventually, first_text, params};
use mcp_bridge::samples::text_result;
use rmcp::model::*;
use rmcp::service::{NotificationContext, RequestContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ClientHandler, ErrorData as McpError, RoleClient, RoleServer, ServerHandler, ServiceExt};
use serde_json::json;
use tokio::sync::mpsc;

/// 60 characters, with a `-` and a `.` the clients' model APIs treat differently.
const LONG: &str = "search-the-whole-knowledge-base.for_every_matching_document_x";
/// 20 characters, so that `<server>__<LONG>` is 82 before any client prefix.
const SERVER: &str = "knowledge-base-prod1";
const TOOLS: [&str; 5] = [LONG, "get-item", "get_item", "get.item", "plain"];

/// An upstream whose tools answer `<server>:<tool>`, so a call shows where it went.
#[derive(Clone)]
struct Names(&'static str);

impl ServerHandler for Names {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(self.0, "0.0.1"))
    }

    async fn list_tools(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let tools = TOOLS
            .iter()
            .map(|n| serde_json::from_value(json!({ "name": n, "inputSchema": { "type": "object" } })).unwrap())
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        p: CallToolRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        Ok(CallToolResponse::Complete(text_result(format!(
            "{}:{}",
            self.0, p.name
        ))))
    }
}

/// Serve `Names(label)` on 127.0.0.1:0 in this test's runtime; its URL.
async fn upstream(label: &'static str) -> String {
    let mut cfg = StreamableHttpServerConfig::default();
    cfg.legacy_session_mode = true;
    let service = StreamableHttpService::new(move || Ok(Names(label)), Arc::new(LocalSessionManager::default()), cfg);
    let app = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/mcp")
}

/// An IDE that says `name` in `initialize` and records `tools/list_changed`.
#[derive(Clone)]
struct NamedIde {
    name: &'static str,
    changed: mpsc::UnboundedSender<()>,
}

impl ClientHandler for NamedIde {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(ClientCapabilities::default(), Implementation::new(self.name, "1.0"))
    }
    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.changed.send(());
    }
}

type Ide = RunningService<RoleClient, NamedIde>;

async fn connect(home: &Home, name: &'static str) -> (Ide, mpsc::UnboundedReceiver<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let transport = TokioChildProcess::new(bridge_command(home, &[])).unwrap();
    let ide = NamedIde { name, changed: tx }
        .serve(transport)
        .await
        .expect("bridge initialises");
    (ide, rx)
}

/// Two servers bridged (so names are prefixed `<server>__`), nothing cached.
async fn home() -> Home {
    let home = Home::new();
    let (a, b) = (upstream(SERVER).await, upstream("other").await);
    home.servers_config(&[(SERVER, &a), ("other", &b)], "");
    home
}

/// What a client does to a name: its prefix, its limit, the characters it keeps.
struct Client {
    name: &'static str,
    prefix: &'static str,
    limit: usize,
    keeps: fn(char) -> bool,
}

const CLAUDE: Client = Client {
    name: "claude-code",
    prefix: "mcp__mcp-bridge__",
    limit: 64,
    keeps: |c| c.is_ascii_alphanumeric() || c == '_' || c == '-',
};
const GEMINI: Client = Client {
    name: "gemini-cli-mcp-client",
    prefix: "mcp_mcp-bridge_",
    limit: 63,
    keeps: |c| c.is_ascii_alphanumeric() || "_.:-".contains(c),
};
const CODEX: Client = Client {
    name: "codex-mcp-client",
    prefix: "mcp__mcp_bridge__",
    limit: 64,
    keeps: |c| c.is_ascii_alphanumeric() || c == '_',
};

/// The names the IDE lists, in order.
async fn names_of(ide: &Ide) -> Vec<String> {
    ide.list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect()
}

/// Every listed name fits `client` after its prefix, is one it keeps as it
/// is, and is unique; calling each reaches each upstream tool exactly once.
async fn check(ide: &Ide, client: &Client) -> Vec<String> {
    let names = names_of(ide).await;
    assert_eq!(names.len(), 2 * TOOLS.len(), "{}: {names:?}", client.name);
    let mut seen = BTreeSet::new();
    for n in &names {
        let full = format!("{}{n}", client.prefix);
        assert!(
            full.len() <= client.limit,
            "{}: {full} is {} long",
            client.name,
            full.len()
        );
        let kept: String = n.chars().map(|c| if (client.keeps)(c) { c } else { '_' }).collect();
        assert_eq!(&kept, n, "{} would rewrite {n}", client.name);
        assert!(seen.insert(kept), "{}: {n} twice after its rules", client.name);
    }
    let mut reached = BTreeSet::new();
    for n in &names {
        let r = ide.call_tool(params(n, json!({}))).await.unwrap();
        assert!(
            reached.insert(first_text(&r)),
            "{}: {n} reached a tool twice",
            client.name
        );
    }
    let want: BTreeSet<String> = [SERVER, "other"]
        .iter()
        .flat_map(|s| TOOLS.iter().map(move |t| format!("{s}:{t}")))
        .collect();
    assert_eq!(reached, want, "{}", client.name);
    names
}

#[tokio::test]
async fn claude_code_names_fit_after_its_prefix_and_route() {
    let home = home().await;
    let (ide, _) = connect(&home, CLAUDE.name).await;
    let names = check(&ide, &CLAUDE).await;
    assert!(names.contains(&"other__plain".to_string()), "{names:?}");
    assert!(names.iter().all(|n| n.len() <= 64 - 17), "{names:?}");
}

#[tokio::test]
async fn gemini_cli_names_fit_after_its_prefix_and_route() {
    let home = home().await;
    let (ide, _) = connect(&home, GEMINI.name).await;
    let names = check(&ide, &GEMINI).await;
    // Gemini keeps dots: a short dotted name is listed as the server named it.
    assert!(names.contains(&"other__get.item".to_string()), "{names:?}");
}

#[tokio::test]
async fn codex_names_have_no_hyphens_and_route() {
    let home = home().await;
    let (ide, _) = connect(&home, CODEX.name).await;
    let names = check(&ide, &CODEX).await;
    assert!(names.iter().all(|n| !n.contains('-') && !n.contains('.')), "{names:?}");
}

/// An IDE the bridge does not know gets the names it always had: up to 64
/// characters, `-` and `.` kept.
#[tokio::test]
async fn unknown_clients_keep_the_default_names() {
    let home = home().await;
    let (ide, _) = connect(&home, "some-agent").await;
    let unknown = Client {
        name: "some-agent",
        prefix: "",
        limit: 64,
        keeps: |c| c.is_ascii_alphanumeric() || "_.-".contains(c),
    };
    let names = check(&ide, &unknown).await;
    for n in ["other__get-item", "other__get.item", "knowledge-base-prod1__get-item"] {
        assert!(names.contains(&n.to_string()), "{n} in {names:?}");
    }
    assert!(
        names.iter().any(|n| n.len() == 64),
        "the long name is cut at 64: {names:?}"
    );
}

/// `[naming]` asking for its own length holds for every IDE, Claude Code too.
#[tokio::test]
async fn configured_naming_wins() {
    let home = Home::new();
    let (a, b) = (upstream(SERVER).await, upstream("other").await);
    home.servers_config(&[(SERVER, &a), ("other", &b)], "[naming]\nmax_length = 100\n");
    let (ide, _) = connect(&home, CLAUDE.name).await;
    let names = names_of(&ide).await;
    assert!(names.contains(&format!("{SERVER}__{LONG}")), "{names:?}");
}

/// A catalog seeded from the disk cache (written under another IDE's names) is
/// renamed for Claude Code before its first `tools/list`, which is answered
/// from the cache; the renaming is no change to announce.
#[tokio::test]
async fn cached_catalog_is_renamed_before_the_first_list() {
    let home = home().await;
    let (first, _) = connect(&home, "some-agent").await;
    let before = names_of(&first).await;
    let cache = home.path().join("cache/catalog.json");
    eventually(
        "the catalog cache",
        Duration::from_secs(10),
        async || match std::fs::read_to_string(&cache) {
            Ok(t) if t.contains(LONG) && t.contains("\"other\"") => Ok(()),
            other => Err(other.map(|t| t.len())),
        },
    )
    .await;
    first.cancel().await.unwrap();

    let (ide, mut changed) = connect(&home, CLAUDE.name).await;
    let names = check(&ide, &CLAUDE).await;
    assert_ne!(names, before);
    // Nothing announced by the time every call above was answered.
    assert!(
        changed.try_recv().is_err(),
        "a tools/list_changed for a rename nobody had seen"
    );
}

/// A 2026-07-28 IDE has no `initialize`: it names itself in each request's
/// `_meta`, and its very first `tools/list` already gets its names (Codex's
/// here), which route.
#[tokio::test]
async fn a_modern_ide_is_named_by_its_request_meta() {
    let home = home().await;
    let mut raw = common::Raw::spawn(&home);
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"codex-mcp-client","version":"1"}}"#;
    raw.send(&format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{{meta}}}}}"#
    ))
    .await;
    let listed = raw.answer().await;
    let names: Vec<String> = listed["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 2 * TOOLS.len(), "{names:?}");
    for n in &names {
        let full = format!("{}{n}", CODEX.prefix);
        assert!(full.len() <= CODEX.limit, "{full} is {} long", full.len());
        assert!(n.chars().all(CODEX.keeps), "Codex would rewrite {n}");
    }
    let long = names
        .iter()
        .find(|n| n.starts_with("knowledge_base_prod1__search_"))
        .unwrap_or_else(|| panic!("{names:?}"));
    raw.send(&format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"{long}",{meta}}}}}"#
    ))
    .await;
    let r = raw.answer().await;
    assert_eq!(
        r["result"]["content"][0]["text"],
        json!(format!("{SERVER}:{LONG}")),
        "{r}"
    );
}
