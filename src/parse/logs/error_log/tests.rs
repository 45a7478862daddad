//! Table tests with real lines from nginx 1.22.1 (Debian 12) proxying to dead, closed, hung,
//! full and mis-permissioned upstreams; see tests/fixtures/logs/servers.py and nginx.conf.

use super::*;

/// (line, class, errno, upstream address)
const TABLE: &[(&str, UpstreamError, Option<u16>, &str)] = &[
    (
        r#"2026/11/21 13:14:43 [error] 24839#24839: *1 upstream timed out (110: Connection timed out) while connecting to upstream, client: 127.0.0.1, server: example.test, request: "GET /backlog HTTP/1.1", upstream: "http://127.0.0.1:19007/backlog", host: "127.0.0.1:18080""#,
        UpstreamError::ConnectTimedOut,
        Some(110),
        "127.0.0.1:19007",
    ),
    (
        r#"2026/11/21 13:14:47 [error] 24839#24839: *9 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 127.0.0.1, server: example.test, request: "GET /hang HTTP/1.1", upstream: "http://127.0.0.1:19001/hang", host: "127.0.0.1:18080", referrer: "http://ref.example/"x"""#,
        UpstreamError::ReadTimedOut,
        Some(110),
        "127.0.0.1:19001",
    ),
    (
        r#"2026/11/21 13:14:43 [error] 24839#24839: *3 connect() to unix:/tmp/nxs/stale.sock failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: example.test, request: "GET /stale HTTP/1.1", upstream: "http://unix:/tmp/nxs/stale.sock:/stale", host: "127.0.0.1:18080""#,
        UpstreamError::UnixConnectRefused,
        Some(111),
        "unix:/tmp/nxs/stale.sock",
    ),
    (
        r#"2026/11/21 13:14:43 [error] 24839#24839: *5 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: example.test, request: "GET /refused HTTP/1.1", upstream: "http://127.0.0.1:19099/refused", host: "127.0.0.1:18080""#,
        UpstreamError::ConnectRefused,
        Some(111),
        "127.0.0.1:19099",
    ),
    (
        r#"2026/11/21 13:14:47 [error] 24839#24839: *11 recv() failed (104: Connection reset by peer) while reading response header from upstream, client: 127.0.0.1, server: example.test, request: "GET /rst HTTP/1.1", upstream: "http://127.0.0.1:19002/rst", host: "127.0.0.1:18080", referrer: "http://ref.example/"x"""#,
        UpstreamError::ResetByPeer,
        Some(104),
        "127.0.0.1:19002",
    ),
    (
        r#"2026/11/21 13:14:47 [error] 24839#24839: *13 upstream prematurely closed connection while reading response header from upstream, client: 127.0.0.1, server: example.test, request: "GET /close HTTP/1.1", upstream: "http://127.0.0.1:19003/close", host: "127.0.0.1:18080", referrer: "http://ref.example/"x"""#,
        UpstreamError::PrematurelyClosed,
        None,
        "127.0.0.1:19003",
    ),
    (
        r#"2026/11/21 13:14:47 [error] 24839#24839: *15 upstream sent too big header while reading response header from upstream, client: 127.0.0.1, server: example.test, request: "GET /big HTTP/1.1", upstream: "http://127.0.0.1:19004/big", host: "127.0.0.1:18080", referrer: "http://ref.example/"x"""#,
        UpstreamError::TooBigHeader,
        None,
        "127.0.0.1:19004",
    ),
    (
        r#"2026/11/21 13:14:47 [error] 24839#24839: *21 SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version number) while SSL handshaking to upstream, client: 127.0.0.1, server: example.test, request: "GET /ssl HTTP/1.1", upstream: "https://127.0.0.1:19005/ssl", host: "127.0.0.1:18080", referrer: "http://ref.example/"x"""#,
        UpstreamError::SslWrongProtocol,
        None,
        "127.0.0.1:19005",
    ),
    (
        r#"2026/11/21 13:14:47 [crit] 24839#24839: *23 connect() to unix:/tmp/nxs/nonexistent.sock failed (2: No such file or directory) while connecting to upstream, client: 127.0.0.1, server: example.test, request: "GET /nofile HTTP/1.1", upstream: "http://unix:/tmp/nxs/nonexistent.sock:/nofile", host: "127.0.0.1:18080", referrer: "http://ref.example/"x"""#,
        UpstreamError::UnixNoSuchFile,
        Some(2),
        "unix:/tmp/nxs/nonexistent.sock",
    ),
    (
        r#"2026/11/21 13:14:47 [crit] 24839#24839: *25 connect() to unix:/tmp/nxs/perm.sock failed (13: Permission denied) while connecting to upstream, client: 127.0.0.1, server: example.test, request: "GET /perm HTTP/1.1", upstream: "http://unix:/tmp/nxs/perm.sock:/perm", host: "127.0.0.1:18080", referrer: "http://ref.example/"x"""#,
        UpstreamError::UnixPermissionDenied,
        Some(13),
        "unix:/tmp/nxs/perm.sock",
    ),
    (
        r#"2026/11/21 13:14:47 [error] 24839#24839: *27 connect() to unix:/tmp/nxs/full.sock failed (11: Resource temporarily unavailable) while connecting to upstream, client: 127.0.0.1, server: example.test, request: "GET /full HTTP/1.1", upstream: "http://unix:/tmp/nxs/full.sock:/full", host: "127.0.0.1:18080", referrer: "http://ref.example/"x"""#,
        UpstreamError::UnixBacklogFull,
        Some(11),
        "unix:/tmp/nxs/full.sock",
    ),
    (
        r#"2026/11/21 13:14:47 [warn] 24839#24839: *29 upstream server temporarily disabled while connecting to upstream, client: 127.0.0.1, server: example.test, request: "GET /pair HTTP/1.1", upstream: "http://127.0.0.1:19099/pair", host: "127.0.0.1:18080", referrer: "http://ref.example/"x"""#,
        UpstreamError::ServerTemporarilyDisabled,
        None,
        "127.0.0.1:19099",
    ),
    (
        r#"2026/11/21 13:14:47 [error] 24839#24839: *32 no live upstreams while connecting to upstream, client: 127.0.0.1, server: example.test, request: "GET /pair HTTP/1.1", upstream: "http://pair/pair", host: "127.0.0.1:18080", referrer: "http://ref.example/"x"""#,
        UpstreamError::NoLiveUpstreams,
        None,
        "pair",
    ),
    (
        r#"2026/11/21 13:14:47 [error] 24839#24839: *41 recv() failed (104: Connection reset by peer) while reading response header from upstream, client: 127.0.0.1, server: example.test, request: "POST /rst HTTP/1.1", upstream: "http://127.0.0.1:19002/rst", host: "127.0.0.1:18080""#,
        UpstreamError::ResetByPeer,
        Some(104),
        "127.0.0.1:19002",
    ),
];

#[test]
fn classifies_real_lines() {
    for (line, class, errno, addr) in TABLE {
        let parsed = parse(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
        let c = parsed
            .classify()
            .unwrap_or_else(|| panic!("unclassified: {line}"));
        assert_eq!(c.class, *class, "{line}");
        assert_eq!(c.errno, *errno, "{line}");
        assert_eq!(parsed.upstream_addr(), Some(addr.as_bytes()), "{line}");
        assert!(parsed.cid.is_some());
        assert_eq!(parsed.client, Some(&b"127.0.0.1"[..]));
        assert_eq!(parsed.host, Some(&b"127.0.0.1:18080"[..]));
    }
}

#[test]
fn splits_every_field() {
    let line = TABLE[3].0.as_bytes();
    let p = parse(line).expect("parse");
    assert_eq!(p.civil_time, 1_795_266_883);
    assert_eq!(p.level, Level::Error);
    assert_eq!((p.pid, p.tid, p.cid), (24839, 24839, Some(5)));
    assert_eq!(
        p.message,
        b"connect() failed (111: Connection refused) while connecting to upstream"
    );
    assert_eq!(p.server, Some(&b"example.test"[..]));
    assert_eq!(p.request, Some(&b"GET /refused HTTP/1.1"[..]));
    assert_eq!(p.upstream, Some(&b"http://127.0.0.1:19099/refused"[..]));
    assert_eq!(p.referrer, None);
    let c = p.classify().expect("class");
    assert_eq!(c.phase, Some(&b"connecting to upstream"[..]));
}

#[test]
fn referrer_with_quotes_and_unix_path() {
    let line = br#"2026/11/21 13:14:47 [crit] 24839#24839: *25 connect() to unix:/tmp/nxs/perm.sock failed (13: Permission denied) while connecting to upstream, client: 127.0.0.1, server: example.test, request: "GET /perm HTTP/1.1", upstream: "http://unix:/tmp/nxs/perm.sock:/perm", host: "127.0.0.1:18080", referrer: "http://ref.example/"x"""#;
    let p = parse(line).expect("parse");
    assert_eq!(p.level, Level::Crit);
    assert_eq!(p.referrer, Some(&br#"http://ref.example/"x""#[..]));
    let c = p.classify().expect("class");
    assert_eq!(c.unix_path, Some(&b"/tmp/nxs/perm.sock"[..]));
    assert_eq!(p.upstream_addr(), Some(&b"unix:/tmp/nxs/perm.sock"[..]));
}

#[test]
fn non_request_and_unknown_messages() {
    let p = parse(b"2026/11/21 13:14:43 [notice] 24658#24658: using the \"epoll\" event method")
        .expect("parse");
    assert_eq!(p.cid, None);
    assert_eq!(p.level, Level::Notice);
    assert_eq!(p.message, b"using the \"epoll\" event method");
    assert_eq!(p.classify(), None);
    let p = parse(b"2026/11/21 13:14:35 [info] 24660#24660: *41 client sent invalid request while reading client request line, client: 127.0.0.1, server: example.test, request: \"GET /ok%ZZ HTTP/1.1\"").expect("parse");
    assert_eq!(p.cid, Some(41));
    assert_eq!(p.request, Some(&b"GET /ok%ZZ HTTP/1.1"[..]));
    assert_eq!(p.classify(), None);
}

#[test]
fn commas_inside_the_message() {
    let p = parse(b"2026/11/21 13:14:43 [error] 1#1: *2 a, b, c failed (32: Broken pipe) while sending request to upstream, client: ::1, server: , request: \"POST /a,b HTTP/1.1\", upstream: \"http://[::1]:8000/a,b\", host: \"h\"").expect("parse");
    assert_eq!(
        p.message,
        b"a, b, c failed (32: Broken pipe) while sending request to upstream"
    );
    assert_eq!(p.client, Some(&b"::1"[..]));
    assert_eq!(p.server, Some(&b""[..]));
    assert_eq!(p.request, Some(&b"POST /a,b HTTP/1.1"[..]));
    assert_eq!(p.upstream_addr(), Some(&b"[::1]:8000"[..]));
    assert_eq!(
        p.classify().map(|c| c.class),
        Some(UpstreamError::SendFailed)
    );
}

/// Messages that share words but not a cause: the phase after `while`, the errno, and whether
/// the failure is nginx's own decide the class. (message, class, errno)
const BY_PHASE: &[(&str, Option<UpstreamError>, Option<u16>)] = &[
    (
        "upstream prematurely closed connection while reading upstream",
        Some(UpstreamError::BodyFailed),
        None,
    ),
    (
        "recv() failed (104: Connection reset by peer) while reading upstream",
        Some(UpstreamError::BodyFailed),
        Some(104),
    ),
    (
        "writev() failed (32: Broken pipe) while sending request to upstream",
        Some(UpstreamError::SendFailed),
        Some(32),
    ),
    (
        "send() failed (104: Connection reset by peer) while sending request to upstream",
        Some(UpstreamError::SendFailed),
        Some(104),
    ),
    (
        "recv() failed (111: Connection refused) while reading response header from upstream",
        Some(UpstreamError::ConnectRefused),
        Some(111),
    ),
    (
        "connect() failed (113: No route to host) while connecting to upstream",
        Some(UpstreamError::ConnectFailed),
        Some(113),
    ),
    (
        "connect() to 10.0.0.5:8000 failed (99: Cannot assign requested address) while connecting to upstream",
        Some(UpstreamError::ConnectFailed),
        Some(99),
    ),
    (
        "upstream timed out (110: Connection timed out) while reading upstream",
        Some(UpstreamError::TimedOut),
        Some(110),
    ),
    (
        "upstream sent no valid HTTP/1.0 header while reading response header from upstream",
        Some(UpstreamError::InvalidResponse),
        None,
    ),
    (
        "upstream SSL certificate verify error: (20:unable to get local issuer certificate) while SSL handshaking to upstream",
        Some(UpstreamError::SslCertVerify),
        None,
    ),
    (
        "upstream SSL certificate does not match \"backend\" while SSL handshaking to upstream",
        Some(UpstreamError::SslCertName),
        None,
    ),
    (
        "peer closed connection in SSL handshake (104: Connection reset by peer) while SSL handshaking to upstream",
        Some(UpstreamError::SslPeerReset),
        Some(104),
    ),
    (
        "SSL_do_handshake() failed (SSL: error:0A0000C6:SSL routines::packet length too long) while SSL handshaking to upstream",
        Some(UpstreamError::SslWrongProtocol),
        None,
    ),
    (
        "SSL_do_handshake() failed (SSL: error:0A000410:SSL routines::sslv3 alert handshake failure:SSL alert number 40) while SSL handshaking to upstream",
        Some(UpstreamError::SslHandshakeFailed),
        None,
    ),
    (
        "open() \"/var/lib/nginx/proxy/1/00/0000000001\" failed (13: Permission denied) while reading upstream",
        Some(UpstreamError::LocalTempFile),
        Some(13),
    ),
    (
        "pwrite() \"/var/lib/nginx/proxy/2/00/0000000002\" failed (28: No space left on device) while reading upstream",
        Some(UpstreamError::LocalTempFile),
        Some(28),
    ),
    (
        "socket() failed (24: Too many open files) while connecting to upstream",
        Some(UpstreamError::LocalFdLimit),
        Some(24),
    ),
    (
        "1024 worker_connections are not enough while connecting to upstream",
        Some(UpstreamError::LocalWorkerConnections),
        None,
    ),
    ("1024 worker_connections are not enough", None, None),
    ("accept4() failed (24: Too many open files)", None, Some(24)),
];

#[test]
fn classifies_by_phase_errno_and_locality() {
    for (msg, class, errno) in BY_PHASE {
        let got = classify(msg.as_bytes());
        assert_eq!(got.map(|c| c.class), *class, "{msg}");
        if class.is_some() {
            assert_eq!(got.and_then(|c| c.errno), *errno, "{msg}");
        }
    }
    for (i, c) in UpstreamError::ALL.iter().enumerate() {
        assert_eq!(
            *c as usize, i,
            "ALL is in declaration order (summaries index by it)"
        );
    }
}

#[test]
fn rejects_non_error_lines() {
    assert_eq!(parse(b""), Err(ErrorLineError::Time));
    assert_eq!(
        parse(b"127.0.0.1 - - [21/Nov/2026:13:14:43 +0000] \"GET / HTTP/1.1\" 200 1"),
        Err(ErrorLineError::Time)
    );
    assert_eq!(
        parse(b"2026/11/21 13:14:43 [oops] 1#1: x"),
        Err(ErrorLineError::Level)
    );
    assert_eq!(
        parse(b"2026/11/21 13:14:43 [error] x"),
        Err(ErrorLineError::Pid)
    );
}

#[test]
fn whole_fixture_parses() {
    let text = include_str!("../../../../tests/fixtures/logs/error.log");
    for line in text.lines() {
        parse(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
    }
}
