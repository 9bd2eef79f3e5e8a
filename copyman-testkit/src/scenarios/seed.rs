//! The seed documentation's examples (`postgresql.copyman`), translated.

use std::time::Duration;

use super::Clusters;
use super::check::{
    count, digest, digest_of, drain, exec, open, select_one, series, series_bytes, series_digest,
    series_pausing,
};
use super::driver::{
    CopyDriver, CopyPlan, DestinationSpec, Endpoint, ReceiverEnd, RunningCopy, SourceSpec,
    StatementSpec,
};

/// The seed's source statement.
const SEED_ROWS: u64 = 1_000_000;

/// `COPY loading_table FROM STDIN`.
const LOADING: &str = "COPY loading_table FROM STDIN";

/// A fresh database on each given cluster, with its name.
fn seed_destination(cluster: &crate::Cluster) -> DestinationSpec {
    let db = cluster.create_database();
    DestinationSpec::Statement(
        StatementSpec::new(cluster.conninfo(&db), LOADING)
            .before("BEGIN")
            .before("CREATE TEMP TABLE loading_table (i int8)"),
    )
}

/// The seed's `transfer` example: a million rows into a temporary table created in a transaction
/// on each of three destinations; `transfer` returns `(rows, bytes)`, every destination holds the
/// rows, the source's session is usable afterwards.
pub fn seed_transfer<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let source_db = clusters.source.create_database();
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(
            clusters.source.conninfo(&source_db),
            series(SEED_ROWS),
        )),
        destinations: clusters.destinations.iter().map(seed_destination).collect(),
    };
    let mut copy = open(driver, plan);
    let (rows, bytes) = copy
        .transfer()
        .unwrap_or_else(|e| panic!("[{}] transfer: {e}", driver.name()));
    assert_eq!(rows, SEED_ROWS);
    assert_eq!(
        bytes,
        series_bytes(SEED_ROWS),
        "payload bytes of 1..=1000000"
    );
    let expected = series_digest(&clusters.source, &source_db, SEED_ROWS);
    for i in 0..3 {
        let d = Endpoint::Destination(i);
        assert_eq!(digest_of(&mut copy, d, "loading_table"), expected, "{d}");
        copy.sql(d, "COMMIT").expect("COMMIT");
    }
    select_one(&mut copy, Endpoint::Source);
}

/// The seed's `CopyManager` loop, `with source.xact(), destination.xact():` included: iterate for
/// per-cycle `(messages, bytes)` progress, then finish; the summary has every count.
pub fn seed_copy_manager_loop<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let source_db = clusters.source.create_database();
    let plan = CopyPlan {
        source: SourceSpec::Statement(
            StatementSpec::new(clusters.source.conninfo(&source_db), series(SEED_ROWS))
                .before("BEGIN")
                .buffer_size(16 * 1024),
        ),
        destinations: vec![seed_destination(&clusters.destinations[0])],
    };
    let mut copy = open(driver, plan);
    copy.start()
        .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
    let (mut messages, mut bytes, mut cycles) = (0, 0, 0);
    while let Some(progress) = copy.next() {
        let (m, b) = progress.unwrap_or_else(|f| panic!("[{}] fault: {f}", driver.name()));
        messages += m;
        bytes += b;
        cycles += 1;
    }
    assert_eq!(messages, SEED_ROWS);
    assert_eq!(bytes, series_bytes(SEED_ROWS));
    assert!(
        cycles > 10,
        "a 16 KiB buffer takes many cycles, got {cycles}"
    );
    let summary = copy
        .finish()
        .unwrap_or_else(|e| panic!("[{}] finish: {e}", driver.name()));
    assert_eq!(summary.messages, SEED_ROWS);
    assert_eq!(summary.bytes, bytes);
    assert_eq!(summary.producer_count, Some(SEED_ROWS));
    assert!(
        matches!(
            summary.receivers[..],
            [ReceiverEnd::Completed(Some(SEED_ROWS))]
        ),
        "{:?}",
        summary.receivers
    );
    let expected = series_digest(&clusters.source, &source_db, SEED_ROWS);
    let d = Endpoint::Destination(0);
    assert_eq!(digest_of(&mut copy, d, "loading_table"), expected);
    copy.sql(d, "COMMIT").expect("COMMIT on the destination");
    copy.sql(Endpoint::Source, "COMMIT")
        .expect("COMMIT on the source");
    select_one(&mut copy, Endpoint::Source);
    select_one(&mut copy, d);
}

/// The seed's `CopyManager(producer, receiver).run()` inside transactions on both sides.
pub fn seed_run<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let source_db = clusters.source.create_database();
    let plan = CopyPlan {
        source: SourceSpec::Statement(
            StatementSpec::new(clusters.source.conninfo(&source_db), series(SEED_ROWS))
                .before("BEGIN"),
        ),
        destinations: vec![seed_destination(&clusters.destinations[1])],
    };
    let mut copy = open(driver, plan);
    let summary = copy
        .run()
        .unwrap_or_else(|e| panic!("[{}] run: {e}", driver.name()));
    assert_eq!(summary.messages, SEED_ROWS);
    assert_eq!(summary.producer_count, Some(SEED_ROWS));
    assert!(
        matches!(
            summary.receivers[..],
            [ReceiverEnd::Completed(Some(SEED_ROWS))]
        ),
        "{:?}",
        summary.receivers
    );
    let d = Endpoint::Destination(0);
    let expected = series_digest(&clusters.source, &source_db, SEED_ROWS);
    assert_eq!(digest_of(&mut copy, d, "loading_table"), expected);
    copy.sql(d, "COMMIT").expect("COMMIT");
    copy.sql(Endpoint::Source, "COMMIT").expect("COMMIT");
}

/// The seed's ReceiverFault loop with its only receiver failing:
///
/// ```text
/// while copy.receivers:
///     try:
///         for num_messages, num_bytes in copy: update_rate(num_bytes)
///         break
///     except copyman.ReceiverFault as cf:
///         original_exception = cf.faults[receiver]
///         if unknown_failure(original_exception): raise
/// ```
///
/// The destination rejects a row (CHECK constraint, SQLSTATE 23514): the fault names it, the loop
/// ends as no receiver is left, and finishing fails with "no receivers"; the destination holds
/// nothing and its session is usable.
pub fn seed_receiver_fault_loop<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let source_db = clusters.source.create_database();
    let dest = &clusters.destinations[2];
    let dest_db = dest.create_database();
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(
            clusters.source.conninfo(&source_db),
            // Socket buffers may hold all of it before the destination reads the bad row: a
            // pause makes sure the error is reported while data still flows (an error found
            // only at the end surfaces when the COPY completes instead).
            series_pausing(SEED_ROWS, 600_000),
        )),
        destinations: vec![DestinationSpec::Statement(
            StatementSpec::new(dest.conninfo(&dest_db), LOADING).before(
                "CREATE TEMP TABLE loading_table \
                 (i int8 CONSTRAINT not_one_thousand CHECK (i <> 1000))",
            ),
        )],
    };
    let mut copy = open(driver, plan);
    copy.start()
        .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
    let mut faults = Vec::new();
    let mut ended = false;
    while !copy.live().is_empty() {
        loop {
            match copy.next() {
                Some(Ok(_)) => {}
                Some(Err(fault)) => {
                    let original = fault
                        .receiver(0)
                        .unwrap_or_else(|| panic!("a fault of receiver 0 expected: {fault}"))
                        .clone();
                    // `unknown_failure(original_exception)`: anything but the rejected row.
                    assert_eq!(
                        original.sqlstate.as_deref(),
                        Some("23514"),
                        "an unknown failure: {original}"
                    );
                    faults.push(original);
                    break;
                }
                None => {
                    ended = true;
                    break;
                }
            }
        }
        if ended {
            break;
        }
    }
    assert_eq!(faults.len(), 1, "one fault: {faults:?}");
    assert!(
        faults[0].text.contains("not_one_thousand"),
        "the error names the constraint: {}",
        faults[0]
    );
    let fail = copy
        .finish()
        .expect_err("a copy that lost its only receiver fails");
    assert_eq!(fail.reason, "no receivers", "{fail}");
    let d = Endpoint::Destination(0);
    select_one(&mut copy, d);
    assert_eq!(digest_of(&mut copy, d, "loading_table").0, 0);
    select_one(&mut copy, Endpoint::Source);
}

/// The seed's reconciliation example: a destination with a short socket timeout stalls (a row
/// trigger waits for an advisory lock another session holds), its write times out, the copy
/// reports a ReceiverFault whose error is a timeout; once the stall is over the receiver is
/// reconciled, and every destination ends with exactly all the rows.
///
/// ```text
/// except copyman.ReceiverFault as cf:
///     if isinstance(cf.faults[receiver], socket.timeout): copy.reconcile(receiver)
///     else: raise
/// ```
pub fn seed_reconcile_after_timeout<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    const ROWS: u64 = 250_000;
    const LOCK: i64 = 4_242_001;
    let source_db = clusters.source.create_database();
    let (stalled, other) = (&clusters.destinations[0], &clusters.destinations[1]);
    let stalled_db = stalled.create_database();
    let other_db = other.create_database();
    // ~52 MB of rows: more than the socket buffers on both sides can hold while stalled.
    let select = format!(
        "SELECT i::int8 AS i, repeat('x', 200) AS pad FROM generate_series(1, {ROWS}) AS g(i)"
    );
    exec(
        stalled,
        &stalled_db,
        &format!(
            "CREATE TABLE t (i int8, pad text);
             CREATE FUNCTION stall() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN PERFORM pg_advisory_lock({LOCK}); PERFORM pg_advisory_unlock({LOCK}); RETURN NEW; END $$;
             CREATE TRIGGER stall BEFORE INSERT ON t FOR EACH ROW WHEN (NEW.i = 1000)
                 EXECUTE FUNCTION stall();"
        ),
    );
    exec(other, &other_db, "CREATE TABLE t (i int8, pad text)");
    let mut locker = stalled.connect(&stalled_db);
    locker
        .batch_execute(&format!("SELECT pg_advisory_lock({LOCK})"))
        .expect("take the advisory lock");

    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(
            clusters.source.conninfo(&source_db),
            // The stalled destination keeps its timeout up to its completion: a pause before the
            // last rows lets it drain its socket buffers first, so completing it is quick.
            format!(
                "COPY (SELECT CASE WHEN i = {last} THEN (SELECT i FROM pg_sleep(1)) ELSE i END, \
                 pad FROM ({select}) AS s) TO STDOUT",
                last = ROWS - 10
            ),
        )),
        destinations: vec![
            DestinationSpec::Statement(
                StatementSpec::new(stalled.conninfo(&stalled_db), "COPY t FROM STDIN")
                    .timeout(Duration::from_secs(2)),
            ),
            DestinationSpec::Statement(StatementSpec::new(
                other.conninfo(&other_db),
                "COPY t FROM STDIN",
            )),
        ],
    };
    let mut copy = open(driver, plan);
    copy.start()
        .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
    let mut timeouts = 0;
    let mut locked = true;
    while let Some(progress) = copy.next() {
        let Err(fault) = progress else { continue };
        let error = fault
            .receiver(0)
            .unwrap_or_else(|| panic!("only the stalled destination may fault: {fault}"));
        assert!(error.is_timeout(), "a socket timeout expected: {error}");
        timeouts += 1;
        if locked {
            // "The problem has been corrected."
            locker
                .batch_execute(&format!("SELECT pg_advisory_unlock({LOCK})"))
                .expect("release the advisory lock");
            locked = false;
        }
        // The receiver may time out again while its server catches up: reconcile again then.
        loop {
            match copy.reconcile(0) {
                Ok(()) => break,
                Err(e) if e.is_timeout() => timeouts += 1,
                Err(e) => panic!("[{}] reconcile: {e}", driver.name()),
            }
        }
        assert_eq!(copy.live(), vec![0, 1], "the reconciled receiver is back");
    }
    assert!(timeouts >= 1, "the stalled destination never timed out");
    assert!(!locked);
    let summary = copy
        .finish()
        .unwrap_or_else(|e| panic!("[{}] finish: {e}", driver.name()));
    assert_eq!(summary.producer_count, Some(ROWS));
    for (i, end) in summary.receivers.iter().enumerate() {
        assert!(
            matches!(end, ReceiverEnd::Completed(Some(ROWS))),
            "receiver {i}: {end:?}"
        );
    }
    let expected = digest(&clusters.source, &source_db, &format!("({select})"));
    assert_eq!(expected.0, ROWS as i64);
    assert_eq!(
        digest(stalled, &stalled_db, "t"),
        expected,
        "reconciled destination"
    );
    assert_eq!(digest(other, &other_db, "t"), expected, "other destination");
}

/// `CopyFail` and its attributes: `reason` (an abort's own reason, or the completion that
/// failed), `receiver_faults` (the receiver whose COPY failed on exit, with its SQLSTATE) and
/// `producer_fault` (none here; see [`source_error_midstream`](super::source_error_midstream)).
pub fn seed_copy_fail_attributes<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let source_db = clusters.source.create_database();
    let source = || {
        SourceSpec::Statement(StatementSpec::new(
            clusters.source.conninfo(&source_db),
            series(100_000),
        ))
    };

    // An abort with a reason: nothing else went wrong.
    let (d0, d0_db) = (
        &clusters.destinations[0],
        clusters.destinations[0].create_database(),
    );
    exec(d0, &d0_db, "CREATE TABLE t (i int8)");
    let mut copy = open(
        driver,
        CopyPlan {
            source: source(),
            destinations: vec![DestinationSpec::Statement(StatementSpec::new(
                d0.conninfo(&d0_db),
                "COPY t FROM STDIN",
            ))],
        },
    );
    copy.start().expect("start");
    assert!(matches!(copy.next(), Some(Ok(_))));
    let fail = copy.abort("the operator stopped it");
    assert_eq!(fail.reason, "the operator stopped it");
    assert!(fail.receiver_faults.is_empty(), "{fail}");
    assert!(fail.producer_fault.is_none(), "{fail}");
    assert!(fail.text.contains("the operator stopped it"), "{fail}");
    assert_eq!(count(d0, &d0_db, "t"), 0);
    select_one(&mut copy, Endpoint::Source);
    select_one(&mut copy, Endpoint::Destination(0));
    drop(copy);

    // A reason longer than a server reads of a CopyFail (10 000 bytes; beyond ASCII, which
    // grows escaped): cut, the COPY failed there and its connection usable (files67 F4: the
    // server lost the protocol's synchronization and closed it).
    let long = format!("{} {}", "x".repeat(20_000), "ж".repeat(2_000));
    let mut copy = open(
        driver,
        CopyPlan {
            source: source(),
            destinations: vec![DestinationSpec::Statement(StatementSpec::new(
                d0.conninfo(&d0_db),
                "COPY t FROM STDIN",
            ))],
        },
    );
    copy.start().expect("start");
    assert!(matches!(copy.next(), Some(Ok(_))));
    let fail = copy.abort(&long);
    assert!(fail.receiver_faults.is_empty(), "{fail}");
    assert_eq!(count(d0, &d0_db, "t"), 0);
    select_one(&mut copy, Endpoint::Destination(0));
    drop(copy);

    // A receiver whose COPY fails on completion: an AFTER … FOR EACH STATEMENT trigger raises
    // when the COPY ends, so the error can only come from completing it.
    let (d1, d1_db) = (
        &clusters.destinations[1],
        clusters.destinations[1].create_database(),
    );
    exec(d0, &d0_db, "TRUNCATE t");
    exec(
        d1,
        &d1_db,
        "CREATE TABLE t (i int8);
         CREATE FUNCTION reject() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'rejected at completion' USING ERRCODE = 'P0001'; END $$;
         CREATE TRIGGER reject AFTER INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION reject();",
    );
    let mut copy = open(
        driver,
        CopyPlan {
            source: source(),
            destinations: vec![
                DestinationSpec::Statement(
                    StatementSpec::new(d0.conninfo(&d0_db), "COPY t FROM STDIN").before("BEGIN"),
                ),
                DestinationSpec::Statement(
                    StatementSpec::new(d1.conninfo(&d1_db), "COPY t FROM STDIN").before("BEGIN"),
                ),
            ],
        },
    );
    copy.start().expect("start");
    drain(&mut copy, "copy to a destination that fails on completion");
    let fail = copy
        .finish()
        .expect_err("a receiver failed to complete: the copy fails");
    assert_eq!(
        fail.reason, "could not complete the COPY operation",
        "{fail}"
    );
    assert!(fail.receiver_fault(0).is_none(), "{fail}");
    let error = fail
        .receiver_fault(1)
        .unwrap_or_else(|| panic!("receiver 1 failed on exit: {fail}"));
    assert_eq!(error.sqlstate.as_deref(), Some("P0001"), "{error}");
    assert!(error.text.contains("rejected at completion"), "{error}");
    assert!(fail.text.contains("rejected at completion"), "{fail}");
    assert!(fail.producer_fault.is_none(), "{fail}");
    for i in 0..2 {
        let d = Endpoint::Destination(i);
        copy.sql(d, "ROLLBACK").expect("ROLLBACK");
        select_one(&mut copy, d);
    }
    select_one(&mut copy, Endpoint::Source);
    assert_eq!(count(d0, &d0_db, "t"), 0);
    assert_eq!(count(d1, &d1_db, "t"), 0);
}
