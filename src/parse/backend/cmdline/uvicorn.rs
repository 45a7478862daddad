//! uvicorn's effective settings: the command line, then (click's `auto_envvar_prefix="UVICORN"`)
//! `UVICORN_<OPTION>` for options not on it, then the defaults in uvicorn/main.py and
//! uvicorn/config.py. A value that cannot be read makes its setting unknown, never the default.

use std::collections::BTreeMap;

use super::options::Scanned;
use super::{CmdlineError, number, secs};
use crate::model::backend::{Backend, Bind, Knob, Server, UVICORN_KEEPALIVE_DEFAULT};
use crate::parse::backend::boolean;

/// The environment variable uvicorn reads for option `name` (`UVICORN_<OPTION>`).
fn env_var(name: &str) -> String {
    format!("UVICORN_{}", name.to_ascii_uppercase().replace('-', "_"))
}

/// Where an option's value comes from.
pub(super) enum Got {
    /// Set: by the option (`--port`) or the variable (`UVICORN_PORT`) named first.
    Set(String, String),
    /// Set to something that cannot be read, or possibly set where we cannot see.
    Unknown(String),
    Unset,
}

/// The sources of uvicorn's settings.
pub(super) struct Sources<'a> {
    pub cli: &'a Scanned,
    /// Words (indices into the scanned words) whose value is unknown, with why.
    pub gaps: &'a BTreeMap<usize, String>,
    pub env: &'a BTreeMap<String, String>,
    /// Why the environment may hold variables we could not read, if it may.
    pub env_gap: Option<&'a str>,
}

impl Sources<'_> {
    pub(super) fn get(&self, name: &str) -> Got {
        if let Some(o) = self.cli.last_opt(name) {
            let value = o.value.clone().unwrap_or_default();
            return match self.gaps.get(&o.word) {
                Some(why) => Got::Unknown(format!("`--{name} {value}`: {why}")),
                None => Got::Set(format!("--{name}"), value),
            };
        }
        let var = env_var(name);
        if let Some(v) = self.env.get(&var) {
            return Got::Set(var, v.clone());
        }
        match self.env_gap {
            Some(why) => Got::Unknown(format!("`{var}` may be set: {why}")),
            None => Got::Unset,
        }
    }

    /// A number option: `Ok(None)` when unset or unknown (then `knob` is marked unknown).
    fn num(&self, b: &mut Backend, name: &str, knob: Knob) -> Result<Option<u64>, CmdlineError> {
        match self.get(name) {
            Got::Set(opt, v) => number(&opt, &v).map(Some),
            Got::Unknown(why) => {
                b.set_unknown(knob, why);
                Ok(None)
            }
            Got::Unset => Ok(None),
        }
    }

    /// A number no rule relies on: unknown is recorded as not understood, and taken as unset.
    fn optional(&self, b: &mut Backend, name: &str) -> Result<Option<u64>, CmdlineError> {
        match self.get(name) {
            Got::Set(opt, v) => number(&opt, &v).map(Some),
            Got::Unknown(why) if self.cli.last_opt(name).is_some() => {
                b.unparsed.push(why);
                Ok(None)
            }
            Got::Unknown(_) | Got::Unset => Ok(None),
        }
    }

    /// A flag (`--reload`, or `UVICORN_RELOAD=true`).
    fn flag(&self, b: &mut Backend, name: &str, knob: Knob) -> bool {
        if self.cli.opts.iter().any(|o| o.name == name) {
            return true;
        }
        let var = env_var(name);
        match (self.env.get(&var), self.env_gap) {
            (Some(v), _) => boolean(v).unwrap_or(false),
            (None, Some(why)) => {
                b.set_unknown(knob, format!("`{var}` may be set: {why}"));
                false
            }
            (None, None) => false,
        }
    }
}

pub(super) fn apply(b: &mut Backend, s: &Sources<'_>) -> Result<(), CmdlineError> {
    b.server = Server::Uvicorn;
    let mut positionals = s.cli.positionals.iter();
    b.app = positionals
        .next()
        .cloned()
        .or_else(|| s.env.get("UVICORN_APP").cloned());
    b.unparsed
        .extend(positionals.map(|p| format!("extra argument `{p}`")));
    bind(b, s)?;
    b.keepalive = UVICORN_KEEPALIVE_DEFAULT;
    if let Some(k) = s.num(b, "timeout-keep-alive", Knob::KeepAlive)? {
        (b.keepalive, b.keepalive_explicit) = (secs(k), true);
    }
    // Config(workers=None) falls back to $WEB_CONCURRENCY, then 1.
    b.workers = match s.get("workers") {
        Got::Set(opt, w) => number(&opt, &w)?,
        Got::Unknown(why) => {
            b.set_unknown(Knob::Workers, why);
            1
        }
        Got::Unset => match s.env.get("WEB_CONCURRENCY") {
            Some(w) => number("WEB_CONCURRENCY", w)?,
            None => 1,
        },
    };
    if let Some(n) = s.num(b, "backlog", Knob::Backlog)? {
        b.backlog = n as u32;
    }
    b.limit_concurrency = s.optional(b, "limit-concurrency")?.map(|n| n as u32);
    b.max_requests = s.optional(b, "limit-max-requests")?.map(|n| n as u32);
    b.max_requests_jitter = s
        .optional(b, "limit-max-requests-jitter")?
        .map(|n| n as u32);
    b.graceful_timeout = s
        .num(b, "timeout-graceful-shutdown", Knob::GracefulTimeout)?
        .map(secs);
    b.reload = s.flag(b, "reload", Knob::Reload);
    b.proxy_headers = match s.cli.flag("proxy-headers", "no-proxy-headers") {
        Some(on) => on,
        None => s
            .env
            .get("UVICORN_PROXY_HEADERS")
            .and_then(|v| boolean(v))
            .unwrap_or(true),
    };
    if let Got::Set(_, ips) = s.get("forwarded-allow-ips") {
        b.forwarded_allow_ips = Some(ips);
    }
    // uvicorn's Config.is_ssl: either file makes it serve TLS.
    let tls: Vec<Got> = ["ssl-keyfile", "ssl-certfile"]
        .iter()
        .map(|o| s.get(o))
        .collect();
    b.tls = tls.iter().any(|g| matches!(g, Got::Set(..)));
    if !b.tls
        && let Some(Got::Unknown(why)) = tls.iter().find(|g| matches!(g, Got::Unknown(_)))
    {
        b.set_unknown(Knob::Tls, why.clone());
    }
    b.root_path = match s.get("root-path") {
        Got::Set(_, r) if !r.is_empty() => Some(r),
        _ => None,
    };
    b.unparsed.extend(s.cli.unknown.iter().cloned());
    Ok(())
}

/// uvicorn's bind_socket() checks `uds`, then `fd`, then host/port.
fn bind(b: &mut Backend, s: &Sources<'_>) -> Result<(), CmdlineError> {
    let unknown = |b: &mut Backend, why: String| {
        b.binds.clear();
        b.set_unknown(Knob::Bind, why);
    };
    match s.get("uds") {
        Got::Set(_, path) => {
            b.binds = vec![Bind::Unix { path: path.into() }];
            return Ok(());
        }
        Got::Unknown(why) => {
            unknown(b, why);
            return Ok(());
        }
        Got::Unset => {}
    }
    match s.get("fd") {
        Got::Set(opt, fd) => {
            b.binds = vec![Bind::Fd {
                fd: number(&opt, &fd)?,
            }];
            return Ok(());
        }
        Got::Unknown(why) => {
            unknown(b, why);
            return Ok(());
        }
        Got::Unset => {}
    }
    let host = match s.get("host") {
        Got::Set(_, h) => Some(h),
        Got::Unknown(why) => {
            unknown(b, why);
            None
        }
        Got::Unset => Some("127.0.0.1".to_string()),
    };
    let port = match s.get("port") {
        Got::Set(opt, p) => Some(number(&opt, &p)?),
        Got::Unknown(why) => {
            unknown(b, why);
            None
        }
        Got::Unset => Some(8000),
    };
    if let (Some(host), Some(port)) = (host, port) {
        b.binds = vec![Bind::Tcp { host, port }];
    }
    Ok(())
}
