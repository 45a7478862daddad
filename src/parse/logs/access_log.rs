//! Access logs in any `log_format`: the format string is compiled once into a prefix and a
//! list of field steps, each field ending at the literal that follows it; a line is split by
//! running those steps with `memchr` (no regex, no allocation per line). Typed accessors then
//! convert only the fields a caller asks for.
//!
//! Values are returned as nginx wrote them: with `escape=default` a `"` in a header is `\x22`,
//! with `escape=json` it is `\"` (and unset variables are empty instead of `-`). Both escapes
//! mean a quote-delimited field cannot end early; with `escape=none` the first match of the
//! following literal wins, except for the last field, which runs to the literal that ends the
//! line.
//!
//! The `$upstream_*` variables hold one value per attempt: `, ` between servers of one group
//! and ` : ` between groups (after an internal redirect). In an unquoted field those
//! separators contain spaces, so a field of one of those variables does not end at a space
//! that belongs to a separator.

use std::fmt;

use super::time;

mod record;
mod scan;
pub use record::{Record, Request, UpstreamItem, UpstreamList, status};
use scan::{Delims, Scanner};

/// `log_format … escape=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    Default,
    Json,
    None,
}

impl Escape {
    /// `default`, `json` or `none`.
    pub fn parse(s: &str) -> Option<Escape> {
        match s {
            "default" => Some(Escape::Default),
            "json" => Some(Escape::Json),
            "none" => Some(Escape::None),
            _ => None,
        }
    }
}

/// The variables with typed accessors. Anything else is a raw field, found by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Var {
    RemoteAddr,
    RemoteUser,
    TimeLocal,
    TimeIso8601,
    Request,
    Status,
    BodyBytesSent,
    RequestTime,
    UpstreamAddr,
    UpstreamStatus,
    UpstreamConnectTime,
    UpstreamHeaderTime,
    UpstreamResponseTime,
}

const KNOWN: usize = 13;

impl Var {
    fn from_name(name: &str) -> Option<Var> {
        Some(match name {
            "remote_addr" => Var::RemoteAddr,
            "remote_user" => Var::RemoteUser,
            "time_local" => Var::TimeLocal,
            "time_iso8601" => Var::TimeIso8601,
            "request" => Var::Request,
            "status" => Var::Status,
            "body_bytes_sent" => Var::BodyBytesSent,
            "request_time" => Var::RequestTime,
            "upstream_addr" => Var::UpstreamAddr,
            "upstream_status" => Var::UpstreamStatus,
            "upstream_connect_time" => Var::UpstreamConnectTime,
            "upstream_header_time" => Var::UpstreamHeaderTime,
            "upstream_response_time" => Var::UpstreamResponseTime,
            _ => return None,
        })
    }

    fn is_list(self) -> bool {
        matches!(
            self,
            Var::UpstreamAddr
                | Var::UpstreamStatus
                | Var::UpstreamConnectTime
                | Var::UpstreamHeaderTime
                | Var::UpstreamResponseTime
        )
    }
}

/// One variable of the format and the literal that ends it.
#[derive(Debug, Clone)]
struct Field {
    name: Box<str>,
    var: Option<Var>,
    /// The literal after the field; empty: the field runs to the end of the line.
    until: Box<[u8]>,
    /// A space in `until` may be part of an upstream list separator.
    list: bool,
    /// A `"` in `until` may be escaped (`escape=json`).
    json_quote: bool,
    /// `until` is one byte with neither of the above: the field ends at its first match.
    simple: bool,
    /// The index of `until[0]` in the format's [`Delims`].
    delim: u8,
    /// `until[1..]` as a little-endian word and the mask of its bytes, when it fits in one
    /// (a literal's tail is then checked with one comparison, not a loop of varying length).
    rest: Option<(u64, u64)>,
}

/// A compiled `log_format`.
#[derive(Debug, Clone)]
pub struct AccessFormat {
    prefix: Box<[u8]>,
    fields: Vec<Field>,
    /// The first bytes of the literals that end the fields (all but the last), when there
    /// are few enough for [`Scanner`]; otherwise each field's end is searched on its own.
    delims: Option<Delims>,
    /// The field index of each [`Var`], if the format has it.
    slot: [Option<u16>; KNOWN],
}

/// Why a format string cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// `$a$b`: nothing tells where one value ends and the next begins.
    #[error("variables `${first}` and `${second}` are adjacent: their values cannot be told apart")]
    Adjacent { first: String, second: String },
    #[error("unknown escape `{0}` (expected default, json or none)")]
    Escape(String),
}

/// Why a line does not match the format. Such lines are counted and skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("the line does not start with the format's leading text")]
    Prefix,
    /// The literal after field N (0-based) was not found.
    #[error("the text after field {0} was not found")]
    Field(usize),
}

/// A field's position in the line: start and end offsets.
pub type Span = (u32, u32);

impl AccessFormat {
    /// Compiles a format string (the pieces of `log_format` joined, as nginx does).
    pub fn compile(format: &str, escape: Escape) -> Result<AccessFormat, FormatError> {
        let mut prefix = Vec::new();
        let mut fields: Vec<Field> = Vec::new();
        let mut literal: Vec<u8> = Vec::new();
        let b = format.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let Some((name, next)) = variable(b, i) else {
                literal.push(b[i]);
                i += 1;
                continue;
            };
            match fields.last_mut() {
                None => prefix = std::mem::take(&mut literal),
                Some(prev) if literal.is_empty() => {
                    return Err(FormatError::Adjacent {
                        first: prev.name.to_string(),
                        second: name.to_string(),
                    });
                }
                Some(prev) => prev.until = std::mem::take(&mut literal).into(),
            }
            fields.push(Field {
                name: name.into(),
                var: Var::from_name(name),
                until: Box::default(),
                list: false,
                json_quote: false,
                simple: false,
                delim: 0,
                rest: None,
            });
            i = next;
        }
        match fields.last_mut() {
            Some(last) => last.until = literal.into(),
            None => prefix = literal,
        }
        for f in &mut fields {
            let first = f.until.first().copied();
            f.list = f.var.is_some_and(Var::is_list) && first == Some(b' ');
            f.json_quote = escape == Escape::Json && first == Some(b'"');
            f.simple = f.until.len() == 1 && !f.list && !f.json_quote;
            f.rest = f.until.get(1..).and_then(word);
        }
        let mut delims = Some(Delims::default());
        if let Some((_, inner)) = fields.split_last_mut() {
            for f in inner {
                // Not the last field: `until` is not empty (adjacent variables are refused).
                match (&mut delims, f.until.first()) {
                    (Some(d), Some(&b)) => match d.add(b) {
                        Some(k) => f.delim = k,
                        None => delims = None,
                    },
                    _ => delims = None,
                }
            }
        }
        let mut slot = [None; KNOWN];
        for (i, f) in fields.iter().enumerate() {
            if let Some(v) = f.var
                && slot[v as usize].is_none()
            {
                slot[v as usize] = u16::try_from(i).ok();
            }
        }
        Ok(AccessFormat {
            prefix: prefix.into(),
            fields,
            delims,
            slot,
        })
    }

    /// Compiles a `log_format` with its escape given by name (`default`, `json`, `none`).
    pub fn compile_named(format: &str, escape: &str) -> Result<AccessFormat, FormatError> {
        let e = Escape::parse(escape).ok_or_else(|| FormatError::Escape(escape.to_string()))?;
        AccessFormat::compile(format, e)
    }

    /// nginx's built-in `combined`.
    pub fn combined() -> AccessFormat {
        // The constant is known to compile: it has a literal between every two variables.
        AccessFormat::compile(crate::model::nginx::COMBINED, Escape::Default)
            .unwrap_or_else(|_| unreachable!("COMBINED compiles"))
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the format has no variables.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The same format split without [`Scanner`], one search per field (as formats with more
    /// than [`scan::MAX`] delimiters are): the reference the scanner is tested and fuzzed
    /// against.
    #[doc(hidden)]
    pub fn without_scanner(mut self) -> Self {
        self.delims = None;
        self
    }

    /// The field index of `var`, if the format has it.
    pub fn index_of(&self, var: Var) -> Option<usize> {
        self.slot[var as usize].map(usize::from)
    }

    /// The field index of the variable called `name` (without `$`), e.g. `http_x_request_id`.
    pub fn index_of_name(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| &*f.name == name)
    }

    /// The variable names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|f| &*f.name)
    }

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
        spans.clear();
        if !starts_with(line, &self.prefix) || line.len() > u32::MAX as usize {
            return Err(LineError::Prefix);
        }
        let mut pos = self.prefix.len();
        let n = n.min(self.fields.len());
        spans.reserve(n);
        // Every field but the format's last ends at the first match of its literal.
        let inner = n.min(self.fields.len().saturating_sub(1));
        match self.delims {
            Some(d) => {
                let mut scan = Scanner::new(line, d);
                for (i, f) in self.fields[..inner].iter().enumerate() {
                    let end = self
                        .scan_end(&mut scan, line, pos, f)
                        .ok_or(LineError::Field(i))?;
                    spans.push((pos as u32, end as u32));
                    pos = end + f.until.len();
                }
            }
            None => {
                for (i, f) in self.fields[..inner].iter().enumerate() {
                    let end = self.find_end(line, pos, f).ok_or(LineError::Field(i))?;
                    spans.push((pos as u32, end as u32));
                    pos = end + f.until.len();
                }
            }
        }
        if inner < n {
            // The last field runs to the literal that ends the line.
            let f = &self.fields[inner];
            let end = line
                .len()
                .checked_sub(f.until.len())
                .filter(|&e| e >= pos && starts_with(&line[e..], &f.until))
                .ok_or(LineError::Field(inner))?;
            spans.push((pos as u32, end as u32));
        }
        Ok(Record::new(self, line, spans))
    }

    /// [`Self::find_end`] with the delimiters' positions from `scan`.
    #[inline(always)]
    fn scan_end(
        &self,
        scan: &mut Scanner<'_>,
        line: &[u8],
        from: usize,
        f: &Field,
    ) -> Option<usize> {
        let mut at = from;
        loop {
            let i = scan.next(f.delim, at)?;
            if f.simple || self.ends_at(line, from, i, f) {
                return Some(i);
            }
            at = i + 1;
        }
    }

    /// Whether field `f`, starting at `from`, ends at `i`, where its literal's first byte is.
    #[inline(always)]
    fn ends_at(&self, line: &[u8], from: usize, i: usize, f: &Field) -> bool {
        let after = &line[i + 1..];
        let rest = match (f.rest, after.first_chunk::<8>()) {
            (Some((w, mask)), Some(next)) => u64::from_le_bytes(*next) & mask == w,
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

/// `hay.starts_with(lit)` for the short literals between fields, without a call to `memcmp`.
#[inline]
fn starts_with(hay: &[u8], lit: &[u8]) -> bool {
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
fn word(b: &[u8]) -> Option<(u64, u64)> {
    if b.len() > 8 {
        return None;
    }
    let mut w = [0u8; 8];
    w[..b.len()].copy_from_slice(b);
    let mask = u64::MAX.checked_shr(64 - 8 * b.len() as u32).unwrap_or(0);
    Some((u64::from_le_bytes(w), mask))
}

/// Whether the space at `i` belongs to `, ` or ` : ` inside an upstream list.
fn list_separator(line: &[u8], i: usize) -> bool {
    let before = |k: usize| i.checked_sub(k).map(|j| line[j]);
    before(1) == Some(b',')
        || line[i + 1..].starts_with(b": ")
        || (before(1) == Some(b':') && before(2) == Some(b' '))
}

/// Whether the byte at `i` is preceded by an odd number of backslashes (JSON escaping).
fn escaped(line: &[u8], from: usize, i: usize) -> bool {
    let n = line[from..i]
        .iter()
        .rev()
        .take_while(|&&c| c == b'\\')
        .count();
    n % 2 == 1
}

/// A variable at `i`: `$name` or `${name}`; returns the name and the index after it.
fn variable(b: &[u8], i: usize) -> Option<(&str, usize)> {
    if b[i] != b'$' {
        return None;
    }
    let is_name = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    let (start, braced) = if b.get(i + 1) == Some(&b'{') {
        (i + 2, true)
    } else {
        (i + 1, false)
    };
    let len = b.get(start..)?.iter().take_while(|c| is_name(c)).count();
    if len == 0 {
        return None;
    }
    let end = start + len;
    let next = if braced {
        if b.get(end) != Some(&b'}') {
            return None;
        }
        end + 1
    } else {
        end
    };
    Some((std::str::from_utf8(&b[start..end]).ok()?, next))
}

impl fmt::Display for AccessFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.prefix))?;
        for x in &self.fields {
            write!(f, "${{{}}}{}", x.name, String::from_utf8_lossy(&x.until))?;
        }
        Ok(())
    }
}

/// `S.mmm` seconds (nginx's `$request_time` and `$upstream_*_time`) as milliseconds.
pub fn millis(b: &[u8]) -> Option<u32> {
    let dot = b.iter().position(|&c| c == b'.').unwrap_or(b.len());
    if dot == 0 || dot > 7 {
        return None;
    }
    let secs = time::digits(b, dot)?;
    let frac = &b[(dot + 1).min(b.len())..];
    let n = frac.len().min(3);
    let mut ms = time::digits(frac, n)?;
    for _ in n..3 {
        ms *= 10;
    }
    Some(secs * 1000 + ms)
}

#[cfg(test)]
mod tests;
