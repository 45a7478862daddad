//! `upstream_protocol_mismatch`: nginx speaks TLS to a plain backend (`SSL_do_handshake()
//! failed … wrong version number` / `packet length too long`: the backend answered the
//! ClientHello in HTTP), or plain HTTP to a TLS backend (closed at once: `upstream
//! prematurely closed` within a millisecond, the probe answers with TLS bytes or is closed).
//! Certificate errors are not this: the backend speaks TLS fine (`upstream_tls_certificate`).

use crate::diagnose::live::{Ctx, Diagnosis, LiveRule};
use crate::model::evidence::ProbeOutcome;
use crate::model::logs::UpstreamError as E;

use super::describe_probe;

pub const RULE: LiveRule = LiveRule {
    kind: "upstream_protocol_mismatch",
    reads: &[
        E::SslWrongProtocol,
        E::PrematurelyClosed,
        E::ResetByPeer,
        E::InvalidResponse,
    ],
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for (addr, events) in ctx.errors_of(RULE.reads) {
        let backend = ctx.backend_for(addr);
        let ssl = events.iter().any(|e| e.class == E::SslWrongProtocol);
        let tls_backend = backend.is_some_and(|b| b.tls);
        let probe = ctx.probe(addr);
        // A TLS listener closes a plain-HTTP probe or answers it with a TLS record; other
        // bytes are another protocol on that port (SSH, Redis, HTTP/0.9…), not TLS.
        let probe_says_tls = match probe {
            Some(ProbeOutcome::Closed { .. }) => true,
            Some(ProbeOutcome::Garbage { first_bytes, .. }) => tls_record(first_bytes),
            _ => false,
        };
        let (message, fix, confidence) = if ssl {
            (
                format!("nginx speaks HTTPS to {addr} but the backend speaks plain HTTP"),
                "Use http:// in proxy_pass (or start the backend with --ssl-keyfile/--ssl-certfile).".to_string(),
                0.95,
            )
        } else if tls_backend
            || (probe_says_tls && events.len() >= 3 && ctx.listener(addr).is_some())
        {
            (
                format!("nginx speaks plain HTTP to {addr} but the backend expects TLS"),
                "Use https:// in proxy_pass (with proxy_ssl_verify as appropriate), or start the backend without TLS.".to_string(),
                if tls_backend { 0.93 } else { 0.7 },
            )
        } else {
            continue;
        };
        let mut evidence = Ctx::samples(&events);
        if let Some(b) = backend.filter(|b| b.tls) {
            evidence.push(format!(
                "backend `{}` was started with a TLS key and certificate",
                b.what()
            ));
        }
        if let Some(p) = probe {
            evidence.push(format!("plain-HTTP probe {addr}: {}", describe_probe(p)));
        }
        out.push(Diagnosis {
            kind: RULE.kind,
            confidence,
            upstream: Some(ctx.group(addr)),
            message,
            evidence,
            fix,
            restart_helps: false,
        });
    }
    out
}

/// Whether a probe's first bytes (escaped, `\xNN`) begin a TLS record of version 3.x: an
/// alert (0x15) or a handshake (0x16).
fn tls_record(first_bytes: &str) -> bool {
    ["\\x15\\x03", "\\x16\\x03"]
        .iter()
        .any(|p| first_bytes.starts_with(p))
}
