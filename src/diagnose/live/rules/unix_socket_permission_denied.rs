//! `unix_socket_permission_denied`: `connect() to unix:… failed (13: Permission denied)` at
//! `crit`: nginx's worker user may not write the socket or traverse a directory on its path.
//! The backend is fine; a restart keeps the same mode (uvicorn re-applies a stale file's mode).

use std::path::Path;

use crate::diagnose::live::{Ctx, Diagnosis, LiveRule};
use crate::model::logs::UpstreamError as E;

pub const RULE: LiveRule = LiveRule {
    kind: "unix_socket_permission_denied",
    reads: &[E::UnixPermissionDenied],
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for (addr, events) in ctx.errors_of(&[E::UnixPermissionDenied]) {
        let mut evidence = Ctx::samples(&events);
        let path = addr.strip_prefix("unix:").unwrap_or(addr);
        if let Some(nginx) = ctx.input.nginx {
            let (user, group) = nginx.worker_identity();
            evidence.push(format!("nginx workers run as {user}:{group}"));
        }
        if let Some(facts) = ctx.input.host.paths.get(Path::new(path)) {
            for c in &facts.components {
                evidence.push(format!(
                    "{} {} {}",
                    c.mode_string(),
                    ctx.input.host.owner(c),
                    c.path.display()
                ));
            }
        }
        out.push(Diagnosis {
            kind: RULE.kind,
            confidence: 0.97,
            upstream: Some(ctx.group(addr)),
            message: format!("nginx's worker user may not connect to {path} (13: Permission denied)"),
            evidence,
            fix: format!(
                "Give nginx's user write access to {path} and search access to its directories: a shared group \
                 (gunicorn --umask 007 --group www-data; systemd RuntimeDirectoryMode=0750 + Group=), or delete a stale \
                 0600 socket file before starting uvicorn. `reflex check` shows which component denies it."
            ),
            restart_helps: false,
        });
    }
    out
}
