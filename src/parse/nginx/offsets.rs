//! Offsets in a file's decoded text ↔ offsets in the file's bytes.
//!
//! nginx reads bytes; [`super::SourceFile::text`] is the file decoded lossily (each invalid UTF-8
//! sequence becomes one U+FFFD, three bytes), so after the first invalid sequence the text's
//! offsets run ahead of the file's. Directives, edits and diffs use text offsets; whatever
//! writes the file (`--fix`) or names byte positions to others (SARIF) maps them back here.

/// The mapping for one file. Empty (the identity) for valid UTF-8, the common case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ByteOffsets {
    /// `(text offset, byte offset)` just past each invalid sequence, in order.
    points: Vec<(usize, usize)>,
}

impl ByteOffsets {
    /// The mapping for a file with these bytes.
    pub fn new(raw: &[u8]) -> Self {
        let mut points = Vec::new();
        let (mut text, mut bytes) = (0, 0);
        for chunk in raw.utf8_chunks() {
            text += chunk.valid().len();
            bytes += chunk.valid().len();
            if !chunk.invalid().is_empty() {
                // `from_utf8_lossy` writes one U+FFFD per invalid sequence.
                text += char::REPLACEMENT_CHARACTER.len_utf8();
                bytes += chunk.invalid().len();
                points.push((text, bytes));
            }
        }
        ByteOffsets { points }
    }

    /// Whether text and bytes share offsets (the file is valid UTF-8).
    pub fn is_identity(&self) -> bool {
        self.points.is_empty()
    }

    /// The byte offset of text offset `t`. Offsets inside a U+FFFD map to the end of the
    /// bytes it replaced; edits never land there (they are on character boundaries).
    pub fn byte(&self, t: usize) -> usize {
        let i = self.points.partition_point(|(text, _)| *text <= t);
        match i.checked_sub(1).and_then(|i| self.points.get(i)) {
            Some((text, bytes)) => bytes + (t - text),
            None => t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_past_invalid_sequences() {
        // "caf\xe9.\n" in Latin-1: one invalid byte, decoded as a 3-byte U+FFFD.
        let raw = b"# caf\xe9.\nx;\n";
        let text = String::from_utf8_lossy(raw);
        let m = ByteOffsets::new(raw);
        assert!(!m.is_identity());
        let x = text.find("x;").expect("x");
        assert_eq!(&raw[m.byte(x)..m.byte(x) + 2], b"x;");
        assert_eq!(m.byte(0), 0);
        assert_eq!(m.byte(text.len()), raw.len());
        // Two invalid bytes in a row that form no sequence are two replacements.
        let raw = b"a\xff\xfeb";
        let text = String::from_utf8_lossy(raw);
        let m = ByteOffsets::new(raw);
        assert_eq!(m.byte(text.find('b').expect("b")), 3);
    }

    #[test]
    fn valid_utf8_is_the_identity() {
        let m = ByteOffsets::new("é;\n".as_bytes());
        assert!(m.is_identity());
        assert_eq!(m.byte(2), 2);
    }
}
