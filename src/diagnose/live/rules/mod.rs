//! The diagnosis rules, one per file; each exports `pub const RULE: LiveRule`.

pub mod address_family_mismatch;
pub mod application_error_status;
pub mod backend_concurrency_limit;
pub mod backend_crash_loop;
pub mod backend_down;
pub mod backend_hung;
pub mod client_closed_request;
pub mod keepalive_race;
pub mod listen_backlog_full;
pub mod nginx_temp_file_unwritable;
pub mod nginx_worker_limits;
pub mod no_live_upstreams;
pub mod unexplained_5xx;
pub mod unexplained_upstream_errors;
pub mod unix_socket_permission_denied;
pub mod upstream_address_mismatch;
pub mod upstream_header_too_big;
pub mod upstream_protocol_mismatch;
pub mod upstream_read_timeout;
pub mod upstream_tls_certificate;
pub mod worker_killed;

use crate::model::backend::{Backend, Bind};
use crate::model::evidence::{BackendProcesses, ProbeOutcome};
use crate::model::logs::UpstreamError as E;

/// Refused or missing: nothing accepted the connection.
pub const REFUSED: &[E] = &[E::ConnectRefused, E::UnixConnectRefused, E::UnixNoSuchFile];

/// Whether the process tree serving `addr` is stuck: stopped, or without CPU progress while
/// requests wait for it (connections in its accept queue, or its probe unanswered) and its
/// probe did not get an answer. An idle healthy backend makes no CPU progress either, so that
/// alone proves nothing.
pub fn stuck(
    ctx: &crate::diagnose::live::Ctx<'_>,
    addr: &str,
    p: &BackendProcesses,
) -> Option<String> {
    let all = std::iter::once(&p.master).chain(p.workers.iter());
    let stopped: Vec<i32> = all
        .clone()
        .filter(|x| matches!(x.state, 'T' | 't'))
        .map(|x| x.pid)
        .collect();
    if !stopped.is_empty() {
        return Some(format!(
            "process state T (stopped) for pid {}",
            join(&stopped)
        ));
    }
    // A process that answered the probe during the sample is not stuck, whatever its CPU
    // ticks say; and the probe's own connection may be what sock_diag saw in its queue.
    if matches!(ctx.probe(addr), Some(ProbeOutcome::Response { .. })) {
        return None;
    }
    let serving: Vec<_> = if p.workers.is_empty() {
        vec![&p.master]
    } else {
        p.workers.iter().collect()
    };
    let sampled = serving.first().is_some_and(|x| x.sample_ms > 0);
    let waiting = ctx.listener(addr).is_some_and(|l| l.accept_queue > 0)
        || matches!(
            ctx.probe(addr),
            Some(ProbeOutcome::ReadTimeout { .. } | ProbeOutcome::ConnectTimeout { .. })
        );
    if sampled
        && waiting
        && serving
            .iter()
            .all(|x| x.cpu_ticks.0 == x.cpu_ticks.1 && x.state != 'R')
    {
        let pids: Vec<i32> = serving.iter().map(|x| x.pid).collect();
        let states: Vec<String> = serving.iter().map(|x| x.state.to_string()).collect();
        return Some(format!(
            "no CPU progress in {} ms for pid {} (state {})",
            serving[0].sample_ms,
            join(&pids),
            states.join(",")
        ));
    }
    None
}

pub fn join(pids: &[i32]) -> String {
    pids.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A probe outcome in words.
pub fn describe_probe(o: &ProbeOutcome) -> String {
    match o {
        ProbeOutcome::Response {
            status,
            connect_ms,
            first_byte_ms,
        } => {
            format!(
                "answered {status} (connect {connect_ms:.1} ms, first byte {first_byte_ms:.1} ms)"
            )
        }
        ProbeOutcome::ConnectFailed { errno, message, .. } => {
            format!("connect failed ({errno}: {message})")
        }
        ProbeOutcome::ConnectTimeout { after_ms } => {
            format!("connect timed out after {after_ms:.0} ms")
        }
        ProbeOutcome::ReadTimeout {
            connect_ms,
            after_ms,
        } => {
            format!("connected in {connect_ms:.1} ms, then no response within {after_ms:.0} ms")
        }
        ProbeOutcome::Closed {
            reset, after_ms, ..
        } => {
            format!(
                "connection {} after {after_ms:.1} ms without a response",
                if *reset { "reset" } else { "closed" }
            )
        }
        ProbeOutcome::Garbage { first_bytes, .. } => {
            format!("answered with non-HTTP bytes `{first_bytes}`")
        }
    }
}

/// Backends that are up on another address than `addr`: listening there (sock_diag) with no
/// errors logged against it. nginx is then pointed at the wrong place, not at a dead backend.
/// Addresses in the same upstream group as `addr` do not count: nginx fails over to them, so
/// a member answering while another is refused is a dead member, not a mismatch.
pub fn up_elsewhere<'a>(
    ctx: &crate::diagnose::live::Ctx<'a>,
    addr: &str,
) -> Vec<(&'a Backend, String)> {
    let mut out = Vec::new();
    for b in ctx.input.backends {
        for bind in &b.binds {
            let a = match bind {
                Bind::Tcp { host, port } => {
                    let h = match host.as_str() {
                        "0.0.0.0" | "" | "localhost" => "127.0.0.1".to_string(),
                        "::" | "[::]" => "[::1]".to_string(),
                        h if h.contains(':') => format!("[{}]", h.trim_matches(['[', ']'])),
                        h => h.to_string(),
                    };
                    format!("{h}:{port}")
                }
                Bind::Unix { path } => {
                    format!(
                        "unix:{}",
                        crate::diagnose::live::ctx::absolute_bind(b, path).display()
                    )
                }
                Bind::Fd { .. } => continue,
            };
            if a != addr
                && ctx.listener(&a).is_some()
                && ctx.error_count(&a) == 0
                && !ctx.same_group(addr, &a)
            {
                out.push((b, a));
            }
        }
    }
    out
}

/// Why the backend behind `b` looks like it is crash-looping, if it does *now*: systemd
/// restarting it (`auto-restart`, `activating` after restarts), given up on it (`failed` with
/// `start-limit-hit`, or failed within the window after restarts), or restarted more than once
/// with the last start inside the window; supervisord BACKOFF/FATAL. `NRestarts` alone is
/// cumulative (it survives `systemctl stop`) and proves nothing about the present.
pub fn restarting(ctx: &crate::diagnose::live::Ctx<'_>, b: &Backend) -> Option<String> {
    if let Some(u) = ctx.unit(b)
        && unit_looping(u, ctx.window_start_ms())
    {
        return Some(format!(
            "unit {}: {}/{}, NRestarts={}, result {}",
            u.unit, u.active_state, u.sub_state, u.n_restarts, u.result
        ));
    }
    if let Some(p) = ctx.program(b)
        && matches!(p.state.as_str(), "BACKOFF" | "FATAL")
    {
        return Some(format!(
            "supervisord program {}: {} {}",
            p.name, p.state, p.spawn_error
        ));
    }
    None
}

/// Whether a unit's state shows a crash loop going on now (see [`restarting`]).
pub fn unit_looping(u: &crate::model::evidence::UnitState, window_start_ms: u64) -> bool {
    let recent = |t: u64| t > 0 && t >= window_start_ms;
    u.sub_state == "auto-restart"
        || (u.active_state == "activating" && u.n_restarts >= 1)
        || (u.active_state == "failed" && u.result == "start-limit-hit")
        || (u.active_state == "failed" && u.n_restarts >= 1 && recent(u.inactive_enter_ms))
        || (u.active_state == "active" && u.n_restarts >= 2 && recent(u.active_enter_ms))
}
