//! `listen_backlog_full`: the backend's accept queue is full. On a unix socket nginx fails at
//! once with `(11: Resource temporarily unavailable)` (502); on TCP the kernel drops SYNs and
//! nginx times out connecting (504), with `ListenOverflows` rising. The backend is alive but
//! too slow or too few; a restart only empties the queue for a moment.

use crate::diagnose::live::{Ctx, Diagnosis, LiveRule};
use crate::model::logs::UpstreamError as E;

use super::stuck;

pub const RULE: LiveRule = LiveRule {
    kind: "listen_backlog_full",
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for (addr, events) in ctx.errors_of(&[E::UnixBacklogFull, E::ConnectTimedOut]) {
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
