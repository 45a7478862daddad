//! `backend_reload_in_production`: a systemd unit or supervisord program starts the backend
//! with `--reload`. Every change under the watched directory (a deploy copying files, a log or
//! upload written there) restarts the app. Checked with uvicorn 0.54 and gunicorn 27: the
//! listening socket survives a reload (uvicorn's reloader process holds it), so a clean reload
//! does not refuse connections; but an edit that does not import (half-copied files, a syntax
//! error) leaves nothing accepting: requests queue in the backlog until nginx's
//! `proxy_read_timeout` (504), or, with gunicorn, the arbiter halts ("Worker failed to boot")
//! and connections are refused (111, 502). Each reload also drops idle keep-alive connections
//! nginx may be reusing, and the file watcher costs CPU all the time.

use crate::diagnose::check::{CheckInput, Notes, Rule};
use crate::diagnose::finding::{Finding, Fix, Severity};
use crate::model::backend::Source;

use super::{backend_position, describe};

pub const RULE: Rule = Rule {
    kind: "backend_reload_in_production",
    severity: Severity::Warning,
    title: "a supervised backend runs with --reload",
    why: "--reload restarts the app on every file change; an edit that does not import leaves \
          nothing serving (504, or 502 with gunicorn) until the next change.",
    check,
};

fn check(input: &CheckInput<'_>, _notes: &mut Notes) -> Vec<Finding> {
    input
        .backends
        .iter()
        .filter(|b| b.reload)
        .filter_map(|b| {
            let under = match &b.source {
                Source::SystemdUnit { unit, .. } => format!("systemd unit {unit}"),
                Source::Supervisord { program, .. } => format!("supervisord program {program}"),
                // A developer's own process or command line: --reload is what it is for.
                Source::Flag { .. } | Source::Process { .. } => return None,
            };
            Some(Finding {
                kind: RULE.kind,
                severity: RULE.severity,
                message: format!(
                    "{} runs with --reload under {under}: every file change restarts it, and one that does not import takes the site down",
                    describe(b)
                ),
                location: backend_position(b),
                upstream: None,
                evidence: vec![format!("{}: {}", describe(b), b.argv.join(" "))],
                fix: Fix::instruction(
                    "Remove --reload (and --reload-dir/--reload-include) from the production command line; restart the service to deploy.",
                ),
            })
        })
        .collect()
}
