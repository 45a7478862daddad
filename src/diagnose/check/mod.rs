//! `reflex check`: static rules over the nginx configuration and the backends' launch settings.
//!
//! One rule per file under `rules/`; [`RULES`] lists them. Adding a rule means adding a file,
//! a line in [`RULES`], and its tests (a unit test here and a binary test in `tests/it`).

pub mod edit;
pub mod matching;
mod rules;

use crate::diagnose::finding::{Finding, Position, Severity};
use crate::model::backend::Backend;
use crate::model::host::HostFacts;
use crate::model::nginx::NginxModel;
use crate::parse::nginx::{ConfigTree, Located};

/// Everything a rule may look at. All plain data: rules do no I/O.
pub struct CheckInput<'a> {
    pub tree: &'a ConfigTree,
    pub nginx: &'a NginxModel<'a>,
    pub backends: &'a [Backend],
    pub host: &'a HostFacts,
}

impl CheckInput<'_> {
    /// The `file:line` of a directive.
    pub fn position(&self, at: Located<'_>) -> Position {
        Position {
            file: self
                .tree
                .files
                .get(at.file)
                .map(|f| f.path.clone())
                .unwrap_or_default(),
            line: at.directive.line,
        }
    }

    /// `file:line` as text, for evidence lines.
    pub fn where_(&self, at: Located<'_>) -> String {
        let p = self.position(at);
        format!("{}:{}", p.file.display(), p.line)
    }
}

/// A static rule.
pub struct Rule {
    /// The stable `kind` of its findings.
    pub kind: &'static str,
    pub severity: Severity,
    /// One line: what the rule looks for (SARIF's `shortDescription`).
    pub title: &'static str,
    /// Why it matters (SARIF's `fullDescription`).
    pub why: &'static str,
    /// The findings; what could not be checked (an unknown setting, a fact not gathered) goes
    /// to the notes instead of being guessed.
    pub check: fn(&CheckInput<'_>, &mut Notes) -> Vec<Finding>,
}

/// What rules could not check, and why: printed with the report ("note: …") so that a clean
/// report is not mistaken for a checked one.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Notes(Vec<String>);

impl Notes {
    /// `rule` did not check `what`, because of `why`.
    pub fn skipped(
        &mut self,
        rule: &str,
        what: impl std::fmt::Display,
        why: impl std::fmt::Display,
    ) {
        let note = format!("{rule}: {what} not checked: {why}");
        if !self.0.contains(&note) {
            self.0.push(note);
        }
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

/// Every rule, in the order their findings are listed when severities tie.
pub const RULES: &[&Rule] = &[
    &rules::address_mismatch::RULE,
    &rules::localhost_dual_stack::RULE,
    &rules::scheme_mismatch::RULE,
    &rules::unix_socket_not_accessible::RULE,
    &rules::unix_socket_private_tmp::RULE,
    &rules::upstream_all_servers_down::RULE,
    &rules::upstream_host_unresolvable::RULE,
    &rules::proxy_pass_no_resolver::RULE,
    &rules::keepalive_timeout_race::RULE,
    &rules::keepalive_ineffective::RULE,
    &rules::worker_timeout_below_read_timeout::RULE,
    &rules::graceful_timeout_below_read_timeout::RULE,
    &rules::backend_no_restart::RULE,
    &rules::backend_reload_in_production::RULE,
    &rules::backlog_above_somaxconn::RULE,
    &rules::proxy_headers_missing::RULE,
    &rules::proxy_pass_dynamic::RULE,
];

/// Runs every rule; findings come out most severe first, then in rule order, then by position.
pub fn run(input: &CheckInput<'_>) -> Vec<Finding> {
    run_with_notes(input).0
}

/// [`run`], with the notes of what could not be checked.
pub fn run_with_notes(input: &CheckInput<'_>) -> (Vec<Finding>, Vec<String>) {
    let mut findings: Vec<(usize, Finding)> = Vec::new();
    let mut notes = Notes::default();
    for (i, rule) in RULES.iter().enumerate() {
        for f in (rule.check)(input, &mut notes) {
            findings.push((i, f));
        }
    }
    findings.sort_by(|(ra, a), (rb, b)| {
        b.severity.cmp(&a.severity).then(ra.cmp(rb)).then_with(|| {
            let pa = a.location.as_ref().map(|p| (&p.file, p.line));
            let pb = b.location.as_ref().map(|p| (&p.file, p.line));
            pa.cmp(&pb)
        })
    });
    findings.dedup_by(|a, b| a.1 == b.1);
    (
        findings.into_iter().map(|(_, f)| f).collect(),
        notes.into_vec(),
    )
}

/// The rule with this kind.
pub fn rule(kind: &str) -> Option<&'static Rule> {
    RULES.iter().copied().find(|r| r.kind == kind)
}

#[cfg(test)]
mod tests;
