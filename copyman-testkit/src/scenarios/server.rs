//! What the server says and when, the same under every adapter (issues 12 and 13): a COPY OUT
//! that a plain statement started is cancelled, not read to its end; the stall timeout; a
//! destination's error noticed in the middle of its COPY IN; notices, notifications and command
//! tags reach the caller; `connect_timeout` is one deadline per host, then the next host.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::Clusters;
use super::check::{backend_pid, count, exec, open, select_one, series, series_pausing};
use super::driver::{
    CopyDriver, CopyPlan, DestinationSpec, Endpoint, FaultInfo, ReceiverEnd, RunningCopy,
    SourceSpec, StatementSpec,
};
use crate::Cluster;
use crate::HOST;
use copyman_core::ReceiverId;
use copyman_core::stall::EndpointId;

/// A raw `execute` (here `query`) of a `COPY … TO STDOUT` on an adapter's connection is refused:
/// one that reads as a COPY before it is sent (a transaction around it stays whole, lib44 F4),
/// and one the server starts all the same (a COPY after another statement) has its COPY
/// **cancelled**, not read and discarded to its end: the statement would stream 200 million
/// rows (~3 GB), the session reads only a few MB of them, and once the call returned the source
/// backend is idle in `pg_stat_activity` and the connection usable.
pub fn execute_of_copy_out_is_cancelled<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let source = &clusters.source;
    let db = source.create_database();
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(source.conninfo(&db), series(10))),
        destinations: Vec::new(),
    };
    let mut copy = open(driver, plan);
    let pid = backend_pid(&mut copy, Endpoint::Source);
    let before = copy.session(Endpoint::Source).received_bytes;
    // Read as a COPY: not sent, inside a transaction that stays whole.
    for copy_statement in ["COPY t TO STDOUT", "COPY t FROM STDIN"] {
        copy.sql(Endpoint::Source, "BEGIN").unwrap();
        let error = copy
            .sql(Endpoint::Source, copy_statement)
            .expect_err("a COPY in a plain statement is refused");
        assert!(
            error.text.contains("not sent"),
            "[{}] {copy_statement}: {error}",
            driver.name()
        );
        copy.sql(Endpoint::Source, "SELECT 1").unwrap();
        copy.sql(Endpoint::Source, "ROLLBACK").unwrap();
    }
    // Streamed from its first row: a join of two small series, nothing materialized first;
    // after another statement, which the check of one COPY does not read through.
    let big = "SELECT 1; COPY (SELECT a.i * 10000 + b.i FROM generate_series(1, 20000) AS a(i), \
               generate_series(1, 10000) AS b(i)) TO STDOUT";
    let error = copy
        .sql(Endpoint::Source, big)
        .expect_err("a COPY TO STDOUT in a plain statement is refused");
    assert!(
        error.text.contains("COPY TO STDOUT"),
        "[{}] the refusal names the COPY: {error}",
        driver.name()
    );
    let read = copy.session(Endpoint::Source).received_bytes - before;
    assert!(
        read < 64 << 20,
        "[{}] {read} bytes of the COPY were read: it was drained, not cancelled",
        driver.name()
    );
    let mut admin = source.connect(&db);
    let row = admin
        .query_one(
            "SELECT state, query FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .expect("the source backend in pg_stat_activity");
    let state: Option<String> = row.get(0);
    assert_eq!(
        state.as_deref(),
        Some("idle"),
        "[{}] the source backend runs no COPY any more (last query: {:?})",
        driver.name(),
        row.get::<_, Option<String>>(1)
    );
    select_one(&mut copy, Endpoint::Source);
    // A COPY that ended before any cancel could reach it (its end came with its start): said
    // so, its transaction still open, not "given up … aborted" (lib49 F2: the COMMIT after
    // committed what the words said was aborted).
    copy.sql(Endpoint::Source, "BEGIN").unwrap();
    copy.sql(Endpoint::Source, "CREATE TABLE kept (i int)")
        .unwrap();
    let error = copy
        .sql(Endpoint::Source, "SELECT 1; COPY (SELECT 1) TO STDOUT")
        .expect_err("a COPY TO STDOUT in a plain statement is refused");
    assert!(
        error.text.contains("ran to its end") && !error.text.contains("aborted"),
        "[{}] {error}",
        driver.name()
    );
    copy.sql(Endpoint::Source, "COMMIT").unwrap();
    let kept: bool = admin
        .query_one("SELECT to_regclass('kept') IS NOT NULL", &[])
        .unwrap()
        .get(0);
    assert!(
        kept,
        "[{}] the transaction around it committed",
        driver.name()
    );
}

/// The rows of [`stalling_copy`].
const STALLING_ROWS: u64 = 150_000;

/// The stall timeout of [`stalling_copy`]: the copy's, so the producer's too — long enough that
/// a source on a loaded 2-core machine (the full suite) never sends nothing for that long (1 s
/// once did: a producer stall beside the receiver's).
const STALLING_TIMEOUT: Duration = Duration::from_secs(2);

/// Rows of a copy (~47 MB: more than the socket buffers on both sides hold while a destination
/// stalls) from the source to destinations 0 and 1, whose databases it makes (returned), with
/// the copy's stall timeout [`STALLING_TIMEOUT`]; destination 0's row 1000 waits for the
/// advisory lock `lock`
/// (a row trigger), so it stops reading while another session holds it.
fn stalling_copy(clusters: &Clusters, lock: i64) -> (CopyPlan, [String; 2]) {
    let source_db = clusters.source.create_database();
    let (stalled, other) = (&clusters.destinations[0], &clusters.destinations[1]);
    let stalled_db = stalled.create_database();
    let other_db = other.create_database();
    exec(
        stalled,
        &stalled_db,
        &format!(
            "CREATE TABLE t (i int8, pad text);
             CREATE FUNCTION stall() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN PERFORM pg_advisory_lock({lock}); PERFORM pg_advisory_unlock({lock}); RETURN NEW; END $$;
             CREATE TRIGGER stall BEFORE INSERT ON t FOR EACH ROW WHEN (NEW.i = 1000)
                 EXECUTE FUNCTION stall();"
        ),
    );
    exec(other, &other_db, "CREATE TABLE t (i int8, pad text)");
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(
            clusters.source.conninfo(&source_db),
            format!(
                "COPY (SELECT i::int8, repeat('x', 300) FROM generate_series(1, {STALLING_ROWS}) AS g(i)) \
                 TO STDOUT"
            ),
        )),
        destinations: vec![
            DestinationSpec::Statement(
                StatementSpec::new(stalled.conninfo(&stalled_db), "COPY t FROM STDIN")
                    .timeout(STALLING_TIMEOUT),
            ),
            DestinationSpec::Statement(StatementSpec::new(
                other.conninfo(&other_db),
                "COPY t FROM STDIN",
            )),
        ],
    };
    (plan, [stalled_db, other_db])
}

/// An advisory lock held by another session on a destination until [`LockHeld::release`], or
/// (if that never comes) for 60 s at most: a copy blocked on it ends either way, and the release
/// says which.
struct LockHeld {
    ended: Arc<AtomicBool>,
    gave_up: Arc<AtomicBool>,
    holder: JoinHandle<()>,
}

impl LockHeld {
    fn take(cluster: &Cluster, db: &str, lock: i64) -> Self {
        let ended = Arc::new(AtomicBool::new(false));
        let gave_up = Arc::new(AtomicBool::new(false));
        let mut locker = cluster.connect(db);
        locker
            .batch_execute(&format!("SELECT pg_advisory_lock({lock})"))
            .expect("take the advisory lock");
        let holder = {
            let (ended, gave_up) = (Arc::clone(&ended), Arc::clone(&gave_up));
            thread::spawn(move || {
                let until = Instant::now() + Duration::from_secs(60);
                while !ended.load(Ordering::SeqCst) && Instant::now() < until {
                    thread::sleep(Duration::from_millis(20));
                }
                gave_up.store(!ended.load(Ordering::SeqCst), Ordering::SeqCst);
                locker
                    .batch_execute(&format!("SELECT pg_advisory_unlock({lock})"))
                    .expect("release the advisory lock");
            })
        };
        Self {
            ended,
            gave_up,
            holder,
        }
    }

    /// Releases the lock; whether it had been released already, its 60 s over (what waited
    /// for it ended only then).
    fn release(self) -> bool {
        self.ended.store(true, Ordering::SeqCst);
        self.holder.join().expect("the lock holder");
        self.gave_up.load(Ordering::SeqCst)
    }
}

/// With a stall timeout, a destination server that stops reading (a row trigger waits on a
/// lock) faults with the core's "stalled" error naming it, of kind `TimedOut`, while the other
/// destination completes; the stalled one holds nothing afterwards and its session is usable.
pub fn stall_timeout_faults_receiver<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    const ROWS: u64 = STALLING_ROWS;
    const LOCK: i64 = 4_242_013;
    let (plan, [stalled_db, other_db]) = stalling_copy(clusters, LOCK);
    let (stalled, other) = (&clusters.destinations[0], &clusters.destinations[1]);
    let mut locker = stalled.connect(&stalled_db);
    locker
        .batch_execute(&format!("SELECT pg_advisory_lock({LOCK})"))
        .expect("take the advisory lock");
    let mut copy = open(driver, plan);
    copy.start()
        .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
    let mut faults = Vec::new();
    while let Some(progress) = copy.next() {
        if let Err(fault) = progress {
            if faults.is_empty() {
                locker
                    .batch_execute(&format!("SELECT pg_advisory_unlock({LOCK})"))
                    .expect("release the advisory lock");
            }
            faults.push(fault);
        }
    }
    assert_eq!(faults.len(), 1, "[{}] {faults:?}", driver.name());
    let error = faults[0]
        .receiver(0)
        .unwrap_or_else(|| panic!("[{}] receiver 0 stalled: {}", driver.name(), faults[0]));
    assert!(
        error.text.contains(&format!(
            "receiver 0 stalled: no byte moved for {STALLING_TIMEOUT:?}"
        )),
        "[{}] {error}",
        driver.name()
    );
    assert_eq!(error.io_kind, Some(io::ErrorKind::TimedOut), "{error}");
    let summary = copy
        .finish()
        .unwrap_or_else(|e| panic!("[{}] finish: {e}", driver.name()));
    assert!(matches!(summary.receivers[0], ReceiverEnd::Faulted(_)));
    assert!(matches!(
        summary.receivers[1],
        ReceiverEnd::Completed(Some(ROWS))
    ));
    assert_eq!(count(stalled, &stalled_db, "t"), 0);
    assert_eq!(count(other, &other_db, "t"), ROWS as i64);
    select_one(&mut copy, Endpoint::Destination(0));
    select_one(&mut copy, Endpoint::Destination(1));
}

/// A session closed by its `Closer` from another thread while it waits for its server (a
/// statement that sleeps, as a frozen backend would keep it waiting): the wait ends at once with
/// the connection closed, saying the closer's reason, and so does every later call.
pub fn a_closer_ends_a_wait_from_another_thread<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    const REASON: &str = "the watchdog gave it up";
    let source = &clusters.source;
    let db = source.create_database();
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(source.conninfo(&db), series(10))),
        destinations: Vec::new(),
    };
    let mut copy = open(driver, plan);
    let closer = copy
        .closer(Endpoint::Source)
        .unwrap_or_else(|e| panic!("[{}] closer: {e}", driver.name()));
    let closing = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        closer.close(REASON);
    });
    let started = Instant::now();
    let error = copy
        .sql(Endpoint::Source, "SELECT pg_sleep(60)")
        .expect_err("closed while it waited");
    closing.join().expect("the closer");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "[{}] the wait ended with the close, not the statement",
        driver.name()
    );
    assert!(error.text.contains(REASON), "[{}] {error}", driver.name());
    let later = copy
        .sql(Endpoint::Source, "SELECT 1")
        .expect_err("closed for good");
    assert!(later.text.contains(REASON), "[{}] {later}", driver.name());
}

/// A destination whose server reads nothing (a row trigger waits on a lock) is not stalled while
/// a watchdog hears its server move (`UnderWay::server_moved`: what the `copyman` command's
/// watch reads of `pg_stat_progress_copy`, a COPY storing rows it took): its stall timer
/// restarts at each, and it stalls one timeout after the last — never while they come. The
/// other destination completes.
pub fn a_receiver_heard_moving_is_not_stalled<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    const LOCK: i64 = 4_242_031;
    let (plan, [stalled_db, other_db]) = stalling_copy(clusters, LOCK);
    let (stalled, other) = (&clusters.destinations[0], &clusters.destinations[1]);
    let held = LockHeld::take(stalled, &stalled_db, LOCK);
    let mut copy = open(driver, plan);
    copy.start()
        .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
    let under_way = copy.under_way();
    let heard = Arc::new(AtomicBool::new(true));
    // Five seconds of a server heard moving, under a stall timeout of two.
    let watchdog = {
        let heard = Arc::clone(&heard);
        thread::spawn(move || {
            for _ in 0..25 {
                under_way.server_moved(EndpointId::Receiver(ReceiverId(0)));
                thread::sleep(Duration::from_millis(200));
            }
            heard.store(false, Ordering::SeqCst);
        })
    };
    let mut faults = Vec::new();
    while let Some(progress) = copy.next() {
        if let Err(fault) = progress {
            assert!(
                !heard.load(Ordering::SeqCst) || !faults.is_empty(),
                "[{}] stalled while its server was heard moving: {fault}",
                driver.name()
            );
            faults.push(fault);
        }
    }
    assert_eq!(faults.len(), 1, "[{}] {faults:?}", driver.name());
    let error = faults[0]
        .receiver(0)
        .unwrap_or_else(|| panic!("[{}] receiver 0 stalled: {}", driver.name(), faults[0]));
    assert!(error.text.contains("receiver 0 stalled"), "{error}");
    watchdog.join().expect("the watchdog");
    assert!(
        !held.release(),
        "[{}] the lock was held to its end",
        driver.name()
    );
    let summary = copy
        .finish()
        .unwrap_or_else(|e| panic!("[{}] finish: {e}", driver.name()));
    assert!(matches!(summary.receivers[0], ReceiverEnd::Faulted(_)));
    assert!(matches!(
        summary.receivers[1],
        ReceiverEnd::Completed(Some(STALLING_ROWS))
    ));
    assert_eq!(count(stalled, &stalled_db, "t"), 0);
    assert_eq!(count(other, &other_db, "t"), STALLING_ROWS as i64);
}

/// With a stall timeout and the default policy, a destination server that stops reading and
/// stays blocked (a row trigger waits on a lock nobody releases) fails the copy, and the copy
/// ends while it is still blocked: failing that receiver (its realignment and CopyFail, which
/// the server does not read) is bounded by the stall timeout too. copyman-sync waited for the
/// server without a bound once the copy had failed (until the lock went: 40 s in the report).
/// Nothing is committed anywhere; the other destination's session is usable.
pub fn stall_timeout_bounds_failing_a_receiver_that_stays_blocked<D: CopyDriver>(
    driver: &D,
    clusters: &Clusters,
) {
    const LOCK: i64 = 4_242_014;
    let (plan, [stalled_db, other_db]) = stalling_copy(clusters, LOCK);
    let (stalled, other) = (&clusters.destinations[0], &clusters.destinations[1]);
    // The lock is held until the copy has ended, or (if it never does) for 60 s at most.
    let held = LockHeld::take(stalled, &stalled_db, LOCK);
    let mut copy = open(driver, plan);
    copy.start()
        .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
    // The fault ends the copy, as `run` ends it (`abort`: every receiver's COPY fails).
    let fault = loop {
        match copy.next() {
            Some(Ok(_)) => {}
            Some(Err(fault)) => break fault,
            None => panic!("[{}] the copy ended without the stall", driver.name()),
        }
    };
    let fail = copy.abort("a destination stalled");
    let gave_up = held.release();
    assert!(
        !gave_up,
        "[{}] the copy ended only once the blocked destination was let go",
        driver.name()
    );
    assert!(fault.receiver(0).is_some(), "[{}] {fault}", driver.name());
    assert_eq!(
        fail.reason,
        "a destination stalled",
        "[{}] {fail}",
        driver.name()
    );
    assert_eq!(count(stalled, &stalled_db, "t"), 0);
    assert_eq!(count(other, &other_db, "t"), 0);
    select_one(&mut copy, Endpoint::Destination(1));
}

/// Under keep-going, a destination that stalls (a row trigger waits on a lock) is failed and the
/// others complete; its CopyFail's answer cannot come either while the lock is held, and once
/// the stall timeout passed its connection comes back closed: the caller's next call on it (its
/// `ROLLBACK`) fails at once, rather than wait for the locked backend's answer with no bound
/// (copyman-sync handed it back waiting on that answer; copyman-async closed it).
pub fn keep_going_closes_a_stalled_receiver_whose_copy_fail_goes_unanswered<D: CopyDriver>(
    driver: &D,
    clusters: &Clusters,
) {
    const LOCK: i64 = 4_242_016;
    let (mut plan, [stalled_db, other_db]) = stalling_copy(clusters, LOCK);
    if let SourceSpec::Statement(spec) = plan.source {
        plan.source = SourceSpec::Statement(spec.keep_going());
    }
    let (stalled, other) = (&clusters.destinations[0], &clusters.destinations[1]);
    let held = LockHeld::take(stalled, &stalled_db, LOCK);
    let mut copy = open(driver, plan);
    let summary = copy.run();
    // The lock is still held: the stalled destination's next call must not wait for it.
    let next = copy.sql(Endpoint::Destination(0), "ROLLBACK");
    let gave_up = held.release();
    assert!(
        !gave_up,
        "[{}] the stalled destination's next call waited for its locked backend",
        driver.name()
    );
    let summary = summary.unwrap_or_else(|e| panic!("[{}] keep-going: {e}", driver.name()));
    assert!(
        next.is_err(),
        "[{}] its connection came back usable: {summary:?}",
        driver.name()
    );
    assert_eq!(count(stalled, &stalled_db, "t"), 0);
    assert_eq!(count(other, &other_db, "t"), STALLING_ROWS as i64);
}

/// A receiver in autocommit (no transaction: the answer to its CopyDone is its commit) whose
/// session its server ends while the COPY ends (a statement trigger runs; an administrator's
/// `pg_terminate_backend`, a failover tool): no answer says whether its rows committed, and
/// its outcome says so — the copy's failure counts it as may-have-committed and its words say
/// it — rather than "holds nothing of this copy" (a synchronous standby's wait cut short this
/// way leaves the rows committed locally).
pub fn an_autocommit_receiver_ended_after_copydone_is_in_doubt<D: CopyDriver>(
    driver: &D,
    clusters: &Clusters,
) {
    let source_db = clusters.source.create_database();
    let dest = &clusters.destinations[0];
    let dest_db = dest.create_database();
    exec(
        dest,
        &dest_db,
        "CREATE TABLE t (i int8);
         CREATE FUNCTION slow_end() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$;
         CREATE TRIGGER slow_end AFTER INSERT ON t FOR EACH STATEMENT
           EXECUTE FUNCTION slow_end();",
    );
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(
            clusters.source.conninfo(&source_db),
            series(1000),
        )),
        destinations: vec![DestinationSpec::Statement(StatementSpec::new(
            dest.conninfo(&dest_db),
            "COPY t FROM STDIN",
        ))],
    };
    // Its COPY ends (the trigger sleeps): its session is ended then.
    let terminate = || {
        let mut admin = dest.connect("postgres");
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            let ended = admin
                .query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = $1 AND wait_event = 'PgSleep'",
                    &[&dest_db],
                )
                .expect("terminate");
            if !ended.is_empty() {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    };
    let (terminated, fail) = thread::scope(|s| {
        let terminator = s.spawn(terminate);
        let mut copy = open(driver, plan);
        let fail = copy.run();
        (terminator.join().expect("the terminator"), fail)
    });
    assert!(
        terminated,
        "[{}] its COPY never reached its end",
        driver.name()
    );
    let fail = fail.expect_err("its session ended before its COPY's answer");
    // Its server's FATAL said as that, with its SQLSTATE (lib65 F17: "no answer came", the
    // SQLSTATE lost on the way).
    assert!(
        fail.receiver_fault(0)
            .is_some_and(|e| e.sqlstate.as_deref() == Some("57P01"))
            && fail
                .text
                .contains("its server ended the session before saying whether its COPY committed"),
        "[{}] {fail} {:?}",
        driver.name(),
        fail.receiver_fault(0)
    );
    assert!(
        fail.text.contains("may have committed"),
        "[{}] {fail}",
        driver.name()
    );
}

/// With a stall timeout, a source that sends nothing for longer (it sleeps mid-stream) is a
/// ProducerFault with the core's "stalled" error naming the producer; aborting then cancels the
/// source's COPY, commits nothing, and leaves every session usable.
pub fn stall_timeout_faults_producer<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    producer_stalls(driver, clusters, false);
}

/// [`stall_timeout_faults_producer`], with `close_stalled` or not.
fn producer_stalls<D: CopyDriver>(driver: &D, clusters: &Clusters, close_stalled: bool) {
    let source_db = clusters.source.create_database();
    let dest = &clusters.destinations[0];
    let dest_db = dest.create_database();
    exec(dest, &dest_db, "CREATE TABLE t (i int8)");
    let plan = CopyPlan {
        source: SourceSpec::Statement(
            StatementSpec::new(
                clusters.source.conninfo(&source_db),
                "COPY (SELECT CASE WHEN i = 50000 THEN (SELECT i FROM pg_sleep(30)) ELSE i END \
                 FROM generate_series(1, 100000) AS g(i)) TO STDOUT",
            )
            .timeout(Duration::from_secs(1))
            .close_stalled_if(close_stalled),
        ),
        destinations: vec![DestinationSpec::Statement(StatementSpec::new(
            dest.conninfo(&dest_db),
            "COPY t FROM STDIN",
        ))],
    };
    let mut copy = open(driver, plan);
    copy.start()
        .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
    let fault = loop {
        match copy.next() {
            Some(Ok(_)) => {}
            Some(Err(fault)) => break fault,
            None => panic!("[{}] the copy ended without the stall", driver.name()),
        }
    };
    let FaultInfo::Producer { error, .. } = &fault else {
        panic!("[{}] a producer fault: {fault}", driver.name());
    };
    assert!(
        error
            .text
            .contains("producer stalled: no byte moved for 1s"),
        "[{}] {error}",
        driver.name()
    );
    assert!(error.is_timeout(), "{error}");
    let fail = copy.abort("the source stalled");
    assert_eq!(
        fail.reason,
        "the source stalled",
        "[{}] {fail}",
        driver.name()
    );
    // The copy's own failure says the stall too, not its consequence (a producer closed at
    // once is said closed only by its connection).
    let said = fail.producer_fault.as_ref().map(|e| e.text.clone());
    assert!(
        said.is_none_or(|said| said.contains("producer stalled")) && !fail.text.contains("closed"),
        "[{}] {fail}",
        driver.name()
    );
    assert_eq!(count(dest, &dest_db, "t"), 0);
    // A source closed at once is not asked again.
    if !close_stalled {
        select_one(&mut copy, Endpoint::Source);
    }
    select_one(&mut copy, Endpoint::Destination(0));
}

/// [`stall_timeout_faults_producer`] under `close_stalled`: the producer's connection is closed
/// at once, and its fault stays the stall (what an application tells a stall from a failure
/// by), in both adapters — copyman-async's said the consequence, "connection closed", its
/// cancel on the closed connection taken for the producer's error (lib38 F9).
pub fn stall_timeout_faults_producer_closed_at_once<D: CopyDriver>(
    driver: &D,
    clusters: &Clusters,
) {
    producer_stalls(driver, clusters, true);
}

/// With a stall timeout, a source server that stops answering altogether (its backend stopped:
/// a host frozen, a network that drops packets) is a producer stall, and the copy ends while it
/// is still stopped: cancelling and draining the producer, which the stopped server does not
/// answer, is bounded by the stall timeout too (copyman-async waited for the server, 41 s for a
/// 40 s stop in the report). Nothing is committed; once the server goes on, the source's session
/// is usable again.
pub fn stall_timeout_bounds_cancelling_a_stopped_source<D: CopyDriver>(
    driver: &D,
    clusters: &Clusters,
) {
    let source_db = clusters.source.create_database();
    let dest = &clusters.destinations[0];
    let dest_db = dest.create_database();
    exec(dest, &dest_db, "CREATE TABLE t (i int8, pad text)");
    let plan = CopyPlan {
        source: SourceSpec::Statement(
            StatementSpec::new(
                clusters.source.conninfo(&source_db),
                "COPY (SELECT i::int8, repeat('x', 300) FROM generate_series(1, 2000000) AS g(i)) \
                 TO STDOUT",
            )
            .timeout(Duration::from_secs(1)),
        ),
        destinations: vec![DestinationSpec::Statement(StatementSpec::new(
            dest.conninfo(&dest_db),
            "COPY t FROM STDIN",
        ))],
    };
    let mut copy = open(driver, plan);
    copy.start()
        .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
    assert!(
        matches!(copy.next(), Some(Ok(_))),
        "[{}] rows flow",
        driver.name()
    );
    let pid = backend_pid_running(&clusters.source, &source_db, "%COPY (SELECT i::int8%");
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    // Let go however this test ends (a panic included): a stopped backend would outlive it.
    let _goes_on = GoesOn(pid);
    if !stopped {
        eprintln!(
            "SKIPPED stall_timeout_bounds_cancelling_a_stopped_source [{}]: cannot stop the \
             source's backend {pid} (not root, nor its server's user)",
            driver.name()
        );
        return;
    }
    // The backend goes on once the copy has ended, or (if it never does) after 60 s, which
    // `gave_up` then says.
    let ended = Arc::new(AtomicBool::new(false));
    let gave_up = Arc::new(AtomicBool::new(false));
    let waker = {
        let (ended, gave_up) = (Arc::clone(&ended), Arc::clone(&gave_up));
        thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(60);
            while !ended.load(Ordering::SeqCst) && Instant::now() < until {
                thread::sleep(Duration::from_millis(20));
            }
            gave_up.store(!ended.load(Ordering::SeqCst), Ordering::SeqCst);
            continued(pid)
        })
    };
    let fault = loop {
        match copy.next() {
            Some(Ok(_)) => {}
            Some(Err(fault)) => break Some(fault),
            None => break None,
        }
    };
    let fail = copy.abort("the source stopped");
    ended.store(true, Ordering::SeqCst);
    assert!(
        waker.join().expect("the waker"),
        "the source's backend {pid} goes on"
    );
    assert!(
        !gave_up.load(Ordering::SeqCst),
        "[{}] the copy ended only once the stopped source went on",
        driver.name()
    );
    let Some(FaultInfo::Producer { error, .. }) = &fault else {
        panic!("[{}] a producer fault: {fault:?}", driver.name());
    };
    assert!(
        error.text.contains("producer stalled"),
        "[{}] {error}",
        driver.name()
    );
    assert_eq!(
        fail.reason,
        "the source stopped",
        "[{}] {fail}",
        driver.name()
    );
    // The copy's failure names the stall too (copyman-sync's named its cancel's timeout, "i/o
    // error on the connection").
    assert!(
        fail.producer_fault
            .as_ref()
            .is_some_and(|e| e.text.contains("producer stalled")),
        "[{}] {fail}",
        driver.name()
    );
    assert_eq!(count(dest, &dest_db, "t"), 0);
    select_one(&mut copy, Endpoint::Destination(0));
}

/// A stopped backend, let go when dropped.
struct GoesOn(i32);

impl Drop for GoesOn {
    fn drop(&mut self) {
        continued(self.0);
    }
}

/// Lets the stopped process `pid` go on: whether it could.
fn continued(pid: i32) -> bool {
    std::process::Command::new("kill")
        .args(["-CONT", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// The pid of the backend of `db` on `cluster` running a statement like `pattern`.
fn backend_pid_running(cluster: &Cluster, db: &str, pattern: &str) -> i32 {
    let mut client = cluster.connect("postgres");
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let row = client
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query LIKE $2 \
                 AND pid <> pg_backend_pid() LIMIT 1",
                &[&db, &pattern],
            )
            .expect("pg_stat_activity");
        if let Some(row) = row {
            return row.get(0);
        }
        assert!(Instant::now() < until, "no backend of {db} runs {pattern}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// A destination's error in the middle of its COPY IN (a CHECK fails at row 1000 of 1 000 000)
/// is noticed while the copy streams, not at its end: the fault comes with SQLSTATE 23514 and
/// the COPY's line, progress goes on after it for the other destination, which gets every row.
pub fn server_error_noticed_mid_copy_in<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    const ROWS: u64 = 1_000_000;
    let source_db = clusters.source.create_database();
    let (bad, good) = (&clusters.destinations[1], &clusters.destinations[2]);
    let bad_db = bad.create_database();
    let good_db = good.create_database();
    exec(
        bad,
        &bad_db,
        "CREATE TABLE t (i int8 CONSTRAINT not_1000 CHECK (i <> 1000))",
    );
    exec(good, &good_db, "CREATE TABLE t (i int8)");
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(
            clusters.source.conninfo(&source_db),
            series_pausing(ROWS, 500_000),
        )),
        destinations: vec![
            DestinationSpec::Statement(StatementSpec::new(
                bad.conninfo(&bad_db),
                "COPY t FROM STDIN",
            )),
            DestinationSpec::Statement(StatementSpec::new(
                good.conninfo(&good_db),
                "COPY t FROM STDIN",
            )),
        ],
    };
    let mut copy = open(driver, plan);
    copy.start()
        .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
    let (mut before, mut after, mut faults) = (0, 0, Vec::new());
    while let Some(progress) = copy.next() {
        match progress {
            Ok((m, _)) if faults.is_empty() => before += m,
            Ok((m, _)) => after += m,
            Err(fault) => faults.push(fault),
        }
    }
    assert_eq!(faults.len(), 1, "[{}] {faults:?}", driver.name());
    let error = faults[0]
        .receiver(0)
        .unwrap_or_else(|| panic!("[{}] receiver 0 faulted: {}", driver.name(), faults[0]));
    assert_eq!(error.sqlstate.as_deref(), Some("23514"), "{error}");
    assert!(error.text.contains("not_1000"), "{error}");
    assert!(
        before < ROWS && after > 0,
        "[{}] the error was noticed mid-stream ({before} rows before it, {after} after)",
        driver.name()
    );
    let summary = copy
        .finish()
        .unwrap_or_else(|e| panic!("[{}] finish: {e}", driver.name()));
    assert!(matches!(
        summary.receivers[1],
        ReceiverEnd::Completed(Some(ROWS))
    ));
    assert_eq!(count(bad, &bad_db, "t"), 0);
    assert_eq!(count(good, &good_db, "t"), ROWS as i64);
    select_one(&mut copy, Endpoint::Destination(0));
}

/// Everything the server says reaches the caller: a NOTICE a source function raises in the
/// middle of its COPY OUT stream, a WARNING and a NOTIFY a destination trigger raises during its
/// COPY IN (the destination listens), and each session's command tag, `COPY 10000`.
pub fn notices_reach_the_caller<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    const ROWS: u64 = 10_000;
    let source_db = clusters.source.create_database();
    exec(
        &clusters.source,
        &source_db,
        "CREATE FUNCTION f(i int8) RETURNS int8 LANGUAGE plpgsql AS $$
         BEGIN IF i = 5000 THEN RAISE NOTICE 'source at row %', i; END IF; RETURN i; END $$;",
    );
    let (loud, quiet) = (&clusters.destinations[0], &clusters.destinations[1]);
    let loud_db = loud.create_database();
    let quiet_db = quiet.create_database();
    exec(
        loud,
        &loud_db,
        "CREATE TABLE t (i int8);
         CREATE FUNCTION w() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             RAISE WARNING 'destination saw row %', NEW.i USING HINT = 'it is only a test';
             PERFORM pg_notify('copied', 'row ' || NEW.i);
             RETURN NEW;
         END $$;
         CREATE TRIGGER w BEFORE INSERT ON t FOR EACH ROW WHEN (NEW.i = 7000)
             EXECUTE FUNCTION w();",
    );
    exec(quiet, &quiet_db, "CREATE TABLE t (i int8)");
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(
            clusters.source.conninfo(&source_db),
            format!("COPY (SELECT f(g) FROM generate_series(1, {ROWS}) AS g) TO STDOUT"),
        )),
        destinations: vec![
            DestinationSpec::Statement(
                StatementSpec::new(loud.conninfo(&loud_db), "COPY t FROM STDIN")
                    .before("LISTEN copied"),
            ),
            DestinationSpec::Statement(StatementSpec::new(
                quiet.conninfo(&quiet_db),
                "COPY t FROM STDIN",
            )),
        ],
    };
    let mut copy = open(driver, plan);
    // Nothing said before the copy counts.
    for endpoint in [Endpoint::Source, Endpoint::Destination(0)] {
        let _ = copy.session(endpoint);
    }
    let summary = copy
        .run()
        .unwrap_or_else(|e| panic!("[{}] run: {e}", driver.name()));
    assert_eq!(summary.producer_count, Some(ROWS));

    let source = copy.session(Endpoint::Source);
    let notice = source
        .notices
        .iter()
        .find(|n| n.message == "source at row 5000")
        .unwrap_or_else(|| panic!("[{}] the source's NOTICE: {source:?}", driver.name()));
    assert_eq!((&*notice.severity, &*notice.sqlstate), ("NOTICE", "00000"));
    assert_eq!(source.command_tag.as_deref(), Some("COPY 10000"));

    let dest = copy.session(Endpoint::Destination(0));
    let warning = dest
        .notices
        .iter()
        .find(|n| n.message == "destination saw row 7000")
        .unwrap_or_else(|| panic!("[{}] the destination's WARNING: {dest:?}", driver.name()));
    assert_eq!(
        (&*warning.severity, &*warning.sqlstate),
        ("WARNING", "01000")
    );
    assert!(
        dest.notifications
            .contains(&("copied".to_owned(), "row 7000".to_owned())),
        "[{}] the destination's notification: {dest:?}",
        driver.name()
    );
    assert_eq!(dest.command_tag.as_deref(), Some("COPY 10000"));

    let other = copy.session(Endpoint::Destination(1));
    assert!(other.notices.is_empty(), "{other:?}");
    assert_eq!(other.command_tag.as_deref(), Some("COPY 10000"));
    // Taken means taken.
    assert!(copy.session(Endpoint::Source).notices.is_empty());
}

/// A server that accepts the connection and never answers, held by a thread of the test.
struct SilentServer {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentServer {
    fn start() -> Self {
        let listener = TcpListener::bind((HOST, 0)).expect("bind a silent listener");
        listener.set_nonblocking(true).expect("non-blocking accept");
        let port = listener.local_addr().expect("its address").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = thread::spawn({
            let (accepted, stop) = (Arc::clone(&accepted), Arc::clone(&stop));
            move || {
                let mut held: Vec<TcpStream> = Vec::new();
                // Bounded: it stops by itself even if the test forgets it.
                let until = Instant::now() + Duration::from_secs(120);
                while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            accepted.fetch_add(1, Ordering::Relaxed);
                            held.push(stream);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(10));
                        }
                        Err(_) => break,
                    }
                }
            }
        });
        Self {
            port,
            accepted,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `connect_timeout` is libpq's: a host that accepts and never answers fails with "timeout
/// expired" naming it (one deadline for the whole attempt, TLS and plain together, not the
/// socket's "Resource temporarily unavailable"), and with a second host the connection goes on
/// to it and succeeds.
pub fn connect_timeout_expires_then_next_host<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let source = &clusters.source;
    let db = source.create_database();
    let silent = SilentServer::start();
    let real = format!("host={HOST} port={}", source.port());
    let conninfo = source.conninfo(&db);
    assert!(conninfo.contains(&real), "{conninfo}");
    let plan = |conninfo: String| CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(conninfo, series(10))),
        destinations: Vec::new(),
    };

    let alone = conninfo.replace(
        &real,
        &format!("host={HOST} port={} connect_timeout=1", silent.port),
    );
    let error = driver
        .open(plan(alone))
        .err()
        .unwrap_or_else(|| panic!("[{}] a silent server cannot be connected", driver.name()));
    assert_eq!(
        (error.endpoint, error.statement.as_deref()),
        (Endpoint::Source, None)
    );
    assert!(
        error.error.text.contains("timeout expired")
            && error
                .error
                .text
                .contains(&format!("{HOST}:{}", silent.port)),
        "[{}] {error}",
        driver.name()
    );
    assert!(
        !error.error.text.contains("temporarily unavailable"),
        "[{}] {error}",
        driver.name()
    );
    let tried = silent.accepted.load(Ordering::Relaxed);
    assert!(tried >= 1, "the silent server was tried");

    let both = conninfo.replace(
        &real,
        &format!(
            "host={HOST},{HOST} port={},{} connect_timeout=1",
            silent.port,
            source.port()
        ),
    );
    let mut copy = driver
        .open(plan(both))
        .unwrap_or_else(|e| panic!("[{}] on to the next host: {e}", driver.name()));
    assert!(
        silent.accepted.load(Ordering::Relaxed) > tried,
        "the silent host was tried first"
    );
    select_one(&mut copy, Endpoint::Source);
}

/// A session whose server was stopped with `-m immediate` (its backend sends a WARNING 57P01
/// and is gone): the first statement after it fails with the connection lost, and every later
/// one says the connection closed by the server, alike in both adapters (lib73 F2: one said
/// "Broken pipe" again, the connection not known closed).
pub fn a_session_its_server_shut_down_immediately_is_closed_alike<D: CopyDriver>(
    driver: &D,
    _clusters: &Clusters,
) {
    let cluster = Cluster::start();
    let db = cluster.create_database();
    // Over its Unix socket: a write after the server's end fails at once there (EPIPE).
    let socket = format!(
        "host={} port={} user=postgres password={} dbname={db}",
        cluster.socket_dir().display(),
        cluster.port(),
        cluster.password()
    );
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(socket, series(10))),
        destinations: Vec::new(),
    };
    let mut copy = open(driver, plan);
    copy.sql(Endpoint::Source, "BEGIN")
        .unwrap_or_else(|e| panic!("[{}] BEGIN: {e}", driver.name()));
    cluster.stop_immediate();
    let first = copy
        .sql(Endpoint::Source, "SELECT 1")
        .expect_err("the server is gone");
    for _ in 0..2 {
        let later = copy
            .sql(Endpoint::Source, "SELECT 1")
            .expect_err("the server is gone");
        assert_eq!(
            later.text,
            "connection closed by the server",
            "[{}] after {first}",
            driver.name()
        );
    }
    cluster.start_again();
}

/// libpq 14's `host=@name` reaches a server listening on a socket in Linux's abstract namespace
/// (`unix_socket_directories = '@name'`): it was looked up as a host name and failed.
pub fn abstract_unix_socket<D: CopyDriver>(driver: &D, _clusters: &Clusters) {
    let cluster = Cluster::start();
    let name = format!("copyman-test-{}-{}", std::process::id(), cluster.port());
    cluster.psql(
        "postgres",
        &format!(
            "ALTER SYSTEM SET unix_socket_directories = '{}', '@{name}'",
            cluster.socket_dir().display()
        ),
    );
    cluster.stop_immediate();
    cluster.start_again();
    let db = cluster.create_database();
    let conninfo = cluster
        .conninfo(&db)
        .replace(&format!("host={HOST} "), &format!("host=@{name} "));
    assert!(conninfo.contains(&format!("host=@{name}")), "{conninfo}");
    let mut copy = driver
        .open(CopyPlan {
            source: SourceSpec::Statement(StatementSpec::new(conninfo, series(10))),
            destinations: Vec::new(),
        })
        .unwrap_or_else(|e| panic!("[{}] over @{name}: {e}", driver.name()));
    select_one(&mut copy, Endpoint::Source);
    // It went over the abstract socket: the backend has no client address.
    assert_eq!(
        cluster
            .psql(
                &db,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND client_port = -1"
            )
            .trim(),
        "1"
    );
}

/// As libpq, every TCP connection has keepalives on (unless `keepalives=0`), with the idle time
/// given (`keepalives_idle`; interval and count likewise): a session that waits idle (a lock, a
/// slow COMMIT) survives a firewall's idle timeout, and a server that vanished is noticed.
/// Seen where the kernel shows it: the connection's socket in `/proc/net/tcp`, whose timer 2 is
/// the keepalive timer, due within the idle time.
pub fn tcp_keepalives_are_set_as_libpq_sets_them<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let source = &clusters.source;
    let db = source.create_database();
    // Nothing said: on, after the system's idle time (Linux: 2 hours).
    let cases = [
        ("", Some(7200)),
        ("keepalives_idle=7", Some(7)),
        ("keepalives=0", None),
    ];
    for (extra, keepalive) in cases {
        let conninfo = format!("{} {extra}", source.conninfo(&db));
        let mut copy = open(
            driver,
            CopyPlan {
                source: SourceSpec::Statement(StatementSpec::new(conninfo, series(10))),
                destinations: Vec::new(),
            },
        );
        let port: u16 = copy
            .sql(Endpoint::Source, "SELECT inet_client_port()")
            .unwrap_or_else(|e| panic!("[{}] the client's port: {e}", driver.name()))[0][0]
            .as_deref()
            .and_then(|p| p.parse().ok())
            .expect("a TCP session has a client port");
        // Idle now: the timer the kernel shows is the keepalive's, or none.
        let deadline = Instant::now() + Duration::from_secs(5);
        let timer = loop {
            let timer = tcp_timer(port);
            if timer.as_ref().is_some_and(|(kind, _)| *kind != 1) || Instant::now() > deadline {
                break timer;
            }
            thread::sleep(Duration::from_millis(50));
        };
        let (kind, due) = timer.unwrap_or_else(|| panic!("port {port} not in /proc/net/tcp"));
        match keepalive {
            Some(secs) => assert!(
                kind == 2 && due <= secs * 100,
                "[{}] {extra}: timer {kind}, due in {due} ticks",
                driver.name()
            ),
            None => assert_eq!(kind, 0, "[{}] {extra}: a timer is set", driver.name()),
        }
        select_one(&mut copy, Endpoint::Source);
    }
}

/// The timer of the TCP socket whose local port is `port` (`/proc/net/tcp`, `/proc/net/tcp6`):
/// its kind (0 none, 1 retransmit, 2 keepalive …) and when it is due, in clock ticks.
fn tcp_timer(port: u16) -> Option<(u32, u64)> {
    let local = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .find_map(|table| {
            let text = std::fs::read_to_string(table).ok()?;
            text.lines().skip(1).find_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                // sl local_address rem_address st tx_queue:rx_queue tr:tm->when …; 01 is ESTABLISHED.
                if !fields.get(1)?.ends_with(&local) || *fields.get(3)? != "01" {
                    return None;
                }
                let (kind, due) = fields.get(5)?.split_once(':')?;
                Some((
                    u32::from_str_radix(kind, 16).ok()?,
                    u64::from_str_radix(due, 16).ok()?,
                ))
            })
        })
}

/// With a stall timeout, a COPY that cannot start because another session holds a lock on its
/// table (the statement waits for the lock, no CopyIn/CopyOutResponse comes) stalls as a COPY
/// that stops midway does: a destination's, then the source's, fail the start with core's
/// "stalled" error naming the endpoint, of kind `TimedOut`, while the lock is still held;
/// nothing is committed, and once the lock goes every session is usable.
pub fn stall_timeout_bounds_a_locked_start<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let source = &clusters.source;
    let source_db = source.create_database();
    exec(
        source,
        &source_db,
        "CREATE TABLE s AS SELECT i::int8 AS i FROM generate_series(1, 1000) AS g(i)",
    );
    let (locked, other) = (&clusters.destinations[0], &clusters.destinations[1]);
    let locked_db = locked.create_database();
    let other_db = other.create_database();
    exec(locked, &locked_db, "CREATE TABLE t (i int8)");
    exec(other, &other_db, "CREATE TABLE t (i int8)");
    let cases = [
        (
            Endpoint::Destination(0),
            locked,
            &locked_db,
            "t",
            "receiver 0",
        ),
        (Endpoint::Source, source, &source_db, "s", "producer"),
    ];
    for (endpoint, cluster, db, table, name) in cases {
        let mut locker = cluster.connect(db);
        locker
            .batch_execute(&format!(
                "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
            ))
            .expect("lock the table");
        let plan = CopyPlan {
            source: SourceSpec::Statement(
                StatementSpec::new(source.conninfo(&source_db), "COPY s TO STDOUT")
                    .timeout(Duration::from_secs(1)),
            ),
            destinations: vec![
                DestinationSpec::Statement(StatementSpec::new(
                    locked.conninfo(&locked_db),
                    "COPY t FROM STDIN",
                )),
                DestinationSpec::Statement(StatementSpec::new(
                    other.conninfo(&other_db),
                    "COPY t FROM STDIN",
                )),
            ],
        };
        let mut copy = open(driver, plan);
        let began = Instant::now();
        let fail = match copy.start() {
            Err(fail) => fail,
            Ok(()) => panic!(
                "[{}] the copy started with the {endpoint}'s table locked",
                driver.name()
            ),
        };
        let waited = began.elapsed();
        let error = match endpoint {
            Endpoint::Source => fail.producer_fault.as_ref(),
            Endpoint::Destination(i) => fail.receiver_fault(i),
        };
        let error =
            error.unwrap_or_else(|| panic!("[{}] the {name} stalled: {fail}", driver.name()));
        assert!(
            error
                .text
                .contains(&format!("{name} stalled: no byte moved for 1s")),
            "[{}] {error}",
            driver.name()
        );
        assert_eq!(error.io_kind, Some(io::ErrorKind::TimedOut), "{error}");
        assert!(
            waited < Duration::from_secs(15),
            "[{}] the start took {waited:?} with a stall timeout of 1s",
            driver.name()
        );
        locker.batch_execute("ROLLBACK").expect("release the lock");
        assert_eq!(count(locked, &locked_db, "t"), 0);
        assert_eq!(count(other, &other_db, "t"), 0);
        for endpoint in [
            Endpoint::Source,
            Endpoint::Destination(0),
            Endpoint::Destination(1),
        ] {
            select_one(&mut copy, endpoint);
        }
    }
}

/// `Connection::check` reads, without a statement, why the server ended an idle session (its
/// FATAL, 57P01), in both adapters (copyman-async had no `check`: its connection said it was
/// ready until a statement failed); a live session checks as usable.
pub fn check_reads_why_the_server_ended_a_session<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let source = &clusters.source;
    let db = source.create_database();
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(source.conninfo(&db), series(10))),
        destinations: vec![DestinationSpec::Statement(StatementSpec::new(
            source.conninfo(&db),
            "COPY t FROM STDIN",
        ))],
    };
    let mut copy = open(driver, plan);
    let pid = backend_pid(&mut copy, Endpoint::Source);
    copy.check(Endpoint::Source)
        .unwrap_or_else(|e| panic!("[{}] a live session: {e}", driver.name()));
    assert!(
        source.terminate_backend(pid),
        "the source backend was there"
    );
    // The FATAL reaches the socket just after the backend is gone.
    let until = Instant::now() + Duration::from_secs(10);
    let error = loop {
        match copy.check(Endpoint::Source) {
            Err(error) => break error,
            Ok(()) if Instant::now() < until => thread::sleep(Duration::from_millis(20)),
            Ok(()) => panic!("[{}] the ended session checks as usable", driver.name()),
        }
    };
    assert_eq!(
        error.sqlstate.as_deref(),
        Some("57P01"),
        "[{}] the server's reason: {error}",
        driver.name()
    );
    copy.check(Endpoint::Destination(0))
        .unwrap_or_else(|e| panic!("[{}] the other session: {e}", driver.name()));
}

/// A session its server ended while it was idle (terminated; an idle timeout does the same)
/// says why on its next statement: the server's FATAL (57P01), which it sent before it closed.
/// Over a Unix socket the statement's write fails at once ("Broken pipe"), which was the error;
/// the server's words were unread behind it.
pub fn a_session_ended_by_its_server_says_why<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let source = &clusters.source;
    let db = source.create_database();
    let socket = format!(
        "host={} port={} user=postgres password={} dbname={db}",
        source.socket_dir().display(),
        source.port(),
        source.password()
    );
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(socket, series(10))),
        destinations: Vec::new(),
    };
    let mut copy = open(driver, plan);
    let pid = backend_pid(&mut copy, Endpoint::Source);
    assert!(
        source.terminate_backend(pid),
        "the source backend was there"
    );
    let error = copy
        .sql(Endpoint::Source, "SELECT 1")
        .expect_err("the session was ended");
    assert_eq!(
        error.sqlstate.as_deref(),
        Some("57P01"),
        "[{}] the server's reason: {error}",
        driver.name()
    );
}
