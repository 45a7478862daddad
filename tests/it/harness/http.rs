//! A tiny HTTP/1.1 client over std's `TcpStream`/`UnixStream`: one request per connection
//! (`Connection: close`), read to EOF, every read and write under a timeout. Enough to see the
//! status code nginx or the backend sends; no chunked decoding, no redirects, no TLS.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// The default per-request timeout (connect, each read, each write).
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Status line and headers, as received.
    pub head: String,
    /// The raw body (chunked encoding is left as is).
    pub body: Vec<u8>,
}

/// `GET path` to 127.0.0.1:`port`.
pub fn get(port: u16, path: &str) -> io::Result<Response> {
    request(port, "GET", path, None, TIMEOUT)
}

/// `POST path` with `body` to 127.0.0.1:`port`.
pub fn post(port: u16, path: &str, body: &[u8]) -> io::Result<Response> {
    request(port, "POST", path, Some(body), TIMEOUT)
}

/// Any request to 127.0.0.1:`port`.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    timeout: Duration,
) -> io::Result<Response> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    exchange(stream, method, path, body)
}

/// `GET path` over the unix socket at `sock`.
pub fn get_uds(sock: &Path, path: &str, timeout: Duration) -> io::Result<Response> {
    let stream = UnixStream::connect(sock)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    exchange(stream, "GET", path, None)
}

fn exchange<S: Read + Write>(
    mut stream: S,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> io::Result<Response> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/octet-stream\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    stream.write_all(&bytes)?;
    stream.flush()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse(&raw)
}

/// Parses a raw HTTP/1.x response.
pub fn parse(raw: &[u8]) -> io::Result<Response> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    if raw.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed without a response",
        ));
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status code"))?;
    Ok(Response {
        status,
        head,
        body: raw[split + 4..].to_vec(),
    })
}

/// The status code, or 0 when the request failed at the transport level (shown in counts).
pub fn status_or_zero(r: &io::Result<Response>) -> u16 {
    r.as_ref().map(|r| r.status).unwrap_or(0)
}

#[test]
fn parses_a_status_line() {
    let r = parse(b"HTTP/1.1 502 Bad Gateway\r\nServer: nginx\r\n\r\n<html>").expect("parse");
    assert_eq!(r.status, 502);
    assert_eq!(r.body, b"<html>");
    assert!(parse(b"").is_err());
}
