//! Deterministic tests of the sans-IO [`Manager`], one per scenario of the seed's documentation
//! (`postgresql.copyman`: transfer, iteration, faults, reconciliation, failures, realignment), run
//! through the scripted [`Harness`].

mod harness;

use std::sync::Arc;

use bytes::Bytes;
use copyman_core::manager::{
    Chunk, Config, Data, Event, Input, Manager, ManagerError, Output, Protocol, ReceiverId,
    ReceiverOutcome,
};
use copyman_core::{CopyFail, CountMismatch};
use harness::{
    Harness, Log, Order, Schedule, ScriptedProducer, ScriptedReceiver, Stop, frames, parse_frames,
    payload, split,
};

const R0: ReceiverId = ReceiverId(0);
const R1: ReceiverId = ReceiverId(1);
const R2: ReceiverId = ReceiverId(2);

const SCHEDULES: [Schedule; 4] = [
    Schedule::Eager,
    Schedule::Fifo,
    Schedule::Random(7),
    Schedule::Random(1234),
];

/// The rows of a text COPY: the bodies of the source's CopyData frames.
fn rows(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{i}\tname {i}\n").into_bytes())
        .collect()
}

/// A PQv3 source of `n` rows read in chunks of `every` bytes (so split mid-frame): its bodies,
/// its stream and its chunks.
fn source(n: usize, every: usize) -> (Vec<Vec<u8>>, Vec<u8>, Vec<Bytes>) {
    let bodies = rows(n);
    let stream = frames(&bodies);
    let cuts: Vec<usize> = (every..stream.len()).step_by(every).collect();
    let chunks = split(&stream, &cuts);
    (bodies, stream, chunks)
}

fn payload_len(bodies: &[Vec<u8>]) -> u64 {
    bodies.iter().map(|b| b.len() as u64).sum()
}

/// Drives to the next event, finishing at EndOfCopy.
fn next_event(h: &mut Harness) -> Event {
    loop {
        match h.drive() {
            Stop::Event(event) => return event,
            Stop::EndOfCopy => h.input(Input::Finish),
            other => panic!("no event: {other:?}"),
        }
    }
}

fn copy_fail(result: Result<copyman_core::Summary, CopyFail>) -> CopyFail {
    match result {
        Ok(summary) => panic!("the copy succeeded: {summary:?}"),
        Err(fail) => fail,
    }
}

/// A receiver's Fail, its reason and whether what its server saw parses as whole frames.
fn assert_failed_on_boundary(h: &Harness, r: ReceiverId, reason: &str) {
    let rx = h.rx(r);
    let (got, _) = rx
        .failed
        .as_ref()
        .unwrap_or_else(|| panic!("receiver {r} was not failed"));
    assert_eq!(&**got, reason, "receiver {r}'s CopyFail reason");
    assert!(rx.completed.is_none());
    if rx.protocol == Protocol::PQv3 {
        let wire = rx.wire_at_fail();
        parse_frames(&wire).unwrap_or_else(|e| panic!("receiver {r} left off a frame: {e}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Transfer and iteration.

/// Seed: `copyman.transfer(send_stmt, receive_stmt)` / `CopyManager(...).run()`: the whole copy
/// in one call, returning the totals.
#[test]
fn transfer_one_call_returns_totals_and_receiver_counts() {
    for schedule in SCHEDULES {
        let (bodies, stream, chunks) = source(40, 13);
        let receivers = vec![ScriptedReceiver::pqv3(), ScriptedReceiver::pqv3()];
        let mut h = Harness::new(ScriptedProducer::pqv3(chunks), receivers, 2, schedule);
        let summary = h.drive_to_end().expect("the copy succeeds");
        assert_eq!(summary.messages, 40);
        assert_eq!(summary.bytes, payload_len(&bodies));
        assert_eq!(summary.producer_count, Some(40));
        assert_eq!(summary.receivers.len(), 2);
        for (i, (id, outcome)) in summary.receivers.iter().enumerate() {
            assert_eq!(*id, ReceiverId(i));
            assert!(
                matches!(outcome, ReceiverOutcome::Completed(Some(40))),
                "{outcome:?}"
            );
            assert_eq!(h.rx(*id).wire, stream, "receiver {i} got the stream");
            assert_eq!(h.rx(*id).completed, Some(Some(40)));
        }
        assert_eq!(h.manager.totals(), (40, payload_len(&bodies)));
        assert_eq!(
            h.producer.cancels, 0,
            "a producer that ended is not cancelled"
        );
        assert!(h.log.iter().all(|l| !matches!(l, Log::Fail(_))));
    }
}

/// Seed: `for num_messages, num_bytes in copy: update_rate(num_bytes)`: every cycle reports what
/// it moved, and the reports add up to the totals.
#[test]
fn iteration_progress_per_cycle_sums_to_totals() {
    for window in 1..=4 {
        for schedule in SCHEDULES {
            let (bodies, _, chunks) = source(25, 11);
            let producer = ScriptedProducer::pqv3(chunks);
            let per_chunk: Vec<(u64, u64)> = producer
                .script
                .iter()
                .map(|r| match r {
                    harness::Read::Chunk(c) => (c.messages, c.bytes),
                    harness::Read::Error(_) => unreachable!(),
                })
                .collect();
            let receivers = vec![ScriptedReceiver::pqv3(), ScriptedReceiver::chunks()];
            let mut h = Harness::new(producer, receivers, window, schedule);
            let summary = h.drive_to_end().expect("the copy succeeds");
            let progress = h.progress();
            // No fault: one report per cycle, in order, each the cycle's own counts.
            assert_eq!(progress, per_chunk, "window {window}, {schedule:?}");
            let sum = progress
                .iter()
                .fold((0, 0), |(m, b), (pm, pb)| (m + pm, b + pb));
            assert_eq!(sum, (summary.messages, summary.bytes));
            assert_eq!(sum, (25, payload_len(&bodies)));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Receiver faults.

/// Seed "Receiver Faults": a receiver that raises is removed at once, the fault names it and
/// carries its error (`cf.faults[receiver]`), and the copy goes on with the rest, which get every
/// byte.
#[test]
fn receiver_fault_names_the_receiver_and_the_rest_continue() {
    for schedule in SCHEDULES {
        let (_, stream, chunks) = source(30, 17);
        let receivers = vec![
            ScriptedReceiver::pqv3(),
            ScriptedReceiver::pqv3().fail_on(2, 4),
            ScriptedReceiver::chunks(),
        ];
        let mut h = Harness::new(ScriptedProducer::pqv3(chunks), receivers, 1, schedule);
        let fault = loop {
            match next_event(&mut h) {
                Event::ReceiverFault(fault) => break fault,
                Event::Progress { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(fault.faults.len(), 1);
        let error = fault.get(R1).expect("the fault names receiver 1");
        assert_eq!(error.to_string(), "receiver 1 failed on transmit 2");
        assert!(fault.get(R0).is_none());
        assert_eq!(
            fault.to_string(),
            "receiver 1 faulted: receiver 1 failed on transmit 2"
        );
        assert!(!h.manager.is_live(R1));
        assert_eq!(h.manager.live_receivers().collect::<Vec<_>>(), vec![R0, R2]);

        let summary = h.drive_to_end().expect("the rest complete the copy");
        assert_eq!(h.rx(R0).wire, stream);
        assert_eq!(h.rx(R2).lines.concat(), rows(30).concat());
        assert!(matches!(
            summary.receivers[0].1,
            ReceiverOutcome::Completed(Some(30))
        ));
        match &summary.receivers[1].1 {
            ReceiverOutcome::Faulted(e) => {
                assert_eq!(e.to_string(), "receiver 1 failed on transmit 2")
            }
            other => panic!("receiver 1 ended {other:?}"),
        }
        // The faulted receiver's COPY is failed, on a frame boundary.
        assert_failed_on_boundary(&h, R1, "receiver faulted during the copy");
        // The fault displaced one report; its progress is carried into the next one.
        let sum = h
            .progress()
            .iter()
            .fold((0, 0), |(m, b), (pm, pb)| (m + pm, b + pb));
        assert_eq!(sum, (summary.messages, summary.bytes));
    }
}

/// A receiver's server reports an error between transmits (an ErrorResponse read from its
/// socket): the same ReceiverFault, the same isolation; its COPY is failed on a frame boundary.
#[test]
fn receiver_fault_reported_by_its_server_between_transmits() {
    for schedule in SCHEDULES {
        let (_, stream, chunks) = source(20, 11);
        let receivers = vec![ScriptedReceiver::pqv3(), ScriptedReceiver::pqv3()];
        let mut h = Harness::new(ScriptedProducer::pqv3(chunks), receivers, 2, schedule);
        assert!(matches!(next_event(&mut h), Event::Progress { .. }));
        while !h.server_error(R1) {
            h.step();
        }
        let fault = loop {
            if let Event::ReceiverFault(fault) = next_event(&mut h) {
                break fault;
            }
        };
        assert_eq!(
            fault.get(R1).unwrap().to_string(),
            "receiver 1: server error"
        );
        // A second error from a receiver already out of the copy changes nothing.
        h.input(Input::ReceiverError {
            receiver: R1,
            error: "late".into(),
            written: 0,
        });
        let summary = h.drive_to_end().expect("receiver 0 completes the copy");
        assert_eq!(h.rx(R0).wire, stream);
        match &summary.receivers[1].1 {
            ReceiverOutcome::Faulted(e) => assert_eq!(e.to_string(), "receiver 1: server error"),
            other => panic!("{other:?}"),
        }
        assert_failed_on_boundary(&h, R1, "receiver faulted during the copy");
    }
}

/// Seed "Reconciliation": after a transient error the receiver is reconciled: it transmits what it
/// owes first (of a partly written PQv3 unit, only the rest), then rejoins and ends with exactly
/// the full stream.
#[test]
fn reconcile_after_transient_error_resends_only_the_rest_first() {
    for schedule in [Schedule::Eager, Schedule::Fifo] {
        let (_, stream, chunks) = source(20, 9);
        let second = chunks[1].clone();
        let receivers = vec![
            ScriptedReceiver::pqv3().fail_on(2, 3),
            ScriptedReceiver::pqv3(),
        ];
        let mut h = Harness::new(ScriptedProducer::pqv3(chunks), receivers, 1, schedule);
        loop {
            match next_event(&mut h) {
                Event::ReceiverFault(fault) => {
                    assert!(fault.get(R0).is_some());
                    break;
                }
                Event::Progress { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(h.rx(R0).wire, stream[..9 + 3]);
        assert_eq!(
            h.manager.pending(R0),
            1,
            "the partly written unit is still owed"
        );
        h.input(Input::Reconcile(R0));
        let mark = h.log.len();
        match next_event(&mut h) {
            Event::Reconciled(r) => assert_eq!(r, R0),
            other => panic!("expected Reconciled, got {other:?}"),
        }
        // Between the reconcile and the rejoin: only the rest of the owed unit, nothing read.
        assert_eq!(
            h.log[mark..],
            [Log::Transmit(R0, second.len() - 3), Log::Reconciled(R0)]
        );
        match h.rx(R0).transmits.last() {
            Some(Data::PQv3(rest)) => {
                assert_eq!(rest[..], second[3..]);
                assert_eq!(
                    rest.as_ptr(),
                    second[3..].as_ptr(),
                    "the rest is a slice, not a copy"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(h.manager.is_live(R0));
        let summary = h.drive_to_end().expect("the copy succeeds");
        assert_eq!(
            h.rx(R0).wire,
            stream,
            "the reconciled receiver got exactly the stream"
        );
        assert_eq!(h.rx(R1).wire, stream);
        assert!(matches!(
            summary.receivers[0].1,
            ReceiverOutcome::Completed(Some(20))
        ));
    }
}

/// Drives `h` to its first receiver fault (only progress before it).
fn to_a_fault(h: &mut Harness) {
    loop {
        match next_event(h) {
            Event::ReceiverFault(_) => break,
            Event::Progress { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Reconciliation of a Chunks receiver: the lines it failed to take are given again, whole.
#[test]
fn reconcile_chunks_receiver_gets_its_pending_lines_again() {
    let (bodies, _, chunks) = source(12, 20);
    let receivers = vec![
        ScriptedReceiver::chunks().fail_on(3, 0),
        ScriptedReceiver::null(),
    ];
    let mut h = Harness::new(ScriptedProducer::pqv3(chunks), receivers, 1, Schedule::Fifo);
    to_a_fault(&mut h);
    h.input(Input::Reconcile(R0));
    assert!(matches!(next_event(&mut h), Event::Reconciled(R0)));
    h.drive_to_end().expect("the copy succeeds");
    assert_eq!(
        h.rx(R0).lines,
        bodies
            .iter()
            .map(|b| Bytes::copy_from_slice(b))
            .collect::<Vec<_>>()
    );
}

/// Reconciliation of a Chunks receiver that took part of its lines before it faulted (a writer
/// whose write the stall timeout cut): it is given the rest, from the byte it stopped at — the
/// whole cycle was given again, rows twice in its output (lib67 F16).
#[test]
fn reconcile_chunks_receiver_goes_on_after_what_it_took() {
    for taken in [1, 7, 30] {
        let (bodies, _, chunks) = source(12, 20);
        let receivers = vec![
            ScriptedReceiver::chunks().fail_on(3, taken),
            ScriptedReceiver::null(),
        ];
        let mut h = Harness::new(ScriptedProducer::pqv3(chunks), receivers, 1, Schedule::Fifo);
        to_a_fault(&mut h);
        h.input(Input::Reconcile(R0));
        assert!(matches!(next_event(&mut h), Event::Reconciled(R0)));
        h.drive_to_end().expect("the copy succeeds");
        let got: Vec<u8> = h.rx(R0).lines.iter().flatten().copied().collect();
        let sent: Vec<u8> = bodies.iter().flatten().copied().collect();
        assert_eq!(got, sent, "taken {taken}");
    }
}

/// Reconcile is refused for a receiver that has not faulted, an unknown one, and one that missed
/// chunks while it was out of the copy (rejoining would lose them); the refusal changes nothing.
#[test]
fn reconcile_refused_when_not_faulted_or_after_missed_data() {
    let (_, stream, chunks) = source(20, 10);
    let receivers = vec![
        ScriptedReceiver::pqv3().fail_on(1, 2),
        ScriptedReceiver::pqv3(),
    ];
    let mut h = Harness::new(ScriptedProducer::pqv3(chunks), receivers, 1, Schedule::Fifo);
    assert_eq!(
        h.manager.handle_input(Input::Reconcile(R1)).unwrap_err(),
        ManagerError::NotFaulted(R1)
    );
    assert_eq!(
        h.manager
            .handle_input(Input::Reconcile(ReceiverId(9)))
            .unwrap_err(),
        ManagerError::UnknownReceiver(ReceiverId(9))
    );
    assert!(matches!(next_event(&mut h), Event::ReceiverFault(_)));
    // Two more chunks go by without receiver 0.
    assert!(matches!(next_event(&mut h), Event::Progress { .. }));
    assert!(matches!(next_event(&mut h), Event::Progress { .. }));
    assert_eq!(
        h.manager.handle_input(Input::Reconcile(R0)).unwrap_err(),
        ManagerError::MissedData {
            receiver: R0,
            missed: 2
        }
    );
    assert!(!h.manager.is_live(R0));
    let summary = h.drive_to_end().expect("the copy completes on receiver 1");
    assert_eq!(h.rx(R1).wire, stream);
    assert!(matches!(
        summary.receivers[0].1,
        ReceiverOutcome::Faulted(_)
    ));
    assert_failed_on_boundary(&h, R0, "receiver faulted during the copy");
    // A finished copy refuses reconciliation too.
    assert!(matches!(
        h.manager.handle_input(Input::Reconcile(R0)),
        Err(ManagerError::Unexpected { .. })
    ));
}

/// A receiver whose server said an error (its COPY ended there: the server discards what
/// follows) cannot rejoin, whatever went by: reconcile refuses it at once, naming the error,
/// and it ends faulted (one adapter said `Ok` and let it fault again on the next chunks).
#[test]
fn reconcile_refused_when_the_server_ended_the_copy() {
    let (_, stream, chunks) = source(20, 10);
    let receivers = vec![
        ScriptedReceiver::pqv3().fail_on(1, 0).server_error("23505"),
        ScriptedReceiver::pqv3(),
    ];
    let mut h = Harness::new(ScriptedProducer::pqv3(chunks), receivers, 1, Schedule::Fifo);
    match next_event(&mut h) {
        Event::ReceiverFault(fault) => {
            assert_eq!(fault.get(R0).and_then(|e| e.code()), Some("23505"));
        }
        other => panic!("expected the fault, got {other:?}"),
    }
    let refused = h.manager.handle_input(Input::Reconcile(R0)).unwrap_err();
    assert!(
        matches!(&refused, ManagerError::CopyEnded { receiver, error }
            if *receiver == R0 && error.contains("failed on transmit 1")),
        "{refused:?}"
    );
    assert!(!h.manager.is_live(R0));
    let summary = h.drive_to_end().expect("the copy completes on receiver 1");
    assert_eq!(h.rx(R1).wire, stream);
    assert!(matches!(
        summary.receivers[0].1,
        ReceiverOutcome::Faulted(_)
    ));
}

/// With a window above 1 (a concurrent adapter), chunks go on while the caller learns of a fault:
/// the faulted receiver keeps up to a window of them, so a late reconcile still loses nothing.
#[test]
fn reconcile_within_the_window_after_chunks_went_by() {
    let (_, stream, chunks) = source(20, 10);
    let receivers = vec![
        ScriptedReceiver::pqv3().fail_on(1, 2),
        ScriptedReceiver::pqv3(),
    ];
    let mut h = Harness::new(ScriptedProducer::pqv3(chunks), receivers, 3, Schedule::Fifo);
    assert!(matches!(next_event(&mut h), Event::ReceiverFault(_)));
    // One more chunk goes by without receiver 0: within its window of 3.
    assert!(matches!(next_event(&mut h), Event::Progress { .. }));
    h.manager.handle_input(Input::Reconcile(R0)).unwrap();
    let summary = h
        .drive_to_end()
        .expect("the copy completes on both receivers");
    assert_eq!(h.rx(R0).wire, stream);
    assert_eq!(h.rx(R1).wire, stream);
    assert!(
        summary
            .receivers
            .iter()
            .all(|(_, outcome)| matches!(outcome, ReceiverOutcome::Completed(_)))
    );
}

// ---------------------------------------------------------------------------------------------
// Producer faults.

/// Seed "Producer Faults": the manager makes no state change when the producer raises; the
/// iteration may simply go on and the copy completes.
#[test]
fn producer_fault_changes_nothing_and_the_copy_continues() {
    for schedule in SCHEDULES {
        let (_, stream, chunks) = source(15, 8);
        let n = chunks.len();
        let producer = ScriptedProducer::pqv3(chunks).error_at(2, "source hiccup");
        let receivers = vec![ScriptedReceiver::pqv3(), ScriptedReceiver::chunks()];
        let mut h = Harness::new(producer, receivers, 2, schedule);
        let fault = loop {
            match next_event(&mut h) {
                Event::ProducerFault(fault) => break fault,
                Event::Progress { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(fault.error.to_string(), "source hiccup");
        let source = std::error::Error::source(&fault).expect("the original error is the source");
        assert_eq!(source.to_string(), "source hiccup");
        assert!(h.manager.is_live(R0) && h.manager.is_live(R1));
        let summary = h
            .drive_to_end()
            .expect("the copy goes on after the producer fault");
        assert_eq!(h.rx(R0).wire, stream);
        assert_eq!(summary.messages, 15);
        assert_eq!(
            h.producer.reads,
            n + 2,
            "every chunk, the failed read and the end"
        );
    }
}

/// A producer fault changes neither the totals nor what receivers have pending.
#[test]
fn producer_fault_leaves_the_state_unchanged() {
    let (_, _, chunks) = source(10, 8);
    let producer = ScriptedProducer::pqv3(chunks).error_at(1, "boom");
    let mut h = Harness::new(producer, vec![ScriptedReceiver::pqv3()], 1, Schedule::Eager);
    assert!(matches!(next_event(&mut h), Event::Progress { .. }));
    let before = (
        h.manager.totals(),
        h.manager.pending(R0),
        h.rx(R0).wire.clone(),
    );
    assert!(matches!(next_event(&mut h), Event::ProducerFault(_)));
    let after = (
        h.manager.totals(),
        h.manager.pending(R0),
        h.rx(R0).wire.clone(),
    );
    assert_eq!(before, after);
}

// ---------------------------------------------------------------------------------------------
// Failed copies.

/// Seed "Failed Copy": a copy whose iterator is not run to exhaustion fails: every receiver's
/// COPY is failed (on a frame boundary), the producer is cancelled, nothing completes.
#[test]
fn early_stop_fails_the_copy_and_cancels_the_producer() {
    for schedule in SCHEDULES {
        let (_, _, chunks) = source(30, 7);
        let receivers = vec![
            ScriptedReceiver::pqv3(),
            ScriptedReceiver::chunks(),
            ScriptedReceiver::null(),
        ];
        let mut h = Harness::new(ScriptedProducer::pqv3(chunks), receivers, 2, schedule);
        for _ in 0..3 {
            assert!(matches!(next_event(&mut h), Event::Progress { .. }));
        }
        h.input(Input::Finish);
        let fail = copy_fail(h.drive_to_end());
        assert_eq!(fail.reason, "copy stopped before the producer's end");
        assert!(fail.receiver_faults.is_empty());
        assert!(fail.producer_fault.is_none());
        for r in [R0, R1, R2] {
            assert_failed_on_boundary(&h, r, "copy stopped before the producer's end");
        }
        assert_eq!(h.producer.cancels, 1);
        assert!(!h.producer.ended);
        assert!(h.log.iter().all(|l| !matches!(l, Log::Complete(_))));
    }
}

/// Seed "Failed Copy": the iterator not run to exhaustion is a failed copy, even when a window
/// above 1 let the manager read the producer's end ahead of the caller.
#[test]
fn early_stop_after_read_ahead_to_the_end_still_fails() {
    for schedule in SCHEDULES {
        let (_, _, chunks) = source(2, 1000);
        let receivers = vec![ScriptedReceiver::pqv3(), ScriptedReceiver::pqv3()];
        let mut h = Harness::new(ScriptedProducer::pqv3(chunks), receivers, 4, schedule);
        assert!(matches!(next_event(&mut h), Event::Progress { .. }));
        h.input(Input::Finish);
        let fail = copy_fail(h.drive_to_end());
        assert_eq!(fail.reason, "copy stopped before the producer's end");
        assert!(h.log.iter().all(|l| !matches!(l, Log::Complete(_))));
    }
}

/// Seed `__enter__` failing: endpoints that could not start are named in the CopyFail, and every
/// other one is failed or cancelled; nothing completes.
#[test]
fn endpoints_that_could_not_start_are_named_in_the_copy_fail() {
    let (_, _, chunks) = source(4, 7);
    let receivers = vec![
        ScriptedReceiver::pqv3(),
        ScriptedReceiver::pqv3(),
        ScriptedReceiver::chunks(),
    ];
    let mut h = Harness::new(ScriptedProducer::pqv3(chunks), receivers, 1, Schedule::Fifo);
    h.input(Input::StartFailed {
        receivers: vec![
            (R2, "relation \"t\" does not exist".into()),
            (R1, "no such db".into()),
        ],
        producer: Some("cannot start".into()),
    });
    let fail = copy_fail(h.drive_to_end());
    assert_eq!(fail.reason, "could not start the COPY operation");
    let ids: Vec<_> = fail.receiver_faults.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![R1, R2]);
    assert_eq!(
        fail.receiver_faults[1].1.to_string(),
        "relation \"t\" does not exist"
    );
    assert_eq!(
        fail.producer_fault
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("cannot start")
    );
    assert!(h.log.iter().all(|l| !matches!(l, Log::Complete(_))));
}

/// Seed `__exit__`: "No receivers? It wasn't a success." — every receiver faulted.
#[test]
fn all_receivers_faulted_fails_with_no_receivers() {
    for schedule in SCHEDULES {
        let (_, _, chunks) = source(10, 6);
        let receivers = vec![
            ScriptedReceiver::pqv3().fail_on(1, 3),
            ScriptedReceiver::chunks().fail_on(2, 0),
        ];
        let mut h = Harness::new(ScriptedProducer::pqv3(chunks), receivers, 1, schedule);
        let mut faulted = Vec::new();
        let fail = loop {
            match h.drive() {
                Stop::Event(Event::ReceiverFault(f)) => {
                    faulted.extend(f.faults.iter().map(|(r, _)| *r))
                }
                Stop::Event(Event::Finished(result)) => break copy_fail(result),
                Stop::Event(_) => {}
                Stop::EndOfCopy => {
                    assert_eq!(h.manager.live_receivers().count(), 0);
                    h.input(Input::Finish);
                }
                other => panic!("{other:?}"),
            }
        };
        h.assert_done();
        faulted.sort();
        assert_eq!(faulted, vec![R0, R1]);
        assert_eq!(fail.reason, "no receivers");
        assert_failed_on_boundary(&h, R0, "no receivers");
        assert_failed_on_boundary(&h, R1, "no receivers");
        assert_eq!(h.producer.cancels, 1);
    }
}

/// A manager without any receiver has nothing to stream, and fails with "no receivers".
#[test]
fn no_receivers_at_all_fails_with_no_receivers() {
    let mut h = Harness::new(ScriptedProducer::null(3), Vec::new(), 1, Schedule::Fifo);
    assert!(matches!(h.drive(), Stop::EndOfCopy));
    h.input(Input::Finish);
    let fail = copy_fail(h.drive_to_end());
    assert_eq!(fail.reason, "no receivers");
    assert_eq!(h.producer.reads, 0);
    assert_eq!(h.producer.cancels, 1);
}

/// Seed `CopyFail.receiver_faults`: a receiver whose exit (Complete) raises fails the copy; its
/// error is gathered, the others still complete.
#[test]
fn complete_error_is_gathered_in_receiver_faults() {
    let (_, _, chunks) = source(10, 16);
    let receivers = vec![
        ScriptedReceiver::pqv3(),
        ScriptedReceiver::pqv3().complete_error("disk full"),
    ];
    let mut h = Harness::new(ScriptedProducer::pqv3(chunks), receivers, 1, Schedule::Fifo);
    let fail = copy_fail(h.drive_to_end());
    assert_eq!(fail.reason, "could not complete the COPY operation");
    assert_eq!(fail.receiver_faults.len(), 1);
    assert_eq!(fail.receiver_fault(R1).unwrap().to_string(), "disk full");
    assert!(fail.producer_fault.is_none());
    assert!(fail.to_string().contains("receiver 1: disk full"), "{fail}");
    assert_eq!(h.rx(R0).completed, Some(Some(10)));
}

/// A receiver without a server (a file's flush, a caller's own) completes before any server's
/// CopyDone goes out, and its failure there fails the servers' COPYs, which then commit nothing
/// (all or nothing): they had completed in order after it, committing every row in autocommit.
/// Under every schedule, with the failing one anywhere in the list.
#[test]
fn a_local_receivers_failed_completion_fails_the_servers_before_they_complete() {
    for schedule in SCHEDULES {
        for local in 0..3 {
            let (_, _, chunks) = source(10, 16);
            let mut receivers = vec![ScriptedReceiver::pqv3(), ScriptedReceiver::pqv3()];
            receivers.insert(
                local,
                ScriptedReceiver::chunks().complete_error("disk full"),
            );
            let producer = ScriptedProducer::pqv3(chunks);
            let mut h = Harness::new(producer, receivers, 2, schedule);
            let fail = copy_fail(h.drive_to_end());
            let at = format!("{schedule:?}, local receiver {local}");
            assert_eq!(fail.reason, "could not complete the COPY operation", "{at}");
            assert!(!fail.any_completed(), "{at}: {fail}");
            for (id, outcome) in &fail.receivers {
                let server = h.rx(*id);
                if id.0 == local {
                    assert!(matches!(outcome, ReceiverOutcome::Failed(_)), "{at}");
                    continue;
                }
                assert!(
                    matches!(outcome, ReceiverOutcome::Dropped),
                    "{at}: {outcome:?}"
                );
                assert_eq!(server.completed, None, "{at}: its CopyDone never went out");
                let (reason, _) = server.failed.as_ref().expect("its COPY was failed");
                assert!(
                    reason.contains(&format!("receiver {local} could not")),
                    "{at}"
                );
            }
            assert!(
                !fail.to_string().contains("completed all the same"),
                "{at}: {fail}"
            );
        }
    }
}

/// Under keep-going a receiver that fails at its end is one casualty: the others complete.
#[test]
fn under_keep_going_a_failed_completion_leaves_the_others_completing() {
    let (_, _, chunks) = source(10, 16);
    let receivers = vec![
        ScriptedReceiver::chunks().complete_error("disk full"),
        ScriptedReceiver::pqv3(),
    ];
    let mut config = Config::with_window(1);
    config.keep_going = true;
    let producer = ScriptedProducer::pqv3(chunks);
    let mut h = Harness::with_config(producer, receivers, config, Schedule::Fifo);
    let summary = h.drive_to_end().expect("the survivor completes");
    assert!(matches!(summary.receivers[0].1, ReceiverOutcome::Failed(_)));
    assert_eq!(h.rx(R1).completed, Some(Some(10)));
}

/// Seed `CopyFail.receiver_faults` on a failed copy: a receiver whose Fail raises is gathered.
#[test]
fn fail_error_is_gathered_in_receiver_faults() {
    let (_, _, chunks) = source(10, 16);
    let receivers = vec![
        ScriptedReceiver::pqv3().fail_error("connection lost"),
        ScriptedReceiver::pqv3(),
    ];
    let mut h = Harness::new(ScriptedProducer::pqv3(chunks), receivers, 1, Schedule::Fifo);
    assert!(matches!(next_event(&mut h), Event::Progress { .. }));
    h.input(Input::Abort {
        reason: "stop".into(),
    });
    let fail = copy_fail(h.drive_to_end());
    assert_eq!(fail.reason, "stop");
    assert_eq!(
        fail.receiver_fault(R0).unwrap().to_string(),
        "connection lost"
    );
    assert!(fail.receiver_fault(R1).is_none());
}

/// Seed `CopyFail.producer_fault`: the producer's exit (cancel) raises.
#[test]
fn cancel_error_is_the_producer_fault() {
    let (_, _, chunks) = source(10, 16);
    let producer = ScriptedProducer::pqv3(chunks).cancel_error("cancel refused");
    let mut h = Harness::new(producer, vec![ScriptedReceiver::pqv3()], 1, Schedule::Fifo);
    assert!(matches!(next_event(&mut h), Event::Progress { .. }));
    h.input(Input::Finish);
    let fail = copy_fail(h.drive_to_end());
    assert_eq!(fail.reason, "copy stopped before the producer's end");
    assert_eq!(fail.producer_fault.unwrap().to_string(), "cancel refused");
    assert!(fail.receiver_faults.is_empty());
}

/// Counts: a receiver's `COPY n` that differs from the producer's fails the copy, naming it.
#[test]
fn count_mismatch_fails_naming_the_receiver() {
    let (_, _, chunks) = source(10, 16);
    let receivers = vec![
        ScriptedReceiver::pqv3(),
        ScriptedReceiver::pqv3().count(Some(9)),
    ];
    let mut h = Harness::new(ScriptedProducer::pqv3(chunks), receivers, 1, Schedule::Fifo);
    let fail = copy_fail(h.drive_to_end());
    assert_eq!(fail.reason, "could not complete the COPY operation");
    assert_eq!(fail.receiver_faults.len(), 1);
    let error = fail.receiver_fault(R1).expect("receiver 1 is named");
    let mismatch = error
        .downcast_ref::<CountMismatch>()
        .expect("a count mismatch");
    assert_eq!(
        *mismatch,
        CountMismatch {
            producer: 10,
            receiver: 9
        }
    );
    assert!(
        fail.to_string().contains("receiver 1: row count mismatch"),
        "{fail}"
    );
}

/// A receiver that knows no count, or a producer that knows none, is not a mismatch.
#[test]
fn unknown_counts_are_not_a_mismatch() {
    let (_, _, chunks) = source(10, 16);
    let receivers = vec![
        ScriptedReceiver::pqv3().count(None),
        ScriptedReceiver::pqv3().count(Some(3)),
    ];
    let producer = ScriptedProducer::pqv3(chunks).count(None);
    let mut h = Harness::new(producer, receivers, 1, Schedule::Fifo);
    let summary = h.drive_to_end().expect("nothing to compare");
    assert_eq!(summary.producer_count, None);
}

/// Abort with a reason: the CopyFail and every receiver's CopyFail carry it.
#[test]
fn abort_fails_the_copy_with_the_reason() {
    for schedule in SCHEDULES {
        let (_, _, chunks) = source(20, 7);
        let receivers = vec![
            ScriptedReceiver::pqv3(),
            ScriptedReceiver::pqv3().fail_on(2, 6),
        ];
        let mut h = Harness::new(ScriptedProducer::pqv3(chunks), receivers, 3, schedule);
        loop {
            if let Event::ReceiverFault(_) = next_event(&mut h) {
                break;
            }
        }
        h.input(Input::Abort {
            reason: "operator said stop".into(),
        });
        // Asking twice is harmless: the first decision stands.
        h.input(Input::Finish);
        let fail = copy_fail(h.drive_to_end());
        assert_eq!(fail.reason, "operator said stop");
        assert_failed_on_boundary(&h, R0, "operator said stop");
        assert_failed_on_boundary(&h, R1, "operator said stop");
        assert_eq!(h.producer.cancels, 1);
    }
}

/// Abort at the very end (after the producer's end) still fails the copy, with no cancel.
#[test]
fn abort_after_the_producer_end_fails_without_cancel() {
    let (_, _, chunks) = source(5, 16);
    let mut h = Harness::new(
        ScriptedProducer::pqv3(chunks),
        vec![ScriptedReceiver::pqv3()],
        1,
        Schedule::Fifo,
    );
    loop {
        match h.drive() {
            Stop::EndOfCopy => break,
            Stop::Event(_) => {}
            other => panic!("{other:?}"),
        }
    }
    h.input(Input::Abort {
        reason: "changed my mind".into(),
    });
    let fail = copy_fail(h.drive_to_end());
    assert_eq!(fail.reason, "changed my mind");
    assert_eq!(h.producer.cancels, 0);
    assert_failed_on_boundary(&h, R0, "changed my mind");
}

// ---------------------------------------------------------------------------------------------
// Protocol transformations.

/// Seed `ChunkProtocol`: a PQv3 producer feeding a Chunks receiver (`CallReceiver`): the receiver
/// gets exactly the source's CopyData bodies as lines, whatever the chunking.
#[test]
fn pqv3_producer_to_chunks_receiver_gets_the_source_bodies() {
    for every in [1, 3, 5, 6, 64, 1000] {
        let (bodies, _, chunks) = source(17, every);
        let mut h = Harness::new(
            ScriptedProducer::pqv3(chunks),
            vec![ScriptedReceiver::chunks()],
            2,
            Schedule::Fifo,
        );
        assert!(h.manager.needs_source_frames());
        let summary = h.drive_to_end().expect("the copy succeeds");
        let expected: Vec<Bytes> = bodies.iter().map(|b| Bytes::copy_from_slice(b)).collect();
        assert_eq!(h.rx(R0).lines, expected, "chunks of {every}");
        assert_eq!(summary.messages, 17);
    }
}

/// A Chunks producer (`IteratorProducer`) feeding a PQv3 receiver: each transmit is whole frames,
/// and their payloads concatenate to the lines.
#[test]
fn chunks_producer_to_pqv3_receiver_gets_whole_frames() {
    let chunks: Vec<Vec<&[u8]>> = vec![
        vec![b"1\ta\n", b"2\tb\n"],
        vec![],
        vec![b"3\tc\n"],
        vec![b"4\td\n", b"5\te\n", b"6\tf\n"],
    ];
    let lines: Vec<u8> = chunks
        .iter()
        .flatten()
        .flat_map(|l| l.iter().copied())
        .collect();
    let mut h = Harness::new(
        ScriptedProducer::lines(&chunks),
        vec![ScriptedReceiver::pqv3()],
        1,
        Schedule::Fifo,
    );
    assert!(!h.manager.needs_source_frames());
    let summary = h.drive_to_end().expect("the copy succeeds");
    assert_eq!((summary.messages, summary.bytes), (6, lines.len() as u64));
    for data in &h.rx(R0).transmits {
        let Data::PQv3(bytes) = data else {
            panic!("{data:?}")
        };
        parse_frames(bytes).expect("each transmit is whole frames");
    }
    assert_eq!(payload(&h.rx(R0).wire), lines);
}

/// Null producer and receivers (the seed's `NullProducer` / `NullReceiver`).
#[test]
fn null_producer_and_receivers() {
    let receivers = vec![
        ScriptedReceiver::pqv3(),
        ScriptedReceiver::chunks(),
        ScriptedReceiver::null(),
    ];
    let mut h = Harness::new(ScriptedProducer::null(3), receivers, 1, Schedule::Fifo);
    let summary = h.drive_to_end().expect("the copy succeeds");
    assert_eq!((summary.messages, summary.bytes), (0, 0));
    assert!(h.rx(R0).wire.is_empty());
    assert_eq!(h.rx(R0).transmits.len(), 3);
    assert!(h.rx(R1).lines.is_empty());
    assert_eq!(h.rx(R1).transmits.len(), 3);
    assert_eq!(h.rx(R2).nulls, 3);

    let (_, _, chunks) = source(9, 10);
    let n = chunks.len();
    let mut h = Harness::new(
        ScriptedProducer::pqv3(chunks),
        vec![ScriptedReceiver::null()],
        1,
        Schedule::Eager,
    );
    let summary = h.drive_to_end().expect("the copy succeeds");
    assert_eq!(h.rx(R0).nulls, n);
    assert_eq!(summary.messages, 9);
}

/// Mixed receivers in one copy (PQv3, Chunks, Null): each gets its form; the transformation is
/// made once per protocol and shared (the same buffer goes to every receiver of a protocol).
#[test]
fn mixed_receivers_share_one_transformation() {
    // PQv3 producer.
    let (bodies, stream, chunks) = source(20, 9);
    let receivers = vec![
        ScriptedReceiver::pqv3(),
        ScriptedReceiver::pqv3(),
        ScriptedReceiver::chunks(),
        ScriptedReceiver::chunks(),
        ScriptedReceiver::null(),
    ];
    let mut h = Harness::new(
        ScriptedProducer::pqv3(chunks.clone()),
        receivers,
        2,
        Schedule::Random(3),
    );
    h.drive_to_end().expect("the copy succeeds");
    assert_eq!(h.rx(R0).wire, stream);
    assert_eq!(h.rx(R1).wire, stream);
    assert_eq!(h.rx(R2).lines.concat(), bodies.concat());
    assert_eq!(h.rx(R2).lines, h.rx(ReceiverId(3)).lines);
    assert_eq!(h.rx(ReceiverId(4)).nulls, chunks.len());
    for (i, chunk) in chunks.iter().enumerate() {
        for r in [R0, R1] {
            let Data::PQv3(bytes) = &h.rx(r).transmits[i] else {
                panic!()
            };
            assert_eq!(
                bytes.as_ptr(),
                chunk.as_ptr(),
                "PQv3 → PQv3 shares the producer's buffer"
            );
        }
        let (Data::Lines(a), Data::Lines(b)) =
            (&h.rx(R2).transmits[i], &h.rx(ReceiverId(3)).transmits[i])
        else {
            panic!()
        };
        assert!(Arc::ptr_eq(a, b), "the decoded lines are shared");
    }

    // Chunks producer: the PQv3 form is encoded once and shared.
    let chunks: Vec<Vec<Vec<u8>>> = (0..6)
        .map(|i| {
            rows(3)
                .into_iter()
                .map(|mut r| {
                    r.insert(0, b'a' + i as u8);
                    r
                })
                .collect()
        })
        .collect();
    let receivers = vec![
        ScriptedReceiver::pqv3(),
        ScriptedReceiver::pqv3(),
        ScriptedReceiver::chunks(),
    ];
    let mut h = Harness::new(
        ScriptedProducer::lines(&chunks),
        receivers,
        3,
        Schedule::Random(9),
    );
    h.drive_to_end().expect("the copy succeeds");
    assert_eq!(h.rx(R0).wire, h.rx(R1).wire);
    assert_eq!(payload(&h.rx(R0).wire), chunks.concat().concat());
    for i in 0..chunks.len() {
        let (Data::PQv3(a), Data::PQv3(b)) = (&h.rx(R0).transmits[i], &h.rx(R1).transmits[i])
        else {
            panic!()
        };
        assert_eq!(
            a.as_ptr(),
            b.as_ptr(),
            "cycle {i}: one encoding shared by both receivers"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Bounded buffering.

/// A receiver that never acknowledges applies backpressure: with window W the producer is read
/// at most W times ahead, then the manager waits; nothing is lost once it catches up.
#[test]
fn bounded_buffering_stops_reading_for_a_stuck_receiver() {
    for window in 1..=4 {
        for schedule in [Schedule::Fifo, Schedule::Random(5)] {
            let (_, stream, chunks) = source(40, 8);
            let receivers = vec![ScriptedReceiver::pqv3().hold(), ScriptedReceiver::pqv3()];
            let mut h = Harness::new(ScriptedProducer::pqv3(chunks), receivers, window, schedule);
            let stop = h.drive();
            assert!(
                matches!(stop, Stop::Stalled),
                "no cycle completes without receiver 0: {stop:?}"
            );
            // The manager only waits now: no read, receiver 0 holds W chunks, one being sent.
            assert!(matches!(h.manager.poll_output(), Output::Wait));
            assert_eq!(h.producer.reads, window);
            assert_eq!(h.manager.pending(R0), window);
            assert_eq!(h.manager.pending(R1), 0);
            assert!(matches!(h.outstanding(), [Order::Transmit(R0, _)]));
            h.release(R0);
            h.drive_to_end()
                .expect("the copy succeeds once receiver 0 catches up");
            assert_eq!(h.rx(R0).wire, stream);
            assert_eq!(h.rx(R1).wire, stream);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Realignment.

/// Seed "Realignment": a PQv3 stream forwarded raw, chunks split mid-frame; a receiver faults
/// partway through writing a chunk, then the copy is aborted. Its Fail carries the completion
/// that, after the bytes it did write, makes whole frames; so does every live receiver's.
#[test]
fn realignment_puts_every_failed_receiver_on_a_frame_boundary() {
    let (_, stream, chunks) = source(12, 7);
    for w in 0..=chunks[2].len() {
        for schedule in SCHEDULES {
            let receivers = vec![
                ScriptedReceiver::pqv3().fail_on(3, w),
                ScriptedReceiver::pqv3(),
            ];
            let mut h = Harness::new(
                ScriptedProducer::pqv3(chunks.clone()),
                receivers,
                1,
                schedule,
            );
            loop {
                if let Event::ReceiverFault(_) = next_event(&mut h) {
                    break;
                }
            }
            let written = 7 * 2 + w;
            assert_eq!(h.rx(R0).wire, stream[..written]);
            h.input(Input::Abort {
                reason: "abort".into(),
            });
            copy_fail(h.drive_to_end());
            for r in [R0, R1] {
                assert_failed_on_boundary(&h, r, "abort");
                let wire = &h.rx(r).wire;
                assert_eq!(
                    **wire,
                    stream[..wire.len()],
                    "receiver {r} got a prefix of the stream"
                );
            }
            // Receiver 0 stopped mid-frame unless it stopped exactly on a boundary.
            let on_boundary = parse_frames(&h.rx(R0).wire).is_ok();
            let (_, completion) = h.rx(R0).failed.clone().unwrap();
            assert_eq!(completion.is_empty(), on_boundary, "w = {w}");
        }
    }
}

/// Realignment after a reconciled receiver faults again: the completion follows the bytes that
/// really went out, across both partial writes.
#[test]
fn realignment_after_two_partial_writes_of_one_unit() {
    let (_, stream, chunks) = source(12, 23);
    let receivers = vec![ScriptedReceiver::pqv3().fail_on(2, 4).fail_on(3, 9)];
    let mut h = Harness::new(
        ScriptedProducer::pqv3(chunks.clone()),
        receivers,
        1,
        Schedule::Fifo,
    );
    assert!(matches!(next_event(&mut h), Event::Progress { .. }));
    assert!(matches!(next_event(&mut h), Event::ReceiverFault(_)));
    h.input(Input::Reconcile(R0));
    assert!(matches!(next_event(&mut h), Event::ReceiverFault(_)));
    assert_eq!(h.rx(R0).wire, stream[..23 + 4 + 9]);
    assert_eq!(h.manager.pending(R0), 1);
    h.input(Input::Finish);
    let fail = copy_fail(h.drive_to_end());
    assert_eq!(fail.reason, "no receivers");
    assert_failed_on_boundary(&h, R0, "no receivers");
}

// ---------------------------------------------------------------------------------------------
// Misuse.

/// Inputs that do not fit what the manager asked for are refused and change nothing.
#[test]
fn misuse_is_refused() {
    let mut manager = Manager::new(Protocol::PQv3, Config::default());
    let r = manager.add_receiver(Protocol::PQv3).unwrap();
    assert!(matches!(
        manager.handle_input(Input::Transmitted { receiver: r }),
        Err(ManagerError::Unexpected { .. })
    ));
    assert!(matches!(
        manager.handle_input(Input::ProducerData(Chunk::null())),
        Err(ManagerError::Unexpected { .. })
    ));
    assert!(matches!(manager.poll_output(), Output::ReadProducer));
    assert_eq!(
        manager.add_receiver(Protocol::PQv3),
        Err(ManagerError::Started)
    );
    // A stream holding something other than CopyData is the producer's fault.
    let bad = Bytes::from_static(b"d\0\0\0\x05xc\0\0\0\x04");
    manager
        .handle_input(Input::ProducerData(Chunk::pqv3(bad, 1, 1)))
        .unwrap();
    match manager.poll_output() {
        Output::Event(Event::ProducerFault(fault)) => {
            assert!(
                fault.error.to_string().contains("not CopyData"),
                "{}",
                fault.error
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(manager.totals(), (0, 0));
    assert_eq!(manager.pending(r), 0);
}

/// Reconciliation while a producer read is out (a concurrent adapter): the chunk that read
/// delivers goes to the reconciling receiver after what it owes, so it rejoins with nothing missed.
#[test]
fn reconcile_while_a_read_is_out_misses_nothing() {
    let (_, stream, chunks) = source(6, 15);
    let mut manager = Manager::new(Protocol::PQv3, Config::with_window(1));
    let r0 = manager.add_receiver(Protocol::PQv3).unwrap();
    let r1 = manager.add_receiver(Protocol::PQv3).unwrap();
    let mut wire = [Vec::new(), Vec::new()];
    let mut script = ScriptedProducer::pqv3(chunks).script;
    let mut next_chunk = || match script.pop_front() {
        Some(harness::Read::Chunk(chunk)) => Input::ProducerData(chunk),
        _ => Input::ProducerEnd { count: Some(6) },
    };

    assert!(matches!(manager.poll_output(), Output::ReadProducer));
    manager.handle_input(next_chunk()).unwrap();
    let Output::Transmit {
        receiver: R0,
        data: Data::PQv3(first),
    } = manager.poll_output()
    else {
        panic!()
    };
    assert!(matches!(
        manager.poll_output(),
        Output::Transmit { receiver: R1, .. }
    ));
    // Receiver 0 writes 4 bytes and fails; receiver 1 transmits.
    wire[0].extend_from_slice(&first[..4]);
    wire[1].extend_from_slice(&first);
    let error = "timeout".into();
    manager
        .handle_input(Input::ReceiverError {
            receiver: r0,
            error,
            written: 4,
        })
        .unwrap();
    manager
        .handle_input(Input::Transmitted { receiver: r1 })
        .unwrap();
    assert!(matches!(
        manager.poll_output(),
        Output::Event(Event::ReceiverFault(_))
    ));
    // The copy goes on with receiver 1: a read goes out, and receiver 0 is reconciled meanwhile.
    assert!(matches!(manager.poll_output(), Output::ReadProducer));
    manager.handle_input(Input::Reconcile(r0)).unwrap();
    manager.handle_input(next_chunk()).unwrap();

    let mut reconciled = false;
    let summary = loop {
        match manager.poll_output() {
            Output::ReadProducer => manager.handle_input(next_chunk()).unwrap(),
            Output::Transmit {
                receiver,
                data: Data::PQv3(bytes),
            } => {
                wire[receiver.0].extend_from_slice(&bytes);
                manager
                    .handle_input(Input::Transmitted { receiver })
                    .unwrap();
            }
            Output::Complete { receiver } => {
                let result = Ok(Some(6));
                manager
                    .handle_input(Input::ReceiverDone { receiver, result })
                    .unwrap();
            }
            Output::Event(Event::Reconciled(r)) => {
                assert_eq!(r, r0);
                reconciled = true;
            }
            Output::Event(Event::Progress { .. }) => {}
            Output::Event(Event::Finished(result)) => break result.expect("the copy succeeds"),
            Output::EndOfCopy => manager.handle_input(Input::Finish).unwrap(),
            other => panic!("{other:?}"),
        }
    };
    assert!(reconciled);
    assert!(matches!(
        summary.receivers[0].1,
        ReceiverOutcome::Completed(Some(6))
    ));
    assert_eq!(
        wire[0], stream,
        "the reconciled receiver got every byte, once, in order"
    );
    assert_eq!(wire[1], stream);
}

/// A producer chunk the manager cannot use (a message that is not CopyData in a PQv3 stream,
/// which the producer should have cut before) is a ProducerFault; its data went nowhere, so the
/// copy must not then complete as if whole — whatever protocols the receivers speak.
#[test]
fn malformed_producer_chunk_never_completes_a_partial_copy() {
    let bodies = rows(4);
    let good = frames(&bodies[..2]);
    let mut bad = frames(&bodies[2..3]);
    bad.extend_from_slice(b"c\0\0\0\x04");
    let rest = frames(&bodies[3..]);
    // An empty read after the bad chunk, then the rest.
    let chunks = vec![
        Bytes::from(good),
        Bytes::from(bad),
        Bytes::new(),
        Bytes::from(rest),
    ];
    let setups: [fn() -> Vec<ScriptedReceiver>; 3] = [
        || vec![ScriptedReceiver::pqv3()],
        || vec![ScriptedReceiver::chunks()],
        || {
            vec![
                ScriptedReceiver::pqv3(),
                ScriptedReceiver::chunks(),
                ScriptedReceiver::null(),
            ]
        },
    ];
    for receivers in setups {
        let receivers = receivers();
        let n = receivers.len();
        let producer = ScriptedProducer::pqv3(chunks.clone()).count(None);
        let mut h = Harness::new(producer, receivers, 1, Schedule::Fifo);
        let mut producer_faults = 0;
        let result = loop {
            match h.drive() {
                Stop::Event(Event::ProducerFault(fault)) => {
                    producer_faults += 1;
                    assert!(
                        fault.error.to_string().contains("not CopyData"),
                        "{}",
                        fault.error
                    );
                }
                Stop::Event(Event::Finished(result)) => break result,
                Stop::Event(_) => {}
                Stop::EndOfCopy => h.input(Input::Finish),
                other => panic!("{other:?}"),
            }
        };
        assert!(
            producer_faults >= 1,
            "{n} receivers: the bad chunk was not reported"
        );
        let fail = copy_fail(result);
        assert_eq!(fail.reason, "the producer's data could not be copied");
        assert!(fail.producer_fault.is_some());
        for r in 0..n {
            assert_failed_on_boundary(&h, ReceiverId(r), "the producer's data could not be copied");
        }
    }
}

/// An abort while a producer read is out (a stdin that gives nothing): the IO layer may leave the
/// read ([`Manager::abandons_read`]), and the copy ends without waiting for it, failing every
/// receiver, cancelling the producer and blaming no producer fault. While receivers copy, a read
/// out is not to be left.
#[test]
fn an_abort_may_leave_the_read_that_is_out() {
    let mut manager = Manager::new(Protocol::Chunks, Config::default());
    let r0 = manager.add_receiver(Protocol::PQv3).unwrap();
    assert!(matches!(manager.poll_output(), Output::ReadProducer));
    manager
        .handle_input(Input::ProducerData(Chunk::lines(vec![Bytes::from_static(
            b"bad\n",
        )])))
        .unwrap();
    assert!(matches!(
        manager.poll_output(),
        Output::Transmit { receiver: R0, .. }
    ));
    manager
        .handle_input(Input::Transmitted { receiver: r0 })
        .unwrap();
    assert!(matches!(manager.poll_output(), Output::Event(_)));
    assert!(matches!(manager.poll_output(), Output::ReadProducer));
    assert!(!manager.abandons_read(), "not while copying");
    assert!(manager.handle_input(Input::ReadAbandoned).is_err());
    // The server said row 1 is bad: no receiver is left to take the read's data.
    manager
        .handle_input(Input::ReceiverError {
            receiver: r0,
            error: "22P02".into(),
            written: 0,
        })
        .unwrap();
    assert!(manager.abandons_read(), "no receiver is left");
    // The caller aborts.
    manager
        .handle_input(Input::Abort {
            reason: "destination 1 failed".to_owned(),
        })
        .unwrap();
    let mut left = false;
    let fail = loop {
        match manager.poll_output() {
            Output::Wait => {
                assert!(manager.abandons_read());
                manager.handle_input(Input::ReadAbandoned).unwrap();
                left = true;
            }
            Output::Fail { receiver, .. } => manager
                .handle_input(Input::ReceiverDone {
                    receiver,
                    result: Ok(None),
                })
                .unwrap(),
            Output::CancelProducer => manager
                .handle_input(Input::ProducerDone { result: Ok(()) })
                .unwrap(),
            Output::Event(Event::Finished(result)) => break copy_fail(result),
            Output::Event(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(left, "the read was left");
    assert_eq!(&*fail.reason, "destination 1 failed");
    assert!(fail.producer_fault.is_none());
}
