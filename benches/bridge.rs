//! `cargo bench --bench bridge`: the bridge against a direct rmcp client, in one
//! process. The sample servers (`metrics`: 2026-07-28, stateless; `notes`:
//! 2025-11-25, sessions) run on 127.0.0.1 in this process; the release binary is
//! spawned as `mcp-bridge serve` over stdio, exactly as an IDE would launch it, and
//! driven by an rmcp client. The direct side is an rmcp Streamable HTTP client
//! talking to the same servers.
//!
//! Measured: time from spawn to the first useful `tools/list` (cold and from the
//! disk cache), per-call latency (p50/p99, sequential), throughput with 32 calls
//! in flight, the bridge's CPU time per call and its peak RSS with 10 upstreams.
//! Then the peers: `mcp-remote` (npm) and `mcp-proxy` (PyPI), single-server
//! stdio <-> Streamable HTTP bridges, in front of the same `notes` server and
//! driven by the same client code (installed by benches/peers/setup.sh under
//! target/bench-peers when missing; a peer that cannot be had is reported as
//! unavailable and skipped; `MCP_BRIDGE_BENCH_PEERS=0` skips them all). Then scale:
//! start-up and peak RSS with 1, 10 and 50 upstreams, throughput with 1 to 128
//! calls in flight, RSS after 100,000 calls against after 1,000, and the size of
//! the binary.
//!
//! Telemetry: the same sequential echo through a bridge with telemetry off and
//! one exporting over OTLP to a collector on loopback: latency, CPU and RSS.
//!
//! Profiles, picked with `MCP_BRIDGE_BENCH_PROFILE=loopback|network|all`
//! (default `all`, both in one run):
//!
//! - `loopback`: everything above, over plain HTTP on 127.0.0.1 with no added
//!   latency, plus the delayed-ACK stall comparison below on plain loopback.
//! - `network` (benches/net/mod.rs): still on 127.0.0.1, but the way a real network
//!   costs: the `notes` server behind a TLS server (the test CA of
//!   tests/fixtures/tls, ALPN `h2` and `http/1.1`, both served) behind a latency
//!   proxy adding RTT/2 each way (and one RTT before a connection's first bytes,
//!   the TCP handshake), at 20 and 80 ms RTT. Sides: the direct client (pooled
//!   reqwest, trusting the CA), the bridge (`SSL_CERT_FILE`) as built and with
//!   `[http] keep_alive = false`, mcp-remote (`NODE_EXTRA_CA_CERTS`) and
//!   mcp-proxy (`SSL_CERT_FILE`). Per RTT: sequential p50/p99, throughput at
//!   1, 8 and 32 in flight, CPU per call, spawn -> tools listed cold and from
//!   the cache, and the connections and requests a cold start needs (counted by
//!   the TLS server). Then the delayed-ACK stall at 20 ms RTT.
//!
//! The delayed-ACK stall: sequential p50 against the notes server served with
//! and without TCP_NODELAY, for the direct client (pooled and not) and the
//! bridge as built and with `[http] keep_alive = false`.
//!
//! The targets are printed for reference only: a benchmark measures, it does not
//! fail.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use mcp_bridge::samples::{self, Metrics, Notes};
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, JsonObject, ProtocolVersion, Tool,
};
use rmcp::service::{ClientInitializeError, NotificationContext, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, Peer, RoleClient, ServiceExt};
use serde_json::json;
use tokio::sync::mpsc;

mod net;

/// Spawn-to-tools/list runs, cold and cached.
const STARTS: usize = 10;
/// Sequential calls per tool and side (split into interleaved blocks).
const SEQ_CALLS: usize = 5000;
const SEQ_BLOCKS: usize = 4;
const WARMUP: usize = 100;
/// Concurrency and total calls per side for the throughput runs (two rounds each).
const IN_FLIGHT: usize = 32;
const TPUT_CALLS: usize = 20000;
/// Upstreams for the memory run.
const RSS_UPSTREAMS: usize = 10;
/// Bound on every wait for the bridge, a server or a call.
const WAIT: Duration = Duration::from_secs(20);
const CALL_WAIT: Duration = Duration::from_secs(10);
/// Linux `USER_HZ`: the unit of utime/stime in /proc/<pid>/stat.
const CLK_TCK: f64 = 100.0;

/// The binary under test: `$MCP_BRIDGE_BENCH_BIN` (e.g. a build with symbols, for
/// profiling), else the one Cargo built for this bench: target/release/mcp-bridge.
fn bridge_exe() -> anyhow::Result<PathBuf> {
    let exe = std::env::var_os("MCP_BRIDGE_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_mcp-bridge")));
    ensure!(
        exe.exists(),
        "{} is missing; run `cargo build --release`",
        exe.display()
    );
    Ok(exe)
}

// ---------------------------------------------------------------- the IDE side

/// The IDE: reports `tools/list_changed` so that waits can re-list.
#[derive(Clone)]
struct Ide {
    changed: mpsc::UnboundedSender<()>,
}

impl ClientHandler for Ide {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("mcp-bridge-bench", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.changed.send(());
    }
}

/// A bridge child process and the client driving it.
struct Bridge {
    client: RunningService<RoleClient, Ide>,
    changed: mpsc::UnboundedReceiver<()>,
    pid: Option<u32>,
    spawned: Instant,
    /// Spawn to the `initialize` answer.
    initialized: Duration,
}

/// A home dir for one bridge: `config.toml` with `[[servers]]`, and its cache.
fn home(servers: &[(String, String)]) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    // No tool budget: with 50 upstreams every tool stays listed by its own name.
    let mut cfg = String::from("[policy]\nmax_tools = 0\n\n");
    for (name, url) in servers {
        cfg.push_str(&format!("[[servers]]\nname = \"{name}\"\nurl = \"{url}\"\n\n"));
    }
    std::fs::write(dir.path().join("config.toml"), cfg)?;
    Ok(dir)
}

/// `mcp-bridge serve` with its home at `home`, as an IDE launches it.
fn bridge_command(home: &Path) -> anyhow::Result<tokio::process::Command> {
    let mut cmd = tokio::process::Command::new(bridge_exe()?);
    cmd.arg("serve")
        .env("MCP_BRIDGE_HOME", home)
        // Like the tests: never probe the user's OS keyring (it may prompt).
        .env("MCP_BRIDGE_CREDENTIAL_STORE", "file")
        .env_remove("MCP_BRIDGE_CONFIG")
        .env_remove("RUST_LOG");
    Ok(cmd)
}

impl Bridge {
    async fn spawn(home: &Path) -> anyhow::Result<Bridge> {
        Self::spawn_with(home, Stdio::inherit()).await
    }

    /// Spawn with the bridge's stderr (its log, `warn` and up) sent to `stderr`.
    async fn spawn_with(home: &Path, stderr: Stdio) -> anyhow::Result<Bridge> {
        Self::launch(bridge_command(home)?, stderr).await
    }

    /// Spawn any stdio MCP server (the bridge or a peer) and initialise a client
    /// over its stdin/stdout.
    async fn launch(cmd: tokio::process::Command, stderr: Stdio) -> anyhow::Result<Bridge> {
        let (tx, changed) = mpsc::unbounded_channel();
        let spawned = Instant::now();
        let (transport, _) = TokioChildProcess::builder(cmd)
            .stderr(stderr)
            .spawn()
            .context("cannot launch the stdio server")?;
        let pid = transport.id();
        let client = tokio::time::timeout(WAIT, Ide { changed: tx }.serve(transport))
            .await
            .context("no answer to initialize in time")?
            .context("initialize failed")?;
        let initialized = spawned.elapsed();
        Ok(Bridge {
            client,
            changed,
            pid,
            spawned,
            initialized,
        })
    }

    async fn list(&self) -> anyhow::Result<Vec<Tool>> {
        Ok(tokio::time::timeout(WAIT, self.client.list_all_tools())
            .await
            .context("tools/list timed out")??)
    }

    /// Re-list on every `tools/list_changed` until `pred` holds (bounded).
    async fn wait_tools(&mut self, pred: impl Fn(&[Tool]) -> bool) -> anyhow::Result<Vec<Tool>> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let tools = self.list().await?;
            if pred(&tools) {
                return Ok(tools);
            }
            match tokio::time::timeout_at(deadline, self.changed.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) => bail!("the bridge went away"),
                Err(_) => bail!(
                    "timed out waiting for the upstream tools; the bridge lists {:?}",
                    tools.iter().map(|t| t.name.as_ref()).collect::<Vec<_>>()
                ),
            }
        }
    }

    /// Close stdin and wait (bounded) for the process to exit; how long it took.
    async fn close(self) -> Duration {
        let start = Instant::now();
        let _ = tokio::time::timeout(Duration::from_secs(8), self.client.cancel()).await;
        start.elapsed()
    }
}

fn has(tools: &[Tool], name: &str) -> bool {
    tools.iter().any(|t| t.name == name)
}

// ---------------------------------------------------------------- the direct side

type Direct = RunningService<RoleClient, ()>;

/// A direct rmcp client, negotiating the way the bridge does upstream. The
/// transport is `from_uri`'s (at most 16 requests in flight), or the same with
/// `max_concurrent` in flight (the bridge's upstream transport allows 256).
async fn direct(url: &str, max_concurrent: Option<usize>) -> anyhow::Result<Direct> {
    direct_with(url, max_concurrent, None).await
}

/// `direct`, over `client` when given (the network profile's: pooled, trusting
/// the test CA) instead of rmcp's default one.
async fn direct_with(
    url: &str,
    max_concurrent: Option<usize>,
    client: Option<reqwest::Client>,
) -> anyhow::Result<Direct> {
    let auto = ClientLifecycleMode::Auto {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        legacy_version: Some(ProtocolVersion::V_2025_11_25),
    };
    let connect = |mode| {
        let client = client.clone();
        async move {
            let cfg = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
            let t = match (client, max_concurrent) {
                (None, None) => StreamableHttpClientTransport::from_uri(url.to_owned()),
                (None, Some(n)) => StreamableHttpClientTransport::from_config(cfg.max_concurrent_requests(n)),
                (Some(c), None) => StreamableHttpClientTransport::with_client(c, cfg),
                (Some(c), Some(n)) => StreamableHttpClientTransport::with_client(c, cfg.max_concurrent_requests(n)),
            };
            tokio::time::timeout(WAIT, ClientServiceExt::serve_with_lifecycle((), t, mode))
                .await
                .context("direct connect timed out")
        }
    };
    match connect(auto).await? {
        // rmcp 3.11's Auto mode does not fall back to `initialize` for a server that
        // answers `server/discover` listing only legacy versions; the bridge retries
        // with Initialize, and so does the direct client, for a like-for-like setup.
        Err(ClientInitializeError::NoCompatibleProtocolVersion { server_supported, .. })
            if !server_supported.is_empty() && server_supported.iter().all(|v| v.has_initialize()) =>
        {
            Ok(connect(ClientLifecycleMode::Initialize).await??)
        }
        other => Ok(other?),
    }
}

async fn direct_list(c: &Direct) -> anyhow::Result<Vec<Tool>> {
    Ok(tokio::time::timeout(WAIT, c.list_all_tools())
        .await
        .context("direct tools/list timed out")??)
}

async fn close_direct(c: Direct) {
    let _ = tokio::time::timeout(Duration::from_secs(5), c.cancel()).await;
}

// ---------------------------------------------------------------- measuring

#[derive(Clone)]
struct Call {
    name: String,
    args: JsonObject,
    expect: &'static str,
}

impl Call {
    fn params(&self) -> CallToolRequestParams {
        CallToolRequestParams::new(self.name.clone()).with_arguments(self.args.clone())
    }

    fn bridged(&self, prefix: &str) -> Call {
        Call {
            name: format!("{prefix}__{}", self.name),
            ..self.clone()
        }
    }
}

async fn call(peer: &Peer<RoleClient>, c: &Call) -> anyhow::Result<()> {
    let r = tokio::time::timeout(CALL_WAIT, peer.call_tool(c.params()))
        .await
        .with_context(|| format!("{} timed out", c.name))?
        .with_context(|| format!("{} failed", c.name))?;
    ensure!(r.is_error != Some(true), "{} returned a tool error", c.name);
    let text = r.content.first().and_then(|c| c.as_text()).map(|t| t.text.as_str());
    ensure!(
        text.is_some_and(|t| t.contains(c.expect)),
        "{} answered {text:?}",
        c.name
    );
    Ok(())
}

/// Like `timed_calls`, stopping early once `until` has passed.
async fn timed_calls_until(
    peer: &Peer<RoleClient>,
    c: &Call,
    n: usize,
    until: Instant,
    out: &mut Vec<Duration>,
) -> anyhow::Result<()> {
    for _ in 0..n {
        let start = Instant::now();
        if start > until {
            break;
        }
        call(peer, c).await?;
        out.push(start.elapsed());
    }
    Ok(())
}

async fn timed_calls(peer: &Peer<RoleClient>, c: &Call, n: usize, out: &mut Vec<Duration>) -> anyhow::Result<()> {
    for _ in 0..n {
        let start = Instant::now();
        call(peer, c).await?;
        out.push(start.elapsed());
    }
    Ok(())
}

/// `n` calls of `c` with `IN_FLIGHT` tasks sharing `peer`; calls per second.
async fn throughput(peer: &Peer<RoleClient>, c: &Call, n: usize) -> anyhow::Result<f64> {
    throughput_at(peer, c, n, IN_FLIGHT).await
}

/// `n` calls of `c` with `in_flight` tasks sharing `peer`; calls per second.
async fn throughput_at(peer: &Peer<RoleClient>, c: &Call, n: usize, in_flight: usize) -> anyhow::Result<f64> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..in_flight)
        .map(|_| {
            let (peer, c, next) = (peer.clone(), c.clone(), next.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    call(&peer, &c).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Nearest-rank percentile of sorted samples.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    pct(&v, 50.0)
}

/// min / median / max, in ms.
fn spread(v: &[Duration]) -> String {
    let mut v = v.to_vec();
    v.sort();
    let f = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1000.0);
    format!(
        "min {} / median {} / max {} ms (n = {})",
        f(v[0]),
        f(pct(&v, 50.0)),
        f(v[v.len() - 1]),
        v.len()
    )
}

/// User + system CPU time of a process (all threads, alive or not).
#[cfg(target_os = "linux")]
fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    // Fields after the command name, which is in parentheses: state is field 3,
    // utime field 14 and stime field 15.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / CLK_TCK))
}

#[cfg(not(target_os = "linux"))]
fn cpu_time(_: Option<u32>) -> Option<Duration> {
    None
}

/// The number on a line of /proc/<pid>/status (`VmHWM:  1234 kB` -> 1234).
#[cfg(target_os = "linux")]
fn status_field(pid: Option<u32>, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.split(':').next() == Some(key))?;
    line[key.len() + 1..].split_whitespace().next()?.parse().ok()
}

#[cfg(not(target_os = "linux"))]
fn status_field(_: Option<u32>, _: &str) -> Option<u64> {
    None
}

/// A memory line of /proc/<pid>/status (`VmHWM`, `RssAnon`, ...), in bytes.
fn vm(pid: Option<u32>, key: &str) -> Option<u64> {
    status_field(pid, key).map(|kb| kb * 1024)
}

/// Where the resident memory is now, for the notes under the table.
fn breakdown(pid: Option<u32>) -> String {
    let threads = status_field(pid, "Threads").map_or("n/a".into(), |n| n.to_string());
    format!(
        "peak {}, now {} = anon {} + file {} (binary and libraries); {threads} threads",
        mb(vm(pid, "VmHWM")),
        mb(vm(pid, "VmRSS")),
        mb(vm(pid, "RssAnon")),
        mb(vm(pid, "RssFile")),
    )
}

/// `pid` and all its descendants (from the parent ids in /proc/*/stat).
#[cfg(target_os = "linux")]
fn process_tree(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            // After the command name: state (field 3), then the parent id (field 4).
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parent_of.push((p, ppid));
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    tree
}

#[cfg(not(target_os = "linux"))]
fn process_tree(pid: u32) -> Vec<u32> {
    vec![pid]
}

/// CPU time of a process and its live descendants (a wrapper's node or python).
/// A descendant that exits between the listing and the read counts as nothing.
fn tree_cpu(pid: Option<u32>) -> Option<Duration> {
    let root = cpu_time(pid)?;
    let rest = process_tree(pid?).into_iter().skip(1).filter_map(|p| cpu_time(Some(p)));
    Some(root + rest.sum::<Duration>())
}

/// A memory line of /proc/<pid>/status summed over the process tree, in bytes.
fn tree_vm(pid: Option<u32>, key: &str) -> Option<u64> {
    let root = vm(pid, key)?;
    let rest = process_tree(pid?).into_iter().skip(1).filter_map(|p| vm(Some(p), key));
    Some(root + rest.sum::<u64>())
}

// ---------------------------------------------------------------- the table

fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v < 1.0 {
        format!("{v:.3} ms")
    } else if v < 100.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.1} ms")
    }
}

fn ratio(direct: f64, bridge: f64) -> String {
    format!("{:.2}x", bridge / direct)
}

fn delta(direct: Duration, bridge: Duration) -> String {
    let d = (bridge.as_secs_f64() - direct.as_secs_f64()) * 1000.0;
    format!("{d:+.3} ms ({})", ratio(direct.as_secs_f64(), bridge.as_secs_f64()))
}

fn mb(bytes: Option<u64>) -> String {
    bytes.map_or("n/a".into(), |b| format!("{:.1} MB", b as f64 / 1_048_576.0))
}

#[derive(Default)]
struct Table {
    rows: Vec<[String; 5]>,
    notes: Vec<String>,
}

impl Table {
    fn note(&mut self, n: String) {
        self.notes.push(n);
    }

    fn row(&mut self, metric: &str, direct: impl Into<String>, bridge: impl Into<String>, rd: &str, target: &str) {
        self.rows
            .push([metric.into(), direct.into(), bridge.into(), rd.into(), target.into()]);
    }

    fn print(&self) {
        let head = ["metric", "direct", "bridge", "ratio / delta", "target (issue)"];
        let mut w = head.map(str::len);
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(c.len());
            }
        }
        let line = |r: [&str; 5]| {
            println!(
                "{:<w0$}  {:>w1$}  {:>w2$}  {:<w3$}  {}",
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                w0 = w[0],
                w1 = w[1],
                w2 = w[2],
                w3 = w[3]
            );
        };
        line(head);
        println!("{}", "-".repeat(w.iter().sum::<usize>() + 8));
        for r in &self.rows {
            line([&r[0], &r[1], &r[2], &r[3], &r[4]]);
        }
        println!();
        for n in &self.notes {
            println!("{n}");
        }
    }
}

// ---------------------------------------------------------------- the runs

/// Spawn to the first `tools/list` answer that holds the upstream's tools:
/// cold (an empty home: no catalog cache, the first answer waits for the
/// server's first listing) and cached (the same home again), alternating; and
/// the direct client's connect + list, which is what the cold start is up
/// against. A first answer without the tools counts as a miss, not a time.
async fn startup(metrics_url: &str, t: &mut Table) -> anyhow::Result<()> {
    let servers = [("metrics".to_owned(), metrics_url.to_owned())];
    let (mut direct_times, mut cold, mut cached) = (Vec::new(), Vec::new(), Vec::new());
    let (mut init, mut close, mut cached_init) = (Vec::new(), Vec::new(), Vec::new());
    let (mut cold_hits, mut cache_hits) = (0, 0);
    for _ in 0..STARTS {
        let start = Instant::now();
        let d = direct(metrics_url, None).await?;
        let tools = direct_list(&d).await?;
        direct_times.push(start.elapsed());
        ensure!(has(&tools, "echo"), "the metrics server lists no echo tool");
        close_direct(d).await;

        let dir = home(&servers)?;
        let mut b = Bridge::spawn(dir.path()).await?;
        init.push(b.initialized);
        let tools = b.list().await?;
        if has(&tools, "echo") {
            cold.push(b.spawned.elapsed());
            cold_hits += 1;
        } else {
            // Still fill the cache for the cached start below.
            b.wait_tools(|tools| has(tools, "echo")).await?;
        }
        close.push(b.close().await);

        let b = Bridge::spawn(dir.path()).await?;
        let tools = b.list().await?;
        if has(&tools, "echo") {
            cached.push(b.spawned.elapsed());
            cache_hits += 1;
        }
        cached_init.push(b.initialized);
        close.push(b.close().await);
    }
    let notes = [
        ("direct connect + tools/list", &direct_times),
        ("bridge cold, first tools/list with the tools", &cold),
        ("bridge cold, initialize answered", &init),
        ("bridge cached, initialize answered", &cached_init),
        ("bridge cached, first tools/list with the tools", &cached),
        ("bridge stdin EOF -> exited", &close),
    ];
    for (what, v) in notes {
        t.note(format!("startup, {what}: {}", spread(v)));
    }
    let d = median(direct_times);
    let first = |v: Vec<Duration>| (!v.is_empty()).then(|| median(v));
    let (c, k) = (first(cold), first(cached));
    let or_none = |x: Option<Duration>| x.map_or("none".to_owned(), ms);
    t.row(
        &format!("startup cold: spawn -> first tools/list holding the tools ({cold_hits}/{STARTS} did)"),
        ms(d),
        or_none(c),
        &c.map_or(String::new(), |c| delta(d, c)),
        "<= direct + 2 ms",
    );
    t.row(
        &format!("startup cached: spawn -> first tools/list holding the tools ({cache_hits}/{STARTS} did)"),
        ms(d),
        or_none(k),
        &k.map_or(String::new(), |k| delta(d, k)),
        "<= 5 ms",
    );
    t.row("  spawn -> initialize answered (cold)", "-", ms(median(init)), "", "");
    t.row("  stdin EOF -> process exited", "-", ms(median(close)), "", "");
    Ok(())
}

/// Sequential latency of `c`, direct and bridged in interleaved blocks, with the
/// bridge's CPU time over its blocks.
async fn latency(
    t: &mut Table,
    label: &str,
    d: &Peer<RoleClient>,
    b: &Bridge,
    c: &Call,
    prefix: &str,
) -> anyhow::Result<(Option<Duration>, usize)> {
    let bc = c.bridged(prefix);
    let bp = b.client.peer();
    let (mut dl, mut bl) = (Vec::with_capacity(SEQ_CALLS), Vec::with_capacity(SEQ_CALLS));
    let mut scratch = Vec::new();
    timed_calls(d, c, WARMUP, &mut scratch).await?;
    timed_calls(bp, &bc, WARMUP, &mut scratch).await?;
    let mut cpu = Some(Duration::ZERO);
    for block in 0..SEQ_BLOCKS {
        let n = SEQ_CALLS / SEQ_BLOCKS;
        if block % 2 == 1 {
            timed_calls(d, c, n, &mut dl).await?;
        }
        let before = cpu_time(b.pid);
        timed_calls(bp, &bc, n, &mut bl).await?;
        let after = cpu_time(b.pid);
        cpu = match (cpu, before, after) {
            (Some(acc), Some(x), Some(y)) => Some(acc + y.saturating_sub(x)),
            _ => None,
        };
        if block % 2 == 0 {
            timed_calls(d, c, n, &mut dl).await?;
        }
    }
    dl.sort();
    bl.sort();
    let (d50, b50) = (pct(&dl, 50.0), pct(&bl, 50.0));
    let (d99, b99) = (pct(&dl, 99.0), pct(&bl, 99.0));
    t.row(
        &format!("{label} p50 ({} calls)", bl.len()),
        ms(d50),
        ms(b50),
        &delta(d50, b50),
        "added <= 0.1 ms",
    );
    t.row(&format!("{label} p99"), ms(d99), ms(b99), &delta(d99, b99), "");
    Ok((cpu, bl.len()))
}

/// Calls per second with `IN_FLIGHT` in flight: the bridge, the direct client
/// (`from_uri`, 16 requests in flight at most) and the direct client allowing 256
/// like the bridge's upstream transport; two rounds each, in rotating order. Also
/// the bridge's CPU time over its rounds.
async fn concurrent(
    t: &mut Table,
    label: &str,
    direct: [&Peer<RoleClient>; 2],
    b: &Bridge,
    c: &Call,
    prefix: &str,
) -> anyhow::Result<Option<Duration>> {
    let bc = c.bridged(prefix);
    let round = TPUT_CALLS / 2;
    let me = Some(std::process::id());
    // Seconds spent, and CPU time of this process (client and servers): bridge,
    // direct, direct (256).
    let mut secs = [0.0; 3];
    let mut own = [Some(Duration::ZERO); 3];
    let mut cpu = Some(Duration::ZERO);
    let add = |acc: Option<Duration>, before: Option<Duration>, after: Option<Duration>| match (acc, before, after) {
        (Some(acc), Some(x), Some(y)) => Some(acc + y.saturating_sub(x)),
        _ => None,
    };
    for r in 0..2 {
        let order: [usize; 3] = if r == 0 { [0, 1, 2] } else { [2, 1, 0] };
        for who in order {
            let (own_before, before) = (cpu_time(me), cpu_time(b.pid));
            secs[who] += round as f64
                / match who {
                    0 => throughput(b.client.peer(), &bc, round).await?,
                    _ => throughput(direct[who - 1], c, round).await?,
                };
            own[who] = add(own[who], own_before, cpu_time(me));
            if who == 0 {
                cpu = add(cpu, before, cpu_time(b.pid));
            }
        }
    }
    let [br, dr, dr256] = secs.map(|s| TPUT_CALLS as f64 / s);
    let per_call = |d: Option<Duration>| d.map(|d| d / TPUT_CALLS as u32);
    let total_bridged = per_call(own[0].zip(cpu).map(|(a, b)| a + b));
    t.row(
        &format!("{label} throughput, {IN_FLIGHT} in flight ({TPUT_CALLS} calls)"),
        format!("{dr:.0}/s"),
        format!("{br:.0}/s"),
        &ratio(dr, br),
        ">= 0.95x",
    );
    t.row(
        "  same, direct transport allowing 256 in flight (as bridge upstream)",
        format!("{dr256:.0}/s"),
        format!("{br:.0}/s"),
        &ratio(dr256, br),
        "",
    );
    let (td, tb) = (per_call(own[1]), total_bridged);
    t.row(
        "  CPU per call, all processes (bench client + servers [+ bridge])",
        td.map_or("n/a".into(), ms),
        tb.map_or("n/a".into(), ms),
        &td.zip(tb).map_or(String::new(), |(d, b)| delta(d, b)),
        "",
    );
    Ok(per_call(cpu))
}

fn cpu_row(t: &mut Table, label: &str, per_call: Option<Duration>) {
    let v = per_call.map_or("n/a".into(), ms);
    t.row(label, "-", v, "", "<= 0.1 ms");
}

/// Per-call latency, throughput and CPU through one bridge in front of both
/// sample servers; then that bridge's peak RSS.
async fn calls(metrics_url: &str, notes_url: &str, t: &mut Table) -> anyhow::Result<()> {
    let servers = [
        ("metrics".to_owned(), metrics_url.to_owned()),
        ("notes".to_owned(), notes_url.to_owned()),
    ];
    let dir = home(&servers)?;
    let mut b = Bridge::spawn(dir.path()).await?;
    b.wait_tools(|tools| has(tools, "metrics__echo") && has(tools, "notes__list_notes"))
        .await?;
    let dm = direct(metrics_url, None).await?;
    direct_list(&dm).await?;
    let dn = direct(notes_url, None).await?;
    direct_list(&dn).await?;
    let dm256 = direct(metrics_url, Some(256)).await?;
    direct_list(&dm256).await?;
    let dn256 = direct(notes_url, Some(256)).await?;
    direct_list(&dn256).await?;

    let args = |v: serde_json::Value| v.as_object().cloned().unwrap_or_default();
    let echo = Call {
        name: "echo".into(),
        args: args(json!({ "text": "hi" })),
        expect: "hi",
    };
    let list_notes = Call {
        name: "list_notes".into(),
        args: JsonObject::new(),
        expect: "Welcome",
    };

    let (echo_cpu, echo_n) = latency(t, "echo (metrics, 2026-07-28)", dm.peer(), &b, &echo, "metrics").await?;
    let (notes_cpu, notes_n) =
        latency(t, "list_notes (notes, 2025-11-25)", dn.peer(), &b, &list_notes, "notes").await?;
    let echo_tput_cpu = concurrent(t, "echo", [dm.peer(), dm256.peer()], &b, &echo, "metrics").await?;
    let notes_tput_cpu = concurrent(t, "list_notes", [dn.peer(), dn256.peer()], &b, &list_notes, "notes").await?;
    cpu_row(
        t,
        &format!("bridge CPU per call, sequential echo ({echo_n} calls)"),
        echo_cpu.map(|c| c / echo_n as u32),
    );
    cpu_row(
        t,
        &format!("bridge CPU per call, sequential list_notes ({notes_n} calls)"),
        notes_cpu.map(|c| c / notes_n as u32),
    );
    cpu_row(
        t,
        &format!("bridge CPU per call, echo {IN_FLIGHT} in flight"),
        echo_tput_cpu,
    );
    cpu_row(
        t,
        &format!("bridge CPU per call, list_notes {IN_FLIGHT} in flight"),
        notes_tput_cpu,
    );
    t.row(
        "bridge peak RSS (VmHWM), 2 upstreams, after the call runs",
        "-",
        mb(vm(b.pid, "VmHWM")),
        "",
        "",
    );
    t.note(format!("memory, 2 upstreams after the call runs: {}", breakdown(b.pid)));
    b.close().await;
    for d in [dm, dn, dm256, dn256] {
        close_direct(d).await;
    }
    Ok(())
}

/// What a cost of telemetry is: the same sequential echo through a bridge with
/// telemetry off and one exporting spans and metrics over OTLP to a collector
/// on loopback (a minimal receiver in this process that answers 200 and counts
/// what arrives), in interleaved blocks; their p50, p99 and the bridge's CPU
/// per call. The "direct" column is telemetry off, the "bridge" one on.
async fn telemetry_cost(metrics_url: &str, notes_url: &str, t: &mut Table) -> anyhow::Result<()> {
    let (posts, bytes) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (p, b) = (posts.clone(), bytes.clone());
    let receive = move |body: axum::body::Bytes| {
        p.fetch_add(1, Ordering::Relaxed);
        b.fetch_add(body.len(), Ordering::Relaxed);
        async { [(axum::http::header::CONTENT_TYPE, "application/x-protobuf")] }
    };
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(receive.clone()))
        .route("/v1/metrics", axum::routing::post(receive));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let collector = format!("http://{}", listener.local_addr()?);
    let receiver = tokio::spawn(async move { axum::serve(listener, app).await });
    // Two servers, as in the call runs: tools are listed under their prefix.
    let servers = [
        ("metrics".to_owned(), metrics_url.to_owned()),
        ("notes".to_owned(), notes_url.to_owned()),
    ];
    let off_dir = home(&servers)?;
    let on_dir = home(&servers)?;
    let cfg = on_dir.path().join("config.toml");
    let mut text = std::fs::read_to_string(&cfg)?;
    text.push_str(&format!(
        "[telemetry]\nendpoint = \"{collector}\"\nspan_delay = 1\nexport_interval = 5\n"
    ));
    std::fs::write(&cfg, text)?;
    let mut off = Bridge::spawn(off_dir.path()).await?;
    let mut on = Bridge::spawn(on_dir.path()).await?;
    for b in [&mut off, &mut on] {
        b.wait_tools(|tools| has(tools, "metrics__echo")).await?;
    }
    let echo = Call {
        name: "echo".into(),
        args: json!({ "text": "hi" }).as_object().cloned().unwrap_or_default(),
        expect: "hi",
    }
    .bridged("metrics");
    let mut scratch = Vec::new();
    timed_calls(off.client.peer(), &echo, WARMUP, &mut scratch).await?;
    timed_calls(on.client.peer(), &echo, WARMUP, &mut scratch).await?;
    let (mut lat, mut cpu) = ([Vec::new(), Vec::new()], [Some(Duration::ZERO); 2]);
    for block in 0..SEQ_BLOCKS {
        let order = if block % 2 == 0 { [0, 1] } else { [1, 0] };
        for who in order {
            let b = if who == 0 { &off } else { &on };
            let before = cpu_time(b.pid);
            timed_calls(b.client.peer(), &echo, SEQ_CALLS / SEQ_BLOCKS, &mut lat[who]).await?;
            cpu[who] = match (cpu[who], before, cpu_time(b.pid)) {
                (Some(acc), Some(x), Some(y)) => Some(acc + y.saturating_sub(x)),
                _ => None,
            };
        }
    }
    let n = lat[0].len();
    for l in lat.iter_mut() {
        l.sort();
    }
    for (label, p) in [("p50", 50.0), ("p99", 99.0)] {
        let (a, b) = (pct(&lat[0], p), pct(&lat[1], p));
        t.row(
            &format!("telemetry off -> on: echo {label} ({n} calls)"),
            ms(a),
            ms(b),
            &delta(a, b),
            "",
        );
    }
    let per_call = |c: Option<Duration>| c.map(|c| c / n as u32);
    let (a, b) = (per_call(cpu[0]), per_call(cpu[1]));
    t.row(
        "telemetry off -> on: bridge CPU per call",
        a.map_or("n/a".into(), ms),
        b.map_or("n/a".into(), ms),
        &a.zip(b).map_or(String::new(), |(a, b)| delta(a, b)),
        "small when on",
    );
    t.row(
        "telemetry off -> on: bridge peak RSS (VmHWM)",
        mb(vm(off.pid, "VmHWM")),
        mb(vm(on.pid, "VmHWM")),
        "",
        "",
    );
    off.close().await;
    on.close().await;
    t.note(format!(
        "telemetry: the collector received {} OTLP requests, {} KB, for {} calls (spans batched every 1 s, metrics every 5 s)",
        posts.load(Ordering::Relaxed),
        bytes.load(Ordering::Relaxed) / 1024,
        n + WARMUP
    ));
    receiver.abort();
    Ok(())
}

/// Peak RSS of a bridge in front of `RSS_UPSTREAMS` metrics servers, once every
/// server's tools are listed.
async fn memory(t: &mut Table) -> anyhow::Result<()> {
    // The fixed cost: a bridge with nothing to bridge, after initialize and a list.
    let dir = home(&[])?;
    // Quiet: it warns that there is nothing to bridge.
    let b = Bridge::spawn_with(dir.path(), Stdio::null()).await?;
    b.list().await?;
    t.row(
        "bridge peak RSS (VmHWM), no upstreams",
        "-",
        mb(vm(b.pid, "VmHWM")),
        "",
        "",
    );
    t.note(format!("memory, no upstreams: {}", breakdown(b.pid)));
    b.close().await;

    let mut running = Vec::new();
    let mut servers = Vec::new();
    for i in 0..RSS_UPSTREAMS {
        let store = Metrics::default();
        let r = samples::serve_http(move || store.clone(), false, 0).await?;
        servers.push((format!("m{i:02}"), r.url.clone()));
        running.push(r);
    }
    let dir = home(&servers)?;
    let mut b = Bridge::spawn(dir.path()).await?;
    let start = Instant::now();
    let names: Vec<String> = servers.iter().map(|(n, _)| format!("{n}__echo")).collect();
    b.wait_tools(|tools| names.iter().all(|n| has(tools, n))).await?;
    let listed = start.elapsed();
    t.row(
        &format!("bridge peak RSS (VmHWM), {RSS_UPSTREAMS} upstreams listed"),
        "-",
        mb(vm(b.pid, "VmHWM")),
        "",
        "<= 10 MB",
    );
    t.note(format!(
        "memory, {RSS_UPSTREAMS} upstreams listed: {}",
        breakdown(b.pid)
    ));
    t.row(
        &format!("  initialize -> all {RSS_UPSTREAMS} upstreams' tools listed"),
        "-",
        ms(listed),
        "",
        "",
    );
    b.close().await;
    for r in running {
        r.stop.cancel();
    }
    Ok(())
}

// ---------------------------------------------------------------- a wider table

/// A table with one column per side (direct, bridge, each peer...).
struct Grid {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Grid {
    fn new(head: &[&str]) -> Grid {
        Grid {
            head: head.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// First column left-aligned, the last (the target) left-aligned, the rest
    /// right-aligned.
    fn print(&self) {
        let n = self.head.len();
        let mut w: Vec<usize> = self.head.iter().map(String::len).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                w[i] = w[i].max(c.len());
            }
        }
        let line = |r: &[String]| {
            let mut out = String::new();
            for (i, width) in w.iter().enumerate() {
                let c = r.get(i).map_or("", String::as_str);
                if i == 0 || i == n - 1 {
                    out.push_str(&format!("{c:<width$}  "));
                } else {
                    out.push_str(&format!("{c:>width$}  "));
                }
            }
            println!("{}", out.trim_end());
        };
        line(&self.head);
        println!("{}", "-".repeat(w.iter().sum::<usize>() + 2 * (n - 1)));
        for r in &self.rows {
            line(r);
        }
    }
}

fn opt_ms(d: Option<Duration>) -> String {
    d.map_or("n/a".into(), ms)
}

/// How many times `of` is `than` ("12.3x"), for figures where lower is better:
/// how many times sooner, less CPU, less memory the bridge is than a peer.
fn times(than: Option<f64>, of: Option<f64>) -> String {
    match (than, of) {
        (Some(b), Some(p)) if b > 0.0 => format!("{:.1}x", p / b),
        _ => "n/a".into(),
    }
}

// ---------------------------------------------------------------- peers

/// Spawn-to-tools/list runs per side in the peer comparison.
const PEER_STARTS: usize = 5;
/// Sequential calls per side, in rotating blocks, after `WARMUP`; a side stops
/// early at `PEER_SEQ_BUDGET` (a peer at 40 ms a call would take minutes).
const PEER_SEQ_CALLS: usize = 2000;
const PEER_SEQ_BUDGET: Duration = Duration::from_secs(12);
const PEER_BLOCKS: usize = 4;
/// Calls per side at `IN_FLIGHT` in flight, in two rounds.
const PEER_TPUT_CALLS: usize = 2000;
/// Bound on benches/peers/setup.sh (npm and pip installs).
const SETUP_WAIT: Duration = Duration::from_secs(300);

/// Where benches/peers/setup.sh installs the peers (ignored by git).
fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("bench-peers")
}

/// A single-server stdio <-> Streamable HTTP bridge that the bridge is compared
/// with, launched directly (node, the venv's python), not through npx, so that
/// the process measured is the one doing the work.
struct PeerTool {
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(&'static str, PathBuf)>,
}

impl PeerTool {
    fn command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&self.args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }
}

fn mcp_remote(dir: &Path, url: &str) -> PeerTool {
    PeerTool {
        name: "mcp-remote",
        program: "node".into(),
        args: vec![
            dir.join("node_modules/mcp-remote/dist/proxy.js").display().to_string(),
            url.into(),
            // Streamable HTTP only (no SSE fallback); http:// on loopback needs no
            // --allow-http; a server that never answers 401 needs no OAuth.
            "--transport".into(),
            "http-only".into(),
            "--silent".into(),
        ],
        // Its OAuth and lock files, out of the user's ~/.mcp-auth.
        env: vec![("MCP_REMOTE_CONFIG_DIR", dir.join("mcp-auth"))],
    }
}

fn mcp_proxy(dir: &Path, url: &str) -> PeerTool {
    PeerTool {
        name: "mcp-proxy",
        program: dir.join("venv/bin/python"),
        args: vec![
            dir.join("venv/bin/mcp-proxy").display().to_string(),
            "--transport".into(),
            "streamablehttp".into(),
            "--log-level".into(),
            "WARNING".into(),
            url.into(),
        ],
        env: vec![],
    }
}

/// The files each peer needs; `None` when all are there.
fn peer_missing(dir: &Path) -> [(&'static str, Option<String>); 2] {
    let check = |paths: &[&str]| {
        paths
            .iter()
            .map(|p| dir.join(p))
            .find(|p| !p.exists())
            .map(|p| format!("{} is missing", p.display()))
    };
    [
        ("mcp-remote", check(&["node_modules/mcp-remote/dist/proxy.js"])),
        ("mcp-proxy", check(&["venv/bin/python", "venv/bin/mcp-proxy"])),
    ]
}

/// The peers that are installed, installing them with benches/peers/setup.sh
/// when some are missing; the others with the reason.
async fn install_peers(notes_url: &str) -> (Vec<PeerTool>, Vec<(&'static str, String)>) {
    let dir = peers_dir();
    let mut setup_failed = None;
    if peer_missing(&dir).iter().any(|(_, m)| m.is_some()) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/setup.sh");
        eprintln!("installing the peers: {} {}", script.display(), dir.display());
        let run = tokio::process::Command::new("sh")
            .arg(&script)
            .arg(&dir)
            .stdin(Stdio::null())
            // Its progress goes to the bench's stderr, never into the table.
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .status();
        setup_failed = match tokio::time::timeout(SETUP_WAIT, run).await {
            Ok(Ok(s)) if s.success() => None,
            Ok(Ok(s)) => Some(format!("setup.sh exited with {s}")),
            Ok(Err(e)) => Some(format!("cannot run setup.sh: {e}")),
            Err(_) => Some(format!("setup.sh took over {} s", SETUP_WAIT.as_secs())),
        };
    }
    let (mut ok, mut unavailable) = (Vec::new(), Vec::new());
    for (name, missing) in peer_missing(&dir) {
        match missing {
            Some(m) => unavailable.push((
                name,
                match &setup_failed {
                    Some(f) => format!("{m}; {f}"),
                    None => m,
                },
            )),
            None => ok.push(match name {
                "mcp-remote" => mcp_remote(&dir, notes_url),
                _ => mcp_proxy(&dir, notes_url),
            }),
        }
    }
    (ok, unavailable)
}

/// One side's figures in the peer comparison.
#[derive(Default, Clone)]
struct Side {
    /// Spawn (or connect) to a `tools/list` with the tool; median.
    start: Option<Duration>,
    /// The bridge only: the same from its disk cache.
    start_cached: Option<Duration>,
    p50: Option<Duration>,
    p99: Option<Duration>,
    tput: Option<f64>,
    cpu_seq: Option<Duration>,
    cpu_tput: Option<Duration>,
    rss: Option<u64>,
    /// Sequential calls measured (fewer than asked when over the time budget).
    seq_calls: usize,
}

/// What launches one side: the bridge with a fresh home (kept alive with the
/// process), or a peer.
enum Launch<'a> {
    Bridge(&'a [(String, String)]),
    Peer(&'a PeerTool),
}

impl Launch<'_> {
    async fn spawn(&self, home: Option<&Path>) -> anyhow::Result<(Bridge, Option<tempfile::TempDir>)> {
        match self {
            Launch::Bridge(servers) => {
                let fresh = match home {
                    Some(_) => None,
                    None => Some(self::home(servers)?),
                };
                let path = home.or(fresh.as_ref().map(|d| d.path())).expect("a home");
                Ok((Bridge::launch(bridge_command(path)?, Stdio::inherit()).await?, fresh))
            }
            // Their stderr is their log (info level and up for some); keep it out
            // of the table.
            Launch::Peer(p) => Ok((Bridge::launch(p.command(), Stdio::null()).await?, None)),
        }
    }
}

/// Spawn to a `tools/list` that has `tool`, `PEER_STARTS` times; the median.
/// For the bridge also from the cache (the same home again).
async fn peer_starts(launch: &Launch<'_>, tool: &str) -> anyhow::Result<(Duration, Option<Duration>)> {
    let (mut cold, mut cached) = (Vec::new(), Vec::new());
    for _ in 0..PEER_STARTS {
        let (mut b, home) = launch.spawn(None).await?;
        b.wait_tools(|t| has(t, tool)).await?;
        cold.push(b.spawned.elapsed());
        b.close().await;
        if let Some(home) = home {
            let (mut b, _) = launch.spawn(Some(home.path())).await?;
            b.wait_tools(|t| has(t, tool)).await?;
            cached.push(b.spawned.elapsed());
            b.close().await;
        }
    }
    let cached = (!cached.is_empty()).then(|| median(cached));
    Ok((median(cold), cached))
}

/// The bridge and each peer in front of the same 2025-11-25 `notes` server,
/// driven by the same client code; the direct client for reference.
async fn peers(notes_url: &str) -> anyhow::Result<()> {
    println!();
    if std::env::var_os("MCP_BRIDGE_BENCH_PEERS").is_some_and(|v| v == "0") {
        println!("peers: skipped (MCP_BRIDGE_BENCH_PEERS=0)");
        return Ok(());
    }
    let (tools, unavailable) = install_peers(notes_url).await;
    for (name, why) in &unavailable {
        println!("peer {name}: unavailable ({why})");
    }
    let list_notes = Call {
        name: "list_notes".into(),
        args: JsonObject::new(),
        expect: "Welcome",
    };
    let servers = [("notes".to_owned(), notes_url.to_owned())];
    // With one server the bridge lists its tools under their own names.
    let bridged = list_notes.clone();

    // Names and launchers of the stdio sides: the bridge, then each peer.
    let mut names = vec!["bridge"];
    let mut launches = vec![Launch::Bridge(&servers)];
    let mut calls = vec![bridged.clone()];
    for p in &tools {
        names.push(p.name);
        launches.push(Launch::Peer(p));
        calls.push(list_notes.clone());
    }
    let mut sides = vec![Side::default(); launches.len()];

    // Start-up, and a long-lived child per side; a peer that fails drops out.
    let mut live: Vec<Option<Bridge>> = Vec::new();
    // The bridge's home must outlive it.
    let mut homes = Vec::new();
    for (i, l) in launches.iter().enumerate() {
        let got = async {
            let (start, cached) = peer_starts(l, &calls[i].name).await?;
            let (mut b, home) = l.spawn(None).await?;
            b.wait_tools(|t| has(t, &calls[i].name)).await?;
            let mut scratch = Vec::new();
            timed_calls(b.client.peer(), &calls[i], WARMUP, &mut scratch).await?;
            anyhow::Ok((start, cached, b, home))
        }
        .await;
        match got {
            Ok((start, cached, b, home)) => {
                sides[i].start = Some(start);
                sides[i].start_cached = cached;
                homes.push(home);
                live.push(Some(b));
            }
            Err(e) if i > 0 => {
                println!("peer {}: unavailable (cannot start: {e:#})", names[i]);
                live.push(None);
            }
            Err(e) => return Err(e.context("the bridge in front of notes")),
        }
    }

    let mut direct_side = Side::default();
    let mut direct_times = Vec::new();
    for _ in 0..PEER_STARTS {
        let start = Instant::now();
        let d = direct(notes_url, None).await?;
        direct_list(&d).await?;
        direct_times.push(start.elapsed());
        close_direct(d).await;
    }
    direct_side.start = Some(median(direct_times));
    let d = direct(notes_url, None).await?;
    direct_list(&d).await?;
    let mut scratch = Vec::new();
    timed_calls(d.peer(), &list_notes, WARMUP, &mut scratch).await?;

    // Sequential latency, in rotating blocks; CPU per side over its blocks.
    let n = PEER_SEQ_CALLS / PEER_BLOCKS;
    let mut lat: Vec<Vec<Duration>> = vec![Vec::new(); live.len()];
    let mut dl = Vec::new();
    let mut cpu = vec![Some(Duration::ZERO); live.len()];
    for block in 0..PEER_BLOCKS {
        timed_calls(d.peer(), &list_notes, n / 2, &mut dl).await?;
        for k in 0..live.len() {
            let i = (k + block) % live.len();
            let Some(b) = &live[i] else { continue };
            let before = tree_cpu(b.pid);
            let until = Instant::now() + PEER_SEQ_BUDGET / PEER_BLOCKS as u32;
            if let Err(e) = timed_calls_until(b.client.peer(), &calls[i], n, until, &mut lat[i]).await {
                println!("peer {}: dropped ({e:#})", names[i]);
                live[i] = None;
                continue;
            }
            cpu[i] = cpu[i]
                .zip(before)
                .zip(tree_cpu(b.pid))
                .map(|((a, x), y)| a + y.saturating_sub(x));
        }
        timed_calls(d.peer(), &list_notes, n - n / 2, &mut dl).await?;
    }
    dl.sort();
    direct_side.seq_calls = dl.len();
    direct_side.p50 = Some(pct(&dl, 50.0));
    direct_side.p99 = Some(pct(&dl, 99.0));
    for i in 0..live.len() {
        if live[i].is_none() || lat[i].is_empty() {
            continue;
        }
        lat[i].sort();
        sides[i].p50 = Some(pct(&lat[i], 50.0));
        sides[i].p99 = Some(pct(&lat[i], 99.0));
        sides[i].cpu_seq = cpu[i].map(|c| c / lat[i].len() as u32);
        sides[i].seq_calls = lat[i].len();
    }

    // Throughput at IN_FLIGHT, two rounds in rotating order.
    let round = PEER_TPUT_CALLS / 2;
    let mut secs = vec![0.0; live.len()];
    let mut direct_secs = 0.0;
    let mut cpu = vec![Some(Duration::ZERO); live.len()];
    for r in 0..2 {
        direct_secs += round as f64 / throughput(d.peer(), &list_notes, round).await?;
        for k in 0..live.len() {
            let i = if r == 0 { k } else { live.len() - 1 - k };
            let Some(b) = &live[i] else { continue };
            let before = tree_cpu(b.pid);
            match throughput(b.client.peer(), &calls[i], round).await {
                Ok(rate) => secs[i] += round as f64 / rate,
                Err(e) => {
                    println!("peer {}: dropped ({e:#})", names[i]);
                    live[i] = None;
                    continue;
                }
            }
            cpu[i] = cpu[i]
                .zip(before)
                .zip(tree_cpu(b.pid))
                .map(|((a, x), y)| a + y.saturating_sub(x));
        }
    }
    direct_side.tput = Some(PEER_TPUT_CALLS as f64 / direct_secs);
    for i in 0..live.len() {
        let Some(b) = &live[i] else { continue };
        sides[i].tput = Some(PEER_TPUT_CALLS as f64 / secs[i]);
        sides[i].cpu_tput = cpu[i].map(|c| c / PEER_TPUT_CALLS as u32);
        sides[i].rss = tree_vm(b.pid, "VmHWM");
    }
    for b in live.into_iter().flatten() {
        b.close().await;
    }
    close_direct(d).await;

    print_peers(&names, &sides, &direct_side, &unavailable);
    Ok(())
}

fn print_peers(names: &[&str], sides: &[Side], direct: &Side, unavailable: &[(&'static str, String)]) {
    let mut head = vec!["metric (notes server, 2025-11-25, list_notes)", "direct"];
    head.extend(names.iter().copied());
    let vs: Vec<String> = names[1..].iter().map(|n| format!("bridge vs {n}")).collect();
    head.extend(vs.iter().map(String::as_str));
    head.push("target (issue)");
    let mut g = Grid::new(&head);
    let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    let bridge = &sides[0];
    let added = |s: &Side| s.p50.zip(direct.p50).map(|(x, d)| x.saturating_sub(d));
    // One row: the direct cell, a cell per side, then a ratio per peer.
    let mut row = |metric: String,
                   dcell: String,
                   cell: &dyn Fn(&Side) -> String,
                   ratio: &dyn Fn(&Side) -> String,
                   target: &str| {
        let mut r = vec![metric, dcell];
        r.extend(sides.iter().map(cell));
        r.extend(sides[1..].iter().map(ratio));
        r.push(target.into());
        g.row(r);
    };
    row(
        format!("spawn -> tools/list with the tool, cold (median of {PEER_STARTS})"),
        opt_ms(direct.start),
        &|s| opt_ms(s.start),
        &|p| format!("{} sooner", times(secs(bridge.start), secs(p.start))),
        ">= 40x sooner than both; <= 10 ms",
    );
    row(
        "spawn -> tools/list, bridge from its cache".into(),
        "-".into(),
        &|s| s.start_cached.map_or("-".into(), ms),
        &|p| format!("{} sooner", times(secs(bridge.start_cached), secs(p.start))),
        "",
    );
    row(
        format!(
            "sequential calls (up to {PEER_SEQ_CALLS} or {} s)",
            PEER_SEQ_BUDGET.as_secs()
        ),
        direct.seq_calls.to_string(),
        &|s| s.seq_calls.to_string(),
        &|_| String::new(),
        "",
    );
    row(
        "per call p50".into(),
        opt_ms(direct.p50),
        &|s| opt_ms(s.p50),
        &|p| times(secs(bridge.p50), secs(p.p50)),
        "",
    );
    row(
        "  added to direct, p50".into(),
        "-".into(),
        &|s| opt_ms(added(s)),
        &|p| format!("{} less", times(secs(added(bridge)), secs(added(p)))),
        "<= 0.1 ms and <= 1/10 of the faster peer's",
    );
    row(
        "per call p99".into(),
        opt_ms(direct.p99),
        &|s| opt_ms(s.p99),
        &|p| times(secs(bridge.p99), secs(p.p99)),
        "",
    );
    row(
        format!("throughput, {IN_FLIGHT} in flight ({PEER_TPUT_CALLS} calls)"),
        direct.tput.map_or("n/a".into(), |r| format!("{r:.0}/s")),
        &|s| s.tput.map_or("n/a".into(), |r| format!("{r:.0}/s")),
        &|p| times(p.tput, bridge.tput),
        ">= 0.95x direct",
    );
    row(
        "CPU per call, sequential (process tree)".into(),
        "-".into(),
        &|s| opt_ms(s.cpu_seq),
        &|p| format!("{} less", times(secs(bridge.cpu_seq), secs(p.cpu_seq))),
        ">= 20x below both",
    );
    row(
        format!("CPU per call, {IN_FLIGHT} in flight (process tree)"),
        "-".into(),
        &|s| opt_ms(s.cpu_tput),
        &|p| format!("{} less", times(secs(bridge.cpu_tput), secs(p.cpu_tput))),
        "",
    );
    row(
        "peak RSS (VmHWM, process tree), 1 upstream".into(),
        "-".into(),
        &|s| mb(s.rss),
        &|p| format!("{} less", times(bridge.rss.map(|b| b as f64), p.rss.map(|b| b as f64))),
        "",
    );
    println!("peers: the bridge and single-server bridges in front of one notes server, driven alike");
    g.print();
    for (name, why) in unavailable {
        println!("peer {name}: unavailable ({why})");
    }
    println!("ratios: bridge throughput / peer's; otherwise peer's figure / bridge's (higher = bridge better)");
}

// ---------------------------------------------------------------- scale

/// Upstream counts for the start-up and memory runs.
const SCALE_UPSTREAMS: [usize; 3] = [1, 10, 50];
/// Cold + cached starts per upstream count.
const SCALE_STARTS: usize = 3;
/// Calls in flight for the throughput ladder, and calls per side and level.
const SCALE_IN_FLIGHT: [usize; 4] = [1, 8, 32, 128];
const SCALE_TPUT_CALLS: usize = 4000;
/// The leak check: RSS after the first `LEAK_FIRST` calls and after `LEAK_CALLS`.
const LEAK_FIRST: usize = 1000;
const LEAK_CALLS: usize = 100_000;

/// Start-up and peak RSS against the number of upstreams, throughput against
/// the calls in flight, RSS growth over many calls, and the binary's size.
async fn scale(exe: &Path) -> anyhow::Result<()> {
    let max = SCALE_UPSTREAMS.iter().copied().max().unwrap_or(0);
    let mut running = Vec::new();
    let mut servers = Vec::new();
    for i in 0..max {
        let store = Metrics::default();
        let r = samples::serve_http(move || store.clone(), false, 0).await?;
        servers.push((format!("m{i:02}"), r.url.clone()));
        running.push(r);
    }

    let mut g = Grid::new(&["scale: upstreams (metrics servers)", "1", "10", "50", "target (issue)"]);
    let (mut cold, mut cached, mut rss, mut threads) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for n in SCALE_UPSTREAMS {
        let servers = &servers[..n];
        // With one server the bridge lists its tools under their own names.
        let names: Vec<String> = match servers {
            [_] => vec!["echo".to_owned()],
            _ => servers.iter().map(|(s, _)| format!("{s}__echo")).collect(),
        };
        let all = |tools: &[Tool]| names.iter().all(|n| has(tools, n));
        let (mut c, mut k, mut peak) = (Vec::new(), Vec::new(), 0);
        let mut hits = 0;
        let mut thr = None;
        for _ in 0..SCALE_STARTS {
            let dir = home(servers)?;
            let mut b = Bridge::spawn(dir.path()).await?;
            b.wait_tools(all).await?;
            c.push(b.spawned.elapsed());
            peak = peak.max(vm(b.pid, "VmHWM").unwrap_or(0));
            thr = status_field(b.pid, "Threads");
            b.close().await;

            let mut b = Bridge::spawn(dir.path()).await?;
            let first = b.list().await?;
            hits += usize::from(all(&first));
            k.push(b.spawned.elapsed());
            b.wait_tools(all).await?;
            b.close().await;
        }
        cold.push(ms(median(c)));
        cached.push(format!("{} ({hits}/{SCALE_STARTS} full)", ms(median(k))));
        rss.push(mb(Some(peak)));
        threads.push(thr.map_or("n/a".into(), |t| t.to_string()));
    }
    let row = |label: &str, cells: Vec<String>, target: &str| {
        let mut r = vec![label.to_owned()];
        r.extend(cells);
        r.push(target.into());
        r
    };
    g.row(row(
        &format!("spawn -> all upstreams' tools listed, cold (median of {SCALE_STARTS})"),
        cold,
        "",
    ));
    g.row(row(
        "spawn -> first tools/list, cached (complete from cache)",
        cached,
        "<= 10 ms",
    ));
    g.row(row("peak RSS (VmHWM) once all listed (max)", rss, "<= 10 MB with 10"));
    g.row(row("threads once all listed", threads, ""));
    println!();
    g.print();

    // Throughput against calls in flight: one upstream, the bridge and a direct
    // client whose transport allows 256 in flight (as the bridge's upstream).
    let metrics_url = &servers[0].1;
    let dir = home(&servers[..1])?;
    let mut b = Bridge::spawn(dir.path()).await?;
    b.wait_tools(|t| has(t, "echo")).await?;
    let d = direct(metrics_url, Some(256)).await?;
    direct_list(&d).await?;
    let echo = Call {
        name: "echo".into(),
        args: json!({ "text": "hi" }).as_object().cloned().unwrap_or_default(),
        expect: "hi",
    };
    let bridged = echo.clone();
    let mut head = vec!["scale: calls in flight (echo, 1 upstream)".to_owned()];
    head.extend(SCALE_IN_FLIGHT.iter().map(|n| n.to_string()));
    head.push("target (issue)".into());
    let mut g = Grid::new(&head.iter().map(String::as_str).collect::<Vec<_>>());
    let (mut dr, mut br, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for k in SCALE_IN_FLIGHT {
        let half = SCALE_TPUT_CALLS / 2;
        // Two rounds each, in opposite orders.
        let mut ds = half as f64 / throughput_at(d.peer(), &echo, half, k).await?;
        let mut bs = half as f64 / throughput_at(b.client.peer(), &bridged, half, k).await?;
        bs += half as f64 / throughput_at(b.client.peer(), &bridged, half, k).await?;
        ds += half as f64 / throughput_at(d.peer(), &echo, half, k).await?;
        let (x, y) = (SCALE_TPUT_CALLS as f64 / ds, SCALE_TPUT_CALLS as f64 / bs);
        dr.push(format!("{x:.0}/s"));
        br.push(format!("{y:.0}/s"));
        ratios.push(ratio(x, y));
    }
    g.row(row(
        &format!("direct (transport allowing 256), {SCALE_TPUT_CALLS} calls"),
        dr,
        "",
    ));
    g.row(row("bridge", br, ""));
    g.row(row("bridge / direct", ratios, ">= 0.95x at 32"));
    println!();
    g.print();
    b.close().await;
    close_direct(d).await;

    // Leak check for the request id / progress / cancellation maps.
    let mut b = Bridge::spawn(dir.path()).await?;
    b.wait_tools(|t| has(t, "echo")).await?;
    throughput(b.client.peer(), &bridged, LEAK_FIRST).await?;
    let (rss1, anon1) = (vm(b.pid, "VmRSS"), vm(b.pid, "RssAnon"));
    let start = Instant::now();
    throughput(b.client.peer(), &bridged, LEAK_CALLS - LEAK_FIRST).await?;
    let took = start.elapsed();
    let (rss2, anon2) = (vm(b.pid, "VmRSS"), vm(b.pid, "RssAnon"));
    let growth = |a: Option<u64>, b: Option<u64>| {
        a.zip(b).map_or("n/a".into(), |(a, b)| {
            format!("{:+.1} MB", (b as f64 - a as f64) / 1_048_576.0)
        })
    };
    println!();
    println!(
        "leak check ({IN_FLIGHT} in flight, 1 upstream): RSS after {LEAK_FIRST} calls {} (anon {}), \
         after {LEAK_CALLS} {} (anon {}): growth {} (anon {}); {:.1} s",
        mb(rss1),
        mb(anon1),
        mb(rss2),
        mb(anon2),
        growth(rss1, rss2),
        growth(anon1, anon2),
        took.as_secs_f64()
    );
    b.close().await;
    for r in running {
        r.stop.cancel();
    }

    let size = std::fs::metadata(exe).map(|m| m.len()).ok();
    println!(
        "binary: {} bytes ({}), {}",
        size.map_or("n/a".into(), |s| s.to_string()),
        mb(size),
        exe.display()
    );
    Ok(())
}

/// Which profiles run: `MCP_BRIDGE_BENCH_PROFILE` (loopback, network or all).
fn profiles() -> anyhow::Result<(bool, bool)> {
    let v = std::env::var("MCP_BRIDGE_BENCH_PROFILE").unwrap_or_default();
    match v.as_str() {
        "" | "all" => Ok((true, true)),
        "loopback" => Ok((true, false)),
        "network" => Ok((false, true)),
        other => bail!("MCP_BRIDGE_BENCH_PROFILE={other}: expected loopback, network or all"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let t0 = Instant::now();
    let exe = bridge_exe()?;
    let (loopback, network) = profiles()?;
    println!("mcp-bridge bench: {}", exe.display());
    println!("cores: {}", std::thread::available_parallelism().map_or(0, |n| n.get()));
    if loopback {
        loopback_profile(&exe).await?;
    }
    if network {
        println!("\n=== network profile (HTTPS, test CA, latency proxy; 127.0.0.1)");
        net::run().await.context("network profile")?;
    }
    println!("bench took {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}

async fn loopback_profile(exe: &Path) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let notes_store = Notes::seeded();
    let notes = samples::serve_http(move || notes_store.clone(), true, 0).await?;
    let metrics_store = Metrics::default();
    let metrics = samples::serve_http(move || metrics_store.clone(), false, 0).await?;
    println!("\n=== loopback profile (plain HTTP, 127.0.0.1, no added latency)");
    println!(
        "sample servers: metrics {} (2026-07-28, stateless), notes {} (2025-11-25, sessions)",
        metrics.url, notes.url
    );

    let mut t = Table::default();
    startup(&metrics.url, &mut t).await.context("startup run")?;
    calls(&metrics.url, &notes.url, &mut t).await.context("call runs")?;
    telemetry_cost(&metrics.url, &notes.url, &mut t)
        .await
        .context("telemetry runs")?;
    memory(&mut t).await.context("memory run")?;

    println!();
    t.print();
    println!("\nbridged = IDE -> stdio -> mcp-bridge -> HTTP -> server; direct = rmcp client -> HTTP -> server.");
    println!("CPU from /proc/<pid>/stat utime+stime ({CLK_TCK} ticks/s); targets are for reference, not asserted.");
    peers(&notes.url).await.context("peer runs")?;
    scale(exe).await.context("scale runs")?;
    net::stall(None).await.context("loopback stall")?;
    println!("loopback profile took {:.1} s", t0.elapsed().as_secs_f64());
    notes.stop.cancel();
    metrics.stop.cancel();
    Ok(())
}
