//! Scripted backend messages, the bytes a server would send, for the tests of what core makes of
//! them.
#![allow(dead_code, unreachable_pub)] // Each test binary uses its own part.

/// One backend message: its tag, length and body.
pub fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// ReadyForQuery, idle.
pub fn ready() -> Vec<u8> {
    msg(b'Z', b"I")
}

/// An ErrorResponse with SQLSTATE `code`.
pub fn error(code: &str) -> Vec<u8> {
    msg(b'E', format!("SERROR\0C{code}\0Mboom\0\0").as_bytes())
}

/// CommandComplete with `tag`.
pub fn complete(tag: &str) -> Vec<u8> {
    msg(b'C', format!("{tag}\0").as_bytes())
}

/// A CopyOutResponse (`H`) or CopyInResponse (`G`) of one text column.
pub fn copy_response(tag: u8) -> Vec<u8> {
    msg(tag, &[0, 0, 1, 0, 0])
}

/// A CopyData message.
pub fn data(row: &[u8]) -> Vec<u8> {
    msg(b'd', row)
}
