//! A window of nginx's logs as plain, owned data: what `reflex diagnose` reads from the tail of
//! the error and access logs. The fast zero-copy parsers live in `crate::parse::logs`; the
//! window is small (minutes), so owning it costs nothing and keeps the rules simple.

use serde::Serialize;

pub use crate::parse::logs::error_log::UpstreamError;

/// One upstream failure from the error log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorEvent {
    /// Milliseconds since the epoch (the error log's local time, converted).
    pub at_ms: u64,
    /// `error`, `crit`, `warn`…
    pub level: String,
    #[serde(serialize_with = "class_str")]
    pub class: UpstreamError,
    pub errno: Option<u16>,
    /// The upstream address as `$upstream_addr` writes it: `127.0.0.1:8000`, `[::1]:8000`,
    /// `unix:/run/app.sock`, or a group name for `no live upstreams`.
    pub upstream: Option<String>,
    /// The line's `server:` (the server block's first `server_name`), when it has one.
    pub server: Option<String>,
    /// The request URI's path, when the line has a request.
    pub uri: Option<String>,
    /// The whole log line.
    pub line: String,
}

fn class_str<S: serde::Serializer>(c: &UpstreamError, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(c.as_str())
}

/// One attempt nginx made on an upstream for a request (`$upstream_*` lists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    pub addr: String,
    /// `None` when nginx logged `-` (no response).
    pub status: Option<u16>,
    /// Milliseconds; `Some(0)` on a reused keep-alive connection.
    pub connect_ms: Option<u32>,
    /// Milliseconds to the response header; `None` when none arrived.
    pub header_ms: Option<u32>,
}

/// One request from the access log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessEvent {
    pub at_ms: u64,
    /// The status the client got.
    pub status: u16,
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    pub request_ms: Option<u32>,
    /// Every upstream attempt, in order; empty when the format lacks `$upstream_*`.
    pub attempts: Vec<Attempt>,
    pub line: String,
}

/// The recent tail of nginx's logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LogWindow {
    /// The window, ms since the epoch.
    pub from_ms: u64,
    pub to_ms: u64,
    /// Upstream failures from the error logs, oldest first.
    pub errors: Vec<ErrorEvent>,
    /// Requests from the access logs, oldest first.
    pub requests: Vec<AccessEvent>,
    /// Whether the access log format has `$upstream_addr`/`$upstream_status` (the default
    /// `combined` has not: retried failures are then invisible in it).
    pub has_upstream_fields: bool,
    /// Lines that did not parse, counted and skipped.
    pub malformed: u64,
    /// The files read.
    pub sources: Vec<String>,
    /// Bytes read from them: the window, and a few probes of the binary search before it.
    pub bytes_read: u64,
}
