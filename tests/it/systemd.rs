//! systemd evidence and restarts against a REAL systemd 252, booted in a systemd-nspawn
//! container by `scripts/systemd-lab` (this host's PID 1 is not systemd). The container's
//! system bus and journal are reached from the host through `/proc/LEADER/root`.
//!
//! One container for the whole file (one test function, several steps): booting takes about a
//! second once the rootfs is cached (`/var/cache/systemd-lab/bookworm`, or `$LAB_ROOTFS`), but
//! building it the first time takes minutes. Each run gets its own LAB_DIR and machine name, so
//! parallel runs do not collide; the container is powered off on drop, pass or fail. A lab that
//! does not boot fails the test: a skipped test would hide a broken set-up.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reflex::act::restart::{RestartError, restart_unit_on};
use reflex::gather::evidence::systemd::Systemd;
use reflex::model::evidence::{AppLogLine, Fact, UnitState};

use crate::harness::{repo, tempdir};

/// A stdlib-only HTTP service (pip is not reachable inside the container). It logs a line
/// that is not UTF-8, which journalctl's JSON carries as an array of bytes.
const SERVICE_PY: &str = r#"import http.server, sys
sys.stdout.write("reflex-lab: starting\n"); sys.stdout.flush()
sys.stdout.buffer.write(b"reflex-lab: bad \xff byte\n"); sys.stdout.flush()
http.server.ThreadingHTTPServer(("127.0.0.1", 8080), http.server.SimpleHTTPRequestHandler).serve_forever()
"#;

/// A real uvicorn inside the container: Debian's `python3-uvicorn` (0.17.6), which the lab's
/// rootfs includes (pip is not reachable there).
pub(crate) const UVICORN: &str = "/usr/bin/python3 -m uvicorn";

/// A plain ASGI app for it (the container has no FastAPI): `ok` to every request.
pub(crate) const OK_APP: &str = r#"async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"3")]})
    await send({"type": "http.response.body", "body": b"ok\n"})
"#;

const UNIT: &str = "[Unit]
Description=reflex test service
[Service]
ExecStart=/usr/bin/python3 -u /srv/reflex_app.py
WorkingDirectory=/srv
Restart=always
RestartSec=100ms
";

const DEADLINE: Duration = Duration::from_secs(20);

/// A booted container, powered off on drop.
pub(crate) struct Lab {
    dir: tempfile::TempDir,
    machine: String,
    /// More `systemd-nspawn` arguments (`LAB_NSPAWN_ARGS`), e.g. `--bind=PATH`.
    nspawn_args: String,
    pub(crate) root: PathBuf,
    pub(crate) systemd: Systemd,
}

impl Lab {
    fn up() -> Lab {
        Lab::up_with("")
    }

    /// Boots a lab with more `systemd-nspawn` arguments.
    pub(crate) fn up_with(nspawn_args: &str) -> Lab {
        let dir = tempdir();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let machine = format!("rx{}-{nanos:x}", std::process::id());
        let mut lab = Lab {
            dir,
            machine,
            nspawn_args: nspawn_args.to_string(),
            root: PathBuf::new(),
            systemd: Systemd::default(),
        };
        let started = Instant::now();
        let out = lab.script(&["up"]);
        assert!(
            out.status.success(),
            "systemd-lab up failed:\n{}",
            text(&out)
        );
        let leader = String::from_utf8_lossy(&lab.script(&["leader"]).stdout)
            .trim()
            .to_string();
        assert!(!leader.is_empty(), "no container leader");
        eprintln!(
            "[systemd] lab {} up in {:?} (leader {leader})",
            lab.machine,
            started.elapsed()
        );
        lab.root = PathBuf::from(format!("/proc/{leader}/root"));
        lab.systemd = Systemd {
            bus: Some(format!(
                "unix:path={}/run/dbus/system_bus_socket",
                lab.root.display()
            )),
            journal_dir: Some(lab.root.join("var/log/journal")),
        };
        lab
    }

    fn script(&self, args: &[&str]) -> Output {
        Command::new(repo().join("scripts/systemd-lab"))
            .args(args)
            .env("LAB_DIR", self.dir.path())
            .env("LAB_MACHINE", &self.machine)
            .env("LAB_NSPAWN_ARGS", &self.nspawn_args)
            .output()
            .expect("run scripts/systemd-lab")
    }

    /// Runs a command inside the container; panics when it fails.
    pub(crate) fn exec(&self, args: &[&str]) -> String {
        let mut all = vec!["exec"];
        all.extend_from_slice(args);
        let out = self.script(&all);
        assert!(
            out.status.success(),
            "{args:?} failed in the container:\n{}",
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Writes a file inside the container (through the host's view of its root).
    pub(crate) fn write(&self, path: &str, contents: &str) {
        let path = self.root.join(path.trim_start_matches('/'));
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    pub(crate) fn unit(&self, name: &str) -> UnitState {
        match self.systemd.units(&[name.to_string()]) {
            Fact::Known(mut v) if v.len() == 1 => v.remove(0),
            other => panic!("units({name}): {other:?}"),
        }
    }

    /// Polls the unit's state until `ok` holds, or panics with the last state.
    pub(crate) fn wait_unit(
        &self,
        name: &str,
        what: &str,
        ok: impl Fn(&UnitState) -> bool,
    ) -> UnitState {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let state = self.unit(name);
            if ok(&state) {
                return state;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {state:?}"
            );
            sleep(Duration::from_millis(50));
        }
    }
}

impl Lab {
    /// Polls the service's journal until it has started `starts` times (two lines each).
    fn wait_journal(&self, since_ms: u64, starts: usize) -> Vec<AppLogLine> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let got = self.systemd.journal("reflexapp", since_ms, 100);
            let Fact::Known(lines) = got else {
                panic!("journal unavailable: {got:?}")
            };
            let count = |text: &str| lines.iter().filter(|l| l.text == text).count();
            if count("reflex-lab: starting") >= starts
                && count("reflex-lab: bad \u{fffd} byte") >= starts
            {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "journal lacks {starts} starts: {lines:#?}"
            );
            sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = self.script(&["down"]);
        if !out.status.success() {
            eprintln!("[systemd] lab down failed:\n{}", text(&out));
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[test]
fn unit_state_crash_restart_journal_and_restart_unit_in_a_real_systemd() {
    let t0 = now_ms();
    let lab = Lab::up();
    lab.write("/srv/reflex_app.py", SERVICE_PY);
    lab.write("/etc/systemd/system/reflexapp.service", UNIT);
    lab.exec(&["systemctl", "daemon-reload"]);
    lab.exec(&["systemctl", "start", "reflexapp.service"]);

    // State over D-Bus, from the host.
    let first = lab.wait_unit("reflexapp", "active/running", |u| u.sub_state == "running");
    assert_eq!(first.unit, "reflexapp.service");
    assert_eq!(first.active_state, "active");
    assert_eq!(first.n_restarts, 0);
    assert_eq!(first.result, "success");
    assert_ne!(first.main_pid, 0);
    assert!(
        first.active_enter_ms + 5_000 >= t0,
        "active_enter_ms {} before test start {t0}",
        first.active_enter_ms
    );

    // Let the service get going (it logs before serving) before it is crashed.
    lab.wait_journal(t0, 1);

    // A crash: systemd restarts it (Restart=always) and counts it.
    // (minbase has no procps: the shell's builtin kill.)
    lab.exec(&["/bin/sh", "-c", &format!("kill -9 {}", first.main_pid)]);
    let crashed = lab.wait_unit("reflexapp", "an automatic restart", |u| {
        u.n_restarts == 1
            && u.sub_state == "running"
            && u.main_pid != 0
            && u.main_pid != first.main_pid
    });
    assert_eq!(crashed.active_state, "active");

    // The journal, read from the host, including the non-UTF-8 line (a JSON byte array), from
    // both runs.
    let lines = lab.wait_journal(t0, 2);
    assert!(
        lines
            .iter()
            .all(|l| l.at_ms.is_some_and(|t| t + 1000 >= t0)),
        "{lines:#?}"
    );
    let Fact::Known(last) = lab.systemd.journal("reflexapp", t0, 1) else {
        panic!("journal")
    };
    assert_eq!(last.len(), 1, "max_lines caps the entries");

    // A restart through D-Bus: a new main process, and NRestarts reset (systemd's rule).
    let outcome = restart_unit_on(&lab.systemd, "reflexapp", DEADLINE).expect("restart_unit");
    assert_eq!(outcome.target, "unit:reflexapp.service");
    let after = lab.unit("reflexapp");
    assert_eq!(
        (after.active_state.as_str(), after.sub_state.as_str()),
        ("active", "running")
    );
    assert_ne!(
        after.main_pid, crashed.main_pid,
        "RestartUnit must change MainPID"
    );
    assert_eq!(after.n_restarts, 0);

    // A unit that does not exist is refused, not waited on.
    let err = restart_unit_on(&lab.systemd, "no-such-unit", DEADLINE).expect_err("no such unit");
    assert!(
        matches!(
            err,
            RestartError::Refused { .. } | RestartError::Failed { .. }
        ),
        "{err:?}"
    );

    // The container's own nginx shows in this host's /proc: reflex reaches its configuration
    // through its root, and lists the masters of this namespace first.
    lab.wait_unit("nginx", "nginx active", |u| u.sub_state == "running");
    let masters = reflex::gather::nginx_proc::masters();
    let theirs = masters
        .iter()
        .find(|m| m.root.as_ref().is_some_and(|r| r.starts_with("/proc")))
        .unwrap_or_else(|| panic!("no container master in {masters:#?}"));
    let root = theirs.root.as_ref().expect("root");
    assert_eq!(theirs.conf, root.join("etc/nginx/nginx.conf"));
    assert!(
        theirs.conf.is_file(),
        "{} unreadable",
        theirs.conf.display()
    );
    assert_eq!(theirs.exe, None);
    let first_foreign = masters.iter().position(|m| m.root.is_some());
    assert!(
        masters[first_foreign.unwrap_or(0)..]
            .iter()
            .all(|m| m.root.is_some()),
        "this namespace's masters come first: {masters:#?}"
    );

    // A stopped unit: inactive/dead, no main process.
    lab.exec(&["systemctl", "stop", "reflexapp.service"]);
    let stopped = lab.unit("reflexapp");
    assert_eq!(
        (
            stopped.active_state.as_str(),
            stopped.sub_state.as_str(),
            stopped.main_pid
        ),
        ("inactive", "dead", 0)
    );
}

#[test]
fn no_bus_is_unavailable() {
    let dir = tempdir();
    let sys = Systemd {
        bus: Some(format!("unix:path={}", dir.path().join("no_bus").display())),
        journal_dir: None,
    };
    let Fact::Unavailable(u) = sys.units(&["app".into()]) else {
        panic!("a bus?")
    };
    assert_eq!(u.why, "systemd is not running (no system bus)");
    assert!(matches!(
        restart_unit_on(&sys, "app", DEADLINE),
        Err(RestartError::Unreachable(_))
    ));
}
