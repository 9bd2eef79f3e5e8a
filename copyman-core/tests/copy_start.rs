//! CopyStart and CopyOutSource against scripted server bytes: how a COPY starts, ends, fails and
//! is aborted, decided once for both adapters.

mod backend;

use backend::{copy_response, data, error, msg, ready};
use bytes::BytesMut;
use copyman_core::session::{CopyFormat, Session, SessionError, StartupConfig, State};
use copyman_core::source::{Abort, CopyOutSource, SourceItem};
use copyman_core::start::{CopyStart, StartStep, Started};
use copyman_core::statement::Direction;
use copyman_wire::HEADROOM;

fn end(rows: u64) -> Vec<u8> {
    let mut v = msg(b'c', b"");
    v.extend(msg(b'C', format!("COPY {rows}\0").as_bytes()));
    v.extend(ready());
    v
}

/// A session past startup, its output drained.
fn session() -> Session {
    let mut s = Session::new(StartupConfig::new("u"));
    while s.poll_transmit().is_some() {}
    let mut hello = msg(b'R', &[0, 0, 0, 0]);
    hello.extend(ready());
    s.handle_input(&hello).unwrap();
    while s.poll_event().is_some() {}
    s
}

/// Starts `sql`, feeding `server` in one read once the statement is out.
fn start(s: &mut Session, sql: &str, direction: Direction, server: &[u8]) -> Started {
    let mut start = CopyStart::begin(s, sql, direction).unwrap();
    assert!(s.poll_transmit().is_some(), "the statement went out");
    assert!(matches!(start.poll(s).unwrap(), StartStep::ReadMore));
    s.handle_input(server).unwrap();
    match start.poll(s).unwrap() {
        StartStep::Started(started) => started,
        other => panic!("not started: {other:?}"),
    }
}

fn read(source: &mut CopyOutSource, s: &mut Session, bytes: &[u8]) -> Result<(), SessionError> {
    let mut buf = BytesMut::from(&[0u8; HEADROOM][..]);
    buf.extend_from_slice(bytes);
    source.handle_read(s, buf)
}

#[test]
fn a_statement_of_the_wrong_kind_is_refused_before_anything_is_sent() {
    let mut s = session();
    let e = CopyStart::begin(&mut s, "SELECT 1", Direction::ToStdout).unwrap_err();
    assert!(matches!(e, SessionError::Statement(_)), "{e}");
    let e = CopyStart::begin(&mut s, "COPY t TO STDOUT", Direction::FromStdin).unwrap_err();
    assert!(e.to_string().contains("COPY FROM STDIN"), "{e}");
    // A query that changes data, on a session in no transaction (lib44 F3).
    let delete = "COPY (DELETE FROM t RETURNING *) TO STDOUT";
    let e = CopyStart::begin(&mut s, delete, Direction::ToStdout).unwrap_err();
    assert!(e.to_string().contains("in no transaction"), "{e}");
    assert!(s.poll_transmit().is_none());
    assert_eq!(s.state(), State::Ready);
}

#[test]
fn a_server_error_at_the_start_is_the_start_error_and_the_session_is_ready() {
    let mut s = session();
    let mut start =
        CopyStart::begin(&mut s, "COPY missing TO STDOUT", Direction::ToStdout).unwrap();
    let mut server = error("42P01");
    server.extend(ready());
    s.handle_input(&server).unwrap();
    let e = start.poll(&mut s).unwrap_err();
    assert_eq!(e.db_error().map(|d| d.code.as_str()), Some("42P01"));
    assert_eq!(s.state(), State::Ready);
}

#[test]
fn copy_in_starts_on_its_copy_in_response() {
    let mut s = session();
    let started = start(
        &mut s,
        "COPY t FROM STDIN",
        Direction::FromStdin,
        &copy_response(b'G'),
    );
    assert!(started.early.is_none() && started.ended.is_none());
    assert_eq!(started.format, Some(CopyFormat::Text));
    assert_eq!(s.state(), State::CopyIn);
}

#[test]
fn the_start_tells_the_format_the_server_announced() {
    let mut s = session();
    // CopyInResponse: overall format 1 (binary), one column in binary.
    let started = start(
        &mut s,
        "COPY t FROM STDIN (FORMAT binary)",
        Direction::FromStdin,
        &msg(b'G', &[1, 0, 1, 0, 1]),
    );
    assert_eq!(started.format, Some(CopyFormat::Binary));
}

#[test]
fn copy_out_of_no_rows_is_over_at_its_start() {
    let mut s = session();
    let mut server = copy_response(b'H');
    server.extend(end(0));
    let started = start(&mut s, "COPY t TO STDOUT", Direction::ToStdout, &server);
    assert_eq!(started.ended, Some(Some(0)));
    let mut source = CopyOutSource::started(true, started, &mut s).unwrap();
    assert!(matches!(
        source.poll_item(),
        Some(SourceItem::End { count: Some(0) })
    ));
    assert_eq!(source.count(), Some(0));
    assert_eq!(s.state(), State::Ready);
}

/// Found in review: the async adapter cancelled a COPY whose end it had read but not yet handed
/// on, then waited for a ReadyForQuery the session had already taken.
#[test]
fn aborting_after_the_end_was_read_but_not_taken_needs_nothing() {
    let mut s = session();
    let mut server = copy_response(b'H');
    server.extend(data(b"1\n"));
    server.extend(data(b"2\n"));
    server.extend(end(2));
    let started = start(&mut s, "COPY t TO STDOUT", Direction::ToStdout, &server);
    let early = started
        .early
        .as_deref()
        .expect("rows after the CopyOutResponse");
    assert_eq!(early[0], b'd');
    let mut source = CopyOutSource::started(true, started, &mut s).unwrap();
    assert!(matches!(source.poll_item(), Some(SourceItem::Chunk(c)) if c.messages == 2));
    // The End item is still queued when the caller gives up.
    assert_eq!(source.abort(&mut s).unwrap(), Abort::Done);
    assert_eq!(s.state(), State::Ready);
    assert_eq!(source.count(), Some(2));
}

#[test]
fn aborting_mid_stream_realigns_and_asks_for_a_cancel() {
    let mut s = session();
    let mut source = CopyOutSource::started(
        true,
        start(
            &mut s,
            "COPY t TO STDOUT",
            Direction::ToStdout,
            &copy_response(b'H'),
        ),
        &mut s,
    )
    .unwrap();
    // Half a frame: the session must be able to skip its rest.
    let frame = data(b"0123456789");
    read(&mut source, &mut s, &frame[..8]).unwrap();
    assert_eq!(source.abort(&mut s).unwrap(), Abort::Drain { cancel: true });
    assert_eq!(s.state(), State::Draining);
    let mut rest = frame[8..].to_vec();
    rest.extend(error("57014"));
    rest.extend(ready());
    s.handle_input(&rest).unwrap();
    assert_eq!(s.state(), State::Ready);
}

#[test]
fn a_server_error_mid_stream_is_sticky_and_aborting_drains_without_cancel() {
    let mut s = session();
    let mut source = CopyOutSource::started(
        true,
        start(
            &mut s,
            "COPY t TO STDOUT",
            Direction::ToStdout,
            &copy_response(b'H'),
        ),
        &mut s,
    )
    .unwrap();
    let mut bytes = data(b"1\n");
    bytes.extend(error("22012"));
    let e = read(&mut source, &mut s, &bytes).unwrap_err();
    assert_eq!(e.db_error().map(|d| d.code.as_str()), Some("22012"));
    assert_eq!(source.failure(), Some(&e));
    // Every later read repeats it: never a clean end after a failure.
    assert_eq!(read(&mut source, &mut s, b"").unwrap_err(), e);
    assert_eq!(
        source.abort(&mut s).unwrap(),
        Abort::Drain { cancel: false }
    );
    s.handle_input(&ready()).unwrap();
    assert_eq!(s.state(), State::Ready);
}

#[test]
fn end_of_stream_mid_copy_is_a_closed_connection_and_needs_no_drain() {
    let mut s = session();
    let mut source = CopyOutSource::started(
        true,
        start(
            &mut s,
            "COPY t TO STDOUT",
            Direction::ToStdout,
            &copy_response(b'H'),
        ),
        &mut s,
    )
    .unwrap();
    read(&mut source, &mut s, &data(b"1\n")).unwrap();
    assert_eq!(source.handle_eof(&mut s), SessionError::Closed);
    assert_eq!(source.failure(), Some(&SessionError::Closed));
    assert_eq!(source.abort(&mut s).unwrap(), Abort::Done);
}

/// An error on a COPY OUT's first row can come in the read of its CopyOutResponse, before its
/// ReadyForQuery: the start waits for that and fails with the error (it started the copy
/// without it, and the error was lost: "no row count", or an end of data sent on).
#[test]
fn an_error_read_with_the_copy_out_response_is_the_start_error() {
    let mut s = session();
    let mut start =
        CopyStart::begin(&mut s, "COPY (SELECT 1 / 0) TO STDOUT", Direction::ToStdout).unwrap();
    assert!(s.poll_transmit().is_some());
    let mut server = copy_response(b'H');
    server.extend(error("22012"));
    s.handle_input(&server).unwrap();
    assert!(matches!(start.poll(&mut s).unwrap(), StartStep::ReadMore));
    s.handle_input(&ready()).unwrap();
    let e = start.poll(&mut s).unwrap_err();
    assert_eq!(e.db_error().map(|d| d.code.as_str()), Some("22012"));
    assert_eq!(s.state(), State::Ready);
}
