//! Splitting a line into the fields of its format: each field ends at the first match of the
//! literal that follows it, found with the [`Scanner`]'s masks, or searched field by field for
//! formats with more delimiters than it takes.

use super::scan::Scanner;
use super::{AccessFormat, Check, Field, LineError, Record, Span, Step};

impl AccessFormat {
    /// Splits a whole line (without its newline).
    pub fn parse<'a>(
        &'a self,
        line: &'a [u8],
        spans: &'a mut Vec<Span>,
    ) -> Result<Record<'a>, LineError> {
        self.parse_prefix(line, spans, self.fields.len())
    }

    /// Splits only the first `n` fields: the rest of the line is not looked at. Callers that
    /// need a few early fields save the work of splitting the others.
    pub fn parse_prefix<'a>(
        &'a self,
        line: &'a [u8],
        spans: &'a mut Vec<Span>,
        n: usize,
    ) -> Result<Record<'a>, LineError> {
        if !starts_with(line, &self.prefix) || line.len() > u32::MAX as usize {
            spans.clear();
            return Err(LineError::Prefix);
        }
        let n = n.min(self.fields.len());
        // Every span is written below before it is read: sized once, then overwritten (no
        // capacity check per field).
        spans.resize(n, (0, 0));
        // Every field but the format's last ends at the first match of its literal.
        let inner = n.min(self.fields.len().saturating_sub(1));
        let mut scan = self.delims.map(|d| Scanner::new(line, d));
        let pos = self.forward(
            line,
            self.prefix.len(),
            &mut spans[..inner],
            &self.steps[..inner],
            scan.as_mut(),
        )?;
        if inner < n {
            // The last field runs to the literal that ends the line.
            let f = &self.fields[inner];
            let end = line
                .len()
                .checked_sub(f.until.len())
                .filter(|&e| e >= pos && starts_with(&line[e..], &f.until))
                .ok_or(LineError::Field(inner))?;
            spans[inner] = (pos as u32, end as u32);
        }
        Ok(Record::new(self, line, spans))
    }

    /// Splits the fields `spans` stands for (the first ones of the format, each with its
    /// step), the first starting at `pos`, with `scan` when the steps' delimiters fit it.
    /// Returns where the next field starts.
    #[inline(always)]
    pub(super) fn forward(
        &self,
        line: &[u8],
        mut pos: usize,
        spans: &mut [Span],
        steps: &[Step],
        scan: Option<&mut Scanner<'_>>,
    ) -> Result<usize, LineError> {
        if let Some(scan) = scan {
            return self.forward_scan(line, pos, spans, steps, scan);
        }
        for (i, (span, f)) in spans.iter_mut().zip(&self.fields).enumerate() {
            let end = self.find_end(line, pos, f).ok_or(LineError::Field(i))?;
            *span = (pos as u32, end as u32);
            pos = end + f.until.len();
        }
        Ok(pos)
    }

    /// [`forward`](Self::forward) with the scanner.
    #[inline(always)]
    pub(super) fn forward_scan(
        &self,
        line: &[u8],
        mut pos: usize,
        spans: &mut [Span],
        steps: &[Step],
        scan: &mut Scanner<'_>,
    ) -> Result<usize, LineError> {
        for (i, (span, step)) in spans.iter_mut().zip(steps).enumerate() {
            let end = self
                .step_end(scan, line, pos, i, step)
                .ok_or(LineError::Field(i))?;
            *span = (pos as u32, end as u32);
            pos = end + step.len as usize;
        }
        Ok(pos)
    }

    /// Where inner field `k` (with `step`), starting at `from`, ends: the delimiters'
    /// positions from `scan`, each confirmed by the step's check.
    #[inline(always)]
    fn step_end(
        &self,
        scan: &mut Scanner<'_>,
        line: &[u8],
        from: usize,
        k: usize,
        step: &Step,
    ) -> Option<usize> {
        let mut at = from;
        loop {
            let i = scan.next(step.delim, at)?;
            // A one-byte literal is a word check with nothing to compare (its mask is zero):
            // one test for the two most common kinds.
            let ends = if step.check <= Check::Word {
                match line.get(i + 1..i + 9) {
                    Some(next) => {
                        word_matches(next.try_into().unwrap_or([0; 8]), step.rest, step.mask)
                    }
                    None => self.ends_at_cold(line, from, i, k),
                }
            } else if step.check == Check::List {
                !list_separator(line, i)
            } else {
                self.ends_at_cold(line, from, i, k)
            };
            if ends {
                return Some(i);
            }
            at = i + 1;
        }
    }

    /// [`ends_at`](Self::ends_at) for inner field `k`, out of the walk's way.
    #[cold]
    #[inline(never)]
    fn ends_at_cold(&self, line: &[u8], from: usize, i: usize, k: usize) -> bool {
        self.ends_at(line, from, i, &self.fields[k])
    }

    /// Whether field `f`, starting at `from`, ends at `i`, where its literal's first byte is.
    #[inline(always)]
    fn ends_at(&self, line: &[u8], from: usize, i: usize, f: &Field) -> bool {
        let after = &line[i + 1..];
        let rest = match (f.rest, after.first_chunk::<8>()) {
            (Some((w, mask)), Some(next)) => word_matches(*next, w, mask),
            _ => starts_with(after, &f.until[1..]),
        };
        rest && !(f.list && list_separator(line, i)) && !(f.json_quote && escaped(line, from, i))
    }

    /// Where field `f` starting at `from` ends: the first match of its literal that is not
    /// inside the value (an escaped quote, an upstream list separator).
    fn find_end(&self, line: &[u8], from: usize, f: &Field) -> Option<usize> {
        let first = *f.until.first()?;
        let mut at = from;
        loop {
            let i = at + find_byte(first, &line[at..])?;
            if self.ends_at(line, from, i, f) {
                return Some(i);
            }
            at = i + 1;
        }
    }
}

/// Whether the 8 bytes after a delimiter start with the literal tail `rest` (a little-endian
/// word, `mask` covering its bytes): one masked comparison.
#[inline(always)]
fn word_matches(next: [u8; 8], rest: u64, mask: u64) -> bool {
    u64::from_le_bytes(next) & mask == rest
}

/// `hay.starts_with(lit)` for the short literals between fields, without a call to `memcmp`.
#[inline]
pub(super) fn starts_with(hay: &[u8], lit: &[u8]) -> bool {
    hay.len() >= lit.len() && hay.iter().zip(lit).all(|(a, b)| a == b)
}

/// The first `b` in `hay`. Fields are short (most end within a few dozen bytes), so this
/// looks through the first 64 bytes eight at a time in registers (no call, no setup), and
/// leaves longer fields to `memchr`'s vector search.
#[inline]
pub(crate) fn find_byte(b: u8, hay: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pat = LO.wrapping_mul(u64::from(b));
    let head = &hay[..hay.len().min(64)];
    let mut chunks = head.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8])) ^ pat;
        // A zero byte of `w` is a match. The lowest flagged byte is always a true match (a
        // borrow only runs upwards), and the bytes are little-endian, so it is the first.
        let z = w.wrapping_sub(LO) & !w & HI;
        if z != 0 {
            return Some(at + (z.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    if let Some(k) = chunks.remainder().iter().position(|&c| c == b) {
        return Some(at + k);
    }
    if hay.len() <= 64 {
        return None;
    }
    memchr::memchr(b, &hay[64..]).map(|k| k + 64)
}

/// Up to 8 bytes as a little-endian word, with the mask of the bytes they occupy.
pub(super) fn word(b: &[u8]) -> Option<(u64, u64)> {
    if b.len() > 8 {
        return None;
    }
    let mut w = [0u8; 8];
    w[..b.len()].copy_from_slice(b);
    let mask = u64::MAX.checked_shr(64 - 8 * b.len() as u32).unwrap_or(0);
    Some((u64::from_le_bytes(w), mask))
}

/// Whether the space at `i` belongs to `, ` or ` : ` inside an upstream list.
#[inline(always)]
pub(super) fn list_separator(line: &[u8], i: usize) -> bool {
    // The two bytes on each side in one load (bytes `i - 3 .. i + 5`), away from the line's
    // ends; nearer to them, byte by byte.
    if let Some(w) = i.checked_sub(3).and_then(|s| line.get(s..s + 8)) {
        let w = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
        let (b2, b1) = ((w >> 8) as u8, (w >> 16) as u8);
        let after = (w >> 32) as u16;
        return (b1 == b',')
            | (after == u16::from_le_bytes(*b": "))
            | ((b1 == b':') & (b2 == b' '));
    }
    list_separator_bytes(line, i)
}

/// [`list_separator`] byte by byte.
pub(super) fn list_separator_bytes(line: &[u8], i: usize) -> bool {
    let before = |k: usize| i.checked_sub(k).map(|j| line[j]);
    before(1) == Some(b',')
        || line[i + 1..].starts_with(b": ")
        || (before(1) == Some(b':') && before(2) == Some(b' '))
}

/// Whether the byte at `i` is preceded by an odd number of backslashes (JSON escaping).
pub(super) fn escaped(line: &[u8], from: usize, i: usize) -> bool {
    let n = line[from..i]
        .iter()
        .rev()
        .take_while(|&&c| c == b'\\')
        .count();
    n % 2 == 1
}
