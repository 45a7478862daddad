//! What the diagnosis rules read: the gathered input, plus signals derived from it once
//! (errors grouped by upstream and class, retried requests, listeners by address).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::routes;
use super::rules::REFUSED;
use crate::diagnose::check::matching::{
    Endpoint, Socket, absolute, accepts, bind_serves, bind_serves_for,
};
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
    /// Failures whose upstream is unknown: nginx cut the line (at 2048 bytes, with a long URI)
    /// before `upstream:`, and the configuration leaves more than one candidate.
    pub unattributed: Vec<&'a ErrorEvent>,
}

impl<'a> Ctx<'a> {
    pub fn new(input: &'a LiveInput<'a>) -> Ctx<'a> {
        let mut errors: BTreeMap<String, BTreeMap<UpstreamError, Vec<&ErrorEvent>>> =
            BTreeMap::new();
        let mut unattributed = Vec::new();
        for e in &input.logs.errors {
            let Some(addr) = e.upstream.clone().or_else(|| attribute(input, e)) else {
                unattributed.push(e);
                continue;
            };
            errors
                .entry(addr)
                .or_default()
                .entry(e.class)
                .or_default()
                .push(e);
        }
        Ctx {
            input,
            errors,
            unattributed,
        }
    }

    /// The start of the log window, ms since the epoch (0 when unknown: everything is recent).
    pub fn window_start_ms(&self) -> u64 {
        self.input.logs.from_ms
    }

    /// Addresses nginx cannot connect to because nothing accepts there: refused or missing in
    /// the error log, or (with no such line in the window: logs unreadable, or no traffic yet)
    /// a direct probe refused right now. The probe is live truth for the address it tried.
    pub fn refused(&self) -> Vec<(String, Vec<&'a ErrorEvent>)> {
        let mut out: Vec<(String, Vec<&ErrorEvent>)> = self
            .errors_of(REFUSED)
            .into_iter()
            .map(|(a, v)| (a.to_string(), v))
            .collect();
        for p in &self.input.evidence.probes {
            let refused = matches!(
                p.outcome,
                ProbeOutcome::ConnectFailed { errno: 111 | 2, .. }
            );
            if !p.via_nginx
                && refused
                && !self.marked_down(&p.target)
                && !out.iter().any(|(a, _)| *a == p.target)
            {
                out.push((p.target.clone(), Vec::new()));
            }
        }
        out
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

    /// The backend configured to serve `addr`: by how its server binds (one uvicorn process
    /// on `::` is IPv6-only), or, where that is unknown (uvicorn's worker count), taking the
    /// bind as one dual-stack socket.
    pub fn backend_for(&self, addr: &str) -> Option<&'a Backend> {
        let ep = endpoint(addr)?;
        let host = self.input.host;
        self.input.backends.iter().find(|b| {
            b.binds.iter().any(|x| {
                bind_serves_for(b, x, &ep, host)
                    .unwrap_or_else(|| bind_serves(x, b.working_directory.as_deref(), &ep, host))
            })
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

    /// The upstream group containing `addr`. When several groups list it, the one this
    /// address's failing requests reach (by their location); `None` when that stays ambiguous.
    pub fn upstream_of(&self, addr: &str) -> Option<&'a Upstream<'a>> {
        self.pick(addr, &self.groups_with(addr))
    }

    /// Every group listing `addr`, in configuration order.
    fn groups_with(&self, addr: &str) -> Vec<&'a Upstream<'a>> {
        match (self.input.nginx, endpoint(addr)) {
            (Some(n), Some(ep)) => routes::groups_with(n, self.input.host, &ep),
            _ => Vec::new(),
        }
    }

    /// Among `groups` (those listing `addr`), the one `addr`'s failing requests reach.
    fn pick(&self, addr: &str, groups: &[&'a Upstream<'a>]) -> Option<&'a Upstream<'a>> {
        if groups.len() <= 1 {
            return groups.first().copied();
        }
        let nginx = self.input.nginx?;
        let uris: Vec<&str> = self
            .errors
            .get(addr)
            .into_iter()
            .flat_map(|by| by.values().flatten())
            .filter_map(|e| e.uri.as_deref())
            .chain(
                self.requests()
                    .iter()
                    .filter(|r| r.attempts.iter().any(|a| a.addr == addr))
                    .map(|r| r.path.as_str()),
            )
            .collect();
        match routes::reached_by(nginx, groups, &uris).as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }

    /// Whether every `server` line for `addr` says `down`: nginx never connects there.
    fn marked_down(&self, addr: &str) -> bool {
        let (Some(n), Some(ep)) = (self.input.nginx, endpoint(addr)) else {
            return false;
        };
        let mut lines = n.upstreams.iter().flat_map(|u| &u.servers).filter(|s| {
            crate::diagnose::check::matching::endpoints(&s.addr, self.input.host)
                .unwrap_or_default()
                .contains(&ep)
        });
        let first = lines.next();
        first.is_some_and(|f| f.down) && lines.all(|s| s.down)
    }

    /// Every group listing `addr` (names), for findings that cannot tell which one it is.
    fn groups_listing(&self, addr: &str) -> Vec<String> {
        names(&self.groups_with(addr))
    }

    /// Whether `a` and `b` are servers of one upstream group: nginx fails over between them,
    /// so one answering while the other is refused is a dead member, not a misconfiguration.
    pub fn same_group(&self, a: &str, b: &str) -> bool {
        let ga = self.groups_listing(a);
        !ga.is_empty() && self.groups_listing(b).iter().any(|g| ga.contains(g))
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

    /// The group name a finding is filed under: the upstream group, else every group listing
    /// the address when its requests do not tell which, else the address.
    pub fn group(&self, addr: &str) -> String {
        let groups = self.groups_with(addr);
        if let Some(u) = self.pick(addr, &groups) {
            return u.name.clone();
        }
        if groups.is_empty() {
            addr.to_string()
        } else {
            names(&groups).join(" or ")
        }
    }
}

/// The groups' names.
fn names(groups: &[&Upstream<'_>]) -> Vec<String> {
    groups.iter().map(|u| u.name.clone()).collect()
}

/// The upstream of an event without `upstream:` (a truncated line), from its server and URI.
fn attribute(input: &LiveInput<'_>, e: &ErrorEvent) -> Option<String> {
    let nginx = input.nginx?;
    routes::attribute(nginx, input.host, e.server.as_deref(), e.uri.as_deref())
}

/// `127.0.0.1:8000`, `[::1]:8000` or `unix:/path` as an endpoint.
pub fn endpoint(addr: &str) -> Option<Endpoint> {
    if let Some(p) = addr.strip_prefix("unix:") {
        return Some(Endpoint::Unix(PathBuf::from(p)));
    }
    addr.parse::<SocketAddr>().ok().map(Endpoint::Tcp)
}

/// Whether a listener accepts connections to `target` (`0.0.0.0`/`::` take every address of
/// their family; `::` also IPv4 unless the socket is IPv6-only).
pub fn listener_serves(l: &Listener, target: &Endpoint) -> bool {
    match (endpoint(&l.local), target) {
        (Some(Endpoint::Unix(a)), Endpoint::Unix(b)) => a == *b,
        (Some(Endpoint::Tcp(a)), Endpoint::Tcp(b)) => {
            let socket = Socket {
                ip: a.ip(),
                v6only: l.v6only,
            };
            a.port() == b.port() && accepts(socket, b.ip())
        }
        _ => false,
    }
}

/// Whether `b` listens on a path or address relative to its working directory: made absolute.
pub fn absolute_bind(b: &Backend, p: &std::path::Path) -> PathBuf {
    absolute(p, b.working_directory.as_deref())
}
