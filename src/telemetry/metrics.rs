//! The metric aggregates: cumulative counters and histograms keyed by their
//! attributes, added to on the call path under one short lock and read by the
//! exporter. Plain data, no protocol; bounded: past [`MAX_SERIES`] attribute
//! sets per metric, new ones fold into one overflow series (the OpenTelemetry
//! SDK's `otel.metric.overflow` rule), so memory stays bounded whatever the
//! servers name their tools.

use std::collections::HashMap;
use std::sync::Arc;

/// Attribute sets kept per metric before new ones fold into the overflow series.
pub const MAX_SERIES: usize = 2000;

/// Bucket bounds of `mcp.client.operation.duration`, in seconds: those the
/// OpenTelemetry MCP semantic conventions recommend.
pub const DURATION_BOUNDS: [f64; 14] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// One tool call as the audit log sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CallKey {
    pub server: Arc<str>,
    pub tool: String,
    pub outcome: &'static str,
}

/// One forwarded request, for the duration histogram.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpKey {
    pub server: Arc<str>,
    pub method: String,
    /// The tool or prompt name, when the method has one.
    pub target: Option<String>,
    /// Set when the request failed (`error.type`).
    pub error: Option<&'static str>,
}

/// A histogram over [`DURATION_BOUNDS`].
#[derive(Clone, Debug, PartialEq)]
pub struct Hist {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// One more than the bounds: the last counts values above the last bound.
    pub buckets: [u64; DURATION_BOUNDS.len() + 1],
}

impl Default for Hist {
    fn default() -> Self {
        Hist {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            buckets: [0; DURATION_BOUNDS.len() + 1],
        }
    }
}

impl Hist {
    pub fn record(&mut self, v: f64) {
        let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        // Buckets are upper-inclusive: (bound[i-1], bound[i]].
        let i = DURATION_BOUNDS.partition_point(|b| *b < v);
        self.buckets[i] += 1;
    }
}

/// Everything counted since the process started (cumulative temporality).
#[derive(Debug, Default)]
pub struct Aggregates {
    /// `mcp_bridge.calls`; `None` is the overflow series.
    pub calls: HashMap<Option<CallKey>, u64>,
    /// `mcp_bridge.minutes_saved` by server and tool.
    pub minutes: HashMap<Option<(Arc<str>, String)>, f64>,
    /// `mcp.client.operation.duration`.
    pub durations: HashMap<Option<OpKey>, Hist>,
    /// `mcp_bridge.token.refreshes` by server and outcome.
    pub refreshes: HashMap<(Arc<str>, &'static str), u64>,
}

impl Aggregates {
    /// A finished tool call; `minutes` is what one successful call saves.
    pub fn call(&mut self, key: CallKey, minutes: f64) {
        if key.outcome == "ok" && minutes > 0.0 {
            let m = (key.server.clone(), key.tool.clone());
            *bounded(&mut self.minutes, m) += minutes;
        }
        *bounded(&mut self.calls, key) += 1;
    }

    /// A forwarded request that took `secs`.
    pub fn operation(&mut self, key: OpKey, secs: f64) {
        bounded(&mut self.durations, key).record(secs);
    }

    /// A token refresh ahead of expiry (`ok` or `failed`).
    pub fn refresh(&mut self, server: Arc<str>, outcome: &'static str) {
        if self.refreshes.len() < MAX_SERIES || self.refreshes.contains_key(&(server.clone(), outcome)) {
            *self.refreshes.entry((server, outcome)).or_default() += 1;
        }
    }
}

/// The entry for `key`, or the overflow entry (`None`) once the map holds
/// [`MAX_SERIES`] attribute sets and `key` is not among them.
fn bounded<K: Eq + std::hash::Hash, V: Default>(map: &mut HashMap<Option<K>, V>, key: K) -> &mut V {
    let key = Some(key);
    if map.len() >= MAX_SERIES && !map.contains_key(&key) {
        return map.entry(None).or_default();
    }
    map.entry(key).or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(server: &str, tool: &str, outcome: &'static str) -> CallKey {
        CallKey {
            server: server.into(),
            tool: tool.into(),
            outcome,
        }
    }

    #[test]
    fn calls_and_minutes_count_by_outcome() {
        let mut a = Aggregates::default();
        a.call(call("jira", "create", "ok"), 5.0);
        a.call(call("jira", "create", "ok"), 5.0);
        a.call(call("jira", "create", "tool_error"), 5.0);
        a.call(call("jira", "search", "ok"), 0.0);
        assert_eq!(a.calls[&Some(call("jira", "create", "ok"))], 2);
        assert_eq!(a.calls[&Some(call("jira", "create", "tool_error"))], 1);
        // Only successful calls save time; a tool worth nothing has no series.
        assert_eq!(a.minutes[&Some(("jira".into(), "create".into()))], 10.0);
        assert_eq!(a.minutes.len(), 1);
    }

    #[test]
    fn histogram_buckets_are_upper_inclusive() {
        let mut h = Hist::default();
        for v in [0.005, 0.01, 0.011, 1.0, 400.0, f64::NAN] {
            h.record(v);
        }
        assert_eq!(h.count, 6);
        assert_eq!(h.buckets[0], 3, "0.005, 0.01 and NaN-as-0 are <= 0.01");
        assert_eq!(h.buckets[1], 1);
        assert_eq!(h.buckets[6], 1, "1.0 is in (0.5, 1]");
        assert_eq!(h.buckets[DURATION_BOUNDS.len()], 1, "400 s is above the last bound");
        assert_eq!((h.min, h.max), (0.0, 400.0));
    }

    #[test]
    fn series_are_bounded_with_one_overflow() {
        let mut a = Aggregates::default();
        for i in 0..MAX_SERIES + 10 {
            a.call(call("s", &format!("t{i}"), "ok"), 0.0);
        }
        assert_eq!(a.calls.len(), MAX_SERIES + 1);
        assert_eq!(a.calls[&None], 10);
        // A series seen before the bound keeps counting on its own.
        a.call(call("s", "t0", "ok"), 0.0);
        assert_eq!(a.calls[&Some(call("s", "t0", "ok"))], 2);
    }
}
