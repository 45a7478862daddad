//! `backend_no_restart`: the supervisor will not restart the backend when it dies. systemd's
//! `Restart=` defaults to `no`; supervisord's `autorestart=false` turns its default
//! (`unexpected`) off. One crash (an OOM kill, an unhandled exception in startup after a
//! dependency blip) then stops the backend for good: nginx logs `connect() failed (111:
//! Connection refused)` (or `(2: No such file or directory)` for a unix socket) and every
//! request gets 502 until someone restarts it by hand.

use crate::diagnose::check::{CheckInput, Notes, Rule};
use crate::diagnose::finding::{Finding, Fix, Position, Severity};
use crate::model::backend::{Backend, Source};

use super::{backend_position, describe};

pub const RULE: Rule = Rule {
    kind: "backend_no_restart",
    severity: Severity::Warning,
    title: "the backend's supervisor does not restart it after a crash",
    why: "systemd's Restart= defaults to no (supervisord: autorestart=false): one crash leaves \
          nothing listening and every request gets 502 until a manual restart.",
    check,
};

fn check(input: &CheckInput<'_>, _notes: &mut Notes) -> Vec<Finding> {
    input.backends.iter().filter_map(finding).collect()
}

fn finding(b: &Backend) -> Option<Finding> {
    let restart = b.supervision.restart.as_ref();
    let (what, fix, line) = match &b.source {
        Source::SystemdUnit { unit, .. } => match restart {
            None => (
                format!("{unit} has no Restart= (systemd's default is `no`)"),
                format!("Add `Restart=always` and `RestartSec=1` to [Service] of {unit}."),
                None,
            ),
            Some((v, line)) if v == "no" => (
                format!("{unit} has Restart=no"),
                format!("Set `Restart=always` (or `on-failure`) and `RestartSec=1` in {unit}."),
                Some(*line),
            ),
            Some(_) => return None,
        },
        Source::Supervisord { program, .. } => match restart {
            Some((v, line)) if v.eq_ignore_ascii_case("false") => (
                format!("[program:{program}] has autorestart=false"),
                format!("Set `autorestart=true` in [program:{program}]."),
                Some(*line),
            ),
            _ => return None,
        },
        Source::Flag { .. } | Source::Process { .. } => return None,
    };
    let location = match (backend_position(b), line) {
        (Some(p), Some(line)) => Some(Position { line, ..p }),
        (p, _) => p,
    };
    Some(Finding {
        kind: RULE.kind,
        severity: RULE.severity,
        message: format!(
            "{}: {what}, so one crash means 502 until someone restarts it",
            describe(b)
        ),
        location,
        upstream: None,
        evidence: vec![what],
        fix: Fix::instruction(fix),
    })
}
