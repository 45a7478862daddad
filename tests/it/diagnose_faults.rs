//! `reflex diagnose` against real faults: for every kind it can name, a real nginx in front of a
//! real uvicorn/gunicorn (under supervisord where it matters) is broken for real, real requests
//! fail, and `reflex diagnose --format json` runs as a process while the fault is still active.
//! Each test asserts the live fault first (status codes, the nginx error-log phrase), then the
//! TOP finding's kind and, where it is clear-cut, `restart_helps`.
//!
//! Plus: a healthy stack under load (no finding, exit 0), an unprivileged run, an offline run
//! on copied logs, and the latency of a run whose logs hold ~200 MB of older lines.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::diag_support::{
    Diagnose, FORMAT, ModuleApp, Report, Supervisord, access_lines, access_log, concurrent,
    copy_apps, get_each, nginx, proxy, wait_until,
};

mod killed;
mod members;
mod nginx_side;
mod tls;
mod window;
use crate::harness::app::{App, Bind};
use crate::harness::load::keepalive_rounds;
use crate::harness::nginx::{Nginx, free_port};
use crate::harness::ns::{Wrap, dual_stack_hosts, require_root};
use crate::harness::{http, shared_tempdir, venv_bin};

/// The live fault as nginx logged it, for failure messages.
fn logs(n: &Nginx) -> String {
    format!(
        "error.log:\n{}access.log:\n{}",
        n.error_log_text(),
        access_lines(n).join("\n")
    )
}

/// A TCP uvicorn (`args`) behind nginx proxying `/` to it with `extra` location directives.
fn tcp_stack(dir: &Path, args: &[&str], extra: &str) -> (App, Nginx) {
    let app = App::uvicorn(&dir.join("app")).args(args).start();
    let target = format!("http://127.0.0.1:{}", app.port());
    let n = nginx(&dir.join("nginx"), "", &proxy(&target, extra)).start();
    (app, n)
}

/// nginx proxying `/` to `target`, where every request is a 502, then `reflex diagnose` told
/// `app`'s command line.
fn diagnose_502s(dir: &Path, target: &str, app: &App) -> (Nginx, Report) {
    let n = nginx(&dir.join("nginx"), "", &proxy(target, "")).start();
    assert_eq!(get_each(n.port(), &["/", "/health", "/"]), [502; 3]);
    let r = Diagnose::new(&n.conf()).backend(&app.cmdline()).run(dir);
    (n, r)
}

/// A uvicorn behind nginx, then `kill -9`: every request is refused (502).
fn backend_down_stack(dir: &Path) -> (App, Nginx) {
    let (app, n) = tcp_stack(dir, &[], "");
    assert_eq!(get_each(n.port(), &["/"]), [200]);
    assert!(app.signal("KILL"), "kill -9 the backend");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], app.port()));
    assert!(
        wait_until(Duration::from_secs(5), || TcpStream::connect(addr).is_err()),
        "the killed backend still accepts"
    );
    let codes = get_each(n.port(), &["/", "/health", "/items", "/"]);
    assert_eq!(codes, [502; 4], "{}", logs(&n));
    assert!(!n.error_lines("(111: Connection refused)").is_empty());
    (app, n)
}

#[test]
fn backend_down() {
    let tmp = shared_tempdir();
    let (app, n) = backend_down_stack(tmp.path());
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .run(tmp.path());
    r.expect_top("backend_down", Some(true), &logs(&n));
}

/// uvicorn imports the app before it binds: an import error means it never listens, exits,
/// and supervisord restarts it until it gives up (BACKOFF, then FATAL). nginx: 111 only.
#[test]
fn backend_crash_loop_uvicorn_under_supervisord() {
    uvicorn_crash_loop("");
}

/// The same with the program's output discarded (`*_logfile=NONE`): no start-up error line to
/// read, so supervisord's BACKOFF/FATAL alone must outrank `backend_down` (a restart does not
/// help: it dies on start).
#[test]
fn backend_crash_loop_without_program_logs() {
    uvicorn_crash_loop("stdout_logfile=NONE\nstderr_logfile=NONE\n");
}

fn uvicorn_crash_loop(logs_options: &str) {
    let tmp = shared_tempdir();
    let dir = tmp.path().join("app");
    copy_apps(&dir, &["broken_import.py"]);
    let port = free_port();
    let uvicorn = venv_bin("uvicorn");
    let command = format!(
        "{} broken_import:app --host 127.0.0.1 --port {port}",
        uvicorn.display()
    );
    // startsecs above the import time: every start counts as a failure, so BACKOFF follows.
    let options = format!("startsecs=5\nstartretries=3\n{logs_options}");
    let sv = Supervisord::start(&dir, &command, &options);
    let target = format!("http://127.0.0.1:{port}");
    let n = nginx(&tmp.path().join("nginx"), "", &proxy(&target, "")).start();
    let state = sv.wait_state(&["BACKOFF", "FATAL"], Duration::from_secs(40));
    assert!(state.is_some(), "never BACKOFF/FATAL: {:?}", sv.web());
    assert_eq!(get_each(n.port(), &["/", "/health", "/"]), [502; 3]);
    let r = Diagnose::new(&n.conf())
        .args(&[Path::new("--supervisord-conf"), &sv.conf])
        .run(tmp.path());
    r.expect_top("backend_crash_loop", Some(false), &logs(&n));
}

/// gunicorn binds first, then its worker fails to import the app and the master exits: nginx's
/// connections are accepted then reset while the master lives, refused in between.
#[test]
fn backend_crash_loop_gunicorn_binds_then_workers_fail() {
    let tmp = shared_tempdir();
    let dir = tmp.path().join("app");
    copy_apps(&dir, &["broken_import.py"]);
    let port = free_port();
    let command = format!(
        "{} -b 127.0.0.1:{port} -k uvicorn.workers.UvicornWorker -w 1 broken_import:app",
        venv_bin("gunicorn").display()
    );
    let sv = Supervisord::start(&dir, &command, "startsecs=10\nstartretries=50\n");
    let target = format!("http://127.0.0.1:{port}");
    let n = nginx(&tmp.path().join("nginx"), "", &proxy(&target, "")).start();
    // Requests for a few restarts (bounded), so both kinds of failure reach the error log.
    let started = Instant::now();
    let mut codes = Vec::new();
    while started.elapsed() < Duration::from_secs(12) && codes.len() < 200 {
        let c = http::request(n.port(), "GET", "/", None, Duration::from_secs(5));
        codes.push(http::status_or_zero(&c));
        let reset = !n.error_lines("(104: Connection reset by peer)").is_empty()
            || !n.error_lines("upstream prematurely closed").is_empty();
        if reset && started.elapsed() > Duration::from_secs(3) {
            break;
        }
        sleep(Duration::from_millis(100));
    }
    assert!(codes.iter().all(|&c| c == 502), "{codes:?}\n{}", logs(&n));
    let log = || std::fs::read_to_string(dir.join("web.err.log")).unwrap_or_default();
    let failed = wait_until(Duration::from_secs(15), || {
        log().contains("Worker failed to boot")
    });
    assert!(failed, "{}", log());
    let state = sv.web().map(|p| p.state);
    eprintln!(
        "[crash loop gunicorn] {} requests in {:?}; state {state:?}; refused {} reset {} closed {}",
        codes.len(),
        started.elapsed(),
        n.error_lines("(111: Connection refused)").len(),
        n.error_lines("(104: Connection reset by peer)").len(),
        n.error_lines("upstream prematurely closed").len(),
    );
    let r = Diagnose::new(&n.conf())
        .args(&[Path::new("--supervisord-conf"), &sv.conf])
        .run(tmp.path());
    r.expect_top("backend_crash_loop", Some(false), &logs(&n));
}

#[test]
fn upstream_address_mismatch() {
    let tmp = shared_tempdir();
    let app = App::uvicorn(&tmp.path().join("app")).start();
    // Nothing listens on `wrong`: a port that was free a moment ago.
    let wrong = format!("http://127.0.0.1:{}", free_port());
    let (n, r) = diagnose_502s(tmp.path(), &wrong, &app);
    r.expect_top("upstream_address_mismatch", Some(false), &logs(&n));
}

/// One uvicorn process on `--host ::` listens on IPv6 only (asyncio sets IPV6_V6ONLY, and
/// sock_diag reports it): nginx's 127.0.0.1 is refused while `[::]` listens. The live
/// diagnosis must not take that socket as dual-stack (nothing would explain the refusals, or
/// the backend would look down): the backend listens on another address.
#[test]
fn upstream_address_mismatch_ipv6_only_uvicorn() {
    let tmp = shared_tempdir();
    let app = App::uvicorn(&tmp.path().join("app")).ipv6_only().start();
    let target = format!("http://127.0.0.1:{}", app.port());
    let (n, r) = diagnose_502s(tmp.path(), &target, &app);
    r.expect_top("upstream_address_mismatch", Some(false), &logs(&n));
    let message = r
        .top()
        .and_then(|f| f["message"].as_str())
        .unwrap_or_default();
    assert!(
        message.contains(&format!("listens on [::1]:{}", app.port())),
        "{message}"
    );
}

/// `localhost` resolves to `::1` and `127.0.0.1` (a hosts file bind-mounted in a private mount
/// namespace, where nginx AND reflex run); the backend listens on 127.0.0.1 only.
#[test]
fn address_family_mismatch() {
    let tmp = shared_tempdir();
    let hosts = Wrap::Hosts(dual_stack_hosts(tmp.path()));
    let app = App::uvicorn(&tmp.path().join("app")).start();
    let port = app.port();
    let target = format!("http://localhost:{port}");
    let n = nginx(&tmp.path().join("nginx"), "", &proxy(&target, ""))
        .wrap(hosts.clone())
        .start();
    // GETs are retried on the other address: 200 for the client, "502, 200" in the log.
    assert_eq!(get_each(n.port(), &["/"; 4]), [200; 4]);
    let refused = n.error_lines("(111: Connection refused)");
    assert!(
        refused.iter().any(|l| l.contains(&format!("[::1]:{port}"))),
        "{}",
        logs(&n)
    );
    let retried = access_lines(&n).iter().any(|l| l.contains(r#""502, 200""#));
    assert!(retried, "{}", logs(&n));
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .wrap(hosts)
        .run(tmp.path());
    r.expect_top("address_family_mismatch", Some(false), &logs(&n));
}

#[test]
fn unix_socket_permission_denied() {
    use std::os::unix::fs::PermissionsExt;
    require_root("nginx workers running as nobody");
    let tmp = shared_tempdir();
    let app = App::uvicorn(&tmp.path().join("app"))
        .bind(Bind::Uds)
        .start();
    let sock = app.uds().to_path_buf();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    // The workers run as nobody (the harness's `user`); the socket is root's, 0600.
    let target = format!("http://unix:{}:", sock.display());
    let n = nginx(&tmp.path().join("nginx"), "", &proxy(&target, "")).start();
    assert_eq!(get_each(n.port(), &["/", "/health"]), [502; 2]);
    assert!(!n.error_lines("(13: Permission denied)").is_empty());
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .run(tmp.path());
    r.expect_top("unix_socket_permission_denied", Some(false), &logs(&n));
}

/// A CPU-bound handler keeps uvicorn's event loop busy (running, not stopped), so with
/// `--backlog 2` the unix socket's accept queue fills and nginx gets EAGAIN at once.
#[test]
fn listen_backlog_full() {
    const SPIN_S: u64 = 5;
    let tmp = shared_tempdir();
    let app = ModuleApp::start(
        &tmp.path().join("app"),
        "cpu_app",
        &["cpu_app.py"],
        &["--backlog", "2"],
    );
    let target = format!("http://unix:{}:", app.uds().display());
    let extra = "    proxy_read_timeout 30s;\n";
    let n = nginx(&tmp.path().join("nginx"), "", &proxy(&target, extra)).start();
    let port = n.port();
    let spin = std::thread::spawn(move || {
        let path = format!("/spin?s={SPIN_S}");
        http::status_or_zero(&http::request(
            port,
            "GET",
            &path,
            None,
            Duration::from_secs(40),
        ))
    });
    sleep(Duration::from_millis(800));
    // The burst: a few wait in the queue (served after the spin), the rest fail at once.
    let (tx, rx) = std::sync::mpsc::channel();
    let burst: Vec<_> = (0..12)
        .map(|_| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let r = http::request(port, "GET", "/", None, Duration::from_secs(40));
                let _ = tx.send(http::status_or_zero(&r));
            })
        })
        .collect();
    drop(tx);
    let mut fast = Vec::new();
    let deadline = Instant::now() + Duration::from_millis(1500);
    while let Ok(c) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        fast.push(c);
    }
    let eagain = n.error_lines("(11: Resource temporarily unavailable)");
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .run(tmp.path());
    let live = format!("fast answers {fast:?}\n{}", logs(&n));
    assert!(fast.contains(&502) && !eagain.is_empty(), "{live}");
    r.expect_top("listen_backlog_full", Some(false), &live);
    assert_eq!(spin.join().ok(), Some(200), "the spin ends normally");
    let rest: Vec<u16> = rx.iter().collect();
    burst.into_iter().for_each(|h| drop(h.join()));
    assert!(
        rest.iter().all(|&c| c == 200),
        "queued ones are served: {rest:?}"
    );
}

#[test]
fn backend_hung() {
    let tmp = shared_tempdir();
    let (app, n) = tcp_stack(tmp.path(), &[], "    proxy_read_timeout 1s;\n");
    assert!(app.signal("STOP"), "SIGSTOP the backend");
    let port = n.port();
    let codes: Vec<u16> = std::thread::scope(|s| {
        let hs: Vec<_> = ["/", "/health", "/items"]
            .map(|p| s.spawn(move || get_each(port, &[p])[0]))
            .into_iter()
            .collect();
        hs.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    });
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .run(tmp.path());
    app.signal("CONT");
    assert_eq!(codes, [504; 3], "{}", logs(&n));
    r.expect_top("backend_hung", Some(true), &logs(&n));
}

/// One slow endpoint beyond `proxy_read_timeout 1s` while the rest of the app answers (light
/// traffic to `/health` keeps flowing during the diagnosis, as on a live site).
#[test]
fn upstream_read_timeout() {
    read_timeout_case(true);
}

/// The same with no traffic while reflex samples: an idle uvicorn makes no CPU progress in the
/// 300 ms sample, which must not read as "stuck" (nothing waits in its queue and its probe
/// answers), so this is still a slow endpoint, not a hung backend.
#[test]
fn upstream_read_timeout_idle_backend() {
    read_timeout_case(false);
}

fn read_timeout_case(traffic: bool) {
    let tmp = shared_tempdir();
    let (app, n) = tcp_stack(tmp.path(), &[], "    proxy_read_timeout 1s;\n");
    let port = n.port();
    let codes = std::thread::scope(|s| {
        let slow = s.spawn(|| concurrent(port, "/slow?s=3", 3, Duration::from_secs(10)));
        let ok = get_each(port, &["/health", "/", "/health"]);
        (slow.join().unwrap_or_default(), ok)
    });
    assert_eq!(codes, (vec![504; 3], vec![200; 3]), "{}", logs(&n));
    let stop = AtomicBool::new(!traffic);
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            let until = Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                let _ = http::request(port, "GET", "/health", None, Duration::from_secs(2));
                sleep(Duration::from_millis(20));
            }
        });
        let r = Diagnose::new(&n.conf())
            .backend(&app.cmdline())
            .run(tmp.path());
        stop.store(true, Ordering::Relaxed);
        r
    });
    r.expect_top("upstream_read_timeout", Some(false), &logs(&n));
}

/// Idle gaps (ms) around the backend's 1 s keep-alive: see repro_502/keepalive.rs, where they
/// were measured.
const KEEPALIVE_GAPS_MS: [f64; 14] = [
    999.5, 997.0, 1000.5, 995.5, 998.5, 1001.5, 996.5, 1000.0, 997.5, 999.0, 995.0, 1001.0, 998.0,
    996.0,
];

#[test]
fn keepalive_race() {
    let tmp = shared_tempdir();
    let app = App::uvicorn(&tmp.path().join("app"))
        .args(&["--timeout-keep-alive", "1"])
        .start();
    let upstream = format!(
        "upstream backend {{\n    server 127.0.0.1:{};\n    keepalive 8;\n}}\n",
        app.port()
    );
    let extra = "    proxy_http_version 1.1;\n    proxy_set_header Connection \"\";\n";
    let n = nginx(
        &tmp.path().join("nginx"),
        &upstream,
        &proxy("http://backend", extra),
    )
    .start();
    let run = keepalive_rounds(&n, &KEEPALIVE_GAPS_MS, 56, Duration::from_secs(70), true);
    eprintln!("[keepalive race] {run:?}");
    let raced = !n.error_lines("upstream prematurely closed").is_empty()
        || !n.error_lines("recv() failed (104").is_empty();
    assert!(raced, "no race in {run:?}\n{}", logs(&n));
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .run(tmp.path());
    r.expect_top("keepalive_race", Some(false), &logs(&n));
}

/// gunicorn `--timeout 2` kills a worker whose event loop is blocked (`/block`), before nginx's
/// 4 s read timeout: 502 `upstream prematurely closed`; the app log says WORKER TIMEOUT.
#[test]
fn worker_killed() {
    let tmp = shared_tempdir();
    let app = App::gunicorn(&tmp.path().join("app"))
        .args(&[
            "-k",
            "uvicorn.workers.UvicornWorker",
            "-w",
            "1",
            "--timeout",
            "2",
        ])
        .start();
    let target = format!("http://127.0.0.1:{}", app.port());
    let extra = "    proxy_read_timeout 4s;\n";
    let n = nginx(&tmp.path().join("nginx"), "", &proxy(&target, extra)).start();
    assert_eq!(get_each(n.port(), &["/block?s=5"]), [502], "{}", logs(&n));
    assert!(
        wait_until(Duration::from_secs(5), || app
            .log_text()
            .contains("WORKER TIMEOUT")),
        "{}",
        app.log_text()
    );
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .app_log(&app.stderr_log())
        .run(tmp.path());
    r.expect_top("worker_killed", Some(false), &logs(&n));
}

#[test]
fn upstream_header_too_big() {
    let tmp = shared_tempdir();
    let (app, n) = tcp_stack(tmp.path(), &[], "");
    let codes = get_each(
        n.port(),
        &["/big-header?n=16384", "/", "/big-header?n=16384"],
    );
    assert_eq!(codes, [502, 200, 502], "{}", logs(&n));
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .run(tmp.path());
    r.expect_top("upstream_header_too_big", Some(false), &logs(&n));
}

#[test]
fn upstream_protocol_mismatch() {
    let tmp = shared_tempdir();
    let app = App::uvicorn(&tmp.path().join("app")).start();
    let target = format!("https://127.0.0.1:{}", app.port());
    let (n, r) = diagnose_502s(tmp.path(), &target, &app);
    assert!(!n.error_lines("SSL_do_handshake() failed").is_empty());
    r.expect_top("upstream_protocol_mismatch", Some(false), &logs(&n));
}

#[test]
fn application_error_status() {
    let tmp = shared_tempdir();
    let (app, n) = tcp_stack(tmp.path(), &[], "");
    let codes = get_each(
        n.port(),
        &["/status/500", "/", "/status/502", "/status/500"],
    );
    assert_eq!(codes, [500, 200, 502, 500], "{}", logs(&n));
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .run(tmp.path());
    r.expect_top("application_error_status", Some(false), &logs(&n));
}

/// uvicorn 0.54 counts the request's own connection against `--limit-concurrency`, so a limit
/// of 1 rejects every request (even the readiness check): 2 with concurrent slow requests.
#[test]
fn backend_concurrency_limit() {
    let tmp = shared_tempdir();
    let (app, n) = tcp_stack(tmp.path(), &["--limit-concurrency", "2"], "");
    let codes = concurrent(n.port(), "/slow?s=1", 6, Duration::from_secs(10));
    assert!(codes.contains(&503), "{codes:?}\n{}", logs(&n));
    assert!(
        wait_until(Duration::from_secs(5), || app
            .log_text()
            .contains("Exceeded concurrency limit.")),
        "{}",
        app.log_text()
    );
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .app_log(&app.stderr_log())
        .run(tmp.path());
    r.expect_top("backend_concurrency_limit", Some(false), &logs(&n));
}

/// Clients that hang up before a slow response: nginx logs 499. Enough of them (6 of 8
/// requests: over the rule's 5 and 1%) to be a finding.
#[test]
fn client_closed_request() {
    let tmp = shared_tempdir();
    let (app, n) = tcp_stack(tmp.path(), &[], "");
    let port = n.port();
    hang_up(port, 6, "/slow?s=2");
    assert_eq!(get_each(port, &["/", "/health"]), [200; 2]);
    let closed = wait_until(Duration::from_secs(5), || count_499(&n) == 6);
    assert!(closed, "{}", logs(&n));
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .run(tmp.path());
    r.expect_top("client_closed_request", Some(false), &logs(&n));
}

/// `n` clients that send a request for `path` and hang up 300 ms later, concurrently.
fn hang_up(port: u16, n: usize, path: &str) {
    std::thread::scope(|s| {
        for _ in 0..n {
            s.spawn(move || {
                let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect nginx");
                let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
                c.write_all(req.as_bytes()).expect("send");
                sleep(Duration::from_millis(300));
                // Hanging up: dropping the stream closes it before the response.
            });
        }
    });
}

fn count_499(n: &Nginx) -> usize {
    access_lines(n)
        .iter()
        .filter(|l| l.contains(" 499 "))
        .count()
}

#[test]
fn healthy_stack_under_load() {
    let tmp = shared_tempdir();
    let (app, n) = tcp_stack(tmp.path(), &[], "");
    let port = n.port();
    let codes: Vec<u16> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|i| {
                s.spawn(move || {
                    let path = if i % 2 == 0 { "/" } else { "/health" };
                    get_each(port, &[path; 50])
                })
            })
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    assert_eq!(codes, vec![200; 200], "{}", logs(&n));
    // A couple of impatient clients, as on any live site: not a finding.
    hang_up(port, 2, "/slow?s=1");
    assert!(
        wait_until(Duration::from_secs(5), || count_499(&n) == 2),
        "{}",
        logs(&n)
    );
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .run(tmp.path());
    assert!(
        r.json.is_some() && r.findings().is_empty() && r.code == Some(0),
        "a healthy stack: no finding, exit 0\n{}",
        r.explain()
    );
    let requests = r.json.as_ref().and_then(|j| j["logs"]["requests"].as_u64());
    assert!(
        requests >= Some(200),
        "the load is in the window\n{}",
        r.explain()
    );
}

/// As `nobody`, with the config and logs readable: the cause is still named, what root alone
/// can see is listed as unavailable, and it exits 1 (not 2, not a crash).
#[test]
fn unprivileged_still_names_the_cause() {
    require_root("switching to nobody");
    let tmp = shared_tempdir();
    let (app, n) = backend_down_stack(tmp.path());
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .unprivileged()
        .run(tmp.path());
    r.expect_top("backend_down", Some(true), &logs(&n));
    eprintln!("[unprivileged] unavailable: {:?}", r.unavailable());
    // What only root sees, each named with why and how to get it: the kernel log (OOM kills),
    // and the owners of sockets in other users' /proc/PID/fd.
    for (what, why, how) in [
        (
            "OOM kills (kernel log)",
            "/dev/kmsg",
            "run as root or with CAP_SYSLOG",
        ),
        (
            "socket owners (/proc/*/fd)",
            "permission denied",
            "run as root or with CAP_SYS_PTRACE",
        ),
    ] {
        let found = r.unavailable().iter().any(|u| {
            u["what"].as_str().is_some_and(|w| w.contains(what))
                && u["why"].as_str().is_some_and(|w| w.contains(why))
                && u["how"].as_str().is_some_and(|h| h.contains(how))
        });
        assert!(
            found,
            "unavailable should list {what} ({why}; {how})\n{}",
            r.explain()
        );
    }
    assert!(
        r.unavailable()
            .iter()
            .all(|u| !u["how"].as_str().unwrap_or("").is_empty()),
        "every unavailable item says how to get it\n{}",
        r.explain()
    );
}

/// The backend_down logs copied elsewhere and read `--offline`: the same cause, less sure.
#[test]
fn offline_copied_logs() {
    let tmp = shared_tempdir();
    let (app, n) = backend_down_stack(tmp.path());
    let live = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .run(tmp.path());
    live.expect_top("backend_down", Some(true), &logs(&n));
    let copied = tmp.path().join("copied");
    std::fs::create_dir_all(&copied).expect("mkdir");
    let (err, acc) = (copied.join("error.log"), copied.join("access.log"));
    std::fs::copy(n.error_log(), &err).expect("copy error.log");
    std::fs::copy(access_log(&n), &acc).expect("copy access.log");
    let offline = Diagnose::new(&n.conf())
        .args(&[Path::new("--offline"), Path::new("--error-log"), &err])
        .args(&[Path::new("--access-log"), &acc])
        .args(&["--log-format", FORMAT])
        .run(tmp.path());
    offline.expect_top("backend_down", None, &logs(&n));
    assert!(
        offline.top_confidence() < live.top_confidence(),
        "offline {} should be below live {}\n{}",
        offline.top_confidence(),
        live.top_confidence(),
        offline.explain()
    );
}

/// Bytes of older log lines (split between the error and the access log) before the window:
/// `REFLEX_BENCH_LOG_BYTES`, else 128 MiB. `scripts/bench-diagnose` runs this test with 1 GiB
/// and reports the time; the test itself asserts what makes it fast, not a time.
fn old_bytes() -> u64 {
    std::env::var("REFLEX_BENCH_LOG_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128 << 20)
}

/// Lines from 3 h to 20 min ago, then the backend_down fault's real lines: diagnosis seeks to
/// the window by binary search, so it reads a few probes and the window, never the old bulk.
/// The old error lines are of another cause (too big headers, ranked above backend_down if
/// they were read).
#[test]
fn large_logs_stay_fast() {
    let tmp = shared_tempdir();
    let (app, n) = backend_down_stack(tmp.path());
    let started = Instant::now();
    let (err, acc) = (
        tmp.path().join("big-error.log"),
        tmp.path().join("big-access.log"),
    );
    write_old_lines(&err, &acc, old_bytes() / 2);
    append(&err, &n.error_log());
    append(&acc, &access_log(&n));
    let generation = started.elapsed();
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "[large logs] {} + {} bytes generated in {generation:?}",
        size(&err),
        size(&acc)
    );
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .args(&[
            Path::new("--error-log"),
            &err,
            Path::new("--access-log"),
            &acc,
        ])
        .args(&["--log-format", FORMAT])
        .run(tmp.path());
    eprintln!(
        "[large logs] reflex diagnose took {:.0} ms",
        r.elapsed.as_secs_f64() * 1000.0
    );
    r.expect_top("backend_down", Some(true), &logs(&n));
    // Two files, each a binary search (64 KiB probes) and a window of a few lines.
    let read = r
        .json
        .as_ref()
        .and_then(|j| j["logs"]["bytes_read"].as_u64())
        .unwrap_or(u64::MAX);
    eprintln!("[large logs] reflex diagnose read {read} bytes");
    assert!(
        read < 2 << 20,
        "read {read} bytes of {}\n{}",
        size(&err) + size(&acc),
        r.explain()
    );
}

/// Writes about `bytes` of old lines to each of `err` and `acc`, oldest first, in the formats
/// nginx writes (the error log in local time, the access log with its UTC offset).
fn write_old_lines(err: &Path, acc: &Path, bytes: u64) {
    const SPAN_S: i64 = 3 * 3600;
    const END_AGO_S: i64 = 20 * 60;
    let err_rest = b" [error] 4242#4242: *1 upstream sent too big header while reading response header from upstream, client: 127.0.0.1, server: _, request: \"GET /old HTTP/1.1\", upstream: \"http://127.0.0.1:9/old\", host: \"localhost\"\n";
    let acc_rest = b"] \"GET /old HTTP/1.1\" 200 17 \"127.0.0.1:9\" \"200\" \"0.000\" \"0.001\" \"0.001\" 0.001\n";
    let per_s = |line: u64| (bytes / line / SPAN_S as u64).max(1);
    let (err_n, acc_n) = (
        per_s(20 + err_rest.len() as u64),
        per_s(50 + acc_rest.len() as u64),
    );
    let file = |p: &Path| {
        std::io::BufWriter::with_capacity(4 << 20, std::fs::File::create(p).expect("create"))
    };
    let (mut e, mut a) = (file(err), file(acc));
    let tz = jiff::tz::TimeZone::system();
    let now = jiff::Timestamp::now().as_second();
    for s in (now - END_AGO_S - SPAN_S)..(now - END_AGO_S) {
        let t = jiff::Timestamp::from_second(s)
            .expect("timestamp")
            .to_zoned(tz.clone());
        let et = t.strftime("%Y/%m/%d %H:%M:%S").to_string();
        let at = t
            .strftime("127.0.0.1 - - [%d/%b/%Y:%H:%M:%S %z")
            .to_string();
        for _ in 0..err_n {
            e.write_all(et.as_bytes()).expect("write");
            e.write_all(err_rest).expect("write");
        }
        for _ in 0..acc_n {
            a.write_all(at.as_bytes()).expect("write");
            a.write_all(acc_rest).expect("write");
        }
    }
    e.flush().expect("flush");
    a.flush().expect("flush");
}

/// Appends the contents of `from` to `to`.
fn append(to: &Path, from: &Path) {
    let mut text = Vec::new();
    std::fs::File::open(from)
        .and_then(|mut f| f.read_to_end(&mut text))
        .expect("read log");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(to)
        .expect("open big log");
    f.write_all(&text).expect("append");
}
