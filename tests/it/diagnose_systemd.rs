//! `reflex diagnose` against a REAL systemd (the nspawn lab of `systemd.rs`): a unit that
//! crash-loops on an import error, and a unit stopped after two old crashes (its `NRestarts`
//! survives the stop) whose start would help. The test directory is bind-mounted at the same
//! path inside the container, so the unit's unix socket and the host's nginx meet there.
//!
//! The backend is a real uvicorn, Debian's in the container (`systemd::UVICORN`), on `--uds`.
//! reflex reads its units over the container's bus and journal (`REFLEX_SYSTEM_BUS`,
//! `REFLEX_JOURNAL_DIR`) and everything else on the host.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use reflex::gather::evidence::systemd::{BUS_ENV, JOURNAL_DIR_ENV};

use crate::diag_support::{Diagnose, get_each, nginx, proxy, wait_until};
use crate::harness::nginx::Nginx;
use crate::harness::{repo, shared_tempdir, write};
use crate::systemd::{Lab, OK_APP, UVICORN};

/// A unit running uvicorn on `DIR/NAME.sock`, written in the container and (for `--unit`) on
/// the host.
fn unit(lab: &Lab, dir: &Path, name: &str, module: &str) -> std::path::PathBuf {
    let d = dir.display();
    let text = format!(
        "[Unit]\nDescription=reflex diagnose {name}\n[Service]\n\
         ExecStart={UVICORN} {module}:app --uds {d}/{name}.sock\n\
         WorkingDirectory={d}\nRestart=always\nRestartSec=200ms\n\
         [Install]\nWantedBy=multi-user.target\n"
    );
    lab.write(&format!("/etc/systemd/system/{name}.service"), &text);
    write(dir, &format!("{name}.service"), &text)
}

fn diagnose(lab: &Lab, n: &Nginx, unit_file: &Path, cwd: &Path) -> crate::diag_support::Report {
    Diagnose::new(&n.conf())
        .args(&[Path::new("--unit"), unit_file])
        .env(BUS_ENV, lab.systemd.bus.clone().unwrap_or_default())
        .env(
            JOURNAL_DIR_ENV,
            lab.systemd
                .journal_dir
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        )
        .run(cwd)
}

#[test]
fn crash_loop_and_stale_restart_counter_in_a_real_systemd() {
    let tmp = shared_tempdir();
    let dir = tmp.path().join("srv");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::copy(
        repo().join("tests/fixtures/apps/diag/broken_import.py"),
        dir.join("broken_import.py"),
    )
    .expect("copy the broken app");
    write(&dir, "okapp.py", OK_APP);
    let lab = Lab::up_with(&format!("--bind={}", dir.display()));
    let crashy = unit(&lab, &dir, "crashy", "broken_import");
    let stale = unit(&lab, &dir, "stale", "okapp");
    lab.exec(&["systemctl", "daemon-reload"]);
    let http = "";
    let locations = format!(
        "{}{}",
        proxy(&format!("http://unix:{}/crashy.sock:/", dir.display()), "")
            .replace("location /", "location /crashy/"),
        proxy(&format!("http://unix:{}/stale.sock:/", dir.display()), "")
            .replace("location /", "location /stale/"),
    );
    let n = nginx(&tmp.path().join("nginx"), http, &locations).start();

    // The crash loop: systemd restarts it until its start limit, then gives up.
    lab.exec(&["systemctl", "start", "--no-block", "crashy.service"]);
    let looping = lab.wait_unit("crashy", "a crash loop", |u| {
        u.n_restarts >= 2 && (u.sub_state == "auto-restart" || u.result == "start-limit-hit")
    });
    eprintln!("[diagnose systemd] crashy: {looping:?}");
    assert_eq!(
        get_each(n.port(), &["/crashy/", "/crashy/health"]),
        [502; 2]
    );
    let r = diagnose(&lab, &n, &crashy, tmp.path());
    r.expect_top("backend_crash_loop", Some(false), &n.error_log_text());

    // Two crashes long ago, then `systemctl stop`: NRestarts stays 2 (an enabled unit stays
    // loaded, and with it its counters), nothing loops now.
    lab.exec(&["systemctl", "enable", "--now", "stale.service"]);
    for i in 0..2 {
        let before = lab.wait_unit("stale", "running", |u| {
            u.sub_state == "running" && u.main_pid != 0 && u.n_restarts == i
        });
        assert!(
            // Connect, not exists: the killed process leaves its socket file behind.
            wait_until(Duration::from_secs(20), || {
                std::os::unix::net::UnixStream::connect(dir.join("stale.sock")).is_ok()
            }),
            "uvicorn did not bind"
        );
        lab.exec(&["/bin/sh", "-c", &format!("kill -9 {}", before.main_pid)]);
        lab.wait_unit("stale", "an automatic restart", |u| {
            u.n_restarts == i + 1 && u.main_pid != before.main_pid
        });
    }
    lab.wait_unit("stale", "running", |u| u.sub_state == "running");
    lab.exec(&["systemctl", "stop", "stale.service"]);
    let stopped = lab.unit("stale");
    assert_eq!(
        (stopped.active_state.as_str(), stopped.n_restarts),
        ("inactive", 2),
        "NRestarts survives a stop: {stopped:?}"
    );
    assert_eq!(get_each(n.port(), &["/stale/", "/stale/health"]), [502; 2]);
    let r = diagnose(&lab, &n, &stale, tmp.path());
    r.expect_top("backend_down", Some(true), &n.error_log_text());
    assert!(
        !r.kinds().contains(&"backend_crash_loop"),
        "{}",
        r.explain()
    );
}
