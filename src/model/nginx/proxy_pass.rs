//! `proxy_pass` URLs and upstream `server` addresses: where nginx sends requests.

use std::path::PathBuf;

use super::{Addr, ProxyPass, Scheme, Target, Upstream};
use crate::parse::nginx::Located;

/// Parses `unix:/path`, `[::1]:8000`, `host:port` or `host` (port `default_port`).
pub fn parse_addr(s: &str, default_port: u16) -> Option<Addr> {
    if let Some(path) = s.strip_prefix("unix:") {
        return (!path.is_empty()).then(|| Addr::Unix(PathBuf::from(path)));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some(Addr::Host {
            host: host.to_string(),
            port,
        });
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some(Addr::Host {
            host: host.to_string(),
            port: port.parse().ok()?,
        }),
        Some(_) => None,
        None if !s.is_empty() => Some(Addr::Host {
            host: s.to_string(),
            port: default_port,
        }),
        None => None,
    }
}

/// Variables that start the URI part of a `proxy_pass` URL: with them the host is still
/// static (nginx evaluates the URL per request and then looks the host up as usual).
const PATH_VARIABLES: &[&str] = &[
    "$request_uri",
    "${request_uri}",
    "$uri",
    "${uri}",
    "$document_uri",
    "${document_uri}",
];

pub(super) fn proxy_pass<'a>(at: Located<'a>, upstreams: &[Upstream]) -> ProxyPass<'a> {
    let url = at.directive.arg(0).to_string();
    let (scheme, rest) = if let Some(r) = url.strip_prefix("https://") {
        (Scheme::Https, r)
    } else {
        (Scheme::Http, url.strip_prefix("http://").unwrap_or(&url))
    };
    // `http://unix:/path/to.sock:/uri`: the socket path ends at the next `:`.
    let authority = if let Some(path) = rest.strip_prefix("unix:") {
        format!("unix:{}", path.split(':').next().unwrap_or(""))
    } else {
        let host = rest.split('/').next().unwrap_or("");
        // `http://app$request_uri`: the variable starts the URI, not the host.
        match host.find('$') {
            Some(i) if PATH_VARIABLES.iter().any(|v| host[i..].starts_with(v)) => {
                host[..i].to_string()
            }
            _ => host.to_string(),
        }
    };
    let default_port = if scheme == Scheme::Https { 443 } else { 80 };
    let target = if authority.contains('$') || authority.is_empty() {
        Target::Variable
    } else if let Some(u) = upstreams
        .iter()
        .find(|u| u.name.eq_ignore_ascii_case(&authority))
    {
        Target::Upstream(u.name.clone())
    } else {
        match parse_addr(&authority, default_port) {
            Some(a) => Target::Direct(a),
            None => Target::Variable,
        }
    };
    ProxyPass {
        at,
        // nginx evaluates a URL with any variable per request, and then resolves its host
        // with `resolver`, not at start-up (ngx_http_upstream_init_request).
        runtime: url.contains('$'),
        url,
        scheme,
        authority,
        target,
    }
}
