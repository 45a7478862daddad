//! `unix_socket_not_accessible`: nginx's worker user cannot connect to an upstream unix
//! socket. Connecting needs search (`x`) permission on every directory of the path and write
//! (`w`) permission on the socket itself; otherwise `connect() to unix:… failed (13:
//! Permission denied)` at `crit` and every request gets 502.
//!
//! Checked on the filesystem when the path exists. Otherwise predicted from the backend that
//! will create it (`socket_prediction`). Under `--no-discover` the filesystem and the user
//! database are the target machine's: only the prediction runs, by user and group names.

use std::path::Path;

use crate::diagnose::check::{CheckInput, Notes, Rule};
use crate::diagnose::finding::{Finding, Fix, Severity};
use crate::model::host::PathComponent;
use crate::model::nginx::Addr;

use super::describe;
use super::socket_prediction::{Ids, predict};

pub const RULE: Rule = Rule {
    kind: "unix_socket_not_accessible",
    severity: Severity::Error,
    title: "nginx's worker user cannot connect to the upstream unix socket",
    why: "Connecting to a unix socket needs `x` on every directory of its path and `w` on the \
          socket; without them nginx logs `(13: Permission denied)` at crit and answers 502.",
    check,
};

/// The identity nginx's workers run with.
struct Worker {
    name: String,
    group: String,
    uid: u32,
    gids: Vec<u32>,
}

fn check(input: &CheckInput<'_>, notes: &mut Notes) -> Vec<Finding> {
    let ids = Ids::new(input);
    let Some(worker) = worker(input, &ids) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for t in input.nginx.targets() {
        let Addr::Unix(path) = &t.addr else { continue };
        if !seen.insert(path.clone()) {
            continue;
        }
        let (components, predicted) = match input.host.paths.get(path) {
            Some(f) if f.exists => (f.components.clone(), None),
            _ => {
                match predict(input, &ids, path) {
                    Ok((c, b)) => (c, Some(b)),
                    Err(why) => {
                        if ids.offline() {
                            notes.skipped(RULE.kind, path.display(), format!("the filesystem is the target machine's (--no-discover) and {why}"));
                        }
                        continue;
                    }
                }
            }
        };
        let Some(problem) = first_denial(&components, &worker) else {
            continue;
        };
        let mut evidence = vec![format!(
            "nginx workers run as {}:{} ({}) ({})",
            worker.name,
            worker.group,
            if ids.offline() {
                "supplementary groups not looked up: --no-discover".to_string()
            } else {
                format!(
                    "uid {}, groups {}",
                    worker.uid,
                    worker
                        .gids
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                )
            },
            input
                .nginx
                .user
                .from
                .map(|d| input.where_(d))
                .unwrap_or_else(|| "nginx's default user".into())
        )];
        if let Some(b) = predicted {
            evidence.push(format!(
                "{} does not exist yet; as {} will create it:",
                path.display(),
                describe(b)
            ));
        }
        for c in &components {
            evidence.push(format!(
                "{} {} {}",
                c.mode_string(),
                ids.owner(c),
                c.path.display()
            ));
        }
        let (what, fix) = explain(input, &problem, &worker, path);
        evidence.push(what.clone());
        out.push(Finding {
            kind: RULE.kind,
            severity: RULE.severity,
            message: format!(
                "nginx (user {}) cannot connect to {}: {what}",
                worker.name,
                path.display()
            ),
            location: Some(input.position(t.at)),
            upstream: Some(t.group()),
            evidence,
            fix: Fix::instruction(fix),
        });
    }
    out
}

fn worker(input: &CheckInput<'_>, ids: &Ids<'_>) -> Option<Worker> {
    let (name, group) = input.nginx.worker_identity();
    let uid = ids.uid(&name)?;
    let mut gids = ids.groups(&name)?;
    // nginx calls initgroups(user, gid) with the configured group: supplementary groups of the
    // user plus that group.
    if let Some(gid) = ids.gid(&group).or_else(|| ids.primary_gid(&name))
        && !gids.contains(&gid)
    {
        gids.push(gid);
    }
    Some(Worker {
        name,
        group,
        uid,
        gids,
    })
}

/// What stops the worker: the first component without the permission it needs.
struct Denial {
    component: PathComponent,
    is_socket: bool,
}

fn first_denial(components: &[PathComponent], w: &Worker) -> Option<Denial> {
    if w.uid == 0 {
        return None;
    }
    let last = components.len().checked_sub(1)?;
    for (i, c) in components.iter().enumerate() {
        let is_socket = i == last && !c.is_dir;
        let need = if is_socket { 0o2 } else { 0o1 };
        let bits = if c.uid == w.uid {
            (c.mode >> 6) & 7
        } else if w.gids.contains(&c.gid) {
            (c.mode >> 3) & 7
        } else {
            c.mode & 7
        };
        if bits & need == 0 {
            return Some(Denial {
                component: c.clone(),
                is_socket,
            });
        }
    }
    None
}

fn explain(input: &CheckInput<'_>, d: &Denial, w: &Worker, socket: &Path) -> (String, String) {
    let c = &d.component;
    // Never advise joining root's group: that grants far more than one socket.
    let group = input
        .host
        .groups
        .iter()
        .find(|(_, g)| **g == Some(c.gid) && c.gid != 0)
        .map(|(n, _)| n.clone());
    let join = group
        .map(|g| {
            format!(
                "add {} to group {g} (`usermod -aG {g} {}`, then restart nginx)",
                w.name, w.name
            )
        })
        .unwrap_or_else(|| format!("give it to a group {} is in (`chgrp`)", w.name));
    if d.is_socket {
        (
            format!(
                "the socket is {} and {} may not write to it",
                c.mode_string(),
                w.name
            ),
            format!(
                "Make the socket writable by {}: {join} and make it group-writable, or `chmod 666 {}`. \
                 uvicorn keeps the mode of a stale socket file across restarts: delete it before starting; \
                 gunicorn uses `--umask` (0o007 with `--group` of a shared group).",
                w.name,
                socket.display()
            ),
        )
    } else {
        (
            format!(
                "directory {} is {} and {} may not traverse it",
                c.path.display(),
                c.mode_string(),
                w.name
            ),
            format!(
                "Let {} traverse {}: {join}, or `chmod o+x {}` (systemd: RuntimeDirectoryMode=0755).",
                w.name,
                c.path.display(),
                c.path.display()
            ),
        )
    }
}
