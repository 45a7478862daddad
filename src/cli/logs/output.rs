//! Renders a [`Report`] as text or as the JSON shape documented in the parent module.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{CountsJson, Report, caps, classes_json};

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn rfc3339(secs: i64) -> Option<String> {
    jiff::Timestamp::from_second(secs)
        .ok()
        .map(|t| t.to_string())
}

fn merge(mut base: Value, extra: impl serde::Serialize) -> Value {
    if let (Some(b), Ok(Value::Object(e))) = (base.as_object_mut(), serde_json::to_value(extra)) {
        b.extend(e);
    }
    base
}

/// The JSON report.
pub fn json(r: &Report) -> Value {
    let a = &r.access;
    let upstreams: Vec<Value> = a
        .upstreams()
        .into_iter()
        .map(|(addr, c)| {
            merge(
                json!({"addr": lossy(addr), "attempts": c.requests}),
                CountsJson::from(c),
            )
        })
        .collect();
    let minutes: Vec<Value> = a
        .minutes()
        .map(|(m, c)| {
            merge(
                json!({"minute": rfc3339(m * 60), "requests": c.requests}),
                CountsJson::from(c),
            )
        })
        .collect();
    let slowest: Vec<Value> = a
        .slowest()
        .iter()
        .map(|s| {
            json!({"uri": lossy(&s.uri), "max_request_time_ms": s.max_ms,
                   "at": s.time.and_then(rfc3339)})
        })
        .collect();
    let failing: Vec<Value> = a
        .failing(10)
        .into_iter()
        .map(|f| {
            merge(
                json!({"uri": lossy(&f.uri), "overcount": f.overcount}),
                CountsJson::from(f.counts),
            )
        })
        .collect();
    let e = &r.errors;
    let err_ups: Vec<Value> = e
        .upstreams()
        .into_iter()
        .map(|(addr, cs)| json!({"addr": lossy(addr), "classes": classes_json(cs.into_iter())}))
        .collect();
    json!({
        "since_seconds": r.since,
        "files": r.files,
        "access": merge(json!({
            "requests": a.total.requests,
            "malformed": a.malformed,
            "skipped_before_window": a.skipped_before,
            "without_upstream": a.without_upstream,
            "upstreams": upstreams,
            "minutes": minutes,
            "minutes_dropped": a.minutes_dropped(),
            "slowest": slowest,
            "failing": failing,
        }), CountsJson::from(a.total)),
        "errors": {
            "lines": e.lines,
            "malformed": e.malformed,
            "unclassified": e.unclassified,
            "unclassified_top": e.unclassified_top(TOP_UNCLASSIFIED).iter().map(|u| json!({
                "shape": lossy(&u.shape), "count": u.count, "example": lossy(&u.example),
            })).collect::<Vec<_>>(),
            "unclassified_other": e.unclassified_other,
            "classes": classes_json(e.classes()),
            "upstreams": err_ups,
        },
        "caps": caps(),
    })
}

/// The width of an address column: the longest address shown, within reason (a longer one
/// pushes its own row's numbers right rather than every row's).
fn addr_width<'a>(addrs: impl Iterator<Item = &'a [u8]>) -> usize {
    addrs
        .map(|a| String::from_utf8_lossy(a).chars().count())
        .max()
        .unwrap_or(0)
        .clamp(4, 60)
}

/// Unclassified message shapes shown.
const TOP_UNCLASSIFIED: usize = 10;

/// Minutes shown in the text report.
const TEXT_MINUTES: usize = 15;

/// The text report.
pub fn text(r: &Report) -> String {
    let mut s = String::new();
    let lines: u64 = r.files.iter().map(|f| f.lines).sum();
    let bytes: u64 = r.files.iter().map(|f| f.bytes_read).sum();
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    let _ = writeln!(
        s,
        "{} file(s), {lines} lines, {:.1} MB in {:.2} s ({:.1}M lines/s)",
        r.files.len(),
        bytes as f64 / 1e6,
        secs,
        lines as f64 / secs / 1e6
    );
    for f in &r.files {
        let fmt = f
            .format
            .as_deref()
            .map(|n| format!(", format `{n}`"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  {} ({}{fmt}): {} lines, {} malformed",
            f.path.display(),
            f.kind,
            f.lines,
            f.malformed
        );
    }
    if r.files.iter().any(|f| f.kind == "access") {
        access_text(&mut s, r);
    }
    if r.files.iter().any(|f| f.kind == "error") {
        errors_text(&mut s, r);
    }
    s
}

fn access_text(s: &mut String, r: &Report) {
    let a = &r.access;
    let t = a.total;
    let _ = writeln!(
        s,
        "\naccess: {} requests, {} 5xx ({} × 502, {} × 504), {} malformed lines skipped",
        t.requests, t.s5xx, t.s502, t.s504, a.malformed
    );
    let ups = a.upstreams();
    if !ups.is_empty() {
        let shown = &ups[..ups.len().min(20)];
        let own = if a.without_upstream > 0 {
            format!("; {} answered by nginx itself", a.without_upstream)
        } else {
            String::new()
        };
        let w = addr_width(shown.iter().map(|(a, _)| *a));
        let _ = writeln!(s, "\n  per upstream (attempts, by $upstream_status{own}):");
        let _ = writeln!(
            s,
            "    {:<w$} {:>10} {:>8} {:>8} {:>8}",
            "ADDR", "ATTEMPTS", "5XX", "502", "504"
        );
        for (addr, c) in shown {
            let _ = writeln!(
                s,
                "    {:<w$} {:>10} {:>8} {:>8} {:>8}",
                lossy(addr),
                c.requests,
                c.s5xx,
                c.s502,
                c.s504
            );
        }
    }
    let minutes: Vec<_> = a.minutes().collect();
    if !minutes.is_empty() {
        let skip = minutes.len().saturating_sub(TEXT_MINUTES);
        let _ = writeln!(
            s,
            "\n  per minute (last {} of {}):",
            minutes.len() - skip,
            minutes.len()
        );
        let _ = writeln!(
            s,
            "    {:<22} {:>10} {:>8} {:>8} {:>8}",
            "MINUTE (UTC)", "REQUESTS", "5XX", "502", "504"
        );
        for (m, c) in &minutes[skip..] {
            let when = rfc3339(m * 60).unwrap_or_default();
            let _ = writeln!(
                s,
                "    {when:<22} {:>10} {:>8} {:>8} {:>8}",
                c.requests, c.s5xx, c.s502, c.s504
            );
        }
    }
    if !a.slowest().is_empty() {
        let _ = writeln!(s, "\n  slowest URIs (max $request_time):");
        for x in a.slowest() {
            let _ = writeln!(
                s,
                "    {:>9.3} s  {}",
                f64::from(x.max_ms) / 1000.0,
                lossy(&x.uri)
            );
        }
    }
    let failing = a.failing(10);
    if !failing.is_empty() {
        let _ = writeln!(s, "\n  most-failing URIs (5xx; 502 / 504):");
        for f in failing {
            let over = if f.overcount > 0 {
                format!(" (±{})", f.overcount)
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "    {:>8}{over}  {} / {}  {}",
                f.counts.s5xx,
                f.counts.s502,
                f.counts.s504,
                lossy(&f.uri)
            );
        }
    }
}

fn errors_text(s: &mut String, r: &Report) {
    let e = &r.errors;
    let _ = writeln!(
        s,
        "\nerrors: {} lines, {} malformed, {} unclassified at [error] or worse",
        e.lines, e.malformed, e.unclassified
    );
    for (c, n) in e.classes() {
        let _ = writeln!(s, "    {n:>8}  {}", c.as_str());
    }
    let top = e.unclassified_top(5);
    if !top.is_empty() {
        let _ = writeln!(
            s,
            "\n  unclassified messages at [error] or worse (most frequent):"
        );
        for u in top {
            let _ = writeln!(s, "    {:>8}  {}", u.count, lossy(&u.shape));
        }
    }
    let ups = e.upstreams();
    if !ups.is_empty() {
        let _ = writeln!(s, "\n  per upstream:");
        let shown = &ups[..ups.len().min(20)];
        let w = addr_width(shown.iter().map(|(a, _)| *a));
        for (addr, cs) in shown {
            let list: Vec<String> = cs
                .iter()
                .map(|(c, n)| format!("{} {n}", c.as_str()))
                .collect();
            let _ = writeln!(s, "    {:<w$} {}", lossy(addr), list.join(", "));
        }
    }
}
