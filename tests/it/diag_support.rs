//! Helpers for the `reflex diagnose` fault tests (`diagnose_faults.rs`): an nginx whose access
//! log records what diagnosis reads, `reflex diagnose --format json` run as a bounded process
//! (as root, as `nobody`, or inside a namespace) with its JSON read back, the apps the harness
//! cannot start (other modules, supervisord programs), and small request patterns.
//!
//! Everything lives in the test's temp dir and is killed by PID on drop (harness `Proc`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::http;
use crate::harness::nginx::{Nginx, NginxBuilder};
use crate::harness::ns::Wrap;

/// The access `log_format` of these tests: the upstream fields diagnosis zips into attempts
/// (`"502, 200"` lists need the quotes around them) and `$time_local` for the window.
pub const FORMAT: &str = "diag";
const LOG_FORMAT: &str = r#"log_format diag '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$upstream_addr" "$upstream_status" "$upstream_connect_time" "$upstream_header_time" "$upstream_response_time" $request_time';"#;

/// How long one `reflex diagnose` may run before it is killed (it gathers for about a second).
const REFLEX_LIMIT: Duration = Duration::from_secs(60);
/// How long an app or supervisord may take to come up on this loaded machine.
const READY: Duration = Duration::from_secs(30);

/// An nginx builder in `dir` with the `diag` access log (server level, so it replaces the
/// harness's own) and `http` text (upstream blocks) and `location` in its server.
pub fn nginx(dir: &Path, http: &str, location: &str) -> NginxBuilder {
    let access = dir.join("logs/diag_access.log");
    Nginx::builder(dir)
        .http(&format!("{LOG_FORMAT}\n{http}"))
        .server(&format!(
            "access_log {} {FORMAT};\n{location}",
            access.display()
        ))
}

/// The `diag` access log of an nginx started with [`nginx`].
pub fn access_log(n: &Nginx) -> PathBuf {
    n.error_log().with_file_name("diag_access.log")
}

/// The access log's lines (the harness parses only its own format).
pub fn access_lines(n: &Nginx) -> Vec<String> {
    std::fs::read_to_string(access_log(n))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A `location /` proxying to `target` with the usual forwarding headers and `extra`.
pub fn proxy(target: &str, extra: &str) -> String {
    format!(
        "location / {{
    proxy_pass {target};
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
{extra}}}
"
    )
}

/// GETs of each path in turn; the status codes (0 = transport error).
pub fn get_each(port: u16, paths: &[&str]) -> Vec<u16> {
    paths
        .iter()
        .map(|p| http::status_or_zero(&http::get(port, p)))
        .collect()
}

/// `n` concurrent GETs of `path`, each bounded by `timeout`; the status codes.
pub fn concurrent(port: u16, path: &str, n: usize, timeout: Duration) -> Vec<u16> {
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(move || {
                    http::status_or_zero(&http::request(port, "GET", path, None, timeout))
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    })
}

/// Polls `ok` every 50 ms until it holds or `limit` passes; whether it held.
pub fn wait_until(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if ok() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        sleep(Duration::from_millis(50));
    }
}

/// `reflex diagnose --format json --nginx-conf CONF`, with more flags added by the methods.
#[derive(Debug, Clone)]
pub struct Diagnose {
    args: Vec<String>,
    wrap: Wrap,
    as_nobody: bool,
    envs: Vec<(String, String)>,
}

impl Diagnose {
    pub fn new(conf: &Path) -> Diagnose {
        let args = ["diagnose", "--format", "json", "--nginx-conf"]
            .map(String::from)
            .into_iter()
            .chain([conf.display().to_string()])
            .collect();
        Diagnose {
            args,
            wrap: Wrap::None,
            as_nobody: false,
            envs: Vec::new(),
        }
    }
    /// Sets an environment variable for reflex (e.g. `REFLEX_SYSTEM_BUS`, `TZ`).
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Diagnose {
        self.envs.push((key.into(), value.into()));
        self
    }
    /// Any flag(s), e.g. `["--offline"]`.
    pub fn args<S: AsRef<std::ffi::OsStr>>(mut self, args: &[S]) -> Diagnose {
        let s = |a: &S| a.as_ref().to_string_lossy().into_owned();
        self.args.extend(args.iter().map(s));
        self
    }
    pub fn backend(self, cmdline: &str) -> Diagnose {
        self.args(&["--backend", cmdline])
    }
    pub fn app_log(self, path: &Path) -> Diagnose {
        self.args(&[Path::new("--app-log"), path])
    }
    /// Run it inside the namespace `wrap` (as the faulty nginx runs).
    pub fn wrap(mut self, wrap: Wrap) -> Diagnose {
        self.wrap = wrap;
        self
    }
    /// Run it as `nobody:nogroup` without supplementary groups (setpriv).
    pub fn unprivileged(mut self) -> Diagnose {
        self.as_nobody = true;
        self
    }

    /// Runs it to completion (killed by PID after a minute) in `cwd`.
    pub fn run(&self, cwd: &Path) -> Report {
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_reflex"));
        let mut cmd = if self.as_nobody {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]);
            c.arg(&bin).args(&self.args);
            c
        } else {
            self.wrap.command(&bin, &self.args)
        };
        cmd.current_dir(cwd);
        cmd.envs(self.envs.iter().map(|(k, v)| (k, v)));
        let started = Instant::now();
        let out = run_bounded(&mut cmd, REFLEX_LIMIT);
        let elapsed = started.elapsed();
        let (code, stdout, stderr) = match out {
            Ok(o) => (
                o.status.code(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            ),
            Err(e) => (None, String::new(), e),
        };
        let json = serde_json::from_str(&stdout).ok();
        Report {
            code,
            stdout,
            stderr,
            json,
            elapsed,
            cmdline: self.args.join(" "),
        }
    }
}

/// What one `reflex diagnose` run said.
#[derive(Debug)]
pub struct Report {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub json: Option<Value>,
    pub elapsed: Duration,
    pub cmdline: String,
}

impl Report {
    pub fn findings(&self) -> Vec<&Value> {
        self.json
            .as_ref()
            .and_then(|j| j.get("findings"))
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    }
    pub fn top(&self) -> Option<&Value> {
        self.findings().first().copied()
    }
    pub fn top_kind(&self) -> Option<&str> {
        self.top()?.get("kind")?.as_str()
    }
    /// Every finding's kind, ranked.
    pub fn kinds(&self) -> Vec<&str> {
        self.findings()
            .iter()
            .filter_map(|f| f["kind"].as_str())
            .collect()
    }
    pub fn top_confidence(&self) -> f64 {
        self.top()
            .and_then(|f| f.get("confidence"))
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
    }
    /// `kind (confidence)` of every finding, ranked.
    pub fn ranking(&self) -> Vec<String> {
        self.findings()
            .iter()
            .map(|f| format!("{} ({})", f["kind"], f["confidence"]))
            .collect()
    }
    pub fn unavailable(&self) -> Vec<&Value> {
        self.json
            .as_ref()
            .and_then(|j| j.get("evidence_unavailable"))
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    }

    /// The whole run, for failure messages: the lead fixes rules from this.
    pub fn explain(&self) -> String {
        format!(
            "reflex {}\nexit {:?} after {:?}\nranking {:?}\nstdout:\n{}\nstderr:\n{}",
            self.cmdline,
            self.code,
            self.elapsed,
            self.ranking(),
            self.stdout,
            self.stderr
        )
    }

    /// Asserts the top finding's kind (and `restart_helps` when given) and exit 1, with what
    /// reflex said instead when it did not.
    pub fn expect_top(&self, kind: &str, restart_helps: Option<bool>, live: &str) {
        eprintln!(
            "[diagnose] want {kind}: exit {:?} in {:?}, ranking {:?}",
            self.code,
            self.elapsed,
            self.ranking()
        );
        assert!(
            self.json.is_some(),
            "stdout is not JSON\n{}\n--- the live fault ---\n{live}",
            self.explain()
        );
        assert_eq!(
            self.top_kind(),
            Some(kind),
            "reflex diagnose should rank `{kind}` first\n{}\n--- the live fault ---\n{live}",
            self.explain()
        );
        if let Some(want) = restart_helps {
            let got = self.top().and_then(|f| f["restart_helps"].as_bool());
            assert_eq!(
                got,
                Some(want),
                "`{kind}`: restart_helps should be {want}\n{}",
                self.explain()
            );
        }
        assert_eq!(
            self.code,
            Some(1),
            "a cause was found, so exit 1\n{}",
            self.explain()
        );
    }
}

/// Runs a command to completion, killing it (by PID) if it exceeds `limit`.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<std::process::Output, String> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn reflex: {e}"))?;
    let pid = child.id().to_string();
    let deadline = Instant::now() + limit;
    // wait_with_output drains both pipes on its own thread; this one only watches the clock.
    let handle = std::thread::spawn(move || child.wait_with_output());
    while !handle.is_finished() {
        if Instant::now() > deadline {
            // Not reaped yet (the waiter has not returned), so the PID is still reflex's.
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &pid])
                .status();
            let _ = handle.join();
            return Err(format!("reflex diagnose did not finish in {limit:?}"));
        }
        sleep(Duration::from_millis(10));
    }
    handle
        .join()
        .map_err(|_| "reflex waiter panicked".to_string())?
        .map_err(|e| e.to_string())
}

mod apps;
pub use apps::*;
