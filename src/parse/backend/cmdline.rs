//! uvicorn and gunicorn command lines → [`Backend`].
//!
//! Two pure steps, because gunicorn may read a config file: [`config_file`] says which file (if
//! any) a command line makes gunicorn read, and [`parse`] takes the command line, that file's
//! text, the environment and a [`Context`] and returns the effective settings. The option tables
//! in `options` are copied from the installed uvicorn 0.54 and gunicorn 27.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::model::backend::{Backend, Knob, RunAs, Server, Source};

mod address;
mod gunicorn;
mod layers;
mod options;
mod uvicorn;

use address::parse_address;
pub use options::Kind;

/// What a command line is run as, besides its words.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    pub name: String,
    pub source: Source,
    /// The directory the command starts in (systemd `WorkingDirectory=`, supervisord `directory=`,
    /// `/proc/PID/cwd`).
    pub working_directory: Option<PathBuf>,
    pub run_as: RunAs,
}

/// Why a command line could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdlineError {
    #[error("not a uvicorn or gunicorn command line: `{0}`")]
    NotBackend(String),
    #[error(
        "`{0}` runs a shell command string; reflex does not parse `sh -c '…'`: give the uvicorn or gunicorn command itself"
    )]
    Shell(String),
    #[error("option `{option}` needs a value")]
    MissingValue { option: String },
    #[error("option `{option}` expects a number, got `{value}`")]
    BadNumber { option: String, value: String },
}

/// The config file gunicorn will read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigFile {
    /// `-c PATH` (or `file:PATH`), on the command line or in `GUNICORN_CMD_ARGS`; relative paths
    /// are relative to the working directory. A missing file makes gunicorn exit.
    Explicit(PathBuf),
    /// No `-c`: gunicorn reads `./gunicorn.conf.py` from its working directory if it exists.
    Default(PathBuf),
    /// `-c python:MODULE`: a module on `sys.path`, which we cannot locate statically.
    Module(String),
}

/// Finds the server and where its own arguments start: skips `env`, `python -m`, and a
/// `python SCRIPT` whose script is the `uvicorn`/`gunicorn` entry point (which is what
/// `/proc/PID/cmdline` shows for a venv's `bin/uvicorn`, a Python script with a shebang).
pub fn detect(argv: &[String]) -> Result<(Kind, usize), CmdlineError> {
    let not = || CmdlineError::NotBackend(argv.join(" "));
    let mut i = 0;
    loop {
        let word = argv.get(i).ok_or_else(not)?;
        let base = Path::new(word)
            .file_name()
            .and_then(|b| b.to_str())
            .unwrap_or(word);
        match base {
            "uvicorn" => return Ok((Kind::Uvicorn, i + 1)),
            "gunicorn" => return Ok((Kind::Gunicorn, i + 1)),
            "env" => i = skip_env(argv, i + 1),
            "sh" | "bash" | "dash" | "zsh" if argv[i + 1..].iter().any(|a| a == "-c") => {
                return Err(CmdlineError::Shell(argv.join(" ")));
            }
            b if is_python(b) => {
                i = skip_python_options(argv, i + 1);
                if argv.get(i).map(String::as_str) == Some("-m") {
                    return match argv.get(i + 1).map(String::as_str) {
                        Some("uvicorn") => Ok((Kind::Uvicorn, i + 2)),
                        Some("gunicorn") => Ok((Kind::Gunicorn, i + 2)),
                        _ => Err(not()),
                    };
                }
                // `python /venv/bin/uvicorn …`: the next word is the script; loop to test it.
                let script = argv.get(i).ok_or_else(not)?;
                let sb = Path::new(script).file_name().and_then(|b| b.to_str());
                if !matches!(sb, Some("uvicorn" | "gunicorn")) {
                    return Err(not());
                }
            }
            _ => return Err(not()),
        }
    }
}

/// `python`, `python3`, `python3.11`, `pypy3`…
fn is_python(base: &str) -> bool {
    ["python", "pypy"].iter().any(|p| {
        base.strip_prefix(p)
            .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '.'))
    })
}

/// Skips `env`'s options and `NAME=value` words.
fn skip_env(argv: &[String], mut i: usize) -> usize {
    while let Some(w) = argv.get(i) {
        if matches!(
            w.as_str(),
            "-u" | "--unset" | "-C" | "--chdir" | "-S" | "--split-string"
        ) {
            i += 2;
        } else if w.starts_with('-') || (w.contains('=') && !w.starts_with('=')) {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// Skips interpreter options before `-m` or the script (`-u`, `-O`, `-X dev`, `-W ignore`…).
fn skip_python_options(argv: &[String], mut i: usize) -> usize {
    while let Some(w) = argv.get(i) {
        match w.as_str() {
            "-m" => break,
            "-X" | "-W" | "--check-hash-based-pycs" => i += 2,
            w if w.starts_with('-') && w.len() > 1 => i += 1,
            _ => break,
        }
    }
    i
}

/// `NAME=value` words given to `env` before the server: they are part of its environment.
pub fn env_assignments(argv: &[String]) -> Vec<(String, String)> {
    let Some(i) = argv
        .iter()
        .position(|w| w.rsplit('/').next() == Some("env"))
    else {
        return Vec::new();
    };
    argv[i + 1..skip_env(argv, i + 1)]
        .iter()
        .filter(|w| !w.starts_with('-'))
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What is not known about a command line beyond its text: words whose value could not be
/// read (a systemd `${VAR}` that is not defined) and an environment that may hold more than
/// we could read. Settings that depend on them are unknown, not defaulted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gaps {
    /// `argv` indices whose value is unknown, with why.
    pub words: BTreeMap<usize, String>,
    /// Set when even the number of words is unknown (an undefined lone `$VAR`, which systemd
    /// splits into any number of words): every setting is unknown, why.
    pub opaque: Option<String>,
    /// Set when the environment may hold variables we could not read (an unreadable
    /// `EnvironmentFile=`, `/proc/PID/environ`): why.
    pub environment: Option<String>,
}

/// The text of the gunicorn config file [`config_file`] named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigText<'a> {
    /// There is none (or the server reads none).
    Absent,
    Read(&'a str),
    /// There is one we could not read: why.
    Unreadable(&'a str),
}

/// Which config file gunicorn reads for this command line (`None` for uvicorn). gunicorn
/// prefers `-c` on the command line, then `-c` in `GUNICORN_CMD_ARGS`, then
/// `./gunicorn.conf.py` (gunicorn/app/base.py `load_config`). `Err` in the inner result: which
/// file is unknown, and why.
pub fn config_file(
    argv: &[String],
    env: &BTreeMap<String, String>,
    gaps: &Gaps,
) -> Result<Option<Result<ConfigFile, String>>, CmdlineError> {
    let (kind, start) = detect(argv)?;
    if kind == Kind::Uvicorn {
        return Ok(None);
    }
    if let Some(why) = &gaps.opaque {
        return Ok(Some(Err(why.clone())));
    }
    let cli = options::scan(kind, &argv[start..])?;
    if let Some(o) = cli.last_opt("config") {
        if let Some(why) = gaps.words.get(&(o.word + start)) {
            return Ok(Some(Err(format!(
                "the config file is `{}`: {why}",
                o.value.as_deref().unwrap_or("")
            ))));
        }
        return Ok(Some(Ok(named(o.value.as_deref().unwrap_or("")))));
    }
    if let Some(why) = &gaps.environment {
        return Ok(Some(Err(format!(
            "`GUNICORN_CMD_ARGS` may name one: {why}"
        ))));
    }
    let from_env = match env_options(kind, env)? {
        Ok(scanned) => scanned,
        Err(why) => return Ok(Some(Err(why))),
    };
    Ok(Some(Ok(
        match from_env.as_ref().and_then(|e| e.last("config")) {
            Some(c) => named(c),
            None => ConfigFile::Default("gunicorn.conf.py".into()),
        },
    )))
}

/// `-c VALUE`: `python:MODULE`, `file:PATH` or `PATH`.
fn named(c: &str) -> ConfigFile {
    match c.strip_prefix("python:") {
        Some(m) => ConfigFile::Module(m.into()),
        None => ConfigFile::Explicit(c.strip_prefix("file:").unwrap_or(c).into()),
    }
}

/// `GUNICORN_CMD_ARGS`, split the way gunicorn splits it (`shlex.split`); `Err` when it cannot
/// be split (gunicorn then fails to start).
fn env_args(env: &BTreeMap<String, String>) -> Result<Option<Vec<String>>, String> {
    match env.get("GUNICORN_CMD_ARGS") {
        None => Ok(None),
        Some(a) => shlex::split(a).map(Some).ok_or_else(|| {
            format!("`GUNICORN_CMD_ARGS={a}` has unbalanced quotes (gunicorn refuses to start)")
        }),
    }
}

/// `GUNICORN_CMD_ARGS` scanned as options; the inner `Err` as [`env_args`]'s.
fn env_options(
    kind: Kind,
    env: &BTreeMap<String, String>,
) -> Result<Result<Option<options::Scanned>, String>, CmdlineError> {
    match env_args(env) {
        Ok(a) => Ok(Ok(a.map(|a| options::scan(kind, &a)).transpose()?)),
        Err(why) => Ok(Err(why)),
    }
}

/// The effective settings of a uvicorn or gunicorn command line. `config` is the text of the
/// file [`config_file`] named, when it was read; `env` is the process environment (only the
/// variables the servers read matter: `UVICORN_*`, `GUNICORN_CMD_ARGS`, `WEB_CONCURRENCY`,
/// `PORT`, `FORWARDED_ALLOW_IPS`).
pub fn parse(
    argv: &[String],
    config: Option<&str>,
    env: &BTreeMap<String, String>,
    ctx: Context,
) -> Result<Backend, CmdlineError> {
    let config = config.map_or(ConfigText::Absent, ConfigText::Read);
    parse_with_gaps(argv, config, env, ctx, &Gaps::default())
}

/// [`parse`] for a command line with [`Gaps`].
pub fn parse_with_gaps(
    argv: &[String],
    config: ConfigText<'_>,
    env: &BTreeMap<String, String>,
    ctx: Context,
    gaps: &Gaps,
) -> Result<Backend, CmdlineError> {
    let (kind, start) = detect(argv)?;
    let mut env = env.clone();
    env.extend(env_assignments(argv));
    let cli = options::scan(kind, &argv[start..])?;
    let words: BTreeMap<usize, String> = gaps
        .words
        .iter()
        .filter_map(|(i, why)| Some((i.checked_sub(start)?, why.clone())))
        .collect();
    let mut b = empty(argv, &env, ctx);
    match kind {
        Kind::Uvicorn => {
            let sources = uvicorn::Sources {
                cli: &cli,
                gaps: &words,
                env: &env,
                env_gap: gaps.environment.as_deref(),
            };
            uvicorn::apply(&mut b, &sources)?;
        }
        Kind::Gunicorn => {
            let env_cli = env_options(kind, &env)?;
            let conf = match config {
                ConfigText::Absent => gunicorn::Conf::Absent,
                ConfigText::Read(t) => gunicorn::Conf::Read(super::gunicorn_conf::parse(t)),
                ConfigText::Unreadable(why) => gunicorn::Conf::Unreadable(why.to_string()),
            };
            let sources = gunicorn::Sources {
                cli: &cli,
                gaps: &words,
                env_cli,
                conf,
                env: &env,
                env_gap: gaps.environment.as_deref(),
            };
            gunicorn::apply(&mut b, &sources)?;
        }
    }
    if let Some(why) = &gaps.opaque {
        for k in Knob::ALL {
            b.set_unknown(k, why.clone());
        }
    }
    Ok(b)
}

/// A backend with nothing read yet.
fn empty(argv: &[String], env: &BTreeMap<String, String>, ctx: Context) -> Backend {
    Backend {
        name: ctx.name,
        source: ctx.source,
        server: Server::Uvicorn,
        argv: argv.to_vec(),
        app: None,
        binds: Vec::new(),
        keepalive: Default::default(),
        keepalive_explicit: false,
        worker_timeout: None,
        graceful_timeout: None,
        backlog: crate::model::backend::BACKLOG_DEFAULT,
        workers: 1,
        limit_concurrency: None,
        max_requests: None,
        max_requests_jitter: None,
        proxy_headers: true,
        forwarded_allow_ips: env.get("FORWARDED_ALLOW_IPS").cloned(),
        tls: false,
        root_path: None,
        working_directory: ctx.working_directory,
        run_as: ctx.run_as,
        unparsed: Vec::new(),
        unknown: Vec::new(),
        reload: false,
        supervision: Default::default(),
    }
}

fn number<T: std::str::FromStr>(option: &str, value: &str) -> Result<T, CmdlineError> {
    value.trim().parse().map_err(|_| CmdlineError::BadNumber {
        option: option.to_string(),
        value: value.to_string(),
    })
}

fn secs(n: u64) -> std::time::Duration {
    std::time::Duration::from_secs(n)
}

/// The server and its own arguments, for telling whether two command lines start the same
/// backend (`/venv/bin/uvicorn a:b` and `python3 /venv/bin/uvicorn a:b` do).
pub fn server_args(argv: &[String]) -> Option<(Kind, &[String])> {
    detect(argv).ok().map(|(k, i)| (k, &argv[i..]))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod unknown_tests;
