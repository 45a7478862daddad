//! `graceful_timeout_below_read_timeout`: on a restart or deploy the backend gets less time to
//! finish in-flight requests than nginx is prepared to wait for them. gunicorn's arbiter
//! SIGKILLs workers still busy after `--graceful-timeout` (default 30 s); uvicorn cancels
//! requests after `--timeout-graceful-shutdown` (by default it waits); systemd SIGKILLs the
//! whole service after `TimeoutStopSec=` (default 90 s), supervisord after `stopwaitsecs=`
//! (default 10 s). A request slower than the shortest of these, but within nginx's
//! `proxy_read_timeout`, is cut off: `upstream prematurely closed connection while reading
//! response header from upstream`, and the client gets 502 on every deploy.

use std::time::Duration;

use crate::diagnose::check::{CheckInput, Notes, Rule};
use crate::diagnose::finding::{Finding, Fix, Severity};
use crate::model::backend::{Backend, Knob, Server, Source};
use crate::model::nginx::{Location, format_time};

use super::{backend_position, describe, group_of, longest_read_timeout, with_flag};

pub const RULE: Rule = Rule {
    kind: "graceful_timeout_below_read_timeout",
    severity: Severity::Warning,
    title: "a restart kills requests nginx would still wait for",
    why: "The backend (or its supervisor) kills in-flight requests after its graceful timeout; \
          one slower than that but within proxy_read_timeout ends as a 502 on every deploy.",
    check,
};

/// One limit on how long a stopping backend may keep serving.
struct Limit {
    after: Duration,
    /// "gunicorn --graceful-timeout 30s", for evidence.
    what: String,
    /// The change that raises it to `to`.
    raise: fn(&Backend, Duration) -> String,
}

fn check(input: &CheckInput<'_>, notes: &mut Notes) -> Vec<Finding> {
    let worst = longest_read_timeout(input, |_, _| true);
    let mut out = Vec::new();
    for (b, loc) in worst {
        if let Some(u) = b.unknown(Knob::GracefulTimeout) {
            let why = format!("its graceful timeout is unknown ({})", u.why);
            notes.skipped(RULE.kind, describe(b), why);
            continue;
        }
        let read = loc.proxy.read_timeout.value;
        let Some(limit) = limits(b).into_iter().min_by_key(|l| l.after) else {
            continue;
        };
        if limit.after >= read {
            continue;
        }
        out.push(finding(input, b, loc, &limit));
    }
    out
}

fn finding(input: &CheckInput<'_>, b: &Backend, loc: &Location<'_>, limit: &Limit) -> Finding {
    let read = &loc.proxy.read_timeout;
    let to = read.value + Duration::from_secs(5);
    Finding {
        kind: RULE.kind,
        severity: RULE.severity,
        message: format!(
            "{} is killed {} after a restart begins but nginx waits {} for a response: slower requests in flight during a deploy get 502",
            describe(b),
            format_time(limit.after),
            format_time(read.value)
        ),
        location: backend_position(b).or_else(|| Some(input.position(read.from.unwrap_or(loc.at)))),
        upstream: group_of(loc),
        evidence: vec![
            limit.what.clone(),
            format!(
                "location {}: proxy_read_timeout {} ({})",
                loc.matcher,
                format_time(read.value),
                read.from
                    .map(|d| input.where_(d))
                    .unwrap_or_else(|| "nginx's default".into())
            ),
        ],
        fix: Fix::instruction(format!(
            "Give in-flight requests at least proxy_read_timeout to finish: {}",
            (limit.raise)(b, to)
        )),
    }
}

/// Every limit that applies to `b`, server's and supervisor's.
fn limits(b: &Backend) -> Vec<Limit> {
    let mut out = Vec::new();
    match (&b.server, b.graceful_timeout) {
        (Server::Gunicorn { .. }, Some(t)) => out.push(Limit {
            after: t,
            what: format!("gunicorn --graceful-timeout {} (default 30s): then its arbiter SIGKILLs busy workers", format_time(t)),
            raise: |b, to| with_flag(&b.argv, &["--graceful-timeout"], &to.as_secs().to_string()),
        }),
        (Server::Uvicorn, Some(t)) => out.push(Limit {
            after: t,
            what: format!("uvicorn --timeout-graceful-shutdown {}: then it cancels running requests", format_time(t)),
            raise: |b, to| with_flag(&b.argv, &["--timeout-graceful-shutdown"], &to.as_secs().to_string()),
        }),
        _ => {}
    }
    let Some(stop) = b.supervision.stop_timeout else {
        return out;
    };
    let default = if b.supervision.stop_timeout_explicit {
        ""
    } else {
        " (its default)"
    };
    match &b.source {
        Source::SystemdUnit { unit, .. } => out.push(Limit {
            after: stop,
            what: format!(
                "{unit}: TimeoutStopSec={}{default}: then systemd SIGKILLs the service",
                format_time(stop)
            ),
            raise: |b, to| match &b.source {
                Source::SystemdUnit { unit, .. } => format!(
                    "`TimeoutStopSec={}s` in [Service] of {unit}",
                    to.as_secs() + 5
                ),
                _ => String::new(),
            },
        }),
        Source::Supervisord { program, .. } => out.push(Limit {
            after: stop,
            what: format!(
                "[program:{program}] stopwaitsecs={}{default}: then supervisord SIGKILLs it",
                stop.as_secs()
            ),
            raise: |b, to| match &b.source {
                Source::Supervisord { program, .. } => {
                    format!("`stopwaitsecs={}` in [program:{program}]", to.as_secs() + 5)
                }
                _ => String::new(),
            },
        }),
        Source::Flag { .. } | Source::Process { .. } => {}
    }
    out
}
