//! The merged catalog: every upstream's tools, prompts, resources and resource
//! templates under IDE-facing names, and the routing tables that map an IDE name
//! back to `(server, upstream name)`.
//!
//! This module is pure data: no IO, no async, no protocol state. [`Catalog::build`]
//! is a deterministic function of the per-server lists and the naming settings, so
//! the same inputs always give the same names, whatever order servers connected in.
//! The routing tables are the only source of truth for a name; nothing ever splits
//! an IDE name on the separator to find its server.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ide::Charset;
use crate::policy::{Decision, Kind, Policy};

/// How IDE-facing names are derived from upstream names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PrefixMode {
    /// Prefix only when more than one server is bridged.
    #[default]
    Auto,
    /// Always `<server><sep><name>`.
    Always,
    /// Never prefix; collisions get a hash suffix.
    Never,
}

/// Naming settings, from the `[naming]` config section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naming {
    pub prefix: PrefixMode,
    pub separator: String,
    /// Upper bound on a generated name, at most 128 (MCP's limit).
    pub max_len: usize,
    /// The characters a name may hold; others become `_` (and the name gets a hash).
    pub charset: Charset,
    /// The config set `separator` or `max_length`: its settings hold whatever
    /// the IDE is ([`Naming::for_client`] leaves them).
    pub fixed: bool,
}

impl Default for Naming {
    fn default() -> Self {
        Naming {
            prefix: PrefixMode::Auto,
            separator: "__".into(),
            max_len: 64,
            charset: Charset::Portable,
            fixed: false,
        }
    }
}

impl Naming {
    /// Whether names get a server prefix when `servers` servers are bridged.
    pub fn prefixes(&self, servers: usize) -> bool {
        match self.prefix {
            PrefixMode::Always => true,
            PrefixMode::Never => false,
            PrefixMode::Auto => servers > 1,
        }
    }

    /// The naming for the IDE that said `client` in `initialize`: names the
    /// client will neither shorten nor rewrite once it has put its own prefix
    /// before them (`ide::Profile`), for the bridge's default entry name. An
    /// unknown client, or settings the config fixed, are kept unchanged.
    pub fn for_client(&self, client: Option<&str>) -> Naming {
        let Some(p) = crate::ide::profile(client).filter(|_| !self.fixed) else {
            return self.clone();
        };
        Naming {
            max_len: self.max_len.min(p.budget(crate::ide::ENTRY)),
            charset: p.charset,
            separator: sanitize_in(&self.separator, p.charset),
            ..self.clone()
        }
    }
}

/// Everything one upstream server lists, as the server sent it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerLists {
    #[serde(default)]
    pub tools: Vec<Tool>,
    #[serde(default)]
    pub prompts: Vec<Prompt>,
    #[serde(default)]
    pub resources: Vec<Resource>,
    #[serde(default)]
    pub resource_templates: Vec<ResourceTemplate>,
}

/// Where an IDE-facing item lives upstream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    pub server: Arc<str>,
    pub name: String,
}

/// Which of the four lists differ between two catalogs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub tools: bool,
    pub prompts: bool,
    pub resources: bool,
}

impl Changes {
    pub fn any(&self) -> bool {
        self.tools || self.prompts || self.resources
    }
}

/// The merged, IDE-facing view of all servers.
#[derive(Debug, Default)]
pub struct Catalog {
    pub tools: Vec<Tool>,
    pub prompts: Vec<Prompt>,
    pub resources: Vec<Resource>,
    pub resource_templates: Vec<ResourceTemplate>,
    tool_routes: HashMap<String, Route>,
    prompt_routes: HashMap<String, Route>,
    /// IDE URI -> (server, upstream URI), for every listed resource.
    resource_routes: HashMap<String, Route>,
    /// (server, upstream URI) -> IDE URI, only for rewritten URIs.
    resource_rewrites: HashMap<(Arc<str>, String), String>,
    /// Upstream template string -> servers exposing it, in name order.
    templates: Vec<(String, Arc<str>)>,
    /// IDE template -> (server, upstream template), for templates rewritten
    /// because two servers share them.
    template_rewrites: HashMap<String, Route>,
    /// Servers that list resources or templates.
    resource_servers: Vec<Arc<str>>,
    /// Every server in the catalog: a rewritten URI names one, and any server
    /// may hand out resource links in its results.
    servers: Vec<Arc<str>>,
    /// IDE name -> why the policy hides that tool or prompt, to refuse a
    /// request for it precisely (an IDE's list can be stale).
    hidden: HashMap<String, String>,
    /// IDE tool name -> why a call needs the user's approval.
    approvals: HashMap<String, String>,
    /// The policy the catalog was built with (resource reads are checked too).
    policy: Arc<Policy>,
    /// The discovery-mode search index over `tools`, built on first use.
    index: LazyIndex,
}

/// A search index built on first use (most catalogs never need one).
#[derive(Default)]
struct LazyIndex(std::sync::OnceLock<crate::discovery::Index>);

impl std::fmt::Debug for LazyIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Index(built)"
        } else {
            "Index(not built)"
        })
    }
}

/// Scheme of rewritten resource URIs: `mcp-bridge://<server>/<percent-encoded uri>`.
pub const REWRITE_SCHEME: &str = "mcp-bridge";

impl Catalog {
    /// Merge per-server lists into one catalog. `servers` are keyed by server id;
    /// `total_servers` is the number of servers configured (connected or not), so
    /// that names do not flip between prefixed and bare as servers come and go.
    pub fn build(servers: &BTreeMap<Arc<str>, Arc<ServerLists>>, total_servers: usize, naming: &Naming) -> Catalog {
        Self::build_with(servers, total_servers, naming, &Arc::default())
    }

    /// [`Catalog::build`] under a policy: hidden items are left out (and
    /// remembered with the reason), tools that need approval say so in their
    /// description.
    pub fn build_with(
        servers: &BTreeMap<Arc<str>, Arc<ServerLists>>,
        total_servers: usize,
        naming: &Naming,
        policy: &Arc<Policy>,
    ) -> Catalog {
        let prefix = naming.prefixes(total_servers.max(servers.len()));
        let mut cat = Catalog {
            policy: policy.clone(),
            ..Catalog::default()
        };

        let mut taken = HashSet::new();
        let mut hidden = Vec::new();
        for (server, lists) in servers {
            for tool in &lists.tools {
                let approval = match policy.tool(server, tool) {
                    Decision::Hidden(why) => {
                        hidden.push((server, tool.name.to_string(), why));
                        continue;
                    }
                    Decision::Listed { approval } => approval,
                };
                let name = unique_name(server, &tool.name, prefix, naming, &mut taken);
                let mut t = tool.clone();
                t.name = name.clone().into();
                if let Some(why) = approval {
                    let d = t.description.as_deref().unwrap_or_default();
                    t.description = Some(format!("{d} (asks for confirmation)").trim_start().to_owned().into());
                    cat.approvals.insert(name.clone(), why);
                }
                cat.tool_routes.insert(
                    name,
                    Route {
                        server: server.clone(),
                        name: tool.name.to_string(),
                    },
                );
                cat.tools.push(t);
            }
        }

        // Hidden tools keep the name they would have had, for the refusal;
        // they never take a name from a listed one.
        for (server, name, why) in hidden.drain(..) {
            let ide = unique_name(server, &name, prefix, naming, &mut taken.clone());
            cat.hidden.entry(ide).or_insert(why);
        }

        let mut taken = HashSet::new();
        for (server, lists) in servers {
            for prompt in &lists.prompts {
                if let Decision::Hidden(why) = policy.other(Kind::Prompt, server, &prompt.name) {
                    hidden.push((server, prompt.name.clone(), why));
                    continue;
                }
                let name = unique_name(server, &prompt.name, prefix, naming, &mut taken);
                let mut p = prompt.clone();
                p.name = name.clone();
                cat.prompt_routes.insert(
                    name,
                    Route {
                        server: server.clone(),
                        name: prompt.name.clone(),
                    },
                );
                cat.prompts.push(p);
            }
        }

        for (server, name, why) in hidden.drain(..) {
            let ide = unique_name(server, &name, prefix, naming, &mut taken.clone());
            cat.hidden.entry(ide).or_insert(why);
        }

        // Resource URIs pass through unless two servers list the same one; then every
        // copy is rewritten so that no server silently wins the bare URI.
        let mut owners: HashMap<&str, usize> = HashMap::new();
        let mut template_owners: HashMap<&str, usize> = HashMap::new();
        for lists in servers.values() {
            let mut seen = HashSet::new();
            for r in &lists.resources {
                if seen.insert(r.uri.as_str()) {
                    *owners.entry(r.uri.as_str()).or_default() += 1;
                }
            }
            let mut seen = HashSet::new();
            for t in &lists.resource_templates {
                if seen.insert(t.uri_template.as_str()) {
                    *template_owners.entry(t.uri_template.as_str()).or_default() += 1;
                }
            }
        }
        cat.servers = servers.keys().cloned().collect();
        for (server, lists) in servers {
            if !lists.resources.is_empty() || !lists.resource_templates.is_empty() {
                cat.resource_servers.push(server.clone());
            }
            for r in &lists.resources {
                if matches!(policy.other(Kind::Resource, server, &r.uri), Decision::Hidden(_)) {
                    continue;
                }
                let ide_uri = if owners.get(r.uri.as_str()).copied().unwrap_or(0) > 1 {
                    let u = rewrite_uri(server, &r.uri);
                    cat.resource_rewrites.insert((server.clone(), r.uri.clone()), u.clone());
                    u
                } else {
                    r.uri.clone()
                };
                if cat.resource_routes.contains_key(&ide_uri) {
                    continue; // a server listing one URI twice
                }
                let mut res = r.clone();
                res.uri = ide_uri.clone();
                cat.resource_routes.insert(
                    ide_uri,
                    Route {
                        server: server.clone(),
                        name: r.uri.clone(),
                    },
                );
                cat.resources.push(res);
            }
            for t in &lists.resource_templates {
                cat.templates.push((t.uri_template.clone(), server.clone()));
                let mut listed = t.clone();
                // A template two servers share is namespaced like a shared URI,
                // so that what the IDE fills in reads back from the right server.
                if template_owners.get(t.uri_template.as_str()).copied().unwrap_or(0) > 1 {
                    listed.uri_template = rewrite_template(server, &t.uri_template);
                    if cat.template_rewrites.contains_key(&listed.uri_template) {
                        continue;
                    }
                    cat.template_rewrites.insert(
                        listed.uri_template.clone(),
                        Route {
                            server: server.clone(),
                            name: t.uri_template.clone(),
                        },
                    );
                }
                cat.resource_templates.push(listed);
            }
        }
        cat
    }

    pub fn tool(&self, ide_name: &str) -> Option<&Route> {
        self.tool_routes.get(ide_name)
    }

    pub fn prompt(&self, ide_name: &str) -> Option<&Route> {
        self.prompt_routes.get(ide_name)
    }

    /// Why the policy hides the tool or prompt the IDE called by this name.
    pub fn hidden(&self, ide_name: &str) -> Option<&str> {
        self.hidden.get(ide_name).map(String::as_str)
    }

    /// Why a call to this tool needs the user's approval.
    pub fn approval(&self, ide_name: &str) -> Option<&str> {
        self.approvals.get(ide_name).map(String::as_str)
    }

    /// Why the policy refuses a resource the IDE asked for (by whatever route).
    pub fn resource_refused(&self, route: &Route) -> Option<String> {
        match self.policy.other(Kind::Resource, &route.server, &route.name) {
            Decision::Hidden(why) => Some(why),
            Decision::Listed { .. } => None,
        }
    }

    /// The policy the catalog was built with.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// The search index over the listed tools (discovery mode).
    pub fn index(&self) -> &crate::discovery::Index {
        self.index.0.get_or_init(|| {
            crate::discovery::Index::build(&self.tools, |n| self.tool_routes.get(n).map(|r| r.server.to_string()))
        })
    }

    /// What `tools/list` shows an IDE with a tool budget of `budget` (0: no
    /// limit): `None` for every tool; past the budget, the pinned tools and
    /// the discovery meta-tools, through which the model finds and calls the
    /// rest.
    pub fn listed_tools(&self, budget: usize) -> Option<Vec<Tool>> {
        if budget == 0 || self.tools.len() <= budget {
            return None;
        }
        let mut v: Vec<Tool> = self
            .tools
            .iter()
            .filter(|t| {
                self.tool_routes
                    .get(t.name.as_ref())
                    .is_some_and(|r| self.policy.pinned(&r.server, &r.name))
            })
            .cloned()
            .collect();
        v.extend(crate::discovery::meta_tools());
        Some(v)
    }

    /// Route a `resources/read` or `resources/subscribe` URI: a listed URI, a
    /// rewritten URI, a URI matching exactly one server's template, or the only
    /// server that has resources at all.
    pub fn resource(&self, ide_uri: &str) -> Option<Route> {
        let mut candidates = self.resource_candidates(ide_uri);
        (candidates.len() == 1).then(|| candidates.remove(0))
    }

    /// Every server that may serve a URI: the one that listed it or whose
    /// namespaced URI it is; else the servers whose templates match it, or
    /// else every resource server. One candidate is a route ([`Catalog::resource`]);
    /// reads try several in turn (in name order).
    pub fn resource_candidates(&self, ide_uri: &str) -> Vec<Route> {
        if let Some(r) = self.resource_routes.get(ide_uri) {
            return vec![r.clone()];
        }
        if let Some((server, uri)) = unrewrite_uri(ide_uri) {
            return self
                .servers
                .iter()
                .find(|s| ***s == *server)
                .map(|s| Route {
                    server: s.clone(),
                    name: uri,
                })
                .into_iter()
                .collect();
        }
        let mut matching: Vec<&Arc<str>> = self
            .templates
            .iter()
            .filter(|(t, _)| template_matches(t, ide_uri))
            .map(|(_, s)| s)
            .collect();
        if matching.is_empty() {
            matching = self.resource_servers.iter().collect();
        }
        matching.sort();
        matching.dedup();
        matching
            .into_iter()
            .map(|s| Route {
                server: s.clone(),
                name: ide_uri.to_owned(),
            })
            .collect()
    }

    /// The server owning a resource template the IDE was given, and the
    /// template that server knows (for `completion/complete` with a
    /// `ref/resource`).
    pub fn template(&self, ide_template: &str) -> Option<Route> {
        if let Some(r) = self.template_rewrites.get(ide_template) {
            return Some(r.clone());
        }
        self.templates
            .iter()
            .find(|(t, _)| t == ide_template)
            .map(|(t, s)| Route {
                server: s.clone(),
                name: t.clone(),
            })
    }

    /// The URI the IDE must be given for a URI that `server` put in a result (a
    /// resource link or an embedded resource), so that reading it back through
    /// the bridge reaches `server` again: `None` when the URI already routes
    /// there as it is.
    pub fn result_uri(&self, server: &str, upstream_uri: &str) -> Option<String> {
        if let Some(u) = self
            .resource_rewrites
            .get(&(Arc::from(server), upstream_uri.to_owned()))
        {
            return Some(u.clone());
        }
        match self.resource(upstream_uri) {
            Some(r) if *r.server == *server && r.name == upstream_uri => None,
            _ => Some(rewrite_uri(server, upstream_uri)),
        }
    }

    /// The URI the IDE knows for an upstream URI (for `notifications/resources/updated`).
    pub fn ide_uri(&self, server: &str, upstream_uri: &str) -> String {
        self.resource_rewrites
            .get(&(Arc::from(server), upstream_uri.to_owned()))
            .cloned()
            .unwrap_or_else(|| upstream_uri.to_owned())
    }

    /// Which lists differ from `other`.
    pub fn changes_from(&self, other: &Catalog) -> Changes {
        Changes {
            tools: self.tools != other.tools,
            prompts: self.prompts != other.prompts,
            resources: self.resources != other.resources || self.resource_templates != other.resource_templates,
        }
    }
}

/// Replace characters outside `[A-Za-z0-9_.-]` with `_`.
pub fn sanitize(name: &str) -> String {
    sanitize_in(name, Charset::Portable)
}

/// Replace characters `charset` does not allow with `_`; never empty.
pub fn sanitize_in(name: &str, charset: Charset) -> String {
    let s: String = name.chars().map(|c| if charset.allows(c) { c } else { '_' }).collect();
    if s.is_empty() { "_".into() } else { s }
}

/// Namespace from a server id: lower case, `[a-z0-9-]`, no empty result.
pub fn namespace_from(name: &str) -> String {
    let tail = name.rsplit('/').next().unwrap_or(name);
    let mut ns: String = tail
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while ns.contains("--") {
        ns = ns.replace("--", "-");
    }
    let ns = ns.trim_matches('-').to_owned();
    if ns.is_empty() { "server".into() } else { ns }
}

fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize()[..3].iter().map(|b| format!("{b:02x}")).collect()
}

fn truncate_with_hash(name: &str, server: &str, original: &str, max_len: usize) -> String {
    let suffix = format!("_{}", short_hash(&[server, original]));
    let keep = max_len.saturating_sub(suffix.len());
    let head: String = name.chars().take(keep).collect();
    format!("{head}{suffix}")
}

fn unique_name(server: &str, original: &str, prefix: bool, naming: &Naming, taken: &mut HashSet<String>) -> String {
    let max_len = naming.max_len.clamp(16, 128);
    let clean = |s: &str| sanitize_in(s, naming.charset);
    let base = if prefix {
        format!("{}{}{}", clean(server), naming.separator, clean(original))
    } else {
        clean(original)
    };
    // A name that had to be sanitised or shortened carries a hash of the original,
    // so two originals that sanitise alike never collide silently.
    let mut name = if base.len() > max_len || clean(original) != original {
        truncate_with_hash(&base, server, original, max_len)
    } else {
        base
    };
    if taken.contains(&name) {
        name = truncate_with_hash(&name, server, original, max_len);
        let mut n = 1;
        while taken.contains(&name) {
            let next = truncate_with_hash(&format!("{name}{n}"), server, original, max_len);
            // At `max_len` the counter is cut off again and the name never changes
            // (a server listing one long name twice hung the build): then the
            // counter goes into the hash instead.
            name = if next == name {
                truncate_with_hash(&name, server, &format!("{original}\0{n}"), max_len)
            } else {
                next
            };
            n += 1;
        }
    }
    taken.insert(name.clone());
    name
}

const URI_SAFE: &[u8] = b"-_.~";

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || URI_SAFE.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `mcp-bridge://<server>/<percent-encoded uri>`.
pub fn rewrite_uri(server: &str, uri: &str) -> String {
    format!("{REWRITE_SCHEME}://{}/{}", percent_encode(server), percent_encode(uri))
}

/// A template two servers share, namespaced like [`rewrite_uri`]: the literal
/// parts are encoded and the `{…}` expressions kept, so that the URI the IDE
/// expands from it decodes with [`unrewrite_uri`] to the server's own URI.
pub fn rewrite_template(server: &str, template: &str) -> String {
    let mut out = format!("{REWRITE_SCHEME}://{}/", percent_encode(server));
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else { break };
        out.push_str(&percent_encode(&rest[..open]));
        out.push_str(&rest[open..open + close + 1]);
        rest = &rest[open + close + 1..];
    }
    out.push_str(&percent_encode(rest));
    out
}

/// Reverse of [`rewrite_uri`].
pub fn unrewrite_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix(REWRITE_SCHEME)?.strip_prefix("://")?;
    let (server, enc) = rest.split_once('/')?;
    Some((percent_decode(server)?, percent_decode(enc)?))
}

/// Whether `uri` could be an expansion of an RFC 6570 template: the literal parts
/// must appear in order, the first as a prefix and the last as a suffix.
pub fn template_matches(template: &str, uri: &str) -> bool {
    let mut literals = Vec::new();
    let mut rest = template;
    loop {
        match rest.find('{') {
            Some(open) => {
                literals.push(&rest[..open]);
                match rest[open..].find('}') {
                    Some(close) => rest = &rest[open + close + 1..],
                    None => return false,
                }
            }
            None => {
                literals.push(rest);
                break;
            }
        }
    }
    if literals.len() == 1 {
        return template == uri;
    }
    let first = literals[0];
    let last = literals[literals.len() - 1];
    if !uri.starts_with(first) || uri.len() < first.len() + last.len() || !uri.ends_with(last) {
        return false;
    }
    let mut hay = &uri[first.len()..uri.len() - last.len()];
    for lit in &literals[1..literals.len() - 1] {
        match hay.find(lit) {
            Some(i) => hay = &hay[i + lit.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(name: &str) -> Tool {
        serde_json::from_value(json!({"name": name, "inputSchema": {"type": "object"}})).unwrap()
    }
    fn resource(uri: &str) -> Resource {
        serde_json::from_value(json!({"uri": uri, "name": uri})).unwrap()
    }
    fn template(t: &str) -> ResourceTemplate {
        serde_json::from_value(json!({"uriTemplate": t, "name": t})).unwrap()
    }
    fn lists(tools: &[&str]) -> Arc<ServerLists> {
        Arc::new(ServerLists {
            tools: tools.iter().map(|t| tool(t)).collect(),
            ..Default::default()
        })
    }
    fn servers(items: Vec<(&str, Arc<ServerLists>)>) -> BTreeMap<Arc<str>, Arc<ServerLists>> {
        items.into_iter().map(|(k, v)| (Arc::from(k), v)).collect()
    }
    fn names(c: &Catalog) -> Vec<String> {
        c.tools.iter().map(|t| t.name.to_string()).collect()
    }

    /// Under a policy: hidden tools are not listed, are remembered under the
    /// name they would have had (without taking it from a listed tool), and
    /// tools that need approval say so; listed tools, budget and pins decide
    /// what an IDE sees.
    #[test]
    fn policy_hides_marks_and_budgets() {
        use crate::policy::{Policy, PolicyConfig};
        let policy = Arc::new(Policy::new(
            PolicyConfig {
                deny: vec!["a__secret".into()],
                require_approval: vec!["b__drop".into()],
                pin: vec!["b__drop".into()],
                ..PolicyConfig::default()
            },
            [],
        ));
        let s = servers(vec![("a", lists(&["secret", "echo"])), ("b", lists(&["drop", "echo"]))]);
        let c = Catalog::build_with(&s, 2, &Naming::default(), &policy);
        assert_eq!(names(&c), ["a__echo", "b__drop", "b__echo"]);
        assert!(c.tool("a__secret").is_none());
        assert!(c.hidden("a__secret").is_some_and(|w| w.contains("[policy] deny")));
        assert!(c.approval("b__drop").is_some() && c.approval("b__echo").is_none());
        let drop_desc = c
            .tools
            .iter()
            .find(|t| t.name == "b__drop")
            .unwrap()
            .description
            .clone();
        assert_eq!(drop_desc.as_deref(), Some("(asks for confirmation)"));
        assert!(c.listed_tools(0).is_none() && c.listed_tools(3).is_none());
        let small: Vec<String> = c.listed_tools(2).unwrap().iter().map(|t| t.name.to_string()).collect();
        assert_eq!(small[0], "b__drop");
        assert!(small.contains(&crate::discovery::SEARCH.to_owned()));
    }

    /// With one server and `auto`, names pass through unchanged.
    #[test]
    fn auto_single_server_is_bare() {
        let s = servers(vec![("notes", lists(&["add", "list"]))]);
        let c = Catalog::build(&s, 1, &Naming::default());
        assert_eq!(names(&c), ["add", "list"]);
        assert_eq!(
            c.tool("add").unwrap(),
            &Route {
                server: "notes".into(),
                name: "add".into()
            }
        );
    }

    /// `auto` prefixes as soon as a second server is configured, even before it lists.
    #[test]
    fn auto_prefixes_with_configured_count() {
        let s = servers(vec![("notes", lists(&["add"]))]);
        let c = Catalog::build(&s, 2, &Naming::default());
        assert_eq!(names(&c), ["notes__add"]);
        assert!(c.tool("add").is_none());
    }

    /// Prefixed names use the configured separator, and routing is by table.
    #[test]
    fn separator_is_configurable() {
        let s = servers(vec![("a", lists(&["x"])), ("b", lists(&["x"]))]);
        let n = Naming {
            separator: "-".into(),
            ..Naming::default()
        };
        let c = Catalog::build(&s, 2, &n);
        assert_eq!(names(&c), ["a-x", "b-x"]);
        assert_eq!(c.tool("b-x").unwrap().server.as_ref(), "b");
    }

    /// A tool named like another server's prefixed tool cannot shadow it.
    #[test]
    fn shadowing_names_get_distinct_routes() {
        let s = servers(vec![("a", lists(&["b__x"])), ("a__b", lists(&["x"]))]);
        let c = Catalog::build(&s, 2, &Naming::default());
        let n = names(&c);
        assert_eq!(n.len(), 2);
        assert_ne!(n[0], n[1]);
        let r0 = c.tool(&n[0]).unwrap();
        let r1 = c.tool(&n[1]).unwrap();
        assert_eq!((r0.server.as_ref(), r0.name.as_str()), ("a", "b__x"));
        assert_eq!((r1.server.as_ref(), r1.name.as_str()), ("a__b", "x"));
    }

    /// In `never` mode collisions resolve deterministically: the first server in
    /// name order keeps the bare name, later ones get a stable hash suffix.
    #[test]
    fn never_mode_collisions_are_deterministic() {
        let s = servers(vec![("b", lists(&["search"])), ("a", lists(&["search"]))]);
        let n = Naming {
            prefix: PrefixMode::Never,
            ..Naming::default()
        };
        let c1 = Catalog::build(&s, 2, &n);
        let c2 = Catalog::build(&s, 2, &n);
        assert_eq!(names(&c1), names(&c2));
        assert_eq!(names(&c1)[0], "search");
        assert_eq!(c1.tool("search").unwrap().server.as_ref(), "a");
        assert!(names(&c1)[1].starts_with("search_"));
        assert_eq!(c1.tool(&names(&c1)[1]).unwrap().server.as_ref(), "b");
    }

    /// Names are kept within the charset and the length limit.
    #[test]
    fn names_are_sanitised_and_bounded() {
        let long = "x".repeat(200);
        let s = servers(vec![("srv", lists(&["has space", "ok.name", &long]))]);
        let c = Catalog::build(&s, 1, &Naming::default());
        for n in names(&c) {
            assert!(n.len() <= 64, "{n}");
            assert!(n.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)), "{n}");
        }
        assert_eq!(names(&c)[1], "ok.name");
        assert!(names(&c)[0].starts_with("has_space_"));
        assert_eq!(c.tool(&names(&c)[0]).unwrap().name, "has space");
        assert_eq!(c.tool(&names(&c)[2]).unwrap().name, long);
    }

    /// Unique URIs pass through; duplicates are rewritten and reversible.
    #[test]
    fn resource_uris_rewrite_only_on_collision() {
        let a = ServerLists {
            resources: vec![resource("file:///a"), resource("mem://x")],
            ..Default::default()
        };
        let b = ServerLists {
            resources: vec![resource("mem://x")],
            ..Default::default()
        };
        let s = servers(vec![("a", Arc::new(a)), ("b", Arc::new(b))]);
        let c = Catalog::build(&s, 2, &Naming::default());
        let uris: Vec<_> = c.resources.iter().map(|r| r.uri.clone()).collect();
        assert_eq!(uris[0], "file:///a");
        assert_eq!(uris[1], "mcp-bridge://a/mem%3A%2F%2Fx");
        assert_eq!(uris[2], "mcp-bridge://b/mem%3A%2F%2Fx");
        assert_eq!(
            c.resource(&uris[2]).unwrap(),
            Route {
                server: "b".into(),
                name: "mem://x".into()
            }
        );
        assert_eq!(c.resource("file:///a").unwrap().server.as_ref(), "a");
        assert_eq!(c.ide_uri("b", "mem://x"), uris[2]);
        assert_eq!(c.ide_uri("a", "file:///a"), "file:///a");
    }

    /// URIs not listed are routed by template, or to the only resource server.
    #[test]
    fn resource_routing_by_template() {
        let a = ServerLists {
            resource_templates: vec![template("notes://note/{id}")],
            ..Default::default()
        };
        let b = ServerLists {
            resource_templates: vec![template("metrics://{name}/latest")],
            ..Default::default()
        };
        let s = servers(vec![("a", Arc::new(a)), ("b", Arc::new(b))]);
        let c = Catalog::build(&s, 2, &Naming::default());
        assert_eq!(c.resource("notes://note/7").unwrap().server.as_ref(), "a");
        assert_eq!(c.resource("metrics://cpu/latest").unwrap().server.as_ref(), "b");
        assert!(c.resource("other://x").is_none());
        assert_eq!(c.template("metrics://{name}/latest").unwrap().server.as_ref(), "b");
    }

    /// A template two servers share is namespaced per server; what the IDE
    /// expands from it reads back from that server, with the server's URI.
    /// An original URI both templates match goes to each in turn.
    #[test]
    fn shared_templates_are_namespaced() {
        let both = || ServerLists {
            resource_templates: vec![template("demo://resource/{id}")],
            ..Default::default()
        };
        let s = servers(vec![("a", Arc::new(both())), ("b", Arc::new(both()))]);
        let c = Catalog::build(&s, 2, &Naming::default());
        let listed: Vec<_> = c.resource_templates.iter().map(|t| t.uri_template.clone()).collect();
        assert_eq!(
            listed,
            [
                "mcp-bridge://a/demo%3A%2F%2Fresource%2F{id}",
                "mcp-bridge://b/demo%3A%2F%2Fresource%2F{id}"
            ]
        );
        let expanded = listed[1].replace("{id}", "7");
        assert_eq!(
            c.resource(&expanded).unwrap(),
            Route {
                server: "b".into(),
                name: "demo://resource/7".into()
            }
        );
        assert_eq!(c.template(&listed[0]).unwrap().name, "demo://resource/{id}");
        assert!(c.resource("demo://resource/7").is_none());
        let tries: Vec<_> = c
            .resource_candidates("demo://resource/7")
            .into_iter()
            .map(|r| r.server.to_string())
            .collect();
        assert_eq!(tries, ["a", "b"]);
    }

    /// A URI in a result reads back from the server that gave it: unchanged
    /// when it already routes there, namespaced otherwise (even from a server
    /// that lists no resources).
    #[test]
    fn result_uris_route_back() {
        let a = ServerLists {
            resources: vec![resource("mem://a/1"), resource("mem://shared")],
            tools: vec![tool("t")],
            ..Default::default()
        };
        let b = ServerLists {
            resources: vec![resource("mem://shared")],
            ..Default::default()
        };
        let t = ServerLists {
            tools: vec![tool("links")],
            ..Default::default()
        };
        let s = servers(vec![("a", Arc::new(a)), ("b", Arc::new(b)), ("t", Arc::new(t))]);
        let c = Catalog::build(&s, 3, &Naming::default());
        assert_eq!(c.result_uri("a", "mem://a/1"), None);
        assert_eq!(
            c.result_uri("b", "mem://shared").as_deref(),
            Some("mcp-bridge://b/mem%3A%2F%2Fshared")
        );
        let link = c.result_uri("t", "file:///tmp/x.txt").unwrap();
        assert_eq!(
            c.resource(&link).unwrap(),
            Route {
                server: "t".into(),
                name: "file:///tmp/x.txt".into()
            }
        );
    }

    #[test]
    fn template_matching() {
        assert!(template_matches("a://{x}", "a://1"));
        assert!(template_matches("a://{x}/b/{y}.json", "a://1/b/2.json"));
        assert!(!template_matches("a://{x}/b/{y}.json", "a://1/c/2.json"));
        assert!(!template_matches("a://{x}", "b://1"));
        assert!(template_matches("fixed://x", "fixed://x"));
        assert!(!template_matches("broken{", "broken"));
    }

    #[test]
    fn namespaces() {
        assert_eq!(namespace_from("com.example.corp/jira"), "jira");
        assert_eq!(namespace_from("io.x/My_Server  v2"), "my-server-v2");
        assert_eq!(namespace_from("///"), "server");
    }

    #[test]
    fn changes_detected_per_list() {
        let s1 = servers(vec![("a", lists(&["x"]))]);
        let s2 = servers(vec![("a", lists(&["x", "y"]))]);
        let n = Naming::default();
        let c1 = Catalog::build(&s1, 1, &n);
        let c2 = Catalog::build(&s2, 1, &n);
        let ch = c2.changes_from(&c1);
        assert!(ch.tools && !ch.prompts && !ch.resources);
        assert!(!Catalog::build(&s1, 1, &n).changes_from(&c1).any());
    }

    /// For every known client: a 60-character tool name from a 20-character
    /// server fits the client's limit once its prefix is on; names with `-`,
    /// `.` or `/` are ones the client keeps as they are (so routing by what it
    /// sends back is exact); and no two names meet once the client has applied
    /// its own rules. The client's rules are written out here, apart from the
    /// profile table.
    #[test]
    fn names_fit_each_clients_prefix_and_rules() {
        // (clientInfo.name, the characters that client keeps, its limit)
        type Keeps = fn(char) -> bool;
        let keeps_word_dash = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        let keeps_gemini = |c: char| c.is_ascii_alphanumeric() || "_.:-".contains(c);
        let keeps_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let clients: [(&str, Keeps, usize); 9] = [
            ("claude-code", keeps_word_dash, 64),
            ("gemini-cli-mcp-client", keeps_gemini, 63),
            ("codex-mcp-client", keeps_word, 64),
            ("github-copilot-developer", keeps_word_dash, 64),
            ("cursor-vscode", keeps_word_dash, 60),
            ("windsurf-client", keeps_word_dash, 60),
            ("Visual Studio Code", keeps_word_dash, 64),
            ("opencode", keeps_word_dash, 64),
            ("goose", keeps_word_dash, 64),
        ];
        let long = format!("{}-{}.{}", "a".repeat(30), "b".repeat(19), "c".repeat(9));
        assert_eq!(long.len(), 60);
        let server = "twenty-char-server-x";
        assert_eq!(server.len(), 20);
        let tools = [long.as_str(), "get-item", "get_item", "get.item", "a/b", "a_b", "plain"];
        let s = servers(vec![(server, lists(&tools)), ("other", lists(&["get-item", "plain"]))]);
        for (client, keeps, limit) in clients {
            let naming = Naming::default().for_client(Some(client));
            let p = crate::ide::profile(Some(client)).unwrap();
            let c = Catalog::build(&s, 2, &naming);
            let mut seen = HashSet::new();
            for name in names(&c) {
                let rewritten: String = name.chars().map(|ch| if keeps(ch) { ch } else { '_' }).collect();
                assert_eq!(rewritten, name, "{client} would rewrite {name}");
                let full = format!("{}{name}", p.prefix(crate::ide::ENTRY));
                assert!(full.len() <= limit, "{client}: {full} is {} long", full.len());
                assert!(seen.insert(full.clone()), "{client}: {full} twice");
                assert!(c.tool(&name).is_some(), "{client}: {name} not routed");
            }
            assert_eq!(seen.len(), tools.len() + 2, "{client}");
            // The same inputs give the same names (stable across restarts).
            assert_eq!(names(&Catalog::build(&s, 2, &naming)), names(&c));
        }
    }

    /// Unknown clients, and names the config fixed, keep the settings.
    #[test]
    fn unknown_clients_and_fixed_settings_keep_the_naming() {
        let n = Naming::default();
        assert_eq!(n.for_client(Some("some-agent")), n);
        assert_eq!(n.for_client(None), n);
        let fixed = Naming {
            separator: ".".into(),
            max_len: 100,
            fixed: true,
            ..Naming::default()
        };
        assert_eq!(fixed.for_client(Some("codex-mcp-client")), fixed);
        let claude = n.for_client(Some("Claude-Code"));
        assert_eq!((claude.max_len, claude.charset), (47, Charset::WordDash));
        assert_eq!(n.for_client(Some("codex-mcp-client")).charset, Charset::Word);
    }

    #[test]
    fn rewrite_roundtrip() {
        for uri in ["mem://x", "file:///a b/ü", "", "weird%2F"] {
            let r = rewrite_uri("srv-1", uri);
            assert_eq!(unrewrite_uri(&r), Some(("srv-1".into(), uri.into())));
        }
    }
}
