//! CSV quotes the server reads otherwise than the file's writer meant.
//!
//! PostgreSQL's CSV reader opens a quoted value at a QUOTE anywhere in a field, not only at its
//! start: a field `5" pipe` (an inch mark, `O"Brien`), or a MySQL-style `"5\" pipe"` (the
//! backslash is data, the quote after it closes the value, the next one opens another), reads
//! everything up to the next quote as one value, across line ends — rows merged into one, the
//! count agreeing, without an error. Neither COPY TO nor an RFC 4180 writer puts a quote there.
//! [`StrayQuotes`] follows a stream's quotes (CSV whose ESCAPE is its QUOTE, in an encoding whose
//! characters embed no ASCII byte) and says where the first such quote is. No IO here.

/// The first quote found that opens a quoted value in the middle of an unquoted field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stray {
    /// The 1-based physical line it is on.
    pub line: u64,
    /// The field up to the quote and a few bytes after it, as text (lossy).
    pub field: String,
}

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
            found: None,
        }
    }

    /// Reads the next chunk; the first stray quote, once one was seen (and from then on).
    pub fn feed(&mut self, chunk: &[u8]) -> Option<&Stray> {
        if self.found.is_none() {
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
                self.in_quote = !self.in_quote;
            }
        }
        if self.found.is_none() {
            self.lines += memchr::memchr_iter(b'\n', chunk).count() as u64;
            self.prev = chunk.last().copied().or(self.prev);
        }
        self.found.as_ref()
    }

    /// The stray quote at `at` in `chunk`: its line, and its field (what of it the chunk holds).
    fn stray(&self, chunk: &[u8], at: usize) -> Stray {
        let before = &chunk[..at];
        let line = self.lines + memchr::memchr_iter(b'\n', before).count() as u64 + 1;
        let start = before
            .iter()
            .rposition(|&b| b == self.delimiter || b == b'\n' || b == b'\r')
            .map_or(0, |p| p + 1);
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
            field: String::from_utf8_lossy(&chunk[start..end]).into_owned(),
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

    #[test]
    fn a_quote_inside_a_field_is_found_across_chunks() {
        let stray = first(&[b"1,x\n2,y,5", b"\" pipe\n3,z\n"]).expect("the inch mark");
        assert_eq!(stray.line, 2);
        let stray = first(&[b"1,\"5\\\" pipe\",2\n"]).expect("a backslash-escaped quote");
        assert_eq!((stray.line, stray.field.as_str()), (1, "\"5\\\" pipe\",2"));
    }
}
