//! The end-of-data marker `\.` in text and CSV COPY input.
//!
//! A server reading `COPY … FROM STDIN` in text or CSV format takes `\.` as the end of the data
//! and silently ignores every byte after it until the CopyDone. A file or stdin that holds one
//! before its end would load only the rows above it and report success: [`EndOfDataScanner`]
//! finds the marker in a stream read in chunks split anywhere, so the caller can refuse the input
//! instead. Where the server sees the marker depends on the format ([`Mode`]):
//!
//! * [`Mode::Text`] (PostgreSQL's text format): a backslash escapes the byte after it, and an
//!   escaped `.` followed by the line end ends the data, alone on its line or at the end of a
//!   longer one (`1\tone\.` loads `1, one` and drops the rest). `\\.` is a backslash and a dot;
//!   `\.` followed by anything else is an error on the server, which loses nothing.
//! * [`Mode::Lines`] (CSV, or a format not known): a line that is exactly `\.`. In CSV a `\.`
//!   line inside a quoted value is data; the scanner does not follow quotes (their characters
//!   are COPY options it is not told), so it refuses such input rather than risk a silent loss.
//!
//! A line ends as the server ends it: LF, CRLF, or a lone CR (a file written with old Mac line
//! ends, which the server takes as such: a `\.` line there ends the data too). Either way a marker
//! that is followed by no byte at all (the last line, with or without its line end) is allowed:
//! the server stops there and nothing is lost. A stream that starts
//! with the binary COPY signature (`PGCOPY\n\xff\r\n\0`) is not scanned: binary data has no lines.
//!
//! The cost is a search for the next CR or LF (or backslash, in text mode) and a few comparisons
//! around each.

/// The binary COPY file signature: its first 11 bytes.
pub const BINARY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Where the server looks for the marker: the COPY format of the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// PostgreSQL's text format: backslash escapes, `\.` ending any line.
    Text,
    /// A line that is exactly `\.` (CSV, or a format not known).
    Lines,
}

/// A marker with data after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// The 1-based number of its line (lines end with LF, CRLF or a lone CR).
    pub line: u64,
    /// Whether the line is exactly `\.` (else it ends a longer line, in text mode).
    pub alone: bool,
}

/// Where the scanner stands in the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// At the start of a line.
    Start,
    /// Just after a backslash that escapes the next byte (text) or that opened the line
    /// (lines).
    Backslash,
    /// Just after a `\.`.
    Dot,
    /// Just after `\.\r`: the marker, ended by a CR or, if an LF comes next, a CRLF.
    DotCr,
    /// Just after a CR that is not a marker's: a line end, with the LF of a CRLF or alone.
    Cr,
    /// Anywhere else in a line.
    Other,
}

/// Finds the end-of-data marker anywhere but at the very end of a text or CSV stream, over chunks
/// split anywhere (see the module).
///
/// ```
/// use copyman_wire::eod::{EndOfDataScanner, Marker, Mode};
///
/// let mut scanner = EndOfDataScanner::new(Mode::Lines);
/// assert_eq!(scanner.feed(b"1,one\n\\"), None);
/// // The marker's line end and the bytes after it may come in later chunks.
/// assert_eq!(scanner.feed(b".\r\n"), None);
/// assert_eq!(scanner.feed(b"3,three\n"), Some(Marker { line: 2, alone: true }));
///
/// // Text: the marker may end a longer line.
/// let mut scanner = EndOfDataScanner::new(Mode::Text);
/// assert_eq!(scanner.feed(b"1\tone\\.\n2\ttwo\n"), Some(Marker { line: 1, alone: false }));
///
/// // A marker as the last line is allowed.
/// let mut scanner = EndOfDataScanner::new(Mode::Text);
/// assert_eq!(scanner.feed(b"1\tone\n\\.\n"), None);
/// assert_eq!(scanner.finish(), None);
/// ```
#[derive(Debug, Clone)]
pub struct EndOfDataScanner {
    mode: Mode,
    line: Line,
    /// The backslash of the current `\.` was the first byte of its line.
    at_start: bool,
    /// The 1-based number of the line being read.
    number: u64,
    /// A complete marker was the last thing seen.
    pending: Option<Marker>,
    /// A marker with data after it (sticky).
    found: Option<Marker>,
    /// Bytes of the stream seen so far, up to the signature's length.
    head: usize,
    /// Whether the stream so far matches the binary signature.
    head_matches: bool,
    /// The stream is binary COPY data: not scanned.
    binary: bool,
}

impl EndOfDataScanner {
    /// A scanner at the start of a stream in `mode`.
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            line: Line::Start,
            at_start: false,
            number: 1,
            pending: None,
            found: None,
            head: 0,
            head_matches: true,
            binary: false,
        }
    }

    /// Reads the next chunk of the stream. Returns a marker that has data after it, once one
    /// was seen (and from then on, whatever is fed).
    pub fn feed(&mut self, chunk: &[u8]) -> Option<Marker> {
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
            if let Some(marker) = self.pending {
                self.found = Some(marker);
                return self.found;
            }
            if self.line == Line::Other {
                // Skip to the next byte that matters without looking at those between.
                let next = match self.mode {
                    Mode::Lines => memchr::memchr2(b'\n', b'\r', &chunk[at..]),
                    Mode::Text => memchr::memchr3(b'\n', b'\r', b'\\', &chunk[at..]),
                };
                match next {
                    Some(skip) => at += skip,
                    None => return None,
                }
            }
            let byte = chunk[at];
            at += 1;
            self.step(byte);
            if self.found.is_some() {
                return self.found;
            }
        }
        None
    }

    /// The marker whose `\.` was just read, at the end of its line.
    fn marker(&self) -> Marker {
        Marker {
            line: self.number,
            alone: self.at_start,
        }
    }

    fn step(&mut self, byte: u8) {
        self.line = match (self.mode, self.line, byte) {
            // An escaped LF (text) is data to the server; it still counts as a line here.
            (Mode::Text, Line::Backslash, b'\n') => {
                self.number = self.number.saturating_add(1);
                Line::Other
            }
            // `\.` and a CR: the marker, whether an LF follows (CRLF) or not (a lone CR: the
            // server's line end in a CR file; in an LF file, an error on the server).
            (_, Line::DotCr, b'\n') => {
                self.pending = Some(self.marker());
                self.number = self.number.saturating_add(1);
                Line::Start
            }
            (_, Line::DotCr, _) => {
                // A byte after the marker's lone CR: data the server would drop.
                self.found = Some(self.marker());
                Line::Other
            }
            (_, Line::Dot, b'\r') => Line::DotCr,
            (_, Line::Cr, b'\n') => {
                self.number = self.number.saturating_add(1);
                Line::Start
            }
            (_, Line::Cr, _) => {
                // The CR ended its line alone: this byte starts the next one.
                self.number = self.number.saturating_add(1);
                self.line = Line::Start;
                return self.step(byte);
            }
            (_, line, b'\n') => {
                if line == Line::Dot {
                    self.pending = Some(self.marker());
                }
                self.number = self.number.saturating_add(1);
                Line::Start
            }
            (_, _, b'\r') => Line::Cr,
            (_, Line::Start, b'\\') => {
                self.at_start = true;
                Line::Backslash
            }
            (Mode::Text, Line::Other, b'\\') => {
                self.at_start = false;
                Line::Backslash
            }
            (_, Line::Backslash, b'.') => Line::Dot,
            _ => Line::Other,
        };
    }

    /// The stream ended. A marker with data after it, if one was seen; a marker at the very end
    /// is no finding.
    pub fn finish(&self) -> Option<Marker> {
        self.found
    }

    /// The 1-based number of the line being read (lines end with LF, CRLF or a lone CR; a CR
    /// that the stream's last bytes end with is not counted yet).
    pub fn line_number(&self) -> u64 {
        self.number
    }

    /// Whether the stream turned out to be binary COPY data, which is not scanned.
    pub fn is_binary(&self) -> bool {
        self.binary
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The line ends of `input`: each as (where it starts, where the next line starts). A line
    /// ends with LF, CRLF or a lone CR; a CR that ends the input may yet be a CRLF's: not one.
    fn line_ends(input: &[u8]) -> Vec<(usize, usize)> {
        let mut ends = Vec::new();
        let mut at = 0;
        while let Some(i) = input[at..].iter().position(|&b| b == b'\n' || b == b'\r') {
            let end = at + i;
            let next = match (input[end], input.get(end + 1)) {
                (b'\r', Some(b'\n')) => end + 2,
                (b'\r', None) => break,
                _ => end + 1,
            };
            ends.push((end, next));
            at = next;
        }
        ends
    }

    /// The definition, on the whole input at once: the first line (ended by LF, CRLF or a lone
    /// CR) that is `\.`, with at least one byte after its line end; none for binary input.
    fn reference(input: &[u8]) -> Option<u64> {
        if input.starts_with(BINARY_SIGNATURE) {
            return None;
        }
        let mut start = 0;
        for (number, (end, next)) in (1..).zip(line_ends(input)) {
            if &input[start..end] == b"\\." && next < input.len() {
                return Some(number);
            }
            start = next;
        }
        None
    }

    fn scan_in(mode: Mode, chunks: &[&[u8]]) -> Option<Marker> {
        let mut scanner = EndOfDataScanner::new(mode);
        for chunk in chunks {
            scanner.feed(chunk);
        }
        scanner.finish()
    }

    /// Lines mode: the marker's line number.
    fn scan(chunks: &[&[u8]]) -> Option<u64> {
        scan_in(Mode::Lines, chunks).map(|m| {
            assert!(m.alone);
            m.line
        })
    }

    /// Text mode: the marker's line number and whether it is alone.
    fn text(input: &[u8]) -> Option<(u64, bool)> {
        scan_in(Mode::Text, &[input]).map(|m| (m.line, m.alone))
    }

    #[test]
    fn markers_and_non_markers() {
        assert_eq!(scan(&[b"a\n\\.\nb\n"]), Some(2));
        assert_eq!(scan(&[b"\\.\r\nb"]), Some(1));
        assert_eq!(scan(&[b"a\n\\.\n"]), None, "trailing marker");
        assert_eq!(scan(&[b"a\n\\.\r\n"]), None, "trailing marker, CRLF");
        assert_eq!(scan(&[b"a\n\\."]), None, "trailing marker without LF");
        assert_eq!(
            scan(&[b"a\n\\.\n\n"]),
            Some(2),
            "even an empty line after it"
        );
        assert_eq!(scan(&[b"a\\.\nb\n"]), None, "not alone on its line");
        assert_eq!(scan(&[b" \\.\nb\n"]), None);
        assert_eq!(scan(&[b"\\.x\nb\n"]), None);
        assert_eq!(scan(&[b"\\\\.\nb\n"]), None);
        // A lone CR ends a line, as on the server (a file with old Mac line ends).
        assert_eq!(scan(&[b"\\.\r\rb\n"]), Some(1));
        assert_eq!(scan(&[b"1,a\r\\.\r2,b\r"]), Some(2));
        assert_eq!(scan(&[b"1,a\r\\.\r"]), None, "trailing marker, CR");
        assert_eq!(scan(&[b"1,a\r\\", b".\r", b"2"]), Some(2));
        assert_eq!(scan(&[b"1,a\r\\.x\r2\r"]), None);
        assert_eq!(scan(&[b""]), None);
        // Split anywhere.
        assert_eq!(scan(&[b"a\n\\", b".", b"\r", b"\n", b"b"]), Some(2));
        assert_eq!(scan(&[b"a\n\\", b".", b"\r", b"\n", b""]), None);
    }

    #[test]
    fn text_mode_follows_escapes() {
        // Each case checked against PostgreSQL 15 (`COPY t FROM STDIN`, text).
        assert_eq!(
            text(b"1\tone\\.\n2\ttwo\n"),
            Some((1, false)),
            "loads 1 row"
        );
        assert_eq!(text(b"1\ta\\\\.\n2\tb\n"), None, "\\\\. is data: loads 2");
        assert_eq!(
            text(b"1\tone\n\\.x\n2\ttwo\n"),
            None,
            "an error, nothing lost"
        );
        assert_eq!(text(b"1\tone\n\\.\n2\n"), Some((2, true)));
        assert_eq!(text(b"1\tone\n\\.\r\n2\n"), Some((2, true)));
        assert_eq!(text(b"1\ta\\\\\\.\n2\n"), Some((1, false)), "\\\\ then \\.");
        assert_eq!(text(b"1\tone\\.\n"), None, "at the very end");
        assert_eq!(text(b"1\tone\\."), None);
        // An escaped line end is counted as a line.
        assert_eq!(text(b"1\ta\\\nb\n\\.\nc"), Some((3, true)));
        // CR line ends (the tester's files, each loading fewer rows than it holds, exit 0).
        assert_eq!(text(b"1\ta\r\\.\r2\tb\r"), Some((2, true)));
        assert_eq!(text(b"1\ta\r2\tb\\.\r3\tc\r"), Some((2, false)));
        assert_eq!(text(b"1\ta\r2\tb\r\\.\r"), None, "at the very end");
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
        let mut scanner = EndOfDataScanner::new(Mode::Lines);
        assert_eq!(scanner.feed(b"1\n2\n\\.\n"), None);
        assert_eq!(scanner.line_number(), 4);
        let marker = Some(Marker {
            line: 3,
            alone: true,
        });
        assert_eq!(scanner.feed(b"4\n"), marker);
        assert_eq!(scanner.feed(b""), marker);
        assert_eq!(scanner.finish(), marker);
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
        fn text_mode_finds_the_same_over_any_split(
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
            let whole = scan_in(Mode::Text, &[&input]);
            prop_assert_eq!(scan_in(Mode::Text, &chunks), whole);
            let bytes: Vec<&[u8]> = input.chunks(1).collect();
            prop_assert_eq!(scan_in(Mode::Text, &bytes), whole);
            // A line that is exactly the marker ends text data too (its backslash cannot be
            // escaped: the byte before it is a line end), at the latest.
            if let Some(line) = reference(&input) {
                prop_assert!(whole.is_some_and(|m| m.line <= line), "{:?}", whole);
            }
        }

        #[test]
        fn the_line_count_is_the_line_end_count(input in stream()) {
            for mode in [Mode::Lines, Mode::Text] {
                let mut scanner = EndOfDataScanner::new(mode);
                if scanner.feed(&input).is_none() && !scanner.is_binary() {
                    let ends = line_ends(&input).len() as u64;
                    prop_assert_eq!(scanner.line_number(), ends + 1);
                }
            }
        }
    }
}
