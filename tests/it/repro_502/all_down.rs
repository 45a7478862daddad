//! `upstream_all_servers_down` for real: every server of the group marked `down` makes nginx
//! answer 502 with `no live upstreams`, while the backend itself is fine.

use super::{get_n, proxy_to};
use crate::harness::app::App;
use crate::harness::check::{assert_no_problems, broken_fixed};
use crate::harness::nginx::Nginx;
use crate::harness::ns::Wrap;
use crate::harness::shared_tempdir;

#[test]
fn upstream_all_servers_down() {
    let tmp = shared_tempdir();
    let app = App::uvicorn(&tmp.path().join("app")).start();
    let group = |down: &str| format!("upstream app {{ server 127.0.0.1:{} {down}; }}", app.port());
    let broken = Nginx::builder(&tmp.path().join("broken"))
        .http(&group("down"))
        .server(&proxy_to("http://app"))
        .start();
    assert_eq!(
        get_n(broken.port(), "/", 3),
        [502, 502, 502],
        "{}",
        broken.error_log_text()
    );
    assert!(
        !broken
            .error_lines("no live upstreams while connecting to upstream")
            .is_empty(),
        "{}",
        broken.error_log_text()
    );

    let fixed = Nginx::builder(&tmp.path().join("fixed"))
        .http(&group(""))
        .server(&proxy_to("http://app"))
        .start();
    assert_eq!(get_n(fixed.port(), "/", 3), [200, 200, 200]);

    let kind = "upstream_all_servers_down";
    let backend = [app.cmdline()];
    assert_no_problems(&broken_fixed(
        kind,
        (&broken.conf(), &backend),
        (&fixed.conf(), &backend),
        &Wrap::None,
    ));
}
