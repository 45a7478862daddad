//! `unexplained_upstream_errors` (runs after the other rules, ranks last): upstream failures in
//! the window that no finding accounts for. "Healthy" with failures in the logs would be a lie,
//! and `reflex watch` must not restart on a guess: this says what was seen, grouped by class and
//! upstream, with the raw lines and where to look. Also holds lines whose upstream is unknown
//! (nginx cut them at 2048 bytes before `upstream:` and the configuration leaves several).

use std::collections::BTreeMap;

use crate::diagnose::live::{Ctx, Diagnosis, Explained, FallbackRule};
use crate::model::logs::{ErrorEvent, UpstreamError as E};

pub const RULE: FallbackRule = FallbackRule {
    kind: "unexplained_upstream_errors",
    check,
};

type ByClass<'a> = BTreeMap<(E, String), Vec<&'a ErrorEvent>>;

fn check(ctx: &Ctx<'_>, explained: &Explained) -> Vec<Diagnosis> {
    let mut groups: BTreeMap<String, ByClass<'_>> = BTreeMap::new();
    for (addr, by) in &ctx.errors {
        let group = ctx.group(addr);
        for (class, events) in by {
            let group_level = matches!(class, E::NoLiveUpstreams | E::ServerTemporarilyDisabled);
            if explained.covers(&group, *class) || (group_level && explained.names(&group)) {
                continue;
            }
            groups
                .entry(group.clone())
                .or_default()
                .insert((*class, addr.clone()), events.clone());
        }
    }
    let mut out: Vec<Diagnosis> = groups
        .into_iter()
        .map(|(group, by)| diagnosis(Some(group), &by))
        .collect();
    let mut cut: ByClass<'_> = BTreeMap::new();
    for e in &ctx.unattributed {
        if !explained.covers_class(e.class) {
            cut.entry((e.class, "?".into())).or_default().push(e);
        }
    }
    if !cut.is_empty() {
        out.push(diagnosis(None, &cut));
    }
    out
}

fn diagnosis(group: Option<String>, by: &ByClass<'_>) -> Diagnosis {
    let total: usize = by.values().map(Vec::len).sum();
    let mut evidence = Vec::new();
    let mut hints: Vec<String> = Vec::new();
    for ((class, addr), events) in by {
        let on = if addr == "?" {
            "lines without `upstream:` (nginx cut them at 2048 bytes)".to_string()
        } else {
            format!("on {addr}")
        };
        evidence.push(format!("{} × {} {on}", events.len(), class.as_str()));
        evidence.extend(
            events
                .iter()
                .take(2)
                .map(|e| format!("error.log: {}", e.line)),
        );
        for e in events {
            let hint = hint(*class, e.errno);
            if !hints.contains(&hint) {
                hints.push(hint);
            }
        }
    }
    let classes: Vec<&str> = by.keys().map(|(c, _)| c.as_str()).collect();
    let message = match &group {
        Some(g) => format!(
            "{total} upstream errors on {g} that no rule explains ({})",
            dedup(classes).join(", ")
        ),
        None => format!(
            "{total} upstream errors whose upstream is unknown ({})",
            dedup(classes).join(", ")
        ),
    };
    Diagnosis {
        kind: RULE.kind,
        confidence: 0.3,
        upstream: group,
        message,
        evidence,
        fix: format!(
            "{}. Compare with the backend's own log at the same times.",
            hints.join("; ")
        ),
        restart_helps: false,
    }
}

fn dedup(mut v: Vec<&str>) -> Vec<&str> {
    v.dedup();
    v
}

/// Where to look, per class (and errno).
fn hint(class: E, errno: Option<u16>) -> String {
    let s = match (class, errno) {
        (E::ConnectFailed, Some(113)) => {
            "113 No route to host: the backend's host is down or unreachable (routing, firewall, a dead VM or container)"
        }
        (E::ConnectFailed, Some(101)) => {
            "101 Network is unreachable: no route to the backend's network from the nginx host"
        }
        (E::ConnectFailed, Some(99)) => {
            "99 Cannot assign requested address: nginx ran out of local ports (many connections in TIME_WAIT): use upstream `keepalive`, widen net.ipv4.ip_local_port_range"
        }
        (E::ConnectFailed | E::UnixConnectFailed, _) => {
            "connect() to the backend failed: the errno in the lines says why"
        }
        (E::InvalidResponse, _) => {
            "the backend answered something that is not valid HTTP: another protocol on that port, a TLS backend spoken to in http://, or invalid header bytes from the app"
        }
        (E::SslHandshakeFailed, _) => {
            "the TLS handshake failed: protocols or ciphers do not match (proxy_ssl_protocols, proxy_ssl_ciphers), or the backend wants a client certificate (proxy_ssl_certificate)"
        }
        (E::SslPeerReset, _) => {
            "the backend dropped the TLS handshake: it was restarting or killed, or it rejects nginx's SNI (proxy_ssl_server_name on)"
        }
        (E::BodyFailed, _) => {
            "the backend closed the connection in the middle of a response: clients got truncated responses; look for a worker dying or an exception inside a streaming response"
        }
        (E::PrematurelyClosed | E::ResetByPeer | E::SendFailed, _) => {
            "the backend closed the connection before answering: a crash or killed worker (its log, `dmesg` for OOM kills), or a keep-alive race if upstream keepalive is on"
        }
        (E::ReadTimedOut, _) => {
            "no response header within proxy_read_timeout: a slow endpoint or a stuck backend (`py-spy dump` its workers; run reflex diagnose while it happens to see the process state)"
        }
        (E::ConnectTimedOut, _) => {
            "connecting timed out: the backend's listen backlog is full, or its host does not answer"
        }
        (E::TimedOut, _) => {
            "timed out sending the request or between two reads of the body (proxy_send_timeout, proxy_read_timeout)"
        }
        (E::NoLiveUpstreams | E::ServerTemporarilyDisabled, _) => {
            "nginx marked the group's servers failed (max_fails/fail_timeout): the failures before it say why"
        }
        _ => "look at the backend's log and state at these times",
    };
    s.to_string()
}
