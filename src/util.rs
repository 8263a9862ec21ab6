//! Small helpers shared by several modules: error chains, the clock, globs,
//! retry backoff, private directories, same-file checks, the one lock-poisoning
//! policy ([`Locked`]), and [`printable`], the one escape every
//! upstream-, registry- or config-derived string goes through before it reaches
//! a terminal.

use std::borrow::Cow;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

/// Taking a `std::sync` lock, the one way the bridge does it.
///
/// A lock is poisoned when a thread panicked while holding it. Here that is a
/// bug, not a state to handle: every critical section is a few assignments that
/// leave the data whole, and a release build aborts on panic (`panic = "abort"`),
/// so no other thread ever sees the poison. In a debug build or a test the
/// panic itself is the report; the data is taken as it is
/// ([`PoisonError::into_inner`]) rather than failing every later caller with a
/// second panic that hides the first.
pub trait Locked<T: ?Sized> {
    /// The guard, whether or not an earlier holder panicked.
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T: ?Sized> Locked<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        #[allow(clippy::disallowed_methods)] // the one place a lock's poisoning is decided
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// [`Locked`] for readers and writers of an `RwLock`, with the same policy.
pub trait RwLocked<T: ?Sized> {
    fn read_locked(&self) -> RwLockReadGuard<'_, T>;
    fn write_locked(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T: ?Sized> RwLocked<T> for RwLock<T> {
    fn read_locked(&self) -> RwLockReadGuard<'_, T> {
        #[allow(clippy::disallowed_methods)] // the one place a lock's poisoning is decided
        self.read().unwrap_or_else(PoisonError::into_inner)
    }
    fn write_locked(&self) -> RwLockWriteGuard<'_, T> {
        #[allow(clippy::disallowed_methods)] // the one place a lock's poisoning is decided
        self.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An error and its sources on one line: `a: b: c`.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let next = c.to_string();
        if !s.contains(&next) {
            s.push_str(": ");
            s.push_str(&next);
        }
        cur = c.source();
    }
    s
}

/// Glob match with `*` (any run) and `?` (one character).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Capped exponential backoff with full jitter: 0.25 s, 0.5 s, 1 s, ... up to `max`.
pub fn backoff(attempt: u32, max: Duration) -> Duration {
    let base = Duration::from_millis(250).saturating_mul(1u32 << attempt.min(16));
    let capped = base.min(max);
    let jitter = rand::Rng::random_range(&mut rand::rng(), 0.5..=1.0);
    capped.mul_f64(jitter)
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Create `dir` (and its parents) readable by this user only (0700 on Unix).
/// A `dir` that already exists with more permissive bits (a credentials
/// directory left 0777) is tightened to 0700; one that belongs to another user
/// cannot be, and is an error. Existing parents are left as they are.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let meta = std::fs::metadata(dir)?;
        if meta.permissions().mode() & 0o777 != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "{} is open to other users (mode {:o}) and cannot be made private: {e}",
                        dir.display(),
                        meta.permissions().mode() & 0o777
                    ),
                )
            })?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// `s` safe to print on a terminal: every control character (C0 including
/// ESC, BEL, CR, backspace, tab and newline; DEL; C1, U+0080 to U+009F), every
/// bidi override, isolate and mark, and the Unicode line and paragraph
/// separators are replaced by a visible escape (`\x1b`, `\n`, `\u{202e}`).
/// Plain text, backslashes included, comes back unchanged and unallocated.
/// For table cells and one-line fields; [`printable_lines`] keeps newlines.
pub fn printable(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// Like [`printable`], but keeps `\n` (and tab) as they are: for messages that
/// are several lines on purpose (an error with its context).
pub fn printable_lines(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

/// `value` as pretty JSON for a terminal or a script: the same document
/// `serde_json::to_string_pretty` makes (a parser reads back every string
/// exactly), except that DEL, C1 controls, bidi controls and the Unicode line
/// separators, which JSON allows raw, are written as `\uXXXX` escapes too, so
/// that `--json` on a terminal cannot drive it either.
pub fn json_pretty<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, SafeFormatter(serde_json::ser::PrettyFormatter::new()));
    value.serialize(&mut ser)?;
    // Only whole UTF-8 strings and ASCII were written.
    Ok(String::from_utf8(out).expect("serde_json writes UTF-8"))
}

/// serde_json's pretty formatter, with the extra escapes of [`json_pretty`].
struct SafeFormatter<'a>(serde_json::ser::PrettyFormatter<'a>);

macro_rules! delegate {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $name<W: ?Sized + std::io::Write>(&mut self, w: &mut W $(, $arg: $ty)*) -> std::io::Result<()> {
            self.0.$name(w $(, $arg)*)
        }
    )*};
}

impl serde_json::ser::Formatter for SafeFormatter<'_> {
    delegate! {
        begin_array();
        end_array();
        begin_array_value(first: bool);
        end_array_value();
        begin_object();
        end_object();
        begin_object_key(first: bool);
        begin_object_value();
        end_object_value();
    }

    fn write_string_fragment<W: ?Sized + std::io::Write>(&mut self, w: &mut W, fragment: &str) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some(i) = rest.find(is_unsafe) {
            w.write_all(&rest.as_bytes()[..i])?;
            let c = rest[i..].chars().next().expect("found a char");
            // Every unsafe char here is in the Basic Multilingual Plane.
            write!(w, "\\u{:04x}", c as u32)?;
            rest = &rest[i + c.len_utf8()..];
        }
        w.write_all(rest.as_bytes())
    }
}

/// Whether a terminal would act on `c` instead of showing it.
fn is_unsafe(c: char) -> bool {
    c.is_control() // C0, DEL, C1
        || matches!(c,
            '\u{200e}' | '\u{200f}' | '\u{061c}' // bidi marks
            | '\u{202a}'..='\u{202e}'          // embeddings and overrides
            | '\u{2066}'..='\u{2069}'          // isolates
            | '\u{2028}' | '\u{2029}') // line and paragraph separators
}

fn escape(s: &str, keep_lines: bool) -> Cow<'_, str> {
    let bad = |c: char| is_unsafe(c) && !(keep_lines && matches!(c, '\n' | '\t'));
    let Some(first) = s.find(bad) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        match c {
            c if !bad(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// Whether the open file `f` is still the file at `path` (not replaced or
/// removed by another process since it was opened).
#[cfg(unix)]
pub fn is_same_file(f: &std::fs::File, path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Without inode numbers the file at `path` is taken to be ours while it
/// exists (Windows does not let an open file be removed for good). Callers
/// tolerate the difference: the audit log may append to a file another bridge
/// just rotated, which can then grow past its limit; nothing is lost.
#[cfg(not(unix))]
pub fn is_same_file(_: &std::fs::File, path: &std::path::Path) -> bool {
    path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lock whose holder panicked still hands out its data, to readers and
    /// writers alike, instead of a second panic.
    #[test]
    fn a_poisoned_lock_still_locks() {
        let m = std::sync::Arc::new(Mutex::new(1));
        let l = std::sync::Arc::new(RwLock::new(1));
        let (m2, l2) = (m.clone(), l.clone());
        let panicked = std::thread::spawn(move || {
            let _m = m2.locked();
            let _l = l2.write_locked();
            panic!("a bug while holding both locks");
        })
        .join();
        assert!(panicked.is_err());
        assert!(m.is_poisoned() && l.is_poisoned());
        *m.locked() += 1;
        *l.write_locked() += 1;
        assert_eq!((*m.locked(), *l.read_locked()), (2, 2));
    }

    #[test]
    fn globs() {
        assert!(glob_match("search_*", "search_issues"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "abbc"));
        assert!(glob_match("com.example/*", "com.example/jira"));
        assert!(!glob_match("get_*", "search_x"));
        assert!(glob_match("*_*_*", "a_b_c"));
    }

    use proptest::prelude::*;

    #[test]
    fn escapes_what_a_terminal_acts_on() {
        assert_eq!(printable("plain, C:\\path\\x1b é 日本"), "plain, C:\\path\\x1b é 日本");
        assert!(matches!(printable("plain"), Cow::Borrowed(_)));
        assert_eq!(printable("\x1b]0;pwned\x07"), "\\x1b]0;pwned\\x07");
        assert_eq!(printable("a\x1b[2Jb\rc\x08d\x7f"), "a\\x1b[2Jb\\rc\\x08d\\x7f");
        assert_eq!(printable("\u{9b}31m\u{85}"), "\\u{9b}31m\\u{85}");
        assert_eq!(
            printable("exe.\u{202e}gnp\u{2066}x\u{200f}"),
            "exe.\\u{202e}gnp\\u{2066}x\\u{200f}"
        );
        assert_eq!(printable("one\ntwo\tthree"), "one\\ntwo\\tthree");
        assert_eq!(printable_lines("one\ntwo\tthree\x1b"), "one\ntwo\tthree\\x1b");
        assert_eq!(printable_lines("line\r\n"), "line\\r\n");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the input, nothing a terminal acts on is left, and the
        /// escaped text is still there to read.
        #[test]
        fn output_has_no_control_characters(s in any::<String>()) {
            let out = printable(&s);
            prop_assert!(!out.chars().any(is_unsafe), "{out:?}");
            let lines = printable_lines(&s);
            prop_assert!(!lines.chars().any(|c| is_unsafe(c) && c != '\n' && c != '\t'), "{lines:?}");
            prop_assert!(out.len() >= s.len());
        }

        /// Text without control characters comes back as it was.
        #[test]
        fn plain_text_is_unchanged(s in "[^\\p{Cc}\u{200e}\u{200f}\u{061c}\u{202a}-\u{202e}\u{2066}-\u{2069}\u{2028}\u{2029}]*") {
            let out = printable(&s);
            prop_assert_eq!(out.as_ref(), s.as_str());
            prop_assert!(matches!(out, Cow::Borrowed(_)));
        }

        /// Different inputs stay different: the escape loses nothing a reader
        /// needs to tell two names apart (an input without backslashes).
        #[test]
        fn escaping_is_injective_without_backslashes(a in "[^\\\\]*", b in "[^\\\\]*") {
            if a != b {
                prop_assert_ne!(printable(&a), printable(&b));
            }
        }
    }

    #[test]
    fn json_escapes_what_serde_leaves_raw() {
        let v = serde_json::json!({"d": "a\u{9b}31m\u{202e}b\x7f\x1b", "n": [1, 2]});
        let text = json_pretty(&v).unwrap();
        assert_eq!(
            text,
            "{\n  \"d\": \"a\\u009b31m\\u202eb\\u007f\\u001b\",\n  \"n\": [\n    1,\n    2\n  ]\n}"
        );
        let plain = serde_json::json!({"a": ["é 日本 \\x1b", null, true, 1.5], "b": {}});
        assert_eq!(
            json_pretty(&plain).unwrap(),
            serde_json::to_string_pretty(&plain).unwrap()
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The JSON reads back to the same strings, and holds nothing a
        /// terminal acts on but the newlines of its layout.
        #[test]
        fn json_is_exact_and_safe(key in any::<String>(), value in any::<String>()) {
            let v = serde_json::json!({ key.clone(): [value.clone()] });
            let text = json_pretty(&v).unwrap();
            prop_assert!(!text.chars().any(|c| is_unsafe(c) && c != '\n'), "{text:?}");
            let back: serde_json::Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(back, v);
        }
    }

    #[cfg(unix)]
    #[test]
    fn private_dirs_are_created_and_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let new = root.path().join("a/b");
        create_private_dir(&new).unwrap();
        assert_eq!((mode(&root.path().join("a")), mode(&new)), (0o700, 0o700));
        let open = root.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        create_private_dir(&open).unwrap();
        assert_eq!(mode(&open), 0o700);
    }
}
