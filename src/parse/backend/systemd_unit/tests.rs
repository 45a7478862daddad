//! Table tests with unit files as they are shipped and written in the wild.

use super::*;

const UNIT: &str = r#"[Unit]
Description=gunicorn daemon for myapp
Requires=gunicorn.socket
After=network.target

[Service]
Type=notify
User=www-data
Group=www-data
UMask=0007
RuntimeDirectory=gunicorn myapp
RuntimeDirectoryMode=0750
WorkingDirectory=-/srv/myapp
Environment="GUNICORN_CMD_ARGS=--keep-alive 65" PORT=9000
Environment=APP="main:app"
EnvironmentFile=-/etc/default/myapp
ExecStart=/srv/myapp/.venv/bin/gunicorn \
          --workers 3 \
# a comment inside a continuation
          -k uvicorn.workers.UvicornWorker \
          --bind unix:/run/gunicorn/myapp.sock ${APP}
ExecReload=/bin/kill -s HUP $MAINPID
KillMode=mixed

[Install]
WantedBy=multi-user.target
"#;

fn w(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn real_unit() {
    let s = service(&[parse(UNIT)], "myapp.service");
    assert_eq!(s.user.as_deref(), Some("www-data"));
    assert_eq!(s.group.as_deref(), Some("www-data"));
    assert_eq!(s.umask, Some(0o007));
    assert_eq!(
        s.runtime_directories,
        [PathBuf::from("/run/gunicorn"), PathBuf::from("/run/myapp")]
    );
    assert_eq!(s.runtime_directory_mode, Some(0o750));
    assert_eq!(s.working_directory, Some(PathBuf::from("/srv/myapp")));
    assert!(s.working_directory_optional);
    assert_eq!(
        s.environment.get("GUNICORN_CMD_ARGS").map(String::as_str),
        Some("--keep-alive 65")
    );
    assert_eq!(s.environment.get("PORT").map(String::as_str), Some("9000"));
    assert_eq!(
        s.environment_files,
        [EnvironmentFile {
            path: "/etc/default/myapp".into(),
            optional: true
        }]
    );
    assert_eq!(s.exec_start.len(), 1);
    let e = &s.exec_start[0];
    assert_eq!((e.file, e.line), (0, 17));
    assert_eq!(
        e.words(&s.environment).expect("words").argv,
        w(&[
            "/srv/myapp/.venv/bin/gunicorn",
            "--workers",
            "3",
            "-k",
            "uvicorn.workers.UvicornWorker",
            "--bind",
            "unix:/run/gunicorn/myapp.sock",
            "main:app"
        ])
    );
    assert!(s.errors.is_empty(), "{:?}", s.errors);
}

#[test]
fn dropins_reset_and_append() {
    let main = parse("[Service]\nExecStart=/usr/bin/uvicorn a:b\nEnvironment=A=1\nUser=app\n");
    let d1 = parse("[Service]\nExecStart=\nExecStart=-/usr/bin/uvicorn a:b --port $PORT\n");
    let d2 = parse("[Service]\nEnvironment=PORT=81 \"OPTS=--x  --y\"\nUser=\n");
    let s = service(&[main, d1, d2], "api.service");
    assert_eq!(s.exec_start.len(), 1);
    let e = &s.exec_start[0];
    assert_eq!((e.file, e.line, e.prefixes.as_str()), (1, 3, "-"));
    assert_eq!(
        e.words(&s.environment).expect("words").argv,
        w(&["/usr/bin/uvicorn", "a:b", "--port", "81"])
    );
    assert_eq!(s.environment.get("A").map(String::as_str), Some("1"));
    assert_eq!(
        s.environment.get("OPTS").map(String::as_str),
        Some("--x  --y")
    );
    assert_eq!(s.user, None);
}

#[test]
fn exec_words() {
    let env: BTreeMap<String, String> =
        [("OPTS", "--workers 2  --keep-alive 5"), ("HOST", "0.0.0.0")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let cases: &[(&str, &[&str])] = &[
        (
            "uvicorn a:b $OPTS",
            &["uvicorn", "a:b", "--workers", "2", "--keep-alive", "5"],
        ),
        ("uvicorn a:b \"$OPTS\"", &["uvicorn", "a:b", "$OPTS"]),
        (
            "uvicorn --host=${HOST} a:b",
            &["uvicorn", "--host=0.0.0.0", "a:b"],
        ),
        (
            "uvicorn ${OPTS}",
            &["uvicorn", "--workers 2  --keep-alive 5"],
        ),
        // Undefined variables stay as written; `Words` says they are unknown.
        (
            "uvicorn $UNSET a:b ${UNSET}",
            &["uvicorn", "$UNSET", "a:b", "${UNSET}"],
        ),
        (
            "uvicorn --port=${PORT:-8000} ${HOST:+--host} ${HOST}",
            &["uvicorn", "--port=${PORT:-8000}", "--host", "0.0.0.0"],
        ),
        ("sh -c 'echo $$HOME'", &["sh", "-c", "echo $HOME"]),
        ("a\\sb 'c d' \"e\\\"f\"", &["a b", "c d", "e\"f"]),
        ("x \\x41\\101", &["x", "AA"]),
    ];
    for (cmd, want) in cases {
        assert_eq!(
            split_words(cmd, &env, true).map(|x| x.argv),
            Ok(w(want)),
            "{cmd}"
        );
    }
    assert!(split_words("a 'b", &env, true).is_err());
}

#[test]
fn prefixes_and_specifiers() {
    let unit = parse(
        "[Service]\nExecStart=@/opt/venv/bin/gunicorn gunicorn-%i -b unix:%t/%p-%i.sock a:b\n\
         ExecStart=:/usr/bin/uvicorn $NOT_EXPANDED 100%%\nWorkingDirectory=/srv/%i\n",
    );
    let s = service(&[unit], "app@blue.service");
    assert_eq!(
        s.exec_start[0].words(&s.environment).expect("words").argv,
        w(&[
            "/opt/venv/bin/gunicorn",
            "-b",
            "unix:/run/app-blue.sock",
            "a:b"
        ])
    );
    assert_eq!(
        s.exec_start[1].words(&s.environment).expect("words").argv,
        w(&["/usr/bin/uvicorn", "$NOT_EXPANDED", "100%"])
    );
    assert_eq!(s.working_directory, Some(PathBuf::from("/srv/blue")));
}

#[test]
fn bad_values_are_reported_not_fatal() {
    let s = service(
        &[parse(
            "[Service]\nUMask=rwx\nExecStart=/usr/bin/uvicorn 'a:b\nUser=u\n",
        )],
        "x.service",
    );
    assert_eq!(s.errors.len(), 2, "{:?}", s.errors);
    assert!(s.exec_start.is_empty());
    assert_eq!(s.user.as_deref(), Some("u"));
}

#[test]
fn undefined_variables_are_unknown_not_empty() {
    let env: BTreeMap<String, String> = [("HOST".to_string(), "::".to_string())].into();
    let got = split_words("uvicorn a:b --host ${HOST} --port ${PORT}", &env, true).expect("splits");
    assert_eq!(
        got.argv,
        w(&["uvicorn", "a:b", "--host", "::", "--port", "${PORT}"])
    );
    assert_eq!(got.unknown.keys().copied().collect::<Vec<_>>(), [5]);
    assert!(
        got.unknown[&5].contains("`PORT` is not defined"),
        "{:?}",
        got.unknown
    );
    assert_eq!(got.opaque, None);
    let got = split_words("uvicorn a:b $OPTS", &env, true).expect("splits");
    assert!(got.opaque.is_some_and(|o| o.contains("`OPTS`")));
    // `@` drops argv[0]'s override and shifts what is unknown with it.
    let unit = parse("[Service]\nExecStart=@/venv/bin/uvicorn uv a:b --port ${PORT}\n");
    let s = service(&[unit], "a.service");
    let words = s.exec_start[0].words(&s.environment).expect("words");
    assert_eq!(
        words.argv,
        w(&["/venv/bin/uvicorn", "a:b", "--port", "${PORT}"])
    );
    assert_eq!(words.unknown.keys().copied().collect::<Vec<_>>(), [3]);
}

#[test]
fn supervision_settings() {
    let unit = parse(
        "[Service]\nExecStart=/v/uvicorn a:b\nRestart=on-failure\nPrivateTmp=yes\nTimeoutStopSec=5min\n",
    );
    let s = service(&[unit], "a.service");
    assert_eq!(s.restart, Some(("on-failure".to_string(), 3)));
    assert!(s.private_tmp);
    assert_eq!(
        s.timeout_stop,
        Some(Some(std::time::Duration::from_secs(300)))
    );
}
