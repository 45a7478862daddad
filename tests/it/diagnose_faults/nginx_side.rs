//! Faults on nginx's side of the connection (its connection slots, its temp files: the backend
//! is fine), and upstream failures no named cause reads: a group whose servers nginx marked
//! failed (`no live upstreams`), and a backend answering invalid HTTP. The bad backends are a
//! tiny stdlib-Python TCP server (`RAW_PY`) that answers every request with fixed bytes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::logs;
use crate::diag_support::{Diagnose, Report, access_lines, get_each, nginx, proxy, wait_until};
use crate::harness::app::App;
use crate::harness::ns::require_root;
use crate::harness::proc::Proc;
use crate::harness::{http, shared_tempdir, venv_bin, write};

/// `python RAW_PY REPLY PORTS N`: N listeners on 127.0.0.1:0, each reads a request and answers
/// the bytes of the file REPLY, then closes; their ports are written to PORTS once listening.
const RAW_PY: &str = r#"import os, socket, sys, threading
reply = open(sys.argv[1], "rb").read()
def answer(c):
    try:
        c.recv(65536)
        c.sendall(reply)
    except OSError:
        pass
    finally:
        c.close()
def serve(s):
    while True:
        c, _ = s.accept()
        threading.Thread(target=answer, args=(c,), daemon=True).start()
ports = []
for _ in range(int(sys.argv[3])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    ports.append(str(s.getsockname()[1]))
    threading.Thread(target=serve, args=(s,), daemon=True).start()
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(",".join(ports))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
threading.Event().wait()
"#;

/// A status line, then a header name with a space and a NUL: nginx says `upstream sent invalid
/// header` and answers 502 (and counts a failure of the server for `max_fails`).
const INVALID_HEADER: &[u8] =
    b"HTTP/1.1 200 OK\r\nBad Header\x00: x\r\nContent-Length: 2\r\n\r\nok";

/// [`RAW_PY`] running in `dir`; killed by PID on drop.
struct RawServers {
    _proc: Proc,
    ports: Vec<u16>,
}

impl RawServers {
    fn start(dir: &Path, reply: &[u8], n: usize) -> RawServers {
        let script = write(dir, "raw.py", RAW_PY);
        let reply_file = dir.join("reply.bin");
        std::fs::write(&reply_file, reply).expect("write reply");
        let ports_file = dir.join("ports");
        let mut cmd = Command::new(venv_bin("python"));
        cmd.arg(&script)
            .arg(&reply_file)
            .arg(&ports_file)
            .arg(n.to_string());
        let err = std::fs::File::create(dir.join("raw.err.log")).expect("create raw.err.log");
        cmd.stdout(Stdio::null()).stderr(err);
        let mut proc = Proc::spawn(cmd, "raw.py").expect("spawn raw.py");
        let up = wait_until(Duration::from_secs(20), || {
            ports_file.exists() || proc.exited().is_some()
        });
        let ports: Vec<u16> = std::fs::read_to_string(&ports_file)
            .unwrap_or_default()
            .split(',')
            .filter_map(|p| p.parse().ok())
            .collect();
        let err = std::fs::read_to_string(dir.join("raw.err.log")).unwrap_or_default();
        assert!(up && ports.len() == n, "raw.py did not start: {err}");
        RawServers { _proc: proc, ports }
    }
}

/// Reads a whole response from `c` (bounded by its read timeout); the status (0 if none).
fn read_status(mut c: TcpStream) -> u16 {
    let mut raw = Vec::new();
    let _ = c.read_to_end(&mut raw);
    http::status_or_zero(&http::parse(&raw))
}

/// Whether nginx has taken in everything its clients on `port` sent: its listening socket's
/// accept queue is empty and no accepted connection has unread bytes (`/proc/net/tcp`: the
/// rx_queue of the LISTEN socket is its accept queue, of an ESTABLISHED one its unread bytes).
fn nginx_caught_up(port: u16) -> bool {
    let local = format!("0100007F:{port:04X}");
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let mut listening = false;
    for f in table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
    {
        if f.get(1) != Some(&local.as_str()) {
            continue;
        }
        let rx = f
            .get(4)
            .and_then(|q| q.split_once(':'))
            .and_then(|(_, rx)| u32::from_str_radix(rx, 16).ok());
        listening |= f.get(3) == Some(&"0A");
        if rx != Some(0) {
            return false;
        }
    }
    listening
}

/// `worker_connections 8`: the listening socket and the channel to the master take two slots.
/// Five clients send all of a request but its last CRLF, and nginx reads that (so they hold
/// their slots: a connection waiting for its first byte would be closed to make room,
/// `reusing connections`). Then each finishes its request for a slow page: every proxied
/// request needs a second slot for its upstream connection, one gets it, the others fail at
/// once (`8 worker_connections are not enough while connecting to upstream`) while the backend
/// never sees them. nginx's own limit, not the backend's fault: a restart cannot help.
#[test]
fn nginx_worker_limits() {
    const CLIENTS: usize = 5;
    let tmp = shared_tempdir();
    let app = App::uvicorn(&tmp.path().join("app")).start();
    let target = format!("http://127.0.0.1:{}", app.port());
    let n = nginx(&tmp.path().join("nginx"), "", &proxy(&target, ""))
        .events("worker_connections 8;")
        .start();
    let port = n.port();
    let timeout = Some(Duration::from_secs(30));
    let head = "GET /slow?s=2 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
    let mut clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect nginx");
            c.set_read_timeout(timeout).expect("timeout");
            c.write_all(head.as_bytes()).expect("send the head");
            c
        })
        .collect();
    let read = wait_until(Duration::from_secs(10), || nginx_caught_up(port));
    assert!(read, "nginx did not read its clients\n{}", logs(&n));
    for c in &mut clients {
        c.write_all(b"\r\n").expect("end the request");
    }
    let codes: Vec<u16> = clients.into_iter().map(read_status).collect();
    let slots = n.error_lines("worker_connections are not enough while connecting to upstream");
    eprintln!(
        "[worker limits] codes {codes:?}, {} slot errors",
        slots.len()
    );
    // nginx answers 500, not 502: the upstream connection never got a socket.
    assert!(
        codes.contains(&200) && codes.contains(&500) && !slots.is_empty(),
        "codes {codes:?}\n{}",
        logs(&n)
    );
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .run(tmp.path());
    r.expect_top("nginx_worker_limits", Some(false), &logs(&n));
}

/// A response larger than nginx's memory buffers, to a client nginx cannot send it to as fast
/// as the backend answers (`limit_rate`, as for a slow client): nginx spills it to
/// `proxy_temp_path`, whose parent directory is root's and 0700. The master (root) creates the
/// temp directory and gives it to the workers' user, who cannot reach it: `open()
/// "…/0000000001" failed (13: Permission denied) while reading upstream`, and the client gets
/// a cut-off 200. The backend answered in full: a restart cannot help. Small responses (kept in
/// memory) are fine, and once the directory is reachable the same request is served whole.
#[test]
fn nginx_temp_file_unwritable() {
    use std::os::unix::fs::PermissionsExt;
    const BODY: usize = 1 << 20;
    require_root("nginx workers running as nobody");
    let tmp = shared_tempdir();
    let app = App::uvicorn(&tmp.path().join("app")).start();
    let private = tmp.path().join("private");
    std::fs::create_dir(&private).expect("mkdir");
    let chmod = |mode| {
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    chmod(0o700);
    let extra = format!(
        "    client_max_body_size 2m;\n    client_body_buffer_size 2m;\n    proxy_buffer_size 4k;\n    proxy_buffers 2 4k;\n    proxy_busy_buffers_size 4k;\n    limit_rate 512k;\n    proxy_temp_path {}/proxy_temp;\n",
        private.display()
    );
    let target = format!("http://127.0.0.1:{}", app.port());
    let n = nginx(&tmp.path().join("nginx"), "", &proxy(&target, &extra)).start();
    assert_eq!(get_each(n.port(), &["/", "/health"]), [200; 2]);
    // POST /echo sends the body back.
    let body = vec![b'x'; BODY];
    let echo = || {
        let r = http::request(
            n.port(),
            "POST",
            "/echo",
            Some(&body),
            Duration::from_secs(30),
        );
        r.map(|r| (r.status, r.body.len()))
            .map_err(|e| e.to_string())
    };
    let needle = "failed (13: Permission denied) while reading upstream";
    let got = echo();
    eprintln!("[temp file] response (status, body bytes): {got:?}");
    let denied = n.error_lines(needle);
    assert!(
        !denied.is_empty() && denied[0].contains("open() \""),
        "{got:?}\n{}",
        logs(&n)
    );
    assert!(
        got.as_ref().map_or(true, |&(_, len)| len < BODY),
        "the response should be cut off: {got:?}"
    );
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .run(tmp.path());
    r.expect_top("nginx_temp_file_unwritable", Some(false), &logs(&n));
    // The same request with the directory reachable by the workers: served whole.
    chmod(0o755);
    assert_eq!(echo(), Ok((200, BODY)), "{}", logs(&n));
    assert_eq!(n.error_lines(needle).len(), denied.len(), "{}", logs(&n));
}

/// `upstream pair` of two servers that both answer an invalid header: with the default
/// `max_fails=1` each is marked failed after its first 502 (`upstream server temporarily
/// disabled`), and the next requests get 502 with `no live upstreams` without nginx trying
/// either. No named cause reads invalid headers, so the group-level finding ranks first and
/// reports the first failures.
#[test]
fn no_live_upstreams() {
    let tmp = shared_tempdir();
    let raw = RawServers::start(&tmp.path().join("raw"), INVALID_HEADER, 2);
    let upstream = format!(
        "upstream pair {{\n    server 127.0.0.1:{};\n    server 127.0.0.1:{};\n}}\n",
        raw.ports[0], raw.ports[1]
    );
    let n = nginx(
        &tmp.path().join("nginx"),
        &upstream,
        &proxy("http://pair", ""),
    )
    .start();
    // Well within fail_timeout (10s): both servers fail once, then neither is tried.
    assert_eq!(get_each(n.port(), &["/", "/", "/", "/"]), [502; 4]);
    let (invalid, none_live) = (
        n.error_lines("upstream sent invalid header"),
        n.error_lines("no live upstreams while connecting to upstream"),
    );
    assert!(invalid.len() == 2 && none_live.len() == 2, "{}", logs(&n));
    let r = Diagnose::new(&n.conf()).run(tmp.path());
    r.expect_top("no_live_upstreams", Some(false), &logs(&n));
    let top = r.top().expect("a top finding");
    assert_eq!(top["upstream"], "pair", "{}", r.explain());
    let msg = top["message"].as_str().unwrap_or("");
    assert!(msg.contains("invalid_response"), "{}", r.explain());
}

/// One backend answering an invalid header: 502 `upstream sent invalid header`, a class no
/// named cause reads. reflex must not call it healthy nor guess: the catch-all finding, with
/// the actual error-log line as evidence and no restart.
#[test]
fn unexplained_upstream_errors() {
    let r = unexplained(INVALID_HEADER, "upstream sent invalid header", 502, " 502 ");
    let msg = r.top().and_then(|t| t["message"].as_str()).unwrap_or("");
    assert!(msg.contains("invalid_response"), "{}", r.explain());
}

/// Another protocol on the backend's port (an SSH banner): nginx logs `upstream sent no valid
/// HTTP/1.0 header` and passes the bytes on as an HTTP/0.9 response (status `009` in its access
/// log, no status line for the client). The probe reads the same non-HTTP bytes, which are not
/// TLS: not `upstream_protocol_mismatch` ("the backend expects TLS", fix `https://`), but the
/// catch-all with the lines.
#[test]
fn unexplained_upstream_errors_another_protocol() {
    let banner = b"SSH-2.0-OpenSSH_9.2p1\r\n";
    let r = unexplained(banner, "upstream sent no valid HTTP/1.0 header", 0, " 009 ");
    assert!(
        !r.kinds().contains(&"upstream_protocol_mismatch"),
        "{}",
        r.explain()
    );
}

/// A backend answering `reply` to every request; three requests, each answered `status` (0: no
/// HTTP response), logged with `access` in the access log and `needle` in the error log; then
/// `reflex diagnose`: the catch-all must rank first, quoting an actual error-log line.
fn unexplained(reply: &[u8], needle: &str, status: u16, access: &str) -> Report {
    let tmp = shared_tempdir();
    let raw = RawServers::start(&tmp.path().join("raw"), reply, 1);
    let target = format!("http://127.0.0.1:{}", raw.ports[0]);
    let n = nginx(&tmp.path().join("nginx"), "", &proxy(&target, "")).start();
    let codes = get_each(n.port(), &["/", "/health", "/"]);
    let lines = n.error_lines(needle);
    let logged = wait_until(Duration::from_secs(5), || {
        access_lines(&n)
            .iter()
            .filter(|l| l.contains(access))
            .count()
            == 3
    });
    assert!(
        codes == [status; 3] && lines.len() == 3 && logged,
        "codes {codes:?}\n{}",
        logs(&n)
    );
    let r = Diagnose::new(&n.conf()).run(tmp.path());
    r.expect_top("unexplained_upstream_errors", Some(false), &logs(&n));
    let evidence: Vec<&str> = r
        .top()
        .and_then(|t| t["evidence"].as_array())
        .map(|a| a.iter().filter_map(|e| e.as_str()).collect())
        .unwrap_or_default();
    let quoted = format!("error.log: {}", lines[0]);
    assert!(
        evidence.contains(&quoted.as_str()),
        "the evidence should quote {}\n{}",
        lines[0],
        r.explain()
    );
    r
}
