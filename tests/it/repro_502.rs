//! Real 502/504 reproductions: for each misconfiguration, a real nginx in front of a real
//! uvicorn/gunicorn with the BROKEN config must really fail (client status, `$upstream_status`,
//! the nginx error-log phrase), the FIXED config must not, and `reflex check` must flag the
//! broken one and not the fixed one.
//!
//! The live repro is asserted first; reflex's verdicts are collected and asserted last, so a
//! failure message says which half broke.

use std::time::{Duration, Instant};

use crate::harness::app::{App, Bind, Ready};
use crate::harness::check::{assert_no_problems, reflex_check};
use crate::harness::http;
use crate::harness::nginx::{Nginx, free_port};
use crate::harness::ns::Wrap;
use crate::harness::shared_tempdir;

/// A `location /` that proxies to `target` (e.g. `http://127.0.0.1:8000`), with the usual
/// forwarding headers so that only the fault under test is wrong.
fn proxy_to(target: &str) -> String {
    proxy_with(target, "")
}

/// Like [`proxy_to`] with extra location directives.
fn proxy_with(target: &str, extra: &str) -> String {
    format!(
        "location / {{
    proxy_pass {target};
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
{extra}}}
"
    )
}

/// `n` GETs of `path`; the status codes (0 = transport error).
fn get_n(port: u16, path: &str, n: usize) -> Vec<u16> {
    (0..n)
        .map(|_| http::status_or_zero(&http::get(port, path)))
        .collect()
}

#[test]
fn upstream_address_mismatch() {
    let tmp = shared_tempdir();
    let app = App::uvicorn(&tmp.path().join("app")).start();
    // Nothing listens on `wrong`: a port that was free a moment ago.
    let wrong = free_port();
    let broken = Nginx::builder(&tmp.path().join("broken"))
        .server(&proxy_to(&format!("http://127.0.0.1:{wrong}")))
        .start();
    let codes = get_n(broken.port(), "/", 3);
    assert_eq!(codes, [502, 502, 502], "{}", broken.error_log_text());
    let refused = broken.error_lines(
        "connect() failed (111: Connection refused) while connecting to upstream",
    );
    assert!(!refused.is_empty(), "{}", broken.error_log_text());
    assert!(refused[0].contains(&format!("127.0.0.1:{wrong}")), "{refused:?}");

    let fixed = Nginx::builder(&tmp.path().join("fixed"))
        .server(&proxy_to(&format!("http://127.0.0.1:{}", app.port())))
        .start();
    assert_eq!(get_n(fixed.port(), "/", 3), [200, 200, 200]);
    assert!(fixed.error_lines("connect() failed").is_empty());

    let kind = "upstream_address_mismatch";
    let backend = [app.cmdline()];
    let mut problems = reflex_check("broken", &broken.conf(), &backend, &Wrap::None)
        .problems(kind, true);
    problems.extend(reflex_check("fixed", &fixed.conf(), &backend, &Wrap::None).problems(kind, false));
    assert_no_problems(&problems);
}

/// A self-signed certificate and key for `localhost` in `dir` (openssl CLI, see scripts/setup).
fn self_signed(dir: &std::path::Path) -> (String, String) {
    let key = dir.join("key.pem");
    let cert = dir.join("cert.pem");
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl (scripts/setup installs it)");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    (key.display().to_string(), cert.display().to_string())
}

#[test]
fn upstream_scheme_mismatch_https_to_plain_backend() {
    let tmp = shared_tempdir();
    let app = App::uvicorn(&tmp.path().join("app")).start();
    let broken = Nginx::builder(&tmp.path().join("broken"))
        .server(&proxy_to(&format!("https://127.0.0.1:{}", app.port())))
        .start();
    assert_eq!(get_n(broken.port(), "/", 2), [502, 502], "{}", broken.error_log_text());
    assert!(
        !broken.error_lines("SSL_do_handshake() failed").is_empty(),
        "{}",
        broken.error_log_text()
    );
    assert!(app.log_text().contains("Invalid HTTP request received"), "{}", app.log_text());

    let fixed = Nginx::builder(&tmp.path().join("fixed"))
        .server(&proxy_to(&format!("http://127.0.0.1:{}", app.port())))
        .start();
    assert_eq!(get_n(fixed.port(), "/", 2), [200, 200]);

    let kind = "upstream_scheme_mismatch";
    let backend = [app.cmdline()];
    let mut problems = reflex_check("broken", &broken.conf(), &backend, &Wrap::None)
        .problems(kind, true);
    problems.extend(reflex_check("fixed", &fixed.conf(), &backend, &Wrap::None).problems(kind, false));
    assert_no_problems(&problems);
}

#[test]
fn upstream_scheme_mismatch_http_to_tls_backend() {
    let tmp = shared_tempdir();
    let (key, cert) = self_signed(tmp.path());
    let app = App::uvicorn(&tmp.path().join("app"))
        .args(&["--ssl-keyfile", &key, "--ssl-certfile", &cert])
        .ready(Ready::LogLine("Application startup complete".into()))
        .start();
    assert!(app.log_text().contains("running on https://"), "{}", app.log_text());
    let broken = Nginx::builder(&tmp.path().join("broken"))
        .server(&proxy_to(&format!("http://127.0.0.1:{}", app.port())))
        .start();
    assert_eq!(get_n(broken.port(), "/", 2), [502, 502], "{}", broken.error_log_text());
    let log = broken.error_log_text();
    assert!(
        log.contains("upstream prematurely closed connection")
            || log.contains("(104: Connection reset by peer)"),
        "{log}"
    );

    let fixed = Nginx::builder(&tmp.path().join("fixed"))
        .server(&proxy_with(
            &format!("https://127.0.0.1:{}", app.port()),
            "    proxy_ssl_verify off;\n",
        ))
        .start();
    assert_eq!(get_n(fixed.port(), "/", 2), [200, 200], "{}", fixed.error_log_text());

    let kind = "upstream_scheme_mismatch";
    let backend = [app.cmdline()];
    let mut problems = reflex_check("broken", &broken.conf(), &backend, &Wrap::None)
        .problems(kind, true);
    problems.extend(reflex_check("fixed", &fixed.conf(), &backend, &Wrap::None).problems(kind, false));
    assert_no_problems(&problems);
}

#[test]
fn unix_socket_not_accessible() {
    use std::os::unix::fs::PermissionsExt;
    crate::harness::ns::require_root("nginx workers running as nobody");
    let tmp = shared_tempdir();
    let app = App::uvicorn(&tmp.path().join("app")).bind(Bind::Uds).start();
    let sock = app.uds().to_path_buf();
    let chmod = |mode| {
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(mode)).expect("chmod sock")
    };
    chmod(0o600);
    // The workers run as `nobody` (the harness's default `user`); the socket is root's, 0600.
    let nginx = Nginx::builder(&tmp.path().join("nginx"))
        .server(&proxy_to(&format!("http://unix:{}:", sock.display())))
        .start();
    assert_eq!(get_n(nginx.port(), "/", 2), [502, 502], "{}", nginx.error_log_text());
    let denied = nginx.error_lines("failed (13: Permission denied) while connecting to upstream");
    assert!(!denied.is_empty(), "{}", nginx.error_log_text());
    assert!(denied[0].contains("[crit]"), "{denied:?}");
    let kind = "unix_socket_not_accessible";
    let backend = [app.cmdline()];
    let mut problems = reflex_check("socket 0600", &nginx.conf(), &backend, &Wrap::None)
        .problems(kind, true);

    chmod(0o666);
    assert_eq!(get_n(nginx.port(), "/", 2), [200, 200], "{}", nginx.error_log_text());
    problems.extend(
        reflex_check("socket 0666", &nginx.conf(), &backend, &Wrap::None).problems(kind, false),
    );
    assert_no_problems(&problems);
}

#[test]
fn upstream_localhost_dual_stack() {
    let tmp = shared_tempdir();
    // This machine's /etc/hosts may lack `::1 localhost`; nginx (and reflex) get one that has
    // both, bind-mounted in a private mount namespace.
    let hosts = Wrap::Hosts(crate::harness::ns::dual_stack_hosts(tmp.path()));
    let app = App::uvicorn(&tmp.path().join("app")).start();
    let port = app.port();
    let broken = Nginx::builder(&tmp.path().join("broken"))
        .server(&proxy_to(&format!("http://localhost:{port}")))
        .wrap(hosts.clone())
        .start();
    // GETs are retried on the other address, so the client sees 200 and the failure shows only
    // in the logs: `[::1]:P` refused, `$upstream_status` "502, 200".
    assert_eq!(get_n(broken.port(), "/", 4), [200, 200, 200, 200]);
    let refused = broken.error_lines(
        "connect() failed (111: Connection refused) while connecting to upstream",
    );
    assert!(
        refused.iter().any(|l| l.contains(&format!("[::1]:{port}"))),
        "{}",
        broken.error_log_text()
    );
    let access = broken.wait_access(4);
    assert!(access.iter().any(|a| a.upstream_status == "502, 200"), "{access:#?}");

    let fixed = Nginx::builder(&tmp.path().join("fixed"))
        .server(&proxy_to(&format!("http://127.0.0.1:{port}")))
        .wrap(hosts.clone())
        .start();
    assert_eq!(get_n(fixed.port(), "/", 4), [200, 200, 200, 200]);
    let access = fixed.wait_access(4);
    assert!(access.iter().all(|a| a.upstream_status == "200"), "{access:#?}");
    assert!(fixed.error_lines("connect() failed").is_empty());

    let kind = "upstream_localhost_dual_stack";
    let backend = [app.cmdline()];
    let mut problems =
        reflex_check("broken", &broken.conf(), &backend, &hosts).problems(kind, true);
    problems.extend(reflex_check("fixed", &fixed.conf(), &backend, &hosts).problems(kind, false));
    assert_no_problems(&problems);
}

#[test]
fn worker_timeout_below_read_timeout() {
    let tmp = shared_tempdir();
    // An `async def` doing time.sleep blocks the UvicornWorker's event loop, so its heartbeat
    // stops and gunicorn's arbiter kills it after --timeout (2 s) — before nginx's 4 s
    // proxy_read_timeout: the client gets 502, not 504.
    let location = proxy_with("http://backend", "    proxy_read_timeout 4s;\n");
    let gunicorn = |name: &str, timeout: &str| {
        App::gunicorn(&tmp.path().join(name))
            .args(&["-k", "uvicorn.workers.UvicornWorker", "-w", "1", "--timeout", timeout])
            .start()
    };
    let upstream = |port: u16| format!("upstream backend {{\n    server 127.0.0.1:{port};\n}}\n");

    let app = gunicorn("broken-app", "2");
    let broken = Nginx::builder(&tmp.path().join("broken"))
        .http(&upstream(app.port()))
        .server(&location)
        .start();
    let t = Instant::now();
    let code = http::status_or_zero(&http::get(broken.port(), "/block?s=5"));
    let took = t.elapsed();
    assert_eq!(code, 502, "after {took:?}\n{}\n{}", broken.error_log_text(), app.log_text());
    assert!(took < Duration::from_secs(4), "502 should come from the worker kill: {took:?}");
    assert!(app.log_text().contains("WORKER TIMEOUT"), "{}", app.log_text());
    assert!(
        !broken.error_lines("upstream prematurely closed connection").is_empty(),
        "{}",
        broken.error_log_text()
    );

    let fixed_app = gunicorn("fixed-app", "10");
    let fixed = Nginx::builder(&tmp.path().join("fixed"))
        .http(&upstream(fixed_app.port()))
        .server(&location)
        .start();
    let code = http::status_or_zero(&http::get(fixed.port(), "/block?s=5"));
    assert_eq!(code, 504, "{}\n{}", fixed.error_log_text(), fixed_app.log_text());
    assert!(!fixed_app.log_text().contains("WORKER TIMEOUT"), "{}", fixed_app.log_text());
    assert!(!fixed.error_lines("upstream timed out (110").is_empty());

    let kind = "worker_timeout_below_read_timeout";
    let mut problems = reflex_check("broken", &broken.conf(), &[app.cmdline()], &Wrap::None)
        .problems(kind, true);
    problems.extend(
        reflex_check("fixed", &fixed.conf(), &[fixed_app.cmdline()], &Wrap::None)
            .problems(kind, false),
    );
    assert_no_problems(&problems);
}

/// `keepalive 8` with HTTP/1.1 to the backend; `extra` goes into the upstream block.
fn keepalive_nginx(dir: &std::path::Path, port: u16, extra: &str) -> Nginx {
    Nginx::builder(dir)
        .http(&format!(
            "upstream backend {{\n    server 127.0.0.1:{port};\n    keepalive 8;\n{extra}}}\n"
        ))
        .server(&proxy_with(
            "http://backend",
            "    proxy_http_version 1.1;\n    proxy_set_header Connection \"\";\n",
        ))
        .start()
}

/// What a run of the keep-alive race pattern saw.
#[derive(Debug, Default)]
struct RaceRun {
    rounds: usize,
    requests: usize,
    /// Client status codes other than 200 (0 = transport error).
    failures: Vec<u16>,
    /// (idle gap in ms before the round, failures in the round).
    per_round: Vec<(f64, usize)>,
    elapsed: Duration,
}

/// Rounds of `PARALLEL` concurrent POSTs, each round sent when the previous round's connections
/// have idled for about the backend's keep-alive timeout (1 s), so nginx reuses a connection
/// the backend is closing at that moment. The concurrent requests finish a few ms apart, which
/// spreads the idle ages around each gap and gives several shots per round. POSTs because
/// nginx does not retry a non-idempotent request on another connection: the race reaches the
/// client as 502. Bounded by `max_rounds` and `limit`; stops at the first failure when
/// `stop_early` (or at the first race line in the error log).
fn keepalive_race(nginx: &Nginx, max_rounds: usize, limit: Duration, stop_early: bool) -> RaceRun {
    // Just under 1 s: uvicorn's call_later(1.0) fires 1.000–1.004 s after it wrote the
    // response, and the response reaches the client and the next request reaches uvicorn a few
    // hundred µs to a few ms later (more under load). Measured hit zone: 995–1000.5 ms on a
    // loaded 2-core machine, 999–1000.5 ms on an idle one. Interleaved 0.5 ms steps cover it
    // every 14 rounds whatever the load.
    const GAPS_MS: [f64; 14] = [
        999.5, 997.0, 1000.5, 995.5, 998.5, 1001.5, 996.5, 1000.0, 997.5, 999.0, 995.0, 1001.0,
        998.0, 996.0,
    ];
    keepalive_race_with(nginx, &GAPS_MS, max_rounds, limit, stop_early)
}

fn keepalive_race_with(
    nginx: &Nginx,
    gaps_ms: &[f64],
    max_rounds: usize,
    limit: Duration,
    stop_early: bool,
) -> RaceRun {
    const PARALLEL: usize = 8;
    let start = Instant::now();
    let mut run = RaceRun::default();
    let port = nginx.port();
    let mut prev_gap = None;
    while run.rounds < max_rounds && start.elapsed() < limit {
        let codes: Vec<u16> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..PARALLEL)
                .map(|_| s.spawn(move || http::status_or_zero(&http::post(port, "/echo", b"ping"))))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap_or(0)).collect()
        });
        run.requests += codes.len();
        let bad: Vec<u16> = codes.into_iter().filter(|&c| c != 200).collect();
        if let Some(gap) = prev_gap {
            run.per_round.push((gap, bad.len()));
        }
        run.failures.extend(bad);
        let raced = !nginx.error_lines("upstream prematurely closed").is_empty()
            || !nginx.error_lines("recv() failed (104").is_empty();
        if stop_early && (!run.failures.is_empty() || raced) {
            break;
        }
        let gap = gaps_ms[run.rounds % gaps_ms.len()];
        std::thread::sleep(Duration::from_secs_f64(gap / 1000.0));
        prev_gap = Some(gap);
        run.rounds += 1;
    }
    run.elapsed = start.elapsed();
    run
}

#[test]
fn upstream_keepalive_timeout_race() {
    let tmp = shared_tempdir();
    let app = App::uvicorn(&tmp.path().join("app"))
        .args(&["--timeout-keep-alive", "1"])
        .start();
    // Broken: nginx keeps idle upstream connections 60 s (the default), the backend 1 s.
    let broken = keepalive_nginx(&tmp.path().join("broken"), app.port(), "");
    let run = keepalive_race(&broken, 60, Duration::from_secs(70), true);
    eprintln!("[keepalive race] broken: {run:?}");
    let log = broken.error_log_text();
    let race_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("upstream prematurely closed") || l.contains("recv() failed (104"))
        .collect();
    assert!(
        !run.failures.is_empty() || !race_lines.is_empty(),
        "no 502 and no race line in {run:?}\n{log}"
    );
    if !run.failures.is_empty() {
        assert!(run.failures.contains(&502), "{run:?}");
    }

    // Fixed: nginx drops idle upstream connections after 500 ms, before the backend's 1 s.
    let fixed = keepalive_nginx(&tmp.path().join("fixed"), app.port(), "    keepalive_timeout 500ms;\n");
    let rounds = run.rounds.max(8);
    let ok = keepalive_race(&fixed, rounds, Duration::from_secs(30), false);
    eprintln!("[keepalive race] fixed: {ok:?}");
    assert!(ok.failures.is_empty(), "{ok:?}\n{}", fixed.error_log_text());
    assert!(fixed.error_lines("upstream prematurely closed").is_empty());
    assert!(fixed.error_lines("recv() failed (104").is_empty());

    let kind = "upstream_keepalive_timeout_race";
    let backend = [app.cmdline()];
    let mut problems = reflex_check("broken", &broken.conf(), &backend, &Wrap::None)
        .problems(kind, true);
    problems.extend(reflex_check("fixed", &fixed.conf(), &backend, &Wrap::None).problems(kind, false));
    assert_no_problems(&problems);
}

/// What a burst against a SIGSTOPped backend saw.
#[derive(Debug)]
struct Burst {
    /// Status codes answered while the backend was stopped (0 = transport error).
    while_stopped: Vec<u16>,
    /// Status codes answered after SIGCONT.
    after_cont: Vec<u16>,
}

/// Stops the backend, sends `n` concurrent GETs, collects what comes back within `hold`,
/// continues the backend and collects the rest (each request bounded by the client timeout).
fn burst_while_stopped(nginx: &Nginx, app: &App, n: usize, hold: Duration) -> Burst {
    assert!(app.signal("STOP"), "SIGSTOP the backend");
    let port = nginx.port();
    let (tx, rx) = std::sync::mpsc::channel();
    let workers: Vec<_> = (0..n)
        .map(|_| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let _ = tx.send(http::status_or_zero(&http::get(port, "/")));
            })
        })
        .collect();
    drop(tx);
    let deadline = Instant::now() + hold;
    let mut while_stopped = Vec::new();
    while let Ok(code) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        while_stopped.push(code);
    }
    assert!(app.signal("CONT"), "SIGCONT the backend");
    let after_cont: Vec<u16> = rx.iter().collect();
    for w in workers {
        let _ = w.join();
    }
    Burst {
        while_stopped,
        after_cont,
    }
}

#[test]
fn backlog_above_somaxconn() {
    const BURST: usize = 50;
    let tmp = shared_tempdir();
    // uvicorn asks for --backlog 2048, but the kernel caps listen() at net.core.somaxconn of
    // the backend's network namespace. A private namespace with somaxconn=8 makes the cap
    // bite without touching the machine; the unix socket is reachable from nginx outside it.
    let start = |name: &str, somaxconn: u32| {
        let app = App::uvicorn(&tmp.path().join(name))
            .bind(Bind::Uds)
            .args(&["--backlog", "2048"])
            .wrap(Wrap::NetNs { somaxconn })
            .start();
        let nginx = Nginx::builder(&tmp.path().join(format!("{name}-nginx")))
            .server(&proxy_with(
                &format!("http://unix:{}:", app.uds().display()),
                "    proxy_read_timeout 20s;\n",
            ))
            .start();
        (app, nginx)
    };

    let (app, broken) = start("broken", 8);
    let b = burst_while_stopped(&broken, &app, BURST, Duration::from_millis(1500));
    let fast_502 = b.while_stopped.iter().filter(|&&c| c == 502).count();
    assert!(
        fast_502 >= BURST / 2,
        "expected most of the burst to fail at once: {b:?}\n{}",
        broken.error_log_text()
    );
    assert!(
        !broken.error_lines("failed (11: Resource temporarily unavailable) while connecting to upstream").is_empty(),
        "{}",
        broken.error_log_text()
    );
    assert!(b.after_cont.iter().all(|&c| c == 200), "queued ones are served: {b:?}");
    let kind = "backlog_above_somaxconn";
    let mut problems = reflex_check("somaxconn 8", &broken.conf(), &[app.cmdline()], &Wrap::NetNs { somaxconn: 8 })
        .problems(kind, true);

    let (app, fixed) = start("fixed", 4096);
    let b = burst_while_stopped(&fixed, &app, BURST, Duration::from_millis(1500));
    assert!(b.while_stopped.is_empty(), "nothing answers while stopped: {b:?}");
    assert_eq!(b.after_cont, vec![200; BURST], "{}", fixed.error_log_text());
    assert!(fixed.error_lines("(11: Resource temporarily unavailable)").is_empty());
    problems.extend(
        reflex_check("somaxconn 4096", &fixed.conf(), &[app.cmdline()], &Wrap::NetNs { somaxconn: 4096 })
            .problems(kind, false),
    );
    assert_no_problems(&problems);
}

#[test]
#[ignore = "tuning: failures per idle gap over GAPS (comma-separated ms) x ROUNDS"]
fn keepalive_race_profile() {
    let gaps: Vec<f64> = std::env::var("GAPS")
        .unwrap_or_else(|_| "997.0,997.5,998.0,998.5,999.0,999.5,1000.0,1000.5,1001.0,1001.5".into())
        .split(',')
        .filter_map(|g| g.parse().ok())
        .collect();
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(80);
    let tmp = shared_tempdir();
    let app = App::uvicorn(&tmp.path().join("app"))
        .args(&["--timeout-keep-alive", "1"])
        .start();
    let nginx = keepalive_nginx(&tmp.path().join("n"), app.port(), "");
    let run = keepalive_race_with(&nginx, &gaps, rounds, Duration::from_secs(600), false);
    for g in &gaps {
        let rs: Vec<usize> = run.per_round.iter().filter(|(x, _)| x == g).map(|(_, n)| *n).collect();
        let hit = rs.iter().filter(|&&n| n > 0).count();
        eprintln!("gap {g}: rounds {} with-failure {hit} failures {}", rs.len(), rs.iter().sum::<usize>());
    }
}

#[test]
#[ignore = "tuning: REPS runs of the broken keep-alive pattern, prints rounds to first failure"]
fn keepalive_race_hit_rate() {
    let reps: usize = std::env::var("REPS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let tmp = shared_tempdir();
    let app = App::uvicorn(&tmp.path().join("app"))
        .args(&["--timeout-keep-alive", "1"])
        .start();
    for i in 0..reps {
        let nginx = keepalive_nginx(&tmp.path().join(format!("n{i}")), app.port(), "");
        let run = keepalive_race(&nginx, 60, Duration::from_secs(70), true);
        let lines = nginx.error_lines("upstream");
        eprintln!("rep {i}: rounds {} failures {:?} in {:?}; {:?}", run.rounds, run.failures, run.elapsed, lines);
    }
}
