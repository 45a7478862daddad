//! nginx and backend process trees from `/proc`: state, start time, CPU progress between two
//! samples, owner and command line.
//!
//! Owns reading `/proc/PID/{stat,cmdline}` and grouping processes into trees. It recognises
//! uvicorn and gunicorn with the same code that reads configured command lines
//! ([`cmdline::detect`]), so a process and a `--backend` flag are read alike. It never decides
//! whether a state is bad: `T` with no CPU progress is just data for the rules.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use crate::gather::nginx_proc;
use crate::model::backend::{Backend, Bind, Source};
use crate::model::evidence::{BackendProcesses, Fact, NginxProcesses, ProcessInfo};
use crate::parse::backend::cmdline::{self, Context, Kind};

/// One process as read from `/proc` in one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawProc {
    pub pid: i32,
    pub ppid: i32,
    pub state: char,
    /// `starttime` from `/proc/PID/stat`: clock ticks after boot.
    pub start_ticks: u64,
    /// utime + stime, clock ticks.
    pub cpu_ticks: u64,
    pub uid: u32,
    pub cmdline: Vec<String>,
}

/// A process tree found in one snapshot: indexes are PIDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    pub master: i32,
    pub workers: Vec<i32>,
}

/// Samples nginx and backend process trees twice, `interval` apart, so CPU progress can be
/// compared (`ProcessInfo::cpu_ticks`). Trees of backends in `backends` are tied to them by
/// command line or binds (`BackendProcesses::backend`). Sleeps for `interval`.
pub fn sample(
    backends: &[Backend],
    interval: Duration,
) -> (Fact<Vec<NginxProcesses>>, Fact<Vec<BackendProcesses>>) {
    let first = match snapshot(Path::new("/proc")) {
        Ok(s) => s,
        Err(why) => {
            let how = "mount /proc, or run reflex in the host's PID namespace";
            return (
                Fact::unavailable("nginx processes (/proc)", why.clone(), how),
                Fact::unavailable("backend processes (/proc)", why, how),
            );
        }
    };
    sleep(interval);
    // A process that exited between the samples keeps its first reading (no progress).
    let second = snapshot(Path::new("/proc")).unwrap_or_default();
    let clock = Clock::read();
    let info = |pid: i32| -> Option<ProcessInfo> {
        let a = first.get(&pid)?;
        let b = second.get(&pid).unwrap_or(a);
        Some(clock.info(a, b, interval))
    };

    let nginx = nginx_trees(&first)
        .into_iter()
        .filter_map(|(tree, master)| {
            Some(NginxProcesses {
                master: info(tree.master)?,
                workers: tree.workers.iter().filter_map(|&p| info(p)).collect(),
                conf: master.conf,
                prefix: master.prefix,
                globals: master.globals,
            })
        })
        .collect();
    let apps = backend_trees(&first)
        .into_iter()
        .filter_map(|tree| {
            let m = first.get(&tree.master)?;
            Some(BackendProcesses {
                backend: tie(m, backends).map(|b| b.name.clone()),
                master: info(tree.master)?,
                workers: tree.workers.iter().filter_map(|&p| info(p)).collect(),
                cgroup: cgroup_of(tree.master),
            })
        })
        .collect();
    (Fact::Known(nginx), Fact::Known(apps))
}

/// The cgroup of a process, from `/proc/PID/cgroup`: the unified (v2) path, else the v1
/// memory controller's, which is where the OOM killer's `task_memcg=` points.
fn cgroup_of(pid: i32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    parse_cgroup(&text)
}

/// The memory-relevant cgroup path of a `/proc/PID/cgroup` text (`0::/app.slice` on v2;
/// `7:memory:/app` on v1). The root (`/`) says nothing about a backend: `None`.
pub fn parse_cgroup(text: &str) -> Option<String> {
    let field = |ctrl: &str| {
        text.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, c, path) = (parts.next()?, parts.next()?, parts.next()?);
            (c.split(',').any(|x| x == ctrl)).then(|| path.trim().to_string())
        })
    };
    field("memory")
        .or_else(|| field(""))
        .filter(|p| !p.is_empty() && p != "/")
}

/// Reads every process of a `/proc` tree. Processes that vanish or cannot be read are skipped;
/// only an unreadable `/proc` itself is an error (the `why` text).
pub fn snapshot(proc: &Path) -> Result<BTreeMap<i32, RawProc>, String> {
    let all = procfs::process::all_processes_with_root(proc)
        .map_err(|e| format!("cannot list {}: {e}", proc.display()))?;
    let mut out = BTreeMap::new();
    for p in all.flatten() {
        let Ok(stat) = p.stat() else { continue };
        out.insert(
            stat.pid,
            RawProc {
                pid: stat.pid,
                ppid: stat.ppid,
                state: stat.state,
                start_ticks: stat.starttime,
                cpu_ticks: stat.utime + stat.stime,
                uid: p.uid().unwrap_or(u32::MAX),
                // Kernel threads and zombies have an empty cmdline; so does a process we may
                // not read (hidepid): it just isn't recognised.
                cmdline: p.cmdline().unwrap_or_default(),
            },
        );
    }
    Ok(out)
}

/// Boot time and tick rate, to turn `stat` fields into wall-clock values.
struct Clock {
    boot_ms: u64,
    ticks_per_sec: u64,
}

impl Clock {
    fn read() -> Self {
        Clock {
            boot_ms: procfs::boot_time_secs().unwrap_or(0) * 1000,
            ticks_per_sec: procfs::ticks_per_second().max(1),
        }
    }

    fn info(&self, a: &RawProc, b: &RawProc, interval: Duration) -> ProcessInfo {
        ProcessInfo {
            pid: b.pid,
            ppid: b.ppid,
            // The later state: it is what a request arriving now meets.
            state: b.state,
            start_ms: self.boot_ms + a.start_ticks * 1000 / self.ticks_per_sec,
            cpu_ticks: (a.cpu_ticks, b.cpu_ticks),
            sample_ms: interval.as_millis() as u64,
            uid: a.uid,
            user: user_name(a.uid),
            cmdline: a.cmdline.clone(),
        }
    }
}

fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

fn children(procs: &BTreeMap<i32, RawProc>, pid: i32) -> impl Iterator<Item = &RawProc> {
    procs.values().filter(move |p| p.ppid == pid)
}

/// nginx masters (with their `-c/-p/-g`, read by [`nginx_proc`]) and their worker processes.
pub fn nginx_trees(procs: &BTreeMap<i32, RawProc>) -> Vec<(Tree, nginx_proc::Master)> {
    let masters: HashMap<i32, nginx_proc::Master> = nginx_proc::masters()
        .into_iter()
        .map(|m| (m.pid, m))
        .collect();
    let mut out = Vec::new();
    for (pid, master) in masters {
        if !procs.contains_key(&pid) {
            continue;
        }
        let workers = children(procs, pid)
            .filter(|c| c.cmdline.join(" ").starts_with("nginx: worker process"))
            .map(|c| c.pid)
            .collect();
        out.push((
            Tree {
                master: pid,
                workers,
            },
            master,
        ));
    }
    out.sort_by_key(|(t, _)| t.master);
    out
}

/// Which server a command line runs, including gunicorn's `setproctitle` titles
/// (`gunicorn: master [app:app]`, `gunicorn: worker [app:app]`).
pub fn server_kind(argv: &[String]) -> Option<Kind> {
    // setproctitle rewrites the whole cmdline as one string; no NULs left to split on.
    if argv
        .first()
        .is_some_and(|w| w == "gunicorn:" || w.starts_with("gunicorn: "))
    {
        return Some(Kind::Gunicorn);
    }
    cmdline::detect(argv).ok().map(|(k, _)| k)
}

/// A `multiprocessing` spawn child: how uvicorn `--workers N` (and `--reload`) starts its
/// servers (`python -c 'from multiprocessing.spawn import spawn_main; …' --multiprocessing-fork`).
/// The resource tracker it also starts is not a worker.
fn is_spawn_child(argv: &[String]) -> bool {
    argv.iter().any(|w| w == "--multiprocessing-fork")
        && argv.iter().any(|w| w.contains("multiprocessing.spawn"))
}

/// Groups uvicorn and gunicorn processes into trees. gunicorn forks its workers, so they have
/// the master's command line and the master as parent; uvicorn `--workers` spawns fresh
/// interpreters whose parent is the uvicorn process.
pub fn backend_trees(procs: &BTreeMap<i32, RawProc>) -> Vec<Tree> {
    let kind = |p: &RawProc| server_kind(&p.cmdline);
    let mut out = Vec::new();
    for p in procs.values() {
        let Some(k) = kind(p) else { continue };
        let parent_same = procs.get(&p.ppid).and_then(kind) == Some(k);
        if k == Kind::Gunicorn && parent_same {
            continue; // a worker of the master found through its parent
        }
        let workers = children(procs, p.pid)
            .filter(|c| match k {
                Kind::Gunicorn => kind(c) == Some(Kind::Gunicorn),
                _ => is_spawn_child(&c.cmdline),
            })
            .map(|c| c.pid)
            .collect();
        out.push(Tree {
            master: p.pid,
            workers,
        });
    }
    out
}

/// The backend a process tree runs: same server and arguments (`python3 /venv/bin/uvicorn a:b`
/// is `/venv/bin/uvicorn a:b`), or else a shared listening address.
pub fn tie<'a>(master: &RawProc, backends: &'a [Backend]) -> Option<&'a Backend> {
    let args = cmdline::server_args(&master.cmdline);
    if let Some(b) = backends
        .iter()
        .find(|b| args.is_some() && cmdline::server_args(&b.argv) == args)
    {
        return Some(b);
    }
    let binds = process_binds(master);
    backends.iter().find(|b| {
        b.binds
            .iter()
            .any(|x| binds.iter().any(|y| same_bind(x, y, b)))
    })
}

/// The binds a process's command line asks for (relative unix paths made absolute against its
/// working directory).
fn process_binds(p: &RawProc) -> Vec<Bind> {
    let cwd = std::fs::read_link(format!("/proc/{}/cwd", p.pid)).ok();
    let ctx = Context {
        name: format!("pid {}", p.pid),
        source: Source::Process { pid: p.pid },
        working_directory: cwd.clone(),
        run_as: Default::default(),
    };
    let Ok(b) = cmdline::parse(&p.cmdline, None, &BTreeMap::new(), ctx) else {
        return Vec::new();
    };
    b.binds
        .into_iter()
        .map(|x| match x {
            Bind::Unix { path } => Bind::Unix {
                path: absolute(&path, cwd.as_deref()),
            },
            other => other,
        })
        .collect()
}

fn absolute(path: &Path, base: Option<&Path>) -> PathBuf {
    match base {
        Some(b) if path.is_relative() => b.join(path),
        _ => path.to_path_buf(),
    }
}

fn same_bind(configured: &Bind, running: &Bind, b: &Backend) -> bool {
    match (configured, running) {
        (Bind::Tcp { port: p1, host: h1 }, Bind::Tcp { port: p2, host: h2 }) => {
            p1 == p2 && (h1 == h2 || h1 == "localhost" || h2 == "localhost")
        }
        (Bind::Unix { path: a }, Bind::Unix { path: r }) => {
            absolute(a, b.working_directory.as_deref()) == *r
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pid: i32, ppid: i32, cmd: &str) -> RawProc {
        RawProc {
            pid,
            ppid,
            state: 'S',
            start_ticks: 0,
            cpu_ticks: 0,
            uid: 0,
            cmdline: cmd.split(' ').map(str::to_string).collect(),
        }
    }

    fn table(rows: &[RawProc]) -> BTreeMap<i32, RawProc> {
        rows.iter().map(|r| (r.pid, r.clone())).collect()
    }

    const GUNICORN: &str = "/v/bin/python3 /v/bin/gunicorn -w 2 -b 127.0.0.1:8000 app:app";
    const UVICORN: &str = "/v/bin/python3 /v/bin/uvicorn app:app --workers 2 --port 8001";
    const SPAWN: &str = "/v/bin/python3 -B -c from multiprocessing.spawn import spawn_main; \
                         spawn_main(tracker_fd=7, pipe_handle=9) --multiprocessing-fork";
    const TRACKER: &str =
        "/v/bin/python3 -B -c from multiprocessing.resource_tracker import main;main(6)";

    #[test]
    fn groups_gunicorn_and_uvicorn_workers() {
        let procs = table(&[
            raw(1, 0, "/sbin/init"),
            raw(10, 1, GUNICORN),
            raw(11, 10, GUNICORN),
            raw(12, 10, GUNICORN),
            raw(20, 1, UVICORN),
            raw(21, 20, TRACKER),
            raw(22, 20, SPAWN),
            raw(23, 20, SPAWN),
            raw(30, 1, "/v/bin/uvicorn other:app --uds /run/a.sock"),
            raw(40, 1, "gunicorn: master [app:app]"),
            raw(41, 40, "gunicorn: worker [app:app]"),
            raw(50, 1, "/usr/bin/python3 script.py"),
        ]);
        let trees = backend_trees(&procs);
        let t = |master, workers: &[i32]| Tree {
            master,
            workers: workers.to_vec(),
        };
        assert_eq!(
            trees,
            vec![t(10, &[11, 12]), t(20, &[22, 23]), t(30, &[]), t(40, &[41])]
        );
    }

    #[test]
    fn ties_by_args_then_binds() {
        let ctx = |name: &str| Context {
            name: name.into(),
            source: Source::Flag { index: 0 },
            working_directory: Some("/srv".into()),
            run_as: Default::default(),
        };
        let words = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        let env = BTreeMap::new();
        let by_args = cmdline::parse(
            &words("/v/bin/gunicorn -w 2 -b 127.0.0.1:8000 app:app"),
            None,
            &env,
            ctx("g"),
        )
        .expect("parse");
        let other =
            cmdline::parse(&words("uvicorn x:y --port 9"), None, &env, ctx("u")).expect("parse");
        let backends = vec![other, by_args];
        let m = raw(std::process::id() as i32, 1, GUNICORN);
        assert_eq!(tie(&m, &backends).map(|b| b.name.as_str()), Some("g"));
        // Different flags, same port: tied by the bind.
        let m = raw(
            std::process::id() as i32,
            1,
            "/v/bin/python3 /v/bin/uvicorn a:b --port 9",
        );
        assert_eq!(tie(&m, &backends).map(|b| b.name.as_str()), Some("u"));
        let m = raw(std::process::id() as i32, 1, "/v/bin/uvicorn a:b --port 10");
        assert_eq!(tie(&m, &backends), None);
    }

    #[test]
    fn cgroup_paths() {
        let v2 = "0::/system.slice/app.service\n";
        assert_eq!(
            parse_cgroup(v2).as_deref(),
            Some("/system.slice/app.service")
        );
        let hybrid = "12:memory:/reflex-t1\n1:name=systemd:/\n0::/\n";
        assert_eq!(parse_cgroup(hybrid).as_deref(), Some("/reflex-t1"));
        assert_eq!(parse_cgroup("0::/\n"), None, "the root says nothing");
        assert_eq!(parse_cgroup("garbage"), None);
    }
}
