//! 100 copies in a row on the same four connections (one producer, three receivers), successful
//! and failing ones mixed, leak nothing: no file descriptor, no memory beyond a bound, no server
//! backend; every connection stays usable and every receiver holds exactly what it should.
//!
//! File descriptors and RSS are the whole process's, so everything is one test: tests of one
//! binary run in parallel threads.

use copyman_sync::{
    Connection, CopyManager, Receiver, StatementProducer, StatementReceiver, transfer,
};
use copyman_testkit::leaks::{
    COPIES, KINDS, Kind, ROWS, SETUP, Tracker, expected_failure, receive, send,
};

/// Runs one copy of `kind`; returns whether it should have stored `ROWS` rows in t0, t1, t2.
fn copy(kind: Kind, source: &mut Connection, dests: &mut [Connection]) -> bool {
    let in_transaction = matches!(kind, Kind::GoodInTransaction | Kind::ReceiverFailsMidway);
    if in_transaction {
        for d in dests.iter_mut() {
            d.execute("BEGIN").expect("BEGIN");
        }
    }
    let producer = StatementProducer::new(source, send(kind));
    let receivers: Vec<Box<dyn Receiver + '_>> = dests
        .iter_mut()
        .enumerate()
        .map(|(i, d)| Box::new(StatementReceiver::new(d, receive(kind, i))) as Box<dyn Receiver>)
        .collect();
    let (result, expected) = match kind {
        Kind::Good | Kind::GoodInTransaction => {
            let (rows, _) = transfer(producer, receivers)
                .unwrap_or_else(|fail| panic!("{kind:?}: the copy failed: {fail}"));
            assert_eq!(rows, ROWS, "{kind:?}: rows copied");
            (None, true)
        }
        Kind::ReceiverCannotStart | Kind::ReceiverFailsMidway | Kind::ProducerFailsMidway => {
            let fail = transfer(producer, receivers)
                .expect_err("this copy cannot succeed")
                .to_string();
            (Some(fail), false)
        }
        Kind::Aborted | Kind::Dropped => {
            let mut copy = CopyManager::start(producer, receivers)
                .unwrap_or_else(|fail| panic!("{kind:?}: the copy did not start: {fail}"));
            copy.next()
                .expect("a first cycle")
                .unwrap_or_else(|fault| panic!("{kind:?}: first cycle: {fault}"));
            if kind == Kind::Aborted {
                (
                    Some(copy.abort("stopped by the leak test").to_string()),
                    false,
                )
            } else {
                drop(copy);
                (None, false)
            }
        }
    };
    if let Some(fail) = result {
        let expected_text = expected_failure(kind).expect("a failing kind");
        assert!(
            fail.contains(expected_text),
            "{kind:?}: the failure should mention {expected_text:?}: {fail}"
        );
    }
    if in_transaction {
        let end = if expected { "COMMIT" } else { "ROLLBACK" };
        for d in dests.iter_mut() {
            d.execute(end).expect(end);
        }
    }
    expected
}

/// One value of a one-row, one-column query.
fn value(conn: &mut Connection, sql: &str) -> String {
    let rows = conn.query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows[0][0].clone().unwrap_or_default()
}

#[test]
fn a_hundred_copies_on_the_same_connections_leak_nothing() {
    let cluster = copyman_testkit::shared();
    let db = cluster.create_database();
    let conninfo = cluster.conninfo(&db);
    let connect = || Connection::connect_str(&conninfo).expect("connect");
    let mut source = connect();
    let mut dests: Vec<Connection> = (0..3).map(|_| connect()).collect();
    source.execute(SETUP).expect("create the tables");

    let mut tracker = Tracker::default();
    for n in 0..COPIES {
        let kind = KINDS[n % KINDS.len()];
        source
            .execute("TRUNCATE t0, t1, t2, picky")
            .expect("TRUNCATE");
        let stored = copy(kind, &mut source, &mut dests);

        // Every connection is usable and idle, on the server too.
        for (name, conn) in std::iter::once(("source", &mut source))
            .chain(dests.iter_mut().map(|d| ("receiver", d)))
        {
            assert!(
                conn.is_ready(),
                "copy {n} ({kind:?}): the {name} is not ready"
            );
            assert_eq!(value(conn, "SELECT 1"), "1", "copy {n} ({kind:?}): {name}");
        }
        // Exactly our four backends, the three others idle (not in a COPY or a transaction).
        let backends = value(
            &mut source,
            "SELECT count(*) || ' ' || count(*) FILTER (WHERE state = 'idle' AND pid <> pg_backend_pid()) \
             FROM pg_stat_activity WHERE datname = current_database()",
        );
        assert_eq!(
            backends, "4 3",
            "copy {n} ({kind:?}): backends, idle others"
        );
        // The receivers hold the copy's rows, or none at all after a failure.
        let counts = value(
            &mut source,
            "SELECT concat_ws(' ', (SELECT count(*) FROM t0), (SELECT count(*) FROM t1), \
             (SELECT count(*) FROM t2), (SELECT count(*) FROM picky))",
        );
        let want = if stored {
            format!("{ROWS} {ROWS} {ROWS} 0")
        } else {
            "0 0 0 0".into()
        };
        assert_eq!(counts, want, "copy {n} ({kind:?}): rows in t0 t1 t2 picky");

        tracker.after_copy(n, kind);
    }
    eprintln!("{}", tracker.report());
}
