//! Edits of JSON and JSONC files, as text.
//!
//! The files look like `{ "<top_key>": { "<name>": <entry>, … }, … }` and are JSON,
//! or JSONC in VS Code. Edits go through jsonc-parser's concrete syntax tree, so
//! whatever is outside the entry keeps its bytes: other entries and keys, their
//! order, comments, trailing commas, indentation, CRLF endings and a UTF-8 BOM.
//! Inserted lines follow the file's indentation, line endings and trailing-comma
//! style, and nothing adds comments, so a strict-JSON file stays strict JSON.
//!
//! Everything here is pure: text in, text out. A file that does not parse is an
//! [`EditError`], never repaired; the caller leaves it untouched.
//!
//! `upsert` followed by `remove` gives back the original bytes, except in these
//! layouts, which jsonc-parser normalises (values stay the same; each is pinned
//! by a test):
//! - a file without `top_key` keeps the `"<top_key>": {}` that `upsert` added
//!   (`remove` cannot know who created it, and an empty object is what every
//!   client accepts: Claude Code rejects a `.mcp.json` without `mcpServers`);
//!   an empty file, or one holding only `{}`, comes back as the [`is_fresh`]
//!   document, which the caller deletes (it holds nothing but what `upsert`
//!   wrote into it);
//! - an object that receives a key (`top_key`, or the root when `top_key` is
//!   created) and is written on one line with keys in it is spread over several
//!   lines, one key per line;
//! - that object loses blank lines just inside its braces, and whitespace inside
//!   an empty `{ }`.
//!
//! Lines added to an object written on one line are indented by nesting depth
//! (two spaces a level unless the file shows its indent), so `{"mcpServers": {}}`
//! becomes `{"mcpServers": {`, the indented entry, then `  }}`: valid, if odd.

use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstContainerNode, CstInputValue, CstNode, CstObject, CstObjectProp, CstRootNode};
use serde_json::Value;

use super::{EditError, ordered};

const BOM: char = '\u{feff}';

/// Insert or replace `text[top_key][name] = entry`, keeping everything else byte-for-byte
/// where possible: other entries, unknown keys, key order, comments, trailing commas,
/// indentation style, CRLF line endings, a UTF-8 BOM. `top_key` is created if missing;
/// an empty or whitespace-only text becomes a fresh minimal document (2-space indent, "\n"
/// endings, trailing newline). Returns `Ok(None)` when the entry already equals `entry`
/// (JSON value equality, ignoring formatting) so the caller writes nothing.
///
/// An existing object entry is updated field by field, so comments and field order
/// inside it survive and a diff shows only the fields that changed.
pub fn upsert(text: &str, top_key: &str, name: &str, entry: &Value) -> Result<Option<String>, EditError> {
    let bom_len = if text.starts_with(BOM) { BOM.len_utf8() } else { 0 };
    let blank = text[bom_len..].chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
    let doc = Doc::parse(if blank { &text[..bom_len] } else { text })?;
    let root = match doc.root_object()? {
        Some(root) => root,
        // Nothing but comments: the object goes after them.
        None => doc.root.object_value_or_set(),
    };
    let top = match last_prop(&root, top_key) {
        Some(prop) => object_of(top_key, &prop)?,
        None => root
            .append(top_key, CstInputValue::Object(Vec::new()))
            .object_value_or_set(),
    };
    match last_prop(&top, name) {
        Some(prop) if value_of(&prop).as_ref() == Some(entry) => return Ok(None),
        Some(prop) => update(&prop, entry),
        None => {
            top.append(name, entry_input(entry));
        }
    }
    Ok(Some(doc.render(doc.root.to_string())))
}

/// Remove `text[top_key][name]` only; `top_key` stays, an empty object if that was
/// its last entry (`{}` without it is rejected by Claude Code: "mcpServers:
/// expected record"). `Ok(None)` when there was no such entry. Repeated `name`
/// keys are all removed.
///
/// When the result [`is_fresh`], it holds nothing but what [`upsert`] wrote into
/// an empty file: the caller may delete the file instead.
pub fn remove(text: &str, top_key: &str, name: &str) -> Result<Option<String>, EditError> {
    let doc = Doc::parse(text)?;
    let Some(top) = doc.top_object(top_key)? else {
        return Ok(None);
    };
    let doomed: Vec<CstObjectProp> = top
        .properties()
        .into_iter()
        .filter(|prop| prop.decoded_name().as_deref() == Some(name))
        .collect();
    if doomed.is_empty() {
        return Ok(None);
    }
    for prop in doomed {
        prop.remove();
    }
    Ok(Some(doc.render(doc.root.to_string())))
}

/// Whether `text` is exactly what [`upsert`] writes into an empty file, minus
/// the entry: `{"<top_key>": {}}` in its layout (2-space indent, `\n`, no BOM).
/// Nothing anyone else wrote is in such a file.
pub fn is_fresh(text: &str, top_key: &str) -> bool {
    minimal_document(top_key).is_some_and(|minimal| text == minimal)
}

/// The current `text[top_key][name]` as a plain value, `Ok(None)` if absent (for `doctor`/idempotency).
///
/// With repeated keys the last one counts, as in JSON parsers.
pub fn get(text: &str, top_key: &str, name: &str) -> Result<Option<Value>, EditError> {
    let doc = Doc::parse(text)?;
    let Some(top) = doc.top_object(top_key)? else {
        return Ok(None);
    };
    Ok(last_prop(&top, name).and_then(|prop| value_of(&prop)))
}

/// Names of all entries under `text[top_key]` whose value has a `command` string for which `pred` is true
/// (to find an entry the user renamed).
///
/// Names come in file order, each once.
pub fn entries_with_command(text: &str, top_key: &str, pred: impl Fn(&str) -> bool) -> Result<Vec<String>, EditError> {
    let doc = Doc::parse(text)?;
    let Some(top) = doc.top_object(top_key)? else {
        return Ok(Vec::new());
    };
    // Values as JSON parsers see them (last repeated key wins); names in file order.
    let Some(Value::Object(entries)) = top.to_serde_value() else {
        return Ok(Vec::new());
    };
    let mut names: Vec<String> = Vec::new();
    for name in top.properties().iter().filter_map(|p| p.decoded_name()) {
        let command = entries.get(&name).and_then(super::entry_command);
        if !names.contains(&name) && command.is_some_and(&pred) {
            names.push(name);
        }
    }
    Ok(names)
}

/// JSONC as VS Code reads it: comments and trailing commas, nothing looser.
/// (jsonc-parser's defaults would also accept missing commas, single quotes, …)
fn parse_options() -> ParseOptions {
    ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    }
}

/// A parsed file.
///
/// Nodes taken from `root` hold only weak links to their parents, so `root` must
/// outlive them (jsonc-parser panics otherwise): keep the `Doc` in scope while
/// editing.
struct Doc {
    bom: bool,
    root: CstRootNode,
}

impl Doc {
    /// Parses `text` without its BOM, so that error columns on line 1 are those
    /// an editor shows.
    fn parse(text: &str) -> Result<Doc, EditError> {
        let (bom, body) = match text.strip_prefix(BOM) {
            Some(body) => (true, body),
            None => (false, text),
        };
        let root = CstRootNode::parse(body, &parse_options()).map_err(|e| EditError::Parse {
            line: e.line_display(),
            column: e.column_display(),
            message: e.kind().to_string(),
        })?;
        Ok(Doc { bom, root })
    }

    /// `body` with the BOM put back if the file had one.
    fn render(&self, body: String) -> String {
        if self.bom { format!("{BOM}{body}") } else { body }
    }

    /// The root object; `None` when the file holds no value (only whitespace or comments).
    fn root_object(&self) -> Result<Option<CstObject>, EditError> {
        match self.root.value() {
            None => Ok(None),
            Some(CstNode::Container(CstContainerNode::Object(object))) => Ok(Some(object)),
            Some(other) => Err(not_an_object("(root)", &other)),
        }
    }

    /// `root[top_key]`; `None` when absent.
    fn top_object(&self, top_key: &str) -> Result<Option<CstObject>, EditError> {
        let Some(root) = self.root_object()? else {
            return Ok(None);
        };
        last_prop(&root, top_key)
            .map(|prop| object_of(top_key, &prop))
            .transpose()
    }
}

/// The property `name` of `object`; the last one if the key is repeated, since
/// that is the one JSON parsers keep.
fn last_prop(object: &CstObject, name: &str) -> Option<CstObjectProp> {
    object
        .properties()
        .into_iter()
        .rev()
        .find(|prop| prop.decoded_name().as_deref() == Some(name))
}

fn value_of(prop: &CstObjectProp) -> Option<Value> {
    prop.value()?.to_serde_value()
}

/// The value of `prop` (named `key`) if it is an object.
fn object_of(key: &str, prop: &CstObjectProp) -> Result<CstObject, EditError> {
    match prop.value() {
        Some(CstNode::Container(CstContainerNode::Object(object))) => Ok(object),
        Some(other) => Err(not_an_object(key, &other)),
        None => Err(not_an_object(key, &prop.clone().into())),
    }
}

fn not_an_object(key: &str, node: &CstNode) -> EditError {
    EditError::NotAnObject {
        key: key.to_string(),
        line: line_of(node),
    }
}

/// 1-based line on which `node` starts (line breaks as jsonc-parser counts them:
/// `\n`, `\r\n`, or a lone `\r`).
fn line_of(node: &CstNode) -> usize {
    let mut breaks = 0;
    let mut current = Some(node.clone());
    while let Some(node) = current {
        for before in node.previous_siblings() {
            let text = before.to_string();
            breaks += text.matches('\n').count() + text.matches('\r').count() - text.matches("\r\n").count();
        }
        current = node.parent().map(CstNode::from);
    }
    breaks + 1
}

/// Sets `prop` to `entry`. When both are objects only the fields that differ are
/// touched: other fields (and their comments) keep their text and order, new
/// fields go last, fields not in `entry` go.
fn update(prop: &CstObjectProp, entry: &Value) {
    let (Some(object), Value::Object(fields)) = (prop.object_value(), entry) else {
        prop.set_value(entry_input(entry));
        return;
    };
    let props = object.properties();
    for (i, field) in props.iter().enumerate() {
        let name = field.decoded_name();
        let wanted = name.as_ref().is_some_and(|n| fields.contains_key(n));
        let repeated_later = props[i + 1..].iter().any(|p| p.decoded_name() == name);
        if !wanted || repeated_later {
            field.clone().remove();
        }
    }
    for (name, value) in ordered(fields) {
        match last_prop(&object, name) {
            Some(field) if value_of(&field).as_ref() == Some(value) => {}
            Some(field) => field.set_value(input(value)),
            None => {
                object.append(name, input(value));
            }
        }
    }
}

/// An entry as jsonc-parser input, its own fields in [`super::ENTRY_FIELD_ORDER`].
fn entry_input(entry: &Value) -> CstInputValue {
    match entry {
        Value::Object(fields) => CstInputValue::Object(
            ordered(fields)
                .into_iter()
                .map(|(name, value)| (name.clone(), input(value)))
                .collect(),
        ),
        other => input(other),
    }
}

fn input(value: &Value) -> CstInputValue {
    match value {
        Value::Null => CstInputValue::Null,
        Value::Bool(b) => CstInputValue::Bool(*b),
        Value::Number(n) => CstInputValue::Number(n.to_string()),
        Value::String(s) => CstInputValue::String(s.clone()),
        Value::Array(items) => CstInputValue::Array(items.iter().map(input).collect()),
        Value::Object(fields) => CstInputValue::Object(
            fields
                .iter()
                .map(|(name, value)| (name.clone(), input(value)))
                .collect(),
        ),
    }
}

/// What [`upsert`] makes of an empty text, without the entry: `{"<top_key>": {}}`
/// laid out by jsonc-parser.
fn minimal_document(top_key: &str) -> Option<String> {
    let root = CstRootNode::parse("", &parse_options()).ok()?;
    root.object_value_or_set()
        .append(top_key, CstInputValue::Object(Vec::new()));
    Some(root.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::edit::diff;
    use serde_json::json;

    const BIN: &str = "/opt/mcp bridge/bin/mcp-bridge";
    const NAME: &str = "mcp-bridge";

    /// One fixture edited under one top key.
    struct Case {
        file: &'static str,
        text: &'static str,
        top_key: &'static str,
        /// The file is strict JSON (after its BOM) and must stay so.
        strict: bool,
        /// One level of the file's indentation.
        indent: &'static str,
        /// What `remove` gives back after `upsert`; `None` means the original bytes.
        after_remove: Option<String>,
    }

    macro_rules! fixture {
        ($file:literal) => {
            (
                $file,
                include_str!(concat!("../../../tests/fixtures/ide/", $file)),
            )
        };
    }

    fn cases() -> Vec<Case> {
        let case = |(file, text): (&'static str, &'static str), top_key, strict, indent| Case {
            file,
            text,
            top_key,
            strict,
            indent,
            after_remove: None,
        };
        vec![
            case(fixture!("cursor-with-comments.json"), "mcpServers", false, "  "),
            case(fixture!("vscode-mcp.jsonc"), "servers", false, "    "),
            {
                // `mcpServers` is not VS Code's key; it is created, and stays.
                let c = case(fixture!("vscode-mcp.jsonc"), "mcpServers", false, "    ");
                let kept = c.text.strip_suffix("\n}\n").unwrap();
                Case {
                    after_remove: Some(format!("{kept},\n    \"mcpServers\": {{}}\n}}\n")),
                    ..c
                }
            },
            case(fixture!("claude-desktop-crlf.json"), "mcpServers", true, "  "),
            case(fixture!("windsurf-tabs.json"), "mcpServers", true, "\t"),
            case(fixture!("claude-code.json"), "mcpServers", true, "  "),
            Case {
                after_remove: Some("{\n  \"mcpServers\": {}\n}\n".into()),
                ..case(fixture!("empty.json"), "mcpServers", true, "  ")
            },
            Case {
                after_remove: Some("{\n   \"theme\":   \"dark\",\n   \"mcpServers\": {}\n}\n".into()),
                ..case(fixture!("no-top-key.json"), "mcpServers", true, "   ")
            },
        ]
    }

    /// The entry the installer writes for `top_key`.
    fn entry(top_key: &str) -> Value {
        if top_key == "servers" {
            json!({"type": "stdio", "command": BIN, "args": ["serve"], "env": {}})
        } else {
            json!({"command": BIN, "args": ["serve"], "env": {}})
        }
    }

    fn upserted(case: &Case) -> String {
        upsert(case.text, case.top_key, NAME, &entry(case.top_key))
            .unwrap_or_else(|e| panic!("{}: {e}", case.file))
            .unwrap_or_else(|| panic!("{}: upsert wrote nothing", case.file))
    }

    /// The whole document as a value (`{}` for an empty file).
    fn value(text: &str) -> Value {
        let doc = Doc::parse(text).unwrap();
        doc.root
            .value()
            .and_then(|v| v.to_serde_value())
            .unwrap_or_else(|| json!({}))
    }

    /// Every comment in `text`, in order.
    fn comments(text: &str) -> Vec<String> {
        fn walk(node: CstNode, out: &mut Vec<String>) {
            match node {
                CstNode::Leaf(jsonc_parser::cst::CstLeafNode::Comment(c)) => out.push(c.raw_value()),
                CstNode::Leaf(_) => {}
                CstNode::Container(c) => c.children().into_iter().for_each(|n| walk(n, out)),
            }
        }
        let doc = Doc::parse(text).unwrap();
        let mut out = Vec::new();
        walk(CstNode::Container(doc.root.clone().into()), &mut out);
        out
    }

    /// Upsert adds exactly the entry: the document's value is the old one plus the
    /// entry, comments are all still there, and line endings, BOM, strictness and
    /// indentation follow the file.
    #[test]
    fn upsert_adds_only_the_entry_in_the_files_style() {
        for case in cases() {
            let file = case.file;
            let new = upserted(&case);

            let mut expected = value(case.text);
            expected[case.top_key][NAME] = entry(case.top_key);
            assert_eq!(value(&new), expected, "{file}");
            assert_eq!(comments(&new), comments(case.text), "{file}");

            assert_eq!(new.starts_with(BOM), case.text.starts_with(BOM), "{file}");
            if case.text.contains("\r\n") {
                assert_eq!(new.matches('\n').count(), new.matches("\r\n").count(), "{file}");
            } else {
                assert!(!new.contains('\r'), "{file}");
            }
            if case.strict {
                let strict: Value = serde_json::from_str(new.trim_start_matches(BOM))
                    .unwrap_or_else(|e| panic!("{file} is no longer strict JSON: {e}\n{new}"));
                assert_eq!(strict, expected, "{file}");
            }

            let lines: Vec<&str> = new.lines().collect();
            let at = lines
                .iter()
                .position(|l| l.trim_start().starts_with("\"mcp-bridge\": {"))
                .unwrap_or_else(|| panic!("{file}: no entry line\n{new}"));
            let level = |n: usize| case.indent.repeat(n);
            assert_eq!(lines[at], format!("{}\"mcp-bridge\": {{", level(2)), "{file}");
            let command = format!("{}\"command\": {},", level(3), json!(BIN));
            assert!(lines[at + 1..].contains(&command.as_str()), "{file}\n{new}");
            let close = format!("{}}}", level(2));
            assert!(
                lines[at + 1..].iter().any(|l| l.trim_end_matches(',') == close),
                "{file}"
            );
        }
    }

    /// A second upsert of the same entry writes nothing.
    #[test]
    fn upsert_twice_is_a_no_op() {
        for case in cases() {
            let new = upserted(&case);
            assert_eq!(
                upsert(&new, case.top_key, NAME, &entry(case.top_key)),
                Ok(None),
                "{}",
                case.file
            );
        }
    }

    /// Upsert then remove gives back the original bytes; the exceptions are the
    /// files that had no `top_key` (see the module doc), pinned exactly.
    #[test]
    fn upsert_then_remove_restores_the_file() {
        for case in cases() {
            let new = upserted(&case);
            let back = remove(&new, case.top_key, NAME).unwrap().unwrap();
            assert_eq!(back, case.after_remove.as_deref().unwrap_or(case.text), "{}", case.file);
        }
    }

    /// `get` sees what upsert wrote, and nothing in the untouched fixtures.
    #[test]
    fn get_reads_the_entry() {
        for case in cases() {
            assert_eq!(get(case.text, case.top_key, NAME), Ok(None), "{}", case.file);
            let new = upserted(&case);
            assert_eq!(
                get(&new, case.top_key, NAME),
                Ok(Some(entry(case.top_key))),
                "{}",
                case.file
            );
        }
    }

    /// Removing an entry that is not there writes nothing.
    #[test]
    fn remove_absent_entry_is_a_no_op() {
        for case in cases() {
            assert_eq!(remove(case.text, case.top_key, NAME), Ok(None), "{}", case.file);
        }
    }

    /// A file that does not parse is refused by every function, with the line and
    /// column where the parser stopped (here: right after `"npx"`, where the comma
    /// belongs) and no file contents.
    #[test]
    fn parse_errors_point_at_the_problem() {
        let (_, text) = fixture!("corrupt.json");
        let expected = || EditError::Parse {
            line: 4,
            column: 23,
            message: "Expected comma".into(),
        };
        let top = "mcpServers";
        assert_eq!(upsert(text, top, NAME, &entry(top)).unwrap_err(), expected());
        assert_eq!(remove(text, top, NAME).unwrap_err(), expected());
        assert_eq!(get(text, top, NAME).unwrap_err(), expected());
        assert_eq!(entries_with_command(text, top, |_| true).unwrap_err(), expected());
        assert_eq!(
            get(text, top, NAME).unwrap_err().to_string(),
            "line 4, column 23: Expected comma"
        );

        let secret = r#"{"a": 1 "token": "s3cret"}"#;
        let err = get(secret, top, NAME).unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    /// A BOM is not a column: errors on line 1 are where an editor shows them.
    #[test]
    fn bom_does_not_shift_error_columns() {
        let plain = r#"{"a": 1 "b": 2}"#;
        let with_bom = format!("{BOM}{plain}");
        let err = get(plain, "mcpServers", NAME).unwrap_err();
        assert_eq!(get(&with_bom, "mcpServers", NAME).unwrap_err(), err);
        assert!(matches!(err, EditError::Parse { line: 1, column: 8, .. }), "{err:?}");
    }

    /// Only the laxness VS Code allows (comments, trailing commas) parses; a missing
    /// comma or single quotes, which jsonc-parser would accept by default, do not.
    #[test]
    fn only_comments_and_trailing_commas_are_tolerated() {
        assert_eq!(get("// c\n{\"a\": {\"b\": 1,},}", "a", "b"), Ok(Some(json!(1))));
        for bad in [
            r#"{"a": 1 "b": 2}"#,
            "{'a': 1}",
            "{a: 1}",
            r#"{"a": 0x1}"#,
            r#"{"a": NaN}"#,
        ] {
            assert!(matches!(get(bad, "a", NAME), Err(EditError::Parse { .. })), "{bad}");
        }
    }

    /// The root and `top_key` must be objects; anything else is refused with the
    /// line of the offending value.
    #[test]
    fn non_objects_are_refused() {
        let (_, array) = fixture!("root-array.json");
        let root = || EditError::NotAnObject {
            key: "(root)".into(),
            line: 1,
        };
        let top = "mcpServers";
        assert_eq!(upsert(array, top, NAME, &entry(top)).unwrap_err(), root());
        assert_eq!(remove(array, top, NAME).unwrap_err(), root());
        assert_eq!(get(array, top, NAME).unwrap_err(), root());
        assert_eq!(entries_with_command(array, top, |_| true).unwrap_err(), root());
        assert_eq!(
            get(array, top, NAME).unwrap_err().to_string(),
            "(root) is not an object (line 1)"
        );
        assert_eq!(
            get("\n\n\"x\"", top, NAME),
            Err(EditError::NotAnObject {
                key: "(root)".into(),
                line: 3
            })
        );

        let crlf = "{\r\n  // servers\r\n  \"mcpServers\":\r\n    [],\r\n}\r\n";
        let not_object = || EditError::NotAnObject {
            key: top.into(),
            line: 4,
        };
        assert_eq!(upsert(crlf, top, NAME, &entry(top)).unwrap_err(), not_object());
        assert_eq!(remove(crlf, top, NAME).unwrap_err(), not_object());
        assert_eq!(get(crlf, top, NAME).unwrap_err(), not_object());
        assert_eq!(entries_with_command(crlf, top, |_| true).unwrap_err(), not_object());
        assert!(matches!(
            upsert(r#"{"mcpServers": null}"#, top, NAME, &entry(top)),
            Err(EditError::NotAnObject { line: 1, .. })
        ));
    }

    /// A file holding only comments gets the object after them.
    #[test]
    fn comment_only_file_gets_an_object() {
        let text = "// managed by hand\n";
        let new = upsert(text, "mcpServers", NAME, &entry("mcpServers")).unwrap().unwrap();
        assert!(new.starts_with(text), "{new}");
        assert_eq!(get(&new, "mcpServers", NAME), Ok(Some(entry("mcpServers"))));
        assert_eq!(get(text, "mcpServers", NAME), Ok(None));
        assert_eq!(remove(text, "mcpServers", NAME), Ok(None));
    }

    /// An entry the user renamed is found by its command; entries without a
    /// `command` string are skipped.
    #[test]
    fn entries_with_command_finds_renamed_entries() {
        for case in cases() {
            let renamed = upserted(&case).replace("\"mcp-bridge\": {", "\"my bridge\": {");
            assert_eq!(
                entries_with_command(&renamed, case.top_key, |c| c == BIN),
                Ok(vec!["my bridge".to_string()]),
                "{}",
                case.file
            );
            assert_eq!(entries_with_command(case.text, case.top_key, |c| c == BIN), Ok(vec![]));
        }
        let (_, cursor) = fixture!("cursor-with-comments.json");
        assert_eq!(
            entries_with_command(cursor, "mcpServers", |c| c == "npx"),
            Ok(vec!["github".into()])
        );
        assert_eq!(entries_with_command(cursor, "servers", |_| true), Ok(vec![]));
        let odd = r#"{"s": {"a": 1, "b": {"command": 2}, "c": {"command": "x"}, "a": {"command": "y"}}}"#;
        assert_eq!(
            entries_with_command(odd, "s", |_| true),
            Ok(vec!["a".into(), "c".into()])
        );
    }

    /// `--dry-run` shows a unified diff with 3 lines of context, `+` for the
    /// entry, no `\r`, and nothing at all when the text is unchanged.
    #[test]
    fn diff_shows_the_added_lines() {
        let case = &cases()[0];
        let new = upserted(case);
        let expected = concat!(
            "--- ~/.cursor/mcp.json\n",
            "+++ ~/.cursor/mcp.json\n",
            "@@ -12,5 +12,10 @@\n",
            "     \"linear\": {\n",
            "       \"url\": \"https://mcp.linear.app/sse\" // remote, OAuth in the browser\n",
            "     },\n",
            "+    \"mcp-bridge\": {\n",
            "+      \"command\": \"/opt/mcp bridge/bin/mcp-bridge\",\n",
            "+      \"args\": [\"serve\"],\n",
            "+      \"env\": {},\n",
            "+    },\n",
            "   }\n",
            " }\n",
        );
        assert_eq!(diff("~/.cursor/mcp.json", case.text, &new), expected);
        assert_eq!(diff("~/.cursor/mcp.json", case.text, case.text), "");

        for case in cases() {
            let new = upserted(&case);
            let shown = diff(case.file, case.text, &new);
            assert!(!shown.contains('\r'), "{}", case.file);
            let entry_line = format!("+{}\"mcp-bridge\": {{", case.indent.repeat(2));
            assert!(shown.lines().any(|l| l == entry_line), "{shown}");
            // At most the line that gains a comma (or `{}` that opens up) is removed.
            let removed = shown.lines().skip(2).filter(|l| l.starts_with('-')).count();
            assert!(removed <= 1, "{shown}");
        }
    }

    /// An existing entry is updated field by field: a comment inside it stays,
    /// fields not in the new entry go, and a second upsert writes nothing.
    #[test]
    fn upsert_updates_an_existing_entry_in_place() {
        let old = concat!(
            "{\n",
            "  \"mcpServers\": {\n",
            "    \"mcp-bridge\": {\n",
            "      // installed by mcp-bridge 0.1\n",
            "      \"command\": \"/old/mcp-bridge\",\n",
            "      \"args\": [\"serve\"],\n",
            "      \"env\": {\"MCP_BRIDGE_CONFIG\": \"/etc/b.toml\"},\n",
            "      \"disabled\": false\n",
            "    },\n",
            "    \"other\": {\"command\": \"x\"}\n",
            "  }\n",
            "}\n",
        );
        let new = upsert(old, "mcpServers", NAME, &entry("mcpServers")).unwrap().unwrap();
        let expected = concat!(
            "{\n",
            "  \"mcpServers\": {\n",
            "    \"mcp-bridge\": {\n",
            "      // installed by mcp-bridge 0.1\n",
            "      \"command\": \"/opt/mcp bridge/bin/mcp-bridge\",\n",
            "      \"args\": [\"serve\"],\n",
            "      \"env\": {}\n",
            "    },\n",
            "    \"other\": {\"command\": \"x\"}\n",
            "  }\n",
            "}\n",
        );
        assert_eq!(new, expected);
        assert_eq!(upsert(&new, "mcpServers", NAME, &entry("mcpServers")), Ok(None));

        // VS Code adds `type`: it goes last, the rest stays put.
        let vscode = upsert(&new, "mcpServers", NAME, &entry("servers")).unwrap().unwrap();
        assert!(
            vscode.contains("\"env\": {},\n      \"type\": \"stdio\"\n    },"),
            "{vscode}"
        );
        assert_eq!(get(&vscode, "mcpServers", NAME), Ok(Some(entry("servers"))));

        // Not an object: replaced whole.
        let scalar = r#"{"mcpServers": {"mcp-bridge": "oops"}}"#;
        let fixed = upsert(scalar, "mcpServers", NAME, &entry("mcpServers"))
            .unwrap()
            .unwrap();
        assert_eq!(get(&fixed, "mcpServers", NAME), Ok(Some(entry("mcpServers"))));
    }

    /// With a repeated name the last one is the entry (as JSON parsers see it):
    /// `get` and `upsert` use it, `remove` removes every copy.
    #[test]
    fn repeated_names_follow_json_parsers() {
        let text = r#"{"mcpServers": {"mcp-bridge": {"command": "a"}, "mcp-bridge": {"command": "b"}}}"#;
        assert_eq!(get(text, "mcpServers", NAME), Ok(Some(json!({"command": "b"}))));
        let new = upsert(text, "mcpServers", NAME, &entry("mcpServers")).unwrap().unwrap();
        assert!(new.contains(r#""mcp-bridge": {"command": "a"}"#), "{new}");
        assert_eq!(get(&new, "mcpServers", NAME), Ok(Some(entry("mcpServers"))));
        let gone = remove(&new, "mcpServers", NAME).unwrap().unwrap();
        assert_eq!(get(&gone, "mcpServers", NAME), Ok(None));
        assert_eq!(value(&gone), json!({"mcpServers": {}}));
    }

    /// Upsert then remove on layouts beyond the fixtures: the ones that round-trip
    /// byte for byte, and the ones jsonc-parser normalises (listed in the module
    /// doc), pinned exactly.
    #[test]
    fn round_trips_of_other_layouts() {
        let top = "mcpServers";
        let exact = [
            r#"{"mcpServers": {}}"#,
            "{\n  \"mcpServers\": {\n    // none yet\n  }\n}\n",
            "{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\"}\n    // \"b\": {} disabled\n  }\n}\n",
            "{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\"}, // note\n  }\n}\n",
            "{\n  \"mcpServers\": {\n    \"a\": 1 /* c */\n  }\n}",
            "{\r\n\t\"mcpServers\": {\r\n\t\t\"a\": 1,\r\n\t},\r\n}",
            // Exactly what upsert makes of an empty file, minus the entry.
            "{\n  \"mcpServers\": {}\n}\n",
        ];
        for text in exact {
            let new = upsert(text, top, NAME, &entry(top)).unwrap().unwrap();
            assert_eq!(remove(&new, top, NAME), Ok(Some(text.to_string())), "{new}");
        }
        let normalised = [
            // `top_key` created, and kept.
            ("{\n  \"a\": 1,\n}\n", "{\n  \"a\": 1,\n  \"mcpServers\": {},\n}\n"),
            ("{\r\n  \"a\": 1\r\n}", "{\r\n  \"a\": 1,\r\n  \"mcpServers\": {}\r\n}"),
            ("  \r\n", "{\n  \"mcpServers\": {}\n}\n"),
            // An empty object is laid out as an empty file is: fresh.
            ("{}\n", "{\n  \"mcpServers\": {}\n}\n"),
            ("\u{feff}", "\u{feff}{\n  \"mcpServers\": {}\n}\n"),
            // Whitespace inside an empty object.
            ("{ \"mcpServers\": { } }\n", "{ \"mcpServers\": {} }\n"),
            // A one-line object with entries is spread out.
            (
                "{\"mcpServers\": {\"a\": {\"command\": \"x\"}}}\n",
                "{\"mcpServers\": {\n    \"a\": {\"command\": \"x\"}\n  }}\n",
            ),
            // Blank lines just inside the braces.
            (
                "{\n  \"mcpServers\": {\n\n    \"a\": 1\n\n  }\n}\n",
                "{\n  \"mcpServers\": {\n    \"a\": 1\n  }\n}\n",
            ),
        ];
        for (text, back) in normalised {
            let new = upsert(text, top, NAME, &entry(top)).unwrap().unwrap();
            assert_eq!(remove(&new, top, NAME), Ok(Some(back.to_string())), "{new}");
        }
    }

    /// Removing the last entry keeps the top-level key (Claude Code rejects a
    /// `.mcp.json` without `mcpServers`); only the document `upsert` makes of an
    /// empty file, minus the entry, is fresh (the caller deletes such a file).
    #[test]
    fn the_last_entry_leaves_an_empty_top_key() {
        for top in ["mcpServers", "servers"] {
            let new = upsert("", top, NAME, &entry(top)).unwrap().unwrap();
            let back = remove(&new, top, NAME).unwrap().unwrap();
            assert_eq!(value(&back), json!({ top: {} }));
            assert!(is_fresh(&back, top), "{back:?}");
            assert!(!is_fresh(&back, "other"));
        }
        for kept in [
            "{\"mcpServers\": {}}\n",
            "{\n  \"mcpServers\": {}\n}",
            "\u{feff}{\n  \"mcpServers\": {}\n}\n",
            "{\r\n  \"mcpServers\": {}\r\n}\r\n",
            "{\n  // ours\n  \"mcpServers\": {}\n}\n",
            "{}\n",
        ] {
            assert!(!is_fresh(kept, "mcpServers"), "{kept:?}");
        }
    }

    /// Empty and whitespace-only files become the minimal document: 2-space
    /// indent, `\n` endings, a trailing newline (a BOM stays).
    #[test]
    fn blank_files_get_a_minimal_document() {
        let minimal = concat!(
            "{\n",
            "  \"servers\": {\n",
            "    \"mcp-bridge\": {\n",
            "      \"type\": \"stdio\",\n",
            "      \"command\": \"/opt/mcp bridge/bin/mcp-bridge\",\n",
            "      \"args\": [\"serve\"],\n",
            "      \"env\": {}\n",
            "    }\n",
            "  }\n",
            "}\n",
        );
        for blank in ["", " ", "\r\n\r\n", "\t\n"] {
            assert_eq!(
                upsert(blank, "servers", NAME, &entry("servers")),
                Ok(Some(minimal.into()))
            );
        }
        assert_eq!(
            upsert("\u{feff}\n", "servers", NAME, &entry("servers")),
            Ok(Some(format!("{BOM}{minimal}")))
        );
    }

    /// No input makes any function panic, and whatever `upsert` or `remove`
    /// returns parses and says what was asked: every prefix and every one-character
    /// deletion of every fixture, plus odd documents.
    #[test]
    fn no_input_panics() {
        let top = "mcpServers";
        let check = |text: &str| {
            if let Ok(Some(new)) = upsert(text, top, NAME, &entry(top)) {
                assert_eq!(get(&new, top, NAME), Ok(Some(entry(top))), "{text:?} -> {new:?}");
                assert_eq!(upsert(&new, top, NAME, &entry(top)), Ok(None), "{text:?}");
            }
            if let Ok(Some(new)) = remove(text, top, NAME) {
                assert_eq!(get(&new, top, NAME), Ok(None), "{text:?} -> {new:?}");
            }
            let _ = get(text, top, NAME);
            let _ = entries_with_command(text, top, |_| true);
        };
        let fixtures = [
            fixture!("cursor-with-comments.json"),
            fixture!("vscode-mcp.jsonc"),
            fixture!("claude-desktop-crlf.json"),
            fixture!("windsurf-tabs.json"),
            fixture!("claude-code.json"),
            fixture!("no-top-key.json"),
            fixture!("corrupt.json"),
            fixture!("root-array.json"),
        ];
        for (_, text) in fixtures {
            let with_entry = upsert(text, top, NAME, &entry(top)).unwrap_or(None);
            for text in [Some(text.to_string()), with_entry].into_iter().flatten() {
                for (i, c) in text.char_indices() {
                    check(&text[..i]);
                    check(&format!("{}{}", &text[..i], &text[i + c.len_utf8()..]));
                }
            }
        }
        let odd = [
            "{",
            "}",
            "\u{feff}",
            "\u{feff}\u{feff}{}",
            "/*",
            "{\"mcpServers\": {\"mcp-bridge\": }}",
            "{\"mcpServers\": {,}}",
            "{\"mcpServers\": {\"mcp-bridge\": {\"command\": \"x\",}}}",
            "{\"mcpServers\": {\"mcp-bridge\": [1, {\"a\": []}]}}",
            "{\"mcpServers\": {\"\\u006dcp-bridge\": {}}}",
            "{\"mcpServers\": {}} // end",
            "{\"mcpServers\": {}} /* end */ \r",
            "{\"a\": 1}\r{\"b\": 2}",
            "\r{\r\"mcpServers\":\r{\"x\": 1}\r}\r",
            &format!("{}{}", "[".repeat(2000), "]".repeat(2000)),
            &format!("{{\"mcpServers\": {}1{}}}", "{\"a\": ".repeat(500), "}".repeat(500)),
        ];
        for text in odd {
            check(text);
        }
    }
}
