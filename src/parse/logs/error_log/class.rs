//! Classifies an error-log message into the upstream failure it reports. The phrases are
//! nginx's own (`ngx_http_upstream.c`, `ngx_event_connect.c`, `ngx_event_openssl.c`); which
//! cause each points to is KNOWLEDGE.md §1.

use memchr::memmem;

/// An upstream failure, as nginx reports it in the error log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UpstreamError {
    /// `connect() failed (111: Connection refused) while connecting to upstream`: nothing
    /// listens on the TCP address. 502.
    ConnectRefused,
    /// `connect() failed (N: …)` with another errno (e.g. 101 network unreachable, 113 no
    /// route to host, 99 cannot assign requested address). 502.
    ConnectFailed,
    /// `connect() to unix:PATH failed (111: Connection refused)`: a stale socket file. 502.
    UnixConnectRefused,
    /// `connect() to unix:PATH failed (13: Permission denied)` at `[crit]`: the socket's mode,
    /// or a directory on its path, shuts out nginx's worker user. 502.
    UnixPermissionDenied,
    /// `connect() to unix:PATH failed (2: No such file or directory)` at `[crit]`. 502.
    UnixNoSuchFile,
    /// `connect() to unix:PATH failed (11: Resource temporarily unavailable)`: the unix
    /// listen backlog is full. 502 at once.
    UnixBacklogFull,
    /// `connect() to unix:PATH failed (N: …)` with another errno. 502.
    UnixConnectFailed,
    /// `upstream timed out (110: …) while connecting to upstream`: TCP backlog full (SYNs
    /// dropped) or host unreachable. 504.
    ConnectTimedOut,
    /// `upstream timed out (110: …) while reading response header from upstream`: slow
    /// endpoint or hung backend. 504.
    ReadTimedOut,
    /// `upstream timed out` in another phase (sending the request, reading the body).
    TimedOut,
    /// `recv() failed (104: Connection reset by peer) while reading response header from
    /// upstream`: keep-alive race, or the backend was killed. 502 (or 200 after a retry).
    ResetByPeer,
    /// `upstream prematurely closed connection while reading response header from upstream`:
    /// keep-alive race, worker killed by its timeout, recycled, OOM, or `http://` to TLS. 502.
    PrematurelyClosed,
    /// `upstream sent too big header`: headers larger than `proxy_buffer_size`. 502.
    TooBigHeader,
    /// `upstream sent invalid header` / `no valid HTTP/1.0 header` / invalid chunked. 502.
    InvalidResponse,
    /// `SSL_do_handshake() failed (…) while SSL handshaking to upstream`: usually
    /// `proxy_pass https://` to a plain-HTTP backend. 502.
    SslHandshakeFailed,
    /// `no live upstreams while connecting to upstream`: every server of the group is marked
    /// failed. 502.
    NoLiveUpstreams,
    /// `[warn] upstream server temporarily disabled`: a server reached `max_fails`.
    ServerTemporarilyDisabled,
    /// Another socket error while talking to the upstream (`send()`/`recv()`/`writev()`/
    /// `readv()` failed with an errno), e.g. 104 while reading the body, 32 broken pipe.
    IoFailed,
}

impl UpstreamError {
    /// Every class, in declaration order.
    pub const ALL: [UpstreamError; 18] = [
        UpstreamError::ConnectRefused,
        UpstreamError::ConnectFailed,
        UpstreamError::UnixConnectRefused,
        UpstreamError::UnixPermissionDenied,
        UpstreamError::UnixNoSuchFile,
        UpstreamError::UnixBacklogFull,
        UpstreamError::UnixConnectFailed,
        UpstreamError::ConnectTimedOut,
        UpstreamError::ReadTimedOut,
        UpstreamError::TimedOut,
        UpstreamError::ResetByPeer,
        UpstreamError::PrematurelyClosed,
        UpstreamError::TooBigHeader,
        UpstreamError::InvalidResponse,
        UpstreamError::SslHandshakeFailed,
        UpstreamError::NoLiveUpstreams,
        UpstreamError::ServerTemporarilyDisabled,
        UpstreamError::IoFailed,
    ];

    /// The stable snake_case name used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamError::ConnectRefused => "connect_refused",
            UpstreamError::ConnectFailed => "connect_failed",
            UpstreamError::UnixConnectRefused => "unix_connect_refused",
            UpstreamError::UnixPermissionDenied => "unix_permission_denied",
            UpstreamError::UnixNoSuchFile => "unix_no_such_file",
            UpstreamError::UnixBacklogFull => "unix_backlog_full",
            UpstreamError::UnixConnectFailed => "unix_connect_failed",
            UpstreamError::ConnectTimedOut => "connect_timed_out",
            UpstreamError::ReadTimedOut => "read_timed_out",
            UpstreamError::TimedOut => "timed_out",
            UpstreamError::ResetByPeer => "reset_by_peer",
            UpstreamError::PrematurelyClosed => "prematurely_closed",
            UpstreamError::TooBigHeader => "too_big_header",
            UpstreamError::InvalidResponse => "invalid_response",
            UpstreamError::SslHandshakeFailed => "ssl_handshake_failed",
            UpstreamError::NoLiveUpstreams => "no_live_upstreams",
            UpstreamError::ServerTemporarilyDisabled => "server_temporarily_disabled",
            UpstreamError::IoFailed => "io_failed",
        }
    }

    /// What the client got, when it follows from the class alone.
    pub fn client_status(self) -> Option<u16> {
        match self {
            UpstreamError::ConnectTimedOut
            | UpstreamError::ReadTimedOut
            | UpstreamError::TimedOut => Some(504),
            UpstreamError::ServerTemporarilyDisabled | UpstreamError::IoFailed => None,
            _ => Some(502),
        }
    }
}

/// A classified message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classified<'a> {
    pub class: UpstreamError,
    /// The errno in `(N: text)`, when nginx printed one.
    pub errno: Option<u16>,
    /// The phase after `while …`, e.g. `reading response header from upstream`.
    pub phase: Option<&'a [u8]>,
    /// For unix sockets: the socket path.
    pub unix_path: Option<&'a [u8]>,
}

/// Classifies an error-log message (the part before `, client:`). `None`: not an upstream
/// failure (or one this version does not know; the caller keeps the raw message).
pub fn classify(msg: &[u8]) -> Option<Classified<'_>> {
    let errno = errno(msg);
    let phase = memmem::find(msg, b" while ").map(|i| &msg[i + 7..]);
    let phase_is = |p: &[u8]| phase.is_some_and(|ph| ph.starts_with(p));
    let mut unix_path = None;
    let class = if let Some(rest) = msg.strip_prefix(b"connect() to unix:") {
        let end = memmem::find(rest, b" failed").unwrap_or(rest.len());
        unix_path = Some(&rest[..end]);
        match errno {
            Some(111) => UpstreamError::UnixConnectRefused,
            Some(13) => UpstreamError::UnixPermissionDenied,
            Some(2) => UpstreamError::UnixNoSuchFile,
            Some(11) => UpstreamError::UnixBacklogFull,
            _ => UpstreamError::UnixConnectFailed,
        }
    } else if msg.starts_with(b"connect() ") {
        match errno {
            Some(111) => UpstreamError::ConnectRefused,
            _ => UpstreamError::ConnectFailed,
        }
    } else if msg.starts_with(b"upstream timed out") {
        if phase_is(b"connecting to upstream") {
            UpstreamError::ConnectTimedOut
        } else if phase_is(b"reading response header") {
            UpstreamError::ReadTimedOut
        } else {
            UpstreamError::TimedOut
        }
    } else if msg.starts_with(b"upstream prematurely closed") {
        UpstreamError::PrematurelyClosed
    } else if msg.starts_with(b"upstream sent too big header") {
        UpstreamError::TooBigHeader
    } else if msg.starts_with(b"upstream sent ") {
        UpstreamError::InvalidResponse
    } else if msg.starts_with(b"SSL_do_handshake() failed") || phase_is(b"SSL handshaking") {
        UpstreamError::SslHandshakeFailed
    } else if msg.starts_with(b"no live upstreams") {
        UpstreamError::NoLiveUpstreams
    } else if msg.starts_with(b"upstream server temporarily disabled") {
        UpstreamError::ServerTemporarilyDisabled
    } else if errno == Some(104) && phase_is(b"reading response header") {
        UpstreamError::ResetByPeer
    } else if errno.is_some() && phase.is_some_and(|p| memmem::find(p, b"upstream").is_some()) {
        UpstreamError::IoFailed
    } else {
        return None;
    };
    Some(Classified {
        class,
        errno,
        phase,
        unix_path,
    })
}

/// The errno of the first `(N: ` in the message.
fn errno(msg: &[u8]) -> Option<u16> {
    memchr::memchr_iter(b'(', msg).find_map(|open| {
        let rest = &msg[open + 1..];
        let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 4 || rest.get(n) != Some(&b':') {
            return None;
        }
        std::str::from_utf8(&rest[..n]).ok()?.parse().ok()
    })
}
