//! Small helpers shared by several modules.

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

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Create `dir` (and its parents) readable by this user only (0700 on Unix).
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
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
