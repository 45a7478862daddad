//! `backlog_above_somaxconn`: the kernel caps a listen backlog at `net.core.somaxconn` of the
//! listener's network namespace; a stopped backend then fills it and nginx gets EAGAIN at once.

use std::time::Duration;

use super::proxy_with;
use crate::harness::app::{App, Bind};
use crate::harness::check::{assert_no_problems, reflex_check};
use crate::harness::load::burst_while_stopped;
use crate::harness::nginx::Nginx;
use crate::harness::ns::Wrap;
use crate::harness::shared_tempdir;

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
        !broken
            .error_lines(
                "failed (11: Resource temporarily unavailable) while connecting to upstream"
            )
            .is_empty(),
        "{}",
        broken.error_log_text()
    );
    assert!(
        b.after_cont.iter().all(|&c| c == 200),
        "queued ones are served: {b:?}"
    );
    let kind = "backlog_above_somaxconn";
    let mut problems = reflex_check(
        "somaxconn 8",
        &broken.conf(),
        &[app.cmdline()],
        &Wrap::NetNs { somaxconn: 8 },
    )
    .problems(kind, true);

    let (app, fixed) = start("fixed", 4096);
    let b = burst_while_stopped(&fixed, &app, BURST, Duration::from_millis(1500));
    assert!(
        b.while_stopped.is_empty(),
        "nothing answers while stopped: {b:?}"
    );
    assert_eq!(b.after_cont, vec![200; BURST], "{}", fixed.error_log_text());
    assert!(
        fixed
            .error_lines("(11: Resource temporarily unavailable)")
            .is_empty()
    );
    problems.extend(
        reflex_check(
            "somaxconn 4096",
            &fixed.conf(),
            &[app.cmdline()],
            &Wrap::NetNs { somaxconn: 4096 },
        )
        .problems(kind, false),
    );
    assert_no_problems(&problems);
}
