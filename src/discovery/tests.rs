//! Unit tests of [`super`]: the tokeniser, the ranking rules one by one, the meta-tools and the
//! rendering; then ranking on a realistic catalog of 500 tools and the queries a model writes.

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

// A realistic catalog: ten servers of about fifty tools each, many sharing words such as
// "list", "get", "create" and "issue".

/// A server of the test catalog: hand-written tools (`name|description|props`) plus the usual
/// list/get/create/update/delete family for each noun, as many real servers have.
struct Server {
    id: &'static str,
    scope: &'static str,
    tools: &'static [&'static str],
    nouns: &'static [&'static str],
}

const SERVERS: &[Server] = &[
    Server {
        id: "jira",
        scope: "in Jira",
        tools: &[
            "search_issues|Search Jira issues using JQL (Jira Query Language). Returns key, summary, status and assignee for each match.|jql,max_results,fields",
            "get_issue|Get a Jira issue by key (e.g. PROJ-123), including its fields, status, assignee and comments.|issue_key,expand",
            "create_issue|Create a new Jira issue (bug, task, story or epic) in a project.|project_key,issue_type,summary,description,assignee,priority",
            "update_issue|Update fields of an existing Jira issue, such as summary, description, priority or labels.|issue_key,fields",
            "transition_issue|Transition a Jira issue to a new status (e.g. To Do, In Progress, Done) using a workflow transition.|issue_key,transition_id,comment",
            "get_transitions|List the workflow transitions available for a Jira issue in its current status.|issue_key",
            "add_comment|Add a comment to a Jira issue.|issue_key,body",
            "assign_issue|Assign a Jira issue to a user, or unassign it.|issue_key,account_id",
            "delete_issue|Delete a Jira issue and, optionally, its subtasks.|issue_key,delete_subtasks",
            "link_to_epic|Link an existing issue to an epic.|issue_key,epic_key",
            "get_user_profile|Get a Jira user's profile by account ID or email.|account_id,email",
            "list_sprint_issues|List the issues in a sprint, with their status and story points.|sprint_id,jql",
            "add_watcher|Add a user as a watcher of a Jira issue.|issue_key,account_id",
            "get_issue_changelog|Get the change history of a Jira issue: who changed which field, and when.|issue_key",
            "upload_attachment|Attach a file to a Jira issue.|issue_key,filename,content_base64",
        ],
        nouns: &[
            "project",
            "board",
            "sprint",
            "component",
            "version",
            "filter",
            "issue_link",
        ],
    },
    Server {
        id: "github",
        scope: "in a GitHub repository",
        tools: &[
            "create_pull_request|Create a new pull request in a GitHub repository.|owner,repo,title,head,base,body,draft",
            "list_pull_requests|List pull requests in a GitHub repository, optionally filtered by state, base or head branch.|owner,repo,state,base,head,sort",
            "get_pull_request|Get details of a specific pull request.|owner,repo,pull_number",
            "merge_pull_request|Merge a pull request (merge commit, squash or rebase).|owner,repo,pull_number,merge_method,commit_title",
            "get_pull_request_diff|Get the diff of a pull request.|owner,repo,pull_number",
            "create_pull_request_review|Create a review on a pull request: approve, request changes, or comment.|owner,repo,pull_number,event,body",
            "request_reviewers|Request reviewers for a pull request.|owner,repo,pull_number,reviewers",
            "create_issue|Create a new issue in a GitHub repository.|owner,repo,title,body,labels,assignees",
            "list_issues|List issues in a GitHub repository. Filter by state, labels or assignee.|owner,repo,state,labels,assignee",
            "get_issue|Get details of an issue in a GitHub repository.|owner,repo,issue_number",
            "update_issue|Update an existing issue in a GitHub repository (title, body, state, labels).|owner,repo,issue_number,title,body,state",
            "add_issue_comment|Add a comment to an issue or pull request.|owner,repo,issue_number,body",
            "search_code|Search for code across GitHub repositories.|query,per_page",
            "search_repositories|Search for GitHub repositories.|query,per_page",
            "get_file_contents|Get the contents of a file or directory from a GitHub repository.|owner,repo,path,ref",
            "create_or_update_file|Create or update a single file in a GitHub repository.|owner,repo,path,content,message,branch,sha",
            "push_files|Push multiple files to a GitHub repository in a single commit.|owner,repo,branch,files,message",
            "list_commits|Get a list of commits of a branch in a GitHub repository.|owner,repo,sha,per_page",
            "fork_repository|Fork a GitHub repository to your account or an organization.|owner,repo,organization",
            "create_repository|Create a new GitHub repository in your account.|name,description,private",
            "list_workflow_runs|List GitHub Actions workflow runs for a repository.|owner,repo,workflow_id,status",
            "rerun_workflow_run|Re-run a GitHub Actions workflow run.|owner,repo,run_id",
            "get_job_logs|Download the logs of a GitHub Actions workflow job.|owner,repo,job_id",
        ],
        nouns: &["branch", "release", "label", "milestone", "webhook", "deploy_key"],
    },
    Server {
        id: "slack",
        scope: "in the Slack workspace",
        tools: &[
            "post_message|Post a new message to a Slack channel.|channel_id,text,blocks",
            "reply_to_thread|Reply to a specific message thread in a Slack channel.|channel_id,thread_ts,text",
            "add_reaction|Add an emoji reaction to a message.|channel_id,timestamp,reaction",
            "get_channel_history|Get recent messages from a channel.|channel_id,limit",
            "get_thread_replies|Get all replies in a message thread.|channel_id,thread_ts",
            "list_channels|List public and private channels in the workspace, with pagination.|limit,cursor,types",
            "get_users|Get a list of all users in the workspace with their basic profile information.|limit,cursor",
            "get_user_profile|Get detailed profile information for a specific user.|user_id",
            "send_direct_message|Send a direct message to a user.|user_id,text",
            "search_messages|Search messages across the workspace with Slack search syntax (from:, in:, before:).|query,count,sort",
            "set_channel_topic|Set the topic of a channel.|channel_id,topic",
            "invite_to_channel|Invite users to a channel.|channel_id,user_ids",
            "archive_channel|Archive a channel.|channel_id",
            "schedule_message|Schedule a message to be sent to a channel at a later time.|channel_id,text,post_at",
            "upload_file|Upload a file to a channel or a direct message.|channel_id,filename,content",
            "set_status|Set your Slack status text and emoji.|status_text,status_emoji,expiration",
            "pin_message|Pin a message in a channel.|channel_id,timestamp",
        ],
        nouns: &[
            "usergroup",
            "reminder",
            "bookmark",
            "canvas",
            "workflow",
            "channel_section",
        ],
    },
    Server {
        id: "sql",
        scope: "in the database",
        tools: &[
            "run_query|Run a read-only SQL query against the data warehouse and return the rows.|sql,database,max_rows,timeout_ms",
            "execute_statement|Execute a SQL statement that modifies data (INSERT, UPDATE, DELETE, DDL). Requires write access.|sql,database",
            "explain_query|Show the execution plan of a SQL query without running it.|sql,database,analyze",
            "list_databases|List databases on the server.|",
            "list_schemas|List schemas in a database.|database",
            "list_tables|List tables in a schema, with row counts.|database,schema",
            "describe_table|Describe a table's columns, types, primary key and indexes.|database,schema,table",
            "get_table_sample|Return the first rows of a table as a sample.|database,schema,table,rows",
            "list_columns|List the columns of a table with their data types.|database,schema,table",
            "cancel_query|Cancel a running query by its query ID.|query_id",
            "get_query_history|Get recently executed queries and their duration.|limit,user",
            "export_query_results|Run a query and export the results to a CSV file in object storage.|sql,destination",
            "create_table_from_query|Create a table from the results of a SELECT query (CREATE TABLE AS).|sql,table",
            "list_running_queries|List queries currently running on the warehouse.|",
            "analyze_table|Collect table statistics for the query planner.|database,schema,table",
        ],
        nouns: &[
            "view",
            "index",
            "saved_query",
            "user",
            "role",
            "stored_procedure",
            "materialized_view",
        ],
    },
    Server {
        id: "scheduler",
        scope: "in the scheduler",
        tools: &[
            "create_job|Create a scheduled job that runs a command or an HTTP request on a cron schedule.|name,cron,command,timezone",
            "list_jobs|List scheduled jobs with their cron schedule, state and next run time.|state,limit",
            "get_job|Get a scheduled job by ID.|job_id",
            "update_job|Update a scheduled job's schedule, command or settings.|job_id,cron,command",
            "delete_job|Delete a scheduled job.|job_id",
            "pause_job|Pause a scheduled job so that it stops running until resumed.|job_id",
            "resume_job|Resume a paused job.|job_id",
            "trigger_job|Run a scheduled job now, outside its schedule.|job_id,parameters",
            "list_job_runs|List past runs of a job with their status and duration.|job_id,status,limit",
            "get_run_logs|Get the logs of a job run.|run_id",
            "cancel_run|Cancel a job run in progress.|run_id",
            "next_run_times|Compute the next run times of a cron expression.|cron,timezone,count",
            "create_one_off_task|Schedule a one-off task to run once at a given time.|run_at,command",
            "retry_failed_run|Retry a failed job run.|run_id",
        ],
        nouns: &[
            "calendar",
            "queue",
            "worker_pool",
            "notification_rule",
            "maintenance_window",
            "secret",
            "environment",
        ],
    },
    Server {
        id: "docs",
        scope: "in the wiki",
        tools: &[
            "search_pages|Full-text search across documentation pages. Returns titles, spaces and snippets.|query,space_key,limit",
            "get_page|Get a documentation page's content as Markdown.|page_id",
            "create_page|Create a new page in a wiki space.|space_key,title,body_markdown,parent_id",
            "update_page|Update a page's title or content. Creates a new version.|page_id,title,body_markdown",
            "delete_page|Delete a page and move it to the trash.|page_id",
            "list_pages|List pages in a space.|space_key,limit,cursor",
            "get_page_history|List the versions of a page with authors and dates.|page_id",
            "restore_page_version|Restore an earlier version of a page.|page_id,version",
            "move_page|Move a page under a new parent or into another space.|page_id,parent_id,space_key",
            "add_page_comment|Add a comment to a page.|page_id,body",
            "list_page_comments|List the comments on a page.|page_id",
            "get_page_children|List the child pages of a page.|page_id",
            "export_page_pdf|Export a page as PDF.|page_id",
            "add_label_to_page|Add a label to a page.|page_id,label",
            "list_recent_changes|List recently changed pages across all spaces.|since,limit",
        ],
        nouns: &[
            "space",
            "template",
            "attachment",
            "whiteboard",
            "shortcut",
            "draft",
            "glossary_term",
        ],
    },
    Server {
        id: "pagerduty",
        scope: "in PagerDuty",
        tools: &[
            "list_incidents|List incidents, filtered by status (triggered, acknowledged, resolved), service or urgency.|statuses,service_ids,urgencies,since,until",
            "get_incident|Get an incident by ID, with its status, assignees and timeline.|incident_id",
            "create_incident|Trigger a new incident on a service and page the on-call responder.|service_id,title,urgency,body",
            "acknowledge_incident|Acknowledge an incident to stop its escalation.|incident_id",
            "resolve_incident|Resolve an incident.|incident_id,resolution",
            "reassign_incident|Reassign an incident to another user or escalation policy.|incident_id,assignee_ids,escalation_policy_id",
            "add_incident_note|Add a note to an incident's timeline.|incident_id,content",
            "list_oncalls|List on-call entries: who is on call for each schedule and escalation policy during a time range (default: now).|since,until,schedule_ids,escalation_policy_ids",
            "create_schedule_override|Create an override so that another user is on call for part of a schedule.|schedule_id,user_id,start,end",
            "list_log_entries|List log entries (timeline events) of incidents.|since,until,incident_id",
            "snooze_incident|Snooze an acknowledged incident for a duration.|incident_id,duration",
            "merge_incidents|Merge incidents into one.|incident_id,source_incident_ids",
            "list_alerts|List the alerts grouped into an incident.|incident_id",
            "send_status_update|Send a status update to an incident's subscribers.|incident_id,message",
        ],
        nouns: &[
            "service",
            "schedule",
            "escalation_policy",
            "team",
            "user",
            "maintenance_window",
            "business_service",
        ],
    },
    Server {
        id: "k8s",
        scope: "in the Kubernetes cluster",
        tools: &[
            "list_pods|List pods in a namespace (or all namespaces), with status, restarts and node.|namespace,label_selector",
            "get_pod_logs|Get the logs of a pod's container, optionally of the previous instance and only the last N lines.|namespace,pod,container,previous,tail_lines",
            "describe_pod|Describe a pod: spec, status, conditions and recent events.|namespace,pod",
            "delete_pod|Delete a pod; its controller recreates it.|namespace,pod",
            "exec_in_pod|Execute a command in a container of a running pod.|namespace,pod,container,command",
            "port_forward|Forward a local port to a port of a pod or service.|namespace,resource,local_port,remote_port",
            "list_deployments|List Kubernetes deployments in a namespace with ready and desired replicas.|namespace",
            "get_deployment|Get a deployment's spec and status.|namespace,name",
            "scale_deployment|Scale a Kubernetes deployment to a given number of replicas.|namespace,name,replicas",
            "rollout_restart|Restart a deployment, daemonset or statefulset by triggering a rolling restart of its pods.|namespace,kind,name",
            "rollout_status|Show the status of a deployment rollout.|namespace,name",
            "rollout_undo|Roll back a deployment to its previous revision.|namespace,name,to_revision",
            "set_image|Update the container image of a deployment.|namespace,name,container,image",
            "apply_manifest|Apply a YAML manifest to the cluster (kubectl apply).|manifest,namespace,dry_run",
            "get_events|List recent events in a namespace, such as scheduling failures and crash loops.|namespace,field_selector",
            "list_nodes|List the cluster's nodes with their status, roles and capacity.|label_selector",
            "cordon_node|Mark a node unschedulable.|node",
            "drain_node|Drain a node: evict its pods before maintenance.|node,ignore_daemonsets",
            "top_pods|Show the CPU and memory usage of pods.|namespace",
            "switch_context|Switch the current kubeconfig context to another Kubernetes cluster.|context",
        ],
        nouns: &["namespace", "service", "configmap", "secret", "ingress", "cronjob"],
    },
    Server {
        id: "billing",
        scope: "in Stripe",
        tools: &[
            "create_refund|Refund a payment, fully or partially.|payment_intent,amount,reason",
            "list_invoices|List invoices, filtered by customer or status (draft, open, paid, void).|customer,status,limit",
            "get_invoice|Get an invoice with its line items.|invoice_id",
            "create_invoice|Create a draft invoice for a customer.|customer,days_until_due",
            "finalize_invoice|Finalize a draft invoice so that it can be paid.|invoice_id",
            "send_invoice|Email an invoice to its customer.|invoice_id",
            "void_invoice|Void an open invoice.|invoice_id",
            "pay_invoice|Pay an invoice with the customer's default payment method.|invoice_id,payment_method",
            "create_customer|Create a customer with an email and a name.|email,name,metadata",
            "list_customers|List customers, optionally filtered by email.|email,limit",
            "get_customer|Get a customer by ID.|customer_id",
            "update_customer|Update a customer's email, name or metadata.|customer_id,email,name",
            "create_subscription|Subscribe a customer to a price.|customer,price,trial_days",
            "cancel_subscription|Cancel a customer's subscription, at once or at the end of the billing period.|subscription_id,at_period_end",
            "update_subscription|Change a subscription's price or quantity.|subscription_id,price,quantity",
            "list_subscriptions|List subscriptions, filtered by customer or status.|customer,status",
            "create_payment_link|Create a payment link for a price.|price,quantity",
            "retrieve_balance|Get the account's current balance.|",
            "list_payment_intents|List payment intents, filtered by customer.|customer,limit",
            "create_credit_note|Issue a credit note that lowers the amount of a finalized invoice.|invoice_id,amount,reason",
        ],
        nouns: &[
            "product",
            "price",
            "coupon",
            "tax_rate",
            "promotion_code",
            "payment_method",
        ],
    },
    Server {
        id: "crm",
        scope: "in the CRM",
        tools: &[
            "search_contacts|Search contacts by name, email or company.|query,limit",
            "search_deals|Search deals by name, stage, owner or amount.|query,stage,owner_id",
            "log_call|Log a call with a contact, with notes and its outcome.|contact_id,notes,outcome,duration",
            "log_email|Log an email sent to or received from a contact.|contact_id,subject,body",
            "convert_lead|Convert a lead into a contact, a company and a deal.|lead_id,create_deal",
            "move_deal_stage|Move a deal to another stage of its pipeline (e.g. Closed Won).|deal_id,stage",
            "associate_records|Associate two records, such as a contact with a company.|from_id,to_id,type",
            "get_deal_activity|Get the timeline of activities on a deal.|deal_id",
            "schedule_meeting|Schedule a meeting with a contact and send an invitation.|contact_id,start,duration,title",
            "assign_owner|Assign an owner to a contact, company or deal.|record_id,owner_id",
            "merge_contacts|Merge two duplicate contacts.|primary_id,duplicate_id",
            "import_contacts_csv|Import contacts from a CSV file.|csv,mapping",
            "enroll_in_sequence|Enroll a contact in an email sequence.|contact_id,sequence_id",
        ],
        nouns: &["contact", "company", "deal", "lead", "task", "note", "pipeline"],
    },
];

fn plural(noun: &str) -> String {
    if let Some(stem) = noun.strip_suffix('y') {
        format!("{stem}ies")
    } else if noun.ends_with('s') || noun.ends_with('x') || noun.ends_with("ch") {
        format!("{noun}es")
    } else {
        format!("{noun}s")
    }
}

/// The test catalog: (server, tool) with IDE-facing names `<server>__<tool>`; `suffix` makes
/// distinct copies of the ten servers for bigger catalogs.
fn catalog(suffix: &str) -> Vec<(String, Tool)> {
    let mut out = Vec::new();
    for s in SERVERS {
        let server = format!("{}{suffix}", s.id);
        for line in s.tools {
            let mut parts = line.split('|');
            let (name, description, props) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
            let props: Vec<&str> = props.split(',').filter(|p| !p.is_empty()).collect();
            out.push((server.clone(), tool(&format!("{server}__{name}"), description, &props)));
        }
        for noun in s.nouns {
            let words = noun.replace('_', " ");
            let id = format!("{noun}_id");
            let family = [
                (
                    format!("list_{}", plural(noun)),
                    format!(
                        "List {} {}. Results are paginated; pass the returned cursor to get the next page.",
                        plural(&words),
                        s.scope
                    ),
                    vec!["limit", "cursor"],
                ),
                (
                    format!("get_{noun}"),
                    format!("Get details of a {words} by ID {}.", s.scope),
                    vec![id.as_str()],
                ),
                (
                    format!("create_{noun}"),
                    format!("Create a new {words} {}.", s.scope),
                    vec!["name", "description"],
                ),
                (
                    format!("update_{noun}"),
                    format!(
                        "Update an existing {words} {}. Only the fields you pass are changed.",
                        s.scope
                    ),
                    vec![id.as_str(), "name", "description"],
                ),
                (
                    format!("delete_{noun}"),
                    format!("Delete a {words} {}. This cannot be undone.", s.scope),
                    vec![id.as_str()],
                ),
            ];
            for (name, description, props) in family {
                out.push((server.clone(), tool(&format!("{server}__{name}"), &description, &props)));
            }
        }
    }
    out
}

fn index(catalog: &[(String, Tool)]) -> Index {
    let servers: HashMap<String, String> = catalog.iter().map(|(s, t)| (t.name.to_string(), s.clone())).collect();
    let tools: Vec<Tool> = catalog.iter().map(|(_, t)| t.clone()).collect();
    Index::build(&tools, |name| servers.get(name).cloned())
}

/// Natural-language queries a model would write, with the tool it wants.
const QUERIES: &[(&str, &str)] = &[
    ("open a pull request", "github__create_pull_request"),
    ("restart the deployment in kubernetes", "k8s__rollout_restart"),
    ("who is on call right now", "pagerduty__list_oncalls"),
    ("run a SQL query against the warehouse", "sql__run_query"),
    ("move the Jira ticket to done", "jira__transition_issue"),
    ("send a message to a slack channel", "slack__post_message"),
    ("refund an invoice", "billing__create_refund"),
    ("scale the deployment up to 5 replicas", "k8s__scale_deployment"),
    ("get the logs of a crashing pod", "k8s__get_pod_logs"),
    ("search jira issues with JQL", "jira__search_issues"),
    ("acknowledge the incident", "pagerduty__acknowledge_incident"),
    ("merge a pull request", "github__merge_pull_request"),
    ("cancel a customer's subscription", "billing__cancel_subscription"),
    ("describe the columns of a table", "sql__describe_table"),
    ("pause a cron job", "scheduler__pause_job"),
    ("run the scheduled job now", "scheduler__trigger_job"),
    ("create a new wiki page", "docs__create_page"),
    ("search the documentation for onboarding", "docs__search_pages"),
    ("log a call with a customer", "crm__log_call"),
    ("convert a lead to a contact", "crm__convert_lead"),
    ("reply in a slack thread", "slack__reply_to_thread"),
    ("roll back the last deployment", "k8s__rollout_undo"),
    ("list open incidents", "pagerduty__list_incidents"),
    ("comment on a jira issue", "jira__add_comment"),
    ("show the query plan", "sql__explain_query"),
    ("add an emoji reaction to a message", "slack__add_reaction"),
    ("show recent commits on the main branch", "github__list_commits"),
    ("create a bug ticket in jira", "jira__create_issue"),
    (
        "page the on-call engineer about an outage",
        "pagerduty__create_incident",
    ),
    ("email the invoice to the customer", "billing__send_invoice"),
];

/// More queries, written after the ranking's tables were fixed and not tuned against.
const HELD_OUT: &[(&str, &str)] = &[
    ("find slack messages mentioning the outage", "slack__search_messages"),
    ("what pods are running in the staging namespace", "k8s__list_pods"),
    ("fork a repo", "github__fork_repository"),
    ("delete a kubernetes pod", "k8s__delete_pod"),
    ("resolve the pagerduty incident", "pagerduty__resolve_incident"),
    ("list tables in the analytics schema", "sql__list_tables"),
    ("assign the ticket to me", "jira__assign_issue"),
    ("retry the failed job run", "scheduler__retry_failed_run"),
    ("export a confluence page to pdf", "docs__export_page_pdf"),
    ("create a new customer in stripe", "billing__create_customer"),
    ("who changed this jira issue", "jira__get_issue_changelog"),
    ("void an invoice", "billing__void_invoice"),
    ("drain a node for maintenance", "k8s__drain_node"),
    ("set my slack status", "slack__set_status"),
    ("show cpu usage of pods", "k8s__top_pods"),
    ("get a deal's activity timeline", "crm__get_deal_activity"),
    ("rerun a failed github actions workflow", "github__rerun_workflow_run"),
    ("schedule a meeting with a contact", "crm__schedule_meeting"),
    ("when does this cron expression fire next", "scheduler__next_run_times"),
    ("undo the last change to a wiki page", "docs__restore_page_version"),
];

/// The test catalog is what the tests claim: 500-odd tools over ten servers, names unique.
#[test]
fn catalog_is_realistic() {
    let c = catalog("");
    let names: HashSet<&str> = c.iter().map(|(_, t)| t.name.as_ref()).collect();
    assert_eq!(names.len(), c.len(), "duplicate names");
    assert!((480..=520).contains(&c.len()), "{} tools", c.len());
    for (_, expected) in QUERIES {
        assert!(names.contains(expected), "{expected} is not in the catalog");
    }
}

/// For each query: the expected tool's rank, and a line for failure messages.
fn ranks(idx: &Index, queries: &[(&str, &str)]) -> (Vec<Option<usize>>, String) {
    let mut ranks = Vec::new();
    let mut report = Vec::new();
    for (query, expected) in queries {
        let hits = idx.search(query, 10);
        let rank = hits.iter().position(|h| h.name == *expected);
        let top: Vec<String> = hits
            .iter()
            .take(3)
            .map(|h| format!("{} {:.2}", h.name, h.score))
            .collect();
        report.push(format!("{query:?} wants {expected}: rank {rank:?}; top {top:?}"));
        ranks.push(rank);
    }
    (ranks, report.join("\n"))
}

/// The model's queries find the intended tool first at least 27 times in 30 (28 at the time of
/// writing), and always in the top three.
#[test]
fn queries_find_the_intended_tool() {
    let (ranks, report) = ranks(&index(&catalog("")), QUERIES);
    let first = ranks.iter().filter(|r| **r == Some(0)).count();
    assert!(first >= 27, "{first}/{} first:\n{report}", QUERIES.len());
    assert!(
        ranks.iter().all(|r| r.is_some_and(|r| r < 3)),
        "not all in the top 3:\n{report}"
    );
}

/// Queries the ranking was not tuned on: at least 17 in 20 first (18 at the time of writing),
/// 19 in the top three. The known miss, "undo the last change to a wiki page" for
/// `restore_page_version`, shares only "page" with its tool: a limit of word matching.
#[test]
fn held_out_queries_find_the_intended_tool() {
    let (ranks, report) = ranks(&index(&catalog("")), HELD_OUT);
    let first = ranks.iter().filter(|r| **r == Some(0)).count();
    let top3 = ranks.iter().filter(|r| r.is_some_and(|r| r < 3)).count();
    assert!(first >= 17, "{first}/{} first:\n{report}", HELD_OUT.len());
    assert!(top3 >= 19, "{top3}/{} in the top 3:\n{report}", HELD_OUT.len());
}

/// Results are sorted by score, ties by name, whatever order the tools came in; `limit` is respected.
#[test]
fn order_is_deterministic_and_limited() {
    let c = catalog("");
    let idx = index(&c);
    let mut reversed = c.clone();
    reversed.reverse();
    let rev = index(&reversed);
    for (query, _) in QUERIES.iter().chain(HELD_OUT) {
        let hits = idx.search(query, 50);
        assert!(hits.len() <= 50);
        for w in hits.windows(2) {
            assert!(
                w[0].score > w[1].score || (w[0].score == w[1].score && w[0].name < w[1].name),
                "{query:?}: {w:?}"
            );
        }
        assert_eq!(hits, idx.search(query, 50), "{query:?}: same index, same answer");
        assert_eq!(hits, rev.search(query, 50), "{query:?}: tool order does not matter");
        for limit in [0, 1, 3] {
            assert_eq!(
                idx.search(query, limit),
                hits[..limit.min(hits.len())],
                "{query:?} limit {limit}"
            );
        }
    }
    // A broad query matches far more than it returns.
    assert_eq!(idx.search("list", 7).len(), 7);
    assert_eq!(idx.len(), c.len());
    assert!(!idx.is_empty());
}

/// A catalog of 2000 tools (the ten servers four times) answers 100 searches correctly; the copies
/// of a tool rank together. (Timing is measured by hand, not asserted.)
#[test]
fn large_catalog() {
    let c: Vec<(String, Tool)> = ["", "_eu", "_us", "_apac"].iter().flat_map(|s| catalog(s)).collect();
    assert!(c.len() >= 1950);
    let idx = index(&c);
    assert_eq!(idx.len(), c.len());
    let queries: Vec<&(&str, &str)> = QUERIES.iter().chain(HELD_OUT).cycle().take(100).collect();
    let mut first = 0;
    for (query, expected) in queries {
        let hits = idx.search(query, 10);
        assert!(!hits.is_empty() && hits.len() <= 10, "{query:?}");
        let (server, tool) = expected.split_once("__").unwrap();
        let copies = ["", "_eu", "_us", "_apac"].map(|s| format!("{server}{s}__{tool}"));
        if copies.contains(&hits[0].name) {
            first += 1;
        }
    }
    assert!(first >= 90, "{first}/100");
    let top4: HashSet<String> = idx
        .search("merge a pull request", 4)
        .into_iter()
        .map(|h| h.name)
        .collect();
    let want: HashSet<String> = ["github", "github_eu", "github_us", "github_apac"]
        .iter()
        .map(|s| format!("{s}__merge_pull_request"))
        .collect();
    assert_eq!(top4, want);
}
