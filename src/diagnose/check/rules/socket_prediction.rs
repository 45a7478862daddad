//! Shared by `unix_socket_not_accessible`: who is who (users and groups, looked up on this host,
//! or by name alone under `--no-discover`), and the permissions a unix socket path will have
//! once the backend that binds it has started.
//!
//! uvicorn chmods a fresh socket to 0666; gunicorn creates it with `0777 & ~umask` (its own
//! `--umask`, default 0) and chowns it to its user; systemd creates `RuntimeDirectory=` with
//! `RuntimeDirectoryMode=` (default 0755) owned by `User=`/`Group=`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::diagnose::check::CheckInput;
use crate::diagnose::check::matching::absolute;
use crate::model::backend::{Backend, Bind, Knob, Server};
use crate::model::host::PathComponent;

/// Synthetic ids for names under `--no-discover` start here, far from real ones.
const SYNTHETIC: u32 = 1 << 30;

/// Users and groups by name: this host's (NSS), or, when host facts were not gathered, names
/// standing for themselves (same name, same id; `root` is 0).
pub struct Ids<'a> {
    input: &'a CheckInput<'a>,
    names: BTreeMap<String, u32>,
}

impl<'a> Ids<'a> {
    pub fn new(input: &'a CheckInput<'a>) -> Self {
        let mut names = BTreeMap::new();
        if input.host.offline {
            let (user, group) = input.nginx.worker_identity();
            let mut all = vec![user, group];
            for b in input.backends {
                all.extend(b.run_as.user.clone());
                all.extend(b.run_as.group.clone());
            }
            for n in all {
                let next = SYNTHETIC + names.len() as u32;
                let id = if n == "root" { 0 } else { next };
                names.entry(n).or_insert(id);
            }
        }
        Ids { input, names }
    }

    pub fn offline(&self) -> bool {
        self.input.host.offline
    }

    pub fn uid(&self, user: &str) -> Option<u32> {
        match self.offline() {
            true => self.names.get(user).copied(),
            false => self.input.host.user(user).map(|u| u.uid),
        }
    }

    pub fn gid(&self, group: &str) -> Option<u32> {
        match self.offline() {
            true => self.names.get(group).copied(),
            false => self.input.host.group(group),
        }
    }

    /// A user's groups: every group on this host; by name alone, only its own.
    pub fn groups(&self, user: &str) -> Option<Vec<u32>> {
        match self.offline() {
            true => Some(self.gid(user).into_iter().collect()),
            false => self.input.host.user(user).map(|u| u.groups.clone()),
        }
    }

    /// A user's primary group (by name alone: the group named like the user).
    pub fn primary_gid(&self, user: &str) -> Option<u32> {
        match self.offline() {
            true => self.gid(user),
            false => self.input.host.user(user).map(|u| u.gid),
        }
    }

    /// `user:group` of a path component, by name where known, else by number.
    pub fn owner(&self, c: &PathComponent) -> String {
        if !self.offline() {
            return self.input.host.owner(c);
        }
        let name = |id: u32| {
            self.names
                .iter()
                .find(|(_, v)| **v == id)
                .map_or_else(|| id.to_string(), |(n, _)| n.clone())
        };
        format!("{}:{}", name(c.uid), name(c.gid))
    }
}

/// Directories every Linux system has, as they are there: what a path is checked against when
/// the target machine's filesystem is not here (`--no-discover`).
fn standard_dir(path: &Path) -> Option<PathComponent> {
    let mode = match path.to_str()? {
        "/" | "/run" | "/var" | "/var/run" | "/var/lib" | "/srv" | "/opt" | "/home" => 0o755,
        "/tmp" | "/var/tmp" => 0o1777,
        _ => return None,
    };
    Some(PathComponent {
        path: path.to_path_buf(),
        mode,
        uid: 0,
        gid: 0,
        is_dir: true,
        is_socket: false,
    })
}

/// The components of `path` as the backend that binds it will leave them, with that backend.
/// `Err(why)` when no prediction can be made (no backend binds it, a setting that decides it
/// is unknown, a directory nobody creates).
pub fn predict<'b>(
    input: &CheckInput<'b>,
    ids: &Ids<'_>,
    path: &Path,
) -> Result<(Vec<PathComponent>, &'b Backend), String> {
    let backend = input
        .backends
        .iter()
        .find(|b| {
            b.binds.iter().any(|x| {
                matches!(x, Bind::Unix { path: p } if absolute(p, b.working_directory.as_deref()) == path)
            })
        })
        .ok_or("no known backend binds it")?;
    for knob in [Knob::User, Knob::Group, Knob::Umask] {
        if let Some(u) = backend.unknown(knob) {
            return Err(format!(
                "the backend's {} is unknown ({})",
                knob.describe(),
                u.why
            ));
        }
    }
    let user = backend.run_as.user.as_deref();
    // No `User=`: the service runs as root.
    let uid = user
        .map_or(Some(0), |u| ids.uid(u))
        .ok_or("its user does not exist here")?;
    let gid = match (&backend.run_as.group, user) {
        (Some(g), _) => ids.gid(g),
        (None, Some(u)) => ids.primary_gid(u),
        (None, None) => Some(0),
    }
    .ok_or("its group does not exist here")?;
    let known = input
        .host
        .paths
        .get(path)
        .map(|f| f.components.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut cur = PathBuf::from("/");
    let parent = path.parent().ok_or("it has no directory")?;
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
            out.push(dir(&cur, mode, uid, gid));
        } else if let Some(c) = standard_dir(&cur).filter(|_| ids.offline()) {
            out.push(c);
        } else {
            // A directory nobody creates: the backend itself would fail to bind (or, offline,
            // one only the target machine has).
            return Err(format!("{} is not known here", cur.display()));
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
    Ok((out, backend))
}

fn dir(path: &Path, mode: u32, uid: u32, gid: u32) -> PathComponent {
    PathComponent {
        path: path.to_path_buf(),
        mode,
        uid,
        gid,
        is_dir: true,
        is_socket: false,
    }
}
