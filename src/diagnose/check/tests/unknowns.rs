//! Rules never assert what they could not read: unknown settings and facts not gathered give
//! notes, not findings built on defaults.

use std::time::Duration;

use super::{backend, checked, conf, host, kinds_of, tcp, tree};
use crate::diagnose::check::*;
use crate::model::backend::{Bind, Knob, RunAs, Server};
use crate::model::host::HostFacts;

#[test]
fn an_unknown_bind_is_not_a_mismatch() {
    let mut b = backend(Server::Uvicorn, vec![], 5);
    b.set_unknown(Knob::Bind, "`--port ${PORT}`: `PORT` is not defined");
    let (f, notes) = checked(&conf("        server 127.0.0.1:8000;", ""), &[b], &host());
    assert!(
        !kinds_of(&f).contains(&"upstream_address_mismatch"),
        "{f:?}"
    );
    assert!(
        notes.iter().any(|n| n
            .starts_with("upstream_address_mismatch: 127.0.0.1:8000 not checked")
            && n.contains("PORT")),
        "{notes:?}"
    );
}

#[test]
fn mismatch_fixes_are_auto_only_for_fully_understood_backends() {
    let c = conf("        server 127.0.0.1:8000;", "");
    let mut b = backend(Server::Uvicorn, vec![tcp("127.0.0.1", 8001)], 5);
    let (f, _) = checked(&c, std::slice::from_ref(&b), &host());
    assert!(f[0].fix.auto);
    b.unparsed.push("--mystery-flag".into());
    let (f, _) = checked(&c, &[b], &host());
    assert_eq!(kinds_of(&f), ["upstream_address_mismatch"]);
    assert!(!f[0].fix.auto);
}

#[test]
fn one_uvicorn_process_on_dual_colon_refuses_ipv4() {
    let b = [backend(Server::Uvicorn, vec![tcp("::", 8000)], 5)];
    let c = conf("        server 127.0.0.1:8000;", "");
    let (f, _) = checked(&c, &b, &host());
    assert_eq!(kinds_of(&f), ["upstream_address_mismatch"]);
    let diff = edit::unified_diff(&tree(&c), &f[0].fix.edits, None);
    assert!(diff.contains("+        server [::1]:8000;"), "{diff}");
    assert!(
        f[0].evidence.iter().any(|e| e.contains("IPv6 only")),
        "{:?}",
        f[0].evidence
    );
    // With several workers uvicorn binds `::` itself, dual-stack: served.
    let mut multi = b.clone();
    multi[0].workers = 2;
    assert!(checked(&c, &multi, &host()).0.is_empty());
}

#[test]
fn unknown_keepalive_and_timeouts_are_skipped_with_a_note() {
    let c = conf("        server 127.0.0.1:8000;\n        keepalive 8;", "");
    let mut b = backend(Server::Uvicorn, vec![tcp("127.0.0.1", 8000)], 5);
    b.set_unknown(
        Knob::KeepAlive,
        "keepalive = int(os.environ['KA']) is not evaluated",
    );
    let (f, notes) = checked(&c, &[b], &host());
    assert!(
        !kinds_of(&f).contains(&"upstream_keepalive_timeout_race"),
        "{f:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("keep-alive timeout is unknown")),
        "{notes:?}"
    );
    let mut g = backend(
        Server::Gunicorn {
            worker_class: "sync".into(),
        },
        vec![tcp("127.0.0.1", 8000)],
        2,
    );
    g.set_unknown(Knob::Timeout, "GUNICORN_CMD_ARGS may be set");
    let (f, notes) = checked(
        &conf("        server 127.0.0.1:8000;", ""),
        &[g.clone()],
        &host(),
    );
    assert!(f.is_empty(), "{f:?}");
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("worker_timeout_below_read_timeout"))
    );
    // `--timeout 0`: no timeout at all.
    g.unknown.clear();
    g.worker_timeout = None;
    assert!(
        checked(
            &conf("        server 127.0.0.1:8000;", ""),
            &[g.clone()],
            &host()
        )
        .0
        .is_empty()
    );
    g.worker_timeout = Some(Duration::from_secs(30));
    assert_eq!(
        kinds_of(&checked(&conf("        server 127.0.0.1:8000;", ""), &[g], &host()).0),
        ["worker_timeout_below_read_timeout"]
    );
}

#[test]
fn offline_host_facts_are_notes() {
    let offline = HostFacts {
        offline: true,
        ..HostFacts::default()
    };
    let c = conf(
        "        server nowhere.invalid:8000;\n        server 127.0.0.1:8000;",
        "",
    );
    let mut b = backend(Server::Uvicorn, vec![tcp("127.0.0.1", 8000)], 5);
    b.backlog = 1 << 20;
    let (f, notes) = checked(&c, &[b], &offline);
    assert!(f.is_empty(), "{f:?}");
    for rule in ["upstream_host_unresolvable", "backlog_above_somaxconn"] {
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with(rule) && n.contains("--no-discover")),
            "{rule}: {notes:?}"
        );
    }
}

#[test]
fn offline_socket_access_is_predicted_from_the_unit_by_name() {
    let offline = HostFacts {
        offline: true,
        ..HostFacts::default()
    };
    let c = conf("        server unix:/run/app/app.sock;", "");
    let mut b = backend(
        Server::Gunicorn {
            worker_class: "uvicorn.workers.UvicornWorker".into(),
        },
        vec![Bind::Unix {
            path: "/run/app/app.sock".into(),
        }],
        5,
    );
    b.run_as = RunAs {
        user: Some("app".into()),
        group: Some("app".into()),
        umask: Some(0o007),
        runtime_directories: vec!["/run/app".into()],
        runtime_directory_mode: Some(0o750),
    };
    let (f, _) = checked(&c, std::slice::from_ref(&b), &offline);
    assert_eq!(kinds_of(&f), ["unix_socket_not_accessible"]);
    assert!(
        f[0].evidence.iter().any(|e| e.contains("app:app /run/app")),
        "{:?}",
        f[0].evidence
    );
    b.run_as.runtime_directory_mode = Some(0o755);
    b.run_as.umask = Some(0);
    assert!(checked(&c, &[b], &offline).0.is_empty());
}
