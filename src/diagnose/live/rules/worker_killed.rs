//! `worker_killed`: a worker died mid-request and nginx saw the connection close or reset:
//! gunicorn's `--timeout` (`[CRITICAL] WORKER TIMEOUT`, `was sent SIGABRT`), a `--max-requests`
//! recycle, or the kernel's OOM killer. Restarting does not prevent the next one.

use crate::diagnose::live::{Ctx, Diagnosis, LiveRule};
use crate::model::logs::UpstreamError as E;

pub const RULE: LiveRule = LiveRule {
    kind: "worker_killed",
    check,
};

const TIMEOUT: &[&str] = &[
    "WORKER TIMEOUT",
    "was sent SIGABRT",
    "was sent SIGKILL",
    "was sent code 134",
];
const RECYCLE: &[&str] = &[
    "Autorestarting worker after current request",
    "Max requests, shutting down",
];

fn check(ctx: &Ctx<'_>) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for (addr, events) in ctx.errors_of(&[E::PrematurelyClosed, E::ResetByPeer]) {
        let backend = ctx.backend_for(addr);
        let mut evidence = Ctx::samples(&events);
        let timeouts = ctx.app_lines(backend, TIMEOUT);
        let recycles = ctx.app_lines(backend, RECYCLE);
        let ooms: Vec<_> = ctx
            .input
            .evidence
            .kernel
            .oom_kills
            .known()
            .map(|k| {
                k.iter()
                    .filter(|o| {
                        o.comm.contains("python")
                            || o.comm.contains("uvicorn")
                            || o.comm.contains("gunicorn")
                    })
                    .collect()
            })
            .unwrap_or_default();
        let (why, fix, lines): (&str, String, Vec<String>) = if !timeouts.is_empty() {
            let t = backend
                .and_then(|b| b.worker_timeout)
                .map(|t| format!(" ({}s)", t.as_secs()))
                .unwrap_or_default();
            (
                "gunicorn killed the worker for exceeding --timeout",
                format!(
                    "Raise gunicorn's --timeout{t} above proxy_read_timeout, and move slow or blocking work out of the request."
                ),
                timeouts
                    .iter()
                    .take(3)
                    .map(|l| format!("app log: {}", l.text))
                    .collect(),
            )
        } else if !ooms.is_empty() {
            (
                "the kernel's OOM killer killed a worker",
                "Find the memory growth (per-request allocations, caches), lower --workers, or give the service more memory.".into(),
                ooms.iter().take(3).map(|o| format!("kernel: {}", o.line)).collect(),
            )
        } else if !recycles.is_empty() {
            (
                "gunicorn recycled the worker (--max-requests)",
                "Add --max-requests-jitter so workers do not recycle together, and keep nginx's upstream keepalive_timeout shorter than the backend's.".into(),
                recycles.iter().take(3).map(|l| format!("app log: {}", l.text)).collect(),
            )
        } else {
            continue;
        };
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
