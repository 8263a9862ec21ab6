//! Config text: parsed or refused with a message, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_bridge::config::Config;

fuzz_target!(|text: &str| {
    let _ = Config::parse(text, std::path::Path::new("config.toml"));
});
