//! `proxy_headers_missing`: `Host`, `X-Forwarded-For` or `X-Forwarded-Proto` are not passed to
//! the backend. nginx sends `Host: $proxy_host` (the upstream's name) by default, so the app
//! builds URLs and redirects for the wrong host, `TrustedHostMiddleware` rejects requests, and
//! without X-Forwarded-Proto `https` sites redirect to `http` (redirect loops).
//!
//! Only for locations that proxy to a backend we know (a uvicorn/gunicorn on this host): a
//! remote target (S3, another company's API) usually needs `Host: $proxy_host`, and setting
//! `Host $host` there would break it.

use crate::diagnose::check::edit::append_to_block;
use crate::diagnose::check::{CheckInput, Notes, Rule};
use crate::diagnose::finding::{Finding, Fix, Severity};
use crate::model::nginx::Target;

use super::{backends_behind, group_of};

pub const RULE: Rule = Rule {
    kind: "proxy_headers_missing",
    severity: Severity::Warning,
    title: "Host / X-Forwarded-For / X-Forwarded-Proto not passed to the backend",
    why: "Without them the app sees the upstream's name as Host, nginx's address as the client, \
          and http as the scheme: wrong redirects and URLs, rejected hosts, redirect loops.",
    check,
};

/// The headers a FastAPI app behind nginx needs, with the values nginx should send.
const NEEDED: &[(&str, &str)] = &[
    ("Host", "$host"),
    ("X-Forwarded-For", "$proxy_add_x_forwarded_for"),
    ("X-Forwarded-Proto", "$scheme"),
];

fn check(input: &CheckInput<'_>, _notes: &mut Notes) -> Vec<Finding> {
    let mut out = Vec::new();
    // Locations that share a level's header list share one finding.
    let mut seen: Vec<(usize, usize)> = Vec::new();
    for loc in &input.nginx.locations {
        let Some(pp) = &loc.proxy_pass else { continue };
        if pp.target == Target::Variable || backends_behind(input, loc).is_empty() {
            continue;
        }
        let headers = &loc.proxy.headers;
        let missing: Vec<&(&str, &str)> = NEEDED
            .iter()
            .filter(|(name, _)| match headers.get(name) {
                None | Some("") => true,
                Some(v) => name.eq_ignore_ascii_case("host") && v == "$proxy_host",
            })
            .collect();
        if missing.is_empty() {
            continue;
        }
        let level = headers.level.unwrap_or(loc.at);
        let key = (level.file, level.directive.start);
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let lines: Vec<String> = missing
            .iter()
            .map(|(n, v)| format!("proxy_set_header {n} {v};"))
            .collect();
        let names: Vec<&str> = missing.iter().map(|(n, _)| *n).collect();
        let mut evidence = vec![match headers.level {
            Some(l) => format!(
                "the proxy_set_header list in effect is the one at {}",
                input.where_(l)
            ),
            None => {
                "no proxy_set_header anywhere: nginx sends `Host: $proxy_host` and no X-Forwarded-*"
                    .into()
            }
        }];
        evidence.push(format!("missing: {}", names.join(", ")));
        let summary = format!(
            "Add {} where the location's headers are defined.",
            lines.join(" ")
        );
        out.push(Finding {
            kind: RULE.kind,
            severity: RULE.severity,
            message: format!(
                "location {} does not pass {} to the backend",
                loc.matcher,
                names.join(", ")
            ),
            location: Some(input.position(pp.at)),
            upstream: group_of(loc),
            evidence,
            fix: match append_to_block(input.tree, level, &lines) {
                Some(e) => Fix::edits(summary, vec![e], true),
                None => Fix::instruction(summary),
            },
        });
    }
    out
}
