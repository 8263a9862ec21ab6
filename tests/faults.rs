//! End to end: what the bridge does when things go wrong. A server that is down,
//! dies mid-call or restarts; bad input from the IDE; the IDE going away.

mod common;

use mcp_bridge::util::Locked;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use rmcp::model::*;
use serde_json::{Value, json};

fn mcp_error(e: rmcp::ServiceError) -> ErrorData {
    match e {
        rmcp::ServiceError::McpError(e) => e,
        other => panic!("expected an MCP error, got {other:?}"),
    }
}

/// A port on which nothing listens.
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}/mcp")
}

/// With a warm disk cache, `tools/list` lists a server that is down; a call to it
/// fails quickly with an error naming the server, and the other server works.
#[tokio::test]
async fn cache_lists_a_dead_server_and_calls_fail_precisely() {
    let mut alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let beta = Upstream::start(TestServer::new(Era::Modern, "beta"));
    let home = Home::new();
    home.servers_config(
        &[("alpha", &alpha.url), ("beta", &beta.url)],
        "[timeouts]\nready_wait = 3\n",
    );
    {
        let (client, mut seen) = spawn_bridge(&home, &[]).await;
        wait_for_tools(&client, &mut seen, |n| n.len() == 2 * TOOLS).await;
        client.cancel().await.unwrap();
    }
    alpha.kill();
    let (client, _seen) = spawn_bridge(&home, &[]).await;
    // Answered from the cache at once: alpha's tools are there although it is down.
    let names = tool_names(&client).await;
    assert_eq!(names.len(), 2 * TOOLS, "{names:?}");
    let start = Instant::now();
    let e = mcp_error(
        client
            .call_tool(params("alpha__echo", json!({"text": "x"})))
            .await
            .unwrap_err(),
    );
    assert!(start.elapsed() < Duration::from_secs(30), "took {:?}", start.elapsed());
    assert!(e.message.contains("'alpha'"), "{}", e.message);
    assert!(e.message.contains(&alpha.url), "{}", e.message);
    assert_eq!(e.data.as_ref().and_then(|d| d.get("server")), Some(&json!("alpha")));
    let r = client.call_tool(params("beta__whoami", json!({}))).await.unwrap();
    assert_eq!(first_text(&r), "beta");
}

/// A server that never existed does not delay the IDE or the other servers.
#[tokio::test]
async fn unreachable_server_does_not_block_others() {
    let beta = Upstream::start(TestServer::new(Era::Modern, "beta"));
    let home = Home::new();
    home.servers_config(&[("gone", &dead_url()), ("beta", &beta.url)], "");
    let (client, mut seen) = spawn_bridge(&home, &[]).await;
    let names = wait_for_tools(&client, &mut seen, |n| n.contains(&"beta__echo".into())).await;
    assert!(names.iter().all(|n| n.starts_with("beta__")), "{names:?}");
    let r = client
        .call_tool(params("beta__echo", json!({"text": "fine"})))
        .await
        .unwrap();
    assert_eq!(first_text(&r), "fine");
}

/// A server killed mid-call: that call gets an error naming the server, calls to
/// the other server are unaffected.
#[tokio::test]
async fn server_killed_mid_call() {
    let mut alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let beta = Upstream::start(TestServer::new(Era::Modern, "beta"));
    let home = Home::new();
    home.servers_config(&[("alpha", &alpha.url), ("beta", &beta.url)], "");
    let (client, mut seen) = spawn_bridge(&home, &[]).await;
    wait_for_tools(&client, &mut seen, |n| n.len() == 2 * TOOLS).await;
    let probe = alpha.server.probe.clone();
    let pending = {
        let c = client.peer().clone();
        tokio::spawn(async move { c.call_tool(params("alpha__slow", json!({"seconds": 60}))).await })
    };
    tokio::time::timeout(Duration::from_secs(10), probe.started.notified())
        .await
        .unwrap();
    alpha.kill();
    let r = tokio::time::timeout(Duration::from_secs(55), pending)
        .await
        .expect("answered within 55 s")
        .unwrap();
    let e = mcp_error(r.unwrap_err());
    assert!(e.message.contains("alpha"), "{}", e.message);
    let r = client.call_tool(params("beta__whoami", json!({}))).await.unwrap();
    assert_eq!(first_text(&r), "beta");
}

/// A legacy server restarted (all sessions lost) is used again without
/// restarting the bridge.
#[tokio::test]
async fn restarted_server_is_used_again() {
    let mut alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let port = alpha.addr.port();
    let home = Home::new();
    home.servers_config(&[("alpha", &alpha.url)], "");
    let (client, mut seen) = spawn_bridge(&home, &[]).await;
    wait_for_tools(&client, &mut seen, |n| n.len() == TOOLS).await;
    assert_eq!(
        first_text(&client.call_tool(params("whoami", json!({}))).await.unwrap()),
        "alpha"
    );
    alpha.kill();
    let again = Upstream::start_on(TestServer::new(Era::Legacy, "alpha"), port);
    // The first call may land while the bridge notices; within a bounded number of
    // attempts a call must succeed on the new instance.
    let mut errors = Vec::new();
    // Wait for the bridge to reconnect: it re-lists and announces on reconnect.
    let wake = (&mut seen, Every(Duration::from_secs(2)));
    let r = eventually_woken(
        "a call on the new instance",
        Duration::from_secs(30),
        wake,
        async || {
            client.call_tool(params("whoami", json!({}))).await.map_err(|e| {
                errors.push(format!("{e}"));
                errors.clone()
            })
        },
    )
    .await;
    assert_eq!(first_text(&r), "alpha");
    assert!(errors.len() <= 3, "{errors:?}");
    assert!(again.server.probe.calls.load(Ordering::SeqCst) >= 1);
}

/// The registry API is paged: both pages' servers are bridged.
#[tokio::test]
async fn registry_over_http_with_two_pages() {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let beta = Upstream::start(TestServer::new(Era::Modern, "beta"));
    let page1 = mcp_bridge::commands::demo::registry_page(&[("dev.test/alpha", "alpha", &alpha.url)]);
    let page2 = mcp_bridge::commands::demo::registry_page(&[("dev.test/beta", "beta", &beta.url)]);
    let hits = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/v0.1/servers",
        axum::routing::get(move |q: axum::extract::RawQuery| {
            let (page1, page2, h) = (page1.clone(), page2.clone(), h.clone());
            async move {
                let q = q.0.unwrap_or_default();
                h.locked().push(q.clone());
                let mut body = if q.contains("cursor=") { page2 } else { page1 };
                if !q.contains("cursor=") {
                    body["metadata"]["nextCursor"] = json!("page 2/x");
                }
                ([("content-type", "application/json")], body.to_string())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let home = Home::new();
    home.write_config(&format!("[registry]\nurl = \"{base}\"\n"));
    let (client, mut seen) = spawn_bridge(&home, &[]).await;
    wait_for_tools(&client, &mut seen, |n| {
        n.contains(&"alpha__echo".into()) && n.contains(&"beta__echo".into())
    })
    .await;
    let hits = hits.locked().clone();
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert!(
        hits[1].contains("cursor=page+2%2Fx") || hits[1].contains("cursor=page%202%2Fx"),
        "{hits:?}"
    );
    assert!(hits[0].contains("limit="), "{hits:?}");
    // The registry was cached for the next start.
    assert!(home.path().join("cache/registry.json").exists());
}

/// Ad-hoc servers from the command line: one URL keeps bare tool names and gets
/// the `--header`; two URLs are prefixed.
#[tokio::test]
async fn adhoc_urls_with_headers() {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let beta = Upstream::start(TestServer::new(Era::Modern, "beta"));
    let home = Home::new();
    let (client, mut seen) = spawn_bridge(&home, &[&alpha.url, "--header", "X-Test: hello"]).await;
    let names = wait_for_tools(&client, &mut seen, |n| n.len() == TOOLS).await;
    assert!(names.contains(&"echo".to_string()), "{names:?}");
    client.call_tool(params("echo", json!({"text": "x"}))).await.unwrap();
    let http = alpha.server.probe.http.locked().clone();
    assert!(
        !http.is_empty() && http.iter().all(|(_, h)| h.as_deref() == Some("hello")),
        "{http:?}"
    );
    client.cancel().await.unwrap();

    let (client, mut seen) = spawn_bridge(&home, &[&alpha.url, &beta.url]).await;
    let names = wait_for_tools(&client, &mut seen, |n| n.len() == 2 * TOOLS).await;
    let a = format!("local-{}__echo", alpha.addr.port());
    assert!(names.contains(&a), "{names:?}");
}

/// A modern (2026-07-28) IDE is served too.
#[tokio::test]
async fn modern_ide_is_served() {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let beta = Upstream::start(TestServer::new(Era::Modern, "beta"));
    let home = Home::new();
    home.servers_config(&[("alpha", &alpha.url), ("beta", &beta.url)], "");
    // Let a first (legacy) run fill the catalog cache, so the modern client, which
    // gets no list_changed here, sees the full list at once.
    {
        let (client, mut seen) = spawn_bridge(&home, &[]).await;
        wait_for_tools(&client, &mut seen, |n| n.len() == 2 * TOOLS).await;
        client.cancel().await.unwrap();
    }
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let transport = rmcp::transport::TokioChildProcess::new(bridge_command(&home, &[])).unwrap();
    let mode = rmcp::ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    let client = rmcp::ClientServiceExt::serve_with_lifecycle(Ide::new(tx), transport, mode)
        .await
        .unwrap();
    let info = client.peer_info().unwrap();
    assert_eq!(info.protocol_version, ProtocolVersion::V_2026_07_28);
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 2 * TOOLS);
    for (tool, want) in [("alpha__whoami", "alpha"), ("beta__whoami", "beta")] {
        let r = client.call_tool(params(tool, json!({}))).await.unwrap();
        assert_eq!(first_text(&r), want);
    }
    // List changes reach a modern IDE on its subscriptions/listen stream.
    let mut sub = client
        .listen(SubscriptionFilter::builder().tools_list_changed().build())
        .await
        .unwrap();
    client.call_tool(params("alpha__add_tool", json!({}))).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("a notification")
        .unwrap();
    assert!(
        matches!(n, Some(ServerNotification::ToolListChangedNotification(_))),
        "{n:?}"
    );
    let names: Vec<_> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert!(names.iter().any(|n| n == "alpha__extra_0"), "{names:?}");
}

/// Bad input from the IDE gets the JSON-RPC error it deserves, and the bridge
/// keeps serving; stdout carries only JSON-RPC.
#[tokio::test]
async fn malformed_input_gets_errors_and_serving_continues() {
    let home = Home::new();
    let mut raw = Raw::spawn(&home);
    raw.initialize().await;
    raw.send("{not json").await;
    let v = raw.recv().await;
    assert_eq!(
        (v["id"].clone(), v["error"]["code"].clone()),
        (Value::Null, json!(-32700)),
        "{v}"
    );
    raw.send(r#"{"jsonrpc":"2.0","id":7}"#).await;
    let v = raw.recv().await;
    assert_eq!(
        (v["id"].clone(), v["error"]["code"].clone()),
        (json!(7), json!(-32600)),
        "{v}"
    );
    raw.send(r#"{"jsonrpc":"2.0","id":8,"method":"no/such/method","params":{}}"#)
        .await;
    let v = raw.recv().await;
    assert_eq!(
        (v["id"].clone(), v["error"]["code"].clone()),
        (json!(8), json!(-32601)),
        "{v}"
    );
    raw.send(r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"missing"}}"#)
        .await;
    let v = raw.recv().await;
    assert_eq!(
        (v["id"].clone(), v["error"]["code"].clone()),
        (json!(9), json!(-32602)),
        "{v}"
    );
    raw.send(r#"{"jsonrpc":"2.0","id":10,"method":"tools/list","params":{}}"#)
        .await;
    let v = raw.recv().await;
    assert_eq!(v["id"], json!(10));
    assert!(v["result"]["tools"].is_array(), "{v}");
}

/// Calls `whoami` (a request line from `call(id, tool)`) until the bridge is
/// connected to its one upstream.
async fn until_connected(raw: &mut Raw, call: impl Fn(&str, &str) -> String) {
    let mut ids = 9000..;
    eventually_woken(
        "the bridge to connect upstream",
        Duration::from_secs(20),
        Now,
        async || {
            let id = ids.next().expect("ids to spare");
            raw.send(&call(&id.to_string(), "whoami")).await;
            let v = raw.answer().await;
            assert_eq!(v["id"], json!(id), "{v}");
            if v["result"]["isError"] != json!(true) && v["error"].is_null() {
                Ok(())
            } else {
                Err(v)
            }
        },
    )
    .await
}

/// A 2025-11-25 `tools/call` line without arguments.
fn legacy_call(id: &str, tool: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}"}}}}"#)
}

/// Every request with an id gets exactly one answer, under a burst of bad
/// requests too; params of the wrong shape for a known method are -32602; a
/// duplicate id in flight is refused without costing the first request its
/// result; ids come back exactly as written, integers past i64 and float forms
/// included, and a request with such an id can be called and cancelled.
#[tokio::test]
async fn every_request_is_answered_once_with_its_own_id() {
    let server = TestServer::new(Era::Legacy, "alpha");
    let probe = server.probe.clone();
    let alpha = Upstream::start(server);
    let home = Home::new();
    home.servers_config(&[("alpha", &alpha.url)], "");
    let mut raw = Raw::spawn(&home);
    raw.initialize().await;
    until_connected(&mut raw, legacy_call).await;

    // A burst of 60 requests with bad params, written at once, beyond the
    // rate limit for unreadable input: 60 answers, one per id, all -32602.
    let shapes = [r#""x""#, "[1]", r#"{"name":5}"#, "7"];
    let mut burst = String::new();
    for id in 0..60 {
        let (method, params) = match id % 5 {
            4 => ("tools/list", "7"),
            k => ("tools/call", shapes[k]),
        };
        burst += &format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#);
        burst.push('\n');
    }
    raw.send(burst.trim_end()).await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..60 {
        let v = raw.answer().await;
        assert_eq!(v["error"]["code"], json!(-32602), "{v}");
        assert!(seen.insert(v["id"].as_i64().unwrap()), "answered twice: {v}");
    }
    assert_eq!(seen.len(), 60);

    // A duplicate id while the first request runs.
    raw.send(r#"{"jsonrpc":"2.0","id":500,"method":"tools/call","params":{"name":"slow","arguments":{"seconds":1}}}"#)
        .await;
    tokio::time::timeout(Duration::from_secs(10), probe.started.notified())
        .await
        .unwrap();
    raw.send(
        r#"{"jsonrpc":"2.0","id":500,"method":"tools/call","params":{"name":"echo","arguments":{"text":"second"}}}"#,
    )
    .await;
    let v = raw.answer().await;
    assert_eq!(
        (v["id"].clone(), v["error"]["code"].clone()),
        (json!(500), json!(-32600)),
        "{v}"
    );
    assert!(v["error"]["message"].as_str().unwrap().contains("in flight"), "{v}");
    let v = raw.answer().await;
    assert_eq!(v["id"], json!(500), "{v}");
    assert_eq!(
        v["result"]["content"][0]["text"],
        json!("slept"),
        "the first keeps its result: {v}"
    );
    // Answered, the id is free again.
    raw.send(r#"{"jsonrpc":"2.0","id":500,"method":"ping"}"#).await;
    assert!(raw.answer().await["result"].is_object());

    // Ids as written: past i64, float forms, strings with escapes.
    for id in [
        "123456789012345678901234567890",
        "18446744073709551615",
        "-9223372036854775809",
        "9223372036854775807",
        "1.5",
        "1e2",
        "1.0",
        "-0",
        r#""x\u0041""#,
        r#""""#,
    ] {
        raw.send(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"hi"}}}}}}"#
        ))
        .await;
        let line = raw.answer_text().await;
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["result"]["content"][0]["text"], json!("hi"), "{line}");
        if id.starts_with('"') {
            assert_eq!(v["id"], serde_json::from_str::<Value>(id).unwrap(), "{line}");
        } else {
            assert!(
                line.starts_with(&format!(r#"{{"jsonrpc":"2.0","id":{id},"#)),
                "{id} came back as {line}"
            );
        }
    }
    // Bad input with such an id is answered with it too.
    raw.send(r#"{"jsonrpc":"2.0","id":18446744073709551616,"method":"tools/call","params":[]}"#)
        .await;
    let line = raw.answer_text().await;
    assert!(line.contains(r#""id":18446744073709551616,"#), "{line}");

    // A wide id is cancelled like any other, and is free again afterwards.
    let wide = "98765432109876543210";
    raw.send(&format!(
        r#"{{"jsonrpc":"2.0","id":{wide},"method":"tools/call","params":{{"name":"slow"}}}}"#
    ))
    .await;
    tokio::time::timeout(Duration::from_secs(10), probe.started.notified())
        .await
        .unwrap();
    raw.send(&format!(
        r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":{wide},"reason":"user"}}}}"#
    ))
    .await;
    tokio::time::timeout(Duration::from_secs(10), probe.cancelled.notified())
        .await
        .expect("the upstream sees the cancellation");
    raw.send(&format!(r#"{{"jsonrpc":"2.0","id":{wide},"method":"ping"}}"#))
        .await;
    let line = raw.answer_text().await;
    assert!(
        line.starts_with(&format!(r#"{{"jsonrpc":"2.0","id":{wide},"result""#)),
        "{line}"
    );
}

/// stdin EOF ends the process cleanly and promptly, and the legacy upstream's
/// session is closed with an HTTP DELETE.
#[tokio::test]
async fn stdin_eof_exits_and_closes_sessions() {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let home = Home::new();
    home.servers_config(&[("alpha", &alpha.url)], "");
    let mut raw = Raw::spawn(&home);
    raw.initialize().await;
    // Wait until the bridge is connected upstream: a call goes through.
    let mut id = 100;
    eventually_woken(
        "a call to go through",
        Duration::from_secs(20),
        Every(Duration::from_millis(50)),
        async || {
            id += 1;
            raw.send(&format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"whoami"}}}}"#
            ))
            .await;
            let v = loop {
                let v = raw.recv().await;
                if v["id"] == json!(id) {
                    break v;
                }
            };
            if v["result"]["content"][0]["text"] == json!("alpha") {
                Ok(())
            } else {
                Err(v)
            }
        },
    )
    .await;
    let start = Instant::now();
    drop(raw.stdin.take());
    let status = tokio::time::timeout(Duration::from_secs(5), raw.child.wait())
        .await
        .expect("exits")
        .unwrap();
    let took = start.elapsed();
    assert!(status.success(), "{status:?}");
    eprintln!("exit after stdin EOF took {took:?}");
    let methods: Vec<String> = alpha
        .server
        .probe
        .http
        .locked()
        .iter()
        .map(|(m, _)| m.clone())
        .collect();
    assert!(methods.contains(&"DELETE".to_string()), "{methods:?}");
}

/// SIGTERM ends the process cleanly too.
#[cfg(unix)]
#[tokio::test]
async fn sigterm_exits() {
    let home = Home::new();
    let mut raw = Raw::spawn(&home);
    raw.initialize().await;
    raw.send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}"#)
        .await;
    raw.recv().await;
    let pid = raw.child.id().unwrap();
    let ok = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(ok.success());
    let status = tokio::time::timeout(Duration::from_secs(5), raw.child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

/// A broken config stops `serve` with exit code 64 and a message naming the file
/// and the line; nothing is written to stdout.
#[tokio::test]
async fn broken_config_is_refused_clearly() {
    let home = Home::new();
    home.write_config("[naming]\nprefix = \"sometimes\"\n");
    let out = bridge_command(&home, &[]).stdin(Stdio::null()).output().await.unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(out.stdout.is_empty(), "{:?}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&home.config().display().to_string()), "{err}");
    assert!(err.contains("line 2"), "{err}");
}

/// An IDE that speaks 2025-06-18 is answered in 2025-06-18.
#[tokio::test]
async fn older_ide_protocol_is_served() {
    let home = Home::new();
    let mut raw = Raw::spawn(&home);
    raw.send(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"old","version":"1"}}}"#).await;
    let v = raw.recv().await;
    assert_eq!(v["result"]["protocolVersion"], json!("2025-06-18"), "{v}");
    raw.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .await;
    raw.send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}"#)
        .await;
    let v = raw.recv().await;
    assert!(v["result"]["tools"].is_array(), "{v}");
    assert!(
        v["result"].get("resultType").is_none(),
        "no 2026 fields for an old IDE: {v}"
    );
}

/// `mcp-bridge tools --json` lists the merged catalog and `mcp-bridge call` runs a
/// tool through the same code as `serve`, printing only the result on stdout; a
/// tool error or an unknown tool fails the command.
#[tokio::test]
async fn tools_and_call_commands() {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let beta = Upstream::start(TestServer::new(Era::Modern, "beta"));
    let home = Home::new();
    home.servers_config(&[("alpha", &alpha.url), ("beta", &beta.url)], "");
    let run = async |args: &[&str]| cli(&home, args).output().await.unwrap();
    let out = run(&["tools", "--json"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tools: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(tools.len(), 2 * TOOLS);
    assert!(tools.iter().any(|t| t["name"] == json!("beta__echo")));

    let out = run(&["call", "beta__echo", "--args", r#"{"text":"from the terminal"}"#]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["content"][0]["text"], json!("from the terminal"));
    assert_eq!(beta.server.probe.calls.load(Ordering::SeqCst), 1);

    let out = run(&["call", "alpha__fail"]).await;
    assert!(!out.status.success());
    let out = run(&["call", "nope__x"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown tool"));
    assert!(out.stdout.is_empty());
}

/// A 2026-07-28 IDE that cancels a call may reuse its id at once: rmcp sends
/// no answer to a cancelled request in either generation, so the bridge must
/// not keep the id in flight.
#[tokio::test]
async fn a_modern_ide_reuses_a_cancelled_id() {
    const META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"}}"#;
    let server = TestServer::new(Era::Modern, "alpha");
    let probe = server.probe.clone();
    let alpha = Upstream::start(server);
    let home = Home::new();
    home.servers_config(&[("alpha", &alpha.url)], "");
    let mut raw = Raw::spawn(&home);
    let call = |id: &str, tool: &str| {
        format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}",{META}}}}}"#)
    };
    until_connected(&mut raw, call).await;
    for id in ["7", "123456789012345678901234567890"] {
        raw.send(&call(id, "slow")).await;
        tokio::time::timeout(Duration::from_secs(10), probe.started.notified())
            .await
            .unwrap();
        raw.send(&format!(
            r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":{id}}}}}"#
        ))
        .await;
        tokio::time::timeout(Duration::from_secs(10), probe.cancelled.notified())
            .await
            .expect("the upstream call is cancelled");
        raw.send(&call(id, "whoami")).await;
        let line = raw.answer_text().await;
        assert!(
            line.starts_with(&format!(r#"{{"jsonrpc":"2.0","id":{id},"result""#)),
            "{line}"
        );
    }
}
