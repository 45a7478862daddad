//! Table tests: real command lines as they appear in unit files, Procfiles and `ps`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::model::backend::Bind;

pub(super) fn words(s: &str) -> Vec<String> {
    shlex::split(s).expect("test command line splits")
}

pub(super) fn ctx() -> Context {
    Context {
        name: "test".into(),
        source: Source::Flag { index: 0 },
        working_directory: Some("/srv/app".into()),
        run_as: RunAs::default(),
    }
}

fn run(cmd: &str) -> Backend {
    parse(&words(cmd), None, &BTreeMap::new(), ctx()).expect(cmd)
}

pub(super) fn tcp(host: &str, port: u16) -> Bind {
    Bind::Tcp {
        host: host.into(),
        port,
    }
}

pub(super) fn unix(path: &str) -> Bind {
    Bind::Unix { path: path.into() }
}

#[test]
fn detects_launchers() {
    let cases: &[(&str, Option<Kind>)] = &[
        ("uvicorn main:app", Some(Kind::Uvicorn)),
        ("/srv/app/.venv/bin/uvicorn main:app", Some(Kind::Uvicorn)),
        ("python -m uvicorn main:app", Some(Kind::Uvicorn)),
        ("python3.11 -u -m gunicorn main:app", Some(Kind::Gunicorn)),
        ("/usr/bin/env gunicorn main:app", Some(Kind::Gunicorn)),
        (
            "/usr/bin/env -u PYTHONPATH LANG=C uvicorn main:app",
            Some(Kind::Uvicorn),
        ),
        (
            "/srv/.venv/bin/python3 /srv/.venv/bin/uvicorn --uds /run/a.sock a:b",
            Some(Kind::Uvicorn),
        ),
        (
            "/usr/bin/python3 /usr/local/bin/gunicorn a:b",
            Some(Kind::Gunicorn),
        ),
        ("python -m http.server", None),
        ("/usr/sbin/nginx -g daemon off;", None),
        (
            "python3 -c from multiprocessing.spawn import spawn_main",
            None,
        ),
        ("gunicorn: master [main:app]", None),
        ("", None),
    ];
    for (cmd, want) in cases {
        let got = detect(&words(cmd)).ok().map(|(k, _)| k);
        assert_eq!(got, *want, "{cmd}");
    }
}

#[test]
fn shell_is_refused_with_a_reason() {
    let err = detect(&words("/bin/sh -c 'exec gunicorn main:app'")).unwrap_err();
    assert!(matches!(err, CmdlineError::Shell(_)), "{err}");
    assert!(err.to_string().contains("sh -c"));
}

#[test]
fn uvicorn_binds() {
    let cases: &[(&str, Bind)] = &[
        ("uvicorn main:app", tcp("127.0.0.1", 8000)),
        (
            "uvicorn main:app --host 0.0.0.0 --port 80",
            tcp("0.0.0.0", 80),
        ),
        ("uvicorn --host=:: --port=8080 main:app", tcp("::", 8080)),
        (
            "uvicorn main:app --uds /run/app/app.sock --port 9000",
            unix("/run/app/app.sock"),
        ),
        ("uvicorn main:app --fd 3", Bind::Fd { fd: 3 }),
        ("uvicorn main:app --fd 3 --uds x.sock", unix("x.sock")),
    ];
    for (cmd, want) in cases {
        assert_eq!(run(cmd).binds, vec![want.clone()], "{cmd}");
    }
}

#[test]
fn uvicorn_settings() {
    let b = run(
        "uvicorn app.main:app --proxy-headers --forwarded-allow-ips='*' --workers 4 \
         --timeout-keep-alive 75 --backlog 4096 --limit-concurrency 100 --no-proxy-headers \
         --ssl-keyfile k.pem --ssl-certfile c.pem --root-path /api --log-level info --frobnicate",
    );
    assert_eq!(b.server, Server::Uvicorn);
    assert_eq!(b.app.as_deref(), Some("app.main:app"));
    assert_eq!(
        (b.keepalive, b.keepalive_explicit),
        (Duration::from_secs(75), true)
    );
    assert_eq!(
        (b.workers, b.backlog, b.limit_concurrency),
        (4, 4096, Some(100))
    );
    assert!(!b.proxy_headers);
    assert_eq!(b.forwarded_allow_ips.as_deref(), Some("*"));
    assert!(b.tls);
    assert_eq!(b.root_path.as_deref(), Some("/api"));
    assert_eq!(b.unparsed, ["--frobnicate"]);
    assert_eq!(b.worker_timeout, None);

    let d = run("uvicorn main:app");
    assert_eq!(
        (d.keepalive, d.keepalive_explicit),
        (Duration::from_secs(5), false)
    );
    assert_eq!(
        (d.workers, d.backlog, d.proxy_headers, d.tls),
        (1, 2048, true, false)
    );
}

#[test]
fn uvicorn_env() {
    let env: BTreeMap<String, String> = [
        ("UVICORN_UDS", "/run/u.sock"),
        ("UVICORN_TIMEOUT_KEEP_ALIVE", "30"),
        ("UVICORN_PORT", "9999"),
        ("WEB_CONCURRENCY", "3"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let b = parse(
        &words("uvicorn main:app --timeout-keep-alive 10"),
        None,
        &env,
        ctx(),
    )
    .unwrap();
    assert_eq!(b.binds, [unix("/run/u.sock")]);
    assert_eq!(b.keepalive, Duration::from_secs(10));
    assert_eq!(b.workers, 3);
}

#[test]
fn gunicorn_binds() {
    let cases: &[(&str, Vec<Bind>)] = &[
        ("gunicorn main:app", vec![tcp("127.0.0.1", 8000)]),
        (
            "gunicorn -b unix:/run/g.sock main:app",
            vec![unix("/run/g.sock")],
        ),
        (
            "gunicorn --bind=unix:///run/g.sock main:app",
            vec![unix("/run/g.sock")],
        ),
        ("gunicorn -b fd://3 main:app", vec![Bind::Fd { fd: 3 }]),
        (
            "gunicorn -b [::1]:8000 -b 127.0.0.1:9000 main:app",
            vec![tcp("::1", 8000), tcp("127.0.0.1", 9000)],
        ),
        (
            "gunicorn -bLOCALHOST main:app",
            vec![tcp("localhost", 8000)],
        ),
        ("gunicorn -b :8080 main:app", vec![tcp("0.0.0.0", 8080)]),
        (
            "gunicorn -b tcp://10.0.0.1:81 main:app",
            vec![tcp("10.0.0.1", 81)],
        ),
    ];
    for (cmd, want) in cases {
        assert_eq!(&run(cmd).binds, want, "{cmd}");
    }
}

#[test]
fn gunicorn_settings() {
    let b = run(
        "/srv/app/.venv/bin/gunicorn -w4 -k uvicorn.workers.UvicornWorker --keep-alive=75 \
         -t 120 --graceful-timeout 20 --backlog 512 --max-requests 1000 --max-requests-jitter 50 \
         --chdir src -u www-data -g www-data -m 007 --certfile c.pem -DR main:app",
    );
    assert_eq!(
        b.server,
        Server::Gunicorn {
            worker_class: "uvicorn.workers.UvicornWorker".into()
        }
    );
    assert_eq!(b.app.as_deref(), Some("main:app"));
    assert_eq!(b.workers, 4);
    assert_eq!(
        (b.keepalive, b.keepalive_explicit),
        (Duration::from_secs(75), true)
    );
    assert_eq!(b.worker_timeout, Some(Duration::from_secs(120)));
    assert_eq!(b.graceful_timeout, Some(Duration::from_secs(20)));
    assert_eq!(
        (b.backlog, b.max_requests, b.max_requests_jitter),
        (512, Some(1000), Some(50))
    );
    assert_eq!(b.working_directory, Some(PathBuf::from("/srv/app/src")));
    assert_eq!(b.run_as.user.as_deref(), Some("www-data"));
    assert_eq!(b.run_as.umask, Some(0o007));
    assert!(b.tls);
    assert!(b.unparsed.is_empty(), "{:?}", b.unparsed);

    let d = run("gunicorn main:app");
    assert_eq!(
        d.server,
        Server::Gunicorn {
            worker_class: "sync".into()
        }
    );
    assert_eq!(
        (d.keepalive, d.keepalive_explicit),
        (Duration::from_secs(2), false)
    );
    assert_eq!(d.worker_timeout, Some(Duration::from_secs(30)));
    assert_eq!(d.run_as.umask, Some(0));
    assert!(!d.supports_keepalive());

    let t = run("gunicorn --threads 4 main:app");
    assert_eq!(
        t.server,
        Server::Gunicorn {
            worker_class: "gthread".into()
        }
    );
}

#[test]
fn gunicorn_precedence() {
    let conf = "bind = ['unix:/run/conf.sock']\nkeepalive = 10\nworkers = 3\ntimeout = 60\n\
                worker_class = 'uvicorn_worker.UvicornWorker'\nwsgi_app = 'conf:app'\n";
    let env: BTreeMap<String, String> = [(
        "GUNICORN_CMD_ARGS".to_string(),
        "--keep-alive 20 --workers=5 -c /etc/g.py".to_string(),
    )]
    .into();
    let argv = words("gunicorn --workers 7");
    assert_eq!(
        config_file(&argv, &env, &Gaps::default()).unwrap(),
        Some(Ok(ConfigFile::Explicit("/etc/g.py".into())))
    );
    let b = parse(&argv, Some(conf), &env, ctx()).unwrap();
    assert_eq!(b.binds, [unix("/run/conf.sock")]);
    assert_eq!(b.keepalive, Duration::from_secs(20));
    assert_eq!(b.workers, 7);
    assert_eq!(b.worker_timeout, Some(Duration::from_secs(60)));
    assert_eq!(b.app.as_deref(), Some("conf:app"));
    assert!(b.supports_keepalive());

    // `-b` on the command line replaces the config file's whole list.
    let b = parse(
        &words("gunicorn -b 127.0.0.1:1 a:b"),
        Some(conf),
        &BTreeMap::new(),
        ctx(),
    )
    .unwrap();
    assert_eq!(b.binds, [tcp("127.0.0.1", 1)]);
}

#[test]
fn gunicorn_conf_expressions_are_unknown_not_defaults() {
    let conf = "import multiprocessing\nworkers = multiprocessing.cpu_count() * 2 + 1\n";
    let b = parse(&words("gunicorn a:b"), Some(conf), &BTreeMap::new(), ctx()).unwrap();
    assert_eq!(
        b.unknown(Knob::Workers).map(|u| u.why.as_str()),
        Some("workers (config file line 2) = multiprocessing.cpu_count() * 2 + 1 is not evaluated")
    );
    assert!(b.is_known(Knob::KeepAlive));
}

#[test]
fn config_files() {
    let none = BTreeMap::new();
    let cases: &[(&str, Option<ConfigFile>)] = &[
        ("uvicorn a:b", None),
        (
            "gunicorn a:b",
            Some(ConfigFile::Default("gunicorn.conf.py".into())),
        ),
        (
            "gunicorn -c conf/g.py a:b",
            Some(ConfigFile::Explicit("conf/g.py".into())),
        ),
        (
            "gunicorn --config=file:/etc/g.py a:b",
            Some(ConfigFile::Explicit("/etc/g.py".into())),
        ),
        (
            "gunicorn -c python:app.gconf a:b",
            Some(ConfigFile::Module("app.gconf".into())),
        ),
    ];
    for (cmd, want) in cases {
        let got = config_file(&words(cmd), &none, &Gaps::default()).unwrap();
        assert_eq!(got, want.clone().map(Ok), "{cmd}");
    }
}

#[test]
fn errors() {
    let none = BTreeMap::new();
    let err = |cmd: &str| parse(&words(cmd), None, &none, ctx()).unwrap_err();
    assert_eq!(
        err("uvicorn a:b --port"),
        CmdlineError::MissingValue {
            option: "--port".into()
        }
    );
    assert_eq!(
        err("gunicorn a:b -w"),
        CmdlineError::MissingValue {
            option: "-w".into()
        }
    );
    assert_eq!(
        err("uvicorn a:b --port eighty"),
        CmdlineError::BadNumber {
            option: "--port".into(),
            value: "eighty".into()
        }
    );
    assert_eq!(
        err("gunicorn -w four a:b"),
        CmdlineError::BadNumber {
            option: "--workers".into(),
            value: "four".into()
        }
    );
    assert_eq!(
        err("gunicorn -b 127.0.0.1:http a:b").to_string(),
        "option `--bind` expects a number, got `127.0.0.1:http`"
    );
    assert!(matches!(err("nginx -g x"), CmdlineError::NotBackend(_)));
}

#[test]
fn same_backend_across_launchers() {
    let a = words("/srv/.venv/bin/uvicorn --uds /run/a.sock a:b");
    let b = words("/srv/.venv/bin/python3 /srv/.venv/bin/uvicorn --uds /run/a.sock a:b");
    assert_eq!(server_args(&a), server_args(&b));
}

#[test]
fn optional_settings_never_mark_a_knob_unknown() {
    // A negative `max_requests` is not understood: reported, but no knob becomes unknown.
    let with_bad_max = |cmd: &str| {
        parse(
            &words(cmd),
            Some("max_requests = -1\n"),
            &BTreeMap::new(),
            ctx(),
        )
        .unwrap()
    };
    let b = with_bad_max("gunicorn -c /etc/g.py a:b");
    assert!(b.is_known(Knob::Workers));
    assert_eq!(b.workers, 1);
    assert_eq!(b.max_requests, None);
    assert!(
        b.unparsed
            .iter()
            .any(|u| u.contains("max_requests") && u.contains("-1")),
        "{:?}",
        b.unparsed
    );
    let b = with_bad_max("gunicorn -c /etc/g.py -w 3 a:b");
    assert!(b.is_known(Knob::Workers));
    assert_eq!(b.workers, 3);
}
