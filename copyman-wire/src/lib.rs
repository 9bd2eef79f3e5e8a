//! PostgreSQL COPY on the wire: framing, re-blocking, realignment and lines, without IO.
//!
//! This crate knows the shape of a PQv3 CopyData stream (`d`, Int32 length, body) and nothing
//! else. It never touches a socket, a clock, a thread or an async runtime: bytes go in, counts,
//! ranges and bytes come out, so someone with their own transport can depend on it alone.
//!
//! * [`Framer`] follows frame boundaries over chunks split anywhere and stops at the first
//!   message that is not CopyData (`WireState` in py-postgresql's copyman). It hops from header to
//!   header.
//! * [`Framer::reblock`] turns a chunk of per-row frames into one large frame, in place.
//! * [`realign`] computes what completes a receiver's partial frame and what a producer's session
//!   needs back to resume parsing, when a copy is aborted.
//! * [`LineDecoder`] and [`encode_lines`] convert between PQv3 and lines (`ChunkProtocol` and
//!   `cat_messages` in py-postgresql's copyman).
//! * [`message`] encodes CopyData, CopyDone and CopyFail and peeks at backend headers.
//! * [`eod`] finds a `\.` end-of-data line that would make a server drop the rest of a text or
//!   CSV input; [`binary`] finds binary COPY data that ends without its trailer.
//!
//! Not here: rows (bodies are opaque bytes), other backend messages (copyman-core's session
//! parses those), IO of any kind.
//!
//! # The read loop
//!
//! ```no_run
//! use copyman_wire::{Framer, HEADROOM};
//! # fn read(_: &mut [u8]) -> usize { 0 }
//! # fn send_to_every_destination(_: &[u8]) {}
//! # fn hand_to_session(_: &[u8]) {}
//! let mut framer = Framer::new();
//! let mut buf = vec![0u8; 64 * 1024];
//! loop {
//!     let n = read(&mut buf[HEADROOM..]);
//!     if n == 0 { break }
//!     let chunk = &mut buf[..HEADROOM + n];
//!     let out = framer.reblock(chunk).expect("a well-formed stream");
//!     send_to_every_destination(&chunk[out.frame]);
//!     if let Some(stop) = out.stop {
//!         // CopyDone, CommandComplete, a notice…: the session's business.
//!         hand_to_session(&chunk[stop..]);
//!         break;
//!     }
//! }
//! ```
#![forbid(unsafe_code)]

pub mod binary;
pub mod csv_quotes;
pub mod eod;
mod error;
mod framer;
// The fuzz targets' logic: public only for `fuzz/`, which turns the feature on; its unit tests
// run with the crate's own.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod lines;
pub mod message;
pub mod realign;
mod reblock;

pub use error::WireError;
pub use framer::{COPY_DATA, Framer, HEADER_LEN, MAX_LENGTH, Position, Walk};
pub use lines::{LineDecoder, Lines, encode_lines, encode_lines_joined};
pub use reblock::{HEADROOM, Reblocked};

#[cfg(test)]
mod tests;
