//! Finds running nginx master processes and the configuration they were started with.
//!
//! nginx rewrites its master's command line to `nginx: master process <original argv>`, so the
//! original `-c`, `-p` and `-g` are still readable from `/proc/PID/cmdline`.

use std::path::{Path, PathBuf};

/// A running nginx master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Master {
    pub pid: i32,
    /// The executable (`/proc/PID/exe`), when readable.
    pub exe: Option<PathBuf>,
    /// The main configuration file it was started with.
    pub conf: PathBuf,
    /// `-p PREFIX`, when given.
    pub prefix: Option<PathBuf>,
    /// `-g DIRECTIVES`, when given.
    pub globals: Option<String>,
    /// `/proc/PID/root` when the master runs in another mount namespace (a container): its
    /// paths (`conf`, `prefix`) are already resolved through it, so they name its files from
    /// here.
    pub root: Option<PathBuf>,
}

/// The default main configuration file of Debian's nginx (`--conf-path`).
pub const DEFAULT_CONF: &str = "/etc/nginx/nginx.conf";

/// Every running nginx master visible in `/proc`: those in this mount namespace first (a
/// container's nginx shows up in the host's `/proc` too), then by PID.
pub fn masters() -> Vec<Master> {
    masters_in(Path::new("/proc"))
}

/// Like [`masters`], with `/proc` elsewhere (tests).
pub fn masters_in(proc: &Path) -> Vec<Master> {
    let Ok(entries) = std::fs::read_dir(proc) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        let Some(args) = parse_master_cmdline(&cmdline) else {
            continue;
        };
        let cwd = std::fs::read_link(e.path().join("cwd")).ok();
        let exe = std::fs::read_link(e.path().join("exe")).ok();
        let m = resolve(args, cwd.as_deref());
        let root = other_namespace(proc, &e.path()).then(|| e.path().join("root"));
        out.push(match root {
            // Its paths are its own: reach them through its root; its binary and `-t` are
            // not ours to run.
            Some(r) => Master {
                pid,
                exe: None,
                conf: under(&r, &m.conf),
                prefix: m.prefix.as_deref().map(|p| under(&r, p)),
                root: Some(r),
                ..m
            },
            None => Master { pid, exe, ..m },
        });
    }
    out.sort_by_key(|m| (m.root.is_some(), m.pid));
    out
}

/// Whether the process at `dir` (`/proc/PID`) is in another mount namespace than this one.
/// Unreadable (another user's process, unprivileged): taken as the same.
fn other_namespace(proc: &Path, dir: &Path) -> bool {
    let ours = std::fs::read_link(proc.join("self/ns/mnt"));
    let theirs = std::fs::read_link(dir.join("ns/mnt"));
    matches!((ours, theirs), (Ok(a), Ok(b)) if a != b)
}

/// `path` (absolute, in a container) seen through the container's `root`.
fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// The `-c`, `-p`, `-g` of an `nginx: master process …` command line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MasterArgs {
    pub conf: Option<String>,
    pub prefix: Option<String>,
    pub globals: Option<String>,
}

/// Parses a master's rewritten command line; `None` if it is not an nginx master.
pub fn parse_master_cmdline(cmdline: &str) -> Option<MasterArgs> {
    let rest = cmdline.trim().strip_prefix("nginx: master process")?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    let mut args = MasterArgs::default();
    let mut i = 1; // words[0] is the binary
    while i < words.len() {
        let take = |i: usize| words.get(i + 1).map(|s| s.to_string());
        match words[i] {
            "-c" => args.conf = take(i),
            "-p" => args.prefix = take(i),
            // `-g` takes the rest of its (space-containing) argument: nginx's `-g` is last in
            // practice, and the rewritten cmdline has lost the argument boundaries anyway.
            "-g" => {
                args.globals = Some(words[i + 1..].join(" "));
                break;
            }
            w if w.starts_with("-c") && w.len() > 2 => args.conf = Some(w[2..].to_string()),
            w if w.starts_with("-p") && w.len() > 2 => args.prefix = Some(w[2..].to_string()),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    Some(args)
}

fn resolve(args: MasterArgs, cwd: Option<&Path>) -> Master {
    let prefix = args.prefix.map(PathBuf::from);
    let conf = match args.conf {
        Some(c) if Path::new(&c).is_absolute() => PathBuf::from(c),
        // nginx makes a relative -c absolute against the prefix (ngx_conf_full_name).
        Some(c) => prefix
            .as_deref()
            .or(cwd)
            .map(|p| p.join(&c))
            .unwrap_or_else(|| PathBuf::from(c)),
        None => PathBuf::from(DEFAULT_CONF),
    };
    Master {
        pid: 0,
        exe: None,
        conf,
        prefix,
        globals: args.globals,
        root: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_cmdlines() {
        assert_eq!(parse_master_cmdline("nginx: worker process"), None);
        assert_eq!(parse_master_cmdline("/usr/sbin/nginx -c /x"), None);
        let a = parse_master_cmdline(
            "nginx: master process /usr/sbin/nginx -g daemon on; master_process on;",
        )
        .expect("master");
        assert_eq!(a.conf, None);
        assert_eq!(a.globals.as_deref(), Some("daemon on; master_process on;"));
        let a = parse_master_cmdline("nginx: master process nginx -p /srv/x -c conf/nginx.conf")
            .expect("master");
        assert_eq!(a.prefix.as_deref(), Some("/srv/x"));
        let m = resolve(a, None);
        assert_eq!(m.conf, PathBuf::from("/srv/x/conf/nginx.conf"));
    }

    #[test]
    fn a_containers_paths_are_reached_through_its_root() {
        let root = Path::new("/proc/42/root");
        assert_eq!(
            under(root, Path::new("/etc/nginx/nginx.conf")),
            PathBuf::from("/proc/42/root/etc/nginx/nginx.conf")
        );
    }
}
