//! Workers that die under requests for other reasons than gunicorn's `--timeout`: recycled by
//! `--max-requests`, and killed by the kernel's OOM killer in a memory-limited cgroup.

use std::time::{Duration, Instant};

use super::logs;
use crate::diag_support::{Diagnose, MemCgroup, ModuleApp, nginx, proxy, wait_until};
use crate::harness::http;
use crate::harness::ns::{Wrap, require_root};

/// gunicorn's UvicornWorker with `--max-requests 5` behind nginx's upstream keep-alive, and
/// concurrent POSTs (never retried by nginx): a worker leaving after its 5th request closes
/// connections nginx is about to reuse, and some POSTs get 502 (`recv() failed (104)` or
/// `upstream prematurely closed`), with `Maximum request limit of 5 exceeded` in its log.
#[test]
fn worker_recycled_by_max_requests() {
    let tmp = crate::harness::shared_tempdir();
    let args = [
        "-k",
        "uvicorn.workers.UvicornWorker",
        "-w",
        "1",
        "--max-requests",
        "5",
    ];
    let app = ModuleApp::gunicorn(&tmp.path().join("app"), "app", &[], &args, &Wrap::None);
    let upstream = format!(
        "upstream backend {{\n    server 127.0.0.1:{};\n    keepalive 8;\n}}\n",
        app.port()
    );
    let extra = "    proxy_http_version 1.1;\n    proxy_set_header Connection \"\";\n";
    let n = nginx(
        &tmp.path().join("nginx"),
        &upstream,
        &proxy("http://backend", extra),
    )
    .start();
    let port = n.port();
    // Rounds of 6 concurrent POST loops until some 502s (bounded in rounds and time).
    let started = Instant::now();
    let mut failed = 0;
    for _ in 0..10 {
        let codes: Vec<u16> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..6)
                .map(|_| {
                    s.spawn(move || {
                        (0..20)
                            .map(|_| http::status_or_zero(&http::post(port, "/echo", b"x")))
                            .collect::<Vec<u16>>()
                    })
                })
                .collect();
            hs.into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        failed += codes.iter().filter(|&&c| c == 502).count();
        if failed >= 2 || started.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    assert!(
        failed > 0,
        "no 502 in {:?}\n{}",
        started.elapsed(),
        logs(&n)
    );
    let recycled = wait_until(Duration::from_secs(10), || {
        app.log_text()
            .contains("Maximum request limit of 5 exceeded")
    });
    assert!(recycled, "{}", app.log_text());
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .app_log(&app.stderr_log())
        .run(tmp.path());
    r.expect_top("worker_killed", Some(false), &logs(&n));
    let msg = r.top().and_then(|t| t["message"].as_str()).unwrap_or("");
    assert!(msg.contains("max-requests"), "{}", r.explain());
}

/// gunicorn in a cgroup limited to 200 MB; `/alloc?mb=400` makes its worker allocate past it
/// and the kernel's OOM killer kills the worker mid-request: nginx sees the connection close
/// (502) and the kernel log names the killed PID and the cgroup.
#[test]
fn worker_oom_killed_in_a_memory_cgroup() {
    require_root("a memory cgroup and /dev/kmsg");
    let cg =
        MemCgroup::new(200 << 20).expect("a cgroup v1 memory controller at /sys/fs/cgroup/memory");
    let tmp = crate::harness::shared_tempdir();
    let args = [
        "-k",
        "uvicorn.workers.UvicornWorker",
        "-w",
        "1",
        "--timeout",
        "60",
    ];
    let app = ModuleApp::gunicorn(
        &tmp.path().join("app"),
        "mem_app",
        &["mem_app.py"],
        &args,
        &cg.wrap(),
    );
    let target = format!("http://127.0.0.1:{}", app.port());
    let n = nginx(
        &tmp.path().join("nginx"),
        "",
        &proxy(&target, "    proxy_read_timeout 30s;\n"),
    )
    .start();
    let code = http::status_or_zero(&http::request(
        n.port(),
        "GET",
        "/alloc?mb=400",
        None,
        Duration::from_secs(40),
    ));
    assert_eq!(code, 502, "{}\n{}", logs(&n), app.log_text());
    assert!(
        wait_until(Duration::from_secs(10), || app
            .log_text()
            .contains("Perhaps out of memory")),
        "{}",
        app.log_text()
    );
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .app_log(&app.stderr_log())
        .run(tmp.path());
    r.expect_top("worker_killed", Some(false), &logs(&n));
    let top = r.top().cloned().unwrap_or_default();
    let cites_kernel = top["evidence"].as_array().is_some_and(|e| {
        e.iter().any(|l| {
            l.as_str()
                .is_some_and(|l| l.starts_with("kernel:") && l.contains("Killed process"))
        })
    });
    assert!(
        cites_kernel,
        "the kernel's OOM line for this cgroup ({})\n{}",
        cg.name(),
        r.explain()
    );
}
