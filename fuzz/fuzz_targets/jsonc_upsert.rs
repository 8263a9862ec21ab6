//! An IDE config file: upsert, get and remove never panic, and after a
//! successful upsert the entry reads back and a second upsert is a no-op.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_bridge::install::edit;
use serde_json::json;

fuzz_target!(|text: &str| {
    let entry = json!({"command": "/usr/bin/mcp-bridge", "args": ["serve"]});
    let _ = edit::remove(text, "mcpServers", "mcp-bridge");
    let _ = edit::get(text, "mcpServers", "mcp-bridge");
    if let Ok(Some(new)) = edit::upsert(text, "mcpServers", "mcp-bridge", &entry) {
        assert_eq!(edit::get(&new, "mcpServers", "mcp-bridge"), Ok(Some(entry.clone())));
        assert_eq!(edit::upsert(&new, "mcpServers", "mcp-bridge", &entry), Ok(None));
    }
});
