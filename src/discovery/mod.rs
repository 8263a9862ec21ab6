//! Discovery mode: a search index over the catalog's tools and the three
//! meta-tools that stand in for a catalog too long for the IDE.
//!
//! Past a tool budget the bridge lists only [`meta_tools`]: the model searches the
//! catalog in words ([`SEARCH`]), reads one tool's schema ([`DESCRIBE`]) and calls
//! it by name ([`CALL`]). This module is pure: [`Index::build`] is a function of
//! the tools, [`Index::search`] of the index and the query, and nothing here does
//! IO or knows how a call is routed.
//!
//! Ranking is BM25F (k1 = 1.2, b = 0.75) over five weighted fields: the tool
//! name (×3, without its server prefix, which the server field already counts),
//! the title (×2), the server id (×1.5), the description (×1) and the names of
//! the input schema's top-level properties (×0.5). On top of that:
//!
//! - a query token of three characters or more also matches a longer term it is
//!   a prefix of (`deploy` ~ `deployment`) and a shorter term of three or more
//!   characters that is a prefix of it (`authentication` ~ `auth`), at half weight;
//! - a query token also matches the other words of its synonym group (`open` ~
//!   `create`, `ticket` ~ `issue`; see `SYNONYMS`) at 0.6 of their weight;
//! - each query token counts once per tool, through its best-matching term, and
//!   tokens of one synonym group ("create a new page") count as one;
//! - when the whole query (two tokens or more, after stop words) occurs as a
//!   phrase in the tool's name the score is multiplied by 1.5, in its description
//!   by 1.25.
//!
//! Text is tokenised the same way for tools and queries (see [`analyze`]),
//! including stemming and a few spelled-out abbreviations (`pr`, `k8s`, `db`).

use std::collections::HashMap;
use std::sync::Arc;

use rmcp::model::{Tool, ToolAnnotations};
use serde_json::{Value, json};

/// The meta-tool that searches the catalog.
pub const SEARCH: &str = "bridge_search_tools";
/// The meta-tool that shows one tool's description and input schema.
pub const DESCRIBE: &str = "bridge_describe_tool";
/// The meta-tool that calls a tool by name.
pub const CALL: &str = "bridge_call_tool";

/// Longest summary a hit carries, in characters.
const SUMMARY_MAX: usize = 160;

const K1: f64 = 1.2;
const B: f64 = 0.75;

/// Field weights, in the order of [`Field`].
const WEIGHTS: [f64; FIELDS] = [3.0, 2.0, 1.5, 1.0, 0.5];
const FIELDS: usize = 5;

#[derive(Clone, Copy)]
enum Field {
    Name,
    Title,
    Server,
    Description,
    Properties,
}

/// Weight of a term matched through a prefix rather than exactly.
const PREFIX_FACTOR: f64 = 0.5;
/// Shortest query token (and shortest term) that takes part in prefix matching.
const PREFIX_MIN: usize = 3;
/// Score multipliers when the whole query occurs as a phrase.
const PHRASE_IN_NAME: f64 = 1.5;
const PHRASE_IN_DESCRIPTION: f64 = 1.25;

const STOP_WORDS: &[&str] = &[
    "the", "a", "an", "to", "of", "for", "in", "on", "and", "or", "with", "by", "from", "is", "it", "this", "that",
    "my", "me", "i",
];

/// Abbreviations spelled out on both sides (keys are stems).
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("pr", "pull request"),
    ("mr", "merge request"),
    ("k8s", "kubernetes"),
    ("db", "database"),
    ("repo", "repository"),
    ("msg", "message"),
    ("env", "environment"),
    ("config", "configuration"),
];

/// Words a model uses for the same action or thing; a query word also matches the others
/// of its group, at [`SYNONYM_FACTOR`]. Only queries are expanded.
const SYNONYMS: &[&[&str]] = &[
    &["create", "add", "new", "open", "make"],
    &["get", "fetch", "show", "read", "view", "retrieve", "describe"],
    &["delete", "remove"],
    &["update", "edit", "change", "modify", "set"],
    &["search", "find", "lookup"],
    &["send", "post"],
    &["run", "execute", "trigger", "start", "launch"],
    &["cancel", "stop", "abort", "terminate"],
    &["issue", "ticket"],
];
/// Weight of a term matched through a synonym.
const SYNONYM_FACTOR: f64 = 0.6;

/// A search index over the catalog's tools, built once per catalog change.
pub struct Index {
    docs: Vec<Doc>,
    /// Term -> id; ids index `postings`.
    terms: HashMap<Arc<str>, u32>,
    /// Every term with its id, sorted, for prefix lookups.
    sorted_terms: Vec<(Arc<str>, u32)>,
    /// Per term: the tools containing it with the term's full BM25F score there.
    postings: Vec<Vec<(u32, f64)>>,
    /// [`SYNONYMS`] stemmed, and each stem's group.
    groups: Vec<Vec<String>>,
    group_of: HashMap<String, usize>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("tools", &self.docs.len())
            .field("terms", &self.terms.len())
            .finish_non_exhaustive()
    }
}

struct Doc {
    name: String,
    server: Option<String>,
    summary: String,
    /// Term ids of the whole name (server prefix included) and of the description, in order.
    name_seq: Vec<u32>,
    description_seq: Vec<u32>,
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub name: String,
    pub server: Option<String>,
    pub score: f64,
    /// The first line of the description, at most 160 characters.
    pub summary: String,
}

impl Index {
    /// `tools`: IDE-facing tools; `server_of(name)` gives each tool's server id (for matching on server words).
    pub fn build(tools: &[Tool], server_of: impl Fn(&str) -> Option<String>) -> Index {
        let mut terms: HashMap<Arc<str>, u32> = HashMap::new();
        let mut intern = |t: String| -> u32 {
            let next = terms.len() as u32;
            *terms.entry(Arc::from(t)).or_insert(next)
        };

        // First pass: every tool's fields as term ids, to learn the average field lengths.
        let mut docs = Vec::with_capacity(tools.len());
        let mut fields: Vec<[Vec<u32>; FIELDS]> = Vec::with_capacity(tools.len());
        for tool in tools {
            let server = server_of(&tool.name);
            let description = tool.description.as_deref().unwrap_or("");
            let title = tool
                .title
                .as_deref()
                .or_else(|| tool.annotations.as_ref().and_then(|a| a.title.as_deref()))
                .unwrap_or("");
            let name_seq: Vec<u32> = analyze(&tool.name).into_iter().map(&mut intern).collect();
            let server_terms: Vec<u32> = server
                .as_deref()
                .map(analyze)
                .unwrap_or_default()
                .into_iter()
                .map(&mut intern)
                .collect();
            // The server prefix of a name is counted by the server field, not twice.
            let name_terms = match name_seq.strip_prefix(server_terms.as_slice()) {
                Some(rest) if !server_terms.is_empty() && !rest.is_empty() => rest.to_vec(),
                _ => name_seq.clone(),
            };
            let description_seq: Vec<u32> = analyze(description).into_iter().map(&mut intern).collect();
            let property_terms: Vec<u32> = tool
                .input_schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|props| props.keys().flat_map(|k| analyze(k)).map(&mut intern).collect())
                .unwrap_or_default();
            let title_terms: Vec<u32> = analyze(title).into_iter().map(&mut intern).collect();

            let mut f: [Vec<u32>; FIELDS] = Default::default();
            f[Field::Name as usize] = name_terms;
            f[Field::Title as usize] = title_terms;
            f[Field::Server as usize] = server_terms;
            f[Field::Description as usize] = description_seq.clone();
            f[Field::Properties as usize] = property_terms;
            fields.push(f);
            docs.push(Doc {
                name: tool.name.to_string(),
                server,
                summary: summary(tool),
                name_seq,
                description_seq,
            });
        }

        // Integer sums, so that the averages (and every score) do not depend on the tools' order.
        let n = docs.len().max(1) as f64;
        let mut sums = [0usize; FIELDS];
        for f in &fields {
            for (sum, terms) in sums.iter_mut().zip(f) {
                *sum += terms.len();
            }
        }
        let avg = sums.map(|sum| sum as f64 / n);

        // Second pass: per tool and term, the weighted, length-normalised frequency.
        let mut pseudo_tf: Vec<Vec<(u32, f64)>> = vec![Vec::new(); terms.len()];
        let mut local: HashMap<u32, f64> = HashMap::new();
        for (doc, f) in fields.iter().enumerate() {
            local.clear();
            for (i, field_terms) in f.iter().enumerate() {
                if field_terms.is_empty() {
                    continue;
                }
                let norm = 1.0 - B + B * field_terms.len() as f64 / avg[i];
                for t in field_terms {
                    *local.entry(*t).or_default() += WEIGHTS[i] / norm;
                }
            }
            let mut entries: Vec<(u32, f64)> = local.iter().map(|(t, w)| (*t, *w)).collect();
            entries.sort_unstable_by_key(|(t, _)| *t);
            for (t, tf) in entries {
                pseudo_tf[t as usize].push((doc as u32, tf));
            }
        }
        let postings = pseudo_tf
            .into_iter()
            .map(|list| {
                let df = list.len() as f64;
                let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                list.into_iter()
                    .map(|(doc, tf)| (doc, idf * tf * (K1 + 1.0) / (K1 + tf)))
                    .collect()
            })
            .collect();

        let mut sorted_terms: Vec<(Arc<str>, u32)> = terms.iter().map(|(t, id)| (t.clone(), *id)).collect();
        sorted_terms.sort_unstable();
        let groups: Vec<Vec<String>> = SYNONYMS.iter().map(|g| g.iter().map(|w| stem(w)).collect()).collect();
        let group_of = groups
            .iter()
            .enumerate()
            .flat_map(|(i, g)| g.iter().map(move |s| (s.clone(), i)))
            .collect();
        Index {
            docs,
            terms,
            sorted_terms,
            postings,
            groups,
            group_of,
        }
    }

    /// The best `limit` tools for `query`, best first, each with its score; ties broken by name so results are
    /// deterministic. Empty/unmatched query → empty.
    pub fn search(&self, query: &str, limit: usize) -> Vec<Hit> {
        let query = analyze(query);
        if query.is_empty() || limit == 0 {
            return Vec::new();
        }
        let mut total = vec![0.0f64; self.docs.len()];
        let mut best = vec![0.0f64; self.docs.len()];
        let mut touched: Vec<u32> = Vec::new();
        // A query word counts once per tool, through its best-matching term; words of one
        // synonym group ("create a new page") count as one word.
        let mut concepts: Vec<(Option<usize>, Vec<&str>)> = Vec::new();
        for token in &query {
            let group = self.group_of.get(token.as_str()).copied();
            match concepts
                .iter_mut()
                .find(|(g, tokens)| (group.is_some() && *g == group) || tokens.contains(&token.as_str()))
            {
                Some((_, tokens)) => tokens.push(token),
                None => concepts.push((group, vec![token])),
            }
        }
        for (_, tokens) in &concepts {
            for (term, factor) in tokens.iter().flat_map(|t| self.candidates(t)) {
                for &(doc, w) in &self.postings[term as usize] {
                    let s = factor * w;
                    let b = &mut best[doc as usize];
                    if *b == 0.0 {
                        touched.push(doc);
                    }
                    if s > *b {
                        *b = s;
                    }
                }
            }
            for doc in touched.drain(..) {
                total[doc as usize] += best[doc as usize];
                best[doc as usize] = 0.0;
            }
        }

        let phrase: Option<Vec<u32>> = (query.len() >= 2)
            .then(|| query.iter().map(|t| self.terms.get(t.as_str()).copied()).collect())
            .flatten();
        let mut scored: Vec<(u32, f64)> = total
            .iter()
            .enumerate()
            .filter(|(_, s)| **s > 0.0)
            .map(|(doc, s)| {
                let d = &self.docs[doc];
                let bonus = match &phrase {
                    Some(p) if contains(&d.name_seq, p) => PHRASE_IN_NAME,
                    Some(p) if contains(&d.description_seq, p) => PHRASE_IN_DESCRIPTION,
                    _ => 1.0,
                };
                (doc as u32, s * bonus)
            })
            .collect();
        scored.sort_unstable_by(|(a, sa), (b, sb)| {
            sb.total_cmp(sa)
                .then_with(|| self.docs[*a as usize].name.cmp(&self.docs[*b as usize].name))
        });
        scored
            .into_iter()
            .take(limit)
            .map(|(doc, score)| {
                let d = &self.docs[doc as usize];
                Hit {
                    name: d.name.clone(),
                    server: d.server.clone(),
                    score,
                    summary: d.summary.clone(),
                }
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// The terms a query token matches, each with its weight factor: itself, its synonyms, the
    /// longer terms it is a prefix of, and the shorter terms that are a prefix of it.
    fn candidates(&self, token: &str) -> Vec<(u32, f64)> {
        let mut out = Vec::new();
        if let Some(id) = self.terms.get(token) {
            out.push((*id, 1.0));
        }
        if let Some(group) = self.group_of.get(token) {
            for s in self.groups[*group].iter().filter(|s| *s != token) {
                if let Some(id) = self.terms.get(s.as_str()) {
                    out.push((*id, SYNONYM_FACTOR));
                }
            }
        }
        if token.chars().count() < PREFIX_MIN {
            return out;
        }
        let start = self.sorted_terms.partition_point(|(t, _)| &**t <= token);
        for (t, id) in &self.sorted_terms[start..] {
            if !t.starts_with(token) {
                break;
            }
            out.push((*id, PREFIX_FACTOR));
        }
        for (i, _) in token.char_indices().skip(PREFIX_MIN) {
            if let Some(id) = self.terms.get(&token[..i]) {
                out.push((*id, PREFIX_FACTOR));
            }
        }
        out
    }
}

/// Whether `needle` occurs contiguously in `haystack`.
fn contains(haystack: &[u32], needle: &[u32]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The first line of a tool's description (or its title), at most [`SUMMARY_MAX`] characters.
fn summary(tool: &Tool) -> String {
    let text = tool.description.as_deref().or(tool.title.as_deref()).unwrap_or("");
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    if line.chars().count() <= SUMMARY_MAX {
        return line.to_owned();
    }
    let mut s: String = line.chars().take(SUMMARY_MAX - 1).collect();
    s.truncate(s.trim_end().len());
    s.push('…');
    s
}

/// Split text into the terms the index matches on; tools and queries go through the same steps:
///
/// 1. split on every character that is not a letter or a digit, and inside a word at camelCase
///    boundaries (`createIssue` → create, issue; `HTTPServer` → http, server);
/// 2. lower-case; letters and digits stay together (`get_PR_v2` → get, pr, v2; `k8s`, `s3`,
///    `ec2`, `oauth2` stay whole, since they are names, not a word and a number);
/// 3. drop one-character tokens and English stop words;
/// 4. stem lightly (see [`stem`]) and spell out a few abbreviations (`pr` → pull, request;
///    `k8s` → kubernetes; see `ABBREVIATIONS`);
/// 5. a hyphenated word of two or three alphabetic parts also gives its parts joined, so that
///    `on-call` (→ call, oncall) meets `oncalls`, and `e-mail` meets `email`.
pub fn analyze(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for chunk in text.split(|c: char| !(c.is_alphanumeric() || c == '-')) {
        let parts: Vec<&str> = chunk.split('-').filter(|p| !p.is_empty()).collect();
        for part in &parts {
            split_word(part, &mut out);
        }
        if (2..=3).contains(&parts.len()) && parts.iter().all(|p| p.chars().all(char::is_alphabetic)) {
            push_token(parts.concat().to_lowercase(), &mut out);
        }
    }
    out
}

/// Split one run of letters and digits at camelCase boundaries.
fn split_word(word: &str, out: &mut Vec<String>) {
    let chars: Vec<char> = word.chars().collect();
    let mut start = 0;
    for i in 1..=chars.len() {
        let boundary = i == chars.len() || {
            let (prev, cur) = (chars[i - 1], chars[i]);
            let next_lower = chars.get(i + 1).is_some_and(|c| c.is_lowercase());
            (prev.is_lowercase() && cur.is_uppercase())
                || (prev.is_uppercase() && cur.is_uppercase() && next_lower)
                || (prev.is_numeric() && cur.is_uppercase())
        };
        if boundary {
            push_token(chars[start..i].iter().flat_map(|c| c.to_lowercase()).collect(), out);
            start = i;
        }
    }
}

fn push_token(token: String, out: &mut Vec<String>) {
    if token.chars().count() < 2 || STOP_WORDS.contains(&token.as_str()) {
        return;
    }
    let token = stem(&token);
    match ABBREVIATIONS.iter().find(|(short, _)| *short == token) {
        Some((_, long)) => out.extend(long.split(' ').map(stem)),
        None => out.push(token),
    }
}

/// Light, symmetric suffix stripping for lower-case ASCII words (others pass through):
/// `ies` → `y` (queries → query); `es` after s, x, z, ch, sh (branches → branch); `s`
/// except after s, u, i (issues → issue, but status, class, analysis stay); `ing` and
/// `ed` when what remains has a vowel, undoubling a final consonant (running → run);
/// then a final `e` (create, creates, created, creating → creat). Every strip leaves at
/// least three characters.
pub fn stem(word: &str) -> String {
    if !word.bytes().all(|b| b.is_ascii_lowercase()) {
        return word.to_owned();
    }
    let mut s = word.to_owned();
    let has_vowel = |s: &str| s.bytes().any(|b| b"aeiouy".contains(&b));
    if s.len() >= 5 && s.ends_with("ies") {
        s.truncate(s.len() - 3);
        s.push('y');
    } else if s.len() >= 5 && s.ends_with("es") && ["ses", "xes", "zes", "ches", "shes"].iter().any(|e| s.ends_with(e))
    {
        s.truncate(s.len() - 2);
    } else if s.len() >= 4 && s.ends_with('s') && !["ss", "us", "is"].iter().any(|e| s.ends_with(e)) {
        s.pop();
    } else if let Some(stem) = s.strip_suffix("ing").or_else(|| s.strip_suffix("ed"))
        && stem.len() >= 3
        && has_vowel(stem)
    {
        let mut stem = stem.to_owned();
        let b = stem.as_bytes();
        let n = b.len();
        if n >= 4 && b[n - 1] == b[n - 2] && !b"aeioulsz".contains(&b[n - 1]) {
            stem.pop();
        }
        s = stem;
    }
    if s.len() >= 4 && s.ends_with('e') {
        s.pop();
    }
    s
}

/// The three meta-tools the bridge lists in discovery mode.
pub fn meta_tools() -> Vec<Tool> {
    let read_only = ToolAnnotations::new().read_only(true).open_world(false);
    let mut search = Tool::new(
        SEARCH,
        "Find tools by what you want to do. This bridge connects many MCP servers and holds more tools than it \
         lists; search finds any of them. Use a few words describing the task, such as \
         \"create pull request\" or \"restart kubernetes deployment\". Returns the best matches first, one per \
         line as `name — summary (server)`. Then call bridge_describe_tool with a name to see its arguments, and \
         bridge_call_tool to run it. If nothing fits, search again with other words.",
        rmcp::model::object(json!({
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "description": "What you want to do, in a few words (e.g. \"send a slack message\")."
                },
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 50,
                    "default": 10,
                    "description": "How many tools to return at most."
                }
            },
            "required": ["query"],
            "additionalProperties": false
        })),
    );
    search.title = Some("Search tools".into());
    search.annotations = Some(read_only.clone());

    let mut describe = Tool::new(
        DESCRIBE,
        "Show one tool's full description and JSON input schema. Use it after bridge_search_tools and before \
         bridge_call_tool, to learn which arguments the tool takes. Pass the exact name from the search results.",
        rmcp::model::object(json!({
            "type": "object",
            "properties": {
                "name": {
                    "type": "string",
                    "description": "The exact tool name, as bridge_search_tools returned it."
                }
            },
            "required": ["name"],
            "additionalProperties": false
        })),
    );
    describe.title = Some("Describe a tool".into());
    describe.annotations = Some(read_only);

    let mut call = Tool::new(
        CALL,
        "Call a tool found with bridge_search_tools, by its exact name, with arguments matching the input schema \
         that bridge_describe_tool shows. Returns the tool's own result, as if you had called it directly.",
        rmcp::model::object(json!({
            "type": "object",
            "properties": {
                "name": {
                    "type": "string",
                    "description": "The exact tool name, as bridge_search_tools returned it."
                },
                "arguments": {
                    "type": "object",
                    "description": "The tool's arguments, matching its input schema. Omit for a tool without arguments.",
                    "additionalProperties": true
                }
            },
            "required": ["name"],
            "additionalProperties": false
        })),
    );
    call.title = Some("Call a tool".into());
    vec![search, describe, call]
}

/// Render search hits as the text content a model reads (one line per tool: `name — summary (server)`), plus a
/// structured JSON value `{"tools":[{name, server, score, summary}]}`.
pub fn render_hits(hits: &[Hit]) -> (String, Value) {
    let text = if hits.is_empty() {
        "No tools matched. Try other or fewer words.".to_owned()
    } else {
        let lines: Vec<String> = hits
            .iter()
            .map(|h| {
                let mut line = h.name.clone();
                if !h.summary.is_empty() {
                    line.push_str(" — ");
                    line.push_str(&h.summary);
                }
                if let Some(server) = &h.server {
                    line.push_str(&format!(" ({server})"));
                }
                line
            })
            .collect();
        lines.join("\n")
    };
    let tools: Vec<Value> = hits
        .iter()
        .map(|h| {
            json!({
                "name": h.name,
                "server": h.server,
                "score": (h.score * 1000.0).round() / 1000.0,
                "summary": h.summary,
            })
        })
        .collect();
    (text, json!({ "tools": tools }))
}

#[cfg(test)]
mod tests;
