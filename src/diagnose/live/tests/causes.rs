//! One literal scenario per cause: the evidence of one fault and the kind it must rank first.

use super::*;

#[test]
fn healthy_stack_gives_no_finding() {
    let mut s = S::new("127.0.0.1:8000");
    s.logs.requests = (0..50)
        .map(|_| {
            req(
                200,
                "/",
                vec![attempt("127.0.0.1:8000", Some(200), Some(0), Some(2))],
            )
        })
        .collect();
    s.evidence.probes.push(probe(
        "127.0.0.1:8000",
        ProbeOutcome::Response {
            status: 200,
            connect_ms: 0.1,
            first_byte_ms: 1.0,
        },
    ));
    assert_eq!(s.run(), Vec::<Diagnosis>::new());
}

#[test]
fn backend_down() {
    let mut s = S::new("127.0.0.1:8000");
    s.evidence.listeners = Fact::Known(Vec::new());
    s.evidence.backends = Fact::Known(Vec::new());
    s.logs.errors = vec![err(E::ConnectRefused, Some(111), "127.0.0.1:8000", "/")];
    let d = s.run();
    assert_eq!(d[0].kind, "backend_down");
    assert!(d[0].restart_helps);
    assert!(
        d[0].evidence
            .iter()
            .any(|e| e.contains("nothing listens on 127.0.0.1:8000"))
    );
}

#[test]
fn backend_crash_loop_beats_backend_down() {
    let mut s = S::new("127.0.0.1:8000");
    s.evidence.listeners = Fact::Known(Vec::new());
    s.evidence.units = Fact::Known(vec![UnitState {
        sub_state: "auto-restart".into(),
        ..unit(4)
    }]);
    s.evidence.app_logs = vec![app_log(&[
        "Traceback (most recent call last):",
        "ModuleNotFoundError: No module named 'mian'",
    ])];
    s.logs.errors = vec![err(E::ConnectRefused, Some(111), "127.0.0.1:8000", "/")];
    let d = s.run();
    assert_eq!(d[0].kind, "backend_crash_loop");
    assert!(!d[0].restart_helps);
}

#[test]
fn upstream_address_mismatch() {
    let mut s = S::new("127.0.0.1:8001");
    s.logs.errors = vec![err(E::ConnectRefused, Some(111), "127.0.0.1:8001", "/")];
    assert_eq!(s.top(), "upstream_address_mismatch");
}

#[test]
fn address_family_mismatch() {
    let mut s = S::new("[::1]:8000");
    s.logs.errors = vec![err(E::ConnectRefused, Some(111), "[::1]:8000", "/")];
    s.logs.requests = vec![req(
        200,
        "/",
        vec![
            attempt("[::1]:8000", Some(502), Some(0), None),
            attempt("127.0.0.1:8000", Some(200), Some(0), Some(1)),
        ],
    )];
    assert_eq!(s.top(), "address_family_mismatch");
}

#[test]
fn unix_socket_permission_denied() {
    let mut s = S::new("unix:/run/app.sock");
    s.logs.errors = vec![err(
        E::UnixPermissionDenied,
        Some(13),
        "unix:/run/app.sock",
        "/",
    )];
    assert_eq!(s.top(), "unix_socket_permission_denied");
}

#[test]
fn backend_hung_when_stopped() {
    let mut s = S::new("127.0.0.1:8000");
    s.evidence.backends = Fact::Known(vec![procs(proc(100, 'T', (10, 10)))]);
    s.evidence.listeners = Fact::Known(vec![listener("127.0.0.1:8000", 12, 2048)]);
    s.evidence.probes.push(probe(
        "127.0.0.1:8000",
        ProbeOutcome::ReadTimeout {
            connect_ms: 0.1,
            after_ms: 1000.0,
        },
    ));
    s.logs.errors = vec![
        err(E::ReadTimedOut, Some(110), "127.0.0.1:8000", "/a"),
        err(E::ReadTimedOut, Some(110), "127.0.0.1:8000", "/b"),
    ];
    let d = s.run();
    assert_eq!(d[0].kind, "backend_hung");
    assert!(d[0].restart_helps);
}

#[test]
fn slow_endpoint_is_a_read_timeout_not_a_hang() {
    let mut s = S::new("127.0.0.1:8000");
    s.evidence.probes.push(probe(
        "127.0.0.1:8000",
        ProbeOutcome::Response {
            status: 200,
            connect_ms: 0.1,
            first_byte_ms: 1.0,
        },
    ));
    s.logs.errors = vec![err(E::ReadTimedOut, Some(110), "127.0.0.1:8000", "/report")];
    s.logs.requests = vec![req(
        200,
        "/",
        vec![attempt("127.0.0.1:8000", Some(200), Some(0), Some(1))],
    )];
    let d = s.run();
    assert_eq!(d[0].kind, "upstream_read_timeout");
    assert!(!d[0].restart_helps);
}

#[test]
fn listen_backlog_full_on_unix_socket() {
    let mut s = S::new("unix:/run/app.sock");
    s.backends = vec![backend(vec![Bind::Unix {
        path: "/run/app.sock".into(),
    }])];
    s.evidence.listeners = Fact::Known(vec![listener("unix:/run/app.sock", 9, 8)]);
    s.logs.errors = vec![err(E::UnixBacklogFull, Some(11), "unix:/run/app.sock", "/")];
    assert_eq!(s.top(), "listen_backlog_full");
}

#[test]
fn worker_killed_by_gunicorn_timeout() {
    let mut s = S::new("127.0.0.1:8000");
    s.evidence.app_logs = vec![app_log(&[
        "[2026-11-21 13:00:00 +0000] [7] [CRITICAL] WORKER TIMEOUT (pid:9)",
        "Worker (pid:9) was sent SIGABRT!",
    ])];
    s.logs.errors = vec![err(E::PrematurelyClosed, None, "127.0.0.1:8000", "/slow")];
    assert_eq!(s.top(), "worker_killed");
}

#[test]
fn keepalive_race() {
    let mut s = S::new("127.0.0.1:8000");
    s.logs.errors = vec![err(E::PrematurelyClosed, None, "127.0.0.1:8000", "/")];
    s.logs.requests = (0..40)
        .map(|_| {
            req(
                200,
                "/",
                vec![attempt("127.0.0.1:8000", Some(200), Some(0), Some(1))],
            )
        })
        .chain([req(
            502,
            "/",
            vec![attempt("127.0.0.1:8000", Some(502), Some(0), None)],
        )])
        .collect();
    let d = s.run();
    assert_eq!(d[0].kind, "keepalive_race");
    assert!(d[0].fix.contains("keepalive_timeout 4s"), "{}", d[0].fix);
}

#[test]
fn protocol_mismatch() {
    let mut s = S::new("127.0.0.1:8000");
    s.logs.errors = vec![err(E::SslWrongProtocol, None, "127.0.0.1:8000", "/")];
    assert_eq!(s.top(), "upstream_protocol_mismatch");
    let mut t = S::new("127.0.0.1:8000");
    t.backends[0].tls = true;
    t.logs.errors = vec![err(E::PrematurelyClosed, None, "127.0.0.1:8000", "/")];
    assert_eq!(t.top(), "upstream_protocol_mismatch");
}

/// A backend answering bytes that are neither HTTP nor TLS (another protocol on that port) is
/// not a TLS backend spoken to in plain HTTP; a probe answered with a TLS alert is.
#[test]
fn non_http_bytes_are_not_a_tls_backend() {
    let kinds = |first_bytes: &str| {
        let mut s = S::plain("127.0.0.1:8000");
        s.logs.errors = (0..3)
            .map(|_| err(E::InvalidResponse, None, "127.0.0.1:8000", "/"))
            .collect();
        s.evidence.probes = vec![probe(
            "127.0.0.1:8000",
            ProbeOutcome::Garbage {
                connect_ms: 0.1,
                after_ms: 0.2,
                first_bytes: first_bytes.into(),
            },
        )];
        s.kinds()
    };
    assert_eq!(
        kinds("SSH-2.0-OpenSSH_9.2p1\\x0d\\x0a"),
        ["unexplained_upstream_errors"]
    );
    assert_eq!(
        kinds("\\x15\\x03\\x01\\x00\\x02\\x02F"),
        ["upstream_protocol_mismatch"]
    );
}

#[test]
fn header_too_big() {
    let mut s = S::new("127.0.0.1:8000");
    s.logs.errors = vec![err(E::TooBigHeader, None, "127.0.0.1:8000", "/login")];
    assert_eq!(s.top(), "upstream_header_too_big");
}

#[test]
fn application_error_status() {
    let mut s = S::new("127.0.0.1:8000");
    s.logs.requests = vec![req(
        502,
        "/boom",
        vec![attempt("127.0.0.1:8000", Some(502), Some(0), Some(3))],
    )];
    assert_eq!(s.top(), "application_error_status");
}

#[test]
fn concurrency_limit() {
    let mut s = S::new("127.0.0.1:8000");
    s.evidence.app_logs = vec![app_log(&["WARNING:  Exceeded concurrency limit."])];
    s.logs.requests = vec![req(
        503,
        "/",
        vec![attempt("127.0.0.1:8000", Some(503), Some(0), Some(1))],
    )];
    assert_eq!(s.top(), "backend_concurrency_limit");
}

#[test]
fn client_closed_request() {
    let mut s = S::new("127.0.0.1:8000");
    let closed = req(
        499,
        "/slow",
        vec![attempt("127.0.0.1:8000", None, Some(0), None)],
    );
    let ok = req(
        200,
        "/",
        vec![attempt("127.0.0.1:8000", Some(200), Some(0), Some(1))],
    );
    s.logs.requests = vec![closed; 6];
    s.logs.requests.extend(vec![ok; 4]);
    assert_eq!(s.top(), "client_closed_request");
}

#[test]
fn a_few_client_aborts_are_not_a_finding() {
    // One 499 in 2002 requests (the audit's case), and 4 in 100: below 5 occurrences.
    for (closed, ok) in [(1, 2001), (4, 96)] {
        let mut s = S::new("127.0.0.1:8000");
        let c = req(
            499,
            "/",
            vec![attempt("127.0.0.1:8000", None, Some(0), None)],
        );
        let o = req(
            200,
            "/",
            vec![attempt("127.0.0.1:8000", Some(200), Some(0), Some(1))],
        );
        s.logs.requests = vec![c; closed];
        s.logs.requests.extend(vec![o; ok]);
        assert_eq!(
            s.run(),
            Vec::<Diagnosis>::new(),
            "{closed} of {}",
            closed + ok
        );
    }
    // 6 in 1000 is under 1%: still normal background.
    let mut s = S::new("127.0.0.1:8000");
    let c = req(
        499,
        "/",
        vec![attempt("127.0.0.1:8000", None, Some(0), None)],
    );
    s.logs.requests = vec![c; 6];
    s.logs.requests.extend(vec![req(200, "/", Vec::new()); 994]);
    assert_eq!(s.run(), Vec::<Diagnosis>::new());
}

#[test]
fn offline_lowers_confidence() {
    let mut s = S::new("127.0.0.1:8000");
    s.logs.errors = vec![err(E::TooBigHeader, None, "127.0.0.1:8000", "/login")];
    let live = s.run()[0].confidence;
    let directives = parse(&s.conf).expect("parses");
    let tree = ConfigTree {
        files: vec![SourceFile {
            path: PathBuf::from("/t.conf"),
            text: s.conf.clone(),
            directives,
        }],
    };
    let nginx = NginxModel::build(&tree);
    let offline = run(&LiveInput {
        nginx: Some(&nginx),
        backends: &s.backends,
        host: &s.host,
        evidence: &s.evidence,
        logs: &s.logs,
        offline: true,
    });
    assert!(offline[0].confidence < live);
}

#[test]
fn an_idle_healthy_backend_is_not_stuck() {
    // A slow endpoint timed out; the backend sleeps between requests (no CPU progress), nothing
    // waits in its queue: a read timeout, not a hang, and never nothing at all.
    let mut s = S::new("127.0.0.1:8000");
    s.evidence.backends = Fact::Known(vec![procs(proc(100, 'S', (10, 10)))]);
    s.evidence.probes.push(probe(
        "127.0.0.1:8000",
        ProbeOutcome::Response {
            status: 200,
            connect_ms: 0.1,
            first_byte_ms: 1.0,
        },
    ));
    s.logs.errors = vec![err(E::ReadTimedOut, Some(110), "127.0.0.1:8000", "/report")];
    assert_eq!(s.top(), "upstream_read_timeout");
}

#[test]
fn supervisord_backoff_alone_is_a_crash_loop() {
    let mut s = S::new("127.0.0.1:8000");
    s.backends[0].source = Source::Supervisord {
        program: "web".into(),
        path: "/etc/supervisor/conf.d/web.conf".into(),
        line: 2,
    };
    s.evidence.listeners = Fact::Known(Vec::new());
    s.evidence.backends = Fact::Known(Vec::new());
    s.evidence.programs = Fact::Known(vec![crate::model::evidence::ProgramState {
        name: "web".into(),
        group: "web".into(),
        state: "BACKOFF".into(),
        pid: 0,
        start: 0,
        stop: 0,
        exit_status: 1,
        spawn_error: "Exited too quickly (process log may have details)".into(),
        stdout_logfile: None,
        stderr_logfile: None,
    }]);
    s.logs.errors = vec![err(E::ConnectRefused, Some(111), "127.0.0.1:8000", "/")];
    let d = s.run();
    assert_eq!(d[0].kind, "backend_crash_loop");
    assert!(!d[0].restart_helps);
    let down = d
        .iter()
        .find(|x| x.kind == "backend_down")
        .map(|x| x.confidence)
        .unwrap_or(0.0);
    assert!(down < d[0].confidence);
}

#[test]
fn a_mismatch_is_not_also_a_dead_backend() {
    let mut s = S::new("127.0.0.1:8001");
    s.logs.errors = vec![err(E::ConnectRefused, Some(111), "127.0.0.1:8001", "/")];
    let kinds: Vec<&str> = s.run().iter().map(|d| d.kind).collect();
    assert_eq!(kinds, ["upstream_address_mismatch"]);
}

#[test]
fn an_answered_probe_is_not_stuck_even_with_its_connection_queued() {
    // sock_diag ran while the probe's own connection waited to be accepted: queue 1, no CPU
    // progress in the sample, yet the probe got its answer.
    let mut s = S::new("127.0.0.1:8000");
    s.evidence.backends = Fact::Known(vec![procs(proc(100, 'S', (10, 10)))]);
    s.evidence.listeners = Fact::Known(vec![listener("127.0.0.1:8000", 1, 2048)]);
    s.evidence.probes.push(probe(
        "127.0.0.1:8000",
        ProbeOutcome::Response {
            status: 200,
            connect_ms: 0.1,
            first_byte_ms: 1.0,
        },
    ));
    s.logs.errors = vec![err(E::ReadTimedOut, Some(110), "127.0.0.1:8000", "/report")];
    s.logs.requests = vec![req(
        200,
        "/",
        vec![attempt("127.0.0.1:8000", Some(200), Some(0), Some(1))],
    )];
    assert_eq!(s.top(), "upstream_read_timeout");
}

#[test]
fn a_worker_recycled_by_uvicorns_max_requests_is_not_a_keepalive_race() {
    let mut s = S::new("127.0.0.1:8000");
    s.evidence.app_logs = vec![app_log(&[
        "[2026-11-21 13:00:00 +0000] [9] [INFO] Maximum request limit of 5 exceeded. Terminating process.",
    ])];
    s.logs.errors = vec![err(E::ResetByPeer, Some(104), "127.0.0.1:8000", "/echo")];
    let d = s.run();
    assert_eq!(d[0].kind, "worker_killed", "{d:#?}");
    assert!(d[0].message.contains("max-requests"));
    assert!(d.iter().all(|x| x.kind != "keepalive_race"));
}

/// One uvicorn process bound to `::` listens on IPv6 only (asyncio sets `IPV6_V6ONLY`, which
/// sock_diag reports), so it does not serve nginx's `127.0.0.1`: the backend listens on another
/// address, as `reflex check` says, and a restart cannot help (the socket was taken as
/// dual-stack, and nothing was named).
#[test]
fn a_single_uvicorn_on_ipv6_any_does_not_serve_ipv4() {
    let mut s = S::new("127.0.0.1:8000");
    s.backends = vec![backend(vec![Bind::Tcp {
        host: "::".into(),
        port: 8000,
    }])];
    s.backends[0].workers = 1;
    let v6 = Listener {
        v6only: true,
        ..listener("[::]:8000", 0, 2048)
    };
    s.evidence.listeners = Fact::Known(vec![v6.clone()]);
    s.logs.errors = vec![err(E::ConnectRefused, Some(111), "127.0.0.1:8000", "/")];
    let d = s.run();
    assert_eq!(d[0].kind, "upstream_address_mismatch", "{d:#?}");
    assert!(!d[0].restart_helps);
    assert_eq!(
        d[0].message,
        "nginx proxies to 127.0.0.1:8000 but the backend listens on [::1]:8000"
    );
    // The same socket taking IPv4 too (gunicorn's, or uvicorn's with workers) serves nginx:
    // then the refusals are not this cause.
    s.evidence.listeners = Fact::Known(vec![Listener {
        v6only: false,
        ..v6
    }]);
    s.backends[0].workers = 2;
    assert_ne!(s.top(), "upstream_address_mismatch");
}
