//! systemd unit files: the `[Service]` settings that decide how a backend is started.
//!
//! [`parse`] reads one file into assignments (with line numbers); [`service`] folds a unit and
//! its drop-ins (in the order systemd applies them) into a [`Service`]. systemd semantics encoded
//! here (systemd.syntax(7), systemd.service(5), systemd.exec(5)):
//! - a line ending in `\` continues on the next one; `#`/`;` lines are comments;
//! - list settings (`ExecStart=`, `Environment=`, `RuntimeDirectory=`…) accumulate across files,
//!   and an empty assignment resets the list;
//! - `ExecStart=` words are split with quotes and C escapes, then `${VAR}` is replaced inside a
//!   word and a lone `$VAR` word is split on whitespace ([`ExecStart::words`], given the
//!   environment: `Environment=` and the `EnvironmentFile=`s, which `gather` reads). A variable
//!   that is not defined there is unknown, not empty: it may come from where we cannot see.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// One `Key=value` line (continuations joined), with its section and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub section: String,
    pub key: String,
    pub value: String,
    pub line: u32,
}

/// A parsed unit or drop-in file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitFile {
    pub assignments: Vec<Assignment>,
}

/// One `ExecStart=` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecStart {
    /// Index of the file (0: the unit, then the drop-ins) in what [`service`] was given.
    pub file: usize,
    pub line: u32,
    /// The prefixes (`-`, `@`, `:`, `+`, `!`, `!!`) as given.
    pub prefixes: String,
    /// The command after the prefixes, specifiers replaced, not yet split.
    pub command: String,
}

impl ExecStart {
    /// The words systemd runs, given the service's environment: split, `$VAR`s substituted
    /// (not with the `:` prefix); with `@`, the second word (the `argv[0]` override) is
    /// dropped, so `argv[0]` is the executable.
    pub fn words(&self, env: &BTreeMap<String, String>) -> Result<Words, String> {
        let mut w = split_words(&self.command, env, !self.prefixes.contains(':'))?;
        if self.prefixes.contains('@') && w.argv.len() > 1 {
            w.argv.remove(1);
            // Indices after the removed word move down by one.
            w.unknown = std::mem::take(&mut w.unknown)
                .into_iter()
                .filter(|(i, _)| *i != 1)
                .map(|(i, why)| (if i > 1 { i - 1 } else { i }, why))
                .collect();
        }
        Ok(w)
    }
}

/// An `EnvironmentFile=` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentFile {
    /// The path (or glob) as written, without the `-`.
    pub path: String,
    /// `-`: a missing file is not an error.
    pub optional: bool,
}

/// The `[Service]` settings of a unit with its drop-ins applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Service {
    pub exec_start: Vec<ExecStart>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub umask: Option<u32>,
    /// Absolute paths (`RuntimeDirectory=` names are relative to `/run`).
    pub runtime_directories: Vec<PathBuf>,
    pub runtime_directory_mode: Option<u32>,
    pub working_directory: Option<PathBuf>,
    /// `WorkingDirectory=-…`: a missing directory is not an error.
    pub working_directory_optional: bool,
    /// `Environment=` assignments.
    pub environment: BTreeMap<String, String>,
    /// `EnvironmentFile=` entries, in order (their variables override `Environment=`'s).
    pub environment_files: Vec<EnvironmentFile>,
    /// `Restart=` and its line (systemd's default is `no`).
    pub restart: Option<(String, u32)>,
    /// `PrivateTmp=`: the service sees its own `/tmp` and `/var/tmp`.
    pub private_tmp: bool,
    /// `TimeoutStopSec=` (or `TimeoutSec=`): `Some(None)` is `infinity`.
    pub timeout_stop: Option<Option<std::time::Duration>>,
    /// Values we could not read, as `line N: message`.
    pub errors: Vec<String>,
}

/// Splits a unit file into assignments. Never fails: lines that are not `Key=value` or a
/// section header are ignored, as systemd does with a warning.
pub fn parse(text: &str) -> UnitFile {
    let mut out = UnitFile::default();
    let mut section = String::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            section = line[1..line.len() - 1].to_string();
            continue;
        }
        let mut joined = line.to_string();
        while let Some(head) = joined.strip_suffix('\\') {
            joined = format!("{head} ");
            // Comment lines inside a continued value are skipped.
            match lines.find(|(_, next)| !next.trim_start().starts_with(['#', ';'])) {
                Some((_, next)) => joined.push_str(next.trim()),
                None => break,
            }
        }
        if let Some((k, v)) = joined.split_once('=') {
            out.assignments.push(Assignment {
                section: section.clone(),
                key: k.trim().to_string(),
                value: v.trim().to_string(),
                line: (n + 1) as u32,
            });
        }
    }
    out
}

/// Folds `files` (the unit first, then its drop-ins in lexical order) into the service
/// settings. `unit_name` (`app.service`, `app@blue.service`) is used for `%n`/`%i` specifiers.
pub fn service(files: &[UnitFile], unit_name: &str) -> Service {
    let mut s = Service::default();
    let mut exec: Vec<(usize, u32, String)> = Vec::new();
    let spec = |v: &str| specifiers(v, unit_name);
    for (file, unit) in files.iter().enumerate() {
        for a in unit.assignments.iter().filter(|a| a.section == "Service") {
            let v = a.value.as_str();
            let err = |msg: String| format!("line {}: {}={}: {msg}", a.line, a.key, a.value);
            match a.key.as_str() {
                "ExecStart" if v.is_empty() => exec.clear(),
                "ExecStart" => exec.push((file, a.line, spec(v))),
                "User" => s.user = Some(spec(v)).filter(|u| !u.is_empty()),
                "Group" => s.group = Some(spec(v)).filter(|g| !g.is_empty()),
                "UMask" => match u32::from_str_radix(v, 8) {
                    Ok(m) => s.umask = Some(m),
                    Err(_) => s.errors.push(err("not an octal mode".into())),
                },
                "RuntimeDirectoryMode" => match u32::from_str_radix(v, 8) {
                    Ok(m) => s.runtime_directory_mode = Some(m),
                    Err(_) => s.errors.push(err("not an octal mode".into())),
                },
                "RuntimeDirectory" if v.is_empty() => s.runtime_directories.clear(),
                "RuntimeDirectory" => s.runtime_directories.extend(
                    // `name:symlink` entries (systemd 250+) create `name`.
                    spec(v)
                        .split_whitespace()
                        .map(|d| PathBuf::from("/run").join(d.split(':').next().unwrap_or(d))),
                ),
                "WorkingDirectory" => {
                    let (optional, dir) = match v.strip_prefix('-') {
                        Some(d) => (true, d),
                        None => (false, v),
                    };
                    s.working_directory_optional = optional;
                    s.working_directory =
                        Some(spec(dir).into()).filter(|d: &PathBuf| !d.as_os_str().is_empty());
                }
                "Environment" if v.is_empty() => s.environment.clear(),
                "Environment" => match split_words(&spec(v), &BTreeMap::new(), false) {
                    Ok(words) => s.environment.extend(words.argv.into_iter().filter_map(|w| {
                        w.split_once('=')
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                    })),
                    Err(e) => s.errors.push(err(e)),
                },
                "EnvironmentFile" if v.is_empty() => s.environment_files.clear(),
                "EnvironmentFile" => s.environment_files.push(EnvironmentFile {
                    path: spec(v.trim_start_matches('-')),
                    optional: v.starts_with('-'),
                }),
                "Restart" => s.restart = Some((v.to_string(), a.line)),
                "PrivateTmp" => match super::boolean(v) {
                    Some(on) => s.private_tmp = on,
                    None => s.errors.push(err("not a boolean".into())),
                },
                "TimeoutStopSec" | "TimeoutSec" => match values::timespan(v) {
                    Some(t) => s.timeout_stop = Some(t),
                    None => s.errors.push(err("not a time span".into())),
                },
                _ => {}
            }
        }
    }
    for (file, line, value) in exec {
        let prefix_len = value.find(|c| !"-@:+!|".contains(c)).unwrap_or(value.len());
        let (prefixes, cmd) = value.split_at(prefix_len);
        // Quotes and escapes do not depend on the environment: report them here.
        match split_words(cmd, &BTreeMap::new(), false) {
            Ok(_) => s.exec_start.push(ExecStart {
                file,
                line,
                prefixes: prefixes.into(),
                command: cmd.into(),
            }),
            Err(e) => s
                .errors
                .push(format!("line {line}: ExecStart={value}: {e}")),
        }
    }
    s
}

/// Unit specifiers we can know from the unit name; others are left as written.
fn specifiers(v: &str, unit: &str) -> String {
    let stem = unit.rsplit_once('.').map_or(unit, |(s, _)| s);
    let (prefix, instance) = stem.split_once('@').unwrap_or((stem, ""));
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('n') => out.push_str(unit),
            Some('N') => out.push_str(stem),
            Some('p') => out.push_str(prefix),
            Some('i' | 'I') => out.push_str(instance),
            Some('t') => out.push_str("/run"),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

mod values;
mod words;

pub use values::parse_environment_file;
pub use words::{Words, split_words};

#[cfg(test)]
mod tests;
