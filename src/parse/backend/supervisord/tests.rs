//! Table tests with supervisord sections as they are deployed.

use super::*;

const CONF: &str = r#"; supervisor config file

[unix_http_server]
file=/var/run/supervisor.sock   ; (the path to the socket file)
chmod=0700                       ; sockef file mode (default 0700)

[supervisord]
logfile=/var/log/supervisor/supervisord.log ; (main log file;default $CWD/supervisord.log)
umask = 027
childlogdir=/var/log/supervisor

[include]
files = /etc/supervisor/conf.d/*.conf conf.d/*.ini

[program:api]
command=/srv/api/.venv/bin/gunicorn main:app
    -k uvicorn.workers.UvicornWorker
    --bind unix:%(here)s/%(program_name)s.sock ; inline comment
directory = /srv/api
user: www-data
environment=GUNICORN_CMD_ARGS="--keep-alive 30",HOME="/home/www data",PATH=%(ENV_PATH)s
autostart=true
#comment=ignored

[program:worker]
command=uvicorn app:app --port 80%(process_num)02d --uds /run/w#%(process_num)d.sock
process_name=%(program_name)s_%(process_num)02d
numprocs=2
numprocs_start=1
umask=002
"#;

fn env() -> BTreeMap<String, String> {
    [("PATH".to_string(), "/usr/bin:/bin".to_string())].into()
}

#[test]
fn real_conf() {
    let c = parse(CONF, "/etc/supervisor", &env());
    assert_eq!(c.umask, Some(0o027));
    assert_eq!(
        c.includes,
        ["/etc/supervisor/conf.d/*.conf", "conf.d/*.ini"]
    );
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert_eq!(c.programs.len(), 3);

    let api = &c.programs[0];
    assert_eq!(
        (api.program.as_str(), api.process_name.as_str(), api.line),
        ("api", "api", 16)
    );
    assert_eq!(
        api.argv,
        [
            "/srv/api/.venv/bin/gunicorn",
            "main:app",
            "-k",
            "uvicorn.workers.UvicornWorker",
            "--bind",
            "unix:/etc/supervisor/api.sock"
        ]
    );
    assert_eq!(api.user.as_deref(), Some("www-data"));
    assert_eq!(api.directory.as_deref(), Some("/srv/api"));
    assert_eq!(
        api.environment.get("GUNICORN_CMD_ARGS").map(String::as_str),
        Some("--keep-alive 30")
    );
    assert_eq!(
        api.environment.get("HOME").map(String::as_str),
        Some("/home/www data")
    );
    assert_eq!(
        api.environment.get("PATH").map(String::as_str),
        Some("/usr/bin:/bin")
    );
    assert_eq!(api.umask, None);

    let names: Vec<_> = c.programs[1..]
        .iter()
        .map(|p| p.process_name.as_str())
        .collect();
    assert_eq!(names, ["worker_01", "worker_02"]);
    assert_eq!(
        c.programs[2].argv,
        [
            "uvicorn",
            "app:app",
            "--port",
            "8002",
            "--uds",
            "/run/w#2.sock"
        ]
    );
    assert_eq!(c.programs[2].umask, Some(0o002));
}

#[test]
fn errors_do_not_lose_other_programs() {
    let c = parse(
        "[program:a]\ncommand=uvicorn 'a:b\n[program:b]\nautostart=true\n\
         [program:c]\ncommand=uvicorn %(ENV_MISSING)s\n[program:d]\ncommand=uvicorn d:app\n",
        "/etc",
        &BTreeMap::new(),
    );
    assert_eq!(c.errors.len(), 3, "{:?}", c.errors);
    assert_eq!(c.programs.len(), 1);
    assert_eq!(c.programs[0].program, "d");
}

#[test]
fn inline_comments_need_whitespace() {
    assert_eq!(strip_inline_comment("a=b;c ; d"), "a=b;c ");
    assert_eq!(
        strip_inline_comment("url=http://x/#frag"),
        "url=http://x/#frag"
    );
}

#[test]
fn expansions() {
    let vars: BTreeMap<String, String> = [
        ("n".to_string(), "7".to_string()),
        ("s".to_string(), "x".to_string()),
    ]
    .into();
    assert_eq!(
        expand("%(s)s-%(n)03d-100%%", &vars).as_deref(),
        Ok("x-007-100%")
    );
    assert!(expand("%(nope)s", &vars).is_err());
}
