//! The rules, one per file. Each file exports `pub const RULE: Rule`.

pub mod address_mismatch;
pub mod backend_no_restart;
pub mod backend_reload_in_production;
pub mod backlog_above_somaxconn;
pub mod graceful_timeout_below_read_timeout;
pub mod keepalive_ineffective;
pub mod keepalive_timeout_race;
pub mod localhost_dual_stack;
pub mod proxy_headers_missing;
pub mod proxy_pass_dynamic;
pub mod proxy_pass_no_resolver;
pub mod scheme_mismatch;
mod socket_prediction;
pub mod unix_socket_not_accessible;
pub mod unix_socket_private_tmp;
pub mod upstream_all_servers_down;
pub mod upstream_host_unresolvable;
pub mod worker_timeout_below_read_timeout;

use crate::diagnose::check::CheckInput;
use crate::diagnose::check::matching::backends_for;
use crate::diagnose::finding::Position;
use crate::model::backend::{Backend, Source};
use crate::model::nginx::{Location, ProxyPass, Target};

/// The backends behind a location's `proxy_pass`: those serving any member of its upstream
/// group, or its direct address.
pub fn backends_behind<'b>(input: &CheckInput<'b>, location: &Location<'_>) -> Vec<&'b Backend> {
    let Some(ProxyPass { target, .. }) = &location.proxy_pass else {
        return Vec::new();
    };
    let mut out: Vec<&Backend> = Vec::new();
    let mut add = |found: Vec<&'b Backend>| {
        for b in found {
            if !out.iter().any(|x| std::ptr::eq(*x, b)) {
                out.push(b);
            }
        }
    };
    match target {
        Target::Upstream(name) => {
            if let Some(u) = input.nginx.upstream(name) {
                for s in &u.servers {
                    add(backends_for(&s.addr, input.backends, input.host));
                }
            }
        }
        Target::Direct(addr) => add(backends_for(addr, input.backends, input.host)),
        Target::Variable => {}
    }
    out
}

/// One entry per backend behind some location (in order of first appearance), at the
/// location with the longest `proxy_read_timeout` (the first such on ties). Only the pairs
/// `keep` accepts count.
pub fn longest_read_timeout<'b>(
    input: &CheckInput<'b>,
    mut keep: impl FnMut(&Backend, &Location<'_>) -> bool,
) -> Vec<(&'b Backend, &'b Location<'b>)> {
    let mut worst: Vec<(&'b Backend, &'b Location<'b>)> = Vec::new();
    for loc in &input.nginx.locations {
        for b in backends_behind(input, loc) {
            if !keep(b, loc) {
                continue;
            }
            match worst.iter_mut().find(|(x, _)| std::ptr::eq(*x, b)) {
                Some(e) if e.1.proxy.read_timeout.value < loc.proxy.read_timeout.value => e.1 = loc,
                Some(_) => {}
                None => worst.push((b, loc)),
            }
        }
    }
    worst
}

/// Where a backend's settings come from, as a position when it is a file.
pub fn backend_position(b: &Backend) -> Option<Position> {
    match &b.source {
        Source::SystemdUnit { path, line, .. } | Source::Supervisord { path, line, .. } => {
            Some(Position {
                file: path.clone(),
                line: *line,
            })
        }
        Source::Flag { .. } | Source::Process { .. } => None,
    }
}

/// "uvicorn `--backend #1` (uvicorn main:app --uds /run/app.sock)".
pub fn describe(b: &Backend) -> String {
    let server = match &b.server {
        crate::model::backend::Server::Uvicorn => "uvicorn".to_string(),
        crate::model::backend::Server::Gunicorn { worker_class } => {
            format!("gunicorn ({worker_class})")
        }
    };
    format!("{server} `{}`", b.name)
}

/// The group name findings about a location are filed under.
pub fn group_of(location: &Location<'_>) -> Option<String> {
    location.proxy_pass.as_ref().map(|p| match &p.target {
        Target::Upstream(name) => name.clone(),
        _ => p.authority.clone(),
    })
}

/// A command line with `flag VALUE` set (replacing an existing `flag VALUE` / `flag=VALUE`).
pub fn with_flag(argv: &[String], flags: &[&str], value: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    let mut replaced = false;
    while i < argv.len() {
        let a = &argv[i];
        if flags.contains(&a.as_str()) {
            out.push(a.clone());
            out.push(value.to_string());
            i += 2;
            replaced = true;
            continue;
        }
        if let Some(f) = flags.iter().find(|f| a.starts_with(&format!("{f}="))) {
            out.push(format!("{f}={value}"));
            replaced = true;
        } else {
            out.push(a.clone());
        }
        i += 1;
    }
    if !replaced {
        out.push(flags[0].to_string());
        out.push(value.to_string());
    }
    shlex::try_join(out.iter().map(String::as_str)).unwrap_or_else(|_| out.join(" "))
}
