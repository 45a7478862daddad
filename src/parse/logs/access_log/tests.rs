//! Table tests with real lines written by nginx 1.22.1 (tests/fixtures/logs/nginx.conf):
//! `combined`, an extended format with the upstream variables unquoted, and the same with
//! `escape=json`.

use super::*;

const EXT: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \
                   \"$http_referer\" \"$http_user_agent\" $upstream_addr $upstream_status \
                   $upstream_connect_time $upstream_header_time $upstream_response_time $request_time";

pub(super) fn ext(escape: Escape) -> AccessFormat {
    AccessFormat::compile(EXT, escape).expect("compile")
}

fn list(l: Option<UpstreamList<'_>>) -> Vec<String> {
    l.expect("present")
        .map(|i| String::from_utf8_lossy(i.value).into_owned())
        .collect()
}

#[test]
fn combined_real_lines() {
    let f = AccessFormat::combined();
    let mut spans = Vec::new();
    let line = br#"127.0.0.1 - - [21/Nov/2026:13:14:46 +0000] "GET /refused HTTP/1.1" 502 157 "http://ref.example/\x22x\x22" "Mozilla/5.0 \x22quoted\x22 \x5C test""#;
    let r = f.parse(line, &mut spans).expect("parse");
    assert_eq!(r.remote_addr(), Some(&b"127.0.0.1"[..]));
    assert_eq!(r.status(), Some(502));
    assert_eq!(r.body_bytes_sent(), Some(157));
    assert_eq!(r.time(), Some(1_795_266_886));
    let req = r.request().expect("request");
    assert_eq!(
        (req.method, req.uri, req.proto),
        (&b"GET"[..], &b"/refused"[..], &b"HTTP/1.1"[..])
    );
    assert_eq!(
        r.http("referer"),
        Some(&br"http://ref.example/\x22x\x22"[..])
    );
    assert_eq!(
        r.http("user_agent"),
        Some(&br"Mozilla/5.0 \x22quoted\x22 \x5C test"[..])
    );
    assert_eq!(r.upstream_addr().map(|_| ()), None);

    let line = br#"127.0.0.1 - - [21/Nov/2026:13:14:47 +0000] "GARBAGE" 400 157 "-" "-""#;
    let r = f.parse(line, &mut spans).expect("parse");
    assert_eq!(r.status(), Some(400));
    assert_eq!(r.request().map(|q| q.method), Some(&b"GARBAGE"[..]));
    let line = br#"127.0.0.1 - - [21/Nov/2026:13:14:47 +0000] "GET /ok?q=a,b%20c HTTP/1.1" 200 2 "-" "tab\x09here\x01\xC3\xA9""#;
    let r = f.parse(line, &mut spans).expect("parse");
    assert_eq!(r.request().map(|q| q.path()), Some(&b"/ok"[..]));
}

#[test]
fn extended_real_lines() {
    let f = ext(Escape::Default);
    let mut spans = Vec::new();
    // A retry: the first server refused, the second answered.
    let line = br#"127.0.0.1 - - [21/Nov/2026:13:14:47 +0000] "GET /retry HTTP/1.1" 200 2 "http://ref.example/\x22x\x22" "Mozilla/5.0 \x22quoted\x22 \x5C test" 127.0.0.1:19099, 127.0.0.1:19005 502, 200 -, 0.000 -, 0.000 0.000, 0.000 0.001"#;
    let r = f.parse(line, &mut spans).expect("parse");
    assert_eq!(r.status(), Some(200));
    assert_eq!(
        list(r.upstream_addr()),
        ["127.0.0.1:19099", "127.0.0.1:19005"]
    );
    assert_eq!(list(r.upstream_status()), ["502", "200"]);
    assert_eq!(list(r.upstream_connect_time()), ["-", "0.000"]);
    assert_eq!(list(r.upstream_header_time()), ["-", "0.000"]);
    assert_eq!(list(r.upstream_response_time()), ["0.000", "0.000"]);
    assert_eq!(r.request_time_ms(), Some(1));

    // A read timeout: 504 after proxy_read_timeout 1s.
    let line = br#"127.0.0.1 - - [21/Nov/2026:13:14:47 +0000] "GET /hang HTTP/1.1" 504 167 "http://ref.example/\x22x\x22" "Mozilla/5.0 \x22quoted\x22 \x5C test" 127.0.0.1:19001 504 0.001 - 1.002 1.001"#;
    let r = f.parse(line, &mut spans).expect("parse");
    assert_eq!(list(r.upstream_addr()), ["127.0.0.1:19001"]);
    assert_eq!(list(r.upstream_header_time()), ["-"]);
    assert_eq!(r.request_time_ms(), Some(1001));

    // No upstream at all.
    let line =
        br#"127.0.0.1 - - [21/Nov/2026:13:14:47 +0000] "GARBAGE" 400 157 "-" "-" - - - - - 0.000"#;
    let r = f.parse(line, &mut spans).expect("parse");
    assert_eq!(list(r.upstream_addr()), ["-"]);
    assert_eq!(r.status(), Some(400));

    // A unix socket, and `no live upstreams` (the group's name as the address).
    let line = br#"127.0.0.1 - - [21/Nov/2026:13:14:47 +0000] "GET /pair HTTP/1.1" 502 157 "-" "-" pair 502 - - 0.000 0.000"#;
    let r = f.parse(line, &mut spans).expect("parse");
    assert_eq!(list(r.upstream_addr()), ["pair"]);
}

#[test]
fn group_separator() {
    let f = ext(Escape::Default);
    let mut spans = Vec::new();
    let line = br#"::1 - - [21/Nov/2026:13:14:47 +0000] "GET / HTTP/1.1" 200 2 "-" "-" 10.0.0.1:80, 10.0.0.2:80 : unix:/run/b.sock 502, 504 : 200 0.001, - : 0.000 -, - : 0.002 0.001, 1.000 : 0.002 1.004"#;
    let r = f.parse(line, &mut spans).expect("parse");
    let addrs: Vec<_> = r.upstream_addr().expect("addr").collect();
    assert_eq!(addrs.len(), 3);
    assert_eq!(addrs[2].value, b"unix:/run/b.sock");
    assert!(addrs[2].new_group && !addrs[1].new_group);
    assert_eq!(list(r.upstream_status()), ["502", "504", "200"]);
    assert_eq!(r.request_time_ms(), Some(1004));
}

#[test]
fn json_escape_real_lines() {
    let f = ext(Escape::Json);
    let mut spans = Vec::new();
    let line = br#"127.0.0.1 -  [21/Nov/2026:13:14:47 +0000] "GET /refused HTTP/1.1" 502 157 "http://ref.example/\"x\"" "Mozilla/5.0 \"quoted\" \\ test" 127.0.0.1:19099 502 - - 0.000 0.000"#;
    let r = f.parse(line, &mut spans).expect("parse");
    assert_eq!(r.named("remote_user"), Some(&b""[..]));
    assert_eq!(r.http("referer"), Some(&br#"http://ref.example/\"x\""#[..]));
    assert_eq!(
        r.http("user_agent"),
        Some(&br#"Mozilla/5.0 \"quoted\" \\ test"#[..])
    );
    assert_eq!(r.status(), Some(502));
    assert_eq!(list(r.upstream_addr()), ["127.0.0.1:19099"]);
    // Unset variables are empty with escape=json.
    let line = br#"127.0.0.1 -  [21/Nov/2026:13:14:47 +0000] "GARBAGE" 400 157 "" ""      0.000"#;
    let r = f.parse(line, &mut spans).expect("parse");
    assert_eq!(r.upstream_addr().map(Iterator::count), Some(0));
    assert_eq!(r.request_time_ms(), Some(0));
    assert_eq!(r.status(), Some(400));
}

#[test]
fn whole_fixtures_parse() {
    let cases = [
        (
            AccessFormat::combined(),
            include_str!("../../../../tests/fixtures/logs/combined.log"),
        ),
        (
            ext(Escape::Default),
            include_str!("../../../../tests/fixtures/logs/ext.log"),
        ),
        (
            ext(Escape::Json),
            include_str!("../../../../tests/fixtures/logs/ext-json.log"),
        ),
    ];
    let mut spans = Vec::new();
    for (f, text) in &cases {
        for line in text.lines() {
            let r = f
                .parse(line.as_bytes(), &mut spans)
                .unwrap_or_else(|e| panic!("{line}: {e}"));
            assert!(r.status().is_some(), "{line}");
            assert!(r.time().is_some(), "{line}");
        }
    }
    // combined does not match the extended lines: the user agent must end the line.
    let ext_line = cases[1].1.lines().next().expect("line");
    assert!(
        AccessFormat::combined()
            .parse(ext_line.as_bytes(), &mut spans)
            .is_err()
    );
}

#[test]
fn malformed_lines_are_errors() {
    let f = ext(Escape::Default);
    let mut spans = Vec::new();
    for line in [
        &b""[..],
        b"garbage",
        b"127.0.0.1 - - [21/Nov/2026:13:14:47 +0000] \"GET / HTTP/1.1",
        b"127.0.0.1 - - [21/Nov/2026:13:14:47 +0000] \"GET / HTTP/1.1\" 200",
    ] {
        assert!(
            f.parse(line, &mut spans).is_err(),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
    let r = f
        .parse(b"x - - [bad] \"\" abc - \"\" \"\" - - - - - -", &mut spans)
        .expect("splits");
    assert_eq!(
        (r.status(), r.time(), r.request_time_ms()),
        (None, None, None)
    );
}

#[test]
fn partial_split() {
    let f = ext(Escape::Default);
    let mut spans = Vec::new();
    let line =
        br#"127.0.0.1 - - [21/Nov/2026:13:14:47 +0000] "GET / HTTP/1.1" 200 2 and then garbage"#;
    let status = f.index_of(Var::Status).expect("status");
    let r = f
        .parse_prefix(line, &mut spans, status + 1)
        .expect("prefix");
    assert_eq!(r.status(), Some(200));
    assert!(f.parse(line, &mut spans).is_err());
}

#[test]
fn compile_errors_and_forms() {
    assert_eq!(
        AccessFormat::compile("$a$b", Escape::Default).map(|_| ()),
        Err(FormatError::Adjacent {
            first: "a".into(),
            second: "b".into()
        })
    );
    let f = AccessFormat::compile("[${status}] $request_time$", Escape::None).expect("compile");
    assert_eq!(f.names().collect::<Vec<_>>(), ["status", "request_time"]);
    let mut spans = Vec::new();
    let r = f.parse(b"[200] 0.5$", &mut spans).expect("parse");
    assert_eq!((r.status(), r.request_time_ms()), (Some(200), Some(500)));
    assert!(AccessFormat::compile_named("$a", "xml").is_err());
    assert_eq!(f.to_string(), "[${status}] ${request_time}$");
}

#[test]
fn millis_forms() {
    assert_eq!(millis(b"0.000"), Some(0));
    assert_eq!(millis(b"12.345"), Some(12_345));
    assert_eq!(millis(b"3"), Some(3000));
    assert_eq!(millis(b"0.5"), Some(500));
    assert_eq!(millis(b"-"), None);
    assert_eq!(millis(b""), None);
    assert_eq!(millis(b".5"), None);
    // Found by the fuzzer: 9551615 s does not fit in a u32 of milliseconds.
    assert_eq!(millis(b"9551615.0"), None);
    assert_eq!(millis(b"4294967.295"), Some(u32::MAX));
}

/// The formats the scanner is checked on: the built-in ones, with every escape, and two
/// custom ones (one JSON).
pub(super) fn test_formats() -> Vec<AccessFormat> {
    vec![
        AccessFormat::combined(),
        ext(Escape::Default),
        ext(Escape::Json),
        ext(Escape::None),
        AccessFormat::compile("[${status}] $request_time$", Escape::None).expect("compile"),
        AccessFormat::compile(
            "{\"t\":\"$time_iso8601\",\"s\":$status,\"u\":\"$upstream_addr\",\"r\":\"$request\"}",
            Escape::Json,
        )
        .expect("compile"),
    ]
}

/// Lines built from the real fixtures with random edits (delimiters inserted, bytes dropped,
/// lines cut or padded past a 64-byte block): `rounds` variants of each.
pub(super) fn mutated_lines(rounds: usize) -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = ["combined.log", "ext.log", "ext-json.log"]
        .iter()
        .flat_map(|f| {
            std::fs::read(format!(
                "{}/tests/fixtures/logs/{f}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .expect("fixture")
            .split(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect::<Vec<_>>()
        })
        .collect();
    lines.push(br#"{"t":"2026-11-21T13:14:47+00:00","s":502,"u":"127.0.0.1:1, 127.0.0.1:2","r":"GET /\"x\" HTTP/1.1"}"#.to_vec());
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let noise = b" \"]\\,:-[x0\x00";
    let mut out = Vec::new();
    for base in &lines {
        for round in 0..rounds {
            let mut l = base.clone();
            for _ in 0..round % 4 {
                match rand(4) {
                    0 if !l.is_empty() => {
                        let at = rand(l.len());
                        l.remove(at);
                    }
                    1 => {
                        let at = rand(l.len() + 1);
                        l.insert(at, noise[rand(noise.len())]);
                    }
                    2 => l.truncate(rand(l.len() + 1)),
                    _ => {
                        let at = rand(l.len() + 1);
                        let pad = vec![b'a'; rand(130)];
                        l.splice(at..at, pad);
                    }
                }
            }
            out.push(l);
        }
    }
    out
}

/// The block scanner and the per-field search give the same spans or the same error, for
/// every prefix length.
#[test]
fn scanner_agrees_with_the_per_field_search() {
    let formats = test_formats();
    let mut cases = 0;
    for l in mutated_lines(200) {
        for f in &formats {
            let slow = f.clone().without_scanner();
            for n in [f.len(), 1, f.len() / 2, f.len().saturating_sub(1)] {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                let fast = f.parse_prefix(&l, &mut a, n).map(|_| ());
                let want = slow.parse_prefix(&l, &mut b, n).map(|_| ());
                assert_eq!(fast, want, "{f} on {:?}", String::from_utf8_lossy(&l));
                if fast.is_ok() {
                    assert_eq!(a, b, "{f} on {:?}", String::from_utf8_lossy(&l));
                }
                cases += 1;
            }
        }
    }
    assert!(cases > 50_000, "{cases}");
}

#[test]
fn formats_with_many_delimiters_still_split() {
    // Nine distinct first bytes: more than the scanner takes (4), so each field is searched.
    let f =
        AccessFormat::compile("$a|$b;$c,$d/$e=$f+$g*$h~$i&$j", Escape::Default).expect("compile");
    let mut spans = Vec::new();
    let r = f.parse(b"1|2;3,4/5=6+7*8~9&10", &mut spans).expect("parse");
    let got: Vec<_> = (0..10).map(|i| r.field(i).expect("field")).collect();
    assert_eq!(
        got,
        [
            &b"1"[..],
            b"2",
            b"3",
            b"4",
            b"5",
            b"6",
            b"7",
            b"8",
            b"9",
            b"10"
        ]
    );
}

/// The list iterator against a byte-at-a-time reference, on random lists of every length.
#[test]
fn upstream_lists_split_like_the_reference() {
    fn reference(mut b: &[u8]) -> Vec<(Vec<u8>, bool)> {
        let (mut out, mut group) = (Vec::new(), false);
        'items: while !b.is_empty() {
            for i in 0..b.len() {
                let sep = match b[i] {
                    b',' => Some((i + 1 + usize::from(b.get(i + 1) == Some(&b' ')), false)),
                    b' ' if b[i + 1..].starts_with(b": ") => Some((i + 3, true)),
                    _ => None,
                };
                if let Some((next, new_group)) = sep {
                    out.push((b[..i].to_vec(), group));
                    (b, group) = (&b[next..], new_group);
                    continue 'items;
                }
            }
            out.push((b.to_vec(), group));
            break;
        }
        out
    }
    let mut rand = random_bytes(7, b"0123456789.:, -x");
    for len in 0..40 {
        for _ in 0..300 {
            let b = rand(len);
            let got: Vec<(Vec<u8>, bool)> = UpstreamList::new(&b)
                .map(|i| (i.value.to_vec(), i.new_group))
                .collect();
            assert_eq!(got, reference(&b), "{:?}", String::from_utf8_lossy(&b));
        }
    }
}

/// The one-load separator test against the byte-by-byte one, at every space of random lines
/// (near both ends too).
#[test]
fn list_separator_agrees_with_the_byte_test() {
    use super::split::{list_separator, list_separator_bytes};
    let mut rand = random_bytes(11, b" ,:x");
    let mut spaces = 0;
    for len in 1..24 {
        for _ in 0..400 {
            let line = rand(len);
            for i in (0..len).filter(|&i| line[i] == b' ') {
                let want = list_separator_bytes(&line, i);
                assert_eq!(
                    list_separator(&line, i),
                    want,
                    "{:?} at {i}",
                    String::from_utf8_lossy(&line)
                );
                spaces += 1;
            }
        }
    }
    assert!(spaces > 10_000, "{spaces}");
}

/// A deterministic generator of byte strings of a given length from `alphabet` (an LCG), so
/// failures reproduce.
fn random_bytes(seed: u64, alphabet: &[u8]) -> impl FnMut(usize) -> Vec<u8> + '_ {
    let mut seed = seed;
    move |len| {
        (0..len)
            .map(|_| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                alphabet[(seed >> 33) as usize % alphabet.len()]
            })
            .collect()
    }
}
