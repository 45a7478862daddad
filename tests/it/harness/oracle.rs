//! The parser's oracles, shared by `parser_oracle` (the fixtures) and the nginx harness (every
//! configuration a test starts nginx with):
//!
//! - **crossplane 0.5.8** (`crossplane parse MAIN`, run as a process): our crossplane JSON must
//!   equal its JSON exactly;
//! - **nginx itself** (`nginx -T -c MAIN -p TMP/`): the files it dumps, in its order, must be
//!   our `ConfigTree::files`, each file's text must be ours, and parsing each dumped chunk must
//!   give the same directive tree.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use reflex::gather::nginx_conf::load;
use reflex::parse::nginx::{ConfigTree, Directive, parse, to_crossplane_json};
use serde_json::Value;

use super::{nginx_bin, reflex, tempdir, venv_bin};

/// What `crossplane parse MAIN` prints.
pub fn crossplane_json(main: &Path) -> Value {
    let out = Command::new(venv_bin("crossplane"))
        .arg("parse")
        .arg(main)
        .output()
        .expect("run crossplane");
    assert!(
        out.status.success(),
        "crossplane failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("crossplane prints JSON")
}

/// Asserts two JSON values are equal, showing a line diff of their pretty forms if not.
pub fn assert_json_eq(ours: &Value, theirs: &Value, what: &str) {
    if ours == theirs {
        return;
    }
    let a = serde_json::to_string_pretty(ours).unwrap_or_default();
    let b = serde_json::to_string_pretty(theirs).unwrap_or_default();
    let diff = similar::TextDiff::from_lines(&b, &a);
    panic!(
        "{what}: ours (+) differs from crossplane (-):\n{}",
        diff.unified_diff().context_radius(4)
    );
}

/// Runs `nginx -T` with `prefix` as its prefix and returns its dump: (file, text) in order.
pub fn nginx_dump(main: &Path, prefix: &Path) -> Vec<(PathBuf, String)> {
    let out = Command::new(nginx_bin())
        .arg("-T")
        .arg("-c")
        .arg(main)
        .arg("-p")
        .arg(format!("{}/", prefix.display()))
        .output()
        .expect("run nginx -T");
    assert!(
        out.status.success(),
        "nginx -T failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    split_dump(&String::from_utf8_lossy(&out.stdout))
}

/// Splits `nginx -T` output at its `# configuration file PATH:` lines. nginx writes each file
/// verbatim followed by one `\n` (`ngx_conf_dump` in nginx.c), which is dropped here.
pub fn split_dump(out: &str) -> Vec<(PathBuf, String)> {
    const HEADER: &str = "# configuration file ";
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let mut rest = out;
    while let Some(line_end) = rest.find('\n') {
        let line = &rest[..line_end];
        let after = &rest[line_end + 1..];
        let Some(path) = line.strip_prefix(HEADER).and_then(|l| l.strip_suffix(':')) else {
            panic!("nginx -T output does not start with a file header: {line:?}");
        };
        let next = after
            .find(&format!("\n{HEADER}"))
            .map(|i| i + 1)
            .unwrap_or(after.len());
        let body = &after[..next];
        let body = body.strip_suffix('\n').unwrap_or(body);
        files.push((PathBuf::from(path), body.to_string()));
        rest = &after[next..];
    }
    files
}

/// The parts of a directive both oracles see: name, args, line, block (not includes).
#[derive(Debug, PartialEq)]
pub struct Shape {
    pub name: String,
    pub args: Vec<String>,
    pub line: u32,
    pub block: Option<Vec<Shape>>,
}

pub fn shape(ds: &[Directive]) -> Vec<Shape> {
    ds.iter()
        .map(|d| Shape {
            name: d.name.clone(),
            args: d.args.clone(),
            line: d.line,
            block: d.block.as_deref().map(shape),
        })
        .collect()
}

pub fn paths(tree: &ConfigTree) -> Vec<PathBuf> {
    tree.files.iter().map(|f| f.path.clone()).collect()
}

/// Loads `main` and checks it against crossplane and (if `with_nginx`) against `nginx -T`.
pub fn check(main: &Path, with_nginx: bool) -> ConfigTree {
    let tree = load(main).unwrap_or_else(|e| panic!("load {}: {e}", main.display()));
    assert_json_eq(
        &to_crossplane_json(&tree),
        &crossplane_json(main),
        &main.display().to_string(),
    );
    if with_nginx {
        agree_with_nginx(main, &tree);
    }
    tree
}

/// `nginx -T`'s files, texts and directive trees are ours.
pub fn agree_with_nginx(main: &Path, tree: &ConfigTree) {
    let tmp = tempdir();
    let dump = nginx_dump(main, tmp.path());
    let dumped: Vec<PathBuf> = dump.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(paths(tree), dumped, "file order: ours vs nginx -T");
    for ((path, chunk), file) in dump.iter().zip(&tree.files) {
        assert_eq!(*chunk, file.text, "text of {}", path.display());
        let reparsed = parse(chunk).unwrap_or_else(|e| panic!("{}:{e}", path.display()));
        assert_eq!(
            shape(&reparsed),
            shape(&file.directives),
            "tree of {}",
            path.display()
        );
    }
}

/// Configurations already checked, by a hash of their text with numbers and temp dirs
/// normalised away: tests start the same configuration on different ports many times, and
/// neither oracle's verdict depends on a number or a directory name.
static CHECKED: Mutex<Option<HashSet<u64>>> = Mutex::new(None);

fn normalised_hash(text: &str) -> u64 {
    let mut norm = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("/tmp/") {
            // A temp dir name: up to the next `/`.
            norm.push_str("/tmp/T");
            rest = after.find('/').map_or("", |i| &after[i..]);
            continue;
        }
        let Some(c) = rest.chars().next() else { break };
        if c.is_ascii_digit() {
            // A run of digits (a port, a pid) counts as one.
            norm.push('0');
            rest = rest.trim_start_matches(|d: char| d.is_ascii_digit());
            continue;
        }
        norm.push(c);
        rest = &rest[c.len_utf8()..];
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    norm.hash(&mut h);
    h.finish()
}

/// Asserts that `reflex parse MAIN` agrees with crossplane and that our tree agrees with
/// `nginx -T`'s, once per distinct configuration (see [`CHECKED`]).
pub fn agree(main: &Path) {
    let text = std::fs::read_to_string(main).unwrap_or_default();
    let key = normalised_hash(&text);
    {
        let mut seen = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.get_or_insert_with(HashSet::new).insert(key) {
            return;
        }
    }
    let out = reflex()
        .arg("parse")
        .arg(main)
        .output()
        .expect("run reflex parse");
    assert!(
        out.status.success(),
        "reflex parse {}: {}",
        main.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let ours: Value = serde_json::from_slice(&out.stdout).expect("reflex parse prints JSON");
    assert_json_eq(&ours, &crossplane_json(main), &main.display().to_string());
    let tree = load(main).unwrap_or_else(|e| panic!("load {}: {e}", main.display()));
    agree_with_nginx(main, &tree);
}

#[test]
fn the_same_configuration_elsewhere_hashes_the_same() {
    let a = "listen 127.0.0.1:41234;\npid /tmp/reflex-test-AbC123/n/nginx.pid;\n";
    let b = "listen 127.0.0.1:8080;\npid /tmp/reflex-test-XyZ9/n/nginx.pid;\n";
    let c = "listen 127.0.0.1:8080;\npid /tmp/reflex-test-XyZ9/n/other.pid;\n";
    assert_eq!(normalised_hash(a), normalised_hash(b));
    assert_ne!(normalised_hash(b), normalised_hash(c));
}
