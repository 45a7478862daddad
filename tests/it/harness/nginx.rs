//! A real nginx in its own prefix directory: config, pid, logs and temp paths all live under the
//! test's temp dir, it listens on an OS-assigned 127.0.0.1 port, and it is stopped by PID on drop.
//!
//! The access log uses a format that records `$upstream_status` and `$upstream_addr`, because a
//! retried failure (GET after a keep-alive reset, `[::1]` then `127.0.0.1`) ends 200 for the
//! client and only shows as `"502, 200"` there.
//!
//! Before starting, each configuration goes through `oracle::agree`: `reflex parse` must agree
//! with crossplane and with `nginx -T` on it (once per distinct configuration).

use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::ns::Wrap;
use super::proc::Proc;

/// How long nginx may take to bind and write its pid file.
const READY_DEADLINE: Duration = Duration::from_secs(15);
/// Attempts with a fresh port when another process took the one we picked.
const PORT_ATTEMPTS: usize = 5;

/// Builds and starts an [`Nginx`].
#[derive(Debug, Clone)]
pub struct NginxBuilder {
    dir: PathBuf,
    user: String,
    http: String,
    server: String,
    events: String,
    wrap: Wrap,
}

/// A running nginx; stopped (SIGTERM, then SIGKILL to its group) and reaped on drop.
pub struct Nginx {
    proc: Proc,
    dir: PathBuf,
    port: u16,
}

/// One line of the test access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub status: u16,
    /// `$upstream_status`, e.g. `502, 200`, or `-`.
    pub upstream_status: String,
    pub upstream_addr: String,
    pub request: String,
}

impl Nginx {
    /// A builder for an nginx whose prefix is `dir` (created, mode 0755).
    pub fn builder(dir: &Path) -> NginxBuilder {
        NginxBuilder {
            dir: dir.to_path_buf(),
            // The workers of a root-started nginx run as `user`; nobody is nginx's compiled
            // default, and `nogroup` is Debian's name for group 65534.
            user: "nobody nogroup".to_string(),
            http: String::new(),
            server: String::new(),
            events: "worker_connections 1024;".to_string(),
            wrap: Wrap::None,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }
    pub fn conf(&self) -> PathBuf {
        self.dir.join("nginx.conf")
    }
    pub fn error_log(&self) -> PathBuf {
        self.dir.join("logs/error.log")
    }
    pub fn access_log(&self) -> PathBuf {
        self.dir.join("logs/access.log")
    }
    pub fn error_log_text(&self) -> String {
        std::fs::read_to_string(self.error_log()).unwrap_or_default()
    }
    pub fn access_log_text(&self) -> String {
        std::fs::read_to_string(self.access_log()).unwrap_or_default()
    }

    /// The parsed access log.
    pub fn access(&self) -> Vec<Access> {
        self.access_log_text()
            .lines()
            .filter_map(parse_access)
            .collect()
    }

    /// Waits (bounded) until the access log has at least `n` lines; returns them.
    pub fn wait_access(&self, n: usize) -> Vec<Access> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let lines = self.access();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Error-log lines containing `needle`.
    pub fn error_lines(&self, needle: &str) -> Vec<String> {
        self.error_log_text()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect()
    }
}

impl NginxBuilder {
    /// The `user` directive's arguments; empty for none.
    pub fn user(mut self, user: &str) -> Self {
        self.user = user.to_string();
        self
    }
    /// Extra `http`-level text, e.g. `upstream` blocks.
    pub fn http(mut self, text: &str) -> Self {
        self.http = text.to_string();
        self
    }
    /// The body of the single `server` block (after its `listen`), e.g. `location / { … }`.
    pub fn server(mut self, text: &str) -> Self {
        self.server = text.to_string();
        self
    }
    /// The body of the `events` block (default `worker_connections 1024;`).
    pub fn events(mut self, text: &str) -> Self {
        self.events = text.to_string();
        self
    }
    /// Run nginx inside a namespace.
    pub fn wrap(mut self, wrap: Wrap) -> Self {
        self.wrap = wrap;
        self
    }

    /// The config text for `port`.
    pub fn config(&self, port: u16) -> String {
        let d = self.dir.display();
        let user = if self.user.is_empty() {
            String::new()
        } else {
            format!("user {};\n", self.user)
        };
        format!(
            r#"{user}worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/logs/error.log info;

events {{
{events}
}}

http {{
    default_type application/octet-stream;
    log_format reflex_test '$status "$upstream_status" "$upstream_addr" "$upstream_connect_time" $request_time "$request"';
    access_log {d}/logs/access.log reflex_test;
    client_body_temp_path {d}/tmp/client_body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;

{http}

    server {{
        listen 127.0.0.1:{port};
        server_name _;
{server}
    }}
}}
"#,
            http = indent(&self.http, 4),
            server = indent(&self.server, 8),
            events = indent(&self.events, 4),
        )
    }

    /// Writes the config and starts nginx, retrying with a new port if ours was taken.
    pub fn start(self) -> Nginx {
        make_dirs(&self.dir);
        for attempt in 1..=PORT_ATTEMPTS {
            let port = free_port();
            std::fs::write(self.dir.join("nginx.conf"), self.config(port)).expect("write conf");
            // Every configuration a test runs must parse as crossplane and nginx parse it.
            super::oracle::agree(&self.dir.join("nginx.conf"));
            let _ = std::fs::remove_file(self.dir.join("nginx.pid"));
            match self.try_start(port) {
                Ok(n) => return n,
                Err(log) if log.contains("Address already in use") && attempt < PORT_ATTEMPTS => {
                    eprintln!("[harness] nginx port {port} taken; retrying");
                }
                Err(log) => panic!(
                    "nginx in {} did not start:\n{log}\n--- config ---\n{}",
                    self.dir.display(),
                    self.config(port)
                ),
            }
        }
        unreachable!("the last attempt panics or returns")
    }

    fn try_start(&self, port: u16) -> Result<Nginx, String> {
        let d = &self.dir;
        let args: Vec<String> = vec![
            "-p".into(),
            format!("{}/", d.display()),
            "-e".into(),
            d.join("logs/error.log").display().to_string(),
            "-c".into(),
            d.join("nginx.conf").display().to_string(),
            "-g".into(),
            "daemon off; master_process on;".into(),
        ];
        let mut cmd = self.wrap.command(&super::nginx_bin(), &args);
        cmd.stdout(log_file(d, "logs/stdout.log"));
        cmd.stderr(log_file(d, "logs/stderr.log"));
        let proc = Proc::spawn(cmd, "nginx").map_err(|e| format!("spawn nginx: {e}"))?;
        let mut n = Nginx {
            proc,
            dir: d.clone(),
            port,
        };
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Some(status) = n.proc.exited() {
                let stderr = std::fs::read_to_string(d.join("logs/stderr.log")).unwrap_or_default();
                return Err(format!("exited {status}\n{stderr}\n{}", n.error_log_text()));
            }
            let pid_ok = std::fs::read_to_string(d.join("nginx.pid"))
                .map(|p| p.trim() == n.pid().to_string())
                .unwrap_or(false);
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            if pid_ok && std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
            {
                return Ok(n);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "not ready in {READY_DEADLINE:?}\n{}",
                    n.error_log_text()
                ));
            }
            sleep(Duration::from_millis(20));
        }
    }
}

/// Creates the prefix and its subdirectories, traversable (0755) by the worker user.
fn make_dirs(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for sub in ["", "logs", "tmp"] {
        let p = dir.join(sub);
        std::fs::create_dir_all(&p).expect("create nginx dir");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

/// A port that was free a moment ago (bind 127.0.0.1:0, read it, release it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

pub(super) fn log_file(dir: &Path, rel: &str) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(rel))
        .expect("open log file")
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| {
            if l.trim().is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses a `reflex_test` access-log line.
pub fn parse_access(line: &str) -> Option<Access> {
    let (status, rest) = line.split_once(' ')?;
    let quoted: Vec<&str> = rest.split('"').collect();
    // rest = `"us" "ua" "uct" rt "request"` → split on '"': ["", us, " ", ua, " ", uct, " rt ", request, ""]
    Some(Access {
        status: status.parse().ok()?,
        upstream_status: quoted.get(1)?.to_string(),
        upstream_addr: quoted.get(3)?.to_string(),
        request: quoted.get(7)?.to_string(),
    })
}

#[test]
fn parses_an_access_line() {
    let a = parse_access(
        r#"200 "502, 200" "[::1]:8000, 127.0.0.1:8000" "0.000, 0.000" 0.004 "GET / HTTP/1.1""#,
    )
    .expect("parse");
    assert_eq!(a.status, 200);
    assert_eq!(a.upstream_status, "502, 200");
    assert_eq!(a.upstream_addr, "[::1]:8000, 127.0.0.1:8000");
    assert_eq!(a.request, "GET / HTTP/1.1");
}
