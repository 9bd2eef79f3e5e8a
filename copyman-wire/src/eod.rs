//! The end-of-data marker `\.` in text and CSV COPY input.
//!
//! A server reading `COPY … FROM STDIN` in text or CSV format takes a line that is exactly `\.`
//! as the end of the data and silently ignores every byte after it until the CopyDone. A file
//! or stdin that holds such a line before its end would load only the rows above it and report
//! success: [`EndOfDataScanner`] finds that line in a stream read in chunks split anywhere, so
//! the caller can refuse the input instead.
//!
//! What counts, and what does not:
//! * a line that is exactly `\.`, ended by LF or CRLF, followed by any byte at all: found, with
//!   its 1-based line number;
//! * `\.` as the very last line (with or without its line end): allowed, the server stops there
//!   and nothing follows it;
//! * a stream that starts with the binary COPY signature (`PGCOPY\n\xff\r\n\0`): not scanned,
//!   binary data has no lines.
//!
//! Not here: the finer rules of the text format (where a server also ends the data at a `\.`
//! escape that ends a longer line) and CSV quoting (where a `\.` line inside a quoted value is
//! data, and would be refused here); the scanner is deliberately format-blind, so that it can
//! guard input whose COPY options it does not know. Its cost is one byte comparison per line
//! start plus a search for the next LF.

/// The binary COPY file signature: its first 11 bytes.
pub const BINARY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Where the scanner stands in the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// At the start of a line.
    Start,
    /// The line so far is `\`.
    Backslash,
    /// The line so far is `\.`.
    Dot,
    /// The line so far is `\.\r`.
    DotCr,
    /// The line is something else; waiting for its LF.
    Other,
}

/// Finds a line that is exactly `\.` anywhere but at the very end of a text or CSV stream, over
/// chunks split anywhere.
///
/// ```
/// use copyman_wire::eod::EndOfDataScanner;
///
/// let mut scanner = EndOfDataScanner::new();
/// assert_eq!(scanner.feed(b"1\tone\n\\"), None);
/// // The marker's line end and the bytes after it may come in later chunks.
/// assert_eq!(scanner.feed(b".\r\n"), None);
/// assert_eq!(scanner.feed(b"3\tthree\n"), Some(2));
///
/// // A marker as the last line is allowed.
/// let mut scanner = EndOfDataScanner::new();
/// assert_eq!(scanner.feed(b"1\tone\n\\.\n"), None);
/// assert_eq!(scanner.finish(), None);
/// ```
#[derive(Debug, Clone)]
pub struct EndOfDataScanner {
    line: Line,
    /// The 1-based number of the line being read.
    number: u64,
    /// A complete marker line was the last thing seen: its number.
    pending: Option<u64>,
    /// A marker line with data after it: its number (sticky).
    found: Option<u64>,
    /// Bytes of the stream seen so far, up to the signature's length.
    head: usize,
    /// Whether the stream so far matches the binary signature.
    head_matches: bool,
    /// The stream is binary COPY data: not scanned.
    binary: bool,
}

impl Default for EndOfDataScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl EndOfDataScanner {
    /// A scanner at the start of a stream.
    pub fn new() -> Self {
        Self {
            line: Line::Start,
            number: 1,
            pending: None,
            found: None,
            head: 0,
            head_matches: true,
            binary: false,
        }
    }

    /// Reads the next chunk of the stream. Returns the line number of a `\.` line that has data
    /// after it, once one was seen (and from then on, whatever is fed).
    pub fn feed(&mut self, chunk: &[u8]) -> Option<u64> {
        if self.found.is_some() || self.binary {
            return self.found;
        }
        if self.head < BINARY_SIGNATURE.len() && self.head_matches {
            let take = (BINARY_SIGNATURE.len() - self.head).min(chunk.len());
            self.head_matches = chunk[..take] == BINARY_SIGNATURE[self.head..self.head + take];
            self.head += take;
            if self.head_matches && self.head == BINARY_SIGNATURE.len() {
                // The signature holds no backslash: nothing was found in it.
                self.binary = true;
                return None;
            }
        }
        let mut at = 0;
        while at < chunk.len() {
            if let Some(number) = self.pending {
                self.found = Some(number);
                return self.found;
            }
            if self.line == Line::Other {
                // Skip to the next line end without looking at the bytes between.
                match chunk[at..].iter().position(|&b| b == b'\n') {
                    Some(lf) => {
                        at += lf + 1;
                        self.end_line();
                    }
                    None => return None,
                }
                continue;
            }
            let byte = chunk[at];
            at += 1;
            self.line = match (self.line, byte) {
                (_, b'\n') => {
                    self.end_line();
                    continue;
                }
                (Line::Start, b'\\') => Line::Backslash,
                (Line::Backslash, b'.') => Line::Dot,
                (Line::Dot, b'\r') => Line::DotCr,
                _ => Line::Other,
            };
        }
        None
    }

    /// The stream ended. A `\.` line with data after it, if one was seen; a marker as the last
    /// line is no finding.
    pub fn finish(&self) -> Option<u64> {
        self.found
    }

    /// The 1-based number of the line being read (lines are counted by LF).
    pub fn line_number(&self) -> u64 {
        self.number
    }

    /// Whether the stream turned out to be binary COPY data, which is not scanned.
    pub fn is_binary(&self) -> bool {
        self.binary
    }

    fn end_line(&mut self) {
        if matches!(self.line, Line::Dot | Line::DotCr) {
            self.pending = Some(self.number);
        }
        self.number = self.number.saturating_add(1);
        self.line = Line::Start;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The definition, on the whole input at once: the first line (split at LF) that is `\.` or
    /// `\.\r`, ended by its LF, with at least one byte after that LF; none for binary input.
    fn reference(input: &[u8]) -> Option<u64> {
        if input.starts_with(BINARY_SIGNATURE) {
            return None;
        }
        let mut start = 0;
        let mut number = 1;
        while let Some(lf) = input[start..].iter().position(|&b| b == b'\n') {
            let line = &input[start..start + lf];
            let next = start + lf + 1;
            if (line == b"\\." || line == b"\\.\r") && next < input.len() {
                return Some(number);
            }
            start = next;
            number += 1;
        }
        None
    }

    fn scan(chunks: &[&[u8]]) -> Option<u64> {
        let mut scanner = EndOfDataScanner::new();
        for chunk in chunks {
            scanner.feed(chunk);
        }
        scanner.finish()
    }

    #[test]
    fn markers_and_non_markers() {
        assert_eq!(scan(&[b"a\n\\.\nb\n"]), Some(2));
        assert_eq!(scan(&[b"\\.\r\nb"]), Some(1));
        assert_eq!(scan(&[b"a\n\\.\n"]), None, "trailing marker");
        assert_eq!(scan(&[b"a\n\\.\r\n"]), None, "trailing marker, CRLF");
        assert_eq!(scan(&[b"a\n\\."]), None, "trailing marker without LF");
        assert_eq!(scan(&[b"a\n\\.\n\n"]), Some(2), "even an empty line after it");
        assert_eq!(scan(&[b"a\\.\nb\n"]), None, "not alone on its line");
        assert_eq!(scan(&[b" \\.\nb\n"]), None);
        assert_eq!(scan(&[b"\\.x\nb\n"]), None);
        assert_eq!(scan(&[b"\\\\.\nb\n"]), None);
        assert_eq!(scan(&[b"\\.\r\rb\n"]), None);
        assert_eq!(scan(&[b""]), None);
        // Split anywhere.
        assert_eq!(scan(&[b"a\n\\", b".", b"\r", b"\n", b"b"]), Some(2));
        assert_eq!(scan(&[b"a\n\\", b".", b"\r", b"\n", b""]), None);
    }

    #[test]
    fn binary_is_not_scanned() {
        let mut data = BINARY_SIGNATURE.to_vec();
        data.extend_from_slice(b"\n\\.\nmore");
        assert_eq!(scan(&[&data]), None);
        assert_eq!(scan(&[&data[..3], &data[3..12], &data[12..]]), None);
        // A near miss is text.
        data[3] = b'X';
        assert!(scan(&[&data]).is_some());
    }

    #[test]
    fn found_is_sticky_and_lines_are_counted() {
        let mut scanner = EndOfDataScanner::new();
        assert_eq!(scanner.feed(b"1\n2\n\\.\n"), None);
        assert_eq!(scanner.line_number(), 4);
        assert_eq!(scanner.feed(b"4\n"), Some(3));
        assert_eq!(scanner.feed(b""), Some(3));
        assert_eq!(scanner.finish(), Some(3));
    }

    fn stream() -> impl Strategy<Value = Vec<u8>> {
        // Mostly the bytes that matter, so markers and near misses are common.
        let byte = prop_oneof![
            4 => Just(b'\\'),
            4 => Just(b'.'),
            3 => Just(b'\n'),
            2 => Just(b'\r'),
            2 => Just(b'a'),
            1 => any::<u8>(),
        ];
        prop_oneof![
            8 => proptest::collection::vec(byte.clone(), 0..64),
            1 => proptest::collection::vec(byte, 0..64).prop_map(|tail| {
                let mut v = BINARY_SIGNATURE.to_vec();
                v.extend(tail);
                v
            }),
        ]
    }

    proptest! {
        #[test]
        fn any_split_finds_what_the_whole_input_holds(
            input in stream(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut from = 0;
            for cut in cuts {
                chunks.push(&input[from..cut]);
                from = cut;
            }
            chunks.push(&input[from..]);
            prop_assert_eq!(scan(&chunks), reference(&input));
        }

        #[test]
        fn byte_at_a_time_is_the_same(input in stream()) {
            let chunks: Vec<&[u8]> = input.chunks(1).collect();
            prop_assert_eq!(scan(&chunks), reference(&input));
        }

        #[test]
        fn the_line_count_is_the_lf_count(input in stream()) {
            let mut scanner = EndOfDataScanner::new();
            if scanner.feed(&input).is_none() && !scanner.is_binary() {
                let lfs = input.iter().filter(|&&b| b == b'\n').count() as u64;
                prop_assert_eq!(scanner.line_number(), lfs + 1);
            }
        }
    }
}
