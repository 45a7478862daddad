//! `proxy_pass_no_resolver` for real: a `proxy_pass` URL with a variable makes nginx resolve
//! its host per request, with `resolver`; without one every request is a 502 and the error log
//! says `no resolver defined to resolve localhost`, while the backend is fine.

use super::{get_n, proxy_to};
use crate::harness::app::App;
use crate::harness::check::{assert_no_problems, broken_fixed};
use crate::harness::nginx::Nginx;
use crate::harness::ns::Wrap;
use crate::harness::shared_tempdir;

#[test]
fn proxy_pass_no_resolver() {
    let tmp = shared_tempdir();
    let app = App::uvicorn(&tmp.path().join("app")).start();
    let port = app.port();
    let broken = Nginx::builder(&tmp.path().join("broken"))
        .server(&proxy_to(&format!("http://localhost:{port}$request_uri")))
        .start();
    assert_eq!(
        get_n(broken.port(), "/", 3),
        [502, 502, 502],
        "{}",
        broken.error_log_text()
    );
    assert!(
        !broken
            .error_lines("no resolver defined to resolve localhost")
            .is_empty(),
        "{}",
        broken.error_log_text()
    );

    // The same URL with an address nginx needs no resolver for.
    let fixed = Nginx::builder(&tmp.path().join("fixed"))
        .server(&proxy_to(&format!("http://127.0.0.1:{port}$request_uri")))
        .start();
    assert_eq!(get_n(fixed.port(), "/", 3), [200, 200, 200]);

    let kind = "proxy_pass_no_resolver";
    let backend = [app.cmdline()];
    assert_no_problems(&broken_fixed(
        kind,
        (&broken.conf(), &backend),
        (&fixed.conf(), &backend),
        &Wrap::None,
    ));
}
