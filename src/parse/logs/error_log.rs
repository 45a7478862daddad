//! nginx's error log, one line at a time: the timestamp, level, PID/TID, connection number,
//! the message, and the request context nginx appends (`client`, `server`, `request`,
//! `subrequest`, `upstream`, `host`, `referrer`). Upstream failures are classified into
//! [`UpstreamError`] following the signatures in KNOWLEDGE.md §1.
//!
//! Pure: bytes in, borrowed slices out. Lines are bytes because nginx writes the request line
//! raw (not escaped), so an error log is not guaranteed to be UTF-8.

use memchr::memmem;

use super::time::error_log_civil;

/// Error-log severity, as nginx names it in `[level]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Emerg,
    Alert,
    Crit,
    Error,
    Warn,
    Notice,
    Info,
    Debug,
}

impl Level {
    fn parse(b: &[u8]) -> Option<Level> {
        Some(match b {
            b"emerg" => Level::Emerg,
            b"alert" => Level::Alert,
            b"crit" => Level::Crit,
            b"error" => Level::Error,
            b"warn" => Level::Warn,
            b"notice" => Level::Notice,
            b"info" => Level::Info,
            b"debug" => Level::Debug,
            _ => return None,
        })
    }
}

/// One parsed error-log line. Absent context fields are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorLine<'a> {
    /// Seconds since 1970-01-01 00:00:00 in the nginx host's *local* time: the error log
    /// carries no zone, so converting to UTC is the caller's business.
    pub civil_time: i64,
    pub level: Level,
    pub pid: u32,
    pub tid: u32,
    /// `*CID`: the connection number; absent for messages not tied to a connection.
    pub cid: Option<u64>,
    /// The message up to the context fields (may contain commas).
    pub message: &'a [u8],
    pub client: Option<&'a [u8]>,
    pub server: Option<&'a [u8]>,
    /// The request line, quotes removed.
    pub request: Option<&'a [u8]>,
    pub subrequest: Option<&'a [u8]>,
    /// The upstream URL, e.g. `http://127.0.0.1:8000/path` or `http://unix:/run/app.sock:/path`.
    pub upstream: Option<&'a [u8]>,
    pub host: Option<&'a [u8]>,
    pub referrer: Option<&'a [u8]>,
}

/// Why a line is not an error-log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ErrorLineError {
    #[error("no `YYYY/MM/DD HH:MM:SS` timestamp")]
    Time,
    #[error("no `[level]`")]
    Level,
    #[error("no `PID#TID: `")]
    Pid,
}

/// The context keys nginx appends, in the order it appends them
/// (`ngx_http_log_error_handler` in `src/http/ngx_http_request.c`), each with its opening quote.
const KEYS: [(&[u8], bool); 6] = [
    (b", server: ", false),
    (b", request: \"", true),
    (b", subrequest: \"", true),
    (b", upstream: \"", true),
    (b", host: \"", true),
    (b", referrer: \"", true),
];

/// Parses one error-log line (without its newline).
pub fn parse(line: &[u8]) -> Result<ErrorLine<'_>, ErrorLineError> {
    let civil_time = error_log_civil(line).ok_or(ErrorLineError::Time)?;
    let rest = line.get(19..).ok_or(ErrorLineError::Time)?;
    let rest = rest.strip_prefix(b" [").ok_or(ErrorLineError::Level)?;
    let close = memchr::memchr(b']', rest).ok_or(ErrorLineError::Level)?;
    let level = Level::parse(&rest[..close]).ok_or(ErrorLineError::Level)?;
    let rest = rest[close + 1..]
        .strip_prefix(b" ")
        .ok_or(ErrorLineError::Level)?;
    let (pid, rest) = number(rest).ok_or(ErrorLineError::Pid)?;
    let rest = rest.strip_prefix(b"#").ok_or(ErrorLineError::Pid)?;
    let (tid, rest) = number(rest).ok_or(ErrorLineError::Pid)?;
    let mut rest = rest.strip_prefix(b":").ok_or(ErrorLineError::Pid)?;
    rest = rest.strip_prefix(b" ").unwrap_or(rest);
    let mut cid = None;
    if let Some(r) = rest.strip_prefix(b"*")
        && let Some((n, r)) = number(r)
    {
        cid = Some(n);
        rest = r.strip_prefix(b" ").unwrap_or(r);
    }
    let mut out = ErrorLine {
        civil_time,
        level,
        pid: u32::try_from(pid).map_err(|_| ErrorLineError::Pid)?,
        tid: u32::try_from(tid).map_err(|_| ErrorLineError::Pid)?,
        cid,
        message: rest,
        client: None,
        server: None,
        request: None,
        subrequest: None,
        upstream: None,
        host: None,
        referrer: None,
    };
    if let Some(at) = memmem::find(rest, b", client: ") {
        out.message = &rest[..at];
        context(&rest[at + 10..], &mut out);
    }
    Ok(out)
}

/// Splits `client: …` and the keys after it. A value ends where the next key begins; quoted
/// values lose their quotes.
fn context<'a>(mut rest: &'a [u8], out: &mut ErrorLine<'a>) {
    let mut slot: (usize, bool) = (usize::MAX, false); // (key index, quoted); MAX = client
    for (i, (key, quoted)) in KEYS.iter().enumerate() {
        if let Some(at) = memmem::find(rest, key) {
            set(out, slot, &rest[..at]);
            rest = &rest[at + key.len()..];
            slot = (i, *quoted);
        }
    }
    set(out, slot, rest);
}

fn set<'a>(out: &mut ErrorLine<'a>, (key, quoted): (usize, bool), mut v: &'a [u8]) {
    if quoted {
        v = v.strip_suffix(b"\"").unwrap_or(v);
    }
    let field = match key {
        0 => &mut out.server,
        1 => &mut out.request,
        2 => &mut out.subrequest,
        3 => &mut out.upstream,
        4 => &mut out.host,
        5 => &mut out.referrer,
        _ => &mut out.client,
    };
    *field = Some(v);
}

/// Leading decimal digits as a number, and the rest.
fn number(b: &[u8]) -> Option<(u64, &[u8])> {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 19 {
        return None;
    }
    let v = b[..n]
        .iter()
        .fold(0u64, |v, c| v * 10 + u64::from(c - b'0'));
    Some((v, &b[n..]))
}

mod class;
pub use class::{Classified, UpstreamError, classify};

impl<'a> ErrorLine<'a> {
    /// The upstream failure this line reports, if it is one.
    pub fn classify(&self) -> Option<Classified<'a>> {
        classify(self.message)
    }

    /// The upstream's address as `$upstream_addr` writes it (`127.0.0.1:8000`,
    /// `unix:/run/app.sock`, or a group name for `no live upstreams`), from the `upstream:` URL.
    pub fn upstream_addr(&self) -> Option<&'a [u8]> {
        let url = self.upstream?;
        let after = memmem::find(url, b"://").map_or(url, |i| &url[i + 3..]);
        if let Some(path) = after.strip_prefix(b"unix:") {
            // `unix:/run/app.sock:/uri`: the socket path ends at the `:` before the URI.
            let end = memmem::find(path, b":/").unwrap_or(path.len());
            return Some(&after[..5 + end]);
        }
        let end = memchr::memchr(b'/', after).unwrap_or(after.len());
        Some(&after[..end])
    }
}

#[cfg(test)]
mod tests;
