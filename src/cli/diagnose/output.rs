//! `reflex diagnose`'s report: text for people, JSON for tools. Same content; the verdict is
//! one of `findings`, `healthy`, or `inconclusive` (nothing could be read to judge by).

use serde_json::{Value, json};

use crate::diagnose::live::Diagnosis;
use crate::model::evidence::Unavailable;
use crate::model::logs::LogWindow;

/// What the run concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Findings,
    Healthy,
    /// No finding, and no log could be read, or nothing in them parsed (lines in a format
    /// reflex was not told): not a clean bill of health.
    Inconclusive,
}

impl Verdict {
    pub fn of(findings: &[Diagnosis], logs: &LogWindow) -> Verdict {
        let nothing_parsed =
            logs.requests.is_empty() && logs.errors.is_empty() && logs.malformed > 0;
        if !findings.is_empty() {
            Verdict::Findings
        } else if logs.sources.is_empty() || nothing_parsed {
            Verdict::Inconclusive
        } else {
            Verdict::Healthy
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Verdict::Findings => "findings",
            Verdict::Healthy => "healthy",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// Everything the report shows.
pub struct Report<'a> {
    pub findings: &'a [Diagnosis],
    pub unavailable: &'a [Unavailable],
    pub logs: &'a LogWindow,
    pub notes: &'a [String],
    pub backends: &'a [String],
    pub since: &'a str,
    pub since_s: i64,
    pub verdict: Verdict,
}

pub fn json(r: &Report<'_>) -> Value {
    json!({
        "verdict": r.verdict.as_str(),
        "findings": r.findings,
        "evidence_unavailable": r.unavailable,
        "window": {"from_ms": r.logs.from_ms, "to_ms": r.logs.to_ms, "since_s": r.since_s},
        "logs": {
            "sources": r.logs.sources,
            "upstream_errors": r.logs.errors.len(),
            "requests": r.logs.requests.len(),
            "malformed_lines": r.logs.malformed,
            "bytes_read": r.logs.bytes_read,
            "has_upstream_fields": r.logs.has_upstream_fields,
        },
        "backends": r.backends,
        "notes": r.notes,
    })
}

pub fn text(r: &Report<'_>) -> String {
    use std::fmt::Write as _;
    let bold = anstyle::Style::new().bold();
    let dim = anstyle::Style::new().dimmed();
    let red = anstyle::AnsiColor::Red.on_default().bold();
    let green = anstyle::AnsiColor::Green.on_default().bold();
    let yellow = anstyle::AnsiColor::Yellow.on_default().bold();
    let logs = r.logs;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{dim}last {}: {} requests, {} upstream errors, {} malformed lines ({}){dim:#}",
        r.since,
        logs.requests.len(),
        logs.errors.len(),
        logs.malformed,
        if logs.sources.is_empty() {
            "no logs read".to_string()
        } else {
            logs.sources.join(", ")
        }
    );
    if !r.backends.is_empty() {
        let _ = writeln!(out, "{dim}backends: {}{dim:#}", r.backends.join("; "));
    }
    match r.verdict {
        Verdict::Healthy => {
            let _ = writeln!(out, "{green}healthy{green:#}: no cause of 502/504 found");
        }
        Verdict::Inconclusive => {
            let _ = writeln!(
                out,
                "{yellow}inconclusive{yellow:#}: nothing wrong in the live evidence, but no log could be read or none of its lines parsed (see evidence unavailable; --log-format names an access log's format)"
            );
        }
        Verdict::Findings => {}
    }
    for (i, d) in r.findings.iter().enumerate() {
        finding(&mut out, i, d, (bold, dim, red));
    }
    if !r.unavailable.is_empty() {
        let _ = writeln!(out, "\n{bold}evidence unavailable{bold:#}");
        for u in r.unavailable {
            let _ = writeln!(out, "   - {}: {} ({})", u.what, u.why, u.how);
        }
    }
    for n in r.notes {
        let _ = writeln!(out, "{dim}note:{dim:#} {n}");
    }
    out
}

fn finding(
    out: &mut String,
    i: usize,
    d: &Diagnosis,
    (bold, dim, red): (anstyle::Style, anstyle::Style, anstyle::Style),
) {
    use std::fmt::Write as _;
    let restart = if d.restart_helps {
        "a restart helps"
    } else {
        "a restart will not help"
    };
    let _ = writeln!(
        out,
        "\n{}. {red}{}{red:#} {dim}(confidence {:.2}, {restart}){dim:#}{}",
        i + 1,
        d.kind,
        d.confidence,
        d.upstream
            .as_ref()
            .map(|u| format!("  upstream {u}"))
            .unwrap_or_default()
    );
    let _ = writeln!(out, "   {bold}{}{bold:#}", d.message);
    for e in &d.evidence {
        let _ = writeln!(out, "   {dim}·{dim:#} {e}");
    }
    let _ = writeln!(out, "   {bold}fix:{bold:#} {}", d.fix);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_is_inconclusive_when_no_line_parsed() {
        let mut logs = LogWindow {
            sources: vec!["access.log".into()],
            ..LogWindow::default()
        };
        assert_eq!(Verdict::of(&[], &logs), Verdict::Healthy);
        logs.malformed = 2;
        assert_eq!(Verdict::of(&[], &logs), Verdict::Inconclusive);
        logs.sources.clear();
        logs.malformed = 0;
        assert_eq!(Verdict::of(&[], &logs), Verdict::Inconclusive);
    }
}
