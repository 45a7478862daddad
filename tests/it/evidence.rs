//! Live evidence against real processes: listeners and accept queues from netlink, process trees
//! and states from `/proc`, and HTTP probes straight to uvicorn and through a real nginx.
//!
//! Each test has its own temp dir, OS-assigned ports and unix sockets inside it; the harness
//! kills its processes by PID on drop (and SIGCONTs stopped ones first).

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use reflex::gather::evidence::probe::{self, Endpoint, Request};
use reflex::gather::evidence::{procs, sockets};
use reflex::model::backend::{Backend, Source};
use reflex::model::evidence::{Listener, ProbeOutcome};
use reflex::parse::backend::cmdline::{self, Context};

use crate::harness::app::{App, Bind};
use crate::harness::nginx::{Nginx, free_port};
use crate::harness::{shared_tempdir, tempdir};

/// The listener bound to `local`, if any.
fn listener(local: &str) -> Option<Listener> {
    let (fact, _) = sockets::listeners();
    fact.known()
        .expect("sock_diag works on this machine")
        .iter()
        .find(|l| l.local == local)
        .cloned()
}

/// Polls `listener(local)` until `ok` holds, for up to 5 s; returns the last reading.
fn wait_listener(local: &str, ok: impl Fn(&Listener) -> bool) -> Listener {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let l = listener(local);
        match l {
            Some(l) if ok(&l) || Instant::now() > deadline => return l,
            None if Instant::now() > deadline => panic!("no listener {local}"),
            _ => sleep(Duration::from_millis(50)),
        }
    }
}

fn tcp(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn backend_of(app: &App, name: &str) -> Backend {
    let argv = shlex::split(&app.cmdline()).expect("split cmdline");
    let ctx = Context {
        name: name.into(),
        source: Source::Flag { index: 0 },
        working_directory: None,
        run_as: Default::default(),
    };
    cmdline::parse(&argv, None, &BTreeMap::new(), ctx).expect("parse backend")
}

#[test]
fn listeners_have_owner_and_backlog() {
    let dir = tempdir();
    let uds = App::uvicorn(&dir.path().join("u"))
        .bind(Bind::Uds)
        .args(&["--backlog", "7"])
        .start();
    let web = App::uvicorn(&dir.path().join("t"))
        .args(&["--backlog", "7"])
        .start();

    let u = listener(&format!("unix:{}", uds.uds().display())).expect("unix listener");
    assert_eq!(u.backlog, 7, "{u:?}");
    assert_eq!(u.accept_queue, 0);
    assert!(
        u.pids.contains(&(uds.pid() as i32)),
        "{u:?} pid {}",
        uds.pid()
    );

    let t = listener(&format!("127.0.0.1:{}", web.port())).expect("tcp listener");
    assert_eq!(t.backlog, 7, "{t:?}");
    assert!(
        t.pids.contains(&(web.pid() as i32)),
        "{t:?} pid {}",
        web.pid()
    );
    assert_ne!(t.inode, u.inode);
}

#[test]
fn stopped_uvicorn_queues_connections_and_times_out() {
    let dir = tempdir();
    let app = App::uvicorn(dir.path()).args(&["--backlog", "7"]).start();
    let local = format!("127.0.0.1:{}", app.port());
    assert!(app.signal("STOP"));

    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(tcp(app.port())).expect("connect to stopped uvicorn"))
        .collect();
    let l = wait_listener(&local, |l| l.accept_queue == 3);
    assert_eq!((l.accept_queue, l.backlog), (3, 7), "{l:?}");

    let p = probe::probe(
        &Request::upstream(Endpoint::Tcp(tcp(app.port())), "/health"),
        Duration::from_millis(300),
    );
    match p.outcome {
        ProbeOutcome::ReadTimeout {
            connect_ms,
            after_ms,
        } => {
            assert!(connect_ms < 100.0 && after_ms >= 290.0, "{p:?}");
        }
        other => panic!("want ReadTimeout, got {other:?}"),
    }

    let (_, apps) = procs::sample(&[], Duration::from_millis(200));
    let apps = apps.known().expect("processes").clone();
    let tree = apps
        .iter()
        .find(|t| t.master.pid == app.pid() as i32)
        .expect("uvicorn tree");
    assert_eq!(tree.master.state, 'T');
    assert_eq!(tree.master.cpu_ticks.0, tree.master.cpu_ticks.1);
    assert_eq!(tree.master.sample_ms, 200);
    assert!(tree.workers.is_empty());
    drop(held);
}

#[test]
fn full_unix_backlog_refuses_with_eagain() {
    use socket2::{Domain, SockAddr, Socket, Type};
    let dir = tempdir();
    let app = App::uvicorn(dir.path())
        .bind(Bind::Uds)
        .args(&["--backlog", "2"])
        .start();
    assert!(app.signal("STOP"));

    // Fill the queue the way nginx connects: non-blocking, until EAGAIN.
    let mut held = Vec::new();
    let err = loop {
        let s = Socket::new(Domain::UNIX, Type::STREAM, None).expect("socket");
        s.set_nonblocking(true).expect("nonblocking");
        match s.connect(&SockAddr::unix(app.uds()).expect("addr")) {
            Ok(()) if held.len() < 10 => held.push(s),
            Ok(()) => panic!("backlog 2 took more than 10 connections"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.raw_os_error(), Some(11), "{err}");
    let l = listener(&format!("unix:{}", app.uds().display())).expect("listener");
    assert_eq!(l.backlog, 2);
    assert_eq!(l.accept_queue as usize, held.len(), "{l:?}");

    let p = probe::probe(
        &Request::upstream(Endpoint::Unix(app.uds().into()), "/"),
        Duration::from_millis(300),
    );
    assert!(
        matches!(p.outcome, ProbeOutcome::ConnectFailed { errno: 11, .. }),
        "{p:?}"
    );
    assert_eq!(p.target, format!("unix:{}", app.uds().display()));
}

/// A full TCP accept queue drops SYNs: the next client sits in SYN-SENT, a probe's connect times
/// out (nginx's 504 "while connecting"), and `ListenOverflows` rises.
#[test]
fn full_tcp_backlog_drops_syns() {
    use reflex::gather::evidence::kernel;
    use socket2::{Domain, SockAddr, Socket, Type};
    let dir = tempdir();
    let app = App::uvicorn(dir.path()).args(&["--backlog", "1"]).start();
    let local = format!("127.0.0.1:{}", app.port());
    assert!(app.signal("STOP"));
    let before = kernel::tcp_ext().expect("netstat");

    // The queue holds backlog + 1 connections (the kernel's check is `>`).
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(tcp(app.port())).expect("connect"))
        .collect();
    let l = wait_listener(&local, |l| l.accept_queue == 2);
    assert_eq!((l.accept_queue, l.backlog), (2, 1), "{l:?}");

    let stuck = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    stuck.set_nonblocking(true).expect("nonblocking");
    let _ = stuck.connect(&SockAddr::from(tcp(app.port()))); // EINPROGRESS
    let syn = sockets::syn_sent();
    let n = syn
        .known()
        .expect("syn_sent")
        .iter()
        .find(|(dst, _)| *dst == local)
        .map(|(_, n)| *n);
    assert!(n.is_some_and(|n| n >= 1), "{syn:?}");

    let p = probe::probe(
        &Request::upstream(Endpoint::Tcp(tcp(app.port())), "/"),
        Duration::from_millis(300),
    );
    assert!(
        matches!(p.outcome, ProbeOutcome::ConnectTimeout { after_ms } if after_ms >= 290.0),
        "{p:?}"
    );
    let after = kernel::tcp_ext().expect("netstat");
    assert!(
        after.listen_overflows > before.listen_overflows,
        "{before:?} {after:?}"
    );
    drop(held);
}

#[test]
fn probe_of_closed_port_is_refused() {
    let port = free_port();
    let p = probe::probe(
        &Request::upstream(Endpoint::Tcp(tcp(port)), "/"),
        Duration::from_millis(500),
    );
    match &p.outcome {
        ProbeOutcome::ConnectFailed {
            errno,
            after_ms,
            message,
        } => {
            assert_eq!(*errno, 111);
            assert!(*after_ms < 100.0, "{p:?}");
            // The OS's words, as nginx shows them in `(111: Connection refused)`.
            assert_eq!(message, "Connection refused");
        }
        other => panic!("want ConnectFailed 111, got {other:?}"),
    }
}

#[test]
fn probe_through_nginx_and_nginx_processes() {
    let dir = shared_tempdir();
    let app = App::uvicorn(&dir.path().join("app")).start();
    let nginx = Nginx::builder(&dir.path().join("nginx"))
        .server(&format!(
            "location / {{ proxy_pass http://127.0.0.1:{}; }}",
            app.port()
        ))
        .start();

    let started = Instant::now();
    let probes = probe::probe_all(
        &[
            Request::nginx(tcp(nginx.port()), "/health"),
            Request::upstream(Endpoint::Tcp(tcp(app.port())), "/health"),
            Request::upstream(Endpoint::Tcp(tcp(free_port())), "/health"),
        ],
        Duration::from_secs(2),
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        probes[0].target,
        format!("nginx http://127.0.0.1:{}", nginx.port())
    );
    assert!(probes[0].via_nginx && !probes[1].via_nginx);
    for p in &probes[..2] {
        match p.outcome {
            ProbeOutcome::Response {
                status,
                connect_ms,
                first_byte_ms,
            } => {
                assert_eq!(status, 200, "{p:?}");
                assert!(connect_ms > 0.0 && first_byte_ms >= connect_ms, "{p:?}");
            }
            ref other => panic!("want 200 from {}, got {other:?}", p.target),
        }
    }
    assert!(matches!(
        probes[2].outcome,
        ProbeOutcome::ConnectFailed { errno: 111, .. }
    ));

    let (ngx, _) = procs::sample(&[], Duration::from_millis(50));
    let ngx = ngx.known().expect("nginx processes").clone();
    let n = ngx
        .iter()
        .find(|n| n.master.pid == nginx.pid() as i32)
        .expect("our nginx");
    assert_eq!(n.conf, nginx.conf());
    assert_eq!(n.workers.len(), 1, "{n:?}");
    assert_eq!(n.workers[0].user.as_deref(), Some("nobody"));
    assert_eq!(n.master.user.as_deref(), Some("root"));
    assert!(
        n.globals
            .as_deref()
            .is_some_and(|g| g.contains("daemon off"))
    );
}

#[test]
fn gunicorn_tree_with_two_workers() {
    let dir = tempdir();
    let app = App::gunicorn(dir.path())
        .args(&["-w", "2", "-k", "uvicorn.workers.UvicornWorker"])
        .start();
    let backends = [backend_of(&app, "gunicorn-app")];
    let deadline = Instant::now() + Duration::from_secs(10);
    let tree = loop {
        let (_, apps) = procs::sample(&backends, Duration::from_millis(100));
        let tree = apps
            .known()
            .expect("processes")
            .iter()
            .find(|t| t.master.pid == app.pid() as i32)
            .cloned()
            .expect("gunicorn tree");
        if tree.workers.len() == 2 || Instant::now() > deadline {
            break tree;
        }
    };
    assert_eq!(tree.backend.as_deref(), Some("gunicorn-app"));
    assert_eq!(tree.workers.len(), 2, "{tree:?}");
    for p in std::iter::once(&tree.master).chain(&tree.workers) {
        assert!(matches!(p.state, 'S' | 'R'), "{p:?}");
        assert!(p.start_ms > 1_600_000_000_000, "{p:?}");
    }
    assert!(tree.workers.iter().all(|w| w.ppid == tree.master.pid));
    // Workers are forked from the master: the same command line.
    assert_eq!(tree.workers[0].cmdline, tree.master.cmdline);
}

#[test]
fn uvicorn_workers_are_spawn_children() {
    let dir = tempdir();
    let app = App::uvicorn(dir.path()).args(&["--workers", "2"]).start();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, apps) = procs::sample(&[], Duration::from_millis(50));
        let apps = apps.known().expect("processes").clone();
        let tree = apps
            .iter()
            .find(|t| t.master.pid == app.pid() as i32)
            .expect("uvicorn tree");
        if tree.workers.len() == 2 {
            assert!(
                tree.workers
                    .iter()
                    .all(|w| w.cmdline.iter().any(|a| a == "--multiprocessing-fork"))
            );
            break;
        }
        assert!(Instant::now() < deadline, "{tree:?}");
    }
}

/// The child half of [`unix_socket_permission_denied`]: runs only when re-executed as `nobody`
/// with `REFLEX_PROBE_AS_CHILD` set, and prints the outcome.
#[test]
fn probe_as_child() {
    let Some(sock) = std::env::var_os("REFLEX_PROBE_AS_CHILD") else {
        return;
    };
    let p = probe::probe(
        &Request::upstream(Endpoint::Unix(sock.into()), "/"),
        Duration::from_millis(500),
    );
    println!(
        "OUTCOME {}",
        serde_json::to_string(&p.outcome).expect("json")
    );
}

/// A socket in a 0700 directory, probed by a process running as `nobody` (the test binary
/// re-executed through `setpriv`): errno 13, as nginx's workers would get.
#[test]
fn unix_socket_permission_denied() {
    use std::os::unix::fs::PermissionsExt;
    let dir = shared_tempdir();
    let private = dir.path().join("private");
    let app = App::uvicorn(&private).bind(Bind::Uds).start();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).expect("chmod");

    let out = run_as_nobody(app.uds());
    assert!(
        out.contains(r#""outcome":"connect_failed","errno":13"#),
        "{out}"
    );
}

fn run_as_nobody(sock: &Path) -> String {
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(exe)
        .args([
            "--exact",
            "evidence::probe_as_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("REFLEX_PROBE_AS_CHILD", sock)
        .output()
        .expect("run setpriv");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
