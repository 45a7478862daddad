//! `upstream_address_mismatch`: nginx's connections to an address are refused while the backend
//! is up and listening on another address (not another member of the same upstream group: that
//! is failover, and the refused member is `backend_down`). Restarting changes nothing.

use crate::diagnose::live::{Ctx, Diagnosis, LiveRule};

use super::REFUSED;

pub const RULE: LiveRule = LiveRule {
    kind: "upstream_address_mismatch",
    reads: REFUSED,
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for (addr, events) in ctx.refused() {
        let addr = addr.as_str();
        if ctx.listener(addr).is_some() || super::address_family_mismatch::claims(ctx, addr) {
            continue;
        }
        let elsewhere = super::up_elsewhere(ctx, addr);
        let Some((b, other)) = elsewhere.first() else {
            continue;
        };
        let mut evidence = Ctx::samples(&events);
        evidence.push(format!("nothing listens on {addr} (sock_diag)"));
        evidence.push(format!(
            "backend `{}` is up and listens on {other}",
            b.what()
        ));
        if let Some(p) = ctx.probe(addr) {
            evidence.push(format!("probe {addr}: {}", super::describe_probe(p)));
        }
        if let Some(u) = ctx.upstream_of(addr) {
            evidence.push(format!("upstream `{}` lists {addr}", u.name));
        }
        out.push(Diagnosis {
            kind: RULE.kind,
            confidence: 0.9,
            upstream: Some(ctx.group(addr)),
            message: format!("nginx proxies to {addr} but the backend listens on {other}"),
            evidence,
            fix: format!("Point nginx at {other} (`reflex check` shows the diff), or start the backend on {addr}; then `nginx -s reload`."),
            restart_helps: false,
        });
    }
    out
}
