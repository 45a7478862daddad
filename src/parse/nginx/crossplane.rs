//! crossplane-shaped JSON for a [`ConfigTree`], equal (as a JSON value) to what
//! `crossplane parse MAIN` (0.5.8) prints for a configuration that loads without errors.
//!
//! Three things differ between our tree and crossplane's output, and are converted here:
//!
//! - **File order.** Our files are in nginx's depth-first order. crossplane appends a file to
//!   its list when an `include` first names it and parses it only after the current file is
//!   done, which makes its order breadth-first; `includes` indices follow its order.
//! - **Newlines.** crossplane reads files in Python's universal-newline mode, so `\r\n` and a
//!   lone `\r` become `\n` in arguments, and a lone `\r` also starts a new line for line numbers
//!   (nginx counts only `\n`).
//! - **Keys.** `includes` appears on every `include` directive and only there; `block` only on
//!   block directives.

use std::collections::VecDeque;

use serde_json::{Map, Value, json};

use super::{ConfigTree, Directive};

/// The JSON `crossplane parse` prints for the same configuration.
pub fn to_crossplane_json(tree: &ConfigTree) -> Value {
    let order = crossplane_order(tree);
    let mut new_index = vec![usize::MAX; tree.files.len()];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = new;
    }
    let config: Vec<Value> = order
        .iter()
        .map(|&i| {
            let file = &tree.files[i];
            let lines = LoneCr::new(&file.text);
            json!({
                "file": file.path.to_string_lossy(),
                "status": "ok",
                "errors": [],
                "parsed": directives_json(&file.directives, &lines, &new_index),
            })
        })
        .collect();
    json!({"status": "ok", "errors": [], "config": config})
}

/// Old indices in crossplane's order: breadth-first over files, each file's includes in
/// document order.
fn crossplane_order(tree: &ConfigTree) -> Vec<usize> {
    if tree.files.is_empty() {
        return Vec::new();
    }
    let mut seen = vec![false; tree.files.len()];
    let mut order = Vec::with_capacity(tree.files.len());
    let mut queue = VecDeque::from([0]);
    seen[0] = true;
    while let Some(i) = queue.pop_front() {
        order.push(i);
        let mut found = Vec::new();
        collect_includes(&tree.files[i].directives, &mut found);
        for inc in found {
            if inc < seen.len() && !seen[inc] {
                seen[inc] = true;
                queue.push_back(inc);
            }
        }
    }
    order
}

fn collect_includes(directives: &[Directive], out: &mut Vec<usize>) {
    for d in directives {
        out.extend_from_slice(&d.includes);
        if let Some(block) = &d.block {
            collect_includes(block, out);
        }
    }
}

fn directives_json(directives: &[Directive], lines: &LoneCr, new_index: &[usize]) -> Vec<Value> {
    directives
        .iter()
        .map(|d| {
            let mut m = Map::new();
            m.insert("directive".into(), universal_newlines(&d.name).into());
            m.insert("line".into(), lines.line(d).into());
            let args: Vec<Value> = d
                .args
                .iter()
                .map(|a| universal_newlines(a).into())
                .collect();
            m.insert("args".into(), args.into());
            if d.name == "include" {
                let incs: Vec<Value> = d
                    .includes
                    .iter()
                    .map(|&i| new_index.get(i).copied().unwrap_or(i).into())
                    .collect();
                m.insert("includes".into(), incs.into());
            }
            if let Some(block) = &d.block {
                m.insert(
                    "block".into(),
                    directives_json(block, lines, new_index).into(),
                );
            }
            Value::Object(m)
        })
        .collect()
}

/// Python's universal newlines: `\r\n` and lone `\r` read as `\n`.
fn universal_newlines(s: &str) -> String {
    if s.contains('\r') {
        s.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        s.to_string()
    }
}

/// Offsets of lone `\r`s in a file, which crossplane counts as line breaks and nginx does not.
struct LoneCr(Vec<usize>);

impl LoneCr {
    fn new(text: &str) -> Self {
        let b = text.as_bytes();
        LoneCr(
            memchr_all(b, b'\r')
                .filter(|&i| b.get(i + 1) != Some(&b'\n'))
                .collect(),
        )
    }

    fn line(&self, d: &Directive) -> u32 {
        let extra = self.0.partition_point(|&i| i < d.start);
        d.line
            .saturating_add(u32::try_from(extra).unwrap_or(u32::MAX))
    }
}

fn memchr_all(b: &[u8], needle: u8) -> impl Iterator<Item = usize> + '_ {
    b.iter()
        .enumerate()
        .filter(move |&(_, &c)| c == needle)
        .map(|(i, _)| i)
}

/// The `parsed` list of a single file, includes unresolved.
#[cfg(test)]
fn file_to_crossplane_json(file: &super::SourceFile) -> Value {
    let lines = LoneCr::new(&file.text);
    directives_json(&file.directives, &lines, &[]).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::nginx::{SourceFile, parse};
    use std::path::PathBuf;

    fn file(path: &str, text: &str, includes: &[Vec<usize>]) -> SourceFile {
        let mut directives = parse(text).expect("parses");
        let mut incs = includes.iter();
        for d in &mut directives {
            if d.name == "include" {
                d.includes = incs.next().cloned().unwrap_or_default();
            }
        }
        SourceFile {
            path: PathBuf::from(path),
            text: text.to_string(),
            directives,
        }
    }

    #[test]
    fn breadth_first_reindexing() {
        // nginx order: main, a, c, b (a includes c). crossplane: main, a, b, c.
        let tree = ConfigTree {
            files: vec![
                file("/m", "include a; include b;", &[vec![1], vec![3]]),
                file("/a", "include c;", &[vec![2]]),
                file("/c", "x;", &[]),
                file("/b", "y { }", &[]),
            ],
        };
        let v = to_crossplane_json(&tree);
        let files: Vec<&str> = v["config"]
            .as_array()
            .expect("array")
            .iter()
            .map(|c| c["file"].as_str().expect("file"))
            .collect();
        assert_eq!(files, ["/m", "/a", "/b", "/c"]);
        assert_eq!(v["config"][0]["parsed"][1]["includes"], json!([2]));
        assert_eq!(v["config"][1]["parsed"][0]["includes"], json!([3]));
        assert_eq!(
            v["config"][2]["parsed"][0],
            json!({"directive": "y", "line": 1, "args": [], "block": []})
        );
        assert_eq!(
            v["config"][3]["parsed"][0],
            json!({"directive": "x", "line": 1, "args": []})
        );
    }

    #[test]
    fn newlines_as_python_reads_them() {
        let f = file("/m", "a 'x\r\ny';\rb 'p\rq';\r\nc;", &[]);
        let v = file_to_crossplane_json(&f);
        assert_eq!(
            v,
            json!([
                {"directive": "a", "line": 1, "args": ["x\ny"]},
                {"directive": "b", "line": 3, "args": ["p\nq"]},
                {"directive": "c", "line": 5, "args": []},
            ])
        );
    }
}
