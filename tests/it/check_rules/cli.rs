//! The command line's manners: errors said once, a closed pipe ended quietly.

use super::{GOOD_HEADERS, conf};
use crate::harness::{reflex, tempdir};

#[test]
fn a_closed_pipe_ends_quietly_with_the_verdict() {
    use std::process::Stdio;
    let a = tempdir();
    // A warning: the verdict is 1 whether or not the reader read everything.
    let c = conf(
        a.path(),
        "        server 127.0.0.1:8000;",
        "            proxy_http_version 1.1;",
    );
    let mut child = reflex()
        .args(["check", "--nginx-conf"])
        .arg(&c)
        .args(["--backend", "uvicorn main:app"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run reflex");
    // Close the read end before reflex writes: its write gets EPIPE, as under `| head -0`.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "no `error: Broken pipe`"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn bad_backends_say_why_once() {
    let a = tempdir();
    let c = conf(a.path(), "        server 127.0.0.1:8000;", GOOD_HEADERS);
    let out = reflex()
        .args(["check", "--nginx-conf"])
        .arg(&c)
        .args(["--backend", "python app.py"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("not a uvicorn or gunicorn command line")
            .count(),
        1,
        "{err}"
    );
    let out = reflex()
        .args(["check", "--nginx-conf"])
        .arg(&c)
        .args(["--unit", "/nonexistent/app.service"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}
