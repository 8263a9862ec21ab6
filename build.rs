//! Release builds of the binary on x86_64 Linux lay out the functions that
//! `serve` runs (start-up, listing, calls) next to each other, in the order of
//! `link/symbol-order.txt` (recorded under callgrind by `link/record.sh`). The
//! kernel maps a file's pages into a process 64 KB around each page it touches, so
//! hot code scattered over the 15 MB of text mapped 11 MB of it with 10 upstreams;
//! laid out together, 8.4 MB (peak RSS 18.0 -> 14.8 MB, `link/drive.py`). The rest
//! is code that ran natively but not under valgrind, still scattered. A function
//! missing from the list (renamed, or new since it was recorded) is only placed
//! after the listed ones; re-record after upgrading dependencies or the compiler
//! (the mangled names carry their hashes).
//!
//! Only with rust-lld, the default linker of this target since Rust 1.90 (the
//! system's GNU ld has no `--symbol-ordering-file`); `MCP_BRIDGE_SYMBOL_ORDER=0`
//! turns it off, e.g. for a custom linker.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link/symbol-order.txt");
    println!("cargo:rerun-if-env-changed=MCP_BRIDGE_SYMBOL_ORDER");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let custom_linker = !var("RUSTC_LINKER").is_empty()
        || ["linker", "fuse-ld"]
            .iter()
            .any(|f| var("CARGO_ENCODED_RUSTFLAGS").contains(f));
    if var("TARGET") != "x86_64-unknown-linux-gnu"
        || var("PROFILE") != "release"
        || var("MCP_BRIDGE_SYMBOL_ORDER") == "0"
        || custom_linker
        || rustc_minor().is_none_or(|m| m < 90)
    {
        return;
    }
    let order = Path::new(&var("CARGO_MANIFEST_DIR")).join("link/symbol-order.txt");
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        order.display()
    );
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}

/// The minor version of the compiler building this crate (`rustc 1.95.0 ...` -> 95).
fn rustc_minor() -> Option<u32> {
    let rustc = std::env::var_os("RUSTC")?;
    let out = std::process::Command::new(rustc).arg("--version").output().ok()?;
    let v = String::from_utf8(out.stdout).ok()?;
    v.split_whitespace().nth(1)?.split('.').nth(1)?.parse().ok()
}
