//! systemd's word splitting and `$VAR` substitution for command lines (systemd.service(5),
//! "Command lines"): `${VAR}` is replaced inside a word and stays one word; a lone `$VAR` word
//! is replaced by the value split at whitespace.

use std::collections::BTreeMap;

/// A command line after splitting and substitution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Words {
    pub argv: Vec<String>,
    /// Indices of words that hold a `${VAR}` that is not defined, with why. The word is kept
    /// as written: its value is unknown (systemd would use the manager's view of the variable,
    /// which we may not see).
    pub unknown: BTreeMap<usize, String>,
    /// An undefined lone `$VAR`, kept as written: it stands for any number of words.
    pub opaque: Option<String>,
}

/// systemd's word splitting for command lines and `Environment=`: whitespace separates words,
/// `"…"` and `'…'` quote, C escapes are decoded; with `expand`, `${VAR}` (also `${VAR:-default}`
/// and `${VAR:+alternative}`) and lone `$VAR` words are substituted (`$$` is a literal `$`).
/// Undefined variables are never taken as empty: see [`Words`].
pub fn split_words(s: &str, env: &BTreeMap<String, String>, expand: bool) -> Result<Words, String> {
    let mut out = Words::default();
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
            out.argv.push(word);
        } else if let Some(name) = lone_var(&word).filter(|_| !had_quote) {
            match env.get(name) {
                Some(v) => out.argv.extend(v.split_whitespace().map(String::from)),
                None => {
                    out.opaque.get_or_insert_with(|| undefined(name));
                    out.argv.push(word);
                }
            }
        } else {
            match expand_braces(&word, env) {
                Ok(w) => out.argv.push(w),
                Err(name) => {
                    out.unknown.insert(out.argv.len(), undefined(&name));
                    out.argv.push(word);
                }
            }
        }
    }
    Ok(out)
}

fn undefined(name: &str) -> String {
    format!("`{name}` is not defined in the unit's Environment= or EnvironmentFile=")
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

/// Replaces `${NAME}`, `${NAME:-default}`, `${NAME:+alternative}` and `$$` inside a word.
/// `Err(NAME)` when a plain `${NAME}` is not defined.
fn expand_braces(word: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = word;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
        } else if let Some((inner, a)) = after.strip_prefix('{').and_then(|a| a.split_once('}')) {
            let name = inner.split(':').next().unwrap_or(inner);
            // Undefined here may still be defined where we cannot see (the manager's
            // environment), so even `${NAME:-default}` is unknown then.
            let value = env.get(name).ok_or_else(|| name.to_string())?;
            match (inner.split_once(":-"), inner.split_once(":+")) {
                (Some((_, default)), _) if value.is_empty() => out.push_str(default),
                (_, Some((_, alt))) => out.push_str(if value.is_empty() { "" } else { alt }),
                _ => out.push_str(value),
            }
            rest = a;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}
