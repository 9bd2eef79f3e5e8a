//! Tests of copyman-wire.
//!
//! * [`reference`]: a tiny, obviously correct one-shot parser the other tests compare against.
//! * One module of unit tests per source module: every state transition of the framer, re-blocking,
//!   realignment, lines and the message helpers.
//! * [`props`]: property tests over random message streams, random chunkings and random abort
//!   points.

mod framer;
mod lines;
mod message;
mod props;
mod realign;
mod reblock;
mod reference;
