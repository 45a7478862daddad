//! Loads an nginx configuration from disk: the main file and every `include`, in nginx's order.
//!
//! This is the only place that reads configuration files; parsing itself is
//! [`crate::parse::nginx::parse`], which never touches the filesystem. The include rules are
//! nginx's (`ngx_conf_include` in `src/core/ngx_conf_file.c`):
//!
//! - a relative path is taken relative to the main file's directory (nginx's `conf_prefix` when
//!   it is started with `-c FILE`), at whatever depth the `include` sits;
//! - a path containing `*`, `?` or `[` is a glob; matches are read in byte order and matching
//!   nothing is fine; a plain path that cannot be opened is an error;
//! - files are decoded lossily: nginx accepts any bytes, so invalid UTF-8 never fails a load.
//!
//! Each file appears once in [`ConfigTree::files`], in the order nginx first reaches it (a
//! depth-first walk, which is also the order `nginx -T` dumps files in). A file included
//! twice is parsed once and both `include` directives point at it.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::parse::nginx::{
    ByteOffsets, ConfigTree, Directive, SourceFile, SyntaxError, parse, unescape,
};

/// Why a configuration could not be loaded. Every message starts with the place to look.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A syntax error: `FILE:LINE:COL: message`.
    #[error("{}:{error}", path.display())]
    Syntax { path: PathBuf, error: SyntaxError },
    /// The main file could not be read.
    #[error("{}: cannot read the configuration file: {error}", path.display())]
    Read { path: PathBuf, error: io::Error },
    /// A file named by an `include` could not be read: `FILE:LINE` of the `include`.
    #[error("{}:{line}: cannot read included file \"{}\": {error}", file.display(), target.display())]
    Include {
        file: PathBuf,
        line: u32,
        target: PathBuf,
        error: io::Error,
    },
    /// A file includes itself, directly or through others. nginx would recurse until it runs
    /// out of file descriptors.
    #[error("{}:{line}: include cycle: {}", file.display(), Cycle(chain))]
    Cycle {
        file: PathBuf,
        line: u32,
        chain: Vec<PathBuf>,
    },
}

/// Displays an include chain as `a → b → a`.
struct Cycle<'a>(&'a [PathBuf]);

impl fmt::Display for Cycle<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" → ")?;
            }
            write!(f, "{}", p.display())?;
        }
        Ok(())
    }
}

/// Reads `main` and everything it includes.
pub fn load(main: &Path) -> Result<ConfigTree, ConfigError> {
    let text = read_lossy(main).map_err(|error| ConfigError::Read {
        path: main.to_path_buf(),
        error,
    })?;
    let mut loader = Loader {
        prefix: main.parent().unwrap_or(Path::new("")).to_path_buf(),
        files: Vec::new(),
        index: HashMap::new(),
        open: Vec::new(),
    };
    loader.add(main.to_path_buf(), text)?;
    Ok(ConfigTree {
        files: loader.files,
    })
}

/// Parses one file's text on behalf of `path`, so that errors carry the file name. `include`
/// is left unresolved.
pub fn parse_text(path: &Path, text: &str) -> Result<SourceFile, ConfigError> {
    let directives = parse(text).map_err(|error| ConfigError::Syntax {
        path: path.to_path_buf(),
        error,
    })?;
    Ok(SourceFile {
        path: path.to_path_buf(),
        text: text.to_string(),
        directives,
    })
}

/// How each file's text offsets map to its bytes. Only files that were not valid UTF-8 (their
/// text holds U+FFFD) are read again; a file that cannot be read maps as the identity.
pub fn byte_offsets(tree: &ConfigTree) -> Vec<ByteOffsets> {
    tree.files
        .iter()
        .map(|f| {
            if !f.text.contains(char::REPLACEMENT_CHARACTER) {
                return ByteOffsets::default();
            }
            std::fs::read(&f.path)
                .map(|raw| ByteOffsets::new(&raw))
                .unwrap_or_default()
        })
        .collect()
}

fn read_lossy(path: &Path) -> io::Result<String> {
    let bytes = std::fs::read(path)?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

struct Loader {
    /// The main file's directory: where relative include paths start.
    prefix: PathBuf,
    files: Vec<SourceFile>,
    /// Path as nginx would open it → index in `files`.
    index: HashMap<PathBuf, usize>,
    /// Files being read right now, outermost first, to catch include cycles.
    open: Vec<usize>,
}

/// Where an `include` sits, for error messages.
struct Site<'a> {
    file: &'a Path,
    line: u32,
}

impl Loader {
    /// Adds a file, then (depth first) everything it includes. Returns its index.
    fn add(&mut self, path: PathBuf, text: String) -> Result<usize, ConfigError> {
        let mut directives = parse(&text).map_err(|error| ConfigError::Syntax {
            path: path.clone(),
            error,
        })?;
        let idx = self.files.len();
        self.index.insert(path.clone(), idx);
        self.files.push(SourceFile {
            path: path.clone(),
            text,
            directives: Vec::new(),
        });
        self.open.push(idx);
        self.resolve_all(&path, &mut directives)?;
        self.open.pop();
        self.files[idx].directives = directives;
        Ok(idx)
    }

    /// Fills `includes` for every `include` in `directives`, at any block depth, in order.
    fn resolve_all(
        &mut self,
        file: &Path,
        directives: &mut [Directive],
    ) -> Result<(), ConfigError> {
        for d in directives {
            if d.name == "include" {
                d.includes = self.resolve(file, d)?;
            }
            if let Some(block) = &mut d.block {
                self.resolve_all(file, block)?;
            }
        }
        Ok(())
    }

    fn resolve(&mut self, file: &Path, d: &Directive) -> Result<Vec<usize>, ConfigError> {
        let site = Site { file, line: d.line };
        if d.args.len() != 1 {
            // nginx's own wording; `include` is NGX_CONF_TAKE1.
            return Err(ConfigError::Syntax {
                path: file.to_path_buf(),
                error: SyntaxError {
                    line: d.line,
                    col: d.col,
                    message: "invalid number of arguments in \"include\" directive".into(),
                },
            });
        }
        let pattern = self.prefix.join(unescape(&d.args[0]));
        let targets = if is_glob(&pattern) {
            glob_sorted(&pattern).map_err(|message| ConfigError::Syntax {
                path: file.to_path_buf(),
                error: SyntaxError {
                    line: d.line,
                    col: d.col,
                    message,
                },
            })?
        } else {
            vec![pattern]
        };
        let mut out = Vec::with_capacity(targets.len());
        for target in targets {
            out.push(self.include(&site, target)?);
        }
        Ok(out)
    }

    fn include(&mut self, site: &Site<'_>, target: PathBuf) -> Result<usize, ConfigError> {
        if let Some(&idx) = self.index.get(&target) {
            if let Some(pos) = self.open.iter().position(|&i| i == idx) {
                let mut chain: Vec<PathBuf> = self.open[pos..]
                    .iter()
                    .map(|&i| self.files[i].path.clone())
                    .collect();
                chain.push(target);
                return Err(ConfigError::Cycle {
                    file: site.file.to_path_buf(),
                    line: site.line,
                    chain,
                });
            }
            return Ok(idx);
        }
        let text = read_lossy(&target).map_err(|error| ConfigError::Include {
            file: site.file.to_path_buf(),
            line: site.line,
            target: target.clone(),
            error,
        })?;
        self.add(target, text)
    }
}

/// nginx treats an include as a glob when it contains any of `*?[` (`ngx_conf_include`).
fn is_glob(path: &Path) -> bool {
    path.as_os_str()
        .as_bytes()
        .iter()
        .any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// glob(3) as nginx calls it: sorted, hidden files only matched by a literal dot, unreadable
/// directories skipped, no match is an empty list.
fn glob_sorted(pattern: &Path) -> Result<Vec<PathBuf>, String> {
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let text = pattern.to_string_lossy();
    let paths = glob::glob_with(&text, options)
        .map_err(|e| format!("invalid include pattern \"{text}\": {e}"))?;
    // nginx runs in the C locale, so glob(3)'s sort is a byte sort.
    let mut out: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
    out.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        for (rel, text) in files {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, text).expect("write");
        }
        let main = dir.path().join(files[0].0);
        (dir, main)
    }

    fn names(t: &ConfigTree, root: &Path) -> Vec<String> {
        t.files
            .iter()
            .map(|f| {
                f.path
                    .strip_prefix(root)
                    .expect("under root")
                    .display()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn depth_first_once_each() {
        let (dir, main) = tree(&[
            (
                "nginx.conf",
                "http { include a.conf; include b/*.conf; include a.conf; }",
            ),
            ("a.conf", "server { include c.conf; }"),
            ("b/2.conf", "x;"),
            ("b/1.conf", "y;"),
            ("b/.hidden.conf", "z;"),
            ("c.conf", "location / { }"),
        ]);
        let t = load(&main).expect("loads");
        assert_eq!(
            names(&t, dir.path()),
            ["nginx.conf", "a.conf", "c.conf", "b/1.conf", "b/2.conf"]
        );
        let http = &t.files[0].directives[0].block.as_ref().expect("block");
        let incs: Vec<_> = http.iter().map(|d| d.includes.clone()).collect();
        assert_eq!(incs, [vec![1], vec![3, 4], vec![1]]);
    }

    #[test]
    fn empty_glob_is_fine_missing_file_is_not() {
        let (_dir, main) = tree(&[(
            "nginx.conf",
            "include none/*.conf;\n\n  include missing.conf;",
        )]);
        let err = load(&main).expect_err("missing include");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("{}:3: cannot read included file", main.display())),
            "{msg}"
        );
        assert!(msg.contains("missing.conf"), "{msg}");
    }

    #[test]
    fn syntax_errors_name_the_included_file() {
        let (dir, main) = tree(&[("nginx.conf", "include a.conf;"), ("a.conf", "x;\ny }")]);
        let err = load(&main).expect_err("syntax");
        assert_eq!(
            err.to_string(),
            format!(
                "{}:2:3: unexpected \"}}\"",
                dir.path().join("a.conf").display()
            )
        );
    }

    #[test]
    fn cycles_are_errors() {
        let (_dir, main) = tree(&[
            ("nginx.conf", "include a.conf;"),
            ("a.conf", "include nginx.conf;"),
        ]);
        let msg = load(&main).expect_err("cycle").to_string();
        assert!(msg.contains("include cycle"), "{msg}");
    }

    #[test]
    fn non_utf8_is_decoded_lossily() {
        let dir = tempfile::tempdir().expect("temp dir");
        let main = dir.path().join("nginx.conf");
        std::fs::write(&main, b"a \xff\xfe;\n").expect("write");
        let t = load(&main).expect("loads");
        assert_eq!(t.files[0].directives[0].args, ["\u{fffd}\u{fffd}"]);
    }

    #[test]
    fn include_needs_one_argument() {
        let (_dir, main) = tree(&[("nginx.conf", "http {\n  include a b;\n}")]);
        let msg = load(&main).expect_err("args").to_string();
        assert!(
            msg.ends_with(":2:3: invalid number of arguments in \"include\" directive"),
            "{msg}"
        );
    }
}
