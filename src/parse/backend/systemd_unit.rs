//! systemd unit files: the `[Service]` settings that decide how a backend is started.
//!
//! [`parse`] reads one file into assignments (with line numbers); [`service`] folds a unit and
//! its drop-ins (in the order systemd applies them) into a [`Service`]. systemd semantics encoded
//! here (systemd.syntax(7), systemd.service(5), systemd.exec(5)):
//! - a line ending in `\` continues on the next one; `#`/`;` lines are comments;
//! - list settings (`ExecStart=`, `Environment=`, `RuntimeDirectory=`…) accumulate across files,
//!   and an empty assignment resets the list;
//! - `ExecStart=` words are split with quotes and C escapes, then `${VAR}` is replaced inside a
//!   word and a lone `$VAR` word is split on whitespace, using `Environment=` (not the
//!   `EnvironmentFile=`s, which we only record).

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
    /// The words after splitting and `$VAR` substitution; with `@`, the second word (the
    /// `argv[0]` override) is dropped, so `argv[0]` is the executable.
    pub argv: Vec<String>,
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
    pub environment: BTreeMap<String, String>,
    /// `EnvironmentFile=` paths, recorded but not read (a leading `-` is dropped).
    pub environment_files: Vec<String>,
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
                    Ok(words) => s.environment.extend(words.into_iter().filter_map(|w| {
                        w.split_once('=')
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                    })),
                    Err(e) => s.errors.push(err(e)),
                },
                "EnvironmentFile" if v.is_empty() => s.environment_files.clear(),
                "EnvironmentFile" => s.environment_files.push(spec(v.trim_start_matches('-'))),
                _ => {}
            }
        }
    }
    for (file, line, value) in exec {
        let prefix_len = value.find(|c| !"-@:+!|".contains(c)).unwrap_or(value.len());
        let (prefixes, cmd) = value.split_at(prefix_len);
        match split_words(cmd, &s.environment, !prefixes.contains(':')) {
            Ok(mut argv) => {
                if prefixes.contains('@') && argv.len() > 1 {
                    argv.remove(1);
                }
                s.exec_start.push(ExecStart {
                    file,
                    line,
                    prefixes: prefixes.into(),
                    argv,
                });
            }
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

/// systemd's word splitting for command lines and `Environment=`: whitespace separates words,
/// `"…"` and `'…'` quote, C escapes are decoded; with `expand`, `${VAR}` and lone `$VAR` words
/// are substituted (`$$` is a literal `$`).
pub fn split_words(
    s: &str,
    env: &BTreeMap<String, String>,
    expand: bool,
) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut had_quote = false;
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, c) if c.is_whitespace() => break,
                (None, '"' | '\'') => (quote, had_quote) = (Some(c), true),
                (Some(q), c) if c == q => quote = None,
                (_, '\\') => word.push(unescape(&mut chars)?),
                (_, c) => word.push(c),
            }
        }
        if quote.is_some() {
            return Err("unterminated quote".into());
        }
        if !expand {
            words.push(word);
        } else if let Some(name) = lone_var(&word).filter(|_| !had_quote) {
            words.extend(
                env.get(name)
                    .into_iter()
                    .flat_map(|v| v.split_whitespace().map(String::from)),
            );
        } else {
            words.push(expand_braces(&word, env));
        }
    }
    Ok(words)
}

fn unescape(chars: &mut std::iter::Peekable<std::str::Chars>) -> Result<char, String> {
    let c = chars.next().ok_or("trailing backslash")?;
    Ok(match c {
        'a' => '\x07',
        'b' => '\x08',
        'f' => '\x0c',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\x0b',
        's' => ' ',
        'x' => {
            let hex: String = chars.take(2).collect();
            u8::from_str_radix(&hex, 16).map_err(|_| format!("bad escape \\x{hex}"))? as char
        }
        d @ '0'..='7' => {
            let rest: String = [chars.next(), chars.next()].into_iter().flatten().collect();
            u8::from_str_radix(&format!("{d}{rest}"), 8).map_err(|_| "bad octal escape")? as char
        }
        other => other,
    })
}

/// `$NAME` as a whole word.
fn lone_var(word: &str) -> Option<&str> {
    let name = word.strip_prefix('$')?;
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    ok.then_some(name)
}

/// Replaces `${NAME}` (unset: empty) and `$$` inside a word.
fn expand_braces(word: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = word;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
        } else if let Some((name, a)) = after.strip_prefix('{').and_then(|a| a.split_once('}')) {
            out.push_str(env.get(name).map_or("", String::as_str));
            rest = a;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
