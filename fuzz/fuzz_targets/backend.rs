//! Fuzz target: arbitrary bytes as each of the backend's launch-settings sources. The input is
//! cut in four at its first three NUL bytes: a systemd unit (folded into its service settings,
//! each `ExecStart` word-split and expanded against its `Environment=`, and also read as an
//! `EnvironmentFile=`), a supervisord configuration, a gunicorn `-c` file, and a command line
//! (shell-split, then read as uvicorn or gunicorn with that config file and environment). None
//! may panic; a command line that reads must be one `detect` recognises.

#![no_main]

use libfuzzer_sys::fuzz_target;
use reflex::model::backend::{RunAs, Source};
use reflex::parse::backend::cmdline::{self, Context};
use reflex::parse::backend::{gunicorn_conf, supervisord, systemd_unit};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(4, '\0');
    let unit = parts.next().unwrap_or_default();
    let sup = parts.next().unwrap_or_default();
    let conf = parts.next().unwrap_or_default();
    let line = parts.next().unwrap_or_default();

    let file = systemd_unit::parse(unit);
    let service = systemd_unit::service(std::slice::from_ref(&file), "app@blue.service");
    let mut env = service.environment.clone();
    env.extend(systemd_unit::parse_environment_file(unit));
    for exec in &service.exec_start {
        let _ = exec.words(&env);
    }

    let _ = supervisord::parse(sup, "/etc/supervisor", &env);
    let _ = gunicorn_conf::parse(conf);

    if let Some(argv) = shlex::split(line) {
        let ctx = Context {
            name: "fuzz".into(),
            source: Source::Flag { index: 0 },
            working_directory: None,
            run_as: RunAs::default(),
        };
        let config = Some(conf).filter(|c| !c.is_empty());
        if cmdline::parse(&argv, config, &env, ctx).is_ok() {
            assert!(cmdline::detect(&argv).is_ok(), "{argv:?}");
        }
    }
});
