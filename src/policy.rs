//! Tool-level policy on the laptop: which tools, prompts and resources the IDE
//! sees and may use, which calls wait for the user's approval, and how many
//! tools fit the IDE. Pure: rules from the user's `[policy]` and from each
//! registry entry's `_meta["dev.mcp-bridge/config"].tools` go in, decisions
//! come out.
//!
//! Precedence: the registry operator's rules bound the user's. A tool must pass
//! the registry's `allow` (when it has one) and the user's `allow` (when set);
//! either `deny` hides it; approval is required if either side (or the tool's
//! `destructiveHint: true`, unless turned off) asks for it. A user can narrow
//! what the registry allows, never widen it.

use std::collections::HashMap;

use rmcp::model::Tool;
use serde::Deserialize;

use crate::util::glob_match;

/// `[policy]` in the config. Patterns are globs (`*`, `?`) over
/// `<server>__<name>`: the server's id, two underscores, and the tool's or
/// prompt's upstream name or the resource's upstream URI, whatever the naming
/// settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Only these are listed (empty: everything).
    pub allow: Vec<String>,
    /// Never listed nor callable.
    pub deny: Vec<String>,
    /// Calls wait for the user's approval.
    pub require_approval: Vec<String>,
    /// Tools annotated `destructiveHint: true` need approval too.
    pub approve_destructive: bool,
    /// Servers (globs over ids) whose tools are listed only when annotated
    /// `readOnlyHint: true`.
    pub read_only: Vec<String>,
    /// Seconds to wait for the user's answer before refusing the call.
    pub approval_timeout: f64,
    /// Most tools listed directly; past it the IDE gets search/describe/call
    /// meta-tools instead. Unset: a preset for the IDE (Cursor 40, Windsurf 50,
    /// others 128); 0: no limit.
    pub max_tools: Option<usize>,
    /// Tools (patterns as above) still listed directly past `max_tools`.
    pub pin: Vec<String>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            allow: Vec::new(),
            deny: Vec::new(),
            require_approval: Vec::new(),
            approve_destructive: true,
            read_only: Vec::new(),
            approval_timeout: 120.0,
            max_tools: None,
            pin: Vec::new(),
        }
    }
}

/// A registry operator's rules for one server (`_meta["dev.mcp-bridge/config"].tools`),
/// as globs over the server's upstream tool names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerRules {
    pub allow: Option<Vec<String>>,
    pub deny: Vec<String>,
    pub require_approval: Vec<String>,
    /// `tools.minutesSaved`: minutes one successful call saves, by glob over
    /// tool names (for `mcp-bridge stats`).
    pub minutes_saved: Vec<(String, f64)>,
}

impl ServerRules {
    /// Read `tools.allow`, `tools.deny`, `tools.requireApproval` from the
    /// extension object's `tools` value.
    pub fn from_meta(tools: Option<&serde_json::Value>) -> ServerRules {
        let list = |k: &str| -> Option<Vec<String>> {
            tools?
                .get(k)?
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        };
        let minutes_saved = tools
            .and_then(|t| t.get("minutesSaved"))
            .and_then(|m| m.as_object())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_f64().filter(|x| x.is_finite() && *x >= 0.0)?)))
                    .collect()
            })
            .unwrap_or_default();
        ServerRules {
            allow: list("allow"),
            deny: list("deny").unwrap_or_default(),
            require_approval: list("requireApproval").unwrap_or_default(),
            minutes_saved,
        }
    }
}

/// What the policy says about one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not listed; a request for it is refused with this reason.
    Hidden(String),
    /// Listed; calls need approval when a reason is given.
    Listed { approval: Option<String> },
}

/// Which kind of item a pattern is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tool,
    Prompt,
    Resource,
}

/// The user's rules and every server's registry rules, ready to decide.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub config: PolicyConfig,
    servers: HashMap<String, ServerRules>,
}

fn first<'a>(patterns: &'a [String], key: &str) -> Option<&'a str> {
    patterns.iter().find(|p| glob_match(p, key)).map(String::as_str)
}

impl Policy {
    pub fn new(config: PolicyConfig, servers: impl IntoIterator<Item = (String, ServerRules)>) -> Policy {
        Policy {
            config,
            servers: servers.into_iter().collect(),
        }
    }

    /// The user's `allow`/`deny` for any kind of item.
    fn user(&self, key: &str, what: &str) -> Option<String> {
        if !self.config.allow.is_empty() && first(&self.config.allow, key).is_none() {
            return Some(format!("{what} is not in [policy] allow"));
        }
        first(&self.config.deny, key).map(|p| format!("{what} is denied by [policy] deny pattern {p:?}"))
    }

    pub fn tool(&self, server: &str, tool: &Tool) -> Decision {
        let name = tool.name.as_ref();
        let key = format!("{server}__{name}");
        let what = format!("tool {key}");
        let rules = self.servers.get(server);
        if let Some(r) = rules {
            if let Some(allow) = &r.allow
                && first(allow, name).is_none()
            {
                return Decision::Hidden(format!("{what} is not in the registry's allow list for {server}"));
            }
            if let Some(p) = first(&r.deny, name) {
                return Decision::Hidden(format!("{what} is denied by the registry (pattern {p:?})"));
            }
        }
        if let Some(why) = self.user(&key, &what) {
            return Decision::Hidden(why);
        }
        let annotations = tool.annotations.as_ref();
        if first(&self.config.read_only, server).is_some() && annotations.and_then(|a| a.read_only_hint) != Some(true) {
            return Decision::Hidden(format!(
                "{what} is not annotated read-only and {server} is read-only in [policy] read_only"
            ));
        }
        let approval = if let Some(p) = rules.and_then(|r| first(&r.require_approval, name)) {
            Some(format!(
                "the registry requires approval for {server} tools matching {p:?}"
            ))
        } else if let Some(p) = first(&self.config.require_approval, &key) {
            Some(format!("[policy] require_approval pattern {p:?}"))
        } else if self.config.approve_destructive && annotations.and_then(|a| a.destructive_hint) == Some(true) {
            Some("the server marks it destructive (destructiveHint)".to_owned())
        } else {
            None
        };
        Decision::Listed { approval }
    }

    /// Prompts and resources: the user's `allow` and `deny` (registry rules
    /// are about tools).
    pub fn other(&self, kind: Kind, server: &str, name: &str) -> Decision {
        let key = format!("{server}__{name}");
        let what = match kind {
            Kind::Prompt => format!("prompt {key}"),
            Kind::Resource | Kind::Tool => format!("resource {key}"),
        };
        match self.user(&key, &what) {
            Some(why) => Decision::Hidden(why),
            None => Decision::Listed { approval: None },
        }
    }

    /// Whether a tool stays listed past `max_tools`.
    pub fn pinned(&self, server: &str, name: &str) -> bool {
        first(&self.config.pin, &format!("{server}__{name}")).is_some()
    }

    /// The tool budget for an IDE (by its `clientInfo.name`); 0 = no limit.
    pub fn max_tools(&self, client: Option<&str>) -> usize {
        if let Some(n) = self.config.max_tools {
            return n;
        }
        crate::ide::max_tools(client)
    }

    /// How to stop being asked for a tool, given why it is asked.
    pub fn how_to_allow(why: &str) -> &'static str {
        if why.starts_with("the registry") {
            "Your registry requires approval for it; use an IDE that can ask you (MCP elicitation), or `mcp-bridge call` at a terminal is refused too."
        } else if why.starts_with("[policy]") {
            "To stop asking, remove the pattern from [policy] require_approval in the bridge's config."
        } else {
            "To stop asking for destructive tools, set [policy] approve_destructive = false in the bridge's config."
        }
    }
}

/// Minutes one successful call of `tool` on `server` saves: the first pattern
/// of `table` matching `server__tool`, else 0.
pub fn minutes_for(table: &[(String, f64)], server: &str, tool: &str) -> f64 {
    let key = format!("{server}__{tool}");
    table
        .iter()
        .find(|(pattern, _)| glob_match(pattern, &key))
        .map_or(0.0, |(_, m)| *m)
}

/// The minutes-saved patterns over `server__tool`: the user's
/// `[audit.minutes_saved]` first (first match wins), then each server's
/// registry patterns under its id. `stats` and the telemetry's
/// `mcp_bridge.minutes_saved` count with the same table.
pub fn minutes_table<'a>(
    user: &[(String, f64)],
    servers: impl IntoIterator<Item = (&'a str, &'a ServerRules)>,
) -> Vec<(String, f64)> {
    let mut table = user.to_vec();
    for (id, rules) in servers {
        table.extend(rules.minutes_saved.iter().map(|(g, m)| (format!("{id}__{g}"), *m)));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(name: &str, annotations: serde_json::Value) -> Tool {
        serde_json::from_value(json!({ "name": name, "inputSchema": { "type": "object" }, "annotations": annotations }))
            .unwrap()
    }

    fn listed(approval: Option<&str>) -> Decision {
        Decision::Listed {
            approval: approval.map(str::to_owned),
        }
    }

    #[test]
    fn registry_bounds_the_user() {
        let registry = ServerRules {
            allow: Some(vec!["search*".into(), "create_*".into()]),
            deny: vec!["create_admin".into()],
            require_approval: vec!["create_*".into()],
            minutes_saved: Vec::new(),
        };
        // The user tries to widen (allow everything) and to drop approval.
        let user = PolicyConfig {
            allow: vec!["jira__*".into()],
            deny: vec!["jira__search_secret".into()],
            ..PolicyConfig::default()
        };
        let p = Policy::new(user, [("jira".to_owned(), registry)]);
        let t = |n| p.tool("jira", &tool(n, json!({})));
        assert_eq!(t("search"), listed(None));
        assert!(matches!(t("delete"), Decision::Hidden(w) if w.contains("registry's allow list")));
        assert!(matches!(t("create_admin"), Decision::Hidden(w) if w.contains("denied by the registry")));
        assert!(matches!(t("search_secret"), Decision::Hidden(w) if w.contains("[policy] deny")));
        assert!(matches!(t("create_issue"), Decision::Listed { approval: Some(w) } if w.contains("registry requires")));
        // Another server: the user's allow list hides it.
        assert!(
            matches!(p.tool("github", &tool("search", json!({}))), Decision::Hidden(w) if w.contains("[policy] allow"))
        );
    }

    #[test]
    fn read_only_servers_and_destructive_tools() {
        let cfg = PolicyConfig {
            read_only: vec!["sql".into()],
            require_approval: vec!["*__drop_*".into()],
            ..PolicyConfig::default()
        };
        let p = Policy::new(cfg.clone(), []);
        assert_eq!(
            p.tool("sql", &tool("select", json!({"readOnlyHint": true}))),
            listed(None)
        );
        assert!(matches!(p.tool("sql", &tool("insert", json!({}))), Decision::Hidden(w) if w.contains("read-only")));
        assert!(matches!(
            p.tool("k8s", &tool("delete_pod", json!({"destructiveHint": true}))),
            Decision::Listed { approval: Some(w) } if w.contains("destructive")
        ));
        assert!(matches!(
            p.tool("k8s", &tool("drop_table", json!({}))),
            Decision::Listed { approval: Some(w) } if w.contains("require_approval")
        ));
        let lax = Policy::new(
            PolicyConfig {
                approve_destructive: false,
                ..cfg
            },
            [],
        );
        assert_eq!(
            lax.tool("k8s", &tool("delete_pod", json!({"destructiveHint": true}))),
            listed(None)
        );
    }

    #[test]
    fn prompts_resources_pins_and_budgets() {
        let p = Policy::new(
            PolicyConfig {
                deny: vec!["notes__file:///secret/*".into()],
                pin: vec!["jira__search".into()],
                ..PolicyConfig::default()
            },
            [],
        );
        assert!(matches!(
            p.other(Kind::Resource, "notes", "file:///secret/a"),
            Decision::Hidden(_)
        ));
        assert_eq!(p.other(Kind::Prompt, "notes", "summary"), listed(None));
        assert!(p.pinned("jira", "search") && !p.pinned("jira", "create"));
        assert_eq!(p.max_tools(Some("Cursor")), 40);
        assert_eq!(p.max_tools(Some("windsurf")), 50);
        assert_eq!(p.max_tools(None), 128);
        let fixed = Policy::new(
            PolicyConfig {
                max_tools: Some(0),
                ..PolicyConfig::default()
            },
            [],
        );
        assert_eq!(fixed.max_tools(Some("Cursor")), 0);
    }

    #[test]
    fn registry_meta_is_read() {
        let r = ServerRules::from_meta(Some(
            &json!({"allow": ["a*"], "requireApproval": ["del*"], "minutesSaved": {"create_*": 5, "bad": -1}}),
        ));
        assert_eq!(r.allow, Some(vec!["a*".to_owned()]));
        assert_eq!(r.minutes_saved, [("create_*".to_owned(), 5.0)]);
        assert_eq!(r.require_approval, ["del*"]);
        assert_eq!(ServerRules::from_meta(None), ServerRules::default());
    }
}
