//! Runs `reflex check --format json` against a config and backend command lines (optionally
//! inside the same namespace as the backend) and keeps what it said, so a repro test can assert
//! the finding kinds after it has shown the real failure.

use std::path::Path;
use std::time::{Duration, Instant};

use super::ns::Wrap;

/// What one `reflex check` run produced.
#[derive(Debug, Clone)]
pub struct CheckRun {
    /// What was run, for messages.
    pub label: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// `(kind, severity)` of each finding, or `None` when stdout was not the expected JSON.
    pub findings: Option<Vec<(String, String)>>,
}

impl CheckRun {
    /// Whether a finding of `kind` was reported.
    pub fn has(&self, kind: &str) -> bool {
        self.severity(kind).is_some()
    }

    /// The severity of the first finding of `kind`.
    pub fn severity(&self, kind: &str) -> Option<&str> {
        self.findings
            .as_ref()?
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, s)| s.as_str())
    }

    /// Problems with this run given whether `kind` should be present, as text (empty = fine).
    /// Collected rather than asserted at once so the test first shows the live repro.
    pub fn problems(&self, kind: &str, expect_present: bool) -> Vec<String> {
        let mut p = Vec::new();
        let ctx = || {
            format!(
                "exit {:?}\nstdout: {}\nstderr: {}",
                self.code, self.stdout, self.stderr
            )
        };
        match &self.findings {
            None => p.push(format!(
                "{}: stdout is not findings JSON; {}",
                self.label,
                ctx()
            )),
            Some(findings) => {
                let kinds: Vec<&str> = findings.iter().map(|(k, _)| k.as_str()).collect();
                if expect_present && !self.has(kind) {
                    p.push(format!(
                        "{}: expected kind `{kind}`, got {kinds:?}; {}",
                        self.label,
                        ctx()
                    ));
                }
                if !expect_present && self.has(kind) {
                    p.push(format!(
                        "{}: unexpected kind `{kind}`; {}",
                        self.label,
                        ctx()
                    ));
                }
                // Contract: exit 1 when something is at/above --fail-on (warning), else 0.
                if !matches!(self.code, Some(0) | Some(1)) {
                    p.push(format!(
                        "{}: exit code should be 0 or 1; {}",
                        self.label,
                        ctx()
                    ));
                }
                let blocking = matches!(self.severity(kind), Some("error" | "warning"));
                if blocking && self.code != Some(1) {
                    p.push(format!(
                        "{}: `{kind}` is at/above warning, so exit 1; {}",
                        self.label,
                        ctx()
                    ));
                }
            }
        }
        p
    }
}

/// `reflex check --nginx-conf CONF --backend B... --format json`, under `wrap`.
pub fn reflex_check(label: &str, conf: &Path, backends: &[String], wrap: &Wrap) -> CheckRun {
    let args: Vec<String> = backends
        .iter()
        .flat_map(|b| ["--backend".to_string(), b.clone()])
        .collect();
    reflex_check_args(label, conf, &args, wrap)
}

/// `reflex check --nginx-conf CONF ARGS... --format json` (e.g. `--supervisord-conf FILE`,
/// `--unit FILE`), under `wrap`.
pub fn reflex_check_args(label: &str, conf: &Path, more: &[String], wrap: &Wrap) -> CheckRun {
    let mut args: Vec<String> = vec![
        "check".into(),
        "--nginx-conf".into(),
        conf.display().to_string(),
    ];
    args.extend(more.iter().cloned());
    args.extend(["--format".into(), "json".into()]);
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_reflex"));
    let mut cmd = wrap.command(&bin, &args);
    let out = run_bounded(&mut cmd, Duration::from_secs(60));
    let (code, stdout, stderr) = match out {
        Ok(o) => (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ),
        Err(e) => (None, String::new(), e),
    };
    let findings = serde_json::from_str::<serde_json::Value>(&stdout)
        .ok()
        .and_then(|v| {
            v.get("findings")?.as_array().map(|fs| {
                fs.iter()
                    .filter_map(|f| {
                        let kind = f.get("kind")?.as_str()?.to_string();
                        let sev = f.get("severity").and_then(|s| s.as_str()).unwrap_or("");
                        Some((kind, sev.to_string()))
                    })
                    .collect()
            })
        });
    CheckRun {
        label: format!("reflex check ({label})"),
        code,
        stdout,
        stderr,
        findings,
    }
}

/// `reflex check` on a broken setup (config, backend command lines), which must report `kind`,
/// and on its fixed counterpart, which must not: the problems of both runs (empty = fine).
pub fn broken_fixed(
    kind: &str,
    broken: (&Path, &[String]),
    fixed: (&Path, &[String]),
    wrap: &Wrap,
) -> Vec<String> {
    let mut problems = reflex_check("broken", broken.0, broken.1, wrap).problems(kind, true);
    problems.extend(reflex_check("fixed", fixed.0, fixed.1, wrap).problems(kind, false));
    problems
}

/// Runs a command to completion, killing it (by PID) if it exceeds `limit`.
fn run_bounded(
    cmd: &mut std::process::Command,
    limit: Duration,
) -> Result<std::process::Output, String> {
    use std::process::Stdio;
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
            // Not yet reaped (the waiter has not returned), so the PID is still reflex's.
            let _ = std::process::Command::new("kill")
                .args(["-s", "KILL", "--", &pid])
                .status();
            let _ = handle.join();
            return Err(format!("reflex check did not finish in {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    handle
        .join()
        .map_err(|_| "reflex waiter panicked".to_string())?
        .map_err(|e| e.to_string())
}

/// Fails the test with every collected reflex problem.
pub fn assert_no_problems(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "the live repro behaved as expected, but reflex check did not:\n\n{}",
        problems.join("\n\n")
    );
}
