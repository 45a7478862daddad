//! `upstream_all_servers_down`: every server of an upstream group is marked `down` (backups
//! included, or there are none): nginx has no server to try and logs `no live upstreams`.

use crate::diagnose::check::{CheckInput, Notes, Rule};
use crate::diagnose::finding::{Finding, Fix, Severity};

pub const RULE: Rule = Rule {
    kind: "upstream_all_servers_down",
    severity: Severity::Error,
    title: "every server of an upstream group is marked down",
    why: "nginx has no server to send requests to: `no live upstreams while connecting to \
          upstream`, and every request gets 502.",
    check,
};

fn check(input: &CheckInput<'_>, _notes: &mut Notes) -> Vec<Finding> {
    input
        .nginx
        .upstreams
        .iter()
        .filter(|u| !u.servers.is_empty() && u.servers.iter().all(|s| s.down))
        .map(|u| Finding {
            kind: RULE.kind,
            severity: RULE.severity,
            message: format!(
                "every server of upstream `{}` is marked `down`: every request gets 502",
                u.name
            ),
            location: Some(input.position(u.at)),
            upstream: Some(u.name.clone()),
            evidence: u
                .servers
                .iter()
                .map(|s| format!("server {} down ({})", s.addr, input.where_(s.at)))
                .collect(),
            fix: Fix::instruction("Remove `down` from the servers that are in service."),
        })
        .collect()
}
