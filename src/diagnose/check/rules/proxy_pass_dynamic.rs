//! `proxy_pass_dynamic`: the `proxy_pass` host is built from variables, so where it goes is
//! only known at request time. Said instead of guessed: the other rules cannot check it.

use crate::diagnose::check::{CheckInput, Notes, Rule};
use crate::diagnose::finding::{Finding, Fix, Severity};
use crate::model::nginx::Target;

pub const RULE: Rule = Rule {
    kind: "proxy_pass_dynamic",
    severity: Severity::Info,
    title: "proxy_pass target built from variables cannot be checked statically",
    why: "The destination is only known at request time, so addresses, schemes and keep-alive \
          cannot be compared with the backends.",
    check,
};

fn check(input: &CheckInput<'_>, _notes: &mut Notes) -> Vec<Finding> {
    input
        .nginx
        .locations
        .iter()
        .filter_map(|l| {
            let p = l.proxy_pass.as_ref().filter(|p| p.target == Target::Variable)?;
            Some((l, p))
        })
        .map(|(l, p)| Finding {
            kind: RULE.kind,
            severity: RULE.severity,
            message: format!("proxy_pass {} is built from variables: its target is not checked", p.url),
            location: Some(input.position(p.at)),
            upstream: Some(p.authority.clone()),
            evidence: evidence(input, l, p),
            fix: Fix::instruction(
                "Nothing to fix if this is intended. To have it checked, proxy to an `upstream` group by name.",
            ),
        })
        .collect()
}

fn evidence(
    input: &CheckInput<'_>,
    l: &crate::model::nginx::Location<'_>,
    p: &crate::model::nginx::ProxyPass<'_>,
) -> Vec<String> {
    let mut out = vec![format!("proxy_pass {} ({})", p.url, input.where_(p.at))];
    match (&l.proxy.resolver.value, l.proxy.resolver.from) {
        (Some(r), Some(at)) => out.push(format!("resolver {r} ({})", input.where_(at))),
        _ => out.push(
            "no `resolver` in effect: a value that is a host name (not an IP address or an upstream group) fails with 502 (`no resolver defined`)"
                .into(),
        ),
    }
    out
}
