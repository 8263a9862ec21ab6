//! Keeping a copy of a registry API current: incremental polls with
//! `updated_since` (deleted entries then come back and are applied as removals),
//! conditional requests with the validators of the last answer, and a full
//! re-read now and then for registries that do neither. Pure apart from
//! [`fetch_since`].

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{OFFICIAL_META, Page, RegistryError};
use crate::config::{RegistryConfig, expand_env};

/// HTTP validators of an answer, sent back to make the next request conditional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// The `updated_since` of the request they belong to.
    pub since: Option<String>,
}

/// What one poll brought.
#[derive(Debug)]
pub enum Fetched {
    /// 304: nothing changed since the validators were issued.
    NotModified,
    Servers {
        servers: Vec<Value>,
        validators: Validators,
        /// The registry lists more than `[registry] max_servers` entries: only
        /// that many were read.
        capped: bool,
    },
}

/// Pages a read follows at most: an endless cursor chain ends here.
pub const MAX_PAGES: usize = 1000;
/// Longest cursor followed (it goes into the next page's URL).
pub const MAX_CURSOR_BYTES: usize = 4096;
/// One read of the registry is at most this many times `max_page_bytes`.
pub const MAX_TOTAL_PAGES_BYTES: usize = 16;

/// Page through `{base}/v0.1/servers` (latest versions; only entries updated
/// after `since` when given), conditionally when `validators` match `since`.
///
/// Input is bounded: each page body to `rc.max_page_bytes` (checked against
/// `Content-Length` first, then while it streams, so nothing larger is ever
/// buffered), the whole read to [`MAX_TOTAL_PAGES_BYTES`] times that, the
/// entries to `rc.max_servers`, the pages to [`MAX_PAGES`].
pub async fn fetch_since(
    client: &reqwest::Client,
    base: &str,
    rc: &RegistryConfig,
    since: Option<&str>,
    validators: Option<&Validators>,
) -> Result<Fetched, RegistryError> {
    let list_url = format!("{}/v0.1/servers", base.trim_end_matches('/'));
    let err = |message: String| RegistryError::Http {
        url: list_url.clone(),
        message,
    };
    let validators = validators.filter(|v| v.since.as_deref() == since);
    let mut fresh = Validators {
        since: since.map(str::to_owned),
        ..Validators::default()
    };
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    let mut seen = HashSet::new();
    let total_limit = rc.max_page_bytes.saturating_mul(MAX_TOTAL_PAGES_BYTES);
    let mut total = 0usize;
    for page_no in 0..MAX_PAGES {
        let mut url = url::Url::parse(&list_url).map_err(|e| err(format!("not a URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("limit", "100")
            .append_pair("version", "latest");
        if let Some(s) = since {
            url.query_pairs_mut().append_pair("updated_since", s);
        }
        if let Some(c) = &cursor {
            url.query_pairs_mut().append_pair("cursor", c);
        }
        let mut req = client.get(url);
        for (k, v) in &rc.headers {
            req = req.header(k, expand_env(v).map_err(|e| err(format!("header {k}: {e}")))?);
        }
        if page_no == 0
            && let Some(v) = validators
        {
            if let Some(etag) = &v.etag {
                req = req.header(reqwest::header::IF_NONE_MATCH, etag);
            }
            if let Some(lm) = &v.last_modified {
                req = req.header(reqwest::header::IF_MODIFIED_SINCE, lm);
            }
        }
        let resp = req
            .send()
            .await
            .map_err(|e| err(format!("unreachable: {}", crate::util::error_chain(&e))))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_MODIFIED && page_no == 0 && validators.is_some() {
            return Ok(Fetched::NotModified);
        }
        if !status.is_success() {
            return Err(err(format!("HTTP {status}")));
        }
        if page_no == 0 {
            let header = |name| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            fresh.etag = header(reqwest::header::ETAG);
            fresh.last_modified = header(reqwest::header::LAST_MODIFIED);
        }
        let body = read_bounded(resp, rc.max_page_bytes, page_no + 1).await.map_err(&err)?;
        total += body.len();
        if total > total_limit {
            return Err(err(format!(
                "its pages add up to more than {total_limit} bytes ({MAX_TOTAL_PAGES_BYTES} x [registry] max_page_bytes)"
            )));
        }
        let page: Page = serde_json::from_slice(&body)
            .map_err(|e| err(format!("page {} is not a registry page: {e}", page_no + 1)))?;
        drop(body);
        all.extend(page.servers);
        let next = page.metadata.and_then(|m| m.next_cursor).filter(|c| !c.is_empty());
        if all.len() > rc.max_servers || (all.len() == rc.max_servers && next.is_some()) {
            all.truncate(rc.max_servers);
            return Ok(Fetched::Servers {
                servers: all,
                validators: fresh,
                capped: true,
            });
        }
        match next {
            Some(next) if next.len() > MAX_CURSOR_BYTES => {
                return Err(err(format!(
                    "page {} gave a cursor of {} bytes (at most {MAX_CURSOR_BYTES} are followed)",
                    page_no + 1,
                    next.len()
                )));
            }
            Some(next) if seen.insert(next.clone()) => cursor = Some(next),
            Some(_) => return Err(err("the registry repeated a cursor".into())),
            None => {
                return Ok(Fetched::Servers {
                    servers: all,
                    validators: fresh,
                    capped: false,
                });
            }
        }
    }
    Err(err(format!("more than {MAX_PAGES} pages")))
}

/// A response body, refused as soon as it is known to exceed `limit` bytes:
/// from its `Content-Length` before any of it is read, else while it streams.
async fn read_bounded(mut resp: reqwest::Response, limit: usize, page_no: usize) -> Result<Vec<u8>, String> {
    let over = |size: &str| {
        format!("page {page_no} is {size} the limit of {limit} bytes ([registry] max_page_bytes); it was not read")
    };
    if let Some(len) = resp.content_length()
        && len > limit as u64
    {
        return Err(over(&format!("{len} bytes, over")));
    }
    let mut body = Vec::with_capacity(resp.content_length().map_or(64 * 1024, |l| l as usize));
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("page {page_no} broke off: {}", crate::util::error_chain(&e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(over("larger than"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The last good copy of a registry, in a stable order (by name, then version).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mirror {
    pub servers: Vec<Value>,
    pub validators: Validators,
}

fn official<'a>(e: &'a Value, field: &str) -> Option<&'a Value> {
    e.get("_meta")?.get(OFFICIAL_META)?.get(field)
}

fn name_of(e: &Value) -> Option<&str> {
    e.pointer("/server/name").and_then(Value::as_str)
}

fn version_of(e: &Value) -> Option<&str> {
    e.pointer("/server/version").and_then(Value::as_str)
}

fn updated_at(e: &Value) -> Option<(i64, u32)> {
    official(e, "updatedAt").and_then(Value::as_str).and_then(rfc3339_key)
}

impl Mirror {
    pub fn new(servers: Vec<Value>) -> Mirror {
        let mut m = Mirror::default();
        m.replace(servers);
        m
    }

    /// `updated_since` for the next poll: the newest `updatedAt` held, verbatim.
    /// `None` when the registry does not say when entries changed.
    pub fn since(&self) -> Option<String> {
        self.servers
            .iter()
            .filter_map(|e| Some((updated_at(e)?, official(e, "updatedAt")?.as_str()?)))
            .max_by_key(|(k, _)| *k)
            .map(|(_, s)| s.to_owned())
    }

    /// Take a full answer. Returns whether anything changed.
    pub fn replace(&mut self, mut servers: Vec<Value>) -> bool {
        servers.sort_by(|a, b| (name_of(a), version_of(a)).cmp(&(name_of(b), version_of(b))));
        let changed = servers != self.servers;
        self.servers = servers;
        changed
    }

    /// Apply an answer to `updated_since = since`. A registry that ignored the
    /// parameter (an entry older than `since`, or without `updatedAt`) sent the
    /// full list, which replaces ours. Returns whether anything changed.
    pub fn merge(&mut self, delta: Vec<Value>, since: &str) -> bool {
        let Some(since_key) = rfc3339_key(since) else {
            return self.replace(delta);
        };
        if delta.iter().any(|e| updated_at(e).is_none_or(|k| k < since_key)) {
            return self.replace(delta);
        }
        // Grouped by name: each delta entry touches only its own group, so a
        // large answer costs O(n log n), not a scan of the copy per entry
        // (which held the runtime thread for seconds at a few thousand).
        let mut groups: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let mut nameless = Vec::new();
        for e in self.servers.iter().cloned() {
            match name_of(&e).map(str::to_owned) {
                Some(name) => groups.entry(name).or_default().push(e),
                None => nameless.push(e),
            }
        }
        for e in delta {
            let Some(name) = name_of(&e).map(str::to_owned) else {
                continue;
            };
            let latest = official(&e, "isLatest").and_then(Value::as_bool) != Some(false);
            let group = groups.entry(name).or_default();
            // A new latest version replaces every older one; an update to an
            // older version replaces only that version.
            group.retain(|o| !latest && version_of(o) != version_of(&e));
            if official(&e, "status").and_then(Value::as_str) != Some("deleted") {
                group.push(e);
            }
        }
        let mut next = nameless;
        next.extend(groups.into_values().flatten());
        self.replace(next)
    }
}

/// An RFC 3339 timestamp as a sortable key (UTC seconds, nanoseconds). Strings
/// do not compare: `12:00:00.5Z` sorts before `12:00:00Z`.
pub fn rfc3339_key(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let mut n: String = frac[..digits].chars().take(9).collect();
        while n.len() < 9 {
            n.push('0');
        }
        nanos = n.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        // Checked as bytes and sliced with `get`: a 6-byte offset can hold a
        // multi-byte character, and `&o[..1]` on it panicked (found by fuzzing).
        o if o.len() == 6 && matches!(o.as_bytes()[0], b'+' | b'-') && o.as_bytes()[3] == b':' => {
            let v = o.get(1..3)?.parse::<i64>().ok()? * 3600 + o.get(4..6)?.parse::<i64>().ok()? * 60;
            if o.starts_with('-') { -v } else { v }
        }
        _ => return None,
    };
    // Days since the epoch of a proleptic Gregorian date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60 + sec - offset, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(name: &str, version: &str, updated: &str, status: &str, latest: bool) -> Value {
        json!({ "server": { "name": name, "version": version },
            "_meta": { OFFICIAL_META: { "status": status, "updatedAt": updated, "isLatest": latest } } })
    }

    #[test]
    fn timestamps_sort_by_instant_not_text() {
        assert_eq!(rfc3339_key("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(rfc3339_key("2026-07-20T12:00:00Z"), Some((1_784_548_800, 0)));
        assert!(rfc3339_key("2026-07-20T12:00:00.5Z") > rfc3339_key("2026-07-20T12:00:00Z"));
        assert_eq!(
            rfc3339_key("2026-07-20T14:00:00+02:00"),
            rfc3339_key("2026-07-20T12:00:00Z")
        );
        assert_eq!(
            rfc3339_key("2026-07-20T12:00:00.123Z"),
            Some((1_784_548_800, 123_000_000))
        );
        assert_eq!(rfc3339_key("yesterday"), None);
    }

    #[test]
    fn incremental_answer_adds_updates_and_removes() {
        let mut m = Mirror::new(vec![
            entry("a/one", "1", "2026-01-01T00:00:00Z", "active", true),
            entry("a/two", "1", "2026-01-02T00:00:00Z", "active", true),
        ]);
        assert_eq!(m.since().as_deref(), Some("2026-01-02T00:00:00Z"));
        let since = m.since().unwrap();
        let changed = m.merge(
            vec![
                entry("a/one", "2", "2026-02-01T00:00:00Z", "active", true),
                entry("a/two", "1", "2026-02-02T00:00:00Z", "deleted", true),
                entry("a/three", "1", "2026-02-03T00:00:00Z", "active", true),
            ],
            &since,
        );
        assert!(changed);
        let names: Vec<_> = m
            .servers
            .iter()
            .map(|e| (name_of(e).unwrap(), version_of(e).unwrap()))
            .collect();
        assert_eq!(names, [("a/one", "2"), ("a/three", "1")]);
        assert_eq!(m.since().as_deref(), Some("2026-02-03T00:00:00Z"));
        // Nothing new: nothing changes.
        assert!(!m.merge(Vec::new(), "2026-02-03T00:00:00Z"));
    }

    /// An update to an older version replaces only that version; a new latest
    /// version replaces them all; a large answer merges entry by entry.
    #[test]
    fn versions_merge_within_their_server() {
        let mut m = Mirror::new(vec![
            entry("a/one", "1", "2026-01-01T00:00:00Z", "active", false),
            entry("a/one", "2", "2026-01-02T00:00:00Z", "active", true),
        ]);
        m.merge(
            vec![entry("a/one", "1", "2026-02-01T00:00:00Z", "deprecated", false)],
            "2026-01-02T00:00:00Z",
        );
        let got: Vec<_> = m
            .servers
            .iter()
            .map(|e| (version_of(e).unwrap(), official(e, "status").unwrap().as_str().unwrap()))
            .collect();
        assert_eq!(got, [("1", "deprecated"), ("2", "active")]);
        m.merge(
            vec![entry("a/one", "3", "2026-03-01T00:00:00Z", "active", true)],
            "2026-02-01T00:00:00Z",
        );
        assert_eq!(m.servers.len(), 1);
        let delta: Vec<Value> = (0..5000)
            .map(|i| entry(&format!("b/{i:05}"), "1", "2026-04-01T00:00:00Z", "active", true))
            .collect();
        assert!(m.merge(delta, "2026-03-01T00:00:00Z"));
        assert_eq!(m.servers.len(), 5001);
        assert_eq!(name_of(&m.servers[0]), Some("a/one"));
    }

    #[test]
    fn a_registry_ignoring_updated_since_replaces_the_list() {
        let mut m = Mirror::new(vec![
            entry("a/one", "1", "2026-01-01T00:00:00Z", "active", true),
            entry("a/two", "1", "2026-01-02T00:00:00Z", "active", true),
        ]);
        // The full list came back, without a/two: it was removed.
        assert!(m.merge(
            vec![entry("a/one", "1", "2026-01-01T00:00:00Z", "active", true)],
            "2026-01-02T00:00:00Z"
        ));
        assert_eq!(m.servers.len(), 1);
        // Entries without updatedAt: no incremental sync is possible.
        let mut m = Mirror::new(vec![json!({ "server": { "name": "b/x", "version": "1" } })]);
        assert_eq!(m.since(), None);
        assert!(!m.replace(vec![json!({ "server": { "name": "b/x", "version": "1" } })]));
    }
}
