//! `reflex check` as a process: every rule fires on a configuration with its problem and stays
//! silent on the fixed one; exit codes, output formats, syntax errors and `--fix` (validated by
//! a real `nginx -t`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::harness::{nginx_bin, reflex, tempdir, write};

mod backends;
mod cli;
mod fix;
mod nginx;
mod supervision;

/// One `reflex check` run.
pub(crate) struct Run {
    out: Output,
    json: Value,
}

impl Run {
    fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }

    fn kinds(&self) -> Vec<String> {
        self.json["findings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f["kind"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn finding(&self, kind: &str) -> &Value {
        self.json["findings"]
            .as_array()
            .and_then(|a| a.iter().find(|f| f["kind"] == kind))
            .unwrap_or_else(|| panic!("no {kind} finding in {}", self.json))
    }
}

fn check(conf: &Path, extra: &[&str]) -> Run {
    let out = reflex()
        .arg("check")
        .arg("--nginx-conf")
        .arg(conf)
        .args(["--format", "json"])
        .args(extra)
        .output()
        .expect("run reflex");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "reflex printed no JSON ({e}): stdout {stdout} stderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Run { out, json }
}

/// A complete configuration around one upstream block and one location body, with its pid and
/// logs in `dir` so that `nginx -t` works anywhere.
fn conf(dir: &Path, upstream: &str, location: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let d = dir.display();
    write(
        dir,
        "nginx.conf",
        &format!(
            "user nobody nogroup;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n    \
             access_log {d}/access.log;\n    upstream app {{\n{upstream}\n    }}\n    server {{\n        listen 127.0.0.1:8080;\n        \
             location / {{\n            proxy_pass http://app;\n{location}\n        }}\n    }}\n}}\n"
        ),
    )
}

const GOOD_HEADERS: &str = "            proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n            \
                            proxy_set_header Host $host;\n            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n            \
                            proxy_set_header X-Forwarded-Proto $scheme;";

/// Asserts `kind` is reported for `bad` and not for `good`, with the same flags.
pub(crate) fn fires_and_silent(kind: &str, bad: &Path, good: &Path, flags: &[&str]) -> Run {
    let b = check(bad, flags);
    assert!(
        b.kinds().iter().any(|k| k == kind),
        "{kind} should fire: {}",
        b.json
    );
    let g = check(good, flags);
    assert!(
        !g.kinds().iter().any(|k| k == kind),
        "{kind} should be silent: {}",
        g.json
    );
    b
}

fn two_dirs() -> (tempfile::TempDir, tempfile::TempDir) {
    (tempdir(), tempdir())
}

#[test]
fn upstream_address_mismatch() {
    let (a, b) = two_dirs();
    let bad = conf(a.path(), "        server 127.0.0.1:8001;", GOOD_HEADERS);
    let good = conf(b.path(), "        server 127.0.0.1:8002;", GOOD_HEADERS);
    let run = fires_and_silent(
        "upstream_address_mismatch",
        &bad,
        &good,
        &["--backend", "uvicorn main:app --port 8002"],
    );
    assert_eq!(run.code(), 1);
    let f = run.finding("upstream_address_mismatch");
    assert_eq!(f["severity"], "error");
    assert_eq!(f["upstream"], "app");
    assert_eq!(f["location"]["line"], 8);
    assert!(
        f["fix"]["diff"]
            .as_str()
            .unwrap_or("")
            .contains("+        server 127.0.0.1:8002;"),
        "{f}"
    );
}

#[test]
fn upstream_keepalive_ineffective() {
    let (a, b) = two_dirs();
    let headers_only = "            proxy_set_header Host $host;\n            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n            \
                        proxy_set_header X-Forwarded-Proto $scheme;";
    let up = "        server 127.0.0.1:8000;\n        keepalive 16;\n        keepalive_timeout 4s;";
    let bad = conf(a.path(), up, headers_only);
    let good = conf(b.path(), up, GOOD_HEADERS);
    fires_and_silent(
        "upstream_keepalive_ineffective",
        &bad,
        &good,
        &["--backend", "uvicorn main:app"],
    );
}

#[test]
fn upstream_keepalive_timeout_race_uvicorn_and_gunicorn() {
    let (a, b) = two_dirs();
    let bad = conf(
        a.path(),
        "        server 127.0.0.1:8000;\n        keepalive 16;",
        GOOD_HEADERS,
    );
    let good = conf(
        b.path(),
        "        server 127.0.0.1:8000;\n        keepalive 16;\n        keepalive_timeout 4s;",
        GOOD_HEADERS,
    );
    let run = fires_and_silent(
        "upstream_keepalive_timeout_race",
        &bad,
        &good,
        &["--backend", "uvicorn main:app"],
    );
    let f = run.finding("upstream_keepalive_timeout_race");
    assert!(
        f["fix"]["diff"]
            .as_str()
            .unwrap_or("")
            .contains("+        keepalive_timeout 4s;"),
        "{f}"
    );
    // gunicorn with UvicornWorker: its --keep-alive (default 2 s) is what applies.
    let g = [
        "--backend",
        "gunicorn -k uvicorn.workers.UvicornWorker -b 127.0.0.1:8000 main:app",
    ];
    let run = check(&good, &g);
    let f = run.finding("upstream_keepalive_timeout_race");
    assert!(
        f["message"].as_str().unwrap_or("").contains("after 2s"),
        "{f}"
    );
    let g = [
        "--backend",
        "gunicorn -k uvicorn.workers.UvicornWorker --keep-alive 75 -b 127.0.0.1:8000 main:app",
    ];
    assert!(
        !check(&good, &g)
            .kinds()
            .iter()
            .any(|k| k == "upstream_keepalive_timeout_race")
    );
}

#[test]
fn upstream_scheme_mismatch() {
    let (a, b) = two_dirs();
    let bad = conf(a.path(), "        server 127.0.0.1:8000;", GOOD_HEADERS);
    let tls = [
        "--backend",
        "uvicorn main:app --ssl-keyfile k.pem --ssl-certfile c.pem",
    ];
    let good_text = std::fs::read_to_string(&bad)
        .expect("read")
        .replace("proxy_pass http://app", "proxy_pass https://app");
    let good = write(b.path(), "nginx.conf", &good_text);
    fires_and_silent("upstream_scheme_mismatch", &bad, &good, &tls);
}

#[test]
fn upstream_localhost_dual_stack_needs_both_families() {
    // This host's /etc/hosts may map localhost to 127.0.0.1 only; the rule must then be silent
    // (the live two-family case runs in a private mount namespace in repro_502).
    let (a, b) = two_dirs();
    let bad = conf(a.path(), "        server localhost:8000;", GOOD_HEADERS);
    let good = conf(b.path(), "        server 127.0.0.1:8000;", GOOD_HEADERS);
    let both = std::process::Command::new("getent")
        .args(["ahosts", "localhost"])
        .output()
        .expect("getent");
    let families = String::from_utf8_lossy(&both.stdout);
    let dual = families.contains("::1") && families.contains("127.0.0.1");
    let run = check(
        &bad,
        &["--backend", "uvicorn main:app --host 127.0.0.1 --port 8000"],
    );
    assert_eq!(
        run.kinds()
            .iter()
            .any(|k| k == "upstream_localhost_dual_stack"),
        dual,
        "{}",
        run.json
    );
    assert!(
        !check(&good, &["--backend", "uvicorn main:app"])
            .kinds()
            .iter()
            .any(|k| k == "upstream_localhost_dual_stack")
    );
}

#[test]
fn unix_socket_not_accessible_on_the_filesystem() {
    let (a, b) = two_dirs();
    for d in [a.path(), b.path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    }
    let sock = |d: &Path, mode| {
        let p = d.join("app.sock");
        let l = std::os::unix::net::UnixListener::bind(&p).expect("bind");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod sock");
        (p, l)
    };
    let (bad_sock, _l1) = sock(a.path(), 0o600);
    let (good_sock, _l2) = sock(b.path(), 0o666);
    let bad = conf(
        a.path(),
        &format!("        server unix:{};", bad_sock.display()),
        GOOD_HEADERS,
    );
    let good = conf(
        b.path(),
        &format!("        server unix:{};", good_sock.display()),
        GOOD_HEADERS,
    );
    let run = fires_and_silent("unix_socket_not_accessible", &bad, &good, &[]);
    let f = run.finding("unix_socket_not_accessible");
    assert!(
        f["message"].as_str().unwrap_or("").contains("srw-------")
            && !f["fix"]["summary"]
                .as_str()
                .unwrap_or("")
                .contains("group root"),
        "{f}"
    );
    // A directory nobody cannot traverse.
    let c = tempdir();
    std::fs::set_permissions(c.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let inner = c.path().join("private");
    std::fs::create_dir(&inner).expect("mkdir");
    std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let (s, _l3) = sock(&inner, 0o666);
    let conf_c = conf(
        c.path(),
        &format!("        server unix:{};", s.display()),
        GOOD_HEADERS,
    );
    let run = check(&conf_c, &[]);
    let f = run.finding("unix_socket_not_accessible");
    assert!(
        f["message"]
            .as_str()
            .unwrap_or("")
            .contains("private is drwx------"),
        "{f}"
    );
}

#[test]
fn unix_socket_not_accessible_predicted_from_a_unit() {
    let (a, b) = two_dirs();
    // A runtime directory that does not exist: the unit's settings are all there is.
    let name = format!("reflex-test-{}", std::process::id());
    let sock = format!("/run/{name}/app.sock");
    let unit = |d: &Path, mode: &str| {
        write(
            d,
            "app.service",
            &format!(
                "[Unit]\nDescription=app\n[Service]\nUser=daemon\nGroup=daemon\nRuntimeDirectory={name}\n\
                 RuntimeDirectoryMode={mode}\nExecStart=/srv/venv/bin/gunicorn -k uvicorn.workers.UvicornWorker -b unix:{sock} main:app\n"
            ),
        )
    };
    let bad_unit = unit(a.path(), "0750");
    let good_unit = unit(b.path(), "0755");
    let bad = conf(
        a.path(),
        &format!("        server unix:{sock};"),
        GOOD_HEADERS,
    );
    let run = check(&bad, &["--unit", bad_unit.to_str().unwrap_or_default()]);
    let f = run.finding("unix_socket_not_accessible");
    assert!(
        f["evidence"].to_string().contains("does not exist yet"),
        "{f}"
    );
    let run = check(&bad, &["--unit", good_unit.to_str().unwrap_or_default()]);
    assert!(
        !run.kinds()
            .iter()
            .any(|k| k == "unix_socket_not_accessible"),
        "{}",
        run.json
    );
}

#[test]
fn backlog_above_somaxconn() {
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .expect("somaxconn")
        .trim()
        .parse()
        .expect("number");
    let (a, _b) = two_dirs();
    let c = conf(a.path(), "        server 127.0.0.1:8000;", GOOD_HEADERS);
    let above = format!("uvicorn main:app --backlog {}", somaxconn + 1);
    let at = format!("uvicorn main:app --backlog {somaxconn}");
    let run = check(&c, &["--backend", &above]);
    assert!(
        run.kinds().iter().any(|k| k == "backlog_above_somaxconn"),
        "{}",
        run.json
    );
    assert!(
        !check(&c, &["--backend", &at])
            .kinds()
            .iter()
            .any(|k| k == "backlog_above_somaxconn")
    );
}

#[test]
fn worker_timeout_below_read_timeout() {
    let (a, b) = two_dirs();
    let bad = conf(a.path(), "        server 127.0.0.1:8000;", GOOD_HEADERS);
    let good = conf(
        b.path(),
        "        server 127.0.0.1:8000;",
        &format!("{GOOD_HEADERS}\n            proxy_read_timeout 20s;"),
    );
    let g = [
        "--backend",
        "gunicorn -k uvicorn.workers.UvicornWorker --timeout 30 -b 127.0.0.1:8000 main:app",
    ];
    let run = fires_and_silent("worker_timeout_below_read_timeout", &bad, &good, &g);
    let f = run.finding("worker_timeout_below_read_timeout");
    assert!(
        f["fix"]["summary"]
            .as_str()
            .unwrap_or("")
            .contains("--timeout 65"),
        "{f}"
    );
}

#[test]
fn proxy_headers_missing() {
    let (a, b) = two_dirs();
    let bad = conf(
        a.path(),
        "        server 127.0.0.1:8000;",
        "            proxy_http_version 1.1;",
    );
    let good = conf(b.path(), "        server 127.0.0.1:8000;", GOOD_HEADERS);
    let run = fires_and_silent(
        "proxy_headers_missing",
        &bad,
        &good,
        &["--backend", "uvicorn main:app"],
    );
    assert_eq!(run.finding("proxy_headers_missing")["severity"], "warning");
}

#[test]
fn upstream_all_servers_down_and_host_unresolvable() {
    let (a, b) = two_dirs();
    let bad = conf(
        a.path(),
        "        server 127.0.0.1:8000 down;\n        server no-such-host.invalid:8000 down;",
        GOOD_HEADERS,
    );
    let good = conf(b.path(), "        server 127.0.0.1:8000;", GOOD_HEADERS);
    fires_and_silent("upstream_all_servers_down", &bad, &good, &[]);
    fires_and_silent("upstream_host_unresolvable", &bad, &good, &[]);
}

#[test]
fn proxy_pass_dynamic_is_said_not_guessed() {
    let (a, b) = two_dirs();
    let dir = a.path().display().to_string();
    let bad = conf(a.path(), "        server 127.0.0.1:8000;", GOOD_HEADERS);
    // A second location whose target host comes from a variable.
    let text = std::fs::read_to_string(&bad).expect("read").replace(
        "        location / {",
        "        location /dyn/ {\n            resolver 127.0.0.1;\n            \
             proxy_pass http://$arg_host:8000;\n        }\n        location / {",
    );
    std::fs::write(&bad, text).expect("write");
    let good = conf(b.path(), "        server 127.0.0.1:8000;", GOOD_HEADERS);
    let flags = ["--backend", "uvicorn main:app", "--fail-on", "info"];
    let run = fires_and_silent("proxy_pass_dynamic", &bad, &good, &flags);
    let f = run.finding("proxy_pass_dynamic");
    assert_eq!(f["severity"], "info");
    assert_eq!(f["location"]["file"], format!("{dir}/nginx.conf"));
    assert_eq!(f["location"]["line"], 14);
    // Info alone fails only with --fail-on info; by default it passes.
    assert_eq!(run.code(), 1);
    assert_eq!(check(&bad, &["--backend", "uvicorn main:app"]).code(), 0);
}

#[test]
fn healthy_stack_exits_zero_in_every_format() {
    let a = tempdir();
    let c = conf(
        a.path(),
        "        server 127.0.0.1:8000;\n        keepalive 16;\n        keepalive_timeout 4s;",
        GOOD_HEADERS,
    );
    let run = check(&c, &["--backend", "uvicorn main:app"]);
    assert_eq!(run.kinds(), Vec::<String>::new());
    assert_eq!(run.code(), 0);
    let text = reflex()
        .args(["check", "--nginx-conf"])
        .arg(&c)
        .args(["--backend", "uvicorn main:app"])
        .output()
        .expect("run");
    assert_eq!(text.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&text.stdout).contains("0 errors, 0 warnings, 0 info"));
}

#[test]
fn fail_on_and_sarif() {
    let a = tempdir();
    // Only a warning: exits 1 by default, 0 with --fail-on error.
    let c = conf(
        a.path(),
        "        server 127.0.0.1:8000;",
        "            proxy_http_version 1.1;",
    );
    assert_eq!(check(&c, &["--backend", "uvicorn main:app"]).code(), 1);
    assert_eq!(
        check(&c, &["--backend", "uvicorn main:app", "--fail-on", "error"]).code(),
        0
    );
    let out = reflex()
        .args(["check", "--format", "sarif", "--nginx-conf"])
        .arg(&c)
        .args(["--backend", "uvicorn main:app"])
        .output()
        .expect("run");
    let sarif: Value = serde_json::from_slice(&out.stdout).expect("sarif is JSON");
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "reflex");
    let result = &run["results"][0];
    assert_eq!(result["ruleId"], "proxy_headers_missing");
    assert_eq!(result["level"], "warning");
    assert_eq!(
        result["locations"][0]["physicalLocation"]["region"]["startLine"],
        13
    );
    let idx = result["ruleIndex"].as_u64().expect("ruleIndex") as usize;
    assert_eq!(
        run["tool"]["driver"]["rules"][idx]["id"],
        "proxy_headers_missing"
    );
    assert!(
        result["fixes"][0]["artifactChanges"][0]["replacements"][0]["insertedContent"]["text"]
            .as_str()
            .unwrap_or("")
            .contains("X-Forwarded-Proto")
    );
}

#[test]
fn syntax_error_gives_file_line_col_and_exit_2() {
    let a = tempdir();
    let c = write(
        a.path(),
        "nginx.conf",
        "events {}\nhttp {\n    server {\n        listen 80;\n    }}\n}\n",
    );
    let out = reflex()
        .args(["check", "--nginx-conf"])
        .arg(&c)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:6:1:", c.display())), "{err}");
    let missing = reflex()
        .args(["check", "--nginx-conf", "/nonexistent/nginx.conf"])
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(2));
    let bad_flag = reflex()
        .args(["check", "--fail-on", "sometimes"])
        .output()
        .expect("run");
    assert_eq!(bad_flag.status.code(), Some(2));
}

/// A configuration with every auto-fixable problem at once, in an included file.
fn fixable(dir: &Path) -> PathBuf {
    let d = dir.display();
    write(
        dir,
        "sites/app.conf",
        "upstream app {\n    server localhost:8000;\n    keepalive 16;\n}\n\nserver {\n    listen 127.0.0.1:8080;\n    \
         location / {\n        proxy_pass https://app;\n    }\n}\n",
    );
    write(
        dir,
        "nginx.conf",
        &format!(
            "user nobody nogroup;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n    \
             access_log {d}/access.log;\n    include sites/*.conf;\n}}\n"
        ),
    )
}

#[test]
fn fix_applies_safe_fixes_keeps_backups_and_passes_nginx_t() {
    let a = tempdir();
    let backups = tempdir();
    let main = fixable(a.path());
    let site = a.path().join("sites/app.conf");
    let original = std::fs::read_to_string(&site).expect("read");
    let flags = ["--backend", "uvicorn main:app --port 8000"];
    let before = check(&main, &flags).kinds();
    for k in [
        "upstream_scheme_mismatch",
        "upstream_keepalive_ineffective",
        "proxy_headers_missing",
    ] {
        assert!(before.iter().any(|x| x == k), "{k} in {before:?}");
    }
    let run = check(
        &main,
        &[
            "--fix",
            "--backup-dir",
            backups.path().to_str().unwrap_or_default(),
            flags[0],
            flags[1],
        ],
    );
    let after = run.kinds();
    for k in [
        "upstream_scheme_mismatch",
        "upstream_keepalive_ineffective",
        "proxy_headers_missing",
    ] {
        assert!(
            !after.iter().any(|x| x == k),
            "{k} still in {after:?}: {}",
            run.json
        );
    }
    let fixed = std::fs::read_to_string(&site).expect("read");
    assert!(fixed.contains("proxy_pass http://app;"), "{fixed}");
    assert!(fixed.contains("proxy_http_version 1.1;"), "{fixed}");
    // The fixed file passes the real nginx's own check.
    let t = std::process::Command::new(nginx_bin())
        .arg("-t")
        .arg("-c")
        .arg(&main)
        .output()
        .expect("nginx -t");
    assert!(
        t.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&t.stderr)
    );
    // The backup holds the original, outside the include glob.
    // Pass 1's copy is the original; each later pass keeps the version it changed.
    let mut backup: Vec<PathBuf> = walk(backups.path())
        .into_iter()
        .filter(|p| p.ends_with("sites/app.conf"))
        .collect();
    backup.sort();
    assert!(
        !backup.is_empty() && backup[0].to_string_lossy().contains("/pass-1/"),
        "{backup:?}"
    );
    assert_eq!(std::fs::read_to_string(&backup[0]).expect("read"), original);
    assert_eq!(
        std::fs::read_dir(a.path().join("sites"))
            .expect("ls")
            .count(),
        1,
        "no stray files beside the config"
    );
    assert!(
        run.json["notes"].to_string().contains("nginx -t` passed"),
        "{}",
        run.json
    );
}

#[test]
fn fix_restores_the_original_when_nginx_rejects_it() {
    let a = tempdir();
    let backups = tempdir();
    let main = fixable(a.path());
    let site = a.path().join("sites/app.conf");
    let original = std::fs::read_to_string(&site).expect("read");
    // An nginx that rejects everything: `false`.
    let out = reflex()
        .env("REFLEX_NGINX", "/bin/false")
        .args(["check", "--fix", "--backup-dir"])
        .arg(backups.path())
        .arg("--nginx-conf")
        .arg(&main)
        .args(["--backend", "uvicorn main:app --port 8000"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("restored"));
    assert_eq!(std::fs::read_to_string(&site).expect("read"), original);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn without_nginx_conf_it_checks_the_running_masters_configuration() {
    let a = tempdir();
    let nginx = crate::harness::nginx::Nginx::builder(&a.path().join("n"))
        .server("location / { proxy_pass http://127.0.0.1:9; }")
        .start();
    // Other tests may start and stop their own nginx at the same time: the running masters
    // are read before and after reflex runs, and reflex must have picked one of them.
    let running_masters = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .expect("proc")
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.starts_with("nginx: master process"))
            .collect()
    };
    let mut masters = running_masters();
    let out = reflex()
        .args(["check", "--format", "json"])
        .output()
        .expect("run");
    for m in running_masters() {
        if !masters.contains(&m) {
            masters.push(m);
        }
    }
    let json: Value = serde_json::from_slice(&out.stdout).expect("json");
    let chosen = json["nginx_conf"].as_str().expect("nginx_conf").to_string();
    assert!(!chosen.is_empty(), "empty nginx_conf in {json}");
    assert!(
        masters.iter().any(|m| m.contains(&chosen)),
        "{chosen} not among {masters:?}"
    );
    if masters.len() == 1 {
        assert_eq!(chosen, nginx.conf().display().to_string());
    }
    assert!(chosen != "/etc/nginx/nginx.conf");
}

#[test]
fn no_discover_without_nginx_conf_is_an_error_not_this_hosts_nginx() {
    let out = reflex()
        .args(["check", "--no-discover", "--backend", "uvicorn app:app"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--nginx-conf"), "{err}");
    assert!(out.stdout.is_empty(), "{out:?}");
}

/// The parser agrees with crossplane on the configurations these tests (and the demo) use, not
/// only on the parser's own fixtures.
#[test]
fn every_check_configuration_parses_as_crossplane_parses_it() {
    let a = tempdir();
    let demo = std::fs::read_to_string(crate::harness::repo().join("demo/nginx.conf.in"))
        .expect("demo config")
        .replace("@PREFIX@", "/tmp/p")
        .replace("@PORT@", "8080")
        .replace("@UDS@", "/tmp/p/u.sock")
        .replace("@GUNICORN_PORT@", "8001")
        .replace("@WRONG_PORT@", "8002");
    let mut confs = vec![
        conf(
            &a.path().join("1"),
            "        server 127.0.0.1:8000 down;\n        keepalive 16;",
            GOOD_HEADERS,
        ),
        write(&a.path().join("2"), "nginx.conf", &demo),
        fixable(&a.path().join("3")),
    ];
    confs.push(conf(
        &a.path().join("4"),
        "        server unix:/run/x.sock;",
        "            proxy_read_timeout 20s;",
    ));
    for c in confs {
        let ours = reflex()
            .arg("parse")
            .arg(&c)
            .output()
            .expect("reflex parse");
        assert!(
            ours.status.success(),
            "{}",
            String::from_utf8_lossy(&ours.stderr)
        );
        let theirs = std::process::Command::new(crate::harness::venv_bin("crossplane"))
            .arg("parse")
            .arg(&c)
            .output()
            .expect("crossplane");
        let ours: Value = serde_json::from_slice(&ours.stdout).expect("our json");
        let theirs: Value = serde_json::from_slice(&theirs.stdout).expect("crossplane json");
        assert_eq!(ours, theirs, "{}", c.display());
    }
}
