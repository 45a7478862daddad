//! Rendering findings: human text (grouped by upstream, coloured on a terminal), JSON and
//! SARIF 2.1.0. Pure: everything to render comes in a [`Report`].

mod json;
mod sarif;
mod text;

pub use json::json;
pub use sarif::sarif;
pub use text::text;

use crate::diagnose::finding::{Finding, Severity};
use crate::model::backend::Backend;
use crate::parse::nginx::{ByteOffsets, ConfigTree};

/// What `reflex check` found, with what it looked at.
pub struct Report<'a> {
    pub tree: &'a ConfigTree,
    pub backends: &'a [Backend],
    pub findings: &'a [Finding],
    /// The names of the configuration's upstream groups (to tell them from direct addresses).
    pub upstreams: Vec<String>,
    /// Things the user should know that are not findings: evidence that could not be gathered,
    /// backends that could not be parsed, fixes applied or refused.
    pub notes: &'a [String],
    /// Per file of `tree`, how its text offsets map to its bytes (missing: the identity).
    pub offsets: &'a [ByteOffsets],
    /// The working directory: files under it are named relative to it (diff headers that
    /// `git apply` takes, SARIF's `%SRCROOT%`).
    pub cwd: Option<&'a std::path::Path>,
}

impl Report<'_> {
    /// How many findings of each severity: (errors, warnings, infos).
    pub fn counts(&self) -> (usize, usize, usize) {
        let n = |s| self.findings.iter().filter(|f| f.severity == s).count();
        (n(Severity::Error), n(Severity::Warning), n(Severity::Info))
    }

    /// Bytes `start..end` of file `file` for text offsets `start..end`.
    pub fn byte_range(&self, file: usize, start: usize, end: usize) -> (usize, usize) {
        match self.offsets.get(file) {
            Some(m) => (m.byte(start), m.byte(end)),
            None => (start, end),
        }
    }

    /// The unified diff of a finding's fix, if it edits files.
    pub fn diff(&self, f: &Finding) -> Option<String> {
        (!f.fix.edits.is_empty())
            .then(|| crate::diagnose::check::edit::unified_diff(self.tree, &f.fix.edits, self.cwd))
    }
}
