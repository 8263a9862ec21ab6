//! The real-network profile of `benches/bridge.rs`, still on 127.0.0.1: the
//! `notes` sample server (2025-11-25, sessions, SSE answers) behind a TLS server
//! (certificate for 127.0.0.1 from the test CA in tests/fixtures/tls; ALPN `h2`
//! and `http/1.1`, both served by hyper-util's auto builder) behind a latency
//! proxy that holds every chunk for RTT/2 in each direction and the first
//! client bytes of a connection one RTT more (the TCP handshake a loopback
//! `connect` does not pay). Every side trusts the CA its own way: the bridge
//! with `SSL_CERT_FILE`, the direct client with the CA as its only root,
//! mcp-remote with `NODE_EXTRA_CA_CERTS`, mcp-proxy (httpx) with `SSL_CERT_FILE`.
//!
//! The TLS server counts TCP connections (each one also a TLS handshake) and
//! HTTP requests, which is how the round trips of a cold start are counted.
//!
//! Also the delayed-ACK stall: sequential p50 against the same server written
//! with and without TCP_NODELAY, on plain loopback and at 20 ms RTT, for the
//! bridge as built and with `[http] keep_alive = false`, and the direct client.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::*;

/// Round-trip times of the network profiles.
pub const RTTS_MS: [u64; 2] = [20, 80];
/// The RTT of the stall comparison's network half.
const STALL_RTT_MS: u64 = 20;
/// Cold (and, for the bridge, cached) starts per side.
const NET_STARTS: usize = 3;
const NET_WARMUP: usize = 10;
/// Sequential calls per side, after the warm-up.
const NET_SEQ: usize = 60;
/// (calls in flight, calls) for the throughput runs.
const NET_TPUT: [(usize, usize); 3] = [(1, 20), (8, 80), (32, 300)];
/// Sequential calls per side and server in the stall comparison.
const STALL_SEQ: usize = 40;
const STALL_WARMUP: usize = 5;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

fn ca_file() -> PathBuf {
    fixture("ca.pem")
}

// ---------------------------------------------------------------- servers

/// What the TLS server saw: TCP connections (= TLS handshakes), those that
/// negotiated h2, and HTTP requests (and those over h2).
#[derive(Default)]
struct Stats {
    conns: AtomicUsize,
    h2_conns: AtomicUsize,
    requests: AtomicUsize,
    h2_requests: AtomicUsize,
}

#[derive(Clone, Copy, Default, Debug, PartialEq)]
struct Seen {
    conns: usize,
    h2_conns: usize,
    requests: usize,
    h2_requests: usize,
}

impl Stats {
    fn now(&self) -> Seen {
        Seen {
            conns: self.conns.load(Ordering::SeqCst),
            h2_conns: self.h2_conns.load(Ordering::SeqCst),
            requests: self.requests.load(Ordering::SeqCst),
            h2_requests: self.h2_requests.load(Ordering::SeqCst),
        }
    }

    fn since(&self, before: Seen) -> Seen {
        let n = self.now();
        Seen {
            conns: n.conns - before.conns,
            h2_conns: n.h2_conns - before.h2_conns,
            requests: n.requests - before.requests,
            h2_requests: n.h2_requests - before.h2_requests,
        }
    }
}

impl Seen {
    /// Round trips if nothing overlapped: a TCP and a TLS 1.3 handshake per
    /// connection, one per request.
    fn round_trips(&self) -> usize {
        2 * self.conns + self.requests
    }

    /// The HTTP version of the requests (of the connections, if none).
    fn protocol(&self) -> &'static str {
        let (h2, all) = match self.requests {
            0 => (self.h2_conns, self.conns),
            n => (self.h2_requests, n),
        };
        match h2 {
            0 => "http/1.1",
            n if n == all => "h2",
            _ => "mixed",
        }
    }
}

/// Terminate TLS on 127.0.0.1 (ALPN h2 and http/1.1) and serve `app` over
/// whichever HTTP version the client speaks. `nodelay` as in
/// `samples::serve_router`, on the accepted sockets.
async fn tls_server(
    app: axum::Router,
    nodelay: bool,
    stop: CancellationToken,
) -> anyhow::Result<(SocketAddr, Arc<Stats>)> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(fixture("server.pem"))?.collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_file(fixture("server.key"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stats = Arc::new(Stats::default());
    let st = stats.clone();
    let service = TowerToHyperService::new(app);
    tokio::spawn(async move {
        loop {
            let tcp = tokio::select! {
                a = listener.accept() => match a {
                    Ok((tcp, _)) => tcp,
                    Err(_) => continue,
                },
                _ = stop.cancelled() => return,
            };
            let _ = tcp.set_nodelay(nodelay);
            st.conns.fetch_add(1, Ordering::SeqCst);
            let (acceptor, st, stop, service) = (acceptor.clone(), st.clone(), stop.clone(), service.clone());
            tokio::spawn(async move {
                let Ok(Ok(tls)) = tokio::time::timeout(WAIT, acceptor.accept(tcp)).await else {
                    return;
                };
                if tls.get_ref().1.alpn_protocol() == Some(&b"h2"[..]) {
                    st.h2_conns.fetch_add(1, Ordering::SeqCst);
                }
                let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    st.requests.fetch_add(1, Ordering::SeqCst);
                    if req.version() == hyper::Version::HTTP_2 {
                        st.h2_requests.fetch_add(1, Ordering::SeqCst);
                    }
                    hyper::service::Service::call(&service, req)
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let conn = builder.serve_connection(TokioIo::new(tls), svc);
                tokio::select! {
                    _ = conn => {}
                    _ = stop.cancelled() => {}
                }
            });
        }
    });
    Ok((addr, stats))
}

/// Check that the TLS server at `addr` serves a client that offers only h2 over
/// HTTP/2: ALPN picks h2, and an `initialize` POSTed over h2 is answered.
async fn h2_probe(addr: SocketAddr) -> anyhow::Result<()> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca_file())? {
        roots.add(c?)?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await?;
    ensure!(
        tls.get_ref().1.alpn_protocol() == Some(&b"h2"[..]),
        "ALPN did not pick h2"
    );
    let (client, conn) = h2::client::handshake(tls).await?;
    tokio::spawn(conn);
    let mut client = client.ready().await?;
    let req = http::Request::post(format!("https://{addr}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(())?;
    let (resp, mut body) = client.send_request(req, false)?;
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"h2-probe","version":"0"}}}"#;
    body.send_data(axum::body::Bytes::from_static(init.as_bytes()), true)?;
    let resp = resp.await?;
    ensure!(resp.status() == 200, "initialize over h2: HTTP {}", resp.status());
    let mut stream = resp.into_body();
    let mut text = String::new();
    while !text.contains("serverInfo") {
        match stream.data().await {
            Some(chunk) => {
                let chunk = chunk?;
                let _ = stream.flow_control().release_capacity(chunk.len());
                text.push_str(&String::from_utf8_lossy(&chunk));
            }
            None => bail!("initialize over h2: no result in {text:?}"),
        }
    }
    Ok(())
}

/// A TCP proxy on 127.0.0.1 in front of `upstream` that delays every chunk by
/// `rtt / 2` in each direction, in order, without limiting throughput (each
/// chunk is stamped when read and written when its time comes), plus one `rtt`
/// on a connection's first client bytes: a real `connect` costs a round trip
/// before the client can send anything, one on loopback does not.
async fn latency_proxy(upstream: SocketAddr, rtt: Duration, stop: CancellationToken) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let client = tokio::select! {
                a = listener.accept() => match a {
                    Ok((tcp, _)) => tcp,
                    Err(_) => continue,
                },
                _ = stop.cancelled() => return,
            };
            let stop = stop.clone();
            tokio::spawn(async move {
                let Ok(Ok(server)) = tokio::time::timeout(WAIT, TcpStream::connect(upstream)).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let up = delayed_pipe(cr, sw, rtt / 2, rtt);
                let down = delayed_pipe(sr, cw, rtt / 2, Duration::ZERO);
                tokio::select! {
                    _ = futures::future::join(up, down) => {}
                    _ = stop.cancelled() => {}
                }
            });
        }
    });
    Ok(addr)
}

/// Copy `r` to `w`, each chunk `delay` after it was read (`first_extra` more for
/// the first); EOF is passed on (as a write shutdown) the same way.
async fn delayed_pipe(
    mut r: impl tokio::io::AsyncRead + Unpin,
    mut w: impl tokio::io::AsyncWrite + Unpin,
    delay: Duration,
    first_extra: Duration,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(tokio::time::Instant, Option<Vec<u8>>)>();
    let reader = async move {
        let mut extra = first_extra;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = r.read(&mut buf).await.unwrap_or(0);
            let due = tokio::time::Instant::now() + delay + std::mem::take(&mut extra);
            let chunk = (n > 0).then(|| buf[..n].to_vec());
            if tx.send((due, chunk)).is_err() || n == 0 {
                return;
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            match chunk {
                Some(c) => {
                    if w.write_all(&c).await.is_err() {
                        return;
                    }
                }
                None => {
                    let _ = w.shutdown().await;
                    return;
                }
            }
        }
    };
    futures::future::join(reader, writer).await;
}

/// The notes server, reachable at `url`: plain HTTP on 127.0.0.1 (`rtt` None),
/// or HTTPS through the latency proxy. `stats` for the HTTPS one.
struct Endpoint {
    url: String,
    /// The TLS server itself (no added latency), for the h2 check.
    tls: Option<SocketAddr>,
    stats: Option<Arc<Stats>>,
    stop: CancellationToken,
}

impl Endpoint {
    async fn start(nodelay: bool, rtt: Option<Duration>) -> anyhow::Result<Endpoint> {
        let store = Notes::seeded();
        let (app, stop) = samples::router(move || store.clone(), true);
        match rtt {
            None => {
                let r = samples::serve_router(app, stop, 0, nodelay).await?;
                Ok(Endpoint {
                    url: r.url,
                    tls: None,
                    stats: None,
                    stop: r.stop,
                })
            }
            Some(rtt) => {
                let (tls, stats) = tls_server(app, nodelay, stop.clone()).await?;
                let proxy = latency_proxy(tls, rtt, stop.clone()).await?;
                Ok(Endpoint {
                    url: format!("https://127.0.0.1:{}/mcp", proxy.port()),
                    tls: Some(tls),
                    stats: Some(stats),
                    stop,
                })
            }
        }
    }

    fn seen(&self) -> Seen {
        self.stats.as_ref().map_or_else(Seen::default, |s| s.now())
    }

    fn since(&self, before: Seen) -> Seen {
        self.stats.as_ref().map_or_else(Seen::default, |s| s.since(before))
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

// ---------------------------------------------------------------- sides

/// A reqwest client that trusts only the test CA; `pooled` keeps idle
/// connections (reqwest's default), otherwise none, as rmcp's default client.
fn ca_client(pooled: bool) -> anyhow::Result<reqwest::Client> {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca_file())?)?;
    let mut b = reqwest::Client::builder().tls_certs_only([ca]);
    if !pooled {
        b = b.pool_max_idle_per_host(0);
    }
    Ok(b.build()?)
}

enum Kind {
    /// The release binary; `keep_alive` written as `[http] keep_alive` when set.
    Bridge {
        keep_alive: Option<bool>,
    },
    Direct {
        pooled: bool,
    },
    Peer(PeerTool),
}

struct NetSide {
    name: String,
    kind: Kind,
}

/// A started side: a stdio child (with the bridge's home) or a direct client.
enum Live {
    Stdio(Bridge, Option<tempfile::TempDir>),
    Direct(Direct),
}

impl Live {
    fn peer(&self) -> &Peer<RoleClient> {
        match self {
            Live::Stdio(b, _) => b.client.peer(),
            Live::Direct(d) => d.peer(),
        }
    }

    fn pid(&self) -> Option<u32> {
        match self {
            Live::Stdio(b, _) => b.pid,
            Live::Direct(_) => None,
        }
    }

    /// Close; the bridge's home, to start again from its cache.
    async fn close(self) -> Option<tempfile::TempDir> {
        match self {
            Live::Stdio(b, home) => {
                b.close().await;
                home
            }
            Live::Direct(d) => {
                close_direct(d).await;
                None
            }
        }
    }
}

fn list_notes() -> Call {
    Call {
        name: "list_notes".into(),
        args: JsonObject::new(),
        expect: "Welcome",
    }
}

impl NetSide {
    fn bridge(name: &str, keep_alive: Option<bool>) -> NetSide {
        NetSide {
            name: name.into(),
            kind: Kind::Bridge { keep_alive },
        }
    }

    fn direct(name: &str, pooled: bool) -> NetSide {
        NetSide {
            name: name.into(),
            kind: Kind::Direct { pooled },
        }
    }

    /// Start (the bridge in `home` when given, else a fresh one) and wait until
    /// `list_notes` is listed.
    async fn start(&self, url: &str, home: Option<tempfile::TempDir>) -> anyhow::Result<Live> {
        let tool = "list_notes";
        match &self.kind {
            Kind::Bridge { keep_alive } => {
                let home = match home {
                    Some(h) => h,
                    None => {
                        let dir = tempfile::tempdir()?;
                        let mut cfg = String::from("[policy]\nmax_tools = 0\n\n");
                        if let Some(k) = keep_alive {
                            cfg.push_str(&format!("[http]\nkeep_alive = {k}\n\n"));
                        }
                        cfg.push_str(&format!("[[servers]]\nname = \"notes\"\nurl = \"{url}\"\n"));
                        std::fs::write(dir.path().join("config.toml"), cfg)?;
                        dir
                    }
                };
                let mut cmd = bridge_command(home.path())?;
                cmd.env("SSL_CERT_FILE", ca_file()).env_remove("SSL_CERT_DIR");
                let mut b = Bridge::launch(cmd, Stdio::inherit()).await?;
                b.wait_tools(|t| has(t, tool)).await?;
                Ok(Live::Stdio(b, Some(home)))
            }
            Kind::Direct { pooled } => {
                let d = direct_with(url, Some(256), Some(ca_client(*pooled)?)).await?;
                let tools = direct_list(&d).await?;
                ensure!(has(&tools, tool), "the direct client does not see {tool}");
                Ok(Live::Direct(d))
            }
            Kind::Peer(p) => {
                let mut b = Bridge::launch(p.command(), Stdio::null()).await?;
                b.wait_tools(|t| has(t, tool)).await?;
                Ok(Live::Stdio(b, None))
            }
        }
    }
}

// ---------------------------------------------------------------- one RTT

#[derive(Default)]
struct NetFigures {
    cold: Option<Duration>,
    cached: Option<Duration>,
    cold_seen: Option<Seen>,
    calls_seen: Option<Seen>,
    p50: Option<Duration>,
    p99: Option<Duration>,
    /// Calls per second at each of `NET_TPUT`.
    tput: Vec<Option<f64>>,
    cpu: Option<Duration>,
    error: Option<String>,
}

async fn measure(side: &NetSide, ep: &Endpoint) -> anyhow::Result<NetFigures> {
    let mut f = NetFigures::default();
    let call = list_notes();
    let (mut cold, mut cached) = (Vec::new(), Vec::new());
    for _ in 0..NET_STARTS {
        let before = ep.seen();
        let t = Instant::now();
        let live = side.start(&ep.url, None).await?;
        cold.push(t.elapsed());
        f.cold_seen = Some(ep.since(before));
        if let Some(home) = live.close().await {
            let t = Instant::now();
            let live = side.start(&ep.url, Some(home)).await?;
            cached.push(t.elapsed());
            live.close().await;
        }
    }
    f.cold = Some(median(cold));
    f.cached = (!cached.is_empty()).then(|| median(cached));

    let live = side.start(&ep.url, None).await?;
    let peer = live.peer();
    let mut scratch = Vec::new();
    timed_calls(peer, &call, NET_WARMUP, &mut scratch).await?;
    let cpu0 = tree_cpu(live.pid());
    let before = ep.seen();
    let mut lat = Vec::new();
    timed_calls(peer, &call, NET_SEQ, &mut lat).await?;
    f.calls_seen = Some(ep.since(before));
    lat.sort();
    f.p50 = Some(pct(&lat, 50.0));
    f.p99 = Some(pct(&lat, 99.0));
    let mut calls = NET_SEQ;
    for (in_flight, n) in NET_TPUT {
        f.tput.push(Some(throughput_at(peer, &call, n, in_flight).await?));
        calls += n;
    }
    f.cpu = cpu0
        .zip(tree_cpu(live.pid()))
        .map(|(a, b)| b.saturating_sub(a) / calls as u32);
    live.close().await;
    Ok(f)
}

/// The peers in front of `url`, trusting the test CA; the others with why not.
async fn net_peers(url: &str) -> (Vec<PeerTool>, Vec<(&'static str, String)>) {
    let (mut tools, unavailable) = install_peers(url).await;
    for p in &mut tools {
        match p.name {
            "mcp-remote" => p.env.push(("NODE_EXTRA_CA_CERTS", ca_file())),
            _ => p.env.push(("SSL_CERT_FILE", ca_file())),
        }
    }
    (tools, unavailable)
}

fn met(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "n/a",
    }
}

async fn one_rtt(rtt_ms: u64) -> anyhow::Result<()> {
    let rtt = Duration::from_millis(rtt_ms);
    let ep = Endpoint::start(true, Some(rtt)).await?;
    let t0 = Instant::now();
    let mut sides = vec![
        NetSide::direct("direct", true),
        NetSide::bridge("bridge", None),
        NetSide::bridge("bridge ka=off", Some(false)),
    ];
    let skip_peers = std::env::var_os("MCP_BRIDGE_BENCH_PEERS").is_some_and(|v| v == "0");
    let mut unavailable = Vec::new();
    if !skip_peers {
        let (tools, un) = net_peers(&ep.url).await;
        unavailable = un;
        for p in tools {
            sides.push(NetSide {
                name: p.name.into(),
                kind: Kind::Peer(p),
            });
        }
    }
    let mut figs = Vec::new();
    for s in &sides {
        let f = match measure(s, &ep).await {
            Ok(f) => f,
            Err(e) if matches!(s.kind, Kind::Peer(_)) => NetFigures {
                error: Some(format!("{e:#}")),
                ..Default::default()
            },
            Err(e) => return Err(e.context(format!("{} at {rtt_ms} ms RTT", s.name))),
        };
        figs.push(f);
    }

    let names: Vec<&str> = sides.iter().map(|s| s.name.as_str()).collect();
    let mut head = vec!["metric"];
    head.extend(&names);
    head.push("target (bridge)");
    let mut g = Grid::new(&head);
    let fig = |name: &str| names.iter().position(|n| *n == name).map(|i| &figs[i]);
    let (direct, bridge, remote) = (fig("direct"), fig("bridge"), fig("mcp-remote"));
    let mut row = |metric: String, cell: &dyn Fn(&NetFigures) -> String, target: String| {
        let mut r = vec![metric];
        r.extend(
            figs.iter()
                .map(|f| if f.error.is_some() { "-".into() } else { cell(f) }),
        );
        r.push(target);
        g.row(r);
    };
    let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    row(
        format!("spawn -> tools listed, cold (median of {NET_STARTS})"),
        &|f| opt_ms(f.cold),
        String::new(),
    );
    row(
        "spawn -> tools listed, from the cache".into(),
        &|f| f.cached.map_or("-".into(), ms),
        String::new(),
    );
    let rt = |f: &NetFigures| f.cold_seen.map(|s| s.round_trips());
    let rt_ok = bridge.and_then(rt).zip(direct.and_then(rt)).map(|(b, d)| b <= d);
    row(
        "cold start: TCP+TLS connections / HTTP requests".into(),
        &|f| {
            f.cold_seen
                .map_or("-".into(), |s| format!("{} / {}", s.conns, s.requests))
        },
        String::new(),
    );
    row(
        "  round trips if none overlapped (2 x conns + reqs)".into(),
        &|f| rt(f).map_or("-".into(), |n| n.to_string()),
        format!("<= direct: {}", met(rt_ok)),
    );
    row(
        "  cold start / RTT".into(),
        &|f| secs(f.cold).map_or("-".into(), |c| format!("{:.1}", c / rtt.as_secs_f64())),
        String::new(),
    );
    row(
        format!("calls: protocol; connections opened per {NET_SEQ} calls"),
        &|f| {
            f.calls_seen
                .map_or("-".into(), |s| format!("{}; {}", s.protocol(), s.conns))
        },
        String::new(),
    );
    let p50_ok = bridge
        .and_then(|b| b.p50)
        .zip(direct.and_then(|d| d.p50))
        .map(|(b, d)| {
            let near_direct = b <= d + Duration::from_millis(1);
            let vs_remote = remote.and_then(|r| r.p50).is_none_or(|r| b <= r);
            near_direct && vs_remote
        });
    row(
        format!("sequential p50 ({NET_SEQ} calls)"),
        &|f| opt_ms(f.p50),
        format!("<= direct + 1 ms and <= mcp-remote: {}", met(p50_ok)),
    );
    row(
        format!("sequential p99 ({NET_SEQ} calls)"),
        &|f| opt_ms(f.p99),
        String::new(),
    );
    let dp50 = direct.and_then(|d| d.p50);
    row(
        "  p50 added to direct".into(),
        &|f| {
            f.p50.zip(dp50).map_or("-".into(), |(x, d)| {
                format!("{:+.2} ms", (x.as_secs_f64() - d.as_secs_f64()) * 1e3)
            })
        },
        String::new(),
    );
    for (i, (in_flight, n)) in NET_TPUT.iter().enumerate() {
        let t = |f: &NetFigures| f.tput.get(i).copied().flatten();
        let target = if *in_flight == 32 {
            let ok = bridge.and_then(t).zip(direct.and_then(t)).map(|(b, d)| b >= d);
            let r = bridge
                .and_then(t)
                .zip(direct.and_then(t))
                .map_or("n/a".into(), |(b, d)| format!("{:.2}x", b / d));
            format!(">= 1.0x direct ({r}): {}", met(ok))
        } else {
            String::new()
        };
        row(
            format!("throughput, {in_flight} in flight ({n} calls)"),
            &|f| t(f).map_or("-".into(), |r| format!("{r:.1}/s")),
            target,
        );
    }
    let cpu_ok = bridge
        .and_then(|b| secs(b.cpu))
        .zip(remote.and_then(|r| secs(r.cpu)))
        .map(|(b, r)| r >= 5.0 * b);
    let cpu_x = bridge
        .and_then(|b| secs(b.cpu))
        .zip(remote.and_then(|r| secs(r.cpu)))
        .map_or("n/a".into(), |(b, r)| format!("{:.1}x", r / b));
    row(
        "CPU per call (process tree, all calls above)".into(),
        &|f| f.cpu.map_or("-".into(), ms),
        format!(">= 5x below mcp-remote ({cpu_x}): {}", met(cpu_ok)),
    );
    println!();
    println!(
        "network profile, {rtt_ms} ms RTT: HTTPS (test CA) through a latency proxy on 127.0.0.1, notes server (TCP_NODELAY), list_notes ({:.1} s)",
        t0.elapsed().as_secs_f64()
    );
    g.print();
    for (s, f) in sides.iter().zip(&figs) {
        if let Some(e) = &f.error {
            println!("peer {}: unavailable ({e})", s.name);
        }
    }
    for (name, why) in &unavailable {
        println!("peer {name}: unavailable ({why})");
    }
    Ok(())
}

/// Both RTT profiles, then the stall comparison at `STALL_RTT_MS`.
pub async fn run() -> anyhow::Result<()> {
    let t0 = Instant::now();
    let ep = Endpoint::start(true, Some(Duration::ZERO)).await?;
    let before = ep.seen();
    let probe = tokio::time::timeout(WAIT, h2_probe(ep.tls.context("a TLS endpoint")?)).await;
    let seen = ep.since(before);
    match probe {
        Ok(Ok(())) => println!(
            "h2 check: a client offering only h2 got h2 and an initialize answer ({} h2 connection, {} h2 request seen)",
            seen.h2_conns, seen.h2_requests
        ),
        Ok(Err(e)) => println!("h2 check: FAILED ({e:#})"),
        Err(_) => println!("h2 check: FAILED (no answer in {} s)", WAIT.as_secs()),
    }
    drop(ep);
    for rtt in RTTS_MS {
        one_rtt(rtt).await?;
    }
    stall(Some(STALL_RTT_MS)).await?;
    println!(
        "\nnetwork profile: 'bridge' is the binary as built (its default [http] keep_alive); 'bridge ka=off' has [http] keep_alive = false (a new connection per request, the default before connection reuse).\n\
         The proxy adds RTT/2 each way and one RTT before a connection's first bytes (the TCP handshake); \
         round trips counted by the TLS server ({:.1} s)",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

// ---------------------------------------------------------------- the stall

/// Sequential p50 of `side` against `ep` (`STALL_SEQ` calls after a warm-up),
/// and the connections it opened for them.
async fn stall_p50(side: &NetSide, ep: &Endpoint) -> anyhow::Result<(Duration, Seen)> {
    let live = side.start(&ep.url, None).await?;
    let mut scratch = Vec::new();
    timed_calls(live.peer(), &list_notes(), STALL_WARMUP, &mut scratch).await?;
    let before = ep.seen();
    let mut lat = Vec::new();
    timed_calls(live.peer(), &list_notes(), STALL_SEQ, &mut lat).await?;
    let seen = ep.since(before);
    live.close().await;
    Ok((median(lat), seen))
}

/// The delayed-ACK stall: the notes server with and without TCP_NODELAY, on
/// plain loopback (`rtt_ms` None) or HTTPS through the latency proxy.
pub async fn stall(rtt_ms: Option<u64>) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let rtt = rtt_ms.map(Duration::from_millis);
    let with = Endpoint::start(true, rtt).await?;
    let without = Endpoint::start(false, rtt).await?;
    let sides = [
        NetSide::direct("direct (pooled)", true),
        NetSide::direct("direct (no pool)", false),
        NetSide::bridge("bridge (as built)", None),
        NetSide::bridge("bridge, [http] keep_alive = false", Some(false)),
    ];
    let mut g = Grid::new(&[
        "side",
        "p50, TCP_NODELAY",
        "p50, no TCP_NODELAY",
        "stall (difference)",
        "conns per call (TLS only)",
    ]);
    for s in &sides {
        let (a, seen) = stall_p50(s, &with)
            .await
            .with_context(|| format!("{} (nodelay)", s.name))?;
        let (b, _) = stall_p50(s, &without)
            .await
            .with_context(|| format!("{} (no nodelay)", s.name))?;
        let conns = if rtt.is_some() {
            format!("{:.2}", seen.conns as f64 / STALL_SEQ as f64)
        } else {
            "-".into()
        };
        g.row(vec![
            s.name.clone(),
            ms(a),
            ms(b),
            format!("{:+.2} ms", (b.as_secs_f64() - a.as_secs_f64()) * 1e3),
            conns,
        ]);
    }
    println!();
    match rtt_ms {
        None => println!(
            "delayed-ACK stall, loopback (plain HTTP, no added latency), notes list_notes, {STALL_SEQ} sequential calls"
        ),
        Some(r) => println!(
            "delayed-ACK stall, {r} ms RTT (HTTPS via the latency proxy), notes list_notes, {STALL_SEQ} sequential calls"
        ),
    }
    g.print();
    println!("({:.1} s)", t0.elapsed().as_secs_f64());
    Ok(())
}
