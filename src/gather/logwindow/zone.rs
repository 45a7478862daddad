//! The time zone nginx writes its error log in. The error log's `2026/12/01 11:18:14` has no
//! zone: nginx formats it with `localtime()` in *its own* environment (`TZ`, which nginx keeps
//! when it clears the rest of its environment, else `/etc/localtime`), not in reflex's. Read the
//! zone from the running master's `/proc/PID/environ`; an access log's `$time_local`, which
//! carries its offset, calibrates it further (see `logwindow::read`).

use std::path::Path;

use jiff::tz::TimeZone;

/// The zone of the nginx master `pid` (its `TZ`), else the system's (`/etc/localtime`), else
/// UTC. Reflex's own `TZ` plays no part: it is not nginx's.
pub fn nginx_zone(pid: Option<i32>) -> TimeZone {
    pid.and_then(|p| std::fs::read(format!("/proc/{p}/environ")).ok())
        .and_then(|env| tz_from_environ(&env))
        .and_then(|tz| parse_tz(&tz))
        .unwrap_or_else(system_zone)
}

/// `/etc/localtime`, the zone a process without `TZ` uses.
pub fn system_zone() -> TimeZone {
    std::fs::read(Path::new("/etc/localtime"))
        .ok()
        .and_then(|data| TimeZone::tzif("localtime", &data).ok())
        .unwrap_or(TimeZone::UTC)
}

/// `TZ=…` from a NUL-separated environment block.
pub fn tz_from_environ(env: &[u8]) -> Option<String> {
    env.split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"TZ="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .filter(|v| !v.is_empty())
}

/// A `TZ` value as glibc reads it: `:Asia/Tokyo` or `Asia/Tokyo` (a tzdb name), `UTC`, or a
/// POSIX rule like `JST-9`.
pub fn parse_tz(tz: &str) -> Option<TimeZone> {
    let name = tz.strip_prefix(':').unwrap_or(tz);
    if let Some(path) = name.strip_prefix('/') {
        let data = std::fs::read(Path::new("/").join(path)).ok()?;
        return TimeZone::tzif(name, &data).ok();
    }
    TimeZone::get(name)
        .ok()
        .or_else(|| TimeZone::posix(name).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tz_values() {
        assert_eq!(
            tz_from_environ(b"PATH=/bin\0TZ=Asia/Tokyo\0HOME=/").as_deref(),
            Some("Asia/Tokyo")
        );
        assert_eq!(tz_from_environ(b"PATH=/bin\0TZ=\0"), None);
        assert_eq!(tz_from_environ(b"garbage"), None);
        let at = jiff::Timestamp::from_second(1_796_123_992).expect("ts");
        for tz in [
            "Asia/Tokyo",
            ":Asia/Tokyo",
            "JST-9",
            "/usr/share/zoneinfo/Asia/Tokyo",
        ] {
            let z = parse_tz(tz).unwrap_or_else(|| panic!("{tz}"));
            assert_eq!(z.to_offset(at).seconds(), 9 * 3600, "{tz}");
        }
        assert!(parse_tz("No/Such_Zone-x").is_none());
    }
}
