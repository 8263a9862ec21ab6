//! Shared by the tests that run software from the package registries
//! (`tests/interop.rs`, `tests/clients.rs`): where it is installed
//! (`tests/interop/`, by `tests/interop/setup.sh`), finding Node.js, and the
//! `MCP_BRIDGE_SKIP_INTEROP=1` switch.

use std::path::{Path, PathBuf};

/// `tests/interop/`: setup.sh, the pins, node_modules, the Python venv, the scripts.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// Whether the interop tests are skipped on purpose (`MCP_BRIDGE_SKIP_INTEROP=1`).
pub fn skip_requested() -> bool {
    if std::env::var("MCP_BRIDGE_SKIP_INTEROP").as_deref() == Ok("1") {
        eprintln!("interop test SKIPPED: MCP_BRIDGE_SKIP_INTEROP=1");
        return true;
    }
    false
}

/// `node` from `$NODE` or `$PATH`.
pub fn find_node() -> PathBuf {
    if let Some(p) = std::env::var_os("NODE") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("node"))
        .find(|p| p.is_file())
        .expect("Node.js (`node`) not found on PATH: install Node.js, then run tests/interop/setup.sh (or set MCP_BRIDGE_SKIP_INTEROP=1 to skip this test)")
}

/// Run `tests/interop/setup.sh` once per test process when any of `marks`
/// (paths under `tests/interop/`) is missing, so that a plain `cargo test` works
/// on a fresh machine. A failure is printed; the test then fails on the missing
/// file with its own message.
pub fn ensure_installed(marks: &[&str]) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let missing: Vec<&&str> = marks.iter().filter(|m| !interop_dir().join(m).exists()).collect();
        if !missing.is_empty() {
            eprintln!("installing test dependencies with tests/interop/setup.sh (missing: {missing:?})");
            match std::process::Command::new("bash")
                .arg(interop_dir().join("setup.sh"))
                .status()
            {
                Ok(s) if s.success() => {}
                other => eprintln!("tests/interop/setup.sh failed: {other:?}"),
            }
        }
    });
}

/// A `$BROWSER` that writes the URL it is asked to open into a file (the
/// second path; written whole, by rename), so a test can tell whether a
/// browser tab was opened and play it with `auth::browse`.
pub fn fake_browser(dir: &Path) -> (PathBuf, PathBuf) {
    let script = dir.join("browser.sh");
    let out = dir.join("opened-url.txt");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" > '{}.tmp'\nmv '{}.tmp' '{}'\n",
            out.display(),
            out.display(),
            out.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (script, out)
}

/// `mcp-bridge login NAME` in `home`, its browser step played by
/// `auth::browse` (the test authorization server approves at once); bounded.
pub async fn cli_login(home: &super::Home, name: &str) {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let (browser, out) = fake_browser(dir.path());
    let mut cmd = super::cli(home, &["login", name]);
    cmd.env("BROWSER", &browser)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().unwrap();
    let url = super::eventually("the login to open the browser", Duration::from_secs(20), async || {
        std::fs::read_to_string(&out)
            .map(|s| s.trim().to_owned())
            .map_err(|e| e.kind())
    })
    .await;
    let visit = super::auth::browse(&url, true).await;
    assert_eq!(visit.callback_status, Some(200), "{visit:?}");
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("mcp-bridge login ends after the browser step")
        .unwrap();
    assert!(
        output.status.success(),
        "mcp-bridge login {name} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
