//! A large table copied as ctid ranges side by side ([`copy_split`]; the ranges are the plan's,
//! [`split`]): each range on sessions of its own, all in one snapshot, each range's count
//! checked and their sum, then every range's transaction on every destination ended through one
//! commit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::Instant;

use copyman_sync::{Connection, Receiver, StatementProducer, StatementReceiver};

use super::drive::{Driven, drive};
use super::error::{TableError, describe, mismatch, refused};
use super::planning::{DestPlan, TablePlan};
use super::report::{Event, RANGES_COMMITTED, Side, Status, TableReport};
use super::running::{
    Announced, JOB_STOPPED, OTHER_FAILED, Shared, begin_destination, begin_source, carry,
    commit_table, give_up_stalled, knock_on, record_committed, report_targets, unstarted,
};
use super::sessions::{Conns, backend_pid, end, ensure, position};
#[cfg(doc)]
use super::verify::verify_done;
use super::verify::{checksum, verify_dest};
#[cfg(doc)]
use super::{plan, split};
use crate::commit::{self, Outcome, Participant, Policy};
use crate::resume;
use crate::sequences::Carrier;
use crate::sql::own_rows;

/// One range of a split table, as its sessions left it.
struct RangeEnd {
    /// The source's `COPY n` for the range.
    source_rows: Option<u64>,
    /// Each target destination: its `COPY n` (its transaction still open), or its error.
    dests: Vec<(usize, Result<u64, TableError>)>,
}

/// Copies one range (`send`) of a split table to `targets` on its own sessions (`conns`), in
/// `snapshot` (the one every range of the table reads in), leaving each destination's
/// transaction open where its COPY completed. `siblings` is raised by the first range whose
/// failure fails the table (see [`drive`]): the others stop.
#[allow(clippy::too_many_arguments)] // Each is one thing a range needs; a struct would only rename them.
fn copy_range(
    shared: &Shared<'_>,
    worker: usize,
    t: &TablePlan,
    snapshot: Option<&str>,
    send: &str,
    targets: &[usize],
    conns: &mut Conns,
    progress: &dyn Fn(u64, u64),
    siblings: &AtomicBool,
) -> RangeEnd {
    let end = copy_range_on(
        shared, worker, t, snapshot, send, targets, conns, progress, siblings,
    );
    // A range that failed on a destination fails the table there: under the default policy,
    // everywhere, and its siblings stop (a failure mid-COPY raised the flag already, at once).
    if !shared.options.keep_going && end.dests.iter().any(|(_, r)| r.is_err()) {
        siblings.store(true, Ordering::SeqCst);
    }
    end
}

/// [`copy_range`]'s work.
#[allow(clippy::too_many_arguments)] // As copy_range.
fn copy_range_on(
    shared: &Shared<'_>,
    worker: usize,
    t: &TablePlan,
    snapshot: Option<&str>,
    send: &str,
    targets: &[usize],
    conns: &mut Conns,
    progress: &dyn Fn(u64, u64),
    siblings: &AtomicBool,
) -> RangeEnd {
    let everywhere = |e: TableError| RangeEnd {
        source_rows: None,
        dests: targets.iter().map(|&d| (d, Err(e.clone()))).collect(),
    };
    // Another range failed the table already: this one does not start.
    if siblings.load(Ordering::SeqCst) {
        return everywhere(TableError::new(OTHER_FAILED));
    }
    let source = match ensure(&mut conns.source, shared.source) {
        Ok(conn) => conn,
        Err(e) => return everywhere(e.prefixed("source: ")),
    };
    shared.announce(worker, &t.table, Side::Source, source);
    shared.stall_guard(source, true);
    if let Err(e) = begin_source(shared, source, snapshot, &[t]) {
        end(Some(source));
        return everywhere(e.prefixed("source: "));
    }
    let mut dests = Vec::new();
    let mut live = Vec::new();
    for &d in targets {
        let begun = ensure(&mut conns.dests[d], &shared.destinations[d]).and_then(|c| {
            shared.announce(worker, &t.table, Side::Destination(d), c);
            shared.stall_guard(c, true);
            begin_destination(shared, c, d, &[t])?;
            if let Some(guard) = t.guard(d) {
                c.execute(guard).map_err(|e| shared.describe(&e))?;
            }
            Ok(())
        });
        match begun {
            Ok(()) => live.push(d),
            Err(e) => {
                end(conns.dests[d].as_mut());
                dests.push((d, Err(e)));
            }
        }
    }
    if live.is_empty() {
        end(conns.source.as_mut());
        return RangeEnd {
            source_rows: None,
            dests,
        };
    }
    let outcome = {
        let source = conns.source.as_mut().expect("connected above");
        let producer = StatementProducer::new(source, send.to_owned());
        let mut receivers: Vec<Box<dyn Receiver + '_>> = Vec::new();
        let mut pids = Vec::new();
        for (d, slot) in conns.dests.iter_mut().enumerate() {
            if !live.contains(&d) {
                continue;
            }
            let conn = slot.as_mut().expect("begun above");
            pids.push(backend_pid(conn));
            receivers.push(Box::new(StatementReceiver::new(conn, t.receive_for(false))));
        }
        let copying = (worker, live.clone(), pids);
        drive(
            shared,
            progress,
            producer,
            receivers,
            Some(siblings),
            copying,
        )
    };
    let mut source_rows = None;
    end(conns.source.as_mut());
    let mut errors: Vec<Option<TableError>> = live.iter().map(|_| None).collect();
    let mut rows: Vec<Option<u64>> = live.iter().map(|_| None).collect();
    match outcome {
        Driven::StartFailed {
            receivers,
            producer,
        } => {
            for (k, e) in receivers {
                errors[k] = Some(e);
            }
            let other = producer
                .map(|e| e.prefixed("source: "))
                .unwrap_or_else(|| TableError::new(OTHER_FAILED));
            for e in &mut errors {
                e.get_or_insert_with(|| other.clone());
            }
        }
        Driven::Ran {
            faults,
            aborted,
            summary,
            producer_count,
            completions,
            ..
        } => {
            source_rows = producer_count;
            for (k, e) in faults {
                errors[k].get_or_insert(e);
            }
            match summary {
                Ok(ends) => {
                    for (k, end) in ends {
                        match end {
                            Ok(Some(n)) => rows[k] = Some(n),
                            Ok(None) => {
                                errors[k].get_or_insert(TableError::new("no row count"));
                            }
                            Err(e) => {
                                errors[k].get_or_insert(e);
                            }
                        }
                    }
                }
                Err(fail) => {
                    for (k, e) in fail.receivers {
                        errors[k].get_or_insert(e);
                    }
                    let why = aborted.unwrap_or(fail.reason);
                    let why = match fail.producer {
                        Some(e) if why != OTHER_FAILED && why != JOB_STOPPED => {
                            e.prefixed("source: ").to_string()
                        }
                        _ => why,
                    };
                    for (k, e) in errors.iter_mut().enumerate() {
                        // Its COPY completed; another's did not.
                        let why = if completions[k].is_some() {
                            OTHER_FAILED.to_owned()
                        } else {
                            why.clone()
                        };
                        e.get_or_insert_with(|| TableError::new(why));
                    }
                }
            }
        }
    }
    for (k, &d) in live.iter().enumerate() {
        match (errors[k].take(), rows[k]) {
            (None, Some(n)) => dests.push((d, Ok(n))),
            (error, _) => {
                end(conns.dests[d].as_mut());
                dests.push((
                    d,
                    Err(error.unwrap_or_else(|| TableError::new("no row count"))),
                ));
            }
        }
    }
    // The range's transactions end in the table's commit: no socket timeout there.
    for conn in conns
        .source
        .iter_mut()
        .chain(conns.dests.iter_mut().flatten())
    {
        shared.stall_guard(conn, false);
    }
    RangeEnd { source_rows, dests }
}

/// Copies a table split into ranges: its ranges side by side, each on sessions of its own in one
/// snapshot (the job's, or without it one that the session counting the table exports); each
/// range's count checked against the source's for it, and their sum against the table's count
/// in the snapshot; then every range's transaction on every destination ends through one
/// commit. A table to be emptied first is never split ([`plan`]): its emptying
/// commits with its rows.
///
/// `sum_out` gets the source's checksum under verify, for [`verify_done`] too.
pub(super) fn copy_split(
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
    let mut targets: Vec<usize> = (0..t.destinations.len())
        .filter(|&d| matches!(t.destinations[d], DestPlan::Copy { .. }))
        .collect();
    for &d in &targets {
        report.destinations[d].status = Status::RolledBack;
    }
    if !shared.referenced_committed(t, &mut targets, &mut report) {
        return report;
    }
    // The table's count (and checksum) in the snapshot. Without the job's snapshot
    // (`--no-snapshot`), the session that counts exports one of the table's own, and keeps its
    // transaction open until every range has imported it: the ranges and the count then read
    // one state of the table (in snapshots of their own, a row an update moves from one range's
    // pages to another's would be read twice, or not at all).
    let counted = ensure(&mut conns.source, shared.source).and_then(|source| {
        shared.announce(worker, &t.table, Side::Source, source);
        begin_source(shared, source, shared.plan.snapshot.as_deref(), &[t])?;
        let own = match shared.plan.snapshot {
            Some(_) => None,
            None => Some(
                source
                    .query("SELECT pg_catalog.pg_export_snapshot()")
                    .map_err(|e| {
                        let mut e = describe(&e);
                        e.message = format!(
                            "cannot export a snapshot for its ranges ({}); a table split \
                             without the job's snapshot needs one (its ranges read it), \
                             copy it whole (a larger --split-larger-than)",
                            e.message
                        );
                        e
                    })?
                    .first()
                    .and_then(|r| r.first().cloned().flatten())
                    .ok_or_else(|| TableError::new("pg_export_snapshot() returned nothing"))?,
            ),
        };
        let total = source
            // An ordinary table (only those are split): its own rows, as its ranges read them.
            .query(&format!(
                "SELECT count(*)::text FROM {}",
                own_rows(&t.table, &t.kind)
            ))
            .map_err(|e| describe(&e))?
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| TableError::new("the source's count(*) returned nothing"))?;
        let sum = if options.verify {
            Some(checksum((shared, worker), source, t)?)
        } else {
            None
        };
        if own.is_none() {
            end(Some(source));
        }
        Ok((total, sum, own))
    });
    let (total, source_sum, own) = match counted {
        Ok((total, source_sum, own)) => {
            sum_out.clone_from(&source_sum);
            (total, source_sum, own)
        }
        Err(e) => {
            end(conns.source.as_mut());
            for &d in &targets {
                report.destinations[d].fail(Status::Failed, e.clone().prefixed("source: "));
            }
            return report;
        }
    };
    report.source_rows = Some(total);
    // The snapshot the ranges read in: the job's, or the table's own (its exporting
    // transaction ends once the ranges are done, or on a return before they start).
    let snapshot = own.as_deref().or(shared.plan.snapshot.as_deref());
    let release = |conns: &mut Conns| {
        if own.is_some() {
            end(conns.source.as_mut());
        }
    };
    if shared.halted() {
        release(conns);
        return report;
    }
    for &d in &targets {
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
    }
    targets.retain(|&d| report.destinations[d].error.is_none());
    if targets.is_empty() || (!options.keep_going && targets.len() < report_targets(t)) {
        release(conns);
        return report;
    }

    // The ranges, side by side.
    let n = t.ranges.len();
    let mut range_conns: Vec<Conns> = (0..n)
        .map(|_| Conns {
            source: None,
            dests: shared.destinations.iter().map(|_| None).collect(),
        })
        .collect();
    let totals: Vec<Mutex<(u64, u64)>> = (0..n).map(|_| Mutex::new((0, 0))).collect();
    let siblings = AtomicBool::new(false);
    let ends: Vec<RangeEnd> = thread::scope(|s| {
        let handles: Vec<_> = t
            .ranges
            .iter()
            .zip(range_conns.iter_mut())
            .enumerate()
            .map(|(i, (send, c))| {
                let (targets, totals, siblings) = (&targets, &totals, &siblings);
                s.spawn(move || {
                    let progress = |rows, bytes| {
                        *totals[i].lock().unwrap_or_else(PoisonError::into_inner) =
                            (t.format.rows_of(rows), bytes);
                        let (rows, bytes) = totals.iter().fold((0, 0), |(r, b), m| {
                            let (rr, bb) = *m.lock().unwrap_or_else(PoisonError::into_inner);
                            (r + rr, b + bb)
                        });
                        (shared.events)(Event::Progress {
                            worker,
                            rows,
                            bytes,
                        });
                    };
                    copy_range(
                        shared, worker, t, snapshot, send, targets, c, &progress, siblings,
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a range's copy does not panic"))
            .collect()
    });
    release(conns);
    let bytes: u64 = totals
        .iter()
        .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner).1)
        .sum();

    // Every range complete on a destination, each with the source's count for it, and the sum
    // the table's count.
    for &d in &targets {
        let mut sum = 0;
        let mut error: Option<TableError> = None;
        // A count that differs from the source's (`--allow-count-mismatch` lets it commit).
        let mut off = None;
        for (i, range) in ends.iter().enumerate() {
            let label = format!("range {} of {n}", i + 1);
            match range.dests.iter().find(|(x, _)| *x == d).map(|(_, r)| r) {
                Some(Ok(stored)) => {
                    sum += stored;
                    match range.source_rows {
                        None if error.is_none() => {
                            error = Some(TableError::new(format!(
                                "{label}: the source reported no row count"
                            )));
                        }
                        Some(sent) if sent != *stored && off.is_none() => {
                            off = Some(format!("{label}: {}", mismatch(sent, *stored)));
                        }
                        _ => {}
                    }
                }
                // The range that failed says why, not a sibling that it stopped.
                Some(Err(e)) if error.as_ref().is_none_or(|k| knock_on(k) && !knock_on(e)) => {
                    error = Some(e.clone().prefixed(&format!("{label}: ")))
                }
                _ => {}
            }
        }
        if off.is_none() && sum != total {
            off = Some(format!(
                "row count mismatch: the ranges stored {sum} rows, the source's table holds {total}"
            ));
        }
        let result = &mut report.destinations[d];
        match off {
            Some(m) if options.allow_count_mismatch => {
                result.warning = Some(format!("{m} (allowed)"))
            }
            Some(m) if error.is_none() => error = Some(refused(m, true)),
            _ => {}
        }
        result.bytes = bytes;
        match error {
            Some(e) => {
                let status = if knock_on(&e) {
                    Status::RolledBack
                } else {
                    Status::Failed
                };
                result.fail(status, e);
            }
            None => result.rows = Some(sum),
        }
    }

    // The copied columns' sequences, on one of each destination's range sessions, where the
    // table goes on (a setval is not rolled back).
    let ok: Vec<(usize, Option<u64>)> = targets
        .iter()
        .filter(|&&d| report.destinations[d].error.is_none())
        .map(|&d| (d, None))
        .collect();
    if !shared.halted() && (options.keep_going || ok.len() == targets.len()) {
        let mut carrier = Carrier::default();
        for &(d, _) in &ok {
            let source = ensure(&mut conns.source, shared.source).ok();
            let conn = range_conns.iter_mut().zip(&ends).find_map(|(c, end)| {
                let open = end.dests.iter().any(|(x, r)| *x == d && r.is_ok());
                c.dests[d].as_mut().filter(|_| open)
            });
            carry(
                &mut carrier,
                shared.options.stall_timeout,
                t,
                d,
                source,
                conn,
                &mut report.destinations[d],
            );
        }
    }

    // Each destination's COMMITs announced in the state file first (the ids of its ranges'
    // transactions): one that could not be, is not sent.
    if !shared.halted()
        && (options.keep_going
            || targets
                .iter()
                .all(|&d| report.destinations[d].error.is_none()))
    {
        for &d in &targets {
            if report.destinations[d].error.is_some() {
                continue;
            }
            let open: Vec<&mut Connection> = range_conns
                .iter_mut()
                .zip(&ends)
                .filter_map(|(c, end)| {
                    let open = end.dests.iter().any(|(x, r)| *x == d && r.is_ok());
                    c.dests[d].as_mut().filter(|_| open)
                })
                .collect();
            let rows = report.destinations[d].rows.unwrap_or(0);
            if let Err(e) = resume::announce_commit(
                shared.state,
                (&key, &shared.plan.keys[d]),
                rows,
                open,
                source_sum.as_deref(),
            ) {
                report.destinations[d].fail(Status::Failed, e);
            }
        }
    }
    // One commit over every range's transaction on every destination.
    let any_failed = targets
        .iter()
        .any(|&d| report.destinations[d].error.is_some());
    (shared.events)(Event::Ending { worker });
    let stopped = shared.halted();
    // Each range's transaction on each destination, one destination's ranges after another:
    // a commit that stops midway leaves one destination with a part of the table, not every
    // destination with a part each.
    let sent = std::cell::Cell::new(false);
    let mut parties: Vec<(usize, usize, Announced<'_, '_, '_>)> = Vec::new();
    for (i, c) in range_conns.iter_mut().enumerate() {
        for (d, slot) in c.dests.iter_mut().enumerate() {
            let open = ends[i].dests.iter().any(|(x, r)| *x == d && r.is_ok());
            if let Some(conn) = slot.as_mut().filter(|_| open) {
                parties.push((
                    d,
                    i,
                    Announced {
                        conn,
                        shared,
                        worker,
                        tables: std::slice::from_ref(&t.table),
                        destination: d,
                        sent: &sent,
                    },
                ));
            }
        }
    }
    parties.sort_by_key(|(d, _, _)| *d);
    let mut parties_of: Vec<usize> = parties.iter().map(|(d, _, _)| *d).collect();
    let range_of: Vec<usize> = parties.iter().map(|(_, i, _)| *i).collect();
    let flags: Vec<bool> = parties_of
        .iter()
        .map(|&d| report.destinations[d].error.is_none())
        .collect();
    let mut announced: Vec<Announced<'_, '_, '_>> =
        parties.into_iter().map(|(_, _, a)| a).collect();
    let outcomes = if announced.is_empty() {
        Vec::new()
    } else if options.keep_going {
        // Keep-going lets each destination end the table apart, but a destination's ranges end
        // together: one commit per destination, all or nothing over its ranges. (One commit
        // over every range under keep-going committed the ranges that passed on a destination
        // where another failed its check or its PREPARE: a part of the table, committed.)
        let mut rest: Vec<(usize, bool, Announced<'_, '_, '_>)> = parties_of
            .iter()
            .zip(&flags)
            .zip(announced)
            .map(|((&d, &flag), a)| (d, flag, a))
            .collect();
        let (mut order, mut outcomes) = (Vec::new(), Vec::new());
        for &d in &targets {
            let (mine, others): (Vec<_>, Vec<_>) = rest.into_iter().partition(|(x, _, _)| *x == d);
            rest = others;
            if mine.is_empty() {
                continue;
            }
            let flags: Vec<bool> = mine.iter().map(|(_, flag, _)| *flag).collect();
            let mut mine: Vec<Announced<'_, '_, '_>> =
                mine.into_iter().map(|(_, _, a)| a).collect();
            let backends: Vec<String> = mine.iter().map(Announced::backend).collect();
            let mut parties: Vec<&mut dyn Participant<Error = copyman_sync::Error>> = mine
                .iter_mut()
                .map(|a| a as &mut dyn Participant<Error = _>)
                .collect();
            let mut commit_options = commit::Options::new(Policy::AllOrNothing);
            commit_options.copy_failed = report.destinations[d].error.is_some() || stopped;
            let here = vec![d; flags.len()];
            let outcome = commit_table(
                shared,
                commit_options,
                &flags,
                &mut parties,
                (&here, &backends, std::slice::from_ref(&t.table)),
            );
            order.extend(here);
            outcomes.extend(outcome.destinations);
        }
        parties_of = order;
        outcomes
    } else {
        let backends: Vec<String> = announced.iter().map(Announced::backend).collect();
        let mut parties: Vec<&mut dyn Participant<Error = copyman_sync::Error>> = announced
            .iter_mut()
            .map(|a| a as &mut dyn Participant<Error = _>)
            .collect();
        let mut commit_options = commit::Options::new(Policy::AllOrNothing);
        commit_options.copy_failed = any_failed || stopped;
        commit_table(
            shared,
            commit_options,
            &flags,
            &mut parties,
            (&parties_of, &backends, std::slice::from_ref(&t.table)),
        )
        .destinations
    };
    for &d in &targets {
        let mine: Vec<&Outcome<copyman_sync::Error>> = parties_of
            .iter()
            .zip(&outcomes)
            .filter(|(x, _)| **x == d)
            .map(|(_, o)| o)
            .collect();
        // The rows of the ranges there whose outcome is `which`.
        let rows_of = |which: &dyn Fn(&Outcome<copyman_sync::Error>) -> bool| -> u64 {
            parties_of
                .iter()
                .zip(&range_of)
                .zip(&outcomes)
                .filter(|((x, _), o)| **x == d && which(o))
                .filter_map(|((_, &i), _)| {
                    ends[i]
                        .dests
                        .iter()
                        .find_map(|(x, r)| (*x == d).then(|| r.as_ref().ok().copied()).flatten())
                })
                .sum()
        };
        let committed_rows = rows_of(&|o| o.is_committed());
        let result = &mut report.destinations[d];
        result.seconds = started.elapsed().as_secs_f64();
        let committed = mine.iter().filter(|o| o.is_committed()).count();
        if result.error.is_none() && committed == n && mine.len() == n {
            result.status = Status::Committed;
            // Under verify, recorded once its checksum is compared (below).
            if !options.verify {
                record_committed(shared, &key, d, result);
            }
        } else if committed > 0 || mine.iter().any(|o| o.may_hold_rows()) {
            // Some ranges known committed: a part of the table is there (whatever the ranges
            // whose COMMIT went unanswered did), said with its rows.
            let doubtful = mine
                .iter()
                .filter(|o| matches!(o, Outcome::InDoubt(_)))
                .count();
            let in_doubt = committed == 0 && doubtful > 0;
            result.status = if in_doubt {
                // The rows that may be there: those of the ranges whose COMMIT is unanswered.
                result.rows = Some(rows_of(&|o| matches!(o, Outcome::InDoubt(_))));
                Status::InDoubt
            } else {
                result.rows = Some(committed_rows);
                Status::PartlyCommitted
            };
            let why = result
                .error
                .as_ref()
                .map(|e| e.message.clone())
                .or_else(|| {
                    mine.iter()
                        .find_map(|o| o.error())
                        .map(|e| describe(e).to_string())
                })
                .map(|why| format!(" ({why})"))
                .unwrap_or_default();
            let rows = match (in_doubt, doubtful) {
                (true, k) => {
                    format!(", {k} sent its COMMIT with no answer (it may have committed)")
                }
                (false, 0) => format!(", {committed_rows} rows"),
                (false, k) => format!(
                    ", {committed_rows} rows, and {k} sent its COMMIT with no answer (it may \
                     have committed)"
                ),
            };
            let then = match options.truncate {
                true => "a resume empties it and copies it again",
                false => {
                    "a resume refuses it: without --truncate it may hold rows this job did not \
                     write, which emptying it would delete; resume with --truncate to replace \
                     the table, or delete the rows those ranges committed and copy it again in \
                     a job of its own (its --state in another directory)"
                }
            };
            result.error = Some(TableError::new(format!(
                "{committed} of its {n}{RANGES_COMMITTED}{rows}, the others not{why}: {then}"
            )));
        } else if result.error.is_none() {
            let why = mine.iter().find_map(|o| o.error()).map(|e| describe(e));
            match why {
                Some(e) => result.fail(Status::Failed, e),
                None => result.fail(
                    Status::RolledBack,
                    TableError::new(if stopped { JOB_STOPPED } else { OTHER_FAILED }),
                ),
            }
        }
    }
    for c in &mut range_conns {
        give_up_stalled(shared, c, &mut report);
    }
    // The destinations' checksums, after their commit.
    if let Some(sum) = source_sum {
        for &d in &targets {
            if report.destinations[d].status == Status::Committed {
                let conn = ensure(&mut conns.dests[d], &shared.destinations[d]).ok();
                verify_dest(
                    (shared, worker, d),
                    &mut report.destinations[d],
                    conn,
                    t,
                    &sum,
                );
            }
        }
    }
    if options.verify {
        for &d in &targets {
            if report.destinations[d].status == Status::Committed {
                record_committed(shared, &key, d, &mut report.destinations[d]);
            }
        }
    }
    report
}
