//! What the diagnosis rules read: the gathered input, plus signals derived from it once
//! (errors grouped by upstream and class, retried requests, listeners by address).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::diagnose::check::matching::{Endpoint, absolute, bind_serves};
use crate::model::backend::{Backend, Source};
use crate::model::evidence::{
    AppLogLine, BackendProcesses, Evidence, Listener, ProbeOutcome, ProgramState, UnitState,
};
use crate::model::host::HostFacts;
use crate::model::logs::{AccessEvent, ErrorEvent, LogWindow, UpstreamError};
use crate::model::nginx::{NginxModel, Upstream};

/// Everything `reflex diagnose` gathered. All plain data.
pub struct LiveInput<'a> {
    /// The nginx configuration, when it could be read.
    pub nginx: Option<&'a NginxModel<'a>>,
    pub backends: &'a [Backend],
    pub host: &'a HostFacts,
    pub evidence: &'a Evidence,
    pub logs: &'a LogWindow,
    /// Logs copied from another host: no live facts.
    pub offline: bool,
}

/// The input plus derived signals.
pub struct Ctx<'a> {
    pub input: &'a LiveInput<'a>,
    /// Error-log failures per upstream address and class, oldest first.
    pub errors: BTreeMap<String, BTreeMap<UpstreamError, Vec<&'a ErrorEvent>>>,
}

impl<'a> Ctx<'a> {
    pub fn new(input: &'a LiveInput<'a>) -> Ctx<'a> {
        let mut errors: BTreeMap<String, BTreeMap<UpstreamError, Vec<&ErrorEvent>>> =
            BTreeMap::new();
        for e in &input.logs.errors {
            let addr = e.upstream.clone().unwrap_or_else(|| "?".into());
            errors
                .entry(addr)
                .or_default()
                .entry(e.class)
                .or_default()
                .push(e);
        }
        Ctx { input, errors }
    }

    /// Error events of these classes, per upstream address.
    pub fn errors_of(&self, classes: &[UpstreamError]) -> Vec<(&str, Vec<&'a ErrorEvent>)> {
        self.errors
            .iter()
            .filter_map(|(addr, by)| {
                let v: Vec<&ErrorEvent> = classes
                    .iter()
                    .flat_map(|c| by.get(c).cloned().unwrap_or_default())
                    .collect();
                (!v.is_empty()).then_some((addr.as_str(), v))
            })
            .collect()
    }

    /// How many error events an address has in all.
    pub fn error_count(&self, addr: &str) -> usize {
        self.errors
            .get(addr)
            .map(|m| m.values().map(Vec::len).sum())
            .unwrap_or(0)
    }

    /// The requests in the window.
    pub fn requests(&self) -> &'a [AccessEvent] {
        &self.input.logs.requests
    }

    /// The listening socket at `addr` (as `$upstream_addr` writes it), from sock_diag. `None`
    /// when nothing listens there or listeners are unknown.
    pub fn listener(&self, addr: &str) -> Option<&'a Listener> {
        let target = endpoint(addr)?;
        self.listeners()?
            .iter()
            .find(|l| listener_serves(l, &target))
    }

    /// Whether listeners were gathered at all (live, with sock_diag).
    pub fn listeners(&self) -> Option<&'a [Listener]> {
        self.input.evidence.listeners.known().map(Vec::as_slice)
    }

    /// The backend configured to serve `addr`.
    pub fn backend_for(&self, addr: &str) -> Option<&'a Backend> {
        let ep = endpoint(addr)?;
        self.input.backends.iter().find(|b| {
            b.binds
                .iter()
                .any(|x| bind_serves(x, b.working_directory.as_deref(), &ep, self.input.host))
        })
    }

    /// The running process tree of a backend.
    pub fn processes(&self, b: &Backend) -> Option<&'a BackendProcesses> {
        self.input
            .evidence
            .backends
            .known()?
            .iter()
            .find(|p| p.backend.as_deref() == Some(b.name.as_str()))
    }

    /// The systemd unit of a backend, when it has one and its state was read.
    pub fn unit(&self, b: &Backend) -> Option<&'a UnitState> {
        let Source::SystemdUnit { unit, .. } = &b.source else {
            return None;
        };
        self.input
            .evidence
            .units
            .known()?
            .iter()
            .find(|u| &u.unit == unit)
    }

    /// The supervisord program of a backend, when it has one and its state was read.
    pub fn program(&self, b: &Backend) -> Option<&'a ProgramState> {
        let Source::Supervisord { program, .. } = &b.source else {
            return None;
        };
        self.input
            .evidence
            .programs
            .known()?
            .iter()
            .find(|p| &p.name == program || p.group == *program)
    }

    /// Application-log lines (of `backend`, or of every log when `None`) containing any needle.
    pub fn app_lines(&self, backend: Option<&Backend>, needles: &[&str]) -> Vec<&'a AppLogLine> {
        self.input
            .evidence
            .app_logs
            .iter()
            .filter(|l| {
                backend.is_none_or(|b| {
                    l.backend.is_none() || l.backend.as_deref() == Some(b.name.as_str())
                })
            })
            .flat_map(|l| l.lines.iter())
            .filter(|line| needles.iter().any(|n| line.text.contains(n)))
            .collect()
    }

    /// The direct probe of `addr`, if one ran.
    pub fn probe(&self, addr: &str) -> Option<&'a ProbeOutcome> {
        self.input
            .evidence
            .probes
            .iter()
            .find(|p| !p.via_nginx && p.target == addr)
            .map(|p| &p.outcome)
    }

    /// The upstream group containing `addr`.
    pub fn upstream_of(&self, addr: &str) -> Option<&'a Upstream<'a>> {
        let nginx = self.input.nginx?;
        let ep = endpoint(addr)?;
        nginx.upstreams.iter().find(|u| {
            u.servers.iter().any(|s| {
                crate::diagnose::check::matching::endpoints(&s.addr, self.input.host)
                    .unwrap_or_default()
                    .contains(&ep)
            })
        })
    }

    /// Up to three actual log lines, for evidence.
    pub fn samples(events: &[&ErrorEvent]) -> Vec<String> {
        let mut out: Vec<String> = events
            .iter()
            .take(3)
            .map(|e| format!("error.log: {}", e.line))
            .collect();
        if events.len() > 3 {
            out.push(format!(
                "… {} such lines in the window in all",
                events.len()
            ));
        }
        out
    }

    /// The group name a finding is filed under: the upstream group, else the address.
    pub fn group(&self, addr: &str) -> String {
        self.upstream_of(addr)
            .map(|u| u.name.clone())
            .unwrap_or_else(|| addr.to_string())
    }
}

/// `127.0.0.1:8000`, `[::1]:8000` or `unix:/path` as an endpoint.
pub fn endpoint(addr: &str) -> Option<Endpoint> {
    if let Some(p) = addr.strip_prefix("unix:") {
        return Some(Endpoint::Unix(PathBuf::from(p)));
    }
    addr.parse::<SocketAddr>().ok().map(Endpoint::Tcp)
}

/// Whether a listener accepts connections to `target` (`0.0.0.0`/`::` take every address of
/// their family; `::` also IPv4 with Linux's default `bindv6only=0`).
pub fn listener_serves(l: &Listener, target: &Endpoint) -> bool {
    match (endpoint(&l.local), target) {
        (Some(Endpoint::Unix(a)), Endpoint::Unix(b)) => a == *b,
        (Some(Endpoint::Tcp(a)), Endpoint::Tcp(b)) => {
            a.port() == b.port()
                && (a.ip() == b.ip() || (a.ip().is_unspecified() && (a.is_ipv6() || b.is_ipv4())))
        }
        _ => false,
    }
}

/// Whether `b` listens on a path or address relative to its working directory: made absolute.
pub fn absolute_bind(b: &Backend, p: &std::path::Path) -> PathBuf {
    absolute(p, b.working_directory.as_deref())
}
