//! Faults with real servers: rejected rows, a failing or killed source, a stopped destination, a
//! copy stopped or dropped early.

use super::Clusters;
use super::check::{
    backend_pid, count, digest, exec, open, select_one, series, series_digest, series_pausing,
};
use super::driver::{
    CopyDriver, CopyPlan, DestinationSpec, Endpoint, FaultInfo, ReceiverEnd, RunningCopy,
    SourceSpec, StatementSpec,
};
use crate::Cluster;

/// A fresh database with `CREATE TABLE t (i int8)` on each cluster, and a plain `COPY t FROM
/// STDIN` destination for it (no transaction: a COPY that completed is committed at once).
fn plain_destinations<'c>(
    clusters: impl IntoIterator<Item = &'c Cluster>,
) -> (Vec<(&'c Cluster, String)>, Vec<DestinationSpec>) {
    let dbs: Vec<_> = clusters
        .into_iter()
        .map(|c| {
            let db = c.create_database();
            exec(c, &db, "CREATE TABLE t (i int8)");
            (c, db)
        })
        .collect();
    let specs = dbs
        .iter()
        .map(|(c, db)| {
            DestinationSpec::Statement(StatementSpec::new(c.conninfo(db), "COPY t FROM STDIN"))
        })
        .collect();
    (dbs, specs)
}

/// Asserts that no destination holds a row and every session named is usable.
fn nothing_committed<C: RunningCopy>(copy: &mut C, dests: &[(&Cluster, String)], what: &str) {
    for (i, (c, db)) in dests.iter().enumerate() {
        assert_eq!(count(c, db, "t"), 0, "{what}: destination {i} holds rows");
        select_one(copy, Endpoint::Destination(i));
    }
}

/// A destination rejects a row midway (CHECK constraint failing at row 500 000 of 1 000 000):
/// a ReceiverFault for it alone, with SQLSTATE 23514, which a reconcile refuses (its server ended
/// that COPY); the other two complete with every row; the failed one holds nothing and its
/// session answers `SELECT 1`.
pub fn destination_rejects_row_midway<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    const ROWS: u64 = 1_000_000;
    let source_db = clusters.source.create_database();
    let (dests, specs) = plain_destinations(&clusters.destinations);
    exec(
        dests[2].0,
        &dests[2].1,
        "ALTER TABLE t ADD CONSTRAINT below_half CHECK (i <> 500000)",
    );
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(
            clusters.source.conninfo(&source_db),
            // The destinations' socket buffers can hold the whole stream before the failing one
            // parses row 500 000: the source pauses a little later, so its error arrives midway.
            series_pausing(ROWS, 600_000),
        )),
        destinations: specs,
    };
    let mut copy = open(driver, plan);
    copy.start()
        .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
    let mut faults = Vec::new();
    let mut before_fault = 0;
    while let Some(progress) = copy.next() {
        match progress {
            Ok((m, _)) if faults.is_empty() => before_fault += m,
            Ok(_) => {}
            Err(fault) => {
                // Its server ended its COPY: no data sent again can bring it back, and a
                // reconcile says so at once (it said `Ok` in one adapter, then faulted again).
                let refused = copy.reconcile(2).expect_err("a reconcile of an ended COPY");
                assert!(
                    refused.text.contains("its server ended its COPY")
                        && refused.text.contains("below_half"),
                    "[{}] {refused}",
                    driver.name()
                );
                faults.push(fault);
            }
        }
    }
    assert_eq!(faults.len(), 1, "{faults:?}");
    let error = faults[0]
        .receiver(2)
        .unwrap_or_else(|| panic!("receiver 2 faulted: {}", faults[0]));
    assert!(faults[0].receiver(0).is_none() && faults[0].receiver(1).is_none());
    assert_eq!(error.sqlstate.as_deref(), Some("23514"), "{error}");
    assert!(error.text.contains("below_half"), "{error}");
    assert!(
        before_fault < ROWS,
        "the fault came during the copy, not at its end"
    );
    assert_eq!(copy.live(), vec![0, 1]);
    let summary = copy
        .finish()
        .unwrap_or_else(|e| panic!("[{}] finish: {e}", driver.name()));
    assert_eq!(summary.producer_count, Some(ROWS));
    assert!(matches!(
        summary.receivers[0],
        ReceiverEnd::Completed(Some(ROWS))
    ));
    assert!(matches!(
        summary.receivers[1],
        ReceiverEnd::Completed(Some(ROWS))
    ));
    match &summary.receivers[2] {
        ReceiverEnd::Faulted(e) => assert_eq!(e.sqlstate.as_deref(), Some("23514"), "{e}"),
        other => panic!("receiver 2: {other:?}"),
    }
    let expected = series_digest(&clusters.source, &source_db, ROWS);
    for (c, db) in &dests[..2] {
        assert_eq!(digest(c, db, "t"), expected);
    }
    assert_eq!(count(dests[2].0, &dests[2].1, "t"), 0);
    for i in 0..3 {
        select_one(&mut copy, Endpoint::Destination(i));
    }
    select_one(&mut copy, Endpoint::Source);
}

/// Drives `copy` until the producer faults; panics if it ends or a receiver faults first.
fn until_producer_fault<C: RunningCopy>(copy: &mut C, what: &str) -> FaultInfo {
    loop {
        match copy.next() {
            Some(Ok(_)) => {}
            Some(Err(fault @ FaultInfo::Producer { .. })) => return fault,
            Some(Err(fault)) => panic!("{what}: a receiver faulted: {fault}"),
            None => panic!("{what}: the copy ended as if the producer had reached its end"),
        }
    }
}

/// The source's statement fails midway (division by zero at row 500 000): a ProducerFault with
/// SQLSTATE 22012, given once: the progress then ends, and finishing (which never takes that
/// end for the data's) fails with the producer's error as `producer_fault`; nothing is committed and
/// every session, the source's included, is usable.
pub fn source_error_midstream<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let source_db = clusters.source.create_database();
    let (dests, specs) = plain_destinations(&clusters.destinations[..2]);
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(
            clusters.source.conninfo(&source_db),
            "COPY (SELECT 1 / (500000 - i) FROM generate_series(1, 1000000) AS g(i)) TO STDOUT",
        )),
        destinations: specs,
    };
    let mut copy = open(driver, plan);
    copy.start()
        .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
    let fault = until_producer_fault(&mut copy, "a failing source");
    let error = fault.producer().expect("a producer fault");
    assert_eq!(error.sqlstate.as_deref(), Some("22012"), "{error}");
    assert!(error.text.contains("division by zero"), "{error}");
    // Nothing can come after a producer fault: the iteration ends (not the same fault for ever,
    // which a loop that logs faults and goes on would spin on), and finishing still fails.
    assert!(
        copy.next().is_none(),
        "the progress ends after the producer's fault"
    );
    assert_eq!(copy.live(), vec![0, 1], "a producer fault changes nothing");
    let fail = copy.finish().expect_err("the copy failed");
    assert_eq!(
        fail.reason, "copy stopped before the producer's end",
        "{fail}"
    );
    let producer = fail
        .producer_fault
        .as_ref()
        .unwrap_or_else(|| panic!("CopyFail.producer_fault: {fail}"));
    assert_eq!(producer.sqlstate.as_deref(), Some("22012"), "{fail}");
    assert!(fail.receiver_faults.is_empty(), "{fail}");
    assert!(fail.text.contains("division by zero"), "{fail}");
    nothing_committed(&mut copy, &dests, "failing source");
    select_one(&mut copy, Endpoint::Source);
}

/// The source's backend is terminated (`pg_terminate_backend` from another connection) once rows
/// flow: a ProducerFault (then the progress ends), then CopyFail with `producer_fault`; no
/// destination has a row committed and every destination's session is usable.
pub fn source_backend_terminated_midstream<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let source_db = clusters.source.create_database();
    let (dests, specs) = plain_destinations(&clusters.destinations);
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(
            clusters.source.conninfo(&source_db),
            series(5_000_000),
        )),
        destinations: specs,
    };
    let mut copy = open(driver, plan);
    let pid = backend_pid(&mut copy, Endpoint::Source);
    copy.start()
        .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
    match copy.next() {
        Some(Ok((messages, _))) => assert!(messages > 0),
        other => panic!("rows should flow: {other:?}"),
    }
    assert!(
        clusters.source.terminate_backend(pid),
        "the source backend was running"
    );
    let fault = until_producer_fault(&mut copy, "a terminated source");
    assert!(
        copy.next().is_none(),
        "the progress ends after the producer's fault"
    );
    let fail = copy.finish().expect_err("the copy failed");
    assert_eq!(
        fail.reason, "copy stopped before the producer's end",
        "{fail}"
    );
    assert!(fail.producer_fault.is_some(), "{fail}");
    assert!(fail.receiver_faults.is_empty(), "{fail}");
    nothing_committed(&mut copy, &dests, "terminated source");
    assert!(
        copy.sql(Endpoint::Source, "SELECT 1").is_err(),
        "the terminated source's session cannot work: {fault}"
    );
}

/// A destination's server is stopped (immediate mode) mid-stream: a ReceiverFault for it, the
/// others complete with every row. The stopped server is a private cluster.
pub fn destination_server_stopped_midstream<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    const ROWS: u64 = 2_000_000;
    let private = Cluster::start();
    let source_db = clusters.source.create_database();
    let (dests, specs) = plain_destinations([
        &clusters.destinations[0],
        &clusters.destinations[1],
        &private,
    ]);
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(
            clusters.source.conninfo(&source_db),
            series(ROWS),
        )),
        destinations: specs,
    };
    let mut copy = open(driver, plan);
    copy.start()
        .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
    match copy.next() {
        Some(Ok((messages, _))) => assert!(messages > 0),
        other => panic!("rows should flow: {other:?}"),
    }
    private.stop_immediate();
    let mut faults = Vec::new();
    while let Some(progress) = copy.next() {
        if let Err(fault) = progress {
            faults.push(fault);
        }
    }
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert!(faults[0].receiver(2).is_some(), "{}", faults[0]);
    assert_eq!(copy.live(), vec![0, 1]);
    let summary = copy
        .finish()
        .unwrap_or_else(|e| panic!("[{}] finish: {e}", driver.name()));
    assert_eq!(summary.producer_count, Some(ROWS));
    assert!(
        matches!(summary.receivers[2], ReceiverEnd::Faulted(_)),
        "{summary:?}"
    );
    let expected = series_digest(&clusters.source, &source_db, ROWS);
    for (i, (c, db)) in dests[..2].iter().enumerate() {
        assert!(matches!(
            summary.receivers[i],
            ReceiverEnd::Completed(Some(ROWS))
        ));
        assert_eq!(digest(c, db, "t"), expected);
        select_one(&mut copy, Endpoint::Destination(i));
    }
    assert!(copy.sql(Endpoint::Destination(2), "SELECT 1").is_err());
    select_one(&mut copy, Endpoint::Source);
}

/// Iteration stopped early (a few cycles, then finish): CopyFail "copy stopped before the
/// producer's end", nothing committed on any destination, and the source's session (cancelled
/// mid-COPY) usable.
pub fn stopped_early<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let source_db = clusters.source.create_database();
    let (dests, specs) = plain_destinations(&clusters.destinations);
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(
            clusters.source.conninfo(&source_db),
            series(1_000_000),
        )),
        destinations: specs,
    };
    let mut copy = open(driver, plan);
    copy.start()
        .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
    for _ in 0..3 {
        assert!(matches!(copy.next(), Some(Ok(_))));
    }
    let fail = copy.finish().expect_err("an unfinished copy fails");
    assert_eq!(
        fail.reason, "copy stopped before the producer's end",
        "{fail}"
    );
    assert!(fail.receiver_faults.is_empty(), "{fail}");
    assert!(fail.producer_fault.is_none(), "{fail}");
    nothing_committed(&mut copy, &dests, "stopped early");
    select_one(&mut copy, Endpoint::Source);
    drop(copy);

    // A small copy, whose end the source sent with its data: stopping after the data cycle,
    // before the cycle that would report the end, still fails the copy and must not wait for
    // more from a source that has nothing more to say.
    let (dests, specs) = plain_destinations(&clusters.destinations);
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(
            clusters.source.conninfo(&source_db),
            series(10),
        )),
        destinations: specs,
    };
    let mut copy = open(driver, plan);
    copy.start()
        .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
    assert!(matches!(copy.next(), Some(Ok((m, _))) if m > 0));
    let fail = copy
        .finish()
        .expect_err("the producer's end was not reached");
    assert_eq!(
        fail.reason, "copy stopped before the producer's end",
        "{fail}"
    );
    assert!(fail.producer_fault.is_none(), "{fail}");
    nothing_committed(&mut copy, &dests, "stopped before the end of a small copy");
    select_one(&mut copy, Endpoint::Source);
}

/// Dropping a copy mid-way (a user's early return) commits nothing either, and leaves every
/// session usable.
pub fn dropped_mid_copy<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let source_db = clusters.source.create_database();
    let (dests, specs) = plain_destinations(&clusters.destinations);
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(
            clusters.source.conninfo(&source_db),
            series(1_000_000),
        )),
        destinations: specs,
    };
    let mut copy = open(driver, plan);
    copy.start()
        .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
    for _ in 0..3 {
        assert!(matches!(copy.next(), Some(Ok(_))));
    }
    copy.drop_copy();
    nothing_committed(&mut copy, &dests, "dropped");
    select_one(&mut copy, Endpoint::Source);
}
