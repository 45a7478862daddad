//! `backend_down`: nginx's connections are refused (or the unix socket is missing) and nothing
//! listens on the upstream address: the backend is not running. A restart helps unless it is
//! crash-looping (`backend_crash_loop` then says so).

use crate::diagnose::live::{Ctx, Diagnosis, LiveRule};

use super::{REFUSED, describe_probe};

pub const RULE: LiveRule = LiveRule {
    kind: "backend_down",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for (addr, events) in ctx.errors_of(REFUSED) {
        let live = ctx.listeners().is_some();
        if ctx.listener(addr).is_some() {
            continue; // something listens now: it came back, or it is another cause
        }
        let backend = ctx.backend_for(addr);
        // Up on the other IP family or on another address: a mismatch, not a dead backend.
        if super::address_family_mismatch::other_family(ctx, addr).is_some()
            || (backend.is_none() && !super::up_elsewhere(ctx, addr).is_empty())
        {
            continue;
        }
        let mut evidence = crate::diagnose::live::Ctx::samples(&events);
        let mut confidence: f64 = 0.6;
        if live {
            evidence.push(format!("nothing listens on {addr} (sock_diag)"));
            confidence = 0.8;
        }
        if let Some(b) = backend {
            match ctx.processes(b) {
                None if ctx.input.evidence.backends.known().is_some() => {
                    evidence.push(format!("no process of backend `{}` is running", b.name));
                    confidence += 0.1;
                }
                Some(p) => evidence.push(format!(
                    "backend `{}` has process {} but it does not listen",
                    b.name, p.master.pid
                )),
                None => {}
            }
            if let Some(why) = super::restarting(ctx, b) {
                // It is being restarted and dying again: `backend_crash_loop` says why.
                evidence.push(format!(
                    "{why}: restarting repeatedly (see backend_crash_loop)"
                ));
                confidence -= 0.25;
            }
            if let Some(u) = ctx.unit(b) {
                evidence.push(format!(
                    "unit {}: {}/{} (result {})",
                    u.unit, u.active_state, u.sub_state, u.result
                ));
            }
            if let Some(p) = ctx.program(b) {
                evidence.push(format!("supervisord program {}: {}", p.name, p.state));
            }
        }
        if let Some(p) = ctx.probe(addr) {
            evidence.push(format!("probe {addr}: {}", describe_probe(p)));
        }
        let stale = addr.starts_with("unix:")
            && ctx
                .input
                .host
                .paths
                .get(std::path::Path::new(&addr[5..]))
                .is_some_and(|f| f.exists);
        if stale {
            evidence.push(format!(
                "{} exists but no process listens on it: a stale socket file",
                &addr[5..]
            ));
        }
        let start = match backend.map(|b| &b.source) {
            Some(crate::model::backend::Source::SystemdUnit { unit, .. }) => {
                format!("`systemctl restart {unit}`")
            }
            Some(crate::model::backend::Source::Supervisord { program, .. }) => {
                format!("`supervisorctl start {program}`")
            }
            _ => "start the backend".into(),
        };
        out.push(Diagnosis {
            kind: RULE.kind,
            confidence: confidence.min(0.95),
            upstream: Some(ctx.group(addr)),
            message: format!("the backend at {addr} is down: nginx's connections are refused and nothing listens there"),
            evidence,
            fix: format!("{start}; then find out why it stopped (its log, `journalctl -u`, OOM kills)."),
            restart_helps: true,
        });
    }
    out
}
