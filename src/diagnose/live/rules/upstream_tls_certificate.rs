//! `upstream_tls_certificate`: nginx verifies the backend's certificate (`proxy_ssl_verify on`)
//! and rejects it: `upstream SSL certificate verify error: (20:unable to get local issuer
//! certificate)` (an issuer nginx does not trust: `proxy_ssl_trusted_certificate`), or
//! `upstream SSL certificate does not match "NAME"` (the certificate is not for
//! `proxy_ssl_name`, by default the `proxy_pass` host). The backend speaks TLS and is healthy;
//! the trust settings are wrong, so a restart cannot help.

use crate::diagnose::live::{Ctx, Diagnosis, LiveRule};
use crate::model::logs::UpstreamError as E;

pub const RULE: LiveRule = LiveRule {
    kind: "upstream_tls_certificate",
    reads: &[E::SslCertVerify, E::SslCertName],
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for (addr, events) in ctx.errors_of(RULE.reads) {
        let name = events.iter().any(|e| e.class == E::SslCertName);
        let verify = events.iter().any(|e| e.class == E::SslCertVerify);
        let mut fixes = Vec::new();
        if verify {
            fixes.push(
                "make nginx trust the backend's issuer: `proxy_ssl_trusted_certificate /path/ca.pem;` \
                 (the CA that signed the backend's certificate; `proxy_ssl_verify_depth` for longer \
                 chains), or have the backend send its full chain (uvicorn --ssl-certfile with the \
                 intermediates appended)",
            );
        }
        if name {
            fixes.push(
                "set `proxy_ssl_name` to a name the certificate holds (with `proxy_ssl_server_name on;` \
                 for SNI), or reissue the certificate with the name nginx checks in subjectAltName",
            );
        }
        let mut evidence = Ctx::samples(&events);
        if let Some(b) = ctx.backend_for(addr).filter(|b| b.tls) {
            evidence.push(format!("backend `{}` serves TLS", b.what()));
        }
        out.push(Diagnosis {
            kind: RULE.kind,
            confidence: 0.95,
            upstream: Some(ctx.group(addr)),
            message: format!(
                "nginx rejects the TLS certificate of {addr} ({}): the backend is up and speaks TLS",
                if name && verify {
                    "untrusted issuer, and not for the name nginx checks"
                } else if name {
                    "not for the name nginx checks"
                } else {
                    "its issuer is not trusted"
                }
            ),
            evidence,
            fix: format!("{}.", fixes.join("; and ")),
            restart_helps: false,
        });
    }
    out
}
