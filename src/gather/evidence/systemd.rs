//! systemd units as evidence: their state over D-Bus (`org.freedesktop.systemd1`) and their
//! journal (through `journalctl -o json`).
//!
//! The public functions are synchronous: each runs its D-Bus calls on a small current-thread
//! tokio runtime of its own, so it must not be called from inside a tokio runtime (use
//! [`connect`] and [`units_on`] there). It only reads; restarting lives in `act::restart`.
//!
//! Where to look is a [`Systemd`]: the system bus and the host's journal by default, or (from
//! the environment, or set directly by tests) another bus address such as
//! `unix:path=/proc/PID/root/run/dbus/system_bus_socket` and a journal directory, for a
//! container's systemd.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use zbus::Connection;
use zbus::proxy::CacheProperties;
use zbus_systemd::systemd1::ManagerProxy;

use crate::model::evidence::{AppLogLine, Fact, Unavailable, UnitState};

/// The environment variable that overrides the system bus address.
pub const BUS_ENV: &str = "REFLEX_SYSTEM_BUS";
/// The environment variable that points `journal` at a journal directory (`journalctl -D`).
pub const JOURNAL_DIR_ENV: &str = "REFLEX_JOURNAL_DIR";
/// How long one D-Bus call may take: systemd answers property reads in microseconds, so a
/// slow answer means a wedged PID 1, which is itself worth reporting rather than waiting on.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Which systemd to talk to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Systemd {
    /// A D-Bus address; `None`: the system bus.
    pub bus: Option<String>,
    /// A journal directory (`journalctl -D`); `None`: the host's journal.
    pub journal_dir: Option<PathBuf>,
}

impl Systemd {
    /// `$REFLEX_SYSTEM_BUS` and `$REFLEX_JOURNAL_DIR` when set (and not empty).
    pub fn from_env() -> Self {
        let var = |k| std::env::var_os(k).filter(|v| !v.is_empty());
        Systemd {
            bus: var(BUS_ENV).map(|v| v.to_string_lossy().into_owned()),
            journal_dir: var(JOURNAL_DIR_ENV).map(PathBuf::from),
        }
    }

    /// The state of each named unit (`app.service`; a name without a suffix gets `.service`).
    pub fn units(&self, names: &[String]) -> Fact<Vec<UnitState>> {
        let what = "systemd unit state (D-Bus)";
        let rt = match runtime() {
            Ok(rt) => rt,
            Err(e) => return Fact::unavailable(what, e.to_string(), "report this as a bug"),
        };
        rt.block_on(async {
            let conn = match self.connect().await {
                Ok(c) => c,
                Err(u) => return Fact::Unavailable(u),
            };
            match tokio::time::timeout(CALL_TIMEOUT * 2, units_on(&conn, names)).await {
                Ok(Ok(states)) => Fact::Known(states),
                Ok(Err(e)) => {
                    Fact::unavailable(what, e.to_string(), "check that systemd is healthy")
                }
                Err(_) => Fact::unavailable(what, "systemd did not answer in time", "check PID 1"),
            }
        })
    }
}

/// [`Systemd::units`] on the systemd named by the environment ([`Systemd::from_env`]).
pub fn units(names: &[String]) -> Fact<Vec<UnitState>> {
    Systemd::from_env().units(names)
}

/// [`Systemd::journal`] on the systemd named by the environment ([`Systemd::from_env`]).
pub fn journal(unit: &str, since_ms: u64, max_lines: usize) -> Fact<Vec<AppLogLine>> {
    Systemd::from_env().journal(unit, since_ms, max_lines)
}

/// The state of each named unit, over an existing connection.
pub async fn units_on(conn: &Connection, names: &[String]) -> zbus::Result<Vec<UnitState>> {
    let manager = ManagerProxy::new(conn).await?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let unit = unit_name(name);
        // LoadUnit (not GetUnit): a unit that is not loaded right now still has a state.
        let path = manager.load_unit(unit.clone()).await?;
        let u = snapshot(conn, &path, "org.freedesktop.systemd1.Unit").await?;
        // Service properties exist only on `.service` units: elsewhere they read as zero.
        let s = if unit.ends_with(".service") {
            snapshot(conn, &path, "org.freedesktop.systemd1.Service").await?
        } else {
            Props::new()
        };
        out.push(UnitState {
            active_state: text(&u, "ActiveState"),
            sub_state: text(&u, "SubState"),
            active_enter_ms: number::<u64>(&u, "ActiveEnterTimestamp") / 1000,
            inactive_enter_ms: number::<u64>(&u, "InactiveEnterTimestamp") / 1000,
            n_restarts: number(&s, "NRestarts"),
            main_pid: number(&s, "MainPID"),
            result: text(&s, "Result"),
            exec_main_status: number(&s, "ExecMainStatus"),
            unit,
        });
    }
    Ok(out)
}

type Props = std::collections::HashMap<String, zbus::wire::OwnedVariant>;

/// Every property of one interface of a unit, with one `GetAll`: one snapshot of systemd's
/// state. Reading them one by one races with its state machine (`ActiveState` read as
/// `activating`, `SubState` a moment later as `running`).
async fn snapshot(
    conn: &Connection,
    path: &zbus::wire::OwnedObjectPath,
    interface: &'static str,
) -> zbus::Result<Props> {
    let props = zbus::fdo::PropertiesProxy::builder(conn)
        .destination("org.freedesktop.systemd1")
        .path(path.clone())
        .cache_properties(CacheProperties::No)
        .build()
        .await?;
    let name = zbus::names::InterfaceName::from_static_str_unchecked(interface);
    Ok(props.get_all(name).await?)
}

fn text(p: &Props, key: &str) -> String {
    p.get(key)
        .and_then(|v| <&str>::try_from(v).ok())
        .unwrap_or_default()
        .to_string()
}

fn number<T>(p: &Props, key: &str) -> T
where
    T: Default + for<'a> TryFrom<&'a zbus::wire::OwnedVariant>,
{
    p.get(key)
        .and_then(|v| T::try_from(v).ok())
        .unwrap_or_default()
}

/// `app` → `app.service`; names with a unit suffix are kept.
pub fn unit_name(name: &str) -> String {
    const SUFFIXES: [&str; 11] = [
        ".service",
        ".socket",
        ".target",
        ".timer",
        ".mount",
        ".path",
        ".slice",
        ".scope",
        ".device",
        ".swap",
        ".automount",
    ];
    if SUFFIXES.iter().any(|s| name.ends_with(s)) {
        name.to_string()
    } else {
        format!("{name}.service")
    }
}

/// The small runtime the synchronous functions run on.
pub(crate) fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

impl Systemd {
    /// Connects to the bus. A missing bus is the normal case on a host without systemd and
    /// comes back as [`Unavailable`], as does a refused connection.
    pub async fn connect(&self) -> Result<Connection, Unavailable> {
        let what = "systemd unit state (D-Bus)";
        let builder = match &self.bus {
            Some(addr) => zbus::connection::Builder::address(addr.as_str()),
            None => zbus::connection::Builder::system(),
        };
        let built = builder.method_timeout(CALL_TIMEOUT).build();
        match tokio::time::timeout(CALL_TIMEOUT, built).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(connect_error(what, &e)),
            Err(_) => Err(unavailable(
                what,
                "the system bus did not answer in time",
                "check dbus-daemon",
            )),
        }
    }
}

fn connect_error(what: &str, e: &zbus::Error) -> Unavailable {
    // zbus wraps the socket's io::Error (in `Connection` when connecting, `InputOutput` later).
    let io_kind = std::error::Error::source(e).and_then(|s| {
        s.downcast_ref::<std::sync::Arc<io::Error>>()
            .map(|e| e.kind())
            .or_else(|| s.downcast_ref::<io::Error>().map(io::Error::kind))
    });
    match io_kind {
        Some(io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused) => unavailable(
            what,
            "systemd is not running (no system bus)",
            "run on a host whose init is systemd, or set REFLEX_SYSTEM_BUS to its bus address",
        ),
        Some(io::ErrorKind::PermissionDenied) => {
            unavailable(what, "permission denied on the system bus", "run as root")
        }
        _ => unavailable(
            what,
            format!("cannot connect to the system bus: {e}"),
            "check dbus-daemon",
        ),
    }
}

fn unavailable(what: &str, why: impl Into<String>, how: &str) -> Unavailable {
    Unavailable {
        what: what.into(),
        why: why.into(),
        how: how.into(),
    }
}

impl Systemd {
    /// The journal of `unit` since `since_ms` (0: from the start), at most the last `max_lines`
    /// entries, oldest first, from `journalctl -u UNIT -o json`.
    pub fn journal(&self, unit: &str, since_ms: u64, max_lines: usize) -> Fact<Vec<AppLogLine>> {
        let unit = unit_name(unit);
        let what = format!("journal of {unit}");
        let mut cmd = Command::new("journalctl");
        match &self.journal_dir {
            Some(dir) => {
                cmd.arg("-D").arg(dir);
            }
            // sd_booted(): systemd creates /run/systemd/system at boot.
            None if !Path::new("/run/systemd/system").exists() => {
                return Fact::unavailable(
                    &what,
                    "systemd is not running",
                    "run on a host whose init is systemd",
                );
            }
            None => {}
        }
        // --all: without it journalctl prints fields over 4096 bytes as null.
        cmd.args([
            "-u",
            &unit,
            "-o",
            "json",
            "--all",
            "--no-pager",
            "-n",
            &max_lines.to_string(),
        ]);
        if since_ms > 0 {
            cmd.arg("--since").arg(format!("@{}", since_ms / 1000));
        }
        let out = match cmd.output() {
            Ok(out) => out,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Fact::unavailable(
                    &what,
                    "journalctl is not installed",
                    "install systemd's journalctl",
                );
            }
            Err(e) => return Fact::unavailable(&what, format!("cannot run journalctl: {e}"), ""),
        };
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let how = if err.contains("ermission") {
                "run as root or a user in the systemd-journal group"
            } else {
                ""
            };
            return Fact::unavailable(&what, format!("journalctl failed: {}", err.trim()), how);
        }
        let mut lines = parse_journal_json(&out.stdout);
        // `--since @SECS` has second resolution.
        lines.retain(|l| l.at_ms.is_none_or(|t| t >= since_ms));
        if lines.len() > max_lines {
            lines.drain(..lines.len() - max_lines);
        }
        Fact::Known(lines)
    }
}

/// Parses `journalctl -o json` output: one JSON object per line. `MESSAGE` is a string, or an
/// array of bytes when it is not valid UTF-8 (journalctl's rule), or null when too large;
/// `__REALTIME_TIMESTAMP` is microseconds since the epoch, as a string. Unreadable lines are
/// skipped.
pub fn parse_journal_json(out: &[u8]) -> Vec<AppLogLine> {
    out.split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
        .filter_map(|entry| {
            let text = match entry.get("MESSAGE")? {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(bytes) => {
                    let bytes: Vec<u8> = bytes
                        .iter()
                        .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                        .collect();
                    String::from_utf8_lossy(&bytes).into_owned()
                }
                _ => return None,
            };
            let at_ms = entry
                .get("__REALTIME_TIMESTAMP")
                .and_then(|t| t.as_str())
                .and_then(|t| t.parse::<u64>().ok())
                .map(|us| us / 1000);
            Some(AppLogLine { at_ms, text })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_json_strings_byte_arrays_and_junk() {
        // The shapes `journalctl -o json` (systemd 252) prints, fields trimmed; tests/it/systemd.rs
        // reads a real journal.
        let out = br#"{"__REALTIME_TIMESTAMP":"1704164645123456","_SYSTEMD_UNIT":"app.service","MESSAGE":"Serving HTTP on 127.0.0.1 port 8080"}
{"__REALTIME_TIMESTAMP":"1704164646000000","MESSAGE":[104,105,255,33]}
{"__REALTIME_TIMESTAMP":"1704164647000000","MESSAGE":null}
not json
{"MESSAGE":"no time"}
"#;
        let got = parse_journal_json(out);
        let want = vec![
            AppLogLine {
                at_ms: Some(1_704_164_645_123),
                text: "Serving HTTP on 127.0.0.1 port 8080".into(),
            },
            AppLogLine {
                at_ms: Some(1_704_164_646_000),
                text: "hi\u{fffd}!".into(),
            },
            AppLogLine {
                at_ms: None,
                text: "no time".into(),
            },
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn unit_names_get_service_suffix() {
        assert_eq!(unit_name("app"), "app.service");
        assert_eq!(unit_name("app.socket"), "app.socket");
        assert_eq!(unit_name("app@1.service"), "app@1.service");
        assert_eq!(unit_name("my.app"), "my.app.service");
    }

    #[test]
    fn no_bus_is_unavailable_not_a_crash() {
        // An address nobody listens on: the same error as a host without systemd.
        let e = zbus::Error::InputOutput(std::sync::Arc::new(io::Error::from(
            io::ErrorKind::NotFound,
        )));
        let u = connect_error("x", &e);
        assert_eq!(u.why, "systemd is not running (no system bus)");
    }

    #[test]
    fn missing_bus_socket_is_unavailable() {
        let sys = Systemd {
            bus: Some("unix:path=/nonexistent/reflex/system_bus_socket".into()),
            journal_dir: None,
        };
        let got = sys.units(&["app".into()]);
        assert!(
            matches!(got, Fact::Unavailable(ref u) if u.why == "systemd is not running (no system bus)"),
            "{got:?}"
        );
    }
}
