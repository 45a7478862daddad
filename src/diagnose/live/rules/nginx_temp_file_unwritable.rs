//! `nginx_temp_file_unwritable`: nginx buffers a large response to a file under
//! `proxy_temp_path` and cannot write it: `open() "/var/lib/nginx/proxy/1/00/0000000001" failed
//! (13: Permission denied)` (the directory is not the worker user's, often after a change of
//! `user`) or `pwrite() … (28: No space left on device)`. The response is cut off; the backend
//! answered fine, so restarting it cannot help.

use crate::diagnose::live::{Ctx, Diagnosis, LiveRule};
use crate::model::logs::UpstreamError as E;

pub const RULE: LiveRule = LiveRule {
    kind: "nginx_temp_file_unwritable",
    reads: &[E::LocalTempFile],
    check,
};

fn check(ctx: &Ctx<'_>) -> Vec<Diagnosis> {
    ctx.errors_of(RULE.reads)
        .into_iter()
        .map(|(addr, events)| {
            let full = events.iter().any(|e| e.errno == Some(28));
            let user = ctx
                .input
                .nginx
                .map(|n| format!("nginx's worker user ({})", n.worker_identity().0))
                .unwrap_or_else(|| "nginx's worker user (`user` in nginx.conf)".into());
            let file = events
                .iter()
                .find_map(|e| quoted(&e.line))
                .unwrap_or("proxy_temp_path");
            let fix = if full {
                format!("Free space on the file system holding {file} (or move proxy_temp_path), or stream large responses: `proxy_max_temp_file_size 0;`.")
            } else {
                format!("Give {user} write access to the proxy_temp_path holding {file} (owner and every directory on the way), or stream large responses: `proxy_max_temp_file_size 0;`.")
            };
            Diagnosis {
                kind: RULE.kind,
                confidence: 0.95,
                upstream: Some(ctx.group(addr)),
                message: format!(
                    "nginx cannot write the temp file that buffers responses from {addr}: the responses are cut off"
                ),
                evidence: Ctx::samples(&events),
                fix,
                restart_helps: false,
            }
        })
        .collect()
}

/// The path nginx quotes in `open() "PATH" failed`.
fn quoted(line: &str) -> Option<&str> {
    let start = line.find("() \"")? + 4;
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}
