//! End to end: the built binary over stdio in front of two real upstreams, one
//! legacy (2025-11-25, sessions) and one modern (2026-07-28, stateless).

mod common;

use mcp_bridge::util::Locked;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use rmcp::model::*;
use serde_json::json;

struct Setup {
    legacy: Upstream,
    modern: Upstream,
    _home: Home,
    client: Client,
    seen: tokio::sync::mpsc::UnboundedReceiver<Seen>,
}

async fn setup(extra_config: &str) -> Setup {
    let legacy = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let modern = Upstream::start(TestServer::new(Era::Modern, "beta"));
    let home = Home::new();
    home.servers_config(&[("alpha", &legacy.url), ("beta", &modern.url)], extra_config);
    let (client, mut seen) = spawn_bridge(&home, &[]).await;
    wait_for_tools(&client, &mut seen, |n| {
        n.contains(&"alpha__echo".into()) && n.contains(&"beta__echo".into())
    })
    .await;
    Setup {
        legacy,
        modern,
        _home: home,
        client,
        seen,
    }
}

/// Both servers' tools are listed under `<server>__<tool>` and each call reaches
/// the server that owns the tool, whatever its protocol generation.
#[tokio::test]
async fn merged_tools_route_to_their_server() {
    let s = setup("").await;
    let names = tool_names(&s.client).await;
    assert_eq!(names.iter().filter(|n| n.starts_with("alpha__")).count(), TOOLS);
    assert_eq!(names.iter().filter(|n| n.starts_with("beta__")).count(), TOOLS);
    for (tool, want) in [("alpha__whoami", "alpha"), ("beta__whoami", "beta")] {
        let r = s.client.call_tool(params(tool, json!({}))).await.unwrap();
        assert_eq!(first_text(&r), want);
    }
    let r = s
        .client
        .call_tool(params("beta__echo", json!({"text": "héllo"})))
        .await
        .unwrap();
    assert_eq!(first_text(&r), "héllo");
    assert_eq!(s.legacy.server.probe.calls.load(Ordering::SeqCst), 1);
    assert_eq!(s.modern.server.probe.calls.load(Ordering::SeqCst), 2);
}

/// Results pass through unchanged: images, structured content, `_meta`, isError.
#[tokio::test]
async fn results_pass_through_unchanged() {
    let s = setup("").await;
    for server in ["alpha", "beta"] {
        let r = s
            .client
            .call_tool(params(&format!("{server}__image"), json!({})))
            .await
            .unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v["content"][0],
            json!({"type": "image", "data": "iVBORw0KGgo=", "mimeType": "image/png"})
        );
        assert_eq!(
            v["structuredContent"],
            json!({"answer": 42, "nested": {"list": [1, 2, 3]}})
        );
        assert_eq!(v["_meta"], json!({"example.com/trace": "abc"}));
        let r = s
            .client
            .call_tool(params(&format!("{server}__fail"), json!({})))
            .await
            .unwrap();
        assert_eq!(r.is_error, Some(true));
        assert_eq!(first_text(&r), "it failed");
    }
}

/// An unknown tool is a JSON-RPC invalid-params error naming it.
#[tokio::test]
async fn unknown_tool_is_invalid_params() {
    let s = setup("").await;
    let e = s.client.call_tool(params("nope__x", json!({}))).await.unwrap_err();
    let rmcp::ServiceError::McpError(e) = e else {
        panic!("{e:?}")
    };
    assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
    assert!(e.message.contains("nope__x"), "{}", e.message);
}

/// Resources: unique URIs pass through, a URI both servers list is rewritten per
/// server, and reading either form reaches the right server.
#[tokio::test]
async fn resources_prompts_and_completions_route() {
    let s = setup("").await;
    let res = s.client.list_all_resources().await.unwrap();
    let uris: Vec<_> = res.iter().map(|r| r.uri.clone()).collect();
    assert!(uris.contains(&"mem://alpha/own".to_string()), "{uris:?}");
    assert!(!uris.contains(&"mem://shared".to_string()), "{uris:?}");
    let shared: Vec<_> = uris.iter().filter(|u| u.starts_with("mcp-bridge://")).collect();
    assert_eq!(shared.len(), 2);
    for u in shared {
        let r = s
            .client
            .read_resource(ReadResourceRequestParams::new(u.clone()))
            .await
            .unwrap();
        let v = serde_json::to_value(&r.contents[0]).unwrap();
        let owner = if u.contains("//alpha/") { "alpha" } else { "beta" };
        assert_eq!(v["text"], json!(format!("{owner} says mem://shared")));
        assert_eq!(v["uri"], json!(u));
    }
    let r = s
        .client
        .read_resource(ReadResourceRequestParams::new("mem://beta/own"))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&r.contents[0]).unwrap()["text"],
        json!("beta says mem://beta/own")
    );

    let prompts: Vec<_> = s
        .client
        .list_all_prompts()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(prompts, ["alpha__greet", "beta__greet"]);
    let p = s
        .client
        .get_prompt(
            GetPromptRequestParams::new("beta__greet")
                .with_arguments(json!({"who": "you"}).as_object().cloned().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&p.messages[0]).unwrap()["content"]["text"],
        json!("beta greets \"you\"")
    );

    let c = s
        .client
        .complete(CompleteRequestParams::new(
            Reference::for_prompt("alpha__greet"),
            ArgumentInfo::new("who", "x"),
        ))
        .await
        .unwrap();
    assert_eq!(c.completion.values, ["alpha-x"]);
}

/// Progress notifications reach the IDE with the IDE's own token.
#[tokio::test]
async fn progress_keeps_the_ide_token() {
    let mut s = setup("").await;
    for server in ["alpha", "beta"] {
        // rmcp (the test IDE) mints its own progress token for every request; the
        // notifications must come back with exactly that token.
        let handle = s
            .client
            .send_request_with_option(
                ClientRequest::CallToolRequest(Request::new(params(&format!("{server}__progress"), json!({})))),
                rmcp::service::PeerRequestOptions::no_options(),
            )
            .await
            .unwrap();
        let ide_token = handle.progress_token.clone();
        let ServerResult::CallToolResult(r) = handle.await_response().await.unwrap() else {
            panic!()
        };
        assert_eq!(first_text(&r), "progress done");
        // Notifications may be dispatched out of order on the way (rmcp handles each
        // in its own task); what must hold: the IDE's token, and the last step.
        let mut steps = Vec::new();
        while !steps.contains(&3.0) {
            if let Seen::Progress(n) = tokio::time::timeout(Duration::from_secs(5), s.seen.recv())
                .await
                .unwrap()
                .unwrap()
            {
                assert_eq!(n.progress_token, ide_token);
                assert!(!steps.contains(&n.progress), "duplicate progress {}", n.progress);
                steps.push(n.progress);
            }
        }
        assert!(steps.iter().all(|p| [1.0, 2.0, 3.0].contains(p)), "{steps:?}");
    }
}

/// Cancelling a call in the IDE cancels the upstream request, for both eras.
#[tokio::test]
async fn cancellation_reaches_the_upstream() {
    let s = setup("").await;
    for up in [&s.legacy, &s.modern] {
        let name = format!("{}__slow", up.server.label);
        let handle = s
            .client
            .send_request_with_option(
                ClientRequest::CallToolRequest(Request::new(params(&name, json!({"seconds": 60})))),
                rmcp::service::PeerRequestOptions::no_options(),
            )
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), up.server.probe.started.notified())
            .await
            .unwrap();
        s.client
            .notify_cancelled(CancelledNotificationParam::new(
                Some(handle.id.clone()),
                Some("test".into()),
            ))
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), up.server.probe.cancelled.notified())
            .await
            .unwrap_or_else(|_| panic!("{name}: upstream never saw the cancellation"));
        assert_eq!(up.server.probe.cancel_count.load(Ordering::SeqCst), 1);
    }
}

/// Sampling, elicitation and roots asked by a legacy server reach the IDE and the
/// answers go back; a modern server's input requests are answered the same way.
#[tokio::test]
async fn server_to_client_requests_round_trip() {
    let s = setup("").await;
    let r = s.client.call_tool(params("alpha__ask", json!({}))).await.unwrap();
    assert!(first_text(&r).contains("yes to Proceed?"), "{}", first_text(&r));
    let r = s.client.call_tool(params("alpha__sample", json!({}))).await.unwrap();
    assert!(first_text(&r).contains("model says hi"), "{}", first_text(&r));
    let r = s.client.call_tool(params("alpha__roots", json!({}))).await.unwrap();
    assert!(first_text(&r).contains("file:///work/project"), "{}", first_text(&r));
    // Modern upstream, legacy IDE: the bridge drives the input_required rounds.
    let r = s.client.call_tool(params("beta__ask", json!({}))).await.unwrap();
    assert!(first_text(&r).contains("yes to Proceed?"), "{}", first_text(&r));
}

/// A server's `tools/list_changed` makes the bridge re-list it and tell the IDE.
#[tokio::test]
async fn list_changed_is_reannounced() {
    let mut s = setup("").await;
    s.client.call_tool(params("alpha__add_tool", json!({}))).await.unwrap();
    let names = wait_for_tools(&s.client, &mut s.seen, |n| n.contains(&"alpha__extra_0".into())).await;
    assert_eq!(names.len(), 2 * TOOLS + 1);
}

/// IDE-side pagination: with `page_size`, lists come in pages with opaque cursors
/// and a bad cursor is invalid params. Upstream pages are followed to the end.
#[tokio::test]
async fn pagination_both_sides() {
    let mut paged = TestServer::new(Era::Legacy, "paged");
    paged.page = 3;
    let paged = Upstream::start(paged);
    let home = Home::new();
    home.servers_config(&[("paged", &paged.url)], "[naming]\npage_size = 4\n");
    let (client, mut seen) = spawn_bridge(&home, &[]).await;
    let names = wait_for_tools(&client, &mut seen, |n| n.len() == TOOLS).await;
    assert!(
        names.contains(&"echo".to_string()),
        "single server: bare names, {names:?}"
    );
    let first = client.list_tools(None).await.unwrap();
    assert_eq!(first.tools.len(), 4);
    let cursor = first.next_cursor.clone().expect("a second page");
    let second = client
        .list_tools(Some(PaginatedRequestParams::default().with_cursor(Some(cursor))))
        .await
        .unwrap();
    assert_eq!(second.tools.len(), 4);
    let e = client
        .list_tools(Some(
            PaginatedRequestParams::default().with_cursor(Some("bogus".into())),
        ))
        .await
        .unwrap_err();
    let rmcp::ServiceError::McpError(e) = e else {
        panic!("{e:?}")
    };
    assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
}

/// A resource subscription is routed to the server that owns the URI, and its
/// `resources/updated` comes back with the URI the IDE knows (here a rewritten
/// one, since both servers list `mem://shared`).
#[tokio::test]
#[allow(deprecated)] // resources/subscribe is legacy-only, which is the case under test
async fn resource_subscriptions_route_both_ways() {
    let mut s = setup("").await;
    let uri = mcp_bridge::catalog::rewrite_uri("alpha", "mem://shared");
    s.client
        .subscribe(SubscribeRequestParams::new(uri.clone()))
        .await
        .unwrap();
    assert_eq!(*s.legacy.server.probe.subscribed.locked(), ["mem://shared"]);
    assert!(s.modern.server.probe.subscribed.locked().is_empty());
    s.client
        .call_tool(params("alpha__touch", json!({"text": "mem://shared"})))
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), s.seen.recv())
            .await
            .unwrap()
            .unwrap()
        {
            Seen::ResourceUpdated(u) => {
                assert_eq!(u, uri);
                break;
            }
            _ => continue,
        }
    }
}

/// With `keep_alive`, connections are reused and calls to both generations work.
#[tokio::test]
async fn keep_alive_connections_work() {
    let s = setup("[http]\nkeep_alive = true\n").await;
    for _ in 0..20 {
        for (tool, want) in [("alpha__whoami", "alpha"), ("beta__whoami", "beta")] {
            let r = s.client.call_tool(params(tool, json!({}))).await.unwrap();
            assert_eq!(first_text(&r), want);
        }
    }
}

/// A server whose list changes without any announcement (here a 2026-07-28 server
/// without `subscriptions/listen`) is caught by the periodic re-list.
#[tokio::test]
async fn periodic_relist_catches_silent_changes() {
    let mut s = setup("[timeouts]\nlist_refresh = 1\n").await;
    s.client
        .call_tool(params("beta__add_tool_silently", json!({})))
        .await
        .unwrap();
    let names = wait_for_tools(&s.client, &mut s.seen, |n| n.contains(&"beta__extra_0".into())).await;
    assert_eq!(names.len(), 2 * TOOLS + 1);
}
