//! nginx's time and size values (`ngx_parse_time`, `ngx_parse_size`).

use std::time::Duration;

/// Parses an nginx time: `60`, `60s`, `500ms`, `1m30s`, `1h 30m`; no unit means seconds.
/// Units: ms, s, m, h, d, w, M (30 days), y (365 days).
pub fn parse_time(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let bytes = s.as_bytes();
    let mut total_ms: u128 = 0;
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        if i == bytes.len() {
            break;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return None;
        }
        let n: u128 = s[start..i].parse().ok()?;
        let unit_ms: u128 = match &bytes[i..] {
            [b'm', b's', ..] => {
                i += 2;
                1
            }
            [b's', ..] => {
                i += 1;
                1000
            }
            [b'm', ..] => {
                i += 1;
                60_000
            }
            [b'h', ..] => {
                i += 1;
                3_600_000
            }
            [b'd', ..] => {
                i += 1;
                86_400_000
            }
            [b'w', ..] => {
                i += 1;
                604_800_000
            }
            [b'M', ..] => {
                i += 1;
                2_592_000_000
            }
            [b'y', ..] => {
                i += 1;
                31_536_000_000
            }
            [] | [b' ', ..] => 1000,
            _ => return None,
        };
        total_ms = total_ms.checked_add(n.checked_mul(unit_ms)?)?;
    }
    Some(Duration::from_millis(u64::try_from(total_ms).ok()?))
}

/// Parses an nginx size: `4096`, `4k`, `8K`, `1m`, `1g`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1024),
        b'm' | b'M' => (&s[..s.len() - 1], 1024 * 1024),
        b'g' | b'G' => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// Formats a duration the way one would write it in nginx.conf: `500ms`, `4s`, `2m`.
pub fn format_time(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(60_000) && ms >= 60_000 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let cases = [
            ("60", Some(60_000)),
            ("60s", Some(60_000)),
            ("500ms", Some(500)),
            ("1m30s", Some(90_000)),
            ("1h 30m", Some(5_400_000)),
            ("2d", Some(172_800_000)),
            ("", None),
            ("abc", None),
            ("5x", None),
            ("99999999999999999999999y", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_time(s).map(|d| d.as_millis() as u64), want, "{s:?}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4k"), Some(4096));
        assert_eq!(parse_size("8K"), Some(8192));
        assert_eq!(parse_size("1m"), Some(1 << 20));
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("k"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn formatting() {
        assert_eq!(format_time(Duration::from_millis(500)), "500ms");
        assert_eq!(format_time(Duration::from_secs(4)), "4s");
        assert_eq!(format_time(Duration::from_secs(120)), "2m");
    }
}
