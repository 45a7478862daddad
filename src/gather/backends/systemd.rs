//! Reading systemd units for `gather::backends`: a unit with its drop-ins, the environment its
//! `ExecStart=` sees (`Environment=` and the `EnvironmentFile=`s), and what systemd adds around
//! the command (`Restart=`, `PrivateTmp=`, `TimeoutStopSec=`).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Built, Discovery, Error, build, file_name, push, read, unavailable};
use crate::model::backend::{RunAs, Source, Supervision};
use crate::parse::backend::cmdline::{self, Context, Gaps};
use crate::parse::backend::systemd_unit::{self, Service};

/// systemd's `DefaultTimeoutStopSec=` (systemd-system.conf(5)).
const DEFAULT_TIMEOUT_STOP: Duration = Duration::from_secs(90);

/// `NAME.d/*.conf` across `dirs` (highest priority first): sorted by file name, a file in a
/// higher-priority directory masking one of the same name below (systemd.unit(5)).
pub(super) fn dropins(dirs: &[PathBuf], name: &str) -> Vec<PathBuf> {
    let mut by_name = BTreeMap::new();
    for dir in dirs.iter().rev() {
        let Ok(entries) = std::fs::read_dir(dir.join(format!("{name}.d"))) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "conf") {
                by_name.insert(file_name(&p), p);
            }
        }
    }
    by_name.into_values().collect()
}

pub(super) fn unit_with_dropins(
    path: &Path,
    dropins: &[PathBuf],
) -> Result<Vec<(PathBuf, String)>, Error> {
    std::iter::once(path)
        .chain(dropins.iter().map(PathBuf::as_path))
        .map(|p| Ok((p.to_path_buf(), read(p)?)))
        .collect()
}

/// The environment `ExecStart=` sees: `Environment=`, then each `EnvironmentFile=` (which
/// override it, in order), plus what systemd sets itself from the unit. The `Err` side says
/// why it may hold more than we could read.
fn environment(
    s: &Service,
    offline: bool,
    notes: &mut Vec<String>,
) -> (BTreeMap<String, String>, Option<String>) {
    let mut env = s.environment.clone();
    let mut gap = None;
    if let Some(user) = &s.user {
        env.insert("USER".into(), user.clone());
        env.insert("LOGNAME".into(), user.clone());
    }
    if !s.runtime_directories.is_empty() {
        let dirs: Vec<String> = s
            .runtime_directories
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        env.insert("RUNTIME_DIRECTORY".into(), dirs.join(":"));
    }
    for f in &s.environment_files {
        if offline {
            gap.get_or_insert(format!(
                "EnvironmentFile={} is on the target machine (not read: --no-discover)",
                f.path
            ));
            continue;
        }
        // systemd ignores a relative path ("Path is not absolute, ignoring").
        if !f.path.starts_with('/') {
            notes.push(format!(
                "EnvironmentFile={}: not an absolute path, systemd ignores it",
                f.path
            ));
            continue;
        }
        match read_environment_file(&f.path, f.optional) {
            Ok(vars) => env.extend(vars),
            Err(why) => {
                gap.get_or_insert(why);
            }
        }
    }
    (env, gap)
}

/// The variables of one `EnvironmentFile=` (a glob reads every match, in order).
fn read_environment_file(pattern: &str, optional: bool) -> Result<Vec<(String, String)>, String> {
    let paths: Vec<PathBuf> = if pattern.contains(['*', '?', '[']) {
        let mut v: Vec<PathBuf> = glob::glob(pattern)
            .map_err(|e| format!("EnvironmentFile={pattern}: {e}"))?
            .flatten()
            .collect();
        v.sort();
        v
    } else {
        vec![PathBuf::from(pattern)]
    };
    let mut out = Vec::new();
    for p in paths {
        match std::fs::read(&p) {
            Ok(raw) => out.extend(systemd_unit::parse_environment_file(
                &String::from_utf8_lossy(&raw),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && optional => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!(
                    "EnvironmentFile={} is missing: systemd refuses to start the unit",
                    p.display()
                ));
            }
            Err(e) => return Err(format!("EnvironmentFile=: {}", unavailable(&p, &e))),
        }
    }
    Ok(out)
}

/// What systemd does around the command.
fn supervision(s: &Service) -> Supervision {
    let (stop_timeout, explicit) = match s.timeout_stop {
        Some(t) => (t, true),
        None => (Some(DEFAULT_TIMEOUT_STOP), false),
    };
    Supervision {
        restart: s.restart.clone(),
        private_tmp: s.private_tmp,
        stop_timeout,
        stop_timeout_explicit: explicit,
    }
}

/// The backends a unit's `ExecStart=` lines start.
pub(super) fn unit_backends(
    name: &str,
    files: &[(PathBuf, String)],
    offline: bool,
    notes: &mut Vec<String>,
) -> Vec<Built> {
    let parsed: Vec<_> = files.iter().map(|(_, t)| systemd_unit::parse(t)).collect();
    let s = systemd_unit::service(&parsed, name);
    notes.extend(s.errors.iter().map(|e| format!("{name}: {e}")));
    let run_as = RunAs {
        user: s.user.clone(),
        group: s.group.clone(),
        // systemd's defaults: UMask=0022, RuntimeDirectoryMode=0755.
        umask: Some(s.umask.unwrap_or(0o022)),
        runtime_directories: s.runtime_directories.clone(),
        runtime_directory_mode: Some(s.runtime_directory_mode.unwrap_or(0o755)),
    };
    let (env, env_gap) = environment(&s, offline, notes);
    let mut out = Vec::new();
    for e in &s.exec_start {
        let words = match e.words(&env) {
            Ok(w) => w,
            Err(err) => {
                notes.push(format!("{name}: line {}: {err}", e.line));
                continue;
            }
        };
        if cmdline::detect(&words.argv).is_err() {
            continue;
        }
        let ctx = Context {
            name: name.to_string(),
            source: Source::SystemdUnit {
                unit: name.into(),
                path: files[e.file].0.clone(),
                line: e.line,
            },
            // A system service starts in `/` unless WorkingDirectory= says otherwise.
            working_directory: Some(s.working_directory.clone().unwrap_or_else(|| "/".into())),
            run_as: run_as.clone(),
        };
        let gaps = Gaps {
            words: words.unknown,
            opaque: words.opaque,
            environment: env_gap.clone(),
        };
        out.push(
            build(&words.argv, &env, ctx, &gaps, offline)
                .map(|mut b| {
                    b.supervision = supervision(&s);
                    b
                })
                .map_err(|err| (name.to_string(), err)),
        );
    }
    out
}

/// Every service unit in `dirs` (highest priority first; a name is read once).
pub(super) fn units(dirs: &[PathBuf], d: &mut Discovery) {
    let mut seen = HashSet::new();
    for dir in dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                d.notes.push(unavailable(dir, &e));
                continue;
            }
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let name = file_name(&path);
            // Templates (`app@.service`) only mean something per instance; those show as processes.
            if !name.ends_with(".service")
                || name.ends_with("@.service")
                || !seen.insert(name.clone())
            {
                continue;
            }
            match unit_with_dropins(&path, &dropins(dirs, &name)) {
                Ok(files) => {
                    let mut notes = Vec::new();
                    for b in unit_backends(&name, &files, false, &mut notes) {
                        push(d, b);
                    }
                    d.notes.extend(notes);
                }
                Err(Error::Read { path, source }) => d.notes.push(unavailable(&path, &source)),
                Err(e) => d.notes.push(e.to_string()),
            }
        }
    }
}
