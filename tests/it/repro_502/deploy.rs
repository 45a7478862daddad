//! What a restart or a file change does to requests, for real: a graceful timeout shorter than
//! nginx's `proxy_read_timeout` cuts in-flight requests off (502), and `--reload` turns an edit
//! that does not import into an outage (the reloader keeps the socket, nothing accepts: 504).

use std::path::Path;
use std::time::Duration;

use super::{get_n, proxy_with};
use crate::diag_support::wait_until;
use crate::harness::app::App;
use crate::harness::check::{CheckRun, assert_no_problems, broken_fixed, reflex_check_args};
use crate::harness::nginx::Nginx;
use crate::harness::ns::Wrap;
use crate::harness::{http, shared_tempdir, write};

#[test]
fn graceful_timeout_below_read_timeout() {
    let tmp = shared_tempdir();
    let location = proxy_with("http://backend", "    proxy_read_timeout 8s;\n");
    let upstream = |port: u16| format!("upstream backend {{\n    server 127.0.0.1:{port};\n}}\n");
    // A 4 s request is in flight when the master gets SIGTERM (what systemd sends on stop).
    let deploy = |name: &str, graceful: &str| {
        let app = App::gunicorn(&tmp.path().join(format!("{name}-app")))
            .args(&["-k", "uvicorn.workers.UvicornWorker", "-w", "1"])
            .args(&["--graceful-timeout", graceful])
            .start();
        let nginx = Nginx::builder(&tmp.path().join(name))
            .http(&upstream(app.port()))
            .server(&location)
            .start();
        let port = nginx.port();
        let slow = std::thread::spawn(move || http::status_or_zero(&http::get(port, "/slow?s=4")));
        // app.py prints (flushed) when the handler begins: the request is in flight.
        let in_flight = wait_until(Duration::from_secs(20), || {
            app.log_text().contains("slow start")
        });
        assert!(in_flight, "/slow did not start\n{}", app.log_text());
        assert!(app.signal("TERM"), "signal gunicorn");
        let code = slow.join().unwrap_or(0);
        (app, nginx, code)
    };

    let (app, broken, code) = deploy("broken", "1");
    assert_eq!(code, 502, "{}\n{}", broken.error_log_text(), app.log_text());
    assert!(
        !broken
            .error_lines("upstream prematurely closed connection")
            .is_empty(),
        "{}",
        broken.error_log_text()
    );
    let broken_cmd = app.cmdline();

    let (fixed_app, fixed, code) = deploy("fixed", "10");
    assert_eq!(
        code,
        200,
        "{}\n{}",
        fixed.error_log_text(),
        fixed_app.log_text()
    );

    let kind = "graceful_timeout_below_read_timeout";
    assert_no_problems(&broken_fixed(
        kind,
        (&broken.conf(), &[broken_cmd]),
        (&fixed.conf(), &[fixed_app.cmdline()]),
        &Wrap::None,
    ));
}

/// `reflex check --unit` on a unit whose ExecStart is `cmdline`.
fn check_unit(label: &str, dir: &Path, conf: &Path, cmdline: &str) -> CheckRun {
    let unit = write(
        dir,
        "app.service",
        &format!("[Service]\nRestart=always\nExecStart={cmdline}\n"),
    );
    reflex_check_args(
        label,
        conf,
        &["--unit".into(), unit.display().to_string()],
        &Wrap::None,
    )
}

#[test]
fn backend_reload_in_production() {
    let tmp = shared_tempdir();
    let location = proxy_with("http://backend", "    proxy_read_timeout 3s;\n");
    let upstream = |port: u16| format!("upstream backend {{\n    server 127.0.0.1:{port};\n}}\n");
    // A deploy writes a file that does not import yet (half copied, or a bad commit).
    let edit = |dir: &Path| {
        let app = dir.join("app.py");
        let mut text = std::fs::read_to_string(&app).expect("read app.py");
        text.push_str("\nthis is not python(\n");
        std::fs::write(&app, text).expect("write app.py");
    };

    let dir = tmp.path().join("reload-app");
    let app = App::uvicorn(&dir)
        .args(&["--reload", "--reload-dir", &dir.display().to_string()])
        .start();
    let broken = Nginx::builder(&tmp.path().join("broken"))
        .http(&upstream(app.port()))
        .server(&location)
        .start();
    assert_eq!(get_n(broken.port(), "/", 2), [200, 200]);
    edit(&dir);
    // The reloader notices within a second, stops the server and fails to import the new one;
    // it still holds the listening socket, so connections queue and nothing answers.
    let failed = wait_until(Duration::from_secs(20), || {
        app.log_text().contains("SyntaxError")
    });
    assert!(
        failed,
        "the reloader did not fail to import\n{}",
        app.log_text()
    );
    assert_eq!(
        get_n(broken.port(), "/", 1),
        [504],
        "{}\n{}",
        broken.error_log_text(),
        app.log_text()
    );
    assert!(app.log_text().contains("SyntaxError"), "{}", app.log_text());

    let fixed_dir = tmp.path().join("plain-app");
    let fixed_app = App::uvicorn(&fixed_dir).start();
    let fixed = Nginx::builder(&tmp.path().join("fixed"))
        .http(&upstream(fixed_app.port()))
        .server(&location)
        .start();
    edit(&fixed_dir);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(get_n(fixed.port(), "/", 2), [200, 200]);

    let kind = "backend_reload_in_production";
    let u1 = tmp.path().join("u1");
    let u2 = tmp.path().join("u2");
    let mut problems =
        check_unit("broken", &u1, &broken.conf(), &app.cmdline()).problems(kind, true);
    problems.extend(
        check_unit("fixed", &u2, &fixed.conf(), &fixed_app.cmdline()).problems(kind, false),
    );
    assert_no_problems(&problems);
}
