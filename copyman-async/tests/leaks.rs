//! 100 copies in a row with the tokio adapter on the same four connections (one producer, three
//! receivers), successful and failing ones mixed, leak nothing: no file descriptor, no memory beyond a bound, no server
//! backend; every connection stays usable and every receiver holds exactly what it should.
//!
//! File descriptors and RSS are the whole process's, so everything is one test: tests of one
//! binary run in parallel threads. The copies run on one current-thread runtime, as an
//! application's would; a copy dropped midway cancels its producer from a task on it.

use copyman_async::{
    Connection, CopyManager, Receiver, StatementProducer, StatementReceiver, transfer,
};
use copyman_testkit::leaks::{
    COPIES, KINDS, Kind, ROWS, SETUP, Tracker, expected_failure, receive, send,
};
use futures_util::StreamExt;

/// Runs one copy of `kind`; returns whether it should have stored `ROWS` rows in t0, t1, t2.
async fn copy(kind: Kind, source: &mut Connection, dests: &mut [Connection]) -> bool {
    let in_transaction = matches!(kind, Kind::GoodInTransaction | Kind::ReceiverFailsMidway);
    if in_transaction {
        for d in dests.iter_mut() {
            d.execute("BEGIN").await.expect("BEGIN");
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
                .await
                .unwrap_or_else(|fail| panic!("{kind:?}: the copy failed: {fail}"));
            assert_eq!(rows, ROWS, "{kind:?}: rows copied");
            (None, true)
        }
        Kind::ReceiverCannotStart | Kind::ReceiverFailsMidway | Kind::ProducerFailsMidway => {
            let fail = transfer(producer, receivers)
                .await
                .expect_err("this copy cannot succeed")
                .to_string();
            (Some(fail), false)
        }
        Kind::Aborted | Kind::Dropped => {
            let mut copy = CopyManager::start(producer, receivers)
                .await
                .unwrap_or_else(|fail| panic!("{kind:?}: the copy did not start: {fail}"));
            copy.next()
                .await
                .expect("a first cycle")
                .unwrap_or_else(|fault| panic!("{kind:?}: first cycle: {fault}"));
            if kind == Kind::Aborted {
                (
                    Some(copy.abort("stopped by the leak test").await.to_string()),
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
            d.execute(end).await.expect(end);
        }
    }
    expected
}

/// One value of a one-row, one-column query.
async fn value(conn: &mut Connection, sql: &str) -> String {
    let rows = conn
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows[0][0].clone().unwrap_or_default()
}

#[test]
fn a_hundred_copies_on_the_same_connections_leak_nothing() {
    let cluster = copyman_testkit::shared();
    let db = cluster.create_database();
    let conninfo = cluster.conninfo(&db);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(hundred_copies(&conninfo));
}

async fn hundred_copies(conninfo: &str) {
    let connect = || async { Connection::connect_str(conninfo).await.expect("connect") };
    let mut source = connect().await;
    let mut dests = vec![connect().await, connect().await, connect().await];
    source.execute(SETUP).await.expect("create the tables");

    let mut tracker = Tracker::default();
    for n in 0..COPIES {
        let kind = KINDS[n % KINDS.len()];
        source
            .execute("TRUNCATE t0, t1, t2, picky")
            .await
            .expect("TRUNCATE");
        let stored = copy(kind, &mut source, &mut dests).await;

        // Every connection is usable and idle, on the server too. (A connection whose copy was
        // dropped reads the rest of the server's answer in its next call: `is_ready` after it.)
        for (name, conn) in std::iter::once(("source", &mut source))
            .chain(dests.iter_mut().map(|d| ("receiver", d)))
        {
            assert!(
                !conn.is_closed(),
                "copy {n} ({kind:?}): the {name} was closed"
            );
            assert_eq!(
                value(conn, "SELECT 1").await,
                "1",
                "copy {n} ({kind:?}): {name}"
            );
            assert!(
                conn.is_ready(),
                "copy {n} ({kind:?}): the {name} is not ready"
            );
        }
        // Exactly our four backends, the three others idle (not in a COPY or a transaction).
        let backends = value(
            &mut source,
            "SELECT count(*) || ' ' || count(*) FILTER (WHERE state = 'idle' AND pid <> pg_backend_pid()) \
             FROM pg_stat_activity WHERE datname = current_database()",
        )
        .await;
        assert_eq!(
            backends, "4 3",
            "copy {n} ({kind:?}): backends, idle others"
        );
        // The receivers hold the copy's rows, or none at all after a failure.
        let counts = value(
            &mut source,
            "SELECT concat_ws(' ', (SELECT count(*) FROM t0), (SELECT count(*) FROM t1), \
             (SELECT count(*) FROM t2), (SELECT count(*) FROM picky))",
        )
        .await;
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
