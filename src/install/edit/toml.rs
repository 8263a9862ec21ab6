//! Edits of TOML files, as text (Codex's `config.toml`).
//!
//! The servers are the tables `[<top_key>.<name>]`, as in Codex's
//! `[mcp_servers.<name>]` with its `[mcp_servers.<name>.env]`. Edits go through
//! toml_edit's document, which keeps what it does not touch byte for byte:
//! comments, key order, whitespace, quoting, other tables (`[profiles.x]`), and
//! an entry written inline (`mcp_servers = { … }`, `name = { … }`) stays inline.
//! CRLF files get CRLF lines; a UTF-8 BOM stays.
//!
//! Entries come in and go out as JSON values: strings, booleans, integers,
//! floats, arrays and objects map to their TOML kinds; `null` has none and is
//! refused, as is an integer beyond `i64`. A date-time reads as its text. A new
//! entry is a standard table `[<top_key>.<name>]` (its key quoted only when it
//! must be) whose object fields are sub-tables (`[…​.env]`, as Codex's docs
//! show); objects deeper down are inline tables. A new entry goes after the
//! last table already under `top_key` (or at the end of the file), before any
//! comments that end the file.
//!
//! Everything here is pure: text in, text out. A file that does not parse is an
//! [`EditError`], never repaired; the caller leaves it untouched.
//!
//! `upsert` followed by `remove` gives back the original bytes: a `top_key` that
//! `upsert` created holds nothing afterwards and is left out, so an empty file
//! comes back empty (which [`is_fresh`] says). Exceptions: a last line without
//! its line break gets one (toml_edit ends every line it writes), and an
//! existing entry that was updated cannot be restored (`remove` cannot know
//! what it held before).

use serde_json::{Map, Value};
use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, TableLike};

use super::{EditError, ordered};

const BOM: char = '\u{feff}';

/// Insert or replace `[top_key.name] = entry`, keeping everything else byte for
/// byte. `top_key` is created if missing (as an implicit table: only
/// `[top_key.name]` headers are written). Returns `Ok(None)` when the entry
/// already equals `entry` (JSON value equality, ignoring formatting).
///
/// An existing entry is updated field by field, so comments and field order
/// inside it survive and a diff shows only the fields that changed.
pub fn upsert(text: &str, top_key: &str, name: &str, entry: &Value) -> Result<Option<String>, EditError> {
    let Value::Object(fields) = entry else {
        return Err(unrepresentable(name, "an entry must be an object"));
    };
    let mut doc = Doc::parse(text)?;
    if doc.entry(top_key, name)?.as_ref() == Some(entry) {
        return Ok(None);
    }
    let root = doc.doc.as_table_mut();
    if !root.contains_key(top_key) {
        let mut top = Table::new();
        top.set_implicit(true);
        root.insert(top_key, Item::Table(top));
    }
    // Checked by `doc.entry` above: the top is table-like.
    let top_item = root.get_mut(top_key).expect("top key just ensured");
    let inline_top = top_item.is_inline_table();
    let top = top_item.as_table_like_mut().ok_or_else(|| not_a_table(top_key, 1))?;
    match top.get_mut(name) {
        Some(item) if item.is_table_like() => update(item, fields)?,
        // Absent, or not a table: written whole.
        _ => {
            top.remove(name);
            let item = if inline_top {
                Item::Value(to_value(entry, name)?)
            } else {
                Item::Table(to_table(fields, true)?)
            };
            append(top, inline_top, name, item);
        }
    }
    Ok(Some(doc.render()))
}

/// Remove `[top_key.name]` only (with its sub-tables). A `top_key` left with
/// nothing in it goes too when it had no header of its own (`upsert` created
/// it, or the file only had `[top_key.<name>]` headers); an explicit
/// `[top_key]` stays. `Ok(None)` when there was no such entry.
pub fn remove(text: &str, top_key: &str, name: &str) -> Result<Option<String>, EditError> {
    let mut doc = Doc::parse(text)?;
    if doc.top(top_key)?.is_none_or(|top| top.get(name).is_none()) {
        return Ok(None);
    }
    let root = doc.doc.as_table_mut();
    let Some(top_item) = root.get_mut(top_key) else {
        return Ok(None);
    };
    let inline = top_item.is_inline_table();
    let top = top_item.as_table_like_mut().expect("checked table-like");
    let last = top.iter().last().is_some_and(|(k, _)| k == name);
    let removed = top.remove(name);
    if inline && last {
        // The space before `}` was after the removed value: it moves back.
        let suffix = removed.as_ref().and_then(|i| i.as_value()?.decor().suffix().cloned());
        if let (Some(suffix), Some((_, now_last))) = (suffix, top.iter_mut().last())
            && let Some(v) = now_last.as_value_mut()
        {
            v.decor_mut().set_suffix(suffix);
        }
    }
    let leave_out = top.is_empty() && top_item.as_table().is_some_and(|t| t.is_implicit() || t.is_dotted());
    if leave_out {
        root.remove(top_key);
    }
    Ok(Some(doc.render()))
}

/// Whether `text` is exactly what [`upsert`] writes into an empty file, minus
/// the entry: nothing at all (the implicit `top_key` is left out).
pub fn is_fresh(text: &str, _top_key: &str) -> bool {
    text.is_empty()
}

/// The entry `[top_key.name]` as a JSON value, `Ok(None)` if absent.
pub fn get(text: &str, top_key: &str, name: &str) -> Result<Option<Value>, EditError> {
    Doc::parse(text)?.entry(top_key, name)
}

/// Names of the entries under `top_key` whose command ([`super::entry_command`])
/// satisfies `pred`, in file order (to find an entry the user renamed).
pub fn entries_with_command(text: &str, top_key: &str, pred: impl Fn(&str) -> bool) -> Result<Vec<String>, EditError> {
    let doc = Doc::parse(text)?;
    let Some(top) = doc.top(top_key)? else {
        return Ok(Vec::new());
    };
    Ok(top
        .iter()
        .filter(|(_, item)| {
            item_json(item)
                .as_ref()
                .and_then(super::entry_command)
                .is_some_and(&pred)
        })
        .map(|(name, _)| name.to_owned())
        .collect())
}

/// A parsed file, and how to write it back.
struct Doc {
    doc: DocumentMut,
    bom: bool,
    /// Every line break in the file is `\r\n`: new lines get one too.
    crlf: bool,
    /// Line of each top-level key, for errors (spans are lost once mutable).
    top_lines: Vec<(String, usize)>,
}

impl Doc {
    /// Parses `text` without its BOM, so that error columns on line 1 are those
    /// an editor shows.
    fn parse(text: &str) -> Result<Doc, EditError> {
        let (bom, body) = match text.strip_prefix(BOM) {
            Some(body) => (true, body),
            None => (false, text),
        };
        let parsed = toml_edit::Document::parse(body).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            let (line, column) = line_column(body, at);
            EditError::Parse {
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        })?;
        let top_lines = parsed
            .iter()
            .filter_map(|(key, _)| {
                let span = parsed.key(key)?.span()?;
                Some((key.to_owned(), line_column(body, span.start).0))
            })
            .collect();
        let crlf = body.contains("\r\n") && !body.replace("\r\n", "").contains('\n');
        Ok(Doc {
            doc: parsed.into_mut(),
            bom,
            crlf,
            top_lines,
        })
    }

    /// The table under `top_key`, `None` when absent; anything but a table is
    /// refused with its line.
    fn top(&self, top_key: &str) -> Result<Option<&dyn TableLike>, EditError> {
        match self.doc.get(top_key) {
            None => Ok(None),
            Some(item) => match item.as_table_like() {
                Some(table) => Ok(Some(table)),
                None => {
                    let line = self.top_lines.iter().find(|(k, _)| k == top_key).map_or(1, |(_, l)| *l);
                    Err(not_a_table(top_key, line))
                }
            },
        }
    }

    fn entry(&self, top_key: &str, name: &str) -> Result<Option<Value>, EditError> {
        Ok(self.top(top_key)?.and_then(|top| top.get(name)).and_then(item_json))
    }

    fn render(&self) -> String {
        let mut body = self.doc.to_string();
        if self.crlf {
            // Every break the file had was `\r\n`, so a lone `\n` is one of ours.
            body = body.replace("\r\n", "\n").replace('\n', "\r\n");
        }
        if self.bom { format!("{BOM}{body}") } else { body }
    }
}

/// 1-based line and column (in characters) of byte `at` in `text`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

fn not_a_table(key: &str, line: usize) -> EditError {
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

/// Sets the table-like `item` to `fields`: fields that differ are replaced
/// (keeping the comment after a value), fields not wanted go, new fields go
/// last; an object field of a table is updated the same way.
fn update(item: &mut Item, fields: &Map<String, Value>) -> Result<(), EditError> {
    let standard = item.is_table();
    let table = item.as_table_like_mut().expect("checked table-like");
    let unwanted: Vec<String> = table
        .iter()
        .map(|(k, _)| k.to_owned())
        .filter(|k| !fields.contains_key(k))
        .collect();
    for k in unwanted {
        table.remove(&k);
    }
    for (name, value) in ordered(fields) {
        match table.get_mut(name) {
            Some(old) if item_json(old).as_ref() == Some(value) => {}
            Some(old) if old.is_table_like() && value.is_object() => {
                let Value::Object(inner) = value else { unreachable!() };
                update(old, inner)?;
            }
            Some(old) => {
                let mut new = to_value(value, name)?;
                if let Some(decor) = old.as_value().map(|v| v.decor().clone()) {
                    *new.decor_mut() = decor;
                }
                *old = Item::Value(new);
            }
            None => {
                let new = match value {
                    Value::Object(inner) if standard => Item::Table(to_table(inner, false)?),
                    _ => Item::Value(to_value(value, name)?),
                };
                append(table, !standard, name, new);
            }
        }
    }
    Ok(())
}

/// Adds `name = item` last. In an inline table the space before its `}`,
/// which the last value holds, moves to the new last value.
fn append(table: &mut dyn TableLike, inline: bool, name: &str, mut item: Item) {
    if inline
        && let Some((_, last)) = table.iter_mut().last()
        && let Some(last) = last.as_value_mut()
    {
        let suffix = last.decor().suffix().cloned();
        last.decor_mut().set_suffix("");
        if let (Some(suffix), Some(new)) = (suffix, item.as_value_mut()) {
            new.decor_mut().set_suffix(suffix);
        }
    }
    table.insert(name, item);
}

/// A standard table of `fields`; with `sub_tables`, its object fields are
/// standard tables too (one level), deeper ones inline.
fn to_table(fields: &Map<String, Value>, sub_tables: bool) -> Result<Table, EditError> {
    let mut table = Table::new();
    for (name, value) in ordered(fields) {
        let item = match value {
            Value::Object(inner) if sub_tables => Item::Table(to_table(inner, false)?),
            _ => Item::Value(to_value(value, name)?),
        };
        table.insert(name, item);
    }
    Ok(table)
}

/// A JSON value as a TOML value (objects inline); `key` names it in errors.
fn to_value(value: &Value, key: &str) -> Result<toml_edit::Value, EditError> {
    Ok(match value {
        Value::Null => return Err(unrepresentable(key, "TOML has no null")),
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.into(),
            (None, Some(f)) if !n.is_u64() => f.into(),
            _ => return Err(unrepresentable(key, "integer out of TOML's range")),
        },
        Value::String(s) => s.as_str().into(),
        Value::Array(items) => {
            let mut array = Array::new();
            for item in items {
                array.push(to_value(item, key)?);
            }
            toml_edit::Value::Array(array)
        }
        Value::Object(fields) => {
            let mut table = InlineTable::new();
            for (name, value) in ordered(fields) {
                table.insert(name, to_value(value, name)?);
            }
            toml_edit::Value::InlineTable(table)
        }
    })
}

/// An item as a JSON value; `None` for a removed one.
fn item_json(item: &Item) -> Option<Value> {
    match item {
        Item::None => None,
        Item::Value(v) => Some(value_json(v)),
        Item::Table(t) => Some(table_json(t)),
        Item::ArrayOfTables(a) => Some(Value::Array(a.iter().map(|t| table_json(t)).collect())),
    }
}

fn table_json(table: &dyn TableLike) -> Value {
    Value::Object(
        table
            .iter()
            .filter_map(|(k, item)| Some((k.to_owned(), item_json(item)?)))
            .collect(),
    )
}

fn value_json(value: &toml_edit::Value) -> Value {
    use toml_edit::Value as T;
    match value {
        T::String(s) => Value::String(s.value().clone()),
        T::Integer(i) => Value::from(*i.value()),
        // NaN and infinities have no JSON form: their TOML text.
        T::Float(f) => {
            serde_json::Number::from_f64(*f.value()).map_or_else(|| Value::String(f.value().to_string()), Value::Number)
        }
        T::Boolean(b) => Value::Bool(*b.value()),
        T::Datetime(d) => Value::String(d.value().to_string()),
        T::Array(a) => Value::Array(a.iter().map(value_json).collect()),
        T::InlineTable(t) => Value::Object(t.iter().map(|(k, v)| (k.to_owned(), value_json(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TOP: &str = "mcp_servers";
    const NAME: &str = "mcp-bridge";
    const CONFIG: &str = include_str!("../../../tests/fixtures/ide/codex-config.toml");
    const NO_SERVERS: &str = include_str!("../../../tests/fixtures/ide/codex-no-servers.toml");

    /// The entry `install codex` writes (no `env` when it would be empty).
    fn entry() -> Value {
        json!({"command": "/opt/mcp bridge/bin/mcp-bridge", "args": ["serve"], "startup_timeout_sec": 30})
    }

    const TABLE: &str = concat!(
        "[mcp_servers.mcp-bridge]\n",
        "command = \"/opt/mcp bridge/bin/mcp-bridge\"\n",
        "args = [\"serve\"]\n",
        "startup_timeout_sec = 30\n",
    );

    fn upserted(text: &str) -> String {
        upsert(text, TOP, NAME, &entry()).unwrap().unwrap()
    }

    /// The table goes after the last server, everything else keeps its bytes,
    /// a second upsert writes nothing, and remove gives back the original.
    #[test]
    fn upsert_keeps_the_file_and_remove_restores_it() {
        let new = upserted(CONFIG);
        let (head, tail) = CONFIG.split_once("[projects.").unwrap();
        assert_eq!(new, format!("{head}{TABLE}\n[projects.{tail}"));
        assert_eq!(get(&new, TOP, NAME), Ok(Some(entry())));
        assert_eq!(upsert(&new, TOP, NAME, &entry()), Ok(None));
        assert_eq!(remove(&new, TOP, NAME), Ok(Some(CONFIG.to_owned())));
        assert_eq!(remove(CONFIG, TOP, NAME), Ok(None));

        // No servers yet: an implicit `mcp_servers`, the table at the end.
        let new = upserted(NO_SERVERS);
        assert_eq!(new, format!("{NO_SERVERS}\n{TABLE}"));
        assert_eq!(remove(&new, TOP, NAME), Ok(Some(NO_SERVERS.to_owned())));
    }

    /// `env` is a sub-table, as Codex's docs show; the key is quoted only when
    /// it must be.
    #[test]
    fn env_is_a_sub_table_and_odd_names_are_quoted() {
        let mut e = entry();
        e["env"] = json!({"MCP_BRIDGE_HOME": "/home/ann/.bridge"});
        let new = upsert("", TOP, "my bridge", &e).unwrap().unwrap();
        assert_eq!(
            new,
            concat!(
                "[mcp_servers.\"my bridge\"]\n",
                "command = \"/opt/mcp bridge/bin/mcp-bridge\"\n",
                "args = [\"serve\"]\n",
                "startup_timeout_sec = 30\n",
                "\n",
                "[mcp_servers.\"my bridge\".env]\n",
                "MCP_BRIDGE_HOME = \"/home/ann/.bridge\"\n",
            )
        );
        assert_eq!(get(&new, TOP, "my bridge"), Ok(Some(e.clone())));
        assert_eq!(upsert(&new, TOP, "my bridge", &e), Ok(None));
        let back = remove(&new, TOP, "my bridge").unwrap().unwrap();
        assert_eq!(back, "");
        assert!(is_fresh(&back, TOP));
        assert!(!is_fresh(NO_SERVERS, TOP));
        assert!(!is_fresh("\n", TOP));
    }

    /// CRLF files get CRLF lines, a BOM stays; round trips are exact.
    #[test]
    fn crlf_and_bom_are_kept() {
        let crlf = CONFIG.replace('\n', "\r\n");
        let new = upserted(&crlf);
        assert!(!new.replace("\r\n", "").contains('\n'), "{new:?}");
        assert!(new.contains(&TABLE.replace('\n', "\r\n")), "{new:?}");
        assert_eq!(remove(&new, TOP, NAME), Ok(Some(crlf.clone())));

        let bom = format!("{BOM}{NO_SERVERS}");
        let new = upserted(&bom);
        assert!(new.starts_with(BOM));
        assert_eq!(get(&new, TOP, NAME), Ok(Some(entry())));
        assert_eq!(remove(&new, TOP, NAME), Ok(Some(bom)));
    }

    /// An existing entry is updated field by field: its comments stay, fields
    /// not wanted go, the env sub-table is updated in place.
    #[test]
    fn upsert_updates_an_existing_entry_in_place() {
        let old = concat!(
            "model = \"o3\"\n",
            "\n",
            "# the bridge\n",
            "[mcp_servers.mcp-bridge]\n",
            "command = \"/old/mcp-bridge\" # moved since\n",
            "args = [\"serve\"]\n",
            "enabled = true\n",
            "startup_timeout_sec = 30\n",
            "\n",
            "[mcp_servers.mcp-bridge.env]\n",
            "MCP_BRIDGE_HOME = \"/old\" # keep me\n",
        );
        let mut e = entry();
        e["env"] = json!({"MCP_BRIDGE_HOME": "/new"});
        let new = upsert(old, TOP, NAME, &e).unwrap().unwrap();
        assert_eq!(
            new,
            concat!(
                "model = \"o3\"\n",
                "\n",
                "# the bridge\n",
                "[mcp_servers.mcp-bridge]\n",
                "command = \"/opt/mcp bridge/bin/mcp-bridge\" # moved since\n",
                "args = [\"serve\"]\n",
                "startup_timeout_sec = 30\n",
                "\n",
                "[mcp_servers.mcp-bridge.env]\n",
                "MCP_BRIDGE_HOME = \"/new\" # keep me\n",
            )
        );
        assert_eq!(upsert(&new, TOP, NAME, &e), Ok(None));
        // Without env: the sub-table goes.
        let new = upsert(&new, TOP, NAME, &entry()).unwrap().unwrap();
        assert!(!new.contains("env"), "{new}");
        assert_eq!(get(&new, TOP, NAME), Ok(Some(entry())));
    }

    /// Inline layouts stay inline: an inline `mcp_servers`, an inline entry.
    #[test]
    fn inline_tables_stay_inline() {
        let text = "mcp_servers = { other = { command = \"x\" } }\n";
        let new = upserted(text);
        assert!(
            new.starts_with("mcp_servers = { other = { command = \"x\" }, mcp-bridge = {"),
            "{new}"
        );
        assert_eq!(get(&new, TOP, NAME), Ok(Some(entry())));
        assert_eq!(get(&new, TOP, "other"), Ok(Some(json!({"command": "x"}))));
        assert_eq!(upsert(&new, TOP, NAME, &entry()), Ok(None));
        assert_eq!(remove(&new, TOP, NAME), Ok(Some(text.to_owned())));

        let text = "[mcp_servers]\nmcp-bridge = { command = \"/old\", args = [\"serve\"] } # mine\n";
        let new = upserted(text);
        assert!(
            new.starts_with("[mcp_servers]\nmcp-bridge = { command = \"/opt"),
            "{new}"
        );
        assert!(new.ends_with("} # mine\n"), "{new}");
        assert_eq!(get(&new, TOP, NAME), Ok(Some(entry())));
        // An explicit `[mcp_servers]` stays when its last entry goes.
        assert_eq!(remove(&new, TOP, NAME), Ok(Some("[mcp_servers]\n".into())));
    }

    /// Dotted keys and values of every kind read back as JSON.
    #[test]
    fn values_of_every_kind_read_back() {
        let text = concat!(
            "mcp_servers.a.command = \"x\"\n",
            "mcp_servers.a.args = [1, 2.5, true, 1979-05-27T07:32:00Z]\n",
            "[mcp_servers.b]\n",
            "command = 'mcp-bridge'\n",
            "env = { K = \"v\" }\n",
        );
        assert_eq!(
            get(text, TOP, "a"),
            Ok(Some(
                json!({"command": "x", "args": [1, 2.5, true, "1979-05-27T07:32:00Z"]})
            ))
        );
        assert_eq!(
            entries_with_command(text, TOP, crate::install::is_bridge_command),
            Ok(vec!["b".to_owned()])
        );
        assert_eq!(
            entries_with_command(text, TOP, |_| true),
            Ok(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            entries_with_command(CONFIG, TOP, |c| c == "npx"),
            Ok(vec!["github".into()])
        );
        assert_eq!(
            get(CONFIG, TOP, "docs site"),
            Ok(Some(json!({"url": "https://docs.example.com/mcp"})))
        );
        let new = upserted(text);
        assert_eq!(get(&new, TOP, "a"), get(text, TOP, "a"));
        assert_eq!(remove(&new, TOP, NAME), Ok(Some(text.to_owned())));
    }

    /// Upsert then remove gives back the bytes of other layouts too; where the
    /// table lands in each is pinned.
    #[test]
    fn round_trips_of_other_layouts() {
        let cases = [
            // (file, what upsert makes of it)
            ("", TABLE.to_owned()),
            ("model = \"o3\"", format!("model = \"o3\"\n\n{TABLE}")),
            ("# only a comment\n", format!("{TABLE}# only a comment\n")),
            (
                "model = \"o3\"\n\n# the end\n",
                format!("model = \"o3\"\n\n{TABLE}\n# the end\n"),
            ),
            ("[mcp_servers]\n", format!("[mcp_servers]\n\n{TABLE}")),
            (
                "[mcp_servers.a]\ncommand = \"x\"\n[other]\nk = 1\n",
                format!("[mcp_servers.a]\ncommand = \"x\"\n\n{TABLE}[other]\nk = 1\n"),
            ),
            (
                "[mcp_servers.a]\ncommand = \"x\"\n\t\n",
                format!("[mcp_servers.a]\ncommand = \"x\"\n\n{TABLE}\t\n"),
            ),
        ];
        for (text, expected) in cases {
            let new = upserted(text);
            assert_eq!(new, expected, "{text:?}");
            // The one normalisation: a last line without its line break gets one.
            let back = if text.is_empty() || text.ends_with('\n') {
                text.to_owned()
            } else {
                format!("{text}\n")
            };
            assert_eq!(remove(&new, TOP, NAME), Ok(Some(back)), "{text:?}");
        }
    }

    /// A file that does not parse, a `mcp_servers` that is not a table, and a
    /// null are refused with where they are.
    #[test]
    fn bad_input_is_refused() {
        let bad = "model = \"o3\"\n[mcp_servers.x]\ncommand = \n";
        assert!(
            matches!(get(bad, TOP, NAME), Err(EditError::Parse { line: 3, .. })),
            "{:?}",
            get(bad, TOP, NAME)
        );
        assert!(matches!(
            upsert(bad, TOP, NAME, &entry()),
            Err(EditError::Parse { line: 3, .. })
        ));
        assert!(matches!(remove(bad, TOP, NAME), Err(EditError::Parse { .. })));
        // A repeated table is an error in TOML.
        let twice = "[mcp_servers.a]\ncommand = \"x\"\n[mcp_servers.a]\ncommand = \"y\"\n";
        assert!(matches!(get(twice, TOP, "a"), Err(EditError::Parse { line: 3, .. })));

        let not_table = "model = \"o3\"\n\nmcp_servers = [\"x\"]\n";
        let expected = || EditError::NotAnObject {
            key: TOP.into(),
            line: 3,
        };
        assert_eq!(upsert(not_table, TOP, NAME, &entry()), Err(expected()));
        assert_eq!(remove(not_table, TOP, NAME), Err(expected()));
        assert_eq!(get(not_table, TOP, NAME), Err(expected()));
        assert_eq!(entries_with_command(not_table, TOP, |_| true), Err(expected()));

        let mut null = entry();
        null["env"] = json!({"X": null});
        assert!(matches!(
            upsert("", TOP, NAME, &null),
            Err(EditError::Unrepresentable { ref key, .. }) if key == "X"
        ));
        assert!(matches!(
            upsert("", TOP, NAME, &json!({"n": u64::MAX})),
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
            let _ = entries_with_command(text, TOP, |_| true);
        };
        for text in [CONFIG.to_owned(), upserted(CONFIG), NO_SERVERS.to_owned()] {
            for (i, _) in text.char_indices() {
                check(&text[..i]);
            }
        }
    }
}
