//! `reflex logs`: a fast summary of nginx access and error logs.
//!
//! Each file is detected as an error log (its first line parses as one) or an access log. An
//! access log's format is, in order: `--log-format NAME`; the format its `access_log`
//! directive names in the configuration; else whichever known format (`combined` and every
//! `log_format` of the configuration) matches most of its first lines. Without files, the
//! logs are the configuration's `access_log`/`error_log` paths (relative paths are taken
//! relative to the configuration file's directory; nginx would use its prefix).
//!
//! With `--since D` only the last D of each file is read: the window's start is found by
//! binary search on timestamps (error-log times are local time, converted with this host's
//! current UTC offset).
//!
//! JSON output (`--format json`), stable; counts are integers, times milliseconds:
//!
//! ```text
//! { "since_seconds": u64|null,
//!   "files": [{"path", "kind": "access"|"error"|"empty", "format": name|null,
//!              "start_offset", "bytes_read", "lines", "malformed"}],
//!   "access": {"requests", "status_5xx", "status_502", "status_504", "malformed",
//!              "skipped_before_window", "without_upstream",
//!              "upstreams": [{"addr", "attempts", "status_5xx", "status_502", "status_504"}],
//!              "minutes": [{"minute": RFC 3339 UTC, "requests", "status_5xx", "status_502",
//!                           "status_504"}],
//!              "minutes_dropped",
//!              "slowest": [{"uri", "max_request_time_ms", "at": RFC 3339|null}],
//!              "failing": [{"uri", "status_5xx", "status_502", "status_504", "overcount"}]},
//!   "errors": {"lines", "malformed", "unclassified",
//!              "unclassified_top": [{"shape", "count", "example"}], "unclassified_other",
//!              "classes": {class: count},
//!              "upstreams": [{"addr", "classes": {class: count}}]},
//!   "caps": {"uris_tracked", "slowest", "upstreams", "minutes"} }
//! ```
//!
//! Per-upstream access counts are per attempt (`$upstream_addr` item) by that attempt's
//! `$upstream_status`, so a retried `502, 200` counts a 502 against the first server. URIs are
//! paths (query strings dropped). Exit codes: 0 ok, 2 error.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, bail};
use serde::Serialize;

use crate::gather::logs::{for_each_line, sample, seek_since};
use crate::parse::logs::access_log::{AccessFormat, Var};
use crate::parse::logs::error_log;
use crate::parse::logs::summary::{self, AccessFeeder, AccessSummary, Counts, ErrorSummary};
use crate::parse::logs::time::error_log_civil;

mod output;

/// Flags of `reflex logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Access or error log files (the kind is detected per file). Default: the logs named in
    /// the nginx configuration.
    pub files: Vec<PathBuf>,
    /// The nginx configuration: its `log_format`s and, without FILEs, its log paths.
    /// Default: /etc/nginx/nginx.conf.
    #[arg(long, value_name = "PATH")]
    pub nginx_conf: Option<PathBuf>,
    /// The `log_format` of the access logs (`combined`, or a name from the configuration).
    #[arg(long, value_name = "NAME")]
    pub log_format: Option<String>,
    /// Only the last D of each file, e.g. `15m`, `2h`, `1h30m`.
    #[arg(long, value_name = "D")]
    pub since: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = LogsFormat::Text)]
    pub format: LogsFormat,
}

/// Output formats of `reflex logs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogsFormat {
    Text,
    Json,
}

/// What was read from one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub path: PathBuf,
    pub kind: &'static str,
    pub format: Option<String>,
    pub start_offset: u64,
    pub bytes_read: u64,
    pub lines: u64,
    pub malformed: u64,
}

/// Everything the output needs.
pub struct Report {
    pub since: Option<u64>,
    pub files: Vec<FileReport>,
    pub access: AccessSummary,
    pub errors: ErrorSummary,
    pub elapsed: std::time::Duration,
}

/// Known formats and the config's log paths.
#[derive(Default)]
struct Known {
    formats: Vec<(String, AccessFormat)>,
    /// access_log path → format name.
    access: Vec<(PathBuf, String)>,
    errors: Vec<PathBuf>,
}

pub fn run(args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let known = known(args)?;
    let files: Vec<PathBuf> = if args.files.is_empty() {
        let mut v: Vec<PathBuf> = known.access.iter().map(|(p, _)| p.clone()).collect();
        v.extend(known.errors.iter().cloned());
        v.dedup();
        if v.is_empty() {
            bail!("no log files given and none found in the nginx configuration");
        }
        v
    } else {
        args.files.clone()
    };
    let window = since.map(Window::new).transpose()?;
    let mut report = Report {
        since: since.map(|d| d.as_secs().unsigned_abs()),
        files: Vec::new(),
        access: AccessSummary::default(),
        errors: ErrorSummary::default(),
        elapsed: Default::default(),
    };
    for path in &files {
        let f = summarise(path, args, &known, window.as_ref(), &mut report)
            .with_context(|| format!("`{}`", path.display()))?;
        report.files.push(f);
    }
    report.elapsed = started.elapsed();
    match args.format {
        LogsFormat::Text => print!("{}", output::text(&report)),
        LogsFormat::Json => println!("{}", serde_json::to_string_pretty(&output::json(&report))?),
    }
    Ok(ExitCode::SUCCESS)
}

/// `--since` in nginx's time syntax (`15m`, `2h`, `1h30m`, `1d`), as `diagnose` reads it.
fn parse_since(s: &str) -> anyhow::Result<jiff::SignedDuration> {
    let d = crate::model::nginx::parse_time(s).with_context(|| {
        format!("--since `{s}`: expected a duration such as 15m, 2h, 1h30m, 1d")
    })?;
    jiff::SignedDuration::try_from(d).with_context(|| format!("--since `{s}` is too long"))
}

/// The `--since` cutoff: as Unix seconds, and as the local civil seconds error logs use.
struct Window {
    utc: i64,
    civil: i64,
}

impl Window {
    fn new(d: jiff::SignedDuration) -> anyhow::Result<Window> {
        let now = jiff::Timestamp::now();
        let cutoff = now.checked_sub(d).context("--since is too far back")?;
        let offset = jiff::tz::TimeZone::system().to_offset(now);
        Ok(Window {
            utc: cutoff.as_second(),
            civil: cutoff.as_second() + i64::from(offset.seconds()),
        })
    }
}

/// Loads the configuration when it is needed or available: `--nginx-conf` must load; the
/// default /etc/nginx/nginx.conf is optional unless no files were given.
fn known(args: &LogsArgs) -> anyhow::Result<Known> {
    let mut k = Known {
        formats: vec![("combined".to_string(), AccessFormat::combined())],
        ..Known::default()
    };
    let (path, required) = match &args.nginx_conf {
        Some(p) => (p.clone(), true),
        None => (
            PathBuf::from(crate::gather::nginx_proc::DEFAULT_CONF),
            args.files.is_empty() || args.log_format.as_deref().is_some_and(|n| n != "combined"),
        ),
    };
    let tree = match crate::gather::nginx_conf::load(&path) {
        Ok(t) => t,
        Err(e) if required => return Err(e).context("loading the nginx configuration"),
        Err(_) => return Ok(k),
    };
    let model = crate::model::nginx::NginxModel::build(&tree);
    for f in &model.log_formats {
        let compiled = AccessFormat::compile_named(&f.format, &f.escape)
            .with_context(|| format!("log_format `{}`", f.name))?;
        k.formats.retain(|(n, _)| *n != f.name);
        k.formats.push((f.name.clone(), compiled));
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    let usable =
        |p: &str| p != "off" && !p.starts_with("syslog:") && p != "stderr" && !p.contains('$');
    for t in model.access_logs.iter().filter(|t| usable(&t.path)) {
        k.access
            .push((dir.join(&t.path), t.format_or_level.clone()));
    }
    for t in model.error_logs.iter().filter(|t| usable(&t.path)) {
        k.errors.push(dir.join(&t.path));
    }
    Ok(k)
}

/// Lines sampled from the start of a file to tell its kind and format.
pub(super) const SAMPLE_BYTES: usize = 64 << 10;
const SAMPLE_LINES: usize = 32;

fn summarise(
    path: &Path,
    args: &LogsArgs,
    known: &Known,
    window: Option<&Window>,
    report: &mut Report,
) -> anyhow::Result<FileReport> {
    let mut file = File::open(path).context("cannot open")?;
    let head = sample(&mut file, 0, SAMPLE_BYTES).context("cannot read")?;
    let mut out = FileReport {
        path: path.to_path_buf(),
        kind: "empty",
        format: None,
        start_offset: 0,
        bytes_read: 0,
        lines: 0,
        malformed: 0,
    };
    let Some(first) = head.split(|&b| b == b'\n').find(|l| !l.is_empty()) else {
        return Ok(out);
    };
    if error_log::parse(first).is_ok() {
        out.kind = "error";
        let errs = &mut report.errors;
        let (lines0, bad0) = (errs.lines + errs.skipped_before, errs.malformed);
        if let Some(w) = window {
            out.start_offset = seek_since(&mut file, w.civil, error_log_civil)?;
        }
        file.seek(SeekFrom::Start(out.start_offset))?;
        let civil = window.map(|w| w.civil);
        out.bytes_read = for_each_line(&mut file, |l| {
            if !l.is_empty() {
                errs.feed(l, civil)
            }
        })?;
        out.lines = errs.lines + errs.skipped_before - lines0;
        out.malformed = errs.malformed - bad0;
        return Ok(out);
    }
    out.kind = "access";
    let (name, format) = choose_format(path, args, known, &head)?;
    out.format = Some(name.to_string());
    if let Some(w) = window {
        let mut spans = Vec::new();
        let n = [Var::TimeLocal, Var::TimeIso8601]
            .iter()
            .filter_map(|v| format.index_of(*v))
            .max();
        if let Some(n) = n {
            out.start_offset = seek_since(&mut file, w.utc, |l| {
                format.parse_prefix(l, &mut spans, n + 1).ok()?.time()
            })?;
        } else {
            eprintln!(
                "warning: {}: format `{name}` has no $time_local: reading the whole file",
                path.display()
            );
        }
    }
    file.seek(SeekFrom::Start(out.start_offset))?;
    let acc = &mut report.access;
    let before = (acc.total.requests + acc.skipped_before, acc.malformed);
    let mut feeder = AccessFeeder::new(format, window.map(|w| w.utc));
    out.bytes_read = for_each_line(&mut file, |l| {
        if !l.is_empty() {
            feeder.feed(acc, l)
        }
    })?;
    out.malformed = acc.malformed - before.1;
    out.lines = acc.total.requests + acc.skipped_before - before.0 + out.malformed;
    Ok(out)
}

/// The access log's format: `--log-format`, the config's `access_log` for this path, or the
/// known format that matches most sample lines (ties: the one with more fields).
fn choose_format<'k>(
    path: &Path,
    args: &LogsArgs,
    known: &'k Known,
    head: &[u8],
) -> anyhow::Result<(&'k str, &'k AccessFormat)> {
    let find = |name: &str| {
        known
            .formats
            .iter()
            .find(|(n, _)| n == name)
            .map(|(n, f)| (n.as_str(), f))
    };
    if let Some(name) = &args.log_format {
        return find(name).with_context(|| {
            let names: Vec<&str> = known.formats.iter().map(|(n, _)| n.as_str()).collect();
            format!("no log_format `{name}` (known: {})", names.join(", "))
        });
    }
    if let Some((_, name)) = known.access.iter().find(|(p, _)| p == path)
        && let Some(f) = find(name)
    {
        return Ok(f);
    }
    match best_format(&known.formats, head) {
        Some(i) => {
            let (n, f) = &known.formats[i];
            Ok((n.as_str(), f))
        }
        None => {
            eprintln!(
                "warning: {}: no known log_format matches its first lines; reading it as \
                 `combined` (use --log-format, or --nginx-conf for the configuration's formats)",
                path.display()
            );
            Ok(find("combined").unwrap_or_else(|| unreachable!("combined is always known")))
        }
    }
}

/// The index of the format among `formats` that matches most of the first lines of `head`
/// (ties: the one with more fields, then the first); `None` when none matches any.
pub(super) fn best_format(formats: &[(String, AccessFormat)], head: &[u8]) -> Option<usize> {
    let lines: Vec<&[u8]> = head
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .take(SAMPLE_LINES)
        .collect();
    let mut spans = Vec::new();
    let mut best: Option<(usize, usize, usize)> = None; // (matches, fields, MAX - index)
    for (i, (_, f)) in formats.iter().enumerate() {
        let m = lines
            .iter()
            .filter(|l| f.parse(l, &mut spans).is_ok())
            .count();
        let cand = (m, f.len(), usize::MAX - i);
        if m > 0 && best.is_none_or(|b| cand > b) {
            best = Some(cand);
        }
    }
    best.map(|(_, _, i)| usize::MAX - i)
}

/// Request counts as JSON fields.
#[derive(Debug, Clone, Copy, Serialize)]
struct CountsJson {
    status_5xx: u64,
    status_502: u64,
    status_504: u64,
}

impl From<Counts> for CountsJson {
    fn from(c: Counts) -> Self {
        CountsJson {
            status_5xx: c.s5xx,
            status_502: c.s502,
            status_504: c.s504,
        }
    }
}

fn classes_json(
    it: impl Iterator<Item = (error_log::UpstreamError, u64)>,
) -> BTreeMap<&'static str, u64> {
    it.map(|(c, n)| (c.as_str(), n)).collect()
}

fn caps() -> serde_json::Value {
    serde_json::json!({
        "uris_tracked": summary::URI_CAP,
        "slowest": summary::SLOWEST,
        "upstreams": summary::UPSTREAM_CAP,
        "minutes": summary::MINUTE_CAP,
        "unclassified_shapes": summary::UNCLASSIFIED_CAP,
    })
}
