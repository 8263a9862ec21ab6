//! `mcp-bridge install` and `uninstall`: the [`crate::install`] library does the
//! file work and returns what became of each file; this tells the person, one
//! line per file (or the diff, with `--dry-run`) on stdout, a file that could
//! not be changed on stderr, and fails when any could not.

use std::path::{Path, PathBuf};

use super::out;
use crate::app::ServeOptions;
use crate::cli::InstallArgs;
use crate::install::{self, Client, FileRun, Outcome};

/// `mcp-bridge install`.
pub fn install(opts: &ServeOptions, target: &InstallArgs, binary: Option<PathBuf>) -> anyhow::Result<()> {
    let run = install::install(&options(opts, target, binary))?;
    print_lines(&run.skipped)?;
    anyhow::ensure!(
        !run.files.is_empty(),
        "no IDE or agent to install into: name one ({})",
        install::Client::ALL.map(install::Client::id).join(", ")
    );
    let failed = tell(&run.files, &target.name, installed)?;
    print_lines(&run.notes)?;
    anyhow::ensure!(failed == 0, "{failed} file(s) could not be changed");
    Ok(())
}

/// `mcp-bridge uninstall`.
pub fn uninstall(opts: &ServeOptions, target: &InstallArgs) -> anyhow::Result<()> {
    let run = install::uninstall(&options(opts, target, None));
    print_lines(&run.skipped)?;
    let failed = tell(&run.files, &target.name, uninstalled)?;
    anyhow::ensure!(failed == 0, "{failed} file(s) could not be changed");
    Ok(())
}

fn options(opts: &ServeOptions, t: &InstallArgs, binary: Option<PathBuf>) -> install::Options {
    install::Options {
        clients: t.clients.clone(),
        all: t.all,
        scope: t.scope,
        name: t.name.clone(),
        dry_run: t.dry_run,
        config: opts.config.clone(),
        binary,
    }
}

fn print_lines(lines: &[String]) -> anyhow::Result<()> {
    lines.iter().try_for_each(|l| out::print(format!("{l}\n")))
}

/// Each file's text on stdout, or its error on stderr; how many failed.
fn tell(files: &[FileRun], name: &str, text: fn(Client, &Path, &str, &Outcome) -> String) -> anyhow::Result<usize> {
    let mut failed = 0;
    for f in files {
        match &f.outcome {
            Ok(outcome) => out::print(text(f.client, &f.path, name, outcome))?,
            Err(e) => {
                failed += 1;
                eprintln!("{}: {e}", f.client.title());
            }
        }
    }
    Ok(failed)
}

/// What `install` says about one file.
fn installed(client: Client, path: &Path, name: &str, outcome: &Outcome) -> String {
    let (title, path) = (client.title(), path.display());
    match outcome {
        Outcome::Written => format!("{title}: added {name:?} to {path}; {}\n", client.reload_hint()),
        Outcome::Unchanged => format!("{title}: {path} is already up to date\n"),
        Outcome::WouldWrite(diff) | Outcome::WouldRemove(diff) => diff.clone(),
        Outcome::Absent | Outcome::Removed => String::new(),
    }
}

/// What `uninstall` says about one file.
fn uninstalled(client: Client, path: &Path, name: &str, outcome: &Outcome) -> String {
    let (title, path) = (client.title(), path.display());
    match outcome {
        Outcome::Written => format!("{title}: removed {name:?} from {path}\n"),
        Outcome::Removed => format!("{title}: removed {path}, which held only the {name:?} entry\n"),
        Outcome::Absent | Outcome::Unchanged => format!("{title}: no {name:?} entry in {path}\n"),
        Outcome::WouldWrite(diff) => diff.clone(),
        Outcome::WouldRemove(diff) => format!("{diff}(the file would be removed: nothing else is in it)\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One line per file, naming the IDE, the entry and the file; a dry run is
    /// its diff as it is; what install leaves alone says nothing.
    #[test]
    fn one_line_per_file() {
        let p = Path::new("/h/.cursor/mcp.json");
        let c = Client::Cursor;
        let diff = || "--- a\n+++ b\n".to_owned();
        assert_eq!(
            installed(c, p, "mcp-bridge", &Outcome::Written),
            format!(
                "Cursor: added \"mcp-bridge\" to /h/.cursor/mcp.json; {}\n",
                c.reload_hint()
            )
        );
        assert_eq!(
            installed(c, p, "mcp-bridge", &Outcome::Unchanged),
            "Cursor: /h/.cursor/mcp.json is already up to date\n"
        );
        assert_eq!(installed(c, p, "x", &Outcome::WouldWrite(diff())), diff());
        assert_eq!(installed(c, p, "x", &Outcome::Absent), "");
        assert_eq!(
            uninstalled(c, p, "mcp-bridge", &Outcome::Removed),
            "Cursor: removed /h/.cursor/mcp.json, which held only the \"mcp-bridge\" entry\n"
        );
        assert_eq!(
            uninstalled(c, p, "mcp-bridge", &Outcome::Unchanged),
            "Cursor: no \"mcp-bridge\" entry in /h/.cursor/mcp.json\n"
        );
        assert_eq!(
            uninstalled(c, p, "x", &Outcome::WouldRemove(diff())),
            "--- a\n+++ b\n(the file would be removed: nothing else is in it)\n"
        );
    }
}
