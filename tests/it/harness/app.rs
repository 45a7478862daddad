//! A real uvicorn or gunicorn serving `tests/fixtures/apps/app.py` from the venv, in the test's
//! temp dir, on an OS-assigned 127.0.0.1 port or a unix socket; logs kept in files; stopped by
//! process group on drop (gunicorn's workers too).

use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::http;
use super::nginx::{free_port, log_file};
use super::ns::Wrap;
use super::proc::Proc;

/// How long the app may take to import FastAPI, bind and answer `/health`.
const READY_DEADLINE: Duration = Duration::from_secs(30);
const PORT_ATTEMPTS: usize = 5;

/// Which server runs the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Uvicorn,
    Gunicorn,
}

/// Where it listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind {
    /// 127.0.0.1 on a port picked by the harness.
    Tcp,
    /// A unix socket `<name>.sock` in the app's dir.
    Uds,
}

/// How readiness is decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// `GET /health` answers 200.
    Health,
    /// The stderr log contains this text and the TCP port accepts (for TLS backends, which
    /// the plain client cannot talk to).
    LogLine(String),
    /// The log contains this text, whatever the port does (for backends that do not listen
    /// on 127.0.0.1, e.g. `--host ::`).
    LogOnly(String),
}

/// Builds and starts an [`App`].
#[derive(Debug, Clone)]
pub struct AppBuilder {
    dir: PathBuf,
    name: String,
    server: Server,
    bind: Bind,
    args: Vec<String>,
    wrap: Wrap,
    ready: Ready,
}

/// A running app server.
pub struct App {
    proc: Proc,
    dir: PathBuf,
    name: String,
    port: Option<u16>,
    uds: Option<PathBuf>,
    argv: Vec<String>,
}

impl App {
    /// `uvicorn app:app` in `dir`.
    pub fn uvicorn(dir: &Path) -> AppBuilder {
        AppBuilder::new(dir, Server::Uvicorn)
    }
    /// `gunicorn app:app` in `dir`.
    pub fn gunicorn(dir: &Path) -> AppBuilder {
        AppBuilder::new(dir, Server::Gunicorn)
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }
    /// The TCP port (panics for a unix-socket app).
    pub fn port(&self) -> u16 {
        self.port.expect("app listens on a unix socket, not TCP")
    }
    /// The unix socket path (panics for a TCP app).
    pub fn uds(&self) -> &Path {
        self.uds
            .as_deref()
            .expect("app listens on TCP, not a unix socket")
    }
    /// The command line as it ran (without any namespace wrapper), for `reflex --backend`.
    pub fn cmdline(&self) -> String {
        shlex::try_join(self.argv.iter().map(String::as_str)).expect("quote argv")
    }
    /// Sends a signal to the server's main process.
    pub fn signal(&self, sig: &str) -> bool {
        self.proc.signal(sig)
    }
    pub fn stderr_log(&self) -> PathBuf {
        self.dir.join(format!("{}.stderr.log", self.name))
    }
    pub fn stdout_log(&self) -> PathBuf {
        self.dir.join(format!("{}.stdout.log", self.name))
    }
    /// stdout and stderr together.
    pub fn log_text(&self) -> String {
        let out = std::fs::read_to_string(self.stdout_log()).unwrap_or_default();
        let err = std::fs::read_to_string(self.stderr_log()).unwrap_or_default();
        format!("{out}{err}")
    }
}

impl AppBuilder {
    fn new(dir: &Path, server: Server) -> Self {
        AppBuilder {
            dir: dir.to_path_buf(),
            name: "app".into(),
            server,
            bind: Bind::Tcp,
            args: Vec::new(),
            wrap: Wrap::None,
            ready: Ready::Health,
        }
    }
    /// Names the log files and socket (`NAME.stderr.log`, `NAME.sock`); default `app`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.into();
        self
    }
    pub fn bind(mut self, bind: Bind) -> Self {
        self.bind = bind;
        self
    }
    /// Extra server flags, e.g. `["--timeout-keep-alive", "1"]`.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }
    pub fn wrap(mut self, wrap: Wrap) -> Self {
        self.wrap = wrap;
        self
    }
    pub fn ready(mut self, ready: Ready) -> Self {
        self.ready = ready;
        self
    }
    /// uvicorn on `--host ::`: one process listens on IPv6 only (asyncio sets IPV6_V6ONLY), so
    /// readiness is uvicorn's own line, not `/health` on 127.0.0.1 (refused).
    pub fn ipv6_only(self) -> Self {
        self.args(&["--host", "::"])
            .ready(Ready::LogOnly("Uvicorn running on".into()))
    }

    fn argv(&self, port: u16) -> Vec<String> {
        let uds = self.dir.join(format!("{}.sock", self.name));
        let (prog, bind): (&str, Vec<String>) = match (self.server, self.bind) {
            (Server::Uvicorn, Bind::Tcp) => (
                "uvicorn",
                vec![
                    "--host".into(),
                    "127.0.0.1".into(),
                    "--port".into(),
                    port.to_string(),
                ],
            ),
            (Server::Uvicorn, Bind::Uds) => {
                ("uvicorn", vec!["--uds".into(), uds.display().to_string()])
            }
            (Server::Gunicorn, Bind::Tcp) => {
                ("gunicorn", vec!["-b".into(), format!("127.0.0.1:{port}")])
            }
            (Server::Gunicorn, Bind::Uds) => (
                "gunicorn",
                vec!["-b".into(), format!("unix:{}", uds.display())],
            ),
        };
        let mut argv = vec![super::venv_bin(prog).display().to_string()];
        if self.server == Server::Uvicorn {
            argv.push("app:app".into());
        }
        argv.extend(bind);
        argv.extend(self.args.iter().cloned());
        if self.server == Server::Gunicorn {
            argv.push("app:app".into());
        }
        argv
    }

    /// Copies the app into the dir and starts the server; retries on a taken port.
    pub fn start(self) -> App {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&self.dir).expect("create app dir");
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o755))
            .expect("chmod app dir");
        let src = super::repo().join("tests/fixtures/apps/app.py");
        std::fs::copy(&src, self.dir.join("app.py")).expect("copy app.py");
        for attempt in 1..=PORT_ATTEMPTS {
            let port = free_port();
            match self.try_start(port) {
                Ok(app) => return app,
                Err(log) if log.contains("in use") && attempt < PORT_ATTEMPTS => {
                    eprintln!("[harness] app port {port} taken; retrying");
                }
                Err(log) => panic!(
                    "{} did not start in {}:\n{log}",
                    self.name,
                    self.dir.display()
                ),
            }
        }
        unreachable!("the last attempt panics or returns")
    }

    fn try_start(&self, port: u16) -> Result<App, String> {
        let argv = self.argv(port);
        let mut cmd = self.wrap.command(Path::new(&argv[0]), &argv[1..]);
        cmd.current_dir(&self.dir);
        cmd.env("PYTHONUNBUFFERED", "1");
        cmd.env("PYTHONDONTWRITEBYTECODE", "1");
        let out = format!("{}.stdout.log", self.name);
        let err = format!("{}.stderr.log", self.name);
        let _ = std::fs::remove_file(self.dir.join(&err));
        cmd.stdout(log_file(&self.dir, &out));
        cmd.stderr(log_file(&self.dir, &err));
        let proc = Proc::spawn(cmd, &self.name).map_err(|e| format!("spawn: {e}"))?;
        let mut app = App {
            proc,
            dir: self.dir.clone(),
            name: self.name.clone(),
            port: (self.bind == Bind::Tcp).then_some(port),
            uds: (self.bind == Bind::Uds).then(|| self.dir.join(format!("{}.sock", self.name))),
            argv,
        };
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Some(status) = app.proc.exited() {
                return Err(format!("exited {status}\n{}", app.log_text()));
            }
            if self.is_ready(&app) {
                return Ok(app);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "not ready in {READY_DEADLINE:?}\n{}",
                    app.log_text()
                ));
            }
            sleep(Duration::from_millis(50));
        }
    }

    fn is_ready(&self, app: &App) -> bool {
        let t = Duration::from_secs(2);
        match &self.ready {
            Ready::Health => {
                let r = match (&app.uds, app.port) {
                    (Some(sock), _) => http::get_uds(sock, "/health", t),
                    (None, Some(port)) => http::request(port, "GET", "/health", None, t),
                    (None, None) => return false,
                };
                http::status_or_zero(&r) == 200
            }
            Ready::LogLine(text) => {
                let listening = match (&app.uds, app.port) {
                    (Some(sock), _) => sock.exists(),
                    (None, Some(port)) => {
                        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                        std::net::TcpStream::connect_timeout(&addr, t).is_ok()
                    }
                    (None, None) => false,
                };
                listening && app.log_text().contains(text.as_str())
            }
            Ready::LogOnly(text) => app.log_text().contains(text.as_str()),
        }
    }
}

/// A self-signed certificate and key for `localhost` in `dir` (openssl CLI): (key, cert).
pub fn self_signed(dir: &Path) -> (String, String) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let key = dir.join("key.pem");
    let cert = dir.join("cert.pem");
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl (scripts/setup installs it)");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (key.display().to_string(), cert.display().to_string())
}

/// A TLS uvicorn in `dir/app` with a self-signed certificate from `dir/tls`, ready once it says
/// it runs on https:// (the plain `/health` client cannot talk to it).
pub fn tls_uvicorn(dir: &Path) -> App {
    let (key, cert) = self_signed(&dir.join("tls"));
    // uvicorn says it runs on https:// last, after the application's startup: ready then.
    App::uvicorn(&dir.join("app"))
        .args(&["--ssl-keyfile", &key, "--ssl-certfile", &cert])
        .ready(Ready::LogLine("running on https://".into()))
        .start()
}
