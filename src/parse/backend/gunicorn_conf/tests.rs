//! Config files as people write them.

use super::*;

#[test]
fn values() {
    let cases: &[(&str, Value)] = &[
        ("workers = 4", Value::Int(4)),
        ("umask = 0o007", Value::Int(7)),
        ("keepalive = 75  # nginx uses 60", Value::Int(75)),
        ("timeout = 2.5", Value::Float(2.5)),
        (
            "worker_class = 'uvicorn.workers.UvicornWorker'",
            Value::Str("uvicorn.workers.UvicornWorker".into()),
        ),
        (
            "bind = \"unix:/run/app.sock\"",
            Value::Str("unix:/run/app.sock".into()),
        ),
        ("preload_app = True", Value::Bool(true)),
        (
            "bind = [\"unix:/run/app.sock\", '127.0.0.1:8000']",
            Value::List(vec!["unix:/run/app.sock".into(), "127.0.0.1:8000".into()]),
        ),
        (
            "bind = ('0.0.0.0:80',)",
            Value::List(vec!["0.0.0.0:80".into()]),
        ),
        (
            "workers = multiprocessing.cpu_count() * 2 + 1",
            Value::Expr("multiprocessing.cpu_count() * 2 + 1".into()),
        ),
        (
            "bind = os.environ.get('BIND', '0.0.0.0:80')",
            Value::Expr("os.environ.get('BIND', '0.0.0.0:80')".into()),
        ),
        ("x = '#not a comment'", Value::Str("#not a comment".into())),
    ];
    for (text, want) in cases {
        let conf = parse(text);
        assert_eq!(conf.settings.len(), 1, "{text}");
        assert_eq!(&conf.settings[0].value, want, "{text}");
    }
}

#[test]
fn whole_file() {
    let text = r#"# gunicorn.conf.py
import multiprocessing
import os

bind = [
    "unix:/run/app/app.sock",  # for nginx
    "127.0.0.1:8001",
]
workers = multiprocessing.cpu_count() * 2 + 1
worker_class = "uvicorn.workers.UvicornWorker"
keepalive = 65

if os.environ.get("DEBUG"):
    loglevel = "debug"

def on_starting(server):
    pass
timeout = 120
"#;
    let conf = parse(text);
    let names: Vec<_> = conf
        .settings
        .iter()
        .map(|s| (s.name.as_str(), s.line))
        .collect();
    assert_eq!(
        names,
        [
            ("bind", 5),
            ("workers", 9),
            ("worker_class", 10),
            ("keepalive", 11),
            // Set only when DEBUG is: not a value we can rely on.
            ("loglevel", 14),
            ("timeout", 18)
        ]
    );
    assert!(matches!(
        conf.get("loglevel").map(|s| &s.value),
        Some(Value::Expr(e)) if e.contains("inside `if os.environ.get(\"DEBUG\"):` at line 13")
    ));
    assert_eq!(
        conf.get("bind").map(|s| &s.value),
        Some(&Value::List(vec![
            "unix:/run/app/app.sock".into(),
            "127.0.0.1:8001".into()
        ]))
    );
    assert_eq!(
        conf.unparsed,
        [
            "line 13: if os.environ.get(\"DEBUG\"):",
            "line 16: def on_starting(server):"
        ]
    );
}

#[test]
fn not_assignments() {
    let conf = parse("a == 1\nb.c = 2\nx != 3\n");
    assert!(conf.settings.is_empty(), "{:?}", conf.settings);
    assert_eq!(conf.unparsed.len(), 3);
}

#[test]
fn whatever_may_set_a_name_is_an_expression() {
    let text = "raw_env += ['X=1']\nkeepalive, timeout = 5, 60\nworkers = threads = 2\n\
                from settings import bind, backlog as backlog\nfrom base import *\n\
                for k in ('a',):\n    graceful_timeout = 10\n\
                def post_fork(server, worker):\n    umask = 0\n";
    let conf = parse(text);
    let expr = |n: &str| {
        conf.settings
            .iter()
            .filter(|s| s.name == n)
            .all(|s| matches!(s.value, Value::Expr(_)))
            && conf.settings.iter().any(|s| s.name == n)
    };
    for n in [
        "raw_env",
        "keepalive",
        "timeout",
        "workers",
        "threads",
        "bind",
        "backlog",
        STAR,
        "graceful_timeout",
    ] {
        assert!(expr(n), "{n}: {:?}", conf.settings);
    }
    // A function body sets a local name only.
    assert!(conf.get("umask").is_none(), "{:?}", conf.settings);
}

#[test]
fn ints() {
    assert_eq!(parse_int("0x1F"), Some(31));
    assert_eq!(parse_int("1_000"), Some(1000));
    assert_eq!(parse_int("010"), None);
    assert_eq!(parse_int("0"), Some(0));
    assert_eq!(parse_int("abc"), None);
}
