//! Where a format's delimiters are in a line, 64 bytes at a time: one bitmask per delimiter
//! byte (bit `i` set when byte `i` of the block is that delimiter).
//!
//! Why: searching each field's end with its own `memchr`-style loop costs a hard-to-predict
//! branch per field (fields are a few bytes to a few dozen, at random), and that, not the
//! byte comparisons, was most of the time spent splitting a line. Classifying a block is
//! branch-free, and a field's end is then a `trailing_zeros` on a mask.
//!
//! Hand-written: `memchr` finds one match at a time and exposes no masks. On x86_64 the block
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

/// One mask per delimiter for one 64-byte block.
type Masks = [u64; MAX];

/// Walks a line's blocks forward, classifying each once, on demand.
pub struct Scanner<'l> {
    line: &'l [u8],
    delims: Delims,
    /// The index of the classified block (`usize::MAX`: none yet).
    block: usize,
    masks: Masks,
}

impl<'l> Scanner<'l> {
    pub fn new(line: &'l [u8], delims: Delims) -> Self {
        Scanner {
            line,
            delims,
            block: usize::MAX,
            masks: [0; MAX],
        }
    }

    /// The first position at or after `from` holding delimiter number `k`. Forward calls are
    /// cheap; going back before the current block classifies that block again.
    #[inline(always)]
    pub fn next(&mut self, k: u8, mut from: usize) -> Option<usize> {
        loop {
            if from >= self.line.len() {
                return None;
            }
            let b = from / 64;
            if b != self.block {
                self.load(b);
            }
            let m = self.masks[usize::from(k) & (MAX - 1)] & (u64::MAX << (from % 64));
            if m != 0 {
                let at = b * 64 + m.trailing_zeros() as usize;
                // Past the end the block is zero-padded: a NUL delimiter would match there.
                return (at < self.line.len()).then_some(at);
            }
            from = (b + 1) * 64;
        }
    }

    fn load(&mut self, b: usize) {
        let start = b * 64;
        self.block = b;
        let line = self.line;
        if let Some(block) = line[start..].first_chunk::<64>() {
            self.masks = classify(block, &self.delims);
        } else if let Some(tail) = line.last_chunk::<64>() {
            // A partial last block: classify the line's last 64 bytes instead (no copy) and
            // drop the bits of the bytes before this block.
            let shift = start - (line.len() - 64);
            self.masks = classify(tail, &self.delims).map(|m| m >> shift);
        } else {
            let mut block = [0u8; 64];
            block[..line.len() - start].copy_from_slice(&line[start..]);
            self.masks = classify(&block, &self.delims);
        }
    }
}

/// The masks of one block.
#[inline]
fn classify(block: &[u8; 64], d: &Delims) -> Masks {
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
#[inline]
fn classify_sse2(block: &[u8; 64], d: &Delims) -> Masks {
    use safe_arch::{
        cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i, set_splat_i8_m128i,
    };
    let chunk = |i: usize| {
        let c: &[u8; 16] = block[i * 16..i * 16 + 16]
            .try_into()
            .unwrap_or_else(|_| unreachable!("16 of 64 bytes"));
        load_unaligned_m128i(c)
    };
    let (c0, c1, c2, c3) = (chunk(0), chunk(1), chunk(2), chunk(3));
    let mut out = [0u64; MAX];
    for (o, &b) in out.iter_mut().zip(&d.bytes[..usize::from(d.len)]) {
        let pat = set_splat_i8_m128i(b as i8);
        let bits = |c| u64::from(move_mask_i8_m128i(cmp_eq_mask_i8_m128i(c, pat)) as u16);
        *o = bits(c0) | bits(c1) << 16 | bits(c2) << 32 | bits(c3) << 48;
    }
    out
}

/// The same masks with plain 64-bit arithmetic: per byte, zero iff it equals the delimiter,
/// tested exactly (no borrow between bytes), then the high bits gathered into one byte.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn classify_swar(block: &[u8; 64], d: &Delims) -> Masks {
    const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const ONES: u64 = 0x0101_0101_0101_0101;
    let mut out = [0u64; MAX];
    for (k, o) in out.iter_mut().enumerate().take(usize::from(d.len)) {
        let pat = ONES.wrapping_mul(u64::from(d.bytes[k]));
        for (i, w) in block.chunks_exact(8).enumerate() {
            let x = u64::from_le_bytes(w.try_into().unwrap_or([0; 8])) ^ pat;
            // High bit of each byte of `t` is set iff that byte of `x` is non-zero.
            let t = ((x & LO7).wrapping_add(LO7)) | x;
            let zero = !t & !LO7; // 0x80 at every zero byte
            // Gather the eight high bits: bit 7 of byte j moves to bit 56 + j.
            let bits = ((zero >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56;
            *o |= bits << (8 * i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(block: &[u8; 64], d: &Delims) -> Masks {
        let mut out = [0u64; MAX];
        for (o, &b) in out.iter_mut().zip(&d.bytes[..usize::from(d.len)]) {
            for (i, &c) in block.iter().enumerate() {
                if c == b {
                    *o |= 1 << i;
                }
            }
        }
        out
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
        let mut d = Delims::default();
        for b in [b' ', b'"', 0x80, 0] {
            d.add(b);
        }
        let alphabet = b" \"]\x80\x00\x7f\xffa-[\n";
        for seed in 0..2000 {
            let block = bytes(seed, alphabet);
            assert_eq!(
                classify_swar(&block, &d),
                reference(&block, &d),
                "{block:?}"
            );
            assert_eq!(classify(&block, &d), reference(&block, &d), "{block:?}");
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
    fn scanner_walks_blocks_and_stops_at_the_end() {
        let mut d = Delims::default();
        d.add(b' ');
        d.add(0);
        let mut line = vec![b'x'; 150];
        line[3] = b' ';
        line[64] = b' ';
        line[149] = b' ';
        let mut s = Scanner::new(&line, d);
        assert_eq!(s.next(0, 0), Some(3));
        assert_eq!(s.next(0, 4), Some(64));
        assert_eq!(s.next(0, 65), Some(149));
        assert_eq!(s.next(0, 150), None);
        // NUL is a delimiter, and the padding after the line is NUL: never a match.
        assert_eq!(Scanner::new(&line, d).next(1, 0), None);
        assert_eq!(Scanner::new(b"", d).next(0, 0), None);
    }
}
