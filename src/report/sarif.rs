//! `--format sarif`: SARIF 2.1.0 for code-scanning UIs. One run, one `reportingDescriptor` per
//! rule, results with physical locations and, for edit fixes, `fixes` with byte replacements.

use std::path::Path;

use serde_json::{Value, json as j};

use crate::diagnose::check::RULES;
use crate::diagnose::finding::Severity;

use super::Report;

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// The base URI relative artifact locations are resolved against: the working directory,
/// where a CI job checks out the repository.
const SRCROOT: &str = "%SRCROOT%";

/// An `artifactLocation` for `path` (SARIF 2.1.0 §3.4): relative to the working directory when
/// it is inside it (`uriBaseId` `%SRCROOT%`, what code-scanning UIs match against the
/// repository), otherwise an absolute `file:///` URI. Both percent-encoded (RFC 3986).
fn artifact(path: &Path, cwd: Option<&Path>) -> Value {
    let relative = if path.is_relative() {
        Some(path)
    } else {
        cwd.and_then(|cwd| path.strip_prefix(cwd).ok())
    };
    match relative {
        Some(rel) => j!({"uri": encode(rel), "uriBaseId": SRCROOT}),
        None => j!({"uri": format!("file://{}", encode(path))}),
    }
}

/// A path percent-encoded for a URI: unreserved characters and `/` stay, every other byte is
/// `%XX`.
fn encode(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn sarif(r: &Report<'_>) -> Value {
    let cwd = r.cwd;
    let uri = |p: &Path| artifact(p, cwd);
    let rules: Vec<Value> = RULES
        .iter()
        .map(|rule| {
            j!({
                "id": rule.kind,
                "name": rule.kind,
                "shortDescription": {"text": rule.title},
                "fullDescription": {"text": rule.why},
                "defaultConfiguration": {"level": level(rule.severity)},
                "properties": {"tags": ["nginx", "502", "reliability"]},
            })
        })
        .collect();
    let results: Vec<Value> = r
        .findings
        .iter()
        .map(|f| {
            let mut message = f.message.clone();
            for e in &f.evidence {
                message.push_str("\n- ");
                message.push_str(e);
            }
            message.push_str("\nFix: ");
            message.push_str(&f.fix.summary);
            let mut result = j!({
                "ruleId": f.kind,
                "ruleIndex": RULES.iter().position(|x| x.kind == f.kind),
                "level": level(f.severity),
                "message": {"text": message},
                "locations": f.location.as_ref().map(|p| vec![j!({
                    "physicalLocation": {
                        "artifactLocation": uri(&p.file),
                        "region": {"startLine": p.line},
                    }
                })]).unwrap_or_default(),
            });
            if let Some(u) = &f.upstream {
                result["properties"] = j!({"upstream": u});
            }
            if !f.fix.edits.is_empty() {
                let changes: Vec<Value> = f
                    .fix
                    .edits
                    .iter()
                    .filter_map(|e| {
                        let file = r.tree.files.get(e.file)?;
                        // SARIF counts bytes of the file, which are not the decoded text's
                        // offsets when the file is not valid UTF-8.
                        let (start, end) = r.byte_range(e.file, e.start, e.end);
                        Some(j!({
                            "artifactLocation": uri(&file.path),
                            "replacements": [{
                                "deletedRegion": {"byteOffset": start, "byteLength": end - start},
                                "insertedContent": {"text": e.text},
                            }],
                        }))
                    })
                    .collect();
                result["fixes"] =
                    j!([{"description": {"text": f.fix.summary}, "artifactChanges": changes}]);
            }
            result
        })
        .collect();
    j!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "reflex",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/reflex-sre/reflex",
                "rules": rules,
            }},
            "results": results,
            "originalUriBaseIds": cwd.map(|cwd| j!({
                SRCROOT: {"uri": format!("file://{}/", encode(cwd).trim_end_matches('/'))}
            })),
        }],
    })
}
