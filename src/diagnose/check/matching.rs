//! Which backend serves which address nginx connects to. Pure: host names are looked up in the
//! gathered [`HostFacts`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::model::backend::{Backend, Bind};
use crate::model::host::HostFacts;
use crate::model::nginx::Addr;

/// A concrete place nginx connects to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "{a}"),
        }
    }
}

/// The endpoints nginx will use for `addr`: every address the name resolves to, as nginx
/// resolves names in `server`/`proxy_pass` at start-up. `Err` when the name did not resolve.
pub fn endpoints(addr: &Addr, host: &HostFacts) -> Result<Vec<Endpoint>, String> {
    match addr {
        Addr::Unix(p) => Ok(vec![Endpoint::Unix(p.clone())]),
        Addr::Host { host: name, port } => {
            if let Ok(ip) = name.parse::<IpAddr>() {
                return Ok(vec![Endpoint::Tcp(SocketAddr::new(ip, *port))]);
            }
            match host.resolved.get(name) {
                Some(Ok(ips)) => Ok(ips
                    .iter()
                    .map(|ip| Endpoint::Tcp(SocketAddr::new(*ip, *port)))
                    .collect()),
                Some(Err(e)) => Err(e.clone()),
                None => Err(format!("`{name}` was not resolved")),
            }
        }
    }
}

/// Whether `bind` (of a backend working in `wd`) accepts connections to `ep`.
pub fn bind_serves(bind: &Bind, wd: Option<&Path>, ep: &Endpoint, host: &HostFacts) -> bool {
    match (bind, ep) {
        (Bind::Unix { path }, Endpoint::Unix(target)) => &absolute(path, wd) == target,
        (Bind::Tcp { host: bhost, port }, Endpoint::Tcp(sa)) => {
            *port == sa.port()
                && bind_ips(bhost, host)
                    .iter()
                    .any(|ip| ip_accepts(*ip, sa.ip()))
        }
        _ => false,
    }
}

/// Socket paths relative to the backend's working directory, made absolute.
pub fn absolute(path: &Path, wd: Option<&Path>) -> PathBuf {
    match wd {
        Some(wd) if path.is_relative() => wd.join(path),
        _ => path.to_path_buf(),
    }
}

/// The addresses a TCP bind host means. uvicorn and gunicorn bind a host name with AF_INET
/// (AF_INET6 only for literals containing `:`), so `localhost` is 127.0.0.1 only.
fn bind_ips(bhost: &str, host: &HostFacts) -> Vec<IpAddr> {
    if let Ok(ip) = bhost
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return vec![ip];
    }
    if bhost.is_empty() {
        return vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)];
    }
    if bhost == "localhost" {
        return vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    }
    match host.resolved.get(bhost) {
        Some(Ok(ips)) => ips
            .iter()
            .copied()
            .filter(IpAddr::is_ipv4)
            .take(1)
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether a socket bound to `bound` accepts connections to `to`. `0.0.0.0` takes every IPv4
/// address; `::` takes every IPv6 address and, with Linux's default `bindv6only=0`, IPv4 too.
fn ip_accepts(bound: IpAddr, to: IpAddr) -> bool {
    match bound {
        IpAddr::V4(b) if b.is_unspecified() => to.is_ipv4(),
        IpAddr::V6(b) if b.is_unspecified() => true,
        _ => bound == to,
    }
}

/// The backends that serve `ep`.
pub fn served_by<'b>(ep: &Endpoint, backends: &'b [Backend], host: &HostFacts) -> Vec<&'b Backend> {
    backends
        .iter()
        .filter(|b| {
            b.binds
                .iter()
                .any(|bind| bind_serves(bind, b.working_directory.as_deref(), ep, host))
        })
        .collect()
}

/// The backends that serve `addr` on at least one of its endpoints.
pub fn backends_for<'b>(
    addr: &Addr,
    backends: &'b [Backend],
    host: &HostFacts,
) -> Vec<&'b Backend> {
    let mut out: Vec<&Backend> = Vec::new();
    for ep in endpoints(addr, host).unwrap_or_default() {
        for b in served_by(&ep, backends, host) {
            if !out.iter().any(|x| std::ptr::eq(*x, b)) {
                out.push(b);
            }
        }
    }
    out
}

/// Whether some backend listens on an inherited fd, whose address is unknown statically.
pub fn any_fd_bind(backends: &[Backend]) -> bool {
    backends
        .iter()
        .any(|b| b.binds.iter().any(|x| matches!(x, Bind::Fd { .. })))
}
