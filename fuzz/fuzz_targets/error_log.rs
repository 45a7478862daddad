//! Fuzz target: arbitrary bytes into the error-log line parser and classifier. They must
//! return without panicking, and every slice they return must lie inside the input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use reflex::parse::logs::error_log::parse;

fn inside(outer: &[u8], inner: &[u8]) {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    assert!(
        i >= o && i + inner.len() <= o + outer.len(),
        "slice outside the line"
    );
}

fuzz_target!(|data: &[u8]| {
    // Lines never contain a newline; the reader splits on it.
    let line = data.split(|&b| b == b'\n').next().unwrap_or_default();
    if let Ok(l) = parse(line) {
        inside(line, l.message);
        for f in [
            l.client,
            l.server,
            l.request,
            l.subrequest,
            l.upstream,
            l.host,
            l.referrer,
        ]
        .into_iter()
        .flatten()
        {
            inside(line, f);
        }
        if let Some(a) = l.upstream_addr() {
            inside(line, a);
        }
        if let Some(c) = l.classify() {
            let _ = c.class.as_str();
        }
    }
});
