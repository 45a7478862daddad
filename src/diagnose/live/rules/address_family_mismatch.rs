//! `address_family_mismatch`: a name like `localhost` resolved to both `[::1]` and `127.0.0.1`;
//! nginx's attempts on one family are refused while the other serves. In the access log
//! `$upstream_status` reads `502, 200`: retried, but slower and noisy, and a 502 as soon as the
//! working address fails too.

use crate::diagnose::live::{Ctx, Diagnosis, LiveRule};

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

fn check(ctx: &Ctx<'_>) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for (addr, events) in ctx.refused() {
        let addr = addr.as_str();
        let retried: Vec<_> = ctx
            .requests()
            .iter()
            .filter(|r| {
                r.attempts.len() >= 2
                    && r.attempts
                        .iter()
                        .any(|a| a.addr == addr && a.status.is_none_or(|s| s == 502))
                    && r.attempts
                        .last()
                        .and_then(|a| a.status)
                        .is_some_and(|s| s < 500)
            })
            .collect();
        let other = other_family(ctx, addr);
        // Only a retry on the same port of the other family is this cause: a retry on another
        // port is an upstream group failing over from a dead member (`backend_down`).
        let retried: Vec<_> = retried
            .into_iter()
            .filter(|r| {
                r.attempts
                    .last()
                    .is_some_and(|a| families_of_one_port(addr, &a.addr))
            })
            .collect();
        let other_in_log = retried
            .iter()
            .find_map(|r| r.attempts.last().map(|a| a.addr.clone()));
        let Some(serving) = other.clone().or(other_in_log) else {
            continue;
        };
        let mut evidence = Ctx::samples(&events);
        if other.is_some() {
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
            confidence: if other.is_some() { 0.93 } else { 0.75 },
            upstream: Some(ctx.group(addr)),
            message: format!(
                "nginx tries {addr} and {serving} (a name resolving to both IPv6 and IPv4) but the backend listens on {} only",
                if v6 { "IPv4" } else { "IPv6" }
            ),
            evidence,
            fix: format!("Use {serving} instead of the name in nginx's upstream (or make the backend listen on both families: --host ::)."),
            restart_helps: false,
        });
    }
    out
}
