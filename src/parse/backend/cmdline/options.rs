//! The option tables of the installed uvicorn 0.54 (click) and gunicorn 27 (argparse), and a
//! scanner that splits a command line into options and positionals the way they do.
//!
//! Every option is listed, including the ones we do not map, because only the table says whether
//! the next word is an option's value or the app positional.

use super::CmdlineError;

/// Which server a command line starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Kind {
    Uvicorn,
    Gunicorn,
}

/// uvicorn options that take a value (uvicorn/main.py; dumped from the click command).
const UVICORN_VALUES: &[&str] = &[
    "--host",
    "--port",
    "--uds",
    "--fd",
    "--reload-dir",
    "--reload-include",
    "--reload-exclude",
    "--reload-delay",
    "--workers",
    "--loop",
    "--http",
    "--ws",
    "--ws-max-size",
    "--ws-max-queue",
    "--ws-ping-interval",
    "--ws-ping-timeout",
    "--ws-per-message-deflate",
    "--lifespan",
    "--interface",
    "--env-file",
    "--log-config",
    "--log-level",
    "--forwarded-allow-ips",
    "--root-path",
    "--limit-concurrency",
    "--backlog",
    "--limit-max-requests",
    "--limit-max-requests-jitter",
    "--timeout-keep-alive",
    "--timeout-graceful-shutdown",
    "--timeout-worker-healthcheck",
    "--ssl-keyfile",
    "--ssl-certfile",
    "--ssl-keyfile-password",
    "--ssl-version",
    "--ssl-cert-reqs",
    "--ssl-ca-certs",
    "--ssl-ciphers",
    "--header",
    "--app-dir",
    "--h11-max-incomplete-event-size",
];

/// uvicorn boolean flags (with their `--no-` forms).
const UVICORN_FLAGS: &[&str] = &[
    "--reload",
    "--http2",
    "--access-log",
    "--no-access-log",
    "--use-colors",
    "--no-use-colors",
    "--proxy-headers",
    "--no-proxy-headers",
    "--server-header",
    "--no-server-header",
    "--date-header",
    "--no-date-header",
    "--version",
    "--reset-contextvars",
    "--factory",
];

/// gunicorn options that take a value, with their short forms (gunicorn/config.py settings).
const GUNICORN_VALUES: &[(&str, Option<char>)] = &[
    ("--config", Some('c')),
    ("--bind", Some('b')),
    ("--backlog", None),
    ("--workers", Some('w')),
    ("--worker-class", Some('k')),
    ("--threads", None),
    ("--worker-connections", None),
    ("--max-requests", None),
    ("--max-requests-jitter", None),
    ("--timeout", Some('t')),
    ("--graceful-timeout", None),
    ("--keep-alive", None),
    ("--limit-request-line", None),
    ("--limit-request-fields", None),
    ("--limit-request-field_size", None),
    ("--reload-engine", None),
    ("--reload-extra-file", None),
    ("--chdir", None),
    ("--env", Some('e')),
    ("--pid", Some('p')),
    ("--worker-tmp-dir", None),
    ("--user", Some('u')),
    ("--group", Some('g')),
    ("--umask", Some('m')),
    ("--forwarded-allow-ips", None),
    ("--access-logfile", None),
    ("--access-logformat", None),
    ("--error-logfile", None),
    ("--log-file", None),
    ("--log-level", None),
    ("--logger-class", None),
    ("--log-config", None),
    ("--log-config-json", None),
    ("--log-syslog-to", None),
    ("--log-syslog-prefix", None),
    ("--log-syslog-facility", None),
    ("--statsd-host", None),
    ("--dogstatsd-tags", None),
    ("--statsd-prefix", None),
    ("--name", Some('n')),
    ("--pythonpath", None),
    ("--paste", None),
    ("--paster", None),
    ("--proxy-allow-from", None),
    ("--protocol", None),
    ("--uwsgi-allow-from", None),
    ("--keyfile", None),
    ("--certfile", None),
    ("--ssl-version", None),
    ("--cert-reqs", None),
    ("--ca-certs", None),
    ("--ciphers", None),
    ("--http-protocols", None),
    ("--http2-cleartext", None),
    ("--http2-max-concurrent-streams", None),
    ("--http2-initial-window-size", None),
    ("--http2-max-frame-size", None),
    ("--http2-max-header-list-size", None),
    ("--paste-global", None),
    ("--forwarder-headers", None),
    ("--header-map", None),
    ("--asgi-loop", None),
    ("--asgi-lifespan", None),
    ("--asgi-disconnect-grace-period", None),
    ("--websocket-max-message-size", None),
    ("--http-parser", None),
    ("--root-path", None),
    ("--dirty-app", None),
    ("--dirty-workers", None),
    ("--dirty-timeout", None),
    ("--dirty-threads", None),
    ("--dirty-graceful-timeout", None),
    ("--control-socket", None),
    ("--control-socket-mode", None),
];

/// gunicorn flags that take no value.
const GUNICORN_FLAGS: &[(&str, Option<char>)] = &[
    ("--reload", None),
    ("--spew", None),
    ("--check-config", None),
    ("--print-config", None),
    ("--preload", None),
    ("--no-sendfile", None),
    ("--reuse-port", None),
    ("--daemon", Some('D')),
    ("--initgroups", None),
    ("--disable-redirect-access-to-syslog", None),
    ("--capture-output", None),
    ("--log-syslog", None),
    ("--enable-stdio-inheritance", Some('R')),
    ("--enable-backlog-metric", None),
    ("--suppress-ragged-eofs", None),
    ("--do-handshake-on-connect", None),
    ("--permit-obsolete-folding", None),
    ("--strip-header-spaces", None),
    ("--permit-unconventional-http-method", None),
    ("--permit-unconventional-http-version", None),
    ("--casefold-http-method", None),
    ("--no-control-socket", None),
];

/// gunicorn's `--proxy-protocol` takes an optional value (`nargs="?"`, const `auto`).
const PROXY_PROTOCOL_VALUES: &[&str] = &["off", "auto", "v1", "v2"];

/// One option occurrence: its long name without dashes (`timeout-keep-alive`) and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    pub name: String,
    pub value: Option<String>,
    /// Index (in the scanned words) of the word the value was read from: the next word, or the
    /// option itself for `--opt=value` and flags.
    pub word: usize,
}

/// A scanned command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scanned {
    pub opts: Vec<Opt>,
    pub positionals: Vec<String>,
    /// Options not in the table, as given.
    pub unknown: Vec<String>,
}

impl Scanned {
    /// The last value of option `name` (the one that wins in both click and argparse).
    pub fn last(&self, name: &str) -> Option<&str> {
        self.last_opt(name)?.value.as_deref()
    }

    /// The last occurrence of option `name`.
    pub fn last_opt(&self, name: &str) -> Option<&Opt> {
        self.opts.iter().rev().find(|o| o.name == name)
    }

    /// Whether flag `name` was given, and after which of the alternatives: `Some(true)` when
    /// `name` was given last, `Some(false)` when `no_name` was.
    pub fn flag(&self, name: &str, no_name: &str) -> Option<bool> {
        let o = self
            .opts
            .iter()
            .rev()
            .find(|o| o.name == name || o.name == no_name)?;
        Some(o.name == name)
    }
}

fn takes_value(kind: Kind, long: &str) -> Option<bool> {
    match kind {
        Kind::Uvicorn if UVICORN_VALUES.contains(&long) => Some(true),
        Kind::Uvicorn if UVICORN_FLAGS.contains(&long) => Some(false),
        Kind::Gunicorn if GUNICORN_VALUES.iter().any(|(l, _)| *l == long) => Some(true),
        Kind::Gunicorn if GUNICORN_FLAGS.iter().any(|(l, _)| *l == long) => Some(false),
        _ => None,
    }
}

fn short_to_long(c: char) -> Option<(&'static str, bool)> {
    let find = |table: &[(&'static str, Option<char>)]| {
        table.iter().find(|(_, s)| *s == Some(c)).map(|(l, _)| *l)
    };
    find(GUNICORN_VALUES)
        .map(|l| (l, true))
        .or_else(|| find(GUNICORN_FLAGS).map(|l| (l, false)))
}

/// Canonical name: gunicorn's `--log-file` and `--paster` are aliases.
fn canonical(long: &str) -> String {
    let long = match long {
        "--log-file" => "--error-logfile",
        "--paster" => "--paste",
        l => l,
    };
    long.trim_start_matches('-').to_string()
}

/// Splits a command line (the words after the program) into options and positionals.
pub fn scan(kind: Kind, args: &[String]) -> Result<Scanned, CmdlineError> {
    let mut out = Scanned::default();
    let mut i = 0;
    while i < args.len() {
        let word = &args[i];
        let at = i;
        i += 1;
        if word == "--" {
            out.positionals.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(body) = word.strip_prefix("--") {
            let (long, inline) = match body.split_once('=') {
                Some((l, v)) => (format!("--{l}"), Some(v.to_string())),
                None => (word.clone(), None),
            };
            if kind == Kind::Gunicorn && long == "--proxy-protocol" {
                let value = inline.or_else(|| {
                    let next = args
                        .get(i)
                        .filter(|n| PROXY_PROTOCOL_VALUES.contains(&n.as_str()));
                    next.inspect(|_| i += 1).cloned()
                });
                out.opts.push(Opt {
                    name: "proxy-protocol".into(),
                    value,
                    word: i - 1,
                });
                continue;
            }
            match takes_value(kind, &long) {
                Some(true) => {
                    let (value, word) = match inline {
                        Some(v) => (v, at),
                        None => (take(args, &mut i, &long)?, i - 1),
                    };
                    out.opts.push(Opt {
                        name: canonical(&long),
                        value: Some(value),
                        word,
                    });
                }
                Some(false) => out.opts.push(Opt {
                    name: canonical(&long),
                    value: None,
                    word: at,
                }),
                None => out.unknown.push(word.clone()),
            }
        } else if kind == Kind::Gunicorn && word.len() > 1 && word.starts_with('-') {
            scan_short(args, &mut i, at, &mut out)?;
        } else if word.starts_with('-') && word.len() > 1 {
            out.unknown.push(word.clone());
        } else {
            out.positionals.push(word.clone());
        }
    }
    Ok(out)
}

/// argparse short options: `-w 4`, `-w4`, `-w=4`, and bundled flags `-DR`.
fn scan_short(
    args: &[String],
    i: &mut usize,
    at: usize,
    out: &mut Scanned,
) -> Result<(), CmdlineError> {
    let word = args[at].as_str();
    let mut rest = &word[1..];
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match short_to_long(c) {
            Some((long, true)) => {
                let (value, word) = match rest.strip_prefix('=').unwrap_or(rest) {
                    "" => (take(args, i, &format!("-{c}"))?, *i - 1),
                    v => (v.to_string(), at),
                };
                out.opts.push(Opt {
                    name: canonical(long),
                    value: Some(value),
                    word,
                });
                return Ok(());
            }
            Some((long, false)) => out.opts.push(Opt {
                name: canonical(long),
                value: None,
                word: at,
            }),
            None => {
                out.unknown.push(word.to_string());
                return Ok(());
            }
        }
    }
    Ok(())
}

fn take(args: &[String], i: &mut usize, option: &str) -> Result<String, CmdlineError> {
    // click and argparse both refuse an option-looking word as a value (`--port --host`).
    match args.get(*i) {
        Some(v) if !(v.starts_with('-') && v.len() > 1 && v.parse::<f64>().is_err()) => {
            *i += 1;
            Ok(v.clone())
        }
        _ => Err(CmdlineError::MissingValue {
            option: option.to_string(),
        }),
    }
}
