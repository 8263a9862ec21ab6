//! `mcp-bridge install` / `uninstall` run as the user would, in a temp HOME,
//! against IDE config files in real-world shapes (comments, trailing commas,
//! other servers, tabs, CRLF, a BOM); and `installers/install.sh` followed by
//! the entry it leads to, launched as the IDE would launch it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mcp_bridge::install::edit;
use rmcp::ServiceExt;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-bridge");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/ide")
            .join(name),
    )
    .unwrap()
}

/// A user's home with nothing in it but what a test puts there.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let h = Home {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(h.project()).unwrap();
        h
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn project(&self) -> PathBuf {
        self.dir.path().join("proj")
    }
    fn put(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }
    /// Run `mcp-bridge ARGS` as this user, from the project directory.
    fn run(&self, bin: &str, args: &[&str]) -> Output {
        self.run_env(bin, args, &[])
    }
    fn run_env(&self, bin: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(bin)
            .args(args)
            .current_dir(self.project())
            .env("HOME", self.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("APPDATA")
            .env_remove("LOCALAPPDATA")
            .env_remove("CLAUDE_CONFIG_DIR")
            .env_remove("MCP_BRIDGE_CONFIG")
            .env_remove("MCP_BRIDGE_HOME")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

/// Each client, the fixture its file starts as, and where that file lives on Linux.
const CASES: &[(&str, &str, &str, &str)] = &[
    ("cursor", "cursor-with-comments.json", ".cursor/mcp.json", "mcpServers"),
    ("vscode", "vscode-mcp.jsonc", ".config/Code/User/mcp.json", "servers"),
    (
        "claude-desktop",
        "claude-desktop-crlf.json",
        ".config/Claude/claude_desktop_config.json",
        "mcpServers",
    ),
    ("claude-code", "claude-code.json", ".claude.json", "mcpServers"),
    (
        "windsurf",
        "windsurf-tabs.json",
        ".codeium/windsurf/mcp_config.json",
        "mcpServers",
    ),
];

fn expected_entry(client: &str) -> Value {
    let mut e = json!({ "command": BIN, "args": ["serve"], "env": {} });
    if client == "vscode" || client == "claude-code" {
        e["type"] = json!("stdio");
    }
    e
}

/// For every client: install writes our entry and keeps the rest, backs up the
/// original once; a second install writes nothing; `--dry-run` writes nothing
/// and shows the diff; uninstall gives back the original bytes.
#[test]
fn install_reinstall_dry_run_uninstall_for_every_client() {
    for (client, fixture_name, rel, key) in CASES {
        let home = Home::new();
        let original = fixture(fixture_name);
        let file = home.put(rel, &original);

        let dry = home.run(BIN, &["install", client, "--dry-run", "--binary", BIN]);
        assert!(dry.status.success(), "{client}: {}", text(&dry.stderr));
        assert_eq!(std::fs::read(&file).unwrap(), original, "{client}: dry run wrote");
        let diff = text(&dry.stdout);
        assert!(
            diff.contains("+") && diff.contains("\"mcp-bridge\""),
            "{client}: {diff}"
        );

        let out = home.run(BIN, &["install", client, "--binary", BIN]);
        assert!(out.status.success(), "{client}: {}", text(&out.stderr));
        let written = std::fs::read(&file).unwrap();
        let written_text = String::from_utf8(written.clone()).unwrap();
        assert_eq!(
            edit::get(&written_text, key, "mcp-bridge").unwrap(),
            Some(expected_entry(client)),
            "{client}: {written_text}"
        );
        // Everything else is still there: a line-ending or BOM change would show here.
        let original_text = String::from_utf8(original.clone()).unwrap();
        assert_eq!(
            original_text.starts_with('\u{feff}'),
            written_text.starts_with('\u{feff}'),
            "{client}"
        );
        assert_eq!(
            original_text.contains("\r\n"),
            written_text.contains("\r\n"),
            "{client}"
        );
        for line in original_text.lines().filter(|l| l.contains("//")) {
            assert!(written_text.contains(line.trim()), "{client}: lost comment {line:?}");
        }
        let bak = PathBuf::from(format!("{}.mcp-bridge.bak", file.display()));
        assert_eq!(std::fs::read(&bak).unwrap(), original, "{client}: backup");

        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
        let again = home.run(BIN, &["install", client, "--binary", BIN]);
        assert!(again.status.success(), "{client}: {}", text(&again.stderr));
        assert!(text(&again.stdout).contains("already up to date"), "{client}");
        assert_eq!(
            std::fs::read(&file).unwrap(),
            written,
            "{client}: second install changed the file"
        );
        assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), mtime, "{client}");

        let un = home.run(BIN, &["uninstall", client]);
        assert!(un.status.success(), "{client}: {}", text(&un.stderr));
        assert_eq!(
            text(&std::fs::read(&file).unwrap()),
            text(&original),
            "{client}: uninstall did not restore the original"
        );
        // The backup still holds the very first version.
        assert_eq!(std::fs::read(&bak).unwrap(), original, "{client}");
    }
}

/// A file that does not parse is left exactly as it was, with the line named;
/// the other IDEs asked for are still done.
#[test]
fn a_corrupt_file_is_left_untouched() {
    let home = Home::new();
    let corrupt = fixture("corrupt.json");
    let file = home.put(".cursor/mcp.json", &corrupt);
    let out = home.run(BIN, &["install", "cursor", "windsurf", "--binary", BIN]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("line 4") && err.contains("untouched"), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), corrupt);
    assert!(!PathBuf::from(format!("{}.mcp-bridge.bak", file.display())).exists());
    // Windsurf, named too, was written (its file and directory created).
    let ws = home.path().join(".codeium/windsurf/mcp_config.json");
    let t = std::fs::read_to_string(&ws).unwrap();
    assert_eq!(
        edit::get(&t, "mcpServers", "mcp-bridge").unwrap(),
        Some(expected_entry("windsurf"))
    );
}

/// `--all` installs only into IDEs found on the machine and says which were
/// skipped; `--scope project` writes the project's file; `--name` names the entry.
#[test]
fn all_scope_and_name() {
    let home = Home::new();
    std::fs::create_dir_all(home.path().join(".cursor")).unwrap();
    std::fs::create_dir_all(home.path().join(".config/Code")).unwrap();
    let out = home.run(BIN, &["install", "--all", "--binary", BIN]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("Windsurf: not found"), "{said}");
    assert!(home.path().join(".cursor/mcp.json").is_file());
    assert!(home.path().join(".config/Code/User/mcp.json").is_file());
    assert!(!home.path().join(".codeium").exists());

    let out = home.run(
        BIN,
        &[
            "install", "vscode", "--scope", "project", "--name", "corp", "--binary", BIN,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = std::fs::read_to_string(home.project().join(".vscode/mcp.json")).unwrap();
    assert_eq!(
        edit::get(&t, "servers", "corp").unwrap(),
        Some(expected_entry("vscode"))
    );
    let t: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(t["servers"].as_object().unwrap().len(), 1);

    let out = home.run(BIN, &["install", "windsurf", "--scope", "project", "--binary", BIN]);
    assert!(!out.status.success());
}

/// `install.sh` in a fresh HOME installs the binary and a starter config; then
/// `mcp-bridge install cursor` writes an entry that, launched exactly as Cursor
/// would (its command, args and env), answers `initialize`.
#[tokio::test]
async fn install_script_then_cursor_entry_launches() {
    let home = Home::new();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("installers/install.sh");
    let prefix = home.path().join(".local");
    let install_sh = || {
        Command::new("sh")
            .arg(&script)
            .args(["--non-interactive", "--binary", BIN, "--prefix"])
            .arg(&prefix)
            .env("HOME", home.path())
            .env_remove("XDG_CONFIG_HOME")
            .output()
            .unwrap()
    };
    let out = install_sh();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let installed = prefix.join("bin/mcp-bridge");
    assert!(installed.is_file());
    assert!(home.path().join(".config/mcp-bridge/config.toml").is_file());
    // Idempotent: a second run succeeds and keeps the config.
    let again = install_sh();
    assert!(again.status.success());
    assert!(text(&again.stdout).contains("keeping the existing config"));

    let out = home.run(installed.to_str().unwrap(), &["install", "cursor"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = std::fs::read_to_string(home.path().join(".cursor/mcp.json")).unwrap();
    let entry = edit::get(&t, "mcpServers", "mcp-bridge").unwrap().unwrap();
    assert_eq!(entry["command"], json!(installed.display().to_string()));

    let mut cmd = tokio::process::Command::new(entry["command"].as_str().unwrap());
    for a in entry["args"].as_array().unwrap() {
        cmd.arg(a.as_str().unwrap());
    }
    for (k, v) in entry["env"].as_object().unwrap() {
        cmd.env(k, v.as_str().unwrap());
    }
    cmd.env("HOME", home.path())
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("MCP_BRIDGE_HOME")
        .env_remove("MCP_BRIDGE_CONFIG")
        .env("MCP_BRIDGE_CREDENTIAL_STORE", "file");
    let client = ().serve(TokioChildProcess::new(cmd).unwrap()).await.expect("initialize");
    assert_eq!(
        client.peer_info().unwrap().server_info.as_ref().unwrap().name,
        "mcp-bridge"
    );
    assert!(client.list_all_tools().await.unwrap().is_empty());
    client.cancel().await.unwrap();
}

/// `doctor` checks the chain and says, per line, OK or what to do: a server
/// that answers, one that does not, and an IDE entry whose binary is gone;
/// after `install` fixes the entry, that line turns OK.
#[tokio::test]
async fn doctor_reports_each_check() {
    let alpha = common::Upstream::start(common::TestServer::new(common::Era::Legacy, "alpha"));
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}/mcp", dead.local_addr().unwrap());
    drop(dead);
    let home = Home::new();
    let bridge_home = home.path().join("bridge");
    std::fs::create_dir_all(&bridge_home).unwrap();
    std::fs::write(
        bridge_home.join("config.toml"),
        format!(
            "[[servers]]\nname = \"alpha\"\nurl = \"{}\"\n[[servers]]\nname = \"gone\"\nurl = \"{dead_url}\"\n[timeouts]\nconnect = 3\n",
            alpha.url
        ),
    )
    .unwrap();
    home.put(
        ".cursor/mcp.json",
        br#"{ "mcpServers": { "mcp-bridge": { "command": "/old/place/mcp-bridge", "args": ["serve"] } } }"#,
    );
    let env = [
        ("MCP_BRIDGE_HOME", bridge_home.to_str().unwrap()),
        ("MCP_BRIDGE_CREDENTIAL_STORE", "file"),
    ];
    let out = home.run_env(BIN, &["doctor"], &env);
    let said = text(&out.stdout);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("OK    config"), "{said}");
    assert!(
        said.lines().any(|l| l.starts_with("OK    server alpha")
            && l.contains("connected")
            && l.contains(&format!("{} tools", common::TOOLS))),
        "{said}"
    );
    assert!(
        said.lines()
            .any(|l| l.starts_with("FIX   server gone") && l.contains("cannot reach")),
        "{said}"
    );
    assert!(
        said.lines()
            .any(|l| l.starts_with("FIX   Cursor") && l.contains("mcp-bridge install cursor")),
        "{said}"
    );
    assert!(text(&out.stderr).contains("2 thing(s) to fix"), "{}", text(&out.stderr));

    let fixed = home.run_env(BIN, &["install", "cursor", "--binary", BIN], &env);
    assert!(fixed.status.success(), "{}", text(&fixed.stderr));
    let said = text(&home.run_env(BIN, &["doctor"], &env).stdout);
    assert!(
        said.lines().any(|l| l.starts_with("OK    Cursor") && l.contains(BIN)),
        "{said}"
    );
}

/// Completion scripts for each shell, naming the subcommands.
#[test]
fn completions_for_each_shell() {
    let home = Home::new();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = home.run(BIN, &["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = text(&out.stdout);
        assert!(script.contains("install") && script.contains("doctor"), "{shell}");
    }
}
