//! The logic of the cargo-fuzz targets in `fuzz/`, kept here so that it is compiled (and linted)
//! with the crate; each target is a three-line shim over one function of this module.
//!
//! Not a public API: the inputs and checks change whenever the fuzzing needs them to.
//!
//! Every function takes an input made of a few fixed-size parameters followed by the raw stream,
//! so that a capture of real server bytes is a valid input once the parameters are put in front
//! of it (see [`StreamInput::to_bytes`] and `fuzz/README.md`). With the `fuzzing` feature the
//! inputs implement `arbitrary::Arbitrary` by hand, reading the fixed-size fields from the front
//! and taking the rest of the data as the stream, verbatim (the derived impl of `arbitrary` 1.5
//! would put a continuation byte before every stream byte, and real captures would not be
//! seeds).
//!
//! A failed check panics: that is how a fuzz target reports a bug.

use std::collections::VecDeque;
use std::ops::Range;

use bytes::{Bytes, BytesMut};

use crate::framer::{COPY_DATA, HEADER_LEN, MAX_LENGTH};
use crate::realign::{completion, resume};
use crate::{
    Framer, HEADROOM, LineDecoder, Position, WireError, encode_lines, encode_lines_joined,
};

/// A byte stream and how to cut it into chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInput {
    /// Chunk sizes, used in turn: 0 is an empty chunk (see [`chunk_ranges`]).
    pub chunks: [u8; 8],
    /// A parameter of the target: where to abort for the framer, the line-split mode for lines.
    pub param: u16,
    /// The stream, as a server sends it.
    pub stream: Vec<u8>,
}

impl StreamInput {
    /// Bytes in front of the stream: the chunk sizes and the parameter.
    pub const PREFIX_LEN: usize = 10;

    /// The fuzzer input that `arbitrary` decodes to `self`: the chunk sizes, the parameter
    /// (little-endian), then the stream. For writing seeds.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::PREFIX_LEN + self.stream.len());
        out.extend_from_slice(&self.chunks);
        out.extend_from_slice(&self.param.to_le_bytes());
        out.extend_from_slice(&self.stream);
        out
    }

    /// The input from its fixed-size prefix (zero-filled if short) and its stream.
    pub fn from_parts(prefix: [u8; Self::PREFIX_LEN], stream: Vec<u8>) -> Self {
        let mut chunks = [0; 8];
        chunks.copy_from_slice(&prefix[..8]);
        Self {
            chunks,
            param: u16::from_le_bytes([prefix[8], prefix[9]]),
            stream,
        }
    }
}

#[cfg(feature = "fuzzing")]
impl<'a> arbitrary::Arbitrary<'a> for StreamInput {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut prefix = [0; Self::PREFIX_LEN];
        u.fill_buffer(&mut prefix)?;
        let len = u.arbitrary_len::<u8>()?;
        Ok(Self::from_parts(prefix, u.bytes(len)?.to_vec()))
    }

    fn arbitrary_take_rest(mut u: arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut prefix = [0; Self::PREFIX_LEN];
        u.fill_buffer(&mut prefix)?;
        Ok(Self::from_parts(prefix, u.take_rest().to_vec()))
    }
}

/// Cuts `0..len` into consecutive chunks whose sizes are taken from `sizes` in turn, a size of 0
/// making an empty chunk. All sizes 0 means a single chunk.
pub fn chunk_ranges(len: usize, sizes: &[u8; 8]) -> Vec<Range<usize>> {
    if sizes.iter().all(|&s| s == 0) {
        return std::iter::once(0..len).collect();
    }
    let mut ranges = Vec::new();
    let mut start = 0;
    // Every round of the 8 sizes advances, so this ends.
    for &size in sizes.iter().cycle() {
        if start == len {
            break;
        }
        let end = (start + usize::from(size)).min(len);
        ranges.push(start..end);
        start = end;
    }
    ranges
}

// -- The reference ---------------------------------------------------------------------------------

/// How the reference parse of a stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// At a position the framer can stand at (boundary, inside a header or body).
    At(Position),
    /// At a non-CopyData message that is not whole (or has an invalid length): the framer stays
    /// stopped there, the driver cannot skip it.
    Stuck { at: usize, tag: u8 },
    /// At a CopyData header with an invalid length; `offset` counts CopyData bytes only.
    Invalid { at: usize, length: u32, offset: u64 },
}

/// The stream parsed in one go, as a driver following the documented loop sees it: the framer
/// stops at each message that is not CopyData, the driver (the session) handles that message and
/// resumes the framer after it.
#[derive(Debug, Clone)]
struct Reference {
    /// Whole CopyData messages, type byte to end of body.
    messages: Vec<Range<usize>>,
    /// Their bodies.
    bodies: Vec<Range<usize>>,
    /// Every body byte before the end, the start of a cut body included.
    payload: Vec<u8>,
    /// The other messages, whole: the framer stops at each, the driver skips it.
    skipped: Vec<Range<usize>>,
    /// CopyData bytes consumed (what [`Framer::offset`] counts).
    consumed: u64,
    /// Where the first stop, invalid header or the end of the stream is: the CopyData prefix.
    prefix: usize,
    /// The start of the CopyData message the stream ends inside, if it does.
    open: Option<usize>,
    end: End,
}

/// A whole message with a valid length at `s[at..]`: its range.
fn whole_message(s: &[u8], at: usize) -> Option<Range<usize>> {
    let head = s.get(at..at + HEADER_LEN)?;
    let length = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    if !(4..=MAX_LENGTH).contains(&length) {
        return None;
    }
    let end = at.checked_add(1 + length as usize)?;
    (end <= s.len()).then_some(at..end)
}

fn reference(s: &[u8]) -> Reference {
    let mut r = Reference {
        messages: Vec::new(),
        bodies: Vec::new(),
        payload: Vec::new(),
        skipped: Vec::new(),
        consumed: 0,
        prefix: s.len(),
        open: None,
        end: End::At(Position::Boundary),
    };
    let mut i = 0;
    r.end = loop {
        if i == s.len() {
            break End::At(Position::Boundary);
        }
        if s[i] != COPY_DATA {
            r.prefix = r.prefix.min(i);
            match whole_message(s, i) {
                Some(message) => {
                    i = message.end;
                    r.skipped.push(message);
                    continue;
                }
                None => break End::Stuck { at: i, tag: s[i] },
            }
        }
        let field = &s[i + 1..];
        if field.len() < 4 {
            let mut len = [0; 4];
            len[..field.len()].copy_from_slice(field);
            r.consumed += (s.len() - i) as u64;
            r.open = Some(i);
            break End::At(Position::Header {
                len,
                seen: field.len() as u8,
            });
        }
        let length = u32::from_be_bytes([field[0], field[1], field[2], field[3]]);
        if !(4..=MAX_LENGTH).contains(&length) {
            r.prefix = r.prefix.min(i);
            break End::Invalid {
                at: i,
                length,
                offset: r.consumed,
            };
        }
        let body = i + HEADER_LEN..i + 1 + length as usize;
        if body.end > s.len() {
            r.payload.extend_from_slice(&s[body.start..]);
            r.consumed += (s.len() - i) as u64;
            r.open = Some(i);
            break End::At(Position::Body {
                remaining: (body.end - s.len()) as u32,
            });
        }
        r.payload.extend_from_slice(&s[body.clone()]);
        r.consumed += (body.end - i) as u64;
        r.messages.push(i..body.end);
        i = body.end;
        r.bodies.push(body);
    };
    r
}

/// Whole messages with valid lengths from the start of `s`, as (tag, body), and the bytes they
/// take.
fn parse_messages(s: &[u8]) -> (Vec<(u8, &[u8])>, usize) {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(message) = whole_message(s, i) {
        out.push((s[i], &s[i + HEADER_LEN..message.end]));
        i = message.end;
    }
    (out, i)
}

// -- The framer target -------------------------------------------------------------------------------

/// The `framer` target: [`Framer::advance`] and [`Framer::reblock`] over any stream in any
/// chunking, the driver resuming after every whole non-CopyData message as the session would.
///
/// Checks: no panic; advance and reblock agree chunk by chunk (frames, payload, stop, error) and
/// with a one-shot reference parse (frame ends, payload bytes, stops, final position, offset,
/// sticky errors); re-blocked output is one whole frame whose payload is exactly the chunk's
/// payload, and the bytes from a stop on are untouched; and at the abort point `param` (scaled
/// into the CopyData prefix) completion and resume realign both sides as documented.
pub fn framer(input: &StreamInput) {
    let stream = &input.stream[..];
    let expected = reference(stream);
    let ranges = chunk_ranges(stream.len(), &input.chunks);
    let ends: Vec<usize> = expected.messages.iter().map(|m| m.end).collect();

    let mut advancer = Framer::new();
    let mut reblocker = Framer::new();
    let mut payload = Vec::new();
    let (mut frames, mut stops, mut error) = (0, Vec::new(), None);
    // Where the framers continue after a message they stopped at was skipped.
    let mut from = 0;
    let mut queue: VecDeque<Range<usize>> = ranges.iter().cloned().collect();
    while let Some(range) = queue.pop_front() {
        if range.end < from {
            continue;
        }
        let range = range.start.max(from)..range.end;
        let chunk = &stream[range.clone()];
        let walked = advancer.advance(chunk);
        let mut buf = vec![0; HEADROOM];
        buf.extend_from_slice(chunk);
        let pristine = buf.clone();
        let reblocked = reblocker.reblock(&mut buf);
        let (walk, out) = match (walked, reblocked) {
            (Ok(walk), Ok(out)) => (walk, out),
            (Err(a), Err(b)) => {
                assert_eq!(a, b, "advance and reblock fail alike");
                assert!(
                    error.is_none() || error.as_ref() == Some(&a),
                    "errors are sticky"
                );
                error = Some(a);
                continue;
            }
            (a, b) => panic!("advance gave {a:?} but reblock {b:?}"),
        };
        assert!(error.is_none(), "an error must be sticky, got {walk:?}");
        assert_eq!(
            (out.frames, out.payload, out.stop),
            (walk.frames, walk.payload, walk.stop.map(|s| s + HEADROOM)),
            "reblock and advance agree"
        );
        frames += walk.frames;
        // Frames after a stop are walked again, once the stopping message is skipped.
        let walked_to = walk.stop.map_or(range.end, |s| range.start + s);
        let completed: Vec<usize> = ends
            .iter()
            .copied()
            .filter(|e| range.start < *e && *e <= walked_to)
            .collect();
        assert_eq!(walk.frames, completed.len(), "frames ending in {range:?}");
        assert_eq!(
            walk.boundary,
            completed.last().map_or(0, |e| e - range.start),
            "the last boundary in {range:?}"
        );
        if out.payload == 0 {
            assert_eq!(out.frame, 0..0);
        } else {
            assert_eq!(out.frame, 0..HEADROOM + out.payload);
            let (messages, used) = parse_messages(&buf[out.frame.clone()]);
            assert_eq!(used, out.frame.len(), "re-blocked output is whole frames");
            assert_eq!(messages.len(), 1, "re-blocked output is one frame");
            assert_eq!(messages[0].0, COPY_DATA);
            payload.extend_from_slice(messages[0].1);
        }
        if let Some(at) = walk.stop {
            assert_eq!(&buf[at + HEADROOM..], &pristine[at + HEADROOM..]);
            let at = range.start + at;
            stops.push(at);
            // A stopped framer consumes nothing until resumed.
            let again = advancer.advance(&stream[at..range.end]);
            assert_eq!(
                again.map(|w| (w.frames, w.payload, w.stop)),
                Ok((0, 0, Some(0)))
            );
            // The driver hands the message to the session and resumes after it, if it is whole.
            let Some(message) = whole_message(stream, at) else {
                break;
            };
            advancer.resume();
            reblocker.resume();
            from = message.end;
            if from < range.end {
                queue.push_front(from..range.end);
            }
        }
    }

    let skipped: Vec<usize> = expected.skipped.iter().map(|m| m.start).collect();
    assert_eq!(advancer.frames(), ends.len() as u64);
    assert_eq!(reblocker.frames(), ends.len() as u64);
    match expected.end {
        End::Invalid { length, offset, .. } => {
            assert_eq!(error, Some(WireError::InvalidLength { length, offset }));
        }
        End::At(position) => {
            assert_eq!(error, None);
            assert_eq!(frames, ends.len());
            assert_eq!(payload, expected.payload);
            assert_eq!(stops, skipped);
            assert_eq!(advancer.position(), position);
            assert_eq!(reblocker.position(), position);
            assert_eq!(advancer.offset(), expected.consumed);
        }
        End::Stuck { at, tag } => {
            assert_eq!(error, None);
            assert_eq!(payload, expected.payload);
            assert_eq!(stops, [skipped, vec![at]].concat());
            assert_eq!(advancer.position(), Position::Stopped { tag });
            assert_eq!(advancer.offset(), expected.consumed);
        }
    }

    realignment(stream, &expected, &ranges, input.param);
}

/// Completion and resume at one abort point of the CopyData prefix.
fn realignment(stream: &[u8], expected: &Reference, ranges: &[Range<usize>], param: u16) {
    let p = usize::from(param) % (expected.prefix + 1);

    // The receiver's view: the prefix up to p in the chunking, and the same from the position
    // recorded at the start of the chunk that holds p.
    let mut framer = Framer::new();
    let mut recorded = None;
    for range in ranges {
        if range.start >= p {
            break;
        }
        if range.end >= p && recorded.is_none() {
            recorded = Some((framer.position(), range.start));
        }
        let _ = framer.advance(&stream[range.start..range.end.min(p)]);
    }
    let position = framer.position();
    if let Some((start, at)) = recorded {
        let mut from = Framer::at(start);
        let _ = from.advance(&stream[at..p]);
        assert_eq!(from.position(), position, "Framer::at agrees");
    }
    let cut = expected
        .messages
        .iter()
        .position(|m| m.start < p && p < m.end);
    // A framer off a boundary is inside a message: a whole one, or the one the stream ends in.
    let in_open = expected.open.is_some_and(|o| o < p);
    assert_eq!(
        position != Position::Boundary,
        cut.is_some() || in_open,
        "position {position:?} at {p}"
    );

    // The receiver: what it got plus completion is whole valid frames, and the header bytes
    // and filler owed are exactly what the frame it stands in still needs.
    let owed = completion(position);
    if let Position::Header { len, seen } = position {
        assert_eq!(
            owed.header().len(),
            4 - usize::from(seen),
            "the length bytes owed"
        );
        if seen >= 1 && len[0] >= 0x80 {
            // No valid length starts with these bytes: the stream was malformed already (the
            // framer says so once the header is whole), so no completion can make a valid frame.
            return replay(stream, expected, p, position, cut, in_open);
        }
    }
    let received = [&stream[..p], owed.header()].concat();
    let (messages, used) = parse_messages(&received);
    let whole = expected.messages.iter().filter(|m| m.end <= p).count();
    assert!(messages.iter().all(|m| m.0 == COPY_DATA));
    if owed.filler == 0 {
        assert_eq!(used, received.len(), "completion ends on a boundary");
        assert_eq!(
            messages.len(),
            whole + usize::from(position != Position::Boundary)
        );
    } else {
        assert_eq!(messages.len(), whole);
        let head = &received[used..];
        assert!(head.len() >= HEADER_LEN, "completion finishes the header");
        let length = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        assert!((4..=MAX_LENGTH).contains(&length));
        assert_eq!(
            u64::from(length) + 1 - head.len() as u64,
            owed.filler,
            "the filler completes the body"
        );
    }
    assert_eq!(owed.len(), owed.header().len() as u64 + owed.filler);
    replay(stream, expected, p, position, cut, in_open);
}

/// The producer's side of the realignment at `p`.
fn replay(
    stream: &[u8],
    expected: &Reference,
    p: usize,
    position: Position,
    cut: Option<usize>,
    in_open: bool,
) {
    // The producer: resume plus the rest of the stream parses to the rest of the cut frame,
    // then the stream's own messages.
    let replay = [resume(position).as_slice(), &stream[p..]].concat();
    let (messages, used) = parse_messages(&replay);
    let (first, rest) = match cut {
        Some(k) => {
            let body = &expected.bodies[k];
            (Some(&stream[p.max(body.start)..body.end]), body.end)
        }
        None => (None, p),
    };
    if in_open {
        // The stream ends inside the frame: the replay is that frame's start, still incomplete,
        // needing exactly what the stream does.
        assert!(messages.is_empty());
        if replay.len() >= HEADER_LEN {
            let length = u32::from_be_bytes([replay[1], replay[2], replay[3], replay[4]]);
            let needed = u64::from(length) + 1 - replay.len() as u64;
            let remaining = u32::try_from(needed).expect("a body length fits a u32");
            assert_eq!(expected.end, End::At(Position::Body { remaining }));
        } else {
            assert!(matches!(expected.end, End::At(Position::Header { .. })));
        }
        return;
    }
    let (after, after_used) = parse_messages(&stream[rest..]);
    let expected_messages: Vec<(u8, &[u8])> = first
        .map(|body| (COPY_DATA, body))
        .into_iter()
        .chain(after)
        .collect();
    assert_eq!(messages, expected_messages, "resume at {p}");
    assert_eq!(replay.len() - used, stream.len() - rest - after_used);
}

// -- The lines target --------------------------------------------------------------------------------

/// The `lines` target: [`LineDecoder`] over any stream in any chunking (resuming after every
/// whole non-CopyData message), and lines → [`encode_lines`] → [`LineDecoder`] as the identity.
///
/// Checks: no panic; the decoded lines are the reference's bodies, and a body lying inside one
/// chunk is a slice of it; stops and errors as the reference says; the stream cut into lines
/// after each `\n` (and with an empty line after every `param % 8`-th one, if `param % 8` is
/// not 0) survives the round trip through [`encode_lines`], and [`encode_lines_joined`] is one
/// frame of them all.
pub fn lines(input: &StreamInput) {
    let stream = &input.stream[..];
    let expected = reference(stream);
    let ranges = chunk_ranges(stream.len(), &input.chunks);

    let mut decoder = LineDecoder::new();
    let mut lines: Vec<(Range<usize>, Bytes, Bytes)> = Vec::new();
    let (mut stops, mut error) = (Vec::new(), None);
    let mut from = 0;
    let mut queue: VecDeque<Range<usize>> = ranges.iter().cloned().collect();
    while let Some(range) = queue.pop_front() {
        if range.end < from {
            continue;
        }
        let range = range.start.max(from)..range.end;
        let chunk = Bytes::copy_from_slice(&stream[range.clone()]);
        let out = match decoder.decode(chunk.clone()) {
            Ok(out) => out,
            Err(e) => {
                assert!(error.is_none() || error.as_ref() == Some(&e));
                error = Some(e);
                continue;
            }
        };
        assert!(error.is_none(), "an error must be sticky");
        lines.extend(
            out.lines
                .into_iter()
                .map(|l| (range.clone(), chunk.clone(), l)),
        );
        if let Some(at) = out.stop {
            let at = range.start + at;
            stops.push(at);
            let Some(message) = whole_message(stream, at) else {
                break;
            };
            decoder.resume();
            from = message.end;
            if from < range.end {
                queue.push_front(from..range.end);
            }
        }
    }
    // A chunk that fails gives no lines, not even those completed before the error in it.
    if matches!(expected.end, End::Invalid { .. }) {
        assert!(lines.len() <= expected.bodies.len());
    } else {
        assert_eq!(lines.len(), expected.bodies.len());
    }
    for ((range, chunk, line), body) in lines.iter().zip(&expected.bodies) {
        assert_eq!(&line[..], &stream[body.clone()]);
        if !body.is_empty() && range.start <= body.start && body.end <= range.end {
            let (outer, inner) = (chunk.as_ptr_range(), line.as_ptr_range());
            assert!(
                outer.start <= inner.start && inner.end <= outer.end,
                "body {body:?} in chunk {range:?} was copied"
            );
        }
    }
    let skipped: Vec<usize> = expected.skipped.iter().map(|m| m.start).collect();
    match expected.end {
        End::Invalid { length, offset, .. } => {
            assert_eq!(error, Some(WireError::InvalidLength { length, offset }));
        }
        End::At(position) => {
            assert_eq!((error, &stops), (None, &skipped));
            assert_eq!(decoder.framer().position(), position);
        }
        End::Stuck { at, .. } => {
            assert_eq!((error, stops), (None, [skipped, vec![at]].concat()));
        }
    }

    round_trip(stream, &input.chunks, input.param);
}

/// Lines → PQv3 → lines.
fn round_trip(stream: &[u8], chunks: &[u8; 8], param: u16) {
    let every = usize::from(param % 8);
    let mut lines: Vec<&[u8]> = Vec::new();
    for (i, line) in stream.split_inclusive(|&b| b == b'\n').enumerate() {
        lines.push(line);
        if every != 0 && i % every == 0 {
            lines.push(b"");
        }
    }
    let mut encoded = BytesMut::new();
    assert_eq!(encode_lines(&lines, &mut encoded), Ok(lines.len()));
    let end = encoded.len();
    crate::message::encode_copy_done(&mut encoded);

    let mut decoder = LineDecoder::new();
    let mut decoded = Vec::new();
    let mut stop = None;
    for range in chunk_ranges(encoded.len(), chunks) {
        let out = decoder
            .decode(Bytes::copy_from_slice(&encoded[range.clone()]))
            .expect("encode_lines makes a valid stream");
        if stop.is_none() {
            stop = out.stop.map(|s| range.start + s);
        }
        decoded.extend(out.lines);
    }
    assert_eq!(decoded, lines, "lines survive the round trip");
    assert_eq!(stop, Some(end), "the decoder stops at CopyDone");

    let mut joined = BytesMut::new();
    encode_lines_joined(&lines, &mut joined).expect("small lines fit one message");
    let (messages, used) = parse_messages(&joined);
    assert_eq!(used, joined.len());
    if stream.is_empty() {
        assert!(messages.is_empty());
    } else {
        assert_eq!(messages, [(COPY_DATA, stream)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(body: &[u8]) -> Vec<u8> {
        let mut out = vec![COPY_DATA];
        out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    /// A stream with every kind of end, a skipped notice in the middle, in several chunkings.
    #[test]
    fn the_targets_accept_well_formed_and_malformed_streams() {
        let notice = b"N\0\0\0\x05x".to_vec();
        let streams: Vec<Vec<u8>> = vec![
            vec![],
            [data(b"1\n"), data(b""), data(b"22\n")].concat(),
            [
                data(b"1\n"),
                notice.clone(),
                data(b"2\n"),
                b"c\0\0\0\x04".to_vec(),
            ]
            .concat(),
            [data(b"1\n"), b"d\0\0\0\x09ab".to_vec()].concat(),
            [data(b"1\n"), b"d\0\0".to_vec()].concat(),
            [data(b"1\n"), b"d\0\0\0\x02rest".to_vec()].concat(),
            [data(b"1\n"), notice, b"d\xff\xff\xff\xffrest".to_vec()].concat(),
            [data(b"1\n"), b"Z\0\0".to_vec()].concat(),
            // A header no valid length starts like (found by the fuzzer: a harness bug).
            b"d\xc2\0\0".to_vec(),
        ];
        for stream in streams {
            for chunks in [[0; 8], [1; 8], [3, 0, 7, 1, 2, 0, 9, 4], [255; 8]] {
                for param in [0, 1, 7, 12, 1000] {
                    let input = StreamInput {
                        chunks,
                        param,
                        stream: stream.clone(),
                    };
                    framer(&input);
                    lines(&input);
                }
            }
        }
    }

    /// The seed layout written by `to_bytes` is what `arbitrary` decodes.
    #[cfg(feature = "fuzzing")]
    #[test]
    fn to_bytes_is_the_arbitrary_layout() {
        use arbitrary::{Arbitrary, Unstructured};

        let input = StreamInput {
            chunks: [1, 2, 3, 4, 5, 6, 7, 8],
            param: 0x1234,
            stream: b"d\0\0\0\x05x".to_vec(),
        };
        let bytes = input.to_bytes();
        let decoded = StreamInput::arbitrary_take_rest(Unstructured::new(&bytes)).unwrap();
        assert_eq!(decoded, input);
    }
}
