//! Reads the recent window of nginx's error and access logs into a [`LogWindow`] for
//! `reflex diagnose`: binary search to the window's start (`gather::logs::seek_since`), then
//! only the window is read, so a 1 GB log costs a few small reads plus the window itself.
//! Unreadable files become [`Unavailable`] evidence; malformed lines are counted and skipped.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::gather::logs::{for_each_line, seek_since};
use crate::model::evidence::Unavailable;
use crate::model::logs::{AccessEvent, Attempt, ErrorEvent, LogWindow};
use crate::parse::logs::access_log::{AccessFormat, Var, millis};
use crate::parse::logs::{error_log, time};

/// At most this many events of each kind are kept (the most recent): bounded memory whatever
/// the traffic.
const MAX_EVENTS: usize = 20_000;

/// An access log and the format it is written in.
pub struct AccessSource {
    pub path: PathBuf,
    pub format: AccessFormat,
}

/// Which window to read.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Seconds of log to read, back from `end_s`.
    pub seconds: i64,
    /// The window's end, Unix seconds: now when live; `None` offline, where each file's last
    /// line marks the end (logs copied from another host are read as of when they were copied).
    pub end_s: Option<i64>,
    /// The local UTC offset in seconds, to read the error log's zone-less times.
    pub utc_offset_s: i64,
}

/// The local UTC offset now, in seconds.
pub fn local_utc_offset() -> i64 {
    i64::from(
        jiff::tz::TimeZone::system()
            .to_offset(jiff::Timestamp::now())
            .seconds(),
    )
}

/// Reads the window of every log.
pub fn read(
    error_logs: &[PathBuf],
    access_logs: &[AccessSource],
    w: Window,
) -> (LogWindow, Vec<Unavailable>) {
    let mut out = LogWindow {
        has_upstream_fields: true,
        ..Default::default()
    };
    let mut unavailable = Vec::new();
    let mut from = i64::MAX;
    let mut to = i64::MIN;
    for path in error_logs {
        match read_errors(path, w, &mut out) {
            Ok((a, b)) => {
                from = from.min(a);
                to = to.max(b);
                out.sources.push(path.display().to_string());
            }
            Err(e) => unavailable.push(missing(path, &e)),
        }
    }
    if access_logs.is_empty() {
        out.has_upstream_fields = false;
    }
    for src in access_logs {
        let has = src.format.index_of(Var::UpstreamAddr).is_some()
            && src.format.index_of(Var::UpstreamStatus).is_some();
        out.has_upstream_fields &= has;
        match read_access(src, w, &mut out) {
            Ok((a, b)) => {
                from = from.min(a);
                to = to.max(b);
                out.sources.push(path_str(&src.path));
            }
            Err(e) => unavailable.push(missing(&src.path, &e)),
        }
    }
    out.errors.sort_by_key(|e| e.at_ms);
    out.requests.sort_by_key(|r| r.at_ms);
    if from <= to {
        out.from_ms = (from.max(0) as u64) * 1000;
        out.to_ms = (to.max(0) as u64) * 1000;
    }
    (out, unavailable)
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

fn missing(path: &Path, e: &std::io::Error) -> Unavailable {
    let how = if e.kind() == std::io::ErrorKind::PermissionDenied {
        "run as root or as a user in the log's group (adm on Debian)".to_string()
    } else {
        "check the log path in nginx.conf, or pass --error-log/--access-log".to_string()
    };
    Unavailable {
        what: format!("log {}", path.display()),
        why: e.to_string(),
        how,
    }
}

/// Keeps the last `MAX_EVENTS` of a growing list.
fn push_bounded<T>(v: &mut Vec<T>, t: T) {
    if v.len() == MAX_EVENTS * 2 {
        v.drain(..MAX_EVENTS);
    }
    v.push(t);
}

/// The window `[start, end]` in the file's own time scale, and where it starts.
fn window_start(
    file: &mut File,
    w: Window,
    local: i64,
    time_of: &mut impl FnMut(&[u8]) -> Option<i64>,
) -> std::io::Result<(i64, u64)> {
    let end = match w.end_s {
        Some(now) => now + local,
        None => last_time(file, time_of)?.unwrap_or(0),
    };
    let start = end - w.seconds;
    Ok((start, seek_since(file, start, time_of)?))
}

/// The time of the last timed line in the file's last 64 KiB.
fn last_time(
    file: &mut File,
    time_of: &mut impl FnMut(&[u8]) -> Option<i64>,
) -> std::io::Result<Option<i64>> {
    use std::io::{Seek, SeekFrom};
    let len = file.metadata()?.len();
    let from = len.saturating_sub(64 << 10);
    file.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::new();
    std::io::Read::read_to_end(file, &mut buf)?;
    Ok(buf.split(|b| *b == b'\n').rev().find_map(time_of))
}

fn read_errors(path: &Path, w: Window, out: &mut LogWindow) -> std::io::Result<(i64, i64)> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path)?;
    let mut time_of = |l: &[u8]| time::error_log_civil(l);
    let (start, pos) = window_start(&mut file, w, w.utc_offset_s, &mut time_of)?;
    file.seek(SeekFrom::Start(pos))?;
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    for_each_line(&mut file, |line| {
        if line.is_empty() {
            return;
        }
        let Ok(parsed) = error_log::parse(line) else {
            out.malformed += 1;
            return;
        };
        if parsed.civil_time < start {
            return;
        }
        let utc = parsed.civil_time - w.utc_offset_s;
        first = first.min(utc);
        last = last.max(utc);
        let Some(c) = parsed.classify() else { return };
        let uri = parsed.request.map(|r| {
            let r = crate::parse::logs::access_log::Request::split(r);
            String::from_utf8_lossy(r.path()).into_owned()
        });
        push_bounded(
            &mut out.errors,
            ErrorEvent {
                at_ms: utc.max(0) as u64 * 1000,
                level: format!("{:?}", parsed.level).to_lowercase(),
                class: c.class,
                errno: c.errno,
                upstream: parsed
                    .upstream_addr()
                    .map(|a| String::from_utf8_lossy(a).into_owned()),
                uri,
                line: String::from_utf8_lossy(line).into_owned(),
            },
        );
    })?;
    Ok((first, last))
}

fn read_access(src: &AccessSource, w: Window, out: &mut LogWindow) -> std::io::Result<(i64, i64)> {
    use std::io::{Seek, SeekFrom};
    let fmt = &src.format;
    let mut file = File::open(&src.path)?;
    let time_field = fmt
        .index_of(Var::TimeLocal)
        .or_else(|| fmt.index_of_name("time_iso8601"));
    let mut spans = Vec::new();
    let mut time_of = |l: &[u8]| {
        let n = time_field? + 1;
        fmt.parse_prefix(l, &mut spans, n).ok()?.time()
    };
    let (start, pos) = match time_field {
        Some(_) => window_start(&mut file, w, 0, &mut time_of)?,
        None => (i64::MIN, 0),
    };
    file.seek(SeekFrom::Start(pos))?;
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    let mut spans = Vec::new();
    for_each_line(&mut file, |line| {
        if line.is_empty() {
            return;
        }
        let Ok(rec) = fmt.parse(line, &mut spans) else {
            out.malformed += 1;
            return;
        };
        let (Some(status), t) = (rec.status(), rec.time()) else {
            out.malformed += 1;
            return;
        };
        let t = t.unwrap_or(0);
        if t < start {
            return;
        }
        first = first.min(t);
        last = last.max(t);
        let (method, path) = rec
            .request()
            .map(|r| {
                (
                    String::from_utf8_lossy(r.method).into_owned(),
                    String::from_utf8_lossy(r.path()).into_owned(),
                )
            })
            .unwrap_or_default();
        push_bounded(
            &mut out.requests,
            AccessEvent {
                at_ms: t.max(0) as u64 * 1000,
                status,
                method,
                path,
                request_ms: rec.request_time_ms(),
                attempts: attempts(&rec),
                line: String::from_utf8_lossy(line).into_owned(),
            },
        );
    })?;
    Ok((first, last))
}

/// The next value of an `$upstream_*` list; `None` for `-` or when the list is over.
fn value<'a>(
    it: &mut Option<crate::parse::logs::access_log::UpstreamList<'a>>,
) -> Option<&'a [u8]> {
    it.as_mut()
        .and_then(Iterator::next)
        .map(|i| i.value)
        .filter(|v| *v != b"-")
}

/// Zips `$upstream_addr`, `$upstream_status`, `$upstream_connect_time` and
/// `$upstream_header_time` into one attempt each.
fn attempts(rec: &crate::parse::logs::access_log::Record<'_>) -> Vec<Attempt> {
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
            status: value(&mut statuses).and_then(crate::parse::logs::access_log::status),
            connect_ms: value(&mut connects).and_then(millis),
            header_ms: value(&mut headers).and_then(millis),
        })
        .collect()
}
