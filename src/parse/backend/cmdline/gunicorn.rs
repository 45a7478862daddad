//! gunicorn's effective settings: the config file, then `GUNICORN_CMD_ARGS`, then the command
//! line (gunicorn/app/base.py `Application.load_config` applies them in that order, each
//! overriding the one before), then gunicorn/config.py's defaults.
//!
//! A value that cannot be read (a computed assignment in the config file, a `${VAR}` that is
//! not defined, a config file or environment we could not read) makes its setting unknown,
//! never the default.

use std::collections::BTreeMap;

use super::layers::{Got, Layers, expr};
use super::options::Scanned;
use super::{CmdlineError, number, parse_address, secs};
use crate::model::backend::{
    Backend, Bind, GUNICORN_KEEPALIVE_DEFAULT, GUNICORN_TIMEOUT_DEFAULT, Knob, Server,
    is_known_worker,
};
use crate::parse::backend::gunicorn_conf::{GunicornConf, Value};

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
    b.workers = match l.int("workers", Some(Knob::Workers), b, false)? {
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
    if let Some(k) = l.int("keepalive", Some(Knob::KeepAlive), b, false)? {
        (b.keepalive, b.keepalive_explicit) = (secs(k), true);
    }
    // `--timeout 0` disables the arbiter's check (arbiter.py `murder_workers`: `if not
    // self.timeout: return`).
    let timeout = l.int("timeout", Some(Knob::Timeout), b, false)?;
    b.worker_timeout = match timeout {
        Some(0) => None,
        t => Some(t.map_or(GUNICORN_TIMEOUT_DEFAULT, secs)),
    };
    let graceful = l.int("graceful_timeout", Some(Knob::GracefulTimeout), b, false)?;
    b.graceful_timeout = Some(graceful.map_or(GUNICORN_TIMEOUT_DEFAULT, secs));
    if let Some(n) = l.int("backlog", Some(Knob::Backlog), b, false)? {
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
    let threads = l
        .int("threads", Some(Knob::WorkerClass), b, false)?
        .unwrap_or(1);
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
    b.run_as.umask = Some(l.int("umask", Some(Knob::Umask), b, true)?.unwrap_or(0) as u32);
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
