//! `backend_hung`: requests time out reading the response header (504) on every URI, and the
//! backend is stuck: stopped (state T), no CPU progress, its accept queue filling and never
//! draining, its health probe timing out. The kernel keeps completing handshakes into the
//! backlog, so there are no connect errors until it is full. A restart helps.
//!
//! A full queue and a probe that cannot connect are also what a *busy* backend shows (CPU-bound
//! handlers, too few workers: `listen_backlog_full`, where a restart does not help). So when
//! the failures are connect timeouts or EAGAIN, the process must be proven stuck (stopped, or
//! no CPU progress while requests wait) before this rule names it.

use crate::diagnose::live::{Ctx, Diagnosis, LiveRule};
use crate::model::evidence::ProbeOutcome;
use crate::model::logs::UpstreamError as E;

use super::{describe_probe, stuck};

pub const RULE: LiveRule = LiveRule {
    kind: "backend_hung",
    reads: &[
        E::ReadTimedOut,
        E::TimedOut,
        E::ConnectTimedOut,
        E::UnixBacklogFull,
    ],
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for (addr, events) in ctx.errors_of(RULE.reads) {
        let mut evidence = Ctx::samples(&events);
        let mut score: f64 = 0.0;
        let backend = ctx.backend_for(addr);
        let stuck_now = backend
            .and_then(|b| ctx.processes(b))
            .and_then(|p| stuck(ctx, addr, p));
        let connect_phase = events
            .iter()
            .all(|e| matches!(e.class, E::ConnectTimedOut | E::UnixBacklogFull));
        if connect_phase && stuck_now.is_none() {
            continue; // a full queue at a running backend: `listen_backlog_full`
        }
        if let Some(why) = stuck_now {
            evidence.push(why);
            score += 0.5;
        }
        if let Some(l) = ctx.listener(addr)
            && l.accept_queue > 0
        {
            evidence.push(format!(
                "{} connections wait in {addr}'s accept queue (backlog {})",
                l.accept_queue, l.backlog
            ));
            score += 0.2;
        }
        if let Some(p) = ctx.probe(addr) {
            if matches!(
                p,
                ProbeOutcome::ReadTimeout { .. } | ProbeOutcome::ConnectTimeout { .. }
            ) {
                score += 0.25;
            }
            evidence.push(format!("probe {addr}: {}", describe_probe(p)));
            if matches!(p, ProbeOutcome::Response { .. }) {
                continue; // it answers: slow endpoints, not a hung backend
            }
        }
        let uris: std::collections::BTreeSet<&str> =
            events.iter().filter_map(|e| e.uri.as_deref()).collect();
        if score < 0.45 {
            continue;
        }
        if uris.len() > 1 {
            evidence.push(format!("timeouts on {} different URIs", uris.len()));
        }
        let restart = match backend.map(|b| &b.source) {
            Some(crate::model::backend::Source::SystemdUnit { unit, .. }) => {
                format!("`systemctl restart {unit}`")
            }
            Some(crate::model::backend::Source::Supervisord { program, .. }) => {
                format!("`supervisorctl restart {program}`")
            }
            _ => "restart the backend".into(),
        };
        out.push(Diagnosis {
            kind: RULE.kind,
            confidence: (0.45 + score).min(0.97),
            upstream: Some(ctx.group(addr)),
            message: format!("the backend at {addr} is hung: it accepts connections but answers nothing"),
            evidence,
            fix: format!(
                "{restart} to recover now; then find what blocks it (py-spy dump --pid PID, a sync call inside async def, a lock, SIGSTOP)."
            ),
            restart_helps: true,
        });
    }
    out
}
