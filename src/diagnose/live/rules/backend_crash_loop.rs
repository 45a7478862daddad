//! `backend_crash_loop`: the backend keeps dying and being restarted *now*: systemd
//! `auto-restart`/`activating`, `failed` on its start limit, restarts within the window
//! (`NRestarts` alone is cumulative and survives `systemctl stop`), supervisord
//! `BACKOFF`/`FATAL`, and an import or start-up error in its log. Connections are refused (uvicorn imports before it
//! binds) or accepted then reset (gunicorn binds first). Restarting does not help: the app
//! fails on start.

use crate::diagnose::live::{Ctx, Diagnosis, LiveRule};
use crate::model::logs::UpstreamError as E;

pub const RULE: LiveRule = LiveRule {
    kind: "backend_crash_loop",
    reads: &[
        E::ConnectRefused,
        E::UnixConnectRefused,
        E::UnixNoSuchFile,
        E::ResetByPeer,
        E::PrematurelyClosed,
        E::SendFailed,
    ],
    check,
};

/// Refused (from the log or a probe) or accepted-then-reset (gunicorn binds before its worker
/// fails to import), per address.
fn failing<'a>(ctx: &Ctx<'a>) -> Vec<(String, Vec<&'a crate::model::logs::ErrorEvent>)> {
    let mut out = ctx.refused();
    for (addr, events) in ctx.errors_of(&[E::ResetByPeer, E::PrematurelyClosed, E::SendFailed]) {
        match out.iter_mut().find(|(a, _)| a == addr) {
            Some((_, v)) => {
                v.extend(events);
                v.sort_by_key(|e| e.at_ms);
            }
            None => out.push((addr.to_string(), events)),
        }
    }
    out
}

/// What Python and the servers print when an app cannot start.
const STARTUP_ERRORS: &[&str] = &[
    "Traceback (most recent call last)",
    "Error loading ASGI app",
    "ModuleNotFoundError",
    "ImportError",
    "SyntaxError",
    "Worker failed to boot",
    "App failed to load",
    "Shutting down: Master",
    "exited: ",
];

fn check(ctx: &Ctx<'_>) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for (addr, events) in failing(ctx) {
        let addr = addr.as_str();
        let Some(b) = ctx.backend_for(addr) else {
            continue;
        };
        let mut signals = 0;
        let mut evidence = Ctx::samples(&events);
        // A supervisor that keeps restarting it is strong evidence on its own.
        if let Some(why) = super::restarting(ctx, b) {
            signals += 3;
            evidence.push(why);
        } else if let Some(p) = ctx.program(b)
            && matches!(p.state.as_str(), "STARTING" | "EXITED")
        {
            signals += 1;
            evidence.push(format!(
                "supervisord program {}: {} {}",
                p.name, p.state, p.spawn_error
            ));
        }
        let lines = ctx.app_lines(Some(b), STARTUP_ERRORS);
        if !lines.is_empty() {
            signals += 1;
            for l in lines.iter().rev().take(3).rev() {
                evidence.push(format!("app log: {}", l.text));
            }
        }
        if signals < 2 {
            continue;
        }
        out.push(Diagnosis {
            kind: RULE.kind,
            confidence: if signals >= 3 { 0.95 } else { 0.85 },
            upstream: Some(ctx.group(addr)),
            message: format!("backend `{}` is crash-looping: it dies on start and is restarted again and again", b.what()),
            evidence,
            fix: "Read the start-up error in the backend's log and fix the app (or its environment); a restart will not help until then.".into(),
            restart_helps: false,
        });
    }
    out
}
