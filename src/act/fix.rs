//! `reflex check --fix`: applies the fixes that are safe unattended (`Fix::auto`), keeps a
//! backup of every file it changes, validates the result with `nginx -t`, and restores the
//! originals if nginx rejects it.
//!
//! Backups go to a separate directory, never beside the file: Debian's
//! `include /etc/nginx/sites-enabled/*;` would load a `default.bak` as configuration.
//! Symlinked files (Debian's `sites-enabled/app -> ../sites-available/app`) are written
//! through: the target is replaced, the link stays a link. Files are handled as bytes, so
//! whatever is not edited stays byte for byte what it was, valid UTF-8 or not.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::diagnose::check::edit::splice;
use crate::diagnose::finding::{Edit, Finding};
use crate::parse::nginx::{ByteOffsets, ConfigTree, SourceFile};

/// How to run `nginx -t` for this configuration.
#[derive(Debug, Clone)]
pub struct NginxTest {
    pub binary: PathBuf,
    pub conf: PathBuf,
    pub prefix: Option<PathBuf>,
    pub globals: Option<String>,
}

/// What `--fix` did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Files rewritten (and kept, when validation passed).
    pub changed: Vec<PathBuf>,
    /// Where the originals were copied.
    pub backup_dir: Option<PathBuf>,
    /// Edits not applied because they overlapped another.
    pub skipped: usize,
    /// `nginx -t`'s verdict: `Some(true)` passed, `Some(false)` rejected (originals restored),
    /// `None` not run (nginx not installed).
    pub validated: Option<bool>,
    /// `nginx -t`'s output.
    pub nginx_output: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FixError {
    #[error("`{path}` changed on disk since it was read; not touching it")]
    Changed { path: PathBuf },
    #[error("could not {action} `{}`", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> FixError + 'p {
    move |source| FixError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// One file `--fix` rewrites.
struct Planned {
    /// The path as the configuration names it (maybe a symlink, as in Debian's sites-enabled).
    path: PathBuf,
    /// The file actually written: `path` with every symlink resolved, so a link stays a link.
    target: PathBuf,
    new: Vec<u8>,
}

/// Applies the auto fixes of `findings`, copying each file it changes to `backup_dir` (under
/// its absolute, symlink-resolved path) first.
pub fn apply_fixes(
    tree: &ConfigTree,
    findings: &[Finding],
    backup_dir: &Path,
    nginx: Option<&NginxTest>,
) -> Result<Outcome, FixError> {
    let edits: Vec<Edit> = findings
        .iter()
        .filter(|f| f.fix.auto)
        .flat_map(|f| f.fix.edits.iter().cloned())
        .collect();
    let mut outcome = Outcome::default();
    if edits.is_empty() {
        return Ok(outcome);
    }
    let mut files: Vec<usize> = edits.iter().map(|e| e.file).collect();
    files.sort_unstable();
    files.dedup();
    // Plan every file first so nothing is written when one of them changed under us.
    let mut plan = Vec::new();
    for f in files {
        if let Some(src) = tree.files.get(f) {
            plan.push(plan_file(src, f, &edits, &mut outcome.skipped)?);
        }
    }
    let mut backups = Vec::new();
    for p in &plan {
        let dest = backup_dir.join(p.target.strip_prefix("/").unwrap_or(&p.target));
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io("create backup directory", parent))?;
        }
        std::fs::copy(&p.target, &dest).map_err(io("back up", &p.target))?;
        backups.push((p.target.clone(), dest));
    }
    outcome.backup_dir = Some(backup_dir.to_path_buf());
    for p in &plan {
        write_atomic(&p.target, &p.new)?;
        outcome.changed.push(p.path.clone());
    }
    if let Some(t) = nginx {
        let (ok, output) = nginx_test(t);
        outcome.validated = Some(ok);
        outcome.nginx_output = output;
        if !ok {
            for (target, backup) in &backups {
                let bytes = std::fs::read(backup).map_err(io("read backup", backup))?;
                write_atomic(target, &bytes)?;
            }
        }
    }
    Ok(outcome)
}

/// The new bytes of file `f`. Works on the bytes on disk, not the decoded text: edit offsets
/// are mapped to byte offsets and everything else is copied byte for byte, so a Latin-1
/// comment survives.
fn plan_file(
    src: &SourceFile,
    f: usize,
    edits: &[Edit],
    skipped: &mut usize,
) -> Result<Planned, FixError> {
    let raw = std::fs::read(&src.path).map_err(io("read", &src.path))?;
    if String::from_utf8_lossy(&raw) != src.text {
        return Err(FixError::Changed {
            path: src.path.clone(),
        });
    }
    let map = ByteOffsets::new(&raw);
    let mut bytes_edits = Vec::new();
    for e in edits.iter().filter(|e| e.file == f) {
        if src.text.is_char_boundary(e.start) && src.text.is_char_boundary(e.end) {
            bytes_edits.push(Edit {
                start: map.byte(e.start),
                end: map.byte(e.end),
                ..e.clone()
            });
        } else {
            *skipped += 1;
        }
    }
    let (new, left) = splice(&raw, f, &bytes_edits);
    *skipped += left.len();
    let target = std::fs::canonicalize(&src.path).map_err(io("resolve", &src.path))?;
    Ok(Planned {
        path: src.path.clone(),
        target,
        new,
    })
}

/// Replaces `path`'s content through a temp file beside it and a rename, keeping its
/// permissions and (when allowed) its owner. `path` must not be a symlink: the rename would
/// replace the link with a regular file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FixError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.reflex-tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io("write", &tmp))?;
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::MetadataExt;
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
        // Only root may give a file away; anyone else keeps their own files anyway.
        let _ = std::os::unix::fs::chown(&tmp, Some(meta.uid()), Some(meta.gid()));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        FixError::Io {
            action: "replace",
            path: path.to_path_buf(),
            source: e,
        }
    })
}

/// Runs `nginx -t`; returns whether it passed and what it printed.
pub fn nginx_test(t: &NginxTest) -> (bool, String) {
    let mut cmd = Command::new(&t.binary);
    // nginx resolves a relative `-c` against its prefix, not our working directory.
    let conf = std::path::absolute(&t.conf).unwrap_or_else(|_| t.conf.clone());
    cmd.arg("-t").arg("-c").arg(conf);
    if let Some(p) = &t.prefix {
        cmd.arg("-p").arg(p);
    }
    if let Some(g) = &t.globals {
        cmd.arg("-g").arg(g);
    }
    match cmd.output() {
        Ok(o) => (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).trim().to_string(),
        ),
        Err(e) => (false, format!("could not run {}: {e}", t.binary.display())),
    }
}

/// The nginx binary to validate with: `$REFLEX_NGINX`, else `nginx` on PATH, else
/// `/usr/sbin/nginx`; `None` when none exists.
pub fn find_nginx() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("REFLEX_NGINX") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
}

/// A fresh backup directory for one `--fix` run under `root`: `<unix time>-<pid>`.
pub fn backup_dir_for_run(root: &Path) -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    root.join(format!("{stamp}-{}", std::process::id()))
}

/// Where backups go by default: `/var/backups/reflex` when writable (root), else
/// `$XDG_STATE_HOME/reflex/backups` or `~/.local/state/reflex/backups`.
pub fn default_backup_root() -> PathBuf {
    let system = PathBuf::from("/var/backups/reflex");
    if std::fs::create_dir_all(&system).is_ok()
        && nix::unistd::access(&system, nix::unistd::AccessFlags::W_OK).is_ok()
    {
        return system;
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    state.join("reflex/backups")
}
