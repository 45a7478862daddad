//! The window against real files: rotation, zones, the future, formats without a time.

use super::*;
use crate::parse::logs::access_log::Escape;

/// 2026-12-01 11:20:00 UTC: the end of every window here.
const END: i64 = 1_796_124_000;

fn window(zone: TimeZone) -> Window {
    Window {
        seconds: 900,
        end_s: Some(END),
        zone,
    }
}

/// An error-log line `ago` seconds before END, in `zone`'s local time.
fn error_line(ago: i64, zone: &TimeZone, uri: &str) -> String {
    let t = jiff::Timestamp::from_second(END - ago)
        .expect("ts")
        .to_zoned(zone.clone());
    format!(
        "{} [error] 1#1: *1 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: _, request: \"GET {uri} HTTP/1.1\", upstream: \"http://127.0.0.1:47399{uri}\", host: \"x\"\n",
        t.strftime("%Y/%m/%d %H:%M:%S")
    )
}

fn uris(r: &WindowRead) -> Vec<String> {
    r.logs.errors.iter().filter_map(|e| e.uri.clone()).collect()
}

#[test]
fn a_just_rotated_log_is_read_with_its_predecessor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("error.log");
    std::fs::write(&log, "").expect("write");
    let utc = TimeZone::UTC;
    let old = [
        error_line(3600, &utc, "/old"),
        error_line(400, &utc, "/a"),
        error_line(100, &utc, "/b"),
    ]
    .concat();
    std::fs::write(dir.path().join("error.log.1"), old).expect("write");
    let r = read(std::slice::from_ref(&log), &[], window(utc.clone()));
    assert_eq!(uris(&r), ["/a", "/b"]);
    assert!(
        r.notes.iter().any(|n| n.contains("error.log.1")),
        "{:?}",
        r.notes
    );
    assert_eq!(r.logs.from_ms, (END as u64 - 900) * 1000);
    assert_eq!(r.logs.to_ms, END as u64 * 1000);
    // A current file that starts inside the window: the rotated one holds the start.
    std::fs::write(&log, error_line(60, &utc, "/c")).expect("write");
    let r = read(std::slice::from_ref(&log), &[], window(utc.clone()));
    assert_eq!(uris(&r), ["/a", "/b", "/c"]);
    // A compressed predecessor is named, not read.
    std::fs::remove_file(dir.path().join("error.log.1")).expect("rm");
    std::fs::write(dir.path().join("error.log.1.gz"), b"\x1f\x8b").expect("write");
    let r = read(std::slice::from_ref(&log), &[], window(utc));
    assert_eq!(uris(&r), ["/c"]);
    assert!(
        r.notes.iter().any(|n| n.contains("error.log.1.gz")),
        "{:?}",
        r.notes
    );
}

#[test]
fn the_error_log_is_read_in_nginxs_zone_not_ours() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("error.log");
    let tokyo = zone::parse_tz("Asia/Tokyo").expect("tzdb");
    std::fs::write(
        &log,
        [
            error_line(300, &tokyo, "/t"),
            error_line(5000, &tokyo, "/old"),
        ]
        .concat(),
    )
    .expect("write");
    let r = read(std::slice::from_ref(&log), &[], window(tokyo.clone()));
    assert_eq!(uris(&r), ["/t"]);
    assert_eq!(r.logs.errors[0].at_ms, (END as u64 - 300) * 1000);
    // Read as UTC, Tokyo's lines are 9 h in the future: dropped and said, never "recent".
    let r = read(std::slice::from_ref(&log), &[], window(TimeZone::UTC));
    assert!(uris(&r).is_empty());
    assert!(
        r.notes.iter().any(|n| n.contains("dated after")),
        "{:?}",
        r.notes
    );
}

#[test]
fn the_access_logs_offset_calibrates_the_error_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokyo = zone::parse_tz("Asia/Tokyo").expect("tzdb");
    let err = dir.path().join("error.log");
    std::fs::write(&err, error_line(120, &tokyo, "/t")).expect("write");
    let acc = dir.path().join("access.log");
    let t = jiff::Timestamp::from_second(END - 120)
        .expect("ts")
        .to_zoned(tokyo);
    std::fs::write(
        &acc,
        format!(
            "127.0.0.1 - - [{}] \"GET /t HTTP/1.1\" 502 157 \"-\" \"curl\"\n",
            t.strftime("%d/%b/%Y:%H:%M:%S %z")
        ),
    )
    .expect("write");
    let src = AccessSource {
        path: acc,
        format: AccessFormat::combined(),
    };
    // Our zone is wrong (UTC), nginx's access log says +0900.
    let r = read(&[err], &[src], window(TimeZone::UTC));
    assert_eq!(uris(&r), ["/t"]);
    assert_eq!(r.logs.requests.len(), 1);
    assert!(r.notes.iter().any(|n| n.contains("+09")), "{:?}", r.notes);
    assert!(
        r.unavailable
            .iter()
            .any(|u| u.how.contains("$upstream_addr")),
        "combined lacks the upstream fields: {:?}",
        r.unavailable
    );
}

#[test]
fn msec_formats_are_windowed_and_formats_without_time_are_read_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acc = dir.path().join("m.log");
    let line = |t: i64, st: u16| {
        format!("{t}.123 127.0.0.1 \"GET /x HTTP/1.1\" {st} 127.0.0.1:1 {st} 0.001\n")
    };
    std::fs::write(
        &acc,
        [line(END - 3 * 86_400, 499), line(END - 30, 502)].concat(),
    )
    .expect("write");
    let fmt = AccessFormat::compile(
        r#"$msec $remote_addr "$request" $status $upstream_addr $upstream_status $upstream_header_time"#,
        Escape::Default,
    )
    .expect("compiles");
    let src = AccessSource {
        path: acc.clone(),
        format: fmt,
    };
    let r = read(&[], &[src], window(TimeZone::UTC));
    assert_eq!(
        r.logs.requests.iter().map(|q| q.status).collect::<Vec<_>>(),
        [502]
    );
    let untimed = AccessSource {
        path: acc,
        format: AccessFormat::compile(r#"$msec_x $remote_addr "$request" $status $upstream_addr $upstream_status $upstream_header_time"#, Escape::Default).expect("compiles"),
    };
    let r = read(&[], &[untimed], window(TimeZone::UTC));
    assert_eq!(r.logs.requests.len(), 2, "no time field: the whole file");
    assert!(
        r.unavailable.iter().any(|u| u.why.contains("whole file")),
        "{:?}",
        r.unavailable
    );
}

#[test]
fn empty_and_garbled_logs_offline_do_not_break_the_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty.err");
    std::fs::write(&empty, "").expect("write");
    let garbled = dir.path().join("garbled.err");
    std::fs::write(&garbled, "9999/99/99 99:99:99 [error] x\n\u{0}\u{ff}\n").expect("write");
    let acc = dir.path().join("empty.log");
    std::fs::write(&acc, "").expect("write");
    let offline = Window {
        seconds: i64::MAX,
        end_s: None,
        zone: TimeZone::UTC,
    };
    let src = AccessSource {
        path: acc,
        format: AccessFormat::combined(),
    };
    let r = read(&[empty, garbled], &[src], offline);
    assert!(r.logs.errors.is_empty() && r.logs.requests.is_empty());
    assert_eq!((r.logs.from_ms, r.logs.to_ms), (0, 0));
}
