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
        sum.minute(m).add(Some(200));
    }
    sum.minute(0).add(Some(200));
    assert_eq!(sum.minutes.len(), MINUTE_CAP);
    assert_eq!(sum.minutes_dropped, 11);
    assert_eq!(sum.minutes().next().map(|(m, _)| m), Some(10));
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
