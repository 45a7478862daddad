//! Running a program inside a private Linux namespace (root only), so one test can change what
//! the program sees (`/etc/hosts`, `net.core.somaxconn`) without touching the machine or the
//! other tests running in parallel.
//!
//! `unshare` without `--fork` execs the command in place, and the `sh -c '… exec "$@"'` does
//! too, so the PID of the spawned child *is* the PID of the program: signals and `Drop` reach it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// How to wrap a command.
#[derive(Debug, Clone, Default)]
pub enum Wrap {
    /// Run it directly.
    #[default]
    None,
    /// A private mount namespace with this file bind-mounted over `/etc/hosts`.
    Hosts(PathBuf),
    /// A private network namespace (only `lo`, brought up) with `net.core.somaxconn` set to
    /// this value. Unix sockets on the file system still connect across namespaces.
    NetNs { somaxconn: u32 },
    /// With these environment variables set (`env K=V … program`: `env` execs it, so the PID is
    /// still the program's), e.g. nginx under another `TZ`.
    Env(Vec<(String, String)>),
    /// Inside a cgroup: `sh` writes its PID to this `cgroup.procs` file, then execs the program.
    Cgroup(PathBuf),
}

impl Wrap {
    /// A `Command` that runs `program args...` under this wrapping.
    pub fn command(&self, program: &Path, args: &[String]) -> Command {
        match self {
            Wrap::None => {
                let mut c = Command::new(program);
                c.args(args);
                c
            }
            Wrap::Hosts(hosts) => {
                require_root("a private mount namespace");
                let mut c = Command::new("unshare");
                c.args(["--mount", "--propagation", "private", "sh", "-c"]);
                c.arg(r#"mount --bind "$0" /etc/hosts && exec "$@""#);
                c.arg(hosts).arg(program).args(args);
                c
            }
            Wrap::NetNs { somaxconn } => {
                require_root("a private network namespace");
                let mut c = Command::new("unshare");
                c.args(["--net", "sh", "-c"]);
                c.arg(r#"ip link set lo up && sysctl -q -w net.core.somaxconn="$0" && exec "$@""#);
                c.arg(somaxconn.to_string()).arg(program).args(args);
                c
            }
            Wrap::Cgroup(procs) => {
                require_root("moving a process into a cgroup");
                let mut c = Command::new("sh");
                c.arg("-c").arg(r#"echo $$ > "$0" && exec "$@""#);
                c.arg(procs).arg(program).args(args);
                c
            }
            Wrap::Env(vars) => {
                let mut c = Command::new("env");
                c.args(vars.iter().map(|(k, v)| format!("{k}={v}")));
                c.arg(program).args(args);
                c
            }
        }
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Fails the test (rather than skipping it, which would hide a broken set-up) when not root.
pub fn require_root(what: &str) {
    assert!(
        is_root(),
        "{what} needs root (CI runs as root; run scripts/test as root)"
    );
}

/// A hosts file mapping `localhost` to both `::1` and `127.0.0.1`, as many distributions ship.
pub fn dual_stack_hosts(dir: &Path) -> PathBuf {
    super::write(
        dir,
        "hosts",
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    )
}
