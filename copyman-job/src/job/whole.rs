//! A table copied whole ([`copy_whole`]): one `COPY … TO STDOUT` in the job's snapshot fanned
//! out to every destination that needs it, each in a transaction of its own (the table emptied
//! first where planned), its row counts checked, its sequences carried, then one commit.

use std::time::Instant;

use copyman_sync::{Receiver, StatementProducer, StatementReceiver};

use super::drive::{Driven, drive};
use super::error::{
    TableError, commit_pending, describe, mismatch, refused, rollback_pending, unrecorded,
};
use super::planning::{DestPlan, TablePlan};
use super::report::{Event, Side, Status, TableReport};
use super::running::{
    JOB_STOPPED, OTHER_FAILED, Shared, begin_destination, begin_source, carry, commit_live,
    done_earlier, files_unchanged, record_committed, report_targets, unstarted,
};
use super::sessions::{Conns, backend_pid, end, ensure, position};
#[cfg(doc)]
use super::verify::verify_done;
use super::verify::{checksum, verify_dest};
use crate::commit::{self, Outcome, Policy};
use crate::resume;
use crate::sequences::Carrier;

/// Copies one table (not split) to every destination that needs it; `sum_out` gets the source's
/// checksum under verify (in the copy's transaction), for [`verify_done`] too.
pub(super) fn copy_whole(
    shared: &Shared<'_>,
    worker: usize,
    t: &TablePlan,
    conns: &mut Conns,
    sum_out: &mut Option<String>,
) -> TableReport {
    let started = Instant::now();
    let options = shared.options;
    let key = t.table.to_string();
    let mut report = unstarted(t);
    let mut targets: Vec<usize> = t
        .destinations
        .iter()
        .enumerate()
        .filter(|(_, d)| matches!(d, DestPlan::Copy { .. }))
        .map(|(i, _)| i)
        .collect();
    for &d in &targets {
        report.destinations[d].status = Status::RolledBack;
    }
    if !shared.referenced_committed(t, &mut targets, &mut report) {
        return report;
    }
    shared.lock_order(&mut targets);
    let fail_all = |report: &mut TableReport, targets: &[usize], error: &TableError| {
        for &d in targets {
            report.destinations[d].fail(Status::Failed, error.clone());
        }
    };

    let mut attempt = 0;
    let (source_rows, completed) = loop {
        attempt += 1;
        // The source, in the snapshot.
        let source = match ensure(&mut conns.source, shared.source) {
            Ok(conn) => conn,
            Err(e) => {
                fail_all(&mut report, &targets, &e.prefixed("source: "));
                return report;
            }
        };
        shared.announce(worker, &t.table, Side::Source, source);
        shared.stall_guard(source, true);
        if let Err(e) = begin_source(shared, source, shared.plan.snapshot.as_deref(), &[t]) {
            end(Some(source));
            fail_all(&mut report, &targets, &e.prefixed("source: "));
            return report;
        }
        // The destinations, each in its transaction (truncated first where planned).
        let mut live = Vec::new();
        for &d in &targets {
            let DestPlan::Copy {
                truncate,
                ref kind,
                quiet_delete,
                ..
            } = t.destinations[d]
            else {
                continue;
            };
            let at = match position(&mut conns.dests[d], &shared.destinations[d]) {
                Ok(at) => at,
                Err(e) => {
                    report.destinations[d].fail(Status::Failed, e);
                    continue;
                }
            };
            if let Err(e) = shared.state.begin_at(&[&key], &shared.plan.keys[d], at) {
                report.destinations[d]
                    .fail(Status::Failed, TableError::new(format!("state file: {e}")));
                continue;
            }
            let begun = ensure(&mut conns.dests[d], &shared.destinations[d]).and_then(|conn| {
                shared.announce(worker, &t.table, Side::Destination(d), conn);
                shared.stall_guard(conn, true);
                begin_destination(shared, conn, d, &[t])?;
                if truncate {
                    conn.execute(&t.emptying(kind, quiet_delete))
                        .map_err(|e| shared.resumed_truncate(&e, t, d))?;
                }
                if let Some(guard) = t.guard(d) {
                    conn.execute(guard).map_err(|e| shared.describe(&e))?;
                }
                Ok(())
            });
            match begun {
                Ok(()) => live.push(d),
                Err(e) => {
                    end(conns.dests[d].as_mut());
                    report.destinations[d].fail(Status::Failed, e);
                }
            }
        }
        // Begun in lock order; the receivers below, and what they report (by place), go in
        // the destinations' order.
        live.sort_unstable();
        let lost_one = live.len() < targets.len() && !options.keep_going;
        if live.is_empty() || lost_one || shared.halted() {
            end(conns.source.as_mut());
            for &d in &live {
                end(conns.dests[d].as_mut());
                if shared.halted() {
                    report.destinations[d].fail(Status::RolledBack, TableError::new(JOB_STOPPED));
                } else {
                    report.destinations[d].fail(Status::RolledBack, TableError::new(OTHER_FAILED));
                }
            }
            return report;
        }

        // The copy.
        let outcome = {
            let source = conns.source.as_mut().expect("connected above");
            let producer = StatementProducer::new(source, t.send.clone());
            let mut receivers: Vec<Box<dyn Receiver + '_>> = Vec::new();
            let (mut copied, mut pids) = (Vec::new(), Vec::new());
            for (d, slot) in conns.dests.iter_mut().enumerate() {
                if !live.contains(&d) {
                    continue;
                }
                let DestPlan::Copy { freeze, .. } = t.destinations[d] else {
                    continue;
                };
                let conn = slot.as_mut().expect("begun above");
                pids.push(backend_pid(conn));
                receivers.push(Box::new(StatementReceiver::new(
                    conn,
                    t.receive_for(freeze),
                )));
                copied.push(d);
            }
            let progress = |rows, bytes| {
                (shared.events)(Event::Progress {
                    worker,
                    rows: t.format.rows_of(rows),
                    bytes,
                });
            };
            drive(
                shared,
                &progress,
                producer,
                receivers,
                None,
                (worker, copied, pids),
            )
        };
        match outcome {
            Driven::StartFailed {
                receivers,
                producer,
            } => {
                for (k, error) in &receivers {
                    report.destinations[live[*k]].fail(Status::Failed, error.clone());
                }
                if let Some(error) = producer {
                    end(conns.source.as_mut());
                    for &d in &live {
                        end(conns.dests[d].as_mut());
                    }
                    fail_all(&mut report, &live, &error.prefixed("source: "));
                    return report;
                }
                end(conns.source.as_mut());
                for &d in &live {
                    end(conns.dests[d].as_mut());
                }
                if options.keep_going && attempt <= shared.destinations.len() {
                    // Start again without the destinations that could not start.
                    targets.retain(|d| report.destinations[*d].status != Status::Failed);
                    if targets.is_empty() {
                        return report;
                    }
                    continue;
                }
                for &d in &live {
                    report.destinations[d].fail(Status::RolledBack, TableError::new(OTHER_FAILED));
                }
                return report;
            }
            Driven::Ran {
                faults,
                aborted,
                summary,
                bytes,
                producer_count,
                completions,
            } => {
                for (k, error) in &faults {
                    report.destinations[live[*k]].fail(Status::Failed, error.clone());
                }
                let mut completed = vec![None; live.len()];
                match summary {
                    Ok(rows) => {
                        for (k, outcome) in rows {
                            match outcome {
                                Ok(n) => completed[k] = Some(n),
                                Err(e) => report.destinations[live[k]].fail(Status::Failed, e),
                            }
                        }
                    }
                    Err(fail) => {
                        for (k, error) in &fail.receivers {
                            report.destinations[live[*k]].fail(Status::Failed, error.clone());
                        }
                        // Our own abort cancels the source's COPY: its error says nothing more.
                        let ours = aborted
                            .as_deref()
                            .is_some_and(|a| a == OTHER_FAILED || a == JOB_STOPPED);
                        if let Some(error) = fail.producer.as_ref().filter(|_| !ours) {
                            for &d in &live {
                                report.destinations[d]
                                    .fail(Status::Failed, error.clone().prefixed("source: "));
                            }
                        }
                        // A copy aborted because another destination failed or the job stopped
                        // rolls the healthy destinations back; one the source failed fails.
                        if let Some(why) = &aborted {
                            let status = if why == OTHER_FAILED || why == JOB_STOPPED {
                                Status::RolledBack
                            } else {
                                Status::Failed
                            };
                            for &d in &live {
                                if report.destinations[d].error.is_none() {
                                    report.destinations[d]
                                        .fail(status, TableError::new(why.clone()));
                                }
                            }
                        }
                        // (Under keep-going the manager lets the survivors of a failure complete
                        // and the copy succeed: a copy that failed anyway has none to keep.)
                        for (k, completion) in completions.iter().enumerate() {
                            let d = live[k];
                            match completion {
                                // Its COPY completed, another's did not.
                                Some(_) if report.destinations[d].error.is_none() => {
                                    report.destinations[d]
                                        .fail(Status::RolledBack, TableError::new(OTHER_FAILED));
                                }
                                _ => report.destinations[d].fail(
                                    Status::Failed,
                                    TableError::new(format!(
                                        "COPY did not complete: {}",
                                        fail.reason
                                    )),
                                ),
                            }
                        }
                    }
                }
                for &d in &live {
                    report.destinations[d].bytes = bytes;
                }
                let source_rows = producer_count;
                break (
                    source_rows,
                    live.iter().copied().zip(completed).collect::<Vec<_>>(),
                );
            }
        }
    };
    report.source_rows = source_rows;

    // Row counts: every destination holds exactly the source's rows.
    let mut ok: Vec<(usize, Option<u64>)> = Vec::new();
    for (d, rows) in &completed {
        let Some(rows) = rows else { continue };
        let check = match (source_rows, rows) {
            (Some(sent), Some(stored)) if sent != *stored => Err(mismatch(sent, *stored)),
            (None, _) => Err("the source reported no row count".to_owned()),
            _ => Ok(()),
        };
        match check {
            Ok(()) => ok.push((*d, *rows)),
            // `--allow-count-mismatch`: triggers that route or drop rows; it commits, said.
            Err(message) if options.allow_count_mismatch && source_rows.is_some() => {
                report.destinations[*d].warning = Some(format!("{message} (allowed)"));
                ok.push((*d, *rows));
            }
            Err(message) => report.destinations[*d]
                .fail(Status::Failed, refused(message, source_rows.is_some())),
        }
    }
    if let Some(conn) = conns.source.as_mut() {
        shared.stall_guard(conn, false);
    }
    // The sequences of the copied columns, where the table goes on (a setval is not rolled
    // back): the source's read now, after its rows, and each destination's advanced in its
    // transaction while its stall guard still stands (a setval waiting on a lock is said and
    // given up as a COPY would be).
    let going_on = !shared.halted()
        && (options.keep_going
            || (ok.len() == completed.len() && completed.len() == report_targets(t)));
    if going_on {
        let mut carrier = Carrier::default();
        let live: Vec<usize> = ok.iter().map(|(d, _)| *d).collect();
        for d in live {
            let (source, conn) = (conns.source.as_mut(), conns.dests[d].as_mut());
            if !carry(
                &mut carrier,
                shared.options.stall_timeout,
                t,
                d,
                source,
                conn,
                &mut report.destinations[d],
            ) {
                ok.retain(|(o, _)| *o != d);
            }
        }
    }
    // The source's checksum, inside the same snapshot (for the destinations done earlier too).
    let mut source_sum = None;
    if options.verify && (!ok.is_empty() || !done_earlier(t).is_empty()) {
        let conn = conns.source.as_mut().expect("connected above");
        match checksum((shared, worker), conn, t) {
            Ok(sum) => source_sum = Some(sum),
            Err(e) => {
                for (d, _) in &ok {
                    super::verify::not_compared(
                        &mut report.destinations[*d],
                        e.clone()
                            .prefixed("verify: the source's checksum could not be computed: "),
                    );
                }
            }
        }
    }
    // A table read without its lock: still the files the plan saw.
    if !ok.is_empty()
        && let Some(conn) = conns.source.as_mut()
        && let Err(e) = files_unchanged(conn, t)
    {
        for (d, _) in ok.drain(..) {
            report.destinations[d].fail(Status::Failed, e.clone());
        }
    }
    end(conns.source.as_mut());

    // The end of each destination's transaction: core's commit machine.
    let live: Vec<usize> = completed.iter().map(|(d, _)| *d).collect();
    let mut flags: Vec<bool> = live
        .iter()
        .map(|d| ok.iter().any(|(o, _)| o == d))
        .collect();
    // Each COMMIT announced in the state file first: one that could not be, is not sent.
    if !shared.halted() && (options.keep_going || flags.iter().all(|f| *f)) {
        for (k, &d) in live.iter().enumerate() {
            if !flags[k] {
                continue;
            }
            let rows = ok.iter().find(|(o, _)| *o == d).and_then(|(_, r)| *r);
            let conn = conns.dests[d].as_mut().expect("begun above");
            let announced = resume::announce_commit(
                shared.state,
                (&key, &shared.plan.keys[d]),
                rows.unwrap_or(0),
                vec![conn],
                source_sum.as_deref(),
            );
            if let Err(e) = announced {
                flags[k] = false;
                report.destinations[d].fail(Status::Failed, e);
            }
        }
    }
    // Its transaction id asked (a SELECT, nothing committed yet) within the stall guard, its
    // backends watched and cancelled on a signal: a destination frozen there is said and given
    // up as during the copy. From here the worker's backends are not cancelled; an interruption
    // seen now still rolls the table back, one that comes later lets its commit finish.
    for conn in conns.dests.iter_mut().flatten() {
        shared.stall_guard(conn, false);
    }
    (shared.events)(Event::Ending { worker });
    let copy_failed = !options.keep_going && flags.iter().any(|f| !f);
    let mut commit_options = commit::Options::new(if options.keep_going {
        Policy::KeepGoing
    } else {
        Policy::AllOrNothing
    });
    let stopped_before_commit = shared.halted();
    commit_options.copy_failed = copy_failed || stopped_before_commit;
    let tables = std::slice::from_ref(&t.table);
    let outcome = commit_live(
        shared,
        worker,
        &mut conns.dests,
        &live,
        tables,
        commit_options,
        &flags,
    );
    let record_error = outcome.record_error.as_ref().map(unrecorded);
    for (k, outcome) in outcome.destinations.into_iter().enumerate() {
        let d = live[k];
        let result = &mut report.destinations[d];
        result.seconds = started.elapsed().as_secs_f64();
        match outcome {
            Outcome::Committed => {
                let rows = ok.iter().find(|(o, _)| *o == d).and_then(|(_, r)| *r);
                result.status = Status::Committed;
                result.rows = rows;
                // Under verify, recorded once its checksum is compared (below).
                if !options.verify {
                    record_committed(shared, &key, d, result);
                }
            }
            Outcome::RolledBack if record_error.is_some() => {
                result.fail(Status::Failed, record_error.clone().expect("checked"));
            }
            Outcome::RolledBack => {
                let why = if stopped_before_commit {
                    JOB_STOPPED
                } else {
                    OTHER_FAILED
                };
                result.fail(Status::RolledBack, TableError::new(why));
            }
            Outcome::InDoubt(e) => {
                result.status = Status::InDoubt;
                result.error = Some(describe(&e).prefixed("COMMIT in doubt: "));
            }
            Outcome::CommitPending { gid, error, .. } => {
                result.status = Status::InDoubt;
                result.error = Some(commit_pending(&gid, describe(&error)));
            }
            Outcome::RollbackPending { gid, error } => {
                result.status = Status::Failed;
                result.error = Some(rollback_pending(&gid, error.map(|e| describe(&e))));
            }
            // Its copy did not complete: its status and error are set already.
            Outcome::Failed(None) if result.error.is_some() => {}
            other => {
                let error = other
                    .error()
                    .map(|e| describe(e))
                    .unwrap_or_else(|| TableError::new("failed"));
                result.fail(Status::Failed, error);
            }
        }
    }
    // The destinations' checksums, after their commit.
    if let Some(sum) = &source_sum {
        for &d in &live {
            if report.destinations[d].status == Status::Committed {
                let conn = conns.dests[d].as_mut();
                verify_dest(
                    (shared, worker, d),
                    &mut report.destinations[d],
                    conn,
                    t,
                    sum,
                );
            }
        }
    }
    *sum_out = source_sum;
    if options.verify {
        for &d in &live {
            if report.destinations[d].status == Status::Committed {
                record_committed(shared, &key, d, &mut report.destinations[d]);
            }
        }
    }
    report
}
