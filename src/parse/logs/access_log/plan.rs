//! Splitting only the fields a caller reads. A [`Plan`] splits the fields before the longest
//! run of unread ones forward, as [`AccessFormat::parse_prefix`] does, and the fields after
//! that run backward from the end of the line: the run itself is never looked at. In the
//! extended format the summary reads `$status` near the start and the `$upstream_*` fields at
//! the end, so `$body_bytes_sent`, the referer and the user agent (half the line and more)
//! are skipped.
//!
//! Backward, a field starts after the last match of the literal before it, where forward it
//! ends at the first match of the literal after it. The two agree whenever a value does not
//! contain the literals around it: nginx's escaping keeps quotes out of quoted values, and a
//! space inside an upstream list (`, `, ` : `) is recognised both ways. A line is malformed
//! when a field the plan splits cannot be found, or when the skipped run is too short for the
//! literals between its fields; what the skipped fields hold is not checked, as
//! `parse_prefix` does not check the fields after its last.

use super::scan::{Delims, Scanner};
use super::split::{escaped, list_separator, starts_with};
use super::{AccessFormat, LineError, Record, Span, Step, add_delim, forward_steps};

/// The span of a field a plan skips: out of every line, so [`Record::field`] gives `None`.
const SKIPPED: Span = (u32::MAX, u32::MAX);

/// Which fields a split finds, and how: see the module's documentation.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Fields `[0, head)` are split forward.
    head: usize,
    /// Fields `[tail, n)` are split backward; `tail == n`: none (a prefix split of `head`).
    tail: usize,
    /// One per forward field, with delimiters indexed in `delims`.
    steps: Box<[Step]>,
    /// One per backward field, from field `tail` on.
    back: Box<[Back]>,
    /// Each walk's delimiters, when they fit the [`Scanner`] (both, or neither is used).
    delims: Option<(Delims, Delims)>,
    /// The least room the skipped fields take: the literals between them.
    gap: usize,
}

/// How a backward field's start is found: the literal before it, searched for by its last
/// byte.
#[derive(Debug, Clone, Copy)]
struct Back {
    /// The literal is longer than 8 bytes or may hold an escaped quote: its start is confirmed
    /// by the general rules (out of line), not by one word comparison.
    general: bool,
    /// The literal's last byte, and its index in the plan's delimiters.
    last: u8,
    delim: u8,
    /// The literal's length.
    len: u32,
    /// The literal right-aligned in a little-endian word, and the mask of its bytes, when it
    /// fits in one (compared with the 8 bytes that end at the delimiter; else zero).
    word: u64,
    mask: u64,
    /// The literal ends with a space that may be a separator inside this upstream list.
    list: bool,
    /// The literal starts with a `"` that may be escaped (`escape=json`).
    json_quote: bool,
}

impl AccessFormat {
    /// The plan that splits at least the fields `wanted` (indexes; out-of-range ones are
    /// ignored, and none wanted means every field) with the fewest fields split.
    pub fn plan(&self, wanted: &[usize]) -> Plan {
        let n = self.fields.len();
        let mut idx: Vec<usize> = wanted.iter().copied().filter(|&i| i < n).collect();
        idx.sort_unstable();
        idx.dedup();
        // Forward only: everything up to the last field wanted.
        let prefix = idx.last().map_or(n, |&m| m + 1);
        let (mut head, mut tail, mut cost) = (prefix, n, prefix);
        let mut after = 0;
        for &b in &idx {
            // Skip the fields between two wanted ones: forward to `after`, backward from `b`.
            let c = after + (n - b);
            if c < cost {
                (head, tail, cost) = (after, b, c);
            }
            after = b + 1;
        }
        if tail == n {
            return Plan {
                head,
                tail,
                steps: Box::default(),
                back: Box::default(),
                delims: None,
                gap: 0,
            };
        }
        // `tail > head >= 0`: every backward field has a literal before it.
        let mut fwd = Some(Delims::default());
        let mut bwd = Some(Delims::default());
        let steps = forward_steps(&self.fields[..head], &mut fwd);
        let back = (tail..n)
            .map(|k| {
                let lit = &self.fields[k - 1].until;
                let f = &self.fields[k];
                let last = lit.last().copied();
                let list = f.var.is_some_and(super::Var::is_list) && last == Some(b' ');
                let json_quote = self.escape == super::Escape::Json && lit.first() == Some(&b'"');
                let aligned = right_aligned(lit);
                let (word, mask) = aligned.unwrap_or((0, 0));
                Back {
                    general: aligned.is_none() || json_quote,
                    last: last.unwrap_or_default(),
                    delim: add_delim(&mut bwd, last),
                    len: u32::try_from(lit.len()).unwrap_or(u32::MAX),
                    word,
                    mask,
                    list,
                    json_quote,
                }
            })
            .collect();
        let gap = self.fields[head..tail - 1]
            .iter()
            .map(|f| f.until.len())
            .sum();
        Plan {
            head,
            tail,
            steps,
            back,
            delims: fwd.zip(bwd),
            gap,
        }
    }

    /// Splits the fields `plan` finds; the others are `None` in the record.
    pub fn split<'a>(
        &'a self,
        line: &'a [u8],
        spans: &'a mut Vec<Span>,
        plan: &Plan,
    ) -> Result<Record<'a>, LineError> {
        let n = self.fields.len();
        if plan.tail >= n {
            return self.parse_prefix(line, spans, plan.head);
        }
        if !starts_with(line, &self.prefix) || line.len() > u32::MAX as usize {
            spans.clear();
            return Err(LineError::Prefix);
        }
        spans.resize(n, SKIPPED);
        let (head, tail) = spans.split_at_mut(plan.tail);
        let (head, skipped) = head.split_at_mut(plan.head);
        for s in skipped {
            *s = SKIPPED;
        }
        let pos = self.prefix.len();
        match plan.delims {
            Some((fwd, bwd)) => {
                let lo =
                    self.forward_scan(line, pos, head, &plan.steps, &mut Scanner::new(line, fwd))?;
                let mut scan = Scanner::<u64>::from_end(line, bwd);
                self.backward(line, lo, tail, plan, |b, from| scan.prev(b.delim, from))?;
            }
            None => {
                let lo = self.forward(line, pos, head, &plan.steps, None)?;
                self.backward(line, lo, tail, plan, |b, from| {
                    memchr::memrchr(b.last, &line[..=from])
                })?;
            }
        }
        Ok(Record::new(self, line, spans))
    }

    /// Splits the fields from `plan.tail` on (`spans`) backward from the end of the line,
    /// down to `lo` (where the forward walk stopped). `find(b, from)` is the last position at
    /// or before `from` holding `b`'s delimiter.
    #[inline(always)]
    fn backward(
        &self,
        line: &[u8],
        lo: usize,
        spans: &mut [Span],
        plan: &Plan,
        mut find: impl FnMut(&Back, usize) -> Option<usize>,
    ) -> Result<(), LineError> {
        let n = self.fields.len();
        let last = &self.fields[n - 1];
        let mut end = line
            .len()
            .checked_sub(last.until.len())
            .filter(|&e| e >= lo && starts_with(&line[e..], &last.until))
            .ok_or(LineError::Field(n - 1))?;
        for (j, (span, b)) in spans.iter_mut().zip(&*plan.back).enumerate().rev() {
            // Field `k` is preceded by field `k - 1`'s literal; the error names that field.
            let k = plan.tail + j;
            let mut at = end;
            let start = loop {
                // `i`: where the literal's last byte is.
                let i = match at.checked_sub(1).and_then(|from| find(b, from)) {
                    Some(i) if i >= lo => i,
                    _ => return Err(LineError::Field(k - 1)),
                };
                // The literal is compared as the 8 bytes that end at `i` (one comparison for
                // a literal of any length up to 8, always true for one byte), then the space
                // of a list separator is skipped; near the line's start, or for the general
                // case, out of line.
                let starts = match i.checked_sub(7).and_then(|f| line.get(f..=i)) {
                    Some(w) if !b.general && i + 1 >= lo + b.len as usize => {
                        let w = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
                        w & b.mask == b.word && !(b.list && list_separator(line, i))
                    }
                    _ => self.starts_after(line, lo, i, k, b)?,
                };
                if starts {
                    break i + 1;
                }
                at = i;
            };
            *span = (start as u32, end as u32);
            end = start - b.len as usize;
        }
        if end - lo < plan.gap {
            return Err(LineError::Field(plan.tail - 1));
        }
        Ok(())
    }

    /// Whether field `k` (with `b`) starts right after `i`, where the last byte of the literal
    /// before it is, by the general rules; an error once that literal would start before `lo`.
    #[cold]
    #[inline(never)]
    fn starts_after(
        &self,
        line: &[u8],
        lo: usize,
        i: usize,
        k: usize,
        b: &Back,
    ) -> Result<bool, LineError> {
        let s = (i + 1)
            .checked_sub(b.len as usize)
            .filter(|&s| s >= lo)
            .ok_or(LineError::Field(k - 1))?;
        Ok(starts_with(&line[s..], &self.fields[k - 1].until)
            && !(b.list && list_separator(line, i))
            && !(b.json_quote && escaped(line, lo, s)))
    }
}

impl Plan {
    /// The same plan searched field by field, without [`Scanner`] (the reference it is tested
    /// and fuzzed against).
    #[doc(hidden)]
    pub fn without_scanner(mut self) -> Self {
        self.delims = None;
        self
    }

    /// The fields split forward (`0..head`) and the first one split backward (`tail`, up to
    /// the last): the fields in between are skipped.
    pub fn bounds(&self) -> (usize, usize) {
        (self.head, self.tail)
    }
}

/// Up to 8 bytes as the high bytes of a little-endian word, with their mask: the form of the
/// 8 bytes that end with them.
fn right_aligned(b: &[u8]) -> Option<(u64, u64)> {
    let (w, mask) = super::split::word(b)?;
    let shift = 8 * (8 - b.len() as u32);
    Some((w.checked_shl(shift)?, mask.checked_shl(shift)?))
}

#[cfg(test)]
mod tests;
