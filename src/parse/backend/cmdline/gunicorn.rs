//! gunicorn's effective settings: the config file, then `GUNICORN_CMD_ARGS`, then the command
//! line (gunicorn/app/base.py `Application.load_config` applies them in that order, each
//! overriding the one before), then gunicorn/config.py's defaults.
//!
//! A value that cannot be read (a computed assignment in the config file, a `${VAR}` that is
//! not defined, a config file or environment we could not read) makes its setting unknown,
//! never the default.

use std::collections::BTreeMap;

use super::options::Scanned;
use super::{CmdlineError, number, secs};
use crate::model::backend::{
    Backend, Bind, GUNICORN_KEEPALIVE_DEFAULT, GUNICORN_TIMEOUT_DEFAULT, Knob, Server,
    is_known_worker,
};
use crate::parse::backend::gunicorn_conf::{GunicornConf, STAR, Value, parse_int};

/// Where a gunicorn setting's value came from, for messages.
#[derive(Debug, Clone)]
enum Origin {
    Cli(String),
    ConfLine(u32),
}

impl Origin {
    fn describe(&self, setting: &str) -> String {
        match self {
            Origin::Cli(opt) => opt.clone(),
            Origin::ConfLine(line) => format!("{setting} (config file line {line})"),
        }
    }
}

#[derive(Debug, Clone)]
enum Entry {
    Known(Value, Origin),
    Unknown(String),
}

/// What the config file is, as far as we could read it.
pub enum Conf {
    /// No config file (none given, no `./gunicorn.conf.py`).
    Absent,
    Read(GunicornConf),
    /// One is read but we could not: why.
    Unreadable(String),
}

/// The inputs of [`apply`].
pub(super) struct Sources<'a> {
    pub cli: &'a Scanned,
    /// Command-line words (indices into the scanned words) whose value is unknown, with why.
    pub gaps: &'a BTreeMap<usize, String>,
    /// `GUNICORN_CMD_ARGS` scanned, `Ok(None)` when unset, `Err(why)` when unreadable.
    pub env_cli: Result<Option<Scanned>, String>,
    pub conf: Conf,
    pub env: &'a BTreeMap<String, String>,
    /// Why the environment may hold variables we could not read, if it may.
    pub env_gap: Option<&'a str>,
}

/// gunicorn settings in precedence order.
#[derive(Default)]
struct Layers {
    values: BTreeMap<String, Entry>,
    /// When set, a setting no layer sets may still be set where we cannot see (why).
    fallback: Option<String>,
}

enum Got<'a> {
    Value(&'a Value, &'a Origin),
    Unknown(String),
    Default,
}

impl Layers {
    fn add_conf(&mut self, conf: &GunicornConf) {
        for s in &conf.settings {
            if s.name == STAR {
                // `from base import *`: any setting may come from there, earlier ones included.
                let why = format!(
                    "config file line {}: `{}` may set it",
                    s.line,
                    expr(&s.value)
                );
                self.unknown_everywhere(&why);
                continue;
            }
            let entry = Entry::Known(s.value.clone(), Origin::ConfLine(s.line));
            self.values.insert(s.name.clone(), entry);
        }
    }

    /// Every setting not set by a later layer is unknown, for `why`.
    fn unknown_everywhere(&mut self, why: &str) {
        for v in self.values.values_mut() {
            *v = Entry::Unknown(why.to_string());
        }
        self.fallback = Some(why.to_string());
    }

    fn add_cli(&mut self, cli: &Scanned, gaps: &BTreeMap<usize, String>) {
        let gap = |word: usize, shown: String| {
            gaps.get(&word)
                .map(|why| Entry::Unknown(format!("`{shown}`: {why}")))
        };
        // argparse's `append` gives a list that replaces the config file's `bind` entirely.
        let binds: Vec<_> = cli.opts.iter().filter(|o| o.name == "bind").collect();
        if !binds.is_empty() {
            let unknown = binds.iter().find_map(|o| {
                gap(
                    o.word,
                    format!("--bind {}", o.value.as_deref().unwrap_or("")),
                )
            });
            let list = binds.iter().filter_map(|o| o.value.clone()).collect();
            let known = Entry::Known(Value::List(list), Origin::Cli("--bind".into()));
            self.values.insert("bind".into(), unknown.unwrap_or(known));
        }
        for o in cli.opts.iter().filter(|o| o.name != "bind") {
            let setting = match o.name.as_str() {
                "keep-alive" => "keepalive".to_string(),
                n => n.replace('-', "_"),
            };
            let value = o.value.clone().map_or(Value::Bool(true), Value::Str);
            let shown = format!("--{} {}", o.name, o.value.as_deref().unwrap_or(""));
            let entry = gap(o.word, shown)
                .unwrap_or_else(|| Entry::Known(value, Origin::Cli(format!("--{}", o.name))));
            self.values.insert(setting, entry);
        }
    }

    fn get(&self, name: &str) -> Got<'_> {
        match self.values.get(name) {
            Some(Entry::Known(Value::Expr(e), origin)) => {
                Got::Unknown(format!("{} = {e} is not evaluated", origin.describe(name)))
            }
            Some(Entry::Known(v, origin)) => Got::Value(v, origin),
            Some(Entry::Unknown(why)) => Got::Unknown(why.clone()),
            None => match &self.fallback {
                Some(why) => Got::Unknown(why.clone()),
                None => Got::Default,
            },
        }
    }

    /// An integer no rule relies on: unknown is recorded as not understood, taken as unset.
    fn optional(&self, name: &str, b: &mut Backend) -> Result<Option<u64>, CmdlineError> {
        if let Got::Unknown(why) = self.get(name) {
            if self.values.contains_key(name) {
                b.unparsed.push(why);
            }
            return Ok(None);
        }
        // Known or default: `int` never marks anything then.
        self.int(name, Knob::Workers, b, false)
    }

    /// A string setting; `Err(why)` when unknown.
    fn str(&self, name: &str) -> Result<Option<&str>, String> {
        match self.get(name) {
            Got::Value(Value::Str(s), _) => Ok(Some(s)),
            Got::Value(other, origin) => Err(format!(
                "{} = {} is not a string",
                origin.describe(name),
                expr(other)
            )),
            Got::Unknown(why) => Err(why),
            Got::Default => Ok(None),
        }
    }

    /// An integer setting, `int(x, 0)` for strings as gunicorn's `validate_pos_int`; `auto`
    /// also accepts a leading-zero octal (`022`), as gunicorn's `auto_int` does for `umask`.
    /// Unknown values mark `knob` unknown and give `None`.
    fn int(
        &self,
        name: &str,
        knob: Knob,
        b: &mut Backend,
        auto: bool,
    ) -> Result<Option<u64>, CmdlineError> {
        let (value, origin) = match self.get(name) {
            Got::Value(v, o) => (v, o),
            Got::Unknown(why) => {
                b.set_unknown(knob, why);
                return Ok(None);
            }
            Got::Default => return Ok(None),
        };
        let bad = |v: &str| CmdlineError::BadNumber {
            option: origin.describe(name),
            value: v.into(),
        };
        match value {
            Value::Int(n) if *n >= 0 => Ok(Some(*n as u64)),
            // Python's int() of a float truncates; of a bool, True is 1.
            Value::Float(f) if *f >= 0.0 => Ok(Some(*f as u64)),
            Value::Bool(t) => Ok(Some(u64::from(*t))),
            Value::Str(s) => {
                let s = s.trim();
                let octal = auto
                    && s.len() > 1
                    && s.starts_with('0')
                    && s[1..].starts_with(|c: char| c.is_ascii_digit());
                let n = if octal {
                    u64::from_str_radix(&s[1..], 8).ok()
                } else {
                    parse_int(s).and_then(|n| u64::try_from(n).ok())
                };
                n.map(Some).ok_or_else(|| bad(s))
            }
            other => {
                let why = format!(
                    "{} = {} is not an integer",
                    origin.describe(name),
                    expr(other)
                );
                b.set_unknown(knob, why);
                Ok(None)
            }
        }
    }
}

/// A value as Python source, for messages.
fn expr(v: &Value) -> String {
    match v {
        Value::Expr(e) => e.clone(),
        Value::Str(s) => format!("{s:?}"),
        Value::Int(n) => n.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Value::List(l) => format!("{l:?}"),
    }
}

fn layers(s: &Sources<'_>, b: &mut Backend) -> Layers {
    let mut l = Layers::default();
    match &s.conf {
        Conf::Absent => {}
        Conf::Read(conf) => {
            l.add_conf(conf);
            b.unparsed
                .extend(conf.unparsed.iter().map(|u| format!("config file {u}")));
        }
        Conf::Unreadable(why) => l.fallback = Some(why.clone()),
    }
    // GUNICORN_CMD_ARGS overrides the config file: if it may hold anything, so may every setting.
    match (&s.env_cli, s.env_gap) {
        (_, Some(why)) => l.unknown_everywhere(&format!("`GUNICORN_CMD_ARGS` may be set: {why}")),
        (Err(why), None) => l.unknown_everywhere(why),
        (Ok(Some(env_cli)), None) => {
            l.add_cli(env_cli, &BTreeMap::new());
            b.unparsed.extend(
                env_cli
                    .unknown
                    .iter()
                    .map(|u| format!("GUNICORN_CMD_ARGS {u}")),
            );
        }
        (Ok(None), None) => {}
    }
    l.add_cli(s.cli, s.gaps);
    l
}

/// gunicorn: config file, `GUNICORN_CMD_ARGS`, command line, then gunicorn/config.py defaults.
pub(super) fn apply(b: &mut Backend, s: &Sources<'_>) -> Result<(), CmdlineError> {
    let l = layers(s, b);
    b.app = s
        .cli
        .positionals
        .first()
        .cloned()
        .or_else(|| l.str("wsgi_app").ok().flatten().map(String::from));
    b.unparsed.extend(
        s.cli
            .positionals
            .iter()
            .skip(1)
            .map(|p| format!("extra argument `{p}`")),
    );
    b.unparsed.extend(s.cli.unknown.iter().cloned());
    worker_class(&l, b)?;
    match gunicorn_binds(&l, s.env) {
        Ok(binds) => b.binds = binds?,
        Err(why) => {
            b.binds.clear();
            b.set_unknown(Knob::Bind, why);
        }
    }
    b.workers = match l.int("workers", Knob::Workers, b, false)? {
        Some(n) => n as u32,
        // The `workers` default is int($WEB_CONCURRENCY or 1).
        None => s
            .env
            .get("WEB_CONCURRENCY")
            .map_or(Ok(1), |w| number("WEB_CONCURRENCY", w))?,
    };
    // uvicorn's UvicornWorker passes `timeout_keep_alive=self.cfg.keepalive`; gunicorn's own
    // threaded and async workers use `keepalive` too.
    b.keepalive = GUNICORN_KEEPALIVE_DEFAULT;
    if let Some(k) = l.int("keepalive", Knob::KeepAlive, b, false)? {
        (b.keepalive, b.keepalive_explicit) = (secs(k), true);
    }
    // `--timeout 0` disables the arbiter's check (arbiter.py `murder_workers`: `if not
    // self.timeout: return`).
    let timeout = l.int("timeout", Knob::Timeout, b, false)?;
    b.worker_timeout = match timeout {
        Some(0) => None,
        t => Some(t.map_or(GUNICORN_TIMEOUT_DEFAULT, secs)),
    };
    let graceful = l.int("graceful_timeout", Knob::GracefulTimeout, b, false)?;
    b.graceful_timeout = Some(graceful.map_or(GUNICORN_TIMEOUT_DEFAULT, secs));
    if let Some(n) = l.int("backlog", Knob::Backlog, b, false)? {
        b.backlog = n as u32;
    }
    b.max_requests = l.optional("max_requests", b)?.map(|n| n as u32);
    b.max_requests_jitter = l.optional("max_requests_jitter", b)?.map(|n| n as u32);
    tls(&l, b);
    b.reload = match l.get("reload") {
        Got::Value(v, _) => !matches!(v, Value::Bool(false) | Value::Int(0)),
        Got::Unknown(why) => {
            b.set_unknown(Knob::Reload, why);
            false
        }
        Got::Default => false,
    };
    identity(&l, b)?;
    Ok(())
}

fn worker_class(l: &Layers, b: &mut Backend) -> Result<(), CmdlineError> {
    let mut class = match l.str("worker_class") {
        Ok(c) => c.unwrap_or("sync").to_string(),
        Err(why) => {
            b.set_unknown(Knob::WorkerClass, why.clone());
            b.set_unknown(Knob::KeepAlive, why);
            "sync".to_string()
        }
    };
    // Config.worker_class: a sync worker with `threads > 1` is run as the gthread worker.
    let threads = l.int("threads", Knob::WorkerClass, b, false)?.unwrap_or(1);
    if (class == "sync" || class.ends_with("SyncWorker")) && threads > 1 {
        class = "gthread".into();
    }
    if b.is_known(Knob::WorkerClass) && !is_known_worker(&class) {
        b.set_unknown(
            Knob::KeepAlive,
            format!("custom worker class `{class}`: how it keeps connections alive is unknown"),
        );
    }
    b.server = Server::Gunicorn {
        worker_class: class,
    };
    Ok(())
}

/// Config.is_ssl: `certfile or keyfile`.
fn tls(l: &Layers, b: &mut Backend) {
    let files: Vec<_> = ["keyfile", "certfile"].iter().map(|k| l.str(k)).collect();
    b.tls = files
        .iter()
        .any(|f| matches!(f, Ok(Some(s)) if !s.is_empty()));
    if !b.tls
        && let Some(Err(why)) = files.iter().find(|f| f.is_err())
    {
        b.set_unknown(Knob::Tls, why.clone());
    }
}

/// `user`, `group`, `umask`, `chdir`, `forwarded_allow_ips`, `root_path`.
fn identity(l: &Layers, b: &mut Backend) -> Result<(), CmdlineError> {
    if let Ok(Some(ips)) = l.str("forwarded_allow_ips") {
        b.forwarded_allow_ips = Some(ips.to_string());
    }
    b.root_path = l
        .str("root_path")
        .ok()
        .flatten()
        .filter(|r| !r.is_empty())
        .map(String::from);
    match l.str("user") {
        Ok(Some(user)) => b.run_as.user = Some(user.to_string()),
        Ok(None) => {}
        Err(why) => b.set_unknown(Knob::User, why),
    }
    match l.str("group") {
        Ok(Some(group)) => b.run_as.group = Some(group.to_string()),
        Ok(None) => {}
        Err(why) => b.set_unknown(Knob::Group, why),
    }
    // gunicorn sets its own `umask` (default 0) around binding a unix socket (sock.py
    // UnixSocket.bind), so the inherited umask does not decide the socket's mode.
    b.run_as.umask = Some(l.int("umask", Knob::Umask, b, true)?.unwrap_or(0) as u32);
    match l.str("chdir") {
        Ok(Some(dir)) => {
            b.working_directory = Some(match &b.working_directory {
                Some(wd) => wd.join(dir),
                None => dir.into(),
            })
        }
        Ok(None) => {}
        // Relative socket paths resolve against it: a relative bind is then unknown too.
        Err(why) => {
            if b.binds
                .iter()
                .any(|x| matches!(x, Bind::Unix { path } if path.is_relative()))
            {
                b.binds.clear();
                b.set_unknown(Knob::Bind, why);
            }
        }
    }
    Ok(())
}

/// The `bind` list; `Err(why)` when it cannot be read.
fn gunicorn_binds(
    l: &Layers,
    env: &BTreeMap<String, String>,
) -> Result<Result<Vec<Bind>, CmdlineError>, String> {
    let list = match l.get("bind") {
        Got::Value(Value::List(v), _) => v.clone(),
        Got::Value(Value::Str(s), _) => vec![s.clone()],
        Got::Value(other, origin) => {
            return Err(format!(
                "{} = {} is not an address list",
                origin.describe("bind"),
                expr(other)
            ));
        }
        Got::Unknown(why) => return Err(why),
        // The `bind` default: `0.0.0.0:$PORT` when $PORT is set, else 127.0.0.1:8000.
        Got::Default => vec![match env.get("PORT") {
            Some(p) => format!("0.0.0.0:{p}"),
            None => "127.0.0.1:8000".into(),
        }],
    };
    Ok(list.iter().map(|a| parse_address(a)).collect())
}

/// gunicorn's `util.parse_address`: `unix:PATH`, `unix://PATH`, `fd://N`, `tcp://HOST:PORT`,
/// `[V6]:PORT`, `HOST:PORT`, or a bare `HOST` on port 8000. Hosts are lower-cased.
pub fn parse_address(addr: &str) -> Result<Bind, CmdlineError> {
    let bad = |v: &str| CmdlineError::BadNumber {
        option: "--bind".into(),
        value: v.into(),
    };
    if let Some(path) = addr.strip_prefix("unix:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        return Ok(Bind::Unix { path: path.into() });
    }
    if let Some(fd) = addr.strip_prefix("fd://") {
        return Ok(Bind::Fd {
            fd: fd.parse().map_err(|_| bad(addr))?,
        });
    }
    let net = addr.strip_prefix("tcp://").unwrap_or(addr);
    let (host, port) = if net.contains('[') && net.contains(']') {
        let host = net.split(']').next().unwrap_or("").trim_start_matches('[');
        (host, net.split_once("]:").map_or("8000", |(_, p)| p))
    } else if let Some((h, p)) = net.split_once(':') {
        // `:8000` binds '' (every IPv4 address).
        let h = if h.is_empty() { "0.0.0.0" } else { h };
        (h, p.split(':').next().unwrap_or(p))
    } else if net.is_empty() {
        ("0.0.0.0", "8000")
    } else {
        (net, "8000")
    };
    let port = port.parse().map_err(|_| bad(addr))?;
    Ok(Bind::Tcp {
        host: host.to_lowercase(),
        port,
    })
}
