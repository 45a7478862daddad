//! Parser benchmarks for nginx logs: splitting access-log lines (combined and the extended
//! format), the full summary over those lines, and error-log parsing + classification. Short
//! runs: the machine is shared. `cargo bench --bench logs`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use reflex::parse::logs::access_log::{AccessFormat, Escape};
use reflex::parse::logs::error_log;
use reflex::parse::logs::summary::{AccessFeeder, AccessSummary, ErrorSummary};

const EXT: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \
                   \"$http_referer\" \"$http_user_agent\" $upstream_addr $upstream_status \
                   $upstream_connect_time $upstream_header_time $upstream_response_time $request_time";

/// 10 000 extended-format lines built from the real fixture lines, with varied URIs.
fn ext_lines() -> Vec<String> {
    let real: Vec<&str> = include_str!("../tests/fixtures/logs/ext.log")
        .lines()
        .collect();
    (0..10_000)
        .map(|i| real[i % real.len()].replacen(" HTTP/1.1", &format!("/{} HTTP/1.1", i % 500), 1))
        .collect()
}

fn combined_lines() -> Vec<String> {
    let real: Vec<&str> = include_str!("../tests/fixtures/logs/combined.log")
        .lines()
        .collect();
    (0..10_000)
        .map(|i| real[i % real.len()].to_string())
        .collect()
}

fn access(c: &mut Criterion) {
    let ext = AccessFormat::compile(EXT, Escape::Default).expect("compile");
    let combined = AccessFormat::combined();
    let ext_lines = ext_lines();
    let combined_lines = combined_lines();
    let mut g = c.benchmark_group("access_log");
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("split_ext", |b| {
        let mut spans = Vec::new();
        b.iter(|| {
            let mut n = 0u64;
            for l in &ext_lines {
                if let Ok(r) = ext.parse(l.as_bytes(), &mut spans) {
                    n += u64::from(r.status().unwrap_or(0));
                }
            }
            black_box(n)
        })
    });
    g.bench_function("split_combined", |b| {
        let mut spans = Vec::new();
        b.iter(|| {
            let mut n = 0u64;
            for l in &combined_lines {
                if let Ok(r) = combined.parse(l.as_bytes(), &mut spans) {
                    n += u64::from(r.status().unwrap_or(0));
                }
            }
            black_box(n)
        })
    });
    g.bench_function("summary_ext", |b| {
        b.iter(|| {
            let mut sum = AccessSummary::default();
            let mut feeder = AccessFeeder::new(&ext, None);
            for l in &ext_lines {
                feeder.feed(&mut sum, l.as_bytes());
            }
            black_box(sum.total)
        })
    });
    g.finish();
}

fn errors(c: &mut Criterion) {
    let lines: Vec<&str> = include_str!("../tests/fixtures/logs/error.log")
        .lines()
        .collect();
    let mut g = c.benchmark_group("error_log");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("parse_classify", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for l in &lines {
                if let Ok(p) = error_log::parse(l.as_bytes()) {
                    n += p.classify().map_or(0, |c| c.class as usize);
                }
            }
            black_box(n)
        })
    });
    g.bench_function("summary", |b| {
        b.iter(|| {
            let mut sum = ErrorSummary::default();
            for l in &lines {
                sum.feed(l.as_bytes(), None);
            }
            black_box(sum.lines)
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = access, errors
}
criterion_main!(benches);
