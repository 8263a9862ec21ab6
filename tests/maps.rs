//! No leak in the bridge's per-call maps: after plain calls, calls that report
//! progress and calls the IDE cancels mid-way, every upstream's progress router
//! holds no entry. The bench's leak check (RSS after 100,000 calls) sees growth
//! only in aggregate; this names the map. The bridge runs in this process (the
//! same handler, framing and routing as `serve`, over an in-memory pipe) so its
//! maps can be inspected; the upstreams are real rmcp servers on 127.0.0.1.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use mcp_bridge::bridge::{Bridge, Settings};
use mcp_bridge::config::Config;
use mcp_bridge::registry::{AdHoc, resolve};
use rmcp::ServiceExt;
use rmcp::model::{ClientRequest, Request};
use rmcp::service::PeerRequestOptions;
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn per_call_maps_are_empty_after_calls_progress_and_cancellations() {
    let legacy = Upstream::start(TestServer::new(Era::Legacy, "legacy"));
    let modern = Upstream::start(TestServer::new(Era::Modern, "modern"));
    let cfg = Config::default();
    let adhoc = AdHoc {
        urls: vec![legacy.url.clone(), modern.url.clone()],
        headers: Vec::new(),
        oauth: Default::default(),
    };
    let specs = resolve(&cfg, &[], &adhoc).servers;
    let ids: Vec<String> = specs.iter().map(|s| s.id.clone()).collect();
    assert_eq!(ids.len(), 2);
    let shutdown = CancellationToken::new();
    let bridge = Bridge::new(Settings::from_config(&cfg, None), specs, None, shutdown.clone());
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let (r, w) = tokio::io::split(theirs);
    let b = bridge.clone();
    let session = tokio::spawn(mcp_bridge::app::run_session(b, r, w, shutdown.clone()));
    let client = ().serve(ours).await.unwrap();
    bridge.settle(Duration::from_secs(10)).await;

    for (id, server) in ids.iter().zip([&legacy, &modern]) {
        let name = |tool: &str| format!("{id}__{tool}");
        for i in 0..200 {
            let r = client
                .call_tool(params(&name("echo"), json!({ "text": format!("n{i}") })))
                .await
                .unwrap();
            assert_eq!(first_text(&r), format!("n{i}"));
        }
        for _ in 0..50 {
            let r = client.call_tool(params(&name("progress"), json!({}))).await.unwrap();
            assert_eq!(first_text(&r), "progress done");
        }
        for _ in 0..10 {
            let req = ClientRequest::CallToolRequest(Request::new(params(&name("slow"), json!({ "seconds": 30 }))));
            let handle = client
                .peer()
                .send_cancellable_request(req, PeerRequestOptions::no_options())
                .await
                .unwrap();
            tokio::time::timeout(Duration::from_secs(10), server.server.probe.started.notified())
                .await
                .expect("the slow call reached the server");
            let seen = server.server.probe.cancel_count.load(Ordering::SeqCst);
            handle.cancel(Some("test".into())).await.unwrap();
            // The cancellation reaches the server: the bridge's call has ended.
            tokio::time::timeout(Duration::from_secs(10), async {
                while server.server.probe.cancel_count.load(Ordering::SeqCst) == seen {
                    server.server.probe.cancelled.notified().await;
                }
            })
            .await
            .expect("the server saw the cancellation");
        }
        // A call after the cancellations is answered, so every earlier one has unwound.
        let r = client
            .call_tool(params(&name("echo"), json!({ "text": "last" })))
            .await
            .unwrap();
        assert_eq!(first_text(&r), "last");
        let up = bridge.upstream(id).expect("the server is bridged");
        assert_eq!(up.progress.len(), (0, 0), "{id}: progress entries left after the calls");
    }
    let _ = client.cancel().await;
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), session).await;
}
