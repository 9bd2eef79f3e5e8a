//! A one-shot reference parser, written for obviousness rather than speed, and stream builders.

use std::ops::Range;

use crate::{MAX_LENGTH, Position};

/// Encodes one message: `tag`, Int32 length (counting itself), `body`.
pub(crate) fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&(u32::try_from(body.len()).unwrap() + 4).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Encodes one CopyData message.
pub(crate) fn data(body: &[u8]) -> Vec<u8> {
    message(b'd', body)
}

/// Concatenates CopyData messages for `bodies`.
pub(crate) fn data_stream<B: AsRef<[u8]>>(bodies: &[B]) -> Vec<u8> {
    bodies.iter().flat_map(|b| data(b.as_ref())).collect()
}

/// How a stream parsed as CopyData ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// On a message boundary at the end of the input.
    Boundary,
    /// Inside a CopyData header: the type byte and `seen` length bytes.
    Header { len: [u8; 4], seen: u8 },
    /// Inside a CopyData body.
    Body { remaining: u32 },
    /// A non-CopyData message starts at `at`.
    Stop { at: usize, tag: u8 },
    /// The CopyData message at `offset` has an invalid length field.
    Invalid { length: u32, offset: usize },
}

impl End {
    /// The framer position this end corresponds to (None for an invalid stream).
    pub(crate) fn position(self) -> Option<Position> {
        Some(match self {
            Self::Boundary => Position::Boundary,
            Self::Header { len, seen } => Position::Header { len, seen },
            Self::Body { remaining } => Position::Body { remaining },
            Self::Stop { tag, .. } => Position::Stopped { tag },
            Self::Invalid { .. } => return None,
        })
    }
}

/// The CopyData prefix of a stream, parsed in one go.
#[derive(Debug, Clone)]
pub(crate) struct CopyParse {
    /// Whole CopyData messages: type byte to end of body.
    pub(crate) messages: Vec<Range<usize>>,
    /// Their bodies.
    pub(crate) bodies: Vec<Range<usize>>,
    /// Every body byte before the end (whole bodies, and the start of a cut one).
    pub(crate) payload: Vec<u8>,
    /// How it ends.
    pub(crate) end: End,
}

impl CopyParse {
    /// Where the framer stops consuming: the stop, or the end of the input.
    pub(crate) fn consumed(&self, input_len: usize) -> usize {
        match self.end {
            End::Stop { at, .. } => at,
            _ => input_len,
        }
    }
}

/// Parses the CopyData messages at the start of `s`, up to the first other message.
pub(crate) fn parse_copy(s: &[u8]) -> CopyParse {
    let mut messages = Vec::new();
    let mut bodies = Vec::new();
    let mut payload = Vec::new();
    let mut i = 0;
    let end = loop {
        if i == s.len() {
            break End::Boundary;
        }
        if s[i] != b'd' {
            break End::Stop { at: i, tag: s[i] };
        }
        let field = &s[i + 1..];
        if field.len() < 4 {
            let mut len = [0; 4];
            len[..field.len()].copy_from_slice(field);
            break End::Header {
                len,
                seen: field.len() as u8,
            };
        }
        let length = u32::from_be_bytes(field[..4].try_into().unwrap());
        if !(4..=MAX_LENGTH).contains(&length) {
            break End::Invalid { length, offset: i };
        }
        let body = i + 5..i + 1 + length as usize;
        if body.end > s.len() {
            payload.extend_from_slice(&s[body.start..]);
            break End::Body {
                remaining: (body.end - s.len()) as u32,
            };
        }
        payload.extend_from_slice(&s[body.clone()]);
        messages.push(i..body.end);
        i = body.end;
        bodies.push(body);
    };
    CopyParse {
        messages,
        bodies,
        payload,
        end,
    }
}

/// A whole message of any type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Msg {
    pub(crate) tag: u8,
    pub(crate) body: Vec<u8>,
}

/// Parses whole messages of any type from the start of `s` for as long as there are whole,
/// valid ones; returns them and how many bytes they took.
pub(crate) fn parse_messages(s: &[u8]) -> (Vec<Msg>, usize) {
    let mut out = Vec::new();
    let mut i = 0;
    while s.len() - i >= 5 {
        let length = u32::from_be_bytes(s[i + 1..i + 5].try_into().unwrap());
        if !(4..=MAX_LENGTH).contains(&length) || i + 1 + length as usize > s.len() {
            break;
        }
        out.push(Msg {
            tag: s[i],
            body: s[i + 5..i + 1 + length as usize].to_vec(),
        });
        i += 1 + length as usize;
    }
    (out, i)
}

/// Parses `s` as whole messages, all of them: panics unless every byte is taken.
pub(crate) fn parse_all(s: &[u8]) -> Vec<Msg> {
    let (messages, used) = parse_messages(s);
    assert_eq!(
        used,
        s.len(),
        "{} trailing bytes are not a whole message",
        s.len() - used
    );
    messages
}
