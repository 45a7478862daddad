//! Every diagnosis from literals: the evidence of one fault, and the kind it must rank first.
//! The builders are here; `causes.rs` has one scenario per cause, `window.rs` the findings that
//! depend on what is (and is not) in the window, `fallbacks.rs` the group-level and catch-all
//! findings.

use std::path::PathBuf;
use std::time::Duration;

use super::*;

mod causes;
mod fallbacks;
mod window;
use crate::model::backend::{Backend, Bind, Server, Source};
use crate::model::evidence::{
    AppLog, AppLogLine, BackendProcesses, Evidence, Fact, Listener, ProbeOutcome, ProcessInfo,
    UnitState,
};
use crate::model::host::HostFacts;
use crate::model::logs::{AccessEvent, Attempt, ErrorEvent, LogWindow, UpstreamError as E};
use crate::model::nginx::NginxModel;
use crate::parse::nginx::{ConfigTree, SourceFile, parse};

/// A uvicorn backend run by the unit `app.service`.
pub(super) fn backend(binds: Vec<Bind>) -> Backend {
    Backend {
        name: "app.service".into(),
        source: Source::SystemdUnit {
            unit: "app.service".into(),
            path: "/etc/systemd/system/app.service".into(),
            line: 5,
        },
        keepalive: Duration::from_secs(5),
        keepalive_explicit: false,
        ..crate::test_support::backend(Server::Uvicorn, binds, 5)
    }
}

pub(super) fn tcp(port: u16) -> Bind {
    Bind::Tcp {
        host: "127.0.0.1".into(),
        port,
    }
}

pub(super) fn proc(pid: i32, state: char, ticks: (u64, u64)) -> ProcessInfo {
    ProcessInfo {
        pid,
        ppid: 1,
        state,
        start_ms: 0,
        cpu_ticks: ticks,
        sample_ms: 300,
        uid: 0,
        user: Some("root".into()),
        cmdline: vec!["uvicorn".into()],
    }
}

pub(super) fn listener(local: &str, queue: u32, backlog: u32) -> Listener {
    Listener {
        local: local.into(),
        inode: 1,
        accept_queue: queue,
        backlog,
        pids: vec![100],
        v6only: false,
    }
}

pub(super) fn err(class: E, errno: Option<u16>, upstream: &str, uri: &str) -> ErrorEvent {
    ErrorEvent {
        at_ms: 1_000,
        level: "error".into(),
        class,
        errno,
        upstream: Some(upstream.into()),
        server: None,
        uri: Some(uri.into()),
        line: format!(
            "2026/11/21 13:00:00 [error] 1#1: *1 {class:?} while …, upstream: \"http://{upstream}{uri}\""
        ),
    }
}

pub(super) fn req(status: u16, path: &str, attempts: Vec<Attempt>) -> AccessEvent {
    AccessEvent {
        at_ms: 1_000,
        status,
        method: "GET".into(),
        path: path.into(),
        request_ms: Some(5),
        attempts,
        line: format!(
            "127.0.0.1 - - [21/Nov/2026:13:00:00 +0000] \"GET {path} HTTP/1.1\" {status} 0"
        ),
    }
}

pub(super) fn attempt(
    addr: &str,
    status: Option<u16>,
    connect_ms: Option<u32>,
    header_ms: Option<u32>,
) -> Attempt {
    Attempt {
        addr: addr.into(),
        status,
        connect_ms,
        header_ms,
    }
}

/// A scenario: nginx config, backends, evidence and logs.
pub(super) struct S {
    pub(super) conf: String,
    pub(super) backends: Vec<Backend>,
    pub(super) evidence: Evidence,
    pub(super) logs: LogWindow,
    pub(super) host: HostFacts,
}

impl S {
    pub(super) fn new(upstream: &str) -> S {
        S {
            conf: format!(
                "events {{}} http {{ upstream app {{ server {upstream}; keepalive 8; }} server {{ location / {{ \
                 proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }} }}"
            ),
            backends: vec![backend(vec![tcp(8000)])],
            evidence: Evidence {
                listeners: Fact::Known(vec![listener("127.0.0.1:8000", 0, 2048)]),
                backends: Fact::Known(vec![procs(proc(100, 'S', (10, 12)))]),
                units: Fact::Known(vec![unit(0)]),
                ..Default::default()
            },
            logs: LogWindow::default(),
            host: HostFacts::default(),
        }
    }

    /// The same stack with nginx's `conf` replaced (an `http` block body's upstreams and
    /// server).
    pub(super) fn with_http(mut self, http: &str) -> S {
        self.conf = format!("events {{}} http {{ {http} }}");
        self
    }

    /// A stack without upstream keep-alive: `upstream app { server UPSTREAM; }`.
    pub(super) fn plain(upstream: &str) -> S {
        S::new(upstream).with_http(&format!(
            "upstream app {{ server {upstream}; }} server {{ location / {{ proxy_pass http://app; }} }}"
        ))
    }

    /// The kinds, ranked.
    pub(super) fn kinds(&self) -> Vec<&'static str> {
        self.run().iter().map(|d| d.kind).collect()
    }

    pub(super) fn run(&self) -> Vec<Diagnosis> {
        let directives = parse(&self.conf).expect("parses");
        let tree = ConfigTree {
            files: vec![SourceFile {
                path: PathBuf::from("/t.conf"),
                text: self.conf.clone(),
                directives,
            }],
        };
        let nginx = NginxModel::build(&tree);
        run(&LiveInput {
            nginx: Some(&nginx),
            backends: &self.backends,
            host: &self.host,
            evidence: &self.evidence,
            logs: &self.logs,
            offline: false,
        })
    }

    pub(super) fn top(&self) -> &'static str {
        let d = self.run();
        assert!(!d.is_empty(), "no diagnosis");
        d[0].kind
    }
}

/// The process tree of `app.service` with this master.
pub(super) fn procs(master: ProcessInfo) -> BackendProcesses {
    BackendProcesses {
        backend: Some("app.service".into()),
        master,
        workers: Vec::new(),
        cgroup: None,
    }
}

/// An error event at `at_ms` with its real line.
pub(super) fn line(
    at_ms: u64,
    class: E,
    errno: Option<u16>,
    upstream: Option<&str>,
    text: &str,
) -> ErrorEvent {
    ErrorEvent {
        at_ms,
        level: "error".into(),
        class,
        errno,
        upstream: upstream.map(str::to_string),
        // What the gatherer takes from the line.
        server: crate::parse::logs::error_log::parse(text.as_bytes())
            .ok()
            .and_then(|l| l.server.map(|s| String::from_utf8_lossy(s).into_owned())),
        uri: Some("/a".into()),
        line: text.into(),
    }
}

pub(super) fn unit(restarts: u32) -> UnitState {
    UnitState {
        unit: "app.service".into(),
        active_state: "active".into(),
        sub_state: "running".into(),
        n_restarts: restarts,
        main_pid: 100,
        result: "success".into(),
        exec_main_status: 0,
        active_enter_ms: 0,
        inactive_enter_ms: 0,
    }
}

pub(super) fn app_log(lines: &[&str]) -> AppLog {
    AppLog {
        source: "journal:app.service".into(),
        backend: Some("app.service".into()),
        lines: lines
            .iter()
            .map(|l| AppLogLine {
                at_ms: None,
                text: l.to_string(),
            })
            .collect(),
    }
}

pub(super) fn probe(target: &str, outcome: ProbeOutcome) -> crate::model::evidence::Probe {
    crate::model::evidence::Probe {
        target: target.into(),
        via_nginx: false,
        path: "/".into(),
        timeout_ms: 1000,
        outcome,
    }
}
