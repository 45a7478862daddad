//! Load patterns the repro tests drive through nginx. Every loop is bounded in count and in
//! time, and every request has the client's timeout.

use std::time::{Duration, Instant};

use super::app::App;
use super::http;
use super::nginx::Nginx;

/// Concurrent requests per keep-alive round: as many as the tests' upstream `keepalive 8`
/// caches, so every round reuses idle connections.
pub const PARALLEL: usize = 8;

/// What a run of the keep-alive race pattern saw.
#[derive(Debug, Default)]
pub struct RaceRun {
    pub rounds: usize,
    pub requests: usize,
    /// Client status codes other than 200 (0 = transport error).
    pub failures: Vec<u16>,
    /// (idle gap in ms before the round, failures in the round).
    pub per_round: Vec<(f64, usize)>,
    pub elapsed: Duration,
}

/// Rounds of [`PARALLEL`] concurrent `POST /echo`s through `nginx`, sleeping `gaps_ms[i]` (in
/// turn) after each round, so the next round reuses upstream connections that have idled that
/// long. The concurrent requests finish a few ms apart, which spreads the idle ages around each
/// gap and gives several shots per round. POSTs because nginx does not retry a non-idempotent
/// request on another connection: a keep-alive race reaches the client as 502. Bounded by
/// `max_rounds` and `limit`; with `stop_early`, stops at the first failure or the first race
/// line (`upstream prematurely closed`, `recv() failed (104`) in the error log.
pub fn keepalive_rounds(
    nginx: &Nginx,
    gaps_ms: &[f64],
    max_rounds: usize,
    limit: Duration,
    stop_early: bool,
) -> RaceRun {
    let start = Instant::now();
    let mut run = RaceRun::default();
    let port = nginx.port();
    let mut prev_gap = None;
    while run.rounds < max_rounds && start.elapsed() < limit {
        let codes: Vec<u16> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..PARALLEL)
                .map(|_| s.spawn(move || http::status_or_zero(&http::post(port, "/echo", b"ping"))))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap_or(0)).collect()
        });
        run.requests += codes.len();
        let bad: Vec<u16> = codes.into_iter().filter(|&c| c != 200).collect();
        if let Some(gap) = prev_gap {
            run.per_round.push((gap, bad.len()));
        }
        run.failures.extend(bad);
        let raced = !nginx.error_lines("upstream prematurely closed").is_empty()
            || !nginx.error_lines("recv() failed (104").is_empty();
        if stop_early && (!run.failures.is_empty() || raced) {
            break;
        }
        let gap = gaps_ms[run.rounds % gaps_ms.len()];
        std::thread::sleep(Duration::from_secs_f64(gap / 1000.0));
        prev_gap = Some(gap);
        run.rounds += 1;
    }
    run.elapsed = start.elapsed();
    run
}

/// What a burst against a SIGSTOPped backend saw.
#[derive(Debug)]
pub struct Burst {
    /// Status codes answered while the backend was stopped (0 = transport error).
    pub while_stopped: Vec<u16>,
    /// Status codes answered after SIGCONT.
    pub after_cont: Vec<u16>,
}

/// Stops the backend, sends `n` concurrent GETs, collects what comes back within `hold`,
/// continues the backend and collects the rest (each request bounded by the client timeout).
pub fn burst_while_stopped(nginx: &Nginx, app: &App, n: usize, hold: Duration) -> Burst {
    assert!(app.signal("STOP"), "SIGSTOP the backend");
    let port = nginx.port();
    let (tx, rx) = std::sync::mpsc::channel();
    let workers: Vec<_> = (0..n)
        .map(|_| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let _ = tx.send(http::status_or_zero(&http::get(port, "/")));
            })
        })
        .collect();
    drop(tx);
    let deadline = Instant::now() + hold;
    let mut while_stopped = Vec::new();
    while let Ok(code) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        while_stopped.push(code);
    }
    assert!(app.signal("CONT"), "SIGCONT the backend");
    let after_cont: Vec<u16> = rx.iter().collect();
    for w in workers {
        let _ = w.join();
    }
    Burst {
        while_stopped,
        after_cont,
    }
}
