//! `upstream_keepalive_ineffective`: an upstream group has `keepalive`, but a location proxying
//! to it still speaks HTTP/1.0 or sends `Connection: close` (nginx's defaults). nginx then
//! opens a new connection per request: the `keepalive` cache does nothing, and under load the
//! churn exhausts ephemeral ports (TIME_WAIT) and adds connect latency.
//!
//! A WebSocket `map $http_upgrade $connection_upgrade` is evaluated: with `'' '';` plain
//! requests send no `Connection` header and keep-alive works; with `'' close;` they close, and
//! the fix is that map entry (replacing the header would break WebSockets).

use crate::diagnose::check::edit::{append_to_block, replace_directive};
use crate::diagnose::check::{CheckInput, Notes, Rule};
use crate::diagnose::finding::{Edit, Finding, Fix, Severity};
use crate::model::nginx::{Connection, Location};

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
            evidence.push(connection_evidence(input, loc));
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

/// What the location sends as `Connection` for plain requests, and why.
fn connection_evidence(input: &CheckInput<'_>, loc: &Location<'_>) -> String {
    match &loc.proxy.connection {
        Connection::Fixed(v) => format!("and sends `Connection: {v}`"),
        Connection::Mapped {
            variable,
            value,
            map,
        } => {
            let at = input
                .nginx
                .maps
                .get(*map)
                .map(|m| input.where_(m.at))
                .unwrap_or_default();
            format!(
                "and sends `Connection: {variable}`, which the map at {at} makes `{value}` for requests that are not upgrades"
            )
        }
        Connection::Unknown(v) => {
            format!("and sends `Connection: {v}`, a value reflex cannot evaluate")
        }
    }
}

/// The edits, and whether they are safe to apply unattended: not when a `Connection` header
/// is already set to something reflex cannot evaluate.
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
    if let Connection::Mapped { map, .. } = &loc.proxy.connection {
        // Clear the header for plain requests in the map itself: upgrades keep theirs.
        match map_edit(input, *map) {
            Some(e) => edits.push(e),
            None => auto = false,
        }
    } else if headers.get("connection") != Some("") {
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

/// `'' '';` in the map: its entry for an empty `$http_upgrade` replaced, or added.
fn map_edit(input: &CheckInput<'_>, map: usize) -> Option<Edit> {
    let m = input.nginx.maps.get(map)?;
    match m.entries.iter().find(|(k, _, _)| k.is_empty()) {
        Some((_, _, at)) => Some(replace_directive(*at, "'' '';")),
        None => append_to_block(input.tree, m.at, &["'' '';".into()]),
    }
}
