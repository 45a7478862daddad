//! gunicorn `-c` config files: the simple Python assignments most of them are made of.
//!
//! gunicorn executes the file as Python and takes every module-level name that is a gunicorn
//! setting (unknown names are ignored). We do not run Python: we read `name = literal` lines
//! (ints, floats, strings, booleans, lists/tuples of strings). Whatever may set a name without
//! a literal is kept as [`Value::Expr`], so that setting is unknown rather than defaulted:
//! computed values, assignments inside `if`/`for`/`try`/`with` blocks, augmented and tuple
//! assignments, `from m import name`. `from m import *` and `globals()`/`exec(` may set
//! anything: they come out as a [`STAR`] setting. Function bodies only set local names and are
//! skipped; other statements are kept as unparsed text. Mapping settings onto a `Backend` is
//! `cmdline`'s job.

/// The pseudo-name of a statement that may set any name (`from m import *`, `exec(…)`).
pub const STAR: &str = "*";

/// A literal value on the right of `name = …`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    /// A list or tuple of strings.
    List(Vec<String>),
    /// Anything else (`multiprocessing.cpu_count() * 2 + 1`, `os.environ[…]`): kept as source text.
    Expr(String),
}

/// One module-level assignment.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub name: String,
    pub value: Value,
    /// 1-based line of the assignment.
    pub line: u32,
}

/// A parsed config file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GunicornConf {
    /// Assignments in file order (a later one for the same name wins, as in Python).
    pub settings: Vec<Setting>,
    /// Statements that are not simple assignments, as `line N: text`.
    pub unparsed: Vec<String>,
}

impl GunicornConf {
    /// The last assignment to `name`.
    pub fn get(&self, name: &str) -> Option<&Setting> {
        self.settings.iter().rev().find(|s| s.name == name)
    }
}

/// Parses the text of a gunicorn config file. Never fails: what it cannot read is `unparsed`
/// or an [`Value::Expr`].
pub fn parse(text: &str) -> GunicornConf {
    let mut conf = GunicornConf::default();
    let lines: Vec<&str> = text.lines().collect();
    // The module-level compound statement whose body we are in: its line, its header, and
    // whether names assigned in it are module-level (not inside `def`/`class`).
    let mut block: Option<(u32, String, bool)> = None;
    let mut i = 0;
    while i < lines.len() {
        let start = i;
        let mut stmt = strip_comment(lines[i]).to_string();
        // A statement continues while brackets are open or the line ends with `\`.
        while (depth(&stmt) > 0 || stmt.trim_end().ends_with('\\')) && i + 1 < lines.len() {
            i += 1;
            if let Some(s) = stmt.trim_end().strip_suffix('\\') {
                stmt = s.to_string();
            }
            stmt.push(' ');
            stmt.push_str(strip_comment(lines[i]));
        }
        i += 1;
        let line = (start + 1) as u32;
        if stmt.trim().is_empty() {
            continue;
        }
        let indented = lines[start].starts_with([' ', '\t']);
        let stmt = stmt.trim();
        if indented {
            if let Some((at, header, true)) = &block {
                conditional(&mut conf, stmt, line, *at, header);
            }
            continue;
        }
        if stmt.ends_with(':') || is_compound(stmt) {
            let module_level = !["def ", "async def ", "class ", "@"]
                .iter()
                .any(|k| stmt.starts_with(k));
            block = Some((line, stmt.to_string(), module_level));
            conf.unparsed.push(format!("line {line}: {stmt}"));
            continue;
        }
        block = None;
        statement(&mut conf, stmt, line);
    }
    conf
}

/// `if x: a = 1` on one line.
fn is_compound(stmt: &str) -> bool {
    [
        "if ", "for ", "while ", "with ", "try", "else", "elif ", "except", "finally",
    ]
    .iter()
    .any(|k| stmt.starts_with(k))
        && strip_comment(stmt).contains(':')
}

/// A module-level simple statement.
fn statement(conf: &mut GunicornConf, stmt: &str, line: u32) {
    let star = |conf: &mut GunicornConf| {
        conf.settings.push(Setting {
            name: STAR.into(),
            value: Value::Expr(stmt.to_string()),
            line,
        })
    };
    if stmt.starts_with("import ") || stmt == "pass" {
        return;
    }
    if let Some(names) = stmt
        .strip_prefix("from ")
        .and_then(|r| r.split_once(" import "))
    {
        let names = names.1.trim().trim_start_matches('(').trim_end_matches(')');
        if names.trim() == "*" {
            return star(conf);
        }
        for n in names.split(',') {
            let n = n.split(" as ").last().unwrap_or(n).trim();
            conf.settings.push(Setting {
                name: n.to_string(),
                value: Value::Expr(stmt.to_string()),
                line,
            });
        }
        return;
    }
    if ["globals()", "exec(", "locals()", "vars()", "setattr("]
        .iter()
        .any(|k| stmt.contains(k))
    {
        return star(conf);
    }
    match split_assignment(stmt) {
        Some((names, rhs)) if names.len() == 1 => conf.settings.push(Setting {
            name: names[0].to_string(),
            value: parse_value(rhs),
            line,
        }),
        // `a, b = …`, `a += …`, `a = b = …`: set, but not to a literal we read.
        Some((names, _)) => conf.settings.extend(names.into_iter().map(|n| Setting {
            name: n.to_string(),
            value: Value::Expr(stmt.to_string()),
            line,
        })),
        None => conf.unparsed.push(format!("line {line}: {stmt}")),
    }
}

/// An assignment inside a module-level `if`/`for`/`try`/`with`: the name may or may not be set.
fn conditional(conf: &mut GunicornConf, stmt: &str, line: u32, at: u32, header: &str) {
    if let Some((names, _)) = split_assignment(stmt) {
        conf.settings.extend(names.into_iter().map(|n| Setting {
            name: n.to_string(),
            value: Value::Expr(format!(
                "{stmt} (line {line}, inside `{header}` at line {at})"
            )),
            line,
        }));
    }
}

/// The names an assignment sets and its right-hand side: `name = rhs`, `a, b = rhs`,
/// `a = b = rhs`, `name += rhs` (not `==`, `a.b =`, `a[0] =`).
fn split_assignment(stmt: &str) -> Option<(Vec<&str>, &str)> {
    let ident = |n: &str| {
        !n.is_empty()
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    let eq = stmt.find('=')?;
    let (lhs, rest) = (&stmt[..eq], &stmt[eq + 1..]);
    if rest.starts_with('=') || lhs.ends_with(['!', '<', '>']) {
        return None;
    }
    // `name += rhs` and friends.
    let augmented = lhs
        .trim_end()
        .strip_suffix(['+', '-', '*', '/', '%', '|', '&', '^']);
    let lhs = augmented
        .unwrap_or(lhs)
        .trim()
        .trim_end_matches(['*', '/', '<', '>']);
    let names: Vec<&str> = lhs
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() || !names.iter().all(|n| ident(n)) {
        return None;
    }
    let rhs = rest.trim();
    // `a = b = 1`: chained targets.
    let mut names = names;
    if augmented.is_none()
        && let Some((more, _)) = split_assignment(rhs)
    {
        names.extend(more);
        return Some((names, ""));
    }
    if augmented.is_some() || names.len() > 1 {
        return Some((names, ""));
    }
    Some((names, rhs))
}

/// The line without a `#` comment (a `#` inside a string literal is kept).
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '#' => return &line[..i],
            None if c == '"' || c == '\'' => quote = Some(c),
            None => {}
        }
    }
    line
}

/// How many brackets are open at the end of `s` (ignoring string contents).
fn depth(s: &str) -> i32 {
    let mut d = 0;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if "([{".contains(c) => d += 1,
            None if ")]}".contains(c) => d -= 1,
            None => {}
        }
    }
    d
}

fn parse_value(rhs: &str) -> Value {
    let expr = || Value::Expr(rhs.to_string());
    match rhs {
        "True" => return Value::Bool(true),
        "False" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = parse_int(rhs) {
        return Value::Int(n);
    }
    if let Ok(f) = rhs.replace('_', "").parse::<f64>()
        && rhs.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '-')
    {
        return Value::Float(f);
    }
    if let Some(s) = parse_string(rhs) {
        return Value::Str(s);
    }
    let inner = rhs
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .or_else(|| rhs.strip_prefix('(').and_then(|r| r.strip_suffix(')')));
    let Some(inner) = inner else { return expr() };
    let mut items = Vec::new();
    for item in split_commas(inner) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        match parse_string(item) {
            Some(s) => items.push(s),
            None => return expr(),
        }
    }
    Value::List(items)
}

/// A Python int literal: decimal, `0o`, `0x`, `0b`, with `_` separators and an optional `-`.
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    let s = s.replace('_', "");
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest.to_string()),
        None => (false, s),
    };
    let lower = s.to_ascii_lowercase();
    let n = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if lower.bytes().all(|b| b.is_ascii_digit()) && !lower.is_empty() {
        // Python rejects `010` (a leading zero on a non-zero decimal).
        if lower.len() > 1 && lower.starts_with('0') && !lower.trim_start_matches('0').is_empty() {
            return None;
        }
        lower.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -n } else { n })
}

/// A single- or double-quoted (optionally `r`-prefixed) string literal, whole.
fn parse_string(s: &str) -> Option<String> {
    let (raw, s) = match s.strip_prefix(['r', 'R']) {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let q = s.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let body = s.strip_prefix(q)?.strip_suffix(q)?;
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == q {
            return None; // `"a" + "b"` and the like
        }
        if c == '\\' && !raw {
            match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                other => out.push(other),
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Splits on commas outside quotes.
fn split_commas(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quote: Option<char> = None;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == ',' => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            None => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

#[cfg(test)]
mod tests;
