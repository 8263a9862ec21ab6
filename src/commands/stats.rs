//! `mcp-bridge stats`: the [`crate::audit`] log summed up per server and per tool
//! (calls, errors, latency, result bytes, time saved); a table for a person
//! (server and tool names escaped: they are the servers' words), `--json` for
//! a script.
//!
//! Only [`stats`] does IO. [`summarise`], [`render`] and
//! [`to_json`] are plain functions over plain data, tested below.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::out;
use super::table::{Align, Paint, table};
use crate::app::{self, ServeOptions};
use crate::audit::{self, Outcome, Record, Since};
use crate::policy::{minutes_for, minutes_table};

/// Figures for one group of calls (one tool, one server, or all).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub calls: u64,
    /// Calls per outcome, in [`Outcome::ALL`] order.
    pub by_outcome: [u64; 6],
    /// Nearest-rank percentiles of `duration_ms` over every call whatever its
    /// outcome: the smallest duration with at least p % of the calls at or below
    /// it, i.e. the `ceil(p/100 * n)`-th of the `n` sorted durations.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub result_bytes: u64,
    /// Successful calls times the minutes each saves.
    pub minutes_saved: f64,
}

impl Stats {
    pub fn count(&self, o: Outcome) -> u64 {
        self.by_outcome[o as usize]
    }

    /// Every call that did not end `ok`.
    pub fn errors(&self) -> u64 {
        self.calls - self.count(Outcome::Ok)
    }

    /// `errors / calls`, 0 without calls.
    pub fn error_rate(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.errors() as f64 / self.calls as f64
        }
    }
}

/// One row: a server (`tool` is `None`) or one of its tools.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub server: String,
    pub tool: Option<String>,
    pub stats: Stats,
}

/// What `stats` reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// The earliest start time included (unix ms); `None` for all.
    pub since_ms: Option<u64>,
    /// Start times of the first and last call included.
    pub first_ms: Option<u64>,
    pub last_ms: Option<u64>,
    pub total: Stats,
    /// Sorted by calls, most first, then by name.
    pub servers: Vec<Row>,
    pub tools: Vec<Row>,
    /// Where the records came from, for the reader (set by the command).
    pub log: String,
    /// The period in words, e.g. `the last 7 d` (set by the command).
    pub period: String,
    /// Lines of the log that did not parse (set by the command).
    pub skipped: usize,
}

impl Summary {
    pub fn hours_saved(&self) -> f64 {
        self.total.minutes_saved / 60.0
    }
}

/// Nearest rank: the `ceil(p/100 * n)`-th smallest of `sorted` (1-based).
fn percentile(sorted: &[f64], p: u64) -> Option<f64> {
    let n = sorted.len() as u64;
    let rank = (p * n).div_ceil(100).max(1);
    sorted.get(rank as usize - 1).copied()
}

#[derive(Default)]
struct Acc {
    stats: Stats,
    durations: Vec<f64>,
}

impl Acc {
    fn add(&mut self, r: &Record, minutes: f64) {
        let s = &mut self.stats;
        s.calls += 1;
        s.by_outcome[r.outcome as usize] += 1;
        s.result_bytes += r.result_bytes as u64;
        if r.outcome == Outcome::Ok {
            s.minutes_saved += minutes;
        }
        self.durations.push(r.duration_ms);
    }

    fn finish(mut self) -> Stats {
        self.durations.sort_by(f64::total_cmp);
        self.stats.p50_ms = percentile(&self.durations, 50);
        self.stats.p95_ms = percentile(&self.durations, 95);
        self.stats
    }
}

/// Sum up the records that started at or after `since_ms`. `minutes` maps glob
/// patterns over `server__tool` to the minutes one successful call saves; the
/// first match wins (pass the config's patterns before the registry's).
pub fn summarise(records: &[Record], since_ms: Option<u64>, minutes: &[(String, f64)]) -> Summary {
    let mut total = Acc::default();
    let mut servers: BTreeMap<&str, Acc> = BTreeMap::new();
    let mut tools: BTreeMap<(&str, &str), (Acc, f64)> = BTreeMap::new();
    let (mut first_ms, mut last_ms) = (None::<u64>, None::<u64>);
    for r in records.iter().filter(|r| since_ms.is_none_or(|s| r.ts_ms >= s)) {
        let (tool, m) = tools
            .entry((r.server.as_str(), r.tool.as_str()))
            .or_insert_with(|| (Acc::default(), minutes_for(minutes, &r.server, &r.tool)));
        let m = *m;
        tool.add(r, m);
        servers.entry(r.server.as_str()).or_default().add(r, m);
        total.add(r, m);
        first_ms = Some(first_ms.map_or(r.ts_ms, |t| t.min(r.ts_ms)));
        last_ms = Some(last_ms.map_or(r.ts_ms, |t| t.max(r.ts_ms)));
    }
    let by_calls = |a: &Row, b: &Row| {
        b.stats
            .calls
            .cmp(&a.stats.calls)
            .then_with(|| (&a.server, &a.tool).cmp(&(&b.server, &b.tool)))
    };
    let mut servers: Vec<Row> = servers
        .into_iter()
        .map(|(server, acc)| Row {
            server: server.to_owned(),
            tool: None,
            stats: acc.finish(),
        })
        .collect();
    servers.sort_by(by_calls);
    let mut tools: Vec<Row> = tools
        .into_iter()
        .map(|((server, tool), (acc, _))| Row {
            server: server.to_owned(),
            tool: Some(tool.to_owned()),
            stats: acc.finish(),
        })
        .collect();
    tools.sort_by(by_calls);
    Summary {
        since_ms,
        first_ms,
        last_ms,
        total: total.finish(),
        servers,
        tools,
        ..Summary::default()
    }
}

/// Minutes saved per call that registry entries declare
/// (`_meta["dev.mcp-bridge/config"].tools.minutesSaved`), from the registry
/// file or the API's disk cache (stats connects to nothing), as patterns over
/// `server__tool`.
fn registry_minutes(cfg: &crate::config::Config, paths: &crate::config::Paths) -> Vec<(String, f64)> {
    let Some(rc) = &cfg.registry else { return Vec::new() };
    let entries = match (&rc.file, &rc.url) {
        (Some(f), _) => crate::registry::read_file(f).unwrap_or_default(),
        (None, Some(u)) => crate::registry::load_cached(&paths.cache_dir, u)
            .map(|(e, _)| e)
            .unwrap_or_default(),
        (None, None) => Vec::new(),
    };
    let servers = crate::registry::resolve(cfg, &entries, &Default::default()).servers;
    minutes_table(&[], servers.iter().map(|s| (s.id.as_str(), &s.rules)))
}

/// `mcp-bridge stats [--since DURATION] [--json]`: reads the audit log in the
/// state dir; connects to nothing.
pub fn stats(opts: &ServeOptions, since: Since, json: bool) -> anyhow::Result<()> {
    let (paths, cfg) = app::load_config(opts)?;
    let (records, skipped) = audit::read_all(&paths.state_dir);
    // The user's minutes first (first match wins), then the registry's.
    let mut minutes = cfg.audit.minutes_saved.clone();
    minutes.extend(registry_minutes(&cfg, &paths));
    let mut summary = summarise(&records, since.since_ms(audit::now_ms()), &minutes);
    summary.log = audit::path(&paths.state_dir).display().to_string();
    summary.period = since.label();
    summary.skipped = skipped;
    if !cfg.audit.enabled {
        eprintln!(
            "note: [audit] enabled = false in {}: calls are not being recorded",
            paths.config_file.display()
        );
    }
    let text = if json {
        crate::util::json_pretty(&to_json(&summary))? + "\n"
    } else {
        render(&summary, out::colour())
    };
    out::print(text)
}

fn stats_json(s: &Stats) -> serde_json::Map<String, Value> {
    let by_outcome: serde_json::Map<String, Value> = Outcome::ALL
        .iter()
        .map(|&o| (o.as_str().to_owned(), json!(s.count(o))))
        .collect();
    let v = json!({
        "calls": s.calls,
        "errors": s.errors(),
        "error_rate": s.error_rate(),
        "by_outcome": by_outcome,
        "p50_ms": s.p50_ms,
        "p95_ms": s.p95_ms,
        "result_bytes": s.result_bytes,
        "minutes_saved": s.minutes_saved,
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("json! of an object"),
    }
}

/// The `--json` document. Keys are stable; times are unix milliseconds.
pub fn to_json(s: &Summary) -> Value {
    let row = |r: &Row| {
        let mut m = serde_json::Map::new();
        m.insert("server".into(), json!(r.server));
        if let Some(t) = &r.tool {
            m.insert("tool".into(), json!(t));
        }
        m.extend(stats_json(&r.stats));
        Value::Object(m)
    };
    json!({
        "log": s.log,
        "period": s.period,
        "since_ms": s.since_ms,
        "first_ms": s.first_ms,
        "last_ms": s.last_ms,
        "skipped_lines": s.skipped,
        "totals": stats_json(&s.total),
        "hours_saved": s.hours_saved(),
        "servers": s.servers.iter().map(row).collect::<Vec<_>>(),
        "tools": s.tools.iter().map(row).collect::<Vec<_>>(),
    })
}

/// `0.4 ms`, `120 ms`, `2.5 s`, `3.1 min`.
fn format_ms(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 1_000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.1} s", ms / 1_000.0)
    } else {
        format!("{:.1} min", ms / 60_000.0)
    }
}

/// `512 B`, `1.2 kB`, `3.4 MB`, `1.0 GB` (powers of 1000).
fn format_bytes(b: u64) -> String {
    let b = b as f64;
    if b < 1_000.0 {
        format!("{b} B")
    } else if b < 1e6 {
        format!("{:.1} kB", b / 1e3)
    } else if b < 1e9 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.1} GB", b / 1e9)
    }
}

/// `45 min` under two hours, else `3.5 h`; `-` for none.
fn format_saved(minutes: f64) -> String {
    if minutes <= 0.0 {
        "-".into()
    } else if minutes < 120.0 {
        format!("{minutes:.0} min")
    } else {
        format!("{:.1} h", minutes / 60.0)
    }
}

fn format_rate(rate: f64) -> String {
    format!("{:.1} %", rate * 100.0)
}

/// The cells after the name columns, in the order of [`FIGURES`].
fn figures(s: &Stats) -> Vec<(String, Paint)> {
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), format_ms);
    let errors = s.errors();
    vec![
        (s.calls.to_string(), Paint::Plain),
        (errors.to_string(), if errors > 0 { Paint::Red } else { Paint::Plain }),
        (format_rate(s.error_rate()), Paint::Plain),
        (ms(s.p50_ms), Paint::Plain),
        (ms(s.p95_ms), Paint::Plain),
        (format_bytes(s.result_bytes), Paint::Plain),
        (
            format_saved(s.minutes_saved),
            if s.minutes_saved > 0.0 {
                Paint::Green
            } else {
                Paint::Plain
            },
        ),
    ]
}

const FIGURES: [(&str, Align); 7] = [
    ("CALLS", Align::Right),
    ("ERRORS", Align::Right),
    ("ERROR RATE", Align::Right),
    ("P50", Align::Right),
    ("P95", Align::Right),
    ("RESULTS", Align::Right),
    ("SAVED", Align::Right),
];

/// The terminal report: totals, then a table per server and one per tool,
/// most calls first. Server and tool names (the servers' words, kept in the log
/// as they came) are escaped by the table; the log's path here.
pub fn render(s: &Summary, colour: bool) -> String {
    use crate::util::printable;
    use std::fmt::Write;
    let mut out = String::new();
    let skipped = match s.skipped {
        0 => String::new(),
        1 => " (1 unreadable line skipped)".into(),
        n => format!(" ({n} unreadable lines skipped)"),
    };
    if s.total.calls == 0 {
        let _ = writeln!(
            out,
            "No tool calls recorded in {} (audit log: {}){skipped}.",
            s.period,
            printable(&s.log)
        );
        return out;
    }
    let t = &s.total;
    let _ = writeln!(out, "audit log:   {}{skipped}", printable(&s.log));
    let _ = writeln!(out, "period:      {}", s.period);
    let errors = format!("{} errors ({})", t.errors(), format_rate(t.error_rate()));
    let errors = if t.errors() > 0 {
        Paint::Red.apply(&errors, colour)
    } else {
        errors
    };
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), format_ms);
    let _ = writeln!(
        out,
        "calls:       {}, {errors}, p50 {}, p95 {}, {} of results",
        t.calls,
        ms(t.p50_ms),
        ms(t.p95_ms),
        format_bytes(t.result_bytes)
    );
    let saved = format!("{:.1} h", s.hours_saved());
    let note = match t.minutes_saved {
        0.0 => " (no successful call matches [audit.minutes_saved])".to_owned(),
        m if m < 120.0 => format!(" ({m:.0} min)"),
        _ => String::new(),
    };
    let _ = writeln!(out, "time saved:  {}{note}", Paint::Green.apply(&saved, colour));

    let mut header = vec![("SERVER", Align::Left)];
    header.extend(FIGURES);
    let rows: Vec<_> = s
        .servers
        .iter()
        .map(|r| {
            let mut cells = vec![(r.server.clone(), Paint::Plain)];
            cells.extend(figures(&r.stats));
            cells
        })
        .collect();
    push_table(&mut out, &header, &rows, colour);

    let mut header = vec![("SERVER", Align::Left), ("TOOL", Align::Left)];
    header.extend(FIGURES);
    let rows: Vec<_> = s
        .tools
        .iter()
        .map(|r| {
            let mut cells = vec![
                (r.server.clone(), Paint::Plain),
                (r.tool.clone().unwrap_or_default(), Paint::Plain),
            ];
            cells.extend(figures(&r.stats));
            cells
        })
        .collect();
    push_table(&mut out, &header, &rows, colour);
    out
}

/// A blank line, then the table.
fn push_table(out: &mut String, header: &[(&str, Align)], rows: &[Vec<(String, Paint)>], colour: bool) {
    use std::fmt::Write;
    let _ = writeln!(out);
    for line in table(header, rows, colour) {
        let _ = writeln!(out, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::table::strip_ansi;

    fn rec(ts_ms: u64, server: &str, tool: &str, ms: f64, outcome: Outcome, bytes: usize) -> Record {
        Record {
            ts_ms,
            server: server.into(),
            tool: tool.into(),
            name: format!("{server}__{tool}"),
            duration_ms: ms,
            outcome,
            result_bytes: bytes,
            error: None,
            arguments: None,
        }
    }

    /// Twenty calls of `jira__create_issue` with durations 10, 20, ... 200 ms
    /// (shuffled), 16 ok; four `jira__search` (one refused); two `notes__add`;
    /// and one old call before `since`.
    fn records() -> Vec<Record> {
        let mut v = Vec::new();
        for i in 0..20u64 {
            // 7 is coprime to 20: every duration once, out of order.
            let ms = ((i * 7) % 20 + 1) as f64 * 10.0;
            let outcome = match i {
                3 => Outcome::ToolError,
                8 => Outcome::Error,
                11 => Outcome::Cancelled,
                15 => Outcome::Declined,
                _ => Outcome::Ok,
            };
            let bytes = if outcome == Outcome::Ok { 100 } else { 0 };
            v.push(rec(10_000 + i, "jira", "create_issue", ms, outcome, bytes));
        }
        for (i, ms) in [5.0, 1.0, 3.0, 2.0].into_iter().enumerate() {
            let (outcome, bytes) = if i == 2 {
                (Outcome::Refused, 0)
            } else {
                (Outcome::Ok, 1_000)
            };
            v.push(rec(20_000 + i as u64, "jira", "search", ms, outcome, bytes));
        }
        v.push(rec(30_000, "notes", "add", 7.0, Outcome::Ok, 10));
        v.push(rec(30_001, "notes", "add", 9.0, Outcome::Ok, 10));
        v.push(rec(1, "notes", "add", 99_999.0, Outcome::Error, 0));
        v
    }

    fn minutes() -> Vec<(String, f64)> {
        vec![
            ("jira__create_*".into(), 5.0),
            ("jira__*".into(), 0.5),
            ("jira__search".into(), 100.0), // shadowed: the first match wins
        ]
    }

    /// Nearest rank over 1..=n: p50 of 20 is the 10th, p95 the 19th; of 4, the
    /// 2nd and the 4th; of one value, that value.
    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!((percentile(&v, 50), percentile(&v, 95)), (Some(10.0), Some(19.0)));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 5.0], 50), Some(2.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 5.0], 95), Some(5.0));
        assert_eq!(percentile(&[7.0], 95), Some(7.0));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn minutes_first_match_wins() {
        let m = minutes();
        assert_eq!(minutes_for(&m, "jira", "create_issue"), 5.0);
        assert_eq!(minutes_for(&m, "jira", "search"), 0.5);
        assert_eq!(minutes_for(&m, "notes", "add"), 0.0);
        assert_eq!(minutes_for(&[], "jira", "search"), 0.0);
    }

    /// The figures, worked out by hand from [`records`].
    #[test]
    fn summary_by_hand() {
        let s = summarise(&records(), Some(10_000), &minutes());
        assert_eq!((s.first_ms, s.last_ms), (Some(10_000), Some(30_001)));

        // create_issue: 20 calls, 4 errors (one each of tool_error, error,
        // cancelled, declined) = 20 %; sorted durations 10..=200 step 10, so p50 is
        // the 10th (100 ms) and p95 the 19th (190 ms); 16 ok x 100 bytes; 16 ok x 5 min.
        let create = &s.tools[0];
        assert_eq!(create.tool.as_deref(), Some("create_issue"));
        let c = &create.stats;
        assert_eq!((c.calls, c.errors(), c.error_rate()), (20, 4, 0.2));
        assert_eq!(c.by_outcome, [16, 1, 1, 0, 1, 1]);
        assert_eq!((c.p50_ms, c.p95_ms), (Some(100.0), Some(190.0)));
        assert_eq!((c.result_bytes, c.minutes_saved), (1_600, 80.0));

        // search: durations 1, 2, 3, 5: p50 the 2nd (2 ms), p95 the 4th (5 ms);
        // one refused = 25 %; 3 ok x 0.5 min (jira__* comes before jira__search).
        let search = &s.tools[1];
        assert_eq!(search.tool.as_deref(), Some("search"));
        let t = &search.stats;
        assert_eq!((t.calls, t.errors(), t.error_rate()), (4, 1, 0.25));
        assert_eq!((t.p50_ms, t.p95_ms), (Some(2.0), Some(5.0)));
        assert_eq!((t.result_bytes, t.minutes_saved), (3_000, 1.5));

        // notes: the call at ts 1 is before `since`: 2 calls, 7 and 9 ms.
        let notes = &s.tools[2];
        assert_eq!((notes.server.as_str(), notes.stats.calls), ("notes", 2));
        assert_eq!((notes.stats.p50_ms, notes.stats.p95_ms), (Some(7.0), Some(9.0)));
        assert_eq!(notes.stats.minutes_saved, 0.0);

        // jira: 24 calls; durations 1, 2, 3, 5, 10, 20, ... 200: p50 is the 12th
        // (80 ms), p95 the 23rd (190 ms); 5 errors.
        let jira = &s.servers[0];
        assert_eq!((jira.server.as_str(), jira.tool.as_deref()), ("jira", None));
        let j = &jira.stats;
        assert_eq!((j.calls, j.errors()), (24, 5));
        assert_eq!((j.p50_ms, j.p95_ms), (Some(80.0), Some(190.0)));
        assert_eq!(j.minutes_saved, 81.5);
        assert_eq!(s.servers[1].server, "notes");

        // All 26: 5 errors; sorted 1, 2, 3, 5, 7, 9, 10, 20, ...: p50 the 13th
        // (70 ms), p95 the 25th (190 ms); 81.5 min = 1.358.. h.
        let a = &s.total;
        assert_eq!((a.calls, a.errors()), (26, 5));
        assert!((a.error_rate() - 5.0 / 26.0).abs() < 1e-12);
        assert_eq!((a.p50_ms, a.p95_ms), (Some(70.0), Some(190.0)));
        assert_eq!(a.result_bytes, 1_600 + 3_000 + 20);
        assert!((s.hours_saved() - 81.5 / 60.0).abs() < 1e-12);

        let all = summarise(&records(), None, &minutes());
        assert_eq!(all.total.calls, 27);
        assert_eq!(all.servers[1].stats.p95_ms, Some(99_999.0));
        assert_eq!(all.first_ms, Some(1));
    }

    /// Rows come most calls first, ties by name.
    #[test]
    fn rows_sorted_by_calls() {
        let v = vec![
            rec(1, "b", "x", 1.0, Outcome::Ok, 0),
            rec(1, "a", "y", 1.0, Outcome::Ok, 0),
            rec(1, "c", "z", 1.0, Outcome::Ok, 0),
            rec(1, "c", "z", 1.0, Outcome::Ok, 0),
        ];
        let s = summarise(&v, None, &[]);
        let servers: Vec<_> = s.servers.iter().map(|r| r.server.as_str()).collect();
        assert_eq!(servers, ["c", "a", "b"]);
    }

    fn summary() -> Summary {
        Summary {
            log: "/s/audit.jsonl".into(),
            period: "the last 7 d".into(),
            skipped: 1,
            ..summarise(&records(), Some(10_000), &minutes())
        }
    }

    /// The tables line up, whatever the colours; totals and time saved on top.
    #[test]
    fn table_is_aligned() {
        let plain = render(&summary(), false);
        assert!(!plain.contains('\x1b'));
        assert!(
            plain.contains("audit log:   /s/audit.jsonl (1 unreadable line skipped)"),
            "{plain}"
        );
        assert!(plain.contains("period:      the last 7 d"), "{plain}");
        assert!(
            plain.contains("calls:       26, 5 errors (19.2 %), p50 70 ms, p95 190 ms, 4.6 kB of results"),
            "{plain}"
        );
        assert!(plain.contains("time saved:  1.4 h (82 min)\n"), "{plain}");
        let lines: Vec<&str> = plain.lines().collect();
        let servers = lines.iter().position(|l| l.starts_with("SERVER  CALLS")).unwrap();
        let (h, jira, notes) = (lines[servers], lines[servers + 1], lines[servers + 2]);
        let end = |l: &str, s: &str| l.find(s).unwrap() + s.len();
        assert_eq!(end(h, "CALLS"), end(jira, "24"));
        assert_eq!(end(h, "CALLS"), end(notes, " 2"));
        assert_eq!(end(h, "P95"), end(jira, "190 ms"));
        assert!(jira.ends_with("82 min"), "{jira}");
        assert!(notes.ends_with(" -"), "{notes}");
        let tools = lines.iter().position(|l| l.starts_with("SERVER  TOOL")).unwrap();
        let (h, create) = (lines[tools], lines[tools + 1]);
        assert!(create.starts_with("jira    create_issue"), "{create}");
        assert_eq!(end(h, "ERROR RATE"), end(create, "20.0 %"));
        assert_eq!(end(h, "RESULTS"), end(create, "1.6 kB"));

        let coloured = render(&summary(), true);
        assert!(coloured.contains("\x1b[31m4\x1b[0m"), "errors in red");
        assert!(coloured.contains("\x1b[32m1.4 h\x1b[0m"), "time saved in green");
        let none = render(&summarise(&records(), None, &[]), false);
        assert!(
            none.contains("time saved:  0.0 h (no successful call matches [audit.minutes_saved])"),
            "{none}"
        );
        assert_eq!(strip_ansi(&coloured), plain, "colour adds codes, never width");
    }

    /// A tool name with terminal controls is shown escaped and still lines up;
    /// the JSON keeps it exact.
    #[test]
    fn hostile_names_are_escaped_in_the_table() {
        let evil = "x\x1b]0;pwned\x07\x1b[2J\u{9b}1m\u{202e}";
        let recs = vec![
            rec(10_000, "jira", evil, 5.0, Outcome::Ok, 1),
            rec(10_001, "jira", "ok", 7.0, Outcome::Ok, 1),
        ];
        let s = summarise(&recs, None, &[]);
        let plain = render(&s, false);
        assert!(!plain.chars().any(|c| c.is_control() && c != '\n'), "{plain:?}");
        let escaped = "x\\x1b]0;pwned\\x07\\x1b[2J\\u{9b}1m\\u{202e}";
        let lines: Vec<&str> = plain.lines().collect();
        let row = lines.iter().find(|l| l.contains("pwned")).unwrap();
        assert!(row.starts_with(&format!("jira    {escaped}  ")), "{row}");
        let h = lines.iter().find(|l| l.starts_with("SERVER  TOOL")).unwrap();
        assert_eq!(h.find("CALLS").unwrap() + 5, row.find(" 1").unwrap() + 2, "{h}\n{row}");
        let json = to_json(&s);
        assert!(
            json["tools"].as_array().unwrap().iter().any(|t| t["tool"] == evil),
            "{json}"
        );
    }

    #[test]
    fn empty_period_says_where_the_log_is() {
        let s = Summary {
            log: "/s/audit.jsonl".into(),
            period: "the last 30 min".into(),
            ..summarise(&records(), Some(u64::MAX), &[])
        };
        assert_eq!(
            render(&s, true),
            "No tool calls recorded in the last 30 min (audit log: /s/audit.jsonl).\n"
        );
        assert_eq!(to_json(&s)["totals"]["p50_ms"], Value::Null);
        assert_eq!(to_json(&s)["totals"]["error_rate"], 0.0);
    }

    #[test]
    fn formats() {
        assert_eq!(format_ms(0.42), "0.4 ms");
        assert_eq!(format_ms(120.4), "120 ms");
        assert_eq!(format_ms(2_500.0), "2.5 s");
        assert_eq!(format_ms(186_000.0), "3.1 min");
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(1_234), "1.2 kB");
        assert_eq!(format_bytes(3_400_000), "3.4 MB");
        assert_eq!(format_saved(0.0), "-");
        assert_eq!(format_saved(45.2), "45 min");
        assert_eq!(format_saved(210.0), "3.5 h");
    }

    /// The JSON keeps the keys scripts read.
    #[test]
    fn json_keys() {
        let v = to_json(&summary());
        for key in [
            "log",
            "period",
            "since_ms",
            "first_ms",
            "last_ms",
            "skipped_lines",
            "totals",
            "hours_saved",
            "servers",
            "tools",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert_eq!(v["since_ms"], 10_000);
        assert_eq!(v["skipped_lines"], 1);
        let t = &v["tools"][0];
        assert_eq!(
            (t["server"].as_str(), t["tool"].as_str()),
            (Some("jira"), Some("create_issue"))
        );
        assert_eq!(t["calls"], 20);
        assert_eq!(t["errors"], 4);
        assert_eq!(t["error_rate"], 0.2);
        assert_eq!(
            t["by_outcome"],
            json!({"ok": 16, "tool_error": 1, "error": 1, "refused": 0, "declined": 1, "cancelled": 1})
        );
        assert_eq!((t["p50_ms"].as_f64(), t["p95_ms"].as_f64()), (Some(100.0), Some(190.0)));
        assert_eq!(t["result_bytes"], 1_600);
        assert_eq!(t["minutes_saved"], 80.0);
        assert!(v["servers"][0].get("tool").is_none());
        assert_eq!(v["totals"]["calls"], 26);
        assert!((v["hours_saved"].as_f64().unwrap() - 81.5 / 60.0).abs() < 1e-12);
    }
}
