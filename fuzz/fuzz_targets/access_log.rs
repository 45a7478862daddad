//! Fuzz target: arbitrary bytes as an access-log line for `combined`, an extended format with
//! the upstream variables, and the same with `escape=json`; and as a format string. Parsing
//! must return Ok or Err without panicking, field spans must be in order inside the line, and
//! every typed accessor must be callable. The line is also fed (twice, so the caches of the
//! last time and upstreams are hit) into the `reflex logs` summary.
//!
//! Differential: the window scanner must split exactly as the per-field search does, for every
//! line of the input: forward (`parse_prefix`) and with the plans that split backward (the
//! summary's, and the last field alone).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use reflex::parse::logs::access_log::{AccessFormat, Escape, Record};
use reflex::parse::logs::summary::{AccessFeeder, AccessSummary, READS};

const EXT: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \
                   \"$http_referer\" \"$http_user_agent\" $upstream_addr $upstream_status \
                   $upstream_connect_time $upstream_header_time $upstream_response_time $request_time";

fn formats() -> &'static [AccessFormat; 3] {
    static F: OnceLock<[AccessFormat; 3]> = OnceLock::new();
    F.get_or_init(|| {
        let ext = |e| AccessFormat::compile(EXT, e).expect("EXT compiles");
        [
            AccessFormat::combined(),
            ext(Escape::Default),
            ext(Escape::Json),
        ]
    })
}

fn exercise(r: &Record<'_>, n: usize) {
    let mut prev = 0usize;
    for i in 0..n {
        if let Some(f) = r.field(i) {
            let start = f.as_ptr() as usize - r.line().as_ptr() as usize;
            assert!(start >= prev && start + f.len() <= r.line().len());
            prev = start + f.len();
        }
    }
    let _ = (
        r.status(),
        r.time(),
        r.request(),
        r.request_time_ms(),
        r.body_bytes_sent(),
    );
    for l in [
        r.upstream_addr(),
        r.upstream_status(),
        r.upstream_response_time(),
    ]
    .into_iter()
    .flatten()
    {
        assert!(l.take(10_000).count() <= r.line().len() + 1);
    }
}

/// Field positions of a split, or its error.
fn outcome(
    r: Result<Record<'_>, reflex::parse::logs::access_log::LineError>,
    n: usize,
) -> Result<Vec<Option<(usize, usize)>>, String> {
    match r {
        Ok(r) => Ok((0..n)
            .map(|i| {
                r.field(i).map(|f| {
                    let s = f.as_ptr() as usize - r.line().as_ptr() as usize;
                    (s, s + f.len())
                })
            })
            .collect()),
        Err(e) => Err(e.to_string()),
    }
}

fn differential(f: &AccessFormat, data: &[u8]) {
    let slow = f.clone().without_scanner();
    let wanted: Vec<usize> = READS.iter().filter_map(|v| f.index_of(*v)).collect();
    let plans = [f.plan(&wanted), f.plan(&[f.len() - 1])];
    let mut spans = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        for n in [f.len(), f.len() / 2, 1] {
            let fast = outcome(f.parse_prefix(line, &mut spans, n), n);
            assert_eq!(fast, outcome(slow.parse_prefix(line, &mut spans, n), n));
        }
        for p in &plans {
            let n = f.len();
            let fast = outcome(f.split(line, &mut spans, p), n);
            let reference = p.clone().without_scanner();
            assert_eq!(fast, outcome(slow.split(line, &mut spans, &reference), n));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let line = data.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut spans = Vec::new();
    for f in formats() {
        differential(f, data);
        let mut sum = AccessSummary::default();
        let mut feeder = AccessFeeder::new(f, None);
        feeder.feed(&mut sum, line);
        feeder.feed(&mut sum, line);
        assert_eq!(sum.total.requests + sum.malformed, 2);
        let _ = (sum.upstreams(), sum.minutes().count(), sum.failing(5));
        if let Ok(r) = f.parse(line, &mut spans) {
            exercise(&r, f.len());
        }
        for n in [1, 5] {
            if let Ok(r) = f.parse_prefix(line, &mut spans, n) {
                exercise(&r, n);
            }
        }
    }
    // The input as a format string, parsing itself.
    if let Ok(text) = std::str::from_utf8(line)
        && let Ok(f) = AccessFormat::compile(text, Escape::None)
        && let Ok(r) = f.parse(line, &mut spans)
    {
        exercise(&r, f.len());
    }
});
