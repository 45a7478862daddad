//! systemd value syntaxes: time spans (systemd.time(7)) and environment files
//! (systemd.exec(5) `EnvironmentFile=`).

use std::time::Duration;

/// A time span: `90`, `90s`, `1min 30s`, `5m`, `2h`, `500ms`; no unit means seconds.
/// `Some(None)` is `infinity`.
pub fn timespan(v: &str) -> Option<Option<Duration>> {
    let v = v.trim();
    if v == "infinity" {
        return Some(None);
    }
    let mut total = Duration::ZERO;
    let mut rest = v;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        rest = rest.trim_start();
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let n: f64 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "" | "s" | "sec" | "second" | "seconds" => 1.0,
            "ms" | "msec" => 0.001,
            "us" | "usec" | "µs" => 0.000_001,
            "m" | "min" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86_400.0,
            "w" | "week" | "weeks" => 604_800.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += Duration::try_from_secs_f64(n * secs).ok()?;
    }
    Some(Some(total))
}

/// The `KEY=VALUE` lines of an environment file: `#`/`;` comment lines, surrounding
/// whitespace trimmed, `"…"`/`'…'` quoting (backslash escapes inside double quotes), a
/// trailing `\` continues the line. Lines without `=` are ignored, as systemd does.
pub fn parse_environment_file(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let mut line = line.trim().to_string();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        while line.ends_with('\\') && !line.ends_with("\\\\") {
            line.pop();
            match lines.next() {
                Some(next) => line.push_str(next.trim()),
                None => break,
            }
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            continue;
        }
        out.push((key.to_string(), unquote(value.trim())));
    }
    out
}

fn unquote(v: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => out.extend(chars.next()),
            (_, c) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_spans() {
        let s = |n| Some(Some(Duration::from_secs(n)));
        assert_eq!(timespan("90"), s(90));
        assert_eq!(timespan("90s"), s(90));
        assert_eq!(timespan("1min 30s"), s(90));
        assert_eq!(timespan("5m"), s(300));
        assert_eq!(timespan("2h"), s(7200));
        assert_eq!(timespan("500ms"), Some(Some(Duration::from_millis(500))));
        assert_eq!(timespan("infinity"), Some(None));
        assert_eq!(timespan("soon"), None);
        assert_eq!(timespan(""), None);
    }

    #[test]
    fn environment_files() {
        let text = "# comment\n; other\nPORT=9000\n  GUNICORN_CMD_ARGS=\"--keep-alive 65 --timeout 120\"\n\
                    A='single $x'\nB=x\\\ny\nnot a line\nC = spaced \n";
        let got = parse_environment_file(text);
        let get = |k: &str| got.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PORT"), Some("9000"));
        assert_eq!(
            get("GUNICORN_CMD_ARGS"),
            Some("--keep-alive 65 --timeout 120")
        );
        assert_eq!(get("A"), Some("single $x"));
        assert_eq!(get("B"), Some("xy"));
        assert_eq!(get("C"), Some("spaced"));
        assert_eq!(got.len(), 5);
    }
}
