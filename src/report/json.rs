//! `--format json`.

use serde_json::{Value, json as j};

use super::Report;

/// `{"findings":[{"kind","severity","message","location":{"file","line"},"upstream","evidence",
/// "fix":{"summary","diff","auto"}}],"summary":{…},"nginx_conf","backends":[…],"notes":[…]}`.
/// Each backend lists its settings that could not be read (`"unknown":[{"knob","why"}]`).
pub fn json(r: &Report<'_>) -> Value {
    let findings: Vec<Value> = r
        .findings
        .iter()
        .map(|f| {
            j!({
                "kind": f.kind,
                "severity": f.severity,
                "message": f.message,
                "location": f.location.as_ref().map(|p| j!({"file": p.file, "line": p.line})),
                "upstream": f.upstream,
                "evidence": f.evidence,
                "fix": {
                    "summary": f.fix.summary,
                    "diff": r.diff(f),
                    "auto": f.fix.auto,
                },
            })
        })
        .collect();
    let (errors, warnings, infos) = r.counts();
    j!({
        "findings": findings,
        "summary": {"error": errors, "warning": warnings, "info": infos},
        "nginx_conf": r.tree.files.first().map(|f| &f.path),
        "backends": r.backends.iter().map(|b| j!({
            "name": b.name,
            "server": b.server,
            "source": b.source,
            "binds": b.binds.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "keepalive_s": b.keepalive.as_secs_f64(),
            "tls": b.tls,
            "unknown": b.unknown,
        })).collect::<Vec<_>>(),
        "notes": r.notes,
    })
}
