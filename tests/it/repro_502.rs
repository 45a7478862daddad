//! Real 502/504 reproductions: for each misconfiguration, a real nginx in front of a real
//! uvicorn/gunicorn with the BROKEN config must really fail (client status, `$upstream_status`,
//! the nginx error-log phrase), the FIXED config must not, and `reflex check` must flag the
//! broken one and not the fixed one.
//!
//! The live repro is asserted first; reflex's verdicts are collected and asserted last, so a
//! failure message says which half broke.

mod address;
mod all_down;
mod backlog;
mod deploy;
mod keepalive;
mod no_resolver;
mod no_restart;
mod private_tmp;

use std::time::{Duration, Instant};

use crate::harness::app::{App, Bind, tls_uvicorn};
use crate::harness::check::{assert_no_problems, broken_fixed, reflex_check};
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
    let refused = broken
        .error_lines("connect() failed (111: Connection refused) while connecting to upstream");
    assert!(!refused.is_empty(), "{}", broken.error_log_text());
    assert!(
        refused[0].contains(&format!("127.0.0.1:{wrong}")),
        "{refused:?}"
    );

    let fixed = Nginx::builder(&tmp.path().join("fixed"))
        .server(&proxy_to(&format!("http://127.0.0.1:{}", app.port())))
        .start();
    assert_eq!(get_n(fixed.port(), "/", 3), [200, 200, 200]);
    assert!(fixed.error_lines("connect() failed").is_empty());

    let kind = "upstream_address_mismatch";
    let backend = [app.cmdline()];
    assert_no_problems(&broken_fixed(
        kind,
        (&broken.conf(), &backend),
        (&fixed.conf(), &backend),
        &Wrap::None,
    ));
}

#[test]
fn upstream_scheme_mismatch_https_to_plain_backend() {
    let tmp = shared_tempdir();
    let app = App::uvicorn(&tmp.path().join("app")).start();
    let broken = Nginx::builder(&tmp.path().join("broken"))
        .server(&proxy_to(&format!("https://127.0.0.1:{}", app.port())))
        .start();
    assert_eq!(
        get_n(broken.port(), "/", 2),
        [502, 502],
        "{}",
        broken.error_log_text()
    );
    assert!(
        !broken.error_lines("SSL_do_handshake() failed").is_empty(),
        "{}",
        broken.error_log_text()
    );
    assert!(
        app.log_text().contains("Invalid HTTP request received"),
        "{}",
        app.log_text()
    );

    let fixed = Nginx::builder(&tmp.path().join("fixed"))
        .server(&proxy_to(&format!("http://127.0.0.1:{}", app.port())))
        .start();
    assert_eq!(get_n(fixed.port(), "/", 2), [200, 200]);

    let kind = "upstream_scheme_mismatch";
    let backend = [app.cmdline()];
    assert_no_problems(&broken_fixed(
        kind,
        (&broken.conf(), &backend),
        (&fixed.conf(), &backend),
        &Wrap::None,
    ));
}

#[test]
fn upstream_scheme_mismatch_http_to_tls_backend() {
    let tmp = shared_tempdir();
    let app = tls_uvicorn(tmp.path());
    let broken = Nginx::builder(&tmp.path().join("broken"))
        .server(&proxy_to(&format!("http://127.0.0.1:{}", app.port())))
        .start();
    assert_eq!(
        get_n(broken.port(), "/", 2),
        [502, 502],
        "{}",
        broken.error_log_text()
    );
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
    assert_eq!(
        get_n(fixed.port(), "/", 2),
        [200, 200],
        "{}",
        fixed.error_log_text()
    );

    let kind = "upstream_scheme_mismatch";
    let backend = [app.cmdline()];
    assert_no_problems(&broken_fixed(
        kind,
        (&broken.conf(), &backend),
        (&fixed.conf(), &backend),
        &Wrap::None,
    ));
}

#[test]
fn unix_socket_not_accessible() {
    use std::os::unix::fs::PermissionsExt;
    crate::harness::ns::require_root("nginx workers running as nobody");
    let tmp = shared_tempdir();
    let app = App::uvicorn(&tmp.path().join("app"))
        .bind(Bind::Uds)
        .start();
    let sock = app.uds().to_path_buf();
    let chmod = |mode| {
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(mode)).expect("chmod sock")
    };
    chmod(0o600);
    // The workers run as `nobody` (the harness's default `user`); the socket is root's, 0600.
    let nginx = Nginx::builder(&tmp.path().join("nginx"))
        .server(&proxy_to(&format!("http://unix:{}:", sock.display())))
        .start();
    assert_eq!(
        get_n(nginx.port(), "/", 2),
        [502, 502],
        "{}",
        nginx.error_log_text()
    );
    let denied = nginx.error_lines("failed (13: Permission denied) while connecting to upstream");
    assert!(!denied.is_empty(), "{}", nginx.error_log_text());
    assert!(denied[0].contains("[crit]"), "{denied:?}");
    let kind = "unix_socket_not_accessible";
    let backend = [app.cmdline()];
    let mut problems =
        reflex_check("socket 0600", &nginx.conf(), &backend, &Wrap::None).problems(kind, true);

    chmod(0o666);
    assert_eq!(
        get_n(nginx.port(), "/", 2),
        [200, 200],
        "{}",
        nginx.error_log_text()
    );
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
    let refused = broken
        .error_lines("connect() failed (111: Connection refused) while connecting to upstream");
    assert!(
        refused.iter().any(|l| l.contains(&format!("[::1]:{port}"))),
        "{}",
        broken.error_log_text()
    );
    let access = broken.wait_access(4);
    assert!(
        access.iter().any(|a| a.upstream_status == "502, 200"),
        "{access:#?}"
    );

    let fixed = Nginx::builder(&tmp.path().join("fixed"))
        .server(&proxy_to(&format!("http://127.0.0.1:{port}")))
        .wrap(hosts.clone())
        .start();
    assert_eq!(get_n(fixed.port(), "/", 4), [200, 200, 200, 200]);
    let access = fixed.wait_access(4);
    assert!(
        access.iter().all(|a| a.upstream_status == "200"),
        "{access:#?}"
    );
    assert!(fixed.error_lines("connect() failed").is_empty());

    let kind = "upstream_localhost_dual_stack";
    let backend = [app.cmdline()];
    assert_no_problems(&broken_fixed(
        kind,
        (&broken.conf(), &backend),
        (&fixed.conf(), &backend),
        &hosts,
    ));
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
            .args(&[
                "-k",
                "uvicorn.workers.UvicornWorker",
                "-w",
                "1",
                "--timeout",
                timeout,
            ])
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
    assert_eq!(
        code,
        502,
        "after {took:?}\n{}\n{}",
        broken.error_log_text(),
        app.log_text()
    );
    assert!(
        took < Duration::from_secs(4),
        "502 should come from the worker kill: {took:?}"
    );
    assert!(
        app.log_text().contains("WORKER TIMEOUT"),
        "{}",
        app.log_text()
    );
    assert!(
        !broken
            .error_lines("upstream prematurely closed connection")
            .is_empty(),
        "{}",
        broken.error_log_text()
    );

    let fixed_app = gunicorn("fixed-app", "10");
    let fixed = Nginx::builder(&tmp.path().join("fixed"))
        .http(&upstream(fixed_app.port()))
        .server(&location)
        .start();
    let code = http::status_or_zero(&http::get(fixed.port(), "/block?s=5"));
    assert_eq!(
        code,
        504,
        "{}\n{}",
        fixed.error_log_text(),
        fixed_app.log_text()
    );
    assert!(
        !fixed_app.log_text().contains("WORKER TIMEOUT"),
        "{}",
        fixed_app.log_text()
    );
    assert!(!fixed.error_lines("upstream timed out (110").is_empty());

    let kind = "worker_timeout_below_read_timeout";
    assert_no_problems(&broken_fixed(
        kind,
        (&broken.conf(), &[app.cmdline()]),
        (&fixed.conf(), &[fixed_app.cmdline()]),
        &Wrap::None,
    ));
}
