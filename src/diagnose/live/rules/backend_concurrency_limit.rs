//! `backend_concurrency_limit`: uvicorn's `--limit-concurrency` answers 503 (`Exceeded
//! concurrency limit.` in its log) once too many connections are open. Not a 502, and not a
//! crash: the limit or the capacity is wrong.
//!
//! uvicorn's default log lines carry no time, so an `Exceeded concurrency limit.` may be days
//! old: such a line counts only with 503s from the backend in the window's access log.

use crate::diagnose::live::{Ctx, Diagnosis, LiveRule};

pub const RULE: LiveRule = LiveRule {
    kind: "backend_concurrency_limit",
    reads: &[],
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<Diagnosis> {
    let lines = ctx.app_lines(None, &["Exceeded concurrency limit"]);
    let rejected: Vec<_> = ctx
        .requests()
        .iter()
        .filter(|r| r.status == 503 && r.attempts.last().is_some_and(|a| a.status == Some(503)))
        .collect();
    if lines.is_empty() && rejected.is_empty() {
        return Vec::new();
    }
    let limited = ctx
        .input
        .backends
        .iter()
        .find(|b| b.limit_concurrency.is_some());
    if lines.is_empty() && limited.is_none() {
        return Vec::new();
    }
    let timed = lines.iter().any(|l| l.at_ms.is_some());
    if rejected.is_empty() && !timed {
        return Vec::new(); // an undated line alone may be from any day
    }
    let mut evidence: Vec<String> = lines
        .iter()
        .take(3)
        .map(|l| format!("app log: {}", l.text))
        .collect();
    if let Some(r) = rejected.first() {
        evidence.push(format!(
            "{} requests got 503 from the backend, e.g. {}",
            rejected.len(),
            r.line
        ));
    }
    if let Some(b) = limited {
        evidence.push(format!(
            "backend `{}` runs with --limit-concurrency {}",
            b.name,
            b.limit_concurrency.unwrap_or(0)
        ));
    }
    vec![Diagnosis {
        kind: RULE.kind,
        confidence: match (lines.is_empty(), timed) {
            (true, _) => 0.7,
            (false, true) => 0.95,
            (false, false) => 0.85,
        },
        upstream: rejected.first().and_then(|r| r.attempts.last()).map(|a| ctx.group(&a.addr)),
        message: "the backend rejects requests over its --limit-concurrency with 503".into(),
        evidence,
        fix: "Raise --limit-concurrency (it counts open connections, keep-alive ones included) or add workers; use nginx's limit_conn to shed load before the backend.".into(),
        restart_helps: false,
    }]
}
