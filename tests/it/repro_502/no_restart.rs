//! `backend_no_restart` for real, under a real supervisord: uvicorn as `[program:web]` behind
//! nginx, killed with SIGKILL (as the OOM killer would). With `autorestart=true` supervisord
//! starts it again and nginx answers 200 within seconds; with `autorestart=false` the program
//! stays EXITED and every request gets 502 (`connect() failed (111: Connection refused)`) for
//! as long as anyone cares to look.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{get_n, proxy_to};
use crate::diag_support::{Supervisord, copy_apps, wait_until};
use crate::harness::check::{assert_no_problems, reflex_check_args};
use crate::harness::nginx::{Nginx, free_port};
use crate::harness::ns::Wrap;
use crate::harness::{shared_tempdir, venv_bin};

/// How long a started or restarted uvicorn may take to answer on this loaded machine.
const UP: Duration = Duration::from_secs(40);

/// uvicorn on a free port as supervisord's `[program:web]` with `autorestart`, nginx in front,
/// both answering; then the program's process is killed with SIGKILL. The time of the kill.
fn killed_stack(dir: &Path, autorestart: &str) -> (Supervisord, Nginx, Instant) {
    let app = dir.join("app");
    copy_apps(&app, &[]);
    let port = free_port();
    let command = format!(
        "{} app:app --host 127.0.0.1 --port {port}",
        venv_bin("uvicorn").display()
    );
    let options = format!("autorestart={autorestart}\nstartsecs=1\n");
    let sv = Supervisord::start(&app, &command, &options);
    let n = Nginx::builder(&dir.join("nginx"))
        .server(&proxy_to(&format!("http://127.0.0.1:{port}")))
        .start();
    let up = wait_until(UP, || get_n(n.port(), "/health", 1) == [200]);
    let running = sv.wait_state(&["RUNNING"], UP);
    assert!(up, "{:?}\n{}", sv.web(), n.error_log_text());
    let pid = running.map(|p| p.pid).filter(|&p| p > 0);
    let pid = pid.unwrap_or_else(|| panic!("no RUNNING pid: {:?}", sv.web()));
    let killed = std::process::Command::new("kill")
        .args(["-s", "KILL", "--", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(killed, "kill -9 {pid}");
    (sv, n, Instant::now())
}

#[test]
fn backend_no_restart_supervisord() {
    let tmp = shared_tempdir();

    // Fixed: supervisord notices the death and starts a new process; nginx answers again.
    let (fixed_sv, fixed, t) = killed_stack(&tmp.path().join("fixed"), "true");
    let mut seen = Vec::new();
    let back = wait_until(UP, || {
        seen.extend(get_n(fixed.port(), "/health", 1));
        seen.last() == Some(&200)
    });
    let recovery = t.elapsed();
    let failed = seen.iter().filter(|&&c| c == 502).count();
    eprintln!("[no restart] autorestart=true: 200 in {recovery:?}, after {failed} × 502");
    assert!(back, "{:?}\n{}", fixed_sv.web(), fixed.error_log_text());

    // Broken: the program stays EXITED, and so does every request: 502, for at least twice as
    // long as the fixed one took to come back (3 s at least).
    let (broken_sv, broken, _) = killed_stack(&tmp.path().join("broken"), "false");
    let exited = broken_sv.wait_state(&["EXITED"], UP);
    assert!(exited.is_some(), "not EXITED: {:?}", broken_sv.web());
    let watch = (recovery * 2).clamp(Duration::from_secs(3), UP);
    let until = Instant::now() + watch;
    let mut codes = Vec::new();
    while Instant::now() < until {
        codes.extend(get_n(broken.port(), "/health", 1));
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "[no restart] autorestart=false: {} requests in {watch:?}",
        codes.len()
    );
    assert!(
        !codes.is_empty() && codes.iter().all(|&c| c == 502),
        "{codes:?}\n{}",
        broken.error_log_text()
    );
    let state = broken_sv.web().map(|p| p.state);
    assert_eq!(state.as_deref(), Some("EXITED"), "still down");
    assert!(
        !broken
            .error_lines("connect() failed (111: Connection refused)")
            .is_empty(),
        "{}",
        broken.error_log_text()
    );

    let kind = "backend_no_restart";
    let check = |label: &str, n: &Nginx, sv: &Supervisord| {
        let args = [
            "--supervisord-conf".to_string(),
            sv.conf.display().to_string(),
        ];
        reflex_check_args(label, &n.conf(), &args, &Wrap::None)
    };
    let mut problems = check("broken", &broken, &broken_sv).problems(kind, true);
    problems.extend(check("fixed", &fixed, &fixed_sv).problems(kind, false));
    assert_no_problems(&problems);
}
