//! `upstream_read_timeout`: some requests take longer than `proxy_read_timeout` (504) while the
//! backend is otherwise healthy: the timeouts concentrate on a few URIs and the health probe
//! answers. Slow endpoints, not a hung backend; a restart does not make them faster.

use std::collections::BTreeMap;

use crate::diagnose::live::{Ctx, Diagnosis, LiveRule};
use crate::model::evidence::ProbeOutcome;
use crate::model::logs::UpstreamError as E;

use super::{describe_probe, stuck};

pub const RULE: LiveRule = LiveRule {
    kind: "upstream_read_timeout",
    reads: &[E::ReadTimedOut],
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for (addr, events) in ctx.errors_of(&[E::ReadTimedOut]) {
        let backend = ctx.backend_for(addr);
        if backend
            .and_then(|b| ctx.processes(b))
            .and_then(|p| stuck(ctx, addr, p))
            .is_some()
        {
            continue;
        }
        let probe = ctx.probe(addr);
        let healthy = matches!(probe, Some(ProbeOutcome::Response { .. }));
        let mut by_uri: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &events {
            *by_uri.entry(e.uri.as_deref().unwrap_or("?")).or_default() += 1;
        }
        let ok_elsewhere = ctx
            .requests()
            .iter()
            .any(|r| r.status < 500 && !by_uri.contains_key(r.path.as_str()));
        if !healthy && !ok_elsewhere && !ctx.input.offline {
            continue;
        }
        let mut evidence = Ctx::samples(&events);
        let mut top: Vec<(&str, usize)> = by_uri.into_iter().collect();
        top.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        evidence.push(format!(
            "timeouts by URI: {}",
            top.iter()
                .take(5)
                .map(|(u, n)| format!("{u} ×{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if let Some(p) = probe {
            evidence.push(format!("probe {addr}: {}", describe_probe(p)));
        }
        if ok_elsewhere {
            evidence.push("other URIs are answered normally in the same window".into());
        }
        let timeout = ctx
            .input
            .nginx
            .and_then(|n| n.locations.iter().find(|l| l.proxy_pass.is_some()))
            .map(|l| crate::model::nginx::format_time(l.proxy.read_timeout.value))
            .unwrap_or_else(|| "60s".into());
        out.push(Diagnosis {
            kind: RULE.kind,
            confidence: if healthy && ok_elsewhere { 0.85 } else { 0.65 },
            upstream: Some(ctx.group(addr)),
            message: format!("requests to {} take longer than proxy_read_timeout ({timeout}) while the backend is healthy", top.first().map(|t| t.0).unwrap_or("?")),
            evidence,
            fix: "Make those endpoints faster or move the work to a background job; if they are meant to be slow, raise proxy_read_timeout for those locations only (and gunicorn's --timeout above it).".into(),
            restart_helps: false,
        });
    }
    out
}
