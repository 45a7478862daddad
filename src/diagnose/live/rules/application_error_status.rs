//! `application_error_status`: the application itself answered 5xx: `$upstream_status` is the
//! same 5xx as `$status`, a response header arrived (`$upstream_header_time` set), and nginx's
//! error log has nothing for it. Not a proxy problem; the app's own log has the traceback.

use std::collections::BTreeMap;

use crate::diagnose::live::{Ctx, Diagnosis, LiveRule};

pub const RULE: LiveRule = LiveRule {
    kind: "application_error_status",
    reads: &[],
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<Diagnosis> {
    let mut by_addr: BTreeMap<&str, Vec<&crate::model::logs::AccessEvent>> = BTreeMap::new();
    for r in ctx.requests() {
        let Some(last) = r.attempts.last() else {
            continue;
        };
        if r.status >= 500
            && r.status != 503
            && last.status == Some(r.status)
            && last.header_ms.is_some()
            && ctx.error_count(&last.addr) == 0
        {
            by_addr.entry(last.addr.as_str()).or_default().push(r);
        }
    }
    by_addr
        .into_iter()
        .map(|(addr, reqs)| {
            let mut evidence: Vec<String> = reqs.iter().take(3).map(|r| format!("access.log: {}", r.line)).collect();
            evidence.push(format!("{} responses with $upstream_status = $status and a response header; no error-log line", reqs.len()));
            let tracebacks = ctx.app_lines(ctx.backend_for(addr), &["Traceback", "Exception", "ERROR"]);
            for l in tracebacks.iter().rev().take(2) {
                evidence.push(format!("app log: {}", l.text));
            }
            let mut statuses: Vec<u16> = reqs.iter().map(|r| r.status).collect();
            statuses.sort_unstable();
            statuses.dedup();
            Diagnosis {
                kind: RULE.kind,
                confidence: 0.9,
                upstream: Some(ctx.group(addr)),
                message: format!(
                    "the application at {addr} itself answered {}: not a proxy failure",
                    statuses.iter().map(u16::to_string).collect::<Vec<_>>().join("/")
                ),
                evidence,
                fix: "Look at the application's log for these requests; nginx and the connection are fine.".into(),
                restart_helps: false,
            }
        })
        .collect()
}
