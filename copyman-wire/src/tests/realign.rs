//! Realignment: [`completion`] and [`resume`] for every position.

use super::reference::{Msg, data, parse_all, parse_messages};
use crate::realign::{Completion, Resume, completion, resume};
use crate::{COPY_DATA, Framer, MAX_LENGTH, Position};

fn header(len: [u8; 3], seen: u8) -> Position {
    Position::Header {
        len: [len[0], len[1], len[2], 0xee],
        seen,
    }
}

/// What the receiver already got for a header position: the type byte and `len[..seen]`.
fn sent(position: Position) -> Vec<u8> {
    match position {
        Position::Header { len, seen } => [&[COPY_DATA][..], &len[..usize::from(seen)]].concat(),
        _ => Vec::new(),
    }
}

#[test]
fn completion_inside_a_header_with_zero_prefixes() {
    // Nothing but zeros sent: finish with the smallest length, 4 (no body).
    let cases: [(u8, &[u8]); 4] = [(0, &[0, 0, 0, 4]), (1, &[0, 0, 4]), (2, &[0, 4]), (3, &[4])];
    for (seen, owed) in cases {
        let position = header([0, 0, 0], seen);
        let c = completion(position);
        assert_eq!((c.header(), c.filler), (owed, 0), "seen {seen}");
        assert_eq!(c.len(), owed.len() as u64);
        assert!(!c.is_empty());
        let frame = [sent(position), c.to_vec()].concat();
        assert_eq!(
            parse_all(&frame),
            vec![Msg {
                tag: b'd',
                body: vec![]
            }]
        );
    }
}

#[test]
fn completion_inside_a_header_with_nonzero_prefixes() {
    // (prefix, seen, owed length bytes, filler): the missing bytes are zero, the length the
    // smallest consistent with the prefix.
    let cases: [([u8; 3], u8, &[u8], u64); 6] = [
        ([0, 0, 1], 3, &[0x00], 252),
        ([0, 0, 0xff], 3, &[0x00], 0xff00 - 4),
        ([0, 1, 0], 2, &[0, 0], 0x0001_0000 - 4),
        ([0, 0x12, 0x34], 3, &[0x00], 0x0012_3400 - 4),
        ([1, 0, 0], 1, &[0, 0, 0], 0x0100_0000 - 4),
        ([0x7f, 0xff, 0xff], 3, &[0x00], 0x7fff_ff00 - 4),
    ];
    for (prefix, seen, owed, filler) in cases {
        let position = header(prefix, seen);
        let c = completion(position);
        assert_eq!(
            (c.header(), c.filler),
            (owed, filler),
            "{prefix:?} seen {seen}"
        );
        assert_eq!(c.len(), owed.len() as u64 + filler);
        if filler < 1 << 20 {
            let frame = [sent(position), c.to_vec()].concat();
            let messages = parse_all(&frame);
            assert_eq!(messages.len(), 1);
            assert_eq!(messages[0].body, vec![0; filler as usize]);
        }
    }
}

#[test]
fn completion_length_is_the_smallest_consistent_one() {
    // For seen = 3 the only free byte is the last: brute force it.
    for prefix in [[0, 0, 0], [0, 0, 1], [0, 3, 0], [0x7f, 0, 0x10]] {
        let c = completion(header(prefix, 3));
        let chosen = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], c.header()[0]]);
        let smallest = (0..=255u8)
            .map(|last| u32::from_be_bytes([prefix[0], prefix[1], prefix[2], last]))
            .find(|l| (4..=MAX_LENGTH).contains(l))
            .unwrap();
        assert_eq!(chosen, smallest, "{prefix:?}");
        assert_eq!(c.filler, u64::from(smallest - 4));
    }
}

#[test]
fn completion_inside_a_body_and_on_a_boundary() {
    let c = completion(Position::Body { remaining: 3 });
    assert_eq!((c.header(), c.filler, c.len()), (&[][..], 3, 3));
    assert_eq!(c.to_vec(), vec![0, 0, 0]);
    let c = completion(Position::Body {
        remaining: MAX_LENGTH - 4,
    });
    assert_eq!(c.len(), u64::from(MAX_LENGTH - 4));

    for position in [Position::Boundary, Position::Stopped { tag: b'c' }] {
        let c = completion(position);
        assert_eq!(c, Completion::default());
        assert!(c.is_empty());
        assert_eq!((c.len(), c.to_vec()), (0, vec![]));
    }
}

#[test]
fn completion_from_a_framer_that_followed_a_cut_stream() {
    // The receiver got the stream up to `cut`: what it saw plus completion is whole frames.
    let stream = [data(b"first"), data(&[0xab; 300]), data(b"")].concat();
    for cut in 0..=stream.len() {
        let mut framer = Framer::new();
        let _ = framer.advance(&stream[..cut]).unwrap();
        let owed = completion(framer.position()).to_vec();
        let (messages, used) = parse_messages(&[&stream[..cut], &owed[..]].concat());
        assert_eq!(used, cut + owed.len(), "cut {cut}");
        assert!(messages.iter().all(|m| m.tag == b'd'));
    }
}

#[test]
fn resume_for_every_position() {
    let cases: [(Position, &[u8]); 9] = [
        (Position::Boundary, b""),
        (Position::Stopped { tag: b'N' }, b""),
        (header([9, 9, 9], 0), b"d"),
        (header([0, 9, 9], 1), b"d\0"),
        (header([0, 1, 9], 2), b"d\0\x01"),
        (header([0, 1, 2], 3), b"d\0\x01\x02"),
        (Position::Body { remaining: 1 }, b"d\0\0\0\x05"),
        (
            Position::Body {
                remaining: 0x0102_0304,
            },
            b"d\x01\x02\x03\x08",
        ),
        (
            Position::Body {
                remaining: MAX_LENGTH - 4,
            },
            b"d\x7f\xff\xff\xff",
        ),
    ];
    for (position, expected) in cases {
        assert_eq!(resume(position).as_slice(), expected, "{position:?}");
    }
    assert_eq!(Resume::default().as_slice(), b"");
}

#[test]
fn resume_then_the_rest_of_the_stream_parses_from_a_boundary() {
    let stream = [data(b"abcdef"), data(b"gh"), b"c\0\0\0\x04".to_vec()].concat();
    for cut in 0..=11 {
        let mut framer = Framer::new();
        let _ = framer.advance(&stream[..cut]).unwrap();
        let replay = [resume(framer.position()).as_slice(), &stream[cut..]].concat();
        let messages = parse_all(&replay);
        let first = match cut {
            0 => b"abcdef".to_vec(),
            1..=5 => b"abcdef".to_vec(),
            _ => b"abcdef"[cut - 5..].to_vec(),
        };
        let expected = [
            (cut < 11).then_some(Msg {
                tag: b'd',
                body: first,
            }),
            Some(Msg {
                tag: b'd',
                body: b"gh".to_vec(),
            }),
            Some(Msg {
                tag: b'c',
                body: vec![],
            }),
        ];
        assert_eq!(
            messages,
            expected.into_iter().flatten().collect::<Vec<_>>(),
            "cut {cut}"
        );
    }
}
