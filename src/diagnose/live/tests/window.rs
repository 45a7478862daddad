//! Findings that depend on what is, and is not, in the window: stale restart counters, old OOM
//! kills, undated application-log lines, a busy backend's full queue.

use super::*;
use crate::model::evidence::OomKill;

/// The window starts at 10 000 s after the epoch in these scenarios.
const START_MS: u64 = 10_000_000;

fn windowed(upstream: &str) -> S {
    let mut s = S::new(upstream);
    s.logs.from_ms = START_MS;
    s.logs.to_ms = START_MS + 900_000;
    s
}

fn down(s: &mut S) {
    s.evidence.listeners = Fact::Known(Vec::new());
    s.evidence.backends = Fact::Known(Vec::new());
    s.logs.errors = vec![err(E::ConnectRefused, Some(111), "127.0.0.1:8000", "/")];
}

#[test]
fn a_stale_restart_counter_is_not_a_crash_loop() {
    // `systemctl stop` after two crashes long ago: NRestarts survives, the unit is dead.
    let mut s = windowed("127.0.0.1:8000");
    down(&mut s);
    s.evidence.units = Fact::Known(vec![UnitState {
        active_state: "inactive".into(),
        sub_state: "dead".into(),
        main_pid: 0,
        active_enter_ms: 1_000,
        inactive_enter_ms: 2_000,
        ..unit(5)
    }]);
    let d = s.run();
    assert_eq!(d[0].kind, "backend_down", "{d:#?}");
    assert!(d[0].restart_helps);
    assert!(d.iter().all(|x| x.kind != "backend_crash_loop"), "{d:#?}");
}

#[test]
fn current_restart_evidence_is_a_crash_loop() {
    let states = [
        ("failed", "failed", "start-limit-hit", 0, 2_000),
        ("failed", "failed", "exit-code", 0, START_MS + 5_000),
        ("activating", "auto-restart", "exit-code", 0, 0),
        ("active", "running", "success", START_MS + 60_000, 0),
    ];
    for (active, sub, result, active_enter_ms, inactive_enter_ms) in states {
        let mut s = windowed("127.0.0.1:8000");
        down(&mut s);
        s.evidence.units = Fact::Known(vec![UnitState {
            active_state: active.into(),
            sub_state: sub.into(),
            result: result.into(),
            active_enter_ms,
            inactive_enter_ms,
            ..unit(3)
        }]);
        let d = s.run();
        assert_eq!(d[0].kind, "backend_crash_loop", "{active}/{sub}: {d:#?}");
        assert!(!d[0].restart_helps);
    }
}

fn oom(at_ms: u64, pid: i32, memcg: Option<&str>) -> OomKill {
    OomKill {
        at_ms: Some(at_ms),
        pid,
        comm: "python3".into(),
        memcg: memcg.map(str::to_string),
        line: format!("Memory cgroup out of memory: Killed process {pid} (python3)"),
    }
}

#[test]
fn only_this_backends_oom_kills_inside_the_window_count() {
    let scenario = |kills: Vec<OomKill>, cgroup: Option<&str>| {
        let mut s = windowed("127.0.0.1:8000").with_http(
            "upstream app { server 127.0.0.1:8000; } server { location / { proxy_pass http://app; } }",
        );
        s.evidence.kernel.oom_kills = Fact::Known(kills);
        s.evidence.backends = Fact::Known(vec![BackendProcesses {
            cgroup: cgroup.map(str::to_string),
            ..procs(proc(100, 'S', (10, 12)))
        }]);
        s.logs.errors = vec![err(E::PrematurelyClosed, None, "127.0.0.1:8000", "/")];
        s.kinds()
    };
    let app = Some("/system.slice/app.service");
    // Three days ago, in the same cgroup: not this incident.
    assert_eq!(
        scenario(vec![oom(5_000, 42, app)], app),
        ["unexplained_upstream_errors"]
    );
    // Now, but another service's python.
    assert_eq!(
        scenario(
            vec![oom(START_MS + 1, 42, Some("/system.slice/other.service"))],
            app
        ),
        ["unexplained_upstream_errors"]
    );
    // Now, in the backend's cgroup.
    assert_eq!(
        scenario(vec![oom(START_MS + 1, 42, app)], app),
        ["worker_killed"]
    );
    // Now, in its unit's cgroup, with no process left to read a cgroup from.
    assert_eq!(
        scenario(vec![oom(START_MS + 1, 42, app)], None),
        ["worker_killed"]
    );
}

#[test]
fn an_oom_kill_named_by_the_backends_log_counts() {
    let mut s = windowed("127.0.0.1:8000").with_http(
        "upstream app { server 127.0.0.1:8000; } server { location / { proxy_pass http://app; } }",
    );
    s.evidence.kernel.oom_kills = Fact::Known(vec![oom(START_MS + 1, 4242, None)]);
    s.evidence.app_logs = vec![app_log(&[
        "[2026-11-21 13:00:00 +0000] [7] [ERROR] Worker (pid:4242) was sent SIGKILL! Perhaps out of memory?",
    ])];
    s.logs.errors = vec![err(E::PrematurelyClosed, None, "127.0.0.1:8000", "/")];
    let d = s.run();
    assert_eq!(d[0].kind, "worker_killed");
    assert!(d[0].message.contains("OOM"), "{}", d[0].message);
}

#[test]
fn an_undated_concurrency_line_needs_503s_in_the_window() {
    let mut s = windowed("127.0.0.1:8000");
    s.evidence.app_logs = vec![app_log(&["WARNING:  Exceeded concurrency limit."])];
    s.logs.requests = vec![req(
        200,
        "/",
        vec![attempt("127.0.0.1:8000", Some(200), Some(0), Some(1))],
    )];
    assert_eq!(
        s.run(),
        Vec::<Diagnosis>::new(),
        "a line of any age, no 503"
    );
    s.logs.requests.push(req(
        503,
        "/",
        vec![attempt("127.0.0.1:8000", Some(503), Some(0), Some(1))],
    ));
    let d = s.run();
    assert_eq!(d[0].kind, "backend_concurrency_limit");
    assert!(d[0].confidence < 0.95, "undated: less sure");
}

#[test]
fn a_busy_backend_with_a_full_tcp_backlog_is_not_hung() {
    // uvicorn --backlog 2 spinning on a CPU-bound handler: state R, CPU rising, queue 3/2,
    // nginx times out connecting, the probe cannot connect either.
    let mut s = S::new("127.0.0.1:8000");
    s.evidence.backends = Fact::Known(vec![procs(proc(100, 'R', (10, 40)))]);
    s.evidence.listeners = Fact::Known(vec![listener("127.0.0.1:8000", 3, 2)]);
    s.evidence.kernel.listen_overflows = Fact::Known((10, 12));
    s.evidence.probes.push(probe(
        "127.0.0.1:8000",
        ProbeOutcome::ConnectTimeout { after_ms: 1500.0 },
    ));
    s.logs.errors = (0..17)
        .map(|_| err(E::ConnectTimedOut, Some(110), "127.0.0.1:8000", "/"))
        .collect();
    let d = s.run();
    assert_eq!(
        d.iter().map(|x| x.kind).collect::<Vec<_>>(),
        ["listen_backlog_full"]
    );
    assert!(!d[0].restart_helps);
    assert!(
        d[0].evidence.iter().any(|e| e.contains("not stuck")),
        "{d:#?}"
    );
    // The same queue with the process stopped: hung, a restart helps.
    s.evidence.backends = Fact::Known(vec![procs(proc(100, 'T', (40, 40)))]);
    let d = s.run();
    assert_eq!(d[0].kind, "backend_hung", "{d:#?}");
    assert!(d[0].restart_helps);
}
