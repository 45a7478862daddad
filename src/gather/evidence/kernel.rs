//! Kernel counters and events that explain 502/504s: listen-queue overflows
//! (`/proc/net/netstat`), `net.core.somaxconn`, OOM kills (`/dev/kmsg`), and TCP connections
//! stuck in SYN-SENT (via [`super::sockets::syn_sent`]).
//!
//! The parsers ([`parse_netstat`], [`parse_kmsg_record`], [`oom_kills`]) are pure and take text;
//! the readers around them turn permission problems into [`Fact::Unavailable`].

use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use crate::model::evidence::{Fact, Kernel, OomKill};

/// The `TcpExt` counters that count a full accept queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpExt {
    /// `ListenOverflows`: SYNs or final ACKs that met a full accept queue.
    pub listen_overflows: u64,
    /// `ListenDrops`: everything dropped at a listener (overflows included).
    pub listen_drops: u64,
}

/// Gathers [`Kernel`]: reads `/proc/net/netstat`, sleeps `interval`, reads it again; reads
/// somaxconn, the kernel log's OOM kills and the SYN-SENT counts.
pub fn sample(interval: Duration) -> Kernel {
    let first = tcp_ext();
    sleep(interval);
    let second = tcp_ext();
    let pair = |f: fn(&TcpExt) -> u64| match (&first, &second) {
        (Ok(a), Ok(b)) => Fact::Known((f(a), f(b))),
        (Err(e), _) | (_, Err(e)) => Fact::unavailable(
            "TcpExt counters (/proc/net/netstat)",
            e.clone(),
            "mount /proc of the host's network namespace",
        ),
    };
    Kernel {
        listen_overflows: pair(|t| t.listen_overflows),
        listen_drops: pair(|t| t.listen_drops),
        somaxconn: somaxconn(),
        oom_kills: read_oom_kills(Path::new("/dev/kmsg")),
        syn_sent: super::sockets::syn_sent(),
    }
}

/// The `TcpExt` counters now.
pub fn tcp_ext() -> Result<TcpExt, String> {
    let text = std::fs::read_to_string("/proc/net/netstat")
        .map_err(|e| format!("cannot read /proc/net/netstat: {e}"))?;
    parse_netstat(&text)
        .ok_or_else(|| "no TcpExt ListenOverflows/ListenDrops in /proc/net/netstat".into())
}

/// `net.core.somaxconn`, the cap on every listen backlog.
pub fn somaxconn() -> Fact<u32> {
    let path = "/proc/sys/net/core/somaxconn";
    match std::fs::read_to_string(path) {
        Ok(t) => match t.trim().parse() {
            Ok(n) => Fact::Known(n),
            Err(_) => Fact::unavailable(
                "net.core.somaxconn",
                format!("unexpected `{}`", t.trim()),
                "",
            ),
        },
        Err(e) => Fact::unavailable(
            "net.core.somaxconn",
            format!("{path}: {e}"),
            "mount /proc/sys",
        ),
    }
}

/// `TcpExt: ListenOverflows` and `ListenDrops` from `/proc/net/netstat`, which holds pairs of
/// lines: a header `TcpExt: Name1 Name2 …` and a values line `TcpExt: 1 2 …`.
pub fn parse_netstat(text: &str) -> Option<TcpExt> {
    let mut lines = text.lines();
    while let Some(names) = lines.next() {
        let values = lines.next()?;
        let (Some(names), Some(values)) = (
            names.strip_prefix("TcpExt:"),
            values.strip_prefix("TcpExt:"),
        ) else {
            continue;
        };
        let get = |want: &str| {
            names
                .split_whitespace()
                .zip(values.split_whitespace())
                .find(|(n, _)| *n == want)
                .and_then(|(_, v)| v.parse().ok())
        };
        return Some(TcpExt {
            listen_overflows: get("ListenOverflows")?,
            listen_drops: get("ListenDrops")?,
        });
    }
    None
}

/// One `/dev/kmsg` record: `PRIORITY,SEQ,TIMESTAMP_US,FLAGS[,…];MESSAGE`, followed by
/// continuation lines that start with a space. Returns the time since boot in microseconds
/// and the message.
pub fn parse_kmsg_record(record: &str) -> Option<(u64, &str)> {
    let (prefix, rest) = record.split_once(';')?;
    let ts = prefix.split(',').nth(2)?.parse().ok()?;
    let message = rest.split('\n').next().unwrap_or(rest);
    Some((ts, message))
}

/// The `task_memcg=` of an `oom-kill:` record: the killed task's memory cgroup.
pub fn parse_memcg(message: &str) -> Option<String> {
    let fields = message.trim().strip_prefix("oom-kill:")?;
    fields
        .split(',')
        .find_map(|f| f.strip_prefix("task_memcg="))
        .map(str::to_string)
}

/// An OOM kill named by a kernel log message, either form:
/// `Out of memory: Killed process 1234 (python3) total-vm:…` (also `Memory cgroup out of
/// memory: Killed process …`) or
/// `oom-kill:constraint=CONSTRAINT_NONE,…,task=python3,pid=1234,uid=0`.
pub fn parse_oom(message: &str) -> Option<(i32, String)> {
    if let Some(i) = message.find("Killed process ") {
        let rest = &message[i + "Killed process ".len()..];
        let (pid, rest) = rest.split_once(' ')?;
        let comm = rest.strip_prefix('(')?;
        // comm may itself contain ')' or spaces; the kernel prints `) ` after it.
        let end = comm.find(") ").or_else(|| comm.rfind(')'))?;
        return Some((pid.parse().ok()?, comm[..end].to_string()));
    }
    let fields = message.trim().strip_prefix("oom-kill:")?;
    let field = |k: &str| {
        fields
            .split(',')
            .find_map(|f| f.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
    };
    Some((field("pid")?.parse().ok()?, field("task")?.to_string()))
}

/// The OOM kills in a sequence of kmsg records, one per PID (the kernel logs both forms for one
/// kill). `boot_ms` turns the record's time since boot into ms since the epoch.
pub fn oom_kills<'a>(
    records: impl IntoIterator<Item = &'a str>,
    boot_ms: Option<u64>,
) -> Vec<OomKill> {
    let mut out: Vec<OomKill> = Vec::new();
    for record in records {
        let Some((ts_us, message)) = parse_kmsg_record(record) else {
            continue;
        };
        let Some((pid, comm)) = parse_oom(message) else {
            continue;
        };
        let memcg = parse_memcg(message);
        if let Some(k) = out.iter_mut().find(|k| k.pid == pid && k.comm == comm) {
            // The kernel logs `oom-kill:…task_memcg=…` and `Killed process …` for one kill:
            // the cgroup from the first, the line people know from the second.
            k.memcg = k.memcg.take().or(memcg);
            if message.contains("Killed process") {
                k.line = message.to_string();
            }
            continue;
        }
        out.push(OomKill {
            at_ms: boot_ms.map(|b| b + ts_us / 1000),
            pid,
            comm,
            memcg,
            line: message.to_string(),
        });
    }
    out
}

/// Reads every record in the kernel log buffer (non-blocking, until EAGAIN) and returns its
/// OOM kills.
pub fn read_oom_kills(kmsg: &Path) -> Fact<Vec<OomKill>> {
    let what = "OOM kills (kernel log)";
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(kmsg);
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            let restrict = std::fs::read_to_string("/proc/sys/kernel/dmesg_restrict")
                .map(|s| s.trim() == "1")
                .unwrap_or(false);
            let why = if restrict {
                format!("{}: {e} (kernel.dmesg_restrict = 1)", kmsg.display())
            } else {
                format!("{}: {e}", kmsg.display())
            };
            return Fact::unavailable(what, why, "run as root or with CAP_SYSLOG");
        }
        Err(e) => {
            return Fact::unavailable(
                what,
                format!("{}: {e}", kmsg.display()),
                "run on the host (containers often have no /dev/kmsg), or check `journalctl -k`",
            );
        }
    };
    let mut records = Vec::new();
    // Each read() returns exactly one record; it must fit the buffer (records are < 8 KiB).
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => records.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            // EPIPE: the record we were about to read was overwritten; the next read goes on.
            Err(e) if e.raw_os_error() == Some(nix::libc::EPIPE) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Fact::unavailable(what, format!("reading {}: {e}", kmsg.display()), "");
            }
        }
    }
    let boot_ms = procfs::boot_time_secs().ok().map(|s| s * 1000);
    Fact::Known(oom_kills(records.iter().map(String::as_str), boot_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netstat_counters() {
        let text = "TcpExt: SyncookiesSent SyncookiesRecv ListenOverflows ListenDrops TCPHPHits\n\
                    TcpExt: 0 0 17 19 123\n\
                    IpExt: InNoRoutes InTruncatedPkts\n\
                    IpExt: 0 0\n";
        let want = TcpExt {
            listen_overflows: 17,
            listen_drops: 19,
        };
        let cases: &[(&str, Option<TcpExt>)] = &[
            (text, Some(want)),
            ("IpExt: A B\nIpExt: 1 2\n", None),
            ("TcpExt: ListenOverflows\nTcpExt: 3\n", None),
            (
                "TcpExt: ListenDrops ListenOverflows\nTcpExt: 5 4\n",
                Some(TcpExt {
                    listen_overflows: 4,
                    listen_drops: 5,
                }),
            ),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_netstat(input), *want, "{input}");
        }
        // The real file of this machine parses.
        if let Ok(real) = std::fs::read_to_string("/proc/net/netstat") {
            assert!(parse_netstat(&real).is_some());
        }
    }

    #[test]
    fn kmsg_oom_lines() {
        let cases: &[(&str, Option<(i32, &str)>)] = &[
            (
                "3,1234,5678901234,-;Out of memory: Killed process 4242 (python3) total-vm:1234kB, anon-rss:1000kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:100kB oom_score_adj:0",
                Some((4242, "python3")),
            ),
            (
                "3,1235,5678901300,-;Memory cgroup out of memory: Killed process 77 (gunicorn: work) total-vm:1kB",
                Some((77, "gunicorn: work")),
            ),
            (
                "6,1233,5678901000,-;oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/user.slice,task=uvicorn,pid=999,uid=1000",
                Some((999, "uvicorn")),
            ),
            (
                "6,1,100,-;python3 invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0",
                None,
            ),
            ("6,2,200,-;eth0: link up", None),
            ("garbage without separator", None),
        ];
        for (record, want) in cases {
            let got = parse_kmsg_record(record).and_then(|(_, m)| parse_oom(m));
            assert_eq!(got, want.map(|(p, c)| (p, c.to_string())), "{record}");
        }
    }

    #[test]
    fn oom_kills_dedup_and_time() {
        let records = [
            "6,10,2000000,-;oom-kill:constraint=CONSTRAINT_NONE,task=python3,pid=42,uid=0",
            "3,11,2000500,-;Out of memory: Killed process 42 (python3) total-vm:1kB\n SUBSYSTEM=x",
            "3,12,3000000,-;Out of memory: Killed process 43 (python3) total-vm:1kB",
        ];
        let kills = oom_kills(records, Some(1_000_000));
        assert_eq!(kills.len(), 2);
        assert_eq!(kills[0].memcg, None);
        let with_cg = oom_kills(
            [
                "6,20,2000000,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/reflex-t1,task_memcg=/reflex-t1,task=python3,pid=42,uid=0",
                "3,21,2000500,-;Memory cgroup out of memory: Killed process 42 (python3) total-vm:1kB",
            ],
            None,
        );
        assert_eq!(with_cg.len(), 1);
        assert_eq!(with_cg[0].memcg.as_deref(), Some("/reflex-t1"));
        assert!(
            with_cg[0]
                .line
                .starts_with("Memory cgroup out of memory: Killed process 42")
        );
        assert_eq!((kills[0].pid, kills[0].at_ms), (42, Some(1_002_000)));
        assert_eq!((kills[1].pid, kills[1].at_ms), (43, Some(1_003_000)));
        assert!(kills[1].line.starts_with("Out of memory"));
    }

    #[test]
    fn samples_this_machine() {
        let k = sample(Duration::from_millis(10));
        let (a, b) = *k.listen_overflows.known().expect("netstat");
        assert!(b >= a);
        assert!(k.somaxconn.known().is_some_and(|&n| n > 0));
        assert!(k.syn_sent.known().is_some());
    }

    #[test]
    fn missing_kmsg_is_unavailable() {
        let f = read_oom_kills(Path::new("/nonexistent/kmsg"));
        assert!(matches!(f, Fact::Unavailable(_)));
    }
}
