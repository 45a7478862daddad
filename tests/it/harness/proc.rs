//! A child process that runs in its own process group and is stopped, killed and reaped by PID
//! on drop. Owns signalling; must not know what the process is (nginx, uvicorn, gunicorn).

use std::io;
use std::process::{Child, Command, ExitStatus};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long `Drop` waits after SIGTERM before it sends SIGKILL to the group.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A spawned process, leader of its own process group (so gunicorn's and nginx's workers can be
/// signalled together without touching anything else on the machine).
pub struct Proc {
    child: Child,
    name: String,
    reaped: Option<ExitStatus>,
}

impl Proc {
    /// Spawns `cmd` as the leader of a new process group.
    pub fn spawn(mut cmd: Command, name: &str) -> io::Result<Proc> {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        let child = cmd.spawn()?;
        Ok(Proc {
            child,
            name: name.to_string(),
            reaped: None,
        })
    }

    /// The PID of the leader (also the process group ID).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` (a name such as `STOP`, `CONT`, `TERM`) to the leader only.
    pub fn signal(&self, sig: &str) -> bool {
        if self.reaped.is_some() {
            return false;
        }
        send(sig, &self.pid().to_string())
    }

    /// Sends `sig` to every process of the group.
    pub fn signal_group(&self, sig: &str) -> bool {
        if !self.group_alive() {
            return false;
        }
        send(sig, &format!("-{}", self.pid()))
    }

    /// The exit status once the leader has exited (reaping it), else `None`.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.reaped.is_none() {
            self.reaped = self.child.try_wait().ok().flatten();
        }
        self.reaped
    }

    /// Whether any process still belongs to the group: the leader before it is reaped, or
    /// orphans (workers) after. The kernel never hands out a PID still used as a process group
    /// ID, so a non-empty group is ours.
    fn group_alive(&self) -> bool {
        if self.reaped.is_none() {
            return true;
        }
        let pgid = self.pid().to_string();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return false;
        };
        entries.flatten().any(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            // Fields after the `(comm)`: state ppid pgrp ...
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(2).map(|g| g == pgid))
                .unwrap_or(false)
        })
    }

    /// SIGTERM (and SIGCONT, in case it was stopped) to the group, wait up to `grace`, then
    /// SIGKILL the group and reap.
    pub fn stop(&mut self, grace: Duration) {
        self.signal_group("TERM");
        self.signal_group("CONT");
        let deadline = Instant::now() + grace;
        while self.exited().is_none() && Instant::now() < deadline {
            sleep(Duration::from_millis(20));
        }
        if self.exited().is_none() {
            eprintln!(
                "[harness] {} ({}) ignored SIGTERM; SIGKILL",
                self.name,
                self.pid()
            );
        }
        self.signal_group("KILL");
        if self.reaped.is_none() {
            self.reaped = self.child.wait().ok();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(STOP_GRACE);
    }
}

/// `kill -s SIG -- TARGET`: std has no kill(2) and the crate forbids `unsafe`.
fn send(sig: &str, target: &str) -> bool {
    Command::new("kill")
        .args(["-s", sig, "--", target])
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
