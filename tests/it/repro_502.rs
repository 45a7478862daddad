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

/// A `location /` that proxies to `target` (e.g. `http://127.0.0.1:8000`).
fn proxy_to(target: &str) -> String {
    format!("location / {{\n    proxy_pass {target};\n}}\n")
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
