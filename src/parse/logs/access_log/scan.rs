//! Where a format's delimiters are in a line, a window of 128 or 64 bytes at a time: one
//! bitmask per delimiter byte (bit `i` set when byte `i` of the window is that delimiter).
//!
//! Why: searching each field's end with its own `memchr`-style loop costs a hard-to-predict
//! branch per field (fields are a few bytes to a few dozen, at random), and that, not the
//! byte comparisons, was most of the time spent splitting a line. Classifying a window is
//! branch-free, and a field's end is then a `trailing_zeros` (backward, a `leading_zeros`) on
//! a mask. The windows hold the fields a summary reads at either end of most lines, so a walk
//! seldom moves one.
//!
//! Hand-written: `memchr` finds one match at a time and exposes no masks. On x86_64 the window
//! is compared 16 bytes at a time with SSE2 (always present there) through `safe_arch`, which
//! wraps the intrinsics safely; elsewhere with SWAR on 64-bit words. Both are tested against
//! a byte-by-byte reference.

/// The most distinct delimiter bytes a format may have for [`Scanner`]; formats with more
/// fall back to a search per field. Typical formats have three (` `, `"`, `]`). A power of
/// two (indexes are masked with `MAX - 1`).
pub const MAX: usize = 4;

/// The distinct first bytes of the literals that end a format's fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delims {
    bytes: [u8; MAX],
    len: u8,
}

impl Delims {
    /// Adds `b` if it is new; returns its index, or `None` when there are already [`MAX`].
    pub fn add(&mut self, b: u8) -> Option<u8> {
        if let Some(i) = self.bytes[..self.len as usize].iter().position(|&x| x == b) {
            return Some(i as u8);
        }
        if self.len as usize == MAX {
            return None;
        }
        self.bytes[self.len as usize] = b;
        self.len += 1;
        Some(self.len - 1)
    }
}

/// A window's bitmask: bit `i` for byte `i` of a window of [`Mask::W`] bytes. The forward walk
/// uses 128-byte windows (the fields before the skipped run of the extended format end near
/// byte 100); the backward walk 64-byte ones (its fields fit in the last 64 bytes, and a
/// 64-bit shift and count are one instruction each, where 128 bits take five).
pub trait Mask: Copy + std::fmt::Debug + PartialEq {
    /// The window's width in bytes.
    const W: usize;
    const ZERO: Self;
    /// The mask of byte `b` in `w` (`W` bytes).
    fn of(w: &[u8], b: u8) -> Self;
    /// The low `n` bits set (`n <= W`).
    fn low(n: usize) -> Self;
    fn and(self, o: Self) -> Self;
    fn is_zero(self) -> bool;
    /// `self >> n`, its lowest set bit, `self << n`, its highest set bit (from the top).
    fn shr(self, n: usize) -> Self;
    fn tz(self) -> usize;
    fn shl(self, n: usize) -> Self;
    fn lz(self) -> usize;
}

/// The [`Mask`] operations that are the integer's own.
macro_rules! integer_mask {
    () => {
        #[inline(always)]
        fn and(self, o: Self) -> Self {
            self & o
        }
        #[inline(always)]
        fn is_zero(self) -> bool {
            self == 0
        }
        #[inline(always)]
        fn shr(self, n: usize) -> Self {
            self >> n
        }
        #[inline(always)]
        fn tz(self) -> usize {
            self.trailing_zeros() as usize
        }
        #[inline(always)]
        fn shl(self, n: usize) -> Self {
            self << n
        }
        #[inline(always)]
        fn lz(self) -> usize {
            self.leading_zeros() as usize
        }
    };
}

impl Mask for u64 {
    const W: usize = 64;
    const ZERO: Self = 0;
    #[inline(always)]
    fn of(w: &[u8], b: u8) -> Self {
        classify_one(w.try_into().unwrap_or(&[0; 64]), b)
    }
    #[inline(always)]
    fn low(n: usize) -> Self {
        u64::MAX.checked_shr(64 - n as u32).unwrap_or(0)
    }
    integer_mask!();
}

impl Mask for u128 {
    const W: usize = 128;
    const ZERO: Self = 0;
    #[inline(always)]
    fn of(w: &[u8], b: u8) -> Self {
        let (lo, hi) = w.split_at(64);
        u128::from(u64::of(lo, b)) | u128::from(u64::of(hi, b)) << 64
    }
    #[inline(always)]
    fn low(n: usize) -> Self {
        u128::MAX.checked_shr(128 - n as u32).unwrap_or(0)
    }
    integer_mask!();
}

/// Walks a line with a window of `M::W` bytes, classified for all the delimiters at once
/// whenever the walk leaves it.
pub struct Scanner<'l, M: Mask = u128> {
    line: &'l [u8],
    delims: Delims,
    /// Where the window starts.
    start: usize,
    masks: [M; MAX],
}

impl<'l, M: Mask> Scanner<'l, M> {
    /// A scanner whose first window is the line's first bytes (for a forward walk).
    pub fn new(line: &'l [u8], delims: Delims) -> Self {
        Scanner {
            line,
            delims,
            start: 0,
            masks: masks(line, &delims, 0),
        }
    }

    /// A scanner whose first window is the line's last bytes (for a backward walk).
    pub fn from_end(line: &'l [u8], delims: Delims) -> Self {
        let start = line.len().saturating_sub(M::W);
        Scanner {
            line,
            delims,
            start,
            masks: masks(line, &delims, start),
        }
    }

    /// The first position at or after `from` holding delimiter number `k`.
    #[inline(always)]
    pub fn next(&mut self, k: u8, mut from: usize) -> Option<usize> {
        loop {
            if from >= self.line.len() {
                return None;
            }
            if from.wrapping_sub(self.start) >= M::W {
                // The window that starts here, or the line's last one.
                self.load(from.min(self.line.len().saturating_sub(M::W)));
            }
            let off = from - self.start;
            let m = self.masks[usize::from(k) & (MAX - 1)].shr(off);
            if !m.is_zero() {
                // Bits past the line's end are clear (see `masks`).
                return Some(from + m.tz());
            }
            from = self.start + M::W;
        }
    }

    /// The last position at or before `from` holding delimiter number `k` (`from` is below
    /// the line's length).
    #[inline(always)]
    pub fn prev(&mut self, k: u8, mut from: usize) -> Option<usize> {
        loop {
            if from.wrapping_sub(self.start) >= M::W {
                // The window that ends here, or the line's first one.
                self.load((from + 1).saturating_sub(M::W));
            }
            let off = from - self.start;
            let m = self.masks[usize::from(k) & (MAX - 1)].shl(M::W - 1 - off);
            if !m.is_zero() {
                return Some(from - m.lz());
            }
            from = self.start.checked_sub(1)?;
        }
    }

    /// Moves the window to `start`.
    #[inline(never)]
    fn load(&mut self, start: usize) {
        self.start = start;
        self.masks = masks(self.line, &self.delims, start);
    }
}

/// The masks of the window at `start`; for a line shorter than a window, of a zero-padded
/// copy whose padding bits are cleared (a NUL delimiter would match there).
#[inline]
fn masks<M: Mask>(line: &[u8], d: &Delims, start: usize) -> [M; MAX] {
    let rest = line.get(start..).unwrap_or_default();
    if let Some(w) = rest.get(..M::W) {
        return classify(w, d);
    }
    let mut w = [0u8; 128];
    w[..rest.len()].copy_from_slice(rest);
    let keep = M::low(rest.len());
    classify::<M>(&w[..M::W], d).map(|m| m.and(keep))
}

/// The masks of one window: the first `d.len` of them (the others are left zero).
#[inline]
fn classify<M: Mask>(w: &[u8], d: &Delims) -> [M; MAX] {
    // One unrolled body per count: a loop of varying length costs more than the comparisons.
    match d.len {
        0 | 1 => classify_n::<M, 1>(w, d),
        2 => classify_n::<M, 2>(w, d),
        3 => classify_n::<M, 3>(w, d),
        _ => classify_n::<M, MAX>(w, d),
    }
}

#[inline(always)]
fn classify_n<M: Mask, const N: usize>(w: &[u8], d: &Delims) -> [M; MAX] {
    let mut out = [M::ZERO; MAX];
    for (o, &b) in out.iter_mut().zip(&d.bytes[..N]) {
        *o = M::of(w, b);
    }
    out
}

/// The mask of byte `d` in one block.
#[inline(always)]
fn classify_one(block: &[u8; 64], d: u8) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        classify_sse2(block, d)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        classify_swar(block, d)
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn classify_sse2(block: &[u8; 64], d: u8) -> u64 {
    use safe_arch::{
        cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i, set_splat_i8_m128i,
    };
    let pat = set_splat_i8_m128i(d as i8);
    let bits = |i: usize| {
        let c: &[u8; 16] = block[i * 16..i * 16 + 16]
            .try_into()
            .unwrap_or_else(|_| unreachable!("16 of 64 bytes"));
        let eq = cmp_eq_mask_i8_m128i(load_unaligned_m128i(c), pat);
        u64::from(move_mask_i8_m128i(eq) as u16)
    };
    bits(0) | bits(1) << 16 | bits(2) << 32 | bits(3) << 48
}

/// The same mask with plain 64-bit arithmetic: per byte, zero iff it equals the delimiter,
/// tested exactly (no borrow between bytes), then the high bits gathered into one byte.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn classify_swar(block: &[u8; 64], d: u8) -> u64 {
    const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const ONES: u64 = 0x0101_0101_0101_0101;
    let pat = ONES.wrapping_mul(u64::from(d));
    let mut out = 0;
    for (i, w) in block.chunks_exact(8).enumerate() {
        let x = u64::from_le_bytes(w.try_into().unwrap_or([0; 8])) ^ pat;
        // High bit of each byte of `t` is set iff that byte of `x` is non-zero.
        let t = ((x & LO7).wrapping_add(LO7)) | x;
        let zero = !t & !LO7; // 0x80 at every zero byte
        // Gather the eight high bits: bit 7 of byte j moves to bit 56 + j.
        let bits = ((zero >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56;
        out |= bits << (8 * i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(block: &[u8; 64], d: u8) -> u64 {
        let mut m = 0;
        for (i, &c) in block.iter().enumerate() {
            if c == d {
                m |= 1 << i;
            }
        }
        m
    }

    /// A tiny deterministic generator (xorshift), so failures reproduce.
    fn bytes(seed: u64, alphabet: &[u8]) -> [u8; 64] {
        let mut s = seed | 1;
        std::array::from_fn(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            alphabet[(s % alphabet.len() as u64) as usize]
        })
    }

    #[test]
    fn classifiers_agree_with_the_reference() {
        let alphabet = b" \"]\x80\x00\x7f\xffa-[\n";
        let all = [b' ', b'"', 0x80, 0];
        for seed in 0..2000 {
            let (lo, hi) = (bytes(seed, alphabet), bytes(seed + 7919, alphabet));
            for d in all {
                assert_eq!(classify_swar(&lo, d), reference(&lo, d), "{lo:?}");
                assert_eq!(classify_one(&lo, d), reference(&lo, d), "{lo:?}");
            }
            let mut w = [0u8; 128];
            w[..64].copy_from_slice(&lo);
            w[64..].copy_from_slice(&hi);
            for n in 1..=MAX {
                let mut d = Delims::default();
                for &b in &all[..n] {
                    d.add(b);
                }
                let want: [u128; MAX] = std::array::from_fn(|k| {
                    if k < n {
                        u128::from(reference(&lo, all[k]))
                            | u128::from(reference(&hi, all[k])) << 64
                    } else {
                        0
                    }
                });
                assert_eq!(classify::<u128>(&w, &d), want, "{w:?}");
                let want: [u64; MAX] =
                    std::array::from_fn(|k| if k < n { reference(&lo, all[k]) } else { 0 });
                assert_eq!(classify::<u64>(&lo, &d), want, "{lo:?}");
            }
        }
    }

    #[test]
    fn delims_dedup_and_cap() {
        let mut d = Delims::default();
        assert_eq!(d.add(b' '), Some(0));
        assert_eq!(d.add(b'"'), Some(1));
        assert_eq!(d.add(b' '), Some(0));
        assert_eq!(d.add(b'a'), Some(2));
        assert_eq!(d.add(b'b'), Some(3));
        assert_eq!(d.add(b'z'), None);
        assert_eq!(d.add(b'"'), Some(1));
    }

    #[test]
    fn scanner_walks_windows_and_stops_at_the_ends() {
        walks::<u128>();
        walks::<u64>();
    }

    fn walks<M: Mask>() {
        let mut d = Delims::default();
        d.add(b' ');
        d.add(0);
        let at = [3usize, 63, 64, 127, 128, 200, 299];
        let mut line = vec![b'x'; 300];
        for &i in &at {
            line[i] = b' ';
        }
        let next = |from: usize| at.iter().copied().find(|&i| i >= from);
        let prev = |from: usize| at.iter().copied().rev().find(|&i| i <= from);
        // Forward from every position, backward from every position: the next and previous
        // space, through window moves in both directions on one scanner.
        let mut s = Scanner::<M>::new(&line, d);
        for from in (0..line.len()).chain((0..line.len()).rev()) {
            assert_eq!(s.next(0, from), next(from), "{from}");
            assert_eq!(s.prev(0, from), prev(from), "{from}");
        }
        assert_eq!(s.next(0, 300), None);
        let mut s = Scanner::<M>::from_end(&line, d);
        for from in (0..line.len()).rev() {
            assert_eq!(s.prev(0, from), prev(from), "{from}");
        }
        // NUL is a delimiter, and the padding after a short line is NUL: never a match.
        for len in [0, 1, 5, 63, 64, 65, 127, 128, 129] {
            let short = vec![b'x'; len];
            assert_eq!(Scanner::<M>::new(&short, d).next(1, 0), None, "{len}");
            if len > 0 {
                assert_eq!(
                    Scanner::<M>::from_end(&short, d).prev(1, len - 1),
                    None,
                    "{len}"
                );
            }
        }
        let mut s = Scanner::<M>::new(b"a b", d);
        assert_eq!(
            (s.next(0, 0), s.prev(0, 2), s.prev(0, 0)),
            (Some(1), Some(1), None)
        );
    }
}
