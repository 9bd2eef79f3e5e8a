//! The endpoint machine against scripted server bytes: what a statement, a COPY IN's end, a
//! CopyFail with realignment, a server error mid-COPY IN, a drained COPY OUT and an abandon on
//! drop mean — decided once for both adapters, which only pump bytes.

mod backend;

use backend::{complete, copy_response, error, msg, ready};
use bytes::BytesMut;
use copyman_core::endpoint::{Abandon, DROPPED, Endpoint, Outcome, Step};
use copyman_core::session::{Session, SessionError, StartupConfig, State};
use copyman_core::source::CopyOutSource;
use copyman_core::statement::Direction;
use copyman_wire::realign::{self, Completion};
use copyman_wire::{Framer, HEADROOM};

/// An endpoint whose startup is over (a backend key given, so it can cancel).
fn endpoint() -> Endpoint {
    let mut e = Endpoint::new(Session::new(StartupConfig::new("u")));
    e.wait_ready();
    assert!(e.poll_transmit().is_some(), "the startup message goes out");
    assert!(matches!(e.poll(), Step::Read));
    let mut hello = msg(b'R', &[0, 0, 0, 0]);
    hello.extend(msg(b'K', &[0, 0, 0, 7, 0, 0, 0, 9]));
    hello.extend(ready());
    e.handle_input(&hello).unwrap();
    assert!(matches!(e.poll(), Step::Done(Ok(Outcome::Ready))));
    e
}

/// Everything the endpoint has to send now.
fn sent(e: &mut Endpoint) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(bytes) = e.poll_transmit() {
        out.extend_from_slice(&bytes);
    }
    out
}

/// Polls until the operation is over, feeding `server` at the first read; no second read.
fn finish(e: &mut Endpoint, server: &[u8]) -> Result<Outcome, SessionError> {
    let mut fed = false;
    loop {
        let step = e.poll();
        sent(e);
        match step {
            Step::Read if !fed => {
                fed = true;
                e.handle_input(server).unwrap();
            }
            Step::Read => panic!("waits for more than the server sent"),
            Step::SendCancel => panic!("no cancel expected"),
            Step::Done(outcome) => return outcome,
        }
    }
}

fn start_copy_in(e: &mut Endpoint) {
    e.start_copy("COPY t FROM STDIN", Direction::FromStdin)
        .unwrap();
    assert!(matches!(
        finish(e, &copy_response(b'G')),
        Ok(Outcome::Started(_))
    ));
    assert_eq!(e.session().state(), State::CopyIn);
}

#[test]
fn a_statement_gives_its_rows_and_its_count() {
    let mut e = endpoint();
    e.query("SELECT 1").unwrap();
    let mut server = msg(b'T', &[0, 0]);
    server.extend(msg(b'D', &[0, 1, 0, 0, 0, 1, b'7']));
    server.extend(complete("SELECT 1"));
    server.extend(ready());
    match finish(&mut e, &server).unwrap() {
        Outcome::Statement { rows, count } => {
            assert_eq!(rows, vec![vec![Some("7".to_owned())]]);
            assert_eq!(count, Some(1));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn execute_keeps_the_count_and_drops_the_rows() {
    let mut e = endpoint();
    e.execute("SELECT 1").unwrap();
    let mut server = msg(b'T', &[0, 0]);
    server.extend(msg(b'D', &[0, 1, 0, 0, 0, 1, b'7']));
    server.extend(complete("SELECT 1"));
    server.extend(ready());
    match finish(&mut e, &server).unwrap() {
        Outcome::Statement { rows, count } => {
            assert!(rows.is_empty(), "rows nobody reads are not kept");
            assert_eq!(count, Some(1));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_statement_error_is_the_outcome_and_the_session_is_ready_again() {
    let mut e = endpoint();
    e.query("SELEC 1").unwrap();
    let mut server = error("42601");
    server.extend(ready());
    let err = finish(&mut e, &server).unwrap_err();
    assert_eq!(err.db_error().map(|d| d.code.as_str()), Some("42601"));
    assert_eq!(e.session().state(), State::Ready);
}

#[test]
fn complete_copy_sends_copy_done_and_gives_the_count() {
    let mut e = endpoint();
    start_copy_in(&mut e);
    e.complete_copy().unwrap();
    assert_eq!(sent(&mut e), msg(b'c', b""), "CopyDone");
    let mut server = complete("COPY 3");
    server.extend(ready());
    assert!(matches!(
        finish(&mut e, &server),
        Ok(Outcome::Completed(Some(3)))
    ));
}

#[test]
fn a_server_error_mid_copy_in_is_reported_again_at_complete_without_a_read() {
    let mut e = endpoint();
    start_copy_in(&mut e);
    // The server refuses a row: its error and ReadyForQuery come in one read, mid-COPY.
    let mut server = error("22P02");
    server.extend(ready());
    e.handle_input(&server).unwrap();
    let first = e.copy_in_status().unwrap_err();
    assert_eq!(first.db_error().map(|d| d.code.as_str()), Some("22P02"));
    // Every later check says it again: the server ignores what comes after.
    assert!(e.copy_in_status().is_err());
    // Completing sends nothing and ends at once with that error (no read would ever return).
    e.complete_copy().unwrap();
    assert!(sent(&mut e).is_empty(), "nothing after the server's error");
    match e.poll() {
        Step::Done(Err(err)) => assert_eq!(err.db_error().map(|d| d.code.as_str()), Some("22P02")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn fail_copy_realigns_the_frame_then_sends_copy_fail() {
    let mut e = endpoint();
    start_copy_in(&mut e);
    // The adapter sent 3 bytes of a 5-byte header and body of a frame: "d\0\0\0\x0cab…".
    let mut framer = Framer::new();
    let sent_so_far = [b'd', 0, 0, 0, 12, b'a', b'b'];
    let _ = framer.advance(&sent_so_far);
    let completion: Completion = realign::completion(framer.position());
    assert_eq!(completion.filler, 6);
    e.fail_copy("stop", &completion).unwrap();
    let out = sent(&mut e);
    assert_eq!(&out[..6], &[0; 6], "the frame is finished with zeros");
    assert_eq!(out[6], b'f', "then CopyFail");
    // The server's 57014 is what was asked for: not an error of the outcome.
    let mut server = error("57014");
    server.extend(ready());
    assert!(matches!(finish(&mut e, &server), Ok(Outcome::Ready)));
}

/// The server failed the COPY (a bad row) while a frame was half sent: it drops CopyData as
/// whole messages, so the frame is finished (and nothing else sent) before the next statement,
/// which the server would otherwise read as the rest of the frame and never answer.
#[test]
fn a_frame_half_sent_when_the_server_failed_the_copy_is_finished_before_anything_else() {
    let half_sent = || {
        let mut framer = Framer::new();
        let _ = framer.advance(&[b'd', 0, 0, 0, 12, b'a', b'b']);
        realign::completion(framer.position())
    };
    let failed = || {
        let mut e = endpoint();
        start_copy_in(&mut e);
        let mut server = error("23514");
        server.extend(ready());
        e.handle_input(&server).unwrap();
        assert!(e.copy_in_status().is_err());
        e
    };
    // Failed at the end of the copy: the frame's rest, then nothing.
    let mut e = failed();
    e.fail_copy("stop", &half_sent()).unwrap();
    assert_eq!(
        sent(&mut e),
        vec![0; 6],
        "the frame's rest, and no CopyFail"
    );
    assert!(matches!(e.poll(), Step::Done(Ok(Outcome::Ready))));
    // Dropped after that (the receiver's position does not count the realignment): not twice.
    assert_eq!(e.abandon_copy_in(&half_sent(), true), Abandon::Nothing);
    e.execute("ROLLBACK").unwrap();
    assert_eq!(
        sent(&mut e)[0],
        b'Q',
        "then the next statement, on a message boundary"
    );
    // Dropped instead: the same bytes, to write without waiting.
    let mut e = failed();
    assert_eq!(
        e.abandon_copy_in(&half_sent(), true),
        Abandon::Write(vec![0; 6].into())
    );
    // A frame too large to finish now, or a message half written: only closing is safe.
    let mut e = failed();
    assert_eq!(e.abandon_copy_in(&half_sent(), false), Abandon::Close);
    // The server's error read, its ReadyForQuery not yet: the same bytes. A frame was finished:
    // what the server says then may be of the filler (zeros it reads as data), so no error is
    // taken for the COPY's own (recheck42b F2).
    let mut e = endpoint();
    start_copy_in(&mut e);
    e.handle_input(&error("23514")).unwrap();
    e.fail_copy("stop", &half_sent()).unwrap();
    assert_eq!(sent(&mut e), vec![0; 6]);
    assert!(matches!(finish(&mut e, &ready()), Ok(Outcome::Ready)));
}

/// The server failed the COPY of its own before the CopyFail reached it, and the copy had not
/// read that yet (blocked writing to another destination): where the COPY ended on a frame's
/// boundary, the failure's outcome is that error (files42 F4). The CopyFail's own echo (57014)
/// is not (fail_copy_realigns_the_frame_…), nor what follows a finished frame (above).
#[test]
fn fail_copy_reports_an_error_the_server_raised_before_it() {
    let mut e = endpoint();
    start_copy_in(&mut e);
    e.fail_copy("stop", &Completion::default()).unwrap();
    assert_eq!(sent(&mut e)[0], b'f');
    let mut server = error("23505");
    server.extend(ready());
    match finish(&mut e, &server) {
        Err(err) => assert_eq!(err.db_error().map(|d| d.code.as_str()), Some("23505")),
        other => panic!("{other:?}"),
    }
}

/// The CopyFail's echo is a 57014 quoting its reason; a 57014 of the server's own (its statement
/// timeout, a cancel from elsewhere) that beat the CopyFail is the failure's outcome, as any
/// error of its own is.
#[test]
fn a_57014_of_the_servers_own_is_told_from_the_copy_fails_echo() {
    let failed_with = |message: &str| {
        let mut e = endpoint();
        start_copy_in(&mut e);
        e.fail_copy("source failed", &Completion::default())
            .unwrap();
        sent(&mut e);
        let mut server = msg(b'E', format!("SERROR\0C57014\0M{message}\0\0").as_bytes());
        server.extend(ready());
        finish(&mut e, &server)
    };
    assert!(matches!(
        failed_with("COPY from stdin failed: source failed"),
        Ok(Outcome::Ready)
    ));
    match failed_with("canceling statement due to statement timeout") {
        Err(err) => assert_eq!(err.db_error().map(|d| d.code.as_str()), Some("57014")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn fail_copy_at_a_frame_boundary_sends_only_copy_fail() {
    let mut e = endpoint();
    start_copy_in(&mut e);
    e.fail_copy("stop", &Completion::default()).unwrap();
    let first = e.poll_transmit().expect("CopyFail");
    assert_eq!(first[0], b'f', "no empty write before it");
}

#[test]
fn fail_copy_after_the_server_failed_it_sends_nothing() {
    let mut e = endpoint();
    start_copy_in(&mut e);
    let mut server = error("23505");
    server.extend(ready());
    e.handle_input(&server).unwrap();
    assert!(e.copy_in_status().is_err());
    e.fail_copy("stop", &Completion::default()).unwrap();
    assert!(sent(&mut e).is_empty());
    assert!(matches!(e.poll(), Step::Done(Ok(Outcome::Ready))));
}

#[test]
fn an_aborted_copy_out_is_cancelled_then_drained() {
    let mut e = endpoint();
    e.start_copy("COPY t TO STDOUT", Direction::ToStdout)
        .unwrap();
    let started = match finish(&mut e, &copy_response(b'H')).unwrap() {
        Outcome::Started(started) => *started,
        other => panic!("{other:?}"),
    };
    let mut source = CopyOutSource::started(true, started, e.session_mut()).unwrap();
    let mut buf = BytesMut::from(&[0u8; HEADROOM][..]);
    buf.extend_from_slice(&msg(b'd', b"1\n"));
    source.handle_read(e.session_mut(), buf).unwrap();
    match e.abandon_copy_out(Some(&mut source)) {
        Abandon::Cancel => {}
        other => panic!("{other:?}"),
    }
    e.drain_copy_out(true);
    assert!(
        matches!(e.poll(), Step::SendCancel),
        "the cancel goes first"
    );
    let mut server = msg(b'd', b"2\n");
    server.extend(error("57014"));
    server.extend(ready());
    assert!(matches!(finish(&mut e, &server), Ok(Outcome::Ready)));
    assert_eq!(e.session().state(), State::Ready);
}

#[test]
fn a_dropped_copy_in_is_failed_at_once_or_closed() {
    // Nothing half sent: realignment and CopyFail, to write without waiting.
    let mut e = endpoint();
    start_copy_in(&mut e);
    let completion = Completion::default();
    match e.abandon_copy_in(&completion, true) {
        Abandon::Write(bytes) => {
            assert_eq!(bytes[0], b'f');
            let reason = String::from_utf8_lossy(&bytes[5..]);
            assert!(reason.contains(DROPPED), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // A message half written, or a frame too large to finish now: only closing is safe.
    let mut e = endpoint();
    start_copy_in(&mut e);
    assert_eq!(e.abandon_copy_in(&completion, false), Abandon::Close);
    // A COPY already failing is on its way out; no COPY at all needs nothing.
    let mut e = endpoint();
    assert_eq!(e.abandon_copy_in(&completion, true), Abandon::Nothing);
    start_copy_in(&mut e);
    e.fail_copy("stop", &completion).unwrap();
    sent(&mut e);
    assert_eq!(e.abandon_copy_in(&completion, true), Abandon::Nothing);
}

/// A COPY dropped after its CopyDone went out: the next statement waits for its end, and what
/// the server answered — its count, or the error that failed it — is kept for the caller
/// (lib62 F1: read and thrown away).
#[test]
fn the_end_of_a_copy_dropped_during_its_finish_is_kept() {
    for (answer, expect) in [(complete("COPY 3"), Some(3)), (error("P0001"), None)] {
        let mut e = endpoint();
        start_copy_in(&mut e);
        e.complete_copy().unwrap();
        assert_eq!(sent(&mut e), msg(b'c', b""), "CopyDone");
        assert!(matches!(e.poll(), Step::Read));
        assert_eq!(
            e.abandon_copy_in(&Completion::default(), true),
            Abandon::Nothing
        );
        e.query("SELECT 1").unwrap();
        assert!(sent(&mut e).is_empty(), "nothing before the COPY's end");
        let mut server = answer;
        server.extend(ready());
        e.handle_input(&server).unwrap();
        assert!(matches!(e.poll(), Step::Read), "the statement is under way");
        assert_eq!(sent(&mut e)[0], b'Q');
        let mut server = complete("SELECT 1");
        server.extend(ready());
        assert!(matches!(
            finish(&mut e, &server),
            Ok(Outcome::Statement { count: Some(1), .. })
        ));
        match (e.take_abandoned(), expect) {
            (Some(Ok(Some(n))), Some(m)) => assert_eq!(n, m),
            (Some(Err(err)), None) => {
                assert_eq!(err.db_error().map(|d| d.code.as_str()), Some("P0001"))
            }
            (other, _) => panic!("{other:?}"),
        }
        assert!(e.take_abandoned().is_none(), "taken once");
    }
}

#[test]
fn an_operation_after_an_abandoned_one_waits_for_its_end_first() {
    let mut e = endpoint();
    start_copy_in(&mut e);
    let Abandon::Write(_) = e.abandon_copy_in(&Completion::default(), true) else {
        panic!("abandon")
    };
    // The next statement goes out only once the CopyFail's answer is read, whose error is not
    // the statement's.
    e.query("SELECT 1").unwrap();
    assert!(
        sent(&mut e).is_empty(),
        "nothing before the abandoned COPY ended"
    );
    assert!(matches!(e.poll(), Step::Read));
    let mut server = error("57014");
    server.extend(ready());
    e.handle_input(&server).unwrap();
    assert!(matches!(e.poll(), Step::Read), "the statement is under way");
    assert_eq!(sent(&mut e)[0], b'Q');
    let mut server = complete("SELECT 0");
    server.extend(ready());
    assert!(matches!(
        finish(&mut e, &server),
        Ok(Outcome::Statement { count: Some(0), .. })
    ));
}
