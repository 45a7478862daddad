//! `listen_backlog_full`: the backend's accept queue is full. On a unix socket nginx fails at
//! once with `(11: Resource temporarily unavailable)` (502); on TCP the kernel drops SYNs and
//! nginx times out connecting (504), with `ListenOverflows` rising. The backend is alive but
//! too slow or too few; a restart only empties the queue for a moment.

use crate::diagnose::live::{Ctx, Diagnosis, LiveRule};
use crate::model::logs::UpstreamError as E;

use super::stuck;

pub const RULE: LiveRule = LiveRule {
    kind: "listen_backlog_full",
    reads: &[E::UnixBacklogFull, E::ConnectTimedOut],
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for (addr, events) in ctx.errors_of(RULE.reads) {
        let mut evidence = Ctx::samples(&events);
        let eagain = events.iter().any(|e| e.class == E::UnixBacklogFull);
        let mut confidence: f64 = if eagain { 0.8 } else { 0.5 };
        if let Some(l) = ctx.listener(addr) {
            evidence.push(format!(
                "accept queue {}/{} on {addr} (sock_diag)",
                l.accept_queue, l.backlog
            ));
            if l.accept_queue >= l.backlog {
                confidence += 0.15;
            }
        }
        if let Some((a, b)) = ctx.input.evidence.kernel.listen_overflows.known()
            && b > a
        {
            evidence.push(format!(
                "TcpExtListenOverflows rose by {} while sampling",
                b - a
            ));
            confidence += 0.1;
        }
        if let Some(n) = ctx
            .input
            .evidence
            .kernel
            .syn_sent
            .known()
            .and_then(|v| v.iter().find(|(dest, _)| dest == addr).map(|(_, n)| *n))
            .filter(|n| *n > 0)
        {
            evidence.push(format!(
                "{n} connections to {addr} in SYN-SENT: the kernel drops their SYNs"
            ));
            confidence += 0.05;
        }
        if let Some(busy) = busy(ctx, addr) {
            evidence.push(busy);
            confidence += 0.05;
        }
        if let Some(max) = ctx.input.evidence.kernel.somaxconn.known() {
            evidence.push(format!("net.core.somaxconn = {max}"));
        }
        // A stuck backend fills its queue too: that is `backend_hung`, ranked above.
        let hung = ctx
            .backend_for(addr)
            .and_then(|b| ctx.processes(b))
            .and_then(|p| stuck(ctx, addr, p));
        if let Some(why) = &hung {
            evidence.push(format!("the backend is stuck ({why}): see backend_hung"));
            confidence -= 0.3;
        }
        out.push(Diagnosis {
            kind: RULE.kind,
            confidence: confidence.clamp(0.1, 0.95),
            upstream: Some(ctx.group(addr)),
            message: format!("the listen backlog of {addr} is full: new connections are {}", if eagain { "refused at once (EAGAIN)" } else { "dropped until nginx times out" }),
            evidence,
            fix: "Add capacity (more workers, no blocking calls in async handlers), raise the backend's --backlog and net.core.somaxconn together, and keep proxy_connect_timeout short.".into(),
            restart_helps: false,
        });
    }
    out
}

/// The backend's processes running and using CPU while its queue is full: busy, not stuck.
fn busy(ctx: &Ctx<'_>, addr: &str) -> Option<String> {
    let p = ctx.processes(ctx.backend_for(addr)?)?;
    let all: Vec<_> = std::iter::once(&p.master).chain(&p.workers).collect();
    let working: Vec<String> = all
        .iter()
        .filter(|x| x.state == 'R' || x.cpu_ticks.1 > x.cpu_ticks.0)
        .map(|x| {
            format!(
                "pid {} state {} (+{} CPU ticks in {} ms)",
                x.pid,
                x.state,
                x.cpu_ticks.1.saturating_sub(x.cpu_ticks.0),
                x.sample_ms
            )
        })
        .collect();
    (!working.is_empty()).then(|| {
        format!(
            "the backend is running, not stuck: {}: busy with work that takes longer than new connections arrive",
            working.join(", ")
        )
    })
}
