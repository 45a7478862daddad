//! `keepalive_race`: the backend closed an idle keep-alive connection just as nginx reused it:
//! `upstream prematurely closed` or `recv() failed (104)` while reading the header, or
//! `writev()/send() failed (32|104)` while sending the request, sporadic, on reused connections
//! (`$upstream_connect_time` 0). Needs upstream `keepalive` with HTTP/1.1 and a backend
//! keep-alive timeout not longer than nginx's `keepalive_timeout`. GETs are retried (`502, 200`);
//! POSTs reach the client as 502. A configuration fix, not a restart.

use crate::diagnose::live::{Ctx, Diagnosis, LiveRule};
use crate::model::logs::UpstreamError as E;
use crate::model::nginx::format_time;

pub const RULE: LiveRule = LiveRule {
    kind: "keepalive_race",
    reads: &[E::PrematurelyClosed, E::ResetByPeer, E::SendFailed],
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for (addr, events) in ctx.errors_of(RULE.reads) {
        let Some(up) = ctx.upstream_of(addr) else {
            continue;
        };
        let Some(keepalive) = &up.keepalive else {
            continue;
        };
        let capable = ctx.input.nginx.is_some_and(|n| {
            n.locations_to(&up.name)
                .any(|l| l.proxy.keepalive_capable())
        });
        if !capable {
            continue;
        }
        let backend = ctx.backend_for(addr);
        // A killed or recycled worker explains the same lines better.
        let killed: Vec<&str> = super::worker_killed::TIMEOUT
            .iter()
            .chain(super::worker_killed::KILLED)
            .chain(super::worker_killed::RECYCLE)
            .copied()
            .collect();
        if !ctx.app_lines(backend, &killed).is_empty() {
            continue;
        }
        let mut confidence: f64 = 0.6;
        let mut evidence = Ctx::samples(&events);
        evidence.push(format!(
            "upstream `{}`: keepalive {}, keepalive_timeout {}",
            up.name,
            keepalive.value,
            format_time(up.keepalive_timeout.value)
        ));
        if let Some(b) = backend {
            evidence.push(format!(
                "backend `{}` closes idle connections after {}",
                b.name,
                format_time(b.keepalive)
            ));
            if b.supports_keepalive() && b.keepalive <= up.keepalive_timeout.value {
                confidence += 0.25;
            } else {
                confidence -= 0.2;
            }
        }
        let reused = ctx
            .requests()
            .iter()
            .filter(|r| {
                r.attempts
                    .iter()
                    .any(|a| a.addr == addr && a.connect_ms == Some(0) && a.header_ms.is_none())
            })
            .count();
        if reused > 0 {
            evidence.push(format!(
                "{reused} failed attempts were on reused connections ($upstream_connect_time 0.000)"
            ));
            confidence += 0.1;
        }
        let total = ctx.requests().len();
        if total > 0 {
            evidence.push(format!(
                "{} failures in {total} requests: sporadic",
                events.len()
            ));
            if events.len() * 4 > total {
                confidence -= 0.2; // too frequent for a race
            }
        }
        let target = backend.map(|b| {
            b.keepalive
                .saturating_sub(std::time::Duration::from_secs(1))
                .max(std::time::Duration::from_millis(500))
        });
        out.push(Diagnosis {
            kind: RULE.kind,
            confidence: confidence.clamp(0.1, 0.95),
            upstream: Some(up.name.clone()),
            message: format!("keep-alive race on {addr}: the backend closes idle connections while nginx reuses them"),
            evidence,
            fix: format!(
                "Set `keepalive_timeout {};` in upstream `{}` (shorter than the backend's), or raise the backend's keep-alive above nginx's.",
                target.map(format_time).unwrap_or_else(|| "4s".into()),
                up.name
            ),
            restart_helps: false,
        });
    }
    out
}
