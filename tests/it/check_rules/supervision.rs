//! Rules about how systemd and supervisord run the backend, from real unit and program files.

use std::path::{Path, PathBuf};

use super::{GOOD_HEADERS, check, conf};
use crate::harness::{tempdir, write};

fn unit(dir: &Path, service: &str) -> PathBuf {
    write(
        dir,
        "app.service",
        &format!(
            "[Unit]\nDescription=app\n\n[Service]\n{service}\n[Install]\nWantedBy=multi-user.target\n"
        ),
    )
}

/// Both configurations proxy to `upstream`; the flags differ by unit.
fn by_unit(kind: &str, upstream: &str, bad: &str, good: &str) -> super::Run {
    let (a, b) = (tempdir(), tempdir());
    let c = conf(&a.path().join("n"), upstream, GOOD_HEADERS);
    let (bad, good) = (unit(a.path(), bad), unit(b.path(), good));
    let b1 = check(&c, &["--unit", bad.to_str().unwrap_or_default()]);
    let g = check(&c, &["--unit", good.to_str().unwrap_or_default()]);
    assert!(
        b1.kinds().iter().any(|k| k == kind),
        "{kind} should fire: {}",
        b1.json
    );
    assert!(
        !g.kinds().iter().any(|k| k == kind),
        "{kind} should be silent: {}",
        g.json
    );
    b1
}

#[test]
fn unix_socket_private_tmp() {
    let exec = "Restart=always\nExecStart=/srv/venv/bin/uvicorn main:app --uds /tmp/app.sock\n";
    let run = by_unit(
        "unix_socket_private_tmp",
        "        server unix:/tmp/app.sock;",
        &format!("PrivateTmp=yes\n{exec}"),
        &format!("PrivateTmp=no\n{exec}"),
    );
    let f = run.finding("unix_socket_private_tmp");
    assert_eq!(f["severity"], "error");
    assert_eq!(run.code(), 1);
}

#[test]
fn graceful_timeout_below_read_timeout() {
    let exec = |g: u32| {
        format!(
            "Restart=always\nExecStart=/srv/venv/bin/gunicorn -k uvicorn.workers.UvicornWorker --timeout 120 \
             --graceful-timeout {g} -b 127.0.0.1:8000 main:app\n"
        )
    };
    let run = by_unit(
        "graceful_timeout_below_read_timeout",
        "        server 127.0.0.1:8000;",
        &exec(10),
        &exec(70),
    );
    let f = run.finding("graceful_timeout_below_read_timeout");
    assert!(
        f["fix"]["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("--graceful-timeout 65"),
        "{f}"
    );
    // systemd's TimeoutStopSec= bounds it too.
    let run = by_unit(
        "graceful_timeout_below_read_timeout",
        "        server 127.0.0.1:8000;",
        &format!("TimeoutStopSec=20\n{}", exec(70)),
        &format!("TimeoutStopSec=2min\n{}", exec(70)),
    );
    let f = run.finding("graceful_timeout_below_read_timeout");
    assert!(
        f["evidence"].to_string().contains("TimeoutStopSec=20s"),
        "{f}"
    );
}

#[test]
fn backend_reload_in_production() {
    let exec = "Restart=always\nExecStart=/srv/venv/bin/uvicorn main:app --uds /run/app.sock";
    by_unit(
        "backend_reload_in_production",
        "        server unix:/run/app.sock;",
        &format!("{exec} --reload\n"),
        &format!("{exec}\n"),
    );
    // A command line given by hand is a developer's: --reload is fine there.
    let a = tempdir();
    let c = conf(a.path(), "        server 127.0.0.1:8000;", GOOD_HEADERS);
    let run = check(&c, &["--backend", "uvicorn main:app --reload"]);
    assert!(
        !run.kinds()
            .iter()
            .any(|k| k == "backend_reload_in_production")
    );
}

#[test]
fn backend_no_restart() {
    let exec = "ExecStart=/srv/venv/bin/uvicorn main:app --uds /run/app.sock\n";
    by_unit(
        "backend_no_restart",
        "        server unix:/run/app.sock;",
        exec,
        &format!("Restart=on-failure\n{exec}"),
    );
    // supervisord: autorestart=false.
    let (a, b) = (tempdir(), tempdir());
    let sup = |d: &Path, autorestart: &str| {
        write(
            d,
            "supervisord.conf",
            &format!(
                "[program:app]\ncommand=/srv/venv/bin/uvicorn main:app --uds /run/app.sock\nautorestart={autorestart}\nstopwaitsecs=90\n"
            ),
        )
    };
    let c = conf(
        &a.path().join("n"),
        "        server unix:/run/app.sock;",
        GOOD_HEADERS,
    );
    let (bad, good) = (sup(a.path(), "false"), sup(b.path(), "true"));
    let run = check(
        &c,
        &["--supervisord-conf", bad.to_str().unwrap_or_default()],
    );
    assert!(
        run.kinds().iter().any(|k| k == "backend_no_restart"),
        "{}",
        run.json
    );
    let run = check(
        &c,
        &["--supervisord-conf", good.to_str().unwrap_or_default()],
    );
    assert!(
        !run.kinds().iter().any(|k| k == "backend_no_restart"),
        "{}",
        run.json
    );
}
