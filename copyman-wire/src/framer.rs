//! The CopyData framer: follows frame boundaries over a stream split anywhere.
//!
//! This is the Rust home of `WireState` in py-postgresql's copyman. The framer keeps, between
//! chunks, where the stream stands ([`Position`]): between messages, inside a CopyData header, or
//! inside a CopyData body. It hops from header to header: a frame costs one header read whatever
//! its body size, and body bytes are never looked at.

use std::ops::Range;

use crate::WireError;

/// The type byte of a CopyData message (`d`).
pub const COPY_DATA: u8 = b'd';

/// Bytes in a message header: the type byte and the Int32 length.
pub const HEADER_LEN: usize = 5;

/// The largest value the Int32 length field of a message may hold.
pub const MAX_LENGTH: u32 = i32::MAX as u32;

/// Where a CopyData stream stands after the bytes seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Position {
    /// Between messages: the next byte is a message type.
    #[default]
    Boundary,
    /// Inside a CopyData header: the type byte and `seen` (0 to 3) of the 4 length bytes, kept in
    /// `len[..seen]`.
    Header {
        /// The length bytes seen so far (only `len[..seen]` is meaningful).
        len: [u8; 4],
        /// How many length bytes have been seen.
        seen: u8,
    },
    /// Inside a CopyData body with `remaining` bytes (at least 1) still to come.
    Body {
        /// Body bytes still to come.
        remaining: u32,
    },
    /// A message other than CopyData started: the framer has stopped (as `WireState` in
    /// py-postgresql's copyman does) and everything from that message on belongs to the session.
    Stopped {
        /// The type byte of the message that stopped the framer.
        tag: u8,
    },
}

/// What one [`Framer::advance`] saw in a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[must_use]
pub struct Walk {
    /// CopyData frames completed in this chunk.
    pub frames: usize,
    /// CopyData payload (body) bytes in this chunk, complete frames or not.
    pub payload: usize,
    /// Offset in the chunk where a non-CopyData message starts, if one does.
    pub stop: Option<usize>,
    /// Offset in the chunk just past the last frame boundary crossed (0 if none was).
    pub boundary: usize,
}

/// One piece of CopyData body found by the walker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    /// Where the piece lies in the buffer.
    pub(crate) range: Range<usize>,
    /// The piece begins a body.
    pub(crate) first: bool,
    /// The piece ends a body.
    pub(crate) last: bool,
}

/// Follows CopyData frames over a byte stream delivered in chunks split anywhere.
///
/// ```
/// use copyman_wire::{Framer, Position};
///
/// // Two CopyData frames ("1\n" and "2\n"), then CopyDone, split mid-header.
/// let stream = b"d\0\0\0\x061\nd\0\0\0\x062\nc\0\0\0\x04";
/// let mut framer = Framer::new();
/// let first = framer.advance(&stream[..9]).unwrap();
/// assert_eq!(first.frames, 1);
/// assert_eq!(framer.position(), Position::Header { len: [0, 0, 0, 0], seen: 1 });
/// let rest = framer.advance(&stream[9..]).unwrap();
/// assert_eq!((rest.frames, rest.stop), (1, Some(5)));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Framer {
    position: Position,
    /// Stream bytes consumed so far (up to a stop), for error offsets.
    offset: u64,
    /// Frames completed so far.
    frames: u64,
    /// Sticky error: once the stream is malformed, every call returns it.
    error: Option<WireError>,
}

impl Framer {
    /// A framer at the start of a CopyData stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// A framer standing at `position`, e.g. the start of a chunk whose position was recorded, to
    /// find where a receiver stands after only part of that chunk was written to it.
    pub fn at(position: Position) -> Self {
        Self {
            position,
            ..Self::default()
        }
    }

    /// Where the stream stands now.
    pub fn position(&self) -> Position {
        self.position
    }

    /// Stream bytes consumed so far (a stopping message and what follows are not counted).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Frames completed since the start.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Whether a non-CopyData message stopped the framer.
    pub fn is_stopped(&self) -> bool {
        matches!(self.position, Position::Stopped { .. })
    }

    /// After the session has handled the message that stopped the framer (a NoticeResponse in the
    /// middle of a COPY OUT, say), follow CopyData again from a message boundary.
    pub fn resume(&mut self) {
        if self.is_stopped() {
            self.position = Position::Boundary;
        }
    }

    /// Follows the stream over `chunk`.
    ///
    /// A stopped framer consumes nothing: it reports `stop: Some(0)` until [`Framer::resume`].
    ///
    /// # Errors
    /// [`WireError::InvalidLength`] when a CopyData length field is below 4 or above
    /// [`MAX_LENGTH`]; the error is sticky.
    pub fn advance(&mut self, chunk: &[u8]) -> Result<Walk, WireError> {
        let mut chunk = chunk;
        self.walk(&mut chunk, 0, |_, _| {})
    }

    /// The walk shared by [`Framer::advance`], re-blocking and line decoding: follows the frames
    /// in `buf[start..]`, calling `on_body` with every piece of body found, in order.
    ///
    /// `on_body` may rewrite `buf` below the piece it is given (re-blocking compacts payload
    /// towards the front); the walker only reads header bytes at or after the current piece.
    #[inline]
    pub(crate) fn walk<B>(
        &mut self,
        buf: &mut B,
        start: usize,
        mut on_body: impl FnMut(&mut B, Segment),
    ) -> Result<Walk, WireError>
    where
        B: AsRef<[u8]> + ?Sized,
    {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let len = buf.as_ref().len();
        let mut at = start;
        let mut walk = Walk {
            boundary: start,
            ..Walk::default()
        };
        loop {
            match self.position {
                Position::Stopped { .. } => {
                    walk.stop = Some(at);
                    break;
                }
                Position::Boundary => {
                    if at == len {
                        break;
                    }
                    let bytes = buf.as_ref();
                    if bytes[at] != COPY_DATA {
                        self.position = Position::Stopped { tag: bytes[at] };
                        walk.stop = Some(at);
                        break;
                    }
                    if len - at >= HEADER_LEN {
                        // The fast path: a whole header in the chunk.
                        let length = u32::from_be_bytes([
                            bytes[at + 1],
                            bytes[at + 2],
                            bytes[at + 3],
                            bytes[at + 4],
                        ]);
                        let body = self.body_len(length, self.offset)?;
                        at += HEADER_LEN;
                        self.offset += HEADER_LEN as u64;
                        at = self.enter_body(buf, at, body, &mut walk, &mut on_body);
                    } else {
                        let mut fragment = [0; 4];
                        let seen = len - at - 1;
                        fragment[..seen].copy_from_slice(&bytes[at + 1..len]);
                        self.offset += (len - at) as u64;
                        // `seen` is at most 3 here: fewer than 5 bytes were left.
                        self.position = Position::Header {
                            len: fragment,
                            seen: seen as u8,
                        };
                        at = len;
                    }
                }
                Position::Header { mut len, seen } => {
                    if at == buf.as_ref().len() {
                        break;
                    }
                    let bytes = buf.as_ref();
                    let seen = usize::from(seen);
                    let take = (4 - seen).min(bytes.len() - at);
                    len[seen..seen + take].copy_from_slice(&bytes[at..at + take]);
                    at += take;
                    self.offset += take as u64;
                    if seen + take < 4 {
                        // Still inside the header: the chunk is used up.
                        self.position = Position::Header {
                            len,
                            seen: (seen + take) as u8,
                        };
                        continue;
                    }
                    // The whole header has now been consumed: the message began 5 bytes back
                    // (or before this framer's start, for one made `Framer::at` a header: 0 then).
                    let message = self.offset.saturating_sub(HEADER_LEN as u64);
                    let body = self.body_len(u32::from_be_bytes(len), message)?;
                    at = self.enter_body(buf, at, body, &mut walk, &mut on_body);
                }
                Position::Body { remaining } => {
                    if at == len {
                        break;
                    }
                    let take = (remaining as usize).min(len - at);
                    let last = take == remaining as usize;
                    on_body(
                        buf,
                        Segment {
                            range: at..at + take,
                            first: false,
                            last,
                        },
                    );
                    at += take;
                    walk.payload += take;
                    self.offset += take as u64;
                    if last {
                        self.position = Position::Boundary;
                        self.frames += 1;
                        walk.frames += 1;
                        walk.boundary = at;
                    } else {
                        self.position = Position::Body {
                            remaining: remaining - take as u32,
                        };
                    }
                }
            }
        }
        Ok(walk)
    }

    /// Checks a length field and returns the body length it announces.
    /// `message` is the stream offset of the message's type byte, for the error.
    fn body_len(&mut self, length: u32, message: u64) -> Result<u32, WireError> {
        if (4..=MAX_LENGTH).contains(&length) {
            return Ok(length - 4);
        }
        let error = WireError::InvalidLength {
            length,
            offset: message,
        };
        self.error = Some(error.clone());
        Err(error)
    }

    /// Starts a body of `body` bytes at `at`, consuming as much of it as the chunk holds.
    #[inline]
    fn enter_body<B>(
        &mut self,
        buf: &mut B,
        at: usize,
        body: u32,
        walk: &mut Walk,
        on_body: &mut impl FnMut(&mut B, Segment),
    ) -> usize
    where
        B: AsRef<[u8]> + ?Sized,
    {
        let avail = buf.as_ref().len() - at;
        let body = body as usize;
        if avail >= body {
            on_body(
                buf,
                Segment {
                    range: at..at + body,
                    first: true,
                    last: true,
                },
            );
            walk.payload += body;
            walk.frames += 1;
            self.frames += 1;
            self.offset += body as u64;
            self.position = Position::Boundary;
            walk.boundary = at + body;
            at + body
        } else {
            if avail > 0 {
                on_body(
                    buf,
                    Segment {
                        range: at..at + avail,
                        first: true,
                        last: false,
                    },
                );
            }
            walk.payload += avail;
            self.offset += avail as u64;
            // `body - avail` fits: `body` came from a u32.
            self.position = Position::Body {
                remaining: (body - avail) as u32,
            };
            at + avail
        }
    }
}
