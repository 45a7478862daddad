//! `upstream_address_mismatch`: nginx connects to an address no known backend listens on,
//! while a backend listens on another. Every request through it fails: `connect() failed
//! (111: Connection refused)` for TCP, `(2: No such file or directory)` or `(111)` for unix
//! sockets, and the client gets 502.
//!
//! This includes the address-family case: a one-process uvicorn started with `--host ::` listens
//! on IPv6 only, so `proxy_pass http://127.0.0.1:P` is refused (see `matching`).
//!
//! A backend whose address is unknown (an undefined `${PORT}`, a computed `bind` in a gunicorn
//! config file, an inherited fd) might be the one listening: then nothing is claimed.

use std::collections::BTreeSet;

use crate::diagnose::check::edit::replace_in_directive;
use crate::diagnose::check::matching::{
    Endpoint, Socket, accepts, bind_serves_for, endpoints, maybe_served_by, nginx_address,
    served_by, sockets,
};
use crate::diagnose::check::{CheckInput, Notes, Rule};
use crate::diagnose::finding::{Finding, Fix, Severity};
use crate::model::backend::{Backend, Bind, Knob};
use crate::model::nginx::TargetRef;

use super::describe;

pub const RULE: Rule = Rule {
    kind: "upstream_address_mismatch",
    severity: Severity::Error,
    title: "nginx proxies to an address no backend listens on",
    why: "Every request routed there fails with `connect() failed (111: Connection refused)` or \
          `(2: No such file or directory)` and the client gets 502.",
    check,
};

fn check(input: &CheckInput<'_>, notes: &mut Notes) -> Vec<Finding> {
    // Without backends there is nothing to compare with.
    if input.backends.is_empty() {
        return Vec::new();
    }
    let targets = input.nginx.targets();
    let mut unserved = Vec::new();
    for t in &targets {
        if is_unserved(t, input, notes) {
            unserved.push(t);
        }
    }
    let spare = spare_addresses(input, &targets);
    // Rewriting nginx to match the backends is only safe when every backend was fully read.
    let understood = input.backends.iter().all(Backend::fully_understood);
    unserved
        .iter()
        .map(|t| finding(input, t, &spare, unserved.len(), understood))
        .collect()
}

/// Whether `t` is a local address that no backend serves and none may serve.
fn is_unserved(t: &TargetRef<'_, '_>, input: &CheckInput<'_>, notes: &mut Notes) -> bool {
    let eps = match endpoints(&t.addr, input.host) {
        Ok(eps) => eps,
        Err(why) => {
            if input.host.offline {
                notes.skipped(RULE.kind, &t.raw, why);
            }
            return false;
        }
    };
    // Only addresses on this host can be judged against this host's backends.
    if !eps.iter().all(is_local) {
        return false;
    }
    if eps
        .iter()
        .any(|ep| !served_by(ep, input.backends, input.host).is_empty())
    {
        return false;
    }
    let maybe: Vec<&Backend> = eps
        .iter()
        .flat_map(|ep| maybe_served_by(ep, input.backends, input.host))
        .collect();
    if let Some(b) = maybe.first() {
        let why = match b.unknown(Knob::Bind) {
            Some(u) => format!("{}'s listen address is unknown ({})", describe(b), u.why),
            None => format!("how {} binds is unknown here", describe(b)),
        };
        notes.skipped(RULE.kind, &t.raw, why);
        return false;
    }
    !eps.iter().any(|ep| something_listens(ep, input))
}

/// Backend addresses nginx never reaches: where the unserved targets should point instead.
fn spare_addresses(
    input: &CheckInput<'_>,
    targets: &[TargetRef<'_, '_>],
) -> BTreeSet<(String, String)> {
    let mut spare = BTreeSet::new();
    for b in input.backends {
        for bind in &b.binds {
            let reached = targets.iter().any(|t| {
                endpoints(&t.addr, input.host)
                    .unwrap_or_default()
                    .iter()
                    .any(|ep| bind_serves_for(b, bind, ep, input.host) != Some(false))
            });
            if !reached && let Some(addr) = nginx_address(b, bind, input.host) {
                spare.insert((addr, describe(b)));
            }
        }
    }
    spare
}

fn finding(
    input: &CheckInput<'_>,
    t: &TargetRef<'_, '_>,
    spare: &BTreeSet<(String, String)>,
    unserved: usize,
    understood: bool,
) -> Finding {
    let mut evidence = vec![format!(
        "nginx connects to {} ({})",
        t.raw,
        input.where_(t.at)
    )];
    for b in input.backends {
        evidence.push(listens(b, input));
    }
    let fix = match (spare.len(), unserved) {
        (1, 1) => {
            let (new, who) = spare.iter().next().cloned().unwrap_or_default();
            let old = &t.raw;
            let summary = format!(
                "Point nginx at {new}, where {who} listens (or start the backend on {old})."
            );
            match replace_in_directive(input.tree, t.at, old, &new) {
                Some(edit) => Fix::edits(summary, vec![edit], understood),
                None => Fix::instruction(summary),
            }
        }
        _ => Fix::instruction(format!(
            "Make nginx and the backend agree on one address: change {} here, or start the backend on it.",
            t.raw
        )),
    };
    Finding {
        kind: RULE.kind,
        severity: RULE.severity,
        message: format!(
            "nginx proxies to {} but no known backend listens there: every request through it gets 502",
            t.raw
        ),
        location: Some(input.position(t.at)),
        upstream: Some(t.group()),
        evidence,
        fix,
    }
}

/// "uvicorn `x` listens on [::]:8000 (IPv6 only: …)".
fn listens(b: &Backend, input: &CheckInput<'_>) -> String {
    if b.binds.is_empty() {
        return format!("{} has no listen address (an empty bind list)", describe(b));
    }
    let binds: Vec<String> = b.binds.iter().map(|x| describe_bind(b, x, input)).collect();
    format!("{} listens on {}", describe(b), binds.join(", "))
}

fn describe_bind(b: &Backend, bind: &Bind, input: &CheckInput<'_>) -> String {
    let Bind::Tcp { host, .. } = bind else {
        return bind.to_string();
    };
    match sockets(b, host, input.host) {
        Some(s) if s.len() == 1 && s[0].v6only => format!(
            "{bind} (IPv6 only: one uvicorn process binds through asyncio, which sets IPV6_V6ONLY)"
        ),
        Some(s) if s.len() > 1 => {
            let ips: Vec<String> = s.iter().map(|x| x.ip.to_string()).collect();
            format!("{bind} ({})", ips.join(" and "))
        }
        _ => bind.to_string(),
    }
}

/// Whether the endpoint is on this host: loopback, or a unix socket.
fn is_local(ep: &Endpoint) -> bool {
    match ep {
        Endpoint::Unix(_) => true,
        Endpoint::Tcp(sa) => sa.ip().is_loopback(),
    }
}

/// Whether some process (not a known backend) listens there, when that is known.
/// `/proc/net/tcp6` does not show `IPV6_V6ONLY`, so a `[::]:P` listener only counts for IPv4
/// when no known backend binds port P (a one-process uvicorn's `::` socket is IPv6-only).
fn something_listens(ep: &Endpoint, input: &CheckInput<'_>) -> bool {
    let Some(l) = &input.host.listening else {
        return false;
    };
    match ep {
        Endpoint::Unix(p) => l.unix.contains(p),
        Endpoint::Tcp(sa) => {
            let ours = input.backends.iter().any(|b| {
                b.binds
                    .iter()
                    .any(|x| matches!(x, Bind::Tcp { port, .. } if *port == sa.port()))
            });
            l.tcp.iter().any(|x| {
                x.port() == sa.port()
                    && accepts(
                        Socket {
                            ip: x.ip(),
                            v6only: ours,
                        },
                        sa.ip(),
                    )
            })
        }
    }
}
