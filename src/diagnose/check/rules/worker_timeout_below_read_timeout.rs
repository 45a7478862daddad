//! `worker_timeout_below_read_timeout`: gunicorn's `--timeout` (how long a worker may stay
//! silent before the master kills it with SIGABRT) is shorter than nginx's `proxy_read_timeout`.
//! A slow request then ends with the worker killed mid-response: `upstream prematurely closed
//! connection`, a 502, and every other request on that worker lost too, instead of nginx's
//! clean 504 for the slow one alone. With UvicornWorker the timeout fires when the event loop
//! is blocked (a sync call inside `async def`), which is exactly the slow-request case.

use crate::diagnose::check::{CheckInput, Notes, Rule};
use crate::diagnose::finding::{Finding, Fix, Severity};
use crate::model::backend::{Knob, Server};
use crate::model::nginx::format_time;

use super::{describe, group_of, longest_read_timeout, with_flag};

pub const RULE: Rule = Rule {
    kind: "worker_timeout_below_read_timeout",
    severity: Severity::Warning,
    title: "gunicorn --timeout is shorter than nginx's proxy_read_timeout",
    why: "gunicorn kills a worker that is silent for --timeout; a request slower than that ends \
          as a 502 from the killed worker instead of nginx's 504.",
    check,
};

fn check(input: &CheckInput<'_>, notes: &mut Notes) -> Vec<Finding> {
    // One finding per backend, at the location with the longest read timeout.
    let worst = longest_read_timeout(input, |b, loc| {
        if !matches!(b.server, Server::Gunicorn { .. }) {
            return false;
        }
        if let Some(u) = b.unknown(Knob::Timeout) {
            let why = format!("its --timeout is unknown ({})", u.why);
            notes.skipped(RULE.kind, describe(b), why);
            return false;
        }
        // `--timeout 0` (None) disables the arbiter's check: nothing is killed.
        b.worker_timeout
            .filter(|t| !t.is_zero())
            .is_some_and(|timeout| timeout < loc.proxy.read_timeout.value)
    });
    worst
        .into_iter()
        .map(|(b, loc)| {
            let read = &loc.proxy.read_timeout;
            let timeout = b.worker_timeout.unwrap_or_default();
            let new = (read.value.as_secs() + 5).to_string();
            Finding {
                kind: RULE.kind,
                severity: RULE.severity,
                message: format!(
                    "{} kills workers silent for {} but nginx waits {} for a response: slow requests end as 502 instead of 504",
                    describe(b),
                    format_time(timeout),
                    format_time(read.value)
                ),
                location: Some(input.position(read.from.unwrap_or(loc.at))),
                upstream: group_of(loc),
                evidence: vec![
                    format!("{} --timeout {}", describe(b), format_time(timeout)),
                    format!(
                        "location {}: proxy_read_timeout {} ({})",
                        loc.matcher,
                        format_time(read.value),
                        read.from.map(|d| input.where_(d)).unwrap_or_else(|| "nginx's default".into())
                    ),
                ],
                fix: Fix::instruction(format!(
                    "Give gunicorn a longer timeout than nginx's proxy_read_timeout: {}",
                    with_flag(&b.argv, &["--timeout", "-t"], &new)
                )),
            }
        })
        .collect()
}
