//! `upstream_host_unresolvable`: a host name in `server` or `proxy_pass` does not resolve on
//! this host. nginx resolves these at start-up and refuses the whole configuration
//! (`host not found in upstream`): a reload fails, a restart leaves the site down.

use std::net::IpAddr;

use crate::diagnose::check::{CheckInput, Notes, Rule};
use crate::diagnose::finding::{Finding, Fix, Severity};
use crate::model::nginx::Addr;

pub const RULE: Rule = Rule {
    kind: "upstream_host_unresolvable",
    severity: Severity::Error,
    title: "an upstream host name does not resolve",
    why: "nginx resolves upstream names at start-up and refuses the configuration when one \
          does not resolve (`host not found in upstream`).",
    check,
};

fn check(input: &CheckInput<'_>, notes: &mut Notes) -> Vec<Finding> {
    let mut out = Vec::new();
    for t in input.nginx.targets() {
        let Addr::Host { host, .. } = &t.addr else {
            continue;
        };
        // A URL with variables is resolved per request (`proxy_pass_no_resolver`), not at
        // start-up: nginx does not refuse the configuration for it.
        if t.runtime {
            continue;
        }
        if host.parse::<IpAddr>().is_ok() {
            continue;
        }
        if input.host.offline {
            let why = "name resolution is a fact of the target machine (not done: --no-discover)";
            notes.skipped(RULE.kind, format!("`{host}`"), why);
            continue;
        }
        let Some(Err(why)) = input.host.resolved.get(host) else {
            continue;
        };
        out.push(Finding {
            kind: RULE.kind,
            severity: RULE.severity,
            message: format!(
                "host `{host}` does not resolve: nginx will refuse this configuration"
            ),
            location: Some(input.position(t.at)),
            upstream: Some(t.group()),
            evidence: vec![format!(
                "resolving `{host}` failed: {why} ({})",
                input.where_(t.at)
            )],
            fix: Fix::instruction(format!(
                "Use an IP address, or make `{host}` resolve on this host (/etc/hosts or DNS)."
            )),
        });
    }
    out
}
