//! Where `check` gets its inputs: the nginx configuration (given, or the running master's) and
//! the backends (given, or discovered).

use std::path::{Path, PathBuf};

use crate::act::fix::NginxTest;
use crate::gather::backends;
use crate::gather::nginx_proc;
use crate::model::backend::Backend;
use crate::parse::nginx::ConfigTree;

use super::BackendArgs;

/// The configuration to check, and how to run `nginx -t` on it.
pub struct ConfigChoice {
    pub path: PathBuf,
    pub prefix: Option<PathBuf>,
    pub globals: Option<String>,
    pub binary: Option<PathBuf>,
    pub note: Option<String>,
}

/// `--nginx-conf`, else the running master's `-c`, else Debian's default.
pub fn choose_config(nginx_conf: Option<&Path>) -> ConfigChoice {
    let binary = crate::act::fix::find_nginx();
    if let Some(p) = nginx_conf {
        return ConfigChoice {
            // nginx takes a relative `-c` relative to its prefix, and relative includes relative
            // to the main file's directory: make the path mean what the user meant, everywhere.
            path: std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()),
            prefix: None,
            globals: None,
            binary,
            note: None,
        };
    }
    let masters = nginx_proc::masters();
    if let Some(m) = masters.first() {
        let note = (masters.len() > 1).then(|| {
            format!(
                "{} nginx masters run; checking pid {}'s {} (use --nginx-conf for another)",
                masters.len(),
                m.pid,
                m.conf.display()
            )
        });
        return ConfigChoice {
            path: m.conf.clone(),
            prefix: m.prefix.clone(),
            globals: m.globals.clone(),
            // `REFLEX_NGINX` wins; else the binary the master runs.
            binary: std::env::var_os("REFLEX_NGINX")
                .map(PathBuf::from)
                .or_else(|| m.exe.clone().filter(|p| p.is_file()))
                .or(binary),
            note,
        };
    }
    ConfigChoice {
        path: PathBuf::from(nginx_proc::DEFAULT_CONF),
        prefix: None,
        globals: None,
        binary,
        note: None,
    }
}

impl ConfigChoice {
    pub fn nginx_test(&self) -> Option<NginxTest> {
        Some(NginxTest {
            binary: self.binary.clone()?,
            conf: self.path.clone(),
            prefix: self.prefix.clone(),
            globals: self.globals.clone(),
        })
    }
}

/// Reads and parses the configuration with its includes.
pub fn load_config(path: &Path) -> anyhow::Result<ConfigTree> {
    Ok(crate::gather::nginx_conf::load(path)?)
}

/// The backends: from flags and files when any is given, else discovered on this host (unless
/// `--no-discover`). Returns them, whether they were discovered, and notes about what could not
/// be read.
pub fn load_backends(args: &BackendArgs) -> anyhow::Result<(Vec<Backend>, bool, Vec<String>)> {
    let explicit =
        !args.backends.is_empty() || !args.units.is_empty() || !args.supervisord_confs.is_empty();
    if explicit {
        // `--no-discover`: the units and programs describe the target machine, not this one.
        let offline = args.no_discover;
        let mut out = backends::from_cmdlines(&args.backends)?;
        let mut notes = Vec::new();
        for found in [
            backends::from_unit_files(&args.units, offline)?,
            backends::from_supervisord_confs(&args.supervisord_confs, offline)?,
        ] {
            out.extend(found.backends);
            notes.extend(found.notes);
        }
        return Ok((out, false, notes));
    }
    if args.no_discover {
        return Ok((Vec::new(), false, vec!["backend discovery skipped (--no-discover): rules that compare nginx with its backends did not run".into()]));
    }
    let found = backends::discover();
    let mut notes = found.notes;
    if found.backends.is_empty() {
        notes.push(
            "no uvicorn/gunicorn backend found (systemd units, supervisord, processes): give one with --backend 'CMDLINE' to compare nginx with it".into(),
        );
    }
    Ok((found.backends, true, notes))
}
