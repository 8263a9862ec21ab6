//! The real OS credential store on Linux: Secret Service (gnome-keyring) on a
//! D-Bus session. `.ci/run` runs this file inside `dbus-run-session` with an
//! unlocked gnome-keyring and `MCP_BRIDGE_TEST_SECRET_SERVICE=1`; elsewhere it
//! says it was skipped (the rest of the suite uses the file store, and the store's
//! unit tests use keyring-core's mock store).

use mcp_bridge::auth::store::{Entry, TokenStore};
use mcp_bridge::config::StoreKind;

fn enabled() -> bool {
    let on = std::env::var("MCP_BRIDGE_TEST_SECRET_SERVICE").as_deref() == Ok("1");
    if !on {
        eprintln!("SKIPPED: set MCP_BRIDGE_TEST_SECRET_SERVICE=1 inside a D-Bus session with an unlocked keyring");
    }
    on
}

/// The Secret Service store round-trips an entry larger than one keyring item,
/// and `auto` picks it (no fallback to the file).
#[test]
fn secret_service_store_roundtrip() {
    if !enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::open(StoreKind::Keyring, dir.path()).expect("Secret Service store");
    let key = format!("https://keyring-test.invalid/mcp/{}", std::process::id());
    let mut e = Entry::default();
    e.headers
        .insert("Authorization".into(), format!("Bearer {}", "t".repeat(5000)));
    store.put(&key, &e).unwrap();
    let back = store.get(&key).unwrap().expect("stored entry");
    assert_eq!(back.headers, e.headers);
    assert!(store.delete(&key).unwrap());
    assert!(store.get(&key).unwrap().is_none());
    let auto = TokenStore::open(StoreKind::Auto, dir.path()).unwrap();
    assert_eq!(auto.describe(), "OS credential store");
    assert!(!dir.path().join("credentials").exists());
}
