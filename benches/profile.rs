//! `cargo bench --bench profile`: instructions the bridge executes per call, counted
//! by valgrind's callgrind, which counts instructions rather than time and so gives
//! the same figure on a busy or a quiet machine. This is the number to compare
//! before and after a change to the call path; `benches/bridge.rs` measures time.
//!
//! It starts the two sample servers on 127.0.0.1, spawns the release binary as
//! `mcp-bridge serve` under `valgrind --tool=callgrind --instr-atstart=no`, makes
//! warm-up calls, then switches instrumentation on (`callgrind_control -i on`), makes
//! `CALLS` sequential calls per server, switches it off again, and prints the
//! instructions per call from the dump (`Ir` total / calls). The dump is kept under
//! target/profile/ for `callgrind_annotate`.
//!
//! `MCP_BRIDGE_PROFILE_TELEMETRY=1` runs the bridge with telemetry exporting
//! to a collector on loopback (in this process), for its cost per call.
//!
//! Needs `valgrind` on PATH; without it the bench says so and exits 0.
//! `MCP_BRIDGE_BENCH_BIN` picks another binary (e.g. one built with symbols:
//! `CARGO_PROFILE_RELEASE_STRIP=false cargo build --release`, for the annotation).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, ensure};
use mcp_bridge::samples::{self, Metrics, Notes};
use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, Peer, RoleClient, ServiceExt};
use serde_json::json;

const WARMUP: usize = 200;
const CALLS: usize = 2000;
const WAIT: Duration = Duration::from_secs(120);

#[derive(Clone)]
struct Ide;

impl ClientHandler for Ide {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("mcp-bridge-profile", env!("CARGO_PKG_VERSION")),
        )
    }
}

fn has_valgrind() -> bool {
    std::process::Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn callgrind_control(pid: u32, args: &[&str]) -> anyhow::Result<()> {
    let st = std::process::Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("callgrind_control")?;
    ensure!(st.success(), "callgrind_control {args:?} failed");
    Ok(())
}

/// The total Ir count of a callgrind dump.
fn total_ir(file: &Path) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    // `totals:`, not `summary:`, which callgrind 3.19 gets wrong after a zeroing.
    text.lines()
        .find_map(|l| l.strip_prefix("totals:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no totals in the callgrind dump")
}

async fn calls(peer: &Peer<RoleClient>, name: &str, args: serde_json::Value, n: usize) -> anyhow::Result<()> {
    let args = args.as_object().cloned().unwrap_or_default();
    for _ in 0..n {
        let r = tokio::time::timeout(
            WAIT,
            peer.call_tool(CallToolRequestParams::new(name.to_owned()).with_arguments(args.clone())),
        )
        .await
        .with_context(|| format!("{name} timed out"))??;
        ensure!(r.is_error != Some(true), "{name} returned a tool error");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !has_valgrind() {
        println!("profile: valgrind is not installed; nothing measured");
        return Ok(());
    }
    let exe = std::env::var_os("MCP_BRIDGE_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_mcp-bridge")));
    let notes_store = Notes::seeded();
    let notes = samples::serve_http(move || notes_store.clone(), true, 0).await?;
    let metrics_store = Metrics::default();
    let metrics = samples::serve_http(move || metrics_store.clone(), false, 0).await?;

    let home = tempfile::tempdir()?;
    let mut config = format!(
        "[[servers]]\nname = \"metrics\"\nurl = \"{}\"\n\n[[servers]]\nname = \"notes\"\nurl = \"{}\"\n",
        metrics.url, notes.url
    );
    if std::env::var_os("MCP_BRIDGE_PROFILE_TELEMETRY").is_some_and(|v| v == "1") {
        // Telemetry on, exporting within the measured calls to a collector in
        // this process that answers 200: its recording and its exports count.
        let ok = || async { [(axum::http::header::CONTENT_TYPE, "application/x-protobuf")] };
        let app = axum::Router::new()
            .route("/v1/traces", axum::routing::post(ok))
            .route("/v1/metrics", axum::routing::post(ok));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        config.push_str(&format!(
            "\n[telemetry]\nendpoint = \"http://{}\"\nspan_delay = 0.5\nexport_interval = 2\n",
            listener.local_addr()?
        ));
        tokio::spawn(async move { axum::serve(listener, app).await });
        println!("profile: telemetry on, exporting to a collector on loopback");
    }
    std::fs::write(home.path().join("config.toml"), config)?;
    let out_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/profile");
    std::fs::create_dir_all(&out_dir)?;
    let out = out_dir.join("callgrind.out");
    let _ = std::fs::remove_file(&out);

    let mut cmd = tokio::process::Command::new("valgrind");
    cmd.arg("--tool=callgrind")
        .arg("--instr-atstart=no")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(&exe)
        .arg("serve")
        .env("MCP_BRIDGE_HOME", home.path())
        .env("MCP_BRIDGE_CREDENTIAL_STORE", "file")
        .env_remove("MCP_BRIDGE_CONFIG")
        .env_remove("RUST_LOG");
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .context("cannot launch valgrind")?;
    let pid = transport.id().context("no pid")?;
    let client = tokio::time::timeout(WAIT, Ide.serve(transport)).await??;
    let peer = client.peer().clone();

    // Both servers up and listed (the warm-up calls fail until they are).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let tools = peer.list_all_tools().await?;
        let names: Vec<_> = tools.iter().map(|t| t.name.as_ref()).collect();
        if names.contains(&"metrics__echo") && names.contains(&"notes__list_notes") {
            break;
        }
        ensure!(tokio::time::Instant::now() < deadline, "the upstreams never listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let echo = || json!({ "text": "hi" });
    calls(&peer, "metrics__echo", echo(), WARMUP).await?;
    calls(&peer, "notes__list_notes", json!({}), WARMUP).await?;

    let mut per_call = Vec::new();
    for (label, name, args) in [
        ("echo (metrics, 2026-07-28)", "metrics__echo", echo()),
        ("list_notes (notes, 2025-11-25)", "notes__list_notes", json!({})),
    ] {
        callgrind_control(pid, &["-i", "on"])?;
        callgrind_control(pid, &["-z"])?;
        calls(&peer, name, args, CALLS).await?;
        callgrind_control(pid, &["-i", "off"])?;
        let dump = out_dir.join(format!("callgrind.{}.out", name.replace("__", "-")));
        let _ = std::fs::remove_file(&dump);
        callgrind_control(pid, &["-d"])?;
        // callgrind names dumps <file>.<n>; take the newest one.
        let newest = std::fs::read_dir(&out_dir)?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("callgrind.out."))
            .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
            .context("no callgrind dump")?;
        std::fs::rename(newest.path(), &dump)?;
        let ir = total_ir(&dump)?;
        per_call.push((label, ir / CALLS as u64, dump));
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), client.cancel()).await;
    notes.stop.cancel();
    metrics.stop.cancel();

    println!("bridge instructions per call (callgrind, {CALLS} sequential calls after {WARMUP} warm-up):");
    for (label, ir, dump) in per_call {
        println!("  {label:<34} {ir:>9} Ir/call   ({})", dump.display());
    }
    Ok(())
}
