//! Outcomes and policy in the manager (issue 13, point 6): every receiver's outcome in a
//! `CopyFail` as in a `Summary`, the keep-going policy, and the row-count check as an option.

// The harness serves several test binaries; this one uses a part of it.
#[allow(dead_code)]
mod harness;

use bytes::Bytes;
use copyman_core::manager::{Config, Input, ReceiverId, ReceiverOutcome};
use copyman_core::{CopyFail, CountMismatch, EndOfDataMarker, Fault, Summary};
use harness::{Harness, Schedule, ScriptedProducer, ScriptedReceiver, Stop, frames, split};

const R0: ReceiverId = ReceiverId(0);
const R1: ReceiverId = ReceiverId(1);
const R2: ReceiverId = ReceiverId(2);

/// A PQv3 source of `n` rows in chunks of 13 bytes.
fn chunks(n: usize) -> Vec<Bytes> {
    let bodies: Vec<Vec<u8>> = (0..n).map(|i| format!("{i}\tx\n").into_bytes()).collect();
    let stream = frames(&bodies);
    let cuts: Vec<usize> = (13..stream.len()).step_by(13).collect();
    split(&stream, &cuts)
}

fn failed(result: Result<Summary, CopyFail>) -> CopyFail {
    result.expect_err("the copy fails")
}

/// A copy that fails at its end says what became of every receiver: the ones whose COPY
/// completed (committed outside a transaction), the one that refused, and the producer's end.
#[test]
fn copy_fail_carries_each_receivers_outcome() {
    let receivers = vec![
        ScriptedReceiver::pqv3(),
        ScriptedReceiver::pqv3().complete_error("deferred constraint violated"),
        ScriptedReceiver::pqv3(),
    ];
    let mut h = Harness::new(
        ScriptedProducer::pqv3(chunks(40)),
        receivers,
        2,
        Schedule::Fifo,
    );
    let fail = failed(h.drive_to_end());
    assert!(fail.producer_ended);
    assert_eq!(fail.producer_count, Some(40));
    assert_eq!(fail.receivers.len(), 3);
    assert!(matches!(
        fail.receivers[0],
        (R0, ReceiverOutcome::Completed(Some(40)))
    ));
    assert!(
        matches!(&fail.receivers[1], (R1, ReceiverOutcome::Failed(e)) if e.to_string().contains("deferred")),
        "{:?}",
        fail.receivers[1]
    );
    assert!(matches!(
        fail.receivers[2],
        (R2, ReceiverOutcome::Completed(Some(40)))
    ));
    assert!(
        fail.any_completed(),
        "never \"nothing committed\" when something was"
    );
}

/// An aborted copy fails every receiver's COPY: those that did nothing wrong are `Dropped`, the
/// faulted one carries its error.
#[test]
fn aborted_copy_reports_dropped_and_faulted_receivers() {
    let receivers = vec![
        ScriptedReceiver::pqv3(),
        ScriptedReceiver::pqv3().fail_on(1, 0),
    ];
    let mut h = Harness::new(
        ScriptedProducer::pqv3(chunks(40)),
        receivers,
        1,
        Schedule::Fifo,
    );
    let fault = loop {
        match h.drive() {
            Stop::Event(copyman_core::Event::ReceiverFault(fault)) => break fault,
            Stop::Event(_) => {}
            other => panic!("no fault: {other:?}"),
        }
    };
    // Without keep-going a receiver fault ends a copy run to its end.
    assert!(h.manager.ends_copy(&Fault::Receiver(fault)));
    h.input(Input::Abort {
        reason: "destination 2 failed".into(),
    });
    let fail = failed(h.drive_to_end());
    assert!(!fail.producer_ended);
    assert!(matches!(fail.receivers[0], (R0, ReceiverOutcome::Dropped)));
    assert!(matches!(
        fail.receivers[1],
        (R1, ReceiverOutcome::Faulted(_))
    ));
    assert!(!fail.any_completed());
}

/// Keep-going is the manager's policy: a receiver fault does not end the copy, the survivors
/// complete, and the summary says which receiver faulted.
#[test]
fn keep_going_lets_the_survivors_complete() {
    let receivers = vec![
        ScriptedReceiver::pqv3(),
        ScriptedReceiver::pqv3().fail_on(2, 3),
        ScriptedReceiver::pqv3(),
    ];
    let config = Config::with_window(1).with_keep_going(true);
    let mut h = Harness::with_config(
        ScriptedProducer::pqv3(chunks(40)),
        receivers,
        config,
        Schedule::Fifo,
    );
    let mut faults = 0;
    let summary = loop {
        match h.drive() {
            Stop::Event(copyman_core::Event::ReceiverFault(fault)) => {
                assert!(!h.manager.ends_copy(&Fault::Receiver(fault)));
                faults += 1;
            }
            Stop::Event(copyman_core::Event::Finished(result)) => break result,
            Stop::Event(_) => {}
            Stop::EndOfCopy => h.input(Input::Finish),
            other => panic!("{other:?}"),
        }
    }
    .expect("the survivors complete");
    assert_eq!(faults, 1);
    assert!(matches!(
        summary.receivers[0],
        (R0, ReceiverOutcome::Completed(Some(40)))
    ));
    assert!(matches!(
        summary.receivers[1],
        (R1, ReceiverOutcome::Faulted(_))
    ));
    assert!(matches!(
        summary.receivers[2],
        (R2, ReceiverOutcome::Completed(Some(40)))
    ));
}

/// The row-count check is a manager option (`--allow-count-mismatch` turns it off): off, a
/// receiver that stored another number of rows completes and the summary has its count; on,
/// the copy fails with the mismatch.
#[test]
fn count_check_is_a_manager_option() {
    let run = |check: bool| {
        let receivers = vec![
            ScriptedReceiver::pqv3().count(Some(39)),
            ScriptedReceiver::pqv3(),
        ];
        let config = Config::with_window(2).with_check_counts(check);
        Harness::with_config(
            ScriptedProducer::pqv3(chunks(40)),
            receivers,
            config,
            Schedule::Eager,
        )
        .drive_to_end()
    };
    let summary = run(false).expect("counts are the caller's to compare");
    assert!(matches!(
        summary.receivers[0],
        (R0, ReceiverOutcome::Completed(Some(39)))
    ));
    assert_eq!(summary.producer_count, Some(40));
    let fail = failed(run(true));
    let error = fail.receiver_fault(R0).expect("the mismatch");
    assert_eq!(
        error.downcast_ref::<CountMismatch>(),
        Some(&CountMismatch {
            producer: 40,
            receiver: 39
        })
    );
    // Its COPY did complete, miscounted: the outcome says so under either policy (it said
    // `Completed`, as if nothing were wrong with it), and so does the failure's text.
    assert!(matches!(
        fail.receivers[0],
        (R0, ReceiverOutcome::Miscounted(Some(39), _))
    ));
    assert!(fail.receivers[0].1.is_completed());
    let said = fail.to_string();
    assert!(
        said.contains("receiver 0: row count mismatch")
            && said.contains("the COPYs of receivers 0, 1 completed all the same: committed there"),
        "{said}"
    );
}

/// Every receiver faulted mid-copy: the failure's text names each one's error (it said only
/// "no receivers", the errors left in the outcomes).
#[test]
fn a_copy_whose_receivers_all_faulted_says_why() {
    let receivers = vec![ScriptedReceiver::pqv3().fail_on(1, 0)];
    let result = Harness::with_config(
        ScriptedProducer::pqv3(chunks(4)),
        receivers,
        Config::with_window(2).with_keep_going(true),
        Schedule::Eager,
    )
    .drive_to_end();
    let fail = failed(result);
    assert_eq!(fail.reason, "no receivers");
    let said = fail.to_string();
    assert!(
        said.starts_with("no receivers; receiver 0 faulted: "),
        "{said}"
    );
}

/// Under keep-going a receiver that stored another number of rows is one more casualty, not
/// the copy's failure: it is `Miscounted` (its rows are in, the caller rolls them back), the
/// others complete.
#[test]
fn keep_going_makes_a_miscounted_receiver_a_casualty() {
    let receivers = vec![
        ScriptedReceiver::pqv3().count(Some(39)),
        ScriptedReceiver::pqv3(),
    ];
    let config = Config::with_window(2).with_keep_going(true);
    let summary = Harness::with_config(
        ScriptedProducer::pqv3(chunks(40)),
        receivers,
        config,
        Schedule::Eager,
    )
    .drive_to_end()
    .expect("the other receiver's COPY stands");
    let (_, outcome) = &summary.receivers[0];
    let ReceiverOutcome::Miscounted(Some(39), error) = outcome else {
        panic!("receiver 0 miscounted, got {outcome:?}");
    };
    assert_eq!(
        error.downcast_ref::<CountMismatch>(),
        Some(&CountMismatch {
            producer: 40,
            receiver: 39
        })
    );
    assert!(outcome.is_completed() && !outcome.is_success());
    assert!(matches!(
        summary.receivers[1],
        (R1, ReceiverOutcome::Completed(Some(40)))
    ));
}

/// Without a producer count (a file), receivers that disagree fail the copy under either
/// policy: nothing says which is right. Receivers that agree complete.
#[test]
fn without_a_producer_count_receivers_must_agree() {
    let run = |counts: [u64; 2], keep_going: bool| {
        let mut producer = ScriptedProducer::pqv3(chunks(40));
        producer.count = None;
        let receivers = counts
            .iter()
            .map(|&n| ScriptedReceiver::pqv3().count(Some(n)))
            .collect();
        let config = Config::with_window(2).with_keep_going(keep_going);
        Harness::with_config(producer, receivers, config, Schedule::Eager).drive_to_end()
    };
    for keep_going in [false, true] {
        let fail = failed(run([40, 39], keep_going));
        for receiver in [R0, R1] {
            let error = fail.receiver_fault(receiver).expect("both are named");
            let disagree = error
                .downcast_ref::<copyman_core::CountsDisagree>()
                .expect("a disagreement");
            assert_eq!(disagree.counts, [(R0, 40), (R1, 39)]);
            assert!(
                error.to_string().contains("receiver 1 stored 39"),
                "{error}"
            );
        }
        // Their COPYs did complete: outside a transaction their rows are in.
        assert!(fail.any_completed());
        let summary = run([40, 40], keep_going).expect("counts that agree");
        assert!(summary.receivers.iter().all(|(_, o)| o.is_success()));
    }
}

/// A copy that succeeded without a receiver that faulted during it says so in one call.
#[test]
fn a_summary_tells_whether_every_receiver_completed() {
    let run = |faulting: bool| {
        let second = if faulting {
            ScriptedReceiver::pqv3().fail_on(1, 0)
        } else {
            ScriptedReceiver::pqv3()
        };
        Harness::with_config(
            ScriptedProducer::pqv3(chunks(4)),
            vec![ScriptedReceiver::pqv3(), second],
            Config::with_window(2).with_keep_going(true),
            Schedule::Eager,
        )
        .drive_to_end()
        .expect("the other receiver completes")
    };
    assert!(run(false).all_completed());
    let summary = run(true);
    assert!(!summary.all_completed(), "{summary:?}");
    assert!(matches!(
        summary.receivers[1].1,
        ReceiverOutcome::Faulted(_)
    ));
}

/// A chunk producer whose data holds a line that is exactly `\.` with rows after it: the
/// receivers' servers would stop there and drop the rest, reporting success. The copy fails
/// instead, naming the line; a marker as the very last line is the data's own end, and passes.
#[test]
fn an_end_of_data_marker_before_the_end_fails_the_copy() {
    let run = |chunks: &[Vec<&str>]| {
        Harness::with_config(
            ScriptedProducer::lines(chunks),
            vec![ScriptedReceiver::pqv3()],
            Config::with_window(2),
            Schedule::Eager,
        )
        .drive_to_end()
    };
    // The marker and the rows after it in one chunk, or split across two.
    for chunks in [
        vec![vec!["1\ta\n", "2\tb\n", "\\.\n", "3\tc\n"]],
        vec![vec!["1\ta\n", "2\tb\n", "\\.\n"], vec!["3\tc\n", "4\td\n"]],
    ] {
        let fail = failed(run(&chunks));
        let error = fail.producer_fault.as_ref().expect("the producer's fault");
        assert_eq!(
            error.downcast_ref::<EndOfDataMarker>(),
            Some(&EndOfDataMarker { line: 3 }),
            "{fail}"
        );
        assert!(!fail.any_completed(), "{fail}");
    }
    assert!(run(&[vec!["1\ta\n", "2\tb\n", "\\.\n"]]).is_ok());
    // A value ending in a backslash is no marker.
    assert!(run(&[vec!["1\ta\\\\.\n", "2\tb\n"]]).is_ok());
}
