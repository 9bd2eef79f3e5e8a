//! Tables linked by foreign keys and emptied first, copied as one unit ([`copy_group`]): on each
//! destination one transaction empties them all, copies each (parents first) and commits once;
//! they succeed, fail and are recorded together.

use std::time::Instant;

use copyman_sync::{Connection, Receiver, StatementProducer, StatementReceiver};

#[cfg(doc)]
use super::Options;
use super::drive::{Driven, drive};
use super::error::{
    TableError, commit_pending, describe, mismatch, refused, rollback_pending, unrecorded,
};
use super::planning::{DestPlan, TablePlan, group_emptying_steps};
use super::report::{Event, Side, Status, TableReport};
use super::running::{
    JOB_STOPPED, OTHER_FAILED, Shared, begin_destination, begin_source, carry, commit_live,
    files_unchanged, give_up_stalled, knock_on, mark_interrupted, record_committed, unstarted,
};
use super::sessions::{Conns, backend_pid, end, ensure, position};
use super::verify::{checksum, verify_dest, verify_done};
use crate::commit::{self, Outcome, Policy};
use crate::resume;
use crate::sequences::Carrier;
use crate::sql::TableName;

/// Why a destination's copy of a group's table was rolled back: another table of its group
/// failed there.
fn group_failed(table: &TableName) -> TableError {
    TableError::new(format!(
        "its group (tables linked by foreign keys, copied as one unit) failed here: {table}"
    ))
}

/// Why a destination's copy of a group rolled back: the group failed on another destination.
const GROUP_OTHER_FAILED: &str =
    "its group (tables linked by foreign keys, copied as one unit) failed on another destination";

/// Copies an FK-linked group of tables as one unit ([`crate::plan::Group`]): on each
/// destination one transaction empties every member (one `TRUNCATE` where no other table
/// references them, else [`group_emptying_steps`]' parts), copies each member in the group's order
/// from the job's snapshot, advances their sequences, and ends with one commit (two-phase under
/// [`Options::two_phase`]); every member is recorded done there together, after that commit.
/// A failure of any member on a destination rolls the whole group back there, and under the
/// default policy on every destination: nothing of the group is committed, and a resume copies
/// it again. Under keep-going a destination that fails leaves the group there and the others
/// go on (a COPY that cannot even start rolls the group back everywhere). Returns each member's
/// report, in [`crate::plan::Group::members`]' order.
pub(super) fn copy_group(
    shared: &Shared<'_>,
    worker: usize,
    group: &crate::plan::Group,
    conns: &mut Conns,
) -> Vec<TableReport> {
    let mut sums = vec![None; group.members.len()];
    let mut reports = copy_group_unit(shared, worker, group, conns, &mut sums);
    // As after a table's copy: stalled sessions given up, no socket timeout left, an
    // interruption said, and under verify the members done earlier compared.
    for report in &mut reports {
        give_up_stalled(shared, conns, report);
    }
    for conn in conns
        .source
        .iter_mut()
        .chain(conns.dests.iter_mut().flatten())
    {
        shared.stall_guard(conn, false);
    }
    for ((&m, report), mut sum) in group.members.iter().zip(&mut reports).zip(sums) {
        mark_interrupted(shared, report);
        verify_done(
            shared,
            worker,
            &shared.plan.tables[m],
            conns,
            &mut sum,
            report,
        );
        shared.keep_sum(m, sum);
    }
    reports
}

/// [`copy_group`]'s copy and commit; `sums_out` gets the source's checksums under verify.
fn copy_group_unit(
    shared: &Shared<'_>,
    worker: usize,
    group: &crate::plan::Group,
    conns: &mut Conns,
    sums_out: &mut [Option<String>],
) -> Vec<TableReport> {
    let started = Instant::now();
    let options = shared.options;
    let tables: Vec<&TablePlan> = group
        .members
        .iter()
        .map(|&m| &shared.plan.tables[m])
        .collect();
    let leader = &tables[0].table;
    let mut reports: Vec<TableReport> = tables.iter().map(|t| unstarted(t)).collect();
    let copies = |k: usize, d: usize| matches!(tables[k].destinations[d], DestPlan::Copy { .. });
    let mut targets: Vec<usize> = (0..shared.destinations.len())
        .filter(|&d| (0..tables.len()).any(|k| copies(k, d)))
        .collect();
    // Fails the group on `d`: member `k` with `error` (`None`: its error is set already), the
    // others rolled back with it.
    let fail_on =
        |reports: &mut Vec<TableReport>, d: usize, k: usize, error: Option<TableError>| {
            if let Some(error) = error {
                reports[k].destinations[d].fail(Status::Failed, error);
            }
            for (j, r) in reports.iter_mut().enumerate() {
                if j != k && copies(j, d) {
                    r.destinations[d].fail(Status::RolledBack, group_failed(&tables[k].table));
                }
            }
        };
    // A member refused by a destination's catalog fails the group there.
    targets.retain(|&d| {
        let refused =
            (0..tables.len()).find(|&k| matches!(tables[k].destinations[d], DestPlan::Refused(_)));
        match refused {
            Some(k) => {
                fail_on(&mut reports, d, k, None);
                false
            }
            None => true,
        }
    });
    shared.lock_order(&mut targets);
    for &d in &targets {
        for (k, r) in reports.iter_mut().enumerate() {
            if copies(k, d) {
                r.destinations[d].status = Status::RolledBack;
            }
        }
    }
    // Tables outside the group that a member references must have committed there.
    let before = targets.len();
    for (k, t) in tables.iter().enumerate() {
        let mut kept = targets.clone();
        shared.referenced_committed(t, &mut kept, &mut reports[k]);
        for d in targets.clone() {
            if !kept.contains(&d) {
                fail_on(&mut reports, d, k, None);
                targets.retain(|&o| o != d);
            }
        }
    }
    // Everything still planned on `live` rolls back with `why`.
    let roll_back =
        |reports: &mut Vec<TableReport>, conns: &mut Conns, live: &[usize], why: &str| {
            end(conns.source.as_mut());
            for &d in live {
                end(conns.dests[d].as_mut());
                let why = if why == OTHER_FAILED {
                    GROUP_OTHER_FAILED
                } else {
                    why
                };
                for (k, r) in reports.iter_mut().enumerate() {
                    if copies(k, d) {
                        r.destinations[d].fail(Status::RolledBack, TableError::new(why));
                    }
                }
            }
        };
    let why_stopped = || {
        if shared.halted() {
            JOB_STOPPED
        } else {
            OTHER_FAILED
        }
    };
    if targets.is_empty() || (!options.keep_going && targets.len() < before) {
        return reports;
    }

    // The source, in the snapshot.
    let source = match ensure(&mut conns.source, shared.source) {
        Ok(conn) => conn,
        Err(e) => {
            let e = e.prefixed("source: ");
            for r in &mut reports {
                for &d in &targets {
                    r.destinations[d].fail(Status::Failed, e.clone());
                }
            }
            return reports;
        }
    };
    shared.announce(worker, leader, Side::Source, source);
    shared.stall_guard(source, true);
    if let Err(e) = begin_source(shared, source, shared.plan.snapshot.as_deref(), &tables) {
        end(Some(source));
        let e = e.prefixed("source: ");
        for r in &mut reports {
            for &d in &targets {
                r.destinations[d].fail(Status::Failed, e.clone());
            }
        }
        return reports;
    }

    // The destinations, each in one transaction, every member emptied first where planned.
    let mut live = Vec::new();
    let names: Vec<String> = tables.iter().map(|t| t.table.to_string()).collect();
    for &d in &targets {
        // Every member it copies there, begun in one record.
        let begun: Vec<&str> = (0..tables.len())
            .filter(|&k| copies(k, d))
            .map(|k| names[k].as_str())
            .collect();
        let at = match position(&mut conns.dests[d], &shared.destinations[d]) {
            Ok(at) => at,
            Err(e) => {
                fail_on(&mut reports, d, 0, Some(e));
                continue;
            }
        };
        if let Err(e) = shared.state.begin_at(&begun, &shared.plan.keys[d], at) {
            if let Some(k) = (0..tables.len()).find(|&k| copies(k, d)) {
                fail_on(
                    &mut reports,
                    d,
                    k,
                    Some(TableError::new(format!("state file: {e}"))),
                );
            }
            continue;
        }
        let emptied: Vec<(usize, &str, bool)> = (0..tables.len())
            .filter_map(|k| match &tables[k].destinations[d] {
                DestPlan::Copy {
                    truncate: true,
                    kind,
                    quiet_delete,
                    ..
                } => Some((k, kind.as_str(), *quiet_delete)),
                _ => None,
            })
            .collect();
        let begun = ensure(&mut conns.dests[d], &shared.destinations[d])
            .map_err(|e| (0, e))
            .and_then(|conn| {
                shared.announce(worker, leader, Side::Destination(d), conn);
                shared.stall_guard(conn, true);
                begin_destination(shared, conn, d, &tables).map_err(|e| (0, e))?;
                conn.execute(crate::sql::GROUP_DEFERS)
                    .map_err(|e| (0, shared.describe(&e)))?;
                let guards = |conn: &mut Connection| {
                    for (k, t) in tables.iter().enumerate() {
                        if let Some(guard) = t.guard(d) {
                            conn.execute(guard).map_err(|e| (k, shared.describe(&e)))?;
                        }
                    }
                    Ok(())
                };
                if emptied.is_empty() {
                    return guards(conn);
                }
                // The members' positions among `tables` (the group's, in its order).
                let local = |m: usize| {
                    let at = group.members.iter().position(|&g| g == m);
                    at.expect("a member of the group")
                };
                for (members, sql) in group_emptying_steps(&shared.plan.tables, group, d) {
                    conn.execute(&sql).map_err(|e| match &members[..] {
                        &[m] => (local(m), shared.resumed_truncate(&e, tables[local(m)], d)),
                        _ => {
                            let e = shared.describe(&e);
                            let message = format!("emptying its group ({sql}): {}", e.message);
                            (local(members[0]), TableError { message, ..e })
                        }
                    })?;
                }
                guards(conn)
            });
        match begun {
            Ok(()) => live.push(d),
            Err((k, e)) => {
                end(conns.dests[d].as_mut());
                fail_on(&mut reports, d, k, Some(e));
            }
        }
    }
    // Begun in lock order; what follows goes in the destinations' order.
    live.sort_unstable();
    if live.is_empty() || (live.len() < targets.len() && !options.keep_going) || shared.halted() {
        roll_back(&mut reports, conns, &live, why_stopped());
        return reports;
    }

    // Each member's COPY, parents first, in the same transactions; the rows each stored, by
    // member and destination (reported once committed).
    let mut counted = vec![vec![None; shared.destinations.len()]; tables.len()];
    // Each member's COPY, parents first, in the same transactions.
    for (k, t) in tables.iter().enumerate() {
        let here: Vec<usize> = live.iter().copied().filter(|&d| copies(k, d)).collect();
        if here.is_empty() {
            continue;
        }
        if k > 0 {
            (shared.events)(Event::TableStarted {
                worker,
                table: t.table.clone(),
                size: t.bytes,
            });
            // The watch forgets the worker's backends at a table's start: the destinations'
            // sessions, open since the group's BEGIN, are this member's now (a lock wait there
            // is reported, a signal cancels it).
            for &d in &here {
                if let Some(conn) = conns.dests[d].as_ref() {
                    shared.announce(worker, &t.table, Side::Destination(d), conn);
                }
            }
        }
        let source = conns.source.as_mut().expect("connected above");
        shared.announce(worker, &t.table, Side::Source, source);
        let outcome = {
            let producer = StatementProducer::new(source, t.send.clone());
            let mut receivers: Vec<Box<dyn Receiver + '_>> = Vec::new();
            let (mut copied, mut pids) = (Vec::new(), Vec::new());
            for (d, slot) in conns.dests.iter_mut().enumerate() {
                if !here.contains(&d) {
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
        // Each destination of `here`: its COPY n, or its error.
        let mut ended: Vec<Result<Option<u64>, TableError>> =
            vec![Err(TableError::new("COPY did not complete")); here.len()];
        let mut source_rows = None;
        let mut source_error = None;
        match outcome {
            Driven::StartFailed {
                receivers,
                producer,
            } => {
                for (j, error) in receivers {
                    ended[j] = Err(error);
                }
                source_error = producer;
                // Every destination's transaction is in doubt of its COPY: none goes on.
                for e in &mut ended {
                    if e.is_ok()
                        || e.as_ref()
                            .is_err_and(|e| e.message == "COPY did not complete")
                    {
                        *e = Err(TableError::new(OTHER_FAILED));
                    }
                }
            }
            Driven::Ran {
                faults,
                aborted,
                summary,
                bytes,
                producer_count,
                completions,
            } => {
                source_rows = producer_count;
                for &d in &here {
                    reports[k].destinations[d].bytes = bytes;
                }
                let mut faulted = vec![None; here.len()];
                for (j, error) in faults {
                    faulted[j] = Some(error);
                }
                match summary {
                    Ok(rows) => {
                        for (j, outcome) in rows {
                            ended[j] = match faulted[j].take() {
                                Some(error) => Err(error),
                                None => outcome,
                            };
                        }
                    }
                    Err(fail) => {
                        for (j, error) in fail.receivers {
                            faulted[j].get_or_insert(error);
                        }
                        let ours = aborted
                            .as_deref()
                            .is_some_and(|a| a == OTHER_FAILED || a == JOB_STOPPED);
                        if !ours {
                            source_error = fail.producer;
                        }
                        // A destination whose COPY completed, or that our own abort
                        // stopped, is rolled back for another's failure; else it failed.
                        for (j, e) in ended.iter_mut().enumerate() {
                            let completed = completions.get(j).is_some_and(Option::is_some);
                            *e = Err(faulted[j].take().unwrap_or_else(|| match &aborted {
                                _ if completed => TableError::new(OTHER_FAILED),
                                Some(why) => TableError::new(why.clone()),
                                None => TableError::new(format!(
                                    "COPY did not complete: {}",
                                    fail.reason
                                )),
                            }));
                        }
                    }
                }
            }
        }
        reports[k].source_rows = source_rows;
        if let Some(error) = source_error {
            let error = error.prefixed("source: ");
            for &d in &here {
                fail_on(&mut reports, d, k, Some(error.clone()));
            }
            roll_back(&mut reports, conns, &live, OTHER_FAILED);
            return reports;
        }
        // Row counts, then who goes on.
        let mut failed_here = Vec::new();
        for (j, &d) in here.iter().enumerate() {
            let result = &mut reports[k].destinations[d];
            match &ended[j] {
                Ok(rows) => {
                    let check = match (source_rows, rows) {
                        (Some(sent), Some(stored)) if sent != *stored => {
                            Err(mismatch(sent, *stored))
                        }
                        (None, _) => Err("the source reported no row count".to_owned()),
                        _ => Ok(()),
                    };
                    match check {
                        Ok(()) => counted[k][d] = *rows,
                        Err(message) if options.allow_count_mismatch && source_rows.is_some() => {
                            result.warning = Some(format!("{message} (allowed)"));
                            counted[k][d] = *rows;
                        }
                        Err(message) => {
                            failed_here.push((d, refused(message, source_rows.is_some())))
                        }
                    }
                }
                Err(e) if knock_on(e) => {}
                Err(e) => failed_here.push((d, e.clone())),
            }
        }
        let knocked: Vec<usize> = here
            .iter()
            .enumerate()
            .filter(|(j, _)| ended[*j].as_ref().is_err_and(knock_on))
            .map(|(_, &d)| d)
            .collect();
        for (d, error) in failed_here.iter().cloned() {
            end(conns.dests[d].as_mut());
            fail_on(&mut reports, d, k, Some(error));
            live.retain(|&o| o != d);
        }
        if shared.halted()
            || live.is_empty()
            || !knocked.is_empty()
            || (!failed_here.is_empty() && !options.keep_going)
        {
            roll_back(&mut reports, conns, &live, why_stopped());
            return reports;
        }
    }
    if let Some(conn) = conns.source.as_mut() {
        shared.stall_guard(conn, false);
    }

    // The members' sequences, on each destination in its transaction.
    let mut carrier = Carrier::default();
    for (k, t) in tables.iter().enumerate() {
        for d in live.clone() {
            if !copies(k, d) {
                continue;
            }
            let (source, conn) = (conns.source.as_mut(), conns.dests[d].as_mut());
            if !carry(
                &mut carrier,
                shared.options.stall_timeout,
                t,
                d,
                source,
                conn,
                &mut reports[k].destinations[d],
            ) {
                end(conns.dests[d].as_mut());
                fail_on(&mut reports, d, k, None);
                live.retain(|&o| o != d);
            }
        }
    }
    if live.is_empty() || (live.len() < targets.len() && !options.keep_going) || shared.halted() {
        roll_back(&mut reports, conns, &live, why_stopped());
        return reports;
    }
    // The source's checksums, in the same snapshot.
    let mut sums: Vec<Option<String>> = vec![None; tables.len()];
    if options.verify {
        let conn = conns.source.as_mut().expect("connected above");
        for (k, t) in tables.iter().enumerate() {
            match checksum((shared, worker), conn, t) {
                Ok(sum) => sums[k] = Some(sum),
                Err(e) => {
                    for &d in &live {
                        if copies(k, d) {
                            super::verify::not_compared(
                                &mut reports[k].destinations[d],
                                e.clone().prefixed(
                                    "verify: the source's checksum could not be computed: ",
                                ),
                            );
                        }
                    }
                }
            }
        }
    }
    // A member read without its lock: still the files the plan saw.
    let changed = conns.source.as_mut().and_then(|conn| {
        tables
            .iter()
            .enumerate()
            .find_map(|(k, t)| files_unchanged(conn, t).err().map(|e| (k, e)))
    });
    if let Some((k, error)) = changed {
        for &d in &live {
            if copies(k, d) {
                fail_on(&mut reports, d, k, Some(error.clone()));
            }
        }
        roll_back(&mut reports, conns, &live, OTHER_FAILED);
        return reports;
    }
    end(conns.source.as_mut());

    // Each member's COMMIT announced in the state file first, with the group's one transaction
    // id there (a resume asks the destination whether it committed): a destination where it
    // could not be is not committed.
    if !shared.halted() {
        for d in live.clone() {
            let conn = conns.dests[d].as_mut().expect("begun above");
            let unannounced = (0..tables.len()).filter(|&k| copies(k, d)).find_map(|k| {
                let rows = counted[k][d].unwrap_or(0);
                let table = tables[k].table.to_string();
                let key = &shared.plan.keys[d];
                let sum = sums[k].as_deref();
                resume::announce_commit(shared.state, (&table, key), rows, vec![&mut *conn], sum)
                    .err()
                    .map(|e| (k, e))
            });
            if let Some((k, error)) = unannounced {
                end(conns.dests[d].as_mut());
                fail_on(&mut reports, d, k, Some(error));
                live.retain(|&o| o != d);
            }
        }
    }
    if live.is_empty() || (live.len() < targets.len() && !options.keep_going) || shared.halted() {
        roll_back(&mut reports, conns, &live, why_stopped());
        return reports;
    }

    // One commit of the group per destination: core's commit machine.
    for conn in conns.dests.iter_mut().flatten() {
        shared.stall_guard(conn, false);
    }
    (shared.events)(Event::Ending { worker });
    let flags = vec![true; live.len()];
    let names: Vec<TableName> = tables.iter().map(|t| t.table.clone()).collect();
    let mut commit_options = commit::Options::new(if options.keep_going {
        Policy::KeepGoing
    } else {
        Policy::AllOrNothing
    });
    let stopped_before_commit = shared.halted();
    commit_options.copy_failed = stopped_before_commit;
    let outcome = commit_live(
        shared,
        worker,
        &mut conns.dests,
        &live,
        &names,
        commit_options,
        &flags,
    );
    let record_error = outcome.record_error.as_ref().map(unrecorded);
    for (j, outcome) in outcome.destinations.into_iter().enumerate() {
        let d = live[j];
        for (k, report) in reports.iter_mut().enumerate() {
            if !copies(k, d) {
                continue;
            }
            let result = &mut report.destinations[d];
            result.seconds = started.elapsed().as_secs_f64();
            match &outcome {
                Outcome::Committed => {
                    result.status = Status::Committed;
                    result.rows = counted[k][d];
                }
                Outcome::RolledBack if record_error.is_some() => {
                    result.fail(Status::Failed, record_error.clone().expect("checked"))
                }
                Outcome::RolledBack => {
                    result.fail(Status::RolledBack, TableError::new(why_stopped()));
                }
                Outcome::InDoubt(e) => {
                    result.status = Status::InDoubt;
                    result.error = Some(describe(e).prefixed("COMMIT in doubt: "));
                }
                Outcome::CommitPending { gid, error, .. } => {
                    result.status = Status::InDoubt;
                    result.error = Some(commit_pending(gid, describe(error)));
                }
                Outcome::RollbackPending { gid, error } => {
                    result.status = Status::Failed;
                    result.error = Some(rollback_pending(gid, error.as_ref().map(|e| describe(e))));
                }
                other => {
                    let error = other
                        .error()
                        .map(|e| describe(e))
                        .unwrap_or_else(|| TableError::new("failed"));
                    result.fail(Status::Failed, error);
                }
            }
        }
    }
    // Checked (under verify) and recorded done, every member together, after the commit.
    for (k, t) in tables.iter().enumerate() {
        let key = t.table.to_string();
        for &d in &live {
            if !copies(k, d) || reports[k].destinations[d].status != Status::Committed {
                continue;
            }
            if let Some(sum) = &sums[k] {
                verify_dest(
                    (shared, worker, d),
                    &mut reports[k].destinations[d],
                    conns.dests[d].as_mut(),
                    t,
                    sum,
                );
            }
            record_committed(shared, &key, d, &mut reports[k].destinations[d]);
        }
    }
    sums_out.clone_from_slice(&sums);
    reports
}
