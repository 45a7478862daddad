//! Error-log counts: upstream failures by class and by upstream, and the messages no class
//! covers, by shape.

use super::super::error_log::{self, UpstreamError};
use super::{FxMap, UNCLASSIFIED_CAP, UPSTREAM_CAP};

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
fn shape(message: &[u8]) -> Vec<u8> {
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
