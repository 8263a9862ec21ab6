//! The audit log: one JSON line per tool call the bridge forwards, in
//! `audit.jsonl` in the state dir, and the reader `mcp-bridge stats` summarises.
//!
//! The call path only hands a [`Record`] to [`AuditLog::record`], which puts it on
//! a bounded channel and returns. A writer thread (not a tokio worker: it does
//! blocking disk IO) takes what has queued up and appends it with one `write` of
//! whole lines; when the channel is full or the writer is gone, the record is
//! dropped and counted, never waited for.
//!
//! Several bridges (one per IDE window) may share the file: each appends whole
//! lines, rotation happens under `audit.lock`, and a writer whose file another
//! bridge rotated away opens the new one before its next write.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::config::AuditConfig;

/// The current log file in the state dir; rotated ones are `audit.<n>.jsonl`,
/// `1` the newest.
pub const FILE_NAME: &str = "audit.jsonl";

/// Records waiting for the writer beyond this are dropped (and counted).
const QUEUE: usize = 4096;

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Unix milliseconds when the call started.
    pub ts_ms: u64,
    /// The server id.
    pub server: String,
    /// The upstream tool name.
    pub tool: String,
    /// The name the IDE used.
    pub name: String,
    pub duration_ms: f64,
    pub outcome: Outcome,
    /// Size of the serialised result (0 on error).
    pub result_bytes: usize,
    /// A short error message for `error`, `refused` and `declined`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// The call's arguments, only with `[audit] arguments = true`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub arguments: Option<serde_json::Value>,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A result without `isError`.
    Ok,
    /// A result with `isError: true`: the tool ran and reported a failure.
    ToolError,
    /// No result: the server failed, timed out or could not be reached.
    Error,
    /// The bridge refused the call (e.g. by policy) without forwarding it.
    Refused,
    /// The user declined the call (e.g. an elicitation).
    Declined,
    /// The IDE cancelled the call.
    Cancelled,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Ok,
        Outcome::ToolError,
        Outcome::Error,
        Outcome::Refused,
        Outcome::Declined,
        Outcome::Cancelled,
    ];

    /// The name in the log and in `stats --json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ToolError => "tool_error",
            Outcome::Error => "error",
            Outcome::Refused => "refused",
            Outcome::Declined => "declined",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// Unix milliseconds now (0 if the clock is before 1970), for [`Record::ts_ms`].
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The current log file in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

fn rotated(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("audit.{n}.jsonl"))
}

/// The rotated files in `dir` as (number, path), in no order.
fn rotated_files(dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name();
            let n = name.to_str()?.strip_prefix("audit.")?.strip_suffix(".jsonl")?;
            Some((n.parse().ok()?, e.path()))
        })
        .collect()
}

enum Msg {
    Record(Box<Record>),
    Flush(oneshot::Sender<()>),
}

/// Appends records from a background task so the call path never waits on disk.
/// Cheap to clone (a channel sender and a counter).
#[derive(Clone)]
pub struct AuditLog {
    /// `None` when auditing is off.
    tx: Option<mpsc::Sender<Msg>>,
    include_arguments: bool,
    /// Records lost: queue full, writer gone, or the file not writable.
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("enabled", &self.tx.is_some())
            .field("include_arguments", &self.include_arguments)
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl AuditLog {
    /// Start the writer for `dir/audit.jsonl`; it rotates when a write would take
    /// the file past `max_bytes` (audit.jsonl -> audit.1.jsonl -> ..., keeping
    /// `keep` old files). Creates the dir (0700 on unix) and the file (0600).
    /// `cfg.enabled` is not consulted: the caller picks this or [`disabled`](Self::disabled).
    /// Needs no runtime; [`flush`](Self::flush) needs tokio's time driver.
    pub fn start(dir: &Path, cfg: &AuditConfig) -> AuditLog {
        let (tx, rx) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            dir: dir.to_path_buf(),
            path: path(dir),
            max_bytes: cfg.max_bytes.max(1),
            keep: cfg.keep as u64,
            file: None,
            dropped: dropped.clone(),
            failing: false,
        };
        let spawned = std::thread::Builder::new()
            .name("mcp-bridge-audit".into())
            .spawn(move || writer.run(rx));
        if let Err(e) = spawned {
            // The receiver is gone with the closure: records are dropped and counted.
            tracing::warn!("audit log {}: cannot start the writer: {e}", path(dir).display());
        }
        AuditLog {
            tx: Some(tx),
            include_arguments: cfg.arguments,
            dropped,
        }
    }

    /// A log that records nothing (audit disabled).
    pub fn disabled() -> AuditLog {
        AuditLog {
            tx: None,
            include_arguments: false,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Queue `r` for the writer. Never blocks and never fails the call: when the
    /// queue is full or the writer is gone the record is dropped and counted.
    /// Arguments are removed unless `[audit] arguments = true`.
    pub fn record(&self, mut r: Record) {
        let Some(tx) = &self.tx else { return };
        if !self.include_arguments {
            r.arguments = None;
        }
        if !r.duration_ms.is_finite() {
            // JSON has no NaN: the line would not read back.
            r.duration_ms = 0.0;
        }
        if tx.try_send(Msg::Record(Box::new(r))).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether records keep call arguments (`[audit] arguments`), so the caller
    /// can skip cloning them.
    pub fn include_arguments(&self) -> bool {
        self.include_arguments
    }

    /// Records lost so far: queue full, writer gone, or the file not writable.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Wait until everything recorded so far is written (and synced), for tests
    /// and shutdown; gives up after `wait`.
    pub async fn flush(&self, wait: Duration) {
        let Some(tx) = &self.tx else { return };
        let (done, written) = oneshot::channel();
        let _ = tokio::time::timeout(wait, async {
            if tx.send(Msg::Flush(done)).await.is_ok() {
                let _ = written.await;
            }
        })
        .await;
    }
}

/// Lines per write at most, so one burst does not hold the file for long.
const BATCH: usize = 256;

/// The writer thread's state.
struct Writer {
    dir: PathBuf,
    path: PathBuf,
    max_bytes: u64,
    keep: u64,
    /// The open log, in append mode; reopened when it is no longer at `path`.
    file: Option<File>,
    dropped: Arc<AtomicU64>,
    /// The last write failed (it was logged; the next failure is not).
    failing: bool,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        if let Err(e) = self.current() {
            self.failed(&e, 0);
        }
        while let Some(first) = rx.blocking_recv() {
            let mut lines = Vec::new();
            let mut flushes = Vec::new();
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Record(r) => match serde_json::to_vec(&r) {
                        Ok(mut line) => {
                            line.push(b'\n');
                            lines.push(line);
                        }
                        Err(_) => {
                            self.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    },
                    Msg::Flush(done) => flushes.push(done),
                }
                if lines.len() < BATCH {
                    next = rx.try_recv().ok();
                }
            }
            let written = self.write(&lines);
            match written {
                Ok(()) => self.failing = false,
                Err((e, lost)) => self.failed(&e, lost),
            }
            if !flushes.is_empty()
                && let Some(f) = &self.file
            {
                let _ = f.sync_data();
            }
            for done in flushes {
                let _ = done.send(());
            }
        }
    }

    fn failed(&mut self, e: &std::io::Error, lost: usize) {
        self.dropped.fetch_add(lost as u64, Ordering::Relaxed);
        if !self.failing {
            tracing::warn!(
                "audit log {}: {e} (records are dropped until it works)",
                self.path.display()
            );
        }
        self.failing = true;
        self.file = None;
    }

    /// Append `lines` in order, rotating between them when the file would grow
    /// past `max_bytes`. On error, how many lines were lost.
    fn write(&mut self, lines: &[Vec<u8>]) -> Result<(), (std::io::Error, usize)> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut size = self.current().map_err(|e| (e, lines.len()))?;
        let mut chunk: Vec<u8> = Vec::new();
        let mut in_chunk = 0;
        for (i, line) in lines.iter().enumerate() {
            let len = (chunk.len() + line.len()) as u64;
            if size + len > self.max_bytes && size + chunk.len() as u64 > 0 {
                self.append(&chunk).map_err(|e| (e, lines.len() - i + in_chunk))?;
                chunk.clear();
                in_chunk = 0;
                size = self.make_room(line.len() as u64).map_err(|e| (e, lines.len() - i))?;
            }
            chunk.extend_from_slice(line);
            in_chunk += 1;
        }
        self.append(&chunk).map_err(|e| (e, in_chunk))
    }

    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        match &mut self.file {
            // One write of whole lines: other bridges' lines never land inside ours.
            Some(f) => f.write_all(bytes),
            None => Err(std::io::Error::other("the log is not open")),
        }
    }

    /// The file at `path`, opened (again if another bridge rotated it), and its size.
    fn current(&mut self) -> std::io::Result<u64> {
        let file = match self.file.take() {
            Some(f) if crate::util::is_same_file(&f, &self.path) => f,
            _ => open_log(&self.dir, &self.path)?,
        };
        let len = file.metadata()?.len();
        self.file = Some(file);
        Ok(len)
    }

    /// Rotate if the file plus `incoming` would exceed `max_bytes`, under the lock
    /// all bridges take, checking again first: another one may have rotated
    /// already. Returns the size of the file to append to.
    fn make_room(&mut self, incoming: u64) -> std::io::Result<u64> {
        let lock = open_private(&self.dir.join("audit.lock"), false)?;
        lock.lock()?;
        let size = self.current()?;
        if size == 0 || size + incoming <= self.max_bytes {
            return Ok(size);
        }
        self.file = None;
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            remove_if_exists(&rotated(&self.dir, self.keep))?;
            for n in (1..self.keep).rev() {
                rename_if_exists(&rotated(&self.dir, n), &rotated(&self.dir, n + 1))?;
            }
            std::fs::rename(&self.path, rotated(&self.dir, 1))?;
        }
        // Files beyond `keep` (it was larger before) go too.
        for (n, p) in rotated_files(&self.dir) {
            if n > self.keep {
                remove_if_exists(&p)?;
            }
        }
        self.current()
    }
}

fn remove_if_exists(p: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Open the log for appending, creating the dir (0700) and the file (0600).
fn open_log(dir: &Path, path: &Path) -> std::io::Result<File> {
    crate::util::create_private_dir(dir)?;
    open_private(path, true)
}

fn open_private(path: &Path, append: bool) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.create(true);
    if append {
        opts.append(true);
    } else {
        opts.write(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Read every record in `dir` (rotated files too, oldest first), skipping lines
/// that do not parse and counting them. Empty lines are not counted; a missing
/// log is no records.
pub fn read_all(dir: &Path) -> (Vec<Record>, usize) {
    let mut files = rotated_files(dir);
    files.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    let files = files.into_iter().map(|(_, p)| p).chain([path(dir)]);
    let (mut records, mut skipped) = (Vec::new(), 0);
    for p in files {
        let Ok(f) = File::open(&p) else { continue };
        for line in BufReader::new(f).split(b'\n') {
            let Ok(line) = line else {
                skipped += 1;
                break;
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Record>(&line) {
                Ok(r) => records.push(r),
                Err(_) => skipped += 1,
            }
        }
    }
    (records, skipped)
}

/// A window over the log: which records `stats` looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    All,
    /// Calls that started at most this long ago.
    Last(Duration),
}

impl Since {
    /// `the last 7 d`, `all time`.
    pub fn label(self) -> String {
        match self {
            Since::All => "all time".into(),
            Since::Last(d) => {
                let s = d.as_secs();
                let (n, unit) = [(86_400, "d"), (3_600, "h"), (60, "min"), (1, "s")]
                    .into_iter()
                    .find(|(u, _)| s % u == 0)
                    .map(|(u, name)| (s / u, name))
                    .unwrap_or((s, "s"));
                format!("the last {n} {unit}")
            }
        }
    }

    /// The earliest start time included, for records stamped in unix ms.
    pub fn since_ms(self, now_ms: u64) -> Option<u64> {
        match self {
            Since::All => None,
            Since::Last(d) => Some(now_ms.saturating_sub(d.as_millis() as u64)),
        }
    }
}

/// `30m`, `24h`, `7d` (also `s` and `w`), or `all`.
pub fn parse_since(s: &str) -> Result<Since, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("all") {
        return Ok(Since::All);
    }
    let bad = || format!("{s:?} is not a period: use a number and a unit (30m, 24h, 7d) or `all`");
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(format!("{s:?}: the period must be longer than 0"));
    }
    n.checked_mul(secs)
        .filter(|&t| t <= 100 * 365 * 86_400)
        .map(|t| Since::Last(Duration::from_secs(t)))
        .ok_or_else(|| format!("{s:?} is too long: use `all`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> Record {
        Record {
            ts_ms: 1_000 + i as u64,
            server: "jira".into(),
            tool: "search".into(),
            name: "jira__search".into(),
            duration_ms: 12.5,
            outcome: Outcome::Ok,
            result_bytes: i,
            error: None,
            arguments: Some(serde_json::json!({"query": "standup"})),
        }
    }

    fn config(max_bytes: u64, keep: usize) -> AuditConfig {
        AuditConfig {
            max_bytes,
            keep,
            ..AuditConfig::default()
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".jsonl"))
            .collect();
        names.sort();
        names
    }

    const WAIT: Duration = Duration::from_secs(10);

    /// Lines carry the documented field names and lower-case outcomes; the
    /// optional fields are left out when empty and read back when present.
    #[test]
    fn since_parses() {
        assert_eq!(parse_since("all"), Ok(Since::All));
        assert_eq!(parse_since("30m"), Ok(Since::Last(Duration::from_secs(1_800))));
        assert_eq!(parse_since("24h"), Ok(Since::Last(Duration::from_secs(86_400))));
        assert_eq!(parse_since("7d"), Ok(Since::Last(Duration::from_secs(604_800))));
        assert_eq!(parse_since("2w"), Ok(Since::Last(Duration::from_secs(1_209_600))));
        for bad in ["", "7", "d", "7 d", "7x", "-1d", "1.5h", "0m", "99999999999999999d"] {
            assert!(parse_since(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_since("7d").unwrap().label(), "the last 7 d");
        assert_eq!(parse_since("36h").unwrap().label(), "the last 36 h");
        assert_eq!(parse_since("90m").unwrap().label(), "the last 90 min");
        assert_eq!(Since::All.label(), "all time");
        assert_eq!(parse_since("1h").unwrap().since_ms(10_000_000), Some(6_400_000));
        assert_eq!(parse_since("1h").unwrap().since_ms(5), Some(0));
        assert_eq!(Since::All.since_ms(5), None);
    }

    #[test]
    fn line_format() {
        let mut r = record(7);
        r.arguments = None;
        r.outcome = Outcome::ToolError;
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(
            line,
            r#"{"ts_ms":1007,"server":"jira","tool":"search","name":"jira__search","duration_ms":12.5,"outcome":"tool_error","result_bytes":7}"#
        );
        for o in Outcome::ALL {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        let mut r = record(1);
        r.error = Some("boom".into());
        let back: Record = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    /// Records are on disk, in order, after `flush`; arguments only when asked
    /// for; the dir is 0700 and the file 0600.
    #[tokio::test]
    async fn records_are_written_in_order() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("state");
        let log = AuditLog::start(&dir, &AuditConfig::default());
        assert!(!log.include_arguments());
        for i in 0..100 {
            log.record(record(i));
        }
        log.flush(WAIT).await;
        let (records, skipped) = read_all(&dir);
        assert_eq!(skipped, 0);
        assert_eq!(records.len(), 100);
        assert!(records.iter().enumerate().all(|(i, r)| r.result_bytes == i));
        assert!(
            records.iter().all(|r| r.arguments.is_none()),
            "arguments off by default"
        );
        assert_eq!(log.dropped(), 0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&path(&dir)), 0o600);
        }

        let with_args = AuditLog::start(
            &dir,
            &AuditConfig {
                arguments: true,
                ..AuditConfig::default()
            },
        );
        assert!(with_args.include_arguments());
        with_args.record(record(100));
        with_args.flush(WAIT).await;
        let (records, _) = read_all(&dir);
        assert_eq!(records.len(), 101, "appended, not truncated");
        assert_eq!(records[100].arguments, record(0).arguments);
    }

    /// With a small `max_bytes` the log rotates: `audit.jsonl` and
    /// `audit.1.jsonl` exist, no file beyond `keep`, no file over `max_bytes`, and
    /// the kept files hold the newest records without a gap.
    #[tokio::test]
    async fn rotation_keeps_the_newest_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = record(10);
        r.arguments = None;
        let line_len = serde_json::to_vec(&r).unwrap().len() as u64 + 1;
        // Four lines a file (the numbers in result_bytes have two digits).
        let cfg = config(line_len * 4, 2);
        let log = AuditLog::start(dir.path(), &cfg);
        for i in 10..60 {
            log.record(record(i));
        }
        log.flush(WAIT).await;
        assert_eq!(names(dir.path()), ["audit.1.jsonl", "audit.2.jsonl", "audit.jsonl"]);
        for n in names(dir.path()) {
            let len = std::fs::metadata(dir.path().join(&n)).unwrap().len();
            assert!(len <= cfg.max_bytes, "{n}: {len}");
        }
        let (records, skipped) = read_all(dir.path());
        assert_eq!(skipped, 0);
        let got: Vec<usize> = records.iter().map(|r| r.result_bytes).collect();
        let want: Vec<usize> = (60 - got.len()..60).collect();
        assert_eq!(got, want, "the newest records, oldest first, none missing");
        assert!(
            got.len() >= 9,
            "three files of four lines, the newest partly full: {got:?}"
        );

        // A smaller `keep` later removes the surplus at the next rotation.
        let log = AuditLog::start(dir.path(), &config(line_len * 4, 0));
        for i in 60..66 {
            log.record(record(i));
        }
        log.flush(WAIT).await;
        assert_eq!(names(dir.path()), ["audit.jsonl"]);
        let (records, _) = read_all(dir.path());
        assert_eq!(records.last().unwrap().result_bytes, 65);
    }

    /// Two bridges writing to one dir: with room enough in `keep`, every record
    /// of both survives their rotations.
    #[tokio::test]
    async fn two_writers_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let line_len = serde_json::to_vec(&record(100)).unwrap().len() as u64 + 1;
        let cfg = config(line_len * 10, 100);
        let (a, b) = (AuditLog::start(dir.path(), &cfg), AuditLog::start(dir.path(), &cfg));
        for i in 100..300 {
            a.record(record(i));
            b.record(record(i + 1000));
            if i % 17 == 0 {
                tokio::task::yield_now().await;
            }
        }
        a.flush(WAIT).await;
        b.flush(WAIT).await;
        let (records, skipped) = read_all(dir.path());
        assert_eq!(skipped, 0);
        let mut got: Vec<usize> = records.iter().map(|r| r.result_bytes).collect();
        got.sort();
        let want: Vec<usize> = (100..300).chain(1100..1300).collect();
        assert_eq!(got, want);
        assert!(names(dir.path()).len() > 2, "it rotated");
    }

    /// A log that cannot be written never fails or blocks the caller: records are
    /// dropped and counted, and `flush` returns.
    #[tokio::test]
    async fn unwritable_log_drops_and_counts() {
        let home = tempfile::tempdir().unwrap();
        let not_a_dir = home.path().join("file");
        std::fs::write(&not_a_dir, b"").unwrap();
        let log = AuditLog::start(&not_a_dir, &AuditConfig::default());
        for i in 0..3 {
            log.record(record(i));
        }
        log.flush(WAIT).await;
        assert_eq!(log.dropped(), 3);

        let off = AuditLog::disabled();
        off.record(record(0));
        off.flush(WAIT).await;
        assert_eq!((off.dropped(), off.include_arguments()), (0, false));
    }

    /// Garbage and half-written lines are skipped and counted; rotated files come
    /// first, oldest first.
    #[test]
    fn read_all_orders_files_and_skips_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let line = |i| serde_json::to_string(&record(i)).unwrap() + "\n";
        std::fs::write(rotated(dir.path(), 2), line(1) + "not json\n").unwrap();
        std::fs::write(rotated(dir.path(), 1), line(2) + "\n").unwrap();
        let half = line(4);
        std::fs::write(path(dir.path()), line(3) + &half[..half.len() / 2]).unwrap();
        std::fs::write(dir.path().join("audit.x.jsonl"), line(9)).unwrap();
        let (records, skipped) = read_all(dir.path());
        let got: Vec<usize> = records.iter().map(|r| r.result_bytes).collect();
        assert_eq!((got, skipped), (vec![1, 2, 3], 2));
        assert_eq!(read_all(&dir.path().join("missing")), (Vec::new(), 0));
    }
}
