//! gunicorn's bind addresses.

use super::CmdlineError;
use crate::model::backend::Bind;

/// gunicorn's `util.parse_address`: `unix:PATH`, `unix://PATH`, `fd://N`, `tcp://HOST:PORT`,
/// `[V6]:PORT`, `HOST:PORT`, or a bare `HOST` on port 8000. Hosts are lower-cased.
pub fn parse_address(addr: &str) -> Result<Bind, CmdlineError> {
    let bad = |v: &str| CmdlineError::BadNumber {
        option: "--bind".into(),
        value: v.into(),
    };
    if let Some(path) = addr.strip_prefix("unix:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        return Ok(Bind::Unix { path: path.into() });
    }
    if let Some(fd) = addr.strip_prefix("fd://") {
        return Ok(Bind::Fd {
            fd: fd.parse().map_err(|_| bad(addr))?,
        });
    }
    let net = addr.strip_prefix("tcp://").unwrap_or(addr);
    let (host, port) = if net.contains('[') && net.contains(']') {
        let host = net.split(']').next().unwrap_or("").trim_start_matches('[');
        (host, net.split_once("]:").map_or("8000", |(_, p)| p))
    } else if let Some((h, p)) = net.split_once(':') {
        // `:8000` binds '' (every IPv4 address).
        let h = if h.is_empty() { "0.0.0.0" } else { h };
        (h, p.split(':').next().unwrap_or(p))
    } else if net.is_empty() {
        ("0.0.0.0", "8000")
    } else {
        (net, "8000")
    };
    let port = port.parse().map_err(|_| bad(addr))?;
    Ok(Bind::Tcp {
        host: host.to_lowercase(),
        port,
    })
}
