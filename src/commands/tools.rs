//! `mcp-bridge tools` and `call`: the merged catalog and one tool call, through
//! a bridge in this process (`local`), so a person sees what the IDE
//! would. Names, descriptions and results are the servers' words: the listing
//! escapes them ([`printable`]), `--json` and results are exact JSON.

use std::time::Duration;

use rmcp::model::Tool;

use super::{local, out};
use crate::app::ServeOptions;
use crate::util::printable;

/// `mcp-bridge tools [--json]`.
pub async fn tools(opts: &ServeOptions, json: bool) -> anyhow::Result<()> {
    let (client, _bridge) = local::client(opts).await?;
    let tools = client.list_all_tools().await?;
    let text = if json {
        crate::util::json_pretty(&tools)? + "\n"
    } else {
        listing(&tools)
    };
    out::print(text)?;
    let _ = client.cancel().await;
    Ok(())
}

/// One line per tool: its name and the first line of its description, under a
/// `TOOL  DESCRIPTION` header. Names and descriptions are the servers' words:
/// escaped, so that none can move the cursor, retitle the terminal or reverse
/// the text.
fn listing(tools: &[Tool]) -> String {
    use std::fmt::Write;
    let rows: Vec<(String, String)> = tools
        .iter()
        .map(|t| {
            let first = t.description.as_deref().unwrap_or("").lines().next().unwrap_or("");
            (printable(&t.name).into_owned(), printable(first).into_owned())
        })
        .collect();
    let width = rows.iter().map(|(n, _)| n.chars().count()).max().unwrap_or(4).max(4);
    let mut out = String::new();
    let _ = writeln!(out, "{:<width$}  DESCRIPTION", "TOOL");
    for (name, first) in &rows {
        let _ = writeln!(out, "{name:<width$}  {first}");
    }
    out
}

/// `mcp-bridge call NAME --args JSON`: prints the result as JSON; fails when the
/// call fails or the tool reports an error.
pub async fn call(opts: &ServeOptions, name: &str, args: &str) -> anyhow::Result<()> {
    let args: serde_json::Value = serde_json::from_str(args).map_err(|e| anyhow::anyhow!("--args is not JSON: {e}"))?;
    let serde_json::Value::Object(args) = args else {
        anyhow::bail!("--args must be a JSON object")
    };
    let (client, bridge) = local::client(opts).await?;
    let params = rmcp::model::CallToolRequestParams::new(name.to_owned()).with_arguments(args);
    let result = client.call_tool(params).await;
    let _ = client.cancel().await;
    if let Some(log) = bridge.audit() {
        log.flush(Duration::from_millis(500)).await;
    }
    let result = result.map_err(|e| match e {
        rmcp::ServiceError::McpError(e) => anyhow::anyhow!("{} (JSON-RPC {})", e.message, e.code.0),
        other => anyhow::anyhow!("{other}"),
    })?;
    out::print(crate::util::json_pretty(&result)? + "\n")?;
    anyhow::ensure!(result.is_error != Some(true), "the tool reported an error");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str, description: Option<&str>) -> Tool {
        let mut v = serde_json::json!({"name": name, "inputSchema": {"type": "object"}});
        if let Some(d) = description {
            v["description"] = d.into();
        }
        serde_json::from_value(v).unwrap()
    }

    /// Names line up under TOOL (at least its width), only a description's first
    /// line is shown, and the servers' words are escaped.
    #[test]
    fn listing_is_aligned_and_escaped() {
        assert_eq!(listing(&[]), "TOOL  DESCRIPTION\n");
        let text = listing(&[
            tool("a", Some("first\nsecond")),
            tool("notes__search", None),
            tool("evil\x1b[2J", Some("\u{202e}reversed")),
        ]);
        assert_eq!(
            text,
            "TOOL           DESCRIPTION\n\
             a              first\n\
             notes__search  \n\
             evil\\x1b[2J    \\u{202e}reversed\n"
        );
    }
}
