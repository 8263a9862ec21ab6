//! Property tests of the pure parsers that read input the bridge does not
//! control: the IDE's stdio lines, the config file, registry pages, IDE config
//! files, upstream tool names, registry timestamps. Each property has a bounded
//! case count so the whole file stays well under 30 s in a debug build; the
//! `fuzz/` crate drives the same entry points without a bound.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use mcp_bridge::catalog::{Catalog, Naming, PrefixMode, ServerLists};
use mcp_bridge::config::Config;
use mcp_bridge::downstream::stdio::{Line, StdioTransport, classify};
use mcp_bridge::install::edit;
use mcp_bridge::registry::sync::{Mirror, rfc3339_key};
use mcp_bridge::registry::{self, AdHoc, OFFICIAL_META};
use proptest::prelude::*;
use serde_json::{Value, json};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Shrinking is for a human reading a failure; keep its time bounded too.
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    }
}

/// Any JSON value, a few levels deep, with short keys and strings that often
/// collide with the field names the parsers look for.
fn json_value(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let key = prop_oneof![3 => proptest::sample::select(keys).prop_map(str::to_owned), 1 => ".{0,6}"];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        proptest::sample::select(keys).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

// ---------------------------------------------------------------- (a) stdio

/// A line that looks like JSON-RPC often enough to reach every branch.
fn rpc_line() -> impl Strategy<Value = Vec<u8>> {
    const KEYS: &[&str] = &[
        "jsonrpc",
        "2.0",
        "id",
        "method",
        "params",
        "result",
        "error",
        "ping",
        "tools/list",
        "tools/call",
        "initialize",
        "notifications/initialized",
        "code",
        "message",
        "name",
        "arguments",
    ];
    prop_oneof![
        2 => proptest::collection::vec(any::<u8>(), 0..64),
        2 => json_value(KEYS).prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => (json_value(KEYS), any::<u8>(), any::<usize>()).prop_map(|(v, b, at)| {
            // A valid-looking message with one byte replaced: truncated or broken JSON.
            let mut bytes = serde_json::to_vec(&v).unwrap();
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] = b;
            }
            bytes
        }),
        1 => (any::<i64>(), proptest::sample::select(&["ping", "tools/list", "x"][..])).prop_map(|(id, m)| {
            serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "method": m})).unwrap()
        }),
    ]
    .prop_map(|mut l| {
        l.retain(|b| *b != b'\n');
        l
    })
}

proptest! {
    #![proptest_config(config(512))]

    /// `classify` never panics, and a line is skipped only when it is blank, a
    /// notification (an object with a string `method` and no `id`) or a response
    /// (`result` or `error`, no `method`), which JSON-RPC never answers; every
    /// other line that is not a message gets exactly one error: -32700 for bytes
    /// that are not JSON, -32600 for JSON that is not a request, -32602 for a
    /// known method with params that do not fit, with the request's id when it
    /// is a number or string.
    #[test]
    fn stdio_classify_answers_every_bad_line(line in rpc_line()) {
        match classify(&line) {
            Line::Message(m) => {
                // What rmcp gets back serialises again.
                prop_assert!(serde_json::to_vec(&*m).is_ok());
            }
            Line::Skip => {
                let trimmed = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&line);
                let blank = trimmed.iter().all(u8::is_ascii_whitespace);
                // A response whose strings are not UTF-8 is still a response
                // (never answered): read it as text with the bad bytes replaced.
                let v: Option<Value> = serde_json::from_slice(trimmed)
                    .ok()
                    .or_else(|| serde_json::from_str(&String::from_utf8_lossy(trimmed)).ok());
                let notification = v.as_ref().is_some_and(|v| {
                    v.get("id").is_none() && v.get("method").is_some_and(Value::is_string)
                });
                // A response (malformed, or to an id the bridge never used) is never answered.
                let response = v.as_ref().is_some_and(|v| {
                    v.get("method").is_none() && (v.get("result").is_some() || v.get("error").is_some())
                });
                prop_assert!(blank || notification || response, "skipped {:?}", String::from_utf8_lossy(&line));
            }
            Line::WideRequest { .. } | Line::Cancel { .. } => {}
            Line::Error { id, code, message } => {
                prop_assert!(code == -32700 || code == -32600 || code == -32602);
                let id: Value = serde_json::from_str(&id).unwrap();
                prop_assert!(id.is_null() || id.is_number() || id.is_string());
                prop_assert!(!message.is_empty());
                if code == -32700 {
                    // Not JSON: no id, unless one could be read before the bad bytes.
                    prop_assert!(id.is_null() || std::str::from_utf8(&line).is_err(), "{}", id);
                }
            }
        }
    }
}

/// Runs the real transport over `input` with a short message limit and returns
/// the messages handed to rmcp and the lines written back.
fn run_transport(input: Vec<u8>, max: usize) -> (usize, Vec<Value>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        use rmcp::transport::Transport;
        let (mut out_r, out_w) = tokio::io::duplex(1 << 20);
        let mut t = StdioTransport::new(&input[..], out_w, max);
        let mut messages = 0;
        let received = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while t.receive().await.is_some() {
                messages += 1;
            }
        })
        .await;
        assert!(
            received.is_ok(),
            "the transport hung on {:?}",
            String::from_utf8_lossy(&input)
        );
        drop(t);
        let mut out = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut out_r, &mut out)
            .await
            .unwrap();
        let lines = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("every answer is one JSON line"))
            .collect();
        (messages, lines)
    })
}

proptest! {
    #![proptest_config(config(128))]

    /// The framing over arbitrary bytes (fewer lines than the error rate limit)
    /// never hangs nor panics; each complete line is either handed on, skipped, or
    /// answered by exactly one error line, and oversized lines by one -32600.
    #[test]
    fn stdio_transport_answers_each_line_once(lines in proptest::collection::vec(rpc_line(), 0..12), tail in proptest::collection::vec(any::<u8>(), 0..20)) {
        let max = 48;
        let mut input = Vec::new();
        let mut expected_errors = 0;
        let mut expected_messages = 0;
        let mut ids = HashSet::new();
        for l in &lines {
            input.extend_from_slice(l);
            input.push(b'\n');
            if l.len() > max {
                expected_errors += 1;
            } else {
                match classify(l) {
                    // A second request with an id in flight (nothing is answered
                    // here) is refused by the transport.
                    Line::Message(m) => match &*m {
                        rmcp::model::JsonRpcMessage::Request(r) if !ids.insert(serde_json::to_string(&r.id).unwrap()) => expected_errors += 1,
                        _ => expected_messages += 1,
                    },
                    Line::WideRequest { id, .. } if !ids.insert(id.to_string()) => expected_errors += 1,
                    Line::WideRequest { .. } => expected_messages += 1,
                    Line::Cancel { .. } => {}
                    Line::Skip => {}
                    Line::Error { .. } => expected_errors += 1,
                }
            }
        }
        // An unterminated last line is not a message yet: EOF drops it unanswered.
        let mut tail = tail;
        tail.retain(|b| *b != b'\n');
        input.extend_from_slice(&tail);
        let (messages, answers) = run_transport(input, max);
        prop_assert_eq!(messages, expected_messages);
        prop_assert_eq!(answers.len(), expected_errors);
        for a in &answers {
            prop_assert_eq!(&a["jsonrpc"], "2.0");
            prop_assert!(a["error"]["code"] == -32700 || a["error"]["code"] == -32600 || a["error"]["code"] == -32602, "{}", a);
        }
    }
}

/// A JSON id as written: integers of any width, float forms, strings with escapes.
fn wire_id() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        "-?[1-9][0-9]{0,40}",
        "-?(0|[1-9][0-9]{0,20})\\.[0-9]{1,6}([eE][+-]?[0-9]{1,3})?",
        "-?[1-9][0-9]{0,5}[eE][+-]?[0-9]{1,2}",
        any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        "\"(\\\\u00[0-7][0-9a-f]|[a-z]){0,6}\"",
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// Whatever id the IDE writes, rmcp gets a request it can answer, and the
    /// answer goes out with the id written exactly as it came (strings equal
    /// as strings); a second request with the same id while the first is in
    /// flight is refused with that id, and the first still gets its answer.
    #[test]
    fn stdio_ids_round_trip(id in wire_id()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (first, dup, answer) = rt.block_on(async {
            use rmcp::transport::Transport;
            let line = format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"ping\"}}\n");
            let input = format!("{line}{line}");
            let (out_r, out_w) = tokio::io::duplex(1 << 16);
            let mut t = StdioTransport::new(input.as_bytes(), out_w, 1 << 20);
            let m = t.receive().await.expect("the request");
            let rmcp::model::JsonRpcMessage::Request(r) = m else { panic!("{m:?}") };
            // The duplicate is answered by the transport while reading on.
            assert!(t.receive().await.is_none());
            t.send(rmcp::model::JsonRpcMessage::response(rmcp::model::ServerResult::empty(()), r.id)).await.unwrap();
            drop(t);
            let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(out_r));
            let dup = lines.next_line().await.unwrap().unwrap();
            let answer = lines.next_line().await.unwrap().unwrap();
            (line, dup, answer)
        });
        prop_assert!(!first.is_empty());
        let wire = |l: &str| {
            let rest = l.strip_prefix("{\"jsonrpc\":\"2.0\",\"id\":").unwrap_or_else(|| panic!("{l}"));
            let exact = rest.starts_with(&id);
            // serde_json's Value cannot hold every JSON number: read the rest.
            let v: Value = if exact && !id.starts_with('"') { serde_json::from_str(&l.replacen(&id, "0", 1)) } else { serde_json::from_str(l) }.unwrap();
            (exact, v)
        };
        let (exact, v) = wire(&answer);
        if id.starts_with('"') {
            let want: Value = serde_json::from_str(&id).unwrap();
            prop_assert_eq!(&v["id"], &want, "{}", answer);
        } else {
            prop_assert!(exact, "{} came back as {}", id, answer);
        }
        prop_assert!(v["result"].is_object(), "{}", answer);
        let (exact, v) = wire(&dup);
        prop_assert!(exact || id.starts_with('"'), "{}", dup);
        prop_assert_eq!(&v["error"]["code"], &json!(-32600), "{}", dup);
    }
}

/// Deep nesting is refused by serde_json's recursion limit, not by a stack overflow.
#[test]
fn stdio_deep_nesting_is_an_error() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(classify(deep.as_bytes()), Line::Error { .. }));
    let deep = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{}}}",
        "{\"a\":".repeat(50_000)
    );
    assert!(matches!(classify(deep.as_bytes()), Line::Error { .. }));
}

// ---------------------------------------------------------------- (b) config

const EXAMPLE_CONFIG: &str = include_str!("../config/config.example.toml");

/// The example config with random lines uncommented, dropped, duplicated or
/// changed in one byte.
fn mutated_example() -> impl Strategy<Value = String> {
    let n = EXAMPLE_CONFIG.lines().count();
    proptest::collection::vec((0..n, 0u8..4, any::<u8>(), any::<usize>()), 0..12).prop_map(|edits| {
        let mut lines: Vec<String> = EXAMPLE_CONFIG.lines().map(str::to_owned).collect();
        for (i, op, byte, at) in edits {
            let i = i % lines.len().max(1);
            if lines.is_empty() {
                break;
            }
            match op {
                0 => {
                    let l = lines[i].trim_start_matches('#').trim_start().to_owned();
                    lines[i] = l;
                }
                1 => {
                    lines.remove(i);
                }
                2 => {
                    let l = lines[i].clone();
                    lines.insert(i, l);
                }
                _ => {
                    let mut bytes = lines[i].clone().into_bytes();
                    if !bytes.is_empty() {
                        let j = at % bytes.len();
                        bytes[j] = byte;
                    }
                    lines[i] = String::from_utf8_lossy(&bytes).into_owned();
                }
            }
        }
        lines.join("\n")
    })
}

/// Config files built from the real sections and keys with edge-case values, so
/// that validation (not only TOML syntax) fails often.
fn config_from_keys() -> impl Strategy<Value = String> {
    const LINES: &[&str] = &[
        "[registry]",
        "[naming]",
        "[timeouts]",
        "[http]",
        "[audit]",
        "[audit.minutes_saved]",
        "[policy]",
        "[[servers]]",
        "[log]",
        "[cache]",
    ];
    const KEYS: &[&str] = &[
        "url",
        "file",
        "name",
        "separator",
        "max_length",
        "prefix",
        "connect",
        "call",
        "ready_wait",
        "max_bytes",
        "max_message_bytes",
        "keep_alive",
        "enabled",
        "\"a*\"",
        "'b?'",
        "max_tools",
        "level",
    ];
    const VALUES: &[&str] = &[
        "0",
        "-1",
        "16",
        "1e400",
        "nan",
        "inf",
        "-inf",
        "0.0",
        "\"\"",
        "\"a b\"",
        "'x y'",
        "\"a__b\"",
        "'a'",
        "\"a\"",
        "\"http://h/mcp\"",
        "\"ftp://h\"",
        "\"never\"",
        "true",
        "[]",
        "\"\\u0041 b\"",
        "1024",
        "200",
    ];
    proptest::collection::vec(
        prop_oneof![
            1 => proptest::sample::select(LINES).prop_map(str::to_owned),
            3 => (proptest::sample::select(KEYS), proptest::sample::select(VALUES)).prop_map(|(k, v)| format!("{k} = {v}")),
        ],
        0..14,
    )
    .prop_map(|lines| lines.join("\n"))
}

fn check_config(text: &str) -> Result<(), TestCaseError> {
    if let Err(e) = Config::parse(text, Path::new("/x/config.toml")) {
        let e = e.to_string();
        prop_assert!(e.contains("/x/config.toml"), "{}", e);
        prop_assert!(e.contains("line "), "error without a line: {}\n--- text:\n{}", e, text);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    /// Arbitrary text never panics `Config::parse`; errors name the file and a line.
    #[test]
    fn config_parse_arbitrary_text(text in ".{0,200}") {
        check_config(&text)?;
    }

    /// Mutations of the shipped example never panic; errors name the file and a line.
    #[test]
    fn config_parse_mutated_example(text in mutated_example()) {
        check_config(&text)?;
    }

    /// Real keys with edge-case values: validation errors name a line too.
    #[test]
    fn config_parse_validation_names_a_line(text in config_from_keys()) {
        check_config(&text)?;
    }
}

#[test]
fn config_deep_nesting_is_an_error() {
    let text = format!("a = {}{}", "[".repeat(50_000), "]".repeat(50_000));
    assert!(Config::parse(&text, Path::new("c.toml")).is_err());
    let text = format!("a = {}{}", "{b = ".repeat(50_000), "}".repeat(50_000));
    assert!(Config::parse(&text, Path::new("c.toml")).is_err());
}

// ---------------------------------------------------------------- (c) registry

const ENTRY_KEYS: &[&str] = &[
    "server",
    "name",
    "remotes",
    "type",
    "streamable-http",
    "sse",
    "url",
    "http://h/{v}",
    "https://a.b/mcp",
    "variables",
    "v",
    "headers",
    "value",
    "default",
    "choices",
    "isRequired",
    "isSecret",
    "_meta",
    "io.modelcontextprotocol.registry/official",
    "dev.mcp-bridge/config",
    "namespace",
    "status",
    "active",
    "deleted",
    "deprecated",
    "isLatest",
    "updatedAt",
    "oauth",
    "tools",
    "com.x/a",
    "com.x/A",
    "a",
];

/// A registry entry: mostly the right shape, with random values and extra keys.
fn registry_entry() -> impl Strategy<Value = Value> {
    let name = prop_oneof![
        proptest::sample::select(&["com.x/a", "com.y/a", "com.x/A", "a", "A a", "é", "", "--"][..])
            .prop_map(str::to_owned),
        ".{0,30}",
    ];
    let namespace = prop_oneof![
        Just(Value::Null),
        proptest::sample::select(&["a", "a-2", "jira", "UP", "", "x_y", "a-very-long-namespace-over-24"][..])
            .prop_map(Value::from),
        json_value(ENTRY_KEYS),
    ];
    let url = prop_oneof![
        proptest::sample::select(&["https://a.b/mcp", "http://h/{v}", "ftp://x", "{v}", "nope"][..])
            .prop_map(str::to_owned),
        ".{0,20}",
    ];
    let status = proptest::sample::select(&["active", "deprecated", "deleted", "x"][..]);
    (
        name,
        namespace,
        url,
        status,
        any::<Option<bool>>(),
        json_value(ENTRY_KEYS),
        any::<u8>(),
    )
        .prop_map(|(name, namespace, url, status, latest, noise, shape)| {
            let mut e = json!({
                "server": {
                    "name": name,
                    "version": "1.0.0",
                    "remotes": [{"type": "streamable-http", "url": url,
                                 "variables": {"v": {"default": "x", "choices": ["x", "y"]}}}]
                },
                "_meta": {
                    OFFICIAL_META: {"status": status, "isLatest": latest, "updatedAt": "2026-01-01T00:00:00Z"},
                    "dev.mcp-bridge/config": {"namespace": namespace}
                }
            });
            // Sometimes replace a part by noise to reach the malformed paths.
            match shape % 6 {
                0 => e["server"]["remotes"] = noise,
                1 => e["_meta"] = noise,
                2 => e["server"]["remotes"][0]["variables"] = noise,
                3 => e = noise,
                _ => {}
            }
            e
        })
}

proptest! {
    #![proptest_config(config(256))]

    /// A page of arbitrary entries parses (or fails with a message) and resolves
    /// without panicking; every server id is unique and `[a-z0-9-]+`.
    #[test]
    fn registry_resolve_ids_unique(entries in proptest::collection::vec(registry_entry(), 0..12), urls in proptest::collection::vec(prop_oneof![Just("http://127.0.0.1:9/mcp".to_owned()), Just("https://mcp.a.com/x".to_owned()), ".{0,12}"], 0..3)) {
        // The page as a file, through the same parser the bridge uses.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.json");
        std::fs::write(&path, serde_json::to_vec(&json!({"servers": entries})).unwrap()).unwrap();
        let servers = registry::read_file(&path).expect("a page with a servers array parses");
        let resolved = registry::resolve(&Config::default(), &servers, &AdHoc { urls, ..AdHoc::default() });
        let mut seen = HashSet::new();
        for s in &resolved.servers {
            prop_assert!(!s.id.is_empty() && s.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "id {:?}", s.id);
            prop_assert!(seen.insert(s.id.clone()), "id {:?} twice", s.id);
        }
    }

    /// Any JSON document as a registry file: an error or a list, never a panic.
    #[test]
    fn registry_read_file_arbitrary(doc in json_value(ENTRY_KEYS)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.json");
        std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
        if let Ok(servers) = registry::read_file(&path) {
            registry::resolve(&Config::default(), &servers, &AdHoc::default());
        }
    }
}

/// Registry variables are filled in one pass: a value that names another
/// variable is not expanded again (which could grow a URL exponentially).
#[test]
fn registry_variables_do_not_expand_recursively() {
    let mut vars = serde_json::Map::new();
    let names: Vec<String> = (0..40).map(|i| format!("v{i:02}")).collect();
    for (i, n) in names.iter().enumerate() {
        let next = names
            .get(i + 1)
            .map(|n| format!("{{{n}}}{{{n}}}"))
            .unwrap_or_else(|| "x".into());
        vars.insert(n.clone(), json!({ "default": next }));
    }
    let entry = json!({
        "server": {"name": "com.x/boom", "remotes": [{"type": "streamable-http", "url": "https://h/{v00}", "variables": vars}]}
    });
    let r = registry::resolve(&Config::default(), &[entry], &AdHoc::default());
    // Only `{v00}` is replaced; the braces it brings stay and make the URL unusable.
    assert!(r.servers.is_empty(), "{:?}", r.servers);
    assert_eq!(r.problems.len(), 1);
    assert!(r.problems[0].reason.len() < 1000, "{}", r.problems[0].reason);
}

// ---------------------------------------------------------------- (d) JSONC edits

fn entry_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        ".{0,10}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,6}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An IDE config document: a JSON object, sometimes with `mcpServers` holding
/// entries, rendered compact or pretty, sometimes with CRLF or a BOM.
fn ide_doc() -> impl Strategy<Value = String> {
    let servers = proptest::collection::btree_map(
        prop_oneof![Just("mcp-bridge".to_owned()), ".{0,6}"],
        entry_value(),
        0..4,
    );
    (
        proptest::collection::btree_map(".{0,6}", entry_value(), 0..4),
        proptest::option::of(servers),
        0u8..4,
    )
        .prop_map(|(other, servers, style)| {
            let mut doc: serde_json::Map<String, Value> = other.into_iter().collect();
            if let Some(s) = servers {
                doc.insert("mcpServers".into(), Value::Object(s.into_iter().collect()));
            } else {
                doc.remove("mcpServers");
            }
            let doc = Value::Object(doc);
            match style {
                0 => serde_json::to_string(&doc).unwrap(),
                1 => serde_json::to_string_pretty(&doc).unwrap(),
                2 => serde_json::to_string_pretty(&doc).unwrap().replace('\n', "\r\n"),
                _ => format!("\u{feff}// comment\n{}\n", serde_json::to_string_pretty(&doc).unwrap()),
            }
        })
}

proptest! {
    #![proptest_config(config(256))]

    /// Arbitrary text: upsert, remove and get return a value or an error, never panic.
    #[test]
    fn jsonc_edit_arbitrary_text(text in prop_oneof![".{0,80}", ide_doc().prop_map(|d| {
        // Truncated documents reach the parser's error paths.
        let cut = d.len() / 2;
        d.char_indices().map(|(i, _)| i).find(|i| *i >= cut).map(|i| d[..i].to_owned()).unwrap_or(d)
    })], entry in entry_value()) {
        let _ = edit::upsert(&text, "mcpServers", "mcp-bridge", &entry);
        let _ = edit::remove(&text, "mcpServers", "mcp-bridge");
        let _ = edit::get(&text, "mcpServers", "mcp-bridge");
    }

    /// On a JSON object: upsert then get gives the entry back, a second upsert
    /// changes nothing, and remove takes it out again.
    #[test]
    fn jsonc_upsert_get_idempotent(doc in ide_doc(), name in prop_oneof![Just("mcp-bridge".to_owned()), ".{0,8}"], entry in entry_value()) {
        let once = edit::upsert(&doc, "mcpServers", &name, &entry).expect("a JSON object edits");
        let text = once.unwrap_or_else(|| doc.clone());
        prop_assert_eq!(edit::get(&text, "mcpServers", &name).unwrap(), Some(entry.clone()), "after upsert:\n{}", text);
        prop_assert_eq!(edit::upsert(&text, "mcpServers", &name, &entry).unwrap(), None, "second upsert changed:\n{}", text);
        let removed = edit::remove(&text, "mcpServers", &name).unwrap().expect("the entry is there to remove");
        prop_assert_eq!(edit::get(&removed, "mcpServers", &name).unwrap(), None);
    }
}

#[test]
fn jsonc_deep_nesting_does_not_crash() {
    for deep in [
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
        format!(
            "{{\"mcpServers\": {{\"x\": {}1{}}}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
    ] {
        // In a thread with the default 2 MiB stack, as the main thread of a CLI has 8.
        let r = std::thread::spawn(move || {
            let _ = edit::upsert(&deep, "mcpServers", "mcp-bridge", &json!({"command": "x"}));
            let _ = edit::get(&deep, "mcpServers", "x");
        })
        .join();
        assert!(r.is_ok());
    }
}

// ---------------------------------------------------------------- (e) catalog

fn tool(name: &str) -> rmcp::model::Tool {
    serde_json::from_value(json!({"name": name, "inputSchema": {"type": "object"}})).unwrap()
}

fn tool_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(&["echo", "alpha__echo", "beta__echo", "a__b__c", "__", "", "é", "échö", "a.b-c", "x y"][..]).prop_map(str::to_owned),
        2 => ".{0,20}",
        1 => "[a-z_]{150,260}",
        1 => "(alpha|beta|é)__[a-z_]{0,140}",
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// Whatever the upstream tool names, the catalog builds; listed names are
    /// unique, at most `max_len`, only `[A-Za-z0-9_.-]`, and each routes back to
    /// exactly the server and tool it was made from.
    #[test]
    fn catalog_names_unique_and_routed_home(
        lists in proptest::collection::btree_map(
            proptest::sample::select(&["alpha", "beta", "alpha__x", "é", "a-b"][..]),
            proptest::collection::vec(tool_name(), 0..12),
            1..4,
        ),
        prefix in proptest::sample::select(&[PrefixMode::Auto, PrefixMode::Always, PrefixMode::Never][..]),
        separator in proptest::sample::select(&["__", ".", "-", "_"][..]),
        max_len in prop_oneof![Just(16usize), Just(64), Just(128), 0usize..200],
    ) {
        let naming = Naming {
            prefix,
            separator: separator.into(),
            max_len,
            ..Naming::default()
        };
        let servers: BTreeMap<Arc<str>, Arc<ServerLists>> = lists
            .iter()
            .map(|(s, tools)| {
                (Arc::from(*s), Arc::new(ServerLists { tools: tools.iter().map(|t| tool(t)).collect(), ..Default::default() }))
            })
            .collect();
        let cat = Catalog::build(&servers, servers.len(), &naming);
        let bound = max_len.clamp(16, 128);
        let mut seen = HashSet::new();
        // Which (server, tool) pairs exist, to check each route against.
        let mut origins: HashSet<(String, String)> = HashSet::new();
        for (s, tools) in &lists {
            for t in tools {
                origins.insert((s.to_string(), t.clone()));
            }
        }
        let mut routed = Vec::new();
        for t in &cat.tools {
            let n = t.name.to_string();
            prop_assert!(seen.insert(n.clone()), "{:?} listed twice", n);
            prop_assert!(n.len() <= bound, "{:?} longer than {}", n, bound);
            prop_assert!(!n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)), "{:?}", n);
            let route = cat.tool(&n).expect("every listed name routes");
            prop_assert!(origins.contains(&(route.server.to_string(), route.name.clone())), "{:?} routes to {:?}", n, route);
            routed.push((route.server.to_string(), route.name.clone()));
        }
        // Every upstream tool is listed, each once (duplicates within a server
        // are listed as often as the server lists them).
        let total: usize = lists.values().map(Vec::len).sum();
        prop_assert_eq!(cat.tools.len(), total);
        let mut want: Vec<(String, String)> = lists.iter().flat_map(|(s, ts)| ts.iter().map(move |t| (s.to_string(), t.clone()))).collect();
        want.sort();
        routed.sort();
        prop_assert_eq!(routed, want);
    }
}

/// A server that lists a long name twice (an upstream bug) must not hang the
/// catalog build: the name generator used to cut its counter off again.
#[test]
fn catalog_duplicate_long_names_terminate() {
    let long = "t".repeat(200);
    let servers: BTreeMap<Arc<str>, Arc<ServerLists>> = [(
        Arc::from("s"),
        Arc::new(ServerLists {
            tools: vec![tool(&long), tool(&long), tool(&long), tool("é"), tool("é"), tool("é")],
            ..Default::default()
        }),
    )]
    .into_iter()
    .collect();
    let cat = Catalog::build(&servers, 1, &Naming::default());
    let names: HashSet<_> = cat.tools.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names.len(), 6);
}

// ---------------------------------------------------------------- (f) registry sync

fn timestamp() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,32}",
        "[0-9+-]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?(Z|z|[+-][0-9]{2}:[0-9]{2}|.{0,6})",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}.{6}",
    ]
}

fn mirror_entry() -> impl Strategy<Value = Value> {
    (
        proptest::sample::select(&["a", "b", "c"][..]),
        proptest::sample::select(&["1", "2"][..]),
        timestamp(),
        any::<Option<bool>>(),
        proptest::sample::select(&["active", "deleted"][..]),
        json_value(ENTRY_KEYS),
        0u8..5,
    )
        .prop_map(|(name, version, updated, latest, status, noise, shape)| {
            if shape == 0 {
                return noise;
            }
            json!({
                "server": {"name": name, "version": version},
                "_meta": {OFFICIAL_META: {"updatedAt": updated, "isLatest": latest, "status": status}}
            })
        })
}

proptest! {
    #![proptest_config(config(512))]

    /// `rfc3339_key` never panics on any string, and orders valid timestamps.
    #[test]
    fn rfc3339_key_total(s in timestamp()) {
        let _ = rfc3339_key(&s);
    }

    /// `Mirror::merge` never panics, keeps its copy sorted and holds at most one
    /// latest version per name after a merge of latest-only deltas.
    #[test]
    fn mirror_merge_total(
        start in proptest::collection::vec(mirror_entry(), 0..8),
        deltas in proptest::collection::vec((proptest::collection::vec(mirror_entry(), 0..6), timestamp()), 0..4),
    ) {
        let mut m = Mirror::new(start);
        for (delta, since) in deltas {
            m.merge(delta, &since);
            let _ = m.since();
            let keys: Vec<_> = m.servers.iter().map(|e| (
                e.pointer("/server/name").and_then(Value::as_str).map(str::to_owned),
                e.pointer("/server/version").and_then(Value::as_str).map(str::to_owned),
            )).collect();
            let mut sorted = keys.clone();
            sorted.sort();
            prop_assert_eq!(keys, sorted);
        }
    }
}

/// Offsets with multi-byte characters used to slice inside a character.
#[test]
fn rfc3339_key_multibyte_offset() {
    assert_eq!(rfc3339_key("2026-01-01T00:00:00é1234"), None);
    assert_eq!(rfc3339_key("2026-01-01T00:00:00+0é12"), None);
    assert_eq!(rfc3339_key("2026-01-01T00:00:00+é:12"), None);
    assert_eq!(rfc3339_key("2026-01-01T00:00:00+01:00"), Some((1_767_222_000, 0)));
}

const GOOSE_CONFIG: &str = include_str!("fixtures/ide/goose-config.yaml");
const YAML: edit::Place<'static> = edit::Place {
    format: edit::Format::Yaml,
    key: "extensions",
};

/// Strings that YAML could misread: quotes, colons, `#`, line breaks,
/// unicode, control characters, words YAML reads as booleans or null.
fn yaml_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z:#\"' \\n\\t\\\\{}\\[\\],&*!|>%@`ü🙂\u{2028}\u{85}\u{feff}-]{0,12}",
        1 => any::<String>(),
        1 => proptest::sample::select(&["yes", "no", "null", "~", "true", "1", "0x1F", ".inf", "- a", "? x", ""][..])
            .prop_map(str::to_owned),
    ]
}

/// A Goose-like entry: strings, numbers, booleans, lists and nested env maps.
fn yaml_entry() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        yaml_string().prop_map(Value::from),
    ];
    let value = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(yaml_string(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    proptest::collection::btree_map(
        prop_oneof![
            proptest::sample::select(&["cmd", "args", "envs", "type", "timeout"][..]).prop_map(str::to_owned),
            yaml_string()
        ],
        value,
        0..6,
    )
    .prop_map(|m| Value::Object(m.into_iter().collect()))
}

proptest! {
    #![proptest_config(config(96))]

    /// Upserting any entry under any new name into a real Goose config (LF or
    /// CRLF) reads back as that entry, a second upsert writes nothing, and
    /// remove gives back the original bytes.
    #[test]
    fn yaml_upsert_reads_back_and_remove_restores(
        name in yaml_string(),
        entry in yaml_entry(),
        crlf in any::<bool>(),
    ) {
        let original = if crlf { GOOSE_CONFIG.replace('\n', "\r\n") } else { GOOSE_CONFIG.to_owned() };
        prop_assume!(edit::get(&original, YAML, &name).unwrap().is_none());
        let new = edit::upsert(&original, YAML, &name, &entry).unwrap().unwrap();
        prop_assert_eq!(edit::get(&new, YAML, &name).unwrap(), Some(entry.clone()));
        prop_assert_eq!(edit::upsert(&new, YAML, &name, &entry).unwrap(), None);
        prop_assert_eq!(edit::get(&new, YAML, "github").unwrap(), edit::get(&original, YAML, "github").unwrap());
        prop_assert_eq!(edit::remove(&new, YAML, &name).unwrap(), Some(original));
    }
}
