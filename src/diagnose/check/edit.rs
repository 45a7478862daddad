//! Building and applying text edits to the user's configuration files. Pure: the files' texts
//! come from the [`ConfigTree`].

use crate::diagnose::finding::Edit;
use crate::parse::nginx::{ConfigTree, Located};

/// An edit that adds `lines` as the last directives of `block` (before its closing `}`),
/// indented like the block's other directives.
pub fn append_to_block(tree: &ConfigTree, block: Located<'_>, lines: &[String]) -> Option<Edit> {
    let text = &tree.files.get(block.file)?.text;
    let d = block.directive;
    let close = d.end.checked_sub(1)?;
    if text.as_bytes().get(close) != Some(&b'}') {
        return None;
    }
    let indent = child_indent(text, block);
    let line_start = text[..close].rfind('\n').map_or(0, |i| i + 1);
    let only_space_before = text[line_start..close]
        .bytes()
        .all(|b| b == b' ' || b == b'\t');
    if only_space_before {
        let body: String = lines.iter().map(|l| format!("{indent}{l}\n")).collect();
        Some(Edit {
            file: block.file,
            start: line_start,
            end: line_start,
            text: body,
        })
    } else {
        // `location / { proxy_pass http://x; }` on one line: stay on it.
        let lead = if text[..close].ends_with([' ', '\t']) {
            ""
        } else {
            " "
        };
        Some(Edit {
            file: block.file,
            start: close,
            end: close,
            text: format!("{lead}{} ", lines.join(" ")),
        })
    }
}

/// Indentation for a new directive inside `block`: that of its first child on its own line, or
/// the block's own indentation plus four spaces.
fn child_indent(text: &str, block: Located<'_>) -> String {
    if let Some(first) = block.directive.block.as_ref().and_then(|b| b.first())
        && let Some(indent) = indentation_of(text, first.start)
    {
        return indent;
    }
    format!(
        "{}    ",
        indentation_of(text, block.directive.start).unwrap_or_default()
    )
}

/// The whitespace before `offset` on its line, if only whitespace precedes it.
fn indentation_of(text: &str, offset: usize) -> Option<String> {
    let start = text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
    let prefix = &text[start..offset];
    prefix
        .bytes()
        .all(|b| b == b' ' || b == b'\t')
        .then(|| prefix.to_string())
}

/// An edit that replaces a whole directive (name through `;`) with `new`.
pub fn replace_directive(at: Located<'_>, new: &str) -> Edit {
    Edit {
        file: at.file,
        start: at.directive.start,
        end: at.directive.end,
        text: new.to_string(),
    }
}

/// An edit that replaces the first `old` after the directive's name with `new`.
pub fn replace_in_directive(
    tree: &ConfigTree,
    at: Located<'_>,
    old: &str,
    new: &str,
) -> Option<Edit> {
    let text = &tree.files.get(at.file)?.text;
    let d = at.directive;
    let from = d.start + d.name.len();
    let pos = text.get(from..d.end)?.find(old)? + from;
    Some(Edit {
        file: at.file,
        start: pos,
        end: pos + old.len(),
        text: new.to_string(),
    })
}

/// Applies the edits that concern file `file` to `text`. Identical edits are applied once;
/// an edit overlapping one already applied (or not on character boundaries) is skipped and
/// returned.
pub fn apply(text: &str, file: usize, edits: &[Edit]) -> (String, Vec<Edit>) {
    let (ok, mut skipped): (Vec<Edit>, Vec<Edit>) = edits
        .iter()
        .filter(|e| e.file == file)
        .cloned()
        .partition(|e| text.is_char_boundary(e.start) && text.is_char_boundary(e.end));
    let (out, more) = splice(text.as_bytes(), file, &ok);
    skipped.extend(more);
    // Every splice point is a character boundary and every insertion is a `String`.
    let out = String::from_utf8(out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    (out, skipped)
}

/// [`apply`] on bytes, with byte offsets: what `--fix` writes, so that bytes outside the edits
/// (a Latin-1 comment, say) stay exactly as they were.
pub fn splice(bytes: &[u8], file: usize, edits: &[Edit]) -> (Vec<u8>, Vec<Edit>) {
    let mut mine: Vec<&Edit> = edits.iter().filter(|e| e.file == file).collect();
    mine.sort();
    mine.dedup();
    let mut out = Vec::with_capacity(bytes.len() + 256);
    let mut pos = 0;
    let mut skipped = Vec::new();
    for e in mine {
        if e.start < pos || e.end > bytes.len() || e.start > e.end {
            skipped.push(e.clone());
            continue;
        }
        out.extend_from_slice(&bytes[pos..e.start]);
        out.extend_from_slice(e.text.as_bytes());
        pos = e.end;
    }
    out.extend_from_slice(&bytes[pos..]);
    (out, skipped)
}

/// A unified diff of every file the edits touch, with `a/` and `b/` paths: relative to `base`
/// for files under it (so `git apply` takes the diff there), else absolute (`patch -p1 -d /`).
pub fn unified_diff(tree: &ConfigTree, edits: &[Edit], base: Option<&std::path::Path>) -> String {
    let mut files: Vec<usize> = edits.iter().map(|e| e.file).collect();
    files.sort_unstable();
    files.dedup();
    let mut out = String::new();
    for f in files {
        let Some(src) = tree.files.get(f) else {
            continue;
        };
        let (new, _) = apply(&src.text, f, edits);
        let shown = base
            .and_then(|b| src.path.strip_prefix(b).ok())
            .unwrap_or(&src.path);
        let path = shown.display().to_string();
        let sep = if path.starts_with('/') { "" } else { "/" };
        let diff = similar::TextDiff::from_lines(&src.text, &new);
        out.push_str(
            &diff
                .unified_diff()
                .context_radius(3)
                .header(&format!("a{sep}{path}"), &format!("b{sep}{path}"))
                .to_string(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_dedups_and_skips_overlaps() {
        let e = |s, t: &str| Edit {
            file: 0,
            start: s,
            end: s + 1,
            text: t.into(),
        };
        let (out, skipped) = apply("abcdef", 0, &[e(1, "X"), e(1, "X"), e(3, "Y")]);
        assert_eq!(out, "aXcYef");
        assert!(skipped.is_empty());
        let overlap = Edit {
            file: 0,
            start: 0,
            end: 3,
            text: "Z".into(),
        };
        let (out, skipped) = apply("abcdef", 0, &[overlap, e(1, "X")]);
        assert_eq!(out, "Zdef");
        assert_eq!(skipped.len(), 1);
    }
}
