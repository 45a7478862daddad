//! Reading supervisord configuration for `gather::backends`: the main file, its `[include]`s,
//! and what supervisord adds around each program's command (`autorestart=`, `stopwaitsecs=`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Built, build, unavailable};
use crate::model::backend::{RunAs, Source, Supervision};
use crate::parse::backend::cmdline::{self, Context, Gaps};
use crate::parse::backend::supervisord::{self, Program};

/// supervisord's `stopwaitsecs` default.
const DEFAULT_STOPWAITSECS: u64 = 10;

fn supervision(p: &Program) -> Supervision {
    Supervision {
        restart: p.autorestart.clone(),
        private_tmp: false,
        stop_timeout: Some(Duration::from_secs(
            p.stopwaitsecs.unwrap_or(DEFAULT_STOPWAITSECS),
        )),
        stop_timeout_explicit: p.stopwaitsecs.is_some(),
    }
}

/// The backends of a supervisord main file and the files it includes.
pub(super) fn backends(
    path: &Path,
    text: &str,
    offline: bool,
    notes: &mut Vec<String>,
) -> Vec<Built> {
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
            let built = build(&p.argv, &p.environment, ctx, &Gaps::default(), offline);
            out.push(
                built
                    .map(|mut b| {
                        b.supervision = supervision(&p);
                        b
                    })
                    .map_err(|e| (p.process_name.clone(), e)),
            );
        }
    }
    out
}
