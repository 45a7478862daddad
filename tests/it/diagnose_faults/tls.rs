//! TLS between nginx and the backend: plain `http://` to a TLS uvicorn (a protocol mismatch),
//! and `https://` with `proxy_ssl_verify on` to a backend whose certificate nginx does not trust
//! (a certificate problem, not a protocol one). Neither is helped by a restart.

use super::{diagnose_502s, logs};
use crate::diag_support::{Diagnose, get_each, nginx, proxy};
use crate::harness::app::tls_uvicorn as tls_app;

#[test]
fn plain_http_to_a_tls_backend() {
    let tmp = crate::harness::shared_tempdir();
    let app = tls_app(tmp.path());
    let target = format!("http://127.0.0.1:{}", app.port());
    let (n, r) = diagnose_502s(tmp.path(), &target, &app);
    r.expect_top("upstream_protocol_mismatch", Some(false), &logs(&n));
    let msg = r.top().and_then(|t| t["message"].as_str()).unwrap_or("");
    assert!(msg.contains("expects TLS"), "{}", r.explain());
}

#[test]
fn an_untrusted_backend_certificate() {
    let tmp = crate::harness::shared_tempdir();
    let app = tls_app(tmp.path());
    let target = format!("https://127.0.0.1:{}", app.port());
    // The system CAs do not include the backend's self-signed certificate.
    let extra = "    proxy_ssl_verify on;\n    proxy_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;\n";
    let n = nginx(&tmp.path().join("nginx"), "", &proxy(&target, extra)).start();
    assert_eq!(get_each(n.port(), &["/", "/health"]), [502; 2]);
    assert!(
        !n.error_lines("upstream SSL certificate verify error")
            .is_empty(),
        "{}",
        logs(&n)
    );
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .run(tmp.path());
    r.expect_top("upstream_tls_certificate", Some(false), &logs(&n));
    assert!(
        !r.kinds().contains(&"upstream_protocol_mismatch"),
        "{}",
        r.explain()
    );
}
