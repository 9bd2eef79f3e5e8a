//! Property tests of the [`Manager`] over random copies: random CopyData streams split anywhere,
//! 1–4 receivers of any protocol, random windows, receiver faults (mid-write), reconcile
//! attempts, producer faults, early stops and IO completion orders.

mod harness;

use bytes::Bytes;
use copyman_core::manager::{Event, Input, ManagerError, Protocol, ReceiverId, ReceiverOutcome};
use harness::{
    Harness, Schedule, ScriptedProducer, ScriptedReceiver, Stop, frames, parse_frames, split,
};
use proptest::prelude::*;

const ABORT: &str = "prop abort";

#[derive(Debug, Clone)]
struct ReceiverPlan {
    protocol: Protocol,
    /// Fail the k-th transmit after w bytes; then try to reconcile right away or not.
    faults: Vec<(usize, usize, bool)>,
}

#[derive(Debug, Clone)]
struct Scenario {
    bodies: Vec<Vec<u8>>,
    /// Split points, modulo the stream's length + 1.
    cuts: Vec<usize>,
    receivers: Vec<ReceiverPlan>,
    window: usize,
    producer_errors: Vec<usize>,
    /// After this many events, stop the copy: Abort (true) or Finish (false).
    stop: Option<(usize, bool)>,
    schedule: Schedule,
}

fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![4 => Just(Protocol::PQv3), 2 => Just(Protocol::Chunks), 1 => Just(Protocol::Null)]
}

fn receiver_plan() -> impl Strategy<Value = ReceiverPlan> {
    let faults = prop::collection::vec((1..10usize, 0..60usize, any::<bool>()), 0..3);
    (protocol(), faults).prop_map(|(protocol, faults)| ReceiverPlan { protocol, faults })
}

fn schedule() -> impl Strategy<Value = Schedule> {
    prop_oneof![
        Just(Schedule::Eager),
        Just(Schedule::Fifo),
        any::<u64>().prop_map(Schedule::Random)
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..50), 0..12),
        prop::collection::vec(0..600usize, 0..10),
        prop::collection::vec(receiver_plan(), 1..=4),
        1..=4usize,
        prop::collection::vec(0..14usize, 0..3),
        prop::option::of((0..24usize, any::<bool>())),
        schedule(),
    )
        .prop_map(
            |(bodies, cuts, receivers, window, producer_errors, stop, schedule)| Scenario {
                bodies,
                cuts,
                receivers,
                window,
                producer_errors,
                stop,
                schedule,
            },
        )
}

/// Runs a scenario to its end, checking every property; `Err` describes a violation.
fn run(s: &Scenario) -> Result<(), TestCaseError> {
    let stream = frames(&s.bodies);
    let cuts: Vec<usize> = s.cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    let chunks = split(&stream, &cuts);
    let mut producer = ScriptedProducer::pqv3(chunks);
    for &at in &s.producer_errors {
        producer = producer.error_at(at, "producer hiccup");
    }
    let receivers = s
        .receivers
        .iter()
        .map(|plan| {
            plan.faults
                .iter()
                .fold(ScriptedReceiver::new(plan.protocol), |rx, &(k, w, _)| {
                    rx.fail_on(k, w)
                })
        })
        .collect();
    let mut h = Harness::new(producer, receivers, s.window, s.schedule);

    let mut faults_seen = vec![0usize; s.receivers.len()];
    let mut reconciled = vec![false; s.receivers.len()];
    let mut any_fault = false;
    let mut events = 0;
    let mut stopped: Option<bool> = None;
    let result = loop {
        if let Some((at, abort)) = s.stop {
            if stopped.is_none() && events >= at {
                stopped = Some(abort);
                h.input(if abort {
                    Input::Abort {
                        reason: ABORT.into(),
                    }
                } else {
                    Input::Finish
                });
            }
        }
        match h.drive() {
            Stop::Event(Event::Finished(result)) => break result,
            Stop::Event(Event::ReceiverFault(fault)) => {
                events += 1;
                any_fault = true;
                for (r, _) in &fault.faults {
                    let nth = faults_seen[r.0];
                    faults_seen[r.0] += 1;
                    // The fault scripted for this receiver's nth failure says whether to retry.
                    let mut scripted: Vec<_> = s.receivers[r.0].faults.clone();
                    scripted.sort_by_key(|f| f.0);
                    scripted.dedup_by_key(|f| f.0);
                    let retry = scripted.get(nth).is_some_and(|f| f.2);
                    if !retry {
                        continue;
                    }
                    match h.manager.handle_input(Input::Reconcile(*r)) {
                        Ok(()) => reconciled[r.0] = true,
                        Err(ManagerError::MissedData { receiver, missed }) => {
                            prop_assert_eq!(receiver, *r);
                            prop_assert!(missed > 0);
                        }
                        Err(ManagerError::Unexpected { .. }) if stopped.is_some() => {}
                        Err(other) => prop_assert!(false, "reconcile of {} refused: {}", r, other),
                    }
                }
            }
            Stop::Event(Event::Reconciled(r)) => {
                events += 1;
                prop_assert!(reconciled[r.0], "receiver {} rejoined unasked", r);
            }
            Stop::Event(_) => events += 1,
            Stop::EndOfCopy => {
                if stopped.is_none() {
                    stopped = Some(false);
                    h.input(Input::Finish);
                }
            }
            Stop::Done => prop_assert!(false, "Done before Finished"),
            Stop::Stalled => prop_assert!(false, "stalled with {:?}", h.outstanding()),
        }
    };
    if std::env::var_os("HARNESS_LOG").is_some() {
        for line in &h.log {
            eprintln!("{line:?}");
        }
    }
    // (1) The run ends in Finished, then only Done.
    h.assert_done();
    let delivered = h.producer.delivered_totals();
    match &result {
        Ok(summary) => {
            prop_assert!(h.producer.ended);
            prop_assert_ne!(stopped, Some(true), "an aborted copy succeeded");
            prop_assert_eq!(summary.receivers.len(), s.receivers.len());
            for (id, outcome) in &summary.receivers {
                let completed = h.rx(*id).completed.is_some();
                prop_assert_eq!(matches!(outcome, ReceiverOutcome::Completed(_)), completed);
            }
            prop_assert!(
                summary
                    .receivers
                    .iter()
                    .any(|(_, o)| matches!(o, ReceiverOutcome::Completed(_)))
            );
        }
        Err(fail) => {
            let reasons: &[&str] = match stopped {
                Some(true) => &[ABORT, "no receivers"],
                _ => &["no receivers", "copy stopped before the producer's end"],
            };
            prop_assert!(
                reasons.contains(&fail.reason.as_str()),
                "reason {:?}",
                fail.reason
            );
            prop_assert!(fail.receiver_faults.is_empty());
        }
    }
    // Progress never over-reports, and adds up exactly when no fault displaced a report.
    let sum = h
        .progress()
        .iter()
        .fold((0, 0), |(m, b), (pm, pb)| (m + pm, b + pb));
    prop_assert!(sum.0 <= delivered.0 && sum.1 <= delivered.1);
    if result.is_ok() && !any_fault {
        prop_assert_eq!(sum, delivered);
    }

    // (2), (3) What each receiver got.
    let lines: Vec<Bytes> = s.bodies.iter().map(|b| Bytes::copy_from_slice(b)).collect();
    for (i, rx) in h.receivers.iter().enumerate() {
        let r = ReceiverId(i);
        let finished_as = (rx.completed.is_some(), rx.failed.is_some());
        prop_assert!(
            finished_as == (true, false) || finished_as == (false, true),
            "receiver {}",
            r
        );
        match rx.protocol {
            Protocol::PQv3 => {
                prop_assert!(
                    stream.starts_with(&rx.wire),
                    "receiver {} got bytes off the stream",
                    r
                );
                if rx.completed.is_some() {
                    prop_assert_eq!(
                        &rx.wire,
                        &stream,
                        "receiver {} (reconciled: {})",
                        r,
                        reconciled[i]
                    );
                } else {
                    let wire = rx.wire_at_fail();
                    let parsed = parse_frames(&wire);
                    prop_assert!(
                        parsed.is_ok(),
                        "receiver {} left off a frame: {:?}",
                        r,
                        parsed.err()
                    );
                }
            }
            Protocol::Chunks => {
                prop_assert!(
                    lines.starts_with(&rx.lines),
                    "receiver {} got lines off the stream",
                    r
                );
                if rx.completed.is_some() {
                    prop_assert_eq!(
                        &rx.lines,
                        &lines,
                        "receiver {} (reconciled: {})",
                        r,
                        reconciled[i]
                    );
                }
            }
            _ => {}
        }
        if rx.completed.is_some() {
            prop_assert!(
                h.producer.ended,
                "(4) receiver {} completed before the producer's end",
                r
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_copies_end_cleanly_and_lose_nothing(s in scenario()) {
        run(&s)?;
    }
}


#[test]
fn debug_repro() {
    let s = Scenario {
        bodies: vec![vec![]],
        cuts: vec![0, 0, 0],
        receivers: vec![
            ReceiverPlan { protocol: Protocol::PQv3, faults: vec![] },
            ReceiverPlan { protocol: Protocol::PQv3, faults: vec![] },
            ReceiverPlan { protocol: Protocol::PQv3, faults: vec![] },
            ReceiverPlan { protocol: Protocol::PQv3, faults: vec![(2, 0, true), (3, 0, true)] },
        ],
        window: 3,
        producer_errors: vec![],
        stop: None,
        schedule: Schedule::Random(3204641489083599540),
    };
    run(&s).unwrap();
}
