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

/// A URI for `path`: relative to the working directory when it is inside it (what code-scanning
/// UIs match against the repository), otherwise a `file://` URI.
fn uri(path: &Path) -> String {
    if let Ok(cwd) = std::env::current_dir()
        && let Ok(rel) = path.strip_prefix(&cwd)
    {
        return rel.display().to_string();
    }
    format!("file://{}", path.display())
}

pub fn sarif(r: &Report<'_>) -> Value {
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
                        "artifactLocation": {"uri": uri(&p.file)},
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
                        Some(j!({
                            "artifactLocation": {"uri": uri(&file.path)},
                            "replacements": [{
                                "deletedRegion": {"byteOffset": e.start, "byteLength": e.end - e.start},
                                "insertedContent": {"text": e.text},
                            }],
                        }))
                    })
                    .collect();
                result["fixes"] = j!([{"description": {"text": f.fix.summary}, "artifactChanges": changes}]);
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
        }],
    })
}
