//! Which backend serves which address nginx connects to. Pure: host names are looked up in the
//! gathered [`HostFacts`].
//!
//! What a TCP bind accepts depends on how the server binds it, checked against uvicorn 0.54's
//! and gunicorn 27's sources and real runs:
//!
//! - uvicorn with one process (no `--workers` > 1, no `--reload`) hands the host to asyncio's
//!   `loop.create_server(host=…)`, which binds *every* address the host resolves to, one socket
//!   each, and sets `IPV6_V6ONLY` on the IPv6 ones: `--host ::` takes IPv6 only (127.0.0.1 is
//!   refused), `--host localhost` takes `::1` and `127.0.0.1` when /etc/hosts has both, and
//!   `--host ''` takes `0.0.0.0` and `::` separately.
//! - uvicorn with `--workers` > 1 or `--reload` binds one socket itself (config.py
//!   `bind_socket`): AF_INET6 when the host contains `:`, else AF_INET (a name resolves to its
//!   first IPv4 address), without `IPV6_V6ONLY`, so with Linux's default `bindv6only=0` `::`
//!   takes IPv4 too. gunicorn binds the same way (sock.py `TCP6Socket` for IPv6 literals,
//!   `TCPSocket` otherwise).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::model::backend::{Backend, Bind, Knob, Server};
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

/// One listening socket a TCP bind makes: its address, and whether it is IPv6-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Socket {
    pub ip: IpAddr,
    pub v6only: bool,
}

/// Whether uvicorn hands the host to asyncio (one process) rather than binding it itself.
/// `None` when the number of workers or `--reload` is unknown.
fn asyncio_binds(b: &Backend) -> Option<bool> {
    match b.server {
        Server::Gunicorn { .. } => Some(false),
        Server::Uvicorn if !b.is_known(Knob::Workers) || !b.is_known(Knob::Reload) => None,
        Server::Uvicorn => Some(b.workers <= 1 && !b.reload),
    }
}

/// The sockets a TCP bind host makes for backend `b`; `None` when that cannot be known here
/// (a name that was not resolved, an unknown worker count that decides the binding).
pub fn sockets(b: &Backend, bhost: &str, facts: &HostFacts) -> Option<Vec<Socket>> {
    let literal = literal(bhost);
    // Names and IPv6 addresses are where the two ways of binding differ.
    let differs = literal.is_none_or(|ip| ip.is_ipv6());
    if differs && asyncio_binds(b)? {
        let ips: Vec<IpAddr> = match (literal, bhost) {
            (Some(ip), _) => vec![ip],
            (None, "") => vec![Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into()],
            (None, name) => facts.resolved.get(name)?.as_ref().ok()?.clone(),
        };
        return Some(
            ips.into_iter()
                .map(|ip| Socket {
                    ip,
                    v6only: ip.is_ipv6(),
                })
                .collect(),
        );
    }
    one_socket(bhost, facts).map(|s| vec![s])
}

fn literal(bhost: &str) -> Option<IpAddr> {
    bhost
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok()
}

/// The one socket gunicorn, or uvicorn binding itself, makes: AF_INET6 for IPv6 literals,
/// AF_INET otherwise, never IPv6-only.
fn one_socket(bhost: &str, facts: &HostFacts) -> Option<Socket> {
    let ip = match (literal(bhost), bhost) {
        (Some(ip), _) => ip,
        (None, "") => Ipv4Addr::UNSPECIFIED.into(),
        // An AF_INET socket binds a name's first IPv4 address; `localhost` is 127.0.0.1
        // there on every system.
        (None, "localhost") => Ipv4Addr::LOCALHOST.into(),
        (None, name) => *facts
            .resolved
            .get(name)?
            .as_ref()
            .ok()?
            .iter()
            .find(|ip| ip.is_ipv4())?,
    };
    Some(Socket { ip, v6only: false })
}

/// Whether `bind` (of backend `b`) accepts connections to `ep`; `None` when that cannot be
/// known here.
pub fn bind_serves_for(b: &Backend, bind: &Bind, ep: &Endpoint, host: &HostFacts) -> Option<bool> {
    match (bind, ep) {
        (Bind::Unix { path }, Endpoint::Unix(target)) => {
            Some(&absolute(path, b.working_directory.as_deref()) == target)
        }
        (Bind::Tcp { host: bhost, port }, Endpoint::Tcp(sa)) => {
            if *port != sa.port() {
                return Some(false);
            }
            let socks = sockets(b, bhost, host)?;
            Some(socks.iter().any(|s| accepts(*s, sa.ip())))
        }
        (Bind::Fd { .. }, _) => None,
        _ => Some(false),
    }
}

/// Whether `bind` (of a backend working in `wd`) accepts connections to `ep`, taking the bind
/// as one socket (gunicorn's way, and uvicorn's with several workers). For callers that do not
/// know the backend; [`bind_serves_for`] knows how each server binds.
pub fn bind_serves(bind: &Bind, wd: Option<&Path>, ep: &Endpoint, host: &HostFacts) -> bool {
    match (bind, ep) {
        (Bind::Unix { path }, Endpoint::Unix(target)) => &absolute(path, wd) == target,
        (Bind::Tcp { host: bhost, port }, Endpoint::Tcp(sa)) => {
            *port == sa.port() && one_socket(bhost, host).is_some_and(|s| accepts(s, sa.ip()))
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

/// Whether a socket accepts connections to `to`. `0.0.0.0` takes every IPv4 address; `::`
/// takes every IPv6 address and, unless it is IPv6-only, IPv4 too (Linux's default
/// `bindv6only=0`).
pub fn accepts(s: Socket, to: IpAddr) -> bool {
    match s.ip {
        IpAddr::V4(b) if b.is_unspecified() => to.is_ipv4(),
        IpAddr::V6(b) if b.is_unspecified() => to.is_ipv6() || !s.v6only,
        _ => s.ip == to,
    }
}

/// Whether backend `b` serves `ep`: `Some(true)` surely, `Some(false)` surely not, `None`
/// when its address or how it binds is unknown.
pub fn serves(b: &Backend, ep: &Endpoint, host: &HostFacts) -> Option<bool> {
    let mut unknown = !b.is_known(Knob::Bind);
    for bind in &b.binds {
        match bind_serves_for(b, bind, ep, host) {
            Some(true) => return Some(true),
            Some(false) => {}
            None => unknown = true,
        }
    }
    (!unknown).then_some(false)
}

/// The backends that surely serve `ep`.
pub fn served_by<'b>(ep: &Endpoint, backends: &'b [Backend], host: &HostFacts) -> Vec<&'b Backend> {
    backends
        .iter()
        .filter(|b| serves(b, ep, host) == Some(true))
        .collect()
}

/// The backends that may serve `ep`: whose address or binding is unknown.
pub fn maybe_served_by<'b>(
    ep: &Endpoint,
    backends: &'b [Backend],
    host: &HostFacts,
) -> Vec<&'b Backend> {
    backends
        .iter()
        .filter(|b| serves(b, ep, host).is_none())
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

/// The address nginx should use to reach `bind` of backend `b`: 127.0.0.1 when the bind takes
/// it, else `[::1]` when it takes that, else the bound address itself. `None` when unknown.
pub fn nginx_address(b: &Backend, bind: &Bind, host: &HostFacts) -> Option<String> {
    match bind {
        Bind::Unix { path } => Some(format!(
            "unix:{}",
            absolute(path, b.working_directory.as_deref()).display()
        )),
        Bind::Tcp { host: bhost, port } => {
            let socks = sockets(b, bhost, host)?;
            let takes = |ip: IpAddr| socks.iter().any(|s| accepts(*s, ip));
            let ip = if takes(Ipv4Addr::LOCALHOST.into()) {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else if takes(Ipv6Addr::LOCALHOST.into()) {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            } else {
                socks.first()?.ip
            };
            Some(SocketAddr::new(ip, *port).to_string())
        }
        Bind::Fd { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::backend;

    fn uvicorn(host: &str, workers: u32) -> Backend {
        let mut b = backend(
            Server::Uvicorn,
            vec![Bind::Tcp {
                host: host.into(),
                port: 8000,
            }],
            5,
        );
        b.workers = workers;
        b
    }

    fn ep(s: &str) -> Endpoint {
        Endpoint::Tcp(s.parse().expect("addr"))
    }

    fn facts() -> HostFacts {
        let mut h = HostFacts::default();
        let both: Vec<IpAddr> = vec![Ipv6Addr::LOCALHOST.into(), Ipv4Addr::LOCALHOST.into()];
        h.resolved.insert("localhost".into(), Ok(both));
        h
    }

    #[test]
    fn uvicorn_one_process_binds_ipv6_only_for_dual_colon() {
        let h = facts();
        let single = uvicorn("::", 1);
        assert_eq!(serves(&single, &ep("127.0.0.1:8000"), &h), Some(false));
        assert_eq!(serves(&single, &ep("[::1]:8000"), &h), Some(true));
        let multi = uvicorn("::", 2);
        assert_eq!(serves(&multi, &ep("127.0.0.1:8000"), &h), Some(true));
        let mut reload = uvicorn("::", 1);
        reload.reload = true;
        assert_eq!(serves(&reload, &ep("127.0.0.1:8000"), &h), Some(true));
        assert_eq!(
            nginx_address(&single, &single.binds[0], &h).as_deref(),
            Some("[::1]:8000")
        );
        assert_eq!(
            nginx_address(&multi, &multi.binds[0], &h).as_deref(),
            Some("127.0.0.1:8000")
        );
    }

    #[test]
    fn uvicorn_one_process_binds_every_address_of_a_name() {
        let h = facts();
        let single = uvicorn("localhost", 1);
        assert_eq!(serves(&single, &ep("[::1]:8000"), &h), Some(true));
        assert_eq!(serves(&single, &ep("127.0.0.1:8000"), &h), Some(true));
        // Several workers, or gunicorn: AF_INET, 127.0.0.1 only.
        let multi = uvicorn("localhost", 4);
        assert_eq!(serves(&multi, &ep("[::1]:8000"), &h), Some(false));
        // Without name resolution (--no-discover) a one-process name is unknown.
        assert_eq!(
            serves(&single, &ep("[::1]:8000"), &HostFacts::default()),
            None
        );
        // An empty host: 0.0.0.0 and :: (IPv6-only) as two sockets.
        let any = uvicorn("", 1);
        assert_eq!(serves(&any, &ep("[::1]:8000"), &h), Some(true));
        assert_eq!(serves(&any, &ep("127.0.0.1:8000"), &h), Some(true));
    }

    #[test]
    fn unknown_binds_and_worker_counts_are_maybes() {
        let h = facts();
        let mut b = uvicorn("::", 1);
        b.set_unknown(Knob::Workers, "WEB_CONCURRENCY may be set");
        assert_eq!(serves(&b, &ep("127.0.0.1:8000"), &h), None);
        // A literal IPv4 address binds the same either way.
        let mut v4 = uvicorn("127.0.0.1", 1);
        v4.set_unknown(Knob::Workers, "unknown");
        assert_eq!(serves(&v4, &ep("127.0.0.1:8000"), &h), Some(true));
        let mut gone = uvicorn("127.0.0.1", 1);
        gone.binds.clear();
        gone.set_unknown(Knob::Bind, "`--port ${PORT}`");
        assert_eq!(serves(&gone, &ep("127.0.0.1:8000"), &h), None);
        assert_eq!(maybe_served_by(&ep("127.0.0.1:1"), &[gone], &h).len(), 1);
    }
}
