//! Settings that cannot be read are unknown, never the default: undefined `${VAR}`s, an
//! environment we could not read, computed values in gunicorn config files.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use super::tests::{ctx, tcp, unix, words};
use super::*;

fn gapped(cmd: &str, gaps: Gaps, conf: Option<&str>, env: &[(&str, &str)]) -> Backend {
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = conf.map_or(ConfigText::Absent, ConfigText::Read);
    parse_with_gaps(&words(cmd), config, &env, ctx(), &gaps).expect(cmd)
}

fn word_gap(i: usize) -> Gaps {
    Gaps {
        words: [(i, "`PORT` is not defined".to_string())].into(),
        ..Gaps::default()
    }
}

#[test]
fn an_undefined_port_makes_the_bind_unknown_not_an_error() {
    let b = gapped("uvicorn a:b --port ${PORT}", word_gap(3), None, &[]);
    assert!(b.binds.is_empty());
    let why = &b.unknown(Knob::Bind).expect("bind unknown").why;
    assert!(
        why.contains("--port ${PORT}") && why.contains("not defined"),
        "{why}"
    );
    assert!(b.is_known(Knob::KeepAlive));
    // gunicorn, inline.
    let b = gapped("gunicorn --bind=${PORT} a:b", word_gap(1), None, &[]);
    assert!(b.binds.is_empty() && !b.is_known(Knob::Bind));
}

#[test]
fn an_opaque_word_makes_everything_unknown() {
    let gaps = Gaps {
        opaque: Some("`OPTS` is not defined".into()),
        ..Gaps::default()
    };
    let b = gapped("uvicorn a:b $OPTS", gaps, None, &[]);
    assert!(Knob::ALL.iter().all(|k| !b.is_known(*k)));
}

#[test]
fn an_unreadable_environment_leaves_only_the_command_line_known() {
    let gaps = Gaps {
        environment: Some("EnvironmentFile=/etc/app.env: permission denied".into()),
        ..Gaps::default()
    };
    let b = gapped("uvicorn a:b --uds /run/a.sock", gaps.clone(), None, &[]);
    assert_eq!(b.binds, [unix("/run/a.sock")]);
    // uvicorn reads `UVICORN_UDS` before `--host`/`--port`: that file may hold one.
    let tcp = gapped("uvicorn a:b --port 9000", gaps.clone(), None, &[]);
    assert!(!tcp.is_known(Knob::Bind));
    // UVICORN_TIMEOUT_KEEP_ALIVE may be in that file.
    let why = &b.unknown(Knob::KeepAlive).expect("unknown").why;
    assert!(why.contains("UVICORN_TIMEOUT_KEEP_ALIVE"), "{why}");
    // gunicorn: GUNICORN_CMD_ARGS may override the config file too.
    let b = gapped(
        "gunicorn -b 127.0.0.1:1 a:b",
        gaps,
        Some("keepalive = 75\n"),
        &[],
    );
    assert!(b.is_known(Knob::Bind));
    assert!(!b.is_known(Knob::KeepAlive));
}

#[test]
fn gunicorn_cmd_args_sit_between_the_config_file_and_the_command_line() {
    let env = [(
        "GUNICORN_CMD_ARGS",
        "--keep-alive 65 --timeout 0 -b 127.0.0.1:9",
    )];
    let b = gapped(
        "gunicorn -k uvicorn.workers.UvicornH11Worker a:b",
        Gaps::default(),
        Some("keepalive = 10\nbind = 'unix:/x'\n"),
        &env,
    );
    assert_eq!(b.keepalive, Duration::from_secs(65));
    assert_eq!(b.binds, [tcp("127.0.0.1", 9)]);
    // `--timeout 0` disables the worker timeout.
    assert_eq!(b.worker_timeout, None);
    assert!(b.supports_keepalive());
    assert!(b.is_known(Knob::KeepAlive));
    // Unbalanced quotes: gunicorn refuses to start, so nothing it would read is known.
    let b = gapped(
        "gunicorn a:b",
        Gaps::default(),
        None,
        &[("GUNICORN_CMD_ARGS", "--bind 'x")],
    );
    assert!(!b.is_known(Knob::Bind) && !b.is_known(Knob::KeepAlive));
}

#[test]
fn computed_config_values_are_unknown() {
    let conf = "import os\nbind = os.environ.get('BIND', '127.0.0.1:8000')\n\
                keepalive = int(os.environ['KA'])\n";
    let b = gapped("gunicorn a:b", Gaps::default(), Some(conf), &[]);
    assert!(b.binds.is_empty());
    assert!(
        b.unknown(Knob::Bind)
            .expect("bind")
            .why
            .contains("os.environ.get")
    );
    assert!(
        b.unknown(Knob::KeepAlive)
            .expect("ka")
            .why
            .contains("int(os.environ['KA'])")
    );
    // The command line still wins over what the file computes.
    let b = gapped(
        "gunicorn --keep-alive 70 -b unix:/run/a.sock a:b",
        Gaps::default(),
        Some(conf),
        &[],
    );
    assert!(b.is_known(Knob::Bind) && b.is_known(Knob::KeepAlive));
    // `from base import *` may set anything it precedes.
    let b = gapped(
        "gunicorn a:b",
        Gaps::default(),
        Some("timeout = 5\nfrom base import *\nbacklog = 64\n"),
        &[],
    );
    assert!(!b.is_known(Knob::Timeout) && !b.is_known(Knob::Bind));
    assert_eq!(b.backlog, 64);
    // An unreadable config file.
    let env = BTreeMap::new();
    let b = parse_with_gaps(
        &words("gunicorn -c /x.py a:b"),
        ConfigText::Unreadable("config file `/x.py` not read"),
        &env,
        ctx(),
        &Gaps::default(),
    )
    .unwrap();
    assert!(!b.is_known(Knob::Bind));
}

#[test]
fn worker_classes_by_any_name() {
    let b = gapped(
        "gunicorn -k gunicorn.workers.sync.SyncWorker a:b",
        Gaps::default(),
        None,
        &[],
    );
    assert!(!b.supports_keepalive());
    let b = gapped(
        "gunicorn -k egg:gunicorn#sync a:b",
        Gaps::default(),
        None,
        &[],
    );
    assert!(!b.supports_keepalive());
    let b = gapped(
        "gunicorn -k myapp.workers.Custom a:b",
        Gaps::default(),
        None,
        &[],
    );
    assert!(!b.is_known(Knob::KeepAlive));
}

#[test]
fn reload_is_read() {
    assert!(gapped("uvicorn a:b --reload", Gaps::default(), None, &[]).reload);
    assert!(
        gapped(
            "uvicorn a:b",
            Gaps::default(),
            None,
            &[("UVICORN_RELOAD", "true")]
        )
        .reload
    );
    assert!(gapped("gunicorn --reload a:b", Gaps::default(), None, &[]).reload);
    assert!(
        gapped(
            "gunicorn a:b",
            Gaps::default(),
            Some("reload = True\n"),
            &[]
        )
        .reload
    );
    assert!(!gapped("gunicorn a:b", Gaps::default(), None, &[]).reload);
}
