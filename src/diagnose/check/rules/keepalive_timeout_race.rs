//! `upstream_keepalive_timeout_race`: nginx keeps idle upstream connections open at least as
//! long as the backend does. When the backend closes an idle connection just as nginx reuses it,
//! the request fails: `upstream prematurely closed connection` or `recv() failed (104:
//! Connection reset by peer)`. GETs are retried (and leave `$upstream_status "502, 200"`), POSTs
//! reach the client as 502. nginx's maintainers: the upstream `keepalive_timeout` exists to be
//! set *shorter* than the backend's.

use std::time::Duration;

use crate::diagnose::check::edit::{append_to_block, replace_directive};
use crate::diagnose::check::matching::backends_for;
use crate::diagnose::check::{CheckInput, Notes, Rule};
use crate::diagnose::finding::{Finding, Fix, Severity};
use crate::model::backend::{Backend, Knob, Server};
use crate::model::nginx::format_time;

use super::{describe, with_flag};

pub const RULE: Rule = Rule {
    kind: "upstream_keepalive_timeout_race",
    severity: Severity::Warning,
    title: "nginx's upstream keepalive_timeout is not shorter than the backend's keep-alive",
    why: "The backend closes idle connections first; a request nginx sends on one at that \
          moment fails with 502 (`upstream prematurely closed` / `104: Connection reset`).",
    check,
};

fn check(input: &CheckInput<'_>, notes: &mut Notes) -> Vec<Finding> {
    let mut out = Vec::new();
    for u in &input.nginx.upstreams {
        if u.keepalive.is_none()
            || !input
                .nginx
                .locations_to(&u.name)
                .any(|l| l.proxy.keepalive_capable())
        {
            continue;
        }
        let mut backends: Vec<&Backend> = Vec::new();
        for s in &u.servers {
            for b in backends_for(&s.addr, input.backends, input.host) {
                // Never compare against a default that may not apply.
                if let Some(unknown) = [Knob::KeepAlive, Knob::WorkerClass]
                    .iter()
                    .find_map(|k| b.unknown(*k))
                {
                    let what = format!("upstream `{}` against {}", u.name, describe(b));
                    let why = format!(
                        "its {} is unknown ({})",
                        unknown.knob.describe(),
                        unknown.why
                    );
                    notes.skipped(RULE.kind, what, why);
                    continue;
                }
                if b.supports_keepalive() && !backends.iter().any(|x| std::ptr::eq(*x, b)) {
                    backends.push(b);
                }
            }
        }
        let nginx_timeout = u.keepalive_timeout.value;
        let Some(shortest) = backends
            .iter()
            .filter(|b| nginx_timeout >= b.keepalive)
            .min_by_key(|b| b.keepalive)
        else {
            continue;
        };
        let target = safe_timeout(shortest.keepalive);
        let line = format!("keepalive_timeout {};", format_time(target));
        let edit = match u.keepalive_timeout.from {
            Some(d) => Some(replace_directive(d, &line)),
            None => append_to_block(input.tree, u.at, std::slice::from_ref(&line)),
        };
        let nginx_where = match u.keepalive_timeout.from {
            Some(d) => input.where_(d),
            None => "nginx's default".into(),
        };
        let mut evidence = vec![format!(
            "upstream `{}`: keepalive {} ({}), keepalive_timeout {} ({nginx_where})",
            u.name,
            u.keepalive.as_ref().map(|k| k.value).unwrap_or(0),
            u.keepalive
                .as_ref()
                .and_then(|k| k.from)
                .map(|d| input.where_(d))
                .unwrap_or_default(),
            format_time(nginx_timeout),
        )];
        for b in &backends {
            evidence.push(format!(
                "{} closes idle connections after {}{}",
                describe(b),
                format_time(b.keepalive),
                if b.keepalive_explicit {
                    ""
                } else {
                    " (its default)"
                }
            ));
        }
        let raise = raise_backend(shortest, nginx_timeout);
        let summary = format!(
            "Make nginx close idle upstream connections first: `{line}` in upstream `{}`. Or raise the backend's: {raise}",
            u.name
        );
        out.push(Finding {
            kind: RULE.kind,
            severity: RULE.severity,
            message: format!(
                "upstream `{}` keeps idle connections for {} but {} closes them after {}: requests on a closing connection get 502",
                u.name,
                format_time(nginx_timeout),
                describe(shortest),
                format_time(shortest.keepalive)
            ),
            location: Some(input.position(u.keepalive_timeout.from.unwrap_or(u.at))),
            upstream: Some(u.name.clone()),
            evidence,
            fix: match edit {
                Some(e) => Fix::edits(summary, vec![e], true),
                None => Fix::instruction(summary),
            },
        });
    }
    out
}

/// An nginx timeout safely below the backend's: a second less, or half when that is under 2 s.
fn safe_timeout(backend: Duration) -> Duration {
    if backend >= Duration::from_secs(2) {
        backend - Duration::from_secs(1)
    } else {
        backend / 2
    }
}

/// The backend's command line with a keep-alive longer than nginx's.
fn raise_backend(b: &Backend, nginx: Duration) -> String {
    let secs = (nginx.as_secs() + 15).to_string();
    match b.server {
        Server::Uvicorn => with_flag(&b.argv, &["--timeout-keep-alive"], &secs),
        Server::Gunicorn { .. } => with_flag(&b.argv, &["--keep-alive"], &secs),
    }
}
