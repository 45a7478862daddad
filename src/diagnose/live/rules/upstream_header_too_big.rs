//! `upstream_header_too_big`: the response headers (big cookies, long CSP) exceed
//! `proxy_buffer_size` (one page: 4k or 8k). The backend answered fine; nginx refused it.

use crate::diagnose::live::{Ctx, Diagnosis, LiveRule};
use crate::model::logs::UpstreamError as E;

pub const RULE: LiveRule = LiveRule {
    kind: "upstream_header_too_big",
    reads: &[E::TooBigHeader],
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<Diagnosis> {
    ctx.errors_of(&[E::TooBigHeader])
        .into_iter()
        .map(|(addr, events)| {
            let uris: std::collections::BTreeSet<&str> = events.iter().filter_map(|e| e.uri.as_deref()).collect();
            let mut evidence = Ctx::samples(&events);
            evidence.push(format!("on {}", uris.into_iter().take(5).collect::<Vec<_>>().join(", ")));
            Diagnosis {
                kind: RULE.kind,
                confidence: 0.97,
                upstream: Some(ctx.group(addr)),
                message: format!("{addr} sends response headers larger than nginx's proxy_buffer_size"),
                evidence,
                fix: "Raise `proxy_buffer_size 16k;` (and `proxy_buffers 8 16k;` / `proxy_busy_buffers_size 32k;`) for these locations, or send smaller headers (cookies).".into(),
                restart_helps: false,
            }
        })
        .collect()
}
