//! HTTPS upstreams: the bridge's shared TLS configuration (src/net/tls.rs)
//! verifies server certificates against the system roots, loaded on first use.
//! A TLS terminator on 127.0.0.1 (certificate for 127.0.0.1 issued by a test CA
//! in tests/fixtures/tls) sits in front of a real rmcp server; the system roots
//! are pointed at a CA file with `SSL_CERT_FILE`, which the platform verifier
//! honours on Linux. Trusted CA: tools listed and calls work. Unrelated CA: the
//! server is refused with a certificate error, and nothing is listed from it.

#![cfg(target_os = "linux")]

mod common;

use std::path::Path;
use std::process::Output;

use common::tls::{fixture, tls_terminator};
use common::*;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Run a bridge command (async: the terminator runs on this test's runtime).
async fn run(home: &Home, ca_file: &Path, args: &[&str]) -> Output {
    cli(home, args)
        .env("SSL_CERT_FILE", ca_file)
        .env_remove("SSL_CERT_DIR")
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn https_upstream_is_verified_against_the_system_roots() {
    let server = Upstream::start(TestServer::new(Era::Modern, "secure"));
    let stop = CancellationToken::new();
    let tls = tls_terminator(server.addr, stop.clone()).await;
    let url = format!("https://127.0.0.1:{}/mcp", tls.port());
    let home = Home::new();
    home.servers_config(&[("secure", &url)], "");

    // Trusted: the whole catalog comes through TLS, and so does a call.
    let out = run(&home, &fixture("ca.pem"), &["tools", "--json"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tools: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    // One server: its tools keep their own names.
    assert_eq!(tools.len(), TOOLS, "{tools:?}");
    let out = run(
        &home,
        &fixture("ca.pem"),
        &["call", "echo", "--args", r#"{"text":"over tls"}"#],
    )
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["content"][0]["text"], "over tls");

    // Untrusted: refused for its certificate, and the call never reaches the server.
    let calls = server.server.probe.calls.load(std::sync::atomic::Ordering::SeqCst);
    let out = run(
        &home,
        &fixture("other-ca.pem"),
        &["call", "echo", "--args", r#"{"text":"must not arrive"}"#],
    )
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The cause, which rmcp's own message drops (upstream::errors::failure_text).
    assert!(stderr.contains("invalid peer certificate: UnknownIssuer"), "{stderr}");
    assert_eq!(
        server.server.probe.calls.load(std::sync::atomic::Ordering::SeqCst),
        calls
    );
    stop.cancel();
}
