//! The commit machine, deterministically: scripted results for every step, and properties over
//! every pattern of failures.

use copyman_core::commit::{
    Action, Commit, Failure, Options, Outcome, Party, Policy, Recovery, SourceOutcome, Step,
    parse_gid, recovery,
};
use proptest::prelude::*;

/// What a scripted party answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Ok,
    Refused,
    Lost,
    Emptied,
}

/// Runs a commit to its end; `answer` decides each step's result; `record` whether the decision
/// is recorded. Returns every step taken and the report.
fn run(
    options: Options,
    completed: &[bool],
    mut answer: impl FnMut(Party, &Action) -> Answer,
    record: bool,
) -> (Vec<Step>, copyman_core::commit::Report<String>) {
    let mut commit = Commit::new(options, completed);
    let mut steps = Vec::new();
    while let Some(step) = commit.poll_step() {
        assert!(
            steps.len() < 10 * completed.len() + 10,
            "the commit never ends"
        );
        steps.push(step.clone());
        match step {
            Step::Run { party, action } => {
                let result = match answer(party, &action) {
                    Answer::Ok => Ok(()),
                    Answer::Refused => Err(Failure::Refused(format!("{party:?} refused"))),
                    Answer::Lost => Err(Failure::Lost(format!("{party:?} lost"))),
                    Answer::Emptied => Err(Failure::Emptied(format!("{party:?} emptied"))),
                };
                commit.handle_result(result);
            }
            Step::Record(_) => commit.handle_recorded(if record {
                Ok(())
            } else {
                Err("the disk is full".to_owned())
            }),
            Step::RecordAbort(_)
            | Step::RecordOut { .. }
            | Step::RecordCommitting { .. }
            | Step::RecordRefused { .. } => {}
            _ => unreachable!(),
        }
    }
    (steps, commit.outcome())
}

fn runs(steps: &[Step]) -> Vec<(Party, String)> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Run { party, action } => Some((*party, action.sql())),
            _ => None,
        })
        .collect()
}

fn d(n: usize) -> Party {
    Party::Destination(n)
}

#[test]
fn every_destination_checks_then_commits_in_order() {
    let (steps, report) = run(
        Options::default(),
        &[true, true, true],
        |_, _| Answer::Ok,
        true,
    );
    let sql: Vec<_> = runs(&steps);
    assert_eq!(
        sql,
        vec![
            (d(0), "SET CONSTRAINTS ALL IMMEDIATE".to_owned()),
            (d(1), "SET CONSTRAINTS ALL IMMEDIATE".to_owned()),
            (d(2), "SET CONSTRAINTS ALL IMMEDIATE".to_owned()),
            (d(0), "COMMIT".to_owned()),
            (d(1), "COMMIT".to_owned()),
            (d(2), "COMMIT".to_owned()),
        ]
    );
    assert!(report.succeeded());
    assert!(!report.partial());
}

#[test]
fn a_failed_commit_stops_the_rest_and_says_who_committed() {
    let (steps, report) = run(
        Options::default(),
        &[true, true, true],
        |p, a| {
            if p == d(1) && *a == Action::Commit {
                Answer::Refused
            } else {
                Answer::Ok
            }
        },
        true,
    );
    let sql = runs(&steps);
    assert_eq!(
        sql[3..],
        [
            (d(0), "COMMIT".to_owned()),
            (d(1), "COMMIT".to_owned()),
            (d(2), "ROLLBACK".to_owned()),
        ]
    );
    assert_eq!(report.destinations[0], Outcome::Committed);
    assert_eq!(
        report.destinations[1],
        Outcome::Failed(Some("Destination(1) refused".to_owned()))
    );
    assert_eq!(report.destinations[2], Outcome::RolledBack);
    assert!(report.partial());
    assert!(!report.nothing_committed());
}

#[test]
fn a_commit_whose_connection_broke_is_in_doubt() {
    let (_, report) = run(
        Options::default(),
        &[true, true],
        |p, a| {
            if p == d(0) && *a == Action::Commit {
                Answer::Lost
            } else {
                Answer::Ok
            }
        },
        true,
    );
    assert_eq!(report.destinations[0].name(), "in doubt");
    assert_eq!(report.destinations[1], Outcome::RolledBack);
    // The rows may be on destination 1: never "nothing committed".
    assert!(!report.nothing_committed());
}

#[test]
fn a_failed_check_rolls_everything_back_before_any_commit() {
    let (steps, report) = run(
        Options::default(),
        &[true, true],
        |p, a| {
            if p == d(1) && *a == Action::CheckConstraints {
                Answer::Refused
            } else {
                Answer::Ok
            }
        },
        true,
    );
    assert!(!runs(&steps).iter().any(|(_, sql)| sql == "COMMIT"));
    assert!(report.nothing_committed());
    assert_eq!(report.destinations[0], Outcome::RolledBack);
    assert!(matches!(report.destinations[1], Outcome::Failed(Some(_))));
    // The failed one's aborted transaction is ended too.
    assert_eq!(runs(&steps).last(), Some(&(d(1), "ROLLBACK".to_owned())));
}

#[test]
fn keep_going_commits_the_survivors() {
    let options = Options::new(Policy::KeepGoing);
    let (steps, report) = run(
        options,
        &[true, false, true],
        |p, a| {
            if p == d(0) && *a == Action::Commit {
                Answer::Refused
            } else {
                Answer::Ok
            }
        },
        true,
    );
    assert_eq!(report.destinations[0].name(), "failed");
    assert_eq!(report.destinations[1], Outcome::Failed(None));
    assert_eq!(report.destinations[2], Outcome::Committed);
    assert!(runs(&steps).contains(&(d(1), "ROLLBACK".to_owned())));
}

#[test]
fn a_failed_copy_only_rolls_back() {
    let options = Options {
        copy_failed: true,
        source: true,
        ..Options::default()
    };
    let (steps, report) = run(options, &[true, false], |_, _| Answer::Ok, true);
    assert_eq!(
        runs(&steps),
        vec![
            (d(0), "ROLLBACK".to_owned()),
            (d(1), "ROLLBACK".to_owned()),
            (Party::Source, "ROLLBACK".to_owned()),
        ]
    );
    assert!(report.nothing_committed());
    assert_eq!(report.source, Some(SourceOutcome::RolledBack));
}

#[test]
fn the_source_commits_last_and_only_after_every_destination() {
    let options = Options {
        source: true,
        ..Options::default()
    };
    let (steps, report) = run(options.clone(), &[true, true], |_, _| Answer::Ok, true);
    assert_eq!(
        runs(&steps).last(),
        Some(&(Party::Source, "COMMIT".to_owned()))
    );
    assert_eq!(report.source, Some(SourceOutcome::Committed));

    let (steps, report) = run(
        options,
        &[true, true],
        |p, a| {
            if p == d(1) && *a == Action::Commit {
                Answer::Refused
            } else {
                Answer::Ok
            }
        },
        true,
    );
    assert_eq!(
        runs(&steps).last(),
        Some(&(Party::Source, "ROLLBACK".to_owned()))
    );
    assert_eq!(report.source, Some(SourceOutcome::RolledBack));
}

/// A source whose COMMIT was sent and not answered (its connection lost) may have committed: in
/// doubt, not "did not commit" — a move's DELETE said undone was committed, and a user undoing
/// the move on the destinations would lose the rows everywhere. One refused did not commit.
#[test]
fn a_source_commit_lost_in_flight_is_in_doubt_and_a_refused_one_failed() {
    let options = Options {
        source: true,
        ..Options::default()
    };
    for (answer, in_doubt) in [(Answer::Lost, true), (Answer::Refused, false)] {
        let (_, report) = run(
            options.clone(),
            &[true, true],
            |p, a| {
                if p == Party::Source && *a == Action::Commit {
                    answer
                } else {
                    Answer::Ok
                }
            },
            true,
        );
        assert_eq!(
            matches!(report.source, Some(SourceOutcome::InDoubt(_))),
            in_doubt,
            "{report:?}"
        );
        assert_eq!(
            matches!(report.source, Some(SourceOutcome::CommitFailed(_))),
            !in_doubt,
            "{report:?}"
        );
        assert!(report.partial() && !report.succeeded());
    }
}

#[test]
fn a_source_that_may_have_written_is_checked_before_the_first_commit() {
    let options = Options {
        source: true,
        ..Options::default()
    };
    let (steps, report) = run(options, &[true, true], |_, _| Answer::Ok, true);
    let check = "SET CONSTRAINTS ALL IMMEDIATE".to_owned();
    assert_eq!(
        runs(&steps),
        vec![
            (d(0), check.clone()),
            (d(1), check.clone()),
            (Party::Source, check),
            (d(0), "COMMIT".to_owned()),
            (d(1), "COMMIT".to_owned()),
            (Party::Source, "COMMIT".to_owned()),
        ]
    );
    assert!(report.succeeded());
}

#[test]
fn a_failed_source_check_rolls_every_destination_back() {
    for two_phase in [None, Some("r".to_owned())] {
        let options = Options {
            source: true,
            two_phase: two_phase.clone(),
            ..Options::default()
        };
        let (steps, report) = run(
            options,
            &[true, true],
            |p, a| {
                if p == Party::Source && *a == Action::CheckConstraints {
                    Answer::Refused
                } else {
                    Answer::Ok
                }
            },
            true,
        );
        let sql = runs(&steps);
        assert!(!steps.iter().any(|s| matches!(s, Step::Record(_))));
        assert!(!sql.iter().any(|(_, s)| s.starts_with("COMMIT")), "{sql:?}");
        assert_eq!(sql.last(), Some(&(Party::Source, "ROLLBACK".to_owned())));
        assert!(report.nothing_committed());
        assert_eq!(
            report.source,
            Some(SourceOutcome::CheckFailed("Source refused".to_owned()))
        );
        if two_phase.is_some() {
            assert!(sql.contains(&(d(1), "ROLLBACK PREPARED 'copyman:r:2'".to_owned())));
        }
    }
}

#[test]
fn a_source_that_wrote_nothing_is_not_checked_and_its_failed_commit_changes_nothing() {
    let options = Options {
        source: true,
        source_read_only: true,
        ..Options::default()
    };
    let (steps, report) = run(
        options,
        &[true, true],
        |p, _| {
            if p == Party::Source {
                Answer::Lost
            } else {
                Answer::Ok
            }
        },
        true,
    );
    assert_eq!(
        runs(&steps)
            .iter()
            .filter(|(p, _)| *p == Party::Source)
            .count(),
        1,
        "only the source's COMMIT"
    );
    assert_eq!(
        report.source,
        Some(SourceOutcome::WroteNothing(Some("Source lost".to_owned())))
    );
    assert!(report.succeeded());
    assert!(!report.partial());
}

#[test]
fn two_phase_a_source_that_can_prepare_is_a_participant() {
    let options = Options {
        two_phase: Some("r".to_owned()),
        source: true,
        source_two_phase: true,
        ..Options::default()
    };
    let (steps, report) = run(options.clone(), &[true], |_, _| Answer::Ok, true);
    let kinds: Vec<String> = steps
        .iter()
        .map(|s| match s {
            Step::Run { party, action } => format!("{party:?} {}", action.sql()),
            Step::Record(decision) => format!("record {decision:?}"),
            Step::RecordAbort(run) => format!("abort {run}"),
            Step::RecordCommitting { gid, .. } => format!("committing {gid}"),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "Destination(0) SET CONSTRAINTS ALL IMMEDIATE",
            "Destination(0) PREPARE TRANSACTION 'copyman:r:1'",
            "Source PREPARE TRANSACTION 'copyman:r:0'",
            "record Decision { run: \"r\", gids: [(0, \"copyman:r:1\")], source: Some(\"copyman:r:0\") }",
            // Each COMMIT PREPARED recorded as sent, before it is.
            "committing copyman:r:1",
            "Destination(0) COMMIT PREPARED 'copyman:r:1'",
            "committing copyman:r:0",
            "Source COMMIT PREPARED 'copyman:r:0'",
        ]
    );
    assert!(report.succeeded());

    // Its COMMIT PREPARED unconfirmed: pending, for recovery, and the run did not succeed.
    let (_, report) = run(
        options.clone(),
        &[true],
        |p, a| {
            if p == Party::Source && matches!(a, Action::CommitPrepared(_)) {
                Answer::Lost
            } else {
                Answer::Ok
            }
        },
        true,
    );
    assert_eq!(
        report.source,
        Some(SourceOutcome::CommitPending {
            gid: "copyman:r:0".to_owned(),
            error: "Source lost".to_owned()
        })
    );
    assert!(!report.succeeded());

    // Its PREPARE lost: it may be prepared; nothing is decided, everything rolls back, it too,
    // prepared, on a new session (recheck70 F14: left prepared for recover); its failure is
    // why.
    let (steps, report) = run(
        options.clone(),
        &[true],
        |p, a| {
            if p == Party::Source && matches!(a, Action::Prepare(_)) {
                Answer::Lost
            } else {
                Answer::Ok
            }
        },
        true,
    );
    assert!(!steps.iter().any(|s| matches!(s, Step::Record(_))));
    assert!(report.nothing_committed());
    assert_eq!(
        runs(&steps).last(),
        Some(&(Party::Source, "ROLLBACK PREPARED 'copyman:r:0'".to_owned()))
    );
    assert_eq!(
        report.source,
        Some(SourceOutcome::CheckFailed("Source lost".to_owned()))
    );
    // Its ROLLBACK PREPARED lost in turn: pending, for recovery.
    let (_, report) = run(
        options.clone(),
        &[true],
        |p, a| match (p, a) {
            (Party::Source, Action::Prepare(_) | Action::RollbackPrepared(_)) => Answer::Lost,
            _ => Answer::Ok,
        },
        true,
    );
    assert!(matches!(
        report.source,
        Some(SourceOutcome::RollbackPending { .. })
    ));

    // The decision not recorded: the prepared source is rolled back prepared.
    let (steps, report) = run(options, &[true], |_, _| Answer::Ok, false);
    assert_eq!(
        runs(&steps).last(),
        Some(&(Party::Source, "ROLLBACK PREPARED 'copyman:r:0'".to_owned()))
    );
    assert_eq!(report.source, Some(SourceOutcome::RolledBack));
    assert!(report.nothing_committed());
}

#[test]
fn two_phase_prepares_records_then_commits_prepared() {
    let options = Options {
        two_phase: Some("run-1".to_owned()),
        ..Options::default()
    };
    let (steps, report) = run(options, &[true, true], |_, _| Answer::Ok, true);
    let kinds: Vec<String> = steps
        .iter()
        .map(|s| match s {
            Step::Run { party, action } => format!("{party:?} {}", action.sql()),
            Step::Record(decision) => format!("record {decision:?}"),
            Step::RecordAbort(run) => format!("abort {run}"),
            Step::RecordCommitting { gid, .. } => format!("committing {gid}"),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "Destination(0) SET CONSTRAINTS ALL IMMEDIATE",
            "Destination(1) SET CONSTRAINTS ALL IMMEDIATE",
            "Destination(0) PREPARE TRANSACTION 'copyman:run-1:1'",
            "Destination(1) PREPARE TRANSACTION 'copyman:run-1:2'",
            "record Decision { run: \"run-1\", gids: [(0, \"copyman:run-1:1\"), (1, \"copyman:run-1:2\")], source: None }",
            "committing copyman:run-1:1",
            "Destination(0) COMMIT PREPARED 'copyman:run-1:1'",
            "committing copyman:run-1:2",
            "Destination(1) COMMIT PREPARED 'copyman:run-1:2'",
        ]
    );
    assert!(report.succeeded());
}

/// A `COMMIT PREPARED` the server refuses (the transaction gone: a `ROLLBACK PREPARED` by
/// hand ended it) did not run: said to the log after it, so that a recovery does not take the
/// `committing` line before it for a commit (commit66 F7); one whose answer was lost may have
/// run, and is not said so.
#[test]
fn two_phase_a_refused_commit_prepared_is_recorded_refused() {
    let options = Options {
        two_phase: Some("r".to_owned()),
        ..Options::default()
    };
    for (answer, said) in [(Answer::Refused, true), (Answer::Lost, false)] {
        let (steps, _) = run(
            options.clone(),
            &[true, true],
            |p, a| match (p == d(0), a) {
                (true, Action::CommitPrepared(_)) => answer,
                _ => Answer::Ok,
            },
            true,
        );
        let at = |wanted: &dyn Fn(&Step) -> bool| steps.iter().position(wanted);
        let sent = at(
            &|s| matches!(s, Step::Run { party, action: Action::CommitPrepared(_) } if *party == d(0)),
        );
        let refused = at(
            &|s| matches!(s, Step::RecordRefused { run, gid } if run == "r" && gid == "copyman:r:1"),
        );
        match said {
            true => assert!(refused.is_some() && refused > sent, "{steps:?}"),
            false => assert_eq!(refused, None, "{steps:?}"),
        }
        // The others commit all the same.
        assert!(runs(&steps).contains(&(d(1), "COMMIT PREPARED 'copyman:r:2'".to_owned())));
    }
}

#[test]
fn two_phase_a_refused_prepare_rolls_every_prepared_one_back() {
    let options = Options {
        two_phase: Some("r".to_owned()),
        ..Options::default()
    };
    let (steps, report) = run(
        options,
        &[true, true, true],
        |p, a| {
            if p == d(1) && matches!(a, Action::Prepare(_)) {
                Answer::Refused
            } else {
                Answer::Ok
            }
        },
        true,
    );
    assert!(!steps.iter().any(|s| matches!(s, Step::Record(_))));
    let sql = runs(&steps);
    assert!(sql.contains(&(d(0), "ROLLBACK PREPARED 'copyman:r:1'".to_owned())));
    assert!(sql.contains(&(d(2), "ROLLBACK".to_owned())));
    assert!(!sql.iter().any(|(_, s)| s.starts_with("COMMIT")));
    assert!(report.nothing_committed());
}

/// A `PREPARE` whose answer was lost may have prepared: the rollback sends `ROLLBACK PREPARED`
/// for it (a driver carries it out on a new session) like for those prepared, and once that is
/// done it simply failed, nothing left for recovery; unconfirmed, recovery rolls it back.
#[test]
fn two_phase_a_lost_prepare_is_rolled_back_prepared_too() {
    let options = || Options {
        two_phase: Some("r".to_owned()),
        ..Options::default()
    };
    for rollback in [Answer::Ok, Answer::Refused] {
        let (steps, report) = run(
            options(),
            &[true, true, true],
            |p, a| match a {
                Action::Prepare(_) if p == d(1) => Answer::Lost,
                Action::RollbackPrepared(_) if p == d(1) => rollback,
                _ => Answer::Ok,
            },
            true,
        );
        assert!(!steps.iter().any(|s| matches!(s, Step::Record(_))));
        let sql = runs(&steps);
        assert!(sql.contains(&(d(0), "ROLLBACK PREPARED 'copyman:r:1'".to_owned())));
        assert!(sql.contains(&(d(1), "ROLLBACK PREPARED 'copyman:r:2'".to_owned())));
        assert!(sql.contains(&(d(2), "ROLLBACK".to_owned())));
        assert!(report.nothing_committed());
        let lost = Some("Destination(1) lost".to_owned());
        if rollback == Answer::Ok {
            assert_eq!(report.destinations[1], Outcome::Failed(lost));
        } else {
            assert_eq!(
                report.destinations[1],
                Outcome::RollbackPending {
                    gid: "copyman:r:2".to_owned(),
                    error: lost
                }
            );
        }
    }
}

#[test]
fn two_phase_an_unrecorded_decision_commits_nothing() {
    let options = Options {
        two_phase: Some("r".to_owned()),
        ..Options::default()
    };
    let (steps, report) = run(options, &[true, true], |_, _| Answer::Ok, false);
    let sql = runs(&steps);
    assert!(sql.contains(&(d(0), "ROLLBACK PREPARED 'copyman:r:1'".to_owned())));
    assert!(sql.contains(&(d(1), "ROLLBACK PREPARED 'copyman:r:2'".to_owned())));
    assert!(report.nothing_committed());
    assert_eq!(report.record_error.as_deref(), Some("the disk is full"));
}

#[test]
fn two_phase_a_lost_commit_prepared_is_pending_and_the_rest_still_commit() {
    let options = Options {
        two_phase: Some("r".to_owned()),
        ..Options::default()
    };
    let (_, report) = run(
        options,
        &[true, true, true],
        |p, a| {
            if p == d(0) && matches!(a, Action::CommitPrepared(_)) {
                Answer::Lost
            } else {
                Answer::Ok
            }
        },
        true,
    );
    assert!(matches!(
        &report.destinations[0],
        Outcome::CommitPending { gid, .. } if gid == "copyman:r:1"
    ));
    assert_eq!(report.destinations[1], Outcome::Committed);
    assert_eq!(report.destinations[2], Outcome::Committed);
    assert!(report.partial());
}

/// A COMMIT PREPARED that took effect with nothing of its rows left (a crash since the PREPARE
/// emptied the UNLOGGED tables it wrote): failed, nothing left for recovery, the rest commit.
#[test]
fn two_phase_a_commit_prepared_a_crash_emptied_has_failed_and_the_rest_still_commit() {
    let options = Options {
        two_phase: Some("r".to_owned()),
        ..Options::default()
    };
    let (steps, report) = run(
        options,
        &[true, true],
        |p, a| {
            if p == d(0) && matches!(a, Action::CommitPrepared(_)) {
                Answer::Emptied
            } else {
                Answer::Ok
            }
        },
        true,
    );
    assert_eq!(
        report.destinations[0],
        Outcome::Failed(Some("Destination(0) emptied".to_owned()))
    );
    assert_eq!(report.destinations[1], Outcome::Committed);
    assert!(report.partial() && !report.nothing_committed());
    assert!(
        !runs(&steps)
            .iter()
            .any(|(_, sql)| sql.starts_with("ROLLBACK"))
    );
}

#[test]
fn gids_parse_and_recovery_never_touches_foreign_ones() {
    assert_eq!(parse_gid("copyman:abc-1:3"), Some(("abc-1", d(2))));
    assert_eq!(parse_gid("copyman:abc:0"), Some(("abc", Party::Source)));
    assert_eq!(parse_gid("copyman:a b:1"), None);
    assert_eq!(parse_gid("other:abc:1"), None);
    // Its number as copyman writes it: no leading zero, no sign (recheck69 F7).
    assert_eq!(parse_gid("copyman:abc:01"), None);
    assert_eq!(parse_gid("copyman:abc:+1"), None);
    let logged = |run: &str| run == "x";
    assert_eq!(recovery("pgbouncer-1", |_| true, logged), Recovery::NotOurs);
    assert_eq!(
        recovery("copyman:x:1", |_| false, logged),
        Recovery::Rollback
    );
    assert_eq!(
        recovery("copyman:x:1", |g| g == "copyman:x:1", logged),
        Recovery::Commit
    );
    // Another run's: this is not its log.
    assert_eq!(
        recovery("copyman:y:1", |_| false, logged),
        Recovery::UnknownRun
    );
    assert_eq!(Commit::<()>::gid("x", 0), "copyman:x:1");
}

fn answer_strategy() -> impl Strategy<Value = Answer> {
    prop_oneof![
        6 => Just(Answer::Ok),
        1 => Just(Answer::Refused),
        1 => Just(Answer::Lost),
    ]
}

proptest! {
    /// Whatever fails where: every destination settles, the source commits only after every
    /// destination committed, nothing is committed after a failure under all-or-nothing, and two
    /// phases commit nothing before a recorded decision naming every prepared destination.
    #[test]
    fn the_promise_holds_whatever_fails(
        completed in proptest::collection::vec(proptest::bool::weighted(0.85), 1..5),
        answers in proptest::collection::vec(answer_strategy(), 40),
        keep_going: bool,
        two_phase: bool,
        source: bool,
        source_read_only: bool,
        source_two_phase: bool,
        copy_failed in proptest::bool::weighted(0.2),
        record: bool,
    ) {
        let options = Options {
            policy: if keep_going { Policy::KeepGoing } else { Policy::AllOrNothing },
            two_phase: two_phase.then(|| "p".to_owned()),
            source,
            source_read_only,
            source_two_phase,
            copy_failed,
        };
        let mut i = 0;
        let (steps, report) = run(options, &completed, |_, _| {
            i += 1;
            answers[(i - 1) % answers.len()]
        }, record);
        let n = completed.len();
        prop_assert_eq!(report.destinations.len(), n);

        // A destination whose copy failed never commits.
        for (k, ok) in completed.iter().enumerate() {
            if !ok {
                prop_assert_eq!(&report.destinations[k], &Outcome::Failed(None));
            }
        }
        let commits: Vec<usize> = steps.iter().filter_map(|s| match s {
            Step::Run { party: Party::Destination(k), action: Action::Commit | Action::CommitPrepared(_) } => Some(*k),
            _ => None,
        }).collect();
        if copy_failed {
            prop_assert!(commits.is_empty());
            prop_assert!(report.nothing_committed());
        }
        // The source commits only when every destination committed, or, prepared, under the
        // recorded decision once every destination prepared: never rows on neither side.
        let source_prepared = steps.iter().any(|s| matches!(s, Step::Run { party: Party::Source, action: Action::CommitPrepared(_) | Action::RollbackPrepared(_) }));
        match &report.source {
            Some(SourceOutcome::Committed | SourceOutcome::CommitFailed(_) | SourceOutcome::InDoubt(_)) if !source_prepared => {
                prop_assert!(report.destinations.iter().all(Outcome::is_committed));
            }
            Some(SourceOutcome::Committed) | Some(SourceOutcome::CommitPending { .. }) => {
                prop_assert!(record && steps.iter().any(|s| matches!(s, Step::Record(d) if d.source.is_some())));
                prop_assert!(report.destinations.iter().all(Outcome::may_hold_rows), "{:?}", report);
            }
            _ => {}
        }
        if source_prepared {
            prop_assert!(two_phase && source_two_phase && source && !source_read_only);
        }
        prop_assert_eq!(report.source.is_some(), source);
        // A source that may have written is checked before anything is committed or decided,
        // and a failed check commits nothing.
        if source && !source_read_only {
            let checked = steps.iter().position(|s| matches!(s, Step::Run { party: Party::Source, action: Action::CheckConstraints | Action::Prepare(_) }));
            let decided = steps.iter().position(|s| matches!(s, Step::Record(_) | Step::Run { party: Party::Destination(_), action: Action::Commit | Action::CommitPrepared(_) }));
            if let Some(decided) = decided {
                prop_assert!(checked.is_some_and(|c| c < decided), "{:?}", steps);
            }
        }
        if matches!(report.source, Some(SourceOutcome::CheckFailed(_))) {
            prop_assert!(commits.is_empty());
            prop_assert!(report.nothing_committed());
        }
        // Only a source that wrote nothing ends as such, and it never makes a run partial.
        prop_assert_eq!(
            matches!(report.source, Some(SourceOutcome::WroteNothing(_))),
            source && source_read_only && report.destinations.iter().all(Outcome::is_committed)
        );
        if two_phase {
            // No COMMIT PREPARED before the decision, which names every prepared destination.
            let record_at = steps.iter().position(|s| matches!(s, Step::Record(_)));
            let first_commit = steps.iter().position(|s| matches!(s, Step::Run { action: Action::CommitPrepared(_), .. }));
            if let Some(c) = first_commit {
                let r = record_at.expect("a commit needs a recorded decision");
                prop_assert!(r < c);
                prop_assert!(record);
            }
            let plain_commit = steps.iter().any(|s| matches!(s, Step::Run { action: Action::Commit, party: Party::Destination(_) }));
            prop_assert!(!plain_commit);
            if !keep_going && report.destinations.iter().any(|o| matches!(o, Outcome::Committed | Outcome::CommitPending { .. })) {
                // All or nothing: every destination that completed its copy prepared and is
                // committed or pending.
                for (k, ok) in completed.iter().enumerate() {
                    if *ok {
                        prop_assert!(report.destinations[k].may_hold_rows(), "{:?}", report);
                    }
                }
            }
        } else if !keep_going {
            // One COMMIT after another, and none after the first that failed.
            for w in commits.windows(2) {
                prop_assert!(w[0] < w[1]);
            }
            let failed_commit = commits.iter().position(|&k| !report.destinations[k].is_committed());
            if let Some(f) = failed_commit {
                prop_assert_eq!(f, commits.len() - 1);
            }
            let not_committed = report.destinations.iter().filter(|o| !o.is_committed()).count();
            if not_committed > 0 {
                // At most one destination is in doubt or failed at COMMIT; committed ones are
                // exactly those commits that came before it.
                prop_assert!(report.destinations.iter().filter(|o| matches!(o, Outcome::InDoubt(_))).count() <= 1);
            }
        }
    }
}

#[test]
fn a_rollback_is_due_only_where_a_transaction_is_open() {
    use copyman_core::session::TransactionStatus;
    // A failed PREPARE TRANSACTION (or COMMIT) ended the transaction: a ROLLBACK then would only
    // make the server warn "there is no transaction in progress" (25P01).
    assert!(!Action::Rollback.is_due(TransactionStatus::Idle));
    assert!(Action::Rollback.is_due(TransactionStatus::InTransaction));
    assert!(Action::Rollback.is_due(TransactionStatus::Failed));
    // Every other action is the server's to answer, whatever the status.
    for status in [
        TransactionStatus::Idle,
        TransactionStatus::InTransaction,
        TransactionStatus::Failed,
    ] {
        for action in [
            Action::CheckConstraints,
            Action::Commit,
            Action::Prepare("copyman:r:1".into()),
            Action::CommitPrepared("copyman:r:1".into()),
            Action::RollbackPrepared("copyman:r:1".into()),
        ] {
            assert!(action.is_due(status), "{action:?} in {status:?}");
        }
    }
}

#[test]
fn a_lost_commit_is_committed_only_when_the_server_said_it_committed_locally() {
    use copyman_core::session::DbError;
    // What PostgreSQL's syncrep.c sends before a terminated backend closes its connection.
    let mut terminated = DbError::new(
        "WARNING",
        "57P01",
        "canceling the wait for synchronous replication and terminating connection due to \
         administrator command",
    );
    terminated.detail = Some(
        "The transaction has already committed locally, but might not have been replicated to \
         the standby."
            .into(),
    );
    // The same under another lc_messages: only the routine's name is not translated.
    let mut translated = DbError::new("WARNUNG", "57P01", "breche Warten ab");
    translated.routine = Some("SyncRepWaitForLSN".into());
    let unrelated = DbError::new("NOTICE", "00000", "something else");

    for said in [&terminated, &translated] {
        let notices = [unrelated.clone(), said.clone()];
        assert!(Action::Commit.committed_despite_loss(&notices));
        assert!(Action::CommitPrepared("copyman:r:1".into()).committed_despite_loss(&notices));
        // A PREPARE waits for the standby too, but a prepared transaction is not committed.
        assert!(!Action::Prepare("copyman:r:1".into()).committed_despite_loss(&notices));
        assert!(!Action::Rollback.committed_despite_loss(&notices));
    }
    assert!(!Action::Commit.committed_despite_loss(&[unrelated]));
    assert!(!Action::Commit.committed_despite_loss(&[]));
}

proptest! {
    /// A two-phase run records its abort once, before its first ROLLBACK PREPARED (and never
    /// after a recorded decision), whatever fails: a recovery finding it half rolled back then
    /// knows which way it went.
    #[test]
    fn an_abort_is_recorded_before_the_first_rollback_prepared(
        answers in proptest::collection::vec(0u8..3, 40),
        completed in proptest::collection::vec(any::<bool>(), 1..4),
        record in any::<bool>(),
    ) {
        let options = Options {
            two_phase: Some("r".to_owned()),
            ..Options::default()
        };
        let mut i = 0;
        let (steps, _) = run(options, &completed, |_, _| {
            i += 1;
            match answers[i % answers.len()] {
                0 | 1 => Answer::Ok,
                _ if i % 2 == 0 => Answer::Refused,
                _ => Answer::Lost,
            }
        }, record);
        let aborts: Vec<usize> = steps.iter().enumerate()
            .filter(|(_, s)| matches!(s, Step::RecordAbort(run) if run == "r"))
            .map(|(k, _)| k)
            .collect();
        let first_rollback = steps.iter().position(|s| matches!(
            s, Step::Run { action: Action::RollbackPrepared(_), .. }
        ));
        match first_rollback {
            Some(k) => prop_assert!(aborts == vec![k - 1], "{steps:?}"),
            None => prop_assert!(aborts.is_empty(), "{steps:?}"),
        }
        let decided = steps.iter().any(|s| matches!(s, Step::Record(_))) && record;
        prop_assert!(!decided || aborts.is_empty(), "{steps:?}");
    }
}

/// Under keep-going, a destination that failed is said to be out before any PREPARE above it:
/// a recovery of a run that died then finds the gap explained, not a transaction that ended.
#[test]
fn keep_going_two_phase_records_the_failed_ones_out_before_preparing_past_them() {
    let options = Options {
        two_phase: Some("r".to_owned()),
        policy: Policy::KeepGoing,
        ..Options::default()
    };
    // Destination 2's copy failed (copyman:r:2); destination 3's PREPARE (copyman:r:3) is refused.
    let (steps, report) = run(
        options,
        &[true, false, true, true, true],
        |p, a| {
            if p == d(2) && matches!(a, Action::Prepare(_)) {
                Answer::Refused
            } else {
                Answer::Ok
            }
        },
        true,
    );
    let kinds: Vec<String> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Run {
                action: Action::Prepare(gid),
                ..
            } => Some(format!("prepare {gid}")),
            Step::RecordOut { run, gids } => Some(format!("out {run} {}", gids.join(" "))),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "prepare copyman:r:1",
            "out r copyman:r:2",
            "prepare copyman:r:3",
            "out r copyman:r:3",
            "prepare copyman:r:4",
            "prepare copyman:r:5",
        ]
    );
    assert!(report.partial());
    // All or nothing never prepares past a failure: nothing to say.
    let (steps, _) = run(
        Options {
            two_phase: Some("r".to_owned()),
            ..Options::default()
        },
        &[true, true, true],
        |p, a| {
            if p == d(0) && matches!(a, Action::Prepare(_)) {
                Answer::Refused
            } else {
                Answer::Ok
            }
        },
        true,
    );
    assert!(!steps.iter().any(|s| matches!(s, Step::RecordOut { .. })));
}

/// Under keep-going, a destination whose PREPARE's answer was lost (it may be prepared) and one
/// that failed after the last PREPARE are said to be out before the decision, which leaves them
/// out: a recovery that finds the first prepared rolls it back, not "a log that contradicts
/// itself" (commit50 F1: left holding its locks, to be ended by hand).
#[test]
fn keep_going_two_phase_records_out_what_the_decision_leaves_out() {
    let options = Options {
        two_phase: Some("r".to_owned()),
        policy: Policy::KeepGoing,
        ..Options::default()
    };
    // Destination 2's PREPARE is lost with its connection; destination 4's copy failed.
    let (steps, report) = run(
        options,
        &[true, true, true, false],
        |p, a| match (p, a) {
            (p, Action::Prepare(_)) if p == d(1) => Answer::Lost,
            _ => Answer::Ok,
        },
        true,
    );
    let kinds: Vec<String> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Run {
                action: Action::Prepare(gid),
                ..
            } => Some(format!("prepare {gid}")),
            Step::RecordOut { run, gids } => Some(format!("out {run} {}", gids.join(" "))),
            Step::Record(decision) => Some(format!("decide {}", decision.gids.len())),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "prepare copyman:r:1",
            "prepare copyman:r:2",
            "prepare copyman:r:3",
            "out r copyman:r:2 copyman:r:4",
            "decide 2",
        ]
    );
    // What it may have prepared is rolled back once the others committed, not left for
    // recovery holding its locks (recheck71 F3); no abort is recorded of a run that decided.
    let runs = runs(&steps);
    let at = |sql: &str| runs.iter().position(|(_, s)| s == sql);
    assert!(
        at("ROLLBACK PREPARED 'copyman:r:2'") > at("COMMIT PREPARED 'copyman:r:3'")
            && at("COMMIT PREPARED 'copyman:r:3'").is_some(),
        "{runs:?}"
    );
    assert!(!steps.iter().any(|s| matches!(s, Step::RecordAbort(_))));
    assert_eq!(
        report.destinations[1],
        Outcome::Failed(Some("Destination(1) lost".to_owned()))
    );
    assert!(report.destinations[0].is_committed() && report.destinations[2].is_committed());
}

proptest! {
    /// Under keep-going two-phase commit, whatever fails: before each PREPARE every destination
    /// below it that is not prepared (and not maybe prepared: a PREPARE whose answer was lost)
    /// was recorded out, and no destination recorded out is ever prepared.
    #[test]
    fn keep_going_prepares_no_gap_unrecorded(
        answers in proptest::collection::vec(0u8..3, 40),
        completed in proptest::collection::vec(any::<bool>(), 1..6),
        record in any::<bool>(),
    ) {
        let options = Options {
            two_phase: Some("r".to_owned()),
            policy: Policy::KeepGoing,
            ..Options::default()
        };
        let mut i = 0;
        let mut sent: Vec<(Party, Action, Answer)> = Vec::new();
        let (steps, _) = run(options, &completed, |p, a| {
            i += 1;
            let answer = match answers[i % answers.len()] {
                0 | 1 => Answer::Ok,
                _ if i % 2 == 0 => Answer::Refused,
                _ => Answer::Lost,
            };
            sent.push((p, a.clone(), answer));
            answer
        }, record);
        let mut out: Vec<String> = Vec::new();
        // Destinations whose PREPARE was sent, and how it was answered.
        let mut prepared: Vec<(usize, Answer)> = Vec::new();
        let mut answers = sent.into_iter();
        for step in &steps {
            match step {
                Step::RecordOut { run, gids } => {
                    prop_assert_eq!(run, "r");
                    out.extend(gids.iter().cloned());
                }
                Step::Run { party, action } => {
                    let (_, _, answer) = answers.next().expect("answered");
                    if let (Party::Destination(n), Action::Prepare(gid)) = (party, action) {
                        prop_assert!(!out.contains(gid), "{gid} prepared after out: {steps:?}");
                        for k in 0..*n {
                            let maybe = prepared
                                .iter()
                                .any(|(m, a)| *m == k && *a != Answer::Refused);
                            let gid = format!("copyman:r:{}", k + 1);
                            prop_assert!(
                                maybe || out.contains(&gid),
                                "{gid} neither prepared nor out before {action:?}: {steps:?}"
                            );
                        }
                        prepared.push((*n, answer));
                    }
                }
                _ => {}
            }
        }
    }
}
