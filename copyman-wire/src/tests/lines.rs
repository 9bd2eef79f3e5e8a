//! PQv3 ⇄ lines: [`LineDecoder`], [`encode_lines`], [`encode_lines_joined`].

use bytes::{Bytes, BytesMut};

use super::reference::{data, data_stream, message, parse_all};
use crate::{LineDecoder, Position, WireError, encode_lines, encode_lines_joined};

/// Whether `inner`'s bytes lie inside `outer`'s memory.
fn points_into(inner: &Bytes, outer: &Bytes) -> bool {
    let outer = outer.as_ptr_range();
    let inner = inner.as_ptr_range();
    outer.start <= inner.start && inner.end <= outer.end
}

#[test]
fn every_two_way_split_gives_the_same_lines_and_stop() {
    let rows: [&[u8]; 4] = [b"1\tone\n", b"", b"3\tthree\n", b"4\n"];
    let stream = [
        data_stream(&rows),
        message(b'c', b""),
        message(b'C', b"COPY 4\0"),
    ]
    .concat();
    let stop = data_stream(&rows).len();
    for split in 0..=stream.len() {
        let mut decoder = LineDecoder::new();
        let a = decoder
            .decode(Bytes::copy_from_slice(&stream[..split]))
            .unwrap();
        let b = decoder
            .decode(Bytes::copy_from_slice(&stream[split..]))
            .unwrap();
        let lines: Vec<Bytes> = a.lines.into_iter().chain(b.lines).collect();
        assert_eq!(lines, rows.map(Bytes::from_static), "split {split}");
        let expected_stop = if split <= stop {
            (a.stop, b.stop) == (None, Some(stop - split))
        } else {
            a.stop == Some(stop)
        };
        assert!(expected_stop, "split {split}: {:?} {:?}", a.stop, b.stop);
    }
}

#[test]
fn one_byte_chunks() {
    let rows: [&[u8]; 3] = [b"alpha\n", b"", b"gamma\n"];
    let stream = data_stream(&rows);
    let mut decoder = LineDecoder::new();
    let mut lines = Vec::new();
    for byte in &stream {
        let out = decoder.decode(Bytes::copy_from_slice(&[*byte])).unwrap();
        assert_eq!(out.stop, None);
        lines.extend(out.lines);
    }
    assert_eq!(lines, rows.map(Bytes::from_static));
    assert_eq!(decoder.framer().frames(), 3);
}

#[test]
fn bodies_inside_one_chunk_are_not_copied() {
    let stream = data_stream(&[&b"first row\n"[..], b"second row\n", b"third row\n"]);
    let chunk = Bytes::from(stream);
    let out = LineDecoder::new().decode(chunk.clone()).unwrap();
    assert_eq!(out.lines.len(), 3);
    for line in &out.lines {
        assert!(points_into(line, &chunk), "{line:?} was copied");
    }
}

#[test]
fn a_body_split_across_chunks_is_gathered() {
    let stream = data_stream(&[&b"first row\n"[..], b"second row\n"]);
    // Cut inside the second body.
    let a = Bytes::copy_from_slice(&stream[..22]);
    let b = Bytes::copy_from_slice(&stream[22..]);
    let mut decoder = LineDecoder::new();
    let out_a = decoder.decode(a.clone()).unwrap();
    let out_b = decoder.decode(b.clone()).unwrap();
    assert_eq!(out_a.lines, vec![Bytes::from_static(b"first row\n")]);
    assert!(points_into(&out_a.lines[0], &a));
    assert_eq!(out_b.lines, vec![Bytes::from_static(b"second row\n")]);
    assert!(!points_into(&out_b.lines[0], &a) && !points_into(&out_b.lines[0], &b));
}

#[test]
fn a_body_after_a_header_that_ended_a_chunk_is_not_copied() {
    // The header ends exactly at the end of the first chunk: the whole body lies in the second.
    let stream = data_stream(&[&b"row one\n"[..], b"row two\n"]);
    let a = Bytes::copy_from_slice(&stream[..18]);
    let b = Bytes::copy_from_slice(&stream[18..]);
    let mut decoder = LineDecoder::new();
    let out_a = decoder.decode(a).unwrap();
    assert_eq!(decoder.framer().position(), Position::Body { remaining: 8 });
    let out_b = decoder.decode(b.clone()).unwrap();
    assert_eq!(out_a.lines, vec![Bytes::from_static(b"row one\n")]);
    assert_eq!(out_b.lines, vec![Bytes::from_static(b"row two\n")]);
    assert!(
        points_into(&out_b.lines[0], &b),
        "a body lying in one chunk was copied"
    );
}

#[test]
fn a_body_spread_over_three_chunks() {
    let body: Vec<u8> = (0..=255).collect();
    let stream = data(&body);
    let mut decoder = LineDecoder::new();
    let mut lines = Vec::new();
    for chunk in [
        &stream[..5],
        &stream[5..100],
        &stream[100..200],
        &stream[200..],
    ] {
        let out = decoder.decode(Bytes::copy_from_slice(chunk)).unwrap();
        lines.extend(out.lines);
    }
    assert_eq!(lines, vec![Bytes::from(body)]);
}

#[test]
fn stop_offsets_and_resume() {
    let notice = message(b'N', b"careful");
    let stream = [
        data(b"a\n"),
        notice.clone(),
        data(b"b\n"),
        message(b'c', b""),
    ]
    .concat();
    let mut decoder = LineDecoder::new();
    let out = decoder.decode(Bytes::copy_from_slice(&stream)).unwrap();
    assert_eq!(
        (out.lines, out.stop),
        (vec![Bytes::from_static(b"a\n")], Some(7))
    );
    // Stopped: no lines, stop at 0, until resume.
    let rest = Bytes::copy_from_slice(&stream[7 + notice.len()..]);
    let out = decoder.decode(rest.clone()).unwrap();
    assert_eq!((out.lines, out.stop), (vec![], Some(0)));
    decoder.resume();
    let out = decoder.decode(rest).unwrap();
    assert_eq!(
        (out.lines, out.stop),
        (vec![Bytes::from_static(b"b\n")], Some(7))
    );
    assert_eq!(decoder.framer().position(), Position::Stopped { tag: b'c' });
}

#[test]
fn invalid_length_is_an_error() {
    let mut decoder = LineDecoder::new();
    let out = decoder.decode(Bytes::from_static(b"d\0\0\0\x05x"));
    assert_eq!(out.unwrap().lines.len(), 1);
    let error = WireError::InvalidLength {
        length: 0xffff_ffff,
        offset: 6,
    };
    assert_eq!(
        decoder.decode(Bytes::from_static(b"d\xff\xff\xff\xff")),
        Err(error.clone())
    );
    assert_eq!(
        decoder.decode(Bytes::from_static(b"d\0\0\0\x05x")),
        Err(error)
    );
}

#[test]
fn encode_lines_writes_one_message_per_line() {
    let mut dst = BytesMut::from(&b"prefix"[..]);
    let n = encode_lines(&[&b"1\n"[..], b"", b"abc"], &mut dst).unwrap();
    assert_eq!(n, 3);
    assert_eq!(&dst[..], b"prefixd\0\0\0\x061\nd\0\0\0\x04d\0\0\0\x07abc");
    let mut dst = BytesMut::new();
    assert_eq!(encode_lines::<Vec<u8>>(&[], &mut dst), Ok(0));
    assert!(dst.is_empty());
    // Any AsRef<[u8]>.
    let owned = vec![String::from("x\n"), String::from("y\n")];
    let mut dst = BytesMut::new();
    assert_eq!(encode_lines(&owned, &mut dst), Ok(2));
    assert_eq!(&dst[..], &data_stream(&[&b"x\n"[..], b"y\n"])[..]);
}

#[test]
fn encode_lines_joined_writes_one_message() {
    let mut dst = BytesMut::from(&b"prefix"[..]);
    encode_lines_joined(&[&b"1\n"[..], b"", b"22\n"], &mut dst).unwrap();
    assert_eq!(&dst[..], b"prefixd\0\0\0\x091\n22\n");
    let messages = parse_all(&dst[6..]);
    assert_eq!(messages.len(), 1);
    // Nothing when there is no payload.
    let mut dst = BytesMut::new();
    encode_lines_joined(&[&b""[..], b""], &mut dst).unwrap();
    encode_lines_joined::<&[u8]>(&[], &mut dst).unwrap();
    assert!(dst.is_empty());
}
