//! supervisord evidence and restarts against a REAL supervisord 4.x (Debian's `supervisor`
//! package) running a real uvicorn, all in the test's temp dir: the XML-RPC unix socket, the
//! app's unix socket and the logs. supervisord is stopped by PID on drop (it stops its
//! programs first).

use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use reflex::act::restart::{RestartError, restart_program};
use reflex::gather::evidence::supervisord::{Endpoint, endpoint_from_conf, programs, tail};
use reflex::model::evidence::{Fact, ProgramState};

use crate::harness::proc::Proc;
use crate::harness::{repo, tempdir, venv_bin, write};

const DEADLINE: Duration = Duration::from_secs(30);

fn conf(dir: &Path) -> String {
    let uvicorn = venv_bin("uvicorn");
    format!(
        "[unix_http_server]
file=%(here)s/supervisor.sock
chmod=0700

[supervisord]
logfile=%(here)s/supervisord.log
pidfile=%(here)s/supervisord.pid
childlogdir=%(here)s
nodaemon=true

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[program:app]
command={uvicorn} app:app --app-dir {dir} --uds {dir}/app.sock
directory={dir}
environment=PYTHONUNBUFFERED=\"1\",PYTHONDONTWRITEBYTECODE=\"1\"
autorestart=true
startsecs=1
startretries=10
stopwaitsecs=5
stdout_logfile=%(here)s/app.out.log
stderr_logfile=%(here)s/app.err.log
",
        uvicorn = uvicorn.display(),
        dir = dir.display(),
    )
}

fn supervisord_bin() -> String {
    let bin = std::env::var("REFLEX_SUPERVISORD").unwrap_or_else(|_| "/usr/bin/supervisord".into());
    assert!(
        Path::new(&bin).exists(),
        "supervisord not found at {bin} (run scripts/setup)"
    );
    bin
}

/// Polls `programs()` until the `app` program satisfies `ok`.
fn wait_app(ep: &Endpoint, what: &str, ok: impl Fn(&ProgramState) -> bool) -> ProgramState {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let got = programs(ep);
        if let Fact::Known(ps) = &got
            && let Some(app) = ps.iter().find(|p| p.name == "app")
            && ok(app)
        {
            return app.clone();
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {got:?}"
        );
        sleep(Duration::from_millis(100));
    }
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

#[test]
fn programs_tail_crash_and_restart_with_a_real_supervisord() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::copy(repo().join("tests/fixtures/apps/app.py"), d.join("app.py"))
        .expect("copy app.py");
    let conf_path = write(d, "supervisord.conf", &conf(d));
    let ep = endpoint_from_conf(&conf(d), d).expect("endpoint in supervisord.conf");
    assert_eq!(
        ep,
        Endpoint::Unix {
            path: d.join("supervisor.sock"),
            auth: None
        }
    );

    let mut cmd = Command::new(supervisord_bin());
    cmd.arg("-n").arg("-c").arg(&conf_path).current_dir(d);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _supervisord = Proc::spawn(cmd, "supervisord").expect("start supervisord");

    // RUNNING, with the real uvicorn's pid.
    let first = wait_app(&ep, "app RUNNING", |p| p.state == "RUNNING" && p.pid > 0);
    assert_eq!(first.group, "app");
    assert!(
        cmdline(first.pid).contains("uvicorn"),
        "pid {} is {}",
        first.pid,
        cmdline(first.pid)
    );
    assert_eq!(
        first.stderr_logfile.as_deref(),
        Some(d.join("app.err.log").as_path())
    );
    assert!(first.start > 0);

    // uvicorn's startup lines, through tailProcess*Log.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let Fact::Known(lines) = tail(&ep, "app", 4096) else {
            panic!("tail: {:?}", tail(&ep, "app", 4096))
        };
        if lines
            .iter()
            .any(|l| l.text.contains("Application startup complete"))
        {
            assert!(
                lines
                    .iter()
                    .any(|l| l.text.contains("Uvicorn running on unix socket")),
                "{lines:#?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no startup lines in {lines:#?}");
        sleep(Duration::from_millis(100));
    }

    // A crash: supervisord notices (EXITED/BACKOFF/STARTING) and starts a new process.
    let killed = Command::new("kill")
        .args(["-KILL", &first.pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let crashed = wait_app(&ep, "a new pid after kill -9", |p| {
        p.pid > 0 && p.pid != first.pid
    });
    assert!(
        ["STARTING", "RUNNING"].contains(&crashed.state.as_str()),
        "{crashed:?}"
    );
    let back = wait_app(&ep, "RUNNING again", |p| p.state == "RUNNING");

    // restart_program: stop + start, a new pid.
    let outcome = restart_program(&ep, "app").expect("restart_program");
    assert_eq!(outcome.target, "supervisord:app");
    let Fact::Known(ps) = programs(&ep) else {
        panic!("programs")
    };
    let after = ps.iter().find(|p| p.name == "app").expect("app");
    assert_eq!(after.state, "RUNNING");
    assert_ne!(after.pid, back.pid, "restart_program must change the pid");

    // An unknown program is refused (BAD_NAME), and so is its log.
    let err = restart_program(&ep, "nope").expect_err("no such program");
    assert!(
        matches!(err, RestartError::Refused { ref message, .. } if message.contains("BAD_NAME")),
        "{err:?}"
    );
    assert!(matches!(tail(&ep, "nope", 100), Fact::Unavailable(_)));
}
