//! PQv3 ⇄ lines: `ChunkProtocol` in py-postgresql's copyman and `cat_messages`.
//!
//! A "line" is the body of one CopyData message. PostgreSQL's COPY OUT sends one message per row
//! (text and CSV: the row with its newline; binary: one tuple, the file header riding in the
//! first), so the lines of a source stream are its rows.

use bytes::{Bytes, BytesMut};

use crate::message::{copy_data_header, encode_copy_data};
use crate::{Framer, WireError};

/// Lines found in one chunk by [`LineDecoder::decode`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Lines {
    /// The CopyData bodies completed in this chunk, in order.
    pub lines: Vec<Bytes>,
    /// Offset in the chunk where a non-CopyData message starts, if one does.
    pub stop: Option<usize>,
}

/// Turns a PQv3 CopyData stream, split anywhere, into the bodies of its messages.
///
/// A body lying inside one chunk comes out as a slice of that chunk (no copy, no allocation);
/// only a body split across chunks is gathered into a buffer of its own.
///
/// ```
/// use bytes::Bytes;
/// use copyman_wire::LineDecoder;
///
/// let mut decoder = LineDecoder::new();
/// let a = decoder.decode(Bytes::from_static(b"d\0\0\0\x061\nd\0\0")).unwrap();
/// let b = decoder.decode(Bytes::from_static(b"\0\x062\nc\0\0\0\x04")).unwrap();
/// assert_eq!(a.lines, vec![Bytes::from_static(b"1\n")]);
/// assert_eq!((b.lines, b.stop), (vec![Bytes::from_static(b"2\n")], Some(4)));
/// ```
#[derive(Debug, Default)]
pub struct LineDecoder {
    framer: Framer,
    /// The start of a body that continues in the next chunk.
    partial: BytesMut,
}

impl LineDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// The framer underneath, for its position and counts.
    pub fn framer(&self) -> &Framer {
        &self.framer
    }

    /// After the session handled the message that stopped the stream, decode CopyData again.
    pub fn resume(&mut self) {
        self.framer.resume();
    }

    /// Decodes the next chunk of the stream.
    ///
    /// # Errors
    /// As [`Framer::advance`].
    pub fn decode(&mut self, chunk: Bytes) -> Result<Lines, WireError> {
        let mut lines = Vec::new();
        let partial = &mut self.partial;
        let mut view: &[u8] = &chunk;
        let walk = self.framer.walk(&mut view, 0, |_, segment| {
            let piece = &chunk[segment.range.clone()];
            match (segment.first, segment.last) {
                (true, true) => lines.push(chunk.slice(segment.range)),
                // Nothing of this body was gathered before (its header ended with the previous
                // chunk): the whole body lies in this chunk, so slice it as promised above.
                (false, true) if partial.is_empty() => lines.push(chunk.slice(segment.range)),
                (true, false) => {
                    partial.clear();
                    partial.extend_from_slice(piece);
                }
                (false, last) => {
                    partial.extend_from_slice(piece);
                    if last {
                        lines.push(partial.split().freeze());
                    }
                }
            }
        })?;
        Ok(Lines {
            lines,
            stop: walk.stop,
        })
    }
}

/// Appends one CopyData message per line to `dst` (`cat_messages` in py-postgresql's copyman).
///
/// Returns the number of messages written.
///
/// # Errors
/// [`WireError::TooLarge`] when a line does not fit one message; `dst` then holds the lines before it.
pub fn encode_lines<L: AsRef<[u8]>>(lines: &[L], dst: &mut BytesMut) -> Result<usize, WireError> {
    let total: usize = lines.iter().map(|l| l.as_ref().len() + 5).sum();
    dst.reserve(total);
    for line in lines {
        encode_copy_data(line.as_ref(), dst)?;
    }
    Ok(lines.len())
}

/// Appends all `lines` as the payload of a single CopyData message to `dst` (nothing when they
/// are all empty): the re-blocked form of [`encode_lines`], for destinations that pay per message.
///
/// # Errors
/// [`WireError::TooLarge`] when the lines together do not fit one message; `dst` is unchanged.
pub fn encode_lines_joined<L: AsRef<[u8]>>(
    lines: &[L],
    dst: &mut BytesMut,
) -> Result<(), WireError> {
    let payload = lines
        .iter()
        .try_fold(0usize, |acc, l| acc.checked_add(l.as_ref().len()));
    let payload = payload.ok_or(WireError::TooLarge { len: usize::MAX })?;
    if payload == 0 {
        return Ok(());
    }
    let header = copy_data_header(payload)?;
    dst.reserve(header.len() + payload);
    dst.extend_from_slice(&header);
    for line in lines {
        dst.extend_from_slice(line.as_ref());
    }
    Ok(())
}
