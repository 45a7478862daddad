//! Facts about the host that rules need: name resolution, filesystem permissions along socket
//! paths, users and groups, kernel limits. Gathered by `crate::gather::host`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;

/// One component of a path, from `/` down to the file itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathComponent {
    pub path: PathBuf,
    /// Permission bits (`0o7777`) and the file type.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub is_dir: bool,
    pub is_socket: bool,
}

impl PathComponent {
    /// `drwxr-x---` / `srw-------`.
    pub fn mode_string(&self) -> String {
        let t = if self.is_dir {
            'd'
        } else if self.is_socket {
            's'
        } else {
            '-'
        };
        let mut s = String::from(t);
        for shift in [6, 3, 0] {
            let b = (self.mode >> shift) & 7;
            s.push(if b & 4 != 0 { 'r' } else { '-' });
            s.push(if b & 2 != 0 { 'w' } else { '-' });
            s.push(if b & 1 != 0 { 'x' } else { '-' });
        }
        s
    }
}

/// What is known of a unix socket path on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathFacts {
    /// Existing components from `/` down; shorter than the path when a component is missing.
    pub components: Vec<PathComponent>,
    /// Whether the whole path exists.
    pub exists: bool,
    /// Why it could not be examined (e.g. permission denied on a parent), if so.
    pub error: Option<String>,
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserFacts {
    pub name: String,
    pub uid: u32,
    /// Primary group.
    pub gid: u32,
    /// Every group the user is in, the primary one included.
    pub groups: Vec<u32>,
}

/// Host facts for one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostFacts {
    /// `net.core.somaxconn` in this network namespace.
    pub somaxconn: Option<u32>,
    /// Each host name nginx connects to, resolved as nginx does at start-up (every address).
    pub resolved: BTreeMap<String, Result<Vec<IpAddr>, String>>,
    /// Each unix socket path nginx connects to or a backend binds.
    pub paths: BTreeMap<PathBuf, PathFacts>,
    /// Users by name (`None`: no such user).
    pub users: BTreeMap<String, Option<UserFacts>>,
    /// Groups by name (`None`: no such group).
    pub groups: BTreeMap<String, Option<u32>>,
    /// What listens on this host right now (TCP addresses and unix socket paths), gathered only
    /// when the backends were discovered on this host rather than given: then a target that
    /// something (not a known backend) serves is not a mismatch.
    pub listening: Option<Listening>,
    /// Facts about this host were deliberately not gathered (`--no-discover`: the
    /// configuration is checked for another machine, e.g. in CI). Names are not resolved,
    /// sysctls and paths not read, users and groups not looked up; rules that need them say
    /// so in a note.
    pub offline: bool,
}

/// Listening sockets, from `/proc/net/{tcp,tcp6,unix}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Listening {
    pub tcp: Vec<std::net::SocketAddr>,
    pub unix: Vec<PathBuf>,
}

impl HostFacts {
    pub fn user(&self, name: &str) -> Option<&UserFacts> {
        self.users.get(name).and_then(Option::as_ref)
    }

    pub fn group(&self, name: &str) -> Option<u32> {
        self.groups.get(name).copied().flatten()
    }

    /// `user:group` of a path component, by name where known, else by number.
    pub fn owner(&self, c: &PathComponent) -> String {
        let user = self
            .users
            .values()
            .flatten()
            .find(|u| u.uid == c.uid)
            .map(|u| u.name.clone())
            .unwrap_or_else(|| c.uid.to_string());
        let group = self
            .groups
            .iter()
            .find(|(_, g)| **g == Some(c.gid))
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| c.gid.to_string());
        format!("{user}:{group}")
    }
}
