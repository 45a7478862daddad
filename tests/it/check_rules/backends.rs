//! Backend settings as units and config files really give them: environment files,
//! `GUNICORN_CMD_ARGS`, undefined variables, computed gunicorn settings. What cannot be read is
//! unknown (a note), never a default a finding is built on.

use std::path::{Path, PathBuf};

use super::{GOOD_HEADERS, check, conf};
use crate::harness::{tempdir, write};

fn unit(dir: &Path, service: &str) -> PathBuf {
    write(
        dir,
        "app.service",
        // Restart= so that `backend_no_restart` stays out of what these tests look at.
        &format!("[Unit]\nDescription=app\n[Service]\nRestart=always\n{service}"),
    )
}

fn notes(run: &super::Run) -> String {
    run.json["notes"].to_string()
}

#[test]
fn environment_files_and_gunicorn_cmd_args_are_read() {
    let a = tempdir();
    let d = a.path().display();
    write(
        a.path(),
        "app.env",
        "# deployed by ansible\nPORT=8002\n\
         GUNICORN_CMD_ARGS=\"--keep-alive 75 --timeout 90 --graceful-timeout 90\"\n",
    );
    let u = unit(
        a.path(),
        &format!(
            "Environment=PORT=9999\nEnvironmentFile={d}/app.env\nEnvironmentFile=-{d}/missing.env\n\
             ExecStart=/srv/venv/bin/gunicorn -k uvicorn.workers.UvicornWorker -b 127.0.0.1:${{PORT}} main:app\n"
        ),
    );
    let c = conf(
        &a.path().join("n"),
        "        server 127.0.0.1:8002;\n        keepalive 16;",
        GOOD_HEADERS,
    );
    let run = check(&c, &["--unit", u.to_str().unwrap_or_default()]);
    // PORT comes from the file (which overrides Environment=), keep-alive 75 s from
    // GUNICORN_CMD_ARGS: longer than nginx's 60 s, so no race either.
    let backend = &run.json["backends"][0];
    assert_eq!(
        backend["binds"],
        serde_json::json!(["127.0.0.1:8002"]),
        "{}",
        run.json
    );
    assert_eq!(backend["keepalive_s"], 75.0, "{}", run.json);
    assert_eq!(backend["unknown"], serde_json::json!([]), "{}", run.json);
    assert_eq!(run.kinds(), Vec::<String>::new(), "{}", run.json);
}

#[test]
fn an_undefined_port_is_unknown_not_an_error() {
    let a = tempdir();
    let u = unit(
        a.path(),
        "ExecStart=/srv/venv/bin/uvicorn main:app --port ${PORT}\n",
    );
    let c = conf(
        &a.path().join("n"),
        "        server 127.0.0.1:8000;",
        GOOD_HEADERS,
    );
    let run = check(&c, &["--unit", u.to_str().unwrap_or_default()]);
    // The bind is unknown (no address made up from a default), and said so.
    let backend = &run.json["backends"][0];
    assert_eq!(backend["binds"], serde_json::json!([]), "{}", run.json);
    assert!(
        backend["unknown"]
            .as_array()
            .is_some_and(|u| u.iter().any(|k| k["knob"] == "bind")),
        "{}",
        run.json
    );
    assert!(
        !run.kinds().iter().any(|k| k == "upstream_address_mismatch"),
        "{}",
        run.json
    );
    let n = notes(&run);
    assert!(
        n.contains("upstream_address_mismatch") && n.contains("PORT"),
        "{n}"
    );
    assert!(
        !run.json.to_string().contains("listens on \""),
        "{}",
        run.json
    );
}

#[test]
fn computed_gunicorn_settings_are_unknown_not_defaults() {
    let a = tempdir();
    write(
        a.path(),
        "gunicorn.conf.py",
        "import os\nbind = os.environ.get('BIND', '127.0.0.1:8001')\nkeepalive = int(os.environ['KA'])\n\
         worker_class = 'uvicorn.workers.UvicornWorker'\n",
    );
    let u = unit(
        a.path(),
        &format!(
            "WorkingDirectory={}\nExecStart=/srv/venv/bin/gunicorn -c gunicorn.conf.py main:app\n",
            a.path().display()
        ),
    );
    let c = conf(
        &a.path().join("n"),
        "        server 127.0.0.1:8000;\n        keepalive 16;",
        GOOD_HEADERS,
    );
    let run = check(&c, &["--unit", u.to_str().unwrap_or_default()]);
    assert!(
        !run.kinds().iter().any(|x| x == "upstream_address_mismatch"),
        "{}",
        run.json
    );
    assert!(notes(&run).contains("os.environ.get"), "{}", run.json);
    // With the address on the command line the backend is behind the upstream, and its
    // keep-alive is still the file's unknown value, not gunicorn's 2 s default.
    let text = std::fs::read_to_string(&u).expect("read").replace(
        "-c gunicorn.conf.py",
        "-c gunicorn.conf.py -b 127.0.0.1:8000",
    );
    std::fs::write(&u, text).expect("write");
    let run = check(&c, &["--unit", u.to_str().unwrap_or_default()]);
    assert!(
        !run.kinds()
            .iter()
            .any(|x| x == "upstream_keepalive_timeout_race"),
        "{}",
        run.json
    );
    assert!(
        notes(&run).contains("int(os.environ['KA'])"),
        "{}",
        run.json
    );
}

#[test]
fn flags_that_are_not_understood_are_notes() {
    let a = tempdir();
    let c = conf(a.path(), "        server 127.0.0.1:8000;", GOOD_HEADERS);
    let run = check(&c, &["--backend", "uvicorn main:app --mystery-flag"]);
    let n = notes(&run);
    assert!(n.contains("not understood: --mystery-flag"), "{n}");
}

#[test]
fn no_discover_judges_the_units_not_this_machine() {
    let a = tempdir();
    let name = format!("reflex-ci-{}", std::process::id());
    let sock = format!("/run/{name}/app.sock");
    let service = format!(
        "User=daemon\nGroup=daemon\nRuntimeDirectory={name}\nRuntimeDirectoryMode=0750\n\
         ExecStart=/srv/venv/bin/gunicorn -k uvicorn.workers.UvicornWorker -b unix:{sock} main:app\n"
    );
    let u = unit(a.path(), &service);
    let c = conf(
        &a.path().join("n"),
        &format!("        server unix:{sock};\n        server no-such-host.invalid:8000 backup;"),
        GOOD_HEADERS,
    );
    let run = check(
        &c,
        &["--no-discover", "--unit", u.to_str().unwrap_or_default()],
    );
    let kinds = run.kinds();
    // Predicted from the unit alone: RuntimeDirectoryMode=0750 keeps nginx's `nobody` out.
    assert!(
        kinds.iter().any(|k| k == "unix_socket_not_accessible"),
        "{}",
        run.json
    );
    // DNS is the target machine's business.
    assert!(
        !kinds.iter().any(|k| k == "upstream_host_unresolvable"),
        "{}",
        run.json
    );
    let n = notes(&run);
    assert!(
        n.contains("upstream_host_unresolvable") && n.contains("--no-discover"),
        "{n}"
    );
    // An EnvironmentFile= is on the target machine: not read, so what GUNICORN_CMD_ARGS there
    // could set (its user, say) is unknown and the prediction says so instead of guessing.
    let u = unit(
        a.path(),
        &format!("EnvironmentFile=/etc/{name}.env\n{service}"),
    );
    let run = check(
        &c,
        &["--no-discover", "--unit", u.to_str().unwrap_or_default()],
    );
    assert!(
        !run.kinds()
            .iter()
            .any(|k| k == "unix_socket_not_accessible"),
        "{}",
        run.json
    );
    let n = notes(&run);
    assert!(
        n.contains("unix_socket_not_accessible") && n.contains("EnvironmentFile"),
        "{n}"
    );
}

#[test]
fn gunicorn_timeout_zero_and_worker_class_names() {
    let a = tempdir();
    let c = conf(
        a.path(),
        "        server 127.0.0.1:8000;\n        keepalive 16;",
        GOOD_HEADERS,
    );
    let kinds = |cmd: &str| check(&c, &["--backend", cmd]).kinds();
    // `--timeout 0` disables gunicorn's worker timeout: nothing to compare.
    let k =
        kinds("gunicorn -k uvicorn.workers.UvicornWorker --timeout 0 -b 127.0.0.1:8000 main:app");
    assert!(
        !k.iter().any(|x| x == "worker_timeout_below_read_timeout"),
        "{k:?}"
    );
    let k =
        kinds("gunicorn -k uvicorn.workers.UvicornWorker --timeout 30 -b 127.0.0.1:8000 main:app");
    assert!(
        k.iter().any(|x| x == "worker_timeout_below_read_timeout"),
        "{k:?}"
    );
    // The sync worker by its class path closes every connection: no keep-alive race.
    let k = kinds("gunicorn -k gunicorn.workers.sync.SyncWorker -b 127.0.0.1:8000 main:app");
    assert!(
        !k.iter().any(|x| x == "upstream_keepalive_timeout_race"),
        "{k:?}"
    );
    // uvicorn's H11 worker keeps connections for gunicorn's --keep-alive (2 s).
    let k = kinds("gunicorn -k uvicorn.workers.UvicornH11Worker -b 127.0.0.1:8000 main:app");
    assert!(
        k.iter().any(|x| x == "upstream_keepalive_timeout_race"),
        "{k:?}"
    );
}
