//! Access logs in any `log_format`: the format string is compiled once into a prefix and a
//! list of field steps, each field ending at the literal that follows it; a line is split by
//! running those steps over bitmasks of the delimiters (`scan`; no regex, no allocation per
//! line). Typed accessors then convert only the fields a caller asks for, and a [`Plan`]
//! splits only the fields a caller reads, from both ends of the line.
//!
//! Values are returned as nginx wrote them: with `escape=default` a `"` in a header is `\x22`,
//! with `escape=json` it is `\"` (and unset variables are empty instead of `-`). Both escapes
//! mean a quote-delimited field cannot end early; with `escape=none` the first match of the
//! following literal wins (the last match of the preceding one, for the fields a plan splits
//! backward), except for the last field, which runs to the literal that ends the line.
//!
//! The `$upstream_*` variables hold one value per attempt: `, ` between servers of one group
//! and ` : ` between groups (after an internal redirect). In an unquoted field those
//! separators contain spaces, so a field of one of those variables does not end at a space
//! that belongs to a separator.

use std::fmt;

use super::time;

mod plan;
mod record;
mod scan;
mod split;
pub use plan::Plan;
pub use record::{Record, Request, UpstreamItem, UpstreamList, is_single, status};
use scan::Delims;
use split::word;

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
    /// `until[1..]` as a little-endian word and the mask of its bytes, when it fits in one
    /// (a literal's tail is then checked with one comparison, not a loop of varying length).
    rest: Option<(u64, u64)>,
}

/// How a field's end is confirmed once the first byte of its literal is found (ordered: the
/// first two are both a masked word comparison).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Check {
    /// The literal is that one byte: the first match ends the field.
    None,
    /// The rest of the literal (up to 8 bytes) follows: one masked word comparison.
    Word,
    /// A space that may belong to an upstream list's `, ` or ` : `.
    List,
    /// Anything else ([`Field`]'s general rules).
    Other,
}

/// What the split needs of an inner field, packed apart from [`Field`] so the walk over a
/// line reads 24 bytes a field.
#[derive(Debug, Clone, Copy)]
struct Step {
    /// `until[1..]` as a little-endian word, and the mask of its bytes ([`Check::Word`]).
    rest: u64,
    mask: u64,
    /// `until.len()`.
    len: u32,
    /// The index of `until[0]` in the format's [`Delims`].
    delim: u8,
    check: Check,
}

/// A compiled `log_format`.
#[derive(Debug, Clone)]
pub struct AccessFormat {
    prefix: Box<[u8]>,
    fields: Vec<Field>,
    /// One per field but the last, for the [`Scanner`] walk.
    steps: Box<[Step]>,
    /// The first bytes of the literals that end the fields (all but the last), when there
    /// are few enough for [`Scanner`]; otherwise each field's end is searched on its own.
    delims: Option<Delims>,
    /// The field index of each [`Var`], if the format has it.
    slot: [Option<u16>; KNOWN],
    escape: Escape,
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
            f.rest = f.until.get(1..).and_then(word);
        }
        let mut delims = Some(Delims::default());
        let inner = fields
            .split_last()
            .map(|(_, inner)| inner)
            .unwrap_or_default();
        let steps = forward_steps(inner, &mut delims);
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
            steps,
            delims,
            slot,
            escape,
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
}

/// The [`Step`]s that end `fields` (none of them a format's last), their delimiters added to
/// `delims` (which becomes `None` when they do not fit).
fn forward_steps(fields: &[Field], delims: &mut Option<Delims>) -> Box<[Step]> {
    fields
        .iter()
        .map(|f| {
            // Not the last field: `until` is not empty (adjacent variables are refused).
            let delim = add_delim(delims, f.until.first().copied());
            let (rest, mask) = f.rest.unwrap_or((0, 0));
            // `until` is one byte with neither a list nor a JSON quote: its first match ends it.
            let check = if f.until.len() == 1 && !f.list && !f.json_quote {
                Check::None
            } else if f.list && &*f.until == b" " {
                Check::List
            } else if f.rest.is_some() && !f.list && !f.json_quote {
                Check::Word
            } else {
                Check::Other
            };
            Step {
                rest,
                mask,
                len: u32::try_from(f.until.len()).unwrap_or(u32::MAX),
                delim,
                check,
            }
        })
        .collect()
}

/// Adds `b` to `delims`; its index there, or 0 once they no longer fit (`delims` is then
/// `None`, and nothing uses the index).
fn add_delim(delims: &mut Option<Delims>, b: Option<u8>) -> u8 {
    match (delims.as_mut(), b) {
        (Some(d), Some(b)) => d.add(b).unwrap_or_else(|| {
            *delims = None;
            0
        }),
        _ => {
            *delims = None;
            0
        }
    }
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
    // nginx writes `S.mmm`: read without a search for the dot.
    if let [secs @ .., b'.', x, y, z] = b
        && (1..=7).contains(&secs.len())
    {
        let d = |c: u8| u32::from(c.wrapping_sub(b'0'));
        let (x, y, z) = (d(*x), d(*y), d(*z));
        if x.max(y).max(z) > 9 {
            return None;
        }
        return time::digits(secs, secs.len())?
            .checked_mul(1000)?
            .checked_add(x * 100 + y * 10 + z);
    }
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
    // Up to 7 digits of seconds: more than a u32 of milliseconds holds (49 days) is None.
    secs.checked_mul(1000)?.checked_add(ms)
}

#[cfg(test)]
mod tests;
