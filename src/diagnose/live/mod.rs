//! `reflex diagnose`: pure rules over live evidence and a window of nginx's logs, naming the
//! cause of 502/504s. Each rule reads a [`Ctx`] and returns [`Diagnosis`]es with a confidence,
//! the evidence behind them (actual log lines and facts), the fix, and whether restarting the
//! backend would help. [`run`] ranks them, most likely first.
//!
//! Causes that share an error-log line (KNOWLEDGE.md §1) are told apart by the other evidence:
//! sockets, process states, unit and program state, probes, application logs.

mod ctx;
mod routes;
mod rules;

use std::collections::BTreeSet;

use serde::Serialize;

use crate::model::logs::UpstreamError;

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
    /// The error classes this rule explains when it names a cause for an upstream: those lines
    /// are then accounted for, and `unexplained_upstream_errors` leaves them out.
    pub reads: &'static [UpstreamError],
    pub check: fn(&Ctx<'_>) -> Vec<Diagnosis>,
}

/// A rule that runs after the others, knowing what they explained: the group-level and
/// catch-all findings. Whatever it names accounts for every error of its upstream.
pub struct FallbackRule {
    pub kind: &'static str,
    pub check: fn(&Ctx<'_>, &Explained) -> Vec<Diagnosis>,
}

/// What the findings so far account for.
#[derive(Debug, Default)]
pub struct Explained {
    /// (upstream as filed in `Diagnosis::upstream`, class).
    pairs: BTreeSet<(String, UpstreamError)>,
    /// Upstreams named by a catch-all finding: every class of theirs is accounted for.
    groups: BTreeSet<String>,
    /// How many findings there are in all.
    pub findings: usize,
}

impl Explained {
    /// Whether a finding accounts for `class` failures on the upstream filed as `group`.
    pub fn covers(&self, group: &str, class: UpstreamError) -> bool {
        self.groups.contains(group) || self.pairs.contains(&(group.to_string(), class))
    }

    /// Whether any finding concerns the upstream filed as `group`.
    pub fn names(&self, group: &str) -> bool {
        self.groups.contains(group) || self.pairs.iter().any(|(g, _)| g == group)
    }

    /// Whether some finding accounts for `class` on any upstream.
    pub fn covers_class(&self, class: UpstreamError) -> bool {
        self.pairs.iter().any(|(_, c)| *c == class)
    }

    fn add(&mut self, d: &Diagnosis, reads: Option<&[UpstreamError]>) {
        self.findings += 1;
        let Some(group) = &d.upstream else { return };
        match reads {
            Some(classes) => {
                for c in classes {
                    self.pairs.insert((group.clone(), *c));
                }
            }
            None => {
                self.groups.insert(group.clone());
            }
        }
    }
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
    &rules::upstream_tls_certificate::RULE,
    &rules::keepalive_race::RULE,
    &rules::upstream_header_too_big::RULE,
    &rules::upstream_read_timeout::RULE,
    &rules::nginx_worker_limits::RULE,
    &rules::nginx_temp_file_unwritable::RULE,
    &rules::backend_concurrency_limit::RULE,
    &rules::application_error_status::RULE,
    &rules::client_closed_request::RULE,
];

/// The rules that run last, in order, each seeing what the ones before explained. They rank
/// below every cause the rules above name.
pub const FALLBACKS: &[&FallbackRule] = &[
    &rules::no_live_upstreams::RULE,
    &rules::unexplained_upstream_errors::RULE,
    &rules::unexplained_5xx::RULE,
];

/// Runs every rule and ranks the diagnoses: most confident first, rule order on ties; then the
/// fallbacks, which never outrank a named cause.
pub fn run(input: &LiveInput<'_>) -> Vec<Diagnosis> {
    let ctx = Ctx::new(input);
    let mut out: Vec<(usize, Diagnosis)> = Vec::new();
    let mut explained = Explained::default();
    for (i, rule) in RULES.iter().enumerate() {
        for d in (rule.check)(&ctx) {
            explained.add(&d, Some(rule.reads));
            out.push((i, settle(d, input.offline)));
        }
    }
    out.sort_by(|(ra, a), (rb, b)| b.confidence.total_cmp(&a.confidence).then(ra.cmp(rb)));
    let mut ranked: Vec<Diagnosis> = out.into_iter().map(|(_, d)| d).collect();
    for rule in FALLBACKS {
        for d in (rule.check)(&ctx, &explained) {
            explained.add(&d, None);
            ranked.push(settle(d, input.offline));
        }
    }
    ranked
}

/// Offline confidence and rounding.
fn settle(mut d: Diagnosis, offline: bool) -> Diagnosis {
    if offline {
        // Without live facts the same log lines fit more causes.
        d.confidence *= 0.8;
    }
    d.confidence = (d.confidence * 100.0).round() / 100.0;
    d
}

#[cfg(test)]
mod tests;
