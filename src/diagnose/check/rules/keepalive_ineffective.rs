//! `upstream_keepalive_ineffective`: an upstream group has `keepalive`, but a location proxying
//! to it still speaks HTTP/1.0 or sends `Connection: close` (nginx's defaults). nginx then
//! opens a new connection per request: the `keepalive` cache does nothing, and under load the
//! churn exhausts ephemeral ports (TIME_WAIT) and adds connect latency.

use crate::diagnose::check::edit::{append_to_block, replace_directive};
use crate::diagnose::check::{CheckInput, Notes, Rule};
use crate::diagnose::finding::{Edit, Finding, Fix, Severity};
use crate::model::nginx::Location;

pub const RULE: Rule = Rule {
    kind: "upstream_keepalive_ineffective",
    severity: Severity::Warning,
    title: "upstream keepalive without proxy_http_version 1.1 and a cleared Connection header",
    why: "Upstream keep-alive needs HTTP/1.1 and `proxy_set_header Connection \"\"`; without \
          them every request opens a new connection and the `keepalive` cache is unused.",
    check,
};

fn check(input: &CheckInput<'_>, _notes: &mut Notes) -> Vec<Finding> {
    let mut out = Vec::new();
    for u in &input.nginx.upstreams {
        let Some(keepalive) = &u.keepalive else {
            continue;
        };
        for loc in input.nginx.locations_to(&u.name) {
            if loc.proxy.keepalive_capable() {
                continue;
            }
            let version = &loc.proxy.http_version;
            let connection = loc.proxy.headers.get("connection").unwrap_or("close");
            let mut evidence = vec![format!(
                "upstream `{}` has keepalive {} ({})",
                u.name,
                keepalive.value,
                keepalive.from.map(|d| input.where_(d)).unwrap_or_default()
            )];
            evidence.push(format!(
                "location {} proxies with HTTP/{} ({})",
                loc.matcher,
                version.value,
                version
                    .from
                    .map(|d| input.where_(d))
                    .unwrap_or_else(|| "nginx's default".into())
            ));
            evidence.push(format!("and sends `Connection: {connection}`"));
            let (edits, auto) = edits(input, loc);
            out.push(Finding {
                kind: RULE.kind,
                severity: RULE.severity,
                message: format!(
                    "location {} proxies to upstream `{}` without HTTP/1.1 and a cleared Connection header: its keepalive is unused",
                    loc.matcher, u.name
                ),
                location: Some(input.position(loc.proxy_pass.as_ref().map(|p| p.at).unwrap_or(loc.at))),
                upstream: Some(u.name.clone()),
                evidence,
                fix: Fix::edits(
                    "Add `proxy_http_version 1.1;` and `proxy_set_header Connection \"\";` where this location's proxy settings are defined.",
                    edits,
                    auto,
                ),
            });
        }
    }
    out
}

/// The edits, and whether they are safe to apply unattended: not when a `Connection` header
/// is already set to something else (a WebSocket `$connection_upgrade` map, say).
fn edits(input: &CheckInput<'_>, loc: &Location<'_>) -> (Vec<Edit>, bool) {
    let mut edits = Vec::new();
    let mut auto = true;
    let version = &loc.proxy.http_version;
    if version.value != "1.1" {
        match version.from {
            Some(d) => edits.push(replace_directive(d, "proxy_http_version 1.1;")),
            None => edits.extend(append_to_block(
                input.tree,
                loc.at,
                &["proxy_http_version 1.1;".into()],
            )),
        }
    }
    let headers = &loc.proxy.headers;
    if headers.get("connection") != Some("") {
        if let Some((_, _, at)) = headers
            .entries
            .iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case("connection"))
        {
            auto = false;
            edits.push(replace_directive(*at, "proxy_set_header Connection \"\";"));
        } else {
            let level = headers.level.unwrap_or(loc.at);
            edits.extend(append_to_block(
                input.tree,
                level,
                &["proxy_set_header Connection \"\";".into()],
            ));
        }
    }
    (edits, auto)
}
