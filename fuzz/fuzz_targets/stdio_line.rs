//! One line from the IDE: classified without panicking; anything that is not a
//! message and not skippable is answered with -32700 or -32600.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_bridge::downstream::stdio::{Line, classify};

fuzz_target!(|data: &[u8]| {
    if let Line::Error { code, .. } = classify(data) {
        assert!(code == -32700 || code == -32600);
    }
});
