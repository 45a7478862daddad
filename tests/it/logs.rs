//! `reflex logs` end to end: a real nginx proxies to a dead port and logs with an extended
//! format; the real binary summarises the access and error logs it wrote.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::harness::nginx::{Nginx, free_port};
use crate::harness::{http, reflex, tempdir, write};

const EXT: &str = "'$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \
                   \"$http_referer\" \"$http_user_agent\" $upstream_addr $upstream_status \
                   $upstream_connect_time $upstream_header_time $upstream_response_time $request_time'";

/// Runs `reflex logs ARGS --format json`; returns the parsed output.
fn logs_json(args: &[&str]) -> Value {
    let out = run(args, true);
    assert!(
        out.status.success(),
        "reflex logs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json output")
}

fn run(args: &[&str], json: bool) -> Output {
    let mut cmd = reflex();
    cmd.arg("logs").args(args);
    if json {
        cmd.args(["--format", "json"]);
    }
    cmd.output().expect("run reflex")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn dead_upstream_counts_502_and_connect_refused() {
    let dir = tempdir();
    let dead = free_port();
    let ext_log = dir.path().join("logs/ext.log");
    let nginx = Nginx::builder(dir.path())
        .http(&format!(
            "log_format ext {EXT};\naccess_log {} ext;",
            ext_log.display()
        ))
        .server(&format!(
            "location / {{ proxy_pass http://127.0.0.1:{dead}; }}\n\
             location /static/ {{ root {}; }}",
            dir.path().display()
        ))
        .start();
    // Not upstream failures: nginx's own `open() "…" failed (2: …)` for missing files.
    for f in ["a.png", "b.png"] {
        let r = http::get(nginx.port(), &format!("/static/{f}"));
        assert_eq!(http::status_or_zero(&r), 404);
    }
    const N: usize = 7;
    for i in 0..N {
        let r = http::get(nginx.port(), &format!("/api/item/{i}?q=1"));
        assert_eq!(http::status_or_zero(&r), 502);
    }
    http::get(nginx.port(), "/slow").ok();
    nginx.wait_access(N + 3);
    let v = logs_json(&[
        s(&ext_log),
        s(&nginx.error_log()),
        "--nginx-conf",
        s(&nginx.conf()),
    ]);
    let files = v["files"].as_array().expect("files");
    assert_eq!(files[0]["kind"], "access");
    assert_eq!(
        files[0]["format"], "ext",
        "picked from the config's access_log"
    );
    assert_eq!(files[1]["kind"], "error");
    assert_eq!(v["access"]["requests"], N as u64 + 3);
    assert_eq!(v["access"]["status_502"], N as u64 + 1);
    assert_eq!(v["access"]["malformed"], 0);
    assert_eq!(v["errors"]["classes"]["connect_refused"], N as u64 + 1);
    // The messages no class covers are counted by shape, with an example.
    assert_eq!(v["errors"]["unclassified"], 2);
    let top = &v["errors"]["unclassified_top"][0];
    assert_eq!(top["count"], 2);
    assert_eq!(
        top["shape"],
        "open() \"…\" failed (2: No such file or directory)"
    );
    assert!(
        top["example"]
            .as_str()
            .is_some_and(|e| e.contains("/static/a.png")),
        "{top}"
    );
    let addr = format!("127.0.0.1:{dead}");
    let up = v["access"]["upstreams"]
        .as_array()
        .expect("upstreams")
        .iter()
        .find(|u| u["addr"] == addr.as_str())
        .unwrap_or_else(|| panic!("no upstream {addr} in {}", v["access"]["upstreams"]));
    assert_eq!(up["attempts"], N as u64 + 1);
    assert_eq!(up["status_502"], N as u64 + 1);
    let err_up = &v["errors"]["upstreams"][0];
    assert_eq!(err_up["addr"], addr.as_str());
    assert_eq!(err_up["classes"]["connect_refused"], N as u64 + 1);
    // Paths without query strings; `/api/item/N` are distinct paths.
    let failing = v["access"]["failing"].as_array().expect("failing");
    assert!(failing.iter().any(|f| f["uri"] == "/slow"));
    assert!(
        failing
            .iter()
            .all(|f| !f["uri"].as_str().unwrap_or("?").contains('?'))
    );

    // The text report names the same things.
    let text = run(
        &[
            s(&ext_log),
            s(&nginx.error_log()),
            "--nginx-conf",
            s(&nginx.conf()),
        ],
        false,
    );
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("connect_refused"), "{text}");
    assert!(text.contains(&addr), "{text}");
    assert!(
        text.contains("2  open() \"…\" failed (2: No such file or directory)"),
        "{text}"
    );
}

#[test]
fn malformed_lines_are_counted_and_skipped() {
    let dir = tempdir();
    let good = include_str!("../fixtures/logs/ext.log");
    let mut text = String::new();
    for (i, line) in good.lines().enumerate() {
        text.push_str(line);
        text.push('\n');
        if i % 5 == 0 {
            text.push_str("this is not an access log line\n");
        }
    }
    text.push_str("127.0.0.1 - - [21/Nov/2026:13:14:47 +0000] \"GET / HTTP/1.1\" 200 2 \"-\"\n");
    text.push_str(&"x".repeat(3 << 20));
    text.push('\n');
    let path = write(dir.path(), "access.log", &text);
    let conf = crate::harness::repo().join("tests/fixtures/logs/nginx.conf");
    let v = logs_json(&[s(&path), "--nginx-conf", s(&conf), "--log-format", "ext"]);
    assert_eq!(v["access"]["requests"], 23);
    // 5 inserted, one truncated line, one over-long line.
    assert_eq!(v["access"]["malformed"], 5 + 1 + 1);
    assert_eq!(v["access"]["status_502"], 15);
    assert_eq!(v["files"][0]["lines"], 23 + 7);
}

#[test]
fn since_reads_only_the_window() {
    let dir = tempdir();
    let now = jiff::Timestamp::now();
    let mut text = String::new();
    // 20 000 old lines (2 h ago), then 10 recent ones.
    let old = (now - jiff::SignedDuration::from_hours(2)).strftime("%d/%b/%Y:%H:%M:%S +0000");
    let recent = (now - jiff::SignedDuration::from_secs(60)).strftime("%d/%b/%Y:%H:%M:%S +0000");
    for i in 0..20_010 {
        let (t, st) = if i < 20_000 {
            (old.to_string(), 200)
        } else {
            (recent.to_string(), 502)
        };
        text.push_str(&format!(
            "10.0.0.1 - - [{t}] \"GET /x/{i} HTTP/1.1\" {st} 5 \"-\" \"ua\"\n"
        ));
    }
    let path = write(dir.path(), "access.log", &text);
    let v = logs_json(&[s(&path), "--since", "15m", "--log-format", "combined"]);
    assert_eq!(v["access"]["requests"], 10);
    assert_eq!(v["access"]["status_502"], 10);
    assert_eq!(v["since_seconds"], 900);
    let read = v["files"][0]["bytes_read"].as_u64().expect("bytes");
    assert!(
        read < text.len() as u64 / 4,
        "read {read} of {} bytes",
        text.len()
    );
}

#[test]
fn errors_exit_2() {
    let dir = tempdir();
    let out = run(&[s(&dir.path().join("missing.log"))], false);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.log"));
    let path = write(dir.path(), "a.log", "x\n");
    let out = run(&[s(&path), "--since", "soon"], false);
    assert_eq!(out.status.code(), Some(2));
    let out = run(
        &[s(&path), "--log-format", "nope", "--nginx-conf", s(&path)],
        false,
    );
    assert_eq!(out.status.code(), Some(2));
}
