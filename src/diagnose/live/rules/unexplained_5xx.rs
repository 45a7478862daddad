//! `unexplained_5xx` (runs last): the access log has gateway errors (502, 503, 504) in the
//! window and nothing else explains them — typically the default `combined` format (no
//! `$upstream_*` fields) with an error log that has no matching line (another level, another
//! file, or not readable). The counts are the finding; the fix is to log what diagnosis needs.
//! Never "healthy" with gateway errors. A 500 alone is the application's own error: without
//! `$upstream_status` nothing ties it to the proxy (`application_error_status` reports it when
//! the fields are there).

use std::collections::BTreeMap;

use crate::diagnose::live::{Ctx, Diagnosis, Explained, FallbackRule};

pub const RULE: FallbackRule = FallbackRule {
    kind: "unexplained_5xx",
    check,
};

fn check(ctx: &Ctx<'_>, explained: &Explained) -> Vec<Diagnosis> {
    if explained.findings > 0 {
        return Vec::new();
    }
    let failed: Vec<_> = ctx
        .requests()
        .iter()
        .filter(|r| matches!(r.status, 502..=504))
        .collect();
    if failed.is_empty() {
        return Vec::new();
    }
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for r in &failed {
        *by_status.entry(r.status).or_default() += 1;
    }
    let counts: Vec<String> = by_status.iter().map(|(s, n)| format!("{s} ×{n}")).collect();
    let total = ctx.requests().len();
    let mut evidence = vec![format!(
        "{} of {total} requests in the window: {}",
        failed.len(),
        counts.join(", ")
    )];
    evidence.extend(
        failed
            .iter()
            .take(3)
            .map(|r| format!("access.log: {}", r.line)),
    );
    let logs = ctx.input.logs;
    if !logs.has_upstream_fields {
        evidence.push("the access log's format has no $upstream_addr/$upstream_status: which upstream failed, and whether nginx retried, is not logged (see evidence unavailable for the log_format to add)".into());
    }
    if logs.errors.is_empty() {
        evidence.push("the error log has no upstream error in the window: check it is read (evidence unavailable), and that `error_log` logs at level `error` or lower".into());
    }
    vec![Diagnosis {
        kind: RULE.kind,
        confidence: 0.4,
        upstream: None,
        message: format!(
            "{} requests failed with 5xx ({}) and nothing in the logs or the live evidence explains them",
            failed.len(),
            counts.join(", ")
        ),
        evidence,
        fix: "Log what diagnosis needs ($upstream_addr, $upstream_status, $upstream_connect_time, $upstream_header_time: the log_format in evidence unavailable), make sure the error log is readable and at level `error`, and run `reflex diagnose` again while it fails.".into(),
        restart_helps: false,
    }]
}
