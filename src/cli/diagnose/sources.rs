//! Which logs `reflex diagnose` reads, in which zone: the flags' files, else the
//! configuration's `error_log`/`access_log` (with their `log_format`), and the running master
//! that writes them.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::gather::logwindow::AccessSource;
use crate::gather::nginx_proc;
use crate::model::nginx::NginxModel;
use crate::parse::logs::access_log::{AccessFormat, Escape};

use super::DiagnoseArgs;

/// The nginx master running `conf`, if one runs (its `TZ` is the error log's zone).
pub fn master_of(conf: &Path) -> Option<i32> {
    let want = std::fs::canonicalize(conf).ok()?;
    nginx_proc::masters()
        .into_iter()
        .find(|m| std::fs::canonicalize(&m.conf).ok().as_ref() == Some(&want))
        .map(|m| m.pid)
}

/// Fails when a file named on the command line cannot be read: the user asked for it, so
/// diagnosing without it would answer another question.
pub fn check_named(args: &DiagnoseArgs) -> anyhow::Result<()> {
    let named = args
        .error_logs
        .iter()
        .chain(&args.access_logs)
        .chain(&args.app_logs);
    for p in named {
        std::fs::File::open(p).with_context(|| format!("cannot read `{}`", p.display()))?;
    }
    Ok(())
}

/// The error and access logs to read: given on the command line, else (live) the
/// configuration's.
pub fn log_sources(
    args: &DiagnoseArgs,
    nginx: Option<&NginxModel<'_>>,
    prefix: Option<&Path>,
) -> anyhow::Result<(Vec<PathBuf>, Vec<AccessSource>)> {
    let format_of = |name: &str| -> anyhow::Result<AccessFormat> {
        if name == "combined" {
            return Ok(AccessFormat::combined());
        }
        let f = nginx
            .and_then(|n| n.log_formats.iter().find(|f| f.name == name))
            .with_context(|| {
                format!("no log_format `{name}` in the configuration (give --nginx-conf)")
            })?;
        Ok(AccessFormat::compile(
            &f.format,
            Escape::parse(&f.escape).unwrap_or(Escape::Default),
        )?)
    };
    let resolve = |p: &str| -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_relative() {
            prefix.unwrap_or(Path::new("/usr/share/nginx")).join(p)
        } else {
            p
        }
    };
    let mut errors: Vec<PathBuf> = args.error_logs.clone();
    let mut access: Vec<AccessSource> = Vec::new();
    for p in &args.access_logs {
        let format = match args.log_format.as_deref() {
            Some(name) => format_of(name)?,
            None => detect_format(p, nginx, &format_of)?,
        };
        access.push(AccessSource {
            path: p.clone(),
            format,
        });
    }
    // Offline, the configuration's paths are this host's files, not the copied ones.
    let Some(n) = nginx.filter(|_| !args.offline) else {
        return Ok((errors, access));
    };
    if args.error_logs.is_empty() {
        for l in &n.error_logs {
            let p = resolve(&l.path);
            if !l.path.starts_with("syslog:") && l.path != "stderr" && !errors.contains(&p) {
                errors.push(p);
            }
        }
        if !n.error_logs.iter().any(|l| l.context == "main") && errors.is_empty() {
            errors.push(PathBuf::from("/var/log/nginx/error.log"));
        }
    }
    if args.access_logs.is_empty() {
        for l in &n.access_logs {
            if l.path == "off"
                || l.path.starts_with("syslog:")
                || access.iter().any(|a| a.path == resolve(&l.path))
            {
                continue;
            }
            let name = l
                .format_or_level
                .split_whitespace()
                .next()
                .unwrap_or("combined");
            access.push(AccessSource {
                path: resolve(&l.path),
                format: format_of(name)?,
            });
        }
    }
    Ok((errors, access))
}

/// The format of an access log named without `--log-format`: whichever known format
/// (`combined` and every `log_format` of the configuration) matches most of its first lines, as
/// `reflex logs` does; `combined` when none does (its lines then count as malformed).
fn detect_format(
    path: &Path,
    nginx: Option<&NginxModel<'_>>,
    format_of: &dyn Fn(&str) -> anyhow::Result<AccessFormat>,
) -> anyhow::Result<AccessFormat> {
    let mut formats = vec![("combined".to_string(), AccessFormat::combined())];
    for f in nginx.map(|n| n.log_formats.as_slice()).unwrap_or_default() {
        formats.push((f.name.clone(), format_of(&f.name)?));
    }
    let head = std::fs::File::open(path)
        .and_then(|mut file| {
            crate::gather::logs::sample(&mut file, 0, crate::cli::logs::SAMPLE_BYTES)
        })
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    let i = crate::cli::logs::best_format(&formats, &head).unwrap_or(0);
    Ok(formats.swap_remove(i).1)
}
