//! One split access-log line and its typed accessors. Nothing is converted until asked for.

use super::{AccessFormat, Span, Var, millis};
use crate::parse::logs::time;

/// A split line: field positions into the line, with typed accessors.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    format: &'a AccessFormat,
    line: &'a [u8],
    spans: &'a [Span],
}

/// `$request` split into its three parts. A request line that is not `METHOD URI PROTO`
/// (nginx logs garbage as it came, e.g. `"GARBAGE"`) keeps its first word as the method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: &'a [u8],
    pub uri: &'a [u8],
    pub proto: &'a [u8],
}

impl<'a> Request<'a> {
    /// Splits `METHOD URI PROTO`.
    pub fn split(b: &'a [u8]) -> Request<'a> {
        let Some(sp) = memchr::memchr(b' ', b) else {
            return Request {
                method: b,
                uri: &[],
                proto: &[],
            };
        };
        let rest = &b[sp + 1..];
        let (uri, proto) = match memchr::memrchr(b' ', rest) {
            Some(r) if rest[r + 1..].starts_with(b"HTTP/") => (&rest[..r], &rest[r + 1..]),
            _ => (rest, &[][..]),
        };
        Request {
            method: &b[..sp],
            uri,
            proto,
        }
    }

    /// The URI without its query string.
    pub fn path(&self) -> &'a [u8] {
        let end = memchr::memchr(b'?', self.uri).unwrap_or(self.uri.len());
        &self.uri[..end]
    }
}

/// One value of an `$upstream_*` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamItem<'a> {
    pub value: &'a [u8],
    /// Whether a ` : ` (a new upstream group, after an internal redirect) precedes it.
    pub new_group: bool,
}

/// The values of an `$upstream_*` variable, one per attempt, as written: `-` is a value (no
/// upstream was used, or this attempt has no such time). An empty field (`escape=json` writes
/// unset variables as nothing) yields no items.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamList<'a> {
    rest: &'a [u8],
    new_group: bool,
}

impl<'a> UpstreamList<'a> {
    /// The list in `b`.
    pub fn new(b: &'a [u8]) -> UpstreamList<'a> {
        UpstreamList {
            rest: b,
            new_group: false,
        }
    }
}

impl<'a> Iterator for UpstreamList<'a> {
    type Item = UpstreamItem<'a>;

    fn next(&mut self) -> Option<UpstreamItem<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let b = self.rest;
        let new_group = self.new_group;
        // Separators: `, ` within a group and ` : ` between groups. Most lists have one item,
        // so the search for either byte is done a word at a time.
        let mut at = 0;
        while let Some(k) = find_comma_or_space(&b[at..]) {
            let i = at + k;
            if b[i] == b',' {
                self.rest = b[i + 1..].strip_prefix(b" ").unwrap_or(&b[i + 1..]);
                self.new_group = false;
                return Some(UpstreamItem {
                    value: &b[..i],
                    new_group,
                });
            }
            if b[i + 1..].starts_with(b": ") {
                self.rest = &b[i + 3..];
                self.new_group = true;
                return Some(UpstreamItem {
                    value: &b[..i],
                    new_group,
                });
            }
            at = i + 1;
        }
        self.rest = &[];
        Some(UpstreamItem {
            value: b,
            new_group,
        })
    }
}

/// Whether an `$upstream_*` value holds one item: no `, ` or ` : ` separator in it.
#[inline]
pub fn is_single(b: &[u8]) -> bool {
    find_comma_or_space(b).is_none()
}

/// The first `,` or ` ` in `b`, eight bytes at a time (SWAR: a byte of `x ^ pattern` is zero
/// where it matches; the lowest flagged byte is always a true match).
#[inline]
fn find_comma_or_space(b: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        let z = zero(w ^ (LO * u64::from(b','))) | zero(w ^ (LO * u64::from(b' ')));
        if z != 0 {
            // The lowest flag of each half is exact, so the lowest of both is the first.
            return Some(at + (z.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = chunks.remainder().len();
    if tail == 0 {
        return None;
    }
    if b.len() < 8 {
        return b.iter().position(|&c| c == b',' || c == b' ');
    }
    // The last eight bytes, overlapping what was searched: flags below `at` are dropped.
    let last = b.len() - 8;
    let w = u64::from_le_bytes(b[last..].try_into().unwrap_or([0; 8]));
    let z = zero(w ^ (LO * u64::from(b','))) | zero(w ^ (LO * u64::from(b' ')));
    let z = z & (u64::MAX << (8 * (8 - tail)));
    // Searched bytes hold no match, so no borrow reaches the kept flags: they are exact.
    (z != 0).then(|| last + (z.trailing_zeros() / 8) as usize)
}

impl<'a> Record<'a> {
    pub(super) fn new(format: &'a AccessFormat, line: &'a [u8], spans: &'a [Span]) -> Self {
        Record {
            format,
            line,
            spans,
        }
    }

    /// The whole line.
    pub fn line(&self) -> &'a [u8] {
        self.line
    }

    /// Field `i` (0-based, in format order), if it was split.
    pub fn field(&self, i: usize) -> Option<&'a [u8]> {
        let &(s, e) = self.spans.get(i)?;
        self.line.get(s as usize..e as usize)
    }

    /// The raw value of `var`, if the format has it (and it was split).
    pub fn raw(&self, var: Var) -> Option<&'a [u8]> {
        self.field(self.format.index_of(var)?)
    }

    /// The raw value of the variable called `name` (without `$`), e.g. `http_user_agent`.
    pub fn named(&self, name: &str) -> Option<&'a [u8]> {
        self.field(self.format.index_of_name(name)?)
    }

    /// A request header logged as `$http_NAME` (`name` in nginx's form: lowercase, `_`).
    pub fn http(&self, name: &str) -> Option<&'a [u8]> {
        let i = self
            .format
            .names()
            .position(|n| n.strip_prefix("http_") == Some(name))?;
        self.field(i)
    }

    /// `$status`.
    pub fn status(&self) -> Option<u16> {
        status(self.raw(Var::Status)?)
    }

    /// `$time_local` (or `$time_iso8601`) as Unix seconds.
    pub fn time(&self) -> Option<i64> {
        match self.raw(Var::TimeLocal) {
            Some(t) => time::time_local(t),
            None => time::time_iso8601(self.raw(Var::TimeIso8601)?),
        }
    }

    /// `$request` split into method, URI and protocol.
    pub fn request(&self) -> Option<Request<'a>> {
        Some(Request::split(self.raw(Var::Request)?))
    }

    /// `$remote_addr`.
    pub fn remote_addr(&self) -> Option<&'a [u8]> {
        self.raw(Var::RemoteAddr)
    }

    /// `$body_bytes_sent`.
    pub fn body_bytes_sent(&self) -> Option<u64> {
        let b = self.raw(Var::BodyBytesSent)?;
        if b.is_empty() || b.len() > 19 || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(b.iter().fold(0u64, |v, c| v * 10 + u64::from(c - b'0')))
    }

    /// `$request_time` in milliseconds.
    pub fn request_time_ms(&self) -> Option<u32> {
        millis(self.raw(Var::RequestTime)?)
    }

    /// `$upstream_addr`, one item per attempt.
    pub fn upstream_addr(&self) -> Option<UpstreamList<'a>> {
        self.raw(Var::UpstreamAddr).map(UpstreamList::new)
    }

    /// `$upstream_status`, one item per attempt (see [`status`] for each value).
    pub fn upstream_status(&self) -> Option<UpstreamList<'a>> {
        self.raw(Var::UpstreamStatus).map(UpstreamList::new)
    }

    /// `$upstream_connect_time` (see [`millis`] for each value; `-` means none).
    pub fn upstream_connect_time(&self) -> Option<UpstreamList<'a>> {
        self.raw(Var::UpstreamConnectTime).map(UpstreamList::new)
    }

    /// `$upstream_header_time`.
    pub fn upstream_header_time(&self) -> Option<UpstreamList<'a>> {
        self.raw(Var::UpstreamHeaderTime).map(UpstreamList::new)
    }

    /// `$upstream_response_time`.
    pub fn upstream_response_time(&self) -> Option<UpstreamList<'a>> {
        self.raw(Var::UpstreamResponseTime).map(UpstreamList::new)
    }
}

/// A three-digit HTTP status.
pub fn status(b: &[u8]) -> Option<u16> {
    match *b {
        [a, b, c] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}
