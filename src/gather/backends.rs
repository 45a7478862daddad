//! Finding the uvicorn/gunicorn backends on this machine: `--backend` flags, systemd units,
//! supervisord programs and running processes, read into [`Backend`]s.
//!
//! This module does the reading (files, globs, `/proc`) and hands text to the pure parsers in
//! `crate::parse::backend`. What it cannot read becomes a note ("unavailable: …"), never a
//! failure, except for files the user named explicitly.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::model::backend::{Backend, RunAs, Source};
use crate::parse::backend::cmdline::{
    self, CmdlineError, ConfigFile, ConfigText, Context, Gaps, Kind,
};

mod procs;
mod supervisord;
mod systemd;

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
            build(&argv, &BTreeMap::new(), ctx, &Gaps::default(), false).map_err(|source| {
                Error::Cmdline {
                    what: format!("--backend #{}", index + 1),
                    source,
                }
            })
        })
        .collect()
}

/// Backends from unit files named on the command line, with the drop-ins in `NAME.d/` beside
/// each. Units whose `ExecStart=` is not uvicorn/gunicorn are skipped. `offline`
/// (`--no-discover`): the files the units refer to (`EnvironmentFile=`, gunicorn config files)
/// are on the target machine, not here.
pub fn from_unit_files(paths: &[PathBuf], offline: bool) -> Result<Discovery, Error> {
    let mut out = Discovery::default();
    for path in paths {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let name = file_name(path);
        let files = systemd::unit_with_dropins(path, &systemd::dropins(&[dir], &name))?;
        for b in systemd::unit_backends(&name, &files, offline, &mut out.notes) {
            out.backends
                .push(b.map_err(|(what, source)| Error::Cmdline { what, source })?);
        }
    }
    Ok(out)
}

/// Backends from supervisord config files named on the command line (and their includes).
pub fn from_supervisord_confs(paths: &[PathBuf], offline: bool) -> Result<Discovery, Error> {
    let mut out = Discovery::default();
    for path in paths {
        let text = read(path)?;
        for b in supervisord::backends(path, &text, offline, &mut out.notes) {
            out.backends
                .push(b.map_err(|(what, source)| Error::Cmdline { what, source })?);
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
    systemd::units(&roots.systemd_dirs, &mut d);
    for path in &roots.supervisord_confs {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for b in supervisord::backends(path, &text, false, &mut d.notes) {
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

pub(crate) fn push(d: &mut Discovery, b: Result<Backend, (String, CmdlineError)>) {
    match b {
        Ok(b) => d.backends.push(b),
        Err((what, e)) => d.notes.push(format!("{what}: {e}")),
    }
}

/// What identifies a backend across its unit and its process: the server and its arguments.
fn key(argv: &[String]) -> Option<(Kind, Vec<String>)> {
    cmdline::server_args(argv).map(|(k, a)| (k, a.to_vec()))
}

pub(crate) fn unavailable(path: &Path, e: &std::io::Error) -> String {
    let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
        " (run as root to read it)"
    } else {
        ""
    };
    format!("unavailable: {}: {e}{hint}", path.display())
}

pub(crate) fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.into(),
        source,
    })
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Parses `argv` after reading the gunicorn config file it refers to, if any. A config file
/// that cannot be read makes the settings it could hold unknown. `offline` (`--no-discover`):
/// the files describe another machine, so a `./gunicorn.conf.py` in a working directory that
/// does not exist here is unknown rather than absent.
pub(crate) fn build(
    argv: &[String],
    env: &BTreeMap<String, String>,
    ctx: Context,
    gaps: &Gaps,
    offline: bool,
) -> Result<Backend, CmdlineError> {
    let config = cmdline::config_file(argv, env, gaps)?;
    let read = config.map(|c| read_config(c, &ctx.working_directory, offline));
    let text = match &read {
        None | Some(Ok(None)) => ConfigText::Absent,
        Some(Ok(Some(t))) => ConfigText::Read(t),
        Some(Err(why)) => ConfigText::Unreadable(why),
    };
    cmdline::parse_with_gaps(argv, text, env, ctx, gaps)
}

/// The text of the config file gunicorn reads: `Ok(None)` when there is none, `Err(why)` when
/// there is one we cannot read.
fn read_config(
    config: Result<ConfigFile, String>,
    wd: &Option<PathBuf>,
    offline: bool,
) -> Result<Option<String>, String> {
    let not_read =
        |path: &Path, e: std::io::Error| format!("config file `{}` not read: {e}", path.display());
    match config? {
        ConfigFile::Module(m) => Err(format!("config module `python:{m}` is not read")),
        ConfigFile::Explicit(rel) => {
            let path = resolve(wd, &rel);
            std::fs::read_to_string(&path)
                .map(Some)
                .map_err(|e| not_read(&path, e))
        }
        ConfigFile::Default(rel) => {
            let path = resolve(wd, &rel);
            match std::fs::read_to_string(&path) {
                Ok(t) => Ok(Some(t)),
                // Under --no-discover a working directory missing here is the target
                // machine's: whether it holds a gunicorn.conf.py is unknown.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if offline && wd.as_ref().is_some_and(|d| !d.is_dir()) {
                        Err(format!(
                            "gunicorn reads `{}` if it exists on the target machine (not looked for: --no-discover)",
                            path.display()
                        ))
                    } else {
                        Ok(None)
                    }
                }
                Err(e) => Err(not_read(&path, e)),
            }
        }
    }
}

fn resolve(wd: &Option<PathBuf>, rel: &Path) -> PathBuf {
    match wd {
        Some(wd) => wd.join(rel),
        None => rel.to_path_buf(),
    }
}

/// A backend, or what could not be read about which unit or program.
pub(crate) type Built = Result<Backend, (String, CmdlineError)>;

#[cfg(test)]
mod tests;
