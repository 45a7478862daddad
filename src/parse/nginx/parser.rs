//! Tokens → directive tree for one file.
//!
//! The grammar is nginx's (`ngx_conf_parse`): a directive is a name, arguments, and `;` or a
//! `{ ... }` block. Blocks are kept on an explicit stack, not the Rust call stack, so hostile
//! nesting cannot overflow it; nesting deeper than [`MAX_DEPTH`] is an error.
//!
//! Two things come from crossplane rather than nginx, because the tree is compared with it:
//! `if` arguments lose their parentheses, and `*_by_lua_block` bodies become one raw argument.

use super::lexer::{Kind, Lexer, Token};
use super::{Directive, SyntaxError};

/// Deepest block nesting accepted. Real configurations rarely go past 5 (http → server →
/// location → location → if); the cap only exists to bound memory on hostile input.
pub const MAX_DEPTH: usize = 200;

/// Parses one file's text into its directives. `include` is not resolved here.
pub fn parse(text: &str) -> Result<Vec<Directive>, SyntaxError> {
    // nginx has no notion of a byte order mark: its three bytes become part of the first
    // word, and `\u{feff}events` is an unknown directive. Say so here rather than accept a file
    // nginx refuses.
    if text.starts_with('\u{feff}') {
        return Err(SyntaxError {
            line: 1,
            col: 1,
            message: "byte order mark (U+FEFF) at the start of the file: nginx reads it as part \
                      of the first directive's name (unknown directive); save the file without it"
                .into(),
        });
    }
    let mut lx = Lexer::new(text);
    // Each open block: the directive that opened it, and the siblings read before it.
    let mut stack: Vec<(Directive, Vec<Directive>)> = Vec::new();
    let mut current: Vec<Directive> = Vec::new();
    loop {
        let first = lx.next_token()?;
        let name = match first.kind {
            Kind::Word(name) => name,
            Kind::Eof => {
                if stack.is_empty() {
                    return Ok(current);
                }
                return Err(at(&first, "unexpected end of file, expecting \"}\""));
            }
            Kind::Close => {
                let Some((mut parent, siblings)) = stack.pop() else {
                    return Err(at(&first, "unexpected \"}\""));
                };
                parent.end = lx.pos();
                parent.block = Some(std::mem::replace(&mut current, siblings));
                current.push(parent);
                continue;
            }
            Kind::Semicolon => return Err(at(&first, "unexpected \";\"")),
            Kind::Open => return Err(at(&first, "unexpected \"{\"")),
        };
        let mut d = Directive {
            name,
            args: Vec::new(),
            line: first.line,
            col: first.col,
            start: first.start,
            end: first.start,
            block_open: None,
            block: None,
            includes: Vec::new(),
        };
        let opens_block = read_args(&mut lx, &mut d)?;
        if d.name == "if" {
            strip_if_parens(&mut d.args);
        }
        if !opens_block {
            current.push(d);
        } else if is_lua_block(&d.name) {
            // The Lua module reads the block itself, as Lua, not as nginx directives.
            let body = lx.lua_body()?;
            d.args.push(body);
            d.end = lx.pos();
            current.push(d);
        } else {
            if stack.len() >= MAX_DEPTH {
                return Err(SyntaxError {
                    line: first.line,
                    col: first.col,
                    message: format!("blocks nested deeper than {MAX_DEPTH} levels"),
                });
            }
            stack.push((d, std::mem::take(&mut current)));
        }
    }
}

/// Reads arguments up to the terminator. Returns whether the directive opens a block, having
/// set `end` (for `;`) or `block_open` (for `{`).
fn read_args(lx: &mut Lexer<'_>, d: &mut Directive) -> Result<bool, SyntaxError> {
    loop {
        let tok = lx.next_token()?;
        match tok.kind {
            Kind::Word(w) => d.args.push(w),
            Kind::Semicolon => {
                d.end = lx.pos();
                return Ok(false);
            }
            Kind::Open => {
                d.block_open = Some(tok.start);
                return Ok(true);
            }
            // nginx: a `}` where a directive's arguments are still open.
            Kind::Close => return Err(at(&tok, "unexpected \"}\"")),
            Kind::Eof => {
                return Err(at(&tok, "unexpected end of file, expecting \";\" or \"}\""));
            }
        }
    }
}

fn at(tok: &Token, message: &str) -> SyntaxError {
    SyntaxError {
        line: tok.line,
        col: tok.col,
        message: message.to_string(),
    }
}

/// Directives whose block is Lua source. lua-nginx-module names every one of them
/// `*_by_lua_block` (crossplane 0.5.8 lists 13 of them; newer ones such as
/// `server_rewrite_by_lua_block` follow the same pattern).
pub fn is_lua_block(name: &str) -> bool {
    name.ends_with("_by_lua_block")
}

/// crossplane's `_prepare_if_args`: `if ($a = b)` → `["$a", "=", "b"]`. The parentheses are
/// removed from the first and last argument (with the whitespace next to them), and arguments
/// left empty are dropped.
fn strip_if_parens(args: &mut Vec<String>) {
    let (Some(first), Some(last)) = (args.first(), args.last()) else {
        return;
    };
    if !(first.starts_with('(') && last.ends_with(')')) {
        return;
    }
    let first = args[0][1..].trim_start_matches(py_space).to_string();
    args[0] = first;
    let n = args.len() - 1;
    let last = &args[n];
    let last = last[..last.len() - 1]
        .trim_end_matches(py_space)
        .to_string();
    args[n] = last;
    if args.last().is_some_and(String::is_empty) {
        args.pop();
    }
    if args.first().is_some_and(String::is_empty) {
        args.remove(0);
    }
}

/// Python's `str.isspace`, which crossplane's `strip` uses: Unicode whitespace plus the
/// information separators U+001C..U+001F.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `name arg arg` per directive, nested blocks in `{ }`, for compact expectations.
    fn show(ds: &[Directive]) -> String {
        ds.iter()
            .map(|d| {
                let mut s = std::iter::once(d.name.as_str())
                    .chain(d.args.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join("|");
                if let Some(b) = &d.block {
                    s.push_str(&format!(" {{{}}}", show(b)));
                }
                s
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn trees() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("a;", "a"),
            ("a b c;", "a|b|c"),
            (
                "http { server { listen 80; } }",
                "http {server {listen|80}}",
            ),
            ("e {}", "e {}"),
            (
                "if ($request_method = POST) { return 405; }",
                "if|$request_method|=|POST {return|405}",
            ),
            ("if ( $a ~ \"(x)\" ) {}", "if|$a|~|(x) {}"),
            ("if ($a) {}", "if|$a {}"),
            ("if ($a ~ \"b\") {}", "if|$a|~|b {}"),
            ("if ($a = \"\") {}", "if|$a|=| {}"),
            ("iff ($a) {}", "iff|($a) {}"),
            ("set $x ${host}z;", "set|$x|${host}z"),
            (
                "content_by_lua_block { ngx.say('}') }",
                "content_by_lua_block| ngx.say('}') ",
            ),
            (
                "set_by_lua_block $r { return 1 }",
                "set_by_lua_block|$r| return 1 ",
            ),
            (
                "rewrite_by_lua_block{ a() } x;",
                "rewrite_by_lua_block| a() ; x",
            ),
            ("a # c ; }\n b;", "a|b"),
            ("\"\" x;", "|x"),
            (
                "log_format j escape=json '{\"a\":1,'\n  '\"b\":2}';",
                "log_format|j|escape=json|{\"a\":1,|\"b\":2}",
            ),
            ("a\r\nb;\r\n", "a|b"),
        ];
        for (text, want) in cases {
            let got = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(show(&got), *want, "{text:?}");
        }
    }

    #[test]
    fn errors() {
        let cases: &[(&str, &str)] = &[
            ("}", "1:1: unexpected \"}\""),
            ("a;\n  }", "2:3: unexpected \"}\""),
            ("a b }", "1:5: unexpected \"}\""),
            (
                "a b",
                "1:4: unexpected end of file, expecting \";\" or \"}\"",
            ),
            ("a {\n b;\n", "3:1: unexpected end of file, expecting \"}\""),
            (";", "1:1: unexpected \";\""),
            ("a;\n {", "2:2: unexpected \"{\""),
            (
                "a \"b;\n",
                "1:3: unexpected end of file, missing terminating \" character",
            ),
            (
                "a 'b\"c\"d;",
                "1:3: unexpected end of file, missing terminating ' character",
            ),
            ("a \"b\"c;", "1:6: unexpected \"c\""),
            ("a \"b\"}", "1:6: unexpected \"}\""),
            (
                "x { content_by_lua_block { a = '",
                "1:32: unterminated Lua string starting with '",
            ),
            (
                "content_by_lua_block { a() ",
                "1:28: unexpected end of file, expecting \"}\"",
            ),
            (
                "\u{feff}events {}",
                "1:1: byte order mark (U+FEFF) at the start of the file: nginx reads it as part \
                 of the first directive's name (unknown directive); save the file without it",
            ),
        ];
        for (text, want) in cases {
            let got = parse(text).expect_err(text);
            assert_eq!(got.to_string(), *want, "{text:?}");
        }
    }

    #[test]
    fn positions() {
        let text = "events {}\nhttp {\n  server { listen 80; }\n}\n";
        let ds = parse(text).expect("parses");
        let http = &ds[1];
        assert_eq!((http.line, http.col, http.start), (2, 1, 10));
        assert_eq!(http.block_open, Some(15));
        assert_eq!(
            &text[http.start..http.end],
            "http {\n  server { listen 80; }\n}"
        );
        let server = &http.block.as_ref().expect("block")[0];
        assert_eq!((server.line, server.col), (3, 3));
        let listen = &server.block.as_ref().expect("block")[0];
        assert_eq!(&text[listen.start..listen.end], "listen 80;");
        assert_eq!((listen.line, listen.col), (3, 12));
    }

    #[test]
    fn nesting_is_capped_not_recursive() {
        let ok = format!("{}{}", "a {".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let deep = "a {".repeat(100_000);
        let err = parse(&deep).expect_err("too deep");
        assert_eq!(err.line, 1);
        assert!(err.message.contains("nested deeper"), "{err}");
    }

    #[test]
    fn long_inputs_stay_linear() {
        const N: usize = 200_000;
        let started = std::time::Instant::now();
        let many = "a b;\n".repeat(N);
        assert_eq!(parse(&many).expect("parses").len(), N);
        let word = format!("a {};", "x".repeat(N * 5));
        assert_eq!(parse(&word).expect("parses")[0].args[0].len(), N * 5);
        let quoted = format!("a \"{}\";", "\\\"".repeat(N));
        assert_eq!(parse(&quoted).expect("parses")[0].args[0].len(), N);
        let lua = format!(
            "content_by_lua_block {{ {} }}",
            "t = { [1] = '}' } -- }\n".repeat(N / 4)
        );
        assert_eq!(parse(&lua).expect("parses").len(), 1);
        let blocks = "s { l { x; } }\n".repeat(N / 2);
        assert_eq!(parse(&blocks).expect("parses").len(), N / 2);
        let closes = "}".repeat(N);
        assert!(parse(&closes).is_err());
        // Generous: a quadratic scan of these inputs would take minutes.
        assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    }

    #[test]
    fn never_panics_on_odd_bytes() {
        for text in [
            "\\",
            "a\\",
            "\"\\",
            "'",
            "$",
            "${",
            "a ${",
            "#",
            "if (",
            "if ) {}",
            "\u{feff}a;",
        ] {
            let _ = parse(text);
        }
    }
}
