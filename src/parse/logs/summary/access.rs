//! Access-log counts: totals, per upstream attempt, per minute, the slowest and the
//! most-failing URIs.

use super::super::access_log::{
    AccessFormat, Plan, Record, Span, UpstreamList, Var, is_single, status,
};
use super::{Counts, FxMap, SLOWEST, UPSTREAM_CAP, URI_CAP};

mod caches;
use caches::{Cache, LastTime, Minutes, Recent};

/// A failing URI path and its counts (lower bounds; `overcount` bounds the error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failing {
    pub uri: Vec<u8>,
    pub counts: Counts,
    pub overcount: u64,
}

/// A slow URI path: its highest `$request_time` and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slow {
    pub uri: Vec<u8>,
    pub max_ms: u32,
    pub time: Option<i64>,
}

/// Access-log counts.
#[derive(Debug, Clone, Default)]
pub struct AccessSummary {
    /// By the client's `$status`.
    pub total: Counts,
    /// Lines that did not match their format.
    pub malformed: u64,
    /// Lines before the `--since` window.
    pub skipped_before: u64,
    /// Requests nginx answered without an upstream (`$upstream_addr` is `-`).
    pub without_upstream: u64,
    /// Per `$upstream_addr`, per attempt, by that attempt's `$upstream_status`.
    upstreams: Vec<(Box<[u8]>, Counts)>,
    upstream_index: FxMap<u32>,
    /// Per minute (Unix minute), by `$status`.
    pub(super) minutes: Minutes,
    /// Upstreams seen, looked up before the hash map: most lines name one of a few.
    recent: Cache,
    pub(super) failing: FxMap<(Counts, u64)>,
    failing_floor: u64,
    slowest: Vec<Slow>,
    last_time: LastTime,
}

/// Feeds access-log lines of one format into an [`AccessSummary`].
pub struct AccessFeeder<'f> {
    format: &'f AccessFormat,
    spans: Vec<Span>,
    /// The fields the summary reads; the others are not split.
    plan: Plan,
    /// Records before this Unix time are skipped.
    pub since: Option<i64>,
}

/// The variables the summary reads; a format's other fields are not split.
pub const READS: [Var; 7] = [
    Var::Status,
    Var::Request,
    Var::TimeLocal,
    Var::TimeIso8601,
    Var::UpstreamAddr,
    Var::UpstreamStatus,
    Var::RequestTime,
];

impl<'f> AccessFeeder<'f> {
    pub fn new(format: &'f AccessFormat, since: Option<i64>) -> Self {
        let wanted: Vec<usize> = READS.iter().filter_map(|v| format.index_of(*v)).collect();
        AccessFeeder {
            format,
            spans: Vec::with_capacity(format.len()),
            plan: format.plan(&wanted),
            since,
        }
    }

    /// Adds one line (without its newline).
    #[inline]
    pub fn feed(&mut self, sum: &mut AccessSummary, line: &[u8]) {
        match self.format.split(line, &mut self.spans, &self.plan) {
            Ok(rec) => sum.add(&rec, self.since),
            Err(_) => sum.malformed += 1,
        }
    }
}

impl AccessSummary {
    /// Adds one record; skips it when it is older than `since`.
    pub fn add(&mut self, rec: &Record<'_>, since: Option<i64>) {
        let time = self.time(rec);
        if let (Some(s), Some(t)) = (since, time)
            && t < s
        {
            self.skipped_before += 1;
            return;
        }
        let st = rec.status();
        self.total.add(st);
        if let Some(t) = time {
            self.minutes.add(t.div_euclid(60), st);
        }
        match (rec.raw(Var::UpstreamAddr), rec.raw(Var::UpstreamStatus)) {
            (Some(b"-"), _) => self.without_upstream += 1,
            (Some(addrs), Some(statuses)) => self.attempts(addrs, statuses),
            _ => {}
        }
        // The URI is looked at only for a failure or a request slower than the slowest kept.
        let failed = st.is_some_and(|s| s >= 500);
        let ms = rec.request_time_ms().filter(|&ms| !self.below_slowest(ms));
        if !failed && ms.is_none() {
            return;
        }
        let Some(req) = rec.request() else { return };
        let path = req.path();
        if let Some(ms) = ms {
            self.slow(path, ms, time);
        }
        if failed {
            self.fail(path, st);
        }
    }

    /// Counts each upstream attempt by its own status.
    #[inline]
    fn attempts(&mut self, addrs: &[u8], statuses: &[u8]) {
        // Most lines: one attempt at an address seen before. The cache holds single addresses
        // only, and a list of statuses has a separator, so it is longer than one status.
        if statuses.len() <= 3
            && let Some(i) = self.cached(addrs)
        {
            self.upstreams[i].1.add(status(statuses));
            return;
        }
        if is_single(addrs) && is_single(statuses) {
            // Most lines: one attempt, no list to walk.
            let i = self.upstream(addrs);
            self.upstreams[i].1.add(status(statuses));
        } else {
            let mut statuses = UpstreamList::new(statuses).map(|s| status(s.value));
            for a in UpstreamList::new(addrs) {
                let s = statuses.next().flatten();
                let i = self.upstream(a.value);
                self.upstreams[i].1.add(s);
            }
        }
    }

    /// Whether `ms` cannot enter the slowest list.
    #[inline]
    fn below_slowest(&self, ms: u32) -> bool {
        self.slowest.len() >= SLOWEST && self.slowest.last().is_some_and(|s| ms <= s.max_ms)
    }

    /// The record's time; `$time_local` is parsed once per distinct value (once a second).
    #[inline]
    fn time(&mut self, rec: &Record<'_>) -> Option<i64> {
        let key = rec.raw(Var::TimeLocal).and_then(LastTime::key);
        let last = &self.last_time;
        if let Some((len, head, tail)) = key
            && last.len == len
            && last.head == head
            && last.tail == tail
        {
            return Some(last.time);
        }
        let t = rec.time()?;
        if let Some((len, head, tail)) = key {
            self.last_time = LastTime {
                len,
                head,
                tail,
                time: t,
            };
        }
        Some(t)
    }

    /// The index of `addr` if the cache of recent upstreams has it.
    #[inline]
    fn cached(&self, addr: &[u8]) -> Option<usize> {
        let (len, head, tail) = Recent::key(addr);
        let r = self.recent.0[Recent::slot((len, head, tail))];
        (r.len == len
            && r.head == head
            && r.tail == tail
            && (len <= 16 || *self.upstreams[r.index as usize].0 == *addr))
            .then_some(r.index as usize)
    }

    #[inline]
    fn upstream(&mut self, addr: &[u8]) -> usize {
        if let Some(i) = self.cached(addr) {
            return i;
        }
        let key = Recent::key(addr);
        let (len, head, tail) = key;
        let slot = Recent::slot(key);
        let i = self.upstream_slow(addr);
        // An address counted under `(other)` is not cached: its key is not the address.
        if *self.upstreams[i].0 == *addr {
            self.recent.0[slot] = Recent {
                len,
                head,
                tail,
                index: i as u32,
            };
        }
        i
    }

    fn upstream_slow(&mut self, addr: &[u8]) -> usize {
        if let Some(&i) = self.upstream_index.get(addr) {
            return i as usize;
        }
        let key: &[u8] = if self.upstreams.len() >= UPSTREAM_CAP {
            b"(other)"
        } else {
            addr
        };
        if let Some(&i) = self.upstream_index.get(key) {
            return i as usize;
        }
        let i = self.upstreams.len();
        self.upstreams.push((key.into(), Counts::default()));
        self.upstream_index.insert(key.into(), i as u32);
        i
    }

    fn slow(&mut self, uri: &[u8], ms: u32, time: Option<i64>) {
        let full = self.slowest.len() >= SLOWEST;
        if full && self.slowest.last().is_some_and(|s| ms <= s.max_ms) {
            return;
        }
        if let Some(i) = self.slowest.iter().position(|s| s.uri == uri) {
            if ms > self.slowest[i].max_ms {
                self.slowest[i].max_ms = ms;
                self.slowest[i].time = time;
            }
        } else {
            if full {
                self.slowest.pop();
            }
            self.slowest.push(Slow {
                uri: uri.to_vec(),
                max_ms: ms,
                time,
            });
        }
        self.slowest
            .sort_by(|a, b| b.max_ms.cmp(&a.max_ms).then(a.uri.cmp(&b.uri)));
    }

    pub(super) fn fail(&mut self, uri: &[u8], st: Option<u16>) {
        if let Some((c, _)) = self.failing.get_mut(uri) {
            c.add(st);
            return;
        }
        if self.failing.len() >= URI_CAP {
            self.shrink_failing();
        }
        let mut c = Counts::default();
        c.add(st);
        self.failing.insert(uri.into(), (c, self.failing_floor));
    }

    /// Drops the half of the tracked URIs with the lowest counts; whatever a dropped URI had
    /// counted becomes the over-count bound for newcomers.
    fn shrink_failing(&mut self) {
        let mut counts: Vec<u64> = self.failing.values().map(|(c, e)| c.s5xx + e).collect();
        let mid = counts.len() / 2;
        let (_, &mut cut, _) = counts.select_nth_unstable(mid);
        let mut dropped = 0;
        self.failing.retain(|_, (c, e)| {
            let keep = c.s5xx + *e > cut || dropped >= mid;
            if !keep {
                dropped += 1;
            }
            keep
        });
        self.failing_floor = self.failing_floor.max(cut);
    }

    /// Per upstream address, most attempts first.
    pub fn upstreams(&self) -> Vec<(&[u8], Counts)> {
        let mut v: Vec<_> = self.upstreams.iter().map(|(a, c)| (&a[..], *c)).collect();
        v.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(b.0)));
        v
    }

    /// Per minute (Unix minute), oldest first.
    pub fn minutes(&self) -> impl Iterator<Item = (i64, Counts)> + '_ {
        let v: Vec<(i64, Counts)> = self
            .minutes
            .settled()
            .map
            .iter()
            .map(|(m, c)| (*m, *c))
            .collect();
        v.into_iter()
    }

    /// Lines whose minute was not kept: older than all [`MINUTE_CAP`](super::MINUTE_CAP)
    /// minutes kept, plus one per minute evicted to make room.
    pub fn minutes_dropped(&self) -> u64 {
        self.minutes.settled().dropped
    }

    /// The slowest URI paths, slowest first.
    pub fn slowest(&self) -> &[Slow] {
        &self.slowest
    }

    /// The `n` most-failing URI paths, most 5xx first.
    pub fn failing(&self, n: usize) -> Vec<Failing> {
        let mut v: Vec<Failing> = self
            .failing
            .iter()
            .map(|(u, (c, e))| Failing {
                uri: u.to_vec(),
                counts: *c,
                overcount: *e,
            })
            .collect();
        v.sort_by(|a, b| b.counts.s5xx.cmp(&a.counts.s5xx).then(a.uri.cmp(&b.uri)));
        v.truncate(n);
        v
    }
}
