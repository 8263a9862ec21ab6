//! `mcp-bridge demo`: the product working end to end with no cloud. It starts the
//! two sample servers on loopback, writes a registry file listing them, launches
//! this same binary as `serve` the way an IDE would, and drives a short scripted
//! MCP session through it, printing what happened and how long each step took.

use std::time::{Duration, Instant};

use anyhow::Context;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, GetPromptRequestParams, Implementation,
    ProgressNotificationParam, ReadResourceRequestParams, Request, ServerResult,
};
use rmcp::service::{NotificationContext, PeerRequestOptions};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::json;

use super::out;
use crate::samples::{self, Metrics, Notes};

/// One line of the demo's story on stdout, through [`out::print`]: `say!(...)?`.
macro_rules! say {
    ($($arg:tt)*) => {
        out::print(format!("{}\n", format_args!($($arg)*)))
    };
}

/// A client that prints the progress the bridge relays.
#[derive(Clone)]
struct DemoClient;

impl ClientHandler for DemoClient {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("mcp-bridge-demo", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn on_progress(&self, p: ProgressNotificationParam, _ctx: NotificationContext<RoleClient>) {
        let total = p.total.map(|t| format!("/{t}")).unwrap_or_default();
        // Nowhere to report a failed write from a notification: the call's
        // own lines will meet the same stdout.
        let _ = say!(
            "      progress {}{total}  {}",
            p.progress,
            p.message.unwrap_or_default()
        );
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The registry file the demo writes: one API page with both sample servers.
pub fn registry_page(servers: &[(&str, &str, &str)]) -> serde_json::Value {
    let entries: Vec<_> = servers
        .iter()
        .map(|(name, ns, url)| {
            json!({
                "server": { "name": name, "description": format!("sample {ns} server"), "version": "1.0.0",
                    "remotes": [{ "type": "streamable-http", "url": url }] },
                "_meta": {
                    "io.modelcontextprotocol.registry/official": { "status": "active", "isLatest": true },
                    "dev.mcp-bridge/config": { "schemaVersion": 1, "namespace": ns }
                }
            })
        })
        .collect();
    json!({ "servers": entries, "metadata": { "count": servers.len() } })
}

/// `mcp-bridge demo`. Logs as a default config would (warnings, to stderr).
pub async fn run() -> anyhow::Result<()> {
    let _log = crate::logging::init(&Default::default(), &std::env::temp_dir());
    let t0 = Instant::now();
    let notes_store = Notes::seeded();
    let notes = samples::serve_http(move || notes_store.clone(), true, 0).await?;
    let metrics_store = Metrics::default();
    let metrics = samples::serve_http(move || metrics_store.clone(), false, 0).await?;
    say!("sample servers on loopback:")?;
    say!(
        "  notes    {}  (2025-11-25, sessions; tools, resources, prompt)",
        notes.url
    )?;
    say!("  metrics  {}  (2026-07-28, stateless; tools, progress)", metrics.url)?;

    let home = tempfile::tempdir()?;
    let registry = home.path().join("registry.json");
    let page = registry_page(&[
        ("dev.example/notes", "notes", &notes.url),
        ("dev.example/metrics", "metrics", &metrics.url),
    ]);
    std::fs::write(&registry, serde_json::to_vec_pretty(&page)?)?;
    let config = home.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[registry]\nfile = {:?}\n", registry.display().to_string()),
    )?;
    say!("registry file {}", registry.display())?;

    let exe = std::env::current_exe().context("cannot find the mcp-bridge binary")?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("serve")
        .arg("--config")
        .arg(&config)
        .env("MCP_BRIDGE_HOME", home.path())
        // The sample servers need no login: keep the demo off the OS keyring.
        .env("MCP_BRIDGE_CREDENTIAL_STORE", "memory");
    let spawned = Instant::now();
    let transport = TokioChildProcess::new(cmd).context("cannot launch mcp-bridge serve")?;
    let client = DemoClient
        .serve(transport)
        .await
        .context("the bridge did not initialise")?;
    let init = spawned.elapsed();
    let first = client.list_all_tools().await?;
    let first_list = spawned.elapsed();
    say!("\nbridge launched as `mcp-bridge serve` over stdio")?;
    say!("  initialize answered   {}", ms(init))?;
    say!(
        "  first tools/list      {}  ({} tools; cold start, servers still connecting)",
        ms(first_list),
        first.len()
    )?;

    // Wait until both servers have been listed (the bridge announces list_changed).
    let deadline = Instant::now() + Duration::from_secs(15);
    let tools = loop {
        let tools = client.list_all_tools().await?;
        if tools.iter().any(|t| t.name.starts_with("notes__")) && tools.iter().any(|t| t.name.starts_with("metrics__"))
        {
            break tools;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the sample servers did not connect within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    say!("\naggregated tools ({}):", tools.len())?;
    for t in &tools {
        say!("  {:<26} {}", t.name, t.description.as_deref().unwrap_or(""))?;
    }

    say!("\ncalls routed through the bridge:")?;
    let call = |name: &'static str, args: serde_json::Value| {
        let client = &client;
        async move {
            let start = Instant::now();
            let params = CallToolRequestParams::new(name).with_arguments(args.as_object().cloned().unwrap_or_default());
            let r = client.call_tool(params).await?;
            let text: Vec<String> = r
                .content
                .iter()
                .filter_map(|c| c.as_text().map(|t| t.text.replace('\n', "; ")))
                .collect();
            say!("  {name:<26} {:>9}  -> {}", ms(start.elapsed()), text.join(" "))?;
            anyhow::Ok(())
        }
    };
    call(
        "notes__add_note",
        json!({"title": "Demo", "body": "written through mcp-bridge"}),
    )
    .await?;
    call("notes__search_notes", json!({"query": "bridge"})).await?;
    for v in [12.0, 15.5, 9.25] {
        call("metrics__record", json!({"name": "latency_ms", "value": v})).await?;
    }
    call("metrics__query", json!({"name": "latency_ms"})).await?;

    let start = Instant::now();
    let params = CallToolRequestParams::new("metrics__generate_report")
        .with_arguments(json!({"steps": 4}).as_object().cloned().unwrap_or_default());
    say!("  metrics__generate_report (with a progress token):")?;
    let handle = client
        .send_request_with_option(
            rmcp::model::ClientRequest::CallToolRequest(Request::new(params)),
            PeerRequestOptions::no_options(),
        )
        .await?;
    match handle.await_response().await? {
        ServerResult::CallToolResult(r) => {
            let text: Vec<_> = r
                .content
                .iter()
                .filter_map(|c| c.as_text().map(|t| t.text.clone()))
                .collect();
            say!("  {:<26} {:>9}  -> {}", "", ms(start.elapsed()), text.join(" "))?;
        }
        other => anyhow::bail!("unexpected answer {other:?}"),
    }

    let start = Instant::now();
    let r = client
        .read_resource(ReadResourceRequestParams::new("notes://index"))
        .await?;
    let n = r.contents.len();
    say!(
        "  resources/read notes://index {:>7}  -> {n} content item(s)",
        ms(start.elapsed())
    )?;
    let start = Instant::now();
    let p = client
        .get_prompt(
            GetPromptRequestParams::new("notes__summarize_notes")
                .with_arguments(json!({"style": "brief"}).as_object().cloned().unwrap_or_default()),
        )
        .await?;
    say!(
        "  prompts/get notes__summarize_notes {:>5}  -> {} message(s)",
        ms(start.elapsed()),
        p.messages.len()
    )?;

    // Per-call overhead at a glance: the same trivial tool, direct and bridged.
    let direct = rmcp::transport::StreamableHttpClientTransport::from_uri(metrics.url.clone());
    let lifecycle = rmcp::ClientLifecycleMode::Auto {
        preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
        legacy_version: Some(rmcp::model::ProtocolVersion::V_2025_11_25),
    };
    let direct = rmcp::ClientServiceExt::serve_with_lifecycle((), direct, lifecycle).await?;
    let n = 200;
    let echo = || {
        CallToolRequestParams::new("echo")
            .with_arguments(json!({"text": "hi"}).as_object().cloned().unwrap_or_default())
    };
    let start = Instant::now();
    for _ in 0..n {
        direct.call_tool(echo()).await?;
    }
    let d = start.elapsed() / n;
    let start = Instant::now();
    for _ in 0..n {
        let mut p = echo();
        p.name = "metrics__echo".into();
        client.call_tool(p).await?;
    }
    let b = start.elapsed() / n;
    say!(
        "\n{n} echo calls: direct {} per call, through the bridge {} per call",
        ms(d),
        ms(b)
    )?;

    client.cancel().await?;
    let _ = direct.cancel().await;
    notes.stop.cancel();
    metrics.stop.cancel();
    say!("\ndone in {}. Run `cargo test` for the full suite.", ms(t0.elapsed()))?;
    Ok(())
}
