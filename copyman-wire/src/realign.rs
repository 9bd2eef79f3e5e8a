//! Realignment: the bytes that put both sides of an aborted COPY back on a message boundary.
//!
//! A CopyData frame partly sent cannot be taken back: before CopyFail the receiver must get the
//! rest of it ([`completion`]). And a producer connection read up to the middle of a frame must be
//! handed back to its session so that the session can parse (and discard) the rest of the stream
//! ([`resume`]). Both are pure functions of a [`Position`], as
//! `ProtocolProducer.realign` of py-postgresql's copyman is of its `WireState`.

use crate::Position;
use crate::framer::COPY_DATA;

/// What a receiver left inside a frame must be sent to reach the next message boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[must_use]
pub struct Completion {
    header: [u8; 4],
    header_len: u8,
    /// Zero bytes of body filler after the header bytes.
    pub filler: u64,
}

impl Completion {
    /// The length bytes still owed (0 to 4 of them).
    pub fn header(&self) -> &[u8] {
        &self.header[..usize::from(self.header_len)]
    }

    /// Total bytes owed: header bytes plus filler.
    pub fn len(&self) -> u64 {
        u64::from(self.header_len) + self.filler
    }

    /// Whether the receiver is already on a boundary.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The owed bytes, allocated. The filler can be large when a receiver stopped early in a big
    /// frame; stream [`Completion::header`] and `filler` zeros instead where that matters.
    pub fn to_vec(&self) -> Vec<u8> {
        let filler = usize::try_from(self.filler).expect("filler fits in memory on this target");
        let mut out = Vec::with_capacity(usize::from(self.header_len) + filler);
        out.extend_from_slice(self.header());
        out.resize(out.len() + filler, 0);
        out
    }
}

/// The bytes that complete the frame a receiver stands in at `position`.
///
/// Inside a header, the missing length bytes are chosen to give the smallest length consistent
/// with those already sent (at least 4, as the length counts itself); the body is zero filler.
/// The server then reads one whole, meaningless frame — as data, which it may refuse (a NUL is
/// 22021 to it) before it reads the CopyFail that follows; either way nothing of the COPY is
/// kept, and what the server says then is not the COPY's own failure.
///
/// ```
/// use copyman_wire::{Position, realign::completion};
///
/// // Only the type byte and two zero length bytes went out: finish with length 4, no body.
/// let c = completion(Position::Header { len: [0, 0, 0, 0], seen: 2 });
/// assert_eq!(c.to_vec(), vec![0, 4]);
/// // Inside a body with 3 bytes to go: 3 zeros.
/// assert_eq!(completion(Position::Body { remaining: 3 }).to_vec(), vec![0, 0, 0]);
/// ```
pub fn completion(position: Position) -> Completion {
    match position {
        Position::Header { len, seen } => {
            let seen = usize::from(seen).min(3);
            let mut full = [0; 4];
            full[..seen].copy_from_slice(&len[..seen]);
            let mut length = u32::from_be_bytes(full);
            if length < 4 {
                // Only possible when every byte sent is zero: the free low byte makes it 4.
                length = 4;
            }
            let mut header = [0; 4];
            let owed = 4 - seen;
            header[..owed].copy_from_slice(&length.to_be_bytes()[seen..]);
            Completion {
                header,
                header_len: owed as u8,
                filler: u64::from(length - 4),
            }
        }
        Position::Body { remaining } => Completion {
            filler: u64::from(remaining),
            ..Completion::default()
        },
        Position::Boundary | Position::Stopped { .. } => Completion::default(),
    }
}

/// Bytes that, put before the rest of the producer's stream, make it parse from a boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[must_use]
pub struct Resume {
    bytes: [u8; 5],
    len: u8,
}

impl Resume {
    /// The bytes to put in front of whatever the connection delivers next.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// What the producer's session needs back to resume parsing its connection at `position`.
///
/// Inside a header: the type byte and the length bytes already consumed. Inside a body: a fresh
/// header announcing exactly the body bytes still to come, so the session sees one (short)
/// CopyData message and then the stream as the server sent it. On a boundary, or after a stop
/// (whose bytes the caller already holds), nothing.
///
/// ```
/// use copyman_wire::{Position, realign::resume};
///
/// assert_eq!(resume(Position::Body { remaining: 2 }).as_slice(), b"d\0\0\0\x06");
/// ```
pub fn resume(position: Position) -> Resume {
    let mut bytes = [0; 5];
    match position {
        Position::Header { len, seen } => {
            let seen = usize::from(seen).min(3);
            bytes[0] = COPY_DATA;
            bytes[1..=seen].copy_from_slice(&len[..seen]);
            Resume {
                bytes,
                len: (1 + seen) as u8,
            }
        }
        Position::Body { remaining } => {
            bytes[0] = COPY_DATA;
            // `remaining` came from a length field no larger than i32::MAX, so + 4 cannot wrap.
            bytes[1..].copy_from_slice(&(remaining + 4).to_be_bytes());
            Resume { bytes, len: 5 }
        }
        Position::Boundary | Position::Stopped { .. } => Resume::default(),
    }
}
