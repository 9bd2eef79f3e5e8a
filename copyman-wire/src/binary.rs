//! The end of binary COPY data: whether a stream reached its trailer.
//!
//! Binary COPY data is the signature (`PGCOPY\n\xff\r\n\0`), a flags field, a header extension,
//! then one tuple after another (an Int16 field count, each field an Int32 length, `-1` for NULL,
//! and its bytes), and ends with the trailer: a field count of `-1`. A server reading such data
//! from a COPY that ends at a tuple boundary without the trailer takes the rows it has and reports
//! success, so a file cut short between two tuples would load a part of itself silently.
//! [`BinaryTrailer`] follows the tuples over chunks split anywhere, without keeping any of them,
//! so the caller can refuse such input before the COPY ends. It checks nothing else: a malformed
//! tuple, a wrong field count or data after the trailer are the server's to refuse (it does).
//!
//! ```
//! use copyman_wire::binary::{BinaryTrailer, End};
//!
//! let header = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
//! let tuple = b"\0\x01\0\0\0\x04\0\0\0\x07"; // one int4 field: 7
//! let mut check = BinaryTrailer::new();
//! check.feed(header);
//! check.feed(tuple);
//! assert_eq!(check.end(), End::Truncated { tuples: 1 });
//! check.feed(b"\xff\xff");
//! assert_eq!(check.end(), End::Complete { tuples: 1 });
//! ```

use crate::eod::BINARY_SIGNATURE;

/// How a stream stands (or ended), as far as its binary framing tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum End {
    /// Not binary COPY data (it does not start with the signature), or not yet known.
    NotBinary,
    /// Binary, and the trailer came after this many tuples.
    Complete {
        /// Tuples before the trailer.
        tuples: u64,
    },
    /// Binary, and no trailer yet: ending here loses whatever came after these tuples.
    Truncated {
        /// Whole tuples seen.
        tuples: u64,
    },
    /// Binary, but a length made no sense (below `-1`): the server will refuse the data.
    Malformed,
}

/// Where the walk stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In the signature, this many bytes matched.
    Signature(usize),
    /// Reading an integer of the header or a tuple (see [`Int`]).
    Int(Int),
    /// Skipping this many bytes of the header extension or of a field.
    Skip {
        left: u64,
        /// Fields of the current tuple after the one being skipped (`None`: the extension).
        fields: Option<u16>,
    },
    NotBinary,
    Complete,
    Malformed,
}

/// Which integer is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Int {
    Flags,
    ExtensionLength,
    FieldCount,
    /// A field's length; this many fields of the tuple come after it.
    FieldLength(u16),
}

impl Int {
    fn len(self) -> usize {
        match self {
            Self::FieldCount => 2,
            _ => 4,
        }
    }
}

/// Follows binary COPY data to its trailer over chunks split anywhere (see the module).
#[derive(Debug, Clone)]
pub struct BinaryTrailer {
    state: State,
    /// The bytes of the integer being read.
    int: [u8; 4],
    got: usize,
    tuples: u64,
}

impl Default for BinaryTrailer {
    fn default() -> Self {
        Self::new()
    }
}

impl BinaryTrailer {
    /// A walk at the start of a stream.
    pub fn new() -> Self {
        Self {
            state: State::Signature(0),
            int: [0; 4],
            got: 0,
            tuples: 0,
        }
    }

    /// Reads the next chunk of the stream.
    pub fn feed(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() {
            match self.state {
                State::NotBinary | State::Complete | State::Malformed => return,
                State::Signature(seen) => {
                    let take = (BINARY_SIGNATURE.len() - seen).min(chunk.len());
                    if chunk[..take] != BINARY_SIGNATURE[seen..seen + take] {
                        self.state = State::NotBinary;
                        return;
                    }
                    chunk = &chunk[take..];
                    self.state = if seen + take == BINARY_SIGNATURE.len() {
                        State::Int(Int::Flags)
                    } else {
                        State::Signature(seen + take)
                    };
                }
                State::Skip { left, fields } => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(chunk.len());
                    chunk = &chunk[take..];
                    let left = left - take as u64;
                    self.state = if left > 0 {
                        State::Skip { left, fields }
                    } else {
                        self.after_field(fields)
                    };
                }
                State::Int(int) => {
                    let take = (int.len() - self.got).min(chunk.len());
                    self.int[self.got..self.got + take].copy_from_slice(&chunk[..take]);
                    self.got += take;
                    chunk = &chunk[take..];
                    if self.got == int.len() {
                        self.got = 0;
                        self.state = self.read(int);
                    }
                }
            }
        }
    }

    /// The state after a whole integer.
    fn read(&mut self, int: Int) -> State {
        let value = match int {
            Int::FieldCount => i64::from(i16::from_be_bytes([self.int[0], self.int[1]])),
            _ => i64::from(i32::from_be_bytes(self.int)),
        };
        match int {
            Int::Flags => State::Int(Int::ExtensionLength),
            Int::ExtensionLength => match u64::try_from(value) {
                Ok(0) => State::Int(Int::FieldCount),
                Ok(left) => State::Skip { left, fields: None },
                Err(_) => State::Malformed,
            },
            Int::FieldCount => match value {
                -1 => State::Complete,
                0 => {
                    self.tuples += 1;
                    State::Int(Int::FieldCount)
                }
                n => match u16::try_from(n) {
                    Ok(n) => State::Int(Int::FieldLength(n - 1)),
                    Err(_) => State::Malformed,
                },
            },
            Int::FieldLength(after) => match value {
                // NULL, or an empty value.
                -1 | 0 => self.after_field(Some(after)),
                n => match u64::try_from(n) {
                    Ok(left) => State::Skip {
                        left,
                        fields: Some(after),
                    },
                    Err(_) => State::Malformed,
                },
            },
        }
    }

    /// The state after the header extension (`None`) or a field with `after` fields after it.
    fn after_field(&mut self, after: Option<u16>) -> State {
        match after {
            None => State::Int(Int::FieldCount),
            Some(0) => {
                self.tuples += 1;
                State::Int(Int::FieldCount)
            }
            Some(n) => State::Int(Int::FieldLength(n - 1)),
        }
    }

    /// How the stream stands now; at its end, whether it was whole.
    pub fn end(&self) -> End {
        match self.state {
            State::Signature(_) | State::NotBinary => End::NotBinary,
            State::Complete => End::Complete {
                tuples: self.tuples,
            },
            State::Malformed => End::Malformed,
            State::Int(_) | State::Skip { .. } => End::Truncated {
                tuples: self.tuples,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn stream(tuples: &[Vec<Option<Vec<u8>>>], extension: &[u8], trailer: bool) -> Vec<u8> {
        let mut out = BINARY_SIGNATURE.to_vec();
        out.extend(0u32.to_be_bytes());
        out.extend(u32::try_from(extension.len()).unwrap().to_be_bytes());
        out.extend(extension);
        for tuple in tuples {
            out.extend(u16::try_from(tuple.len()).unwrap().to_be_bytes());
            for field in tuple {
                match field {
                    None => out.extend((-1i32).to_be_bytes()),
                    Some(bytes) => {
                        out.extend(u32::try_from(bytes.len()).unwrap().to_be_bytes());
                        out.extend(bytes);
                    }
                }
            }
        }
        if trailer {
            out.extend((-1i16).to_be_bytes());
        }
        out
    }

    fn walk(chunks: &[&[u8]]) -> End {
        let mut check = BinaryTrailer::new();
        for chunk in chunks {
            check.feed(chunk);
        }
        check.end()
    }

    #[test]
    fn text_is_not_binary() {
        assert_eq!(walk(&[b"1\tone\n"]), End::NotBinary);
        assert_eq!(walk(&[b""]), End::NotBinary);
        assert_eq!(walk(&[b"PGCOPY\n\xff\r\n\x01"]), End::NotBinary);
    }

    #[test]
    fn an_empty_table_is_the_header_and_the_trailer() {
        assert_eq!(
            walk(&[&stream(&[], b"", true)]),
            End::Complete { tuples: 0 }
        );
        assert_eq!(
            walk(&[&stream(&[], b"", false)]),
            End::Truncated { tuples: 0 }
        );
    }

    #[test]
    fn a_negative_length_is_malformed() {
        let mut data = stream(&[], b"", false);
        data.extend(1u16.to_be_bytes());
        data.extend((-2i32).to_be_bytes());
        assert_eq!(walk(&[&data]), End::Malformed);
    }

    fn tuples() -> impl Strategy<Value = Vec<Vec<Option<Vec<u8>>>>> {
        proptest::collection::vec(
            proptest::collection::vec(
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
                0..4,
            ),
            0..8,
        )
    }

    proptest! {
        /// Split anywhere, a whole stream is complete with its tuple count, and the same stream
        /// cut before its trailer (at any tuple boundary or inside a tuple) is truncated.
        #[test]
        fn split_anywhere(
            tuples in tuples(),
            extension in proptest::collection::vec(any::<u8>(), 0..6),
            splits in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let whole = stream(&tuples, &extension, true);
            let mut at: Vec<usize> = splits.iter().map(|i| i.index(whole.len() + 1)).collect();
            at.sort_unstable();
            let mut chunks = Vec::new();
            let mut from = 0;
            for a in at {
                chunks.push(&whole[from..a]);
                from = a;
            }
            chunks.push(&whole[from..]);
            prop_assert_eq!(walk(&chunks), End::Complete { tuples: tuples.len() as u64 });

            let cut = BINARY_SIGNATURE.len() + cut.index(whole.len() - BINARY_SIGNATURE.len());
            let cut_short = matches!(walk(&[&whole[..cut]]), End::Truncated { .. });
            prop_assert!(cut_short, "cut at {}", cut);
        }
    }
}
