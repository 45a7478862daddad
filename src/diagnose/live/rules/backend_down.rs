//! `backend_down`: nginx's connections are refused (or the unix socket is missing) and nothing
//! listens on the upstream address: the backend is not running. The refusal comes from the
//! error log, or, when the window has no such line (logs unreadable, no traffic yet), from a
//! direct probe refused right now. A restart helps when we know which backend serves the
//! address, unless it is crash-looping (`backend_crash_loop` then says so); a dead member of a
//! multi-server upstream is down too (nginx's failover to the others is not a mismatch).

use crate::diagnose::live::{Ctx, Diagnosis, LiveRule};
use crate::model::backend::{Backend, Source};

use super::{REFUSED, describe_probe};

pub const RULE: LiveRule = LiveRule {
    kind: "backend_down",
    reads: REFUSED,
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for (addr, events) in ctx.refused() {
        let addr = addr.as_str();
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
        let mut evidence = Ctx::samples(&events);
        let mut confidence: f64 = if events.is_empty() { 0.5 } else { 0.6 };
        if ctx.listeners().is_some() {
            evidence.push(format!("nothing listens on {addr} (sock_diag)"));
            confidence += 0.2;
        }
        if let Some(p) = ctx.probe(addr) {
            evidence.push(format!("probe {addr}: {}", describe_probe(p)));
        }
        if events.is_empty() {
            evidence.push("no refused connection in the window's error log (unreadable, or no request yet): the probe alone shows it".into());
        }
        if let Some(b) = backend {
            confidence += backend_facts(ctx, b, &mut evidence);
        }
        if let Some(stale) = stale_socket(ctx, addr) {
            evidence.push(stale);
        }
        out.push(diagnosis(ctx, addr, backend, evidence, confidence));
    }
    out
}

/// What the backend's processes and supervisor say; the confidence it adds.
fn backend_facts(ctx: &Ctx<'_>, b: &Backend, evidence: &mut Vec<String>) -> f64 {
    let mut delta = 0.0;
    let name = b.what();
    match ctx.processes(b) {
        None if ctx.input.evidence.backends.known().is_some() => {
            evidence.push(format!("no process of backend `{name}` is running"));
            delta += 0.1;
        }
        Some(p) => evidence.push(format!(
            "backend `{name}` has process {} but it does not listen",
            p.master.pid
        )),
        None => {}
    }
    if let Some(why) = super::restarting(ctx, b) {
        // It is being restarted and dying again: `backend_crash_loop` says why.
        evidence.push(format!(
            "{why}: restarting repeatedly (see backend_crash_loop)"
        ));
        delta -= 0.25;
    }
    if let Some(u) = ctx.unit(b) {
        evidence.push(format!(
            "unit {}: {}/{} (result {}, NRestarts={})",
            u.unit, u.active_state, u.sub_state, u.result, u.n_restarts
        ));
    }
    if let Some(p) = ctx.program(b) {
        evidence.push(format!("supervisord program {}: {}", p.name, p.state));
    }
    delta
}

fn stale_socket(ctx: &Ctx<'_>, addr: &str) -> Option<String> {
    let path = addr.strip_prefix("unix:")?;
    let exists = ctx
        .input
        .host
        .paths
        .get(std::path::Path::new(path))
        .is_some_and(|f| f.exists);
    exists.then(|| format!("{path} exists but no process listens on it: a stale socket file"))
}

fn diagnosis(
    ctx: &Ctx<'_>,
    addr: &str,
    backend: Option<&Backend>,
    evidence: Vec<String>,
    confidence: f64,
) -> Diagnosis {
    let (message, fix) = match backend {
        Some(b) => {
            let start = match &b.source {
                Source::SystemdUnit { unit, .. } => format!("`systemctl restart {unit}`"),
                Source::Supervisord { program, .. } => format!("`supervisorctl start {program}`"),
                _ => format!("start `{}`", b.what()),
            };
            (
                format!(
                    "the backend at {addr} is down: nginx's connections are refused and nothing listens there"
                ),
                format!(
                    "{start}; then find out why it stopped (its log, `journalctl -u`, OOM kills)."
                ),
            )
        }
        None => {
            let seen = if ctx.listeners().is_some() {
                format!("nothing listens on {addr}")
            } else {
                format!("nginx's connections to {addr} are refused")
            };
            let group = ctx.group(addr);
            let remove = if group == addr {
                "or point proxy_pass elsewhere".to_string()
            } else {
                format!("or remove it from upstream `{group}`")
            };
            (
                format!("{seen}, and no known backend serves that address"),
                format!(
                    "Start whatever should listen on {addr} (reflex does not know which program that is: give it with --backend/--unit), {remove}."
                ),
            )
        }
    };
    Diagnosis {
        kind: RULE.kind,
        confidence: confidence.min(0.95),
        upstream: Some(ctx.group(addr)),
        message,
        evidence,
        fix,
        // Only a known backend can be restarted; `reflex watch` must not guess.
        restart_helps: backend.is_some(),
    }
}
