//! `upstream_address_mismatch` across address families, for real.

use super::{get_n, proxy_to};
use crate::harness::app::App;
use crate::harness::check::{assert_no_problems, reflex_check};
use crate::harness::nginx::Nginx;
use crate::harness::ns::Wrap;
use crate::harness::shared_tempdir;

/// One uvicorn process started with `--host ::` listens on IPv6 only (asyncio sets
/// IPV6_V6ONLY), so nginx pointed at 127.0.0.1 is refused: every request 502. reflex must say
/// so, and point nginx at `[::1]`.
#[test]
fn upstream_address_mismatch_ipv6_only_uvicorn() {
    let tmp = shared_tempdir();
    let app = App::uvicorn(&tmp.path().join("app")).ipv6_only().start();
    let port = app.port();
    let broken = Nginx::builder(&tmp.path().join("broken"))
        .server(&proxy_to(&format!("http://127.0.0.1:{port}")))
        .start();
    assert_eq!(
        get_n(broken.port(), "/", 3),
        [502, 502, 502],
        "{}",
        broken.error_log_text()
    );
    let refused = broken
        .error_lines("connect() failed (111: Connection refused) while connecting to upstream");
    assert!(
        refused
            .iter()
            .any(|l| l.contains(&format!("127.0.0.1:{port}"))),
        "{}",
        broken.error_log_text()
    );

    let fixed = Nginx::builder(&tmp.path().join("fixed"))
        .server(&proxy_to(&format!("http://[::1]:{port}")))
        .start();
    assert_eq!(get_n(fixed.port(), "/", 3), [200, 200, 200]);

    let kind = "upstream_address_mismatch";
    let backend = [app.cmdline()];
    let run = reflex_check("broken", &broken.conf(), &backend, &Wrap::None);
    let mut problems = run.problems(kind, true);
    if !run.stdout.contains(&format!("[::1]:{port}")) {
        problems.push(format!(
            "the fix should point nginx at [::1]:{port}: {}",
            run.stdout
        ));
    }
    problems
        .extend(reflex_check("fixed", &fixed.conf(), &backend, &Wrap::None).problems(kind, false));
    assert_no_problems(&problems);
}
