//! Reads the recent window of nginx's error and access logs into a [`LogWindow`] for
//! `reflex diagnose`: binary search to the window's start (`gather::logs::seek_since`), then
//! only the window is read, so a 1 GB log costs a few small reads plus the window itself.
//!
//! The window is `[end - seconds, end]`, with `end` now (live) or each file's last line
//! (offline). Around it:
//! - rotation: when the window starts before a file's first line (or the file is empty, just
//!   rotated), the newest rotated sibling `NAME.1` is read first (`NAME.1.gz` is noted, not
//!   read);
//! - time zones: the error log's times are nginx's local time ([`zone`]); an access log's
//!   `$time_local` carries its offset, which then calibrates the error log;
//! - the future: lines dated after the end (beyond [`FUTURE_SKEW_S`]) are dropped and counted:
//!   they mean a zone or clock mismatch, never "the last 15 minutes";
//! - formats without a time (`$msec` is one) are read whole, and said so.
//!
//! Unreadable files become [`Unavailable`] evidence; malformed lines are counted and skipped.

pub mod access;
pub mod zone;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use jiff::tz::{Offset, TimeZone};

use crate::gather::logs::{for_each_line, seek_since};
use crate::model::evidence::Unavailable;
use crate::model::logs::{ErrorEvent, LogWindow};
use crate::parse::logs::access_log::{AccessFormat, Var};
use crate::parse::logs::{error_log, time};

/// At most this many events of each kind are kept (the most recent): bounded memory whatever
/// the traffic.
const MAX_EVENTS: usize = 20_000;

/// Lines up to this far after the window's end are clock skew between writers; later ones are
/// dropped and reported.
pub const FUTURE_SKEW_S: i64 = 120;

/// An access log and the format it is written in.
pub struct AccessSource {
    pub path: PathBuf,
    pub format: AccessFormat,
}

/// Which window to read.
#[derive(Debug, Clone)]
pub struct Window {
    /// Seconds of log to read, back from `end_s`.
    pub seconds: i64,
    /// The window's end, Unix seconds: now when live; `None` offline, where each file's last
    /// line marks the end (logs copied from another host are read as of when they were copied).
    pub end_s: Option<i64>,
    /// The zone nginx writes the error log's zone-less times in (`zone::nginx_zone`).
    pub zone: TimeZone,
}

/// What reading the window gave.
#[derive(Debug, Default)]
pub struct WindowRead {
    pub logs: LogWindow,
    pub unavailable: Vec<Unavailable>,
    /// How the window was read, when it is worth saying (rotated files, the zone used…).
    pub notes: Vec<String>,
}

/// A window in one file's time scale.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub start: i64,
    pub end: i64,
}

impl Bounds {
    pub fn end_with_skew(&self) -> i64 {
        self.end.saturating_add(FUTURE_SKEW_S)
    }
}

/// The first and last time read from a file.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    pub first: i64,
    pub last: i64,
}

impl Default for Span {
    fn default() -> Self {
        Span {
            first: i64::MAX,
            last: i64::MIN,
        }
    }
}

impl Span {
    pub fn add(&mut self, t: i64) {
        self.first = self.first.min(t);
        self.last = self.last.max(t);
    }

    /// Widens this span by another (an empty one, from a file without lines, changes nothing).
    pub fn merge(&mut self, other: Span) {
        if other.first <= other.last {
            self.add(other.first);
            self.add(other.last);
        }
    }

    /// The last time, when any line was read.
    pub fn end(&self) -> Option<i64> {
        (self.first <= self.last).then_some(self.last)
    }
}

/// Unix seconds as ms since the epoch (clamped: a garbled date must not overflow).
fn ms(s: i64) -> u64 {
    (s.clamp(0, i64::MAX / 1000) as u64) * 1000
}

/// Reads the window of every log: the access logs first, whose `$time_local` offset then
/// reads the error logs' local times.
pub fn read(error_logs: &[PathBuf], access_logs: &[AccessSource], w: Window) -> WindowRead {
    let mut r = WindowRead::default();
    r.logs.has_upstream_fields = !access_logs.is_empty();
    let mut seen = Span::default();
    let mut offset_seen: Option<i32> = None;
    for src in access_logs {
        let a = read_access(src, &w, &mut r);
        seen.merge(a.span);
        offset_seen = a.offset_s.or(offset_seen);
    }
    let assumed = w.zone.to_offset(jiff::Timestamp::now());
    let zone = match offset_seen.and_then(|s| Offset::from_seconds(s).ok()) {
        Some(o) => {
            if o != assumed {
                r.notes.push(format!(
                    "error-log times read at UTC{o}, the offset nginx writes in $time_local (not UTC{assumed})"
                ));
            }
            TimeZone::fixed(o)
        }
        None => w.zone.clone(),
    };
    for path in error_logs {
        seen.merge(read_errors(path, &w, &zone, &mut r));
    }
    r.logs.errors.sort_by_key(|e| e.at_ms);
    r.logs.requests.sort_by_key(|x| x.at_ms);
    if let Some(end) = w.end_s.or(seen.end()) {
        r.logs.to_ms = ms(end);
        r.logs.from_ms = ms(end.saturating_sub(w.seconds));
    }
    r
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

/// The time of the first timed line among the first 64 KiB (`None`: empty, or no timed line).
fn first_time(path: &Path, time_of: &mut impl FnMut(&[u8]) -> Option<i64>) -> Option<i64> {
    let mut buf = Vec::new();
    File::open(path)
        .ok()?
        .take(64 << 10)
        .read_to_end(&mut buf)
        .ok()?;
    buf.split(|b| *b == b'\n').find_map(time_of)
}

/// The time of the last timed line in the file's last 64 KiB.
fn last_time(path: &Path, time_of: &mut impl FnMut(&[u8]) -> Option<i64>) -> Option<i64> {
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(64 << 10)))
        .ok()?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf).ok()?;
    buf.split(|b| *b == b'\n').rev().find_map(time_of)
}

/// The files holding the window of `path`, oldest first: `NAME.1` too when the window starts
/// before `path`'s first line, or `path` has none (just rotated). Also the window in the
/// files' time scale (`shift`: seconds to add to Unix time, the zone offset for error logs).
fn files_for(
    path: &Path,
    w: &Window,
    shift: i64,
    time_of: &mut impl FnMut(&[u8]) -> Option<i64>,
    notes: &mut Vec<String>,
) -> (Vec<PathBuf>, Bounds) {
    let rotated = PathBuf::from(format!("{}.1", path.display()));
    let end = match w.end_s {
        Some(now) => now + shift,
        None => last_time(path, time_of)
            .or_else(|| last_time(&rotated, time_of))
            .unwrap_or(0),
    };
    let b = Bounds {
        start: end.saturating_sub(w.seconds),
        end,
    };
    let first = first_time(path, time_of);
    let mut files = Vec::new();
    if first.is_none_or(|t| t > b.start) {
        let gz = PathBuf::from(format!("{}.1.gz", path.display()));
        if rotated.is_file() {
            notes.push(format!(
                "the window starts before {}: read its rotated {} too",
                path.display(),
                rotated.display()
            ));
            files.push(rotated);
        } else if gz.is_file() {
            notes.push(format!(
                "{} (rotated, compressed) was not read: the window may start in it",
                gz.display()
            ));
        }
    }
    files.push(path.to_path_buf());
    (files, b)
}

fn read_access(src: &AccessSource, w: &Window, r: &mut WindowRead) -> access::AccessRead {
    let fmt = &src.format;
    let has =
        fmt.index_of(Var::UpstreamAddr).is_some() && fmt.index_of(Var::UpstreamStatus).is_some();
    if !has {
        r.logs.has_upstream_fields = false;
        r.unavailable.push(Unavailable {
            what: format!("upstream fields in {}", src.path.display()),
            why: "its log_format has no $upstream_addr/$upstream_status: retried and failed upstream attempts are invisible".into(),
            how: format!("add `{}` to the http block and use it: `access_log {} reflex;`", access::LOG_FORMAT_HINT, src.path.display()),
        });
    }
    let (files, window) = match access::time_field(fmt) {
        Some(f) => {
            let (files, b) = files_for(&src.path, w, 0, &mut access::time_of(fmt, f), &mut r.notes);
            (files, Some((f, b)))
        }
        None => {
            r.unavailable.push(Unavailable {
                what: format!("times in {}", src.path.display()),
                why: "its log_format has no $time_local, $time_iso8601 or $msec: the whole file was read, not the window".into(),
                how: "add $time_local to the log_format".into(),
            });
            (vec![src.path.clone()], None)
        }
    };
    let mut total = access::AccessRead::default();
    for path in files {
        match access::read_file(&path, fmt, window, &mut r.logs) {
            Ok(a) => {
                r.logs.sources.push(path.display().to_string());
                total.span.merge(a.span);
                total.offset_s = a.offset_s.or(total.offset_s);
                total.future += a.future;
            }
            Err(e) => r.unavailable.push(missing(&path, &e)),
        }
    }
    future_note(&src.path, total.future, &mut r.notes);
    total
}

fn future_note(path: &Path, n: u64, notes: &mut Vec<String>) {
    if n > 0 {
        notes.push(format!(
            "{n} lines of {} are dated after the window's end: skipped (a zone or clock mismatch between nginx and this host?)",
            path.display()
        ));
    }
}

/// Reads the error log's window; `zone` turns its local times into UTC.
fn read_errors(path: &Path, w: &Window, zone: &TimeZone, r: &mut WindowRead) -> Span {
    let shift = i64::from(zone.to_offset(jiff::Timestamp::now()).seconds());
    let mut time_of = |l: &[u8]| time::error_log_civil(l);
    let (files, b) = files_for(path, w, shift, &mut time_of, &mut r.notes);
    let mut span = Span::default();
    let mut future = 0;
    for file in files {
        match read_error_file(&file, b, shift, zone, &mut r.logs) {
            Ok((s, f)) => {
                r.logs.sources.push(file.display().to_string());
                span.merge(s);
                future += f;
            }
            Err(e) => r.unavailable.push(missing(&file, &e)),
        }
    }
    future_note(path, future, &mut r.notes);
    span
}

/// Local civil seconds (as the error log writes them) in `zone` → Unix seconds; `shift` is
/// the zone's offset now, which places `civil` close enough to look up its own offset.
fn to_utc(civil: i64, shift: i64, zone: &TimeZone) -> i64 {
    let approx = civil - shift;
    let at = jiff::Timestamp::from_second(approx).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    civil - i64::from(zone.to_offset(at).seconds())
}

fn read_error_file(
    path: &Path,
    b: Bounds,
    shift: i64,
    zone: &TimeZone,
    out: &mut LogWindow,
) -> std::io::Result<(Span, u64)> {
    let mut file = File::open(path)?;
    let pos = seek_since(&mut file, b.start, &mut time::error_log_civil)?;
    file.seek(SeekFrom::Start(pos))?;
    let mut span = Span::default();
    let mut future = 0;
    out.bytes_read += for_each_line(&mut file, |line| {
        if line.is_empty() {
            return;
        }
        let Ok(parsed) = error_log::parse(line) else {
            out.malformed += 1;
            return;
        };
        if parsed.civil_time < b.start {
            return;
        }
        if parsed.civil_time > b.end_with_skew() {
            future += 1;
            return;
        }
        let utc = to_utc(parsed.civil_time, shift, zone);
        span.add(utc);
        if let Some(e) = event(&parsed, utc, line) {
            push_bounded(&mut out.errors, e);
        }
    })?;
    Ok((span, future))
}

fn event(parsed: &error_log::ErrorLine<'_>, utc: i64, line: &[u8]) -> Option<ErrorEvent> {
    let c = parsed.classify()?;
    let uri = parsed.request.map(|r| {
        let r = crate::parse::logs::access_log::Request::split(r);
        String::from_utf8_lossy(r.path()).into_owned()
    });
    Some(ErrorEvent {
        at_ms: ms(utc),
        level: format!("{:?}", parsed.level).to_lowercase(),
        class: c.class,
        errno: c.errno,
        upstream: parsed
            .upstream_addr()
            .map(|a| String::from_utf8_lossy(a).into_owned()),
        server: parsed
            .server
            .map(|s| String::from_utf8_lossy(s).into_owned()),
        uri,
        line: String::from_utf8_lossy(line).into_owned(),
    })
}

#[cfg(test)]
mod tests;
