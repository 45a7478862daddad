//! `upstream_scheme_mismatch`: `proxy_pass https://` to a plain-HTTP backend (nginx's TLS
//! handshake fails: `SSL_do_handshake() failed … wrong version number`), or `http://` to a
//! backend started with TLS (it drops the plain request: `upstream prematurely closed`).
//! Every request gets 502.

use crate::diagnose::check::edit::replace_in_directive;
use crate::diagnose::check::{CheckInput, Notes, Rule};
use crate::diagnose::finding::{Finding, Fix, Severity};
use crate::model::backend::Knob;
use crate::model::nginx::Scheme;

use super::{backends_behind, describe, group_of};

pub const RULE: Rule = Rule {
    kind: "upstream_scheme_mismatch",
    severity: Severity::Error,
    title: "proxy_pass scheme does not match the backend's (http vs https)",
    why: "A TLS handshake to a plain backend, or plain HTTP to a TLS backend, fails on every \
          request: 502.",
    check,
};

fn check(input: &CheckInput<'_>, notes: &mut Notes) -> Vec<Finding> {
    let mut out = Vec::new();
    for loc in &input.nginx.locations {
        let Some(pp) = &loc.proxy_pass else { continue };
        let mut backends = backends_behind(input, loc);
        backends.retain(|b| match b.unknown(Knob::Tls) {
            Some(u) => {
                let why = format!("whether it speaks TLS is unknown ({})", u.why);
                notes.skipped(RULE.kind, describe(b), why);
                false
            }
            None => true,
        });
        let (bad, from, to): (Vec<_>, _, _) = match pp.scheme {
            Scheme::Https => (
                backends.iter().filter(|b| !b.tls).collect(),
                "https://",
                "http://",
            ),
            Scheme::Http => (
                backends.iter().filter(|b| b.tls).collect(),
                "http://",
                "https://",
            ),
        };
        if bad.is_empty() {
            continue;
        }
        let speaks = if pp.scheme == Scheme::Https {
            "plain HTTP"
        } else {
            "HTTPS (started with a TLS key and certificate)"
        };
        let mut evidence = vec![format!("proxy_pass {} ({})", pp.url, input.where_(pp.at))];
        evidence.extend(
            bad.iter()
                .map(|b| format!("{} speaks {speaks}", describe(b))),
        );
        let summary = format!("Use {to} in proxy_pass, the scheme the backend speaks.");
        let fix = match replace_in_directive(input.tree, pp.at, from, to) {
            Some(e) => Fix::edits(summary, vec![e], true),
            None => Fix::instruction(summary),
        };
        out.push(Finding {
            kind: RULE.kind,
            severity: RULE.severity,
            message: format!(
                "proxy_pass uses {from} but the backend speaks {speaks}: every request gets 502"
            ),
            location: Some(input.position(pp.at)),
            upstream: group_of(loc),
            evidence,
            fix,
        });
    }
    out
}
