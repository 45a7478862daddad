//! `unix_socket_private_tmp`: the backend's systemd unit has `PrivateTmp=yes` and its unix
//! socket is under `/tmp` or `/var/tmp`. systemd gives the service its own `/tmp` and
//! `/var/tmp` (a private mount namespace), so the socket never appears in the `/tmp` nginx
//! sees: `connect() to unix:/tmp/app.sock failed (2: No such file or directory)` at crit, and
//! every request gets 502, while the backend reports it is listening.

use std::path::Path;

use crate::diagnose::check::matching::absolute;
use crate::diagnose::check::{CheckInput, Notes, Rule};
use crate::diagnose::finding::{Finding, Fix, Severity};
use crate::model::backend::{Bind, Source};
use crate::model::nginx::Addr;

use super::{backend_position, describe};

pub const RULE: Rule = Rule {
    kind: "unix_socket_private_tmp",
    severity: Severity::Error,
    title: "the backend's unix socket is in a PrivateTmp= /tmp nginx cannot see",
    why: "With PrivateTmp=yes the service has its own /tmp and /var/tmp: a socket there is \
          invisible to nginx (`(2: No such file or directory)`), and every request gets 502.",
    check,
};

fn in_tmp(p: &Path) -> bool {
    p.starts_with("/tmp") || p.starts_with("/var/tmp")
}

fn check(input: &CheckInput<'_>, _notes: &mut Notes) -> Vec<Finding> {
    let mut out = Vec::new();
    let targets = input.nginx.targets();
    for b in input.backends {
        let Source::SystemdUnit { unit, .. } = &b.source else {
            continue;
        };
        if !b.supervision.private_tmp {
            continue;
        }
        for bind in &b.binds {
            let Bind::Unix { path } = bind else { continue };
            let path = absolute(path, b.working_directory.as_deref());
            let Some(t) = targets
                .iter()
                .find(|t| matches!(&t.addr, Addr::Unix(p) if *p == path))
            else {
                continue;
            };
            if !in_tmp(&path) {
                continue;
            }
            let p = path.display();
            out.push(Finding {
                kind: RULE.kind,
                severity: RULE.severity,
                message: format!(
                    "{} binds {p} inside its private /tmp (PrivateTmp=yes): nginx never sees the socket, every request gets 502",
                    describe(b)
                ),
                location: backend_position(b),
                upstream: Some(t.group()),
                evidence: vec![
                    format!("{unit}: PrivateTmp=yes, and {} listens on unix:{p}", describe(b)),
                    format!("nginx connects to unix:{p} ({})", input.where_(t.at)),
                ],
                fix: Fix::instruction(format!(
                    "Put the socket where both can see it: `RuntimeDirectory=app` in {unit} and bind \
                     unix:/run/app/app.sock (nginx too), or set `PrivateTmp=no`."
                )),
            });
        }
    }
    out
}
