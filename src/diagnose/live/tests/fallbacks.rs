//! Group-level and catch-all findings, and the separations the audit found missing: what is
//! never "healthy", what a restart cannot fix.

use super::*;

/// Real lines (tests/fixtures and the audit's `mix.err`) for classes no cause rule reads.
const UNHANDLED: &[(E, Option<u16>, &str)] = &[
    (
        E::ConnectFailed,
        Some(113),
        r#"2026/11/21 13:14:47 [error] 1#1: *3 connect() failed (113: No route to host) while connecting to upstream, client: 127.0.0.1, server: _, request: "GET /a HTTP/1.1", upstream: "http://10.0.0.5:8000/a", host: "x""#,
    ),
    (
        E::ConnectFailed,
        Some(99),
        r#"2026/11/21 13:14:47 [crit] 1#1: *4 connect() to 10.0.0.5:8000 failed (99: Cannot assign requested address) while connecting to upstream, client: 127.0.0.1, server: _, request: "GET /a HTTP/1.1", upstream: "http://10.0.0.5:8000/a", host: "x""#,
    ),
    (
        E::InvalidResponse,
        None,
        r#"2026/11/21 13:14:47 [error] 1#1: *5 upstream sent no valid HTTP/1.0 header while reading response header from upstream, client: 127.0.0.1, server: _, request: "GET /a HTTP/1.1", upstream: "http://10.0.0.5:8000/a", host: "x""#,
    ),
    (
        E::BodyFailed,
        None,
        r#"2026/11/21 13:14:47 [error] 1#1: *6 upstream prematurely closed connection while reading upstream, client: 127.0.0.1, server: _, request: "GET /a HTTP/1.1", upstream: "http://10.0.0.5:8000/a", host: "x""#,
    ),
    (
        E::PrematurelyClosed,
        None,
        r#"2026/11/21 13:14:47 [error] 1#1: *1 upstream prematurely closed connection while reading response header from upstream, client: 127.0.0.1, server: _, request: "GET /a HTTP/1.1", upstream: "http://10.0.0.5:8000/a", host: "x""#,
    ),
    (
        E::ResetByPeer,
        Some(104),
        r#"2026/11/21 13:14:47 [error] 1#1: *2 recv() failed (104: Connection reset by peer) while reading response header from upstream, client: 127.0.0.1, server: _, request: "GET /a HTTP/1.1", upstream: "http://10.0.0.5:8000/a", host: "x""#,
    ),
    (
        E::ServerTemporarilyDisabled,
        None,
        r#"2026/11/21 13:14:47 [warn] 1#1: *7 upstream server temporarily disabled while connecting to upstream, client: 127.0.0.1, server: _, request: "GET /a HTTP/1.1", upstream: "http://10.0.0.5:8000/a", host: "x""#,
    ),
];

#[test]
fn upstream_errors_are_never_healthy() {
    for (class, errno, text) in UNHANDLED {
        let mut s = S::plain("10.0.0.5:8000");
        s.logs.errors = vec![line(1_000, *class, *errno, Some("10.0.0.5:8000"), text)];
        let d = s.run();
        let last = d.last().unwrap_or_else(|| panic!("{class:?}: healthy"));
        assert_eq!(
            last.kind, "unexplained_upstream_errors",
            "{class:?}: {d:#?}"
        );
        assert!(!last.restart_helps);
        assert!(last.evidence.iter().any(|e| e.contains(text)), "{last:#?}");
        assert!(
            last.evidence.iter().any(|e| e.contains(class.as_str())),
            "grouped by class: {last:#?}"
        );
    }
    let mut s = S::plain("10.0.0.5:8000");
    s.logs.errors = UNHANDLED
        .iter()
        .map(|(c, n, t)| line(1_000, *c, *n, Some("10.0.0.5:8000"), t))
        .collect();
    let d = s.run();
    assert_eq!(d.len(), 1, "one finding for the upstream: {d:#?}");
    assert!(d[0].fix.contains("No route to host") && d[0].fix.contains("local ports"));
}

#[test]
fn the_fallback_ranks_below_every_named_cause() {
    let mut s = S::plain("10.0.0.5:8000");
    s.logs.errors = vec![
        line(
            1_000,
            E::ConnectFailed,
            Some(113),
            Some("10.0.0.5:8000"),
            UNHANDLED[0].2,
        ),
        err(E::TooBigHeader, None, "10.0.0.5:8000", "/login"),
    ];
    let kinds = s.kinds();
    assert_eq!(
        kinds,
        ["upstream_header_too_big", "unexplained_upstream_errors"]
    );
}

/// `upstream pair { server A; server B; }` with A dead and B up.
fn pair() -> S {
    let mut s = S::new("127.0.0.1:8001").with_http(
        "upstream pair { server 127.0.0.1:8001; server 127.0.0.1:8000; } \
         server { location /p/ { proxy_pass http://pair; } }",
    );
    s.backends[0].source = Source::Process { pid: 100 };
    s.backends[0].name = "pid 100".into();
    s.logs.errors = vec![err(
        E::ConnectRefused,
        Some(111),
        "127.0.0.1:8001",
        "/p/health",
    )];
    s.logs.requests = vec![req(
        200,
        "/p/health",
        vec![
            attempt("127.0.0.1:8001", Some(502), None, None),
            attempt("127.0.0.1:8000", Some(200), Some(0), Some(2)),
        ],
    )];
    s
}

#[test]
fn a_dead_member_of_a_group_is_down_not_a_mismatch() {
    let s = pair();
    let d = s.run();
    let kinds: Vec<_> = d.iter().map(|x| x.kind).collect();
    assert_eq!(kinds, ["backend_down"], "{d:#?}");
    assert_eq!(d[0].upstream.as_deref(), Some("pair"));
    assert!(
        !d[0].restart_helps,
        "no known backend serves 127.0.0.1:8001: nothing to restart"
    );
    assert!(d[0].fix.contains("--backend"), "{}", d[0].fix);
    // Known: the unit that should serve it is down, and restarting it helps.
    let mut k = pair();
    k.backends.push(backend(vec![tcp(8001)]));
    k.evidence.backends = Fact::Known(vec![BackendProcesses {
        backend: Some("pid 100".into()),
        ..procs(proc(100, 'S', (1, 1)))
    }]);
    let d = k.run();
    assert_eq!(d[0].kind, "backend_down", "{d:#?}");
    assert!(d[0].restart_helps);
}

#[test]
fn a_probe_refused_is_down_without_any_log_line() {
    // Logs unreadable (0600 as another user): only the live evidence.
    let mut s = S::new("127.0.0.1:8000");
    s.evidence.listeners = Fact::Known(Vec::new());
    s.evidence.backends = Fact::Known(Vec::new());
    s.evidence.probes.push(probe(
        "127.0.0.1:8000",
        ProbeOutcome::ConnectFailed {
            errno: 111,
            message: "Connection refused".into(),
            after_ms: 0.1,
        },
    ));
    let d = s.run();
    assert_eq!(d[0].kind, "backend_down", "{d:#?}");
    assert!(d[0].restart_helps);
}

#[test]
fn no_live_upstreams_reports_the_first_failures() {
    let conf = "upstream pair { server 10.0.0.5:8000; server 10.0.0.6:8000 max_fails=3 fail_timeout=30s; } \
                server { location / { proxy_pass http://pair; } }";
    let nolive = r#"2026/11/21 13:14:49 [error] 1#1: *34 no live upstreams while connecting to upstream, client: 127.0.0.1, server: _, request: "GET /x HTTP/1.1", upstream: "http://pair/x", host: "x""#;
    let mut s = S::plain("10.0.0.5:8000").with_http(conf);
    s.logs.errors = vec![
        line(
            1_000,
            E::ConnectFailed,
            Some(113),
            Some("10.0.0.5:8000"),
            UNHANDLED[0].2,
        ),
        line(2_000, E::NoLiveUpstreams, None, Some("pair"), nolive),
    ];
    let d = s.run();
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].kind, "no_live_upstreams");
    assert!(d[0].message.contains("connect_failed"), "{}", d[0].message);
    assert!(d[0].evidence.iter().any(|e| e.contains("fail_timeout=30s")));
    assert!(!d[0].restart_helps);
    // Only the `no live upstreams` lines in the window: the mechanism, still a finding.
    let mut only = S::plain("10.0.0.5:8000").with_http(conf);
    only.logs.errors = vec![line(2_000, E::NoLiveUpstreams, None, Some("pair"), nolive)];
    let d = only.run();
    assert_eq!(d[0].kind, "no_live_upstreams");
    assert!(d[0].message.contains("max_fails"), "{}", d[0].message);
}

#[test]
fn no_live_upstreams_defers_to_the_cause_of_the_members_failures() {
    let mut s = S::new("127.0.0.1:8000").with_http(
        "upstream pair { server 127.0.0.1:8000; server 127.0.0.1:8001; } \
         server { location / { proxy_pass http://pair; } }",
    );
    s.backends.push(backend(vec![tcp(8001)]));
    s.evidence.listeners = Fact::Known(Vec::new());
    s.evidence.backends = Fact::Known(Vec::new());
    s.logs.errors = vec![
        err(E::ConnectRefused, Some(111), "127.0.0.1:8000", "/"),
        err(E::ConnectRefused, Some(111), "127.0.0.1:8001", "/"),
        err(E::NoLiveUpstreams, None, "pair", "/"),
    ];
    let kinds = s.kinds();
    assert_eq!(kinds, ["backend_down", "backend_down"]);
}

#[test]
fn certificate_errors_are_not_a_protocol_mismatch() {
    let mut s = S::plain("10.0.0.5:8443");
    s.logs.errors = vec![
        line(
            1_000,
            E::SslCertVerify,
            None,
            Some("10.0.0.5:8443"),
            "… upstream SSL certificate verify error: (20:unable to get local issuer certificate) while SSL handshaking to upstream",
        ),
        line(
            1_000,
            E::SslCertName,
            None,
            Some("10.0.0.5:8443"),
            "… upstream SSL certificate does not match \"backend\" while SSL handshaking to upstream",
        ),
    ];
    let d = s.run();
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].kind, "upstream_tls_certificate");
    assert!(!d[0].restart_helps);
    assert!(
        d[0].fix.contains("proxy_ssl_trusted_certificate") && d[0].fix.contains("proxy_ssl_name")
    );
    assert!(!d[0].message.contains("plain HTTP"));
}

#[test]
fn nginx_local_failures_are_not_the_backends() {
    for (class, errno, kind) in [
        (E::LocalFdLimit, Some(24), "nginx_worker_limits"),
        (E::LocalWorkerConnections, None, "nginx_worker_limits"),
        (E::LocalTempFile, Some(13), "nginx_temp_file_unwritable"),
    ] {
        let mut s = S::new("127.0.0.1:8000");
        s.logs.errors = vec![err(class, errno, "127.0.0.1:8000", "/")];
        let d = s.run();
        assert_eq!(
            d.iter().map(|x| x.kind).collect::<Vec<_>>(),
            [kind],
            "{class:?}"
        );
        assert!(!d[0].restart_helps);
    }
}

#[test]
fn the_body_phase_is_not_a_keepalive_race_but_the_send_phase_is() {
    let mut body = S::new("127.0.0.1:8000");
    body.logs.errors = vec![err(E::BodyFailed, None, "127.0.0.1:8000", "/stream")];
    assert_eq!(body.kinds(), ["unexplained_upstream_errors"]);
    let mut send = S::new("127.0.0.1:8000");
    send.logs.errors = vec![err(E::SendFailed, Some(32), "127.0.0.1:8000", "/")];
    assert_eq!(send.top(), "keepalive_race");
}

#[test]
fn five_hundreds_without_upstream_fields_are_not_healthy() {
    // The audit's `many502.log`: combined format, 200×502 and 200×504 of 600, empty error log.
    let mut s = S::new("127.0.0.1:8000");
    s.logs.has_upstream_fields = false;
    for status in [200, 502, 504] {
        s.logs
            .requests
            .extend(vec![req(status, "/x", Vec::new()); 200]);
    }
    let d = s.run();
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].kind, "unexplained_5xx");
    assert!(d[0].message.contains("502 ×200") && d[0].message.contains("504 ×200"));
    assert!(d[0].evidence.iter().any(|e| e.contains("$upstream_addr")));
    assert!(!d[0].restart_helps);
    // The audit's `one499.log`: 2000 × 200, one 499, one 500 (the app's): nothing to report.
    let mut one = S::new("127.0.0.1:8000");
    one.logs.has_upstream_fields = false;
    one.logs.requests = vec![req(200, "/ok", Vec::new()); 2000];
    one.logs.requests.push(req(499, "/slow", Vec::new()));
    one.logs.requests.push(req(500, "/boom", Vec::new()));
    assert_eq!(one.run(), Vec::<Diagnosis>::new());
}

#[test]
fn truncated_lines_are_never_the_backend_at_a_question_mark() {
    let cut = r#"2026/12/01 11:17:21 [error] 1#1: *1 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: _, request: "GET /huge"#;
    // One upstream: the line is that upstream's.
    let mut one = S::new("127.0.0.1:8000");
    one.evidence.listeners = Fact::Known(Vec::new());
    one.logs.errors = vec![line(1_000, E::ConnectRefused, Some(111), None, cut)];
    let d = one.run();
    assert_eq!(d[0].kind, "backend_down");
    assert!(d[0].message.contains("127.0.0.1:8000"), "{}", d[0].message);
    // Two servers: which one is unknown; shown apart, never "the backend at ?".
    let mut two = S::plain("127.0.0.1:8000").with_http(
        "upstream app { server 127.0.0.1:8000; server 127.0.0.1:8001; } \
         server { location / { proxy_pass http://app; } }",
    );
    two.logs.errors = vec![line(1_000, E::ConnectRefused, Some(111), None, cut)];
    let d = two.run();
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].kind, "unexplained_upstream_errors");
    assert_eq!(d[0].upstream, None);
    assert!(d.iter().all(|x| !x.message.contains(" at ?")));
}

#[test]
fn an_address_in_two_groups_is_filed_under_the_one_its_requests_reach() {
    let mut s = S::new("127.0.0.1:8000").with_http(
        "upstream a { server 127.0.0.1:8000; } upstream b { server 127.0.0.1:8000; } \
         server { location / { proxy_pass http://a; } location /b/ { proxy_pass http://b; } }",
    );
    s.logs.errors = vec![err(E::TooBigHeader, None, "127.0.0.1:8000", "/b/login")];
    let d = s.run();
    assert_eq!(d[0].upstream.as_deref(), Some("b"), "{d:#?}");
}
