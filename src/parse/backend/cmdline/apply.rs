//! Turning scanned options into effective settings, with each server's defaults and precedence.

use std::collections::BTreeMap;
use std::time::Duration;

use super::CmdlineError;
use super::options::Scanned;
use crate::model::backend::{
    Backend, Bind, GUNICORN_KEEPALIVE_DEFAULT, GUNICORN_TIMEOUT_DEFAULT, Server,
    UVICORN_KEEPALIVE_DEFAULT,
};
use crate::parse::backend::gunicorn_conf::{GunicornConf, Value, parse_int};

fn number<T: std::str::FromStr>(option: &str, value: &str) -> Result<T, CmdlineError> {
    value.trim().parse().map_err(|_| CmdlineError::BadNumber {
        option: option.to_string(),
        value: value.to_string(),
    })
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// click's boolean parsing for `UVICORN_*` flag variables.
fn click_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "t" | "yes" | "y" | "on" => Some(true),
        "0" | "false" | "f" | "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

/// uvicorn: the command line, then (click's `auto_envvar_prefix="UVICORN"`) `UVICORN_<OPTION>`
/// for options not on it, then the defaults in uvicorn/main.py and uvicorn/config.py.
pub fn uvicorn(
    b: &mut Backend,
    cli: Scanned,
    env: &BTreeMap<String, String>,
) -> Result<(), CmdlineError> {
    let get = |name: &str| -> Option<(String, String)> {
        if let Some(v) = cli.last(name) {
            return Some((format!("--{name}"), v.to_string()));
        }
        let var = format!("UVICORN_{}", name.to_ascii_uppercase().replace('-', "_"));
        env.get(&var).map(|v| (var, v.clone()))
    };
    let num = |name: &str| -> Result<Option<u64>, CmdlineError> {
        get(name).map(|(opt, v)| number(&opt, &v)).transpose()
    };
    b.server = Server::Uvicorn;
    let mut positionals = cli.positionals.iter();
    b.app = positionals
        .next()
        .cloned()
        .or_else(|| env.get("UVICORN_APP").cloned());
    b.unparsed
        .extend(positionals.map(|p| format!("extra argument `{p}`")));
    // uvicorn's bind_socket() checks `uds`, then `fd`, then host/port.
    b.binds = vec![if let Some((_, path)) = get("uds") {
        Bind::Unix { path: path.into() }
    } else if let Some((opt, fd)) = get("fd") {
        Bind::Fd {
            fd: number(&opt, &fd)?,
        }
    } else {
        let host = get("host").map_or_else(|| "127.0.0.1".to_string(), |(_, h)| h);
        let port = match get("port") {
            Some((opt, p)) => number(&opt, &p)?,
            None => 8000,
        };
        Bind::Tcp { host, port }
    }];
    b.keepalive = UVICORN_KEEPALIVE_DEFAULT;
    if let Some(k) = num("timeout-keep-alive")? {
        (b.keepalive, b.keepalive_explicit) = (secs(k), true);
    }
    // Config(workers=None) falls back to $WEB_CONCURRENCY, then 1.
    b.workers = match get("workers") {
        Some((opt, w)) => number(&opt, &w)?,
        None => match env.get("WEB_CONCURRENCY") {
            Some(w) => number("WEB_CONCURRENCY", w)?,
            None => 1,
        },
    };
    if let Some(n) = num("backlog")? {
        b.backlog = n as u32;
    }
    b.limit_concurrency = num("limit-concurrency")?.map(|n| n as u32);
    b.max_requests = num("limit-max-requests")?.map(|n| n as u32);
    b.max_requests_jitter = num("limit-max-requests-jitter")?.map(|n| n as u32);
    b.graceful_timeout = num("timeout-graceful-shutdown")?.map(secs);
    b.proxy_headers = match cli.flag("proxy-headers", "no-proxy-headers") {
        Some(on) => on,
        None => env
            .get("UVICORN_PROXY_HEADERS")
            .and_then(|v| click_bool(v))
            .unwrap_or(true),
    };
    if let Some((_, ips)) = get("forwarded-allow-ips") {
        b.forwarded_allow_ips = Some(ips);
    }
    // uvicorn's Config.is_ssl: either file makes it serve TLS.
    b.tls = get("ssl-keyfile").is_some() || get("ssl-certfile").is_some();
    b.root_path = get("root-path").map(|(_, r)| r).filter(|r| !r.is_empty());
    b.unparsed.extend(cli.unknown);
    Ok(())
}

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

/// gunicorn settings in precedence order: config file, then `GUNICORN_CMD_ARGS`, then the
/// command line (gunicorn/app/base.py `load_config` sets them in that order).
#[derive(Default)]
struct Layers {
    values: BTreeMap<String, (Value, Origin)>,
}

impl Layers {
    fn add_conf(&mut self, conf: &GunicornConf) {
        for s in &conf.settings {
            self.values
                .insert(s.name.clone(), (s.value.clone(), Origin::ConfLine(s.line)));
        }
    }

    fn add_cli(&mut self, cli: &Scanned) {
        // argparse's `append` gives a list that replaces the config file's `bind` entirely.
        let binds: Vec<String> = cli.all("bind").into_iter().map(String::from).collect();
        if !binds.is_empty() {
            let origin = Origin::Cli("--bind".into());
            self.values
                .insert("bind".into(), (Value::List(binds), origin));
        }
        for o in cli.opts.iter().filter(|o| o.name != "bind") {
            let setting = match o.name.as_str() {
                "keep-alive" => "keepalive".to_string(),
                n => n.replace('-', "_"),
            };
            let value = o.value.clone().map_or(Value::Bool(true), Value::Str);
            let origin = Origin::Cli(format!("--{}", o.name));
            self.values.insert(setting, (value, origin));
        }
    }

    fn str(&self, name: &str) -> Option<&str> {
        match self.values.get(name) {
            Some((Value::Str(s), _)) => Some(s),
            _ => None,
        }
    }

    /// An integer setting: `int(x, 0)` for strings, as gunicorn's `validate_pos_int`; `auto`
    /// also accepts a leading-zero octal (`022`), as gunicorn's `auto_int` does for `umask`.
    fn int(&self, name: &str, b: &mut Backend, auto: bool) -> Result<Option<u64>, CmdlineError> {
        let Some((value, origin)) = self.values.get(name) else {
            return Ok(None);
        };
        let bad = |v: &str| CmdlineError::BadNumber {
            option: origin.describe(name),
            value: v.into(),
        };
        match value {
            Value::Int(n) if *n >= 0 => Ok(Some(*n as u64)),
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
            Value::Expr(e) => {
                b.unparsed
                    .push(format!("{} = {e} (not evaluated)", origin.describe(name)));
                Ok(None)
            }
            other => {
                b.unparsed.push(format!(
                    "{} = {other:?} (not an integer)",
                    origin.describe(name)
                ));
                Ok(None)
            }
        }
    }
}

/// gunicorn: config file, `GUNICORN_CMD_ARGS`, command line, then gunicorn/config.py defaults.
pub fn gunicorn(
    b: &mut Backend,
    cli: Scanned,
    env_cli: Option<Scanned>,
    conf: Option<GunicornConf>,
    env: &BTreeMap<String, String>,
) -> Result<(), CmdlineError> {
    let mut l = Layers::default();
    if let Some(conf) = &conf {
        l.add_conf(conf);
        b.unparsed
            .extend(conf.unparsed.iter().map(|u| format!("config file {u}")));
    }
    if let Some(env_cli) = &env_cli {
        l.add_cli(env_cli);
        b.unparsed.extend(
            env_cli
                .unknown
                .iter()
                .map(|u| format!("GUNICORN_CMD_ARGS {u}")),
        );
    }
    l.add_cli(&cli);
    b.app = cli
        .positionals
        .first()
        .cloned()
        .or_else(|| l.str("wsgi_app").map(String::from));
    b.unparsed.extend(
        cli.positionals
            .iter()
            .skip(1)
            .map(|p| format!("extra argument `{p}`")),
    );
    b.unparsed.extend(cli.unknown.iter().cloned());

    let mut class = l.str("worker_class").unwrap_or("sync").to_string();
    // Config.worker_class: a sync worker with `threads > 1` is run as the gthread worker.
    let threads = l.int("threads", b, false)?.unwrap_or(1);
    if (class == "sync" || class.ends_with("SyncWorker")) && threads > 1 {
        class = "gthread".into();
    }
    b.server = Server::Gunicorn {
        worker_class: class,
    };
    b.binds = gunicorn_binds(&l, b, env)?;
    b.workers = match l.int("workers", b, false)? {
        Some(n) => n as u32,
        // The `workers` default is int($WEB_CONCURRENCY or 1).
        None => env
            .get("WEB_CONCURRENCY")
            .map_or(Ok(1), |w| number("WEB_CONCURRENCY", w))?,
    };
    // uvicorn's UvicornWorker passes `timeout_keep_alive=self.cfg.keepalive`; gunicorn's own
    // async workers use `keepalive` too.
    b.keepalive = GUNICORN_KEEPALIVE_DEFAULT;
    if let Some(k) = l.int("keepalive", b, false)? {
        (b.keepalive, b.keepalive_explicit) = (secs(k), true);
    }
    let timeout = l.int("timeout", b, false)?;
    b.worker_timeout = Some(timeout.map_or(GUNICORN_TIMEOUT_DEFAULT, secs));
    let graceful = l.int("graceful_timeout", b, false)?;
    b.graceful_timeout = Some(graceful.map_or(GUNICORN_TIMEOUT_DEFAULT, secs));
    if let Some(n) = l.int("backlog", b, false)? {
        b.backlog = n as u32;
    }
    b.max_requests = l.int("max_requests", b, false)?.map(|n| n as u32);
    b.max_requests_jitter = l.int("max_requests_jitter", b, false)?.map(|n| n as u32);
    // Config.is_ssl: `certfile or keyfile`.
    b.tls = ["keyfile", "certfile"]
        .iter()
        .any(|k| l.str(k).is_some_and(|s| !s.is_empty()));
    if let Some(ips) = l.str("forwarded_allow_ips") {
        b.forwarded_allow_ips = Some(ips.to_string());
    }
    b.root_path = l
        .str("root_path")
        .filter(|r| !r.is_empty())
        .map(String::from);
    if let Some(user) = l.str("user") {
        b.run_as.user = Some(user.to_string());
    }
    if let Some(group) = l.str("group") {
        b.run_as.group = Some(group.to_string());
    }
    // gunicorn sets its own `umask` (default 0) around binding a unix socket (sock.py
    // UnixSocket.bind), so the inherited umask does not decide the socket's mode.
    b.run_as.umask = Some(l.int("umask", b, true)?.unwrap_or(0) as u32);
    if let Some(dir) = l.str("chdir") {
        b.working_directory = Some(match &b.working_directory {
            Some(wd) => wd.join(dir),
            None => dir.into(),
        });
    }
    Ok(())
}

fn gunicorn_binds(
    l: &Layers,
    b: &mut Backend,
    env: &BTreeMap<String, String>,
) -> Result<Vec<Bind>, CmdlineError> {
    let list = match l.values.get("bind") {
        Some((Value::List(v), _)) => v.clone(),
        Some((Value::Str(s), _)) => vec![s.clone()],
        Some((other, origin)) => {
            b.unparsed.push(format!(
                "{} = {other:?} (not evaluated)",
                origin.describe("bind")
            ));
            Vec::new()
        }
        // The `bind` default: `0.0.0.0:$PORT` when $PORT is set, else 127.0.0.1:8000.
        None => vec![match env.get("PORT") {
            Some(p) => format!("0.0.0.0:{p}"),
            None => "127.0.0.1:8000".into(),
        }],
    };
    list.iter().map(|a| parse_address(a)).collect()
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
