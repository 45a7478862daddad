//! Fuzz target: arbitrary bytes (decoded lossily, as the loader does) into the nginx parser.
//! It must return `Ok` or `Err` without panicking or hanging, and an `Ok` tree must be
//! positioned inside the text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use reflex::parse::nginx::{Directive, parse};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse(&text) {
        Ok(directives) => check(&directives, &text, 0, text.len()),
        Err(e) => assert!(e.line >= 1 && e.col >= 1, "bad error position: {e}"),
    }
});

/// Every directive lies inside its parent's span, after its previous sibling, with a sane
/// position, and a block directive's `{` lies inside its own span.
fn check(directives: &[Directive], text: &str, lo: usize, hi: usize) {
    let mut prev_end = lo;
    for d in directives {
        assert!(d.line >= 1 && d.col >= 1, "{d:?}");
        assert!(
            prev_end <= d.start && d.start < d.end && d.end <= hi,
            "{d:?}"
        );
        assert!(text.is_char_boundary(d.start) && text.is_char_boundary(d.end));
        let line = 1 + text[..d.start].matches('\n').count();
        assert_eq!(d.line as usize, line, "{d:?}");
        if let Some(open) = d.block_open {
            assert!(d.start < open && open < d.end, "{d:?}");
            assert_eq!(text.as_bytes()[open], b'{');
            assert_eq!(text.as_bytes()[d.end - 1], b'}');
        }
        if let Some(block) = &d.block {
            let open = d.block_open.expect("a block has a `{`");
            check(block, text, open + 1, d.end - 1);
        }
        prev_end = d.end;
    }
}
