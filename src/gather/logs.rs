//! Reading log files for `reflex logs`: line-by-line reads through one large reused buffer
//! (no per-line allocation, no mmap), and finding where a `--since` window starts by binary
//! search on timestamps, so a window at the end of a big file costs a few small reads plus the
//! window itself. Whatever a line means is `crate::parse::logs`'s business.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

/// The read buffer. Large enough that read syscalls are a rounding error; lines longer than
/// this are passed on cut (they fail to parse and are counted as malformed).
pub const BUF: usize = 1 << 20;

/// Bytes read at each probe of the binary search.
const PROBE: usize = 64 << 10;

/// Calls `f` with every line of `r` (newline removed; a last line without a newline
/// included). Returns the bytes read.
pub fn for_each_line<R: Read>(mut r: R, mut f: impl FnMut(&[u8])) -> io::Result<u64> {
    let mut buf = vec![0u8; BUF];
    let mut filled = 0;
    let mut total = 0u64;
    let mut skipping = false; // inside the tail of an over-long line
    loop {
        let n = match r.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += n as u64;
        if n == 0 {
            if filled > 0 && !skipping {
                f(&buf[..filled]);
            }
            return Ok(total);
        }
        filled += n;
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', &buf[..filled]) {
            if skipping {
                skipping = false;
            } else {
                f(&buf[start..nl]);
            }
            start = nl + 1;
        }
        if start == 0 && filled == buf.len() {
            // No newline in a whole buffer: pass the cut line on once, skip the rest of it.
            if !skipping {
                f(&buf[..filled]);
            }
            skipping = true;
            filled = 0;
        } else {
            buf.copy_within(start..filled, 0);
            filled -= start;
        }
    }
}

/// The offset of the first line whose time (by `time_of`) is at or after `cutoff`, assuming
/// times grow through the file (nginx writes each line when the request ends, so they do,
/// give or take the longest request). Lines without a readable time are stepped over.
pub fn seek_since(
    file: &mut File,
    cutoff: i64,
    mut time_of: impl FnMut(&[u8]) -> Option<i64>,
) -> io::Result<u64> {
    let len = file.metadata()?.len();
    let mut lo = 0u64; // a line start known to be before the cutoff (or 0)
    let mut hi = len; // an offset at or after which lines are at/after the cutoff
    let mut buf = vec![0u8; PROBE];
    while hi - lo > PROBE as u64 {
        let mid = lo + (hi - lo) / 2;
        file.seek(SeekFrom::Start(mid))?;
        let n = read_full(file, &mut buf)?;
        match first_time(&buf[..n], &mut time_of) {
            Some((off, t)) if t < cutoff => lo = mid + off as u64,
            Some(_) => hi = mid,
            // No complete timed line in this probe: look earlier.
            None => hi = mid,
        }
    }
    Ok(lo)
}

/// The first complete line after the first newline in `b` that has a time: its offset and time.
fn first_time(b: &[u8], time_of: &mut impl FnMut(&[u8]) -> Option<i64>) -> Option<(usize, i64)> {
    let mut start = memchr::memchr(b'\n', b)? + 1;
    for nl in memchr::memchr_iter(b'\n', &b[start..]) {
        let line = &b[start..start + nl];
        if let Some(t) = time_of(line) {
            return Some((start, t));
        }
        start += nl + 1;
        if start >= b.len() {
            break;
        }
    }
    None
}

/// Reads until `buf` is full or the file ends.
pub fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The first lines of `file` from `offset` (at most `max` bytes, whole lines only), for
/// detecting what kind of log it is. Leaves the file position unspecified.
pub fn sample(file: &mut File, offset: u64, max: usize) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; max];
    let n = read_full(file, &mut buf)?;
    buf.truncate(n);
    if n == max
        && let Some(nl) = memchr::memrchr(b'\n', &buf)
    {
        buf.truncate(nl);
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn lines_across_buffers() {
        let mut text = Vec::new();
        for i in 0..200_000 {
            writeln!(text, "line {i}").expect("write");
        }
        text.extend_from_slice(b"last");
        let mut n = 0;
        let mut last = Vec::new();
        let total = for_each_line(&text[..], |l| {
            n += 1;
            last = l.to_vec();
        })
        .expect("read");
        assert_eq!(n, 200_001);
        assert_eq!(last, b"last");
        assert_eq!(total, text.len() as u64);
    }

    #[test]
    fn overlong_line_is_cut_once() {
        let mut text = vec![b'x'; BUF + 10];
        text.extend_from_slice(b"\nok\n");
        let mut lines = Vec::new();
        for_each_line(&text[..], |l| lines.push(l.len())).expect("read");
        assert_eq!(lines, [BUF, 2]);
    }

    #[test]
    fn binary_search_finds_the_window() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        let mut text = Vec::new();
        for t in 0..100_000i64 {
            writeln!(text, "{t:08} some padding to make the line longer").expect("write");
        }
        std::fs::write(&path, &text).expect("write");
        let mut f = File::open(&path).expect("open");
        let time_of = |l: &[u8]| std::str::from_utf8(l.get(..8)?).ok()?.parse().ok();
        let off = seek_since(&mut f, 90_000, time_of).expect("seek") as usize;
        let first_after = text[off..]
            .split(|&b| b == b'\n')
            .find_map(|l| time_of(l).filter(|&t| t >= 90_000));
        assert_eq!(first_after, Some(90_000));
        // The start is before the window, but by less than a probe.
        assert!(time_of(&text[off..]).is_some_and(|t| t <= 90_000));
        assert!(text.len() - off < 10_001 * 48 + 2 * PROBE);
        assert_eq!(seek_since(&mut f, 0, time_of).expect("seek"), 0);
    }
}
