use std::collections::BTreeMap;

use super::*;
use crate::parse::logs::access_log::{AccessFormat, Escape};

const EXT: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \
                   \"$http_referer\" \"$http_user_agent\" $upstream_addr $upstream_status \
                   $upstream_connect_time $upstream_header_time $upstream_response_time $request_time";

fn feed_ext(lines: &[&str], since: Option<i64>) -> AccessSummary {
    let f = AccessFormat::compile(EXT, Escape::Default).expect("compile");
    let mut feeder = AccessFeeder::new(&f, since);
    let mut sum = AccessSummary::default();
    for l in lines {
        feeder.feed(&mut sum, l.as_bytes());
    }
    sum
}

#[test]
fn counts_the_ext_fixture() {
    let text = include_str!("../../../../tests/fixtures/logs/ext.log");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.push("not a line");
    let sum = feed_ext(&lines, None);
    assert_eq!(sum.total.requests, 23);
    assert_eq!(sum.malformed, 1);
    assert_eq!(sum.total.s502, 15);
    assert_eq!(sum.total.s504, 2);
    let ups = sum.upstreams();
    let refused = ups
        .iter()
        .find(|(a, _)| *a == b"127.0.0.1:19099")
        .expect("19099");
    // 2 `/refused`, 1 `/pair`, 1 `/retry` attempt.
    assert_eq!(refused.1.requests, 4);
    assert_eq!(refused.1.s502, 4);
    let ok = ups
        .iter()
        .find(|(a, _)| *a == b"127.0.0.1:19005")
        .expect("19005");
    assert_eq!((ok.1.requests, ok.1.s5xx), (6, 1));
    assert_eq!(sum.slowest()[0].uri, b"/hang");
    assert_eq!(sum.slowest()[0].max_ms, 1001);
    assert_eq!(sum.slowest()[1].uri, b"/backlog");
    let failing = sum.failing(3);
    assert_eq!(failing[0].uri, b"/pair");
    assert_eq!(failing[0].counts.s502, 3);
    let minutes: Vec<_> = sum.minutes().collect();
    assert_eq!(minutes.len(), 1);
    assert_eq!(minutes[0].1.requests, 23);
}

#[test]
fn since_skips_older_lines() {
    let text = include_str!("../../../../tests/fixtures/logs/ext.log");
    let lines: Vec<&str> = text.lines().collect();
    // 13:14:47 and later: drops the three lines at :43 and the one at :46.
    let sum = feed_ext(&lines, Some(1_795_266_887));
    assert_eq!(sum.total.requests, 19);
    assert_eq!(sum.skipped_before, 4);
}

#[test]
fn failing_uris_stay_bounded() {
    let mut sum = AccessSummary::default();
    for i in 0..(URI_CAP * 10) {
        let uri = format!("/u{i}");
        sum.fail(uri.as_bytes(), Some(502));
        sum.fail(b"/hot", Some(502));
    }
    assert!(sum.failing.len() <= URI_CAP);
    let top = sum.failing(1);
    assert_eq!(top[0].uri, b"/hot");
    assert_eq!(top[0].counts.s502, (URI_CAP * 10) as u64);
}

#[test]
fn minutes_stay_bounded() {
    let mut sum = AccessSummary::default();
    for m in 0..(MINUTE_CAP as i64 + 10) {
        sum.minutes.add(m, Some(200));
        sum.minutes.add(m, Some(502));
    }
    // Two lines of a minute older than all kept: both dropped.
    sum.minutes.add(0, Some(200));
    sum.minutes.add(0, Some(200));
    assert_eq!(sum.minutes().count(), MINUTE_CAP);
    assert_eq!(sum.minutes_dropped(), 12);
    sum.minutes.flush();
    assert_eq!(sum.minutes.map.len(), MINUTE_CAP);
    assert_eq!(sum.minutes_dropped(), 12);
    let first = sum.minutes().next().expect("a minute");
    assert_eq!((first.0, first.1.requests, first.1.s502), (10, 2, 1));
}

#[test]
fn error_classes() {
    let text = include_str!("../../../../tests/fixtures/logs/error.log");
    let mut sum = ErrorSummary::default();
    for l in text.lines() {
        sum.feed(l.as_bytes(), None);
    }
    assert_eq!(sum.malformed, 0);
    let classes: BTreeMap<&str, u64> = sum.classes().map(|(c, n)| (c.as_str(), n)).collect();
    assert_eq!(classes["connect_refused"], 5);
    assert_eq!(classes["unix_connect_refused"], 1);
    assert_eq!(classes["no_live_upstreams"], 2);
    assert_eq!(classes["server_temporarily_disabled"], 3);
    let ups = sum.upstreams();
    assert!(ups.iter().any(|(a, _)| *a == b"pair"));
}

#[test]
fn unclassified_messages_are_kept_by_shape() {
    let mut sum = ErrorSummary::default();
    let lines = [
        r#"2026/11/21 13:14:43 [error] 10#10: *5 open() "/var/www/html/a.png" failed (2: No such file or directory), client: 127.0.0.1, server: _, request: "GET /a.png HTTP/1.1", host: "x""#,
        r#"2026/11/21 13:14:44 [error] 10#10: *6 open() "/var/www/html/b.png" failed (2: No such file or directory), client: 127.0.0.1, server: _, request: "GET /b.png HTTP/1.1", host: "x""#,
        r#"2026/11/21 13:14:45 [error] 10#10: *7 directory index of "/var/www/html/" is forbidden, client: 127.0.0.1, server: _, request: "GET / HTTP/1.1", host: "x""#,
        r#"2026/11/21 13:14:45 [notice] 10#10: signal process started"#,
    ];
    for l in lines {
        sum.feed(l.as_bytes(), None);
    }
    let top = sum.unclassified_top(5);
    let shapes: Vec<(String, u64)> = top
        .iter()
        .map(|u| (String::from_utf8_lossy(&u.shape).into_owned(), u.count))
        .collect();
    assert_eq!(
        shapes,
        [
            (
                r#"open() "…" failed (2: No such file or directory)"#.to_string(),
                2
            ),
            (r#"directory index of "…" is forbidden"#.to_string(), 1),
        ]
    );
    assert_eq!(
        top[0].example,
        br#"open() "/var/www/html/a.png" failed (2: No such file or directory)"#
    );
    // Bounded whatever the variety.
    let mut sum = ErrorSummary::default();
    for i in 0..(UNCLASSIFIED_CAP + 10) {
        let l = format!("2026/11/21 13:14:45 [error] 10#10: thing {i} broke");
        sum.feed(l.as_bytes(), None);
    }
    assert_eq!(sum.unclassified_top(usize::MAX).len(), UNCLASSIFIED_CAP);
    assert_eq!(sum.unclassified_other, 10);
}

/// One generated line and what it means, for the reference computation.
struct Gen {
    line: String,
    /// None: a malformed line.
    rec: Option<GenRec>,
}

struct GenRec {
    time: i64,
    status: u16,
    path: String,
    ms: u32,
    /// (address, that attempt's status).
    attempts: Vec<(String, Option<u16>)>,
}

/// A deterministic log in the extended format: retries, upstream groups, requests without
/// an upstream, a unix socket, long addresses that share their first and last 8 bytes, more
/// distinct upstreams than [`UPSTREAM_CAP`], query strings, malformed lines, 25 minutes.
fn generate(n: usize) -> Vec<Gen> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move |k: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % k
    };
    let pool = [
        "10.0.0.11:8000",
        "10.0.0.12:8000",
        "10.0.0.13:8000",
        "unix:/run/app.sock",
        "unix:/run/app/a/backend.sock",
        "unix:/run/app/b/backend.sock",
        "[::1]:8000",
    ];
    let base = 1_795_266_000i64; // 21/Nov/2026:13:00:00 +0000
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        if rnd(100) < 3 {
            out.push(Gen {
                line: format!("garbage line {i}"),
                rec: None,
            });
            continue;
        }
        let time = base + (i as i64) * 3 / 10;
        let status = [200, 200, 200, 200, 200, 200, 502, 504, 500, 404, 499][rnd(11) as usize];
        let pick = |r: u64| pool[r as usize % pool.len()].to_string();
        let kind = rnd(100);
        let attempts: Vec<(String, Option<u16>)> = if kind < 8 {
            vec![(pick(rnd(7)), Some(502)), (pick(rnd(7)), Some(status))]
        } else if kind < 11 {
            vec![(pick(rnd(7)), Some(504)), (pick(rnd(7)), Some(status))]
        } else if kind < 15 {
            vec![("-".to_string(), None)]
        } else if kind < 18 {
            let k = rnd(3000);
            vec![(format!("10.1.{}.{}:8000", k / 256, k % 256), Some(status))]
        } else {
            vec![(pick(rnd(7)), Some(status))]
        };
        let sep = if (8..11).contains(&kind) { " : " } else { ", " };
        let addrs: Vec<&str> = attempts.iter().map(|a| a.0.as_str()).collect();
        let stats: Vec<String> = attempts
            .iter()
            .map(|a| a.1.map_or("-".to_string(), |s| s.to_string()))
            .collect();
        let times: Vec<&str> = attempts.iter().map(|_| "0.001").collect();
        let ms = ((i as u64 * 7919) % 100_000) as u32;
        let path = format!("/api/items/{}", rnd(300));
        let uri = if rnd(3) == 0 {
            format!("{path}?page={}", rnd(9))
        } else {
            path.clone()
        };
        let (h, m, s) = ((time / 3600) % 24, (time / 60) % 60, time % 60);
        let line = format!(
            "10.2.3.{} - - [21/Nov/2026:{h:02}:{m:02}:{s:02} +0000] \"GET {uri} HTTP/1.1\" \
             {status} {} \"-\" \"Mozilla/5.0 (X11) t/{i}\" {} {} {} {} {} {}.{:03}",
            i % 256,
            rnd(5000),
            addrs.join(sep),
            stats.join(sep),
            times.join(sep),
            times.join(sep),
            times.join(sep),
            ms / 1000,
            ms % 1000
        );
        out.push(Gen {
            line,
            rec: Some(GenRec {
                time,
                status,
                path,
                ms,
                attempts,
            }),
        });
    }
    out
}

fn counts_of(c: &mut Counts, st: Option<u16>) {
    c.requests += 1;
    if let Some(s) = st.filter(|s| *s >= 500) {
        c.s5xx += 1;
        c.s502 += u64::from(s == 502);
        c.s504 += u64::from(s == 504);
    }
}

/// The reference's per-URI part: the slowest and the failing.
fn per_uri(
    max_ms: &mut HashMap<String, (u32, i64)>,
    failing: &mut HashMap<String, Counts>,
    r: &GenRec,
) {
    let e = max_ms.entry(r.path.clone()).or_insert((r.ms, r.time));
    if r.ms > e.0 {
        *e = (r.ms, r.time);
    }
    if r.status >= 500 {
        counts_of(failing.entry(r.path.clone()).or_default(), Some(r.status));
    }
}

/// The optimised summary equals a plain computation from the generator's own records.
fn check_against_reference(n: usize, since: Option<i64>) {
    let log = generate(n);
    let lines: Vec<&str> = log.iter().map(|g| g.line.as_str()).collect();
    let sum = feed_ext(&lines, since);

    let mut total = Counts::default();
    let mut malformed = 0;
    let mut skipped = 0;
    let mut ups: Vec<(String, Counts)> = Vec::new();
    let mut without_upstream = 0;
    let mut minutes: BTreeMap<i64, Counts> = BTreeMap::new();
    let mut max_ms: HashMap<String, (u32, i64)> = HashMap::new();
    let mut failing: HashMap<String, Counts> = HashMap::new();
    for g in &log {
        let Some(r) = &g.rec else {
            malformed += 1;
            continue;
        };
        if since.is_some_and(|s| r.time < s) {
            skipped += 1;
            continue;
        }
        counts_of(&mut total, Some(r.status));
        counts_of(
            minutes.entry(r.time.div_euclid(60)).or_default(),
            Some(r.status),
        );
        if r.attempts.len() == 1 && r.attempts[0].0 == "-" {
            without_upstream += 1;
            per_uri(&mut max_ms, &mut failing, r);
            continue;
        }
        for (a, st) in &r.attempts {
            let key = if ups.iter().any(|(k, _)| k == a) || ups.len() < UPSTREAM_CAP {
                a.as_str()
            } else {
                "(other)"
            };
            match ups.iter_mut().find(|(k, _)| k == key) {
                Some((_, c)) => counts_of(c, *st),
                None => {
                    let mut c = Counts::default();
                    counts_of(&mut c, *st);
                    ups.push((key.to_string(), c));
                }
            }
        }
        per_uri(&mut max_ms, &mut failing, r);
    }
    assert!(
        since.is_some() || ups.len() > UPSTREAM_CAP,
        "the cap is exercised"
    );

    assert_eq!(sum.total, total);
    assert_eq!(sum.malformed, malformed);
    assert_eq!(sum.skipped_before, skipped);
    assert_eq!(sum.without_upstream, without_upstream);
    let mut want_ups: Vec<(&[u8], Counts)> = ups.iter().map(|(a, c)| (a.as_bytes(), *c)).collect();
    want_ups.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(b.0)));
    assert_eq!(sum.upstreams(), want_ups);
    assert_eq!(
        sum.minutes().collect::<Vec<_>>(),
        minutes.into_iter().collect::<Vec<_>>()
    );
    assert_eq!(sum.minutes_dropped(), 0);
    let mut slow: Vec<Slow> = max_ms
        .into_iter()
        .map(|(p, (ms, t))| Slow {
            uri: p.into_bytes(),
            max_ms: ms,
            time: Some(t),
        })
        .collect();
    slow.sort_by(|a, b| b.max_ms.cmp(&a.max_ms).then(a.uri.cmp(&b.uri)));
    slow.truncate(SLOWEST);
    assert_eq!(sum.slowest(), &slow[..]);
    let mut fail: Vec<Failing> = failing
        .into_iter()
        .map(|(p, c)| Failing {
            uri: p.into_bytes(),
            counts: c,
            overcount: 0,
        })
        .collect();
    fail.sort_by(|a, b| b.counts.s5xx.cmp(&a.counts.s5xx).then(a.uri.cmp(&b.uri)));
    assert_eq!(sum.failing(usize::MAX), fail);
}

#[test]
fn summary_equals_reference_on_generated_log() {
    check_against_reference(60_000, None);
}

#[test]
fn summary_equals_reference_with_since() {
    check_against_reference(20_000, Some(1_795_266_000 + 700));
}
