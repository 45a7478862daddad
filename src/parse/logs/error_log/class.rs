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
    /// `SSL_do_handshake() failed (…) while SSL handshaking to upstream` for another reason
    /// than the ones below (a cipher or version nginx and the backend do not share). 502.
    SslHandshakeFailed,
    /// `no live upstreams while connecting to upstream`: every server of the group is marked
    /// failed. 502.
    NoLiveUpstreams,
    /// `[warn] upstream server temporarily disabled`: a server reached `max_fails`.
    ServerTemporarilyDisabled,
    /// Another socket error while talking to the upstream (`send()`/`recv()`/`writev()`/
    /// `readv()` failed with an errno in a phase none of the classes below covers).
    IoFailed,
    /// `SSL_do_handshake() failed (SSL: … wrong version number)` (or `packet length too long`,
    /// `unknown protocol`): nginx speaks TLS (`proxy_pass https://`) to a plain-HTTP backend,
    /// which answered the ClientHello with an HTTP 400. 502.
    SslWrongProtocol,
    /// `upstream SSL certificate verify error: (20:unable to get local issuer certificate)`:
    /// `proxy_ssl_verify on` and the backend's chain is not trusted
    /// (`proxy_ssl_trusted_certificate`). The backend is fine. 502.
    SslCertVerify,
    /// `upstream SSL certificate does not match "NAME"`: the certificate is not for
    /// `proxy_ssl_name` (by default the `proxy_pass` host). 502.
    SslCertName,
    /// `peer closed connection in SSL handshake (104: Connection reset by peer)` (or an
    /// `SSL_do_handshake()` failure with 104): the backend dropped the handshake: restarting,
    /// killed, or a TLS listener that refuses nginx's parameters. 502.
    SslPeerReset,
    /// `writev()`/`send()` `failed (32: Broken pipe | 104: Connection reset by peer) while
    /// sending request to upstream`: the backend closed a reused keep-alive connection while
    /// nginx was writing the request (the keep-alive race's other signature), or died. 502.
    SendFailed,
    /// The body phase: `upstream prematurely closed connection while reading upstream`,
    /// `recv()/readv() failed (104) while reading upstream`. The status line was already sent:
    /// the client got a truncated response (often a 200), not a 502.
    BodyFailed,
    /// `open()`/`pwrite()` `"…/proxy_temp/…" failed (13|28: …)`: nginx cannot buffer a large
    /// response to its temp path (permissions, full disk). Local to nginx; the backend is fine.
    LocalTempFile,
    /// `socket() failed (24: Too many open files) while connecting to upstream` (or 23): the
    /// nginx worker ran out of file descriptors (`worker_rlimit_nofile`, `ulimit -n`). 502.
    LocalFdLimit,
    /// `worker_connections are not enough while connecting to upstream`: every connection slot
    /// of the nginx worker is taken (each proxied request holds two). 502.
    LocalWorkerConnections,
}

impl UpstreamError {
    /// Every class, in declaration order.
    pub const ALL: [UpstreamError; 27] = [
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
        UpstreamError::SslWrongProtocol,
        UpstreamError::SslCertVerify,
        UpstreamError::SslCertName,
        UpstreamError::SslPeerReset,
        UpstreamError::SendFailed,
        UpstreamError::BodyFailed,
        UpstreamError::LocalTempFile,
        UpstreamError::LocalFdLimit,
        UpstreamError::LocalWorkerConnections,
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
            UpstreamError::SslWrongProtocol => "ssl_wrong_protocol",
            UpstreamError::SslCertVerify => "ssl_cert_verify",
            UpstreamError::SslCertName => "ssl_cert_name",
            UpstreamError::SslPeerReset => "ssl_peer_reset",
            UpstreamError::SendFailed => "send_failed",
            UpstreamError::BodyFailed => "body_failed",
            UpstreamError::LocalTempFile => "local_temp_file",
            UpstreamError::LocalFdLimit => "local_fd_limit",
            UpstreamError::LocalWorkerConnections => "local_worker_connections",
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
///
/// The phase after `while` matters as much as the phrase: the same `recv() failed (104)` is
/// the keep-alive race while reading the response header, and a truncated response while
/// reading the body.
pub fn classify(msg: &[u8]) -> Option<Classified<'_>> {
    let errno = errno(msg);
    let phase = memmem::find(msg, b" while ").map(|i| &msg[i + 7..]);
    let mut unix_path = None;
    let class = if let Some(rest) = msg.strip_prefix(b"connect() to unix:") {
        let end = memmem::find(rest, b" failed").unwrap_or(rest.len());
        unix_path = Some(&rest[..end]);
        unix_class(errno)
    } else {
        by_phrase(msg, errno, phase).or_else(|| by_errno(msg, errno, phase))?
    };
    Some(Classified {
        class,
        errno,
        phase,
        unix_path,
    })
}

fn unix_class(errno: Option<u16>) -> UpstreamError {
    match errno {
        Some(111) => UpstreamError::UnixConnectRefused,
        Some(13) => UpstreamError::UnixPermissionDenied,
        Some(2) => UpstreamError::UnixNoSuchFile,
        Some(11) => UpstreamError::UnixBacklogFull,
        Some(23 | 24) => UpstreamError::LocalFdLimit,
        _ => UpstreamError::UnixConnectFailed,
    }
}

/// Messages recognised by their own words (nginx's fixed phrases).
fn by_phrase(msg: &[u8], errno: Option<u16>, phase: Option<&[u8]>) -> Option<UpstreamError> {
    let phase_is = |p: &[u8]| phase.is_some_and(|ph| ph.starts_with(p));
    let body = phase_is(b"reading upstream");
    Some(if msg.starts_with(b"connect() ") {
        match errno {
            Some(111) => UpstreamError::ConnectRefused,
            Some(23 | 24) => UpstreamError::LocalFdLimit,
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
        if body {
            UpstreamError::BodyFailed
        } else {
            UpstreamError::PrematurelyClosed
        }
    } else if msg.starts_with(b"upstream sent too big header") {
        UpstreamError::TooBigHeader
    } else if msg.starts_with(b"upstream sent ") {
        UpstreamError::InvalidResponse
    } else if msg.starts_with(b"upstream SSL certificate verify error") {
        UpstreamError::SslCertVerify
    } else if msg.starts_with(b"upstream SSL certificate does not match") {
        UpstreamError::SslCertName
    } else if msg.starts_with(b"SSL_do_handshake() failed")
        || msg.starts_with(b"peer closed connection in SSL handshake")
        || phase_is(b"SSL handshaking")
    {
        ssl_class(msg, errno)
    } else if msg.starts_with(b"no live upstreams") {
        UpstreamError::NoLiveUpstreams
    } else if msg.starts_with(b"upstream server temporarily disabled") {
        UpstreamError::ServerTemporarilyDisabled
    } else if memmem::find(msg, b"worker_connections are not enough").is_some()
        && phase_is(b"connecting to upstream")
    {
        // `1024 worker_connections are not enough while connecting to upstream`.
        UpstreamError::LocalWorkerConnections
    } else {
        return None;
    })
}

/// What OpenSSL reports when the peer does not speak TLS at all: a plain-HTTP server answers
/// the ClientHello with `HTTP/1.1 400`, whose first bytes read as a bogus record header.
const NOT_TLS: &[&[u8]] = &[
    b"wrong version number",
    b"packet length too long",
    b"unknown protocol",
    b"http request",
];

fn ssl_class(msg: &[u8], errno: Option<u16>) -> UpstreamError {
    if NOT_TLS.iter().any(|n| memmem::find(msg, n).is_some()) {
        UpstreamError::SslWrongProtocol
    } else if errno == Some(104) || msg.starts_with(b"peer closed connection") {
        UpstreamError::SslPeerReset
    } else {
        UpstreamError::SslHandshakeFailed
    }
}

/// Socket and file errors (`recv() failed (104: …) while …`), by errno and phase.
fn by_errno(msg: &[u8], errno: Option<u16>, phase: Option<&[u8]>) -> Option<UpstreamError> {
    let errno = errno?;
    let phase = phase.filter(|p| memmem::find(p, b"upstream").is_some())?;
    let phase_is = |p: &[u8]| phase.starts_with(p);
    // `open() "/var/lib/nginx/proxy/1/00/0000000001" failed`: a file, not a socket.
    let file_op = [
        &b"open() \""[..],
        b"pwrite() \"",
        b"write() \"",
        b"writev() \"",
    ]
    .iter()
    .any(|p| msg.starts_with(p));
    Some(if file_op {
        UpstreamError::LocalTempFile
    } else if matches!(errno, 23 | 24) {
        UpstreamError::LocalFdLimit
    } else if errno == 111 {
        // `recv() failed (111)`: the refusal surfaced on the first read instead of connect().
        UpstreamError::ConnectRefused
    } else if matches!(errno, 32 | 104) && phase_is(b"sending request") {
        UpstreamError::SendFailed
    } else if errno == 104 && phase_is(b"reading response header") {
        UpstreamError::ResetByPeer
    } else if matches!(errno, 32 | 104) && phase_is(b"reading upstream") {
        UpstreamError::BodyFailed
    } else {
        UpstreamError::IoFailed
    })
}

/// The errno of the first `(N: ` in the message.
fn errno(msg: &[u8]) -> Option<u16> {
    memchr::memchr_iter(b'(', msg).find_map(|open| {
        let rest = &msg[open + 1..];
        let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        // nginx prints `(%d: %s)`; OpenSSL's `(20:unable to get…)` has no space: not an errno.
        if n == 0 || n > 4 || rest.get(n..n + 2) != Some(&b": "[..]) {
            return None;
        }
        std::str::from_utf8(&rest[..n]).ok()?.parse().ok()
    })
}
