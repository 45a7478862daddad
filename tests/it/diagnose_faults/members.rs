//! Faults where the error-log line is shared with another cause and only the live evidence
//! separates them: a busy backend's full TCP backlog (not a hang), and a dead member of an
//! upstream group (not an address mismatch).

use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::logs;
use crate::diag_support::{Diagnose, Listen, ModuleApp, get_each, nginx, proxy, wait_until};
use crate::harness::app::App;
use crate::harness::http;

/// uvicorn `--backlog 2` on TCP, its event loop spinning on a CPU-bound handler (state R, CPU
/// rising), and a burst: the kernel's accept queue fills, further SYNs are dropped, and nginx
/// times out connecting (504, `upstream timed out (110) while connecting to upstream`). The
/// backend is busy, not stuck: `listen_backlog_full`, and a restart would not help.
#[test]
fn tcp_backlog_full_at_a_busy_backend() {
    const SPIN_S: u64 = 12;
    let tmp = crate::harness::shared_tempdir();
    let app = ModuleApp::uvicorn(
        &tmp.path().join("app"),
        "cpu_app",
        &["cpu_app.py"],
        &["--backlog", "2"],
        Listen::Tcp,
    );
    let target = format!("http://127.0.0.1:{}", app.port());
    let extra = "    proxy_connect_timeout 1s;\n    proxy_read_timeout 60s;\n";
    let n = nginx(&tmp.path().join("nginx"), "", &proxy(&target, extra)).start();
    let port = n.port();
    let spin = std::thread::spawn(move || {
        let r = http::request(
            port,
            "GET",
            &format!("/spin?s={SPIN_S}"),
            None,
            Duration::from_secs(90),
        );
        http::status_or_zero(&r)
    });
    // cpu_app.py prints (flushed) before it spins: the event loop is busy from then on.
    let spinning = wait_until(Duration::from_secs(20), || {
        app.log_text().contains("spin start")
    });
    assert!(spinning, "/spin did not start\n{}", app.log_text());
    let burst: Vec<_> = (0..16)
        .map(|_| {
            std::thread::spawn(move || {
                http::status_or_zero(&http::request(
                    port,
                    "GET",
                    "/",
                    None,
                    Duration::from_secs(90),
                ))
            })
        })
        .collect();
    let started = Instant::now();
    let timed_out = wait_until(Duration::from_secs(8), || {
        n.error_lines("while connecting to upstream").len() >= 3
    });
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .run(tmp.path());
    let live = format!(
        "connect timeouts after {:?}\n{}",
        started.elapsed(),
        logs(&n)
    );
    assert!(
        timed_out && !n.error_lines("upstream timed out (110").is_empty(),
        "{live}"
    );
    r.expect_top("listen_backlog_full", Some(false), &live);
    assert!(
        !r.kinds().contains(&"backend_hung"),
        "a running backend is not hung\n{}",
        r.explain()
    );
    let codes: Vec<u16> = burst.into_iter().map(|h| h.join().unwrap_or(0)).collect();
    assert!(codes.contains(&504), "{codes:?}");
    assert_eq!(spin.join().ok(), Some(200), "the spin ends normally");
}

/// `upstream pair { server A; server B; }` with A killed: nginx fails over to B (200, `502, 200`
/// in $upstream_status). A is a dead member, not "the backend listens elsewhere" and not an IPv6
/// and IPv4 pair.
#[test]
fn a_dead_member_of_an_upstream_group() {
    let tmp = crate::harness::shared_tempdir();
    let a = App::uvicorn(&tmp.path().join("a")).start();
    let b = App::uvicorn(&tmp.path().join("b")).start();
    let upstream = format!(
        "upstream pair {{\n    server 127.0.0.1:{};\n    server 127.0.0.1:{};\n}}\n",
        a.port(),
        b.port()
    );
    let n = nginx(
        &tmp.path().join("nginx"),
        &upstream,
        &proxy("http://pair", ""),
    )
    .start();
    assert!(a.signal("KILL"), "kill -9 member A");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], a.port()));
    assert!(wait_until(Duration::from_secs(5), || TcpStream::connect(
        addr
    )
    .is_err()));
    assert_eq!(
        get_each(n.port(), &["/", "/health", "/", "/health"]),
        [200; 4]
    );
    assert!(
        !n.error_lines("(111: Connection refused)").is_empty(),
        "{}",
        logs(&n)
    );
    // Only B is known (as if discovered): nothing says what should run on A.
    let r = Diagnose::new(&n.conf())
        .backend(&b.cmdline())
        .run(tmp.path());
    r.expect_top("backend_down", Some(false), &logs(&n));
    let top = r.top().map(|t| t["upstream"].clone());
    assert_eq!(top, Some("pair".into()), "{}", r.explain());
    for wrong in ["upstream_address_mismatch", "address_family_mismatch"] {
        assert!(!r.kinds().contains(&wrong), "{wrong}\n{}", r.explain());
    }
    // Both known: A's backend is down, and restarting it helps.
    let r = Diagnose::new(&n.conf())
        .backend(&a.cmdline())
        .backend(&b.cmdline())
        .run(tmp.path());
    r.expect_top("backend_down", Some(true), &logs(&n));
}
