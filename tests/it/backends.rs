//! Process discovery against real servers: a uvicorn on a unix socket (with `--workers 2`) and a
//! gunicorn with two UvicornWorkers on an OS-assigned port, found through the live `/proc`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reflex::gather::backends::{Roots, discover_in};
use reflex::model::backend::{Backend, Bind, Server};

use crate::harness::{tempdir, venv_bin, write};

const APP: &str = "from fastapi import FastAPI\n\napp = FastAPI()\n\n@app.get('/')\ndef root():\n    return {'ok': True}\n";

/// Kills and reaps the server (and its process group) on drop, even when an assertion failed.
struct Server_(Child);

impl Drop for Server_ {
    fn drop(&mut self) {
        // The server runs in its own process group (its pid): kill the group so gunicorn's
        // workers and uvicorn's spawned children go too, then reap the leader.
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(cmd: &mut Command) -> Server_ {
    use std::os::unix::process::CommandExt;
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    Server_(cmd.spawn().expect("start server"))
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn children_of(pid: u32) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|s| {
            let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
            rest.split_whitespace().nth(1) == Some(pid.to_string().as_str())
        })
        .count()
}

/// The backends found in the live `/proc` whose command line mentions `dir` (other tests'
/// servers may be running at the same time).
fn found_in(dir: &Path) -> Vec<Backend> {
    let roots = Roots {
        systemd_dirs: vec![],
        supervisord_confs: vec![],
        proc: Some("/proc".into()),
    };
    let needle = dir.to_string_lossy();
    discover_in(&roots)
        .backends
        .into_iter()
        .filter(|b| b.argv.iter().any(|a| a.contains(&*needle)))
        .collect()
}

#[test]
fn finds_a_running_uvicorn_once() {
    let dir = tempdir();
    write(dir.path(), "app.py", APP);
    let sock = dir.path().join("app.sock");
    let server = spawn(
        Command::new(venv_bin("uvicorn"))
            .args(["--app-dir"])
            .arg(dir.path())
            .arg("--uds")
            .arg(&sock)
            .args(["--workers", "2", "--timeout-keep-alive", "7", "app:app"]),
    );
    wait_for("uvicorn's socket", || sock.exists());
    wait_for("uvicorn's workers", || children_of(server.0.id()) >= 2);

    let found = found_in(dir.path());
    assert_eq!(found.len(), 1, "{found:#?}");
    let b = &found[0];
    assert_eq!(b.server, Server::Uvicorn);
    assert_eq!(b.binds, [Bind::Unix { path: sock.clone() }]);
    assert_eq!(
        (b.keepalive, b.keepalive_explicit),
        (Duration::from_secs(7), true)
    );
    assert_eq!(b.workers, 2);
    assert_eq!(b.app.as_deref(), Some("app:app"));
}

#[test]
fn finds_a_running_gunicorn_master_not_its_workers() {
    let dir = tempdir();
    write(dir.path(), "app.py", APP);
    let server = spawn(
        Command::new(venv_bin("gunicorn"))
            .current_dir(dir.path())
            .args([
                "-k",
                "uvicorn.workers.UvicornWorker",
                "-w",
                "2",
                "-b",
                "127.0.0.1:0",
            ])
            .args(["--keep-alive", "11", "--chdir"])
            .arg(dir.path())
            .arg("app:app"),
    );
    wait_for("gunicorn's workers", || children_of(server.0.id()) >= 2);

    let found = found_in(dir.path());
    assert_eq!(found.len(), 1, "{found:#?}");
    let b = &found[0];
    assert_eq!(
        b.server,
        Server::Gunicorn {
            worker_class: "uvicorn.workers.UvicornWorker".into()
        }
    );
    assert_eq!(
        b.binds,
        [Bind::Tcp {
            host: "127.0.0.1".into(),
            port: 0
        }]
    );
    assert_eq!(
        (b.keepalive, b.keepalive_explicit),
        (Duration::from_secs(11), true)
    );
    assert_eq!(b.workers, 2);
    assert_eq!(b.working_directory.as_deref(), Some(dir.path()));
}
