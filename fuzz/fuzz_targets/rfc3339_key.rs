//! Registry timestamps: any string gives a key or `None`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_bridge::registry::sync::rfc3339_key;

fuzz_target!(|s: &str| {
    let _ = rfc3339_key(s);
});
