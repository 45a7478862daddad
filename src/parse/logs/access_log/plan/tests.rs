//! Plans: which fields they split, that they split them as the full parse does on real
//! lines, that the scanner and the per-field search agree on damaged ones, and what a
//! skipped run does and does not check.

use super::super::tests::{ext, mutated_lines, test_formats};
use super::super::{AccessFormat, Escape, LineError, Var};
use crate::parse::logs::summary::READS;

/// The fields `reflex logs` reads.
fn summary_fields(f: &AccessFormat) -> Vec<usize> {
    READS.iter().filter_map(|v| f.index_of(*v)).collect()
}

/// Field positions of a split, or its error.
fn outcome(
    f: &AccessFormat,
    plan: &super::Plan,
    line: &[u8],
) -> Result<Vec<Option<Vec<u8>>>, LineError> {
    let mut spans = Vec::new();
    let r = f.split(line, &mut spans, plan)?;
    Ok((0..f.len())
        .map(|i| r.field(i).map(<[u8]>::to_vec))
        .collect())
}

#[test]
fn plans_skip_the_longest_run_of_unread_fields() {
    let e = ext(Escape::Default);
    // Forward through `$status` (fields 0..5), backward from `$upstream_addr` (8): the body
    // size, the referer and the user agent are skipped.
    assert_eq!(e.plan(&summary_fields(&e)).bounds(), (5, 8));
    // `combined` ends with fields nobody reads: a prefix split, as before.
    let c = AccessFormat::combined();
    assert_eq!(c.plan(&summary_fields(&c)).bounds(), (5, c.len()));
    let n = e.len();
    assert_eq!(e.plan(&[]).bounds(), (n, n), "nothing wanted: every field");
    assert_eq!(e.plan(&[0]).bounds(), (1, n));
    assert_eq!(
        e.plan(&[n - 1]).bounds(),
        (0, n - 1),
        "the last field alone, backward"
    );
    assert_eq!(e.plan(&[n + 3, 2]).bounds(), (3, n), "out of range ignored");
}

/// On every real line of the fixtures, in every format, for many sets of wanted fields: the
/// plan's fields are the full parse's, and the fields it skips are `None`.
#[test]
fn plans_split_real_lines_as_the_full_parse_does() {
    let cases = [
        (AccessFormat::combined(), "combined.log"),
        (ext(Escape::Default), "ext.log"),
        (ext(Escape::Json), "ext-json.log"),
    ];
    let mut checked = 0;
    for (f, file) in &cases {
        let path = format!("{}/tests/fixtures/logs/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read(path).expect("fixture");
        let n = f.len();
        let mut wanted_sets: Vec<Vec<usize>> = vec![summary_fields(f), vec![], vec![n - 1]];
        wanted_sets.extend((0..n).map(|i| vec![i, n - 1 - i]));
        wanted_sets.extend((0..n).map(|i| vec![0, i]));
        for wanted in &wanted_sets {
            let plan = f.plan(wanted);
            let (head, tail) = plan.bounds();
            for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let mut spans = Vec::new();
                let full: Vec<Vec<u8>> = {
                    let r = f.parse(line, &mut spans).expect("fixture lines parse");
                    (0..n)
                        .map(|i| r.field(i).expect("field").to_vec())
                        .collect()
                };
                let got = outcome(f, &plan, line).expect("plan splits");
                for (i, g) in got.iter().enumerate() {
                    let split = i < head || (tail < n && i >= tail);
                    if split {
                        assert_eq!(g.as_deref(), Some(&full[i][..]), "{f} {wanted:?} field {i}");
                    } else {
                        assert_eq!(g, &None, "{f} {wanted:?} skipped field {i}");
                    }
                }
                for &w in wanted.iter().filter(|&&w| w < n) {
                    assert!(got[w].is_some(), "wanted field {w} split");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "{checked}");
}

/// The scanner and the per-field search give the same spans or the same error, on damaged
/// lines, for the summary's plan and the backward-only one.
#[test]
fn plan_scanner_agrees_with_the_per_field_search() {
    let formats = test_formats();
    let mut cases = 0;
    for l in mutated_lines(150) {
        for f in &formats {
            let slow = f.clone().without_scanner();
            for wanted in [summary_fields(f), vec![f.len() - 1], vec![1, f.len() - 2]] {
                let plan = f.plan(&wanted);
                let fast = outcome(f, &plan, &l);
                let want = outcome(&slow, &plan.clone().without_scanner(), &l);
                assert_eq!(
                    fast,
                    want,
                    "{f} {wanted:?} on {:?}",
                    String::from_utf8_lossy(&l)
                );
                cases += 1;
            }
        }
    }
    assert!(cases > 30_000, "{cases}");
}

/// What a skipped run means: its fields are not checked (a user agent cut short still gives
/// the upstream fields), but it must hold the literals between its fields.
#[test]
fn a_skipped_run_is_not_checked_but_must_fit() {
    let f = ext(Escape::Default);
    let plan = f.plan(&summary_fields(&f));
    let mut spans = Vec::new();
    // A user agent with a raw `" ` in it (as `escape=none` writes): the full parse ends it
    // early and reads the rest of the agent as the upstream fields; the plan reads the
    // upstream fields from the end, right.
    let line = br#"10.0.0.1 - - [21/Nov/2026:13:14:47 +0000] "GET /a HTTP/1.1" 502 157 "-" "evil" agent" 10.0.0.2:8000 502 0.001 - 0.001 0.002"#;
    let r = f.split(line, &mut spans, &plan).expect("plan splits");
    let addr: Vec<&[u8]> = r.upstream_addr().expect("addr").map(|i| i.value).collect();
    assert_eq!(addr, [&b"10.0.0.2:8000"[..]]);
    assert_eq!((r.status(), r.request_time_ms()), (Some(502), Some(2)));
    assert_eq!(r.raw(Var::BodyBytesSent), None, "skipped");
    let full = f.parse(line, &mut spans).expect("full parse splits too");
    assert_ne!(
        full.upstream_addr()
            .and_then(|mut l| l.next())
            .map(|i| i.value),
        Some(&b"10.0.0.2:8000"[..]),
        "the forward split misreads it"
    );
    // The skipped run must hold `$body_bytes_sent "$http_referer" "` at least: here the
    // upstream fields overlap the status's.
    let short = br#"10.0.0.1 - - [21/Nov/2026:13:14:47 +0000] "GET /a HTTP/1.1" 502 " 10.0.0.2:8000 502 - - 0.001 0.002"#;
    assert_eq!(
        f.split(short, &mut spans, &plan).map(|_| ()),
        Err(LineError::Field(7))
    );
    // An upstream list keeps its separators: `, ` and ` : ` are inside the fields.
    let line = br#"::1 - - [21/Nov/2026:13:14:47 +0000] "GET / HTTP/1.1" 200 2 "-" "-" 10.0.0.1:80, 10.0.0.2:80 : unix:/run/b.sock 502, 504 : 200 0.001, - : 0.000 -, - : 0.002 0.001, 1.000 : 0.002 1.004"#;
    let r = f.split(line, &mut spans, &plan).expect("plan splits");
    let statuses: Vec<&[u8]> = r
        .upstream_status()
        .expect("status")
        .map(|i| i.value)
        .collect();
    assert_eq!(statuses, [&b"502"[..], b"504", b"200"]);
    assert_eq!(r.request_time_ms(), Some(1004));
    // Lines that do not end as the format does, or do not start as it does, are errors.
    assert!(f.split(b"", &mut spans, &plan).is_err());
    assert!(
        f.split(b"10.0.0.1 - - [x] \"GET /\" 200", &mut spans, &plan)
            .is_err()
    );
}
