//! `worker_killed`: a worker died mid-request and nginx saw the connection close or reset:
//! gunicorn's `--timeout` (`[CRITICAL] WORKER TIMEOUT`, `was sent SIGABRT`), a `--max-requests`
//! recycle, or the kernel's OOM killer. Restarting does not prevent the next one.
//!
//! An OOM kill counts only when it happened inside the window and was this backend's: its
//! memory cgroup is the backend's (its master's, or its systemd unit's), or the backend's log
//! names the killed PID (gunicorn:
//! `Worker (pid:N) was sent SIGKILL! Perhaps out of memory?`). The kernel keeps kills since boot,
//! and any Python process's kill is not the backend's.

use crate::diagnose::live::{Ctx, Diagnosis, LiveRule};
use crate::model::backend::Backend;
use crate::model::evidence::OomKill;
use crate::model::logs::UpstreamError as E;

pub const RULE: LiveRule = LiveRule {
    kind: "worker_killed",
    reads: &[
        E::PrematurelyClosed,
        E::ResetByPeer,
        E::SendFailed,
        E::BodyFailed,
    ],
    check,
};

/// gunicorn's arbiter on a worker killed for `--timeout` (SIGABRT, exit code 134).
pub const TIMEOUT: &[&str] = &["WORKER TIMEOUT", "was sent SIGABRT", "was sent code 134"];
/// gunicorn's arbiter on a worker killed with SIGKILL (by itself when the worker ignored
/// SIGABRT, or by something else: then it adds "Perhaps out of memory?").
pub const KILLED: &[&str] = &["was sent SIGKILL"];
/// A worker leaving after `--max-requests`: gunicorn's own workers, and uvicorn's server under
/// `uvicorn.workers.UvicornWorker` (which gets gunicorn's max_requests as limit_max_requests).
pub const RECYCLE: &[&str] = &[
    "Autorestarting worker after current request",
    "Max requests, shutting down",
    "Maximum request limit of",
];

fn check(ctx: &Ctx<'_>) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for (addr, events) in ctx.errors_of(RULE.reads) {
        let backend = ctx.backend_for(addr);
        let Some((why, fix, lines)) = cause(ctx, backend) else {
            continue;
        };
        let mut evidence = Ctx::samples(&events);
        evidence.extend(lines);
        out.push(Diagnosis {
            kind: RULE.kind,
            confidence: 0.9,
            upstream: Some(ctx.group(addr)),
            message: format!("requests to {addr} fail because {why}"),
            evidence,
            fix,
            restart_helps: false,
        });
    }
    out
}

/// Why the worker died, the fix, and the lines that show it.
fn cause(ctx: &Ctx<'_>, backend: Option<&Backend>) -> Option<(&'static str, String, Vec<String>)> {
    let app = |needles: &[&str]| -> Vec<String> {
        ctx.app_lines(backend, needles)
            .iter()
            .rev()
            .take(3)
            .rev()
            .map(|l| format!("app log: {}", l.text))
            .collect()
    };
    let oom_fix = "Find the memory growth (per-request allocations, caches), lower --workers, or give the service more memory.";
    let oom_logged = app(&["Perhaps out of memory"]);
    let ooms = oom_kills(ctx, backend);
    if !ooms.is_empty() {
        let mut lines: Vec<String> = ooms
            .iter()
            .take(3)
            .map(|o| format!("kernel: {}", o.line))
            .collect();
        lines.extend(oom_logged);
        return Some((
            "the kernel's OOM killer killed a worker",
            oom_fix.into(),
            lines,
        ));
    }
    // gunicorn's arbiter: SIGABRT (code 134) after `--timeout`; SIGKILL when the worker
    // ignored that too, and "Perhaps out of memory?" when something else sent SIGKILL.
    let timeouts = app(TIMEOUT);
    if !timeouts.is_empty() {
        let t = backend
            .and_then(|b| b.worker_timeout)
            .map(|t| format!(" ({}s)", t.as_secs()))
            .unwrap_or_default();
        return Some((
            "gunicorn killed the worker for exceeding --timeout",
            format!(
                "Raise gunicorn's --timeout{t} above proxy_read_timeout, and move slow or blocking work out of the request."
            ),
            timeouts,
        ));
    }
    if !oom_logged.is_empty() {
        return Some((
            "a worker was killed with SIGKILL, most likely by the OOM killer (the kernel log was not readable or did not say)",
            oom_fix.into(),
            oom_logged,
        ));
    }
    let recycles = app(RECYCLE);
    if !recycles.is_empty() {
        return Some((
            "gunicorn recycled the worker (--max-requests) while nginx was sending it requests",
            "Add --max-requests-jitter so workers do not recycle together, raise --max-requests, and keep nginx's upstream keepalive_timeout shorter than the backend's.".into(),
            recycles,
        ));
    }
    let killed = app(KILLED);
    (!killed.is_empty()).then(|| {
        (
            "a worker was killed with SIGKILL",
            "Find who sends SIGKILL (the OOM killer: `dmesg`; a supervisor's stop timeout), and make the workers survive it.".into(),
            killed,
        )
    })
}

/// OOM kills of this backend inside the window.
fn oom_kills<'a>(ctx: &Ctx<'a>, backend: Option<&Backend>) -> Vec<&'a OomKill> {
    let Some(kills) = ctx.input.evidence.kernel.oom_kills.known() else {
        return Vec::new();
    };
    let since = ctx.window_start_ms();
    let cgroup = backend
        .and_then(|b| ctx.processes(b))
        .and_then(|p| p.cgroup.as_deref());
    // A unit's processes live in its own cgroup (`/system.slice/app.service`), even when
    // none runs any more to read it from.
    let unit_cgroup = match backend.map(|b| &b.source) {
        Some(crate::model::backend::Source::SystemdUnit { unit, .. }) => Some(format!("/{unit}")),
        _ => None,
    };
    kills
        .iter()
        .filter(|k| k.at_ms.is_some_and(|t| t >= since))
        .filter(|k| {
            let same_cgroup = k.memcg.as_deref().is_some_and(|m| {
                Some(m) == cgroup || unit_cgroup.as_deref().is_some_and(|u| m.ends_with(u))
            });
            let named = [format!("pid:{}", k.pid), format!("[{}]", k.pid)];
            let logged = !ctx
                .app_lines(backend, &[named[0].as_str(), named[1].as_str()])
                .is_empty();
            same_cgroup || logged
        })
        .collect()
}
