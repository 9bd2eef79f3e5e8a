//! Endpoints dropped in the middle of their COPY, outside a `CopyManager`: core's endpoint machine
//! says what that requires (the same rule as copyman-async's), and the connection is usable
//! afterwards with nothing committed.

use copyman_sync::{Connection, Data, Producer, Receiver, StatementProducer, StatementReceiver};

fn frame(row: &[u8]) -> Vec<u8> {
    let mut m = vec![b'd'];
    m.extend_from_slice(&u32::try_from(row.len() + 4).unwrap().to_be_bytes());
    m.extend_from_slice(row);
    m
}

#[test]
fn a_producer_dropped_mid_copy_out_is_cancelled_and_its_connection_usable() {
    let cluster = copyman_testkit::shared();
    let db = cluster.create_database();
    let mut conn = Connection::connect_str(&cluster.conninfo(&db)).unwrap();
    let pid = conn.session().backend_key().expect("a backend key").0;
    {
        let mut producer = StatementProducer::new(
            &mut conn,
            // In the select list, the series streams (in FROM it would be materialized first).
            "COPY (SELECT generate_series(1, 200000000)) TO STDOUT",
        );
        producer.start(false).unwrap();
        for _ in 0..3 {
            assert!(producer.next_chunk().unwrap().is_some());
        }
    }
    // Usable again: the rest of the COPY was cancelled and drained, not mistaken for an answer.
    assert_eq!(
        conn.query("SELECT 41 + 1").unwrap(),
        vec![vec![Some("42".to_owned())]]
    );
    let mut monitor = cluster.connect("postgres");
    let state: Option<String> = monitor
        .query_one("SELECT state FROM pg_stat_activity WHERE pid = $1", &[&pid])
        .unwrap()
        .get(0);
    assert_eq!(state.as_deref(), Some("idle"));
}

#[test]
fn a_receiver_dropped_mid_frame_fails_its_copy_and_its_connection_is_usable() {
    let cluster = copyman_testkit::shared();
    let db = cluster.create_database();
    let mut conn = Connection::connect_str(&cluster.conninfo(&db)).unwrap();
    conn.execute("CREATE TABLE t (v text)").unwrap();
    {
        let mut receiver = StatementReceiver::new(&mut conn, "COPY t FROM STDIN");
        receiver.start().unwrap();
        let whole = frame(b"1\n");
        receiver.transmit(&Data::PQv3(whole.into())).unwrap();
        // Half of the next frame: the server is inside it when the receiver goes.
        let next = frame(b"2 and some more\n");
        let mut sent = 0;
        while sent < 7 {
            sent += receiver.try_write(&next[sent..7]).unwrap();
        }
    }
    // The realignment and a CopyFail went out: nothing of the COPY is kept, and the session is
    // in step with the server again.
    assert_eq!(
        conn.query("SELECT count(*) FROM t").unwrap(),
        vec![vec![Some("0".to_owned())]]
    );
    assert_eq!(conn.execute("INSERT INTO t VALUES ('after')").unwrap(), 1);
}

/// A panic in a callback endpoint unwinds through the copy (it aborted the process: the copy's
/// drop drove IO for an order whose report never came, and panicked again while unwinding); a
/// raw receiver beside it fails its COPY as it is dropped, and its connection is usable with
/// nothing committed.
#[test]
fn a_panic_in_a_callback_endpoint_unwinds_and_commits_nothing() {
    let cluster = copyman_testkit::shared();
    let db = cluster.create_database();
    let mut conn = Connection::connect_str(&cluster.conninfo(&db)).unwrap();
    conn.execute("CREATE TABLE t (v text)").unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let chunks = (0..100).map(|i| vec![bytes::Bytes::from(format!("{i}\n"))]);
        let mut calls = 0;
        copyman_sync::CopyManager::builder(copyman_sync::IteratorProducer::new(chunks))
            .to(StatementReceiver::new(&mut conn, "COPY t FROM STDIN"))
            .to(copyman_sync::CallReceiver::new(
                move |_: &[bytes::Bytes]| {
                    calls += 1;
                    assert!(calls < 2, "the callback panics on its second call");
                    Ok(())
                },
            ))
            .run()
    }));
    assert!(caught.is_err(), "the panic reached the caller");
    assert_eq!(
        conn.query("SELECT count(*) FROM t").unwrap(),
        vec![vec![Some("0".to_owned())]]
    );
    assert_eq!(conn.execute("INSERT INTO t VALUES ('after')").unwrap(), 1);
}

/// A receiver dropped with more of a frame owed than an abandon writes without waiting: copyman
/// closes the connection, says so (as copyman-async does, in core's words) rather than "closed by
/// the server", and the connection says it is closed.
#[test]
fn a_receiver_closed_by_copyman_says_so_in_cores_words() {
    let cluster = copyman_testkit::shared();
    let db = cluster.create_database();
    let mut conn = Connection::connect_str(&cluster.conninfo(&db)).unwrap();
    conn.execute("CREATE TABLE t (i int8)").unwrap();
    assert!(!conn.is_closed());
    {
        let mut receiver = StatementReceiver::new(&mut conn, "COPY t FROM STDIN");
        receiver.start().unwrap();
        // A CopyData header announcing 200 000 bytes, and only 10 of them.
        let mut partial = vec![b'd'];
        partial.extend_from_slice(&200_004u32.to_be_bytes());
        partial.extend_from_slice(b"1\n2\n3\n4\n5\n");
        let mut sent = 0;
        while sent < partial.len() {
            sent += receiver.try_write(&partial[sent..]).unwrap();
        }
    }
    assert!(conn.is_closed(), "copyman closed it");
    let error = conn.execute("SELECT 1").unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "connection closed: {}",
            copyman_core::endpoint::ABANDONED_COPY_IN
        )
    );
    assert!(error.is_closed());
    assert_eq!(
        cluster
            .connect(&db)
            .query_one("SELECT count(*) FROM t", &[])
            .unwrap()
            .get::<_, i64>(0),
        0
    );
}

/// A backend the server terminated: the connection knows it is closed once a call read it.
#[test]
fn a_terminated_backend_is_closed() {
    let cluster = copyman_testkit::shared();
    let db = cluster.create_database();
    let mut conn = Connection::connect_str(&cluster.conninfo(&db)).unwrap();
    let pid = conn.session().backend_key().expect("a backend key").0;
    cluster
        .connect("postgres")
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(conn.query("SELECT 1").is_err());
    assert!(conn.is_closed());
}

/// A source database and two with an empty `t (i int8)` on `cluster`: the two's names, and a
/// connection to each of the three.
fn source_and_two_receivers(cluster: &copyman_testkit::Cluster) -> ([String; 2], [Connection; 3]) {
    let dbs = [cluster.create_database(), cluster.create_database()];
    for db in &dbs {
        cluster
            .connect(db)
            .batch_execute("CREATE TABLE t (i int8)")
            .unwrap();
    }
    let connect = |db: &str| Connection::connect_str(&cluster.conninfo(db)).unwrap();
    let conns = [
        connect(&cluster.create_database()),
        connect(&dbs[0]),
        connect(&dbs[1]),
    ];
    (dbs, conns)
}

/// Each of `dbs` on `cluster` has no row in `t`.
fn assert_nothing_in(cluster: &copyman_testkit::Cluster, dbs: &[String]) {
    for db in dbs {
        let rows: i64 = cluster
            .connect(db)
            .query_one("SELECT count(*) FROM t", &[])
            .unwrap()
            .get(0);
        assert_eq!(rows, 0, "{db}");
    }
}

/// How long dropping a copy from `source` into `t` of the two receivers took, three chunks in,
/// with backend `pid` (one of theirs) frozen for at most 30 s from just before the drop.
fn dropped_while_frozen([source, a, b]: [&mut Connection; 3], pid: i32) -> std::time::Duration {
    use copyman_sync::CopyManager;
    use std::time::{Duration, Instant};

    let mut copy = CopyManager::builder(StatementProducer::new(
        source,
        "COPY (SELECT generate_series(1, 200000000)) TO STDOUT",
    ))
    .to(StatementReceiver::new(a, "COPY t FROM STDIN"))
    .to(StatementReceiver::new(b, "COPY t FROM STDIN"))
    .start()
    .expect("the copy starts");
    for _ in 0..3 {
        assert!(copy.next().expect("progress").is_ok());
    }
    let _frozen = crate::Stopped::stop_for_at_most(pid, Duration::from_secs(30));
    let clock = Instant::now();
    drop(copy);
    clock.elapsed()
}

/// A copy dropped unfinished while a receiver's backend is frozen (an early `?` out of the loop
/// over the copy): the drop gives the frozen one up after the interrupt's grace, closing its
/// connection, instead of waiting for its answer for ever (default options, no stall timeout);
/// the other receiver's COPY is failed and its connection usable, nothing committed anywhere.
#[test]
fn a_copy_dropped_while_a_receiver_is_frozen_returns_and_commits_nothing() {
    use copyman_sync::INTERRUPT_GRACE;
    use std::time::Duration;

    // A cluster of the test's own: a receiver frozen mid-COPY may hold a lock that every commit
    // on its cluster waits for (a WAL insertion lock), which on the shared one are other tests'.
    static OWN: std::sync::OnceLock<copyman_testkit::Cluster> = std::sync::OnceLock::new();
    let cluster = OWN.get_or_init(copyman_testkit::Cluster::start);
    let (dbs, [mut source, mut a, mut b]) = source_and_two_receivers(cluster);
    let b_pid = b.session().backend_key().expect("a backend key").0;
    let dropped_in = dropped_while_frozen([&mut source, &mut a, &mut b], b_pid);
    assert!(
        dropped_in < INTERRUPT_GRACE + Duration::from_secs(10),
        "the drop waited {dropped_in:?} on the frozen receiver"
    );
    assert!(b.is_closed(), "the frozen receiver's connection is closed");
    // The others answered within the grace, usable again — or, on a machine too busy for their
    // backends to answer within it, closed too (said so): never in their COPY, never with rows.
    for (conn, sql, answer) in [
        (&mut a, "SELECT count(*) FROM t", "0"),
        (&mut source, "SELECT 1", "1"),
    ] {
        match conn.query(sql) {
            Ok(rows) => assert_eq!(rows, vec![vec![Some(answer.to_owned())]]),
            Err(e) => assert!(conn.is_closed(), "neither usable nor closed: {e}"),
        }
    }
    assert_nothing_in(cluster, &dbs);
}

/// A copy dropped unfinished while its source's backend is frozen, the source's connection
/// carrying an interrupter of the caller's (which the drop never fires): the drop lends the
/// endpoints its own, so the cancel's drain gives the frozen source up after the interrupt's
/// grace (it waited for as long as the source stayed frozen); the receivers' COPYs are failed,
/// nothing committed, and the caller's interrupter is the connection's again.
#[test]
fn a_copy_dropped_while_its_source_is_frozen_returns_and_commits_nothing() {
    use copyman_sync::{INTERRUPT_GRACE, Interrupter};
    use std::time::Duration;

    let cluster = copyman_testkit::shared();
    let (dbs, [mut source, mut a, mut b]) = source_and_two_receivers(cluster);
    let callers = Interrupter::new().unwrap();
    source.set_interrupter(Some(callers.clone()));
    let source_pid = source.session().backend_key().expect("a backend key").0;
    let dropped_in = dropped_while_frozen([&mut source, &mut a, &mut b], source_pid);
    assert!(
        dropped_in < INTERRUPT_GRACE + Duration::from_secs(10),
        "the drop waited {dropped_in:?} on the frozen source"
    );
    assert!(
        !callers.is_interrupted(),
        "the caller's interrupter was fired"
    );
    assert!(
        source.interrupter().is_some_and(|i| !i.is_interrupted()),
        "the source's connection has its caller's interrupter back"
    );
    for (conn, sql, answer) in [
        (&mut a, "SELECT count(*) FROM t", "0"),
        (&mut b, "SELECT count(*) FROM t", "0"),
    ] {
        match conn.query(sql) {
            Ok(rows) => assert_eq!(rows, vec![vec![Some(answer.to_owned())]]),
            Err(e) => assert!(conn.is_closed(), "neither usable nor closed: {e}"),
        }
    }
    assert_nothing_in(cluster, &dbs);
}

/// An interrupter given to the endpoints' connections interrupts a one-call `run` (which hands
/// out no copy to ask for its own): it was only the connections' own waits', and the copy waited
/// on a frozen receiver until it moved again, then completed as if nothing had been asked.
#[test]
fn an_interrupter_given_to_the_connections_interrupts_a_one_call_run() {
    use copyman_sync::{CopyManager, INTERRUPT_GRACE, Interrupter};
    use std::time::{Duration, Instant};

    // A cluster of the test's own: a receiver frozen mid-COPY may hold a lock that every commit
    // on its cluster waits for (a WAL insertion lock), which on the shared one are other tests'.
    static OWN: std::sync::OnceLock<copyman_testkit::Cluster> = std::sync::OnceLock::new();
    let cluster = OWN.get_or_init(copyman_testkit::Cluster::start);
    let (dbs, [mut source, mut a, mut b]) = source_and_two_receivers(cluster);
    let stop = Interrupter::new().unwrap();
    for conn in [&mut source, &mut a, &mut b] {
        conn.set_interrupter(Some(stop.clone()));
    }
    // Mid-stream, b's backend freezes; a second later the interrupt comes.
    let b_pid = b.session().backend_key().expect("a backend key").0;
    let interrupting = std::thread::spawn({
        let stop = stop.clone();
        move || {
            std::thread::sleep(Duration::from_millis(500));
            let frozen = crate::Stopped::stop_for_at_most(b_pid, Duration::from_secs(30));
            std::thread::sleep(Duration::from_secs(1));
            stop.interrupt();
            frozen
        }
    });
    let clock = Instant::now();
    let ran = CopyManager::builder(StatementProducer::new(
        &mut source,
        "COPY (SELECT generate_series(1, 50000000)) TO STDOUT",
    ))
    .to(StatementReceiver::new(&mut a, "COPY t FROM STDIN"))
    .to(StatementReceiver::new(&mut b, "COPY t FROM STDIN"))
    .run();
    let took = clock.elapsed();
    drop(interrupting.join().unwrap());
    assert!(ran.is_err(), "an interrupted copy fails: {ran:?}");
    assert!(
        took < INTERRUPT_GRACE + Duration::from_secs(15),
        "the run took {took:?} after its interrupt"
    );
    assert_nothing_in(cluster, &dbs);
}
