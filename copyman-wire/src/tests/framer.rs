//! Every state transition of the [`Framer`].

use super::reference::{End, data, data_stream, message, parse_copy};
use crate::{Framer, MAX_LENGTH, Position, Walk, WireError};

/// Feeds `chunks` in order, collecting the walks.
fn feed(framer: &mut Framer, chunks: &[&[u8]]) -> Vec<Walk> {
    chunks.iter().map(|c| framer.advance(c).unwrap()).collect()
}

fn header(len: [u8; 4], seen: u8) -> Position {
    Position::Header { len, seen }
}

#[test]
fn new_framer_is_on_a_boundary() {
    let framer = Framer::new();
    assert_eq!(framer.position(), Position::Boundary);
    assert_eq!(
        (framer.offset(), framer.frames(), framer.is_stopped()),
        (0, 0, false)
    );
}

#[test]
fn empty_chunk_changes_nothing_in_any_state() {
    // Boundary, every Header, Body and Stopped: an empty chunk is a no-op.
    let stream = [data(b"abc"), message(b'C', b"COPY 1\0")].concat();
    for cut in 0..=stream.len() {
        let mut framer = Framer::new();
        let _ = framer.advance(&stream[..cut]).unwrap();
        let (position, offset, frames) = (framer.position(), framer.offset(), framer.frames());
        let walk = framer.advance(&[]).unwrap();
        let stop = framer.is_stopped().then_some(0);
        assert_eq!(
            walk,
            Walk {
                stop,
                ..Walk::default()
            },
            "cut {cut}"
        );
        assert_eq!(
            (framer.position(), framer.offset(), framer.frames()),
            (position, offset, frames)
        );
    }
}

#[test]
fn one_byte_chunks_follow_the_reference_after_every_byte() {
    let stream = [
        data(b"1\n"),
        data(b""),
        data(&[b'd'; 7]),
        data(&[0; 300]),
        data(b"x"),
        message(b'c', b""),
        data(b"after the stop"),
    ]
    .concat();
    let mut framer = Framer::new();
    let mut frames = 0;
    let mut payload = 0;
    for k in 1..=stream.len() {
        let walk = framer.advance(&stream[k - 1..k]).unwrap();
        frames += walk.frames;
        payload += walk.payload;
        let expected = parse_copy(&stream[..k]);
        assert_eq!(
            Some(framer.position()),
            expected.end.position(),
            "after {k} bytes"
        );
        assert_eq!(framer.frames(), expected.messages.len() as u64);
        assert_eq!(frames, expected.messages.len());
        assert_eq!(payload, expected.payload.len());
        assert_eq!(framer.offset(), expected.consumed(k) as u64);
        // A frame completed by this byte leaves the boundary just past it.
        let completed = expected.messages.last().is_some_and(|m| m.end == k);
        assert_eq!(walk.frames, usize::from(completed));
        assert_eq!(walk.boundary, usize::from(completed));
        // With one-byte chunks a stop is always at offset 0 of its chunk, and stays there.
        let stopped = matches!(expected.end, End::Stop { .. });
        assert_eq!(walk.stop, stopped.then_some(0));
    }
    assert_eq!(framer.position(), Position::Stopped { tag: b'c' });
    assert_eq!(framer.frames(), 5);
}

#[test]
fn split_right_after_the_type_byte_and_at_each_length_byte() {
    // Length 0x0001_0203: every length byte differs, so the kept prefix is visible.
    let body = vec![7u8; 0x0001_0203 - 4];
    let stream = [data(&body), data(b"next")].concat();
    let expected = [
        header([0, 0, 0, 0], 0),
        header([0x00, 0, 0, 0], 1),
        header([0x00, 0x01, 0, 0], 2),
        header([0x00, 0x01, 0x02, 0], 3),
        Position::Body {
            remaining: body.len() as u32,
        },
    ];
    for (split, expected) in (1..=5).zip(expected) {
        let mut framer = Framer::new();
        let first = framer.advance(&stream[..split]).unwrap();
        assert_eq!(first, Walk::default(), "split {split}");
        assert_eq!(framer.position(), expected, "split {split}");
        assert_eq!(framer.offset(), split as u64);
        let rest = framer.advance(&stream[split..]).unwrap();
        assert_eq!(rest.frames, 2);
        assert_eq!(rest.payload, body.len() + 4);
        assert_eq!(rest.boundary, stream.len() - split);
        assert_eq!(framer.position(), Position::Boundary);
    }
}

#[test]
fn header_bytes_one_chunk_each() {
    let stream = data(b"0123456789");
    let mut framer = Framer::new();
    let positions: Vec<Position> = (0..6)
        .map(|i| {
            let _ = framer.advance(&stream[i..=i]).unwrap();
            framer.position()
        })
        .collect();
    assert_eq!(
        positions,
        [
            header([0, 0, 0, 0], 0),
            header([0, 0, 0, 0], 1),
            header([0, 0, 0, 0], 2),
            header([0, 0, 0, 0], 3),
            Position::Body { remaining: 10 },
            Position::Body { remaining: 9 },
        ]
    );
}

#[test]
fn header_completed_by_a_chunk_that_also_holds_other_frames() {
    // Header state then the header ends mid-chunk, the body and two more frames follow.
    let stream = data_stream(&[&b"ab"[..], b"", b"cde"]);
    let mut framer = Framer::new();
    let walks = feed(&mut framer, &[&stream[..3], &stream[3..]]);
    assert_eq!(walks[0], Walk::default());
    assert_eq!(
        walks[1],
        Walk {
            frames: 3,
            payload: 5,
            stop: None,
            boundary: stream.len() - 3
        }
    );
}

#[test]
fn zero_length_copy_data() {
    let stream = data(b"");
    assert_eq!(stream, b"d\0\0\0\x04");
    // Whole: one frame, no payload, back on a boundary.
    let mut framer = Framer::new();
    assert_eq!(
        framer.advance(&stream).unwrap(),
        Walk {
            frames: 1,
            payload: 0,
            stop: None,
            boundary: 5
        }
    );
    assert_eq!(framer.position(), Position::Boundary);
    // Split anywhere: the frame completes in the chunk holding the last length byte, never
    // leaving a `Body { remaining: 0 }` behind.
    for split in 1..5 {
        let mut framer = Framer::new();
        let a = framer.advance(&stream[..split]).unwrap();
        assert_eq!(a.frames, 0);
        assert!(matches!(framer.position(), Position::Header { .. }));
        let b = framer.advance(&stream[split..]).unwrap();
        assert_eq!(
            b,
            Walk {
                frames: 1,
                payload: 0,
                stop: None,
                boundary: 5 - split
            }
        );
        assert_eq!(framer.position(), Position::Boundary);
    }
    // Many in a row, then a stop right after.
    let stream = [data(b""), data(b""), data(b""), message(b'c', b"")].concat();
    let mut framer = Framer::new();
    assert_eq!(
        framer.advance(&stream).unwrap(),
        Walk {
            frames: 3,
            payload: 0,
            stop: Some(15),
            boundary: 15
        }
    );
}

#[test]
fn one_mib_body_whole_and_in_read_sized_chunks() {
    let body = vec![b'd'; 1 << 20];
    let stream = data(&body);
    let mut framer = Framer::new();
    assert_eq!(
        framer.advance(&stream).unwrap(),
        Walk {
            frames: 1,
            payload: 1 << 20,
            stop: None,
            boundary: stream.len()
        }
    );

    let mut framer = Framer::new();
    let mut fed = 0usize;
    for chunk in stream.chunks(64 * 1024) {
        let walk = framer.advance(chunk).unwrap();
        fed += chunk.len();
        if fed < stream.len() {
            assert_eq!(walk.frames, 0);
            let remaining = (stream.len() - fed) as u32;
            assert_eq!(framer.position(), Position::Body { remaining });
        } else {
            assert_eq!(walk.frames, 1);
            assert_eq!(walk.boundary, chunk.len());
        }
    }
    assert_eq!(framer.frames(), 1);
    assert_eq!(framer.offset(), stream.len() as u64);
}

#[test]
fn frame_announcing_100_mib_fed_partially() {
    let body_len: u32 = 100 << 20;
    let mut head = vec![b'd'];
    head.extend_from_slice(&(body_len + 4).to_be_bytes());
    head.extend_from_slice(&[1; 1000]);
    let mut framer = Framer::new();
    let walk = framer.advance(&head).unwrap();
    assert_eq!(
        walk,
        Walk {
            frames: 0,
            payload: 1000,
            stop: None,
            boundary: 0
        }
    );
    assert_eq!(
        framer.position(),
        Position::Body {
            remaining: body_len - 1000
        }
    );

    // The body is never looked at: walking the other ~100 MiB is cheap. Feed it in 1 MiB pieces
    // and check the countdown, then finish with the next frame's header in the same chunk.
    let piece = vec![b'd'; 1 << 20];
    let mut remaining = body_len - 1000;
    while remaining as usize > piece.len() {
        let walk = framer.advance(&piece).unwrap();
        assert_eq!((walk.frames, walk.payload), (0, piece.len()));
        remaining -= piece.len() as u32;
        assert_eq!(framer.position(), Position::Body { remaining });
    }
    let last = [&piece[..remaining as usize], &data(b"tail")[..]].concat();
    let walk = framer.advance(&last).unwrap();
    assert_eq!(walk.frames, 2);
    assert_eq!(walk.payload, remaining as usize + 4);
    assert_eq!(framer.frames(), 2);
    assert_eq!(framer.offset(), 5 + u64::from(body_len) + 9);
}

#[test]
fn largest_valid_length_is_accepted() {
    let mut framer = Framer::new();
    let mut chunk = vec![b'd'];
    chunk.extend_from_slice(&MAX_LENGTH.to_be_bytes());
    assert_eq!(framer.advance(&chunk).unwrap(), Walk::default());
    assert_eq!(
        framer.position(),
        Position::Body {
            remaining: MAX_LENGTH - 4
        }
    );
    // And through the header state.
    let mut framer = Framer::new();
    let _ = framer.advance(&chunk[..2]).unwrap();
    let _ = framer.advance(&chunk[2..]).unwrap();
    assert_eq!(
        framer.position(),
        Position::Body {
            remaining: MAX_LENGTH - 4
        }
    );
}

#[test]
fn non_copy_data_right_after_a_split_header() {
    // A zero-length frame whose header is split, then at once a NoticeResponse.
    let notice = message(b'N', b"SNOTICE\0\0");
    let stream = [data(b""), notice.clone()].concat();
    for split in 1..5 {
        let mut framer = Framer::new();
        let _ = framer.advance(&stream[..split]).unwrap();
        let walk = framer.advance(&stream[split..]).unwrap();
        assert_eq!(
            walk,
            Walk {
                frames: 1,
                payload: 0,
                stop: Some(5 - split),
                boundary: 5 - split
            }
        );
        assert_eq!(framer.position(), Position::Stopped { tag: b'N' });
        assert_eq!(framer.offset(), 5);
    }
    // A frame with a body, header split, body and stop in the next chunk.
    let stream = [data(b"row\n"), notice.clone()].concat();
    let mut framer = Framer::new();
    let walks = feed(&mut framer, &[&stream[..2], &stream[2..]]);
    assert_eq!(
        walks[1],
        Walk {
            frames: 1,
            payload: 4,
            stop: Some(7),
            boundary: 7
        }
    );
    // The frame ends exactly at the end of a chunk; the stop opens the next one.
    let mut framer = Framer::new();
    let walks = feed(&mut framer, &[&stream[..9], &stream[9..]]);
    assert_eq!(
        walks[0],
        Walk {
            frames: 1,
            payload: 4,
            stop: None,
            boundary: 9
        }
    );
    assert_eq!(
        walks[1],
        Walk {
            frames: 0,
            payload: 0,
            stop: Some(0),
            boundary: 0
        }
    );
}

#[test]
fn stop_offsets() {
    // A stop at the very start.
    let mut framer = Framer::new();
    let walk = framer.advance(b"H\0\0\0\x05\0").unwrap();
    assert_eq!(
        walk,
        Walk {
            stop: Some(0),
            ..Walk::default()
        }
    );
    assert_eq!(framer.position(), Position::Stopped { tag: b'H' });
    assert_eq!(framer.offset(), 0);

    // After frames, mid-chunk, with bytes after it that are not looked at (even invalid ones).
    let stream = [data(b"a"), data(b"bc"), b"Cgarbage d\0\0\0\0".to_vec()].concat();
    let mut framer = Framer::new();
    let walk = framer.advance(&stream).unwrap();
    assert_eq!(
        walk,
        Walk {
            frames: 2,
            payload: 3,
            stop: Some(13),
            boundary: 13
        }
    );
    assert_eq!(framer.offset(), 13);
    assert!(framer.is_stopped());

    // Every tag that is not `d` stops, including bytes that are no tag at all.
    for tag in [
        b'c', b'C', b'Z', b'E', b'N', b'S', b'A', b'f', 0, 0xff, b'D',
    ] {
        let mut framer = Framer::new();
        let chunk = [data(b"x"), vec![tag]].concat();
        assert_eq!(framer.advance(&chunk).unwrap().stop, Some(6), "tag {tag}");
        assert_eq!(framer.position(), Position::Stopped { tag });
    }
}

#[test]
fn stopped_framer_reports_stop_at_zero_until_resume() {
    let notice = message(b'N', b"hi");
    let stream = [data(b"1"), notice.clone(), data(b"2"), message(b'c', b"")].concat();
    let mut framer = Framer::new();
    let walk = framer.advance(&stream).unwrap();
    assert_eq!((walk.frames, walk.stop), (1, Some(6)));
    let (offset, frames) = (framer.offset(), framer.frames());

    // Stopped: nothing is consumed, whatever the chunk holds (even an invalid header).
    for chunk in [&stream[6..], &data(b"zz")[..], b"", b"d\0\0\0\0"] {
        let walk = framer.advance(chunk).unwrap();
        assert_eq!(
            walk,
            Walk {
                stop: Some(0),
                ..Walk::default()
            }
        );
        assert_eq!((framer.offset(), framer.frames()), (offset, frames));
        assert_eq!(framer.position(), Position::Stopped { tag: b'N' });
    }

    // The session took the notice: resume after it.
    framer.resume();
    assert_eq!(framer.position(), Position::Boundary);
    assert!(!framer.is_stopped());
    let walk = framer.advance(&stream[6 + notice.len()..]).unwrap();
    assert_eq!(
        walk,
        Walk {
            frames: 1,
            payload: 1,
            stop: Some(6),
            boundary: 6
        }
    );
    assert_eq!(framer.position(), Position::Stopped { tag: b'c' });
    assert_eq!(framer.frames(), 2);
}

#[test]
fn resume_outside_a_stop_changes_nothing() {
    let stream = data(b"abcdef");
    for cut in 0..stream.len() {
        let mut framer = Framer::new();
        let _ = framer.advance(&stream[..cut]).unwrap();
        let before = framer.position();
        framer.resume();
        assert_eq!(framer.position(), before);
    }
}

#[test]
fn invalid_lengths_are_reported_with_their_stream_offset_and_are_sticky() {
    let good = data_stream(&[&b"ab"[..], b"cdef"]);
    for length in [0u32, 1, 2, 3, MAX_LENGTH + 1, u32::MAX] {
        let mut bad = vec![b'd'];
        bad.extend_from_slice(&length.to_be_bytes());
        let stream = [good.clone(), bad, data(b"more")].concat();
        let expected = WireError::InvalidLength {
            length,
            offset: good.len() as u64,
        };
        // Every split: whole header in one chunk (the fast path) or split (the header state), in
        // one or two chunks after other frames.
        for split in 0..=stream.len() {
            let mut framer = Framer::new();
            let a = framer.advance(&stream[..split]);
            let b = framer.advance(&stream[split..]);
            let error = if split >= good.len() + 5 {
                a.unwrap_err()
            } else {
                assert!(a.is_ok(), "split {split}");
                b.unwrap_err()
            };
            assert_eq!(error, expected, "length {length}, split {split}");
            assert_eq!(framer.frames(), 2);
            // Sticky: valid bytes, empty chunks, re-blocking, all get the same error.
            assert_eq!(framer.advance(&data(b"ok")), Err(expected.clone()));
            assert_eq!(framer.advance(&[]), Err(expected.clone()));
            let mut buf = vec![0; 5 + 7];
            buf[5..].copy_from_slice(&data(b"ok"));
            assert_eq!(framer.reblock(&mut buf), Err(expected.clone()));
            framer.resume();
            assert_eq!(framer.advance(&data(b"ok")), Err(expected.clone()));
        }
    }
}

#[test]
fn invalid_length_offset_counts_bytes_across_many_chunks() {
    // The offset is a stream offset, not a chunk offset.
    let stream = [data(&[9; 100]), data(&[8; 50]), b"d\0\0\0\x02".to_vec()].concat();
    let mut framer = Framer::new();
    let mut error = None;
    for chunk in stream.chunks(7) {
        if let Err(e) = framer.advance(chunk) {
            error.get_or_insert(e);
        }
    }
    assert_eq!(
        error,
        Some(WireError::InvalidLength {
            length: 2,
            offset: 160
        })
    );
    assert_eq!(
        error.unwrap().to_string(),
        "invalid message length 2 in the message at byte 160 of the stream"
    );
}

#[test]
fn walk_counts_partial_payload_and_last_boundary() {
    let stream = data_stream(&[&b"abc"[..], b"defgh"]);
    let mut framer = Framer::new();
    // Ends inside the second body: the boundary is the end of the first frame.
    let walk = framer.advance(&stream[..15]).unwrap();
    assert_eq!(
        walk,
        Walk {
            frames: 1,
            payload: 3 + 2,
            stop: None,
            boundary: 8
        }
    );
    // The rest: the second frame ends 3 bytes in.
    let walk = framer.advance(&stream[15..]).unwrap();
    assert_eq!(
        walk,
        Walk {
            frames: 1,
            payload: 3,
            stop: None,
            boundary: 3
        }
    );
}

#[test]
fn a_clone_carries_the_state() {
    let stream = data(b"hello");
    let mut framer = Framer::new();
    let _ = framer.advance(&stream[..3]).unwrap();
    let mut copy = framer.clone();
    assert_eq!(copy.advance(&stream[3..]).unwrap().frames, 1);
    assert_eq!(framer.position(), header([0, 0, 0, 0], 2));
}

#[test]
fn a_framer_at_a_recorded_position_continues_from_it() {
    // Record the position at the start of a chunk; a framer made `at` it and fed part of the chunk
    // stands where the framer that followed the whole stream does.
    let stream = [
        data(b"abc"),
        data(b""),
        data(&[b'd'; 20]),
        message(b'Z', b"I"),
    ]
    .concat();
    for start in 0..=stream.len() {
        let mut whole = Framer::new();
        let _ = whole.advance(&stream[..start]).unwrap();
        let recorded = whole.position();
        for end in start..=stream.len() {
            let mut from = Framer::at(recorded);
            assert_eq!(from.position(), recorded);
            assert_eq!((from.offset(), from.frames()), (0, 0));
            let mut follow = whole.clone();
            let a = from.advance(&stream[start..end]).unwrap();
            let b = follow.advance(&stream[start..end]).unwrap();
            assert_eq!(a, b, "{start}..{end}");
            assert_eq!(from.position(), follow.position());
            assert_eq!(from.offset(), follow.offset() - whole.offset());
        }
    }
}

#[test]
fn a_framer_at_a_header_reports_an_invalid_length_at_offset_zero() {
    // The message began before this framer's start: its offset saturates at 0.
    let mut framer = Framer::at(header([0, 0, 0, 0], 2));
    let error = WireError::InvalidLength {
        length: 1,
        offset: 0,
    };
    assert_eq!(framer.advance(b"\0\x01"), Err(error));
    // And a valid one completes the frame.
    let mut framer = Framer::at(header([0, 0, 0, 0], 3));
    let walk = framer.advance(b"\x05x").unwrap();
    assert_eq!((walk.frames, walk.payload, framer.offset()), (1, 1, 2));
}
