//! Re-blocking: [`Framer::reblock`].

use super::reference::{data, data_stream, message, parse_all};
use crate::{Framer, HEADROOM, Position, WireError};

/// `chunk` behind [`HEADROOM`] zero bytes, as a read loop lays it out.
fn with_headroom(chunk: &[u8]) -> Vec<u8> {
    let mut buf = vec![0; HEADROOM];
    buf.extend_from_slice(chunk);
    buf
}

#[test]
fn many_frames_become_one() {
    let stream = data_stream(&[&b"1\n"[..], b"22\n", b"", b"333\n"]);
    let mut buf = with_headroom(&stream);
    let mut framer = Framer::new();
    let out = framer.reblock(&mut buf).unwrap();
    assert_eq!(out.frame, 0..5 + 9);
    assert_eq!((out.frames, out.payload, out.stop), (4, 9, None));
    assert_eq!(&buf[out.frame], b"d\0\0\0\x0d1\n22\n333\n");
    assert_eq!(framer.position(), Position::Boundary);
    assert_eq!(framer.frames(), 4);
    assert_eq!(framer.offset(), stream.len() as u64);
}

#[test]
fn one_frame_is_moved_to_the_front_unchanged() {
    let stream = data(b"row");
    let mut buf = with_headroom(&stream);
    let out = Framer::new().reblock(&mut buf).unwrap();
    assert_eq!(&buf[out.frame], &stream[..]);
}

#[test]
fn headers_split_across_chunks() {
    let stream = data_stream(&[&b"ab"[..], b"cd", b"ef"]);
    // Cut inside the second header, at every byte of it.
    for cut in 8..=12 {
        let mut framer = Framer::new();
        let mut a = with_headroom(&stream[..cut]);
        let mut b = with_headroom(&stream[cut..]);
        let out_a = framer.reblock(&mut a).unwrap();
        assert_eq!(&a[out_a.frame], b"d\0\0\0\x06ab", "cut {cut}");
        assert_eq!(out_a.frames, 1);
        if cut < 12 {
            assert!(matches!(framer.position(), Position::Header { .. }));
        } else {
            assert_eq!(framer.position(), Position::Body { remaining: 2 });
        }
        let out_b = framer.reblock(&mut b).unwrap();
        assert_eq!(&b[out_b.frame], b"d\0\0\0\x08cdef");
        assert_eq!((out_b.frames, out_b.payload), (2, 4));
    }
}

#[test]
fn payload_split_across_chunks() {
    let stream = data_stream(&[&b"hello"[..], b"world"]);
    let mut framer = Framer::new();
    let mut a = with_headroom(&stream[..7]);
    let mut b = with_headroom(&stream[7..]);
    let out_a = framer.reblock(&mut a).unwrap();
    assert_eq!(&a[out_a.frame], b"d\0\0\0\x06he");
    assert_eq!((out_a.frames, out_a.payload), (0, 2));
    assert_eq!(framer.position(), Position::Body { remaining: 3 });
    let out_b = framer.reblock(&mut b).unwrap();
    assert_eq!(&b[out_b.frame], b"d\0\0\0\x0clloworld");
    assert_eq!((out_b.frames, out_b.payload), (2, 8));
}

#[test]
fn non_copy_data_in_the_chunk_is_left_untouched() {
    let tail = [
        message(b'c', b""),
        message(b'C', b"COPY 3\0"),
        message(b'Z', b"I"),
    ]
    .concat();
    let stream = [data_stream(&[&b"a"[..], b"bb", b"ccc"]), tail.clone()].concat();
    let mut buf = with_headroom(&stream);
    let mut framer = Framer::new();
    let out = framer.reblock(&mut buf).unwrap();
    let stop = HEADROOM + stream.len() - tail.len();
    assert_eq!(out.stop, Some(stop));
    assert_eq!(&buf[stop..], &tail[..]);
    assert_eq!(&buf[out.frame.clone()], b"d\0\0\0\x0aabbccc");
    assert!(out.frame.end <= stop);
    assert_eq!(framer.position(), Position::Stopped { tag: b'c' });

    // Stopped: the next chunk is reported as a stop at the start of the chunk, untouched.
    let mut next = with_headroom(&data(b"later"));
    let before = next.clone();
    let out = framer.reblock(&mut next).unwrap();
    assert_eq!(
        (out.frame, out.frames, out.payload, out.stop),
        (0..0, 0, 0, Some(HEADROOM))
    );
    assert_eq!(next, before);
}

#[test]
fn stop_right_after_a_split_header() {
    let stream = [data(b""), data(b"x"), message(b'N', b"notice")].concat();
    let mut framer = Framer::new();
    let mut a = with_headroom(&stream[..8]);
    let mut b = with_headroom(&stream[8..]);
    let out = framer.reblock(&mut a).unwrap();
    assert_eq!((out.frame, out.frames), (0..0, 1));
    let out = framer.reblock(&mut b).unwrap();
    assert_eq!(&b[out.frame.clone()], b"d\0\0\0\x05x");
    assert_eq!(out.stop, Some(HEADROOM + 3));
    assert_eq!(&b[HEADROOM + 3..], &message(b'N', b"notice")[..]);
}

#[test]
fn chunks_without_payload_give_an_empty_frame() {
    // Only zero-length frames.
    let stream = data_stream(&[b"", b""]);
    let mut buf = with_headroom(&stream);
    let out = Framer::new().reblock(&mut buf).unwrap();
    assert_eq!(
        (out.frame, out.frames, out.payload, out.stop),
        (0..0, 2, 0, None)
    );
    // An empty chunk.
    let mut buf = with_headroom(b"");
    let out = Framer::new().reblock(&mut buf).unwrap();
    assert_eq!(
        (out.frame, out.frames, out.payload, out.stop),
        (0..0, 0, 0, None)
    );
    // Only part of a header.
    let mut framer = Framer::new();
    let mut buf = with_headroom(b"d\0\0");
    let out = framer.reblock(&mut buf).unwrap();
    assert_eq!((out.frame, out.frames, out.payload), (0..0, 0, 0));
    // The rest of that header, nothing more.
    let mut buf = with_headroom(b"\0\x09");
    let out = framer.reblock(&mut buf).unwrap();
    assert_eq!((out.frame, out.frames, out.payload), (0..0, 0, 0));
    assert_eq!(framer.position(), Position::Body { remaining: 5 });
    // A chunk opening with a stop.
    let mut buf = with_headroom(b"c\0\0\0\x04");
    let out = Framer::new().reblock(&mut buf).unwrap();
    assert_eq!(
        (out.frame, out.payload, out.stop),
        (0..0, 0, Some(HEADROOM))
    );
}

#[test]
fn frames_bigger_than_the_chunk_pass_through_in_pieces() {
    let body: Vec<u8> = (0..200 * 1024).map(|i| (i % 251) as u8).collect();
    let stream = [data(&body), data(b"next")].concat();
    let mut framer = Framer::new();
    let mut payload = Vec::new();
    let mut frames = 0;
    for chunk in stream.chunks(64 * 1024) {
        let mut buf = with_headroom(chunk);
        let out = framer.reblock(&mut buf).unwrap();
        let messages = parse_all(&buf[out.frame.clone()]);
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].tag, b'd');
        assert_eq!(messages[0].body.len(), out.payload);
        payload.extend_from_slice(&messages[0].body);
        frames += out.frames;
    }
    assert_eq!(frames, 2);
    assert_eq!(payload, [&body[..], b"next"].concat());
}

#[test]
fn reblock_and_advance_agree() {
    let stream = [
        data_stream(&[&b"abc"[..], b"", &[0; 40], b"z"]),
        message(b'c', b""),
    ]
    .concat();
    for size in 1..=stream.len() {
        let (mut a, mut b) = (Framer::new(), Framer::new());
        for (i, chunk) in stream.chunks(size).enumerate() {
            let walk = a.advance(chunk).unwrap();
            let out = b.reblock(&mut with_headroom(chunk)).unwrap();
            assert_eq!(
                (walk.frames, walk.payload),
                (out.frames, out.payload),
                "size {size} chunk {i}"
            );
            assert_eq!(walk.stop.map(|s| s + HEADROOM), out.stop);
            assert_eq!(a.position(), b.position());
            assert_eq!((a.offset(), a.frames()), (b.offset(), b.frames()));
        }
    }
}

#[test]
fn invalid_length_is_an_error() {
    let stream = [data(b"ok"), b"d\0\0\0\x03".to_vec()].concat();
    let mut buf = with_headroom(&stream);
    let mut framer = Framer::new();
    assert_eq!(
        framer.reblock(&mut buf),
        Err(WireError::InvalidLength {
            length: 3,
            offset: 7
        })
    );
}

#[test]
#[should_panic(expected = "headroom")]
fn a_buffer_without_headroom_is_a_caller_bug() {
    let _ = Framer::new().reblock(&mut [b'd', 0, 0, 0]);
}
