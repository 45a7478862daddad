//! `upstream_address_mismatch`: nginx connects to an address no known backend listens on,
//! while a backend listens on another. Every request through it fails: `connect() failed
//! (111: Connection refused)` for TCP, `(2: No such file or directory)` or `(111)` for unix
//! sockets, and the client gets 502.

use std::collections::BTreeSet;

use crate::diagnose::check::edit::replace_in_directive;
use crate::diagnose::check::matching::{Endpoint, any_fd_bind, endpoints, served_by};
use crate::diagnose::check::{CheckInput, Rule};
use crate::diagnose::finding::{Finding, Fix, Severity};
use crate::model::backend::Bind;

use super::describe;

pub const RULE: Rule = Rule {
    kind: "upstream_address_mismatch",
    severity: Severity::Error,
    title: "nginx proxies to an address no backend listens on",
    why: "Every request routed there fails with `connect() failed (111: Connection refused)` or \
          `(2: No such file or directory)` and the client gets 502.",
    check,
};

fn check(input: &CheckInput<'_>) -> Vec<Finding> {
    // Without backends there is nothing to compare with; an fd-inherited listener's address
    // is unknown, so a mismatch cannot be claimed either.
    if input.backends.is_empty() || any_fd_bind(input.backends) {
        return Vec::new();
    }
    let targets = input.nginx.targets();
    let unserved: Vec<_> = targets
        .iter()
        .filter(|t| match endpoints(&t.addr, input.host) {
            // Only addresses on this host can be judged against this host's backends.
            Ok(eps) => {
                eps.iter().all(is_local)
                    && eps
                        .iter()
                        .all(|ep| served_by(ep, input.backends, input.host).is_empty())
                    && !eps.iter().any(|ep| something_listens(ep, input))
            }
            Err(_) => false,
        })
        .collect();
    // Backend addresses nginx never reaches: where the unserved targets should point instead.
    let mut spare: BTreeSet<(String, String)> = BTreeSet::new();
    for b in input.backends {
        for bind in &b.binds {
            let reached = targets.iter().any(|t| {
                endpoints(&t.addr, input.host)
                    .unwrap_or_default()
                    .iter()
                    .any(|ep| {
                        crate::diagnose::check::matching::bind_serves(
                            bind,
                            b.working_directory.as_deref(),
                            ep,
                            input.host,
                        )
                    })
            });
            if !reached && let Some(addr) = nginx_address(bind, b.working_directory.as_deref()) {
                spare.insert((addr, describe(b)));
            }
        }
    }
    let mut out = Vec::new();
    for t in &unserved {
        let mut evidence = vec![format!(
            "nginx connects to {} ({})",
            t.raw,
            input.where_(t.at)
        )];
        for b in input.backends {
            let binds: Vec<String> = b.binds.iter().map(Bind::to_string).collect();
            evidence.push(format!("{} listens on {}", describe(b), binds.join(", ")));
        }
        let fix = match (spare.len(), unserved.len()) {
            (1, 1) => {
                let (new, who) = spare.iter().next().cloned().unwrap_or_default();
                let old = &t.raw;
                match replace_in_directive(input.tree, t.at, old, &new) {
                    Some(edit) => Fix::edits(
                        format!(
                            "Point nginx at {new}, where {who} listens (or start the backend on {old})."
                        ),
                        vec![edit],
                        true,
                    ),
                    None => Fix::instruction(format!("Point nginx at {new}, where {who} listens.")),
                }
            }
            _ => Fix::instruction(format!(
                "Make nginx and the backend agree on one address: change {} here, or start the backend on it.",
                t.raw
            )),
        };
        out.push(Finding {
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
        });
    }
    out
}

/// Whether the endpoint is on this host: loopback, or a unix socket.
fn is_local(ep: &Endpoint) -> bool {
    match ep {
        Endpoint::Unix(_) => true,
        Endpoint::Tcp(sa) => sa.ip().is_loopback(),
    }
}

/// Whether some process (not a known backend) listens there, when that is known.
fn something_listens(ep: &Endpoint, input: &CheckInput<'_>) -> bool {
    let Some(l) = &input.host.listening else {
        return false;
    };
    match ep {
        Endpoint::Unix(p) => l.unix.contains(p),
        Endpoint::Tcp(sa) => l
            .tcp
            .iter()
            .any(|x| x.port() == sa.port() && (x.ip() == sa.ip() || x.ip().is_unspecified())),
    }
}

/// The address nginx should use to reach `bind`.
fn nginx_address(bind: &Bind, wd: Option<&std::path::Path>) -> Option<String> {
    match bind {
        Bind::Unix { path } => Some(format!(
            "unix:{}",
            crate::diagnose::check::matching::absolute(path, wd).display()
        )),
        Bind::Tcp { host, port } => {
            let h = match host.as_str() {
                "" | "0.0.0.0" | "::" | "[::]" | "localhost" => "127.0.0.1".to_string(),
                h if h.contains(':') => {
                    format!("[{}]", h.trim_start_matches('[').trim_end_matches(']'))
                }
                h => h.to_string(),
            };
            Some(format!("{h}:{port}"))
        }
        Bind::Fd { .. } => None,
    }
}
