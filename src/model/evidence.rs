//! Live evidence about a host, as plain data: what `reflex diagnose` gathers and its rules read.
//!
//! Every item is either a fact or [`Fact::Unavailable`] with why and how to get it: missing
//! permissions are data, never a crash.

use std::path::PathBuf;

use serde::Serialize;

/// A fact, or why it could not be gathered and how to get it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "value")]
pub enum Fact<T> {
    Known(T),
    Unavailable(Unavailable),
}

impl<T> Fact<T> {
    pub fn known(&self) -> Option<&T> {
        match self {
            Fact::Known(t) => Some(t),
            Fact::Unavailable(_) => None,
        }
    }

    pub fn unavailable(what: &str, why: impl Into<String>, how: impl Into<String>) -> Self {
        Fact::Unavailable(Unavailable {
            what: what.into(),
            why: why.into(),
            how: how.into(),
        })
    }
}

impl<T> Default for Fact<T> {
    fn default() -> Self {
        Fact::unavailable("", "not gathered", "")
    }
}

/// A piece of evidence that could not be gathered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unavailable {
    /// What is missing, e.g. `socket owners (/proc/*/fd)`.
    pub what: String,
    /// Why, e.g. `permission denied`.
    pub why: String,
    /// How to get it, e.g. `run as root or with CAP_SYS_PTRACE`.
    pub how: String,
}

/// A process, from `/proc/PID/{stat,status,cmdline}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessInfo {
    pub pid: i32,
    pub ppid: i32,
    /// `R`, `S`, `D`, `T` (stopped), `t` (traced), `Z` (zombie)…
    pub state: char,
    /// Start time, milliseconds since the Unix epoch.
    pub start_ms: u64,
    /// utime + stime in clock ticks, sampled twice `sample_ms` apart: no progress while
    /// requests wait means hung (stopped, deadlocked, blocked event loop on a sleep/lock).
    pub cpu_ticks: (u64, u64),
    pub sample_ms: u64,
    pub uid: u32,
    pub user: Option<String>,
    pub cmdline: Vec<String>,
}

/// The nginx processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NginxProcesses {
    pub master: ProcessInfo,
    pub workers: Vec<ProcessInfo>,
    /// `-c`, `-p`, `-g` of the master.
    pub conf: PathBuf,
    pub prefix: Option<PathBuf>,
    pub globals: Option<String>,
}

/// A backend's process tree: the uvicorn or gunicorn master and its workers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackendProcesses {
    /// The matching `Backend::name` when the tree could be tied to one.
    pub backend: Option<String>,
    pub master: ProcessInfo,
    pub workers: Vec<ProcessInfo>,
    /// The master's cgroup (`/system.slice/app.service`; the v2 path, else the v1 memory
    /// controller's), when readable: an OOM kill in that cgroup is this backend's.
    pub cgroup: Option<String>,
}

/// A listening socket, from netlink sock_diag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listener {
    /// `127.0.0.1:8000`, `[::]:8000`, or `unix:/run/app.sock`.
    pub local: String,
    pub inode: u64,
    /// Connections completed by the kernel and not yet accepted.
    pub accept_queue: u32,
    /// The effective backlog (after the somaxconn cap).
    pub backlog: u32,
    /// Owning processes (needs root for other users' processes).
    pub pids: Vec<i32>,
    /// An IPv6 socket that takes no IPv4 connections (`IPV6_V6ONLY`, as asyncio sets it for
    /// `::`): `[::]:8000` then serves `[::1]:8000` but not `127.0.0.1:8000`.
    pub v6only: bool,
}

/// Sockets and kernel counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Kernel {
    /// `TcpExt: ListenOverflows` and `ListenDrops` from /proc/net/netstat, sampled twice like
    /// `ProcessInfo::cpu_ticks`.
    pub listen_overflows: Fact<(u64, u64)>,
    pub listen_drops: Fact<(u64, u64)>,
    pub somaxconn: Fact<u32>,
    /// OOM kills from the kernel log.
    pub oom_kills: Fact<Vec<OomKill>>,
    /// TCP connections in SYN-SENT per destination (`127.0.0.1:8000` → count): nginx waiting on
    /// a full accept queue.
    pub syn_sent: Fact<Vec<(String, u32)>>,
}

/// One OOM kill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OomKill {
    /// Milliseconds since the Unix epoch, when the log gives it.
    pub at_ms: Option<u64>,
    pub pid: i32,
    pub comm: String,
    /// The killed task's memory cgroup (`task_memcg=` of the `oom-kill:` record), when logged.
    pub memcg: Option<String>,
    /// The kernel log line.
    pub line: String,
}

/// A systemd unit's state, from D-Bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitState {
    pub unit: String,
    pub active_state: String,
    pub sub_state: String,
    pub n_restarts: u32,
    pub main_pid: u32,
    pub result: String,
    pub exec_main_status: i32,
    /// When it last entered the active state, ms since the epoch (0: never).
    pub active_enter_ms: u64,
    /// When it last entered the inactive or failed state, ms since the epoch (0: never): with
    /// `active_enter_ms`, whether a failure or restart is recent or stale.
    pub inactive_enter_ms: u64,
}

/// A supervisord program's state, from XML-RPC `getProcessInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProgramState {
    pub name: String,
    pub group: String,
    /// `STOPPED`, `STARTING`, `RUNNING`, `BACKOFF`, `STOPPING`, `EXITED`, `FATAL`, `UNKNOWN`.
    pub state: String,
    pub pid: i32,
    /// Seconds since the epoch.
    pub start: u64,
    pub stop: u64,
    pub exit_status: i32,
    pub spawn_error: String,
    pub stdout_logfile: Option<PathBuf>,
    pub stderr_logfile: Option<PathBuf>,
}

/// How one HTTP probe went. Timings in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum ProbeOutcome {
    /// A response status line arrived.
    Response {
        status: u16,
        connect_ms: f64,
        first_byte_ms: f64,
    },
    /// connect() failed: `errno` 111 refused, 13 permission denied, 2 no such file, 11 EAGAIN…
    ConnectFailed {
        errno: i32,
        message: String,
        after_ms: f64,
    },
    /// No connection within the timeout (TCP accept queue full: SYNs dropped).
    ConnectTimeout { after_ms: f64 },
    /// Connected, but no response byte within the timeout (hung or slow backend).
    ReadTimeout { connect_ms: f64, after_ms: f64 },
    /// Connected, then the peer closed or reset before a response (crashing worker, TLS
    /// backend spoken to in plain HTTP, …).
    Closed {
        connect_ms: f64,
        after_ms: f64,
        reset: bool,
    },
    /// The response did not parse as HTTP (e.g. a TLS alert).
    Garbage {
        connect_ms: f64,
        after_ms: f64,
        first_bytes: String,
    },
}

/// One health probe.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Probe {
    /// `unix:/run/app.sock`, `127.0.0.1:8000`, or `nginx http://127.0.0.1:80`.
    pub target: String,
    /// Whether it went through nginx (as a client would) or straight to the upstream.
    pub via_nginx: bool,
    /// The request path, e.g. `/`.
    pub path: String,
    pub timeout_ms: u64,
    pub outcome: ProbeOutcome,
}

/// A line from the application's log (journald, supervisord's program log, or `--app-log`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppLogLine {
    /// Milliseconds since the epoch when known.
    pub at_ms: Option<u64>,
    pub text: String,
}

/// The application log of one backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppLog {
    /// `journal:app.service`, `supervisord:app`, or the file path.
    pub source: String,
    pub backend: Option<String>,
    pub lines: Vec<AppLogLine>,
}

/// Everything gathered live about a host.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Evidence {
    /// When gathering started, ms since the epoch.
    pub at_ms: u64,
    pub nginx: Fact<Vec<NginxProcesses>>,
    pub backends: Fact<Vec<BackendProcesses>>,
    pub listeners: Fact<Vec<Listener>>,
    pub kernel: Kernel,
    pub units: Fact<Vec<UnitState>>,
    pub programs: Fact<Vec<ProgramState>>,
    pub probes: Vec<Probe>,
    pub app_logs: Vec<AppLog>,
    /// Every piece of evidence that could not be gathered, for the report.
    pub unavailable: Vec<Unavailable>,
}
