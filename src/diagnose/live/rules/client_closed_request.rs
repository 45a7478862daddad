//! `client_closed_request`: 499s: clients gave up before the response (impatient clients, load
//! balancer timeouts shorter than the backend's latency). Not a backend fault by itself.
//!
//! A few 499s are normal on any public site (a browser tab closed, a mobile client losing its
//! network), so it takes at least [`MIN_COUNT`] of them making up at least [`MIN_SHARE`] of the
//! window's requests: Netdata's web-log alarms start at a few percent for the same reason.

use crate::diagnose::live::{Ctx, Diagnosis, LiveRule};

pub const RULE: LiveRule = LiveRule {
    kind: "client_closed_request",
    reads: &[],
    check,
};

/// At least this many 499s…
pub const MIN_COUNT: usize = 5;
/// …making up at least this share of the requests.
pub const MIN_SHARE: f64 = 0.01;

fn check(ctx: &Ctx<'_>) -> Vec<Diagnosis> {
    let closed: Vec<_> = ctx.requests().iter().filter(|r| r.status == 499).collect();
    let share = closed.len() as f64 / ctx.requests().len().max(1) as f64;
    if closed.len() < MIN_COUNT || share < MIN_SHARE {
        return Vec::new();
    }
    let mut times: Vec<u32> = closed.iter().filter_map(|r| r.request_ms).collect();
    times.sort_unstable();
    let median = times.get(times.len() / 2).copied();
    let mut evidence: Vec<String> = closed
        .iter()
        .take(3)
        .map(|r| format!("access.log: {}", r.line))
        .collect();
    if let Some(m) = median {
        evidence.push(format!(
            "{} requests closed by the client after a median {} ms",
            closed.len(),
            m
        ));
    }
    vec![Diagnosis {
        kind: RULE.kind,
        confidence: (0.4 + share).min(0.8),
        upstream: closed.first().and_then(|r| r.attempts.last()).map(|a| ctx.group(&a.addr)),
        message: format!("{} requests ended with 499: the client closed the connection before the response", closed.len()),
        evidence,
        fix: "Not a backend fault: compare the clients' (or the load balancer's) timeout with these requests' latency.".into(),
        restart_helps: false,
    }]
}
