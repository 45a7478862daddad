//! `proxy_pass_no_resolver`: a `proxy_pass` URL with variables (`http://localhost:8000$request_uri`,
//! `set $b backend.internal; proxy_pass http://$b;`) is built per request, and nginx then looks
//! its host up among the `upstream` groups (and the implicit ones static `proxy_pass`es create);
//! an IP address is used as is; any other name is resolved with `resolver`. With no `resolver`
//! in effect every such request fails: `no resolver defined to resolve localhost` at error
//! level, and the client gets 502 (ngx_http_upstream_init_request).
//!
//! Checked when the host is static, or a variable whose values the configuration gives
//! (`set` in the location or its server, a `map`). A variable from the request
//! (`$arg_host`, `$http_host`) is only known at request time: `proxy_pass_dynamic` says so.

use std::net::IpAddr;

use crate::diagnose::check::{CheckInput, Notes, Rule};
use crate::diagnose::finding::{Finding, Fix, Severity};
use crate::model::nginx::{Addr, Location, ProxyPass, Target, parse_addr};
use crate::parse::nginx::Located;

use super::group_of;

pub const RULE: Rule = Rule {
    kind: "proxy_pass_no_resolver",
    severity: Severity::Error,
    title: "proxy_pass resolves a host name per request but no resolver is defined",
    why: "A proxy_pass URL with variables is resolved per request with `resolver`; without one, \
          nginx logs `no resolver defined to resolve HOST` and answers every request with 502.",
    check,
};

fn check(input: &CheckInput<'_>, _notes: &mut Notes) -> Vec<Finding> {
    let mut out = Vec::new();
    for loc in &input.nginx.locations {
        let Some(pp) = loc.proxy_pass.as_ref().filter(|p| p.runtime) else {
            continue;
        };
        if loc.proxy.resolver.value.is_some() {
            continue;
        }
        let Some(candidates) = candidates(input, loc, pp) else {
            continue;
        };
        let unresolvable: Vec<String> = candidates
            .iter()
            .filter(|c| needs_resolver(input, c))
            .cloned()
            .collect();
        if let Some(host) = unresolvable.first() {
            out.push(finding(input, loc, pp, host, &unresolvable));
        }
    }
    out
}

fn finding(
    input: &CheckInput<'_>,
    loc: &Location<'_>,
    pp: &ProxyPass<'_>,
    host: &str,
    all: &[String],
) -> Finding {
    let name = parse_addr(host, 80)
        .map(|a| match a {
            Addr::Host { host, .. } => host,
            Addr::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| host.to_string());
    let mut evidence = vec![format!("proxy_pass {} ({})", pp.url, input.where_(pp.at))];
    if pp.target == Target::Variable {
        evidence.push(format!(
            "{} takes the value{} {}",
            pp.authority,
            if all.len() == 1 { "" } else { "s" },
            all.join(", ")
        ));
    }
    evidence.push(format!(
        "`{name}` is not an upstream group or an IP address, and no `resolver` is set in location {} or around it",
        loc.matcher
    ));
    Finding {
        kind: RULE.kind,
        severity: RULE.severity,
        message: format!(
            "proxy_pass {} resolves `{name}` per request but no resolver is defined: every request gets 502 (`no resolver defined to resolve {name}`)",
            pp.url
        ),
        location: Some(input.position(pp.at)),
        upstream: group_of(loc),
        evidence,
        fix: Fix::instruction(format!(
            "Proxy to an `upstream` group (resolved once at start-up) or an IP address, or add `resolver` (e.g. `resolver 127.0.0.53;`) where this location can see it; `{name}` must then be in DNS, /etc/hosts is not read."
        )),
    }
}

/// The hosts (`name[:port]`) the URL can have: the static host, or the values the
/// configuration gives its variable. `None` when they are only known per request.
fn candidates(
    input: &CheckInput<'_>,
    loc: &Location<'_>,
    pp: &ProxyPass<'_>,
) -> Option<Vec<String>> {
    if pp.target != Target::Variable {
        return Some(vec![pp.authority.clone()]);
    }
    // `$name`, `${name}`, optionally with a static `:port`.
    let (var, port) = match pp.authority.split_once(':') {
        Some((v, p)) if !p.contains('$') => (v, Some(p)),
        _ => (pp.authority.as_str(), None),
    };
    let name = var
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
        .map_or_else(|| var.to_string(), |v| format!("${v}"));
    if name[1..].contains('$') {
        return None;
    }
    let values = values_of(input, loc, &name)?;
    Some(
        values
            .into_iter()
            .map(|v| match port {
                Some(p) => format!("{v}:{p}"),
                None => v,
            })
            .collect(),
    )
}

/// Literal values `name` is given by `set` (in the location or its server) or a `map`.
fn values_of(input: &CheckInput<'_>, loc: &Location<'_>, name: &str) -> Option<Vec<String>> {
    let mut values = Vec::new();
    let mut blocks: Vec<Located<'_>> = vec![loc.at];
    blocks.extend(input.nginx.servers.get(loc.server).map(|s| s.at));
    for b in blocks {
        let Some(body) = &b.directive.block else {
            continue;
        };
        for d in input.tree.expand(b.file, body) {
            if d.directive.name == "set" && d.directive.arg(0) == name {
                values.push(d.directive.arg(1).to_string());
            }
        }
    }
    for m in input.nginx.maps.iter().filter(|m| m.variable == name) {
        values.extend(m.entries.iter().map(|(_, v, _)| v.clone()));
        values.push(
            m.default
                .as_ref()
                .map(|(v, _)| v.clone())
                .unwrap_or_default(),
        );
    }
    let known = !values.is_empty() && values.iter().all(|v| !v.contains('$') && !v.is_empty());
    known.then_some(values)
}

/// Whether nginx needs `resolver` for host `candidate` (`name[:port]`).
fn needs_resolver(input: &CheckInput<'_>, candidate: &str) -> bool {
    let Some(addr) = parse_addr(candidate, 80) else {
        return false;
    };
    let Addr::Host { host, port } = addr else {
        return false;
    };
    if host.parse::<IpAddr>().is_ok() {
        return false;
    }
    // An `upstream` block has no port: it matches a URL without one.
    let explicit_port = candidate
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
    if !explicit_port && input.nginx.upstream(&host).is_some() {
        return false;
    }
    // Static `proxy_pass`es create implicit upstreams nginx also looks in.
    let implicit = input.nginx.locations.iter().filter_map(|l| l.proxy_pass.as_ref()).any(|p| {
        !p.runtime
            && matches!(&p.target, Target::Direct(Addr::Host { host: h, port: q }) if h.eq_ignore_ascii_case(&host) && *q == port)
    });
    !implicit
}
