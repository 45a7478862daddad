//! Which upstream a log line or an address belongs to, from the nginx configuration: the
//! upstream group(s) listing an address, the one a request's location proxies to when an address
//! is in several groups, and the upstream of an error line whose `upstream:` field nginx cut off
//! (`NGX_MAX_ERROR_STR`, 2048 bytes, is reached with a long request URI).
//!
//! Pure: reads the model and the gathered host facts only.

use std::collections::{BTreeMap, BTreeSet};

use crate::diagnose::check::matching::{Endpoint, endpoints};
use crate::model::host::HostFacts;
use crate::model::nginx::{Addr, Location, NginxModel, Target, Upstream};

/// The groups listing `ep` as a server, in configuration order.
pub fn groups_with<'m, 'a>(
    nginx: &'m NginxModel<'a>,
    host: &HostFacts,
    ep: &Endpoint,
) -> Vec<&'m Upstream<'a>> {
    nginx
        .upstreams
        .iter()
        .filter(|u| {
            u.servers
                .iter()
                .any(|s| endpoints(&s.addr, host).unwrap_or_default().contains(ep))
        })
        .collect()
}

/// The proxying locations a request for `uri` on the server named `server` can reach: the
/// longest matching prefix location, or every proxying location of the server when regular
/// expressions make the choice uncertain (or the URI is unknown).
pub fn locations_for<'m, 'a>(
    nginx: &'m NginxModel<'a>,
    server: Option<&str>,
    uri: Option<&str>,
) -> Vec<&'m Location<'a>> {
    let in_server = |l: &&Location<'a>| {
        server.is_none_or(|name| {
            nginx
                .servers
                .get(l.server)
                .is_none_or(|s| s.names.is_empty() || s.names.first().is_some_and(|n| n == name))
        })
    };
    let candidates: Vec<&Location<'a>> = nginx
        .locations
        .iter()
        .filter(in_server)
        .filter(|l| l.proxy_pass.is_some())
        .collect();
    let has_regex = candidates.iter().any(|l| l.literal_prefix().is_none());
    let matching = |l: &&&Location<'a>| {
        l.literal_prefix()
            .is_some_and(|p| uri.is_some_and(|u| u.starts_with(p)))
    };
    // Each server's longest matching prefix: without a server name, each server could be the
    // one the request reached.
    let mut longest: BTreeMap<usize, usize> = BTreeMap::new();
    for l in candidates.iter().filter(matching) {
        let len = l.literal_prefix().map_or(0, str::len);
        longest
            .entry(l.server)
            .and_modify(|b| *b = (*b).max(len))
            .or_insert(len);
    }
    if !longest.is_empty() && !has_regex {
        return candidates
            .iter()
            .filter(matching)
            .filter(|l| l.literal_prefix().map(str::len) == longest.get(&l.server).copied())
            .copied()
            .collect();
    }
    candidates
}

/// The single address a location sends every request to, if it has exactly one: a direct
/// `proxy_pass` to one address, or a group with one server resolving to one address.
fn single_address(nginx: &NginxModel<'_>, host: &HostFacts, l: &Location<'_>) -> Option<String> {
    let addr: &Addr = match &l.proxy_pass.as_ref()?.target {
        Target::Direct(a) => a,
        Target::Upstream(name) => {
            let u = nginx.upstream(name)?;
            match u.servers.as_slice() {
                [only] => &only.addr,
                _ => return None,
            }
        }
        Target::Variable => return None,
    };
    match endpoints(addr, host).ok()?.as_slice() {
        [only] => Some(only.to_string()),
        _ => None,
    }
}

/// The upstream address of an error line that lost its `upstream:` field, when the server and
/// the URI leave only one possibility.
pub fn attribute(
    nginx: &NginxModel<'_>,
    host: &HostFacts,
    server: Option<&str>,
    uri: Option<&str>,
) -> Option<String> {
    let locations = locations_for(nginx, server, uri);
    let mut addrs = locations.iter().map(|l| single_address(nginx, host, l));
    let first = addrs.next()??;
    addrs.all(|a| a.as_deref() == Some(&first)).then_some(first)
}

/// Among the groups listing an address, those that a request for one of `uris` reaches.
pub fn reached_by<'m, 'a>(
    nginx: &'m NginxModel<'a>,
    groups: &[&'m Upstream<'a>],
    uris: &[&str],
) -> Vec<&'m Upstream<'a>> {
    let mut reached = vec![false; groups.len()];
    let uris: BTreeSet<&str> = uris.iter().copied().collect();
    for uri in uris {
        for l in locations_for(nginx, None, Some(uri)) {
            let Some(Target::Upstream(n)) = l.proxy_pass.as_ref().map(|p| &p.target) else {
                continue;
            };
            for (r, g) in reached.iter_mut().zip(groups) {
                *r |= n.eq_ignore_ascii_case(&g.name);
            }
        }
    }
    groups
        .iter()
        .zip(reached)
        .filter_map(|(g, r)| r.then_some(*g))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::nginx::{ConfigTree, SourceFile, parse};

    fn model(conf: &str) -> ConfigTree {
        ConfigTree {
            files: vec![SourceFile {
                path: "/t.conf".into(),
                text: conf.into(),
                directives: parse(conf).expect("parses"),
            }],
        }
    }

    const CONF: &str = "events {} http {
        upstream a { server 127.0.0.1:8000; }
        upstream b { server 127.0.0.1:8000; server 127.0.0.1:8001; }
        server { server_name api; location / { proxy_pass http://a; } location /b/ { proxy_pass http://b; } }
        server { server_name other; location / { proxy_pass http://127.0.0.1:9000; } }
    }";

    #[test]
    fn truncated_lines_are_attributed_only_when_unambiguous() {
        let tree = model(CONF);
        let n = NginxModel::build(&tree);
        let h = HostFacts::default();
        let long = format!("/{}", "x".repeat(3000));
        assert_eq!(
            attribute(&n, &h, Some("api"), Some(&long)).as_deref(),
            Some("127.0.0.1:8000")
        );
        assert_eq!(
            attribute(&n, &h, Some("api"), Some("/b/x")),
            None,
            "b has two servers"
        );
        assert_eq!(
            attribute(&n, &h, Some("other"), None).as_deref(),
            Some("127.0.0.1:9000")
        );
        assert_eq!(attribute(&n, &h, None, None), None, "three targets");
    }

    #[test]
    fn a_shared_address_is_filed_under_the_group_its_requests_reach() {
        let tree = model(CONF);
        let n = NginxModel::build(&tree);
        let h = HostFacts::default();
        let ep = Endpoint::Tcp("127.0.0.1:8000".parse().expect("addr"));
        let groups = groups_with(&n, &h, &ep);
        assert_eq!(groups.len(), 2);
        let names = |v: Vec<&Upstream<'_>>| v.iter().map(|u| u.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(reached_by(&n, &groups, &["/b/items"])), ["b"]);
        assert_eq!(names(reached_by(&n, &groups, &["/items"])), ["a"]);
    }

    /// Without a server name, each server's own longest prefix: `/b/x` is `/b/` on `api`, and
    /// `/` on `other` (which has no `/b/`), not only the longest prefix of all servers.
    #[test]
    fn each_server_keeps_its_own_longest_prefix() {
        let tree = model(CONF);
        let n = NginxModel::build(&tree);
        let targets = |server, uri| -> Vec<String> {
            locations_for(&n, server, Some(uri))
                .iter()
                .map(|l| format!("{:?}", l.proxy_pass.as_ref().map(|p| &p.target)))
                .collect()
        };
        let any = targets(None, "/b/x");
        assert_eq!(any.len(), 2, "{any:?}");
        assert!(any.iter().any(|t| t.contains("9000")), "{any:?}");
        let api = targets(Some("api"), "/b/x");
        assert_eq!(api.len(), 1, "{api:?}");
        assert!(api[0].contains("\"b\""), "{api:?}");
    }
}
