//! Connections on a real network's terms: reused by default, HTTP/2 when the
//! server offers it by ALPN (concurrent calls share one connection), and a
//! server that stalls on reused connections (SSE written in pieces without
//! TCP_NODELAY, meeting delayed ACKs) found and given new connections, alone.
//! Speed is the bench's business (`benches/bridge.rs`, network profile); these
//! tests check which connections carry which requests.

mod common;

use mcp_bridge::util::Locked;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::tls::fixture;
use common::*;
use rmcp::ServiceExt;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One request as an HTTPS server saw it.
#[derive(Clone, Debug)]
struct Seen {
    connection: usize,
    version: http::Version,
    /// The JSON-RPC method of a POST, if any.
    method: Option<String>,
}

/// `s`'s app over TLS on 127.0.0.1 (certificate from the test CA), offering
/// `alpn`, serving HTTP/1.1 and HTTP/2 as negotiated, recording each request.
async fn https_server(
    s: &TestServer,
    alpn: &[&[u8]],
    stop: CancellationToken,
) -> (String, Arc<Mutex<Vec<Seen>>>, Arc<AtomicUsize>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(common::tls::server_config(alpn));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://127.0.0.1:{}/mcp", listener.local_addr().unwrap().port());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let app = app(s);
    let (log, count) = (seen.clone(), connections.clone());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = tokio::select! {
                a = listener.accept() => a.unwrap(),
                _ = stop.cancelled() => return,
            };
            let _ = tcp.set_nodelay(true);
            let connection = count.fetch_add(1, Ordering::SeqCst);
            let (acceptor, app, log) = (acceptor.clone(), app.clone(), log.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let (app, log) = (app.clone(), log.clone());
                    async move {
                        let (parts, body) = req.into_parts();
                        let bytes = http_body_util::BodyExt::collect(body).await?.to_bytes();
                        let method = serde_json::from_slice::<Value>(&bytes)
                            .ok()
                            .and_then(|v| v["method"].as_str().map(str::to_owned));
                        log.locked().push(Seen {
                            connection,
                            version: parts.version,
                            method,
                        });
                        let req = http::Request::from_parts(parts, axum::body::Body::from(bytes));
                        Ok::<_, hyper::Error>(tower::ServiceExt::oneshot(app, req).await.unwrap())
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (url, seen, connections)
}

/// One test at a time: the stall and the connection counts are about timing
/// and connections, which tests running beside each other disturb.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `mcp-bridge serve` trusting the test CA, its stderr (the log) sent to `log`.
async fn spawn_logged(home: &Home, rust_log: &str) -> (Client, mpsc::UnboundedReceiver<String>) {
    let mut cmd = bridge_command(home, &[]);
    cmd.env("SSL_CERT_FILE", fixture("ca.pem"))
        .env_remove("SSL_CERT_DIR")
        .env("RUST_LOG", rust_log);
    let (transport, stderr) = TokioChildProcess::builder(cmd).stderr(Stdio::piped()).spawn().unwrap();
    let (tx, log) = mpsc::unbounded_channel();
    let mut lines = BufReader::new(stderr.unwrap()).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("bridge: {line}");
            let _ = tx.send(line);
        }
    });
    let (seen_tx, _) = mpsc::unbounded_channel();
    let client = Ide::new(seen_tx).serve(transport).await.expect("bridge initialises");
    (client, log)
}

/// Wait (bounded) for a log line containing `text`.
async fn log_line(log: &mut mpsc::UnboundedReceiver<String>, text: &str) -> String {
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = log.recv().await {
            if line.contains(text) {
                return Some(line);
            }
        }
        None
    })
    .await;
    found
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no log line with {text:?}"))
}

async fn echo(c: &Client, name: &str, text: &str) -> String {
    let r = c.call_tool(params(name, json!({ "text": text }))).await.unwrap();
    first_text(&r)
}

/// A server that offers `h2`: every request goes over HTTP/2, and calls made
/// at once share one connection (over HTTP/1.1 they would need one each).
#[tokio::test]
async fn http2_by_alpn_shares_one_connection() {
    let _one = ONE_AT_A_TIME.lock().await;
    for era in [Era::Legacy, Era::Modern] {
        let stop = CancellationToken::new();
        let server = TestServer::new(era, "h2");
        let (url, seen, _) = https_server(&server, &[b"h2", b"http/1.1"], stop.clone()).await;
        let home = Home::new();
        home.servers_config(&[("h2", &url)], "");
        let (client, _log) = spawn_logged(&home, "mcp_bridge=debug").await;
        // The first list waits for the server's first listing (first contact).
        assert_eq!(tool_names(&client).await.len(), TOOLS, "{era:?}");

        let c = &client;
        let calls =
            futures::future::join_all((0..8).map(|i| async move { echo(c, "echo", &format!("at once {i}")).await }))
                .await;
        for (i, text) in calls.iter().enumerate() {
            assert_eq!(text, &format!("at once {i}"));
        }
        let seen = seen.locked().clone();
        assert!(!seen.is_empty());
        assert!(
            seen.iter().all(|s| s.version == http::Version::HTTP_2),
            "{era:?}: {seen:?}"
        );
        let calls: Vec<&Seen> = seen
            .iter()
            .filter(|s| s.method.as_deref() == Some("tools/call"))
            .collect();
        assert_eq!(calls.len(), 8, "{era:?}: {seen:?}");
        assert!(
            calls.iter().all(|s| s.connection == calls[0].connection),
            "{era:?}: concurrent calls on more than one connection: {seen:?}"
        );
        client.cancel().await.unwrap();
        stop.cancel();
    }
}

/// A server that offers only HTTP/1.1 by ALPN gets HTTP/1.1, and answers.
#[tokio::test]
async fn http1_when_h2_is_not_offered() {
    let _one = ONE_AT_A_TIME.lock().await;
    let stop = CancellationToken::new();
    let server = TestServer::new(Era::Modern, "h1");
    let (url, seen, _) = https_server(&server, &[b"http/1.1"], stop.clone()).await;
    let home = Home::new();
    home.servers_config(&[("h1", &url)], "");
    let (client, _log) = spawn_logged(&home, "mcp_bridge=debug").await;
    assert_eq!(echo(&client, "echo", "over http/1.1").await, "over http/1.1");
    let seen = seen.locked().clone();
    assert!(seen.iter().all(|s| s.version == http::Version::HTTP_11), "{seen:?}");
    client.cancel().await.unwrap();
    stop.cancel();
}

/// Sequential calls to a server that sets TCP_NODELAY ride on the connections
/// already open: 20 calls do not open 20 connections.
#[tokio::test]
async fn connections_are_reused() {
    let _one = ONE_AT_A_TIME.lock().await;
    for era in [Era::Legacy, Era::Modern] {
        let mut server = TestServer::new(era, "kept");
        server.nodelay = true;
        let up = Upstream::start(server);
        let home = Home::new();
        home.servers_config(&[("kept", &up.url)], "");
        let (client, mut seen) = spawn_bridge(&home, &[]).await;
        wait_for_tools(&client, &mut seen, |n| n.len() == TOOLS).await;
        let before = up.server.probe.connections.load(Ordering::SeqCst);
        for i in 0..20 {
            assert_eq!(echo(&client, "echo", &format!("call {i}")).await, format!("call {i}"));
        }
        let opened = up.server.probe.connections.load(Ordering::SeqCst) - before;
        // Reuse: one or two (the pool, a GET stream). A probe of the bridge's own
        // (src/upstream/http.rs), were a listing slow on a loaded machine, opens 3.
        assert!(opened <= 5, "{era:?}: 20 sequential calls opened {opened} connections");
        client.cancel().await.unwrap();
    }
}

/// `keep_alive = false` asks for a new connection per request.
#[tokio::test]
async fn keep_alive_false_opens_a_connection_per_request() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut server = TestServer::new(Era::Modern, "fresh");
    server.nodelay = true;
    let up = Upstream::start(server);
    let home = Home::new();
    home.servers_config(&[("fresh", &up.url)], "[http]\nkeep_alive = false\n");
    let (client, mut seen) = spawn_bridge(&home, &[]).await;
    wait_for_tools(&client, &mut seen, |n| n.len() == TOOLS).await;
    let before = up.server.probe.connections.load(Ordering::SeqCst);
    for i in 0..5 {
        assert_eq!(echo(&client, "echo", &format!("call {i}")).await, format!("call {i}"));
    }
    // At least one each (the first listings may still be under way, with theirs).
    let opened = up.server.probe.connections.load(Ordering::SeqCst) - before;
    assert!(opened >= 5, "5 calls opened {opened} connections");
    client.cancel().await.unwrap();
}

/// A server that writes SSE answers in pieces without TCP_NODELAY stalls on a
/// reused connection; the bridge notices slow answers, measures both ways,
/// and gives that server alone a new connection per request. A server beside
/// it that sets TCP_NODELAY keeps its reused connections, and both answer.
#[tokio::test]
async fn a_stalling_server_alone_gets_new_connections() {
    let _one = ONE_AT_A_TIME.lock().await;
    let stalls = Upstream::start(TestServer::new(Era::Legacy, "stalls"));
    let mut quick = TestServer::new(Era::Legacy, "quick");
    quick.nodelay = true;
    let quick = Upstream::start(quick);
    let home = Home::new();
    home.servers_config(&[("stalls", &stalls.url), ("quick", &quick.url)], "");
    let (client, mut log) = spawn_logged(&home, "mcp_bridge=info").await;
    // Calls back to back: each is sent right after the last answer, when the
    // connection delays its ACKs.
    for i in 0..10 {
        assert_eq!(echo(&client, "stalls__echo", &format!("b{i}")).await, format!("b{i}"));
    }
    let line = log_line(&mut log, "using a new connection per request").await;
    assert!(line.contains("server 'stalls'"), "{line}");

    // From now on each call to it opens a connection; the other reuses its own.
    let (s0, q0) = (
        stalls.server.probe.connections.load(Ordering::SeqCst),
        quick.server.probe.connections.load(Ordering::SeqCst),
    );
    for i in 0..5 {
        assert_eq!(echo(&client, "stalls__echo", &format!("s{i}")).await, format!("s{i}"));
        assert_eq!(echo(&client, "quick__echo", &format!("q{i}")).await, format!("q{i}"));
    }
    let opened = stalls.server.probe.connections.load(Ordering::SeqCst) - s0;
    assert!(
        opened >= 5,
        "5 calls to the stalling server opened {opened} connections"
    );
    let opened = quick.server.probe.connections.load(Ordering::SeqCst) - q0;
    assert!(opened <= 4, "5 calls to the quick server opened {opened} connections");
    client.cancel().await.unwrap();
}
