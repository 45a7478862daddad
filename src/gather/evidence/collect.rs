//! Gathers every piece of live evidence for `reflex diagnose`, concurrently: the two-sample
//! readings (processes, kernel counters), sockets, probes, unit and program state and
//! application logs run in parallel threads, so the whole takes about one sampling interval
//! or one probe timeout, whichever is longer.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use crate::model::backend::{Backend, Source};
use crate::model::evidence::{AppLog, Evidence, Fact, Unavailable};
use crate::model::nginx::NginxModel;

use super::{applog, kernel, probe, procs, sockets, supervisord, systemd};

/// What to gather.
pub struct Options<'a> {
    pub backends: &'a [Backend],
    pub nginx: Option<&'a NginxModel<'a>>,
    /// Run HTTP probes (straight to each upstream, and through nginx).
    pub probe: bool,
    pub probe_timeout: Duration,
    /// Interval between the two samples of CPU ticks and kernel counters.
    pub sample: Duration,
    /// Application logs from this time on (ms since the epoch).
    pub since_ms: u64,
    /// `--app-log` files.
    pub app_logs: &'a [PathBuf],
}

/// Gathers the evidence. Never fails: what cannot be had is listed in `unavailable`.
pub fn collect(o: &Options<'_>) -> Evidence {
    let at_ms = now_ms();
    let requests = if o.probe {
        probe_requests(o)
    } else {
        Vec::new()
    };
    let (
        (nginx_procs, backend_procs),
        kernel,
        (listeners, owners_note),
        probes,
        units,
        (programs, supervisor_logs),
    ) = std::thread::scope(|s| {
        let p = s.spawn(|| procs::sample(o.backends, o.sample));
        let k = s.spawn(|| kernel::sample(o.sample));
        let l = s.spawn(sockets::listeners);
        let pr = s.spawn(|| probe::probe_all(&requests, o.probe_timeout));
        let u = s.spawn(|| unit_state(o));
        let sv = s.spawn(|| program_state(o));
        (
            p.join().unwrap_or_else(|_| {
                (
                    Fact::unavailable("processes", "panicked", ""),
                    Fact::unavailable("processes", "panicked", ""),
                )
            }),
            k.join().unwrap_or_default(),
            l.join()
                .unwrap_or_else(|_| (Fact::unavailable("sockets", "panicked", ""), None)),
            pr.join().unwrap_or_default(),
            u.join()
                .unwrap_or_else(|_| (Fact::unavailable("systemd", "panicked", ""), Vec::new())),
            sv.join()
                .unwrap_or_else(|_| (Fact::unavailable("supervisord", "panicked", ""), Vec::new())),
        )
    });
    let (units, journals) = units;
    let mut app_logs: Vec<AppLog> = Vec::new();
    let mut unavailable: Vec<Unavailable> = Vec::new();
    for (backend, source, fact) in journals.into_iter().chain(supervisor_logs) {
        match fact {
            Fact::Known(lines) => app_logs.push(AppLog {
                source,
                backend: Some(backend),
                lines,
            }),
            Fact::Unavailable(u) => unavailable.push(u),
        }
    }
    for path in o.app_logs {
        match applog::read_tail(path, Some(o.since_ms), 4 << 20) {
            Fact::Known(lines) => app_logs.push(AppLog {
                source: path.display().to_string(),
                backend: None,
                lines,
            }),
            Fact::Unavailable(u) => unavailable.push(u),
        }
    }
    let mut ev = Evidence {
        at_ms,
        nginx: nginx_procs,
        backends: backend_procs,
        listeners,
        kernel,
        units,
        programs,
        probes,
        app_logs,
        unavailable,
    };
    ev.unavailable.extend(owners_note);
    collect_unavailable(&mut ev);
    ev
}

/// Copies every `Fact::Unavailable` into the evidence's list (once each).
fn collect_unavailable(ev: &mut Evidence) {
    let mut found: Vec<Unavailable> = Vec::new();
    let mut add = |u: Option<&Unavailable>| {
        if let Some(u) = u {
            found.push(u.clone());
        }
    };
    fn un<T>(f: &Fact<T>) -> Option<&Unavailable> {
        match f {
            Fact::Unavailable(u) => Some(u),
            Fact::Known(_) => None,
        }
    }
    add(un(&ev.nginx));
    add(un(&ev.backends));
    add(un(&ev.listeners));
    add(un(&ev.units));
    add(un(&ev.programs));
    add(un(&ev.kernel.listen_overflows));
    add(un(&ev.kernel.somaxconn));
    add(un(&ev.kernel.oom_kills));
    add(un(&ev.kernel.syn_sent));
    for u in found {
        if !u.what.is_empty() && !ev.unavailable.contains(&u) {
            ev.unavailable.push(u);
        }
    }
}

/// Probes straight to every upstream address nginx uses, and through each local `listen` of a
/// server that proxies.
fn probe_requests(o: &Options<'_>) -> Vec<probe::Request> {
    let Some(nginx) = o.nginx else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for t in nginx.targets() {
        for ep in probe::Endpoint::from_addr(&t.addr).unwrap_or_default() {
            if seen.insert(ep.to_string()) {
                out.push(probe::Request::upstream(ep, "/"));
            }
        }
    }
    // Through nginx, to a path a proxying location of that server matches (and with its
    // name as `Host`): the probe then crosses nginx to the upstream, as a client's request
    // does, instead of asking nginx for `/` (often a static 404 that nginx logs as an error).
    let mut proxying: BTreeMap<usize, String> = BTreeMap::new();
    for l in nginx.locations.iter().filter(|l| l.proxy_pass.is_some()) {
        if let Some(path) = l.literal_prefix() {
            proxying.entry(l.server).or_insert_with(|| path.to_string());
        } else {
            proxying.entry(l.server).or_insert_with(|| "/".into());
        }
    }
    for (i, path) in proxying {
        let Some(server) = nginx.servers.get(i) else {
            continue;
        };
        let host = server
            .names
            .iter()
            .find(|n| !n.is_empty() && *n != "_" && !n.contains(['*', '~']))
            .cloned();
        for listen in &server.listens {
            if let Some(addr) = listen_addr(listen)
                && seen.insert(format!("nginx {addr} {host:?}"))
            {
                let mut r = probe::Request::nginx(addr, &path);
                r.host = host.clone();
                out.push(r);
            }
        }
    }
    out
}

/// A `listen` value as a local address to connect to: `80`, `127.0.0.1:8080`, `[::]:80`,
/// `*:80`. Unix listens and TLS ports are skipped (the probe speaks plain HTTP).
fn listen_addr(listen: &str) -> Option<SocketAddr> {
    if listen.starts_with("unix:") || listen == "443" || listen.ends_with(":443") {
        return None;
    }
    if let Ok(port) = listen.parse::<u16>() {
        return Some(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let (host, port) = listen.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_matches(['[', ']']);
    let host = match host {
        "*" | "0.0.0.0" | "" => "127.0.0.1",
        "::" => "::1",
        h => h,
    };
    (host, port).to_socket_addrs().ok()?.next()
}

type Logs = Vec<(
    String,
    String,
    Fact<Vec<crate::model::evidence::AppLogLine>>,
)>;

/// systemd state and journal of the backends that are units.
fn unit_state(o: &Options<'_>) -> (Fact<Vec<crate::model::evidence::UnitState>>, Logs) {
    let names: Vec<(String, String)> = o
        .backends
        .iter()
        .filter_map(|b| match &b.source {
            Source::SystemdUnit { unit, .. } => Some((b.name.clone(), unit.clone())),
            _ => None,
        })
        .collect();
    if names.is_empty() {
        return (Fact::Known(Vec::new()), Vec::new());
    }
    let units: Vec<String> = names.iter().map(|(_, u)| u.clone()).collect();
    let state = systemd::units(&units);
    let logs = names
        .into_iter()
        .map(|(backend, unit)| {
            let lines = systemd::journal(&unit, o.since_ms, 2000);
            (backend, format!("journal:{unit}"), lines)
        })
        .collect();
    (state, logs)
}

/// supervisord state and program logs of the backends that are supervisord programs.
fn program_state(o: &Options<'_>) -> (Fact<Vec<crate::model::evidence::ProgramState>>, Logs) {
    let mut programs = Vec::new();
    let mut logs: Logs = Vec::new();
    let mut any = false;
    let mut seen = BTreeSet::new();
    for b in o.backends {
        let Source::Supervisord { program, path, .. } = &b.source else {
            continue;
        };
        any = true;
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                logs.push((
                    b.name.clone(),
                    format!("supervisord:{program}"),
                    Fact::unavailable(
                        &format!("supervisord config {}", path.display()),
                        e.to_string(),
                        "run as root",
                    ),
                ));
                continue;
            }
        };
        let here = path.parent().unwrap_or(std::path::Path::new("/"));
        let Some(endpoint) = supervisord::endpoint_from_conf(&text, here) else {
            logs.push((
                b.name.clone(),
                format!("supervisord:{program}"),
                Fact::unavailable(
                    "supervisord state",
                    format!(
                        "no [unix_http_server] or [inet_http_server] in {}",
                        path.display()
                    ),
                    "enable supervisord's RPC interface",
                ),
            ));
            continue;
        };
        if seen.insert(format!("{endpoint:?}")) {
            match supervisord::programs(&endpoint) {
                Fact::Known(p) => programs.extend(p),
                Fact::Unavailable(u) => return (Fact::Unavailable(u), logs),
            }
        }
        let tail = match supervisord::tail(&endpoint, program, 64 << 10) {
            Fact::Known(lines) => {
                let modified = newest_mtime(programs.iter().filter(|p| &p.name == program));
                Fact::Known(applog::in_window(lines, Some(o.since_ms), modified))
            }
            other => other,
        };
        logs.push((b.name.clone(), format!("supervisord:{program}"), tail));
    }
    if !any {
        return (Fact::Known(Vec::new()), logs);
    }
    (Fact::Known(programs), logs)
}

/// When the programs' log files were last written, ms since the epoch: their undated lines
/// (uvicorn's format) are no newer than that.
fn newest_mtime<'a>(
    programs: impl Iterator<Item = &'a crate::model::evidence::ProgramState>,
) -> Option<u64> {
    programs
        .flat_map(|p| [&p.stdout_logfile, &p.stderr_logfile])
        .flatten()
        .filter_map(|f| applog::modified_ms(f))
        .max()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_values() {
        assert_eq!(
            listen_addr("8080"),
            Some("127.0.0.1:8080".parse().expect("addr"))
        );
        assert_eq!(
            listen_addr("127.0.0.1:8081"),
            Some("127.0.0.1:8081".parse().expect("addr"))
        );
        assert_eq!(
            listen_addr("*:80"),
            Some("127.0.0.1:80".parse().expect("addr"))
        );
        assert_eq!(
            listen_addr("[::]:80"),
            Some("[::1]:80".parse().expect("addr"))
        );
        assert_eq!(listen_addr("443"), None);
        assert_eq!(listen_addr("unix:/run/n.sock"), None);
    }
}
