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
pub mod unix_socket_permission_denied;
pub mod upstream_address_mismatch;
pub mod upstream_header_too_big;
pub mod upstream_protocol_mismatch;
pub mod upstream_read_timeout;
pub mod worker_killed;

use crate::model::evidence::{BackendProcesses, ProbeOutcome};
use crate::model::logs::UpstreamError as E;

/// Refused or missing: nothing accepted the connection.
pub const REFUSED: &[E] = &[E::ConnectRefused, E::UnixConnectRefused, E::UnixNoSuchFile];

/// Whether a process tree is stuck: stopped, or no CPU progress while requests wait.
pub fn stuck(p: &BackendProcesses) -> Option<String> {
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
    let serving: Vec<_> = if p.workers.is_empty() {
        vec![&p.master]
    } else {
        p.workers.iter().collect()
    };
    let sampled = serving.first().is_some_and(|x| x.sample_ms > 0);
    if sampled
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
            format!("answered with non-HTTP bytes {first_bytes:?}")
        }
    }
}
