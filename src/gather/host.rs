//! Host facts the rules need: `net.core.somaxconn`, name resolution as nginx does it,
//! permissions along every unix socket path, and the users and groups involved.

use std::collections::BTreeSet;
use std::net::{IpAddr, ToSocketAddrs};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Group, Uid, User};

use crate::diagnose::check::matching::absolute;
use crate::model::backend::{Backend, Bind};
use crate::model::host::{HostFacts, Listening, PathComponent, PathFacts, UserFacts};
use crate::model::nginx::{Addr, NginxModel};

/// Gathers the facts about this host that the configuration and backends refer to.
pub fn collect(nginx: &NginxModel<'_>, backends: &[Backend]) -> HostFacts {
    let mut facts = HostFacts {
        somaxconn: read_somaxconn(Path::new("/proc/sys/net/core/somaxconn")),
        ..Default::default()
    };
    let mut names = BTreeSet::new();
    let mut paths = BTreeSet::new();
    for t in nginx.targets() {
        match t.addr {
            Addr::Host { host, .. } if host.parse::<IpAddr>().is_err() => {
                names.insert(host);
            }
            Addr::Unix(p) => {
                paths.insert(p);
            }
            Addr::Host { .. } => {}
        }
    }
    for b in backends {
        for bind in &b.binds {
            match bind {
                Bind::Tcp { host, .. }
                    if !host.is_empty()
                        && host.trim_matches(['[', ']']).parse::<IpAddr>().is_err() =>
                {
                    names.insert(host.clone());
                }
                Bind::Unix { path } => {
                    paths.insert(absolute(path, b.working_directory.as_deref()));
                }
                _ => {}
            }
        }
    }
    for name in names {
        let r = resolve(&name);
        facts.resolved.insert(name, r);
    }
    let (user, group) = nginx.worker_identity();
    add_user(&mut facts, &user);
    add_group(&mut facts, &group);
    for b in backends {
        if let Some(u) = &b.run_as.user {
            add_user(&mut facts, u);
        }
        if let Some(g) = &b.run_as.group {
            add_group(&mut facts, g);
        }
    }
    for p in paths {
        let f = path_facts(&p);
        for c in &f.components {
            add_uid(&mut facts, c.uid);
            add_gid(&mut facts, c.gid);
        }
        facts.paths.insert(p, f);
    }
    facts
}

/// Reads `net.core.somaxconn` (per network namespace).
pub fn read_somaxconn(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Every address `name` resolves to, in getaddrinfo's order, as nginx resolves upstream names
/// at start-up (`ngx_inet_resolve_host`).
pub fn resolve(name: &str) -> Result<Vec<IpAddr>, String> {
    let addrs = (name, 0u16).to_socket_addrs().map_err(|e| e.to_string())?;
    let mut out: Vec<IpAddr> = Vec::new();
    for a in addrs {
        if !out.contains(&a.ip()) {
            out.push(a.ip());
        }
    }
    if out.is_empty() {
        Err("no address".into())
    } else {
        Ok(out)
    }
}

/// Each component of `path` from `/` down, as far as it exists and can be examined.
pub fn path_facts(path: &Path) -> PathFacts {
    let mut facts = PathFacts {
        components: Vec::new(),
        exists: false,
        error: None,
    };
    let mut cur = PathBuf::new();
    for part in path.components() {
        cur.push(part);
        match std::fs::metadata(&cur) {
            Ok(m) => facts.components.push(PathComponent {
                path: cur.clone(),
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                is_dir: m.is_dir(),
                is_socket: m.file_type().is_socket(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return facts,
            Err(e) => {
                facts.error = Some(format!("{}: {e}", cur.display()));
                return facts;
            }
        }
    }
    facts.exists = true;
    facts
}

fn add_user(facts: &mut HostFacts, name: &str) {
    if facts.users.contains_key(name) {
        return;
    }
    let found = User::from_name(name).ok().flatten().map(|u| user_facts(&u));
    facts.users.insert(name.to_string(), found);
}

fn add_uid(facts: &mut HostFacts, uid: u32) {
    if facts.users.values().flatten().any(|u| u.uid == uid) {
        return;
    }
    if let Some(u) = User::from_uid(Uid::from_raw(uid)).ok().flatten() {
        facts.users.insert(u.name.clone(), Some(user_facts(&u)));
    }
}

fn user_facts(u: &User) -> UserFacts {
    let groups = nix::unistd::getgrouplist(
        &std::ffi::CString::new(u.name.as_str()).unwrap_or_default(),
        u.gid,
    )
    .map(|gs| gs.into_iter().map(Gid::as_raw).collect())
    .unwrap_or_else(|_| vec![u.gid.as_raw()]);
    UserFacts {
        name: u.name.clone(),
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
        groups,
    }
}

fn add_group(facts: &mut HostFacts, name: &str) {
    if facts.groups.contains_key(name) {
        return;
    }
    let gid = Group::from_name(name)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw());
    facts.groups.insert(name.to_string(), gid);
}

fn add_gid(facts: &mut HostFacts, gid: u32) {
    if facts.groups.values().any(|g| *g == Some(gid)) {
        return;
    }
    if let Some(g) = Group::from_gid(Gid::from_raw(gid)).ok().flatten() {
        facts.groups.insert(g.name, Some(gid));
    }
}

/// What listens on this host, from `/proc/net/{tcp,tcp6,unix}` (readable without privileges).
pub fn listening() -> Listening {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let mut tcp = parse_proc_net_tcp(&read("/proc/net/tcp"));
    tcp.extend(parse_proc_net_tcp(&read("/proc/net/tcp6")));
    Listening {
        tcp,
        unix: parse_proc_net_unix(&read("/proc/net/unix")),
    }
}

/// LISTEN sockets (`st` 0A) of `/proc/net/tcp` or `/proc/net/tcp6`. Addresses are hex in host
/// (little-endian) byte order, 32-bit word by word for IPv6.
pub fn parse_proc_net_tcp(text: &str) -> Vec<std::net::SocketAddr> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let mut fields = line.split_whitespace();
        let (Some(_), Some(local), Some(_), Some(st)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if st != "0A" {
            continue;
        }
        let Some((addr, port)) = local.split_once(':') else {
            continue;
        };
        let Ok(port) = u16::from_str_radix(port, 16) else {
            continue;
        };
        let ip: Option<IpAddr> = match addr.len() {
            8 => u32::from_str_radix(addr, 16)
                .ok()
                .map(|w| IpAddr::from(w.to_le_bytes())),
            32 => {
                let mut bytes = [0u8; 16];
                let mut ok = true;
                for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                    match u32::from_str_radix(&addr[i * 8..i * 8 + 8], 16) {
                        Ok(w) => chunk.copy_from_slice(&w.to_le_bytes()),
                        Err(_) => ok = false,
                    }
                }
                ok.then(|| IpAddr::from(bytes))
            }
            _ => None,
        };
        if let Some(ip) = ip {
            out.push(std::net::SocketAddr::new(ip, port));
        }
    }
    out
}

/// Listening unix sockets with a path, from `/proc/net/unix` (flags `__SO_ACCEPTCON` 0x10000).
pub fn parse_proc_net_unix(text: &str) -> Vec<PathBuf> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let flags = u32::from_str_radix(f.get(3)?, 16).ok()?;
            let path = f.get(7)?;
            (flags & 0x10000 != 0 && path.starts_with('/')).then(|| PathBuf::from(path))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
                  0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n   \
                  1: 0100007F:1F41 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1\n";
        assert_eq!(
            parse_proc_net_tcp(v4),
            ["127.0.0.1:8000".parse().expect("addr")]
        );
        let v6 = "  sl  local_address                         remote_address  st\n   \
                  0: 00000000000000000000000001000000:1F40 00000000000000000000000000000000:0000 0A 0\n";
        assert_eq!(
            parse_proc_net_tcp(v6),
            ["[::1]:8000".parse().expect("addr")]
        );
    }

    #[test]
    fn proc_net_unix() {
        let t = "Num       RefCount Protocol Flags    Type St Inode Path\n\
                 0000000000000000: 00000002 00000000 00010000 0001 01 21614 /run/app.sock\n\
                 0000000000000000: 00000003 00000000 00000000 0001 03 21615 /run/app.sock\n\
                 0000000000000000: 00000002 00000000 00010000 0001 01 21616 @abstract\n";
        assert_eq!(parse_proc_net_unix(t), [PathBuf::from("/run/app.sock")]);
    }
}
