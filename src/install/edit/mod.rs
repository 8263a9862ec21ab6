//! Edits one entry in a client's MCP config file, as text: text in, text out,
//! nothing else in the file touched. A file that does not parse is an
//! [`EditError`], never repaired; the caller leaves it untouched.
//!
//! Clients keep their servers under one key of a JSON, JSONC, TOML or YAML file.
//! A [`Place`] names the format and the key; each format's edits live in its own
//! module ([`json`], [`toml`], [`yaml`]), with the same five operations. A plain `&str` is the JSON
//! place of that key, as for most clients.

pub mod json;
pub mod toml;
pub mod yaml;

use serde_json::{Map, Value};

/// Why a file could not be edited. Never contains file contents beyond the error position.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EditError {
    #[error("line {line}, column {column}: {message}")]
    Parse {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{key} is not an object (line {line})")]
    NotAnObject { key: String, line: usize },
    /// The entry holds a value the file's format cannot write (`null` in TOML).
    #[error("{key}: {reason}")]
    Unrepresentable { key: String, reason: String },
}

/// A config file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON, or JSONC (comments, trailing commas) where the client reads it.
    Json,
    /// TOML (Codex): the servers are the tables `[<key>.<name>]`.
    Toml,
    /// YAML (Goose): the servers are the block mapping `<key>:` at the top level.
    Yaml,
}

/// Where a client keeps its MCP servers: the file's format and the key of the
/// table (object, mapping) whose entries are the servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place<'a> {
    pub format: Format,
    pub key: &'a str,
}

impl<'a> From<&'a str> for Place<'a> {
    fn from(key: &'a str) -> Place<'a> {
        Place {
            format: Format::Json,
            key,
        }
    }
}

/// Insert or replace the entry `name` under the place's key; `Ok(None)` when it
/// is already equal (nothing to write). See [`json::upsert`].
pub fn upsert<'a>(
    text: &str,
    place: impl Into<Place<'a>>,
    name: &str,
    entry: &Value,
) -> Result<Option<String>, EditError> {
    let place = place.into();
    match place.format {
        Format::Json => json::upsert(text, place.key, name, entry),
        Format::Toml => toml::upsert(text, place.key, name, entry),
        Format::Yaml => yaml::upsert(text, place.key, name, entry),
    }
}

/// Remove the entry `name` only; `Ok(None)` when there was none.
pub fn remove<'a>(text: &str, place: impl Into<Place<'a>>, name: &str) -> Result<Option<String>, EditError> {
    let place = place.into();
    match place.format {
        Format::Json => json::remove(text, place.key, name),
        Format::Toml => toml::remove(text, place.key, name),
        Format::Yaml => yaml::remove(text, place.key, name),
    }
}

/// Whether `text` is exactly what [`upsert`] writes into an empty file, minus
/// the entry (the caller may delete such a file).
pub fn is_fresh<'a>(text: &str, place: impl Into<Place<'a>>) -> bool {
    let place = place.into();
    match place.format {
        Format::Json => json::is_fresh(text, place.key),
        Format::Toml => toml::is_fresh(text, place.key),
        Format::Yaml => yaml::is_fresh(text, place.key),
    }
}

/// The entry `name` as a JSON value, `Ok(None)` if absent.
pub fn get<'a>(text: &str, place: impl Into<Place<'a>>, name: &str) -> Result<Option<Value>, EditError> {
    let place = place.into();
    match place.format {
        Format::Json => json::get(text, place.key, name),
        Format::Toml => toml::get(text, place.key, name),
        Format::Yaml => yaml::get(text, place.key, name),
    }
}

/// Names of the entries whose command ([`entry_command`]) satisfies `pred`, in
/// file order, each once (to find an entry the user renamed).
pub fn entries_with_command<'a>(
    text: &str,
    place: impl Into<Place<'a>>,
    pred: impl Fn(&str) -> bool,
) -> Result<Vec<String>, EditError> {
    let place = place.into();
    match place.format {
        Format::Json => json::entries_with_command(text, place.key, pred),
        Format::Toml => toml::entries_with_command(text, place.key, pred),
        Format::Yaml => yaml::entries_with_command(text, place.key, pred),
    }
}

/// Fields of an entry written first, in the order the clients' docs use (a JSON
/// map is sorted, which would put `args` before `command`); the rest follow.
const ENTRY_FIELD_ORDER: [&str; 4] = ["type", "command", "args", "env"];

/// `fields` with [`ENTRY_FIELD_ORDER`] first, then the rest in map order.
fn ordered(fields: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut fields: Vec<_> = fields.iter().collect();
    fields.sort_by_key(|(name, _)| {
        ENTRY_FIELD_ORDER
            .iter()
            .position(|known| known == name)
            .unwrap_or(ENTRY_FIELD_ORDER.len())
    });
    fields
}

/// The program an entry launches, whatever the client calls it: `command` as a
/// string, or the first element of a `command` array (opencode), or `cmd` (Goose).
pub fn entry_command(entry: &Value) -> Option<&str> {
    match entry.get("command") {
        Some(Value::String(s)) => Some(s),
        Some(Value::Array(a)) => a.first().and_then(Value::as_str),
        _ => entry.get("cmd").and_then(Value::as_str),
    }
}

/// A unified diff of `old` → `new` labelled with `path`, for `--dry-run` (3 lines of context; CRLF shown
/// without the \r; empty string when equal).
///
/// Line endings are compared without the `\r` too, so a change of line endings
/// alone shows as no diff; edits here never make one.
pub fn diff(path: &str, old: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    let old = old.replace("\r\n", "\n");
    let new = new.replace("\r\n", "\n");
    similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(path, path)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_entrys_command_in_every_shape() {
        assert_eq!(
            entry_command(&json!({"command": "/bin/mcp-bridge"})),
            Some("/bin/mcp-bridge")
        );
        assert_eq!(
            entry_command(&json!({"command": ["mcp-bridge", "serve"]})),
            Some("mcp-bridge")
        );
        assert_eq!(
            entry_command(&json!({"cmd": "mcp-bridge", "args": ["serve"]})),
            Some("mcp-bridge")
        );
        assert_eq!(entry_command(&json!({"url": "https://x"})), None);
        assert_eq!(entry_command(&json!({"command": 7})), None);
    }
}
