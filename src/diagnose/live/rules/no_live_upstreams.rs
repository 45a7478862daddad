//! `no_live_upstreams` (runs after the other rules): `no live upstreams while connecting to
//! upstream` means every server of a group was marked failed — `max_fails` failures (default 1)
//! within `fail_timeout` (default 10s) — and nginx answered 502 without trying any of them
//! until `fail_timeout` passes. Only the failures before it say why; when another finding
//! already names the group's cause, this one stays silent. Otherwise it reports the group's
//! first failures and its `max_fails`/`fail_timeout`.

use crate::diagnose::live::{Ctx, Diagnosis, Explained, FallbackRule};
use crate::model::logs::{ErrorEvent, UpstreamError as E};
use crate::model::nginx::{Upstream, format_time};

pub const RULE: FallbackRule = FallbackRule {
    kind: "no_live_upstreams",
    check,
};

fn check(ctx: &Ctx<'_>, explained: &Explained) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for (name, events) in ctx.errors_of(&[E::NoLiveUpstreams]) {
        let group = ctx.group(name);
        if explained.names(&group) {
            continue; // a finding on the group already says why its servers failed
        }
        let first_at = events.first().map_or(u64::MAX, |e| e.at_ms);
        let before = first_failures(ctx, &group, first_at);
        let mut evidence = Ctx::samples(&events);
        let upstream = ctx.input.nginx.and_then(|n| n.upstream(name));
        evidence.extend(upstream.map(settings).unwrap_or_default());
        let message = match before.first() {
            Some(e) => format!(
                "every server of upstream `{group}` was marked failed, so nginx answered 502 without trying them; the first failures were {}",
                e.class.as_str()
            ),
            None => format!(
                "every server of upstream `{group}` was marked failed (max_fails within fail_timeout), so nginx answered 502 without trying them; the failures that caused it are not in the window"
            ),
        };
        for e in before.iter().rev().take(3).rev() {
            evidence.push(format!("before it: {}", e.line));
        }
        let members = upstream.map(|u| members(ctx, u)).unwrap_or_default();
        for p in &ctx.input.evidence.probes {
            if !p.via_nginx && members.contains(&p.target) {
                evidence.push(format!(
                    "probe {}: {}",
                    p.target,
                    super::describe_probe(&p.outcome)
                ));
            }
        }
        out.push(Diagnosis {
            kind: RULE.kind,
            confidence: if before.is_empty() { 0.5 } else { 0.6 },
            upstream: Some(group),
            message,
            evidence,
            fix: "Fix what failed first (the lines before it); nginx tries a failed server again after fail_timeout. If the failures are brief blips, raise max_fails/fail_timeout on the `server` lines, or add a `backup` server.".into(),
            restart_helps: false,
        });
    }
    out
}

/// The group's members' failures up to the first `no live upstreams`, oldest first.
fn first_failures<'a>(ctx: &Ctx<'a>, group: &str, until_ms: u64) -> Vec<&'a ErrorEvent> {
    let mut v: Vec<&ErrorEvent> = ctx
        .errors
        .iter()
        .filter(|(addr, _)| ctx.group(addr) == group)
        .flat_map(|(_, by)| by.iter())
        .filter(|(c, _)| !matches!(c, E::NoLiveUpstreams | E::ServerTemporarilyDisabled))
        .flat_map(|(_, evs)| evs.iter().copied())
        .filter(|e| e.at_ms <= until_ms)
        .collect();
    v.sort_by_key(|e| e.at_ms);
    v
}

/// The members of group `u`, as `$upstream_addr` writes them.
fn members(ctx: &Ctx<'_>, u: &Upstream<'_>) -> Vec<String> {
    u.servers
        .iter()
        .flat_map(|s| {
            crate::diagnose::check::matching::endpoints(&s.addr, ctx.input.host).unwrap_or_default()
        })
        .map(|e| e.to_string())
        .collect()
}

/// Each server's `max_fails`/`fail_timeout`.
fn settings(u: &Upstream<'_>) -> Vec<String> {
    u.servers
        .iter()
        .map(|s| {
            format!(
                "upstream `{}`: server {} max_fails={} fail_timeout={}{}",
                u.name,
                s.addr,
                s.max_fails,
                format_time(s.fail_timeout),
                if s.backup { " backup" } else { "" }
            )
        })
        .collect()
}
