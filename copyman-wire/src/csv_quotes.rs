//! CSV quotes the server reads otherwise than the file's writer meant.
//!
//! PostgreSQL's CSV reader opens a quoted value at a QUOTE anywhere in a field, not only at its
//! start: a field `5" pipe` (an inch mark, `O"Brien`), or a MySQL-style `"5\" pipe"` (the
//! backslash is data, the quote after it closes the value, the next one opens another), reads
//! everything up to the next quote as one value, across line ends — rows merged into one, the
//! count agreeing, without an error. Neither COPY TO nor an RFC 4180 writer puts a quote there.
//! Nor text right after a quote that closes a value (`"open,x` … `c"d`): the server reads on
//! as unquoted data, so a quote opened by mistake lines before closes there with the rows
//! between merged into its value.
//! [`StrayQuotes`] follows a stream's quotes (CSV whose ESCAPE is its QUOTE, in an encoding whose
//! characters embed no ASCII byte) and says where the first such quote is. No IO here.

/// The first quote found that opens a quoted value in the middle of an unquoted field, or that
/// closes one with text after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stray {
    /// The 1-based physical line it is on.
    pub line: u64,
    /// The field up to the quote and a few bytes after it, as text (lossy).
    pub field: String,
    /// A quote that closes a value with text after it: the line the value opened on.
    pub opened: Option<u64>,
}

/// The most of a field said before its stray quote ([`Stray::field`]).
const SHOWN_BEFORE: usize = 60;

/// Follows a CSV stream's quotes ([module docs](self)).
///
/// ```
/// use copyman_wire::csv_quotes::StrayQuotes;
///
/// let mut quotes = StrayQuotes::new(b'"', b',');
/// assert!(quotes.feed(b"1,\"a \"\"quoted\"\" word\",x\n2,\"two\nlines\",y\n").is_none());
/// let stray = quotes.feed(b"3,5\" pipe,z\n4,w,v\n").expect("a quote inside a field");
/// assert_eq!((stray.line, stray.field.as_str()), (4, "5\" pipe,z"));
/// ```
#[derive(Debug, Clone)]
pub struct StrayQuotes {
    quote: u8,
    delimiter: u8,
    in_quote: bool,
    /// The byte before the chunk being read (`None` at the stream's start).
    prev: Option<u8>,
    /// Line ends before the chunk being read.
    lines: u64,
    /// The line the quoted value being read opened on (where `in_quote`).
    opened: u64,
    /// A quote closed a value at the end of the last chunk: the next byte is checked (the line
    /// the value opened on).
    closed: Option<u64>,
    /// [`StrayQuotes::longest_quoted`].
    longest: Option<(u64, u64)>,
    found: Option<Stray>,
}

impl StrayQuotes {
    /// A stream of CSV with `quote` as its QUOTE and ESCAPE and `delimiter` between fields, at
    /// its start.
    pub fn new(quote: u8, delimiter: u8) -> Self {
        Self {
            quote,
            delimiter,
            in_quote: false,
            prev: None,
            lines: 0,
            opened: 0,
            closed: None,
            found: None,
            longest: None,
        }
    }

    /// The quoted value that ran over the most line ends so far, if any ran over one: the lines
    /// it opened and closed on. One that runs over many, each a row's worth, is most likely a
    /// stray quote at a field's start merging rows into one value (files67 F19: 100 000 lines
    /// loaded as 10 010 rows, exit 0).
    pub fn longest_quoted(&self) -> Option<(u64, u64)> {
        self.longest
    }

    /// Reads the next chunk; the first stray quote, once one was seen (and from then on).
    pub fn feed(&mut self, chunk: &[u8]) -> Option<&Stray> {
        // What may follow a quote that closes a value: the field's end, or another quote (a
        // doubled one, data).
        let ends = |b: u8| b == self.delimiter || b == b'\n' || b == b'\r' || b == self.quote;
        if let (Some(opened), Some(&first)) = (self.closed.take(), chunk.first())
            && self.found.is_none()
            && !ends(first)
        {
            let mut stray = self.stray(chunk, 0);
            stray.opened = Some(opened);
            self.found = Some(stray);
        }
        if self.found.is_none() {
            // Line ends counted so far in the chunk, up to `upto` (each quote's line, counted
            // on from the last: a chunk of quoted fields is not counted again at each).
            let (mut upto, mut ends_before) = (0, 0u64);
            for at in memchr::memchr_iter(self.quote, chunk) {
                let prev = at.checked_sub(1).map(|p| chunk[p]).or(self.prev);
                // A quote that opens a value where a field starts (or one that follows a quote:
                // `""`, a doubled quote or an empty value) is the writer's; another is stray.
                let opens_inside = !self.in_quote
                    && prev.is_some_and(|b| {
                        b != self.delimiter && b != b'\n' && b != b'\r' && b != self.quote
                    });
                if opens_inside {
                    self.found = Some(self.stray(chunk, at));
                    break;
                }
                ends_before += memchr::memchr_iter(b'\n', &chunk[upto..at]).count() as u64;
                upto = at;
                let line = self.lines + ends_before + 1;
                if !self.in_quote {
                    self.opened = line;
                } else {
                    let span = line - self.opened;
                    if span > 0 && self.longest.is_none_or(|(a, b)| b - a < span) {
                        self.longest = Some((self.opened, line));
                    }
                    // Closed: what follows it must end the field (at the next chunk's start
                    // if this one ends here).
                    match chunk.get(at + 1) {
                        None => self.closed = Some(self.opened),
                        Some(&next) if !ends(next) => {
                            let mut stray = self.stray(chunk, at + 1);
                            stray.opened = Some(self.opened);
                            self.found = Some(stray);
                            break;
                        }
                        Some(_) => {}
                    }
                }
                self.in_quote = !self.in_quote;
            }
        }
        if self.found.is_none() {
            self.lines += memchr::memchr_iter(b'\n', chunk).count() as u64;
            self.prev = chunk.last().copied().or(self.prev);
        }
        self.found.as_ref()
    }

    /// The stray quote at `at` in `chunk` (or the text after one that closed a value): its
    /// line, and its field (what of it the chunk holds: at most [`SHOWN_BEFORE`] bytes before
    /// the quote, after a `…`, as the server's own context cuts a line — a 5 MB field was said
    /// whole, files67 F4).
    fn stray(&self, chunk: &[u8], at: usize) -> Stray {
        let before = &chunk[..at];
        let line = self.lines + memchr::memchr_iter(b'\n', before).count() as u64 + 1;
        let start = before
            .iter()
            .rposition(|&b| b == self.delimiter || b == b'\n' || b == b'\r')
            .map_or(0, |p| p + 1);
        let mut cut = start.max(at.saturating_sub(SHOWN_BEFORE));
        // On a character's first byte (UTF-8's continuation bytes are 0b10xxxxxx).
        while cut < at && chunk[cut] & 0xC0 == 0x80 {
            cut += 1;
        }
        let mark = if cut > start { "…" } else { "" };
        let start = cut;
        let rest = &chunk[at + 1..];
        let end = at
            + 1
            + rest
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
                .unwrap_or(rest.len())
                .min(12);
        Stray {
            line,
            field: format!(
                "{mark}{}",
                String::from_utf8_lossy(&chunk[start..end.min(chunk.len())])
            ),
            opened: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(chunks: &[&[u8]]) -> Option<Stray> {
        let mut quotes = StrayQuotes::new(b'"', b',');
        chunks.iter().find_map(|c| quotes.feed(c).cloned())
    }

    #[test]
    fn what_writers_write_is_no_stray() {
        for data in [
            &b"a,b\n\"x, y\",\"\"\n\"\",z\n"[..],
            b"\"say \"\"hi\"\"\",2\r\n3,\"multi\r\nline\"\r\n",
            b"\"\"\"\"\n",
        ] {
            assert_eq!(first(&[data]), None, "{}", String::from_utf8_lossy(data));
        }
    }

    /// A quoted value closed with text after it: the rows since the quote that opened it were
    /// merged into it (files63 F1); found where the text comes in the next chunk too.
    #[test]
    fn text_after_a_closing_quote_is_found() {
        let stray = first(&[b"1,\"open,x\n2,a,b\n3,c\"d,e\n4,f,g\n"]).expect("c\"d");
        assert_eq!((stray.line, stray.opened), (3, Some(1)));
        let stray = first(&[b"1,\"ab\"", b"c,x\n"]).expect("across chunks");
        assert_eq!((stray.line, stray.opened), (1, Some(1)));
        for fine in [&[&b"1,\"a\"\"b\",c\n"[..]][..], &[b"1,\"a\"", b",c\r\n"]] {
            assert_eq!(first(fine), None);
        }
    }

    #[test]
    fn a_quote_inside_a_field_is_found_across_chunks() {
        let stray = first(&[b"1,x\n2,y,5", b"\" pipe\n3,z\n"]).expect("the inch mark");
        assert_eq!(stray.line, 2);
        let stray = first(&[b"1,\"5\\\" pipe\",2\n"]).expect("a backslash-escaped quote");
        assert_eq!((stray.line, stray.field.as_str()), (1, "\"5\\\" pipe\",2"));
    }

    /// The quoted value over the most line ends is told by its lines, across chunks.
    #[test]
    fn the_longest_quoted_value_is_told_by_its_lines() {
        let mut quotes = StrayQuotes::new(b'"', b',');
        assert!(quotes.feed(b"1,\"a\nb\",x\n2,\"oops\n3,y\n").is_none());
        assert!(quotes.feed(b"4,z\n5,end\"\n6,w\n").is_none());
        assert_eq!(quotes.longest_quoted(), Some((3, 6)));
    }

    /// A long field is said by its end before the quote, cut on a character (files67 F4: a
    /// 5 MB field was said whole).
    #[test]
    fn a_long_fields_excerpt_is_bounded() {
        let line = format!("1,{}\"y,2\n", "ж".repeat(3000));
        let stray = first(&[line.as_bytes()]).expect("the stray quote");
        assert!(stray.field.starts_with('…'), "{}", stray.field);
        assert!(stray.field.ends_with("ж\"y,2"), "{}", stray.field);
        assert!(!stray.field.contains('\u{FFFD}'), "{}", stray.field);
        assert!(
            stray.field.len() <= SHOWN_BEFORE + 3 + 13,
            "{}",
            stray.field.len()
        );
    }
}
