//! The copy's options mean the same under every adapter: a window of one chunk holds one chunk,
//! keep-going lets the others complete while a refusing destination stays usable, and a zero
//! stall timeout is none.

use super::Clusters;
use super::check::{count, drain, exec, open, select_one};
use super::driver::{
    CopyDriver, CopyPlan, DestinationSpec, Endpoint, ReceiverEnd, RunningCopy, SourceSpec,
    StatementSpec,
};

/// Under a window of 1 (py-postgresql's rhythm: read, write everywhere, read again) the
/// receivers never hold more than one chunk between them, even while a destination pauses on its
/// first row (a trigger sleeping 1 s) and the other could take more; both still get every row.
pub fn window_of_one_holds_one_chunk<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    const ROWS: u64 = 300_000;
    let source = &clusters.source;
    let (slow, fast) = (&clusters.destinations[0], &clusters.destinations[1]);
    let (source_db, slow_db, fast_db) = (
        source.create_database(),
        slow.create_database(),
        fast.create_database(),
    );
    exec(
        source,
        &source_db,
        &format!(
            "CREATE TABLE src AS SELECT i::int8, 'row ' || i AS s FROM generate_series(1, {ROWS}) AS g(i)"
        ),
    );
    exec(
        slow,
        &slow_db,
        "CREATE TABLE t (i int8, s text);
         CREATE FUNCTION pause() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN PERFORM pg_sleep(1); RETURN NEW; END $$;
         CREATE TRIGGER pause BEFORE INSERT ON t FOR EACH ROW WHEN (NEW.i = 1)
           EXECUTE FUNCTION pause();",
    );
    exec(fast, &fast_db, "CREATE TABLE t (i int8, s text)");
    let plan = CopyPlan {
        source: SourceSpec::Statement(
            StatementSpec::new(source.conninfo(&source_db), "COPY src TO STDOUT").window(1),
        ),
        destinations: vec![
            DestinationSpec::Statement(StatementSpec::new(
                slow.conninfo(&slow_db),
                "COPY t FROM STDIN",
            )),
            DestinationSpec::Statement(StatementSpec::new(
                fast.conninfo(&fast_db),
                "COPY t FROM STDIN",
            )),
        ],
    };
    let mut copy = open(driver, plan);
    copy.start()
        .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
    // The largest chunk, by the progress of its cycle.
    let mut largest = 0;
    while let Some(progress) = copy.next() {
        let (_, bytes) = progress.unwrap_or_else(|f| panic!("[{}] {f}", driver.name()));
        largest = largest.max(usize::try_from(bytes).expect("a chunk's size"));
    }
    let peak = copy.peak_buffered();
    let summary = copy
        .finish()
        .unwrap_or_else(|e| panic!("[{}] finish: {e}", driver.name()));
    assert_eq!(summary.producer_count, Some(ROWS));
    // One CopyData frame: the chunk's payload and its 5-byte header.
    assert!(
        peak > 0 && peak <= largest + 5,
        "[{}] held {peak} bytes at once, more than one chunk of at most {largest}",
        driver.name()
    );
    assert_eq!(count(slow, &slow_db, "t"), ROWS as i64);
    assert_eq!(count(fast, &fast_db, "t"), ROWS as i64);
}

/// Under keep-going, a destination that refuses a row mid-stream (a CHECK, inside its
/// transaction) leaves the copy while the other completes with every row; the refusing one's
/// COPY is failed and its session answers right after — its ROLLBACK, then a query — so nothing
/// of a half-sent frame or of the failed COPY is left on the wire.
pub fn keep_going_leaves_refusing_destination_usable<D: CopyDriver>(
    driver: &D,
    clusters: &Clusters,
) {
    const ROWS: u64 = 200_000;
    let source = &clusters.source;
    let (good, bad) = (&clusters.destinations[0], &clusters.destinations[1]);
    let (source_db, good_db, bad_db) = (
        source.create_database(),
        good.create_database(),
        bad.create_database(),
    );
    exec(
        source,
        &source_db,
        &format!(
            "CREATE TABLE src AS SELECT i::int8, repeat('x', 100) AS s FROM generate_series(1, {ROWS}) AS g(i)"
        ),
    );
    exec(good, &good_db, "CREATE TABLE t (i int8, s text)");
    exec(
        bad,
        &bad_db,
        "CREATE TABLE t (i int8 CONSTRAINT below CHECK (i < 150000), s text)",
    );
    let destination = |conninfo: String| {
        DestinationSpec::Statement(
            StatementSpec::new(conninfo, "COPY t FROM STDIN").before("BEGIN"),
        )
    };
    let plan = CopyPlan {
        source: SourceSpec::Statement(
            StatementSpec::new(source.conninfo(&source_db), "COPY src TO STDOUT").keep_going(),
        ),
        destinations: vec![
            destination(good.conninfo(&good_db)),
            destination(bad.conninfo(&bad_db)),
        ],
    };
    let mut copy = open(driver, plan);
    let summary = copy
        .run()
        .unwrap_or_else(|e| panic!("[{}] the good destination completes: {e}", driver.name()));
    assert!(
        matches!(summary.receivers[0], ReceiverEnd::Completed(Some(ROWS))),
        "[{}] {:?}",
        driver.name(),
        summary.receivers[0]
    );
    // Faulted when its server's error came mid-stream, failed when it came with CopyDone's
    // answer (every byte written first): either way its COPY holds nothing.
    match &summary.receivers[1] {
        ReceiverEnd::Faulted(error) | ReceiverEnd::Failed(error) => {
            assert_eq!(error.sqlstate.as_deref(), Some("23514"), "{error}");
        }
        other => panic!("[{}] the refusing destination: {other:?}", driver.name()),
    }
    copy.sql(Endpoint::Destination(1), "ROLLBACK")
        .unwrap_or_else(|e| panic!("[{}] the refusing session answers: {e}", driver.name()));
    select_one(&mut copy, Endpoint::Destination(1));
    copy.sql(Endpoint::Destination(0), "COMMIT")
        .unwrap_or_else(|e| panic!("[{}] commit: {e}", driver.name()));
    assert_eq!(count(good, &good_db, "t"), ROWS as i64);
    assert_eq!(count(bad, &bad_db, "t"), 0);
}

/// Every receiver's COPY ends at once: their servers' work at the end of the statement (here a
/// trigger sleeping 2 s, as a foreign-key check or a statement trigger takes its time) runs side
/// by side on the three destinations, not one after another (the blocking adapter ended one,
/// waited for its answer, then the next: three times the slowest). Seen on the servers: at one
/// moment every destination's backend is in its trigger's sleep.
pub fn receivers_end_their_copies_side_by_side<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let source = &clusters.source;
    let source_db = source.create_database();
    exec(
        source,
        &source_db,
        "CREATE TABLE src AS SELECT i::int8 FROM generate_series(1, 1000) AS g(i)",
    );
    let dests: Vec<(&crate::Cluster, String)> = clusters
        .destinations
        .iter()
        .map(|d| {
            let db = d.create_database();
            exec(
                d,
                &db,
                "CREATE TABLE t (i int8);
                 CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS
                   $$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$;
                 CREATE TRIGGER slow AFTER INSERT ON t FOR EACH STATEMENT
                   EXECUTE FUNCTION slow();",
            );
            (d, db)
        })
        .collect();
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(
            source.conninfo(&source_db),
            "COPY src TO STDOUT",
        )),
        destinations: dests
            .iter()
            .map(|(d, db)| {
                DestinationSpec::Statement(StatementSpec::new(d.conninfo(db), "COPY t FROM STDIN"))
            })
            .collect(),
    };
    let (stop, most) = (AtomicBool::new(false), AtomicUsize::new(0));
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut watchers: Vec<_> = dests.iter().map(|(d, _)| d.connect("postgres")).collect();
            while !stop.load(Ordering::SeqCst) {
                let mut sleeping = 0;
                for (w, (_, db)) in watchers.iter_mut().zip(&dests) {
                    let rows = w.query(
                        "SELECT 1 FROM pg_stat_activity WHERE datname = $1 \
                         AND wait_event = 'PgSleep'",
                        &[db],
                    );
                    if rows.is_ok_and(|rows| !rows.is_empty()) {
                        sleeping += 1;
                    }
                }
                most.fetch_max(sleeping, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        });
        let summary = open(driver, plan).run();
        stop.store(true, Ordering::SeqCst);
        summary.unwrap_or_else(|e| panic!("[{}] the copy: {e}", driver.name()));
    });
    for (d, db) in &dests {
        assert_eq!(count(d, db, "t"), 1000, "[{}]", driver.name());
    }
    assert_eq!(
        most.load(Ordering::SeqCst),
        dests.len(),
        "[{}] the destinations' ends ran side by side",
        driver.name()
    );
}

/// A stall timeout of zero is none, as PostgreSQL's `statement_timeout = 0`: the copy waits as
/// long as it takes (it failed every copy at its start, "stalled: no byte moved for 0ns").
pub fn zero_stall_timeout_waits<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    const ROWS: u64 = 20_000;
    let (source, dest) = (&clusters.source, &clusters.destinations[0]);
    let (source_db, dest_db) = (source.create_database(), dest.create_database());
    exec(
        source,
        &source_db,
        &format!("CREATE TABLE src AS SELECT i::int8 FROM generate_series(1, {ROWS}) AS g(i)"),
    );
    exec(dest, &dest_db, "CREATE TABLE t (i int8)");
    let plan = CopyPlan {
        source: SourceSpec::Statement(
            StatementSpec::new(source.conninfo(&source_db), "COPY src TO STDOUT")
                .timeout(std::time::Duration::ZERO),
        ),
        destinations: vec![DestinationSpec::Statement(StatementSpec::new(
            dest.conninfo(&dest_db),
            "COPY t FROM STDIN",
        ))],
    };
    let mut copy = open(driver, plan);
    copy.start()
        .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
    drain(&mut copy, driver.name());
    let summary = copy
        .finish()
        .unwrap_or_else(|e| panic!("[{}] finish: {e}", driver.name()));
    assert_eq!(summary.producer_count, Some(ROWS));
    assert_eq!(count(dest, &dest_db, "t"), ROWS as i64);
}

/// A destination slower than the source behind a TCP path whose kernel buffers hold megabytes
/// (a proxy forwarding 16 KiB every 8 ms: about 2 MiB/s) is not stalled while it drains them,
/// under a stall timeout of 700 ms: `poll(2)` and `epoll` say its socket is writable only once
/// a third of the send buffer is free (longer than the timeout at that pace), yet the socket
/// takes bytes all along; the adapters try it every `TRY_WRITE_EVERY` (scale44 F1: "stalled:
/// no byte moved" while the server stored rows). Every row arrives.
pub fn a_slow_destination_draining_its_buffers_is_not_stalled<D: CopyDriver>(
    driver: &D,
    clusters: &Clusters,
) {
    use crate::proxy::{Direction, Fault, Proxy};
    use std::time::Duration;
    // 1 KiB rows: 12 MiB, well past what the loopback buffers hold.
    const ROWS: u64 = 12_000;
    let (source, dest) = (&clusters.source, &clusters.destinations[0]);
    let (source_db, dest_db) = (source.create_database(), dest.create_database());
    exec(dest, &dest_db, "CREATE TABLE t (i int8, pad text)");
    let proxy = Proxy::for_cluster(dest);
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(
            source.conninfo(&source_db),
            format!(
                "COPY (SELECT i::int8, repeat('x', 1000) FROM generate_series(1, {ROWS}) AS g(i)) \
                 TO STDOUT"
            ),
        )),
        destinations: vec![DestinationSpec::Statement(
            StatementSpec::new(proxy.conninfo(dest, &dest_db), "COPY t FROM STDIN")
                .timeout(Duration::from_millis(700)),
        )],
    };
    let mut copy = open(driver, plan);
    copy.start()
        .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
    proxy.set(
        Direction::ClientToServer,
        Fault::Delay(Duration::from_millis(8)),
    );
    drain(&mut copy, driver.name());
    let summary = copy
        .finish()
        .unwrap_or_else(|e| panic!("[{}] finish: {e}", driver.name()));
    assert!(
        matches!(summary.receivers[0], ReceiverEnd::Completed(Some(ROWS))),
        "[{}] {:?}",
        driver.name(),
        summary.receivers[0]
    );
    assert_eq!(count(dest, &dest_db, "t"), ROWS as i64);
}

/// A destination slower than the source because its server is (a row trigger that sleeps on
/// every tenth row: about 1 MiB/s), over TCP or TLS, under a stall timeout of 1 s, completes:
/// its socket is tried every `TRY_WRITE_EVERY`, TLS records flushed then count as bytes moved,
/// and the source that waits meanwhile (its data held until the destination takes more) is
/// not said stalled. Every row arrives; without the tries copyman-sync's runs fail, "no byte
/// moved". (lib45 F1 — copyman-sync failed a TLS destination draining 60 KiB/s so, blaming the
/// source — needs a minute and a half to show: checked by hand, not here.)
pub fn a_slow_server_is_not_stalled<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    use std::time::Duration;
    const ROWS: u64 = 40_000;
    let (source, dest) = (&clusters.source, &clusters.destinations[0]);
    let (source_db, dest_db) = (source.create_database(), dest.create_database());
    exec(
        dest,
        &dest_db,
        "CREATE TABLE t (i int8, pad text);
         CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql
             AS 'BEGIN PERFORM pg_sleep(0.001); RETURN NEW; END';
         CREATE TRIGGER slow BEFORE INSERT ON t FOR EACH ROW WHEN (NEW.i % 10 = 0)
             EXECUTE FUNCTION slow();",
    );
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(
            source.conninfo(&source_db),
            format!(
                "COPY (SELECT i::int8, repeat('x', 120) FROM generate_series(1, {ROWS}) AS g(i)) \
                 TO STDOUT"
            ),
        )),
        destinations: vec![DestinationSpec::Statement(
            StatementSpec::new(dest.conninfo(&dest_db), "COPY t FROM STDIN")
                .timeout(Duration::from_secs(1)),
        )],
    };
    let mut copy = open(driver, plan);
    copy.start()
        .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
    drain(&mut copy, driver.name());
    let summary = copy
        .finish()
        .unwrap_or_else(|e| panic!("[{}] finish: {e}", driver.name()));
    assert_eq!(summary.producer_count, Some(ROWS), "[{}]", driver.name());
    assert_eq!(count(dest, &dest_db, "t"), ROWS as i64);
}
