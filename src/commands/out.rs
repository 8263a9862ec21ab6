//! The one place a terminal command writes stdout. Under `serve` stdout is the
//! protocol and only `downstream::stdio` writes it; every other command's
//! output (a table, a listing, JSON, a diff, a completion script) goes through
//! [`print()`], so "who writes stdout" has two answers, both greppable. Messages
//! for the person (progress, warnings, errors) go to stderr instead.
//!
//! [`colour`] decides whether that output may carry colour codes.

use std::io::{IsTerminal, Write};

/// Write `text` to stdout as it is, and flush, so that it interleaves with
/// stderr in the order it was said. A reader that went away early
/// (`status | head`) is not an error: the rest is dropped.
#[allow(clippy::disallowed_methods)] // the one stdout writer outside `serve` (clippy.toml)
pub fn print(text: impl AsRef<[u8]>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_ref()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// Colour for what [`print()`] writes: stdout is a terminal and `NO_COLOR` is not
/// set (to something).
#[allow(clippy::disallowed_methods)] // asks whether stdout is a terminal; writes nothing
pub fn colour() -> bool {
    wants_colour(std::io::stdout().is_terminal(), std::env::var_os("NO_COLOR").as_deref())
}

/// Colour on a terminal unless `NO_COLOR` is set to something (no-color.org).
fn wants_colour(stdout_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stdout_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(wants_colour(true, None));
        assert!(!wants_colour(false, None));
        assert!(!wants_colour(true, Some("1".as_ref())));
        assert!(
            wants_colour(true, Some("".as_ref())),
            "an empty NO_COLOR does not count"
        );
    }
}
