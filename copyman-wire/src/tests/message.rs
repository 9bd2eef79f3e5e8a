//! The message helpers.

use bytes::BytesMut;

use crate::message::{
    Header, copy_data_header, encode_copy_data, encode_copy_done, encode_copy_fail, peek_header,
};
use crate::{MAX_LENGTH, WireError};

#[test]
fn copy_data_header_up_to_the_i32_limit() {
    assert_eq!(copy_data_header(0), Ok(*b"d\0\0\0\x04"));
    assert_eq!(copy_data_header(2), Ok(*b"d\0\0\0\x06"));
    assert_eq!(copy_data_header(0x0102_0300), Ok(*b"d\x01\x02\x03\x04"));
    let largest = MAX_LENGTH as usize - 4;
    assert_eq!(copy_data_header(largest), Ok(*b"d\x7f\xff\xff\xff"));
    for len in [
        largest + 1,
        u32::MAX as usize - 4,
        u32::MAX as usize,
        usize::MAX - 3,
        usize::MAX,
    ] {
        assert_eq!(
            copy_data_header(len),
            Err(WireError::TooLarge { len }),
            "{len}"
        );
    }
    assert_eq!(
        WireError::TooLarge { len: 7 }.to_string(),
        "payload of 7 bytes is too large for one message"
    );
}

#[test]
fn encode_copy_data_appends() {
    let mut dst = BytesMut::from(&b"xy"[..]);
    encode_copy_data(b"1\n", &mut dst).unwrap();
    encode_copy_data(b"", &mut dst).unwrap();
    assert_eq!(&dst[..], b"xyd\0\0\0\x061\nd\0\0\0\x04");
}

#[test]
fn encode_copy_done_is_c_with_length_four() {
    let mut dst = BytesMut::new();
    encode_copy_done(&mut dst);
    assert_eq!(&dst[..], b"c\0\0\0\x04");
}

#[test]
fn encode_copy_fail_with_and_without_nul() {
    let mut dst = BytesMut::from(&b"d\0\0\0\x04"[..]);
    encode_copy_fail("boom", &mut dst).unwrap();
    assert_eq!(&dst[..], b"d\0\0\0\x04f\0\0\0\x09boom\0");
    encode_copy_fail("", &mut dst).unwrap();
    assert_eq!(&dst[dst.len() - 6..], b"f\0\0\0\x05\0");

    // A NUL cannot be carried: an error, and nothing half-written is left in `dst`.
    let mut dst = BytesMut::from(&b"before"[..]);
    assert_eq!(
        encode_copy_fail("a\0b", &mut dst),
        Err(WireError::NulInReason)
    );
    assert_eq!(&dst[..], b"before");
    assert_eq!(
        encode_copy_fail("\0", &mut dst),
        Err(WireError::NulInReason)
    );
    assert_eq!(&dst[..], b"before");
    assert_eq!(
        WireError::NulInReason.to_string(),
        "copy fail reason contains a nul byte"
    );
}

#[test]
fn peek_header_needs_five_bytes() {
    for n in 0..5 {
        assert_eq!(peek_header(&b"Z\0\0\0\x05I"[..n]), Ok(None), "{n} bytes");
    }
    assert_eq!(
        peek_header(b"Z\0\0\0\x05"),
        Ok(Some(Header { tag: b'Z', len: 5 }))
    );
    let header = peek_header(b"C\0\0\0\x0bCOPY 3\0").unwrap().unwrap();
    assert_eq!((header.tag, header.len, header.total_len()), (b'C', 11, 12));
}

#[test]
fn peek_header_checks_the_length() {
    assert_eq!(
        peek_header(b"c\0\0\0\x04"),
        Ok(Some(Header { tag: b'c', len: 4 }))
    );
    let max = peek_header(b"d\x7f\xff\xff\xff").unwrap().unwrap();
    assert_eq!(
        (max.len, max.total_len()),
        (MAX_LENGTH, MAX_LENGTH as usize + 1)
    );
    for length in [0u32, 3, MAX_LENGTH + 1, u32::MAX] {
        let mut buf = vec![b'E'];
        buf.extend_from_slice(&length.to_be_bytes());
        assert_eq!(
            peek_header(&buf),
            Err(WireError::InvalidLength { length, offset: 0 })
        );
    }
}
