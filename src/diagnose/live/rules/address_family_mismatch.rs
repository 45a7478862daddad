//! `address_family_mismatch`: a name like `localhost` resolved to both `[::1]` and `127.0.0.1`;
//! nginx's attempts on one family are refused while the other serves. In the access log
//! `$upstream_status` reads `502, 200`: retried, but slower and noisy, and a 502 as soon as the
//! working address fails too.

use crate::diagnose::live::{Ctx, Diagnosis, LiveRule};
use crate::model::logs::AccessEvent;

use super::REFUSED;

pub const RULE: LiveRule = LiveRule {
    kind: "address_family_mismatch",
    reads: REFUSED,
    check,
};

/// `addr` and `other` are the same port on the two IP families (`[::1]:8000`, `127.0.0.1:8000`).
fn families_of_one_port(addr: &str, other: &str) -> bool {
    match (
        addr.parse::<std::net::SocketAddr>(),
        other.parse::<std::net::SocketAddr>(),
    ) {
        (Ok(a), Ok(b)) => a.port() == b.port() && a.is_ipv6() != b.is_ipv6(),
        _ => false,
    }
}

/// The same port on the other IP family, if something listens there.
pub fn other_family(ctx: &Ctx<'_>, addr: &str) -> Option<String> {
    let sa: std::net::SocketAddr = addr.parse().ok()?;
    let other = if sa.is_ipv6() {
        format!("127.0.0.1:{}", sa.port())
    } else {
        format!("[::1]:{}", sa.port())
    };
    let loopback = sa.ip().is_loopback();
    (loopback && ctx.listener(addr).is_none() && ctx.listener(&other).is_some()).then_some(other)
}

/// Whether this rule claims the refusals on `addr` (so `upstream_address_mismatch` leaves
/// them): the other family serves, and nginx reaches both through a name.
pub fn claims(ctx: &Ctx<'_>, addr: &str) -> bool {
    pair(ctx, addr).is_some()
}

/// The other family's address that serves while `addr` is refused, whether sock_diag showed
/// it listening, and the requests retried from `addr` onto it; `None` unless nginx reaches
/// both through a name (its retries show it, or its group holds both). One address that the
/// backend does not take (nginx's 127.0.0.1 and an IPv6-only socket) is
/// `upstream_address_mismatch`, as `reflex check` calls it.
fn pair<'a>(ctx: &Ctx<'a>, addr: &str) -> Option<(String, bool, Vec<&'a AccessEvent>)> {
    let other = other_family(ctx, addr);
    // Only a retry on the same port of the other family is this cause: a retry on another
    // port is an upstream group failing over from a dead member (`backend_down`).
    let retried: Vec<&AccessEvent> = ctx
        .requests()
        .iter()
        .filter(|r| {
            r.attempts.len() >= 2
                && r.attempts
                    .iter()
                    .any(|a| a.addr == addr && a.status.is_none_or(|s| s == 502))
                && r.attempts.last().is_some_and(|a| {
                    a.status.is_some_and(|s| s < 500) && families_of_one_port(addr, &a.addr)
                })
        })
        .collect();
    let other_in_log = retried
        .iter()
        .find_map(|r| r.attempts.last().map(|a| a.addr.clone()));
    let listening = other.is_some();
    let serving = other.or(other_in_log)?;
    (!retried.is_empty() || ctx.same_group(addr, &serving)).then_some((serving, listening, retried))
}

fn check(ctx: &Ctx<'_>) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for (addr, events) in ctx.refused() {
        let addr = addr.as_str();
        let Some((serving, listening, retried)) = pair(ctx, addr) else {
            continue;
        };
        let mut evidence = Ctx::samples(&events);
        if listening {
            evidence.push(format!(
                "nothing listens on {addr}, while {serving} is listening (sock_diag)"
            ));
        }
        if let Some(r) = retried.first() {
            let st: Vec<String> = r
                .attempts
                .iter()
                .map(|a| a.status.map_or("-".into(), |s| s.to_string()))
                .collect();
            evidence.push(format!(
                "{} requests retried on {serving}, e.g. $upstream_status \"{}\": {}",
                retried.len(),
                st.join(", "),
                r.line
            ));
        }
        let v6 = addr.starts_with('[');
        out.push(Diagnosis {
            kind: RULE.kind,
            confidence: if listening { 0.93 } else { 0.75 },
            upstream: Some(ctx.group(addr)),
            message: format!(
                "nginx tries {addr} and {serving} (a name resolving to both IPv6 and IPv4) but the backend listens on {} only",
                if v6 { "IPv4" } else { "IPv6" }
            ),
            evidence,
            fix: format!("Use {serving} instead of the name in nginx's upstream (or make the backend listen on both families)."),
            restart_helps: false,
        });
    }
    out
}
