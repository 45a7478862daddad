//! `upstream_localhost_dual_stack`: a host name such as `localhost` resolves to both `::1` and
//! `127.0.0.1`; nginx resolves it at start-up and uses every address, while the backend binds
//! one family only. Every attempt on the other family is refused: error-log noise,
//! `$upstream_status "502, 200"`, a retry on every other request, and real 502s as soon as the
//! working address fails too or `proxy_next_upstream` is off.

use std::net::IpAddr;

use crate::diagnose::check::edit::replace_in_directive;
use crate::diagnose::check::matching::{Endpoint, endpoints, maybe_served_by, served_by};
use crate::diagnose::check::{CheckInput, Notes, Rule};
use crate::diagnose::finding::{Finding, Fix, Severity};
use crate::model::nginx::Addr;

use super::describe;

pub const RULE: Rule = Rule {
    kind: "upstream_localhost_dual_stack",
    severity: Severity::Warning,
    title: "upstream host resolves to IPv6 and IPv4 but the backend listens on one family",
    why: "nginx round-robins over every address of the name: each attempt on the family the \
          backend does not listen on is refused (111) and retried, and fails as a 502 when the \
          other address fails too.",
    check,
};

fn check(input: &CheckInput<'_>, notes: &mut Notes) -> Vec<Finding> {
    let mut out = Vec::new();
    for t in input.nginx.targets() {
        let Addr::Host { host, port } = &t.addr else {
            continue;
        };
        if host.parse::<IpAddr>().is_ok() {
            continue;
        }
        let eps = match endpoints(&t.addr, input.host) {
            Ok(eps) => eps,
            Err(why) => {
                if input.host.offline {
                    notes.skipped(RULE.kind, &t.raw, why);
                }
                continue;
            }
        };
        if let Some(b) = eps.iter().find_map(|ep| {
            maybe_served_by(ep, input.backends, input.host)
                .first()
                .copied()
        }) {
            notes.skipped(
                RULE.kind,
                &t.raw,
                format!("where {} listens is unknown", describe(b)),
            );
            continue;
        }
        let (served, refused): (Vec<&Endpoint>, Vec<&Endpoint>) = eps
            .iter()
            .partition(|ep| !served_by(ep, input.backends, input.host).is_empty());
        let family = |ep: &&Endpoint| matches!(ep, Endpoint::Tcp(sa) if sa.is_ipv6());
        let mixed = eps.iter().any(|e| family(&e)) && eps.iter().any(|e| !family(&e));
        if !mixed || served.is_empty() || refused.is_empty() {
            continue;
        }
        let Some(Endpoint::Tcp(good)) = served.first().copied() else {
            continue;
        };
        let literal = match good.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        let backends = served_by(served[0], input.backends, input.host);
        let mut evidence = vec![format!(
            "`{host}` resolves to {} ({})",
            eps.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            input.where_(t.at)
        )];
        for b in &backends {
            evidence.push(format!("{} listens on {good} only", describe(b)));
        }
        evidence.push(format!(
            "connections to {} are refused",
            refused
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let new = t.raw.replacen(host.as_str(), &literal, 1);
        let fix = match replace_in_directive(input.tree, t.at, &t.raw, &new) {
            Some(e) => Fix::edits(
                format!("Use {literal}:{port} instead of {host}:{port}."),
                vec![e],
                true,
            ),
            None => Fix::instruction(format!("Use {literal}:{port} instead of {host}:{port}.")),
        };
        out.push(Finding {
            kind: RULE.kind,
            severity: RULE.severity,
            message: format!(
                "`{host}` resolves to both IPv6 and IPv4 but the backend listens on {good} only: nginx's attempts on the other address are refused"
            ),
            location: Some(input.position(t.at)),
            upstream: Some(t.group()),
            evidence,
            fix,
        });
    }
    out
}
