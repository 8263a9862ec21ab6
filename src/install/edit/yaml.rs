//! Edits of YAML files, as text (Goose's `config.yaml`).
//!
//! The servers are the entries of the mapping `<top_key>` at the top level, as
//! in Goose's `extensions.<key>`. No Rust crate edits YAML while keeping its
//! bytes, so the file is read with saphyr-parser (a YAML 1.2 parser that gives
//! each event's position), only to validate it and to find the lines of
//! `<top_key>` and of its entries; the edit is a splice of whole lines. An entry
//! is written as block YAML generated here: plain keys and strings where they
//! cannot be read as anything else, otherwise JSON-style double-quoted strings
//! (valid YAML); nested lists and maps in flow style (`args: ["serve"]`). It is
//! indented like its sibling entries (else by 2). Everything outside the
//! entry's own lines keeps its bytes: comments, blank lines, order, other keys,
//! anchors. CRLF files get CRLF lines; a UTF-8 BOM stays.
//!
//! An entry's lines run from its key's line to the line before the next
//! sibling's key (or the next top-level key, or the end of the file), less the
//! blank and comment-only lines that end that range: a comment above the next
//! entry stays with it.
//!
//! Refused, with an [`EditError`] and nothing written: a file that does not
//! parse (line, column), more than one document, a top level that is not a
//! mapping, a `<top_key>` that is not a mapping, a flow-style (`{…}`) top level
//! or non-empty `<top_key>` mapping, complex (`? `) or duplicate keys. Every
//! edit is checked by parsing its result: the whole file must read as the old
//! one with just the entry changed, else it is refused too.
//!
//! `upsert` followed by `remove` gives back the original bytes, with these
//! exceptions: a `<top_key>` left with no entries is written `<top_key>: {}`
//! (an empty mapping, which Goose reads; a bare `<top_key>:` would be null), so
//! a file without `<top_key>`, or with a null one, gets `<top_key>: {}`; a last
//! line without its line break gets one; an updated entry loses the comments
//! inside it and cannot be restored. [`is_fresh`] knows the file that upsert
//! and remove make of an empty one.
//!
//! Reading: plain scalars follow YAML 1.2's core schema (null, booleans,
//! integers, floats; `.inf`/`.nan` stay text), quoted ones are strings, aliases
//! are resolved, `<<` merge keys are ordinary keys (as in serde_yaml).

use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

use super::EditError;

const BOM: char = '\u{feff}';
const DEFAULT_INDENT: usize = 2;

/// Fields written first in an entry, in the order Goose's docs show; the rest
/// follow in map order.
const FIELD_ORDER: [&str; 9] = [
    "enabled",
    "type",
    "name",
    "description",
    "cmd",
    "command",
    "args",
    "env",
    "envs",
];

/// Insert or replace the entry `top_key.name`, keeping everything else byte for
/// byte. `top_key` is added at the end of the file if missing. `Ok(None)` when
/// the entry already equals `entry` (JSON value equality, ignoring formatting).
pub fn upsert(text: &str, top_key: &str, name: &str, entry: &Value) -> Result<Option<String>, EditError> {
    let Value::Object(fields) = entry else {
        return Err(unrepresentable(name, "an entry must be an object"));
    };
    let doc = Doc::parse(text)?;
    if doc.entry(top_key, name)?.as_ref() == Some(entry) {
        return Ok(None);
    }
    let root = doc.block_root()?;
    let mut expected = doc.json.clone();
    if !expected.is_object() {
        expected = Value::Object(Map::new());
    }
    let top_json = &mut expected[top_key];
    if !top_json.is_object() {
        *top_json = Value::Object(Map::new());
    }
    top_json[name] = entry.clone();

    let out = match root.and_then(|r| r.get(top_key)) {
        None => {
            // A new `top_key:` at the end, indented like the other top-level keys.
            let indent = root.and_then(|r| r.first_key_col()).unwrap_or(0);
            let mut new = format!("{}{}:{}", " ".repeat(indent), plain_or_quoted(top_key), doc.nl);
            new.push_str(&entry_text(
                name,
                fields,
                indent + DEFAULT_INDENT,
                DEFAULT_INDENT,
                doc.nl,
            ));
            doc.splice(doc.lines.len(), doc.lines.len(), &new, None)
        }
        Some((key_at, top)) => {
            let key_line = doc.key_line(key_at)?;
            match &top.kind {
                Kind::Map { flow: false, entries } if !entries.is_empty() => {
                    let field_indent = doc.field_indent(entries);
                    let ranges = doc.entry_ranges(top_key, root.expect("has top"), entries)?;
                    match entries.iter().position(|(k, _, _)| k == name) {
                        Some(i) => {
                            let (from, to) = ranges[i];
                            let new = entry_text(name, fields, entries[i].1.col(), field_indent, doc.nl);
                            doc.splice(from, to, &new, None)
                        }
                        None => {
                            let (_, to) = ranges[ranges.len() - 1];
                            let new = entry_text(name, fields, entries[0].1.col(), field_indent, doc.nl);
                            doc.splice(to, to, &new, None)
                        }
                    }
                }
                Kind::Map { flow: true, entries } if !entries.is_empty() => {
                    return Err(flow_refused(top_key, top.start));
                }
                // `{}`, `~`, `null` or nothing: the value goes, the entries follow the key.
                Kind::Map { .. } | Kind::Scalar
                    if top.json.as_object().is_some_and(Map::is_empty) || top.json.is_null() =>
                {
                    let line_edit = if top.start.index() == top.end.index() {
                        None
                    } else if doc.line_no(top.start) == key_line
                        && let line = doc.lines[key_line]
                        && let at = byte_col(line, top.start.col())
                        // An empty flow mapping's events span its anchor and
                        // what follows its `}`: the braces are found here.
                        && let Some(from) = match top.kind {
                            Kind::Map { .. } => line[at..].find('{').map(|i| at + i),
                            _ => Some(at),
                        }
                        && let Some(to) = match top.kind {
                            Kind::Map { .. } => line[from..].find('}').map(|i| from + i + 1),
                            _ => (doc.line_no(top.end) == key_line).then(|| byte_col(line, top.end.col())),
                        }
                    {
                        Some(format!("{}{}", line[..from].trim_end(), &line[to..]))
                    } else {
                        return Err(refused(
                            doc.line_no(top.start) + 1,
                            top.start.col() + 1,
                            &format!("{top_key}'s empty value is not on its key's line: write `{top_key}: {{}}`"),
                        ));
                    };
                    let indent = doc.key_col(key_at) + DEFAULT_INDENT;
                    let new = entry_text(name, fields, indent, DEFAULT_INDENT, doc.nl);
                    doc.splice(key_line + 1, key_line + 1, &new, line_edit.map(|l| (key_line, l)))
                }
                _ => return Err(not_a_mapping(top_key, key_line + 1)),
            }
        }
    };
    verify(&out, &expected, name)?;
    Ok(Some(out))
}

/// Remove the entry `top_key.name`: its lines only. A `top_key` left with no
/// entries is written `top_key: {}`. `Ok(None)` when there was no such entry.
pub fn remove(text: &str, top_key: &str, name: &str) -> Result<Option<String>, EditError> {
    let doc = Doc::parse(text)?;
    if doc.entry(top_key, name)?.is_none() {
        return Ok(None);
    }
    let root = doc.block_root()?.expect("has the entry");
    let (key_at, top) = root.get(top_key).expect("has the entry");
    let Kind::Map { flow, entries } = &top.kind else {
        unreachable!("entry() checked the mapping")
    };
    if *flow {
        return Err(flow_refused(top_key, top.start));
    }
    let mut expected = doc.json.clone();
    if let Some(top_json) = expected[top_key].as_object_mut() {
        top_json.remove(name);
    }
    let ranges = doc.entry_ranges(top_key, root, entries)?;
    let i = entries.iter().position(|(k, _, _)| k == name).expect("has the entry");
    let (from, to) = ranges[i];
    let key_edit = if entries.len() == 1 {
        // The last one: `top_key: {}`, before any comment on the key's line.
        let key_line = doc.key_line(key_at)?;
        let line = doc.lines[key_line];
        let colon = key_end_colon(line, doc.key_col(key_at)).ok_or_else(|| {
            refused(
                key_line + 1,
                doc.key_col(key_at) + 1,
                "no `:` after the key on its line",
            )
        })?;
        let rest = &line[colon..];
        let content = rest
            .split(" #")
            .next()
            .unwrap_or("")
            .trim_end_matches(['\r', '\n'])
            .trim_end();
        let at = colon + content.len();
        Some((key_line, format!("{} {{}}{}", &line[..at], &line[at..])))
    } else {
        None
    };
    let out = doc.splice(from, to, "", key_edit);
    verify(&out, &expected, name)?;
    Ok(Some(out))
}

/// Whether `text` is exactly what [`upsert`] then [`remove`] make of an empty
/// file (`<top_key>: {}`), or empty.
pub fn is_fresh(text: &str, top_key: &str) -> bool {
    text.is_empty() || text == format!("{}: {{}}\n", plain_or_quoted(top_key))
}

/// The entry `top_key.name` as a JSON value, `Ok(None)` if absent.
pub fn get(text: &str, top_key: &str, name: &str) -> Result<Option<Value>, EditError> {
    Doc::parse(text)?.entry(top_key, name)
}

/// Names of the entries under `top_key` whose command ([`super::entry_command`])
/// satisfies `pred`, in file order (to find an entry the user renamed).
pub fn entries_with_command(text: &str, top_key: &str, pred: impl Fn(&str) -> bool) -> Result<Vec<String>, EditError> {
    let doc = Doc::parse(text)?;
    let Some(Kind::Map { entries, .. }) = doc.top(top_key)?.map(|n| &n.kind) else {
        return Ok(Vec::new());
    };
    Ok(entries
        .iter()
        .filter(|(_, _, value)| super::entry_command(&value.json).is_some_and(&pred))
        .map(|(key, _, _)| key.clone())
        .collect())
}

/// A parsed node: where it is, what it holds, and its JSON value.
#[derive(Debug)]
struct Node {
    start: Marker,
    end: Marker,
    kind: Kind,
    json: Value,
}

#[derive(Debug)]
enum Kind {
    Scalar,
    Seq,
    /// Keys with where each starts, and values, in file order.
    Map {
        flow: bool,
        entries: Vec<(String, Marker, Node)>,
    },
}

impl Node {
    fn get(&self, key: &str) -> Option<(Marker, &Node)> {
        match &self.kind {
            Kind::Map { entries, .. } => entries.iter().find(|(k, _, _)| k == key).map(|(_, at, v)| (*at, v)),
            _ => None,
        }
    }

    fn first_key_col(&self) -> Option<usize> {
        match &self.kind {
            Kind::Map { entries, .. } => entries.first().map(|(_, at, _)| at.col()),
            _ => None,
        }
    }
}

/// A parsed file, and how to write it back.
struct Doc<'t> {
    bom: bool,
    nl: &'static str,
    /// The lines without the BOM, each with its line break.
    lines: Vec<&'t str>,
    root: Option<Node>,
    /// The whole document as JSON (null when empty).
    json: Value,
}

impl<'t> Doc<'t> {
    fn parse(text: &'t str) -> Result<Doc<'t>, EditError> {
        let (bom, body) = match text.strip_prefix(BOM) {
            Some(body) => (true, body),
            None => (false, text),
        };
        let crlf = body.contains("\r\n") && !body.replace("\r\n", "").contains('\n');
        let mut reader = Reader {
            parser: Parser::new_from_str(body),
            anchors: HashMap::new(),
        };
        let mut root = None;
        let mut documents = 0;
        loop {
            let (event, span) = reader.next()?;
            match event {
                Event::StreamStart | Event::DocumentEnd => {}
                Event::StreamEnd => break,
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        return Err(refused(
                            span.start.line(),
                            span.start.col() + 1,
                            "more than one YAML document in the file",
                        ));
                    }
                }
                event => root = Some(reader.node(event, span, body)?),
            }
        }
        let root = root.filter(|r| !(matches!(r.kind, Kind::Scalar) && r.json.is_null()));
        if let Some(r) = &root
            && !matches!(r.kind, Kind::Map { .. })
        {
            return Err(refused(
                r.start.line(),
                r.start.col() + 1,
                "the file is not a YAML mapping",
            ));
        }
        let json = root.as_ref().map_or(Value::Null, |r| r.json.clone());
        Ok(Doc {
            bom,
            nl: if crlf { "\r\n" } else { "\n" },
            lines: body.split_inclusive('\n').collect(),
            root,
            json,
        })
    }

    /// The node under `top_key`, `None` when absent; anything but a mapping
    /// (or an empty value) is refused with its line.
    fn top(&self, top_key: &str) -> Result<Option<&Node>, EditError> {
        match self.root.as_ref().and_then(|r| r.get(top_key)) {
            None => Ok(None),
            Some((_, node)) if node.json.is_null() => Ok(None),
            Some((
                _,
                node @ Node {
                    kind: Kind::Map { .. }, ..
                },
            )) => Ok(Some(node)),
            Some((at, _)) => Err(not_a_mapping(top_key, at.line())),
        }
    }

    fn entry(&self, top_key: &str, name: &str) -> Result<Option<Value>, EditError> {
        Ok(self
            .top(top_key)?
            .and_then(|t| t.get(name))
            .map(|(_, v)| v.json.clone()))
    }

    /// The root mapping for an edit: a block one, or none (empty file).
    fn block_root(&self) -> Result<Option<&Node>, EditError> {
        match &self.root {
            Some(
                r @ Node {
                    kind: Kind::Map { flow: true, .. },
                    ..
                },
            ) => Err(flow_refused("the top level", r.start)),
            r => Ok(r.as_ref()),
        }
    }

    /// 0-based line of a marker.
    fn line_no(&self, m: Marker) -> usize {
        m.line().saturating_sub(1)
    }

    fn key_col(&self, m: Marker) -> usize {
        m.col()
    }

    /// The 0-based line of a block key, which must start its line.
    fn key_line(&self, m: Marker) -> Result<usize, EditError> {
        let line = self.line_no(m);
        let starts = self
            .lines
            .get(line)
            .is_some_and(|l| l.chars().take(m.col()).all(|c| c == ' '));
        if starts {
            Ok(line)
        } else {
            Err(refused(
                m.line(),
                m.col() + 1,
                "a key that does not start its line (write the mapping in block style, one key per line)",
            ))
        }
    }

    /// How far an entry's fields are indented from its key: as in the first
    /// sibling written in block style, else 2.
    fn field_indent(&self, entries: &[(String, Marker, Node)]) -> usize {
        entries
            .iter()
            .find_map(|(_, at, value)| match &value.kind {
                Kind::Map { flow: false, entries } => {
                    let first = entries.first()?.1;
                    (first.line() > at.line() && first.col() > at.col()).then(|| first.col() - at.col())
                }
                _ => None,
            })
            .unwrap_or(DEFAULT_INDENT)
    }

    /// The line ranges `[from, to)` of each entry of the block mapping under
    /// `top_key` (see the module doc).
    fn entry_ranges(
        &self,
        top_key: &str,
        root: &Node,
        entries: &[(String, Marker, Node)],
    ) -> Result<Vec<(usize, usize)>, EditError> {
        let Kind::Map {
            entries: root_entries, ..
        } = &root.kind
        else {
            unreachable!("the root is a mapping")
        };
        let after_top = root_entries
            .iter()
            .skip_while(|(k, _, _)| k != top_key)
            .nth(1)
            .map(|(_, at, _)| self.key_line(*at))
            .transpose()?
            .unwrap_or(self.lines.len());
        let starts = entries
            .iter()
            .map(|(_, at, _)| self.key_line(*at))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(starts
            .iter()
            .enumerate()
            .map(|(i, &from)| {
                let mut to = starts.get(i + 1).copied().unwrap_or(after_top);
                while to > from + 1 && is_filler(self.lines[to - 1]) {
                    to -= 1;
                }
                (from, to)
            })
            .collect())
    }

    /// The file with lines `[from, to)` replaced by `new` (and line `edit.0`
    /// replaced by `edit.1`), a line break added before `new` if the line
    /// before it has none.
    fn splice(&self, from: usize, to: usize, new: &str, edit: Option<(usize, String)>) -> String {
        let mut out = String::new();
        if self.bom {
            out.push(BOM);
        }
        let line = |i: usize| -> &str {
            match &edit {
                Some((at, text)) if *at == i => text,
                _ => self.lines[i],
            }
        };
        for i in 0..from {
            out.push_str(line(i));
        }
        if !new.is_empty() && !out.is_empty() && !out.ends_with('\n') && !out.ends_with(BOM) {
            out.push_str(self.nl);
        }
        out.push_str(new);
        for i in to..self.lines.len() {
            out.push_str(line(i));
        }
        out
    }
}

/// Blank, comment-only, or a document end marker.
fn is_filler(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#') || t == "..."
}

/// Byte offset of the `:` that ends the key starting at char `col` of `line`
/// (for a plain or quoted key without `:` inside a quoted part), plus one.
fn key_end_colon(line: &str, col: usize) -> Option<usize> {
    let start = byte_col(line, col);
    let rest = &line[start..];
    let key_len = match rest.chars().next()? {
        q @ ('"' | '\'') => {
            let mut escaped = false;
            let close = rest[1..].char_indices().find(|&(_, c)| {
                let end = c == q && !escaped;
                escaped = q == '"' && c == '\\' && !escaped;
                end
            })?;
            1 + close.0 + 1
        }
        _ => 0,
    };
    rest[key_len..].find(':').map(|i| start + key_len + i + 1)
}

/// The byte offset of char `col` in `line`.
fn byte_col(line: &str, col: usize) -> usize {
    line.char_indices().nth(col).map_or(line.len(), |(i, _)| i)
}

/// Reads events into [`Node`]s.
struct Reader<'t> {
    parser: Parser<'t, saphyr_parser::StrInput<'t>>,
    anchors: HashMap<usize, Value>,
}

impl<'t> Reader<'t> {
    fn next(&mut self) -> Result<(Event<'t>, Span), EditError> {
        match self.parser.next_event() {
            Some(Ok(e)) => Ok(e),
            Some(Err(e)) => Err(refused(e.marker().line(), e.marker().col() + 1, e.info())),
            None => Err(refused(0, 0, "unexpected end of the YAML stream")),
        }
    }

    fn node(&mut self, event: Event<'t>, span: Span, body: &str) -> Result<Node, EditError> {
        let at = |m: Marker, what: &str| refused(m.line(), m.col() + 1, what);
        let (node, anchor) = match event {
            Event::Scalar(value, style, anchor, tag) => {
                let is_str = tag
                    .as_ref()
                    .is_some_and(|t| t.is_yaml_core_schema() && t.suffix == "str");
                let json = if style == ScalarStyle::Plain && !is_str {
                    resolve(&value)
                } else {
                    Value::String(value.into_owned())
                };
                let node = Node {
                    start: span.start,
                    end: span.end,
                    kind: Kind::Scalar,
                    json,
                };
                (node, anchor)
            }
            Event::Alias(id) => {
                let json = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| at(span.start, "an alias of an unknown anchor"))?;
                let node = Node {
                    start: span.start,
                    end: span.end,
                    kind: Kind::Scalar,
                    json,
                };
                (node, 0)
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                let end = loop {
                    let (event, s) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        break s.end;
                    }
                    items.push(self.node(event, s, body)?.json);
                };
                let node = Node {
                    start: span.start,
                    end,
                    kind: Kind::Seq,
                    json: Value::Array(items),
                };
                (node, anchor)
            }
            Event::MappingStart(anchor, _) => {
                let flow = body.chars().nth(span.start.index()) == Some('{');
                let mut entries: Vec<(String, Marker, Node)> = Vec::new();
                let mut json = Map::new();
                let end = loop {
                    let (event, s) = self.next()?;
                    if matches!(event, Event::MappingEnd) {
                        break s.end;
                    }
                    let key = self.node(event, s, body)?;
                    let key_text = match (&key.kind, &key.json) {
                        (Kind::Scalar, Value::String(text)) => text.clone(),
                        (Kind::Scalar, other) => other.to_string(),
                        _ => return Err(at(key.start, "a complex key (a list or mapping as a key)")),
                    };
                    if json.contains_key(&key_text) {
                        return Err(at(key.start, &format!("duplicate key {key_text:?}")));
                    }
                    let (event, s) = self.next()?;
                    let value = self.node(event, s, body)?;
                    json.insert(key_text.clone(), value.json.clone());
                    entries.push((key_text, key.start, value));
                };
                let node = Node {
                    start: span.start,
                    end,
                    kind: Kind::Map { flow, entries },
                    json: Value::Object(json),
                };
                (node, anchor)
            }
            _ => return Err(at(span.start, "unexpected YAML event")),
        };
        if anchor > 0 {
            self.anchors.insert(anchor, node.json.clone());
        }
        Ok(node)
    }
}

/// A plain scalar's value under YAML 1.2's core schema.
fn resolve(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = text.parse::<i64>() {
            return Value::from(i);
        }
        if let Ok(u) = text.trim_start_matches('+').parse::<u64>() {
            return Value::from(u);
        }
    }
    for (prefix, radix) in [("0x", 16), ("0o", 8)] {
        if let Some(digits) = text.strip_prefix(prefix)
            && let Ok(u) = u64::from_str_radix(digits, radix)
            && !digits.starts_with(['+', '-'])
        {
            return Value::from(u);
        }
    }
    if is_core_float(unsigned)
        && let Ok(f) = text.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(text.to_owned())
}

/// `( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn is_core_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

/// The block text of entry `name`: its key at `indent`, each field a line
/// further in by `field_indent`.
fn entry_text(name: &str, fields: &Map<String, Value>, indent: usize, field_indent: usize, nl: &str) -> String {
    let pad = " ".repeat(indent);
    if fields.is_empty() {
        return format!("{pad}{}: {{}}{nl}", plain_or_quoted(name));
    }
    let mut out = format!("{pad}{}:{nl}", plain_or_quoted(name));
    let inner = " ".repeat(indent + field_indent);
    let mut ordered: Vec<_> = fields.iter().collect();
    ordered.sort_by_key(|(k, _)| FIELD_ORDER.iter().position(|f| f == k).unwrap_or(FIELD_ORDER.len()));
    for (key, value) in ordered {
        out.push_str(&format!("{inner}{}: {}{nl}", plain_or_quoted(key), flow(value)));
    }
    out
}

/// A value in flow style: JSON-like, strings plain where safe.
fn flow(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => plain_or_quoted(s),
        Value::Array(items) => format!("[{}]", items.iter().map(flow).collect::<Vec<_>>().join(", ")),
        Value::Object(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(k, v)| format!("{}: {}", quoted(k), flow(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `s` plain when it can only be read back as that string (in block or flow
/// context, by YAML 1.1 readers too), else double-quoted.
fn plain_or_quoted(s: &str) -> String {
    let first_ok = s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '/');
    let rest_ok = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    const WORDS: [&str; 9] = ["null", "true", "false", "yes", "no", "on", "off", "y", "n"];
    if first_ok && rest_ok && !WORDS.iter().any(|w| w.eq_ignore_ascii_case(s)) {
        s.to_owned()
    } else {
        quoted(s)
    }
}

/// A double-quoted YAML string: escapes for `"`, `\`, and every character YAML
/// does not allow raw or a reader could take for a line break.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20
                || ('\u{7f}'..='\u{9f}').contains(&c)
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}') =>
            {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The self-check: `out` parses and reads as `expected`.
fn verify(out: &str, expected: &Value, name: &str) -> Result<(), EditError> {
    let reread = Doc::parse(out).map(|d| d.json);
    if reread.as_ref() == Ok(expected) {
        Ok(())
    } else {
        Err(unrepresentable(
            name,
            "the edited file would not read back as intended, so it was left as it is",
        ))
    }
}

fn refused(line: usize, column: usize, message: &str) -> EditError {
    EditError::Parse {
        line,
        column,
        message: message.to_owned(),
    }
}

fn flow_refused(what: &str, at: Marker) -> EditError {
    refused(
        at.line(),
        at.col() + 1,
        &format!("{what} is a flow-style mapping ({{…}}), which is not edited here: write it in block style"),
    )
}

fn not_a_mapping(key: &str, line: usize) -> EditError {
    EditError::NotAnObject {
        key: key.to_owned(),
        line,
    }
}

fn unrepresentable(key: &str, reason: &str) -> EditError {
    EditError::Unrepresentable {
        key: key.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TOP: &str = "extensions";
    const NAME: &str = "mcp-bridge";
    const CONFIG: &str = include_str!("../../../tests/fixtures/ide/goose-config.yaml");
    const NO_EXTENSIONS: &str = include_str!("../../../tests/fixtures/ide/goose-no-extensions.yaml");

    /// The shape of `install goose`'s entry.
    fn entry() -> Value {
        json!({
            "enabled": true, "type": "stdio", "name": "mcp-bridge", "description": "",
            "cmd": "/opt/mcp bridge/bin/mcp-bridge", "args": ["serve"], "envs": {}, "timeout": 300,
        })
    }

    const BLOCK: &str = concat!(
        "  mcp-bridge:\n",
        "    enabled: true\n",
        "    type: stdio\n",
        "    name: mcp-bridge\n",
        "    description: \"\"\n",
        "    cmd: \"/opt/mcp bridge/bin/mcp-bridge\"\n",
        "    args: [serve]\n",
        "    envs: {}\n",
        "    timeout: 300\n",
    );

    fn upserted(text: &str) -> String {
        upsert(text, TOP, NAME, &entry()).unwrap().unwrap()
    }

    /// The entry goes after the last extension, everything else keeps its
    /// bytes, a second upsert writes nothing, and remove gives back the original.
    #[test]
    fn upsert_keeps_the_file_and_remove_restores_it() {
        let new = upserted(CONFIG);
        let (head, tail) = CONFIG.split_once("\n# the end").unwrap();
        assert_eq!(new, format!("{head}{BLOCK}\n# the end{tail}"));
        assert_eq!(get(&new, TOP, NAME), Ok(Some(entry())));
        assert_eq!(upsert(&new, TOP, NAME, &entry()), Ok(None));
        assert_eq!(remove(&new, TOP, NAME), Ok(Some(CONFIG.to_owned())));
        assert_eq!(remove(CONFIG, TOP, NAME), Ok(None));
        // The others read as Goose wrote them.
        assert_eq!(
            get(&new, TOP, "memory"),
            Ok(Some(
                json!({"type": "builtin", "name": "memory", "enabled": true, "timeout": 300})
            ))
        );
        assert_eq!(
            get(&new, TOP, "developer").unwrap().unwrap()["description"],
            Value::Null
        );
    }

    /// No `extensions` yet: it is added at the end; once empty it stays as `{}`.
    #[test]
    fn a_file_without_extensions_gets_them() {
        let new = upserted(NO_EXTENSIONS);
        assert_eq!(new, format!("{NO_EXTENSIONS}extensions:\n{BLOCK}"));
        let back = remove(&new, TOP, NAME).unwrap().unwrap();
        assert_eq!(back, format!("{NO_EXTENSIONS}extensions: {{}}\n"));
        // …and upsert into that gives the same entry lines again.
        assert_eq!(upserted(&back), new);

        // An empty file: the minimal one, and back to what is_fresh knows.
        let new = upserted("");
        assert_eq!(new, format!("extensions:\n{BLOCK}"));
        let back = remove(&new, TOP, NAME).unwrap().unwrap();
        assert_eq!(back, "extensions: {}\n");
        assert!(is_fresh(&back, TOP));
        assert!(is_fresh("", TOP));
        assert!(!is_fresh(NO_EXTENSIONS, TOP));
        // A last line without its break gets one.
        assert_eq!(
            upserted("GOOSE_MODEL: o3"),
            format!("GOOSE_MODEL: o3\nextensions:\n{BLOCK}")
        );
    }

    /// `extensions: {}` (with a comment, an anchor) and a null `extensions:`.
    #[test]
    fn empty_extensions_in_every_form() {
        for text in [
            "extensions: {}\n",
            "GOOSE_MODEL: o3\nextensions: {}   # none yet\nX: 1\n",
            "extensions: &ext {}\n",
            "extensions: {  }\n",
        ] {
            let new = upserted(text);
            assert_eq!(get(&new, TOP, NAME), Ok(Some(entry())), "{text:?} -> {new}");
            let back = remove(&new, TOP, NAME).unwrap().unwrap();
            assert_eq!(get(&back, TOP, NAME), Ok(None));
            if text != "extensions: {  }\n" {
                assert_eq!(back, text, "{new}");
            }
        }
        let text = "extensions:\nGOOSE_MODEL: o3\n";
        let new = upserted(text);
        assert_eq!(new, format!("extensions:\n{BLOCK}GOOSE_MODEL: o3\n"));
        assert_eq!(
            remove(&new, TOP, NAME),
            Ok(Some("extensions: {}\nGOOSE_MODEL: o3\n".to_owned()))
        );
        let text = "extensions: ~ # later\n";
        let new = upserted(text);
        assert_eq!(new, format!("extensions: # later\n{BLOCK}"));
    }

    /// CRLF files get CRLF lines, a BOM stays; round trips are exact.
    #[test]
    fn crlf_and_bom_are_kept() {
        let crlf = CONFIG.replace('\n', "\r\n");
        let new = upserted(&crlf);
        assert!(!new.replace("\r\n", "").contains('\n'), "{new:?}");
        assert!(new.contains(&BLOCK.replace('\n', "\r\n")), "{new:?}");
        assert_eq!(remove(&new, TOP, NAME), Ok(Some(crlf.clone())));

        let bom = format!("{BOM}{NO_EXTENSIONS}");
        let new = upserted(&bom);
        assert!(new.starts_with(BOM));
        assert_eq!(get(&new, TOP, NAME), Ok(Some(entry())));
        let back = remove(&new, TOP, NAME).unwrap().unwrap();
        assert_eq!(back, format!("{bom}extensions: {{}}\n"));
    }

    /// An existing entry's lines are replaced, at its indentation; the comment
    /// above it and its neighbours stay. Removing a middle entry takes only its lines.
    #[test]
    fn update_and_remove_touch_only_the_entry() {
        let mut e = entry();
        e["name"] = json!("github");
        let new = upsert(CONFIG, TOP, "github", &e).unwrap().unwrap();
        let start = CONFIG.find("  github:\n").unwrap();
        let end = CONFIG.find("\n  memory:").unwrap();
        let block = BLOCK
            .replace("  mcp-bridge:", "  github:")
            .replace("name: mcp-bridge", "name: github");
        assert_eq!(new, format!("{}{block}{}", &CONFIG[..start], &CONFIG[end..]));
        assert_eq!(upsert(&new, TOP, "github", &e), Ok(None));

        let gone = remove(CONFIG, TOP, "github").unwrap().unwrap();
        assert_eq!(gone, format!("{}{}", &CONFIG[..start], &CONFIG[end..]));
        assert!(gone.contains("  # GitHub, through its own server\n\n  memory:"));
        // A flow-style entry is replaced whole, like any other.
        let new = upsert(CONFIG, TOP, "memory", &entry()).unwrap().unwrap();
        assert!(!new.contains("memory: {"), "{new}");
        assert_eq!(get(&new, TOP, "memory"), Ok(Some(entry())));

        // Entries indented by 4 get a sibling indented by 4, fields by 4 more.
        let text = "extensions:\n    a:\n        cmd: x\n        args: []\n";
        let new = upserted(text);
        assert!(new.contains("\n    mcp-bridge:\n        enabled: true\n"), "{new}");
        assert_eq!(remove(&new, TOP, NAME), Ok(Some(text.to_owned())));
    }

    /// Keys and values that YAML could read as something else are quoted;
    /// whatever they hold reads back.
    #[test]
    fn odd_names_and_values_read_back() {
        let e = json!({
            "cmd": "C:\\Program Files\\mcp-bridge.exe",
            "args": ["--config", "a: b # c", "yes", "", "-1", "1.5", "\"q\"", "ünï", "a\nb\u{2028}c\u{0}"],
            "envs": {"K": "v", "odd key: #": {"nested": [1, null, true, 2.5]}},
            "timeout": 300,
        });
        for name in ["my bridge", "true", "123", "a:b", "#x", "'x'", "ü"] {
            let new = upsert(CONFIG, TOP, name, &e).unwrap().unwrap();
            assert_eq!(get(&new, TOP, name), Ok(Some(e.clone())), "{name}: {new}");
            assert_eq!(upsert(&new, TOP, name, &e), Ok(None));
            assert_eq!(remove(&new, TOP, name), Ok(Some(CONFIG.to_owned())));
        }
        assert_eq!(plain_or_quoted("no"), "\"no\"");
        assert_eq!(plain_or_quoted("/usr/bin/mcp-bridge"), "/usr/bin/mcp-bridge");
        assert_eq!(quoted("a\"\\\u{85}"), "\"a\\\"\\\\\\u0085\"");
    }

    /// Plain scalars follow the core schema; quoted ones are strings; aliases resolve.
    #[test]
    fn values_of_every_kind_read_back() {
        let text = concat!(
            "base: &b {cmd: mcp-bridge, args: [serve]}\n",
            "extensions:\n",
            "  a:\n",
            "    v: [~, null, true, False, 12, -3, 0x1F, 0o17, 1.5, .5, 1e3, .inf, '1', \"true\", !!str 7, x y]\n",
            "  b: *b\n",
            "  c:\n",
            "    command: [npx, -y, x]\n",
        );
        assert_eq!(
            get(text, TOP, "a"),
            Ok(Some(
                json!({"v": [null, null, true, false, 12, -3, 31, 15, 1.5, 0.5, 1000.0, ".inf", "1", "true", "7", "x y"]})
            ))
        );
        assert_eq!(
            get(text, TOP, "b"),
            Ok(Some(json!({"cmd": "mcp-bridge", "args": ["serve"]})))
        );
        assert_eq!(
            entries_with_command(text, TOP, crate::install::is_bridge_command),
            Ok(vec!["b".to_owned()])
        );
        assert_eq!(
            entries_with_command(text, TOP, |c| c == "npx"),
            Ok(vec!["c".to_owned()])
        );
        assert_eq!(
            entries_with_command(CONFIG, TOP, |c| c == "npx"),
            Ok(vec!["github".to_owned()])
        );
        assert_eq!(entries_with_command(NO_EXTENSIONS, TOP, |_| true), Ok(vec![]));
        // Anchors elsewhere are kept; an edit that would break an alias is refused.
        let new = upserted(text);
        assert!(new.starts_with("base: &b {cmd: mcp-bridge, args: [serve]}\n"));
        assert_eq!(remove(&new, TOP, NAME), Ok(Some(text.to_owned())));
        let aliased = "extensions:\n  a: &a {cmd: x}\n  b: {cmd: y}\nother: *a\n";
        assert!(matches!(
            remove(aliased, TOP, "a"),
            Err(EditError::Unrepresentable { .. })
        ));
        assert!(remove(aliased, TOP, "b").is_ok());
    }

    /// What cannot be edited safely is refused with where it is, and the
    /// text is never changed.
    #[test]
    fn bad_input_is_refused() {
        let bad = "GOOSE_MODEL: o3\nextensions:\n  a: [x\n";
        assert!(
            matches!(get(bad, TOP, NAME), Err(EditError::Parse { line: 4, .. })),
            "{:?}",
            get(bad, TOP, NAME)
        );
        assert!(matches!(upsert(bad, TOP, NAME, &entry()), Err(EditError::Parse { .. })));
        assert!(matches!(remove(bad, TOP, NAME), Err(EditError::Parse { .. })));
        // Tabs as indentation are not YAML.
        let tabs = "extensions:\n\ta:\n\t\tcmd: x\n";
        assert!(matches!(
            upsert(tabs, TOP, NAME, &entry()),
            Err(EditError::Parse { line: 2, .. })
        ));

        let not_map = "GOOSE_MODEL: o3\n\nextensions: [a]\n";
        let expected = || EditError::NotAnObject {
            key: TOP.into(),
            line: 3,
        };
        assert_eq!(upsert(not_map, TOP, NAME, &entry()), Err(expected()));
        assert_eq!(remove(not_map, TOP, NAME), Err(expected()));
        assert_eq!(get(not_map, TOP, NAME), Err(expected()));
        assert_eq!(entries_with_command(not_map, TOP, |_| true), Err(expected()));

        // Flow-style mappings are read but not edited.
        let flow = "extensions: {a: {cmd: x}, mcp-bridge: {cmd: y}}\n";
        assert_eq!(get(flow, TOP, "a"), Ok(Some(json!({"cmd": "x"}))));
        for result in [upsert(flow, TOP, NAME, &entry()), remove(flow, TOP, NAME)] {
            assert!(
                matches!(&result, Err(EditError::Parse { line: 1, column: 13, message }) if message.contains("block style")),
                "{result:?}"
            );
        }
        let root_flow = "{GOOSE_MODEL: o3}\n";
        assert!(matches!(
            upsert(root_flow, TOP, NAME, &entry()),
            Err(EditError::Parse { line: 1, .. })
        ));

        for (text, line) in [
            ("a: 1\n---\nb: 2\n", 2),
            ("extensions:\n  a: {}\n  a: {}\n", 3),
            ("? [a]\n: 1\n", 1),
            ("- a\n- b\n", 1),
        ] {
            let result = upsert(text, TOP, NAME, &entry());
            assert!(
                matches!(result, Err(EditError::Parse { line: l, .. }) if l == line),
                "{text:?}: {result:?}"
            );
        }
        assert!(matches!(
            upsert("", TOP, NAME, &json!("x")),
            Err(EditError::Unrepresentable { .. })
        ));
    }

    /// No prefix of a fixture makes anything panic, and whatever `upsert` or
    /// `remove` returns parses and says what was asked.
    #[test]
    fn no_input_panics() {
        let check = |text: &str| {
            if let Ok(Some(new)) = upsert(text, TOP, NAME, &entry()) {
                assert_eq!(get(&new, TOP, NAME), Ok(Some(entry())), "{text:?} -> {new:?}");
                assert_eq!(upsert(&new, TOP, NAME, &entry()), Ok(None), "{text:?}");
            }
            if let Ok(Some(new)) = remove(text, TOP, NAME) {
                assert_eq!(get(&new, TOP, NAME), Ok(None), "{text:?} -> {new:?}");
            }
            let _ = remove(text, TOP, "github");
            let _ = entries_with_command(text, TOP, |_| true);
        };
        for text in [CONFIG.to_owned(), upserted(CONFIG), NO_EXTENSIONS.to_owned()] {
            for (i, _) in text.char_indices() {
                check(&text[..i]);
            }
        }
    }
}
