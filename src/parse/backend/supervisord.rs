//! supervisord configuration: `[program:NAME]` sections, the `[supervisord]` umask and the
//! `[include]` globs.
//!
//! supervisord reads its files with Python's configparser, configured (supervisor/options.py
//! `UnhosedConfigParser`) with `inline_comment_prefixes=(';', '#')`: a comment starts a line, or
//! follows whitespace inside a value. Indented lines continue the previous value. Values are
//! expanded with Python `%`-formatting: `%(ENV_X)s`, `%(here)s` (the file's directory) and, in
//! program sections, `%(program_name)s`, `%(process_num)d`, `%(numprocs)d`, `%(group_name)s`,
//! `%(host_node_name)s` (not known to a pure parser: an error). `command=` is split with
//! `shlex.split`.
//! Expanding the include globs is `gather`'s job: this parser only returns them.

use std::collections::BTreeMap;
use std::str::FromStr;

/// One process of a `[program:NAME]` section (`numprocs` makes several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The section's NAME.
    pub program: String,
    /// `process_name`, expanded (default: the program name).
    pub process_name: String,
    /// The `command=` line.
    pub line: u32,
    pub argv: Vec<String>,
    pub user: Option<String>,
    pub directory: Option<String>,
    pub environment: BTreeMap<String, String>,
    /// The program's own `umask=`, if any (otherwise it inherits supervisord's).
    pub umask: Option<u32>,
    /// `autorestart=` as written, with its line (supervisord's default is `unexpected`).
    pub autorestart: Option<(String, u32)>,
    /// `stopwaitsecs=`: how long supervisord waits after the stop signal before SIGKILL.
    pub stopwaitsecs: Option<u64>,
}

/// A parsed supervisord file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SupervisordConf {
    pub programs: Vec<Program>,
    /// `[supervisord] umask=` (supervisord's default is 022).
    pub umask: Option<u32>,
    /// `[include] files=` globs, as written (relative ones are relative to this file's directory).
    pub includes: Vec<String>,
    /// Sections or values we could not read, as `line N: message`.
    pub errors: Vec<String>,
}

type Section = Vec<(String, String, u32)>;

/// Parses one supervisord file. `here` is its directory (for `%(here)s`); `env` is
/// supervisord's environment (for `%(ENV_X)s`).
pub fn parse(text: &str, here: &str, env: &BTreeMap<String, String>) -> SupervisordConf {
    let mut conf = SupervisordConf::default();
    let mut base: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (format!("ENV_{k}"), v.clone()))
        .collect();
    base.insert("here".into(), here.to_string());
    for (name, keys) in sections(text) {
        let get = |k: &str| keys.iter().rev().find(|(key, _, _)| key == k);
        if name == "supervisord" {
            if let Some((_, v, line)) = get("umask") {
                match octal(v) {
                    Some(m) => conf.umask = Some(m),
                    None => conf
                        .errors
                        .push(format!("line {line}: umask `{v}` is not octal")),
                }
            }
        } else if name == "include" {
            if let Some((_, v, line)) = get("files") {
                match expand(v, &base) {
                    Ok(v) => conf.includes.extend(v.split_whitespace().map(String::from)),
                    Err(e) => conf.errors.push(format!("line {line}: {e}")),
                }
            }
        } else if let Some(program) = name.strip_prefix("program:")
            && let Err(e) = programs(program, &keys, &base, &mut conf.programs)
        {
            conf.errors.push(format!("[program:{program}] {e}"));
        }
    }
    conf
}

fn octal(v: &str) -> Option<u32> {
    u32::from_str_radix(v.trim(), 8).ok()
}

/// Expands one program section into its processes.
fn programs(
    name: &str,
    keys: &Section,
    base: &BTreeMap<String, String>,
    out: &mut Vec<Program>,
) -> Result<(), String> {
    let get = |k: &str| keys.iter().rev().find(|(key, _, _)| key == k);
    let Some((_, _, line)) = get("command") else {
        return Err("has no command=".into());
    };
    /// A number setting, if present.
    fn num<T: FromStr>(keys: &Section, k: &str) -> Result<Option<T>, String> {
        keys.iter()
            .rev()
            .find(|(key, _, _)| key == k)
            .map(|(_, v, l)| {
                v.trim()
                    .parse()
                    .map_err(|_| format!("line {l}: {k} `{v}` is not a number"))
            })
            .transpose()
    }
    let numprocs: u32 = num(keys, "numprocs")?.unwrap_or(1);
    let start: u32 = num(keys, "numprocs_start")?.unwrap_or(0);
    // Settings that do not depend on the process number.
    let umask = match get("umask") {
        Some((_, v, l)) => {
            Some(octal(v).ok_or_else(|| format!("line {l}: umask `{v}` is not octal"))?)
        }
        None => None,
    };
    let stopwaitsecs: Option<u64> = num(keys, "stopwaitsecs")?;
    let autorestart = get("autorestart").map(|(_, v, l)| (v.trim().to_string(), *l));
    for process_num in start..start + numprocs {
        let mut vars = base.clone();
        vars.insert("program_name".into(), name.into());
        vars.insert("group_name".into(), name.into());
        vars.insert("process_num".into(), process_num.to_string());
        vars.insert("numprocs".into(), numprocs.to_string());
        let at = |k: &str| -> Result<Option<String>, String> {
            get(k)
                .map(|(_, v, l)| expand(v, &vars).map_err(|e| format!("line {l}: {e}")))
                .transpose()
        };
        let command = at("command")?.unwrap_or_default();
        let argv =
            shlex::split(&command).ok_or_else(|| format!("line {line}: unbalanced quotes"))?;
        out.push(Program {
            autorestart: autorestart.clone(),
            stopwaitsecs,
            program: name.into(),
            process_name: at("process_name")?.unwrap_or_else(|| name.into()),
            line: *line,
            argv,
            user: at("user")?,
            directory: at("directory")?,
            environment: environment(&at("environment")?.unwrap_or_default()),
            umask,
        });
    }
    Ok(())
}

/// configparser's reading: sections of `(lower-cased key, value, line)`.
fn sections(text: &str) -> Vec<(String, Section)> {
    let mut out: Vec<(String, Section)> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let stripped = raw.trim();
        if stripped.is_empty() || stripped.starts_with([';', '#']) {
            continue;
        }
        let line = strip_inline_comment(raw);
        let continuation = raw.starts_with([' ', '\t']);
        if let (true, Some((_, keys))) = (continuation, out.last_mut())
            && let Some((_, value, _)) = keys.last_mut()
        {
            value.push('\n');
            value.push_str(line.trim());
            continue;
        }
        let line = line.trim();
        if line.starts_with('[') && line.ends_with(']') {
            out.push((line[1..line.len() - 1].trim().to_string(), Vec::new()));
        } else if let Some(i) = line.find(['=', ':'])
            && let Some((_, keys)) = out.last_mut()
        {
            let key = line[..i].trim().to_lowercase();
            keys.push((key, line[i + 1..].trim().to_string(), (n + 1) as u32));
        }
    }
    out
}

/// Cuts a `;` or `#` comment that follows whitespace.
fn strip_inline_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for i in 1..bytes.len() {
        if (bytes[i] == b';' || bytes[i] == b'#') && bytes[i - 1].is_ascii_whitespace() {
            return &line[..i];
        }
    }
    line
}

/// Python `%`-formatting with a dict: `%(name)s`, `%(name)d`, `%(name)02d`, `%%`.
fn expand(v: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = v;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('%') {
            out.push('%');
            rest = r;
            continue;
        }
        let (name, r) = rest
            .strip_prefix('(')
            .and_then(|r| r.split_once(')'))
            .ok_or_else(|| format!("bad format in `{v}`"))?;
        let spec_len = r
            .find(|c: char| c.is_ascii_alphabetic())
            .ok_or_else(|| format!("bad format in `{v}`"))?;
        let (flags, conv) = (&r[..spec_len], &r[spec_len..spec_len + 1]);
        let value = vars
            .get(name)
            .ok_or_else(|| format!("unknown expansion `%({name})` in `{v}`"))?;
        let width: usize = flags.trim_start_matches(['0', '-']).parse().unwrap_or(0);
        match conv {
            "d" if flags.starts_with('0') => out.push_str(&format!("{value:0>width$}")),
            _ => out.push_str(&format!("{value:>width$}")),
        }
        rest = &r[spec_len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `environment=KEY="val",KEY2=val2` (supervisor's `dict_of_key_value_pairs`).
fn environment(v: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let (mut key, mut cur, mut quote) = (None::<String>, String::new(), None::<char>);
    let mut flush = |key: &mut Option<String>, cur: &mut String| {
        if let Some(k) = key.take() {
            out.insert(k.trim().to_string(), std::mem::take(cur).trim().to_string());
        }
        cur.clear();
    };
    for c in v.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => quote = Some(c),
            (None, '=') if key.is_none() => key = Some(std::mem::take(&mut cur)),
            (None, ',') => flush(&mut key, &mut cur),
            (None, c) => cur.push(c),
        }
    }
    flush(&mut key, &mut cur);
    out
}

#[cfg(test)]
mod tests;
