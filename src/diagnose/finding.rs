//! What a rule reports: a [`Finding`] with its evidence and its [`Fix`].

use std::path::PathBuf;

use serde::Serialize;

/// How bad a finding is. Ordered: `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; does not by itself cause 502/504s.
    Info,
    /// Causes 502/504s under some conditions (load, timing, restarts).
    Warning,
    /// Causes 502/504s now, or nginx refuses the configuration.
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// A place in the user's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Position {
    pub file: PathBuf,
    pub line: u32,
}

/// One replacement in a configuration file: bytes `start..end` of file `file` (an index into
/// the `ConfigTree`'s files) become `text`. An insertion has `start == end`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Edit {
    pub file: usize,
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// How to fix a finding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fix {
    /// What to do, in one or two sentences; an exact instruction when the fix is outside nginx
    /// (the backend's command line, a sysctl, a chmod).
    pub summary: String,
    /// Edits to the nginx configuration, shown as a unified diff. Empty: instruction only.
    pub edits: Vec<Edit>,
    /// Whether `reflex check --fix` may apply the edits: only fixes that are right whatever the
    /// rest of the setup is.
    pub auto: bool,
}

impl Fix {
    pub fn instruction(summary: impl Into<String>) -> Fix {
        Fix {
            summary: summary.into(),
            edits: Vec::new(),
            auto: false,
        }
    }

    pub fn edits(summary: impl Into<String>, edits: Vec<Edit>, auto: bool) -> Fix {
        Fix {
            summary: summary.into(),
            edits,
            auto,
        }
    }
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable identifier, e.g. `upstream_keepalive_timeout_race`.
    pub kind: &'static str,
    pub severity: Severity,
    pub message: String,
    pub location: Option<Position>,
    /// The upstream group (or the direct `proxy_pass` address) concerned.
    pub upstream: Option<String>,
    /// The facts behind the finding, one per line.
    pub evidence: Vec<String>,
    pub fix: Fix,
}
