//! The one error type of copyman-wire.

/// A malformed stream or an unencodable message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// A message length field below 4 (it counts itself) or above i32::MAX.
    #[error("invalid message length {length} in the message at byte {offset} of the stream")]
    InvalidLength {
        /// The length field as read.
        length: u32,
        /// Stream offset of the message's type byte.
        offset: u64,
    },
    /// A payload too large for one message.
    #[error("payload of {len} bytes is too large for one message")]
    TooLarge {
        /// The payload length that did not fit.
        len: usize,
    },
    /// A CopyFail reason holding a NUL byte, which the protocol cannot carry.
    #[error("copy fail reason contains a nul byte")]
    NulInReason,
}
