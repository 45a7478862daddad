//! HTTP/1.1 health probes straight to an upstream (TCP or unix socket) and through nginx, timed
//! to tell the kinds of 502/504 apart: refused / denied / missing / full-backlog connects,
//! connect timeouts (dropped SYNs), hung backends (no first byte), resets and non-HTTP answers.
//!
//! Blocking std sockets with timeouts, one thread per target, rather than tokio + hyper: the CLI
//! is synchronous, a probe needs only the status line (so no HTTP client is worth its build
//! time), and owning the socket calls gives the exact errno of `connect()` (nginx's own error
//! numbers: 111, 13, 2, 11) and exact connect / first-byte times. Unix sockets are connected
//! non-blocking, as nginx does, so a full backlog fails at once with EAGAIN (11) instead of
//! waiting.
//!
//! This module reports what happened; it does not judge it.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::model::evidence::{Probe, ProbeOutcome};
use crate::model::nginx::Addr;

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl Endpoint {
    /// Every endpoint an nginx address stands for (a host name may resolve to several, as
    /// `localhost` does to `::1` and `127.0.0.1`).
    pub fn from_addr(addr: &Addr) -> io::Result<Vec<Endpoint>> {
        match addr {
            Addr::Unix(p) => Ok(vec![Endpoint::Unix(p.clone())]),
            Addr::Host { host, port } => Ok((host.as_str(), *port)
                .to_socket_addrs()?
                .map(Endpoint::Tcp)
                .collect()),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp(a) => write!(f, "{a}"),
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// One probe to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub endpoint: Endpoint,
    /// Whether `endpoint` is nginx (the probe goes through it, as a client's request would).
    pub via_nginx: bool,
    /// The request path, e.g. `/health`.
    pub path: String,
    /// The `Host` header; `localhost` when `None`.
    pub host: Option<String>,
}

impl Request {
    /// A probe of `path` straight at an upstream.
    pub fn upstream(endpoint: Endpoint, path: &str) -> Self {
        Request {
            endpoint,
            via_nginx: false,
            path: path.into(),
            host: None,
        }
    }
    /// A probe of `path` through nginx listening at `addr`.
    pub fn nginx(addr: SocketAddr, path: &str) -> Self {
        Request {
            endpoint: Endpoint::Tcp(addr),
            via_nginx: true,
            path: path.into(),
            host: None,
        }
    }
}

/// Runs every probe at once (one thread each), so a set of probes takes about one `timeout`.
pub fn probe_all(requests: &[Request], timeout: Duration) -> Vec<Probe> {
    std::thread::scope(|s| {
        let handles: Vec<_> = requests
            .iter()
            .map(|r| s.spawn(move || probe(r, timeout)))
            .collect();
        handles
            .into_iter()
            .zip(requests)
            .map(|(h, r)| {
                h.join()
                    .unwrap_or_else(|_| record(r, timeout, garbage(0.0, 0.0, b"probe panicked")))
            })
            .collect()
    })
}

/// Sends `GET path` and waits for the status line; the whole probe is bounded by `timeout`.
/// Times are measured from the start of `connect()`: `connect_ms` when it completed,
/// `first_byte_ms` when the first response byte arrived (cumulative, like curl's
/// `time_connect` and `time_starttransfer`).
pub fn probe(request: &Request, timeout: Duration) -> Probe {
    record(request, timeout, run(request, timeout))
}

fn record(r: &Request, timeout: Duration, outcome: ProbeOutcome) -> Probe {
    let target = match (&r.endpoint, r.via_nginx) {
        (Endpoint::Tcp(a), true) => format!("nginx http://{a}"),
        (e, _) => e.to_string(),
    };
    Probe {
        target,
        via_nginx: r.via_nginx,
        path: r.path.clone(),
        timeout_ms: timeout.as_millis() as u64,
        outcome,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A connected stream of either kind.
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn set_read_timeout(&self, t: Duration) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(Some(t)),
            Stream::Unix(s) => s.set_read_timeout(Some(t)),
        }
    }
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(b),
            Stream::Unix(s) => s.write_all(b),
        }
    }
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(b),
            Stream::Unix(s) => s.read(b),
        }
    }
}

fn connect(endpoint: &Endpoint, timeout: Duration) -> io::Result<Stream> {
    match endpoint {
        Endpoint::Tcp(a) => TcpStream::connect_timeout(a, timeout).map(Stream::Tcp),
        Endpoint::Unix(path) => {
            // Non-blocking like nginx: a full backlog is EAGAIN now, not a wait. A unix stream
            // connect never returns EINPROGRESS, so success here means connected.
            use socket2::{Domain, SockAddr, Socket, Type};
            let s = Socket::new(Domain::UNIX, Type::STREAM, None)?;
            s.set_nonblocking(true)?;
            s.connect(&SockAddr::unix(path)?)?;
            s.set_nonblocking(false)?;
            Ok(Stream::Unix(s.into()))
        }
    }
}

fn run(r: &Request, timeout: Duration) -> ProbeOutcome {
    let start = Instant::now();
    let mut stream = match connect(&r.endpoint, timeout) {
        Ok(s) => s,
        Err(e) => {
            let after_ms = ms(start.elapsed());
            return match e.raw_os_error() {
                // ETIMEDOUT from the kernel, or std's own timeout (no errno).
                Some(110) | None if e.kind() == io::ErrorKind::TimedOut => {
                    ProbeOutcome::ConnectTimeout { after_ms }
                }
                errno => ProbeOutcome::ConnectFailed {
                    errno: errno.unwrap_or(0),
                    message: strerror(&e),
                    after_ms,
                },
            };
        }
    };
    let connect_ms = ms(start.elapsed());
    let host = r.host.as_deref().unwrap_or("localhost");
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: reflex-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        r.path
    );
    if let Err(e) = stream.write_all(req.as_bytes()) {
        let reset = is_reset(&e);
        return ProbeOutcome::Closed {
            connect_ms,
            after_ms: ms(start.elapsed()),
            reset,
        };
    }
    read_status(&mut stream, start, timeout, connect_ms)
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

/// Reads until the status line is complete (or it cannot be HTTP), within the deadline.
fn read_status(s: &mut Stream, start: Instant, timeout: Duration, connect_ms: f64) -> ProbeOutcome {
    let mut got: Vec<u8> = Vec::new();
    let mut first_byte_ms = None;
    let mut buf = [0u8; 1024];
    loop {
        let Some(left) = timeout
            .checked_sub(start.elapsed())
            .filter(|l| !l.is_zero())
        else {
            return ProbeOutcome::ReadTimeout {
                connect_ms,
                after_ms: ms(start.elapsed()),
            };
        };
        if let Err(e) = s.set_read_timeout(left) {
            return ProbeOutcome::Closed {
                connect_ms,
                after_ms: ms(start.elapsed()),
                reset: is_reset(&e),
            };
        }
        let after_ms = || ms(start.elapsed());
        match s.read(&mut buf) {
            Ok(0) if got.is_empty() => {
                return ProbeOutcome::Closed {
                    connect_ms,
                    after_ms: after_ms(),
                    reset: false,
                };
            }
            Ok(0) => return garbage(connect_ms, after_ms(), &got),
            Ok(n) => {
                first_byte_ms.get_or_insert_with(after_ms);
                got.extend_from_slice(&buf[..n]);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return ProbeOutcome::ReadTimeout {
                    connect_ms,
                    after_ms: after_ms(),
                };
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if got.is_empty() => {
                return ProbeOutcome::Closed {
                    connect_ms,
                    after_ms: after_ms(),
                    reset: is_reset(&e),
                };
            }
            Err(_) => return garbage(connect_ms, after_ms(), &got),
        }
        match parse_status(&got) {
            Status::Done(status) => {
                let first_byte_ms = first_byte_ms.unwrap_or_else(after_ms);
                return ProbeOutcome::Response {
                    status,
                    connect_ms,
                    first_byte_ms,
                };
            }
            Status::NotHttp => return garbage(connect_ms, after_ms(), &got),
            Status::Partial if got.len() > 4096 => return garbage(connect_ms, after_ms(), &got),
            Status::Partial => {}
        }
    }
}

fn garbage(connect_ms: f64, after_ms: f64, bytes: &[u8]) -> ProbeOutcome {
    ProbeOutcome::Garbage {
        connect_ms,
        after_ms,
        first_bytes: escape(&bytes[..bytes.len().min(32)]),
    }
}

/// Printable ASCII as is, everything else as `\xNN` (a TLS alert is `\x15\x03\x01…`).
fn escape(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                (b as char).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect()
}

/// How far a response's first bytes go towards a status line.
#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    /// `HTTP/1.x NNN` was read.
    Done(u16),
    /// So far consistent with a status line.
    Partial,
    /// Cannot be an HTTP/1 response.
    NotHttp,
}

/// Reads the status code from the start of a response (`HTTP/1.1 200 OK\r\n…`).
pub fn parse_status(bytes: &[u8]) -> Status {
    const PREFIX: &[u8] = b"HTTP/";
    let n = bytes.len().min(PREFIX.len());
    if bytes[..n] != PREFIX[..n] {
        return Status::NotHttp;
    }
    // `HTTP/1.1 200` is 12 bytes; the code is followed by a space or CRLF.
    let Some(rest) = bytes.get(PREFIX.len()..) else {
        return Status::Partial;
    };
    let Some(sp) = rest.iter().position(|&b| b == b' ') else {
        return if rest.len() > 8 || rest.contains(&b'\n') {
            Status::NotHttp
        } else {
            Status::Partial
        };
    };
    let code = &rest[sp + 1..];
    if code.len() < 3 {
        return Status::Partial;
    }
    match std::str::from_utf8(&code[..3])
        .ok()
        .and_then(|c| c.parse().ok())
    {
        Some(c) if code[..3].iter().all(u8::is_ascii_digit) => Status::Done(c),
        _ => Status::NotHttp,
    }
}

/// The OS's words for an error, without std's ` (os error N)`: nginx's `(111: Connection
/// refused)` is what readers compare with.
fn strerror(e: &io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(n) => text
            .strip_suffix(&format!(" (os error {n})"))
            .unwrap_or(&text)
            .to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        let cases: &[(&[u8], Status)] = &[
            (b"HTTP/1.1 200 OK\r\n", Status::Done(200)),
            (b"HTTP/1.0 502 Bad Gateway\r\n", Status::Done(502)),
            (b"HTTP/1.1 204", Status::Done(204)),
            (b"HTTP/1.1 20", Status::Partial),
            (b"HTT", Status::Partial),
            (b"HTTP/1.1", Status::Partial),
            (b"\x15\x03\x01\x00\x02\x02\x46", Status::NotHttp),
            (b"SSH-2.0-OpenSSH", Status::NotHttp),
            (b"HTTP/1.1 abc", Status::NotHttp),
        ];
        for (bytes, want) in cases {
            assert_eq!(parse_status(bytes), *want, "{}", escape(bytes));
        }
        assert_eq!(escape(b"\x15\x03A b"), "\\x15\\x03A b");
    }

    #[test]
    fn probes_a_tiny_server_and_a_closed_port() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            for body in [
                &b"HTTP/1.1 503 Busy\r\n\r\n"[..],
                b"\x15\x03\x01\x00\x02\x02\x46",
                b"",
            ] {
                let (mut c, _) = l.accept().expect("accept");
                let mut req = [0u8; 512];
                let _ = c.read(&mut req);
                let _ = c.write_all(body);
            }
        });
        let t = Duration::from_secs(2);
        let r = Request::upstream(Endpoint::Tcp(addr), "/health");
        assert!(matches!(
            probe(&r, t).outcome,
            ProbeOutcome::Response { status: 503, .. }
        ));
        assert!(matches!(probe(&r, t).outcome, ProbeOutcome::Garbage { .. }));
        assert!(matches!(
            probe(&r, t).outcome,
            ProbeOutcome::Closed { reset: false, .. }
        ));
        server.join().expect("server");
        let missing = Request::upstream(Endpoint::Unix("/nonexistent/x.sock".into()), "/");
        assert!(matches!(
            probe(&missing, t).outcome,
            ProbeOutcome::ConnectFailed { errno: 2, .. }
        ));
    }
}
