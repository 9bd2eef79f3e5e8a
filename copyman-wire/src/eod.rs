//! The end-of-data marker `\.` in text and CSV COPY input, and the rows a server will load.
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
//! * [`Mode::Csv`] (CSV whose QUOTE and ESCAPE are known): a line that starts with `\.`, outside
//!   quotes, as the server reads lines: a line end inside a quoted value is data, and so is a
//!   `\.` line there.
//! * [`Mode::Lines`] (CSV whose options are not known, or a format not known): a line that is
//!   exactly `\.`. The scanner does not follow quotes (their characters are COPY options it is
//!   not told), so it refuses a `\.` line inside a quoted value rather than risk a silent loss.
//!
//! A line ends as the server ends it: LF, CRLF, or a lone CR (a file written with old Mac line
//! ends, which the server takes as such: a `\.` line there ends the data too). Either way a marker
//! that is followed by no byte at all (the last line, with or without its line end) is allowed:
//! the server stops there and nothing is lost. A stream that starts
//! with the binary COPY signature (`PGCOPY\n\xff\r\n\0`) is not scanned: binary data has no lines;
//! its tuples are followed instead ([`BinaryTrailer`]).
//!
//! **Client encodings whose characters embed ASCII bytes** ([`Encoding`]: SJIS, BIG5, GBK, UHC,
//! GB18030, JOHAB, SHIFT_JIS_2004 — PostgreSQL's client-only encodings) have multibyte
//! characters whose trailing byte can be a backslash (0x5C) or a CSV quote. The server's COPY
//! parser (PostgreSQL 15 and older read the raw client bytes) steps over each such character as a
//! whole, so a 0x5C inside one escapes nothing; the scanner steps over them the same way.
//!
//! **Rows.** The same walk counts the rows the server will load ([`EndOfDataScanner::rows`]):
//! one per line end the server sees (text: not escaped; CSV: not quoted), one for a last line
//! without its line end, none for the marker line (the data before a `\.` that ends a longer text
//! line is a row), minus the header line ([`EndOfDataScanner::with_header`]); for binary data the
//! tuples before the trailer. A caller that hands the count to the copy as the producer's makes
//! every destination's `COPY n` answer for it: rows that a trigger dropped, or that a server read
//! otherwise, are not a silent success.
//!
//! The cost is a search for the next byte that matters (CR, LF, a backslash in text, the quote and
//! escape in CSV, a byte with the high bit set in the encodings above) and a few comparisons
//! around each; the bytes are never copied.

use crate::binary::{BinaryTrailer, End};

/// The binary COPY file signature: its first 11 bytes.
pub const BINARY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Where the server looks for the marker: the COPY format of the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// PostgreSQL's text format: backslash escapes, `\.` ending any line.
    Text,
    /// A line that is exactly `\.` (CSV whose options are not known, or a format not known).
    /// Rows are not counted.
    Lines,
    /// CSV with these QUOTE and ESCAPE characters (both `"` by default): lines as the server
    /// reads them, quotes followed.
    Csv {
        /// The QUOTE character.
        quote: u8,
        /// The ESCAPE character (the QUOTE when not given).
        escape: u8,
    },
}

impl Mode {
    /// CSV with PostgreSQL's default QUOTE and ESCAPE (`"`).
    pub const CSV: Self = Self::Csv {
        quote: b'"',
        escape: b'"',
    };
}

/// How the server's COPY parser steps over the characters of a client encoding while it looks
/// for line ends, escapes and quotes (PostgreSQL's `pg_encoding_mblen` on the first byte, as
/// `CopyReadLineText` calls it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Encoding {
    /// Every encoding a server can store (UTF8, LATIN1, EUC_JP, …): no byte of a multibyte
    /// character is ASCII, so the data is read byte by byte.
    #[default]
    AsciiSafe,
    /// SJIS and SHIFT_JIS_2004: 0xA1–0xDF is a one-byte character (half-width katakana), any
    /// other byte with the high bit set leads a two-byte one.
    ShiftJis,
    /// BIG5, GBK, UHC and GB18030: a byte with the high bit set leads a two-byte character.
    /// (A four-byte GB18030 character is stepped over as two two-byte ones: the server's COPY
    /// gives `pg_encoding_mblen` the first byte only, and in valid GB18030 the last two bytes of
    /// a four-byte character look like a two-byte one, so the steps end in the same place.)
    DoubleByte,
    /// JOHAB: 0x8F leads a three-byte character, any other byte with the high bit set a
    /// two-byte one.
    Johab,
}

impl Encoding {
    /// The encoding a `client_encoding` (or COPY `ENCODING`) name stands for, the name compared
    /// as PostgreSQL compares them (case and punctuation do not count; aliases such as
    /// `Shift_JIS`, `WIN932`, `CP936` or `WIN949` included). A name it does not know is an
    /// encoding a server can store ([`Encoding::AsciiSafe`]): every client-only one is known.
    ///
    /// ```
    /// use copyman_wire::eod::Encoding;
    ///
    /// assert_eq!(Encoding::from_name("Shift_JIS"), Encoding::ShiftJis);
    /// assert_eq!(Encoding::from_name("gb-18030"), Encoding::DoubleByte);
    /// assert_eq!(Encoding::from_name("UTF8"), Encoding::AsciiSafe);
    /// ```
    pub fn from_name(name: &str) -> Self {
        let clean: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        match clean.as_str() {
            "sjis" | "shiftjis" | "mskanji" | "win932" | "windows932" | "shiftjis2004" => {
                Self::ShiftJis
            }
            "big5" | "win950" | "windows950" | "gbk" | "cp936" | "win936" | "windows936"
            | "uhc" | "win949" | "windows949" | "gb18030" => Self::DoubleByte,
            "johab" => Self::Johab,
            _ => Self::AsciiSafe,
        }
    }

    /// The bytes of the character that `lead` starts, as the server's COPY steps over it.
    pub fn char_len(self, lead: u8) -> usize {
        if lead < 0x80 {
            return 1;
        }
        match self {
            Self::AsciiSafe => 1,
            Self::ShiftJis if (0xa1..=0xdf).contains(&lead) => 1,
            Self::ShiftJis | Self::DoubleByte => 2,
            Self::Johab if lead == 0x8f => 3,
            Self::Johab => 2,
        }
    }

    /// Whether a multibyte character can hold an ASCII byte.
    pub fn embeds_ascii(self) -> bool {
        self != Self::AsciiSafe
    }
}

/// A marker with data after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// The 1-based number of its line (lines end with LF, CRLF or a lone CR).
    pub line: u64,
    /// Whether the line is exactly `\.` (else it ends a longer line, in text mode).
    pub alone: bool,
}

/// Where the scanner stands in the current line (a line as the server reads it: in CSV, line
/// ends inside quotes do not end it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// At the start of a line.
    Start,
    /// Just after a backslash that escapes the next byte (text) or that opened the line
    /// (lines, CSV).
    Backslash,
    /// Just after a `\.`.
    Dot,
    /// Just after `\.\r`: the marker, ended by a CR or, if an LF comes next, a CRLF.
    DotCr,
    /// Just after a CR that ended a line: the LF of a CRLF may come next.
    Cr,
    /// Anywhere else in a line.
    Other,
}

/// Finds the end-of-data marker anywhere but at the very end of a text or CSV stream, over chunks
/// split anywhere, and counts the rows the server will load (see the module).
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
/// // A marker as the last line is allowed, and is no row.
/// let mut scanner = EndOfDataScanner::new(Mode::Text);
/// assert_eq!(scanner.feed(b"1\tone\n2\ttwo\\\nlines\n\\.\n"), None);
/// assert_eq!(scanner.finish(), None);
/// assert_eq!(scanner.rows(), Some(2));
///
/// // CSV: a quoted line end is data; the header is no row.
/// let mut scanner = EndOfDataScanner::new(Mode::CSV).with_header(true);
/// assert_eq!(scanner.feed(b"id,note\n1,\"two\nlines\"\n2,x"), None);
/// assert_eq!(scanner.rows(), Some(2));
/// ```
#[derive(Debug, Clone)]
pub struct EndOfDataScanner {
    mode: Mode,
    encoding: Encoding,
    /// The first line is a header, no row.
    header: bool,
    line: Line,
    /// The backslash of the current `\.` was the first byte of its line.
    at_start: bool,
    /// The 1-based number of the physical line being read.
    number: u64,
    /// The last byte was a CR (for the physical line number: a CRLF is one line end).
    prev_cr: bool,
    /// Bytes left of a multibyte character being stepped over.
    skip: usize,
    /// CSV: inside a quoted value.
    in_quote: bool,
    /// CSV: the last byte was an escape inside quotes (the server's `last_was_esc`).
    last_was_esc: bool,
    /// Rows ended so far (the header line included).
    rows: u64,
    /// The current line holds a byte.
    line_bytes: bool,
    /// A complete marker was the last thing seen.
    pending: Option<Marker>,
    /// A marker with data after it (sticky).
    found: Option<Marker>,
    /// Text: the first line whose line end a backslash escapes ([`Self::escaped_line_end`]).
    escaped_end: Option<u64>,
    /// Text: the last byte seen was a line end a backslash escapes ([`Self::ends_escaped`]).
    ends_escaped: bool,
    /// The bytes [`Self::skip_to_special`] stops at, by value.
    special: [bool; 256],
    /// Bytes of the stream seen so far, up to the signature's length.
    head: usize,
    /// Whether the stream so far matches the binary signature.
    head_matches: bool,
    /// The stream is binary COPY data: not scanned.
    binary: bool,
    /// Binary data's tuples, followed to the trailer.
    trailer: BinaryTrailer,
}

impl EndOfDataScanner {
    /// A scanner at the start of a stream in `mode`, in an encoding whose characters embed no
    /// ASCII byte, without a header line.
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            encoding: Encoding::AsciiSafe,
            header: false,
            line: Line::Start,
            at_start: false,
            number: 1,
            prev_cr: false,
            skip: 0,
            in_quote: false,
            last_was_esc: false,
            rows: 0,
            line_bytes: false,
            pending: None,
            found: None,
            escaped_end: None,
            ends_escaped: false,
            special: Self::special_bytes(mode, Encoding::AsciiSafe),
            head: 0,
            head_matches: true,
            binary: false,
            trailer: BinaryTrailer::new(),
        }
    }

    /// This scanner, reading data in `encoding` (the client encoding of the servers' sessions,
    /// or the COPY's `ENCODING`).
    pub fn with_encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self.special = Self::special_bytes(self.mode, encoding);
        self
    }

    /// This scanner, whose data starts with a header line (COPY's `HEADER`) or not.
    pub fn with_header(mut self, header: bool) -> Self {
        self.header = header;
        self
    }

    /// Reads the next chunk of the stream. Returns a marker that has data after it, once one
    /// was seen (and from then on, whatever is fed).
    pub fn feed(&mut self, chunk: &[u8]) -> Option<Marker> {
        if self.found.is_some() {
            return self.found;
        }
        self.trailer.feed(chunk);
        if self.binary {
            return None;
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
                // Blank lines alone after it (pg_dump's data files end `\.` and two of them):
                // what psql's `\copy` does not send and the server does not read, as the
                // marker says; not data lost (files65 F7: such a file was refused). Anything
                // else is.
                let byte = chunk[at];
                if matches!(byte, b'\n' | b'\r') {
                    at += 1;
                    if byte == b'\n' || self.prev_cr {
                        self.number = self.number.saturating_add(1);
                    }
                    self.prev_cr = byte == b'\r';
                    continue;
                }
                self.found = Some(marker);
                return self.found;
            }
            if self.line == Line::Other && self.skip == 0 {
                // Skip to the next byte that matters without stepping through those between.
                let from = at;
                at = self.skip_to_special(chunk, at);
                if at > from {
                    if self.prev_cr {
                        // The CR before was a line end of its own.
                        self.number = self.number.saturating_add(1);
                        self.prev_cr = false;
                    }
                    // None of them was an escape (inside quotes it is stopped at).
                    self.last_was_esc = false;
                    self.ends_escaped = false;
                }
                if at == chunk.len() {
                    // Nothing that matters in the rest of the chunk.
                    return None;
                }
            }
            let byte = chunk[at];
            at += 1;
            self.ends_escaped = false;
            self.step(byte);
            // The physical line number, for messages: LF, CRLF and a lone CR each end a line
            // (counted once the byte after the CR is known), escaped and quoted or not.
            if byte == b'\n' || self.prev_cr {
                self.number = self.number.saturating_add(1);
            }
            self.prev_cr = byte == b'\r';
            if self.found.is_some() {
                return self.found;
            }
        }
        None
    }

    /// Where the next byte that can change the state is in `chunk`, from `at` in the middle of
    /// a line (`chunk.len()`: none). CSV quotes on the way may be taken too.
    fn skip_to_special(&mut self, chunk: &[u8], at: usize) -> usize {
        let rest = &chunk[at..];
        let next = match (self.mode, self.encoding.embeds_ascii()) {
            // Long spans between line ends (and backslashes): memchr's vector search.
            (Mode::Lines, false) => memchr::memchr2(b'\n', b'\r', rest),
            (Mode::Text, false) => memchr::memchr3(b'\n', b'\r', b'\\', rest),
            // CSV whose ESCAPE is its QUOTE (the default): each quote only toggles the quoting,
            // so the quotes before the next line end are counted (a vectorised count), not
            // stopped at one by one.
            (Mode::Csv { quote, escape }, false) if quote == escape => {
                let next = memchr::memchr2(b'\n', b'\r', rest);
                let span = &rest[..next.unwrap_or(rest.len())];
                if span.iter().filter(|&&c| c == quote).count() % 2 == 1 {
                    self.in_quote = !self.in_quote;
                }
                next
            }
            // A search memchr cannot make (any byte with the high bit set, four characters): a
            // table lookup per byte.
            _ => rest.iter().position(|&c| self.special[usize::from(c)]),
        };
        next.map_or(chunk.len(), |i| at + i)
    }

    /// The bytes that can change the state from the middle of a line (the table of
    /// [`Self::skip_to_special`]): line ends, the backslash in text, QUOTE and ESCAPE in CSV, and
    /// the lead bytes of multibyte characters in an encoding that embeds ASCII in them.
    fn special_bytes(mode: Mode, encoding: Encoding) -> [bool; 256] {
        let mut special = [false; 256];
        special[usize::from(b'\n')] = true;
        special[usize::from(b'\r')] = true;
        match mode {
            Mode::Lines => {}
            Mode::Text => special[usize::from(b'\\')] = true,
            Mode::Csv { quote, escape } => {
                // Outside quotes an ESCAPE changes nothing; stopping at it costs a step.
                special[usize::from(quote)] = true;
                special[usize::from(escape)] = true;
            }
        }
        if encoding.embeds_ascii() {
            special[0x80..].fill(true);
        }
        special
    }

    /// The marker whose `\.` was just read, at the end of its line.
    fn marker(&self) -> Marker {
        Marker {
            line: self.number,
            alone: self.at_start,
        }
    }

    /// A marker ended by its line end: the data ends here. The data before it on its line (text)
    /// is a row.
    fn end_marker(&mut self) {
        self.pending = Some(self.marker());
        if !self.at_start {
            self.rows = self.rows.saturating_add(1);
        }
        self.line = Line::Start;
        self.line_bytes = false;
    }

    /// A line end the server sees: a row ends.
    fn end_line(&mut self) {
        self.rows = self.rows.saturating_add(1);
        self.line_bytes = false;
        self.in_quote = false;
        self.last_was_esc = false;
        self.line = Line::Start;
    }

    /// CSV: the server's quote and escape bookkeeping for one character.
    fn quote(&mut self, c: u8) {
        let Mode::Csv { quote, escape } = self.mode else {
            return;
        };
        // The server ignores an ESCAPE that is the QUOTE: the quote then toggles alone.
        let escape = if escape == quote { None } else { Some(escape) };
        if self.in_quote && Some(c) == escape {
            self.last_was_esc = !self.last_was_esc;
        }
        if c == quote && !self.last_was_esc {
            self.in_quote = !self.in_quote;
        }
        if Some(c) != escape {
            self.last_was_esc = false;
        }
    }

    /// One byte, as PostgreSQL's `CopyReadLineText` takes it.
    fn step(&mut self, byte: u8) {
        if self.skip > 0 {
            // The rest of a multibyte character: data, whatever byte it is.
            self.skip -= 1;
            return;
        }
        match self.line {
            Line::Cr => {
                self.line = Line::Start;
                if byte == b'\n' {
                    // The LF of a CRLF.
                    return;
                }
            }
            Line::Backslash => match (self.mode, byte) {
                (_, b'.') => {
                    self.line = Line::Dot;
                    return;
                }
                // Text: the escaped byte is data, whatever it is (a line end too); the server
                // steps over that one byte, not over a character it may lead.
                (Mode::Text, _) => {
                    if byte == b'\n' || byte == b'\r' {
                        self.escaped_end.get_or_insert(self.number);
                    }
                    self.ends_escaped = byte == b'\n';
                    self.line = Line::Other;
                    return;
                }
                // Lines, CSV: the backslash was data; this byte is read as any other.
                _ => self.line = Line::Other,
            },
            Line::Dot => match (self.mode, byte) {
                (_, b'\n') => {
                    self.end_marker();
                    return;
                }
                // `\.` and a CR: the marker, whether an LF follows (CRLF) or not (a lone CR: the
                // server's line end in a CR file; in an LF file, an error on the server).
                (_, b'\r') => {
                    self.line = Line::DotCr;
                    return;
                }
                // Text: an error on the server, which loses nothing.
                (Mode::Text, _) => {
                    self.line = Line::Other;
                    return;
                }
                // Lines, CSV: `\.` was data; the server reads on from the dot.
                _ => {
                    self.line = Line::Other;
                    self.quote(b'.');
                }
            },
            Line::DotCr => {
                if byte == b'\n' {
                    self.end_marker();
                } else if byte == b'\r' {
                    // The marker's lone CR, then a blank line of a CR file: after the marker,
                    // as blank lines after an LF one are (the proptest's reference: a CR after
                    // it was taken for data).
                    self.end_marker();
                    self.prev_cr = true;
                } else {
                    // A byte after the marker's lone CR: data the server would drop.
                    self.found = Some(self.marker());
                    self.line = Line::Other;
                }
                return;
            }
            Line::Start | Line::Other => {}
        }
        let start = self.line == Line::Start;
        self.quote(byte);
        if !self.in_quote && byte == b'\n' {
            self.end_line();
            return;
        }
        if !self.in_quote && byte == b'\r' {
            self.end_line();
            self.line = Line::Cr;
            return;
        }
        self.line_bytes = true;
        self.line = match (self.mode, byte) {
            (_, b'\\') if start => {
                self.at_start = true;
                Line::Backslash
            }
            (Mode::Text, b'\\') => {
                self.at_start = false;
                Line::Backslash
            }
            _ => Line::Other,
        };
        if byte >= 0x80 {
            self.skip = self.encoding.char_len(byte) - 1;
        }
    }

    /// Text: the first line (1-based) that ends in a backslash escaping its line end, if any:
    /// the server reads that line end as data and the next line as the same row (PostgreSQL's
    /// documented, deprecated form of a data newline, which COPY TO never writes: a tool's
    /// Windows path ending in `\` merges two rows so).
    pub fn escaped_line_end(&self) -> Option<u64> {
        self.escaped_end
    }

    /// Text: whether the stream so far ends in a line feed a backslash escapes — its last row
    /// goes on past it, and nothing ends it (a writer that died after it, as one that died
    /// mid-row).
    ///
    /// ```
    /// use copyman_wire::eod::{EndOfDataScanner, Mode};
    ///
    /// let mut scanner = EndOfDataScanner::new(Mode::Text);
    /// scanner.feed(b"1\tfirst\n2\tsecond\\\n");
    /// assert!(scanner.ends_escaped());
    /// scanner.feed(b"part\n");
    /// assert!(!scanner.ends_escaped());
    /// ```
    pub fn ends_escaped(&self) -> bool {
        self.ends_escaped
    }

    /// The stream ended. A marker with data after it, if one was seen; a marker at the very end
    /// is no finding.
    pub fn finish(&self) -> Option<Marker> {
        self.found
    }

    /// The rows the server will load from the stream fed so far, taken as ending here: text and
    /// CSV rows as the module says, binary data's tuples once its trailer came. `None` when the
    /// scanner cannot say: [`Mode::Lines`], binary data without its trailer (or malformed), or
    /// a marker with data after it.
    pub fn rows(&self) -> Option<u64> {
        if self.found.is_some() {
            return None;
        }
        if self.binary {
            return match self.trailer.end() {
                End::Complete { tuples } => Some(tuples),
                _ => None,
            };
        }
        if self.mode == Mode::Lines {
            return None;
        }
        let last = match self.line {
            // A marker ended by the last byte, a lone CR.
            Line::DotCr => !self.at_start,
            // A last line without its line end (in CSV, a `\.` there is data).
            _ => self.line_bytes,
        };
        let rows = self.rows.saturating_add(u64::from(last));
        Some(rows.saturating_sub(u64::from(self.header)))
    }

    /// Binary data's framing: whether it reached its trailer ([`End::NotBinary`] for text).
    pub fn binary_end(&self) -> End {
        self.trailer.end()
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
    /// CR) that is `\.`, with a byte after its line end that is no line end (blank lines alone
    /// after it are pg_dump's trailer, which the server does not read); none for binary input.
    fn reference(input: &[u8]) -> Option<u64> {
        if input.starts_with(BINARY_SIGNATURE) {
            return None;
        }
        let mut start = 0;
        for (number, (end, next)) in (1..).zip(line_ends(input)) {
            if &input[start..end] == b"\\."
                && input[next..].iter().any(|&b| b != b'\n' && b != b'\r')
            {
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
            scan(&[b"a\n\\.\n\n\n"]),
            None,
            "blank lines alone after it: pg_dump's trailer, which the server does not read"
        );
        assert_eq!(scan(&[b"a\n\\.\r\n\r\n", b"\n"]), None);
        assert_eq!(scan(&[b"a\n\\.\n\n", b"\nb"]), Some(2), "then data");
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

    /// The rows the server loads from `input`, and whether data comes after a marker: a port of
    /// PostgreSQL 15's `CopyReadLineText` on the whole input at once, lenient about mixed line
    /// end styles (which the server refuses, losing nothing). `None`: the server refuses the data
    /// at a marker (text: `\.` followed by neither CR nor LF).
    fn server(input: &[u8], mode: Mode, encoding: Encoding) -> Option<(u64, bool)> {
        let (csv, quote, escape) = match mode {
            Mode::Csv { quote, escape } => (true, quote, (escape != quote).then_some(escape)),
            _ => (false, 0, None),
        };
        let len = input.len();
        let data_after = |i: usize| {
            input
                .get(i..)
                .is_some_and(|rest| rest.iter().any(|&b| b != b'\n' && b != b'\r'))
        };
        let mut rows = 0;
        let mut i = 0;
        while i < len {
            let start = i;
            let (mut in_quote, mut last_was_esc, mut first) = (false, false, true);
            let newline = loop {
                if i >= len {
                    break false;
                }
                let c = input[i];
                let at = i;
                i += 1;
                if csv {
                    if in_quote && Some(c) == escape {
                        last_was_esc = !last_was_esc;
                    }
                    if c == quote && !last_was_esc {
                        in_quote = !in_quote;
                    }
                    if Some(c) != escape {
                        last_was_esc = false;
                    }
                }
                if c == b'\r' && !(csv && in_quote) {
                    if input.get(i) == Some(&b'\n') {
                        i += 1;
                    }
                    break true;
                }
                if c == b'\n' && !(csv && in_quote) {
                    break true;
                }
                if c == b'\\' && (!csv || first) {
                    if i >= len {
                        break false;
                    }
                    if input[i] == b'.' {
                        i += 1;
                        let end = input.get(i).copied();
                        i += 1;
                        match end {
                            // Data after it: a byte that is no line end (blank lines alone after
                            // it, pg_dump's trailer, lose nothing).
                            Some(b'\r') => {
                                if input.get(i) == Some(&b'\n') {
                                    i += 1;
                                }
                                return Some((rows + u64::from(at > start), data_after(i)));
                            }
                            Some(b'\n') => {
                                return Some((rows + u64::from(at > start), data_after(i)));
                            }
                            _ if csv => i = at + 1,
                            _ => return None,
                        }
                    } else if !csv {
                        i += 1;
                    }
                }
                if c >= 0x80 {
                    i += encoding.char_len(c) - 1;
                }
                first = false;
            };
            if newline || i > start {
                rows += 1;
            }
        }
        Some((rows, false))
    }

    fn counted(mode: Mode, encoding: Encoding, header: bool, chunks: &[&[u8]]) -> EndOfDataScanner {
        let mut scanner = EndOfDataScanner::new(mode)
            .with_encoding(encoding)
            .with_header(header);
        for chunk in chunks {
            scanner.feed(chunk);
        }
        scanner
    }

    /// Rows of `input` in one chunk and byte by byte (they must agree).
    fn rows_of(mode: Mode, encoding: Encoding, input: &[u8]) -> Option<u64> {
        let whole = counted(mode, encoding, false, &[input]).rows();
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(counted(mode, encoding, false, &bytes).rows(), whole);
        whole
    }

    #[test]
    fn text_rows() {
        let rows = |input: &[u8]| rows_of(Mode::Text, Encoding::AsciiSafe, input);
        assert_eq!(rows(b""), Some(0));
        assert_eq!(rows(b"1\ta\n2\tb\n"), Some(2));
        assert_eq!(rows(b"1\ta\n2\tb"), Some(2), "a last line without its LF");
        assert_eq!(rows(b"1\ta\r\n2\tb\r\n"), Some(2));
        assert_eq!(rows(b"1\ta\r2\tb\r"), Some(2));
        assert_eq!(rows(b"\n\n"), Some(2), "empty lines are rows");
        assert_eq!(rows(b"1\ta\\\nb\n"), Some(1), "an escaped LF is data");
        assert_eq!(rows(b"1\ta\\\rb\n"), Some(1), "an escaped CR is data");
        assert_eq!(
            rows(b"1\ta\\\\\n2\n"),
            Some(2),
            "an escaped backslash escapes nothing"
        );
        assert_eq!(rows(b"1\ta\n\\.\n"), Some(1), "the marker line is no row");
        assert_eq!(
            rows(b"1\ta\n2\tb\\.\n"),
            Some(2),
            "the data before a marker is"
        );
        assert_eq!(rows(b"1\ta\r\\.\r"), Some(1));
        assert_eq!(rows(b"1\ta\n\\.\nmore\n"), None, "data after the marker");
        let mut header = EndOfDataScanner::new(Mode::Text).with_header(true);
        header.feed(b"id\tname\n1\ta\n");
        assert_eq!(header.rows(), Some(1));
    }

    #[test]
    fn csv_rows_follow_quotes() {
        let rows = |input: &[u8]| rows_of(Mode::CSV, Encoding::AsciiSafe, input);
        assert_eq!(rows(b"1,a\n2,b\n"), Some(2));
        assert_eq!(rows(b"1,\"a\nb\"\n2,c\n"), Some(2), "a quoted LF is data");
        assert_eq!(rows(b"1,\"a\r\nb\"\r\n2,c\r\n"), Some(2));
        assert_eq!(
            rows(b"1,\"a\"\"\nb\"\n"),
            Some(1),
            "a doubled quote stays quoted"
        );
        assert_eq!(
            rows(b"1,\"a\n\\.\nb\"\n2\n"),
            Some(2),
            "a quoted \\. line is data"
        );
        assert_eq!(rows(b"1,a\n\\.\n"), Some(1));
        assert_eq!(
            rows(b"1,a\n\\."),
            Some(2),
            "a last \\. without its line end is data"
        );
        assert_eq!(rows(b"1,a\\\n2\n"), Some(2), "a backslash escapes nothing");
        // ESCAPE '\': `\"` inside quotes is a quote, not the end of the value.
        let escaped = Mode::Csv {
            quote: b'"',
            escape: b'\\',
        };
        assert_eq!(
            rows_of(escaped, Encoding::AsciiSafe, b"1,\"a\\\"\",b\n2\n"),
            Some(2)
        );
        assert_eq!(
            rows_of(Mode::CSV, Encoding::AsciiSafe, b"1,\"a\\\"\",b\n2\n"),
            Some(1)
        );
        let mut header = EndOfDataScanner::new(Mode::CSV).with_header(true);
        header.feed(b"id,name\n1,a\n2,\"b\nc\"");
        assert_eq!(header.rows(), Some(2));
        assert_eq!(EndOfDataScanner::new(Mode::Lines).rows(), None);
    }

    #[test]
    fn binary_rows_are_tuples_once_the_trailer_came() {
        let mut data = BINARY_SIGNATURE.to_vec();
        data.extend(0u32.to_be_bytes());
        data.extend(0u32.to_be_bytes());
        data.extend(1u16.to_be_bytes());
        data.extend(1u32.to_be_bytes());
        data.push(b'\\');
        let mut scanner = EndOfDataScanner::new(Mode::Text);
        scanner.feed(&data);
        assert_eq!(scanner.rows(), None);
        assert!(matches!(scanner.binary_end(), End::Truncated { tuples: 1 }));
        scanner.feed(&(-1i16).to_be_bytes());
        assert_eq!(scanner.rows(), Some(1));
    }

    #[test]
    fn client_only_encodings_step_over_characters() {
        let sjis = |input: &[u8]| {
            let mut scanner = EndOfDataScanner::new(Mode::Text).with_encoding(Encoding::ShiftJis);
            scanner.feed(input);
            (scanner.finish().map(|m| (m.line, m.alone)), scanner.rows())
        };
        // 0x95 0x5C is one character: the backslash after it is a real one, and `\.` ends the
        // data (each checked against PostgreSQL 15, client_encoding SJIS).
        assert_eq!(
            sjis(b"1\tx\x95\x5c\\.\n2\tb\n3\tc\n"),
            (Some((1, false)), None)
        );
        // Its 0x5C escapes nothing: no marker, three rows.
        assert_eq!(sjis(b"1\t\x95\x5c.\n2\tb\n3\tc\n"), (None, Some(3)));
        // A half-width katakana (0xA1-0xDF) is one byte: the backslash after it escapes.
        assert_eq!(sjis(b"1\t\xb1\\.\n2\tb\n"), (Some((1, false)), None));
        // Without the encoding, the same bytes end in a marker.
        let mut utf8 = EndOfDataScanner::new(Mode::Text);
        assert!(utf8.feed(b"1\t\x95\x5c.\n2\tb\n").is_some());
        // Split inside the character.
        let mut split = EndOfDataScanner::new(Mode::Text).with_encoding(Encoding::DoubleByte);
        assert_eq!(split.feed(b"1\t\xa4"), None);
        assert_eq!(split.feed(b"\\.\n2\n"), None);
        assert_eq!(split.rows(), Some(2));
        // CSV: a trailing 0x22 is no quote.
        let mut csv = EndOfDataScanner::new(Mode::CSV).with_encoding(Encoding::ShiftJis);
        csv.feed(b"1,\x81\x22\n2,b\n");
        // (0x22 is not a valid SJIS trail byte, but the server steps over it all the same.)
        assert_eq!(csv.rows(), Some(2));
        // GB18030's four-byte characters and JOHAB's three-byte ones.
        let mut gb = EndOfDataScanner::new(Mode::Text).with_encoding(Encoding::DoubleByte);
        assert_eq!(gb.feed(b"1\t\x81\x30\x81\x5c.\n2\n"), None);
        assert_eq!(gb.rows(), Some(2));
        let mut johab = EndOfDataScanner::new(Mode::Text).with_encoding(Encoding::Johab);
        assert_eq!(johab.feed(b"1\t\x8f\x41\x5c.\n2\n"), None);
        assert_eq!(johab.rows(), Some(2));
    }

    #[test]
    fn encoding_names() {
        for name in ["SJIS", "shift_jis", "Shift-JIS-2004", "MSKANJI", "win932"] {
            assert_eq!(Encoding::from_name(name), Encoding::ShiftJis, "{name}");
        }
        for name in [
            "BIG5",
            "GBK",
            "CP936",
            "UHC",
            "WIN949",
            "GB18030",
            "windows950",
        ] {
            assert_eq!(Encoding::from_name(name), Encoding::DoubleByte, "{name}");
        }
        assert_eq!(Encoding::from_name("JOHAB"), Encoding::Johab);
        for name in ["UTF8", "LATIN1", "EUC_JP", "SQL_ASCII", ""] {
            assert_eq!(Encoding::from_name(name), Encoding::AsciiSafe, "{name}");
        }
        assert_eq!(Encoding::ShiftJis.char_len(b'a'), 1);
        assert_eq!(Encoding::ShiftJis.char_len(0xb1), 1);
        assert_eq!(Encoding::ShiftJis.char_len(0x95), 2);
        assert_eq!(Encoding::Johab.char_len(0x8f), 3);
        assert_eq!(Encoding::AsciiSafe.char_len(0x95), 1);
    }

    fn counted_stream() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            4 => Just(b'\\'),
            3 => Just(b'.'),
            3 => Just(b'\n'),
            2 => Just(b'\r'),
            2 => Just(b'"'),
            1 => Just(b'\''),
            2 => Just(b'a'),
            1 => Just(0x95),
            1 => Just(0x8f),
            1 => Just(0xb1),
            1 => Just(0x30),
            1 => any::<u8>(),
        ];
        proptest::collection::vec(byte, 0..64)
            .prop_filter("not binary", |v| !v.starts_with(BINARY_SIGNATURE))
    }

    fn count_mode() -> impl Strategy<Value = Mode> {
        prop_oneof![
            Just(Mode::Text),
            Just(Mode::CSV),
            Just(Mode::Csv {
                quote: b'"',
                escape: b'\\'
            }),
            Just(Mode::Csv {
                quote: b'\'',
                escape: b'"'
            }),
        ]
    }

    fn encoding() -> impl Strategy<Value = Encoding> {
        prop_oneof![
            Just(Encoding::AsciiSafe),
            Just(Encoding::ShiftJis),
            Just(Encoding::DoubleByte),
            Just(Encoding::Johab),
        ]
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

        /// Over any split, the scanner finds a marker exactly when the server would drop data
        /// after one, and otherwise counts the rows the server loads.
        #[test]
        fn rows_and_markers_are_the_servers(
            input in counted_stream(),
            mode in count_mode(),
            encoding in encoding(),
            header in any::<bool>(),
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
            let scanner = counted(mode, encoding, header, &chunks);
            if let Some((rows, data_after)) = server(&input, mode, encoding) {
                prop_assert_eq!(scanner.finish().is_some(), data_after, "{:?}", scanner.finish());
                if !data_after {
                    prop_assert_eq!(scanner.rows(), Some(rows.saturating_sub(u64::from(header))));
                }
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
