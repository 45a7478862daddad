//! Discovery against fake roots: unit dirs, a supervisord tree and a procfs-shaped directory.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use super::*;
use crate::model::backend::{Bind, Server};

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(&p, text).expect("write");
    p
}

fn fake_proc(root: &Path, pid: i32, ppid: i32, argv: &[&str], cwd: &Path) {
    let dir = root.join(pid.to_string());
    std::fs::create_dir_all(&dir).expect("mkdir");
    let cmdline: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::write(dir.join("cmdline"), cmdline).expect("cmdline");
    std::fs::write(
        dir.join("stat"),
        format!("{pid} (python3) S {ppid} {pid} {pid} 0"),
    )
    .expect("stat");
    std::fs::write(dir.join("status"), "Name:\tpython3\nUid:\t0\t0\t0\t0\n").expect("status");
    std::fs::write(dir.join("environ"), b"GUNICORN_CMD_ARGS=--keep-alive 9\0").expect("environ");
    std::os::unix::fs::symlink(cwd, dir.join("cwd")).expect("cwd");
}

fn tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().expect("tempdir");
    let r = t.path();
    write(
        r,
        "etc/systemd/system/api.service",
        "[Service]\nUser=www-data\nUMask=0027\nRuntimeDirectory=api\nWorkingDirectory=/srv/api\n\
         ExecStart=/srv/api/.venv/bin/uvicorn main:app --uds /run/api/api.sock\n",
    );
    write(
        r,
        "etc/systemd/system/api.service.d/10-keepalive.conf",
        "[Service]\nExecStart=\nExecStart=/srv/api/.venv/bin/uvicorn main:app --uds /run/api/api.sock --timeout-keep-alive 75\n",
    );
    write(
        r,
        "lib/systemd/system/api.service",
        "[Service]\nExecStart=/usr/bin/uvicorn shadowed:app\n",
    );
    write(
        r,
        "lib/systemd/system/ssh.service",
        "[Service]\nExecStart=/usr/sbin/sshd -D\n",
    );
    write(
        r,
        "lib/systemd/system/tpl@.service",
        "[Service]\nExecStart=/usr/bin/uvicorn %i:app\n",
    );
    write(
        r,
        "etc/supervisor/supervisord.conf",
        "[supervisord]\numask=002\n[include]\nfiles = conf.d/*.conf\n",
    );
    write(
        r,
        "etc/supervisor/conf.d/shop.conf",
        "[program:shop]\ncommand=gunicorn -c gunicorn.conf.py shop:app\ndirectory=%(here)s\nuser=shop\n",
    );
    write(
        r,
        "etc/supervisor/conf.d/gunicorn.conf.py",
        "bind = 'unix:/run/shop.sock'\nkeepalive = 30\nworker_class = 'uvicorn.workers.UvicornWorker'\n",
    );
    t
}

fn roots(r: &Path) -> Roots {
    Roots {
        systemd_dirs: vec![r.join("etc/systemd/system"), r.join("lib/systemd/system")],
        supervisord_confs: vec![
            r.join("etc/supervisor/supervisord.conf"),
            r.join("etc/supervisord.conf"),
        ],
        proc: Some(r.join("proc")),
    }
}

#[test]
fn units_and_supervisord() {
    let t = tree();
    let d = discover_in(&Roots {
        proc: None,
        ..roots(t.path())
    });
    assert_eq!(d.backends.len(), 2, "{:#?}\n{:?}", d.backends, d.notes);
    let api = &d.backends[0];
    assert_eq!(api.name, "api.service");
    assert_eq!(
        api.binds,
        [Bind::Unix {
            path: "/run/api/api.sock".into()
        }]
    );
    assert_eq!(api.keepalive, Duration::from_secs(75));
    assert_eq!(api.run_as.user.as_deref(), Some("www-data"));
    assert_eq!(api.run_as.umask, Some(0o027));
    assert_eq!(api.run_as.runtime_directories, [PathBuf::from("/run/api")]);
    assert!(
        matches!(&api.source, Source::SystemdUnit { path, line: 3, .. } if path.ends_with("10-keepalive.conf"))
    );

    let shop = &d.backends[1];
    assert_eq!(shop.name, "shop");
    assert_eq!(
        shop.server,
        Server::Gunicorn {
            worker_class: "uvicorn.workers.UvicornWorker".into()
        }
    );
    assert_eq!(
        shop.binds,
        [Bind::Unix {
            path: "/run/shop.sock".into()
        }]
    );
    assert_eq!(shop.keepalive, Duration::from_secs(30));
    assert_eq!(shop.run_as.user.as_deref(), Some("shop"));
    // gunicorn applies its own umask (default 0) when it creates the socket.
    assert_eq!(shop.run_as.umask, Some(0));
}

#[test]
fn processes_dedup_workers_and_units() {
    let t = tree();
    let r = t.path();
    let proc = r.join("proc");
    let app = r.join("app");
    write(r, "app/gunicorn.conf.py", "workers = 2\n");
    let g = [
        "/venv/bin/python3",
        "/venv/bin/gunicorn",
        "-k",
        "uvicorn.workers.UvicornWorker",
        "-b",
        "127.0.0.1:0",
        "m:app",
    ];
    fake_proc(&proc, 100, 1, &g, &app);
    fake_proc(&proc, 101, 100, &g, &app);
    fake_proc(&proc, 102, 100, &g, &app);
    // The systemd unit's server, seen as a process: reported once, as the unit.
    let u = [
        "/srv/api/.venv/bin/python3",
        "/srv/api/.venv/bin/uvicorn",
        "main:app",
        "--uds",
        "/run/api/api.sock",
        "--timeout-keep-alive",
        "75",
    ];
    fake_proc(&proc, 200, 1, &u, &app);
    fake_proc(
        &proc,
        300,
        1,
        &["/usr/sbin/nginx", "-g", "daemon off;"],
        &app,
    );
    std::fs::create_dir_all(proc.join("self")).expect("self");

    let d = discover_in(&roots(r));
    let procs: Vec<_> = d
        .backends
        .iter()
        .filter(|b| matches!(b.source, Source::Process { .. }))
        .collect();
    assert_eq!(procs.len(), 1, "{procs:#?}");
    let g = procs[0];
    assert_eq!(g.source, Source::Process { pid: 100 });
    assert_eq!(
        g.binds,
        [Bind::Tcp {
            host: "127.0.0.1".into(),
            port: 0
        }]
    );
    assert_eq!(
        g.workers, 2,
        "./gunicorn.conf.py in the process's cwd is read"
    );
    assert_eq!(
        g.keepalive,
        Duration::from_secs(9),
        "GUNICORN_CMD_ARGS from environ"
    );
    assert_eq!(g.working_directory.as_deref(), Some(app.as_path()));
    assert!(
        d.notes.iter().any(|n| n.starts_with("pid 200")),
        "{:?}",
        d.notes
    );
}

#[test]
fn unreadable_is_a_note() {
    let t = tempfile::tempdir().expect("tempdir");
    let d = discover_in(&Roots {
        systemd_dirs: vec![t.path().join("missing")],
        supervisord_confs: vec![],
        proc: Some(t.path().join("no-proc")),
    });
    assert!(d.backends.is_empty());
    assert_eq!(d.notes.len(), 1, "{:?}", d.notes);
    assert!(d.notes[0].starts_with("unavailable: "));
}

#[test]
fn explicit_files() {
    let t = tree();
    let r = t.path();
    let units = from_unit_files(
        &[
            r.join("etc/systemd/system/api.service"),
            r.join("lib/systemd/system/ssh.service"),
        ],
        false,
    )
    .expect("units")
    .backends;
    assert_eq!(units.len(), 1);
    assert_eq!(
        units[0].keepalive,
        Duration::from_secs(75),
        "drop-in beside the unit applied"
    );
    let progs = from_supervisord_confs(&[r.join("etc/supervisor/supervisord.conf")], false)
        .expect("confs")
        .backends;
    assert_eq!(progs.len(), 1);
    assert!(from_unit_files(&[r.join("nope.service")], false).is_err());
}

#[test]
fn flags() {
    let b = from_cmdlines(&[
        "uvicorn main:app --port 9000".into(),
        "gunicorn -w 2 'a:create()'".into(),
    ])
    .expect("flags");
    assert_eq!(b[0].name, "--backend #1");
    assert_eq!(b[1].source, Source::Flag { index: 1 });
    assert_eq!(b[1].app.as_deref(), Some("a:create()"));
    let err = from_cmdlines(&["uvicorn a:b --port x".into()]).unwrap_err();
    // The cause is the error's source, printed once by the CLI's `{:#}`.
    assert_eq!(
        format!("{:#}", anyhow::Error::from(err)),
        "--backend #1: option `--port` expects a number, got `x`"
    );
    assert!(from_cmdlines(&["nginx".into()]).is_err());
}
