//! Finding the uvicorn/gunicorn backends on this machine: `--backend` flags, systemd units,
//! supervisord programs and running processes, read into [`Backend`]s.
//!
//! This module does the reading (files, globs, `/proc`) and hands text to the pure parsers in
//! `crate::parse::backend`. What it cannot read becomes a note ("unavailable: …"), never a
//! failure, except for files the user named explicitly.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::model::backend::{Backend, RunAs, Source};
use crate::parse::backend::cmdline::{self, CmdlineError, ConfigFile, Context, Kind};
use crate::parse::backend::{supervisord, systemd_unit};

mod procs;

/// Why explicitly named backends could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--backend #{index}: cannot split `{cmdline}` into words (unbalanced quotes)")]
    Split { index: usize, cmdline: String },
    #[error("{what}")]
    Cmdline { what: String, source: CmdlineError },
    #[error("cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What [`discover`] found.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    pub backends: Vec<Backend>,
    /// What could not be read or was skipped, for the report.
    pub notes: Vec<String>,
}

/// Where [`discover_in`] looks; [`Roots::default`] is the real system.
#[derive(Debug, Clone)]
pub struct Roots {
    /// systemd unit directories, highest priority first.
    pub systemd_dirs: Vec<PathBuf>,
    /// supervisord main config files (their `[include]`s are followed).
    pub supervisord_confs: Vec<PathBuf>,
    /// The procfs mount to scan for running servers; `None` skips processes.
    pub proc: Option<PathBuf>,
}

impl Default for Roots {
    fn default() -> Self {
        let paths = |v: &[&str]| v.iter().map(PathBuf::from).collect();
        Roots {
            systemd_dirs: paths(&[
                "/etc/systemd/system",
                "/run/systemd/system",
                "/lib/systemd/system",
                "/usr/lib/systemd/system",
            ]),
            supervisord_confs: paths(&[
                "/etc/supervisor/supervisord.conf",
                "/etc/supervisord.conf",
            ]),
            proc: Some("/proc".into()),
        }
    }
}

/// Backends from `--backend 'COMMAND LINE'` flags, split like a shell would. `-c` files and
/// `./gunicorn.conf.py` are read relative to the current directory.
pub fn from_cmdlines(cmdlines: &[String]) -> Result<Vec<Backend>, Error> {
    let cwd = std::env::current_dir().ok();
    cmdlines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            let argv = shlex::split(line).ok_or_else(|| Error::Split {
                index,
                cmdline: line.clone(),
            })?;
            let ctx = Context {
                name: format!("--backend #{}", index + 1),
                source: Source::Flag { index },
                working_directory: cwd.clone(),
                run_as: RunAs::default(),
            };
            build(&argv, &BTreeMap::new(), ctx).map_err(|source| Error::Cmdline {
                what: format!("--backend #{}", index + 1),
                source,
            })
        })
        .collect()
}

/// Backends from unit files named on the command line, with the drop-ins in `NAME.d/` beside
/// each. Units whose `ExecStart=` is not uvicorn/gunicorn are skipped.
pub fn from_unit_files(paths: &[PathBuf]) -> Result<Vec<Backend>, Error> {
    let mut out = Vec::new();
    for path in paths {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let name = file_name(path);
        let files = unit_with_dropins(path, &dropins(&[dir], &name))?;
        for b in unit_backends(&name, &files) {
            out.push(b.map_err(|(what, source)| Error::Cmdline { what, source })?);
        }
    }
    Ok(out)
}

/// Backends from supervisord config files named on the command line (and their includes).
pub fn from_supervisord_confs(paths: &[PathBuf]) -> Result<Vec<Backend>, Error> {
    let mut out = Vec::new();
    for path in paths {
        let mut notes = Vec::new();
        let text = read(path)?;
        for b in supervisord_backends(path, &text, &mut notes) {
            out.push(b.map_err(|(what, source)| Error::Cmdline { what, source })?);
        }
    }
    Ok(out)
}

/// Scans the real system: systemd units, supervisord programs and running processes.
pub fn discover() -> Discovery {
    discover_in(&Roots::default())
}

/// [`discover`] with injectable roots (for tests).
pub fn discover_in(roots: &Roots) -> Discovery {
    let mut d = Discovery::default();
    systemd_units(&roots.systemd_dirs, &mut d);
    for path in &roots.supervisord_confs {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for b in supervisord_backends(path, &text, &mut d.notes) {
                    push(&mut d, b);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => d.notes.push(unavailable(path, &e)),
        }
    }
    if let Some(proc) = &roots.proc {
        let known: HashSet<(Kind, Vec<String>)> =
            d.backends.iter().filter_map(|b| key(&b.argv)).collect();
        for (pid, b) in procs::scan(proc, &mut d.notes) {
            match b {
                Ok(b) if key(&b.argv).is_some_and(|k| known.contains(&k)) => {
                    d.notes.push(format!(
                        "pid {pid} runs a backend already found in a unit or program"
                    ));
                }
                b => push(&mut d, b.map_err(|e| (format!("pid {pid}"), e))),
            }
        }
    }
    d
}

fn push(d: &mut Discovery, b: Result<Backend, (String, CmdlineError)>) {
    match b {
        Ok(b) => d.backends.push(b),
        Err((what, e)) => d.notes.push(format!("{what}: {e}")),
    }
}

/// What identifies a backend across its unit and its process: the server and its arguments.
fn key(argv: &[String]) -> Option<(Kind, Vec<String>)> {
    cmdline::server_args(argv).map(|(k, a)| (k, a.to_vec()))
}

fn unavailable(path: &Path, e: &std::io::Error) -> String {
    let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
        " (run as root to read it)"
    } else {
        ""
    };
    format!("unavailable: {}: {e}{hint}", path.display())
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.into(),
        source,
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Parses `argv` after reading the gunicorn config file it refers to, if any. A config file
/// that cannot be read is recorded in `unparsed`.
pub(crate) fn build(
    argv: &[String],
    env: &BTreeMap<String, String>,
    ctx: Context,
) -> Result<Backend, CmdlineError> {
    let mut note = None;
    let text = match cmdline::config_file(argv, env)? {
        None => None,
        Some(ConfigFile::Module(m)) => {
            note = Some(format!("config module `python:{m}` not read"));
            None
        }
        Some(ConfigFile::Default(rel)) => {
            let path = resolve(&ctx.working_directory, &rel);
            std::fs::read_to_string(path).ok()
        }
        Some(ConfigFile::Explicit(rel)) => {
            let path = resolve(&ctx.working_directory, &rel);
            std::fs::read_to_string(&path)
                .inspect_err(|e| {
                    note = Some(format!("config file `{}` not read: {e}", path.display()))
                })
                .ok()
        }
    };
    let mut b = cmdline::parse(argv, text.as_deref(), env, ctx)?;
    b.unparsed.extend(note);
    Ok(b)
}

fn resolve(wd: &Option<PathBuf>, rel: &Path) -> PathBuf {
    match wd {
        Some(wd) => wd.join(rel),
        None => rel.to_path_buf(),
    }
}

/// `NAME.d/*.conf` across `dirs` (highest priority first): sorted by file name, a file in a
/// higher-priority directory masking one of the same name below (systemd.unit(5)).
fn dropins(dirs: &[PathBuf], name: &str) -> Vec<PathBuf> {
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

fn unit_with_dropins(path: &Path, dropins: &[PathBuf]) -> Result<Vec<(PathBuf, String)>, Error> {
    std::iter::once(path)
        .chain(dropins.iter().map(PathBuf::as_path))
        .map(|p| Ok((p.to_path_buf(), read(p)?)))
        .collect()
}

type Built = Result<Backend, (String, CmdlineError)>;

/// The backends a unit's `ExecStart=` lines start.
fn unit_backends(name: &str, files: &[(PathBuf, String)]) -> Vec<Built> {
    let parsed: Vec<_> = files.iter().map(|(_, t)| systemd_unit::parse(t)).collect();
    let s = systemd_unit::service(&parsed, name);
    let run_as = RunAs {
        user: s.user.clone(),
        group: s.group.clone(),
        // systemd's defaults: UMask=0022, RuntimeDirectoryMode=0755.
        umask: Some(s.umask.unwrap_or(0o022)),
        runtime_directories: s.runtime_directories.clone(),
        runtime_directory_mode: Some(s.runtime_directory_mode.unwrap_or(0o755)),
    };
    s.exec_start
        .iter()
        .filter(|e| cmdline::detect(&e.argv).is_ok())
        .map(|e| {
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
            build(&e.argv, &s.environment, ctx).map_err(|err| (name.to_string(), err))
        })
        .collect()
}

fn systemd_units(dirs: &[PathBuf], d: &mut Discovery) {
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
                Ok(files) => unit_backends(&name, &files)
                    .into_iter()
                    .for_each(|b| push(d, b)),
                Err(Error::Read { path, source }) => d.notes.push(unavailable(&path, &source)),
                Err(e) => d.notes.push(e.to_string()),
            }
        }
    }
}

/// The backends of a supervisord main file and the files it includes.
fn supervisord_backends(path: &Path, text: &str, notes: &mut Vec<String>) -> Vec<Built> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let here = path.parent().unwrap_or(Path::new("/"));
    let main = supervisord::parse(text, &here.to_string_lossy(), &env);
    // supervisord's own umask (default 022) is inherited by programs without `umask=`.
    let umask = main.umask.unwrap_or(0o022);
    let mut files = vec![(path.to_path_buf(), main.clone())];
    for pattern in &main.includes {
        let pattern = here.join(pattern).to_string_lossy().into_owned();
        let Ok(matches) = glob::glob(&pattern) else {
            notes.push(format!(
                "{}: bad include pattern `{pattern}`",
                path.display()
            ));
            continue;
        };
        for inc in matches.flatten() {
            match std::fs::read_to_string(&inc) {
                Ok(t) => {
                    let dir = inc
                        .parent()
                        .unwrap_or(Path::new("/"))
                        .to_string_lossy()
                        .into_owned();
                    files.push((inc.clone(), supervisord::parse(&t, &dir, &env)));
                }
                Err(e) => notes.push(unavailable(&inc, &e)),
            }
        }
    }
    let mut out = Vec::new();
    for (file, conf) in files {
        notes.extend(
            conf.errors
                .iter()
                .map(|e| format!("{}: {e}", file.display())),
        );
        for p in conf
            .programs
            .into_iter()
            .filter(|p| cmdline::detect(&p.argv).is_ok())
        {
            let ctx = Context {
                name: p.process_name.clone(),
                source: Source::Supervisord {
                    program: p.process_name.clone(),
                    path: file.clone(),
                    line: p.line,
                },
                working_directory: p.directory.as_ref().map(PathBuf::from),
                run_as: RunAs {
                    user: p.user.clone(),
                    umask: Some(p.umask.unwrap_or(umask)),
                    ..RunAs::default()
                },
            };
            out.push(build(&p.argv, &p.environment, ctx).map_err(|e| (p.process_name.clone(), e)));
        }
    }
    out
}

#[cfg(test)]
mod tests;
