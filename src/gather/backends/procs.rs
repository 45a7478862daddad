//! Running uvicorn/gunicorn servers, from `/proc` (or a procfs-shaped directory in tests).
//!
//! One backend per server: gunicorn forks its workers (same command line, parent = the master)
//! and uvicorn `--workers` spawns children via multiprocessing (`python -c "from
//! multiprocessing.spawn …"`), so a matching process whose parent also matches is a worker and
//! is skipped.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::model::backend::{Backend, RunAs, Source};
use crate::parse::backend::cmdline::{self, CmdlineError, Context, Gaps};

struct Proc {
    argv: Vec<String>,
    ppid: i32,
}

/// Every server process under `proc` that is not a worker of another, parsed.
pub fn scan(proc: &Path, notes: &mut Vec<String>) -> Vec<(i32, Result<Backend, CmdlineError>)> {
    let entries = match std::fs::read_dir(proc) {
        Ok(e) => e,
        Err(e) => {
            notes.push(super::unavailable(proc, &e));
            return Vec::new();
        }
    };
    let mut matching: HashMap<i32, Proc> = HashMap::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        // Processes can exit while we look: a vanished file is not worth a note.
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let argv = split_cmdline(&raw);
        if cmdline::detect(&argv).is_err() {
            continue;
        }
        let ppid = std::fs::read_to_string(e.path().join("stat"))
            .ok()
            .and_then(|s| ppid(&s))
            .unwrap_or(0);
        matching.insert(pid, Proc { argv, ppid });
    }
    let mut pids: Vec<i32> = matching
        .iter()
        .filter(|(_, p)| !matching.contains_key(&p.ppid))
        .map(|(pid, _)| *pid)
        .collect();
    pids.sort();
    pids.into_iter()
        .map(|pid| {
            let dir = proc.join(pid.to_string());
            let argv = &matching[&pid].argv;
            (pid, backend(pid, &dir, argv, notes))
        })
        .collect()
}

fn backend(
    pid: i32,
    dir: &Path,
    argv: &[String],
    notes: &mut Vec<String>,
) -> Result<Backend, CmdlineError> {
    let cwd = match std::fs::read_link(dir.join("cwd")) {
        Ok(p) => Some(p),
        Err(e) => {
            notes.push(super::unavailable(&dir.join("cwd"), &e));
            None
        }
    };
    let mut gaps = Gaps::default();
    let env = match std::fs::read(dir.join("environ")) {
        Ok(raw) => environ(&raw),
        Err(e) => {
            // GUNICORN_CMD_ARGS, UVICORN_* and WEB_CONCURRENCY may be set there.
            gaps.environment = Some(super::unavailable(&dir.join("environ"), &e));
            BTreeMap::new()
        }
    };
    let user = std::fs::read_to_string(dir.join("status"))
        .ok()
        .and_then(|s| uid(&s))
        .and_then(user_name);
    let ctx = Context {
        name: format!("pid {pid}"),
        source: Source::Process { pid },
        working_directory: cwd,
        run_as: RunAs {
            user,
            ..RunAs::default()
        },
    };
    super::build(argv, &env, ctx, &gaps, false)
}

/// `/proc/PID/cmdline`: NUL-terminated words.
fn split_cmdline(raw: &[u8]) -> Vec<String> {
    raw.split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
}

/// `/proc/PID/environ`: NUL-separated `KEY=value`.
fn environ(raw: &[u8]) -> BTreeMap<String, String> {
    split_cmdline(raw)
        .into_iter()
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.into(), v.into())))
        .collect()
}

/// The parent pid from `/proc/PID/stat` (field 4; the command name in field 2 may contain
/// spaces and parentheses, so count from the last `)`).
fn ppid(stat: &str) -> Option<i32> {
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The real uid from `/proc/PID/status`.
fn uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn user_name(uid: u32) -> Option<String> {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => Some(u.name),
        _ => Some(uid.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files() {
        assert_eq!(ppid("1234 (python3 (x) y) S 1 1234 1234 0 -1"), Some(1));
        assert_eq!(uid("Name:\tgunicorn\nUid:\t33\t33\t33\t33\n"), Some(33));
        assert_eq!(split_cmdline(b"uvicorn\0a:b\0"), ["uvicorn", "a:b"]);
        assert_eq!(
            environ(b"A=1\0B=x=y\0").get("B").map(String::as_str),
            Some("x=y")
        );
    }
}
