//! Tokenizer for one nginx configuration file's text.
//!
//! Word boundaries follow nginx's `ngx_conf_read_token` (`src/core/ngx_conf_file.c`, 1.22);
//! the *value* of a quoted word follows crossplane 0.5.8 (see [`super::Directive::args`]).
//! Where the two disagree on where a word ends, nginx wins, because nginx is what runs:
//!
//! - only space, tab, CR and LF separate words (crossplane uses Python's `isspace`, which also
//!   splits on form feed, NBSP, ...);
//! - inside a bare word `}` is an ordinary character (crossplane ends the word there);
//! - after a closing quote nginx requires whitespace, `;`, `{` or `)` and rejects anything else
//!   (crossplane starts a new word).
//!
//! The lexer owns no grammar: `;`, `{`, `}` come out as tokens and the parser decides whether
//! they are allowed. Comments are skipped. All positions are byte offsets into the text.

use super::SyntaxError;

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A word (directive name or argument), with crossplane's value for it.
    Word(String),
    /// `;`
    Semicolon,
    /// `{`
    Open,
    /// `}`
    Close,
    /// End of the text.
    Eof,
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    /// Byte offset of the token's first byte (the opening quote for a quoted word).
    pub start: usize,
    pub line: u32,
    pub col: u32,
}

/// A cursor over the text that keeps line and column up to date.
pub struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: u32,
    line_start: usize,
}

/// nginx's separators (`ngx_conf_read_token` tests exactly these four).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

impl<'a> Lexer<'a> {
    pub fn new(text: &'a str) -> Self {
        Lexer {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            line: 1,
            line_start: 0,
        }
    }

    /// Current byte offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    /// Consumes one byte, counting lines on LF as nginx does (quoted or not).
    fn bump(&mut self) {
        if let Some(&b) = self.bytes.get(self.pos) {
            self.pos += 1;
            if b == b'\n' {
                self.line += 1;
                self.line_start = self.pos;
            }
        }
    }

    fn col(&self) -> u32 {
        u32::try_from(self.pos - self.line_start + 1).unwrap_or(u32::MAX)
    }

    /// An error positioned at the cursor.
    pub fn error_here(&self, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            line: self.line,
            col: self.col(),
            message: message.into(),
        }
    }

    /// The next token, skipping whitespace and comments.
    pub fn next_token(&mut self) -> Result<Token, SyntaxError> {
        loop {
            match self.peek() {
                Some(b) if is_space(b) => self.bump(),
                // nginx: `#` starts a comment only where a word could start.
                Some(b'#') => {
                    while let Some(b) = self.peek() {
                        if b == b'\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                _ => break,
            }
        }
        let (start, line, col) = (self.pos, self.line, self.col());
        let kind = match self.peek() {
            None => Kind::Eof,
            Some(b';') => {
                self.bump();
                Kind::Semicolon
            }
            Some(b'{') => {
                self.bump();
                Kind::Open
            }
            Some(b'}') => {
                self.bump();
                Kind::Close
            }
            Some(q @ (b'"' | b'\'')) => Kind::Word(self.quoted(q, line, col)?),
            Some(_) => Kind::Word(self.bare()),
        };
        Ok(Token {
            kind,
            start,
            line,
            col,
        })
    }

    /// A bare word: ends at whitespace, `;` or `{` (but not at the `{` of `${`), or at the end.
    /// A backslash protects the next byte. The value is the text as written.
    fn bare(&mut self) -> String {
        let start = self.pos;
        let mut variable = false;
        while let Some(b) = self.peek() {
            match b {
                b'\\' => {
                    variable = false;
                    self.bump();
                    self.bump();
                    continue;
                }
                // nginx keeps `variable` set after `${`, so `${{` stays in the word too.
                b'{' if variable => {}
                b';' | b'{' => break,
                b if is_space(b) => break,
                b'$' => {
                    variable = true;
                    self.bump();
                    continue;
                }
                _ => variable = false,
            }
            self.bump();
        }
        self.text[start..self.pos].to_string()
    }

    /// A quoted word starting at the opening quote `q`. crossplane's value: the text between the
    /// quotes, where `\q` becomes `q` and every other backslash pair stays as written.
    fn quoted(&mut self, q: u8, line: u32, col: u32) -> Result<String, SyntaxError> {
        self.bump();
        let mut value = String::new();
        let mut chunk = self.pos;
        loop {
            match self.peek() {
                None => {
                    return Err(SyntaxError {
                        line,
                        col,
                        message: format!(
                            "unexpected end of file, missing terminating {} character",
                            q as char
                        ),
                    });
                }
                Some(b'\\') => {
                    if self.peek_at(1) == Some(q) {
                        value.push_str(&self.text[chunk..self.pos]);
                        value.push(q as char);
                        self.bump();
                        self.bump();
                        chunk = self.pos;
                    } else {
                        self.bump();
                        self.bump();
                    }
                }
                Some(b) if b == q => {
                    value.push_str(&self.text[chunk..self.pos]);
                    self.bump();
                    break;
                }
                Some(_) => self.bump(),
            }
        }
        // nginx: a closing quote must be followed by a separator, `;`, `{` or `)`
        // (the `)` is there for `if ($a = "b")`); anything else is an error.
        match self.peek() {
            None | Some(b';' | b'{' | b')') => Ok(value),
            Some(b) if is_space(b) => Ok(value),
            Some(_) => {
                let c = self.text[self.pos..].chars().next().unwrap_or('?');
                Err(self.error_here(format!("unexpected \"{c}\"")))
            }
        }
    }

    /// The raw body of a `*_by_lua_block` whose `{` was just consumed: everything up to the
    /// matching `}`, which is consumed too. Braces inside Lua strings and comments don't count.
    ///
    /// crossplane's Lua lexer knows `"..."`, `'...'` and `--` line comments; nginx's Lua module
    /// also knows long brackets (`[[...]]`, `[==[...]==]`, `--[[...]]`), so those are skipped
    /// here too. The body text is the same either way; only where it ends can differ, and only
    /// when a long bracket contains an unbalanced brace.
    pub fn lua_body(&mut self) -> Result<String, SyntaxError> {
        let start = self.pos;
        let mut depth = 1usize;
        while let Some(b) = self.peek() {
            match b {
                b'\\' => {
                    self.bump();
                    self.bump();
                }
                b'-' if self.peek_at(1) == Some(b'-') => {
                    self.bump();
                    self.bump();
                    if !self.long_bracket()? {
                        self.lua_line_comment();
                    }
                }
                b'[' => {
                    if !self.long_bracket()? {
                        self.bump();
                    }
                }
                b'"' | b'\'' => self.lua_string(b)?,
                b'{' => {
                    depth += 1;
                    self.bump();
                }
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        let body = self.text[start..self.pos].to_string();
                        self.bump();
                        return Ok(body);
                    }
                    self.bump();
                }
                _ => self.bump(),
            }
        }
        Err(self.error_here("unexpected end of file, expecting \"}\""))
    }

    fn lua_line_comment(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b'\n' => break,
                b'\\' => {
                    self.bump();
                    self.bump();
                }
                _ => self.bump(),
            }
        }
    }

    fn lua_string(&mut self, q: u8) -> Result<(), SyntaxError> {
        let (line, col) = (self.line, self.col());
        self.bump();
        loop {
            match self.peek() {
                None => {
                    return Err(SyntaxError {
                        line,
                        col,
                        message: format!("unterminated Lua string starting with {}", q as char),
                    });
                }
                Some(b'\\') => {
                    self.bump();
                    self.bump();
                }
                Some(b) if b == q => {
                    self.bump();
                    return Ok(());
                }
                Some(_) => self.bump(),
            }
        }
    }

    /// If the cursor is at a Lua long bracket `[=*[`, skips to its matching `]=*]` and returns
    /// true; otherwise consumes nothing and returns false.
    fn long_bracket(&mut self) -> Result<bool, SyntaxError> {
        if self.peek() != Some(b'[') {
            return Ok(false);
        }
        let mut level = 0;
        while self.peek_at(1 + level) == Some(b'=') {
            level += 1;
        }
        if self.peek_at(1 + level) != Some(b'[') {
            return Ok(false);
        }
        let (line, col) = (self.line, self.col());
        for _ in 0..level + 2 {
            self.bump();
        }
        let close = format!("]{}]", "=".repeat(level));
        match self.text[self.pos..].find(&close) {
            Some(n) => {
                for _ in 0..n + close.len() {
                    self.bump();
                }
                Ok(true)
            }
            None => Err(SyntaxError {
                line,
                col,
                message: "unterminated Lua long bracket".to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let mut lx = Lexer::new(text);
        let mut out = Vec::new();
        loop {
            let t = lx.next_token().expect("lexes");
            match t.kind {
                Kind::Word(w) => out.push(w),
                Kind::Semicolon => out.push(";".into()),
                Kind::Open => out.push("{".into()),
                Kind::Close => out.push("}".into()),
                Kind::Eof => return out,
            }
        }
    }

    #[test]
    fn word_boundaries_follow_nginx() {
        let cases: &[(&str, &[&str])] = &[
            ("a b;", &["a", "b", ";"]),
            ("a#b c;", &["a#b", "c", ";"]),
            ("a #b c\nd;", &["a", "d", ";"]),
            ("set $x ${host}z;", &["set", "$x", "${host}z", ";"]),
            ("a${{b} c", &["a${{b}", "c"]),
            ("a{b", &["a", "{", "b"]),
            ("a}b;", &["a}b", ";"]),
            (
                "w a\\ b a\\;b \\\"x;",
                &["w", "a\\ b", "a\\;b", "\\\"x", ";"],
            ),
            ("x c\"d e'f;", &["x", "c\"d", "e'f", ";"]),
            ("a\u{a0}b;", &["a\u{a0}b", ";"]),
            ("a\x0cb;", &["a\x0cb", ";"]),
            ("}}", &["}", "}"]),
        ];
        for (text, want) in cases {
            assert_eq!(words(text), *want, "{text:?}");
        }
    }

    #[test]
    fn quoted_values_follow_crossplane() {
        let cases: &[(&str, &str)] = &[
            (r#""q\"w\'e\\r\n";"#, r#"q"w\'e\\r\n"#),
            (r#"'q\'w\"e';"#, r#"q'w\"e"#),
            ("\"a b\nc\";", "a b\nc"),
            ("\"\";", ""),
            (r#""a{b}#c;";"#, "a{b}#c;"),
        ];
        for (text, want) in cases {
            assert_eq!(words(text)[0], *want, "{text:?}");
        }
    }

    #[test]
    fn closing_quote_needs_a_separator() {
        assert_eq!(words("if ($a = \"b\")"), ["if", "($a", "=", "b", ")"]);
        let mut lx = Lexer::new("a \"b\"c;");
        lx.next_token().expect("first word");
        let err = lx.next_token().expect_err("no separator after the quote");
        assert_eq!(err.to_string(), "1:6: unexpected \"c\"");
    }

    #[test]
    fn lua_bodies() {
        let cases: &[(&str, &str)] = &[
            (" ngx.say('}') }", " ngx.say('}') "),
            (
                "\n -- a } comment\n x = \"}{\" .. '{' .. \"\\\"}\" }",
                "\n -- a } comment\n x = \"}{\" .. '{' .. \"\\\"}\" ",
            ),
            (" t = { a = { } } }", " t = { a = { } } "),
            (
                " s = [[ } ]] --[==[ { ]==] }",
                " s = [[ } ]] --[==[ { ]==] ",
            ),
            (" a[b] = c[ [=[x]=] ] }", " a[b] = c[ [=[x]=] ] "),
            ("}", ""),
        ];
        for (text, want) in cases {
            let mut lx = Lexer::new(text);
            assert_eq!(lx.lua_body().expect("lua body"), *want, "{text:?}");
            assert_eq!(lx.pos(), text.len());
        }
        for bad in [" x = '", " x = [[ ", " { ", " -- }"] {
            assert!(Lexer::new(bad).lua_body().is_err(), "{bad:?}");
        }
    }
}
