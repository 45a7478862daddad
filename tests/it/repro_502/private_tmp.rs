//! `unix_socket_private_tmp` for real, in the nspawn lab's systemd 252 with Debian's nginx: a
//! unit with `PrivateTmp=yes` binds `/tmp/app.sock` in its own /tmp, so the container's nginx,
//! proxying to `unix:/tmp/app.sock`, finds nothing there (`(2: No such file or directory)`,
//! 502) while the backend answers in its own mount namespace. The fixed unit binds
//! `/run/app/app.sock` (`RuntimeDirectory=app`), which both see: 200.
//!
//! The backend is a real uvicorn, Debian's in the container (`systemd::UVICORN`). reflex runs
//! on the host, on the unit file through the container's root and on a copy of the container's
//! /etc/nginx (its includes are absolute: read in place, they would name the host's files).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::check::{assert_no_problems, reflex_check_args};
use crate::harness::ns::Wrap;
use crate::harness::tempdir;
use crate::systemd::{Lab, OK_APP, UVICORN};

/// `get.py TARGET`: prints the HTTP status of `GET /` at TARGET (`http://…` or `unix:PATH`),
/// 0 when there is no HTTP answer (refused, missing socket).
const GET_PY: &str = r#"import socket, sys, urllib.error, urllib.request
t = sys.argv[1]
try:
    if t.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(t[5:])
        s.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        print(int(s.recv(64).split()[1]))
    else:
        print(urllib.request.urlopen(t, timeout=5).status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print(0)
"#;

const DEADLINE: Duration = Duration::from_secs(30);

/// The unit `NAME.service` running uvicorn on `sock`, with `more` [Service] lines.
fn unit(name: &str, sock: &str, more: &str) -> String {
    format!(
        "[Unit]\nDescription=reflex private tmp {name}\n[Service]\n\
         ExecStart={UVICORN} okapp:app --uds {sock}\nWorkingDirectory=/srv\n\
         PrivateTmp=yes\nRestart=always\n{more}"
    )
}

/// A site on 127.0.0.1:`port` proxying to `sock`.
fn site(port: u16, sock: &str) -> String {
    format!(
        "server {{\n    listen 127.0.0.1:{port};\n    location / {{\n        proxy_pass http://unix:{sock}:;\n        proxy_set_header Host $host;\n    }}\n}}\n"
    )
}

/// `get.py TARGET` in the container, in the mount namespace of container pid `ns` if given.
fn get(lab: &Lab, target: &str, ns: Option<u32>) -> u16 {
    let pid = ns.map(|p| p.to_string());
    let mut args = vec![];
    if let Some(p) = &pid {
        args.extend(["nsenter", "-t", p, "-m"]);
    }
    args.extend(["python3", "/srv/get.py", target]);
    lab.exec(&args).trim().parse().unwrap_or(0)
}

/// Polls `get` until it answers `want`; what it answered last.
fn poll(lab: &Lab, target: &str, ns: Option<u32>, want: impl Fn(u16) -> bool) -> u16 {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let code = get(lab, target, ns);
        if want(code) || Instant::now() > deadline {
            return code;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts `NAME.service` and serves `site` as /etc/nginx/conf.d/reflex.conf (reloaded).
fn deploy(lab: &Lab, name: &str, unit_text: &str, site_text: &str) -> u32 {
    lab.write(&format!("/etc/systemd/system/{name}.service"), unit_text);
    lab.write("/etc/nginx/conf.d/reflex.conf", site_text);
    lab.exec(&["systemctl", "daemon-reload"]);
    lab.exec(&["systemctl", "start", &format!("{name}.service")]);
    lab.exec(&["systemctl", "reload", "nginx.service"]);
    lab.wait_unit(name, "running", |u| {
        u.sub_state == "running" && u.main_pid != 0
    })
    .main_pid
}

/// The container's /etc/nginx copied under `dest`, its `/etc/nginx/` paths pointed at the copy
/// and its absolute symlinks resolved inside the container. The copy's nginx.conf.
fn copy_nginx_conf(lab: &Lab, dest: &Path) -> PathBuf {
    let to = dest.join("etc/nginx");
    copy_tree(
        lab,
        &lab.root.join("etc/nginx"),
        &to,
        &format!("{}/", to.display()),
    );
    to.join("nginx.conf")
}

fn copy_tree(lab: &Lab, from: &Path, to: &Path, prefix: &str) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read the container's /etc/nginx") {
        let e = e.expect("dir entry");
        let mut src = e.path();
        if let Ok(target) = std::fs::read_link(&src) {
            src = match target.strip_prefix("/") {
                Ok(inside) => lab.root.join(inside),
                Err(_) => from.join(target),
            };
        }
        let dst = to.join(e.file_name());
        if src.is_dir() {
            copy_tree(lab, &src, &dst, prefix);
        } else {
            let bytes = std::fs::read(&src).expect("read");
            let bytes = match String::from_utf8(bytes) {
                Ok(text) => text.replace("/etc/nginx/", prefix).into_bytes(),
                Err(e) => e.into_bytes(),
            };
            std::fs::write(&dst, bytes).expect("write");
        }
    }
}

#[test]
fn unix_socket_private_tmp_in_a_real_systemd() {
    let lab = Lab::up_with("");
    std::fs::create_dir_all(lab.root.join("srv")).expect("mkdir /srv");
    lab.write("/srv/okapp.py", OK_APP);
    lab.write("/srv/get.py", GET_PY);
    let error_log =
        || std::fs::read_to_string(lab.root.join("var/log/nginx/error.log")).unwrap_or_default();
    let tmp = tempdir();

    // Broken: the socket is in the unit's own /tmp.
    let broken_unit = unit("app-tmp", "/tmp/app.sock", "");
    let pid = deploy(&lab, "app-tmp", &broken_unit, &site(8081, "/tmp/app.sock"));
    let own = poll(&lab, "unix:/tmp/app.sock", Some(pid), |c| c == 200);
    assert_eq!(own, 200, "the backend answers in its own namespace");
    let url = "http://127.0.0.1:8081/";
    let first = poll(&lab, url, None, |c| c != 0);
    let codes = [first, get(&lab, url, None), get(&lab, url, None)];
    let log = error_log();
    assert_eq!(codes, [502; 3], "{log}");
    assert!(
        log.lines()
            .any(|l| l
                .contains("connect() to unix:/tmp/app.sock failed (2: No such file or directory)")),
        "{log}"
    );
    let broken_conf = copy_nginx_conf(&lab, &tmp.path().join("broken"));
    let broken_unit_file = lab.root.join("etc/systemd/system/app-tmp.service");

    // Fixed: the socket in /run/app, which nginx sees too.
    lab.exec(&["systemctl", "stop", "app-tmp.service"]);
    let fixed_unit = unit("app-run", "/run/app/app.sock", "RuntimeDirectory=app\n");
    deploy(
        &lab,
        "app-run",
        &fixed_unit,
        &site(8082, "/run/app/app.sock"),
    );
    let url = "http://127.0.0.1:8082/";
    let first = poll(&lab, url, None, |c| c == 200);
    let codes = [first, get(&lab, url, None), get(&lab, url, None)];
    assert_eq!(codes, [200; 3], "{}", error_log());
    let fixed_conf = copy_nginx_conf(&lab, &tmp.path().join("fixed"));
    let fixed_unit_file = lab.root.join("etc/systemd/system/app-run.service");

    let kind = "unix_socket_private_tmp";
    let check = |label: &str, conf: &Path, unit_file: &Path| {
        let args = [
            "--no-discover".to_string(),
            "--unit".to_string(),
            unit_file.display().to_string(),
        ];
        reflex_check_args(label, conf, &args, &Wrap::None)
    };
    let mut problems = check("broken", &broken_conf, &broken_unit_file).problems(kind, true);
    problems.extend(check("fixed", &fixed_conf, &fixed_unit_file).problems(kind, false));
    assert_no_problems(&problems);
}
