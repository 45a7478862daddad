//! The access-log side of the window: which field gives a line's time (`$time_local`,
//! `$time_iso8601`, or `$msec`), the requests as [`AccessEvent`]s with their upstream attempts,
//! and the UTC offset nginx writes in (from `$time_local`), which calibrates the error log.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::Path;

use crate::gather::logs::for_each_line;
use crate::model::logs::{AccessEvent, Attempt, LogWindow};
use crate::parse::logs::access_log::{AccessFormat, Record, UpstreamList, Var, millis, status};
use crate::parse::logs::time;

use crate::gather::logs::seek_since;

use super::{Bounds, Span, push_bounded};

/// The fields diagnosis needs, as a `log_format` line to add when the format lacks them.
pub const LOG_FORMAT_HINT: &str = r#"log_format reflex '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$upstream_addr" "$upstream_status" "$upstream_connect_time" "$upstream_header_time" "$upstream_response_time" $request_time';"#;

/// Where a line's time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeField {
    /// `$time_local` or `$time_iso8601` (both carry their offset), at this field index.
    Stamp(usize),
    /// `$msec`: seconds since the epoch with milliseconds.
    Msec(usize),
}

/// The time field of a format, if it has one.
pub fn time_field(fmt: &AccessFormat) -> Option<TimeField> {
    fmt.index_of(Var::TimeLocal)
        .or_else(|| fmt.index_of(Var::TimeIso8601))
        .map(TimeField::Stamp)
        .or_else(|| fmt.index_of_name("msec").map(TimeField::Msec))
}

/// `$msec` (`1795864832.123`) as Unix seconds.
pub fn msec(v: &[u8]) -> Option<i64> {
    let dot = v.iter().position(|c| *c == b'.').unwrap_or(v.len());
    let secs = v.get(..dot).filter(|d| !d.is_empty() && d.len() <= 12)?;
    std::str::from_utf8(secs).ok()?.parse().ok()
}

/// The time of a parsed record by `field`.
fn record_time(rec: &Record<'_>, field: TimeField) -> Option<i64> {
    match field {
        TimeField::Stamp(_) => rec.time(),
        TimeField::Msec(i) => msec(rec.field(i)?),
    }
}

/// What one access log gave besides its events.
#[derive(Debug, Default)]
pub struct AccessRead {
    pub span: Span,
    /// The UTC offset of the last `$time_local`, in seconds.
    pub offset_s: Option<i32>,
    /// Lines after the window's end (plus skew): dropped.
    pub future: u64,
}

/// Reads the requests of the window from one file: `window` is the format's time field and
/// the bounds in Unix seconds (`None`: the format has no time field and the whole file is read).
pub fn read_file(
    path: &Path,
    fmt: &AccessFormat,
    window: Option<(TimeField, Bounds)>,
    out: &mut LogWindow,
) -> std::io::Result<AccessRead> {
    let mut file = File::open(path)?;
    let pos = match window {
        Some((f, b)) => seek_since(&mut file, b.start, &mut time_of(fmt, f))?,
        None => 0,
    };
    file.seek(SeekFrom::Start(pos))?;
    let mut got = AccessRead::default();
    let mut spans = Vec::new();
    let read = for_each_line(&mut file, |line| {
        if line.is_empty() {
            return;
        }
        let Ok(rec) = fmt.parse(line, &mut spans) else {
            out.malformed += 1;
            return;
        };
        let Some(st) = rec.status() else {
            out.malformed += 1;
            return;
        };
        let t = window.and_then(|(f, _)| record_time(&rec, f));
        if let (Some((_, b)), Some(t)) = (window, t) {
            if t < b.start {
                return;
            }
            if t > b.end_with_skew() {
                got.future += 1;
                return;
            }
        }
        if let Some(o) = rec.raw(Var::TimeLocal).and_then(time::time_local_offset) {
            got.offset_s = Some(o);
        }
        let t = t.unwrap_or(0);
        got.span.add(t);
        push_bounded(&mut out.requests, event(&rec, st, t, line));
    })?;
    out.bytes_read += read;
    Ok(got)
}

/// A function reading a line's time (Unix seconds) by `field`, for the binary search.
pub fn time_of(fmt: &AccessFormat, field: TimeField) -> impl FnMut(&[u8]) -> Option<i64> + '_ {
    let mut spans = Vec::new();
    move |l: &[u8]| {
        let i = match field {
            TimeField::Stamp(i) | TimeField::Msec(i) => i,
        };
        let rec = fmt.parse_prefix(l, &mut spans, i + 1).ok()?;
        record_time(&rec, field)
    }
}

fn event(rec: &Record<'_>, status: u16, t: i64, line: &[u8]) -> AccessEvent {
    let (method, path) = rec
        .request()
        .map(|r| {
            (
                String::from_utf8_lossy(r.method).into_owned(),
                String::from_utf8_lossy(r.path()).into_owned(),
            )
        })
        .unwrap_or_default();
    AccessEvent {
        at_ms: super::ms(t),
        status,
        method,
        path,
        request_ms: rec.request_time_ms(),
        attempts: attempts(rec),
        line: String::from_utf8_lossy(line).into_owned(),
    }
}

/// The next value of an `$upstream_*` list; `None` for `-` or when the list is over.
fn value<'a>(it: &mut Option<UpstreamList<'a>>) -> Option<&'a [u8]> {
    it.as_mut()
        .and_then(Iterator::next)
        .map(|i| i.value)
        .filter(|v| *v != b"-")
}

/// Zips `$upstream_addr`, `$upstream_status`, `$upstream_connect_time` and
/// `$upstream_header_time` into one attempt each.
fn attempts(rec: &Record<'_>) -> Vec<Attempt> {
    let Some(addrs) = rec.upstream_addr() else {
        return Vec::new();
    };
    let mut statuses = rec.upstream_status();
    let mut connects = rec.upstream_connect_time();
    let mut headers = rec.upstream_header_time();
    addrs
        .filter(|a| a.value != b"-")
        .map(|a| Attempt {
            addr: String::from_utf8_lossy(a.value).into_owned(),
            status: value(&mut statuses).and_then(status),
            connect_ms: value(&mut connects).and_then(millis),
            header_ms: value(&mut headers).and_then(millis),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::logs::access_log::Escape;

    #[test]
    fn msec_is_a_time_source() {
        let fmt = AccessFormat::compile(
            r#"$msec $remote_addr "$request" $status $upstream_addr $upstream_status $upstream_header_time"#,
            Escape::Default,
        )
        .expect("compiles");
        assert_eq!(time_field(&fmt), Some(TimeField::Msec(0)));
        let mut t = time_of(&fmt, TimeField::Msec(0));
        assert_eq!(
            t(br#"1795864832.123 127.0.0.1 "GET /old HTTP/1.1" 499 127.0.0.1:47312 - -"#),
            Some(1_795_864_832)
        );
        assert_eq!(msec(b"x.1"), None);
        assert_eq!(msec(b""), None);
        let none = AccessFormat::compile("$remote_addr $status", Escape::Default).expect("ok");
        assert_eq!(time_field(&none), None);
        assert_eq!(
            time_field(&AccessFormat::combined()),
            Some(TimeField::Stamp(2))
        );
    }
}
