//! Re-blocking: many small CopyData frames in, one large frame out, in place.
//!
//! PostgreSQL's COPY OUT sends one CopyData message per row; its COPY IN pays per message. A
//! destination fed one frame per row spent 24% more CPU (10M int8 rows, PostgreSQL 15) than one fed
//! large frames, and COPY IN accepts any split of the data into messages, even mid-row. So each
//! read from the source is turned into one frame: the source's 5-byte headers are removed by
//! moving payload towards the front of the read buffer, and one new header is written into the
//! headroom the caller left before the read bytes.

use std::ops::Range;

use crate::framer::{COPY_DATA, HEADER_LEN};
use crate::{Framer, WireError};

/// Bytes a caller must leave free at the front of a read buffer for [`Framer::reblock`].
pub const HEADROOM: usize = HEADER_LEN;

/// What [`Framer::reblock`] made of a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Reblocked {
    /// The new CopyData frame, header included, as a range of the buffer (it always starts at 0).
    /// Empty when the chunk carried no payload byte.
    pub frame: Range<usize>,
    /// Source frames completed in this chunk.
    pub frames: usize,
    /// Payload bytes carried, that is `frame.len() - 5` (or 0).
    pub payload: usize,
    /// Where in the buffer a non-CopyData message starts, if one does: `buf[stop..]` is untouched
    /// and belongs to the session.
    pub stop: Option<usize>,
}

impl Framer {
    /// Re-blocks the chunk `buf[HEADROOM..]` into one CopyData frame at `buf[frame]`.
    ///
    /// The chunk may start and end anywhere in the source stream (inside a header, inside a body);
    /// the framer carries the state across calls. The output is always a whole frame, so a
    /// destination fed only re-blocked output is on a message boundary between chunks.
    ///
    /// ```
    /// use copyman_wire::{Framer, HEADROOM};
    ///
    /// let mut buf = vec![0; HEADROOM];
    /// buf.extend_from_slice(b"d\0\0\0\x061\nd\0\0\0\x062\n");
    /// let out = Framer::new().reblock(&mut buf).unwrap();
    /// assert_eq!(&buf[out.frame], b"d\0\0\0\x081\n2\n");
    /// assert_eq!(out.frames, 2);
    /// ```
    ///
    /// # Errors
    /// As [`Framer::advance`].
    ///
    /// # Panics
    /// If `buf` is shorter than [`HEADROOM`]: a caller bug, not a property of the data.
    pub fn reblock(&mut self, buf: &mut [u8]) -> Result<Reblocked, WireError> {
        assert!(
            buf.len() >= HEADROOM,
            "reblock needs {HEADROOM} bytes of headroom"
        );
        let mut write = HEADROOM;
        let walk = self.walk(buf, HEADROOM, |buf, segment| {
            let range = segment.range;
            if range.start != write {
                buf.copy_within(range.clone(), write);
            }
            write += range.len();
        })?;
        let payload = write - HEADROOM;
        let frame = if payload == 0 {
            0..0
        } else {
            // The payload is at most the buffer's length, so `payload + 4` only overflows a u32
            // for buffers of 4 GiB; such a chunk is refused rather than mis-framed.
            let length = u32::try_from(payload + 4)
                .ok()
                .filter(|l| *l <= crate::framer::MAX_LENGTH)
                .ok_or(WireError::TooLarge { len: payload })?;
            buf[0] = COPY_DATA;
            buf[1..HEADER_LEN].copy_from_slice(&length.to_be_bytes());
            0..write
        };
        Ok(Reblocked {
            frame,
            frames: walk.frames,
            payload,
            stop: walk.stop,
        })
    }
}
