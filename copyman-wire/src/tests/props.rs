//! Property tests: random message streams, random chunkings, random abort points, all compared
//! with the one-shot [`reference`](super::reference) parser.

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

use super::reference::{
    End, Msg, data, data_stream, message, parse_all, parse_copy, parse_messages,
};
use crate::realign::{completion, resume};
use crate::{
    Framer, HEADROOM, LineDecoder, MAX_LENGTH, Position, WireError, encode_lines,
    encode_lines_joined,
};

/// Cheap pseudo-random bytes (xorshift): bodies are opaque to the framer, so their content only
/// needs to be varied (and to hold `d` and zero bytes at times), not shrinkable byte by byte.
fn fill(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // Every 4th seed makes bodies of `d` and zeros only, which look like headers.
            if seed.is_multiple_of(4) {
                [b'd', 0][(x >> 31) as usize]
            } else {
                (x >> 24) as u8
            }
        })
        .collect()
}

/// A CopyData body: mostly 0..300 bytes, sometimes empty, occasionally ~5000.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let len = prop_oneof![3 => Just(0usize), 24 => 1usize..300, 1 => 4000usize..6000];
    (len, any::<u32>()).prop_map(|(len, seed)| fill(len, seed))
}

/// What follows the CopyData messages.
#[derive(Debug, Clone)]
enum Tail {
    /// Nothing.
    Nothing,
    /// A non-CopyData message (`c`, `C`, `Z`, `E`, `N`, `S`, `A`), then arbitrary bytes.
    Other {
        tag: u8,
        body: Vec<u8>,
        trailing: Vec<u8>,
    },
    /// Arbitrary bytes, which may begin a CopyData header or another message, or be invalid.
    Garbage(Vec<u8>),
    /// A CopyData header with an invalid length, then arbitrary bytes.
    Invalid { length: u32, trailing: Vec<u8> },
}

fn other_tail() -> impl Strategy<Value = Tail> {
    (
        prop::sample::select(b"cCZENSA".to_vec()),
        body(),
        vec(any::<u8>(), 0..20),
    )
        .prop_map(|(tag, body, trailing)| Tail::Other {
            tag,
            body,
            trailing,
        })
}

/// Well-formed tails: the session's messages after the CopyData, or nothing.
fn valid_tail() -> impl Strategy<Value = Tail> {
    prop_oneof![Just(Tail::Nothing), other_tail()]
}

/// Any tail, malformed ones included.
fn any_tail() -> impl Strategy<Value = Tail> {
    let length = prop_oneof![0u32..4, MAX_LENGTH + 1..=u32::MAX];
    prop_oneof![
        2 => Just(Tail::Nothing),
        4 => other_tail(),
        1 => vec(any::<u8>(), 1..12).prop_map(Tail::Garbage),
        2 => (length, vec(any::<u8>(), 0..8)).prop_map(|(length, trailing)| Tail::Invalid { length, trailing }),
    ]
}

/// A random message stream.
#[derive(Debug, Clone)]
struct Stream {
    bodies: Vec<Vec<u8>>,
    tail: Tail,
}

impl Stream {
    fn bytes(&self) -> Vec<u8> {
        let mut out = data_stream(&self.bodies);
        match &self.tail {
            Tail::Nothing => {}
            Tail::Other {
                tag,
                body,
                trailing,
            } => {
                out.extend(message(*tag, body));
                out.extend_from_slice(trailing);
            }
            Tail::Garbage(bytes) => out.extend_from_slice(bytes),
            Tail::Invalid { length, trailing } => {
                out.push(b'd');
                out.extend_from_slice(&length.to_be_bytes());
                out.extend_from_slice(trailing);
            }
        }
        out
    }
}

fn stream(tail: impl Strategy<Value = Tail>) -> impl Strategy<Value = Stream> {
    (vec(body(), 0..16), tail).prop_map(|(bodies, tail)| Stream { bodies, tail })
}

/// Where a stream is split into chunks.
#[derive(Debug, Clone)]
enum Chunking {
    /// At these points (sorted; repeats make empty chunks).
    Points(Vec<Index>),
    /// Every `n` bytes.
    Every(usize),
}

impl Chunking {
    fn ranges(&self, len: usize) -> Vec<Range<usize>> {
        let mut points: Vec<usize> = match self {
            Self::Points(points) => points.iter().map(|p| p.index(len + 1)).collect(),
            Self::Every(n) => (1..len.div_ceil(*n)).map(|i| i * n).collect(),
        };
        points.sort_unstable();
        points.push(len);
        let mut start = 0;
        points
            .into_iter()
            .map(|end| {
                let range = start..end;
                start = end;
                range
            })
            .collect()
    }
}

fn chunking() -> impl Strategy<Value = Chunking> {
    prop_oneof![
        4 => vec(any::<Index>(), 0..24).prop_map(Chunking::Points),
        1 => (1usize..8).prop_map(Chunking::Every),
    ]
}

/// `chunk` behind [`HEADROOM`] zero bytes.
fn with_headroom(chunk: &[u8]) -> Vec<u8> {
    let mut buf = vec![0; HEADROOM];
    buf.extend_from_slice(chunk);
    buf
}

/// Whether `inner`'s bytes lie inside `outer`'s memory.
fn points_into(inner: &Bytes, outer: &Bytes) -> bool {
    let (outer, inner) = (outer.as_ptr_range(), inner.as_ptr_range());
    outer.start <= inner.start && inner.end <= outer.end
}

proptest! {
    /// (i) For any stream and chunking, the framer's frames, payload, stop, final position,
    /// offset and error equal a one-shot parse; every walk's frames and boundary match the
    /// frames that end in its chunk.
    #[test]
    fn framer_matches_a_one_shot_parse(
        stream in stream(any_tail()),
        cut in prop::option::weighted(0.3, any::<Index>()),
        chunking in chunking(),
    ) {
        let mut stream = stream.bytes();
        if let Some(cut) = cut {
            stream.truncate(cut.index(stream.len() + 1));
        }
        let expected = parse_copy(&stream);
        let ends: Vec<usize> = expected.messages.iter().map(|m| m.end).collect();
        let mut framer = Framer::new();
        let (mut frames, mut payload, mut stop, mut error) = (0, 0, None, None);
        for range in chunking.ranges(stream.len()) {
            match framer.advance(&stream[range.clone()]) {
                Ok(walk) => {
                    prop_assert!(error.is_none(), "an error must be sticky");
                    frames += walk.frames;
                    payload += walk.payload;
                    if stop.is_some() {
                        prop_assert_eq!((walk.frames, walk.payload, walk.stop), (0, 0, Some(0)));
                    } else if let Some(at) = walk.stop {
                        stop = Some(range.start + at);
                    }
                    let completed: Vec<usize> =
                        ends.iter().copied().filter(|e| range.start < *e && *e <= range.end).collect();
                    prop_assert_eq!(walk.frames, completed.len());
                    prop_assert_eq!(walk.boundary, completed.last().map_or(0, |e| e - range.start));
                }
                Err(e) => {
                    prop_assert!(error.is_none() || error.as_ref() == Some(&e));
                    error = Some(e);
                }
            }
        }
        prop_assert_eq!(framer.frames(), ends.len() as u64);
        if let End::Invalid { length, offset } = expected.end {
            prop_assert_eq!(error, Some(WireError::InvalidLength { length, offset: offset as u64 }));
        } else {
            prop_assert_eq!(error, None);
            prop_assert_eq!(frames, ends.len());
            prop_assert_eq!(payload, expected.payload.len());
            let expected_stop = match expected.end { End::Stop { at, .. } => Some(at), _ => None };
            prop_assert_eq!(stop, expected_stop);
            prop_assert_eq!(Some(framer.position()), expected.end.position());
            prop_assert_eq!(framer.offset(), expected.consumed(stream.len()) as u64);
        }
    }

    /// (ii) Re-blocked output, for any chunking, is whole frames whose payloads are exactly the
    /// source's payload bytes in order; from the stop on the buffer is untouched.
    #[test]
    fn reblocked_output_carries_exactly_the_payload(
        stream in stream(valid_tail()),
        cut in prop::option::weighted(0.3, any::<Index>()),
        chunking in chunking(),
    ) {
        let mut stream = stream.bytes();
        if let Some(cut) = cut {
            stream.truncate(cut.index(stream.len() + 1));
        }
        let expected = parse_copy(&stream);
        let mut framer = Framer::new();
        let (mut payload, mut frames, mut stop) = (Vec::new(), 0, None);
        for range in chunking.ranges(stream.len()) {
            let mut buf = with_headroom(&stream[range.clone()]);
            let pristine = buf.clone();
            let out = framer.reblock(&mut buf).unwrap();
            frames += out.frames;
            if out.payload == 0 {
                prop_assert_eq!(out.frame.clone(), 0..0);
            } else {
                prop_assert_eq!(out.frame.clone(), 0..HEADROOM + out.payload);
                let messages = parse_all(&buf[out.frame.clone()]);
                prop_assert_eq!(messages.len(), 1);
                prop_assert_eq!(messages[0].tag, b'd');
                payload.extend_from_slice(&messages[0].body);
            }
            if let Some(at) = out.stop {
                prop_assert!(out.frame.end <= at);
                prop_assert_eq!(&buf[at..], &pristine[at..]);
                if stop.is_none() {
                    stop = Some(range.start + at - HEADROOM);
                } else {
                    prop_assert_eq!(at, HEADROOM);
                }
            }
        }
        prop_assert_eq!(frames, expected.messages.len());
        prop_assert_eq!(payload, expected.payload);
        let expected_stop = match expected.end { End::Stop { at, .. } => Some(at), _ => None };
        prop_assert_eq!(stop, expected_stop);
    }

    /// (iii) For any abort point in the CopyData part: what the receiver saw plus completion is a
    /// whole number of valid frames; and resume plus the rest of the producer's stream parses to
    /// the rest of the cut frame's body, then exactly the original remaining messages.
    #[test]
    fn realignment_at_any_abort_point(
        stream in stream(valid_tail()),
        abort in any::<Index>(),
        chunking in chunking(),
    ) {
        let stream = stream.bytes();
        let parsed = parse_copy(&stream);
        let p = abort.index(parsed.consumed(stream.len()) + 1);

        // The receiver's view: the stream up to p, followed by a framer in any chunking.
        let mut framer = Framer::new();
        for range in chunking.ranges(p) {
            let _ = framer.advance(&stream[range]).unwrap();
        }
        let position = framer.position();
        // The same, from the position recorded at the start of the chunk of a whole-stream
        // chunking that holds p, and only the part of that chunk before p.
        let mut recorded = Framer::new();
        for range in chunking.ranges(stream.len()) {
            if range.end >= p {
                let mut from = Framer::at(recorded.position());
                let _ = from.advance(&stream[range.start..p]).unwrap();
                prop_assert_eq!(from.position(), position);
                break;
            }
            let _ = recorded.advance(&stream[range]).unwrap();
        }
        let owed = completion(position);
        let received = [&stream[..p], &owed.to_vec()[..]].concat();
        let messages = parse_all(&received);
        let whole = parsed.messages.iter().filter(|m| m.end <= p).count();
        let cut = usize::from(position != Position::Boundary);
        prop_assert_eq!(messages.len(), whole + cut);
        prop_assert!(messages.iter().all(|m| m.tag == b'd'));
        for (message, body) in messages.iter().zip(&parsed.bodies) {
            if body.end <= p {
                prop_assert_eq!(&message.body, &stream[body.clone()].to_vec());
            }
        }
        prop_assert_eq!(owed.len(), received.len() as u64 - p as u64);

        // The producer's side: resume, then whatever the connection delivers after p.
        let replay = [resume(position).as_slice(), &stream[p..]].concat();
        let (messages, used) = parse_messages(&replay);
        let (mut expected, rest) = match parsed.messages.iter().position(|m| m.start < p && p < m.end) {
            Some(k) => {
                let body = &parsed.bodies[k];
                let first = Msg { tag: b'd', body: stream[p.max(body.start)..body.end].to_vec() };
                (vec![first], body.end)
            }
            None => (Vec::new(), p),
        };
        // The stream's CopyData messages are whole: a framer off a boundary is inside one of them.
        prop_assert_eq!(position != Position::Boundary, !expected.is_empty());
        let (after, after_used) = parse_messages(&stream[rest..]);
        expected.extend(after);
        prop_assert_eq!(messages, expected);
        prop_assert_eq!(replay.len() - used, stream.len() - rest - after_used);
    }

    /// LineDecoder over any stream and chunking gives the reference's bodies and stop; a body lying
    /// inside one chunk comes out as a slice of that chunk, any other one as a copy.
    #[test]
    fn line_decoder_matches_the_reference(
        stream in stream(valid_tail()),
        chunking in chunking(),
    ) {
        let stream = stream.bytes();
        let expected = parse_copy(&stream);
        let mut decoder = LineDecoder::new();
        let chunks: Vec<(Range<usize>, Bytes)> = chunking
            .ranges(stream.len())
            .into_iter()
            .map(|r| (r.clone(), Bytes::copy_from_slice(&stream[r])))
            .collect();
        let mut lines = Vec::new();
        let mut stop = None;
        for (i, (range, chunk)) in chunks.iter().enumerate() {
            let out = decoder.decode(chunk.clone()).unwrap();
            if stop.is_none() {
                stop = out.stop.map(|s| range.start + s);
            }
            lines.extend(out.lines.into_iter().map(|line| (i, line)));
        }
        prop_assert_eq!(lines.len(), expected.bodies.len());
        for ((i, line), body) in lines.iter().zip(&expected.bodies) {
            prop_assert_eq!(&line[..], &stream[body.clone()]);
            if body.is_empty() {
                continue;
            }
            let range = &chunks[*i].0;
            if range.start <= body.start && body.end <= range.end {
                prop_assert!(points_into(line, &chunks[*i].1), "body {:?} in chunk {:?} was copied", body, range);
            } else {
                prop_assert!(chunks.iter().all(|(_, c)| !points_into(line, c)));
            }
        }
        let expected_stop = match expected.end { End::Stop { at, .. } => Some(at), _ => None };
        prop_assert_eq!(stop, expected_stop);
    }

    /// (iv) lines → PQv3 → lines is the identity, in any chunking; the joined form is one frame
    /// carrying their concatenation.
    #[test]
    fn lines_round_trip(
        lines in vec(body(), 0..30),
        chunking in chunking(),
    ) {
        let mut encoded = BytesMut::new();
        prop_assert_eq!(encode_lines(&lines, &mut encoded), Ok(lines.len()));
        prop_assert_eq!(&encoded[..], &data_stream(&lines)[..]);
        let end = encoded.len();
        encoded.extend_from_slice(b"c\0\0\0\x04");

        let mut decoder = LineDecoder::new();
        let mut decoded = Vec::new();
        let mut stop = None;
        for range in chunking.ranges(encoded.len()) {
            let out = decoder.decode(Bytes::copy_from_slice(&encoded[range.clone()])).unwrap();
            if stop.is_none() {
                stop = out.stop.map(|s| range.start + s);
            }
            decoded.extend(out.lines.iter().map(|l| l.to_vec()));
        }
        prop_assert_eq!(&decoded, &lines);
        prop_assert_eq!(stop, Some(end));

        let mut joined = BytesMut::new();
        encode_lines_joined(&lines, &mut joined).unwrap();
        let concatenated = lines.concat();
        if concatenated.is_empty() {
            prop_assert!(joined.is_empty());
        } else {
            prop_assert_eq!(&joined[..], &data(&concatenated)[..]);
        }
    }
}
