//! Reading backend messages out of the session's input buffer.
//!
//! Error and notice fields are read by postgres-protocol (`DbError::parse`); the handful of other
//! formats the session needs (parameters, COPY responses, data rows) are simple enough to read
//! here, with every length checked, so that no server input can make the session panic.

use bytes::{Buf, Bytes, BytesMut};

use super::SessionError;

/// The largest backend message body the session buffers whole: 1 GiB, the server's own limit for
/// a field value. CopyData is not bound by it where the session skips it instead of buffering.
pub(super) const MAX_BODY: usize = 1 << 30;

/// Bytes in a message header: the type byte and the Int32 length.
pub(super) const HEADER_LEN: usize = 5;

/// The type byte and length field at the front of `buf`, if the 5 header bytes are there.
pub(super) fn peek_header(buf: &[u8]) -> Result<Option<(u8, u32)>, SessionError> {
    let Some(head) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    if !(4..=copyman_wire::MAX_LENGTH).contains(&len) {
        return Err(SessionError::protocol(format!(
            "invalid length {len} in the header of message {}",
            show_tag(head[0])
        )));
    }
    Ok(Some((head[0], len)))
}

/// Splits the first whole message off `buf` and returns its type byte and body.
///
/// `Ok(None)` while the message is incomplete.
pub(super) fn next_message(buf: &mut BytesMut) -> Result<Option<(u8, Bytes)>, SessionError> {
    let Some((tag, len)) = peek_header(buf)? else {
        return Ok(None);
    };
    // `len` is at most i32::MAX, which fits a usize on every supported target.
    let body_len = len as usize - 4;
    if body_len > MAX_BODY {
        return Err(SessionError::protocol(format!(
            "message {} announces {body_len} bytes, more than the 1 GiB limit",
            show_tag(tag)
        )));
    }
    if buf.len() < HEADER_LEN + body_len {
        return Ok(None);
    }
    buf.advance(HEADER_LEN);
    Ok(Some((tag, buf.split_to(body_len).freeze())))
}

/// A message type byte for error messages: `'Z'`, or its hex value when not printable.
pub(super) fn show_tag(tag: u8) -> String {
    if tag.is_ascii_graphic() {
        format!("'{}'", char::from(tag))
    } else {
        format!("0x{tag:02x}")
    }
}

/// A cursor over one message body.
pub(super) struct Reader<'a> {
    tag: u8,
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(tag: u8, buf: &'a [u8]) -> Self {
        Self { tag, buf }
    }

    pub(super) fn malformed(&self, what: &str) -> SessionError {
        SessionError::protocol(format!("malformed message {}: {what}", show_tag(self.tag)))
    }

    /// The next `n` bytes.
    pub(super) fn bytes(&mut self, n: usize) -> Result<&'a [u8], SessionError> {
        if self.buf.len() < n {
            return Err(self.malformed("too short"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(super) fn u8(&mut self) -> Result<u8, SessionError> {
        Ok(self.bytes(1)?[0])
    }

    pub(super) fn i16(&mut self) -> Result<i16, SessionError> {
        let b = self.bytes(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub(super) fn i32(&mut self) -> Result<i32, SessionError> {
        let b = self.bytes(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A NUL-terminated string, without its NUL.
    pub(super) fn cstr(&mut self) -> Result<&'a [u8], SessionError> {
        let Some(end) = self.buf.iter().position(|&b| b == 0) else {
            return Err(self.malformed("string not nul-terminated"));
        };
        let s = &self.buf[..end];
        self.buf = &self.buf[end + 1..];
        Ok(s)
    }

    /// A NUL-terminated string, decoded lossily.
    pub(super) fn string(&mut self) -> Result<String, SessionError> {
        Ok(String::from_utf8_lossy(self.cstr()?).into_owned())
    }

    /// The rest of the body.
    pub(super) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Checks that the whole body was read.
    pub(super) fn finish(&self) -> Result<(), SessionError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.malformed("trailing bytes"))
        }
    }
}
