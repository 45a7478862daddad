//! The small caches that keep the per-line work of the access summary low: the last time
//! parsed, the current minute, and the upstreams seen.

use std::collections::BTreeMap;

use super::super::{Counts, MINUTE_CAP};

/// The last `$time_local` (or `$time_iso8601`) value parsed, as its length and first and last
/// 16 bytes (the whole value, for 16 to 32 bytes), and its time.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LastTime {
    pub(super) len: usize,
    pub(super) head: u128,
    pub(super) tail: u128,
    pub(super) time: i64,
}

impl LastTime {
    /// The key of `raw`, if it is 16 to 32 bytes long.
    #[inline]
    pub(super) fn key(raw: &[u8]) -> Option<(usize, u128, u128)> {
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
pub(in crate::parse::logs::summary) struct Minutes {
    pub(in crate::parse::logs::summary) map: BTreeMap<i64, Counts>,
    pub(super) dropped: u64,
    pub(super) hot: Option<(i64, Counts)>,
}

impl Minutes {
    #[inline]
    pub(in crate::parse::logs::summary) fn add(&mut self, m: i64, st: Option<u16>) {
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
    pub(in crate::parse::logs::summary) fn flush(&mut self) {
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
    pub(super) fn settled(&self) -> std::borrow::Cow<'_, Minutes> {
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
pub(super) const RECENT: usize = 64;

/// The direct-mapped upstream cache.
#[derive(Debug, Clone)]
pub(super) struct Cache(pub(super) [Recent; RECENT]);

impl Default for Cache {
    fn default() -> Self {
        Cache([Recent::default(); RECENT])
    }
}

/// A recently seen upstream address: its length and first and last 8 bytes (which together
/// are the whole address when it is at most 16 bytes long), and its index.
#[derive(Debug, Clone, Copy)]
pub(super) struct Recent {
    pub(super) len: u32,
    pub(super) head: u64,
    pub(super) tail: u64,
    pub(super) index: u32,
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
    pub(super) fn key(b: &[u8]) -> (u32, u64, u64) {
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
    pub(super) fn slot((len, head, tail): (u32, u64, u64)) -> usize {
        let h = (head ^ tail.rotate_left(29) ^ u64::from(len)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> 58) as usize % RECENT
    }
}
