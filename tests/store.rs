//! End to end: every state the credential store can be in is recoverable from
//! the command line. A corrupt entry in the file store is named by `status` and
//! `doctor` with its path and the fix; `logout` and `auth clear` remove it;
//! `auth set` overwrites it; a credentials directory left open to others is
//! tightened to 0700. And the fallback from the OS store to the file is said
//! once, when something needs the store, not on every `serve` start.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// `mcp-bridge ARGS` in `home` (its own HOME too, so `doctor` reads no real IDE
/// file), with `stdin` piped in.
async fn run(home: &Home, args: &[&str], stdin: &str) -> Output {
    let mut cmd = cli(home, args);
    cmd.env("HOME", home.path())
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("CLAUDE_CONFIG_DIR");
    with_stdin(cmd, stdin).await
}

/// Run `cmd` to its end with `stdin` piped in.
async fn with_stdin(mut cmd: tokio::process::Command, stdin: &str) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the command ends")
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Run and require success; its stderr.
async fn ok(home: &Home, args: &[&str], stdin: &str) -> String {
    let out = run(home, args, stdin).await;
    assert!(
        out.status.success(),
        "{args:?} exited {:?}: {}{}",
        out.status.code(),
        text(&out.stderr),
        text(&out.stdout)
    );
    text(&out.stderr)
}

async fn auth_of(home: &Home) -> String {
    let out = run(home, &["status", "--json"], "").await;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stderr)));
    v["servers"][0]["auth"].as_str().unwrap().to_owned()
}

/// The entry files of the file store.
fn entry_files(home: &Home) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(home.path().join("state/credentials")) else {
        return Vec::new();
    };
    dir.map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect()
}

/// The one entry file of the file store.
fn entry_file(home: &Home) -> PathBuf {
    let files = entry_files(home);
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A server `notes` with a static credential whose entry file was then
/// corrupted; the file.
async fn corrupted() -> (Upstream, Home, PathBuf) {
    let notes = Upstream::start(TestServer::new(Era::Legacy, "notes"));
    let home = Home::new();
    home.servers_config(&[("notes", &notes.url)], "");
    ok(&home, &["auth", "set", "notes"], "tok-first\n").await;
    let file = entry_file(&home);
    corrupt(&file);
    (notes, home, file)
}

fn corrupt(file: &Path) {
    std::fs::write(file, b"{\"version\": 1, \"headers\": {\"Authoriz").unwrap();
}

/// `status` and `doctor` name a garbage entry file and say what to do;
/// `doctor` fails. Once no configured server owns it, `doctor` still names it.
#[tokio::test]
async fn status_and_doctor_name_a_corrupt_entry() {
    let (_notes, home, file) = corrupted().await;
    let path = file.display().to_string();
    let said = auth_of(&home).await;
    assert!(
        said.starts_with(&format!("unreadable credentials in {path} (")) && said.contains("mcp-bridge logout notes"),
        "{said}"
    );
    let out = run(&home, &["status"], "").await;
    let table = text(&out.stdout);
    let row = table.lines().find(|l| l.starts_with("notes")).unwrap();
    assert!(row.contains("unreadable"), "{table}");
    assert!(table.contains(&path), "{table}");

    let out = run(&home, &["doctor"], "").await;
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    let line = report
        .lines()
        .find(|l| l.contains(&path))
        .unwrap_or_else(|| panic!("the file is not named: {report}"));
    assert!(
        line.starts_with("FIX   credential store: the entry of server notes in ")
            && line.ends_with("run `mcp-bridge logout notes` to remove it, then log in again"),
        "{line}"
    );

    // The server is gone from the config: the file is still named.
    home.write_config("");
    let out = run(&home, &["doctor"], "").await;
    let report = text(&out.stdout);
    assert!(
        report.contains(&format!(
            "NOTE  credential store: {path} is unreadable and belongs to no configured server"
        )),
        "{report}"
    );
}

/// `logout` removes a garbage entry file, and so does `auth clear`; each says so.
#[tokio::test]
async fn logout_and_auth_clear_remove_a_corrupt_entry() {
    let (_notes, home, file) = corrupted().await;
    let path = file.display().to_string();
    let said = ok(&home, &["logout", "notes"], "").await;
    assert!(
        said.contains(&format!("notes: removed unreadable credentials from {path} (")),
        "{said}"
    );
    assert!(!file.exists());
    assert!(auth_of(&home).await.starts_with("none"));

    corrupt(&file);
    let said = ok(&home, &["auth", "clear", "notes"], "").await;
    assert!(
        said.contains(&format!("removed unreadable credentials for notes from {path} (")),
        "{said}"
    );
    assert!(!file.exists());
    let out = run(&home, &["doctor"], "").await;
    assert!(!text(&out.stdout).contains("unreadable"), "{}", text(&out.stdout));
}

/// `auth set` replaces a garbage entry file and says so; the credentials
/// directory, left 0777, ends up 0700.
#[tokio::test]
async fn auth_set_replaces_a_corrupt_entry_and_tightens_the_directory() {
    let (_notes, home, file) = corrupted().await;
    let path = file.display().to_string();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = file.parent().unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let said = ok(&home, &["auth", "set", "notes"], "tok-second\n").await;
    assert!(
        said.contains(&format!("replacing unreadable credentials at {path} (")) && !said.contains("tok-second"),
        "{said}"
    );
    assert_eq!(auth_of(&home).await, "static credential (Authorization)");
    #[cfg(unix)]
    {
        assert_eq!(
            mode(file.parent().unwrap()),
            0o700,
            "the credentials directory is tightened"
        );
        assert_eq!(mode(&file), 0o600);
    }
}

/// What the fallback from the OS store to the file says on stderr.
#[cfg(target_os = "linux")]
const FALLBACK: &str = "no usable OS credential store";

/// `auto` store on a machine without Secret Service: the D-Bus session bus is
/// a socket that does not exist.
#[cfg(target_os = "linux")]
const HEADLESS: [(&str, &str); 2] = [
    ("MCP_BRIDGE_CREDENTIAL_STORE", "auto"),
    ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/mcp-bridge-test/bus"),
];

/// `serve` on a headless machine until it has listed `notes` (so each server
/// has been connected, its stored credentials looked up); then the IDE goes
/// away. Everything it wrote to stderr.
#[cfg(target_os = "linux")]
async fn serve_once_headless(home: &Home) -> String {
    let mut cmd = bridge_command(home, &[]);
    cmd.envs(HEADLESS).env("RUST_LOG", "warn");
    let (client, mut seen, read) = spawn_with_stderr(cmd).await;
    wait_for_tools(&client, &mut seen, |n| n.iter().any(|t| t.ends_with("echo"))).await;
    client.cancel().await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .unwrap()
        .unwrap()
}

/// `auth set` on a headless machine; its stderr.
#[cfg(target_os = "linux")]
async fn auth_set_headless(home: &Home, token: &str) -> String {
    let mut cmd = cli(home, &["auth", "set", "notes"]);
    cmd.envs(HEADLESS);
    let out = with_stdin(cmd, &format!("{token}\n")).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stderr)
}

/// On a headless machine, `serve` with no server that needs a login says
/// nothing about the credential store, start after start; the first command
/// that stores a credential says where it goes, once; serving with that
/// credential says nothing more; a new reason is said again.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_file_store_fallback_is_said_once_when_needed() {
    let notes = Upstream::start(TestServer::new(Era::Legacy, "notes"));
    let home = Home::new();
    home.servers_config(&[("notes", &notes.url)], "");
    let marker = home.path().join("state").join("credential-store-fallback");
    for start in 1..=2 {
        let said = serve_once_headless(&home).await;
        assert!(!said.contains(FALLBACK), "serve start {start} said it: {said}");
    }
    assert!(!marker.exists());

    let said = auth_set_headless(&home, "tok-1").await;
    assert_eq!(said.matches(FALLBACK).count(), 1, "{said}");
    assert!(said.contains("credentials in 0600 files in "), "{said}");
    let reason = std::fs::read_to_string(&marker).expect("the marker says it was shown");
    assert!(!reason.is_empty());
    assert!(!said.contains("tok-1"), "{said}");

    let said = auth_set_headless(&home, "tok-2").await;
    assert!(!said.contains(FALLBACK), "said twice: {said}");
    let said = serve_once_headless(&home).await;
    assert!(
        !said.contains(FALLBACK),
        "serve with a stored credential said it again: {said}"
    );

    std::fs::write(&marker, "an older reason").unwrap();
    let said = auth_set_headless(&home, "tok-3").await;
    assert_eq!(said.matches(FALLBACK).count(), 1, "a new reason is said: {said}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), reason);
}

/// A private key for `private_key_jwt` kept in the credential store: `auth set
/// --private-key` reads a PEM from stdin, refuses what is not one (storing
/// nothing), never echoes it, and `auth clear --private-key` removes it; a key
/// beside a static credential survives the credential's removal.
#[tokio::test]
async fn a_private_key_is_kept_in_the_store_and_never_shown() {
    let notes = Upstream::start(TestServer::new(Era::Legacy, "notes"));
    let home = Home::new();
    home.servers_config(&[("notes", &notes.url)], "");
    let pem =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys/client-es256.pem"))
            .unwrap();
    let body = pem.lines().nth(1).unwrap().to_owned();

    let out = run(&home, &["auth", "set", "notes", "--private-key"], "not a key\n").await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("not a PEM private key"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(entry_files(&home), Vec::<PathBuf>::new());

    let said = ok(&home, &["auth", "set", "notes", "--private-key"], &pem).await;
    assert!(said.contains("stored the private key for notes"), "{said}");
    let file = entry_file(&home);
    let stored: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(stored["private_key"].as_str(), Some(pem.as_str()));
    ok(&home, &["auth", "set", "notes"], "tok-1\n").await;
    for args in [&["status"][..], &["status", "--json"], &["doctor"]] {
        let out = run(&home, args, "").await;
        let all = text(&out.stdout) + &text(&out.stderr);
        assert!(!all.contains(&body), "{args:?} shows the key: {all}");
    }

    // Removing the bearer keeps the key; removing the key leaves nothing.
    ok(&home, &["auth", "clear", "notes"], "").await;
    let stored: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(
        stored["private_key"].is_string() && stored.get("headers").is_none(),
        "{stored}"
    );
    let said = ok(&home, &["auth", "clear", "notes", "--private-key"], "").await;
    assert!(said.contains("removed the private key for notes"), "{said}");
    assert!(!file.exists());
}
