//! Frontend COPY messages and backend message headers.

use bytes::{BufMut, BytesMut};
use postgres_protocol::message::frontend;

use crate::WireError;
use crate::framer::{COPY_DATA, HEADER_LEN, MAX_LENGTH};

/// The header of a CopyData message carrying `payload` bytes.
///
/// # Errors
/// [`WireError::TooLarge`] when the message length would not fit the protocol's Int32.
pub fn copy_data_header(payload: usize) -> Result<[u8; HEADER_LEN], WireError> {
    let length = payload
        .checked_add(4)
        .and_then(|l| u32::try_from(l).ok())
        .filter(|l| *l <= MAX_LENGTH)
        .ok_or(WireError::TooLarge { len: payload })?;
    let mut header = [COPY_DATA; HEADER_LEN];
    header[1..].copy_from_slice(&length.to_be_bytes());
    Ok(header)
}

/// Appends a CopyData message carrying `payload` to `dst`.
///
/// # Errors
/// [`WireError::TooLarge`] when the payload does not fit one message.
pub fn encode_copy_data(payload: &[u8], dst: &mut BytesMut) -> Result<(), WireError> {
    let header = copy_data_header(payload.len())?;
    dst.reserve(HEADER_LEN + payload.len());
    dst.put_slice(&header);
    dst.put_slice(payload);
    Ok(())
}

/// Appends a CopyDone message to `dst`.
pub fn encode_copy_done(dst: &mut BytesMut) {
    frontend::copy_done(dst);
}

/// Appends a CopyFail message with `reason` to `dst`.
///
/// # Errors
/// [`WireError::NulInReason`] when `reason` holds a NUL byte (the protocol's strings end at NUL);
/// `dst` is then unchanged.
pub fn encode_copy_fail(reason: &str, dst: &mut BytesMut) -> Result<(), WireError> {
    // postgres-protocol writes the type byte and a placeholder length before it finds the NUL:
    // take that half-written message back out rather than leave `f\0\0\0\0` to be sent.
    let start = dst.len();
    frontend::copy_fail(reason, dst).map_err(|_| {
        dst.truncate(start);
        WireError::NulInReason
    })
}

/// The header of a backend message: its type byte and its length field (which counts itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The message type byte (`d`, `c`, `C`, `Z`, `E`, `N`, …).
    pub tag: u8,
    /// The length field: body length plus 4.
    pub len: u32,
}

impl Header {
    /// Bytes the whole message takes, type byte included.
    pub fn total_len(&self) -> usize {
        // `len` is at most i32::MAX, which fits a usize on every supported target.
        self.len as usize + 1
    }
}

/// Reads the header of the message starting at `buf[0]`, if the 5 header bytes are there.
///
/// # Errors
/// [`WireError::InvalidLength`] (offset 0) when the length field is below 4 or above i32::MAX.
pub fn peek_header(buf: &[u8]) -> Result<Option<Header>, WireError> {
    let Some(head) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    if !(4..=MAX_LENGTH).contains(&len) {
        return Err(WireError::InvalidLength {
            length: len,
            offset: 0,
        });
    }
    Ok(Some(Header { tag: head[0], len }))
}
