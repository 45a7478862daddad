//! The tail of an application log file (`--app-log FILE`), as [`AppLogLine`]s.
//!
//! Owns reading a bounded window from the end of a file and reading the timestamps that
//! gunicorn and Python's `logging` put at the start of a line. It never reads a whole file:
//! logs of long-running apps grow to gigabytes, and diagnosis only needs the last minutes.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use crate::model::evidence::{AppLogLine, Fact};

/// At most this many undated lines are kept from the end of a log whose lines carry no time
/// (uvicorn's default format): they are the newest, but how new is unknowable.
pub const UNDATED_TAIL: usize = 500;

/// When `path` was last written, in ms since the epoch.
pub fn modified_ms(path: &Path) -> Option<u64> {
    let t = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64)
}

/// Reads at most the last `max_bytes` of `path` and returns its complete lines, oldest first.
///
/// With `since_ms`, lines older than it are dropped (see [`in_window`]; the file's mtime bounds
/// the age of lines without a time).
pub fn read_tail(path: &Path, since_ms: Option<u64>, max_bytes: u64) -> Fact<Vec<AppLogLine>> {
    let what = format!("application log {}", path.display());
    match read_window(path, max_bytes) {
        Ok(bytes) => Fact::Known(in_window(parse_lines(&bytes), since_ms, modified_ms(path))),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Fact::unavailable(
            &what,
            "permission denied",
            "run as root or as a user who can read the log file",
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Fact::unavailable(&what, "no such file", "check the --app-log path")
        }
        Err(e) => Fact::unavailable(&what, e.to_string(), "check the --app-log path"),
    }
}

/// The last `max_bytes` of the file, starting at a line boundary (the partial first line of the
/// window is dropped unless the window starts at the beginning of the file).
fn read_window(path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(max_bytes);
    file.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity(usize::try_from(len - start).unwrap_or(0));
    file.by_ref().take(max_bytes).read_to_end(&mut buf)?;
    if start > 0 {
        // Whether the byte before the window ends a line decides if the first line is whole.
        let mut before = [0u8; 1];
        file.seek(SeekFrom::Start(start - 1))?;
        file.read_exact(&mut before)?;
        if before[0] != b'\n' {
            let cut = memchr::memchr(b'\n', &buf).map_or(buf.len(), |i| i + 1);
            buf.drain(..cut);
        }
    }
    Ok(buf)
}

/// Splits `bytes` into lines (invalid UTF-8 replaced, `\r\n` and a trailing partial line
/// kept as text) and reads each line's timestamp.
pub fn parse_lines(bytes: &[u8]) -> Vec<AppLogLine> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let text = String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l)).into_owned();
            AppLogLine {
                at_ms: line_timestamp_ms(&text),
                text,
            }
        })
        .collect()
}

/// The lines of the window. A line without a time of its own (a traceback line, or uvicorn's
/// default format) is judged by the last time above it. Lines with no time above them at all:
/// when the file was last written before the window (`modified_ms`), none of it is in the
/// window; otherwise only the last [`UNDATED_TAIL`] are kept, still undated (`at_ms: None`), so
/// rules can ask for corroboration. A log file is not rewritten, so its mtime is the time of its
/// newest line.
pub fn in_window(
    lines: Vec<AppLogLine>,
    since_ms: Option<u64>,
    modified_ms: Option<u64>,
) -> Vec<AppLogLine> {
    let Some(since) = since_ms else { return lines };
    if modified_ms.is_some_and(|m| m < since) {
        return Vec::new();
    }
    // Lines before the first dated one are undated (their age is unknown): keep their tail.
    let undated = lines.iter().take_while(|l| l.at_ms.is_none()).count();
    let mut last = None;
    lines
        .into_iter()
        .skip(undated.saturating_sub(UNDATED_TAIL))
        .filter(|l| {
            last = l.at_ms.or(last);
            last.is_none_or(|t| t >= since)
        })
        .collect()
}

/// The time at the start of a log line, in ms since the epoch, for the formats the Python
/// servers write:
/// - gunicorn's `[2024-01-02 03:04:05 +0000] [PID] [LEVEL] msg` (its `%(asctime)s` with
///   `datefmt="[%Y-%m-%d %H:%M:%S %z]"`, gunicorn/glogging.py);
/// - Python logging's default `2024-01-02 03:04:05,123 ...` (`asctime` has no zone: local time).
///
/// uvicorn's default format (`INFO:     Started server process [1]`) has no timestamp: `None`.
pub fn line_timestamp_ms(line: &str) -> Option<u64> {
    let b = line.as_bytes();
    if b.first() == Some(&b'[') {
        let dt = civil(b.get(1..20)?)?;
        let offset = offset(b.get(20..26)?)?;
        let ts = offset.to_timestamp(dt).ok()?;
        return u64::try_from(ts.as_millisecond()).ok();
    }
    let dt = civil(b.get(..19)?)?;
    let ms = match (b.get(19), b.get(20..23)) {
        (Some(b',' | b'.'), Some(frac)) => i32::try_from(digits(frac)?).ok()?,
        _ => 0,
    };
    let dt = dt.with().subsec_nanosecond(ms * 1_000_000).build().ok()?;
    let ts = jiff::tz::TimeZone::system().to_timestamp(dt).ok()?;
    u64::try_from(ts.as_millisecond()).ok()
}

/// `YYYY-MM-DD HH:MM:SS`, fixed width.
fn civil(b: &[u8]) -> Option<jiff::civil::DateTime> {
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| digits(&b[r]);
    jiff::civil::DateTime::new(
        i16::try_from(n(0..4)?).ok()?,
        i8::try_from(n(5..7)?).ok()?,
        i8::try_from(n(8..10)?).ok()?,
        i8::try_from(n(11..13)?).ok()?,
        i8::try_from(n(14..16)?).ok()?,
        i8::try_from(n(17..19)?).ok()?,
        0,
    )
    .ok()
}

/// ` +0000` / ` -0530`.
fn offset(b: &[u8]) -> Option<jiff::tz::Offset> {
    let (sign, hh, mm) = match b {
        [b' ', s @ (b'+' | b'-'), rest @ ..] if rest.len() == 4 => (
            if *s == b'-' { -1 } else { 1 },
            digits(&rest[..2])?,
            digits(&rest[2..])?,
        ),
        _ => return None,
    };
    let secs = i32::try_from(hh * 3600 + mm * 60).ok()?;
    jiff::tz::Offset::from_seconds(sign * secs).ok()
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gunicorn_timestamps() {
        // Real gunicorn 23 lines.
        let cases = [
            (
                "[2024-01-02 03:04:05 +0000] [4242] [INFO] Starting gunicorn 23.0.0",
                Some(1_704_164_645_000),
            ),
            (
                "[2024-01-02 04:04:05 +0100] [4242] [INFO] Listening at: http://127.0.0.1:8000 (4242)",
                Some(1_704_164_645_000),
            ),
            (
                "[2024-01-01 22:34:05 -0430] [4243] [CRITICAL] WORKER TIMEOUT (pid:4244)",
                Some(1_704_164_645_000),
            ),
            ("INFO:     Started server process [4242]", None),
            (
                "INFO:     127.0.0.1:50312 - \"GET / HTTP/1.1\" 200 OK",
                None,
            ),
            ("Traceback (most recent call last):", None),
            ("[2024-13-02 03:04:05 +0000] [1] [INFO] bad month", None),
            ("[", None),
            ("", None),
        ];
        for (line, want) in cases {
            assert_eq!(line_timestamp_ms(line), want, "{line}");
        }
    }

    #[test]
    fn python_logging_timestamp_is_local_time() {
        let local = jiff::tz::TimeZone::system()
            .to_timestamp(jiff::civil::date(2024, 1, 2).at(3, 4, 5, 123_000_000))
            .map(|t| t.as_millisecond());
        let got = line_timestamp_ms("2024-01-02 03:04:05,123 INFO app: ready");
        assert_eq!(got.map(|t| t as i64), local.ok());
    }

    fn log(dir: &Path, text: &[u8]) -> std::path::PathBuf {
        let path = dir.join("app.log");
        std::fs::write(&path, text).expect("write log");
        path
    }

    #[test]
    fn reads_only_the_tail_window_from_a_line_boundary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut text = Vec::new();
        for i in 0..1000 {
            text.extend_from_slice(format!("INFO:     line {i:04}\n").as_bytes());
        }
        let path = log(dir.path(), &text);
        let Fact::Known(lines) = read_tail(&path, None, 50) else {
            panic!("unavailable")
        };
        // 20 bytes per line: 50 bytes hold 2.5 lines; the partial one is dropped.
        let texts: Vec<_> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["INFO:     line 0998", "INFO:     line 0999"]);
        let Fact::Known(lines) = read_tail(&path, None, 40) else {
            panic!("unavailable")
        };
        assert_eq!(
            lines.len(),
            2,
            "a window starting exactly at a line keeps that line"
        );
        let Fact::Known(all) = read_tail(&path, None, 1 << 20) else {
            panic!("unavailable")
        };
        assert_eq!(all.len(), 1000);
    }

    #[test]
    fn since_filters_by_own_or_previous_timestamp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = log(
            dir.path(),
            b"[2024-01-02 03:04:00 +0000] [1] [ERROR] old\nold traceback\n\
              [2024-01-02 03:04:05 +0000] [1] [ERROR] new\r\nnew traceback\n\xffpartial",
        );
        let Fact::Known(lines) = read_tail(&path, Some(1_704_164_645_000), 4096) else {
            panic!("unavailable")
        };
        let texts: Vec<_> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "[2024-01-02 03:04:05 +0000] [1] [ERROR] new",
                "new traceback",
                "\u{fffd}partial"
            ]
        );
        assert_eq!(lines[1].at_ms, None);
    }

    #[test]
    fn undated_lines_of_a_file_untouched_since_the_window_are_none_of_it() {
        // uvicorn's default format: no time on any line (the audit's 3-day-old
        // `Exceeded concurrency limit.`).
        let lines = || {
            parse_lines(b"INFO:     Started server process [999]\nWARNING:  Exceeded concurrency limit.\nINFO:     Shutting down\n")
        };
        let since = 1_000_000_000;
        assert!(in_window(lines(), Some(since), Some(since - 3 * 86_400_000)).is_empty());
        let kept = in_window(lines(), Some(since), Some(since + 10));
        assert_eq!(kept.len(), 3, "written inside the window: kept, undated");
        assert!(kept.iter().all(|l| l.at_ms.is_none()));
        let many: Vec<AppLogLine> = (0..UNDATED_TAIL + 50)
            .map(|i| AppLogLine {
                at_ms: None,
                text: format!("INFO:     line {i}"),
            })
            .collect();
        let kept = in_window(many, Some(since), Some(since + 10));
        assert_eq!(kept.len(), UNDATED_TAIL, "a bounded tail");
        assert_eq!(kept[0].text, "INFO:     line 50");
    }

    #[test]
    fn an_old_file_reads_as_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = log(dir.path(), b"WARNING:  Exceeded concurrency limit.\n");
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3 * 86_400);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(old))
            .expect("set mtime");
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let Fact::Known(lines) = read_tail(&path, Some(now_ms - 900_000), 4096) else {
            panic!("unavailable")
        };
        assert!(lines.is_empty(), "{lines:?}");
    }

    #[test]
    fn missing_file_is_unavailable() {
        let got = read_tail(Path::new("/nonexistent/reflex/app.log"), None, 10);
        assert!(
            matches!(got, Fact::Unavailable(ref u) if u.why == "no such file"),
            "{got:?}"
        );
    }
}
