//! The backends the harness cannot start: other modules than `app:app` (uvicorn or gunicorn,
//! on a unix socket or a TCP port, optionally inside a memory cgroup), supervisord programs,
//! and a self-signed certificate for TLS backends. Everything is killed by PID on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use reflex::gather::evidence::supervisord::{Endpoint, endpoint_from_conf, programs};
use reflex::model::evidence::{Fact, ProgramState};

use super::{READY, wait_until};
use crate::harness::http;
use crate::harness::nginx::free_port;
use crate::harness::ns::Wrap;
use crate::harness::proc::Proc;
use crate::harness::{repo, venv_bin, write};

/// Copies the main test app and the named `tests/fixtures/apps/diag/` files into `dir` (0755).
pub fn copy_apps(dir: &Path, diag_files: &[&str]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).expect("create app dir");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod app dir");
    let apps = repo().join("tests/fixtures/apps");
    std::fs::copy(apps.join("app.py"), dir.join("app.py")).expect("copy app.py");
    for f in diag_files {
        std::fs::copy(apps.join("diag").join(f), dir.join(f)).expect("copy diag app");
    }
}

/// Where a [`ModuleApp`] listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// `DIR/app.sock`.
    Uds,
    /// 127.0.0.1 on a port that was free a moment ago.
    Tcp,
}

/// A uvicorn or gunicorn serving another module than the harness's `app:app`.
pub struct ModuleApp {
    _proc: Proc,
    argv: Vec<String>,
    uds: Option<PathBuf>,
    port: Option<u16>,
    dir: PathBuf,
}

impl ModuleApp {
    /// `uvicorn MODULE:app --uds DIR/app.sock ARGS…` in `dir`, ready when `/health` answers.
    pub fn start(dir: &Path, module: &str, files: &[&str], args: &[&str]) -> ModuleApp {
        ModuleApp::uvicorn(dir, module, files, args, Listen::Uds)
    }

    /// `uvicorn MODULE:app` on `listen` with `args`, ready when `/health` answers.
    pub fn uvicorn(
        dir: &Path,
        module: &str,
        files: &[&str],
        args: &[&str],
        listen: Listen,
    ) -> ModuleApp {
        let (uds, port) = target(dir, listen);
        let mut argv = vec![
            venv_bin("uvicorn").display().to_string(),
            format!("{module}:app"),
        ];
        match (&uds, port) {
            (Some(u), _) => argv.extend(["--uds".into(), u.display().to_string()]),
            (None, Some(p)) => argv.extend([
                "--host".into(),
                "127.0.0.1".into(),
                "--port".into(),
                p.to_string(),
            ]),
            (None, None) => unreachable!("target gives one"),
        }
        argv.extend(args.iter().map(|a| a.to_string()));
        ModuleApp::spawn(dir, files, argv, (uds, port), &Wrap::None)
    }

    /// `gunicorn -b 127.0.0.1:PORT ARGS… MODULE:app` under `wrap`, ready when `/health` answers.
    pub fn gunicorn(
        dir: &Path,
        module: &str,
        files: &[&str],
        args: &[&str],
        wrap: &Wrap,
    ) -> ModuleApp {
        let port = free_port();
        let mut argv = vec![
            venv_bin("gunicorn").display().to_string(),
            "-b".into(),
            format!("127.0.0.1:{port}"),
        ];
        argv.extend(args.iter().map(|a| a.to_string()));
        argv.push(format!("{module}:app"));
        ModuleApp::spawn(dir, files, argv, (None, Some(port)), wrap)
    }

    fn spawn(
        dir: &Path,
        files: &[&str],
        argv: Vec<String>,
        (uds, port): (Option<PathBuf>, Option<u16>),
        wrap: &Wrap,
    ) -> ModuleApp {
        copy_apps(dir, files);
        let mut cmd = wrap.command(Path::new(&argv[0]), &argv[1..]);
        cmd.current_dir(dir);
        cmd.env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        cmd.stdout(log(dir, "app.stdout.log"))
            .stderr(log(dir, "app.stderr.log"));
        let mut proc = Proc::spawn(cmd, &argv[0]).expect("spawn the app server");
        let t = Duration::from_secs(2);
        let up = wait_until(READY, || {
            let r = match (&uds, port) {
                (Some(u), _) => http::get_uds(u, "/health", t),
                (None, Some(p)) => http::request(p, "GET", "/health", None, t),
                (None, None) => return false,
            };
            proc.exited().is_none() && http::status_or_zero(&r) == 200
        });
        let app = ModuleApp {
            _proc: proc,
            argv,
            uds,
            port,
            dir: dir.to_path_buf(),
        };
        assert!(up, "{} did not start:\n{}", app.cmdline(), app.log_text());
        app
    }
    pub fn uds(&self) -> &Path {
        self.uds.as_deref().expect("a unix-socket app")
    }
    pub fn port(&self) -> u16 {
        self.port.expect("a TCP app")
    }
    pub fn cmdline(&self) -> String {
        shlex::try_join(self.argv.iter().map(String::as_str)).expect("quote argv")
    }
    pub fn log_text(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!("{}{}", read("app.stdout.log"), read("app.stderr.log"))
    }
    pub fn stderr_log(&self) -> PathBuf {
        self.dir.join("app.stderr.log")
    }
}

fn target(dir: &Path, listen: Listen) -> (Option<PathBuf>, Option<u16>) {
    match listen {
        Listen::Uds => (Some(dir.join("app.sock")), None),
        Listen::Tcp => (None, Some(free_port())),
    }
}

/// A cgroup v1 memory cgroup with a limit (`/sys/fs/cgroup/memory/reflex-…`): a command run
/// through [`MemCgroup::wrap`] starts inside it, so the kernel's OOM killer acts on it alone.
/// On drop, what is left inside (only the test's own processes) is killed by PID and the
/// cgroup removed.
pub struct MemCgroup {
    path: PathBuf,
}

impl MemCgroup {
    /// `None` when this kernel has no cgroup v1 memory controller to make one in.
    pub fn new(limit_bytes: u64) -> Option<MemCgroup> {
        let root = Path::new("/sys/fs/cgroup/memory");
        if !root.join("cgroup.procs").exists() {
            return None;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = root.join(format!("reflex-{}-{nanos:x}", std::process::id()));
        std::fs::create_dir(&path).ok()?;
        let cg = MemCgroup { path };
        std::fs::write(
            cg.path.join("memory.limit_in_bytes"),
            limit_bytes.to_string(),
        )
        .ok()?;
        Some(cg)
    }

    /// The cgroup's path as `/proc/PID/cgroup` and the kernel's `task_memcg=` write it.
    pub fn name(&self) -> String {
        format!(
            "/{}",
            self.path
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned())
        )
    }

    /// Runs the program inside the cgroup: `sh` moves itself in, then execs it (same PID).
    pub fn wrap(&self) -> Wrap {
        Wrap::Cgroup(self.path.join("cgroup.procs"))
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        let procs = std::fs::read_to_string(self.path.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter(|l| !l.trim().is_empty()) {
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", pid.trim()])
                .status();
        }
        let _ = wait_until(Duration::from_secs(10), || {
            std::fs::remove_dir(&self.path).is_ok()
        });
    }
}

fn log(dir: &Path, name: &str) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))
        .expect("open log")
}

/// A real supervisord (Debian's `supervisor`) running one program `web`, all in `dir`: its
/// XML-RPC socket, config and logs. Stopped by PID on drop.
pub struct Supervisord {
    _proc: Proc,
    pub conf: PathBuf,
    ep: Endpoint,
}

impl Supervisord {
    /// Starts supervisord with `[program:web]` running `command` in `dir`; `options` are more
    /// `key=value` lines of the program section (its logs go to `web.{out,err}.log` unless
    /// they set `*_logfile=`; it is restarted when it exits unless they set `autorestart=`).
    pub fn start(dir: &Path, command: &str, options: &str) -> Supervisord {
        let bin =
            std::env::var("REFLEX_SUPERVISORD").unwrap_or_else(|_| "/usr/bin/supervisord".into());
        assert!(
            Path::new(&bin).exists(),
            "supervisord not found at {bin} (apt-get install -y supervisor)"
        );
        let text = format!(
            "[unix_http_server]
file=%(here)s/supervisor.sock
chmod=0700

[supervisord]
logfile=%(here)s/supervisord.log
pidfile=%(here)s/supervisord.pid
childlogdir=%(here)s
nodaemon=true

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[program:web]
command={command}
directory={dir}
environment=PYTHONUNBUFFERED=\"1\",PYTHONDONTWRITEBYTECODE=\"1\"
autostart=true
{restart}stopwaitsecs=2
{logs}{options}
",
            dir = dir.display(),
            restart = if options.contains("autorestart=") {
                ""
            } else {
                "autorestart=true\n"
            },
            logs = if options.contains("_logfile=") {
                ""
            } else {
                "stdout_logfile=%(here)s/web.out.log\nstderr_logfile=%(here)s/web.err.log\n"
            },
        );
        let conf = write(dir, "supervisord.conf", &text);
        let ep = endpoint_from_conf(&text, dir).expect("supervisord endpoint");
        let mut cmd = Command::new(bin);
        cmd.arg("-n").arg("-c").arg(&conf).current_dir(dir);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let proc = Proc::spawn(cmd, "supervisord").expect("start supervisord");
        Supervisord {
            _proc: proc,
            conf,
            ep,
        }
    }

    /// The program's state now, if supervisord answers.
    pub fn web(&self) -> Option<ProgramState> {
        match programs(&self.ep) {
            Fact::Known(ps) => ps.into_iter().find(|p| p.name == "web"),
            Fact::Unavailable(_) => None,
        }
    }

    /// Polls until the program's state is one of `states`; the state seen, or `None`.
    pub fn wait_state(&self, states: &[&str], limit: Duration) -> Option<ProgramState> {
        let mut seen = None;
        wait_until(limit, || {
            seen = self.web().filter(|p| states.contains(&p.state.as_str()));
            seen.is_some()
        });
        seen
    }
}
