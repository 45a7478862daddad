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

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

mod access;
mod errors;

pub use access::{AccessFeeder, AccessSummary, Failing, READS, Slow};
pub use errors::{ClassCounts, ErrorSummary, Unclassified};

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

pub(crate) type FxMap<V> = HashMap<Box<[u8]>, V, BuildHasherDefault<FxHasher>>;

#[cfg(test)]
mod tests;
