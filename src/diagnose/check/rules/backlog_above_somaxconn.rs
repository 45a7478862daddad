//! `backlog_above_somaxconn`: the backend asks for a listen backlog larger than
//! `net.core.somaxconn`, and the kernel silently caps it. Bursts then overflow a queue smaller
//! than planned: 502 at once on unix sockets (`11: Resource temporarily unavailable`), 504 on
//! TCP (SYNs dropped until `proxy_connect_timeout`).

use crate::diagnose::check::{CheckInput, Notes, Rule};
use crate::diagnose::finding::{Finding, Fix, Severity};
use crate::model::backend::Knob;

use super::{backend_position, describe, with_flag};

pub const RULE: Rule = Rule {
    kind: "backlog_above_somaxconn",
    severity: Severity::Warning,
    title: "the backend's listen backlog exceeds net.core.somaxconn",
    why: "The kernel caps the backlog at net.core.somaxconn; bursts overflow the smaller queue: \
          502 (EAGAIN) on unix sockets, 504 on TCP.",
    check,
};

fn check(input: &CheckInput<'_>, notes: &mut Notes) -> Vec<Finding> {
    let Some(max) = input.host.somaxconn else {
        if input.host.offline && !input.backends.is_empty() {
            let why =
                "net.core.somaxconn is a fact of the target machine (not read: --no-discover)";
            notes.skipped(RULE.kind, "the listen backlogs", why);
        }
        return Vec::new();
    };
    for b in input.backends {
        if let Some(u) = b.unknown(Knob::Backlog) {
            notes.skipped(
                RULE.kind,
                describe(b),
                format!("its backlog is unknown ({})", u.why),
            );
        }
    }
    input
        .backends
        .iter()
        .filter(|b| b.is_known(Knob::Backlog) && b.backlog > max)
        .map(|b| Finding {
            kind: RULE.kind,
            severity: RULE.severity,
            message: format!(
                "{} asks for a backlog of {} but net.core.somaxconn is {max}: the kernel caps the queue at {max}",
                describe(b),
                b.backlog
            ),
            location: backend_position(b),
            upstream: None,
            evidence: vec![
                format!("{} backlog {}", describe(b), b.backlog),
                format!("net.core.somaxconn = {max} (/proc/sys/net/core/somaxconn)"),
            ],
            fix: Fix::instruction(format!(
                "Raise the limit: `sysctl -w net.core.somaxconn={}` and persist it in /etc/sysctl.d/60-somaxconn.conf; \
                 or lower the backlog: {}",
                b.backlog,
                with_flag(&b.argv, &["--backlog"], &max.to_string())
            )),
        })
        .collect()
}
