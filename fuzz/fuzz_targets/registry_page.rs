//! A registry page: parsed as the API client and the file reader do, then
//! resolved into servers with unique ids.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use mcp_bridge::config::Config;
use mcp_bridge::registry::{AdHoc, Page, resolve};

fuzz_target!(|data: &[u8]| {
    let Ok(page) = serde_json::from_slice::<Page>(data) else {
        return;
    };
    let resolved = resolve(&Config::default(), &page.servers, &AdHoc::default());
    let mut seen = HashSet::new();
    for s in &resolved.servers {
        assert!(seen.insert(s.id.clone()), "id {:?} twice", s.id);
    }
});
