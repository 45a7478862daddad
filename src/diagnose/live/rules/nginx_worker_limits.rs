//! `nginx_worker_limits`: nginx itself cannot open the connection to the upstream: `socket()
//! failed (24: Too many open files)` (the worker's file-descriptor limit) or `N
//! worker_connections are not enough while connecting to upstream` (every connection slot of
//! the worker is taken; a proxied request holds two). The client gets 500 (nginx gives up before
//! it has an upstream connection) although the backend is fine: restarting it cannot help.

use crate::diagnose::live::{Ctx, Diagnosis, LiveRule};
use crate::model::logs::UpstreamError as E;

pub const RULE: LiveRule = LiveRule {
    kind: "nginx_worker_limits",
    reads: &[E::LocalFdLimit, E::LocalWorkerConnections],
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<Diagnosis> {
    ctx.errors_of(RULE.reads)
        .into_iter()
        .map(|(addr, events)| {
            let fds = events.iter().any(|e| e.class == E::LocalFdLimit);
            let slots = events.iter().any(|e| e.class == E::LocalWorkerConnections);
            let mut fixes = Vec::new();
            if fds {
                fixes.push("raise `worker_rlimit_nofile` (main context) and the service's LimitNOFILE= to at least twice worker_connections");
            }
            if slots {
                fixes.push("raise `worker_connections` (events block) or `worker_processes`; each proxied request holds a client and an upstream connection");
            }
            Diagnosis {
                kind: RULE.kind,
                confidence: 0.95,
                upstream: Some(ctx.group(addr)),
                message: format!(
                    "nginx's workers ran out of {} connecting to {addr}: the backend never saw these requests",
                    match (fds, slots) {
                        (true, true) => "file descriptors and connection slots",
                        (true, false) => "file descriptors",
                        _ => "connection slots (worker_connections)",
                    }
                ),
                evidence: Ctx::samples(&events),
                fix: format!("{}; then `nginx -s reload`.", fixes.join("; ")),
                restart_helps: false,
            }
        })
        .collect()
}
