//! Unit tests of [`super`]: the tokeniser, the ranking rules one by one, the meta-tools and the
//! rendering.

use super::*;
use std::collections::HashSet;

fn tool(name: &str, description: &str, props: &[&str]) -> Tool {
    let properties: serde_json::Map<String, Value> = props
        .iter()
        .map(|p| (p.to_string(), json!({"type": "string"})))
        .collect();
    Tool::new(
        name.to_owned(),
        description.to_owned(),
        rmcp::model::object(json!({"type": "object", "properties": properties})),
    )
}

/// Equal scores are ordered by name, not by the catalog's order.
#[test]
fn ties_break_by_name() {
    let tools = vec![
        tool("beta__rotate", "Rotate the signing key.", &[]),
        tool("alpha__rotate", "Rotate the signing key.", &[]),
    ];
    let idx = Index::build(&tools, |n| n.split("__").next().map(str::to_owned));
    let hits = idx.search("rotate key", 10);
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].score, hits[1].score);
    assert_eq!(
        (hits[0].name.as_str(), hits[1].name.as_str()),
        ("alpha__rotate", "beta__rotate")
    );
}

/// Queries with nothing to match, or nothing left after stop words, find nothing.
#[test]
fn empty_and_unmatched_queries_find_nothing() {
    let tools = vec![
        tool("jira__create_issue", "Create a new Jira issue.", &["summary"]),
        tool(
            "github__create_issue",
            "Create a new issue in a GitHub repository.",
            &["title"],
        ),
    ];
    let idx = Index::build(&tools, |n| n.split("__").next().map(str::to_owned));
    assert_eq!(idx.search("create issue", 10).len(), 2);
    for q in ["", "   ", "the a of to", "?!", "xyzzy plugh"] {
        assert_eq!(idx.search(q, 10), [], "{q:?}");
    }
    let empty = Index::build(&[], |_| None);
    assert!(empty.is_empty());
    assert_eq!(empty.search("create issue", 10), []);
}

/// Tokens: word separators, camelCase, letters and digits together, stop words, short tokens,
/// abbreviations and hyphenated compounds.
#[test]
fn tokens() {
    let cases: &[(&str, &[&str])] = &[
        ("createIssue", &["creat", "issu"]),
        ("HTTPServer", &["http", "server"]),
        ("get_PR_v2", &["get", "pull", "request", "v2"]),
        ("k8s__scale_deployment", &["kubernet", "scal", "deployment"]),
        ("Move the ticket to Done!", &["mov", "ticket", "don"]),
        ("who is on-call?", &["who", "call", "oncall"]),
        ("PROJ-123 e.g. x", &["proj", "123"]),
        ("s3Bucket ec2 oauth2Token", &["s3", "bucket", "ec2", "oauth2", "token"]),
    ];
    for (text, want) in cases {
        assert_eq!(analyze(text), *want, "{text:?}");
    }
}

/// Inflected forms meet at one stem; words that only look inflected stay whole.
#[test]
fn stemming_is_symmetric() {
    let groups: &[&[&str]] = &[
        &["issue", "issues", "issued"],
        &["create", "creates", "created", "creating"],
        &["query", "queries"],
        &["branch", "branches"],
        &["run", "running", "runs"],
        &["status", "statuses"],
        &["deploy", "deploys", "deployed", "deploying"],
        &["message", "messages"],
        &["schedule", "scheduled", "scheduling"],
        &["stop", "stopped", "stopping"],
    ];
    for group in groups {
        let stems: HashSet<String> = group.iter().map(|w| stem(w)).collect();
        assert_eq!(stems.len(), 1, "{group:?} -> {stems:?}");
    }
    for word in ["string", "class", "analysis", "add", "k8s", "bill", "us"] {
        assert_eq!(stem(word), word);
    }
    assert_eq!(stem("billing"), "bill");
}

/// Prefixes match at reduced weight, in both directions; exact terms count more.
#[test]
fn prefix_matches() {
    let tools = vec![
        tool("a__deployment_status", "Show the status of a deployment.", &[]),
        tool("a__deploy_app", "Deploy the app.", &[]),
        tool("a__repo_stats", "Statistics of a repo.", &[]),
    ];
    let idx = Index::build(&tools, |_| None);
    let hits = idx.search("deploy", 10);
    assert_eq!(
        hits.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
        ["a__deploy_app", "a__deployment_status"]
    );
    let hits = idx.search("deployment", 10);
    assert_eq!(
        hits.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
        ["a__deployment_status", "a__deploy_app"]
    );
    // "repositories" stems to "repository", which "repo" spells out to.
    assert_eq!(idx.search("repositories statistics", 10)[0].name, "a__repo_stats");
    // Two-letter tokens do not prefix-match.
    assert_eq!(idx.search("de", 10), []);
}

/// The whole query as a phrase in the name or description outranks the same words apart.
#[test]
fn phrase_bonus() {
    let tools = vec![
        tool("x__apart", "Request a review, then pull the changes.", &[]),
        tool("x__phrase", "Pull request review, then the changes.", &[]),
    ];
    let idx = Index::build(&tools, |_| None);
    let hits = idx.search("pull request", 10);
    assert_eq!(hits[0].name, "x__phrase");
    assert!(hits[0].score > hits[1].score * 1.2, "{hits:?}");
}

/// Server ids, titles and schema property names are searchable; hits carry the server.
#[test]
fn fields_are_searched() {
    let mut titled = tool("tools__t1", "Does a thing.", &["warehouse_id"]);
    titled.title = Some("Quarantine a host".into());
    let tools = vec![titled, tool("tools__t2", "Does another thing.", &[])];
    let idx = Index::build(&tools, |_| Some("secops".into()));
    assert_eq!(idx.search("quarantine", 10)[0].name, "tools__t1");
    assert_eq!(idx.search("warehouse", 10)[0].name, "tools__t1");
    let hits = idx.search("secops", 10);
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].server.as_deref(), Some("secops"));
}

/// The summary is the description's first non-empty line, cut to 160 characters.
#[test]
fn summary_is_the_first_line_cut_short() {
    let long = "é".repeat(300);
    let cases = [
        ("\n  First line.  \nSecond line.".to_owned(), "First line.".to_owned()),
        (long.clone(), format!("{}…", &long[..159 * 2])),
        ("x".repeat(160), "x".repeat(160)),
    ];
    for (description, want) in cases {
        assert_eq!(summary(&tool("t__t", &description, &[])), want);
    }
    assert!(summary(&tool("t__t", &long, &[])).chars().count() <= SUMMARY_MAX);
}

/// The meta-tools have valid MCP names, the documented names, and object schemas with the
/// documented arguments.
#[test]
fn meta_tools_are_valid() {
    let tools = meta_tools();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, [SEARCH, DESCRIBE, CALL]);
    for t in &tools {
        assert!(
            (1..=128).contains(&t.name.len())
                && t.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')),
            "{}",
            t.name
        );
        assert_eq!(t.input_schema["type"], "object", "{}", t.name);
        assert!(t.input_schema["properties"].is_object(), "{}", t.name);
        assert!(t.description.as_deref().is_some_and(|d| d.len() > 80), "{}", t.name);
    }
    let schema = |i: usize| Value::Object((*tools[i].input_schema).clone());
    assert_eq!(schema(0)["required"], json!(["query"]));
    assert_eq!(schema(0)["properties"]["query"]["type"], "string");
    let limit = &schema(0)["properties"]["limit"];
    assert_eq!(
        (
            limit["type"].as_str(),
            limit["minimum"].as_i64(),
            limit["maximum"].as_i64()
        ),
        (Some("integer"), Some(1), Some(50))
    );
    assert_eq!(limit["default"], 10);
    assert_eq!(schema(1)["required"], json!(["name"]));
    assert_eq!(schema(2)["required"], json!(["name"]));
    assert_eq!(schema(2)["properties"]["arguments"]["type"], "object");
    // The search and describe tools only read.
    for t in &tools[..2] {
        assert_eq!(t.annotations.as_ref().and_then(|a| a.read_only_hint), Some(true));
    }
}

/// One line per hit, `name — summary (server)`, and the same hits as JSON.
#[test]
fn hits_render_as_lines_and_json() {
    let hits = [
        Hit {
            name: "github__create_pull_request".into(),
            server: Some("github".into()),
            score: 14.8234,
            summary: "Create a new pull request in a GitHub repository.".into(),
        },
        Hit {
            name: "solo".into(),
            server: None,
            score: 1.0,
            summary: String::new(),
        },
    ];
    let (text, value) = render_hits(&hits);
    assert_eq!(
        text,
        "github__create_pull_request — Create a new pull request in a GitHub repository. (github)\nsolo"
    );
    assert_eq!(
        value,
        json!({"tools": [
            {"name": "github__create_pull_request", "server": "github", "score": 14.823,
             "summary": "Create a new pull request in a GitHub repository."},
            {"name": "solo", "server": null, "score": 1.0, "summary": ""},
        ]})
    );
    let (text, value) = render_hits(&[]);
    assert!(text.starts_with("No tools matched"));
    assert_eq!(value, json!({"tools": []}));
}
