//! A backend's launch settings: what uvicorn or gunicorn was (or will be) started with.
//! Effective values: defaults filled in from the installed versions (uvicorn 0.5x, gunicorn 2x).

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// uvicorn's `--timeout-keep-alive` default.
pub const UVICORN_KEEPALIVE_DEFAULT: Duration = Duration::from_secs(5);
/// gunicorn's `--keep-alive` default (gunicorn 20 to 27).
pub const GUNICORN_KEEPALIVE_DEFAULT: Duration = Duration::from_secs(2);
/// gunicorn's `--timeout` and `--graceful-timeout` default.
pub const GUNICORN_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// uvicorn's and gunicorn's `--backlog` default.
pub const BACKLOG_DEFAULT: u32 = 2048;

/// Which server runs the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "server")]
pub enum Server {
    Uvicorn,
    /// gunicorn, with its worker class as given (`sync` by default).
    Gunicorn {
        worker_class: String,
    },
}

/// One address the backend listens on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Bind {
    /// TCP: `host` as given (`127.0.0.1`, `0.0.0.0`, `::`, `localhost`…) and the port.
    Tcp { host: String, port: u16 },
    /// A unix socket path.
    Unix { path: PathBuf },
    /// An inherited file descriptor (`--fd`, `fd://N`): the address is not known statically.
    Fd { fd: i32 },
}

impl std::fmt::Display for Bind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bind::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Bind::Tcp { host, port } => write!(f, "{host}:{port}"),
            Bind::Unix { path } => write!(f, "unix:{}", path.display()),
            Bind::Fd { fd } => write!(f, "fd://{fd}"),
        }
    }
}

/// Where a backend's launch settings were read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Source {
    /// A `--backend 'COMMAND LINE'` flag (0-based index among the flags).
    Flag { index: usize },
    /// A systemd unit file (`line` of its `ExecStart=`).
    SystemdUnit {
        unit: String,
        path: PathBuf,
        line: u32,
    },
    /// A supervisord `[program:NAME]` section (`line` of its `command=`).
    Supervisord {
        program: String,
        path: PathBuf,
        line: u32,
    },
    /// A running process.
    Process { pid: i32 },
}

/// The identity and file-creation settings the backend runs with, when known
/// (systemd `User=`/`Group=`/`UMask=`/`RuntimeDirectory=`, supervisord `user=`/`umask=`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunAs {
    pub user: Option<String>,
    pub group: Option<String>,
    /// The umask, e.g. `0o022`.
    pub umask: Option<u32>,
    /// systemd `RuntimeDirectory=` entries, as absolute paths under `/run`.
    pub runtime_directories: Vec<PathBuf>,
    /// systemd `RuntimeDirectoryMode=` (default 0755).
    pub runtime_directory_mode: Option<u32>,
}

/// A backend's effective launch settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backend {
    /// A short human name: the unit, the program, `pid 1234`, or `--backend #1`.
    pub name: String,
    pub source: Source,
    pub server: Server,
    /// The command line as split into words.
    pub argv: Vec<String>,
    /// The app, e.g. `main:app`, when given.
    pub app: Option<String>,
    /// Every address it listens on (uvicorn's default `127.0.0.1:8000` when none is given).
    pub binds: Vec<Bind>,
    /// The keep-alive timeout that actually applies to idle client connections:
    /// uvicorn `--timeout-keep-alive`; gunicorn `--keep-alive` (which UvicornWorker passes on).
    pub keepalive: Duration,
    /// Whether `keepalive` was set explicitly (false: it is the default).
    pub keepalive_explicit: bool,
    /// gunicorn `--timeout` (worker silence before SIGABRT); `None` for uvicorn.
    pub worker_timeout: Option<Duration>,
    /// gunicorn `--graceful-timeout`; `None` for uvicorn.
    pub graceful_timeout: Option<Duration>,
    /// The listen backlog requested.
    pub backlog: u32,
    pub workers: u32,
    /// uvicorn `--limit-concurrency`.
    pub limit_concurrency: Option<u32>,
    /// gunicorn `--max-requests` (0 or `None`: never recycled) and `--max-requests-jitter`.
    pub max_requests: Option<u32>,
    pub max_requests_jitter: Option<u32>,
    /// uvicorn `--proxy-headers` (default on) / `--no-proxy-headers`.
    pub proxy_headers: bool,
    pub forwarded_allow_ips: Option<String>,
    /// Started with a TLS key and certificate: it speaks HTTPS, not HTTP.
    pub tls: bool,
    pub root_path: Option<String>,
    /// The working directory, when known (relative socket paths and `-c` files resolve against it).
    pub working_directory: Option<PathBuf>,
    pub run_as: RunAs,
    /// Words or settings that were not understood, kept so reports can mention them.
    pub unparsed: Vec<String>,
    /// Settings whose value could not be read (an undefined `${VAR}`, a computed value in a
    /// gunicorn config file, an unreadable `EnvironmentFile=`…). The fields above then hold
    /// the default, which must not be trusted: rules skip them and say so.
    pub unknown: Vec<Unknown>,
    /// Started with `--reload`: restarts whenever a watched file changes.
    pub reload: bool,
    /// What the supervisor (systemd unit, supervisord program) adds to the command line.
    pub supervision: Supervision,
}

/// A launch setting the rules rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Knob {
    Bind,
    KeepAlive,
    Timeout,
    GracefulTimeout,
    Backlog,
    Workers,
    WorkerClass,
    Tls,
    Reload,
    Umask,
    User,
    Group,
}

impl Knob {
    /// Every knob, for "nothing is known" cases.
    pub const ALL: [Knob; 12] = [
        Knob::Bind,
        Knob::KeepAlive,
        Knob::Timeout,
        Knob::GracefulTimeout,
        Knob::Backlog,
        Knob::Workers,
        Knob::WorkerClass,
        Knob::Tls,
        Knob::Reload,
        Knob::Umask,
        Knob::User,
        Knob::Group,
    ];

    /// What the setting is, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Knob::Bind => "listen address",
            Knob::KeepAlive => "keep-alive timeout",
            Knob::Timeout => "worker timeout",
            Knob::GracefulTimeout => "graceful shutdown timeout",
            Knob::Backlog => "listen backlog",
            Knob::Workers => "number of workers",
            Knob::WorkerClass => "worker class",
            Knob::Tls => "TLS setting",
            Knob::Reload => "--reload setting",
            Knob::Umask => "umask",
            Knob::User => "user",
            Knob::Group => "group",
        }
    }
}

/// A setting that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unknown {
    pub knob: Knob,
    pub why: String,
}

/// How a supervisor runs the backend, beyond its command line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Supervision {
    /// systemd `Restart=` or supervisord `autorestart=` as written, with its line; `None`: not
    /// set, so the supervisor's default applies (systemd `no`, supervisord `unexpected`).
    pub restart: Option<(String, u32)>,
    /// systemd `PrivateTmp=` is on: the service gets its own `/tmp` and `/var/tmp`.
    pub private_tmp: bool,
    /// How long the supervisor waits after SIGTERM before SIGKILL: systemd `TimeoutStopSec=`
    /// (default 90 s), supervisord `stopwaitsecs=` (default 10 s). `None`: not supervised, or
    /// no limit (`infinity`).
    pub stop_timeout: Option<Duration>,
    /// Whether `stop_timeout` was set explicitly (false: the supervisor's default).
    pub stop_timeout_explicit: bool,
}

impl Backend {
    /// The backend as people know it: its unit or program; for a `--backend` command line or
    /// a discovered process, its server, app and addresses (`uvicorn main:app on
    /// unix:/run/app.sock`).
    pub fn what(&self) -> String {
        let server = match &self.server {
            Server::Uvicorn => "uvicorn",
            Server::Gunicorn { .. } => "gunicorn",
        };
        let binds: Vec<String> = self.binds.iter().map(ToString::to_string).collect();
        match &self.source {
            Source::SystemdUnit { .. } | Source::Supervisord { .. } => self.name.clone(),
            _ => {
                let app = self
                    .app
                    .as_deref()
                    .map(|a| format!(" {a}"))
                    .unwrap_or_default();
                match binds.is_empty() {
                    true => format!("{server}{app}"),
                    false => format!("{server}{app} on {}", binds.join(", ")),
                }
            }
        }
    }

    /// [`Self::what`], with where reflex learnt of it when that is not already its name:
    /// `uvicorn main:app on 127.0.0.1:8000 (--backend #1)`.
    pub fn label(&self) -> String {
        let what = self.what();
        if what == self.name {
            what
        } else {
            format!("{what} ({})", self.name)
        }
    }

    /// Whether this backend's worker keeps idle HTTP connections open at all. gunicorn's `sync`
    /// worker closes every connection after one response, so no keep-alive race is possible.
    pub fn supports_keepalive(&self) -> bool {
        match &self.server {
            Server::Uvicorn => true,
            Server::Gunicorn { worker_class } => !is_sync_worker(worker_class),
        }
    }

    /// Why `knob` is unknown, if it is.
    pub fn unknown(&self, knob: Knob) -> Option<&Unknown> {
        self.unknown.iter().find(|u| u.knob == knob)
    }

    /// Whether `knob`'s value was read (explicitly, or as the default of a fully read source).
    pub fn is_known(&self, knob: Knob) -> bool {
        self.unknown(knob).is_none()
    }

    /// Marks `knob` unknown (once; the first reason wins).
    pub fn set_unknown(&mut self, knob: Knob, why: impl Into<String>) {
        if self.is_known(knob) {
            self.unknown.push(Unknown {
                knob,
                why: why.into(),
            });
        }
    }

    /// Whether every setting and word of its source was understood: the condition for fixes
    /// that rewrite nginx to match this backend to be applied unattended.
    pub fn fully_understood(&self) -> bool {
        self.unknown.is_empty() && self.unparsed.is_empty()
    }
}

/// gunicorn's sync worker, by any of the names gunicorn accepts for it (`-k sync`,
/// `-k gunicorn.workers.sync.SyncWorker`, `-k egg:gunicorn#sync`).
pub fn is_sync_worker(class: &str) -> bool {
    let class = class.strip_prefix("egg:gunicorn#").unwrap_or(class);
    matches!(class, "sync" | "gunicorn.workers.sync.SyncWorker")
}

/// Worker classes whose keep-alive timeout is gunicorn's `--keep-alive`: gunicorn's own
/// threaded and async workers and uvicorn's workers (`UvicornWorker` passes
/// `timeout_keep_alive=cfg.keepalive`; `UvicornH11Worker` is a subclass), in both the
/// `uvicorn.workers` module and the `uvicorn_worker` package that replaces it.
pub fn is_known_worker(class: &str) -> bool {
    let short = class.strip_prefix("egg:gunicorn#").unwrap_or(class);
    is_sync_worker(class)
        || matches!(
            short,
            "gthread"
                | "gevent"
                | "gevent_wsgi"
                | "gevent_pywsgi"
                | "eventlet"
                | "tornado"
                | "asgi"
        )
        || (short.starts_with("gunicorn.workers.") && short.ends_with("Worker"))
        || matches!(
            short,
            "uvicorn.workers.UvicornWorker"
                | "uvicorn.workers.UvicornH11Worker"
                | "uvicorn_worker.UvicornWorker"
                | "uvicorn_worker.UvicornH11Worker"
        )
}
