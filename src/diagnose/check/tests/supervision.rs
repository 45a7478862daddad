//! Rules about how the supervisor runs the backend: PrivateTmp=, graceful stops, --reload,
//! Restart=.

use std::time::Duration;

use super::{backend, conf, host, kinds};
use crate::model::backend::{Backend, Bind, Server, Source, Supervision};

fn unit(mut b: Backend) -> Backend {
    b.source = Source::SystemdUnit {
        unit: "app.service".into(),
        path: "/etc/systemd/system/app.service".into(),
        line: 7,
    };
    b.supervision = Supervision {
        restart: Some(("always".into(), 5)),
        private_tmp: false,
        stop_timeout: Some(Duration::from_secs(90)),
        stop_timeout_explicit: false,
    };
    b
}

fn uds(path: &str) -> Backend {
    unit(backend(
        Server::Uvicorn,
        vec![Bind::Unix { path: path.into() }],
        5,
    ))
}

#[test]
fn unix_socket_private_tmp() {
    let c = conf("        server unix:/tmp/app.sock;", "");
    let mut b = uds("/tmp/app.sock");
    assert!(kinds(&c, std::slice::from_ref(&b), &host()).is_empty());
    b.supervision.private_tmp = true;
    assert_eq!(
        kinds(&c, std::slice::from_ref(&b), &host()),
        ["unix_socket_private_tmp"]
    );
    // Outside /tmp and /var/tmp the private mounts do not matter.
    let mut run = uds("/run/app/app.sock");
    run.supervision.private_tmp = true;
    assert!(
        kinds(
            &conf("        server unix:/run/app/app.sock;", ""),
            &[run],
            &host()
        )
        .is_empty()
    );
}

#[test]
fn graceful_timeout_below_read_timeout() {
    let c = conf("        server 127.0.0.1:8000;", "");
    let tcp = vec![Bind::Tcp {
        host: "127.0.0.1".into(),
        port: 8000,
    }];
    // uvicorn waits for in-flight requests; systemd's 90 s is above nginx's 60 s.
    let u = unit(backend(Server::Uvicorn, tcp.clone(), 5));
    assert!(kinds(&c, std::slice::from_ref(&u), &host()).is_empty());
    // gunicorn's default 30 s is not.
    let mut g = unit(backend(
        Server::Gunicorn {
            worker_class: "uvicorn.workers.UvicornWorker".into(),
        },
        tcp.clone(),
        65,
    ));
    g.worker_timeout = Some(Duration::from_secs(120));
    g.graceful_timeout = Some(Duration::from_secs(30));
    let f = super::findings(&c, std::slice::from_ref(&g), &host());
    assert_eq!(super::kinds_of(&f), ["graceful_timeout_below_read_timeout"]);
    assert!(
        f[0].fix.summary.contains("--graceful-timeout 65"),
        "{}",
        f[0].fix.summary
    );
    g.graceful_timeout = Some(Duration::from_secs(70));
    assert!(kinds(&c, std::slice::from_ref(&g), &host()).is_empty());
    // The supervisor's own limit counts too.
    let mut short = u.clone();
    short.supervision.stop_timeout = Some(Duration::from_secs(10));
    short.supervision.stop_timeout_explicit = true;
    let f = super::findings(&c, &[short], &host());
    assert!(
        f[0].fix.summary.contains("TimeoutStopSec=70s"),
        "{}",
        f[0].fix.summary
    );
}

#[test]
fn backend_reload_in_production_and_no_restart() {
    let c = conf("        server unix:/run/app/app.sock;", "");
    let mut b = uds("/run/app/app.sock");
    b.reload = true;
    assert_eq!(
        kinds(&c, std::slice::from_ref(&b), &host()),
        ["backend_reload_in_production"]
    );
    // A developer's own command line may reload.
    let mut dev = b.clone();
    dev.source = Source::Flag { index: 0 };
    assert!(kinds(&c, &[dev], &host()).is_empty());
    b.reload = false;
    b.supervision.restart = None;
    assert_eq!(
        kinds(&c, std::slice::from_ref(&b), &host()),
        ["backend_no_restart"]
    );
    b.supervision.restart = Some(("no".into(), 6));
    let f = super::findings(&c, std::slice::from_ref(&b), &host());
    assert_eq!(f[0].location.as_ref().map(|p| p.line), Some(6));
    b.supervision.restart = Some(("on-failure".into(), 6));
    assert!(kinds(&c, std::slice::from_ref(&b), &host()).is_empty());
    // supervisord restarts unexpected exits by default; autorestart=false turns it off.
    b.source = Source::Supervisord {
        program: "app".into(),
        path: "/etc/supervisor/conf.d/app.conf".into(),
        line: 2,
    };
    b.supervision.restart = None;
    b.supervision.stop_timeout = Some(Duration::from_secs(90));
    assert!(kinds(&c, std::slice::from_ref(&b), &host()).is_empty());
    b.supervision.restart = Some(("false".into(), 4));
    assert_eq!(kinds(&c, &[b], &host()), ["backend_no_restart"]);
}
