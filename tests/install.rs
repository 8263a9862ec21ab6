//! `mcp-bridge install` / `uninstall` run as the user would, in a temp HOME,
//! against IDE config files in real-world shapes (comments, trailing commas,
//! other servers, tabs, CRLF, a BOM); against hostile files (a link at the
//! backup path, a linked IDE file, a project link leading out of the project,
//! a read-only file); project entries that carry nothing personal and the file
//! uninstall leaves; and `installers/install.sh` followed by the entry it leads
//! to, launched as the IDE would launch it.

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
            // The clients' own homes: only what a test puts in its temp HOME.
            .env_remove("CODEX_HOME")
            .env_remove("GEMINI_CLI_HOME")
            .env_remove("COPILOT_HOME")
            .env_remove("GOOSE_PATH_ROOT")
            .env_remove("CLINE_MCP_SETTINGS_PATH")
            .env_remove("CLINE_DATA_DIR")
            .env_remove("CLINE_DIR")
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

/// What a project entry is for every teammate: `mcp-bridge` from PATH, `serve`,
/// nothing else.
fn project_entry(client: &str) -> Value {
    let mut e = json!({ "command": "mcp-bridge", "args": ["serve"], "env": {} });
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
            edit::get(&written_text, *key, "mcp-bridge").unwrap(),
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

    let out = home.run(BIN, &["install", "vscode", "--scope", "project", "--name", "corp"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = std::fs::read_to_string(home.project().join(".vscode/mcp.json")).unwrap();
    assert_eq!(edit::get(&t, "servers", "corp").unwrap(), Some(project_entry("vscode")));
    let t: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(t["servers"].as_object().unwrap().len(), 1);

    let out = home.run(BIN, &["install", "windsurf", "--scope", "project"]);
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

/// Every file and link under `dir` (links not followed), relative to it.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[cfg(unix)]
fn link(target: impl AsRef<Path>, at: &Path) {
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, at).unwrap();
}

#[cfg(unix)]
fn is_link(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// A JSONC Cursor file with a comment, as a cloned repository may ship one.
const CURSOR_JSONC: &[u8] = b"{\n  // team servers\n  \"mcpServers\": {}\n}\n";

/// The issue's attack: a repository ships `.cursor/mcp.json` and, beside it, a
/// dangling link `mcp.json.mcp-bridge.bak -> ../.git/hooks/post-commit`.
/// `install --scope project` makes no backup in the repository, so nothing is
/// written through the link and no hook appears. The same dangling link at
/// user scope (`~/.cursor/mcp.json.mcp-bridge.bak -> anywhere`) is refused
/// with a message and a non-zero exit; the file and the link's target are
/// untouched.
#[cfg(unix)]
#[test]
fn a_dangling_link_at_the_backup_path_is_never_written_through() {
    let home = Home::new();
    let repo_file = home.put("proj/.cursor/mcp.json", CURSOR_JSONC);
    std::fs::create_dir_all(home.project().join(".git/hooks")).unwrap();
    let hook = home.project().join(".git/hooks/post-commit");
    link(
        "../.git/hooks/post-commit",
        &home.project().join(".cursor/mcp.json.mcp-bridge.bak"),
    );
    let out = home.run(BIN, &["install", "cursor", "--scope", "project"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!hook.exists() && !is_link(&hook), "a hook was created");
    let written = std::fs::read_to_string(&repo_file).unwrap();
    assert_eq!(
        edit::get(&written, "mcpServers", "mcp-bridge").unwrap(),
        Some(project_entry("cursor"))
    );

    let file = home.put(".cursor/mcp.json", CURSOR_JSONC);
    let elsewhere = home.path().join("elsewhere/run-me");
    std::fs::create_dir_all(elsewhere.parent().unwrap()).unwrap();
    link(&elsewhere, &home.path().join(".cursor/mcp.json.mcp-bridge.bak"));
    let out = home.run(BIN, &["install", "cursor", "--binary", BIN]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("mcp.json.mcp-bridge.bak is a symbolic link") && err.contains("left untouched"),
        "{err}"
    );
    assert!(!elsewhere.exists());
    assert_eq!(std::fs::read(&file).unwrap(), CURSOR_JSONC);
}

/// A backup path that links to an existing file (or is a directory) is refused:
/// the linked file keeps its bytes and mode, the IDE file is untouched.
#[cfg(unix)]
#[test]
fn a_backup_path_that_is_not_a_plain_new_file_is_refused() {
    let home = Home::new();
    let file = home.put(".cursor/mcp.json", CURSOR_JSONC);
    let victim = home.put("victim.sh", b"#!/bin/sh\necho mine\n");
    std::fs::set_permissions(&victim, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let bak = home.path().join(".cursor/mcp.json.mcp-bridge.bak");
    link(&victim, &bak);
    let out = home.run(BIN, &["install", "cursor", "--binary", BIN]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("is a symbolic link") && err.contains("remove the link"),
        "{err}"
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"#!/bin/sh\necho mine\n");
    assert_eq!(mode(&victim), 0o755);
    assert_eq!(std::fs::read(&file).unwrap(), CURSOR_JSONC);

    std::fs::remove_file(&bak).unwrap();
    std::fs::create_dir(&bak).unwrap();
    let out = home.run(BIN, &["install", "cursor", "--binary", BIN]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("is not a regular file"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), CURSOR_JSONC);
}

/// A user file kept in a dotfiles directory through a chain of links is edited
/// at its target: the links stay links, the backup and the temp file go beside
/// the target (none is left beside the link), and uninstall gives back the
/// target's bytes.
#[cfg(unix)]
#[test]
fn a_linked_user_file_is_edited_at_its_target() {
    let home = Home::new();
    let original = fixture("cursor-with-comments.json");
    let target = home.put("dotfiles/cursor/mcp.json", &original);
    link(
        "../dotfiles/cursor/mcp.json",
        &home.path().join("dotfiles/current-mcp.json"),
    );
    let file = home.path().join(".cursor/mcp.json");
    link("../dotfiles/current-mcp.json", &file);

    let out = home.run(BIN, &["install", "cursor", "--binary", BIN]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(is_link(&file) && is_link(&home.path().join("dotfiles/current-mcp.json")));
    let written = std::fs::read_to_string(&target).unwrap();
    assert_eq!(
        edit::get(&written, "mcpServers", "mcp-bridge").unwrap(),
        Some(expected_entry("cursor"))
    );
    assert_eq!(tree(&home.path().join(".cursor")), ["mcp.json"]);
    assert_eq!(
        tree(&home.path().join("dotfiles/cursor")),
        ["mcp.json", "mcp.json.mcp-bridge.bak"]
    );
    assert_eq!(
        std::fs::read(home.path().join("dotfiles/cursor/mcp.json.mcp-bridge.bak")).unwrap(),
        original
    );
    assert_eq!(
        mode(&home.path().join("dotfiles/cursor/mcp.json.mcp-bridge.bak")),
        0o600
    );

    let out = home.run(BIN, &["uninstall", "cursor"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(is_link(&file));
    assert_eq!(std::fs::read(&target).unwrap(), original);
}

/// At project scope a link that leaves the project is refused: the project's
/// `.cursor/mcp.json` linking to the user's own file (which holds a token), and
/// a `.vscode` directory linking to the user's VS Code settings. Nothing is
/// written on either side and the link stays a link. A dangling link is
/// refused too, and its target not created.
#[cfg(unix)]
#[test]
fn a_project_link_out_of_the_project_is_refused() {
    let home = Home::new();
    let personal = br#"{"mcpServers": {"gh": {"command": "gh-mcp", "env": {"GITHUB_TOKEN": "ghp_secret"}}}}"#;
    let user_file = home.put(".cursor/mcp.json", personal);
    let project_file = home.project().join(".cursor/mcp.json");
    link(&user_file, &project_file);
    let vscode_user = home.put(".config/Code/User/mcp.json", b"{\"servers\": {}}\n");
    link(vscode_user.parent().unwrap(), &home.project().join(".vscode"));

    for client in ["cursor", "vscode"] {
        let out = home.run(BIN, &["install", client, "--scope", "project"]);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{client}: {err}");
        assert!(
            err.contains("outside the project") && err.contains("--scope user"),
            "{client}: {err}"
        );
        let un = home.run(BIN, &["uninstall", client, "--scope", "project"]);
        assert!(!un.status.success(), "{client}: {}", text(&un.stderr));
    }
    assert!(is_link(&project_file));
    assert_eq!(std::fs::read(&user_file).unwrap(), personal);
    assert_eq!(std::fs::read(&vscode_user).unwrap(), b"{\"servers\": {}}\n");
    assert_eq!(tree(&home.path().join(".cursor")), ["mcp.json"]);
    assert_eq!(tree(&home.path().join(".config/Code/User")), ["mcp.json"]);

    let dangling = home.project().join(".mcp.json");
    link("../gone/hook", &dangling);
    let out = home.run(BIN, &["install", "claude-code", "--scope", "project"]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("which does not exist"), "{err}");
    assert!(!home.path().join("gone").exists());
}

/// A read-only (0444) file is refused by install and uninstall with a message
/// and a non-zero exit, its bytes and mode unchanged; this holds when the tests
/// run as root, for whom the OS would allow the write.
#[cfg(unix)]
#[test]
fn a_read_only_file_is_refused() {
    let home = Home::new();
    let original = fixture("claude-code.json");
    let file = home.put(".claude.json", &original);
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o444)).unwrap();
    let out = home.run(BIN, &["install", "claude-code", "--binary", BIN]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("is read-only (mode 444)") && err.contains("chmod u+w"),
        "{err}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), original);
    assert_eq!(mode(&file), 0o444);
    assert_eq!(tree(home.path()), [".claude.json", "proj"]);

    // With our entry in it: uninstall is refused the same way.
    let with_entry = edit::upsert(
        &text(&original),
        "mcpServers",
        "mcp-bridge",
        &expected_entry("claude-code"),
    )
    .unwrap()
    .unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    std::fs::write(&file, &with_entry).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o444)).unwrap();
    let out = home.run(BIN, &["uninstall", "claude-code"]);
    assert!(!out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("is read-only"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), with_entry);
}

/// A project entry is the same for every teammate: `mcp-bridge` from PATH and
/// `serve`, none of this user's `MCP_BRIDGE_HOME` or config, and no backup in
/// the repository. `--binary` and `--config` are refused at project scope.
#[test]
fn project_entries_carry_nothing_personal() {
    let home = Home::new();
    let original = br#"{"mcpServers": {"other": {"command": "npx", "args": ["x"]}}}"#;
    let file = home.put("proj/.mcp.json", original);
    let env = [
        ("MCP_BRIDGE_HOME", home.path().join("my-bridge").display().to_string()),
        ("MCP_BRIDGE_CONFIG", home.path().join("my.toml").display().to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = home.run_env(BIN, &["install", "claude-code", "--scope", "project"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("MCP_BRIDGE_HOME is set in this shell"), "{said}");
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        edit::get(&written, "mcpServers", "mcp-bridge").unwrap(),
        Some(project_entry("claude-code"))
    );
    assert!(!written.contains(home.path().to_str().unwrap()), "{written}");
    assert_eq!(tree(&home.project()), [".mcp.json"]);

    for extra in [["--binary", BIN], ["--config", "/etc/mcp-bridge.toml"]] {
        let mut args = vec!["install", "cursor", "--scope", "project"];
        args.extend(extra);
        let out = home.run(BIN, &args);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{extra:?}: {err}");
        assert!(err.contains(&format!("{} is for --scope user", extra[0])), "{err}");
    }
    assert_eq!(tree(&home.project()), [".mcp.json"]);
}

/// Uninstalling the last project entry leaves a file Claude Code accepts
/// (`mcpServers` an object: `{}` alone is rejected with "mcpServers: expected
/// record"), or no file when install created it; a file that was there keeps
/// its other keys.
#[test]
fn uninstalling_the_last_entry_leaves_a_file_every_client_accepts() {
    let home = Home::new();
    let file = home.project().join(".mcp.json");
    let out = home.run(BIN, &["install", "claude-code", "--scope", "project"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(file.is_file());
    let dry = home.run(BIN, &["uninstall", "claude-code", "--scope", "project", "--dry-run"]);
    assert!(
        text(&dry.stdout).contains("the file would be removed"),
        "{}",
        text(&dry.stdout)
    );
    assert!(file.is_file());
    let out = home.run(BIN, &["uninstall", "claude-code", "--scope", "project"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("which held only"), "{}", text(&out.stdout));
    assert!(!file.exists(), "{:?}", std::fs::read_to_string(&file));
    assert!(tree(&home.project()).is_empty());

    for (client, rel, key, before) in [
        ("claude-code", ".mcp.json", "mcpServers", "{\"mcpServers\": {}}\n"),
        ("claude-code", ".mcp.json", "mcpServers", "{\"$schema\": \"x\"}\n"),
        ("vscode", ".vscode/mcp.json", "servers", "{\n  // ours\n}\n"),
    ] {
        let file = home.put(&format!("proj/{rel}"), before.as_bytes());
        let out = home.run(BIN, &["install", client, "--scope", "project"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let out = home.run(BIN, &["uninstall", client, "--scope", "project"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let after = std::fs::read_to_string(&file).unwrap();
        let value: Value = serde_json::from_str(
            &after
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<String>(),
        )
        .unwrap();
        assert_eq!(value[key], json!({}), "{before:?} -> {after:?}");
        if key == "mcpServers" {
            assert_eq!(
                value.as_object().unwrap().len(),
                if before.contains("$schema") { 2 } else { 1 }
            );
        }
        std::fs::remove_file(&file).unwrap();
    }
}

/// `doctor` reads a project entry's `mcp-bridge` through PATH: OK with the
/// file it found when the bridge is on PATH, a line to fix when it is not.
#[test]
fn doctor_finds_a_project_entry_on_path() {
    let home = Home::new();
    let out = home.run(BIN, &["install", "cursor", "--scope", "project"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bin_dir = Path::new(BIN).parent().unwrap().display().to_string();
    let env = |path: &str| {
        [
            ("MCP_BRIDGE_HOME", home.path().join("bridge").display().to_string()),
            ("MCP_BRIDGE_CREDENTIAL_STORE", "file".to_owned()),
            ("PATH", path.to_owned()),
        ]
    };
    let on_path = env(&bin_dir);
    let on_path: Vec<(&str, &str)> = on_path.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let said = text(&home.run_env(BIN, &["doctor"], &on_path).stdout);
    assert!(
        said.lines()
            .any(|l| l.starts_with("OK    Cursor") && l.contains("mcp-bridge from PATH") && l.contains(BIN)),
        "{said}"
    );
    let empty = home.path().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let off_path = env(empty.to_str().unwrap());
    let off_path: Vec<(&str, &str)> = off_path.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = home.run_env(BIN, &["doctor"], &off_path);
    let said = text(&out.stdout);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.lines()
            .any(|l| l.starts_with("FIX   Cursor") && l.contains("none on PATH")),
        "{said}"
    );
}

/// An entry naming a config that does not exist would only fail in the IDE
/// (`serve` refuses a named config that is not there): install refuses it now.
#[test]
fn a_config_that_does_not_exist_is_refused() {
    let h = Home::new();
    let missing = h.path().join("nowhere.toml");
    let o = h.run(BIN, &["--config", missing.to_str().unwrap(), "install", "cursor"]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("does not exist"), "{}", text(&o.stderr));
    assert!(!h.path().join(".cursor/mcp.json").exists());
    std::fs::write(&missing, "").unwrap();
    let o = h.run(BIN, &["--config", missing.to_str().unwrap(), "install", "cursor"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let written = std::fs::read_to_string(h.path().join(".cursor/mcp.json")).unwrap();
    assert!(written.contains("nowhere.toml"), "{written}");
}

/// Codex's TOML place, as the tests read its file.
const CODEX: edit::Place<'static> = edit::Place {
    format: edit::Format::Toml,
    key: "mcp_servers",
};

/// The entry `install codex` writes for this binary.
fn codex_entry() -> Value {
    json!({ "command": BIN, "args": ["serve"], "startup_timeout_sec": 30 })
}

/// `install codex` into a `~/.codex/config.toml` with comments, other tables
/// and servers: the file keeps every line and gains the `[mcp_servers.mcp-bridge]`
/// table, backed up once; again, nothing changes; `doctor` sees the entry;
/// `uninstall codex` gives back the original bytes.
#[test]
fn codex_install_keeps_the_toml_file_and_uninstall_restores_it() {
    let home = Home::new();
    let original = fixture("codex-config.toml");
    let file = home.put(".codex/config.toml", &original);

    let dry = home.run_env(BIN, &["install", "codex", "--dry-run", "--binary", BIN], &[]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert!(
        text(&dry.stdout).contains("+[mcp_servers.mcp-bridge]"),
        "{}",
        text(&dry.stdout)
    );
    assert_eq!(std::fs::read(&file).unwrap(), original);

    let out = home.run_env(BIN, &["install", "codex", "--binary", BIN], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("codex mcp list"), "{}", text(&out.stdout));
    let written = String::from_utf8(std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(edit::get(&written, CODEX, "mcp-bridge").unwrap(), Some(codex_entry()));
    for line in text(&original).lines() {
        assert!(written.lines().any(|l| l == line), "lost {line:?}:\n{written}");
    }
    assert!(written.contains("\n[mcp_servers.mcp-bridge]\ncommand = "), "{written}");
    // The other servers are still what they were.
    assert_eq!(
        edit::entries_with_command(&written, CODEX, |c| c == "npx").unwrap(),
        ["github"]
    );
    let bak = home.path().join(".codex/config.toml.mcp-bridge.bak");
    assert_eq!(std::fs::read(&bak).unwrap(), original);

    let again = home.run_env(BIN, &["install", "codex", "--binary", BIN], &[]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(text(&again.stdout).contains("already up to date"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), written);

    let doctor_env = [
        ("MCP_BRIDGE_HOME", home.path().join("bridge").display().to_string()),
        ("MCP_BRIDGE_CREDENTIAL_STORE", "file".to_owned()),
    ];
    let doctor_env: Vec<(&str, &str)> = doctor_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let said = text(&home.run_env(BIN, &["doctor"], &doctor_env).stdout);
    assert!(
        said.lines()
            .any(|l| l.starts_with("OK    Codex") && l.contains("config.toml") && l.contains(BIN)),
        "{said}"
    );

    let un = home.run_env(BIN, &["uninstall", "codex"], &[]);
    assert!(un.status.success(), "{}", text(&un.stderr));
    assert_eq!(text(&std::fs::read(&file).unwrap()), text(&original));
    assert_eq!(std::fs::read(&bak).unwrap(), original);
}

/// `CODEX_HOME` names Codex's home: the file is created there (not in
/// `~/.codex`) with the bridge's environment as `[mcp_servers.mcp-bridge.env]`,
/// and uninstall removes the file it created; `--all` finds Codex by that home.
#[test]
fn codex_home_is_respected() {
    let home = Home::new();
    let codex_home = home.path().join("tools/codex");
    std::fs::create_dir_all(&codex_home).unwrap();
    let bridge_home = home.path().join("bridge");
    let env = [
        ("CODEX_HOME", codex_home.display().to_string()),
        ("MCP_BRIDGE_HOME", bridge_home.display().to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = home.run_env(BIN, &["install", "--all", "--binary", BIN], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = codex_home.join("config.toml");
    let written = std::fs::read_to_string(&file).unwrap();
    let mut expected = codex_entry();
    expected["env"] = json!({ "MCP_BRIDGE_HOME": bridge_home.display().to_string() });
    assert_eq!(edit::get(&written, CODEX, "mcp-bridge").unwrap(), Some(expected));
    assert!(
        written.starts_with("[mcp_servers.mcp-bridge]\n") && written.contains("\n[mcp_servers.mcp-bridge.env]\n"),
        "{written}"
    );
    assert!(!home.path().join(".codex").exists());

    let un = home.run_env(BIN, &["uninstall", "codex"], &env);
    assert!(un.status.success(), "{}", text(&un.stderr));
    assert!(text(&un.stdout).contains("which held only"), "{}", text(&un.stdout));
    assert!(!file.exists());
}

/// A config.toml that does not parse is left exactly as it was, the line named.
#[test]
fn codex_corrupt_toml_is_left_untouched() {
    let home = Home::new();
    let corrupt = b"model = \"o3\"\n\n[mcp_servers.github\ncommand = \"npx\"\n";
    let file = home.put(".codex/config.toml", corrupt);
    let out = home.run_env(BIN, &["install", "codex", "--binary", BIN], &[]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("line 3") && err.contains("left untouched"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), corrupt);
    assert!(!home.path().join(".codex/config.toml.mcp-bridge.bak").exists());
}

/// At project scope Codex's entry is the shared one (`mcp-bridge` from PATH,
/// `serve`, the startup timeout) in the project's `.codex/config.toml`, which
/// Codex reads in a trusted project; no backup in the repository, and the file
/// install created goes with uninstall.
#[test]
fn codex_project_entry_is_shared() {
    let home = Home::new();
    let out = home.run_env(BIN, &["install", "codex", "--scope", "project"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = home.project().join(".codex/config.toml");
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        written,
        "[mcp_servers.mcp-bridge]\ncommand = \"mcp-bridge\"\nargs = [\"serve\"]\nstartup_timeout_sec = 30\n"
    );
    assert_eq!(tree(&home.project()), [".codex", ".codex/config.toml"]);
    let un = home.run_env(BIN, &["uninstall", "codex", "--scope", "project"], &[]);
    assert!(un.status.success(), "{}", text(&un.stderr));
    assert!(!file.exists());
}

/// The terminal agents' variables, unset (an empty value counts as unset), so a
/// test sees only the files it puts in its temp HOME.
const NO_AGENT_HOMES: [(&str, &str); 2] = [("GEMINI_CLI_HOME", ""), ("COPILOT_HOME", "")];

/// Gemini CLI, Copilot CLI and opencode: each client, its fixture, where its
/// user file lives (Linux), its key, and the entry `install --binary BIN` writes.
fn agent_cases() -> Vec<(&'static str, &'static str, &'static str, &'static str, Value)> {
    vec![
        (
            "gemini",
            "gemini-settings.json",
            ".gemini/settings.json",
            "mcpServers",
            json!({ "command": BIN, "args": ["serve"], "env": {}, "timeout": 600_000 }),
        ),
        (
            "copilot",
            "copilot-mcp-config.json",
            ".copilot/mcp-config.json",
            "mcpServers",
            json!({ "type": "local", "command": BIN, "args": ["serve"], "env": {}, "tools": ["*"] }),
        ),
        (
            "opencode",
            "opencode.jsonc",
            ".config/opencode/opencode.jsonc",
            "mcp",
            json!({ "type": "local", "command": [BIN, "serve"], "enabled": true, "environment": {} }),
        ),
    ]
}

/// For each terminal agent, on a real-world file (comments where the client
/// reads them, other servers, opencode's trailing commas): install adds the
/// entry in the client's shape and keeps the rest, a second install writes
/// nothing, uninstall gives back the original bytes; Gemini's trust is a note.
#[test]
fn terminal_agents_install_reinstall_uninstall() {
    for (client, fixture_name, rel, key, entry) in agent_cases() {
        let home = Home::new();
        let original = fixture(fixture_name);
        let file = home.put(rel, &original);

        let out = home.run_env(BIN, &["install", client, "--binary", BIN], &NO_AGENT_HOMES);
        assert!(out.status.success(), "{client}: {}", text(&out.stderr));
        let said = text(&out.stdout);
        assert!(said.contains(&file.display().to_string()), "{client}: {said}");
        let written = std::fs::read(&file).unwrap();
        let written_text = String::from_utf8(written.clone()).unwrap();
        assert_eq!(
            edit::get(&written_text, key, "mcp-bridge").unwrap(),
            Some(entry),
            "{client}: {written_text}"
        );
        let original_text = String::from_utf8(original.clone()).unwrap();
        for line in original_text.lines().filter(|l| l.contains("//") || l.contains("/*")) {
            assert!(written_text.contains(line.trim()), "{client}: lost comment {line:?}");
        }
        // The other server is still there, as it was.
        let other = if client == "opencode" { "jira" } else { "github" };
        let other = if client == "copilot" { "playwright" } else { other };
        assert_eq!(
            edit::get(&written_text, key, other).unwrap(),
            edit::get(&original_text, key, other).unwrap(),
            "{client}"
        );
        assert!(edit::get(&written_text, key, other).unwrap().is_some(), "{client}");
        if client == "gemini" {
            assert!(
                said.contains("trusted folder") && said.contains("TRUST_FOLDER"),
                "{said}"
            );
            assert!(!home.path().join(".gemini/trustedFolders.json").exists());
        } else {
            assert!(!said.contains("TRUST_FOLDER"), "{client}: {said}");
        }

        let again = home.run_env(BIN, &["install", client, "--binary", BIN], &NO_AGENT_HOMES);
        assert!(again.status.success(), "{client}: {}", text(&again.stderr));
        assert!(text(&again.stdout).contains("already up to date"), "{client}");
        assert_eq!(std::fs::read(&file).unwrap(), written, "{client}");

        let un = home.run_env(BIN, &["uninstall", client], &NO_AGENT_HOMES);
        assert!(un.status.success(), "{client}: {}", text(&un.stderr));
        assert_eq!(text(&std::fs::read(&file).unwrap()), original_text, "{client}");
        let bak = PathBuf::from(format!("{}.mcp-bridge.bak", file.display()));
        assert_eq!(std::fs::read(&bak).unwrap(), original, "{client}");
    }
}

/// `GEMINI_CLI_HOME` (a home: files in its `.gemini`), `COPILOT_HOME` (the
/// directory itself) and `XDG_CONFIG_HOME` (opencode) move the user files;
/// nothing is written at the default places.
#[test]
fn terminal_agents_follow_their_variables() {
    let home = Home::new();
    let g = home.path().join("g");
    let c = home.path().join("c");
    let x = home.path().join("x");
    let env = [
        ("GEMINI_CLI_HOME", g.to_str().unwrap()),
        ("COPILOT_HOME", c.to_str().unwrap()),
        ("XDG_CONFIG_HOME", x.to_str().unwrap()),
    ];
    let out = home.run_env(
        BIN,
        &["install", "gemini", "copilot", "opencode", "--binary", BIN],
        &env,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    for (file, key) in [
        (g.join(".gemini/settings.json"), "mcpServers"),
        (c.join("mcp-config.json"), "mcpServers"),
        (x.join("opencode/opencode.json"), "mcp"),
    ] {
        let t = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(edit::get(&t, key, "mcp-bridge").unwrap().is_some(), "{t}");
    }
    // The note names the trusted-folders file under GEMINI_CLI_HOME.
    let said = text(&out.stdout);
    assert!(
        said.contains(&g.join(".gemini/trustedFolders.json").display().to_string()),
        "{said}"
    );
    for default in [".gemini", ".copilot", ".config"] {
        assert!(!home.path().join(default).exists(), "{default} was created");
    }
    let un = home.run_env(BIN, &["uninstall", "gemini", "copilot", "opencode"], &env);
    assert!(un.status.success(), "{}", text(&un.stderr));
    // Files that held only the entry are gone.
    assert!(!c.join("mcp-config.json").exists());
    assert!(!x.join("opencode/opencode.json").exists());
}

/// Project scope: Gemini's `.gemini/settings.json`, Copilot's
/// `.github/mcp.json` (not Claude Code's `.mcp.json`), opencode's existing
/// `opencode.jsonc`; each a project entry; the project is not trusted behind
/// the person's back, the note says how.
#[test]
fn terminal_agents_project_scope() {
    let home = Home::new();
    let oc = fixture("opencode.jsonc");
    let oc_file = home.put("proj/opencode.jsonc", &oc);
    let out = home.run_env(
        BIN,
        &["install", "gemini", "copilot", "opencode", "--scope", "project"],
        &NO_AGENT_HOMES,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let p = home.project();
    let read = |rel: &str| std::fs::read_to_string(p.join(rel)).unwrap();
    assert_eq!(
        edit::get(&read(".gemini/settings.json"), "mcpServers", "mcp-bridge").unwrap(),
        Some(json!({ "command": "mcp-bridge", "args": ["serve"], "env": {}, "timeout": 600_000 }))
    );
    assert_eq!(
        edit::get(&read(".github/mcp.json"), "mcpServers", "mcp-bridge").unwrap(),
        Some(json!({ "type": "local", "command": "mcp-bridge", "args": ["serve"], "env": {}, "tools": ["*"] }))
    );
    assert_eq!(
        edit::get(&read("opencode.jsonc"), "mcp", "mcp-bridge").unwrap(),
        Some(json!({ "type": "local", "command": ["mcp-bridge", "serve"], "enabled": true, "environment": {} }))
    );
    assert!(!p.join("opencode.json").exists());
    assert!(!p.join(".mcp.json").exists());
    assert!(!home.path().join(".gemini").exists(), "trustedFolders.json written");
    let said = text(&out.stdout);
    assert!(
        said.contains(&p.display().to_string()) && said.contains("TRUST_FOLDER"),
        "{said}"
    );
    assert!(said.contains(".github/mcp.json only once you have trusted"), "{said}");

    let un = home.run_env(
        BIN,
        &["uninstall", "gemini", "copilot", "opencode", "--scope", "project"],
        &NO_AGENT_HOMES,
    );
    assert!(un.status.success(), "{}", text(&un.stderr));
    assert!(!p.join(".gemini/settings.json").exists());
    assert!(!p.join(".github/mcp.json").exists());
    assert_eq!(std::fs::read(&oc_file).unwrap(), oc);
}

/// `doctor` finds each agent's entry and what it launches (opencode's
/// command is an array); `--all` finds the agents whose directory exists.
#[test]
fn doctor_and_all_see_terminal_agents() {
    let home = Home::new();
    for dir in [".gemini", ".copilot", ".config/opencode"] {
        std::fs::create_dir_all(home.path().join(dir)).unwrap();
    }
    let out = home.run_env(BIN, &["install", "--all", "--binary", BIN], &NO_AGENT_HOMES);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("Cursor: not found"), "{said}");
    for title in ["Gemini CLI", "Copilot CLI", "opencode"] {
        assert!(said.contains(&format!("{title}: added")), "{title}: {said}");
    }
    let bridge_home = home.path().join("bridge").display().to_string();
    let mut env = vec![
        ("MCP_BRIDGE_HOME", bridge_home.as_str()),
        ("MCP_BRIDGE_CREDENTIAL_STORE", "file"),
    ];
    env.extend(NO_AGENT_HOMES);
    let said = text(&home.run_env(BIN, &["doctor"], &env).stdout);
    for title in ["Gemini CLI", "Copilot CLI", "opencode"] {
        assert!(
            said.lines()
                .any(|l| l.starts_with(&format!("OK    {title}:")) && l.contains(&format!("launches {BIN}"))),
            "{title}: {said}"
        );
    }
}

/// Cline's variables, unset.
const NO_CLINE_ENV: [(&str, &str); 3] = [
    ("CLINE_MCP_SETTINGS_PATH", ""),
    ("CLINE_DATA_DIR", ""),
    ("CLINE_DIR", ""),
];

/// Kiro and Amazon Q (user and project), LM Studio and Cline (user only; its 4.x shared
/// file, and the pre-4.0 file in VS Code's globalStorage when that exists):
/// the entry goes in beside what is there, once; uninstall gives the file
/// back, or removes a file that held only the entry.
#[test]
fn kiro_lm_studio_cline_install_and_uninstall() {
    let home = Home::new();
    let kiro = fixture("kiro-mcp.json");
    let kiro_file = home.put(".kiro/settings/mcp.json", &kiro);
    let lm = home.path().join(".lmstudio/mcp.json");
    let cline = home.path().join(".cline/data/settings/cline_mcp_settings.json");
    let legacy_text = b"{\n  \"mcpServers\": {\n    \"fs\": { \"command\": \"npx\", \"disabled\": true }\n  }\n}\n";
    let legacy = home.put(
        ".config/Code/User/globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json",
        legacy_text,
    );
    let clients = ["install", "kiro", "lm-studio", "cline", "--binary", BIN];
    let out = home.run_env(BIN, &clients, &NO_CLINE_ENV);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for file in [&kiro_file, &lm, &cline, &legacy] {
        let t = std::fs::read_to_string(file).unwrap();
        assert_eq!(
            edit::get(&t, "mcpServers", "mcp-bridge").unwrap(),
            Some(expected_entry("cursor")),
            "{}",
            file.display()
        );
    }
    let kiro_text = std::fs::read_to_string(&kiro_file).unwrap();
    assert!(edit::get(&kiro_text, "mcpServers", "aws-docs").unwrap().is_some());
    let again = home.run_env(BIN, &clients, &NO_CLINE_ENV);
    assert_eq!(
        text(&again.stdout).matches("already up to date").count(),
        4,
        "{}",
        text(&again.stdout)
    );

    let un = home.run_env(BIN, &["uninstall", "kiro", "lm-studio", "cline"], &NO_CLINE_ENV);
    assert!(un.status.success(), "{}", text(&un.stderr));
    assert_eq!(std::fs::read(&kiro_file).unwrap(), kiro);
    assert!(!lm.exists() && !cline.exists());
    assert_eq!(std::fs::read(&legacy).unwrap(), legacy_text);

    // Amazon Q Developer CLI: its legacy mcp.json, at both scopes.
    let out = home.run(BIN, &["install", "amazon-q", "--binary", BIN]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = std::fs::read_to_string(home.path().join(".aws/amazonq/mcp.json")).unwrap();
    assert_eq!(
        edit::get(&t, "mcpServers", "mcp-bridge").unwrap(),
        Some(expected_entry("cursor"))
    );
    let out = home.run(BIN, &["install", "amazon-q", "--scope", "project"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = std::fs::read_to_string(home.project().join(".amazonq/mcp.json")).unwrap();
    assert_eq!(
        edit::get(&t, "mcpServers", "mcp-bridge").unwrap(),
        Some(project_entry("q"))
    );

    // CLINE_DIR moves the shared file.
    let moved = home.path().join("cl");
    let env = [
        ("CLINE_DIR", moved.to_str().unwrap()),
        ("CLINE_DATA_DIR", ""),
        ("CLINE_MCP_SETTINGS_PATH", ""),
    ];
    let out = home.run_env(BIN, &["install", "cline", "--binary", BIN], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(moved.join("data/settings/cline_mcp_settings.json").is_file());
    assert!(!cline.exists());

    let out = home.run(BIN, &["install", "kiro", "--scope", "project"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = std::fs::read_to_string(home.project().join(".kiro/settings/mcp.json")).unwrap();
    assert_eq!(
        edit::get(&t, "mcpServers", "mcp-bridge").unwrap(),
        Some(project_entry("kiro"))
    );
    for no_project in ["lm-studio", "cline"] {
        let out = home.run(BIN, &["install", no_project, "--scope", "project"]);
        assert!(!out.status.success(), "{no_project}");
    }
}

/// At project scope the Gemini note is left out when trustedFolders.json
/// already trusts the project, and says so when it distrusts it; the file is
/// only read.
#[test]
fn gemini_project_note_follows_trusted_folders() {
    let home = Home::new();
    let project = std::fs::canonicalize(home.project()).unwrap();
    let rules = |level: &str| {
        format!(
            "{{\n  // mine\n  {:?}: \"{level}\"\n}}\n",
            project.display().to_string()
        )
    };
    let trusted = rules("TRUST_FOLDER");
    let file = home.put(".gemini/trustedFolders.json", trusted.as_bytes());
    let out = home.run_env(BIN, &["install", "gemini", "--scope", "project"], &NO_AGENT_HOMES);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(!said.contains("note: Gemini"), "{said}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), trusted);

    std::fs::write(&file, rules("DO_NOT_TRUST")).unwrap();
    let out = home.run_env(BIN, &["install", "gemini", "--scope", "project"], &NO_AGENT_HOMES);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("as not trusted"), "{said}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), rules("DO_NOT_TRUST"));
}

/// Zed: its `settings.json` (JSON with comments, holding everything else Zed
/// is set to) gains `context_servers.mcp-bridge` and keeps the rest byte for
/// byte; a second install changes nothing; uninstall takes out only the entry
/// (`context_servers` stays, empty); the project's `.zed/settings.json` gets
/// the shared entry.
#[test]
fn zed_settings_keep_everything_else() {
    let home = Home::new();
    let settings = b"// Zed settings\n//\n// For information on how to configure Zed, see the Zed\n// documentation: https://zed.dev/docs/configuring-zed\n{\n  \"theme\": \"One Dark\", // the dark one\n  \"ui_font_size\": 16,\n  \"buffer_font_size\": 15,\n}\n";
    let file = home.put(".config/zed/settings.json", settings);
    let out = home.run(BIN, &["install", "zed", "--binary", BIN]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        edit::get(&written, "context_servers", "mcp-bridge").unwrap(),
        Some(expected_entry("cursor"))
    );
    assert!(written.starts_with("// Zed settings\n"), "{written}");
    assert!(
        written.contains("\"theme\": \"One Dark\", // the dark one\n"),
        "{written}"
    );
    let again = home.run(BIN, &["install", "zed", "--binary", BIN]);
    assert!(
        text(&again.stdout).contains("already up to date"),
        "{}",
        text(&again.stdout)
    );

    let un = home.run(BIN, &["uninstall", "zed"]);
    assert!(un.status.success(), "{}", text(&un.stderr));
    let left = std::fs::read_to_string(&file).unwrap();
    assert_eq!(edit::get(&left, "context_servers", "mcp-bridge").unwrap(), None);
    assert!(
        left.starts_with("// Zed settings\n") && left.contains("\"ui_font_size\": 16,"),
        "{left}"
    );

    let out = home.run(BIN, &["install", "zed", "--scope", "project"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = std::fs::read_to_string(home.project().join(".zed/settings.json")).unwrap();
    assert_eq!(
        edit::get(&t, "context_servers", "mcp-bridge").unwrap(),
        Some(project_entry("zed"))
    );
}

const GOOSE: edit::Place<'static> = edit::Place {
    format: edit::Format::Yaml,
    key: "extensions",
};

/// `GOOSE_PATH_ROOT` unset for Goose's tests (empty is ignored, as by Goose).
const NO_GOOSE_ROOT: [(&str, &str); 1] = [("GOOSE_PATH_ROOT", "")];

fn goose_entry() -> Value {
    json!({
        "enabled": true, "type": "stdio", "name": "mcp-bridge", "description": "",
        "cmd": BIN, "args": ["serve"], "envs": {}, "timeout": 300,
    })
}

/// `install goose` into a `~/.config/goose/config.yaml` with comments, Goose's
/// own keys and other extensions: the file keeps every line and gains
/// `extensions.mcp-bridge`, backed up once; again, nothing changes; `doctor`
/// sees the entry; `uninstall goose` gives back the original bytes.
#[test]
fn goose_install_keeps_the_yaml_file_and_uninstall_restores_it() {
    let home = Home::new();
    let original = fixture("goose-config.yaml");
    let file = home.put(".config/goose/config.yaml", &original);

    let dry = home.run_env(BIN, &["install", "goose", "--dry-run", "--binary", BIN], &NO_GOOSE_ROOT);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert!(text(&dry.stdout).contains("+  mcp-bridge:"), "{}", text(&dry.stdout));
    assert_eq!(std::fs::read(&file).unwrap(), original);

    let out = home.run_env(BIN, &["install", "goose", "--binary", BIN], &NO_GOOSE_ROOT);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("goose session"), "{}", text(&out.stdout));
    let written = String::from_utf8(std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(edit::get(&written, GOOSE, "mcp-bridge").unwrap(), Some(goose_entry()));
    for line in text(&original).lines() {
        assert!(written.lines().any(|l| l == line), "lost {line:?}:\n{written}");
    }
    assert!(written.contains("\n  mcp-bridge:\n    enabled: true\n"), "{written}");
    assert_eq!(
        edit::entries_with_command(&written, GOOSE, |c| c == "npx").unwrap(),
        ["github"]
    );
    let bak = home.path().join(".config/goose/config.yaml.mcp-bridge.bak");
    assert_eq!(std::fs::read(&bak).unwrap(), original);

    let again = home.run_env(BIN, &["install", "goose", "--binary", BIN], &NO_GOOSE_ROOT);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(text(&again.stdout).contains("already up to date"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), written);

    let doctor_env = [
        ("MCP_BRIDGE_HOME", home.path().join("bridge").display().to_string()),
        ("MCP_BRIDGE_CREDENTIAL_STORE", "file".to_owned()),
        ("GOOSE_PATH_ROOT", String::new()),
    ];
    let doctor_env: Vec<(&str, &str)> = doctor_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let said = text(&home.run_env(BIN, &["doctor"], &doctor_env).stdout);
    assert!(
        said.lines()
            .any(|l| l.starts_with("OK    Goose") && l.contains("config.yaml") && l.contains(BIN)),
        "{said}"
    );

    let un = home.run_env(BIN, &["uninstall", "goose"], &NO_GOOSE_ROOT);
    assert!(un.status.success(), "{}", text(&un.stderr));
    assert_eq!(text(&std::fs::read(&file).unwrap()), text(&original));
}

/// `install --all` finds Goose by its config directory and creates the file
/// there; uninstall removes the file it created. Goose has no project scope.
#[test]
fn goose_is_found_by_install_all() {
    let home = Home::new();
    let dir = home.path().join(".config/goose");
    std::fs::create_dir_all(&dir).unwrap();
    let mut env = NO_AGENT_HOMES.to_vec();
    env.extend(NO_GOOSE_ROOT);
    let out = home.run_env(BIN, &["install", "--all", "--binary", BIN], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = dir.join("config.yaml");
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(edit::get(&written, GOOSE, "mcp-bridge").unwrap(), Some(goose_entry()));
    assert!(written.starts_with("extensions:\n  mcp-bridge:\n"), "{written}");

    let un = home.run_env(BIN, &["uninstall", "goose"], &env);
    assert!(un.status.success(), "{}", text(&un.stderr));
    assert!(!file.exists(), "{}", text(&un.stdout));

    let out = home.run_env(BIN, &["install", "goose", "--scope", "project"], &env);
    assert!(!out.status.success());
    assert!(
        text(&out.stdout).contains("Goose has no project configuration"),
        "{}",
        text(&out.stdout)
    );
    assert!(!home.project().join(".config").exists());
}

/// A config.yaml that does not parse is left exactly as it was, the line named.
#[test]
fn goose_corrupt_yaml_is_left_untouched() {
    let home = Home::new();
    let corrupt = b"GOOSE_MODEL: o3\nextensions:\n  github: {cmd: npx\n";
    let file = home.put(".config/goose/config.yaml", corrupt);
    let out = home.run_env(BIN, &["install", "goose", "--binary", BIN], &NO_GOOSE_ROOT);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("line 4") && err.contains("left untouched"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), corrupt);
}

/// Roo Code (its file in VS Code's globalStorage) and Junie: each client, its
/// fixture, where its user file lives (Linux), its title, and the entry
/// `install --binary BIN` writes.
fn ide_extension_cases() -> Vec<(&'static str, &'static str, &'static str, &'static str, Value)> {
    vec![
        (
            "roo-code",
            "roo-mcp-settings.json",
            ".config/Code/User/globalStorage/rooveterinaryinc.roo-cline/settings/mcp_settings.json",
            "Roo Code",
            json!({ "type": "stdio", "command": BIN, "args": ["serve"], "env": {}, "timeout": 300 }),
        ),
        (
            "junie",
            "junie-mcp.json",
            ".junie/mcp/mcp.json",
            "Junie",
            json!({ "command": BIN, "args": ["serve"], "env": {} }),
        ),
    ]
}

/// Roo Code and Junie on files as they write them (other servers, Roo's
/// approvals and remote entries): install adds the entry beside them, backed
/// up once; again, nothing changes; `doctor` sees it; uninstall gives back the
/// original bytes. At project scope, the shared entry goes into `.roo/mcp.json`
/// and `.junie/mcp/mcp.json`.
#[test]
fn roo_code_and_junie_install_reinstall_uninstall() {
    for (client, fixture_name, rel, title, entry) in ide_extension_cases() {
        let home = Home::new();
        let original = fixture(fixture_name);
        let file = home.put(rel, &original);
        let before = String::from_utf8(original.clone()).unwrap();

        let out = home.run(BIN, &["install", client, "--binary", BIN]);
        assert!(out.status.success(), "{client}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains(&format!("{title}: added")),
            "{}",
            text(&out.stdout)
        );
        let written = String::from_utf8(std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(
            edit::get(&written, "mcpServers", "mcp-bridge").unwrap(),
            Some(entry),
            "{written}"
        );
        let others = ["filesystem", "github", "postgres"];
        for name in others.into_iter().filter(|n| before.contains(&format!("\"{n}\""))) {
            assert_eq!(
                edit::get(&written, "mcpServers", name).unwrap(),
                edit::get(&before, "mcpServers", name).unwrap(),
                "{client}: {name}"
            );
        }
        let bak = PathBuf::from(format!("{}.mcp-bridge.bak", file.display()));
        assert_eq!(std::fs::read(&bak).unwrap(), original, "{client}: backup");

        let again = home.run(BIN, &["install", client, "--binary", BIN]);
        assert!(again.status.success(), "{client}: {}", text(&again.stderr));
        assert!(text(&again.stdout).contains("already up to date"), "{client}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), written, "{client}");

        let bridge_home = home.path().join("bridge").display().to_string();
        let env = [
            ("MCP_BRIDGE_HOME", bridge_home.as_str()),
            ("MCP_BRIDGE_CREDENTIAL_STORE", "file"),
        ];
        let said = text(&home.run_env(BIN, &["doctor"], &env).stdout);
        assert!(
            said.lines()
                .any(|l| l.starts_with(&format!("OK    {title}:")) && l.contains(&format!("launches {BIN}"))),
            "{client}: {said}"
        );

        let un = home.run(BIN, &["uninstall", client]);
        assert!(un.status.success(), "{client}: {}", text(&un.stderr));
        assert_eq!(text(&std::fs::read(&file).unwrap()), before, "{client}");

        let out = home.run(BIN, &["install", client, "--scope", "project"]);
        assert!(out.status.success(), "{client}: {}", text(&out.stderr));
        let project_file = match client {
            "roo-code" => home.project().join(".roo/mcp.json"),
            _ => home.project().join(".junie/mcp/mcp.json"),
        };
        let t = std::fs::read_to_string(&project_file).unwrap();
        let mut shared = json!({ "command": "mcp-bridge", "args": ["serve"], "env": {} });
        if client == "roo-code" {
            shared["type"] = json!("stdio");
            shared["timeout"] = json!(300);
        }
        assert_eq!(edit::get(&t, "mcpServers", "mcp-bridge").unwrap(), Some(shared), "{t}");
        let un = home.run(BIN, &["uninstall", client, "--scope", "project"]);
        assert!(un.status.success(), "{client}: {}", text(&un.stderr));
        assert!(!project_file.exists(), "{client}");
    }
}

/// `install --all` finds Roo Code by its globalStorage folder and Junie by
/// `~/.junie`, and creates their files there; Visual Studio, Windows only, is
/// not found on this OS.
#[test]
fn install_all_finds_roo_code_and_junie() {
    let home = Home::new();
    let roo = home
        .path()
        .join(".config/Code/User/globalStorage/rooveterinaryinc.roo-cline");
    std::fs::create_dir_all(&roo).unwrap();
    std::fs::create_dir_all(home.path().join(".junie")).unwrap();
    let out = home.run_env(BIN, &["install", "--all", "--binary", BIN], &NO_AGENT_HOMES);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    for title in ["Roo Code", "Junie"] {
        assert!(said.contains(&format!("{title}: added")), "{title}: {said}");
    }
    assert!(said.contains("Visual Studio: not found"), "{said}");
    for file in [
        roo.join("settings/mcp_settings.json"),
        home.path().join(".junie/mcp/mcp.json"),
    ] {
        let t = std::fs::read_to_string(&file).unwrap();
        assert!(edit::get(&t, "mcpServers", "mcp-bridge").unwrap().is_some(), "{t}");
    }
}

/// Visual Studio exists on Windows only: elsewhere `install visual-studio`
/// says so at either scope and creates nothing.
#[cfg(not(windows))]
#[test]
fn visual_studio_is_windows_only() {
    let home = Home::new();
    for scope in ["user", "project"] {
        let out = home.run(BIN, &["install", "visual-studio", "--scope", scope]);
        assert!(!out.status.success(), "{scope}");
        let said = text(&out.stdout) + &text(&out.stderr);
        assert!(said.contains("Visual Studio runs on Windows only"), "{said}");
    }
    assert!(!home.path().join(".mcp.json").exists());
    assert_eq!(tree(&home.project()), Vec::<String>::new());
}

/// Continue, at project scope: a file of the bridge's own in
/// `.continue/mcpServers/`, Claude Desktop's shape; again, nothing changes;
/// `doctor` sees it; uninstall removes the file it created. Its user config
/// (a YAML list) is not edited, and `install --all` says what to do instead.
#[test]
fn continue_gets_a_project_file_of_its_own() {
    let home = Home::new();
    let beside = home.put(
        "proj/.continue/mcpServers/playwright.yaml",
        b"name: Playwright\nversion: 0.0.1\nschema: v1\nmcpServers:\n  - name: Browser\n    command: npx\n",
    );
    let out = home.run(BIN, &["install", "continue", "--scope", "project"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = home.project().join(".continue/mcpServers/mcp-bridge.json");
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        edit::get(&written, "mcpServers", "mcp-bridge").unwrap(),
        Some(project_entry("continue"))
    );
    let again = home.run(BIN, &["install", "continue", "--scope", "project"]);
    assert!(
        text(&again.stdout).contains("already up to date"),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), written);

    let bridge_home = home.path().join("bridge").display().to_string();
    let env = [
        ("MCP_BRIDGE_HOME", bridge_home.as_str()),
        ("MCP_BRIDGE_CREDENTIAL_STORE", "file"),
    ];
    let said = text(&home.run_env(BIN, &["doctor"], &env).stdout);
    assert!(
        said.lines()
            .any(|l| l.contains("Continue:") && l.contains("mcp-bridge.json")),
        "{said}"
    );

    let un = home.run(BIN, &["uninstall", "continue", "--scope", "project"]);
    assert!(un.status.success(), "{}", text(&un.stderr));
    assert!(!file.exists());
    assert!(beside.is_file());

    std::fs::create_dir_all(home.path().join(".continue")).unwrap();
    let out = home.run_env(BIN, &["install", "--all", "--binary", BIN], &NO_AGENT_HOMES);
    let said = text(&out.stdout);
    assert!(said.contains("Continue keeps user-wide servers"), "{said}");
    assert!(!home.path().join(".continue/config.yaml").exists());
}
