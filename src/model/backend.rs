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
}

impl Backend {
    /// Whether this backend's worker keeps idle HTTP connections open at all. gunicorn's `sync`
    /// worker closes every connection after one response, so no keep-alive race is possible.
    pub fn supports_keepalive(&self) -> bool {
        match &self.server {
            Server::Uvicorn => true,
            Server::Gunicorn { worker_class } => !matches!(worker_class.as_str(), "sync"),
        }
    }
}
