//! Every rule from literals: a configuration with the problem, and the fixed one.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use super::edit::unified_diff;
use super::*;
use crate::model::backend::{Backend, Bind, RunAs, Server};
use crate::model::host::{HostFacts, PathComponent, PathFacts, UserFacts};
use crate::test_support::{backend, tree};

mod maps;
mod proxy_pass;
mod supervision;
mod unknowns;

fn tcp(host: &str, port: u16) -> Bind {
    Bind::Tcp {
        host: host.into(),
        port,
    }
}

fn host() -> HostFacts {
    let mut h = HostFacts {
        somaxconn: Some(4096),
        ..Default::default()
    };
    let lo: Vec<IpAddr> = vec!["::1".parse().expect("ip"), "127.0.0.1".parse().expect("ip")];
    h.resolved.insert("localhost".into(), Ok(lo));
    h.resolved.insert(
        "nowhere.invalid".into(),
        Err("Name or service not known".into()),
    );
    h.users.insert(
        "www-data".into(),
        Some(UserFacts {
            name: "www-data".into(),
            uid: 33,
            gid: 33,
            groups: vec![33],
        }),
    );
    h.users.insert(
        "nobody".into(),
        Some(UserFacts {
            name: "nobody".into(),
            uid: 65534,
            gid: 65534,
            groups: vec![65534],
        }),
    );
    h.users.insert(
        "app".into(),
        Some(UserFacts {
            name: "app".into(),
            uid: 1000,
            gid: 1000,
            groups: vec![1000],
        }),
    );
    h.groups = BTreeMap::from([
        ("www-data".into(), Some(33)),
        ("nogroup".into(), Some(65534)),
        ("app".into(), Some(1000)),
        ("root".into(), Some(0)),
    ]);
    h
}

fn kinds(conf: &str, backends: &[Backend], host: &HostFacts) -> Vec<&'static str> {
    kinds_of(&findings(conf, backends, host))
}

/// The kinds of `f`, in order.
fn kinds_of(f: &[Finding]) -> Vec<&'static str> {
    f.iter().map(|f| f.kind).collect()
}

fn findings(conf: &str, backends: &[Backend], host: &HostFacts) -> Vec<Finding> {
    checked(conf, backends, host).0
}

/// The findings, and the notes of what could not be checked.
fn checked(conf: &str, backends: &[Backend], host: &HostFacts) -> (Vec<Finding>, Vec<String>) {
    let t = tree(conf);
    let m = NginxModel::build(&t);
    run_with_notes(&CheckInput {
        tree: &t,
        nginx: &m,
        backends,
        host,
    })
}

/// A proxy block with everything right, to which each test adds one problem.
fn conf(upstream: &str, location: &str) -> String {
    format!(
        "user www-data;\nevents {{}}\nhttp {{\n    upstream app {{\n{upstream}\n    }}\n    server {{\n        listen 80;\n        \
         location / {{\n            proxy_pass http://app;\n            proxy_http_version 1.1;\n            \
         proxy_set_header Connection \"\";\n            proxy_set_header Host $host;\n            \
         proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n            \
         proxy_set_header X-Forwarded-Proto $scheme;\n{location}\n        }}\n    }}\n}}\n"
    )
}

#[test]
fn healthy_configuration_has_no_finding() {
    let c = conf(
        "        server 127.0.0.1:8000;\n        keepalive 8;\n        keepalive_timeout 4s;",
        "",
    );
    let b = [backend(Server::Uvicorn, vec![tcp("127.0.0.1", 8000)], 5)];
    assert_eq!(kinds(&c, &b, &host()), Vec::<&str>::new());
}

#[test]
fn address_mismatch() {
    let b = [backend(Server::Uvicorn, vec![tcp("127.0.0.1", 8001)], 5)];
    let bad = conf("        server 127.0.0.1:8000;", "");
    let f = findings(&bad, &b, &host());
    assert_eq!(kinds_of(&f), ["upstream_address_mismatch"]);
    assert_eq!(f[0].upstream.as_deref(), Some("app"));
    assert!(f[0].fix.auto);
    let t = tree(&bad);
    assert!(unified_diff(&t, &f[0].fix.edits, None).contains("+        server 127.0.0.1:8001;"));
    let good = conf("        server 127.0.0.1:8001;", "");
    assert!(kinds(&good, &b, &host()).is_empty());
    // 0.0.0.0 serves 127.0.0.1; unix paths must match exactly.
    let any = [backend(Server::Uvicorn, vec![tcp("0.0.0.0", 8000)], 5)];
    assert!(kinds(&conf("        server 127.0.0.1:8000;", ""), &any, &host()).is_empty());
    let uds = [backend(
        Server::Uvicorn,
        vec![Bind::Unix {
            path: "/run/app/app.sock".into(),
        }],
        5,
    )];
    assert_eq!(
        kinds(
            &conf("        server unix:/run/app.sock;", ""),
            &uds,
            &host()
        ),
        ["upstream_address_mismatch"]
    );
    assert!(
        kinds(
            &conf("        server unix:/run/app/app.sock;", ""),
            &uds,
            &host()
        )
        .is_empty()
    );
}

#[test]
fn address_mismatch_needs_known_backends() {
    assert!(kinds(&conf("        server 127.0.0.1:8000;", ""), &[], &host()).is_empty());
}

#[test]
fn localhost_dual_stack() {
    let b = [backend(Server::Uvicorn, vec![tcp("127.0.0.1", 8000)], 5)];
    let f = findings(&conf("        server localhost:8000;", ""), &b, &host());
    assert_eq!(kinds_of(&f), ["upstream_localhost_dual_stack"]);
    let t = tree(&conf("        server localhost:8000;", ""));
    assert!(unified_diff(&t, &f[0].fix.edits, None).contains("+        server 127.0.0.1:8000;"));
    // Fixed, or a backend on `::` that takes both families (gunicorn, several uvicorn
    // workers), or a name with one family: silent.
    assert!(kinds(&conf("        server 127.0.0.1:8000;", ""), &b, &host()).is_empty());
    let mut dual = [backend(Server::Uvicorn, vec![tcp("::", 8000)], 5)];
    dual[0].workers = 2;
    assert!(kinds(&conf("        server localhost:8000;", ""), &dual, &host()).is_empty());
    // One uvicorn process on `::` is IPv6-only: the IPv4 half of `localhost` is refused.
    dual[0].workers = 1;
    assert_eq!(
        kinds(&conf("        server localhost:8000;", ""), &dual, &host()),
        ["upstream_localhost_dual_stack"]
    );
    let mut v4only = host();
    v4only.resolved.insert(
        "localhost".into(),
        Ok(vec!["127.0.0.1".parse().expect("ip")]),
    );
    assert!(kinds(&conf("        server localhost:8000;", ""), &b, &v4only).is_empty());
}

#[test]
fn scheme_mismatch() {
    let plain = [backend(Server::Uvicorn, vec![tcp("127.0.0.1", 8000)], 5)];
    let https = "user www-data; events {} http { server { location / { proxy_pass https://127.0.0.1:8000; \
                 proxy_set_header Host $host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; \
                 proxy_set_header X-Forwarded-Proto $scheme; } } }";
    let f = findings(https, &plain, &host());
    assert_eq!(kinds_of(&f), ["upstream_scheme_mismatch"]);
    assert!(
        unified_diff(&tree(https), &f[0].fix.edits, None)
            .contains("proxy_pass http://127.0.0.1:8000;")
    );
    let http = https.replace("https://", "http://");
    assert!(kinds(&http, &plain, &host()).is_empty());
    let mut tls = plain.clone();
    tls[0].tls = true;
    assert_eq!(kinds(&http, &tls, &host()), ["upstream_scheme_mismatch"]);
    assert!(kinds(https, &tls, &host()).is_empty());
}

fn socket_host(sock_mode: u32, dir_mode: u32) -> HostFacts {
    let mut h = host();
    let comp = |p: &str, mode, uid, gid, is_dir| PathComponent {
        path: p.into(),
        mode,
        uid,
        gid,
        is_dir,
        is_socket: !is_dir,
    };
    h.paths.insert(
        "/run/app/app.sock".into(),
        PathFacts {
            components: vec![
                comp("/", 0o755, 0, 0, true),
                comp("/run", 0o755, 0, 0, true),
                comp("/run/app", dir_mode, 1000, 1000, true),
                comp("/run/app/app.sock", sock_mode, 1000, 1000, false),
            ],
            exists: true,
            error: None,
        },
    );
    h
}

#[test]
fn unix_socket_not_accessible_on_the_filesystem() {
    let c = conf("        server unix:/run/app/app.sock;", "");
    let b = [backend(
        Server::Uvicorn,
        vec![Bind::Unix {
            path: "/run/app/app.sock".into(),
        }],
        5,
    )];
    let f = findings(&c, &b, &socket_host(0o600, 0o755));
    assert_eq!(kinds_of(&f), ["unix_socket_not_accessible"]);
    assert!(
        f[0].message.contains("the socket is srw-------"),
        "{}",
        f[0].message
    );
    let f = findings(&c, &b, &socket_host(0o666, 0o750));
    assert!(
        f[0].message.contains("directory /run/app is drwxr-x---"),
        "{}",
        f[0].message
    );
    assert!(kinds(&c, &b, &socket_host(0o666, 0o755)).is_empty());
    // Group access counts when nginx's user is in the group.
    let mut h = socket_host(0o660, 0o750);
    h.users.insert(
        "www-data".into(),
        Some(UserFacts {
            name: "www-data".into(),
            uid: 33,
            gid: 33,
            groups: vec![33, 1000],
        }),
    );
    assert!(kinds(&c, &b, &h).is_empty());
}

#[test]
fn unix_socket_not_accessible_predicted_from_the_unit() {
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
        umask: None,
        runtime_directories: vec!["/run/app".into()],
        runtime_directory_mode: Some(0o750),
    };
    // What the gatherer records for a path whose directory does not exist yet.
    let mut h = host();
    let dir = |p: &str| PathComponent {
        path: p.into(),
        mode: 0o755,
        uid: 0,
        gid: 0,
        is_dir: true,
        is_socket: false,
    };
    h.paths.insert(
        "/run/app/app.sock".into(),
        PathFacts {
            components: vec![dir("/"), dir("/run")],
            exists: false,
            error: None,
        },
    );
    let f = findings(&c, std::slice::from_ref(&b), &h);
    assert_eq!(kinds_of(&f), ["unix_socket_not_accessible"]);
    assert!(
        f[0].evidence
            .iter()
            .any(|e| e.contains("does not exist yet"))
    );
    b.run_as.runtime_directory_mode = Some(0o755);
    assert!(kinds(&c, std::slice::from_ref(&b), &h).is_empty());
    // A directory nobody creates: no prediction, no finding.
    b.run_as.runtime_directories.clear();
    b.run_as.runtime_directory_mode = Some(0o700);
    assert!(kinds(&c, &[b], &h).is_empty());
}

#[test]
fn keepalive_timeout_race() {
    let b = [backend(Server::Uvicorn, vec![tcp("127.0.0.1", 8000)], 5)];
    // nginx's default 60s against uvicorn's 5s.
    let bad = conf("        server 127.0.0.1:8000;\n        keepalive 8;", "");
    let f = findings(&bad, &b, &host());
    assert_eq!(kinds_of(&f), ["upstream_keepalive_timeout_race"]);
    let diff = unified_diff(&tree(&bad), &f[0].fix.edits, None);
    assert!(diff.contains("+        keepalive_timeout 4s;"), "{diff}");
    // An explicit equal value still races: it must be shorter.
    let equal = conf(
        "        server 127.0.0.1:8000;\n        keepalive 8;\n        keepalive_timeout 5s;",
        "",
    );
    let f = findings(&equal, &b, &host());
    assert_eq!(f.len(), 1);
    assert!(
        unified_diff(&tree(&equal), &f[0].fix.edits, None)
            .contains("-        keepalive_timeout 5s;")
    );
    let good = conf(
        "        server 127.0.0.1:8000;\n        keepalive 8;\n        keepalive_timeout 4s;",
        "",
    );
    assert!(kinds(&good, &b, &host()).is_empty());
    // gunicorn's sync worker closes every connection: no race possible.
    let sync = [backend(
        Server::Gunicorn {
            worker_class: "sync".into(),
        },
        vec![tcp("127.0.0.1", 8000)],
        2,
    )];
    assert!(kinds(&bad, &sync, &host()).is_empty());
}

#[test]
fn keepalive_ineffective() {
    let bad = "user www-data; events {} http { upstream app { server 127.0.0.1:8000; keepalive 8; keepalive_timeout 4s; }\n\
               server {\n    location / {\n        proxy_pass http://app;\n        proxy_set_header Host $host;\n        \
               proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n        proxy_set_header X-Forwarded-Proto $scheme;\n    }\n} }";
    let b = [backend(Server::Uvicorn, vec![tcp("127.0.0.1", 8000)], 5)];
    let f = findings(bad, &b, &host());
    assert_eq!(kinds_of(&f), ["upstream_keepalive_ineffective"]);
    let diff = unified_diff(&tree(bad), &f[0].fix.edits, None);
    assert!(diff.contains("+        proxy_http_version 1.1;"), "{diff}");
    assert!(
        diff.contains("+        proxy_set_header Connection \"\";"),
        "{diff}"
    );
    assert!(f[0].fix.auto);
    // A WebSocket-style Connection header is left to a human.
    let ws = bad.replace(
        "proxy_set_header Host $host;",
        "proxy_set_header Host $host; proxy_set_header Connection $connection_upgrade;",
    );
    let f = findings(&ws, &b, &host());
    assert!(!f[0].fix.auto);
    let good = conf(
        "        server 127.0.0.1:8000;\n        keepalive 8;\n        keepalive_timeout 4s;",
        "",
    );
    assert!(kinds(&good, &b, &host()).is_empty());
}

#[test]
fn worker_timeout_below_read_timeout() {
    let mut g = backend(
        Server::Gunicorn {
            worker_class: "uvicorn.workers.UvicornWorker".into(),
        },
        vec![tcp("127.0.0.1", 8000)],
        2,
    );
    g.argv = vec![
        "gunicorn".into(),
        "-k".into(),
        "uvicorn.workers.UvicornWorker".into(),
        "main:app".into(),
    ];
    g.worker_timeout = Some(Duration::from_secs(30));
    let c = conf("        server 127.0.0.1:8000;", "");
    let f = findings(&c, std::slice::from_ref(&g), &host());
    assert_eq!(kinds_of(&f), ["worker_timeout_below_read_timeout"]);
    assert!(
        f[0].fix.summary.contains("--timeout 65"),
        "{}",
        f[0].fix.summary
    );
    let short = conf(
        "        server 127.0.0.1:8000;",
        "            proxy_read_timeout 20s;",
    );
    assert!(kinds(&short, &[g], &host()).is_empty());
}

#[test]
fn backlog_above_somaxconn() {
    let mut b = backend(Server::Uvicorn, vec![tcp("127.0.0.1", 8000)], 5);
    b.backlog = 8192;
    let c = conf("        server 127.0.0.1:8000;", "");
    assert_eq!(
        kinds(&c, std::slice::from_ref(&b), &host()),
        ["backlog_above_somaxconn"]
    );
    b.backlog = 4096;
    assert!(kinds(&c, &[b], &host()).is_empty());
}

#[test]
fn proxy_headers_missing() {
    let bad = "events {} http { server {\n    location / {\n        proxy_pass http://127.0.0.1:8000;\n    }\n} }";
    let b = [backend(Server::Uvicorn, vec![tcp("127.0.0.1", 8000)], 5)];
    let f = findings(bad, &b, &host());
    assert_eq!(kinds_of(&f), ["proxy_headers_missing"]);
    let diff = unified_diff(&tree(bad), &f[0].fix.edits, None);
    assert!(
        diff.contains("+        proxy_set_header Host $host;"),
        "{diff}"
    );
    // Debian's proxy_params style, at the server level, covers every location.
    let good = "events {} http { server { proxy_set_header Host $http_host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; \
                proxy_set_header X-Forwarded-Proto $scheme; location / { proxy_pass http://127.0.0.1:8000; } } }";
    assert!(kinds(good, &b, &host()).is_empty());
    // One finding per header list, not per location.
    let two = "events {} http { server { location /a { proxy_pass http://127.0.0.1:8000; } location /b { proxy_pass http://127.0.0.1:8001; } } }";
    let both = [
        b[0].clone(),
        backend(Server::Uvicorn, vec![tcp("127.0.0.1", 8001)], 5),
    ];
    assert_eq!(
        kinds(two, &both, &host()).len(),
        2,
        "each location has its own (default) list"
    );
    // Only where a backend we know is behind: not remote targets, not unknown ones.
    let s3 =
        "events {} http { server { location / { proxy_pass https://bucket.s3.amazonaws.com; } } }";
    assert!(kinds(s3, &b, &host()).is_empty());
    assert!(kinds(bad, &[], &host()).is_empty());
}

#[test]
fn all_servers_down_and_unresolvable() {
    let c = conf(
        "        server 127.0.0.1:8000 down;\n        server nowhere.invalid:8000 down;",
        "",
    );
    let k = kinds(&c, &[], &host());
    assert!(k.contains(&"upstream_all_servers_down"), "{k:?}");
    assert!(k.contains(&"upstream_host_unresolvable"), "{k:?}");
    assert!(kinds(&conf("        server 127.0.0.1:8000;", ""), &[], &host()).is_empty());
}

#[test]
fn dynamic_proxy_pass_is_said_not_guessed() {
    let c = "events {} http { server { location / { resolver 127.0.0.53; set $b 127.0.0.1:8000; \
             proxy_pass http://$b; } } }";
    assert_eq!(kinds(c, &[], &host()), ["proxy_pass_dynamic"]);
}

#[test]
fn every_rule_is_listed_once_with_a_distinct_kind() {
    let mut k: Vec<&str> = RULES.iter().map(|r| r.kind).collect();
    k.sort_unstable();
    k.dedup();
    assert_eq!(k.len(), RULES.len());
}

#[test]
fn address_mismatch_only_judges_local_unserved_targets() {
    let b = [backend(Server::Uvicorn, vec![tcp("127.0.0.1", 8001)], 5)];
    // A remote upstream is not this host's backend's business.
    assert!(kinds(&conf("        server 10.1.2.3:8000;", ""), &b, &host()).is_empty());
    // Discovered on this host and something else listens there: not a mismatch.
    let mut h = host();
    h.listening = Some(crate::model::host::Listening {
        tcp: vec!["0.0.0.0:8000".parse().expect("addr")],
        unix: Vec::new(),
    });
    assert!(kinds(&conf("        server 127.0.0.1:8000;", ""), &b, &h).is_empty());
    h.listening = Some(crate::model::host::Listening::default());
    assert_eq!(
        kinds(&conf("        server 127.0.0.1:8000;", ""), &b, &h),
        ["upstream_address_mismatch"]
    );
}
