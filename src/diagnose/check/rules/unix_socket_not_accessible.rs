//! `unix_socket_not_accessible`: nginx's worker user cannot connect to an upstream unix
//! socket. Connecting needs search (`x`) permission on every directory of the path and write
//! (`w`) permission on the socket itself; otherwise `connect() to unix:… failed (13:
//! Permission denied)` at `crit` and every request gets 502.
//!
//! Checked on the filesystem when the path exists. Otherwise predicted from the backend that
//! will create it: uvicorn chmods a fresh socket to 0666, gunicorn creates it with
//! `0777 & ~umask` (its own `--umask`, default 0) and chowns it to its user; systemd creates
//! `RuntimeDirectory=` with `RuntimeDirectoryMode=` (default 0755) owned by `User=`/`Group=`.

use std::path::{Path, PathBuf};

use crate::diagnose::check::matching::absolute;
use crate::diagnose::check::{CheckInput, Rule};
use crate::diagnose::finding::{Finding, Fix, Severity};
use crate::model::backend::{Backend, Bind, Server};
use crate::model::host::{PathComponent, UserFacts};
use crate::model::nginx::Addr;

use super::describe;

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

fn check(input: &CheckInput<'_>) -> Vec<Finding> {
    let Some(worker) = worker(input) else {
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
            _ => match predict(input, path) {
                Some((c, b)) => (c, Some(b)),
                None => continue,
            },
        };
        let Some(problem) = first_denial(&components, &worker) else {
            continue;
        };
        let mut evidence = vec![format!(
            "nginx workers run as {}:{} (uid {}, groups {}) ({})",
            worker.name,
            worker.group,
            worker.uid,
            worker
                .gids
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(","),
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
                input.host.owner(c),
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

fn worker(input: &CheckInput<'_>) -> Option<Worker> {
    let (name, group) = input.nginx.worker_identity();
    let user: &UserFacts = input.host.user(&name)?;
    let mut gids = user.groups.clone();
    // nginx calls initgroups(user, gid) with the configured group: supplementary groups of the
    // user plus that group.
    let gid = input.host.group(&group).unwrap_or(user.gid);
    if !gids.contains(&gid) {
        gids.push(gid);
    }
    Some(Worker {
        name,
        group,
        uid: user.uid,
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

/// The components of `path` as the backend that binds it will leave them.
fn predict<'b>(input: &CheckInput<'b>, path: &Path) -> Option<(Vec<PathComponent>, &'b Backend)> {
    let backend = input.backends.iter().find(|b| {
        b.binds.iter().any(|x| matches!(x, Bind::Unix { path: p } if absolute(p, b.working_directory.as_deref()) == path))
    })?;
    let user = backend
        .run_as
        .user
        .as_deref()
        .and_then(|u| input.host.user(u));
    let uid = user.map(|u| u.uid).unwrap_or(0);
    let gid = backend
        .run_as
        .group
        .as_deref()
        .and_then(|g| input.host.group(g))
        .or(user.map(|u| u.gid))
        .unwrap_or(0);
    let known = input
        .host
        .paths
        .get(path)
        .map(|f| f.components.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut cur = PathBuf::from("/");
    let parent = path.parent()?;
    for (i, part) in parent.components().enumerate() {
        if i > 0 {
            cur.push(part);
        }
        if let Some(c) = known.iter().find(|c| c.path == cur) {
            out.push(c.clone());
        } else if backend
            .run_as
            .runtime_directories
            .iter()
            .any(|r| cur.starts_with(r))
        {
            let mode = backend.run_as.runtime_directory_mode.unwrap_or(0o755);
            out.push(PathComponent {
                path: cur.clone(),
                mode,
                uid,
                gid,
                is_dir: true,
                is_socket: false,
            });
        } else {
            // A directory nobody creates: the backend itself would fail to bind.
            return None;
        }
    }
    let mode = match &backend.server {
        Server::Uvicorn => 0o666,
        Server::Gunicorn { .. } => 0o777 & !backend.run_as.umask.unwrap_or(0),
    };
    out.push(PathComponent {
        path: path.to_path_buf(),
        mode,
        uid,
        gid,
        is_dir: false,
        is_socket: true,
    });
    Some((out, backend))
}
