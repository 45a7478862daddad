//! Human text: findings grouped by upstream, most severe first, coloured when the output is a
//! terminal (anstream honours NO_COLOR, CLICOLOR and non-TTY output).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};

use crate::diagnose::finding::{Finding, Severity};

use super::Report;

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

fn sev_style(s: Severity) -> Style {
    match s {
        Severity::Error => AnsiColor::Red.on_default().bold(),
        Severity::Warning => AnsiColor::Yellow.on_default().bold(),
        Severity::Info => AnsiColor::Cyan.on_default(),
    }
}

/// Renders the report with ANSI styles; the caller's anstream writer strips them when needed.
pub fn text(r: &Report<'_>) -> String {
    let mut out = String::new();
    let mut groups: BTreeMap<Option<&str>, Vec<&Finding>> = BTreeMap::new();
    for f in r.findings {
        groups.entry(f.upstream.as_deref()).or_default().push(f);
    }
    // Groups with the most severe findings first; findings are already sorted within.
    let mut ordered: Vec<(Option<&str>, Vec<&Finding>)> = groups.into_iter().collect();
    ordered.sort_by_key(|(name, fs)| {
        (
            std::cmp::Reverse(fs.iter().map(|f| f.severity).max()),
            name.is_none(),
            *name,
        )
    });
    for (name, findings) in ordered {
        let title = match name {
            Some(n) if r.upstreams.iter().any(|u| u.eq_ignore_ascii_case(n)) => {
                format!("upstream {n}")
            }
            Some(n) => format!("proxy_pass {n}"),
            None => "backends".to_string(),
        };
        let _ = writeln!(out, "{BOLD}{title}{BOLD:#}");
        for f in findings {
            finding(&mut out, r, f);
        }
    }
    let (e, w, i) = r.counts();
    for note in r.notes {
        let _ = writeln!(out, "{DIM}note:{DIM:#} {note}");
    }
    let conf = r
        .tree
        .files
        .first()
        .map(|f| f.path.display().to_string())
        .unwrap_or_default();
    let backends = if r.backends.is_empty() {
        "no backends known".to_string()
    } else {
        r.backends
            .iter()
            .map(|b| b.label())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let files = r.tree.files.len();
    let _ = writeln!(
        out,
        "{e} error{}, {w} warning{}, {i} info ({files} file{} from {conf}; backends: {backends})",
        plural(e),
        plural(w),
        plural(files),
    );
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn finding(out: &mut String, r: &Report<'_>, f: &Finding) {
    let s = sev_style(f.severity);
    let _ = writeln!(
        out,
        "  {s}{:<7}{s:#} {BOLD}{}{BOLD:#}: {}",
        f.severity.as_str(),
        f.kind,
        f.message
    );
    if let Some(p) = &f.location {
        let _ = writeln!(
            out,
            "          {DIM}-->{DIM:#} {}:{}",
            p.file.display(),
            p.line
        );
    }
    for e in &f.evidence {
        let _ = writeln!(out, "          {DIM}·{DIM:#} {e}");
    }
    let auto = if f.fix.auto {
        " (reflex check --fix applies this)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "          {BOLD}fix:{BOLD:#} {}{DIM}{auto}{DIM:#}",
        f.fix.summary
    );
    if let Some(diff) = r.diff(f) {
        for line in diff.lines() {
            let style = if line.starts_with('+') && !line.starts_with("+++") {
                AnsiColor::Green.on_default()
            } else if line.starts_with('-') && !line.starts_with("---") {
                AnsiColor::Red.on_default()
            } else {
                DIM
            };
            let _ = writeln!(out, "            {style}{line}{style:#}");
        }
    }
    out.push('\n');
}
