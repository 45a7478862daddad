//! What a restart or a file change does to requests, for real: a graceful timeout shorter than
//! nginx's `proxy_read_timeout` cuts in-flight requests off (502), and `--reload` turns an edit
//! that does not import into an outage (the reloader keeps the socket, nothing accepts: 504).

use std::path::Path;
use std::time::Duration;

use super::{get_n, proxy_with};
use crate::harness::app::App;
use crate::harness::check::{assert_no_problems, reflex_check};
use crate::harness::nginx::Nginx;
use crate::harness::ns::Wrap;
use crate::harness::{http, reflex, shared_tempdir, write};

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
        std::thread::sleep(Duration::from_millis(700));
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
    let mut problems =
        reflex_check("broken", &broken.conf(), &[broken_cmd], &Wrap::None).problems(kind, true);
    problems.extend(
        reflex_check("fixed", &fixed.conf(), &[fixed_app.cmdline()], &Wrap::None)
            .problems(kind, false),
    );
    assert_no_problems(&problems);
}

/// `reflex check --unit` on a unit whose ExecStart is `cmdline`: the finding kinds.
fn kinds_for_unit(dir: &Path, conf: &Path, cmdline: &str) -> Vec<String> {
    let unit = write(
        dir,
        "app.service",
        &format!("[Service]\nRestart=always\nExecStart={cmdline}\n"),
    );
    let out = reflex()
        .args(["check", "--format", "json", "--nginx-conf"])
        .arg(conf)
        .arg("--unit")
        .arg(&unit)
        .output()
        .expect("run reflex");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    json["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["kind"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
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
    std::thread::sleep(Duration::from_secs(3));
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

    let kind = "backend_reload_in_production".to_string();
    let bad = kinds_for_unit(&tmp.path().join("u1"), &broken.conf(), &app.cmdline());
    let good = kinds_for_unit(&tmp.path().join("u2"), &fixed.conf(), &fixed_app.cmdline());
    assert!(bad.contains(&kind), "{bad:?}");
    assert!(!good.contains(&kind), "{good:?}");
}
