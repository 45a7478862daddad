//! nginx configuration: the syntax tree, and the pure parser that builds it from one file's text.
//!
//! The tree follows nginx's own reading rules (`src/core/ngx_conf_file.c`) and its shape is
//! crossplane's, so it can be compared with `crossplane parse` and with `nginx -T`.
//! Resolving `include` needs the filesystem and lives in `crate::gather::nginx_conf`.

mod crossplane;
mod lexer;
mod offsets;
mod parser;

use std::path::PathBuf;

pub use crossplane::to_crossplane_json;
pub use offsets::ByteOffsets;
pub use parser::parse;

/// One directive, as nginx reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The directive's name, e.g. `proxy_pass`.
    pub name: String,
    /// Arguments with quotes removed. Escapes are kept as crossplane keeps them: inside quotes
    /// `\"` (or `\'`) becomes the bare quote and every other backslash pair stays as written.
    /// Use [`unescape`] for the value nginx itself stores.
    pub args: Vec<String>,
    /// 1-based line of the directive's name.
    pub line: u32,
    /// 1-based column (in bytes) of the directive's name.
    pub col: u32,
    /// Byte offset of the directive's name in its file's text.
    pub start: usize,
    /// Byte offset just past the terminating `;`, or past the closing `}` of a block.
    pub end: usize,
    /// Byte offset of the opening `{` when the directive has a block.
    pub block_open: Option<usize>,
    /// The block's directives: `Some` for block directives (possibly empty), `None` otherwise.
    /// Raw `*_by_lua_block` bodies are not parsed: they come out as one argument, as crossplane does.
    pub block: Option<Vec<Directive>>,
    /// For `include`: indices into [`ConfigTree::files`] of the files it pulled in, in nginx's order.
    /// Filled by the loader; always empty straight out of [`parse`].
    pub includes: Vec<usize>,
}

impl Directive {
    /// The `i`th argument, or `""` when there is none.
    pub fn arg(&self, i: usize) -> &str {
        self.args.get(i).map(String::as_str).unwrap_or("")
    }
}

/// A syntax error in one file, positioned at `line:col` (1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: {message}")]
pub struct SyntaxError {
    pub line: u32,
    pub col: u32,
    pub message: String,
}

/// One configuration file and its parsed directives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The path nginx would open: absolute, or as given.
    pub path: PathBuf,
    /// The file's text, kept so that fixes can be shown as diffs of it.
    pub text: String,
    pub directives: Vec<Directive>,
}

/// A whole configuration: the main file first, then every included file once, in the order
/// nginx first reaches them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigTree {
    pub files: Vec<SourceFile>,
}

/// A directive together with the index of the file it was read from.
#[derive(Debug, Clone, Copy)]
pub struct Located<'a> {
    pub file: usize,
    pub directive: &'a Directive,
}

impl ConfigTree {
    /// The directives of one block level with every `include` replaced by the directives of the
    /// files it pulled in (recursively), in nginx's order. Nested blocks are not descended into:
    /// call this again on a block's directives.
    pub fn expand<'a>(&'a self, file: usize, directives: &'a [Directive]) -> Vec<Located<'a>> {
        let mut out = Vec::new();
        self.expand_into(file, directives, &mut out, 0);
        out
    }

    fn expand_into<'a>(
        &'a self,
        file: usize,
        directives: &'a [Directive],
        out: &mut Vec<Located<'a>>,
        depth: usize,
    ) {
        // nginx itself has no include depth limit, but a file that includes itself would recurse
        // forever; nginx fails on it too (too many open files), so stopping is faithful enough.
        if depth > 64 {
            return;
        }
        for directive in directives {
            if directive.name == "include" && !directive.includes.is_empty() {
                for &inc in &directive.includes {
                    if let Some(f) = self.files.get(inc) {
                        self.expand_into(inc, &f.directives, out, depth + 1);
                    }
                }
            } else {
                out.push(Located { file, directive });
            }
        }
    }

    /// The top level of the main file, includes expanded.
    pub fn top(&self) -> Vec<Located<'_>> {
        match self.files.first() {
            Some(main) => self.expand(0, &main.directives),
            None => Vec::new(),
        }
    }
}

/// The value nginx stores for an argument: it turns `\"`, `\'` and `\\` into the bare character
/// and `\t`, `\r`, `\n` into control characters, in quoted and bare words alike
/// (`ngx_conf_read_token`). Other backslashes stay.
pub fn unescape(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut chars = arg.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.peek() {
                Some('"') | Some('\'') | Some('\\') => {
                    out.push(chars.next().unwrap_or('\\'));
                    continue;
                }
                Some('t') => {
                    chars.next();
                    out.push('\t');
                    continue;
                }
                Some('r') => {
                    chars.next();
                    out.push('\r');
                    continue;
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
}
