//! Policy end to end: what the IDE sees and may call under the registry's and
//! the user's rules, read-only servers, and approvals asked through the IDE
//! (accepted, remembered, declined, unanswered, impossible).

mod common;

use std::sync::atomic::Ordering;

use common::*;
use rmcp::ServiceExt;
use rmcp::transport::TokioChildProcess;
use serde_json::json;

/// Wait (bounded) until the bridge lists `wipe`, listing again on `wake`.
async fn wipe_listed(ide: &rmcp::Peer<rmcp::RoleClient>, wake: impl Wake) {
    eventually_woken("the tool wipe", std::time::Duration::from_secs(20), wake, async || {
        let tools = ide.list_all_tools().await.unwrap();
        if tools.iter().any(|t| t.name == "wipe") {
            Ok(())
        } else {
            Err(tools.len())
        }
    })
    .await
}

/// A registry file whose `alpha` entry carries the operator's tool rules.
fn registry_with_rules(home: &Home, alpha: &str, beta: &str) -> std::path::PathBuf {
    let mut page = mcp_bridge::commands::demo::registry_page(&[
        ("dev.test/alpha", "alpha", alpha),
        ("dev.test/beta", "beta", beta),
    ]);
    page["servers"][0]["_meta"]["dev.mcp-bridge/config"]["tools"] = json!({
        "allow": ["echo", "whoami", "fail", "slow", "wipe"],
        "deny": ["slow"],
        "requireApproval": ["fail"]
    });
    let file = home.path().join("registry.json");
    std::fs::write(&file, page.to_string()).unwrap();
    file
}

fn text_of(r: &rmcp::model::CallToolResult) -> String {
    first_text(r)
}

/// The registry's rules bound the user's: the user can hide more, never show
/// what the registry hides nor skip an approval it requires. Hidden tools are
/// refused by name with the rule; an edit of the rules applies live.
#[tokio::test]
async fn registry_and_user_rules_decide_what_is_listed_and_callable() {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let beta = Upstream::start(TestServer::new(Era::Modern, "beta"));
    let home = Home::new();
    let file = registry_with_rules(&home, &alpha.url, &beta.url);
    let config = |deny: &str| {
        format!(
            "[registry]\nfile = {:?}\n[naming]\nprefix = \"always\"\n[policy]\nallow = [\"alpha__*\", \"beta__echo\", \"beta__wipe\"]\ndeny = [{deny}]\napprove_destructive = false\n",
            file.display().to_string()
        )
    };
    home.write_config(&config("\"alpha__whoami\""));
    let (client, mut seen) = spawn_bridge(&home, &[]).await;
    let names = wait_for_tools(&client, &mut seen, |n| {
        n.contains(&"beta__echo".into()) && n.contains(&"alpha__echo".into())
    })
    .await;
    assert_eq!(
        names,
        ["alpha__echo", "alpha__fail", "alpha__wipe", "beta__echo", "beta__wipe"]
    );

    let tools = client.list_all_tools().await.unwrap();
    let desc = |n: &str| {
        tools
            .iter()
            .find(|t| t.name == n)
            .unwrap()
            .description
            .clone()
            .unwrap_or_default()
    };
    assert!(
        desc("alpha__fail").ends_with("(asks for confirmation)"),
        "{}",
        desc("alpha__fail")
    );
    // approve_destructive = false: wipe is not asked about.
    assert!(!desc("alpha__wipe").contains("confirmation"));

    for (name, rule) in [
        ("alpha__whoami", "[policy] deny"),
        ("alpha__slow", "denied by the registry"),
        ("alpha__image", "registry's allow list"),
        ("beta__whoami", "[policy] allow"),
    ] {
        let err = client.call_tool(params(name, json!({}))).await.unwrap_err().to_string();
        assert!(err.contains("not allowed") && err.contains(rule), "{name}: {err}");
    }
    assert_eq!(alpha.server.probe.calls.load(Ordering::SeqCst), 0);
    assert_eq!(beta.server.probe.calls.load(Ordering::SeqCst), 0);

    // The registry's requireApproval holds whatever the user says; the test IDE accepts.
    let r = client.call_tool(params("alpha__fail", json!({}))).await.unwrap();
    assert_eq!(text_of(&r), "it failed");
    assert_eq!(alpha.server.probe.calls.load(Ordering::SeqCst), 1);

    // A rules edit applies live: whoami comes back, echo goes.
    home.write_config(&config("\"alpha__echo\""));
    let names = wait_for_tools(&client, &mut seen, |n| n.contains(&"alpha__whoami".into())).await;
    assert!(!names.contains(&"alpha__echo".into()), "{names:?}");
    let r = client.call_tool(params("alpha__whoami", json!({}))).await.unwrap();
    assert_eq!(text_of(&r), "alpha");
}

/// A read-only server lists only the tools annotated `readOnlyHint: true`.
#[tokio::test]
async fn read_only_server_lists_only_read_only_tools() {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let beta = Upstream::start(TestServer::new(Era::Modern, "beta"));
    let home = Home::new();
    home.servers_config(
        &[("alpha", &alpha.url), ("beta", &beta.url)],
        "[policy]\nread_only = [\"beta\"]\n",
    );
    let (client, mut seen) = spawn_bridge(&home, &[]).await;
    let names = wait_for_tools(&client, &mut seen, |n| {
        n.contains(&"beta__echo".into()) && n.contains(&"alpha__echo".into())
    })
    .await;
    let beta_tools: Vec<_> = names.iter().filter(|n| n.starts_with("beta__")).collect();
    assert_eq!(beta_tools, ["beta__echo", "beta__whoami"]);
    assert_eq!(names.iter().filter(|n| n.starts_with("alpha__")).count(), TOOLS);
    let err = client
        .call_tool(params("beta__wipe", json!({})))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("read-only"), "{err}");
}

/// A destructive tool waits for the user: accepted once, accepted for the
/// session (then not asked again), declined, and unanswered; a declined or
/// unanswered approval never reaches the server.
#[tokio::test]
async fn approvals_accepted_remembered_declined_and_timed_out() {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let probe = alpha.server.probe.clone();
    let home = Home::new();
    home.servers_config(&[("alpha", &alpha.url)], "[policy]\napproval_timeout = 1\n");
    let (client, mut seen) = spawn_bridge(&home, &[]).await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"wipe".into())).await;

    let call = |text: &str| client.call_tool(params("wipe", json!({ "text": text })));
    let r = call("decline-me").await.unwrap();
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("declined"), "{}", text_of(&r));
    let r = call("hang-me").await.unwrap();
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("no answer"), "{}", text_of(&r));
    assert_eq!(
        probe.calls.load(Ordering::SeqCst),
        0,
        "a refused call reached the server"
    );

    let r = call("once").await.unwrap();
    assert_eq!(text_of(&r), "wiped");
    // Approved once only: the next question is asked (and declined).
    let r = call("decline-me").await.unwrap();
    assert!(text_of(&r).contains("declined"));
    // Approved for the session: not asked again, so "decline-me" is never seen.
    assert_eq!(text_of(&call("remember-me").await.unwrap()), "wiped");
    assert_eq!(text_of(&call("decline-me").await.unwrap()), "wiped");
    assert_eq!(probe.calls.load(Ordering::SeqCst), 3);
}

/// An IDE without elicitation cannot be asked: the call is refused and the
/// message says how to allow it.
#[tokio::test]
async fn approval_without_elicitation_is_refused_with_advice() {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let home = Home::new();
    home.servers_config(&[("alpha", &alpha.url)], "");
    let client = ().serve(TokioChildProcess::new(bridge_command(&home, &[])).unwrap()).await.unwrap();
    wipe_listed(client.peer(), Every(std::time::Duration::from_millis(50))).await;
    let r = client.call_tool(params("wipe", json!({}))).await.unwrap();
    assert_eq!(r.is_error, Some(true));
    let t = text_of(&r);
    assert!(
        t.contains("cannot be asked") && t.contains("approve_destructive = false"),
        "{t}"
    );
    assert_eq!(alpha.server.probe.calls.load(Ordering::SeqCst), 0);
}

/// Every call the IDE makes is recorded in the audit log (result, tool error,
/// declined approval, refused by policy), without arguments by default, and
/// `mcp-bridge stats` counts them.
#[tokio::test]
async fn calls_are_audited_and_summarised() {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let home = Home::new();
    home.servers_config(
        &[("alpha", &alpha.url)],
        "[policy]\ndeny = [\"alpha__slow\"]\n[audit.minutes_saved]\n\"alpha__echo\" = 2\n",
    );
    let (client, mut seen) = spawn_bridge(&home, &[]).await;
    wait_for_tools(&client, &mut seen, |n| n.contains(&"echo".into())).await;
    for i in 0..3 {
        let r = client
            .call_tool(params("echo", json!({ "text": format!("secret-{i}") })))
            .await
            .unwrap();
        assert_eq!(text_of(&r), format!("secret-{i}"));
    }
    assert_eq!(
        client.call_tool(params("fail", json!({}))).await.unwrap().is_error,
        Some(true)
    );
    assert_eq!(
        client
            .call_tool(params("wipe", json!({ "text": "decline-me" })))
            .await
            .unwrap()
            .is_error,
        Some(true)
    );
    assert!(client.call_tool(params("slow", json!({}))).await.is_err());
    client.cancel().await.unwrap();

    // The bridge flushes its log as it exits; wait (bounded) for all six lines.
    let log = home.path().join("state/audit.jsonl");
    let every = Every(std::time::Duration::from_millis(50));
    let lines: Vec<serde_json::Value> = eventually_woken(
        "six audit lines",
        std::time::Duration::from_secs(20),
        every,
        async || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<_> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            if lines.len() >= 6 { Ok(lines) } else { Err(Text(text)) }
        },
    )
    .await;
    let outcomes: Vec<_> = lines
        .iter()
        .map(|l| l["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(outcomes, ["ok", "ok", "ok", "tool_error", "declined", "refused"]);
    assert_eq!(lines[0]["server"], "alpha");
    assert_eq!(lines[0]["tool"], "echo");
    assert_eq!(lines[0]["result_bytes"], 8);
    let raw = std::fs::read_to_string(&log).unwrap();
    assert!(!raw.contains("secret-"), "arguments are recorded only when asked for");

    let out = cli(&home, &["stats", "--json", "--since", "all"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["totals"]["calls"], 6);
    assert_eq!(v["totals"]["errors"], 3);
    let echo = v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tool"] == "echo")
        .unwrap();
    assert_eq!(echo["calls"], 3);
    assert_eq!(echo["minutes_saved"], 6.0);
}

/// Past `max_tools` the IDE sees the pinned tools and three meta-tools; the
/// model finds a tool by words, reads its schema, and calls it through them,
/// under the same policy as a direct call.
#[tokio::test]
async fn discovery_mode_past_the_tool_budget() {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let beta = Upstream::start(TestServer::new(Era::Modern, "beta"));
    let home = Home::new();
    home.servers_config(
        &[("alpha", &alpha.url), ("beta", &beta.url)],
        "[policy]\nmax_tools = 5\npin = [\"alpha__whoami\", \"beta__echo\"]\ndeny = [\"beta__slow\"]\n",
    );
    let (client, mut seen) = spawn_bridge(&home, &[]).await;
    // Both pinned tools listed: both servers are connected.
    let names = wait_for_tools(&client, &mut seen, |n| {
        n.contains(&"alpha__whoami".into()) && n.contains(&"beta__echo".into())
    })
    .await;
    assert_eq!(
        names,
        [
            "alpha__whoami",
            "beta__echo",
            "bridge_call_tool",
            "bridge_describe_tool",
            "bridge_search_tools"
        ]
    );

    let r = client
        .call_tool(params(
            "bridge_search_tools",
            json!({ "query": "echo the text back", "limit": 3 }),
        ))
        .await
        .unwrap();
    let hits = r.structured_content.clone().unwrap()["tools"]
        .as_array()
        .unwrap()
        .clone();
    assert!(hits.len() <= 3 && !hits.is_empty(), "{hits:?}");
    assert!(hits[0]["name"].as_str().unwrap().ends_with("__echo"), "{hits:?}");
    assert!(text_of(&r).contains("__echo"));

    let r = client
        .call_tool(params("bridge_describe_tool", json!({ "name": "beta__echo" })))
        .await
        .unwrap();
    assert_eq!(
        r.structured_content.unwrap()["inputSchema"]["properties"]["text"]["type"],
        "string"
    );

    let r = client
        .call_tool(params(
            "bridge_call_tool",
            json!({ "name": "beta__echo", "arguments": { "text": "found it" } }),
        ))
        .await
        .unwrap();
    assert_eq!(text_of(&r), "found it");
    // The policy holds through the meta-tool.
    let err = client
        .call_tool(params("bridge_call_tool", json!({ "name": "beta__slow" })))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not allowed"), "{err}");
    // A tool not listed directly can still be called by name.
    let r = client
        .call_tool(params("alpha__echo", json!({ "text": "direct" })))
        .await
        .unwrap();
    assert_eq!(text_of(&r), "direct");
}

/// A 2026-07-28 IDE cannot be sent a request: the question comes back as an
/// input-required round, the IDE answers it on its retry, and only then does
/// the call reach the server. A decline on the retry refuses it.
#[tokio::test]
async fn approval_for_a_2026_ide_is_an_input_round() {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let probe = alpha.server.probe.clone();
    let home = Home::new();
    home.servers_config(&[("alpha", &alpha.url)], "");
    let (tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let transport = TokioChildProcess::new(bridge_command(&home, &[])).unwrap();
    let mode = rmcp::ClientLifecycleMode::Discover {
        preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
    };
    let client = rmcp::ClientServiceExt::serve_with_lifecycle(Ide::new(tx), transport, mode)
        .await
        .unwrap();
    // A modern IDE hears of list changes only on a listen stream: poll, bounded.
    wipe_listed(client.peer(), (&mut seen, Every(std::time::Duration::from_millis(50)))).await;
    // rmcp's client drives the round through the test IDE's elicitation handler.
    let r = client
        .call_tool(params("wipe", json!({ "text": "decline-me" })))
        .await
        .unwrap();
    assert!(text_of(&r).contains("declined"), "{}", text_of(&r));
    assert_eq!(probe.calls.load(Ordering::SeqCst), 0);
    let r = client
        .call_tool(params("wipe", json!({ "text": "fine" })))
        .await
        .unwrap();
    assert_eq!(text_of(&r), "wiped");
    assert_eq!(probe.calls.load(Ordering::SeqCst), 1);
}
