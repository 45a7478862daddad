//! The running summary behind `reflex logs`: counts over access-log records and error-log
//! lines, in bounded memory. Pure: lines in, counts out.
//!
//! Bounds (documented in the JSON output under `caps`):
//! - URIs are grouped by path (query string dropped). The most-failing URIs are tracked with
//!   a lossy counter of at most [`URI_CAP`] entries: when full, the half with the lowest counts
//!   is dropped, and later newcomers may be over-counted by at most `overcount`.
//! - The slowest URIs keep the [`SLOWEST`] paths with the highest `$request_time`; this is
//!   exact, since a path's maximum only grows.
//! - At most [`UPSTREAM_CAP`] distinct upstream addresses; the rest count under `(other)`.
//! - At most [`MINUTE_CAP`] minutes; the oldest are dropped first.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use super::access_log::{AccessFormat, Record, Span, Var, status};
use super::error_log::{self, UpstreamError};

/// Most-failing URI paths tracked at once.
pub const URI_CAP: usize = 1024;
/// Slowest URI paths kept.
pub const SLOWEST: usize = 10;
/// Distinct upstream addresses kept.
pub const UPSTREAM_CAP: usize = 1000;
/// Minutes kept (one week).
pub const MINUTE_CAP: usize = 7 * 24 * 60;
/// Distinct shapes of unclassified error messages kept (the rest count as `other`).
pub const UNCLASSIFIED_CAP: usize = 256;

/// Request counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    pub s5xx: u64,
    pub s502: u64,
    pub s504: u64,
}

impl Counts {
    #[inline]
    fn add(&mut self, status: Option<u16>) {
        self.requests += 1;
        if let Some(s) = status
            && s >= 500
        {
            self.s5xx += 1;
            self.s502 += u64::from(s == 502);
            self.s504 += u64::from(s == 504);
        }
    }

    #[inline]
    fn merge(&mut self, o: Counts) {
        self.requests += o.requests;
        self.s5xx += o.s5xx;
        self.s502 += o.s502;
        self.s504 += o.s504;
    }
}

/// A fast, non-cryptographic hasher for short byte keys (FxHash's multiply-rotate); the keys
/// come from our own log files, so HashDoS resistance buys nothing here.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<V> = HashMap<Box<[u8]>, V, BuildHasherDefault<FxHasher>>;

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
    minutes: Minutes,
    /// Upstreams seen, looked up before the hash map: most lines name one of a few.
    recent: Cache,
    failing: FxMap<(Counts, u64)>,
    failing_floor: u64,
    slowest: Vec<Slow>,
    last_time: LastTime,
}

/// The last `$time_local` (or `$time_iso8601`) value parsed, as its length and first and last
/// 16 bytes (the whole value, for 16 to 32 bytes), and its time.
#[derive(Debug, Clone, Copy, Default)]
struct LastTime {
    len: usize,
    head: u128,
    tail: u128,
    time: i64,
}

impl LastTime {
    /// The key of `raw`, if it is 16 to 32 bytes long.
    #[inline]
    fn key(raw: &[u8]) -> Option<(usize, u128, u128)> {
        if !(16..=32).contains(&raw.len()) {
            return None;
        }
        let w = |c: &[u8]| u128::from_le_bytes(c.try_into().unwrap_or([0; 16]));
        Some((raw.len(), w(&raw[..16]), w(&raw[raw.len() - 16..])))
    }
}

/// Per-minute counts, bounded by [`MINUTE_CAP`]. Lines come in time order, so the current
/// minute is counted apart (`hot`) and merged into the map only when the minute changes: the
/// same result as adding each line to the map, without a map lookup per line.
#[derive(Debug, Clone, Default)]
struct Minutes {
    map: BTreeMap<i64, Counts>,
    dropped: u64,
    hot: Option<(i64, Counts)>,
}

impl Minutes {
    #[inline]
    fn add(&mut self, m: i64, st: Option<u16>) {
        match &mut self.hot {
            Some((h, c)) if *h == m => c.add(st),
            _ => {
                self.flush();
                let mut c = Counts::default();
                c.add(st);
                self.hot = Some((m, c));
            }
        }
    }

    /// Moves the hot minute into the map.
    fn flush(&mut self) {
        let Some((m, c)) = self.hot.take() else {
            return;
        };
        if self.map.len() >= MINUTE_CAP
            && !self.map.contains_key(&m)
            && let Some((&oldest, _)) = self.map.first_key_value()
        {
            if m < oldest {
                // Older than everything kept: count it nowhere rather than evict newer data
                // (each such line counts as dropped).
                self.dropped += c.requests;
                return;
            }
            self.map.remove(&oldest);
            self.dropped += 1;
        }
        self.map.entry(m).or_default().merge(c);
    }

    /// The minutes with the hot one merged in.
    fn settled(&self) -> std::borrow::Cow<'_, Minutes> {
        if self.hot.is_none() {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut m = self.clone();
        m.flush();
        std::borrow::Cow::Owned(m)
    }
}

/// Slots of the upstream cache: direct-mapped by a hash of the key, so a lookup is one
/// comparison whose outcome (a hit, nearly always) the CPU predicts, where a scan of a short
/// list exits at a different entry on every line.
const RECENT: usize = 64;

/// The direct-mapped upstream cache.
#[derive(Debug, Clone)]
struct Cache([Recent; RECENT]);

impl Default for Cache {
    fn default() -> Self {
        Cache([Recent::default(); RECENT])
    }
}

/// A recently seen upstream address: its length and first and last 8 bytes (which together
/// are the whole address when it is at most 16 bytes long), and its index.
#[derive(Debug, Clone, Copy)]
struct Recent {
    len: u32,
    head: u64,
    tail: u64,
    index: u32,
}

impl Default for Recent {
    fn default() -> Self {
        Recent {
            len: u32::MAX,
            head: 0,
            tail: 0,
            index: 0,
        }
    }
}

impl Recent {
    #[inline]
    fn key(b: &[u8]) -> (u32, u64, u64) {
        let word = |c: &[u8]| c.iter().rev().fold(0u64, |w, &x| (w << 8) | u64::from(x));
        let (head, tail) = if b.len() >= 8 {
            let w = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
            (w(&b[..8]), w(&b[b.len() - 8..]))
        } else {
            (word(b), 0)
        };
        (b.len().min(u32::MAX as usize) as u32, head, tail)
    }

    /// The slot of a key.
    #[inline]
    fn slot((len, head, tail): (u32, u64, u64)) -> usize {
        let h = (head ^ tail.rotate_left(29) ^ u64::from(len)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> 58) as usize % RECENT
    }
}

/// Feeds access-log lines of one format into an [`AccessSummary`].
pub struct AccessFeeder<'f> {
    format: &'f AccessFormat,
    spans: Vec<Span>,
    /// Fields to split: up to the last one the summary reads.
    needed: usize,
    /// Records before this Unix time are skipped.
    pub since: Option<i64>,
}

impl<'f> AccessFeeder<'f> {
    pub fn new(format: &'f AccessFormat, since: Option<i64>) -> Self {
        let needed = [
            Var::Status,
            Var::Request,
            Var::TimeLocal,
            Var::TimeIso8601,
            Var::UpstreamAddr,
            Var::UpstreamStatus,
            Var::RequestTime,
        ]
        .iter()
        .filter_map(|v| format.index_of(*v))
        .max()
        .map_or(format.len(), |m| m + 1);
        AccessFeeder {
            format,
            spans: Vec::with_capacity(format.len()),
            needed,
            since,
        }
    }

    /// Adds one line (without its newline).
    #[inline]
    pub fn feed(&mut self, sum: &mut AccessSummary, line: &[u8]) {
        match self.format.parse_prefix(line, &mut self.spans, self.needed) {
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
        if rec.raw(Var::UpstreamAddr) == Some(b"-") {
            self.without_upstream += 1;
        } else if let (Some(addrs), Some(statuses)) = (rec.upstream_addr(), rec.upstream_status()) {
            let mut statuses = statuses.map(|s| status(s.value));
            for a in addrs {
                let s = statuses.next().flatten();
                let i = self.upstream(a.value);
                self.upstreams[i].1.add(s);
            }
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

    #[inline]
    fn upstream(&mut self, addr: &[u8]) -> usize {
        let key = Recent::key(addr);
        let (len, head, tail) = key;
        let slot = Recent::slot(key);
        let r = self.recent.0[slot];
        if r.len == len
            && r.head == head
            && r.tail == tail
            && (len <= 16 || *self.upstreams[r.index as usize].0 == *addr)
        {
            return r.index as usize;
        }
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

    fn fail(&mut self, uri: &[u8], st: Option<u16>) {
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

    /// Lines whose minute was not kept: older than all [`MINUTE_CAP`] minutes kept, plus one
    /// per minute evicted to make room.
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

/// Upstream failure classes with their (non-zero) counts.
pub type ClassCounts = Vec<(UpstreamError, u64)>;

/// Error-log counts.
#[derive(Debug, Clone, Default)]
pub struct ErrorSummary {
    pub lines: u64,
    pub malformed: u64,
    pub skipped_before: u64,
    /// Upstream failures by class (indexed like [`UpstreamError::ALL`]).
    pub classes: [u64; UpstreamError::ALL.len()],
    /// `[error]` or worse lines that are not a known upstream failure.
    pub unclassified: u64,
    upstreams: Vec<(Box<[u8]>, [u64; UpstreamError::ALL.len()])>,
    /// Unclassified messages by [`shape`]: count and the first message seen.
    shapes: FxMap<(u64, Box<[u8]>)>,
    /// Unclassified messages whose shape was not kept ([`UNCLASSIFIED_CAP`]).
    pub unclassified_other: u64,
}

/// A message of the unclassified kind, counted by shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unclassified {
    /// The message with quoted parts elided (`open() "…" failed (13: Permission denied)`).
    pub shape: Vec<u8>,
    pub count: u64,
    /// The first message of this shape, as nginx wrote it.
    pub example: Vec<u8>,
}

/// A message with what varies from one line to the next elided: the contents of quoted
/// strings (file paths, names) become `…`. Numbers are kept: they are mostly errnos.
pub fn shape(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len());
    let mut parts = message.split(|&b| b == b'"');
    if let Some(first) = parts.next() {
        out.extend_from_slice(first);
    }
    for (i, part) in parts.enumerate() {
        out.push(b'"');
        // Even parts (0, 2, …) after a quote are inside quotes.
        if i % 2 == 0 {
            out.extend_from_slice("…".as_bytes());
        } else {
            out.extend_from_slice(part);
        }
    }
    out
}

impl ErrorSummary {
    /// Adds one line; lines before `since` (local civil seconds) are skipped.
    pub fn feed(&mut self, line: &[u8], since_civil: Option<i64>) {
        let Ok(l) = error_log::parse(line) else {
            self.malformed += 1;
            return;
        };
        if since_civil.is_some_and(|s| l.civil_time < s) {
            self.skipped_before += 1;
            return;
        }
        self.lines += 1;
        let Some(c) = l.classify() else {
            if l.level <= error_log::Level::Error {
                self.unclassified += 1;
                self.count_shape(l.message);
            }
            return;
        };
        let k = c.class as usize;
        self.classes[k] += 1;
        let addr = l.upstream_addr().unwrap_or(b"-");
        let i = match self.upstreams.iter().position(|(a, _)| &a[..] == addr) {
            Some(i) => i,
            None if self.upstreams.len() < UPSTREAM_CAP => {
                self.upstreams.push((addr.into(), Default::default()));
                self.upstreams.len() - 1
            }
            None => return,
        };
        self.upstreams[i].1[k] += 1;
    }

    fn count_shape(&mut self, message: &[u8]) {
        let key = shape(message);
        if let Some((n, _)) = self.shapes.get_mut(&key[..]) {
            *n += 1;
        } else if self.shapes.len() < UNCLASSIFIED_CAP {
            self.shapes.insert(key.into(), (1, message.into()));
        } else {
            self.unclassified_other += 1;
        }
    }

    /// The `n` most frequent shapes of unclassified messages, most frequent first.
    pub fn unclassified_top(&self, n: usize) -> Vec<Unclassified> {
        let mut v: Vec<Unclassified> = self
            .shapes
            .iter()
            .map(|(s, (count, example))| Unclassified {
                shape: s.to_vec(),
                count: *count,
                example: example.to_vec(),
            })
            .collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.shape.cmp(&b.shape)));
        v.truncate(n);
        v
    }

    /// Non-zero classes with their counts.
    pub fn classes(&self) -> impl Iterator<Item = (UpstreamError, u64)> + '_ {
        UpstreamError::ALL
            .iter()
            .zip(self.classes)
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| (*c, n))
    }

    /// Per upstream address: its non-zero classes.
    pub fn upstreams(&self) -> Vec<(&[u8], ClassCounts)> {
        let mut v: Vec<_> = self
            .upstreams
            .iter()
            .map(|(a, counts)| {
                let cs = UpstreamError::ALL
                    .iter()
                    .zip(counts)
                    .filter(|(_, n)| **n > 0)
                    .map(|(c, n)| (*c, *n))
                    .collect();
                (&a[..], cs)
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }
}

#[cfg(test)]
mod tests;
