//! `reflex diagnose`: pure rules over live evidence and a window of nginx's logs, naming the
//! cause of 502/504s. Each rule reads a [`Ctx`] and returns [`Diagnosis`]es with a confidence,
//! the evidence behind them (actual log lines and facts), the fix, and whether restarting the
//! backend would help. [`run`] ranks them, most likely first.
//!
//! Causes that share an error-log line (KNOWLEDGE.md §1) are told apart by the other evidence:
//! sockets, process states, unit and program state, probes, application logs.

mod ctx;
mod rules;

use serde::Serialize;

pub use ctx::{Ctx, LiveInput};

/// One named cause.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnosis {
    pub kind: &'static str,
    /// 0..1: how sure the evidence makes us.
    pub confidence: f64,
    pub upstream: Option<String>,
    pub message: String,
    pub evidence: Vec<String>,
    pub fix: String,
    /// Whether restarting the backend would help: `reflex watch` restarts only when it does.
    pub restart_helps: bool,
}

/// A diagnosis rule.
pub struct LiveRule {
    pub kind: &'static str,
    pub check: fn(&Ctx<'_>) -> Vec<Diagnosis>,
}

/// Every rule. Order breaks confidence ties: more specific causes first.
pub const RULES: &[&LiveRule] = &[
    &rules::unix_socket_permission_denied::RULE,
    &rules::upstream_address_mismatch::RULE,
    &rules::address_family_mismatch::RULE,
    &rules::backend_crash_loop::RULE,
    &rules::backend_down::RULE,
    &rules::backend_hung::RULE,
    &rules::listen_backlog_full::RULE,
    &rules::worker_killed::RULE,
    &rules::upstream_protocol_mismatch::RULE,
    &rules::keepalive_race::RULE,
    &rules::upstream_header_too_big::RULE,
    &rules::upstream_read_timeout::RULE,
    &rules::backend_concurrency_limit::RULE,
    &rules::application_error_status::RULE,
    &rules::client_closed_request::RULE,
];

/// Runs every rule and ranks the diagnoses: most confident first, rule order on ties.
pub fn run(input: &LiveInput<'_>) -> Vec<Diagnosis> {
    let ctx = Ctx::new(input);
    let mut out: Vec<(usize, Diagnosis)> = Vec::new();
    for (i, rule) in RULES.iter().enumerate() {
        for mut d in (rule.check)(&ctx) {
            if input.offline {
                // Without live facts the same log lines fit more causes.
                d.confidence *= 0.8;
            }
            d.confidence = (d.confidence * 100.0).round() / 100.0;
            out.push((i, d));
        }
    }
    out.sort_by(|(ra, a), (rb, b)| b.confidence.total_cmp(&a.confidence).then(ra.cmp(rb)));
    out.into_iter().map(|(_, d)| d).collect()
}

#[cfg(test)]
mod tests;
